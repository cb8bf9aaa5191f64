//! A Kafka client that knows no broker any more asks the bootstrap servers again.
//!
//! librdkafka 2.12 forgets every broker a metadata response does not list. A lone KRaft node
//! that was stalled for longer than its broker session (SIGSTOP, a paused VM, a long GC) fences
//! itself for a moment after it resumes, and a metadata response from that moment lists no
//! broker at all. The client is then left with no broker: it skips every metadata refresh
//! ("no usable brokers"), and neither of its own re-bootstrap triggers fires (every known
//! broker down: none is known; no metadata for `metadata.recovery.rebootstrap.trigger.ms`:
//! counted from a refresh request it never sends). Every send times out and every fetch stops,
//! for good; the chaos suite's broker-stall scenario found it in the gateway's producer.
//!
//! [`BrokerRecovery`] reads the client's statistics (every [`STATISTICS_INTERVAL_MS`]) and,
//! when no learned or configured broker is left, adds the bootstrap servers back
//! (`rd_kafka_brokers_add`), which is what a re-bootstrap does. [`Recovering`] is the context
//! of a client that needs no other callback.
//!
//! Only for clients polled all the time (a producer's polling thread, a consumer's loop):
//! statistics are delivered by polling, and a client polled now and then would queue a report
//! every interval until its next poll.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::Client;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafka;
use rdkafka::{ClientContext, Statistics};
use serde::Deserialize;

/// How often a recovering client reports its statistics (and so how soon a lost cluster is
/// asked again).
pub const STATISTICS_INTERVAL_MS: u64 = 2000;

/// Sets the statistics interval a [`BrokerRecovery`] needs, unless the client reports more often.
pub fn with_statistics(config: &mut ClientConfig) -> &mut ClientConfig {
    let interval = config
        .get("statistics.interval.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0 && ms <= STATISTICS_INTERVAL_MS);
    if interval.is_none() {
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
    }
    config
}

/// Watches one client's brokers; see the module's documentation.
pub struct BrokerRecovery {
    bootstrap: CString,
    client: AtomicPtr<RDKafka>,
    recoveries: AtomicU64,
    /// When the bootstrap servers were last added back: statistics that queued up while the
    /// client was stuck arrive together, and one addition is enough for them.
    last: Mutex<Option<Instant>>,
}

impl BrokerRecovery {
    pub fn new(bootstrap: &str) -> BrokerRecovery {
        // A bootstrap list with a NUL byte cannot have connected in the first place.
        let bootstrap = CString::new(bootstrap.replace('\0', "")).unwrap_or_default();
        BrokerRecovery {
            bootstrap,
            client: AtomicPtr::new(std::ptr::null_mut()),
            recoveries: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// The client this recovery adds brokers to: call it right after creating the client.
    /// Statistics that arrive before are only looked at.
    pub fn attach<C: ClientContext>(&self, client: &Client<C>) {
        self.client.store(client.native_ptr(), Ordering::Release);
    }

    /// How many times the bootstrap servers were added back.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    /// Looks at parsed statistics.
    pub fn observe(&self, statistics: &Statistics) {
        let known = statistics
            .brokers
            .values()
            .any(|broker| knows(&broker.source));
        if !known {
            self.recover();
        }
    }

    /// Looks at the statistics' JSON (only its brokers are read).
    pub fn observe_raw(&self, json: &[u8]) {
        #[derive(Deserialize)]
        struct Source {
            source: String,
        }
        #[derive(Deserialize)]
        struct Brokers {
            #[serde(default)]
            brokers: HashMap<String, Source>,
        }
        match serde_json::from_slice::<Brokers>(json) {
            Ok(stats) if !stats.brokers.values().any(|b| knows(&b.source)) => self.recover(),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "unreadable client statistics"),
        }
    }

    fn recover(&self) {
        let client = self.client.load(Ordering::Acquire);
        if client.is_null() || self.bootstrap.as_bytes().is_empty() {
            return;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let interval = Duration::from_millis(STATISTICS_INTERVAL_MS);
            if last.is_some_and(|at| at.elapsed() < interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        // SAFETY: the pointer is the live client whose statistics callback is running (the
        // context, and so this value, is owned by that client and dropped with it), and
        // rd_kafka_brokers_add is thread-safe.
        let added =
            unsafe { rdkafka::bindings::rd_kafka_brokers_add(client, self.bootstrap.as_ptr()) };
        let recoveries = self.recoveries.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            added,
            recoveries,
            "the Kafka client knew no broker any more (a metadata response listed none): \
             the bootstrap servers are asked again"
        );
    }
}

/// Whether a broker of the statistics is a real one (not librdkafka's internal broker or a
/// logical coordinator handle).
fn knows(source: &str) -> bool {
    matches!(source, "learned" | "configured")
}

/// The context of a client that only needs [`BrokerRecovery`] (shared, so that a wrapped
/// context, such as a `FutureProducer`'s, can still be attached).
pub struct Recovering(pub Arc<BrokerRecovery>);

impl Recovering {
    pub fn new(bootstrap: &str) -> Recovering {
        Recovering(Arc::new(BrokerRecovery::new(bootstrap)))
    }
}

impl ClientContext for Recovering {
    fn stats_raw(&self, statistics: &[u8]) {
        self.0.observe_raw(statistics);
    }
}

impl ConsumerContext for Recovering {}

impl ProducerContext for Recovering {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOST: &str = r#"{"brokers": {":0/internal": {"source": "internal", "state": "UP"}}}"#;
    const KNOWN: &str = r#"{"brokers": {":0/internal": {"source": "internal"},
        "127.0.0.1:9092/1": {"source": "learned"}, "GroupCoordinator": {"source": "logical"}}}"#;

    #[test]
    fn a_client_with_only_its_internal_broker_asks_the_bootstrap_servers_again() {
        use rdkafka::producer::{BaseProducer, Producer};
        let client: BaseProducer<Recovering> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create_with_context(Recovering::new("127.0.0.1:1"))
            .expect("client");
        let recovery = &client.context().0;
        recovery.attach(client.client());
        recovery.observe_raw(KNOWN.as_bytes());
        assert_eq!(recovery.recoveries(), 0);
        recovery.observe_raw(LOST.as_bytes());
        assert_eq!(recovery.recoveries(), 1);
        // Statistics that queued up arrive together: one addition is enough.
        recovery.observe_raw(LOST.as_bytes());
        assert_eq!(recovery.recoveries(), 1);
    }

    #[test]
    fn nothing_is_added_before_the_client_is_attached() {
        let recovery = BrokerRecovery::new("127.0.0.1:1");
        recovery.observe_raw(LOST.as_bytes());
        assert_eq!(recovery.recoveries(), 0);
    }

    #[test]
    fn the_statistics_interval_is_kept_when_shorter() {
        let mut config = ClientConfig::new();
        with_statistics(&mut config);
        assert_eq!(config.get("statistics.interval.ms"), Some("2000"));
        config.set("statistics.interval.ms", "500");
        with_statistics(&mut config);
        assert_eq!(config.get("statistics.interval.ms"), Some("500"));
    }
}
