//! `/metrics` in the Prometheus text format: requests by route and status, queue depth,
//! admission rate, verification wait per method, decision latency. Counters live here; gauges
//! are read from the view and the providers when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the decision latency histogram.
pub const DECISION_BUCKETS_S: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; DECISION_BUCKETS_S.len()],
    sum_s: f64,
    total: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Error answers by their stable code (a closed set: the codes are `&'static str`).
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    decisions: Mutex<Histogram>,
    /// Smoothed decision latency (ms), for the admission controller.
    decision_ewma_ms: Mutex<Option<f64>>,
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
        if let Ok(mut h) = self.decisions.lock() {
            for (i, bound) in DECISION_BUCKETS_S.iter().enumerate() {
                if s <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum_s += s;
            h.total += 1;
        }
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

    /// The counters and histogram as Prometheus text, after `gauges` (already rendered).
    pub fn render(&self, gauges: &str) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP yeyak_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE yeyak_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "yeyak_http_requests_total{{method=\"{method}\",route=\"{}\",code=\"{status}\"}} {n}",
                    route.replace('"', "'")
                );
            }
        }
        out.push_str("# HELP yeyak_http_refusals_total Error answers, by their stable code.\n");
        out.push_str("# TYPE yeyak_http_refusals_total counter\n");
        for (code, n) in self.refusals() {
            let _ = writeln!(out, "yeyak_http_refusals_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP yeyak_decision_seconds Time from a command's submission to its whole decision.\n");
        out.push_str("# TYPE yeyak_decision_seconds histogram\n");
        if let Ok(h) = self.decisions.lock() {
            for (i, bound) in DECISION_BUCKETS_S.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "yeyak_decision_seconds_bucket{{le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "yeyak_decision_seconds_bucket{{le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(out, "yeyak_decision_seconds_sum {}", h.sum_s);
            let _ = writeln!(out, "yeyak_decision_seconds_count {}", h.total);
        }
        out.push_str(gauges);
        out
    }
}
