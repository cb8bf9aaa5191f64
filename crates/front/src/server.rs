//! The HTTP server: the router, the request metrics, the static page, and `run` (listener in,
//! graceful stop on a signal). The admission controller runs beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use super::api::{ApiError, AppState, Front};
use super::api::{admin, queue, reservations, slots, status, verify};
use super::{openapi, web};

async fn measure(State(front): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    front
        .metrics
        .request(&method, &route, response.status().as_u16());
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take this method",
    )
}

async fn index() -> Response {
    static_file(Path("index.html".to_owned())).await
}

async fn operator() -> Response {
    static_file(Path("operator.html".to_owned())).await
}

async fn static_file(Path(name): Path<String>) -> Response {
    match web::file(&name) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => not_found().await.into_response(),
    }
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

/// Every route of the API and the page.
pub fn router(front: AppState) -> Router {
    let body_limit = front.config.body_bytes_max;
    Router::new()
        .route("/", get(index))
        .route("/operator", get(operator))
        .route("/static/{file}", get(static_file))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(status::metrics))
        .route("/v1/verify", post(verify::verify))
        .route("/v1/queue", post(queue::enter))
        .route("/v1/queue/draws", get(queue::draws))
        .route(
            "/v1/queue/{ticket}",
            get(queue::status).delete(queue::leave),
        )
        .route("/v1/congestion", get(status::congestion))
        .route("/v1/slots", get(slots::slots))
        .route("/v1/reservations", post(reservations::book))
        .route("/v1/reservations/me", get(reservations::mine))
        .route(
            "/v1/reservations/{id}",
            put(reservations::change).delete(reservations::cancel),
        )
        .route("/admin/supply", post(admin::supply))
        .route("/admin/clock", post(admin::clock))
        .route("/admin/providers", post(admin::provider))
        .route("/admin/status", get(status::admin_status))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(front.clone(), measure))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(front)
}

/// A running server: its address, and a handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub front: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, stops the controller.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            // It fails only if the server has stopped already: nothing is left to tell.
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            tracing::error!(%error, "the HTTP server's task failed");
        }
    }
}

/// Binds `addr` (port 0 picks one), starts the server and the admission controller on the
/// current tokio runtime.
pub async fn start(front: Front, addr: SocketAddr) -> std::io::Result<Running> {
    let front = Arc::new(front);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(front.clone());
    let controller = tokio::spawn(super::controller::run(front.clone()));
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // A dropped sender (the `Running` gone) means stop as well.
            let _ = stopped.await;
        });
        if let Err(error) = server.await {
            tracing::error!(%error, "the HTTP server stopped");
        }
        controller.abort();
    });
    Ok(Running {
        addr,
        front,
        stop: Some(stop),
        task,
    })
}

/// The certificate chain and private key (PEM files) the server answers HTTPS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Like [`start`], over HTTPS (OpenSSL; HTTP/1.1, or HTTP/2 by ALPN) with the certificate
/// chain and key of `tls`: for deployments without a TLS-terminating proxy.
pub async fn start_https(
    front: Front,
    addr: SocketAddr,
    tls: &TlsFiles,
) -> std::io::Result<Running> {
    let config = axum_server::tls_openssl::OpenSSLConfig::from_pem_chain_file(&tls.cert, &tls.key)
        .map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let front = Arc::new(front);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(front.clone());
    let controller = tokio::spawn(super::controller::run(front.clone()));
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener)?
        .acceptor(axum_server::tls_openssl::OpenSSLAcceptor::new(config))
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        let drain = tokio::spawn(async move {
            // A dropped sender (the `Running` gone) means stop as well.
            let _ = stopped.await;
            handle.graceful_shutdown(None);
        });
        if let Err(error) = server.serve(app.into_make_service()).await {
            tracing::error!(%error, "the HTTPS server stopped");
        }
        drain.abort();
        controller.abort();
    });
    Ok(Running {
        addr,
        front,
        stop: Some(stop),
        task,
    })
}
