//! The HTTP server: the router, the request metrics, the static page, and `start` (listener
//! in, graceful stop). The admission controller runs beside it.
//!
//! Held against slow, greedy and many clients ([`HttpLimits`]): connections at most
//! `connections_max` (one more is answered `503` with `Retry-After` and closed), request heads
//! within `header_bytes_max` and `header_read_timeout` (a slow-loris client, or an idle
//! keep-alive connection, is cut off), bodies within `body_bytes_max` and `body_read_timeout`
//! (`413 body_too_large` once the rest, up to `drain_bytes_max`, was read, so the client is
//! done sending and reads the answer; `408 body_timeout`), requests in flight at most
//! `requests_in_flight_max` (`503 overloaded` with `Retry-After`), and, where asked for,
//! verifications per client address (`verify_per_client`: `429 client_rate_limited` with
//! `Retry-After`; the address is the connection's peer, handed to the router as
//! `ConnectInfo<SocketAddr>`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_openssl::SslStream;

use super::api::error::AnsweredCode;
use super::api::{ApiError, AppState, Front};
use super::api::{admin, events, queue, reservations, schedule, slots, status, verify};
use super::client_rate::{ClientKey, ClientRate};
use super::{openapi, web};

/// Bounds of the HTTP server. `Default` is what `yeyak serve` runs with.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open connections at most; one more is answered `503` and closed.
    pub connections_max: usize,
    /// Requests being answered at once at most; one more is answered `503 overloaded`.
    pub requests_in_flight_max: usize,
    /// A request's start line and headers, in bytes, at most (else `431`).
    pub header_bytes_max: usize,
    /// A request head (and the next one on a keep-alive connection) must arrive within this.
    pub header_read_timeout: Duration,
    /// A body must arrive within this (else `408 body_timeout`).
    pub body_read_timeout: Duration,
    /// Of a body over the limit, this much more is read and dropped before answering `413`,
    /// so that the client has finished sending and reads the answer; beyond it, the
    /// connection is closed after the answer.
    pub drain_bytes_max: usize,
    /// What `503` answers tell the client to wait.
    pub retry_after_s: u64,
    /// `POST /v1/verify` per client address (IPv4, or IPv6 /64) at most, or no such limit
    /// (the default: see `client_rate`).
    pub verify_per_client: Option<ClientRate>,
    /// Open event streams of the waiting room (`GET /v1/queue/{ticket}/events`) at most; one
    /// more is answered `503 overloaded` and the page polls instead. Each also holds one of
    /// the `connections_max` connections while it is open.
    pub event_streams_max: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            connections_max: 4096,
            requests_in_flight_max: 2048,
            header_bytes_max: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            drain_bytes_max: 1024 * 1024,
            retry_after_s: 1,
            verify_per_client: None,
            event_streams_max: 2048,
        }
    }
}

/// Connections over the limit being answered `503` at once, at most; beyond, they are closed.
const REFUSALS_IN_FLIGHT_MAX: usize = 256;
/// How long a refused connection is given to send its request head and read the `503`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// After an `accept` error (e.g. out of file descriptors), wait this long before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Requests in flight at a stop get this long to finish.
const STOP_GRACE: Duration = Duration::from_secs(30);

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
    if let Some(AnsweredCode(code)) = response.extensions().get::<AnsweredCode>() {
        front.metrics.refusal(code);
    }
    response
}

/// `503 overloaded` with `Retry-After`: too many requests in flight.
async fn admit(State(front): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_in_flight) = front.in_flight.try_acquire() else {
        let retry_after_s = front.config.http.retry_after_s;
        return ApiError {
            retry_after_s: Some(retry_after_s as i64),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is answering as many requests as it can; retry after the time given",
            )
        }
        .into_response();
    };
    next.run(request).await
}

/// `429 client_rate_limited` with `Retry-After`: this client address asks for verifications
/// faster than `HttpLimits::verify_per_client` allows.
async fn limit_per_client(State(front): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    if let (Some(buckets), Some(ConnectInfo(peer))) = (&front.verify_clients, peer) {
        if let Err(wait) = buckets.take(ClientKey::of(peer.ip()), std::time::Instant::now()) {
            return ApiError {
                retry_after_s: Some(wait.as_secs_f64().ceil().max(1.0) as i64),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "client_rate_limited",
                    "too many verifications from this address; retry after the time given",
                )
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// Why a body was not taken.
enum BodyRefused {
    /// Over the limit; `drained`: read to its end, so the connection can carry on.
    TooLarge {
        drained: bool,
    },
    Unreadable,
}

/// Reads a body to its end, keeping at most `limit` bytes and reading at most `drain` more.
async fn read_bounded(mut body: Body, limit: usize, drain: usize) -> Result<Bytes, BodyRefused> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyRefused::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit.saturating_add(drain) {
            return Err(BodyRefused::TooLarge { drained: false });
        }
    }
    if seen > limit {
        return Err(BodyRefused::TooLarge { drained: true });
    }
    Ok(Bytes::from(kept))
}

/// Every body is read here, bounded in size and time, before a handler sees it.
async fn read_body(State(front): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limits = &front.config.http;
    let read = read_bounded(body, front.config.body_bytes_max, limits.drain_bytes_max);
    let (error, keep_alive) = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(bytes)) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
        Ok(Err(BodyRefused::TooLarge { drained })) => (
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "a request body is at most {} bytes",
                    front.config.body_bytes_max
                ),
            ),
            drained,
        ),
        Ok(Err(BodyRefused::Unreadable)) => (
            ApiError::bad("body_unreadable", "the request body could not be read"),
            false,
        ),
        Err(_) => (
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "a request body must arrive within {:?}",
                    limits.body_read_timeout
                ),
            ),
            false,
        ),
    };
    let mut response = error.into_response();
    if !keep_alive {
        // The body was not read to its end: this connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
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
    let mut routes = Router::new()
        .route("/", get(index))
        .route("/operator", get(operator))
        .route("/static/{file}", get(static_file))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(status::metrics))
        .route(
            "/v1/verify",
            post(verify::verify).route_layer(middleware::from_fn_with_state(
                front.clone(),
                limit_per_client,
            )),
        )
        .route("/v1/queue", post(queue::enter))
        .route("/v1/queue/draws", get(queue::draws))
        .route(
            "/v1/queue/{ticket}",
            get(queue::status).delete(queue::leave),
        )
        .route("/v1/queue/{ticket}/events", get(events::stream))
        .route("/v1/congestion", get(status::congestion))
        .route("/v1/schedule", get(schedule::schedule))
        .route("/v1/slots", get(slots::slots))
        .route("/v1/reservations", post(reservations::book))
        .route("/v1/reservations/me", get(reservations::mine))
        .route(
            "/v1/reservations/{id}",
            put(reservations::change).delete(reservations::cancel),
        )
        .route("/admin/supply", post(admin::supply))
        .route("/admin/providers", post(admin::provider))
        .route("/admin/admissions", post(admin::admissions))
        .route("/admin/status", get(status::admin_status));
    // Moving time opens booking days early: only a rehearsal on a simulated clock has it.
    if front.config.simulated_clock {
        routes = routes.route("/admin/clock", post(admin::clock));
    }
    // The last layer is the outermost: measure every answer, then the in-flight bound, then the
    // body's bounds.
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(front.clone(), read_body))
        .layer(middleware::from_fn_with_state(front.clone(), admit))
        .layer(middleware::from_fn_with_state(front.clone(), measure))
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
    start_on(front, addr, Transport::Plain).await
}

/// Like [`start`], over HTTPS (OpenSSL, HTTP/1.1) with the certificate chain and key of `tls`:
/// for deployments without a TLS-terminating proxy. The same [`HttpLimits`] hold; the TLS
/// handshake counts against `header_read_timeout`.
pub async fn start_https(
    front: Front,
    addr: SocketAddr,
    tls: &TlsFiles,
) -> std::io::Result<Running> {
    let acceptor = tls_acceptor(tls)?;
    start_on(front, addr, Transport::Tls(Arc::new(acceptor))).await
}

async fn start_on(
    front: Front,
    addr: SocketAddr,
    transport: Transport,
) -> std::io::Result<Running> {
    let front = Arc::new(front);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(front.clone());
    let controller = tokio::spawn(super::controller::run(front.clone()));
    let limits = front.config.http.clone();
    let stopping = front.clone();
    let task = tokio::spawn(async move {
        // A dropped sender (the `Running` gone) means stop as well.
        serve(listener, app, &limits, transport, async move {
            let _ = stopped.await;
            // Event streams end now: the graceful stop waits only for real requests.
            stopping.stopping.send_replace(true);
        })
        .await;
        controller.abort();
    });
    Ok(Running {
        addr,
        front,
        stop: Some(stop),
        task,
    })
}

/// How an accepted connection becomes the byte stream HTTP is read from.
#[derive(Clone)]
enum Transport {
    Plain,
    Tls(Arc<SslAcceptor>),
}

/// The server's TLS settings (Mozilla's "intermediate" profile) with its certificate chain and
/// key, checked against each other.
fn tls_acceptor(tls: &TlsFiles) -> std::io::Result<SslAcceptor> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(std::io::Error::other)?;
    builder
        .set_certificate_chain_file(&tls.cert)
        .map_err(std::io::Error::other)?;
    builder
        .set_private_key_file(&tls.key, SslFiletype::PEM)
        .map_err(std::io::Error::other)?;
    builder.check_private_key().map_err(std::io::Error::other)?;
    Ok(builder.build())
}

/// The TLS handshake of an accepted connection, within `timeout`; `None` (logged) when it
/// fails or is too slow.
async fn tls_accept(
    acceptor: &SslAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Option<SslStream<TcpStream>> {
    let ssl = Ssl::new(acceptor.context())
        .map_err(|error| tracing::warn!(%error, "cannot start a TLS session"))
        .ok()?;
    let mut tls = SslStream::new(ssl, stream)
        .map_err(|error| tracing::warn!(%error, "cannot start a TLS session"))
        .ok()?;
    match tokio::time::timeout(timeout, std::pin::Pin::new(&mut tls).accept()).await {
        Ok(Ok(())) => Some(tls),
        Ok(Err(error)) => {
            tracing::debug!(%error, "a TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("a TLS handshake took too long");
            None
        }
    }
}

/// Accepts connections until `stopped`, then lets the requests in flight finish.
async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    transport: Transport,
    stopped: impl std::future::Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT_MAX));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.header_bytes_max)
        .max_buf_size(limits.header_bytes_max.max(8192));
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Over the limit: a short 503 while few are being refused, else just closed (always
            // closed over TLS: a handshake is not spent on a refusal).
            if matches!(transport, Transport::Tls(_)) {
                continue;
            }
            if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                let retry_after_s = limits.retry_after_s;
                tokio::spawn(async move {
                    refuse_overloaded(stream, retry_after_s).await;
                    drop(refusing);
                });
            }
            continue;
        };
        let router = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            hyper::service::Service::call(&router, request)
        });
        let watcher = graceful.watcher();
        let (http, transport) = (http.clone(), transport.clone());
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let served = match transport {
                Transport::Plain => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Transport::Tls(acceptor) => {
                    match tls_accept(&acceptor, stream, handshake_timeout).await {
                        Some(tls) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(tls), service))
                                .await
                        }
                        None => Ok(()),
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight {STOP_GRACE:?} after the stop");
    }
}

/// Answers a connection over the limit `503` with `Retry-After`, after reading its request
/// head (so that the client is not reset while sending), and closes it.
async fn refuse_overloaded(mut stream: TcpStream, retry_after_s: u64) {
    let body = serde_json::json!({
        "error": "overloaded",
        "message": "the server is at its connection limit; retry after the time given",
        "retry_after_s": retry_after_s,
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {retry_after_s}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut head = [0u8; 4096];
        let _read = stream.read(&mut head).await?;
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    if let Ok(Err(error)) = tokio::time::timeout(REFUSAL_TIMEOUT, exchange).await {
        tracing::debug!(%error, "a refused connection ended with an error");
    }
}

/// The certificate chain and private key (PEM files) the server answers HTTPS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}
