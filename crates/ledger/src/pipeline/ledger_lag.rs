//! What the operators' page shows of the ledger's health on Kafka: how many commands the
//! processors have not decided yet, per command partition (the end of the partition minus the
//! processors' group's committed offset), measured by the gateway every [`MEASURE_EVERY`] on a
//! thread of its own. The gateway reads the group's committed offsets; it never joins the group.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use yeyak_log::client_config;

use super::Topics;
use super::processor::ProcessorError;

/// How often the lag is measured.
pub const MEASURE_EVERY: Duration = Duration::from_secs(5);
/// How long one measurement may wait for the broker.
const BROKER_WAIT: Duration = Duration::from_secs(5);

/// The processors' consumer group of a deployment.
pub fn processors_group(topics: &Topics) -> String {
    format!("{}yeyak-ledger", topics.prefix)
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct LagReport {
    /// `(command topic, partition, commands not decided)`.
    pub partitions: Vec<(String, u32, i64)>,
    pub measured_at: Instant,
}

impl LagReport {
    pub fn undecided(&self) -> i64 {
        self.partitions.iter().map(|(_, _, lag)| lag).sum()
    }
}

/// The latest measurement (or why there is none), shared with the measuring thread, which
/// stops when this is dropped.
pub struct LedgerLag {
    latest: Arc<Mutex<Result<LagReport, String>>>,
}

impl LedgerLag {
    pub fn watch(bootstrap: &str, topics: &Topics) -> Result<LedgerLag, ProcessorError> {
        let consumer: BaseConsumer = client_config(bootstrap)
            .set("group.id", processors_group(topics))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|cause| ProcessorError::Client {
                role: "ledger lag reader",
                cause,
            })?;
        let latest = Arc::new(Mutex::new(Err("not measured yet".to_owned())));
        let shared = Arc::downgrade(&latest);
        let topics = topics.clone();
        let started = std::thread::Builder::new()
            .name("yeyak-ledger-lag".into())
            .spawn(move || measure_until_dropped(&consumer, &topics, &shared));
        if let Err(error) = started {
            *latest.lock().unwrap_or_else(|p| p.into_inner()) =
                Err(format!("no thread to measure it: {error}"));
        }
        Ok(LedgerLag { latest })
    }

    /// The latest measurement, or why there is none.
    pub fn latest(&self) -> Result<LagReport, String> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn measure_until_dropped(
    consumer: &BaseConsumer,
    topics: &Topics,
    latest: &Weak<Mutex<Result<LagReport, String>>>,
) {
    while let Some(shared) = latest.upgrade() {
        // Serves the client's queued events (errors, logs): it never subscribes, so nothing
        // else is ever returned.
        if let Some(Err(error)) = consumer.poll(Duration::ZERO) {
            tracing::debug!(%error, "the ledger lag reader's client");
        }
        let measured = measure(consumer, topics);
        if let Err(error) = &measured {
            tracing::debug!(%error, "the ledger's lag could not be measured");
        }
        *shared.lock().unwrap_or_else(|p| p.into_inner()) = measured;
        drop(shared);
        std::thread::sleep(MEASURE_EVERY);
    }
}

fn measure(consumer: &BaseConsumer, topics: &Topics) -> Result<LagReport, String> {
    let mut list = TopicPartitionList::new();
    for (topic, _, partitions) in topics.pairs() {
        for p in 0..partitions {
            list.add_partition(&topic, p as i32);
        }
    }
    let committed = consumer
        .committed_offsets(list, BROKER_WAIT)
        .map_err(|e| format!("committed offsets: {e}"))?;
    let mut partitions = Vec::new();
    for element in committed.elements() {
        let (topic, p) = (element.topic(), element.partition());
        let (low, high) = consumer
            .fetch_watermarks(topic, p, BROKER_WAIT)
            .map_err(|e| format!("the end of {topic}/{p}: {e}"))?;
        let from = match element.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        partitions.push((topic.to_owned(), p as u32, (high - from).max(0)));
    }
    Ok(LagReport {
        partitions,
        measured_at: Instant::now(),
    })
}
