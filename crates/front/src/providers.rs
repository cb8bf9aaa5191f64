//! Identity providers: one trait, and a simulated adapter per verification method. Real
//! providers (mobile carriers, i-PIN, certificate authorities, Kakao, Naver, PASS) cannot be
//! reached from here, so each method is simulated with a configurable latency distribution,
//! throughput capacity (verifications in progress at once), failure rate and an outage switch.
//! Every verification is measured; the congestion light is computed from these measurements.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use yeyak_domain::Method;

/// How many recent outcomes the failure ratio is computed over.
pub const OUTCOMES_WINDOW: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Latency of one verification: uniform between these bounds.
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Verifications in progress at once; more wait their turn.
    pub capacity: u32,
    /// Probability that a verification fails at the provider.
    pub failure_rate: f64,
    /// Starts switched off (grey) when true.
    pub outage: bool,
    /// Longest wait for a free place at the provider before giving up.
    pub queue_timeout_ms: u64,
}

impl ProviderConfig {
    /// A provider that answers at once and never fails (tests, load measurements).
    pub fn instant() -> ProviderConfig {
        ProviderConfig {
            latency_min_ms: 0,
            latency_max_ms: 0,
            capacity: 10_000,
            failure_rate: 0.0,
            outage: false,
            queue_timeout_ms: 10_000,
        }
    }
}

/// The defaults of `yeyak serve`: phone verification (an SMS round trip) slowest, the
/// certificates in between, the simple-auth apps (Kakao, Naver, PASS) fastest, as in the seed.
pub fn default_providers() -> Vec<(Method, ProviderConfig)> {
    let p = |min, max, capacity| ProviderConfig {
        latency_min_ms: min,
        latency_max_ms: max,
        capacity,
        failure_rate: 0.0,
        outage: false,
        queue_timeout_ms: 15_000,
    };
    vec![
        (Method::Phone, p(1_200, 3_000, 200)),
        (Method::Ipin, p(800, 2_000, 100)),
        (Method::JointCertificate, p(600, 1_500, 200)),
        (Method::FinancialCertificate, p(600, 1_500, 200)),
        (Method::Kakao, p(150, 400, 1_000)),
        (Method::Naver, p(150, 400, 1_000)),
        (Method::Pass, p(200, 500, 1_000)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider of this method is unavailable")]
    Outage,
    #[error("the provider of this method is congested; no place freed in time")]
    Congested,
    #[error("the provider could not complete the verification")]
    Failed,
}

/// What one verification cost the person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verified {
    pub wait_ms: f64,
}

/// A live measurement of one provider, for the congestion light and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub outage: bool,
    /// Smoothed time a verification takes, waiting included (ms); 0 before the first.
    pub wait_ms: f64,
    pub in_flight: u32,
    pub capacity: u32,
    /// Failed (or gave up) among the last [`OUTCOMES_WINDOW`] verifications.
    pub failure_ratio: f64,
    pub verifications_total: u64,
    /// The provider's nominal latency (ms): what is expected before anything was measured.
    pub nominal_wait_ms: f64,
}

pub type VerifyFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Verified, ProviderError>> + Send + 'a>>;

/// An identity provider of one method.
pub trait IdentityProvider: Send + Sync {
    fn method(&self) -> Method;
    /// Runs one verification of the person in front of the provider.
    fn verify(&self) -> VerifyFuture<'_>;
    fn health(&self) -> Health;
    fn set_outage(&self, outage: bool);
}

/// Puts each provider in the state the operators last switched it to in the log
/// (`FrontView::provider_outages`): a switch made on another gateway, or before this one
/// started, takes effect here too. Providers nobody switched keep their state.
pub fn follow_switches(
    providers: &BTreeMap<Method, Arc<dyn IdentityProvider>>,
    switched: &BTreeMap<Method, bool>,
) {
    for (method, outage) in switched {
        if let Some(provider) = providers.get(method)
            && provider.health().outage != *outage
        {
            provider.set_outage(*outage);
        }
    }
}

/// A deterministic, lock-free random source for the simulation (SplitMix64).
#[derive(Debug)]
pub struct SimRandom(AtomicU64);

impl SimRandom {
    pub fn new(seed: u64) -> SimRandom {
        SimRandom(AtomicU64::new(seed))
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Default)]
struct Measured {
    wait_ms: f64,
    outcomes: std::collections::VecDeque<bool>,
    total: u64,
}

/// A simulated provider.
pub struct SimulatedProvider {
    method: Method,
    config: ProviderConfig,
    places: Semaphore,
    outage: AtomicBool,
    random: SimRandom,
    measured: Mutex<Measured>,
}

impl SimulatedProvider {
    pub fn new(method: Method, config: ProviderConfig, seed: u64) -> SimulatedProvider {
        SimulatedProvider {
            method,
            places: Semaphore::new(config.capacity.max(1) as usize),
            outage: AtomicBool::new(config.outage),
            random: SimRandom::new(seed ^ (method as u64).wrapping_mul(0x1234_5678_9ABC_DEF1)),
            measured: Mutex::new(Measured::default()),
            config,
        }
    }

    fn record(&self, ok: bool, wait_ms: Option<f64>) {
        let Ok(mut m) = self.measured.lock() else {
            return;
        };
        if let Some(wait) = wait_ms {
            // Exponentially weighted: recent verifications count most.
            m.wait_ms = if m.total == 0 {
                wait
            } else {
                m.wait_ms * 0.8 + wait * 0.2
            };
        }
        m.outcomes.push_back(ok);
        if m.outcomes.len() > OUTCOMES_WINDOW {
            m.outcomes.pop_front();
        }
        m.total += 1;
    }

    async fn run(&self) -> Result<Verified, ProviderError> {
        if self.outage.load(Ordering::Relaxed) {
            return Err(ProviderError::Outage);
        }
        let started = Instant::now();
        let place = tokio::time::timeout(
            Duration::from_millis(self.config.queue_timeout_ms),
            self.places.acquire(),
        )
        .await;
        let Ok(Ok(_place)) = place else {
            self.record(false, Some(started.elapsed().as_secs_f64() * 1000.0));
            return Err(ProviderError::Congested);
        };
        let span = self
            .config
            .latency_max_ms
            .saturating_sub(self.config.latency_min_ms);
        let latency =
            self.config.latency_min_ms + (self.random.unit() * (span as f64 + 1.0)) as u64;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(
                latency.min(span + self.config.latency_min_ms),
            ))
            .await;
        }
        let wait_ms = started.elapsed().as_secs_f64() * 1000.0;
        if self.random.unit() < self.config.failure_rate {
            self.record(false, Some(wait_ms));
            return Err(ProviderError::Failed);
        }
        self.record(true, Some(wait_ms));
        Ok(Verified { wait_ms })
    }
}

impl IdentityProvider for SimulatedProvider {
    fn method(&self) -> Method {
        self.method
    }

    fn verify(&self) -> VerifyFuture<'_> {
        Box::pin(self.run())
    }

    fn health(&self) -> Health {
        let capacity = self.config.capacity.max(1);
        let in_flight = capacity - (self.places.available_permits() as u32).min(capacity);
        let (wait_ms, failure_ratio, total) = match self.measured.lock() {
            Ok(m) => {
                let failed = m.outcomes.iter().filter(|ok| !**ok).count();
                let ratio = if m.outcomes.is_empty() {
                    0.0
                } else {
                    failed as f64 / m.outcomes.len() as f64
                };
                (m.wait_ms, ratio, m.total)
            }
            Err(_) => (0.0, 1.0, 0),
        };
        Health {
            outage: self.outage.load(Ordering::Relaxed),
            wait_ms,
            in_flight,
            capacity,
            failure_ratio,
            verifications_total: total,
            nominal_wait_ms: (self.config.latency_min_ms + self.config.latency_max_ms) as f64 / 2.0,
        }
    }

    fn set_outage(&self, outage: bool) {
        self.outage.store(outage, Ordering::Relaxed);
    }
}
