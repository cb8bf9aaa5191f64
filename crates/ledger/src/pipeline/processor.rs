//! One ledger processor on Apache Kafka: a consumer-group member that decides the commands of
//! the partitions it is assigned and writes their outcome with exactly-once transactions.
//!
//! A thin adapter: the decisions are the [`Writer`]'s (pure), the loop is [`batch::step`] (the
//! same the simulator runs); this file only speaks rdkafka ([`KafkaCommandLog`]): poll until
//! the batch is quiet (`batch_quiet_ms`) or has lingered `batch_linger_ms`, produce events with
//! their headers, `send_offsets_to_transaction`, `commit_transaction`, abort, rewind. A broker
//! that fails or stalls makes a batch fail; the processor aborts, rewinds, waits a little and
//! goes on (a producer in a fatal state is made again); only a fenced processor stops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use uuid::Uuid;

use super::Topics;
use super::batch::{self, CommandLog};
use super::decided::DEDUP_WINDOW_MS_DEFAULT;
use super::writer::{CommandRecord, Transaction, Writer};
pub use super::writer::{CommitPhases, ProcessorStats};
use crate::{HEADER_COMMAND_ID, HEADER_SCHEMA_VERSION, HEADER_TYPE, decode};
use yeyak_domain::{Campaign, CampaignStamp, Command, Envelope};
use yeyak_log::broker_recovery::with_statistics;
use yeyak_log::codec::{CodecError, campaign_headers};
use yeyak_log::kafka::stored_record;
use yeyak_log::{BrokerRecovery, Recovering, client_config};

/// Header on every event the pipeline writes: how many events the decision it belongs to has.
pub const HEADER_DECISION_EVENTS: &str = "decision_events";
/// Header, `1`, on every event of a follow-up's decision: its cause is another partition's
/// event, which a reader may read after it (`Answers` keeps it until then).
pub const HEADER_FOLLOW_UP: &str = "follow_up";

/// Settings of one processor. Every rdkafka option it relies on is set explicitly from these.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub bootstrap: String,
    pub topics: Topics,
    /// The consumer group all processors of a deployment share.
    pub group_id: String,
    /// Unique per processor process; a restarted process may reuse its id (the broker then
    /// fences the previous incarnation).
    pub transactional_id: String,
    pub batch_commands_max: usize,
    /// The longest a batch waits for more commands after its first one.
    pub batch_linger_ms: u64,
    /// A batch closes once no command came for this long (its commands are decided at once
    /// instead of waiting out the linger: under load, the commands that arrived while the last
    /// batch committed are already there, so batches grow with the load by themselves).
    pub batch_quiet_ms: u64,
    pub session_timeout_ms: u32,
    pub transaction_timeout_ms: u32,
    /// How long a broker call may take before the batch is given up and retried.
    pub request_timeout_ms: u64,
    /// How long (in command time) a client's retry of a command is recognised (`Decided`).
    pub dedup_window_ms: i64,
}

impl ProcessorConfig {
    pub fn new(bootstrap: &str, topics: Topics, instance: &str) -> ProcessorConfig {
        ProcessorConfig {
            bootstrap: bootstrap.to_owned(),
            group_id: super::ledger_lag::processors_group(&topics),
            transactional_id: format!("{}yeyak-ledger-{instance}", topics.prefix),
            topics,
            batch_commands_max: 20_000,
            batch_linger_ms: 20,
            batch_quiet_ms: 1,
            session_timeout_ms: 10_000,
            transaction_timeout_ms: 30_000,
            request_timeout_ms: 30_000,
            dedup_window_ms: DEDUP_WINDOW_MS_DEFAULT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("cannot create the Kafka {role}")]
    Client {
        role: &'static str,
        #[source]
        cause: KafkaError,
    },
    #[error("Kafka {operation} failed")]
    Broker {
        operation: &'static str,
        #[source]
        cause: KafkaError,
    },
    #[error(
        "this processor was fenced: another incarnation owns its transactional id or partitions"
    )]
    Fenced {
        #[source]
        cause: KafkaError,
    },
    #[error("cannot decode the event at {topic}/{partition}")]
    Rebuild {
        topic: String,
        partition: u32,
        #[source]
        cause: CodecError,
    },
    #[error("the event at {topic}/{partition}@{offset} cannot be decoded: the log is damaged")]
    Damaged {
        topic: String,
        partition: u32,
        offset: u64,
        #[source]
        cause: Box<CodecError>,
    },
    #[error("the topics' settings are refused")]
    TopicSettings(#[source] Box<yeyak_log::TopicSettingsError>),
    #[error("the consumer has no group metadata yet (not a group member)")]
    NoGroup,
    #[error("cannot encode a record of command {command_id}")]
    Encode {
        command_id: Uuid,
        #[source]
        cause: serde_json::Error,
    },
    #[error("cannot encode a dead letter")]
    DeadLetter(#[source] serde_json::Error),
}

impl ProcessorError {
    /// Whether the producer can no longer be used (librdkafka's fatal errors): it is made again.
    fn producer_is_fatal(&self) -> bool {
        let cause = match self {
            ProcessorError::Broker { cause, .. } => cause,
            _ => return false,
        };
        match cause {
            KafkaError::Transaction(e) => e.is_fatal(),
            _ => cause.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal),
        }
    }
}

/// How long a processor waits after a failed batch before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_millis(250);

/// One rebalance callback: assigned (true) or revoked, and which (topic, partition)s.
type AssignmentChange = (bool, Vec<(String, u32)>);

/// Rebalance callbacks only record what changed; the loop acts on it between polls. The
/// consumer's statistics (every [`LAG_EVERY_MS`]) leave the lag of each partition here.
struct Assignments {
    changes: Mutex<Vec<AssignmentChange>>,
    lag: Mutex<BTreeMap<(String, u32), i64>>,
    recovery: BrokerRecovery,
}

/// How often the consumer reports its lag per partition (librdkafka's statistics).
pub const LAG_EVERY_MS: u32 = 2_000;

impl ClientContext for Assignments {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.recovery.observe(&statistics);
        let mut lag = BTreeMap::new();
        for (name, topic) in &statistics.topics {
            for partition in topic.partitions.values() {
                // The last stable offset (read_committed) minus what was handed to the
                // processor; before the first record, minus the committed offset (or the start
                // of the partition when nothing was committed). -1: unknown;
                // partition -1 is librdkafka's internal one.
                let position = [
                    partition.app_offset,
                    partition.committed_offset,
                    partition.lo_offset,
                ]
                .into_iter()
                .find(|o| *o >= 0)
                .unwrap_or(-1);
                if partition.partition >= 0 && partition.ls_offset >= 0 && position >= 0 {
                    lag.insert(
                        (name.clone(), partition.partition as u32),
                        (partition.ls_offset - position).max(0),
                    );
                }
            }
        }
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }
}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (assigned, list) = match rebalance {
            Rebalance::Assign(list) => (true, list),
            Rebalance::Revoke(list) => (false, list),
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        let partitions = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition() as u32))
            .collect();
        match self.changes.lock() {
            Ok(mut changes) => changes.push((assigned, partitions)),
            Err(poisoned) => poisoned.into_inner().push((assigned, partitions)),
        }
    }
}

/// The processor's consumer and transactional producer: [`CommandLog`] on rdkafka.
pub struct KafkaCommandLog {
    config: ProcessorConfig,
    consumer: BaseConsumer<Assignments>,
    producer: ThreadedProducer<Recovering>,
    in_transaction: bool,
    /// Recorded on every event produced.
    campaign: CampaignStamp,
    /// Where the produce-and-commit time went (copied into the writer's stats after each step).
    phases: CommitPhases,
    /// The open transaction's produce time, counted in `phases` once it commits.
    produce_us: u64,
}

pub struct Processor {
    campaign: Campaign,
    writer: Writer,
    log: KafkaCommandLog,
    /// Batches that failed since the last one that did not.
    failures_in_a_row: u32,
}

/// Failed batches in a row after which the producer is made again, whatever librdkafka says of
/// its state (a transaction stuck half-committed after a timeout, for instance).
pub const FAILURES_BEFORE_NEW_PRODUCER: u32 = 3;

fn broker(operation: &'static str) -> impl Fn(KafkaError) -> ProcessorError + Copy {
    move |cause| {
        if is_fenced(&cause) {
            ProcessorError::Fenced { cause }
        } else {
            ProcessorError::Broker { operation, cause }
        }
    }
}

fn is_fenced(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::Fenced
                | Code::ProducerFenced
                | Code::InvalidProducerEpoch
                | Code::FencedInstanceId
        )
    )
}

fn consumer(config: &ProcessorConfig) -> Result<BaseConsumer<Assignments>, ProcessorError> {
    let consumer: BaseConsumer<Assignments> = client_config(&config.bootstrap)
        .set("client.id", &config.transactional_id)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout_ms / 4).max(100).to_string(),
        )
        .set("max.poll.interval.ms", "300000")
        .set("fetch.wait.max.ms", "5")
        .set("statistics.interval.ms", LAG_EVERY_MS.to_string())
        .create_with_context(Assignments {
            changes: Mutex::new(Vec::new()),
            lag: Mutex::new(BTreeMap::new()),
            recovery: BrokerRecovery::new(&config.bootstrap),
        })
        .map_err(|cause| ProcessorError::Client {
            role: "consumer",
            cause,
        })?;
    consumer.context().recovery.attach(consumer.client());
    Ok(consumer)
}

/// The transactional producer, initialised (which fences any earlier incarnation with the same
/// transactional id). Public for the benchmark's raw baseline, which appends with this very
/// producer.
pub fn producer(config: &ProcessorConfig) -> Result<ThreadedProducer<Recovering>, ProcessorError> {
    let producer: ThreadedProducer<Recovering> =
        with_statistics(&mut client_config(&config.bootstrap))
            .set("client.id", &config.transactional_id)
            .set("transactional.id", &config.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            // A transaction that begins while the broker still writes the previous one's markers
            // is answered CONCURRENT_TRANSACTIONS and retried after this backoff (default 100 ms,
            // which made every commit cost ~100 ms).
            .set("retry.backoff.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("compression.type", "none")
            .set(
                "transaction.timeout.ms",
                config.transaction_timeout_ms.to_string(),
            )
            .set(
                "message.timeout.ms",
                config.transaction_timeout_ms.to_string(),
            )
            .create_with_context(Recovering::new(&config.bootstrap))
            .map_err(|cause| ProcessorError::Client {
                role: "producer",
                cause,
            })?;
    producer.context().0.attach(producer.client());
    let timeout = Duration::from_millis(config.request_timeout_ms);
    yeyak_log::kafka::patiently_init_transactions(|| producer.init_transactions(timeout), timeout)
        .map_err(broker("init_transactions"))?;
    Ok(producer)
}

impl Processor {
    /// Connects, joins the group and initialises the transactional producer.
    pub fn start(config: ProcessorConfig, campaign: Campaign) -> Result<Processor, ProcessorError> {
        let consumer = consumer(&config)?;
        let producer = producer(&config)?;
        let topics: Vec<String> = config
            .topics
            .pairs()
            .into_iter()
            .map(|(c, _, _)| c)
            .collect();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topic_refs)
            .map_err(broker("subscribe"))?;
        let stamp = campaign.stamp();
        let writer = Writer::new(
            config.topics.clone(),
            campaign.clone(),
            config.dedup_window_ms,
        );
        Ok(Processor {
            campaign,
            writer,
            log: KafkaCommandLog {
                config,
                consumer,
                producer,
                in_transaction: false,
                campaign: stamp,
                phases: CommitPhases::default(),
                produce_us: 0,
            },
            failures_in_a_row: 0,
        })
    }

    /// Runs until `stop` is set; returns what it did. A fenced processor returns
    /// `ProcessorError::Fenced`: it must not write again.
    pub fn run(&mut self, stop: Arc<AtomicBool>) -> Result<ProcessorStats, ProcessorError> {
        while !stop.load(Ordering::Relaxed) {
            self.step()?;
        }
        Ok(self.stats().clone())
    }

    /// One batch. A failed batch (broker error, timeout, stall) was aborted and will be decided
    /// again: it answers `Ok(0)` after a pause. Only a fenced processor gets an error.
    pub fn step(&mut self) -> Result<usize, ProcessorError> {
        let batch_max = self.log.config.batch_commands_max;
        let result = batch::step(&mut self.writer, &mut self.log, batch_max);
        self.writer.stats.commit_phases = self.log.phases;
        match result {
            Ok(n) => {
                self.failures_in_a_row = 0;
                Ok(n)
            }
            Err(error) if KafkaCommandLog::is_fenced(&error) => Err(error),
            Err(error) => {
                self.failures_in_a_row += 1;
                if error.producer_is_fatal()
                    || self.failures_in_a_row >= FAILURES_BEFORE_NEW_PRODUCER
                {
                    tracing::warn!(%error, failures = self.failures_in_a_row, "making the producer again");
                    match producer(&self.log.config) {
                        Ok(made) => {
                            self.log.producer = made;
                            self.log.in_transaction = false;
                            self.failures_in_a_row = 0;
                        }
                        Err(fenced @ ProcessorError::Fenced { .. }) => return Err(fenced),
                        Err(error) => tracing::warn!(%error, "cannot make the producer yet"),
                    }
                }
                std::thread::sleep(RETRY_AFTER);
                Ok(0)
            }
        }
    }

    /// What this processor has done (its writer's counts).
    pub fn stats(&self) -> &ProcessorStats {
        &self.writer.stats
    }

    /// Consumer lag of every command partition this processor owns, as librdkafka last
    /// reported it (every [`LAG_EVERY_MS`]: the partition's end minus the consumer's position;
    /// `None` before the first report or fetch).
    pub fn lag(&self) -> Vec<(String, u32, Option<i64>)> {
        let reported = self
            .log
            .consumer
            .context()
            .lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.writer
            .owned_partitions()
            .into_iter()
            .map(|key| {
                let lag = reported.get(&key).copied();
                (key.0, key.1, lag)
            })
            .collect()
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    pub fn owned_partitions(&self) -> Vec<(String, u32)> {
        self.writer.owned_partitions()
    }
}

impl KafkaCommandLog {
    /// Hands the transaction's events, follow-up commands and dead letters to the producer.
    fn produce_records(&mut self, tx: &Transaction) -> Result<(), ProcessorError> {
        for event in &tx.events {
            send_event(&self.producer, event, &self.campaign)?;
        }
        for command in &tx.commands {
            send_command(&self.producer, &self.config.topics, command, ())?;
        }
        for letter in &tx.dead_letters {
            let value = serde_json::to_vec(letter).map_err(ProcessorError::DeadLetter)?;
            let topic = self.config.topics.dead_letters();
            let record = BaseRecord::<(), [u8]>::to(&topic)
                .partition(0)
                .payload(&value);
            self.producer
                .send(record)
                .map_err(|(cause, _)| broker("produce dead letter")(cause))?;
        }
        Ok(())
    }
}

impl CommandLog for KafkaCommandLog {
    type Error = ProcessorError;

    fn is_fenced(error: &ProcessorError) -> bool {
        matches!(error, ProcessorError::Fenced { .. })
    }

    fn poll(&mut self, max: usize) -> Result<Vec<CommandRecord>, ProcessorError> {
        let mut batch = Vec::new();
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        let quiet = Duration::from_millis(self.config.batch_quiet_ms);
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut first_at: Option<Instant> = None;
        let mut last_at = Instant::now();
        while batch.len() < max {
            let now = Instant::now();
            // Zero once the batch is quiet: only what the consumer already holds is taken.
            let wait = match first_at {
                None if now >= deadline => break,
                None => deadline - now,
                Some(first) if now >= first + linger => break,
                Some(_) => (last_at + quiet).saturating_duration_since(now),
            };
            match self.consumer.poll(wait) {
                None => break,
                Some(Err(cause)) => {
                    tracing::warn!(error = %cause, "consumer error");
                    break;
                }
                Some(Ok(message)) => {
                    last_at = Instant::now();
                    first_at.get_or_insert(last_at);
                    let stored = stored_record(&message);
                    batch.push(CommandRecord {
                        topic: stored.topic,
                        partition: stored.partition,
                        offset: stored.offset,
                        value: stored.record.value,
                    });
                }
            }
        }
        Ok(batch)
    }

    fn assignment_changes(&mut self) -> Vec<AssignmentChange> {
        let changes = &self.consumer.context().changes;
        let mut changes = changes.lock().unwrap_or_else(|p| p.into_inner());
        let changes = std::mem::take(&mut *changes);
        for (assigned, partitions) in &changes {
            if *assigned && !partitions.is_empty() {
                let names: Vec<String> =
                    partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect();
                tracing::info!(partitions = %names.join(","), "partitions assigned");
            }
        }
        changes
    }

    fn read_events(
        &mut self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<Envelope>, ProcessorError> {
        let events = read_partition(
            &self.config.bootstrap,
            topic,
            partition,
            self.config.request_timeout_ms,
        )?;
        tracing::info!(%topic, partition, events = events.len(), "state rebuilt");
        Ok(events)
    }

    fn begin(&mut self) -> Result<(), ProcessorError> {
        self.producer
            .begin_transaction()
            .map_err(broker("begin_transaction"))?;
        self.in_transaction = true;
        Ok(())
    }

    fn produce(&mut self, tx: &Transaction) -> Result<(), ProcessorError> {
        let producing = Instant::now();
        let produced = self.produce_records(tx);
        self.produce_us = producing.elapsed().as_micros() as u64;
        produced
    }

    fn commit(&mut self, offsets: &BTreeMap<(String, u32), u64>) -> Result<(), ProcessorError> {
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let list = offset_list(offsets)?;
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or(ProcessorError::NoGroup)?;
        let offsetting = Instant::now();
        self.producer
            .send_offsets_to_transaction(&list, &metadata, timeout)
            .map_err(broker("send_offsets"))?;
        let flushing = Instant::now();
        yeyak_log::kafka::settle(&self.producer, timeout);
        let ending = Instant::now();
        self.producer
            .commit_transaction(timeout)
            .map_err(broker("commit_transaction"))?;
        self.phases.record(
            std::mem::take(&mut self.produce_us),
            (flushing - offsetting).as_micros() as u64,
            (ending - flushing).as_micros() as u64,
            ending.elapsed().as_micros() as u64,
        );
        self.in_transaction = false;
        Ok(())
    }

    fn commit_offsets_directly(
        &mut self,
        offsets: &BTreeMap<(String, u32), u64>,
    ) -> Result<(), ProcessorError> {
        let list = offset_list(offsets)?;
        self.consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .map_err(broker("commit offsets"))
    }

    fn abort(&mut self) -> Result<(), ProcessorError> {
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        self.producer
            .abort_transaction(timeout)
            .map_err(broker("abort_transaction"))
    }

    fn rewind(&mut self) -> Result<(), ProcessorError> {
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let committed = self
            .consumer
            .committed(timeout)
            .map_err(broker("committed"))?;
        let mut seek = TopicPartitionList::new();
        for element in committed.elements() {
            let offset = match element.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(element.topic(), element.partition(), offset)
                .map_err(broker("seek"))?;
        }
        self.consumer
            .seek_partitions(seek, timeout)
            .map_err(broker("seek"))?;
        Ok(())
    }
}

fn offset_list(
    offsets: &BTreeMap<(String, u32), u64>,
) -> Result<TopicPartitionList, ProcessorError> {
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        list.add_partition_offset(topic, *partition as i32, Offset::Offset(*next as i64))
            .map_err(broker("offsets"))?;
    }
    Ok(list)
}

/// Produces one event of a decision of `decision_events` events (the count lets a reader know
/// when it has seen the whole decision).
fn send_event(
    producer: &ThreadedProducer<Recovering>,
    event: &super::writer::EventRecord,
    campaign: &CampaignStamp,
) -> Result<(), ProcessorError> {
    let envelope = &event.envelope;
    let value = serde_json::to_vec(envelope).map_err(|cause| ProcessorError::Encode {
        command_id: envelope.command_id,
        cause,
    })?;
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: HEADER_TYPE,
            value: Some(envelope.event.type_name()),
        })
        .insert(Header {
            key: HEADER_COMMAND_ID,
            value: Some(&envelope.command_id.to_string()),
        })
        .insert(Header {
            key: HEADER_SCHEMA_VERSION,
            value: Some(&envelope.schema_version.to_string()),
        })
        .insert(Header {
            key: HEADER_DECISION_EVENTS,
            value: Some(&event.decision_events.to_string()),
        });
    if event.follow_up {
        headers = headers.insert(Header {
            key: HEADER_FOLLOW_UP,
            value: Some("1"),
        });
    }
    for (key, value) in campaign_headers(campaign) {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let record = BaseRecord::to(&event.topic)
        .partition(event.partition as i32)
        .key(envelope.partition_key.as_bytes())
        .payload(&value)
        .timestamp(envelope.occurred_at_ms)
        .headers(headers);
    producer
        .send(record)
        .map_err(|(cause, _)| broker("produce event")(cause))
}

/// Produces a command to the partition that decides it.
pub fn send_command<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    topics: &Topics,
    command: &Command,
    opaque: C::DeliveryOpaque,
) -> Result<(), ProcessorError> {
    let target = command.body.target();
    let (topic, partition) = topics.command_partition(&target);
    let value = serde_json::to_vec(command).map_err(|cause| ProcessorError::Encode {
        command_id: command.command_id,
        cause,
    })?;
    let key = target.key();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: HEADER_COMMAND_ID,
            value: Some(&command.command_id.to_string()),
        })
        .insert(Header {
            key: "name",
            value: Some(command.body.name()),
        });
    let record = BaseRecord::with_opaque_to(&topic, opaque)
        .partition(partition as i32)
        .key(key.as_bytes())
        .payload(&value)
        .timestamp(command.at_ms)
        .headers(headers);
    producer
        .send(record)
        .map_err(|(cause, _)| broker("produce command")(cause))
}

/// Reads one event partition from the start up to its end (read_committed), decoded.
pub fn read_partition(
    bootstrap: &str,
    topic: &str,
    partition: u32,
    timeout_ms: u64,
) -> Result<Vec<Envelope>, ProcessorError> {
    let kafka = broker("read events");
    let consumer: BaseConsumer<yeyak_log::kafka::ReaderContext> = client_config(bootstrap)
        .set("group.id", "yeyak-rebuild-unused")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .create_with_context(yeyak_log::kafka::ReaderContext)
        .map_err(kafka)?;
    let timeout = Duration::from_millis(timeout_ms);
    let (low, high) =
        yeyak_log::kafka::watermarks(&consumer, topic, partition, timeout).map_err(kafka)?;
    let mut events = Vec::new();
    if high <= low {
        return Ok(events);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition as i32, Offset::Beginning)
        .map_err(kafka)?;
    consumer.assign(&assignment).map_err(kafka)?;
    let deadline = Instant::now() + timeout;
    loop {
        if Instant::now() > deadline {
            return Err(kafka(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::RequestTimedOut,
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(cause)) => return Err(kafka(cause)),
            Some(Ok(message)) => {
                let stored = stored_record(&message);
                let envelope = decode(&stored).map_err(|cause| ProcessorError::Rebuild {
                    topic: topic.to_owned(),
                    partition,
                    cause,
                })?;
                events.push(envelope);
            }
        }
    }
    Ok(events)
}
