//! What the gateway shows about itself: the operator page's figures (`/admin/status`: queue
//! depth, admission rates, live admissions, the lights, the fill per clinic and booking day, the
//! ledger's health),
//! the congestion light per verification method (`/v1/congestion`), and the Prometheus text
//! (`/metrics`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use yeyak_domain::{Method, TimestampMs};
use yeyak_ledger::submit::LedgerHealth;
use yeyak_read::projection::ReadModel;

use super::admin::{AdminError, admissions_body};
use super::error::Unexpected;
use super::gateway::Front;
use super::{AppState, fill, ok};
use crate::clock::rfc3339;
use crate::congestion::{self, Level};
use crate::metrics::{gauge, gauges};
use crate::providers::Health;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// The operator page's data: queue depth, admission rate, lights, fill per booking day and clinic.
pub fn status_body(front: &Front) -> Result<Value, Unexpected> {
    let now = front.clock.now_ms();
    let view = front.view()?;
    let fill = fill::per_clinic(&view.model);
    let campaign = front.backend.campaign();
    let booking_days = fill::per_booking_day(&view.model, campaign, now);
    let today = fill::today(&view.model, campaign, now);
    let control = view.admission_control.as_ref().map(|(c, at)| (c, *at));
    let rate = *front
        .admit_rate
        .lock()
        .map_err(|_| Unexpected::ViewUnavailable)?;
    let draws: Vec<Value> = view
        .draws
        .iter()
        .map(|d| json!({"seed": d.seed, "drawn": d.drawn, "at": rfc3339(d.at_ms)}))
        .collect();
    Ok(json!({
        "now": rfc3339(now),
        "backend": front.backend.name(),
        "queue_depth": view.waiting.len(),
        "pre_queue": view.pre_queue.len(),
        "admitted_total": view.admitted_total,
        "admitted_live": view.admitted_live(now),
        "admitted_live_max": front.config.admitted_live_max,
        "admission_rate_per_s": view.admission_rate(now).unwrap_or(0.0),
        "outflow_rate_per_s": rate,
        "admit_per_s": front.config.admit_per_s,
        "opens_at": front.config.opens_at_ms.map(rfc3339),
        "draws": draws,
        "lights": congestion_list(front),
        "providers": providers_body(front),
        "fill": fill,
        "booking_days": booking_days,
        "today": today,
        "refusals": refusals_body(front, &view.model),
        "admissions": admissions_body(front, control),
        "samples": samples_body(front, now),
        "ledger": ledger_body(&front.backend.health(), now),
    }))
}

/// Refusals by code, two ways: `answered`, the error answers of this gateway since it started
/// (its metrics: everything a caller was told, the gateway's own early refusals included, e.g.
/// `not_your_booking_day` before the queue), and `recorded`, the ledger's refusals of the
/// people's commands in the log (the read model's `rejections` of the person's answers:
/// `CommandRejected`, `BookingFailed`, `ChangeFailed`; not the clinic's `BookingRefused`, the
/// same refusal seen from the clinic), summed over the commands.
fn refusals_body(front: &Front, model: &ReadModel) -> Value {
    let answered: Vec<Value> = front
        .metrics
        .refusals()
        .into_iter()
        .map(|(code, count)| json!({"code": code, "count": count}))
        .collect();
    let mut recorded: BTreeMap<&'static str, i64> = BTreeMap::new();
    for ((source, _, code), count) in &model.rejections {
        if PERSON_SOURCES.contains(&source.as_str()) {
            *recorded.entry(code.as_str()).or_default() += count;
        }
    }
    let recorded: Vec<Value> = recorded
        .into_iter()
        .map(|(code, count)| json!({"code": code, "count": count}))
        .collect();
    json!({"answered": answered, "recorded": recorded})
}

/// The `rejections` sources that are a person's answer.
const PERSON_SOURCES: [&str; 3] = ["CommandRejected", "BookingFailed", "ChangeFailed"];

/// The graph's samples of the last hour, oldest first.
fn samples_body(front: &Front, now: TimestampMs) -> Vec<Value> {
    let Ok(samples) = front.samples.lock() else {
        return Vec::new();
    };
    samples
        .last_hour(now)
        .map(|s| {
            json!({
                "minute": rfc3339(s.minute_ms),
                "queue_depth": s.queue_depth,
                "queue_depth_max": s.queue_depth_max,
                "admitted": s.admitted,
            })
        })
        .collect()
}

/// The ledger's health: the requests waiting here for a decision, the newest decision seen, and
/// (on Kafka) the commands the processors have not decided yet, per partition.
fn ledger_body(health: &LedgerHealth, now: TimestampMs) -> Value {
    let (undecided, by_partition, measured_s_ago, unknown) = match &health.undecided {
        None => (None, Vec::new(), None, None),
        Some(Ok(report)) => {
            let waiting: Vec<Value> = report
                .partitions
                .iter()
                .filter(|(_, _, n)| *n > 0)
                .map(|(topic, p, n)| json!({"topic": topic, "partition": p, "undecided": n}))
                .collect();
            let age_s = report.measured_at.elapsed().as_secs();
            (Some(report.undecided()), waiting, Some(age_s), None)
        }
        Some(Err(why)) => (None, Vec::new(), None, Some(why.clone())),
    };
    json!({
        "decides_at_once": health.undecided.is_none(),
        "requests_waiting": health.requests_waiting,
        "last_decision_at": health.last_event_at_ms.map(rfc3339),
        "last_decision_age_s": health.last_event_at_ms.map(|at| (now - at).max(0) / 1000),
        "undecided": undecided,
        "undecided_by_partition": by_partition,
        "measured_s_ago": measured_s_ago,
        "unknown_because": unknown,
    })
}

/// Each method's provider and whether an operator marked it down (`POST /admin/providers`).
fn providers_body(front: &Front) -> Vec<Value> {
    front
        .providers
        .iter()
        .map(|(m, p)| json!({"method": m.as_str(), "outage": p.health().outage}))
        .collect()
}

/// `GET /admin/status`.
pub async fn admin_status(
    State(front): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    front.admin(&headers)?;
    Ok(ok(status_body(&front)?))
}

/// Every method's light, its expected wait, and whether it is the one to recommend: the
/// fastest that can be chosen at all.
pub fn congestion_list(front: &Front) -> Vec<Value> {
    let t = front.thresholds();
    let mut lights: Vec<(Method, Level, f64)> = front
        .providers
        .iter()
        .map(|(m, p)| {
            let h = p.health();
            let wait_s = congestion::expected_wait_ms(&h) / 1000.0;
            (*m, congestion::level(&h, &t), wait_s)
        })
        .collect();
    let best = lights
        .iter()
        .filter(|(_, l, _)| *l != Level::Grey)
        .min_by(|a, b| {
            (a.1, a.2)
                .partial_cmp(&(b.1, b.2))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(m, _, _)| *m);
    lights.sort_by_key(|(m, _, _)| *m);
    lights
        .into_iter()
        .map(|(m, level, wait_s)| {
            json!({
                "method": m.as_str(),
                "level": level.as_str(),
                "wait_s": (wait_s * 10.0).round() / 10.0,
                "recommended": Some(m) == best,
            })
        })
        .collect()
}

/// `GET /v1/congestion`.
pub async fn congestion(State(front): State<AppState>) -> Response {
    ok(Value::Array(congestion_list(&front)))
}

/// The waiting room's gauges, from the view (left out while it cannot be read).
fn queue_gauges(front: &Front, registry: &mut Registry) {
    let now = front.clock.now_ms();
    let Ok(view) = front.view() else {
        return;
    };
    registry.register(
        "yeyak_queue_depth",
        "Tickets waiting in the waiting room",
        gauge(view.waiting.len() as f64),
    );
    registry.register(
        "yeyak_pre_queue_depth",
        "People waiting for the opening draw",
        gauge(view.pre_queue.len() as f64),
    );
    registry.register(
        "yeyak_admission_rate",
        "Admissions per second, measured over the last minute",
        gauge(view.admission_rate(now).unwrap_or(0.0)),
    );
    let admitted = Counter::<u64>::default();
    admitted.inc_by(view.admitted_total);
    registry.register("yeyak_admitted", "Tickets admitted", admitted);
}

/// The verification wait and the light of every method.
fn method_gauges(front: &Front, registry: &mut Registry) {
    let t = front.thresholds();
    let per_method = |value: &dyn Fn(&Health) -> f64| {
        gauges(front.providers.iter().map(|(m, p)| {
            let labels = vec![("method".to_owned(), m.as_str().to_owned())];
            (labels, value(&p.health()))
        }))
    };
    registry.register(
        "yeyak_verification_wait_seconds",
        "Measured verification wait per method",
        per_method(&|h| h.wait_ms / 1000.0),
    );
    registry.register(
        "yeyak_congestion_level",
        "Light per method: 0 green, 1 yellow, 2 red, 3 grey",
        per_method(&|h| f64::from(congestion::level(h, &t) as u8)),
    );
}

/// `GET /metrics`: the counters of this process, then the gauges read now.
pub async fn metrics(State(front): State<AppState>) -> Response {
    let rendered = front.metrics.render(|registry| {
        queue_gauges(&front, registry);
        method_gauges(&front, registry);
    });
    let Ok(body) = rendered else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
