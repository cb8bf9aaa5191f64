//! `/metrics` of the roles without a web server of their own (`process`, `project`): the
//! Prometheus text format (prometheus-client's encoder) on a small HTTP listener
//! (`--metrics-listen`). The role's loop publishes a [`Snapshot`] after every step; a scrape
//! encodes the latest one, so scraping never waits for the loop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use yeyak_front::metrics as encoded;

/// One metric's value with its name, help and labels, as the role last published it.
#[derive(Debug, Clone)]
pub enum Sample {
    Counter {
        name: &'static str,
        help: &'static str,
        value: u64,
    },
    Gauge {
        name: &'static str,
        help: &'static str,
        /// `(labels, value)`; no labels: one series.
        series: Vec<(Vec<(String, String)>, f64)>,
    },
}

/// What a scrape shows: the role's last published samples.
pub type Snapshot = Arc<Mutex<Vec<Sample>>>;

/// Serves `GET /metrics` on `listen` from a thread of its own; returns the bound address (port 0
/// picks a free one).
pub fn serve(listen: SocketAddr, snapshot: Snapshot) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen for metrics on {listen}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the metrics listener")?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, "the metrics listener failed");
                        return;
                    }
                };
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let snapshot = snapshot.clone();
                        async move { scrape(&snapshot) }
                    }),
                );
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            });
        })
        .context("cannot start the metrics thread")?;
    Ok(bound)
}

fn scrape(snapshot: &Snapshot) -> axum::response::Response {
    use axum::response::IntoResponse;
    let samples = snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut text = String::new();
    if encode(&mut text, &registry(&samples)).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn registry(samples: &[Sample]) -> Registry {
    let mut registry = Registry::default();
    for sample in samples {
        match sample {
            Sample::Counter { name, help, value } => {
                let counter: Counter = Counter::default();
                counter.inc_by(*value);
                registry.register(*name, *help, counter);
            }
            Sample::Gauge { name, help, series } if series.len() == 1 && series[0].0.is_empty() => {
                registry.register(*name, *help, encoded::gauge(series[0].1));
            }
            Sample::Gauge { name, help, series } => {
                registry.register(*name, *help, encoded::gauges(series.iter().cloned()));
            }
        }
    }
    registry
}

/// Seconds since the Unix epoch, now.
pub fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A gauge of one series.
pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Sample {
    Sample::Gauge {
        name,
        help,
        series: vec![(Vec::new(), value)],
    }
}

/// A counter.
pub fn counter(name: &'static str, help: &'static str, value: u64) -> Sample {
    Sample::Counter { name, help, value }
}
