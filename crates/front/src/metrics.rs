//! `/metrics` in the OpenMetrics text format (prometheus-client's encoder, as the other roles'):
//! requests by route and status, error answers by code, decision latency, and the gauges read
//! from the view and the providers when scraped. Counters live here.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the decision latency histogram.
pub const DECISION_BUCKETS_S: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// A metric's labels, in the order they are shown.
pub type Labels = Vec<(String, String)>;

/// A gauge of floating-point values.
pub type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Error answers by their stable code (a closed set: the codes are `&'static str`).
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    decisions: Histogram,
    /// Smoothed decision latency (ms), for the admission controller.
    decision_ewma_ms: Mutex<Option<f64>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: Mutex::default(),
            refusals: Mutex::default(),
            decisions: Histogram::new(DECISION_BUCKETS_S),
            decision_ewma_ms: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
    }

    /// An answer with the error `code`.
    pub fn refusal(&self, code: &'static str) {
        if let Ok(mut r) = self.refusals.lock() {
            *r.entry(code).or_default() += 1;
        }
    }

    /// Error answers so far, by code, in code order.
    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        self.refusals
            .lock()
            .map(|r| r.iter().map(|(c, n)| (*c, *n)).collect())
            .unwrap_or_default()
    }

    pub fn decision(&self, took: Duration) {
        let s = took.as_secs_f64();
        self.decisions.observe(s);
        if let Ok(mut e) = self.decision_ewma_ms.lock() {
            let ms = s * 1000.0;
            *e = Some(e.map_or(ms, |old| old * 0.9 + ms * 0.1));
        }
    }

    pub fn decision_ewma_ms(&self) -> Option<f64> {
        self.decision_ewma_ms.lock().ok().and_then(|e| *e)
    }

    /// Requests answered so far, by status (for the load generator's report and tests).
    pub fn requests_total(&self) -> u64 {
        self.requests.lock().map(|r| r.values().sum()).unwrap_or(0)
    }

    /// The counters and the histogram, then what `gauges` registers (read now), encoded.
    pub fn render(&self, gauges: impl FnOnce(&mut Registry)) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let labels = vec![
                    ("method".to_owned(), method.clone()),
                    ("route".to_owned(), route.clone()),
                    ("code".to_owned(), status.to_string()),
                ];
                requests.get_or_create(&labels).inc_by(*n);
            }
        }
        registry.register(
            "yeyak_http_requests",
            "HTTP requests answered, by route and status",
            requests,
        );
        let refusals = Family::<Labels, Counter>::default();
        for (code, n) in self.refusals() {
            let labels = vec![("code".to_owned(), code.to_owned())];
            refusals.get_or_create(&labels).inc_by(n);
        }
        registry.register(
            "yeyak_http_refusals",
            "Error answers, by their stable code",
            refusals,
        );
        registry.register(
            "yeyak_decision_seconds",
            "Time from a command's submission to its whole decision",
            self.decisions.clone(),
        );
        gauges(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// A gauge of one series, for [`Metrics::render`]'s `gauges`.
pub fn gauge(value: f64) -> FloatGauge {
    let gauge = FloatGauge::default();
    gauge.set(value);
    gauge
}

/// A gauge of one series per label set.
pub fn gauges(series: impl IntoIterator<Item = (Labels, f64)>) -> Family<Labels, FloatGauge> {
    let family = Family::<Labels, FloatGauge>::default();
    for (labels, value) in series {
        family.get_or_create(&labels).set(value);
    }
    family
}
