//! What the gateway shows about itself: the operator page's figures (`/admin/status`: queue
//! depth, admission rates, live admissions, the lights, the fill per clinic and booking day, the
//! ledger's health),
//! the congestion light per verification method (`/v1/congestion`), and the Prometheus text
//! (`/metrics`).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use yeyak_domain::{Method, TimestampMs};
use yeyak_ledger::submit::LedgerHealth;

use super::admin::AdminError;
use super::error::Unexpected;
use super::gateway::Front;
use super::{AppState, fill, ok};
use crate::clock::rfc3339;
use crate::congestion::{self, Level};
use crate::providers::Health;

/// The operator page's data: queue depth, admission rate, lights, fill per booking day and clinic.
pub fn status_body(front: &Front) -> Result<Value, Unexpected> {
    let now = front.clock.now_ms();
    let view = front.view()?;
    let fill = fill::per_clinic(&view.model);
    let booking_days = fill::per_booking_day(&view.model, front.backend.campaign(), now);
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
        "fill": fill,
        "booking_days": booking_days,
        "ledger": ledger_body(&front.backend.health(), now),
    }))
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

/// One metric family of the Prometheus text format: its name, type and help.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const QUEUE_DEPTH: Family = Family {
    name: "yeyak_queue_depth",
    kind: "gauge",
    help: "Tickets waiting in the waiting room.",
};
const PRE_QUEUE_DEPTH: Family = Family {
    name: "yeyak_pre_queue_depth",
    kind: "gauge",
    help: "People waiting for the opening draw.",
};
const ADMISSION_RATE: Family = Family {
    name: "yeyak_admission_rate",
    kind: "gauge",
    help: "Admissions per second, measured over the last minute.",
};
const ADMITTED_TOTAL: Family = Family {
    name: "yeyak_admitted_total",
    kind: "counter",
    help: "Tickets admitted.",
};
const VERIFICATION_WAIT: Family = Family {
    name: "yeyak_verification_wait_seconds",
    kind: "gauge",
    help: "Measured verification wait per method.",
};
const CONGESTION_LEVEL: Family = Family {
    name: "yeyak_congestion_level",
    kind: "gauge",
    help: "Light per method: 0 green, 1 yellow, 2 red, 3 grey.",
};

impl Family {
    /// Help, type, then one line per sample (`labels` already in braces, or empty).
    fn write(&self, out: &mut String, samples: &[(String, String)]) {
        let Family { name, kind, help } = self;
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    }

    fn write_one(&self, out: &mut String, value: impl ToString) {
        self.write(out, &[(String::new(), value.to_string())]);
    }
}

/// The waiting room's gauges, from the view (left out while it cannot be read).
fn queue_gauges(front: &Front, out: &mut String) {
    let now = front.clock.now_ms();
    let Ok(view) = front.view() else {
        return;
    };
    QUEUE_DEPTH.write_one(out, view.waiting.len());
    PRE_QUEUE_DEPTH.write_one(out, view.pre_queue.len());
    ADMISSION_RATE.write_one(out, view.admission_rate(now).unwrap_or(0.0));
    ADMITTED_TOTAL.write_one(out, view.admitted_total);
}

/// The verification wait and the light of every method.
fn method_gauges(front: &Front, out: &mut String) {
    let t = front.thresholds();
    let per_method = |value: &dyn Fn(&Health) -> String| -> Vec<(String, String)> {
        let labels = |m: &Method| format!("{{method=\"{}\"}}", m.as_str());
        front
            .providers
            .iter()
            .map(|(m, p)| (labels(m), value(&p.health())))
            .collect()
    };
    VERIFICATION_WAIT.write(out, &per_method(&|h| (h.wait_ms / 1000.0).to_string()));
    let level = |h: &Health| (congestion::level(h, &t) as u8).to_string();
    CONGESTION_LEVEL.write(out, &per_method(&level));
}

/// `GET /metrics`: the counters of this process, then the gauges read now.
pub async fn metrics(State(front): State<AppState>) -> Response {
    let mut gauges = String::new();
    queue_gauges(&front, &mut gauges);
    method_gauges(&front, &mut gauges);
    let body = front.metrics.render(&gauges);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
