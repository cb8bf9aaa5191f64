//! The front tier: identity verification through (simulated) providers, signed session and
//! admission tokens, the congestion light, the admission controller of the waiting room, and
//! the HTTP API with the web page. It scales out separately from the ledger tier: every rule
//! that must hold across gateway processes (the 10-minute rules, one live ticket, single-use
//! admissions, the order of the queue) is decided by the ledger through commands; a gateway
//! keeps only what it can lose (measurements, heartbeats, a read model it can rebuild).
//!
//! Not here: the rules themselves (`yeyak_domain`), the runtimes that decide them
//! (`yeyak_ledger`, `yeyak_ledger::pipeline`).

pub mod api;
pub mod backend;
pub mod client_rate;
pub mod clock;
pub mod congestion;
pub mod controller;
pub mod metrics;
pub mod openapi;
pub mod providers;
pub mod samples;
pub mod server;
pub mod tokens;
pub mod view;
pub mod web;

use std::time::Duration;

use providers::ProviderConfig;
use yeyak_domain::{GatewayId, Method, TimestampMs};

/// Everything the front tier can be configured with. `Default` is what `yeyak serve` starts
/// with; the command line overrides parts of it.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// How long a session token is valid.
    pub session_ttl_ms: i64,
    /// How long an admission is valid once granted (its token expires with it).
    pub admission_ttl_ms: i64,
    /// Tickets admitted per second at most (what the ledger tier can take).
    pub admit_per_s: f64,
    /// Admissions granted and not yet used or expired, at most: an unused admission that
    /// expires frees its place for the next ticket.
    pub admitted_live_max: u32,
    /// The controller's period.
    pub controller_tick_ms: u64,
    /// A waiting ticket with no heartbeat (a poll of its owner) for this long is skipped.
    pub heartbeat_timeout_ms: u64,
    /// When the waiting room opens; arrivals before it wait in the pre-queue.
    pub opens_at_ms: Option<TimestampMs>,
    /// Order the pre-queue by a seeded draw at opening (`false`: first come, first served;
    /// early arrivals then get tickets at once and simply wait for the opening).
    pub pre_queue_draw: bool,
    /// Decision latency the controller aims at: above it, the outflow rate is scaled down.
    pub target_decision_ms: f64,
    /// How long a request waits for the ledger's decision before it answers 503.
    pub decision_timeout: Duration,
    /// Congestion light thresholds on the measured verification wait.
    pub yellow_wait_ms: f64,
    pub red_wait_ms: f64,
    /// A method whose recent failure ratio is above this is grey.
    pub grey_failure_ratio: f64,
    /// The simulated identity providers, one per method.
    pub providers: Vec<(Method, ProviderConfig)>,
    /// Largest accepted request body.
    pub body_bytes_max: usize,
    /// The HTTP server's bounds on connections, heads, bodies and requests in flight.
    pub http: server::HttpLimits,
    /// Admin endpoints are off without a token.
    pub admin_token: Option<api::auth::AdminToken>,
    /// The clock was set on purpose (`--clock`, a rehearsal): only then does
    /// `POST /admin/clock` exist. A server on real time answers it 404.
    pub simulated_clock: bool,
    /// The controller reports each method's congestion light to the ledger when it changes and
    /// at least this often (`CongestionReported`, the `congestion` read model); 0 = never.
    pub congestion_report_ms: u64,
    /// This gateway's name in its congestion reports.
    pub gateway: GatewayId,
}

/// A gateway name for this process: `gateway-<pid>`.
pub fn default_gateway() -> GatewayId {
    GatewayId::new(&format!("gateway-{}", std::process::id())).expect("a valid gateway id")
}

impl Default for FrontConfig {
    fn default() -> FrontConfig {
        FrontConfig {
            session_ttl_ms: 60 * 60_000,
            admission_ttl_ms: 10 * 60_000,
            admit_per_s: 500.0,
            admitted_live_max: 5_000,
            controller_tick_ms: 200,
            heartbeat_timeout_ms: 60_000,
            opens_at_ms: None,
            pre_queue_draw: true,
            target_decision_ms: 200.0,
            decision_timeout: Duration::from_secs(10),
            yellow_wait_ms: 1_500.0,
            red_wait_ms: 5_000.0,
            grey_failure_ratio: 0.5,
            providers: providers::default_providers(),
            body_bytes_max: 16 * 1024,
            http: server::HttpLimits::default(),
            admin_token: None,
            simulated_clock: false,
            congestion_report_ms: 10_000,
            gateway: default_gateway(),
        }
    }
}

impl FrontConfig {
    /// Fast providers and a fast controller, for tests and load measurements. No congestion
    /// reports (they would land in the log at wall-clock moments): a test turns them on.
    pub fn fast() -> FrontConfig {
        FrontConfig {
            congestion_report_ms: 0,
            controller_tick_ms: 20,
            admit_per_s: 5_000.0,
            providers: Method::ALL
                .iter()
                .map(|m| (*m, ProviderConfig::instant()))
                .collect(),
            ..FrontConfig::default()
        }
    }
}
