//! The gateway's state: configuration, the backend (the ledger and this gateway's view of it),
//! the clock, the token key, the identity providers and what this process measures; and the
//! one way a request has a command decided ([`Front::decide`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLockReadGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;
use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{Command, CommandBody, DeviceId, Method, SubjectId, TicketNo, TimestampMs};
use yeyak_identity::Pseudonymiser;

use super::error::Unexpected;
use crate::FrontConfig;
use crate::backend::Backend;
use crate::client_rate::ClientBuckets;
use crate::clock::Clock;
use crate::congestion::Thresholds;
use crate::metrics::Metrics;
use crate::providers::{IdentityProvider, SimulatedProvider};
use crate::samples::Samples;
use crate::tokens::TokenKey;
use crate::view::FrontView;

/// The gateway: configuration, the backend, and what this process measures.
pub struct Front {
    pub config: FrontConfig,
    pub backend: Backend,
    pub clock: Clock,
    pub keys: TokenKey,
    pub pseudonymiser: Pseudonymiser,
    pub providers: BTreeMap<Method, Arc<dyn IdentityProvider>>,
    pub metrics: Metrics,
    /// Last sign of life of each waiting ticket's owner (this process's polls).
    pub heartbeats: Mutex<HashMap<TicketNo, Instant>>,
    /// The outflow rate the controller currently uses (tickets/s).
    pub admit_rate: Mutex<f64>,
    /// The rate the controller achieved while people were waiting (tickets/s: admissions and
    /// the budget earned towards the next ones, smoothed over a few seconds; `None` before the
    /// queue first had anyone in it): below `admit_rate` when something held admissions back
    /// (the cap on live admissions).
    pub admitted_while_waiting: Mutex<Option<f64>>,
    /// Admissions the controller has earned and not granted (its budget, a fraction of one
    /// included: at most a second's worth and the admission being earned, saved up while
    /// nobody was waiting).
    pub admit_budget: Mutex<f64>,
    /// Requests being answered (bounded by `config.http.requests_in_flight_max`).
    pub in_flight: tokio::sync::Semaphore,
    /// Verifications per client address, where `config.http.verify_per_client` asks for it.
    pub verify_clients: Option<ClientBuckets>,
    /// Open event streams of the waiting room (bounded by `config.http.event_streams_max`).
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// Set once the server stops: event streams end at once instead of holding the stop up.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The operator page's graph: a minute's queue and admissions, for the last hour.
    pub samples: Mutex<Samples>,
}

pub type AppState = Arc<Front>;

impl Front {
    pub fn new(
        config: FrontConfig,
        backend: Backend,
        keys: TokenKey,
        pseudonymiser: Pseudonymiser,
    ) -> Front {
        let seed = Uuid::now_v7().as_u128() as u64;
        let providers = config
            .providers
            .iter()
            .map(|(m, c)| {
                let provider = SimulatedProvider::new(*m, c.clone(), seed);
                (*m, Arc::new(provider) as Arc<dyn IdentityProvider>)
            })
            .collect();
        let rate = config.admit_per_s;
        let in_flight = tokio::sync::Semaphore::new(config.http.requests_in_flight_max);
        let verify_clients = config.http.verify_per_client.map(ClientBuckets::new);
        let event_streams = Arc::new(tokio::sync::Semaphore::new(config.http.event_streams_max));
        // Nothing a live token can ask for is forgotten: a session starts at a verification,
        // and an admission granted at its last moment outlives it by the admission's length.
        backend
            .view()
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain_for(config.session_ttl_ms + config.admission_ttl_ms);
        Front {
            config,
            backend,
            clock: Clock::default(),
            keys,
            pseudonymiser,
            providers,
            metrics: Metrics::default(),
            heartbeats: Mutex::new(HashMap::new()),
            admit_rate: Mutex::new(rate),
            admitted_while_waiting: Mutex::new(None),
            admit_budget: Mutex::new(0.0),
            in_flight,
            verify_clients,
            event_streams,
            stopping: tokio::sync::watch::channel(false).0,
            samples: Mutex::new(Samples::default()),
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            yellow_wait_ms: self.config.yellow_wait_ms,
            red_wait_ms: self.config.red_wait_ms,
            grey_failure_ratio: self.config.grey_failure_ratio,
        }
    }

    /// Decides one command on the backend (off the async threads) and measures the decision.
    pub async fn decide(&self, body: CommandBody) -> Result<Outcome, Unexpected> {
        self.decide_within(body, self.config.decision_timeout).await
    }

    /// [`Front::decide`], waiting at most `timeout` for the decision.
    pub async fn decide_within(
        &self,
        body: CommandBody,
        timeout: Duration,
    ) -> Result<Outcome, Unexpected> {
        self.decide_as(Uuid::now_v7(), body, timeout).await
    }

    /// A person's request that the client named with an `Idempotency-Key`: the command id is
    /// derived from the command's kind, the person, the device and the key, so a retry of a
    /// request whose answer was lost (a 503, a gateway gone) is the same command, and the
    /// ledger answers it with the first decision (within its memory of answered commands, 10
    /// minutes) instead of deciding it again. The same key from another device is another
    /// command, decided by the rules (the device lock). Without a key, a fresh command.
    pub async fn decide_once(
        &self,
        key: Option<&str>,
        person: &SubjectId,
        device: &DeviceId,
        body: CommandBody,
    ) -> Result<Outcome, Unexpected> {
        let command_id = match key {
            Some(key) => command_id_from(&format!(
                "idempotency-key/{}/{}/{}/{key}",
                body.name(),
                person.to_hex(),
                device.as_str()
            )),
            None => Uuid::now_v7(),
        };
        self.decide_as(command_id, body, self.config.decision_timeout)
            .await
    }

    async fn decide_as(
        &self,
        command_id: Uuid,
        body: CommandBody,
        timeout: Duration,
    ) -> Result<Outcome, Unexpected> {
        let command = Command {
            command_id,
            at_ms: self.clock.now_ms(),
            body,
        };
        let backend = self.backend.clone();
        let started = Instant::now();
        let result = backend.decide(command, timeout).await;
        self.metrics.decision(started.elapsed());
        result
            .map_err(|_| Unexpected::Cancelled)?
            .map_err(Unexpected::from)
    }

    /// The gateway's view of the ledger, for reading.
    pub fn view(&self) -> Result<RwLockReadGuard<'_, FrontView>, Unexpected> {
        self.backend
            .view()
            .read()
            .map_err(|_| Unexpected::ViewUnavailable)
    }

    /// The ticket's owner is still there (a poll of theirs reached this gateway).
    pub fn heartbeat(&self, ticket: TicketNo) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.insert(ticket, Instant::now());
        }
    }

    /// Whether arrivals now wait in the pre-queue for the draw at opening.
    pub fn pre_queue_open(&self, now_ms: TimestampMs) -> bool {
        self.config.pre_queue_draw && self.config.opens_at_ms.is_some_and(|o| now_ms < o)
    }
}
