//! One ledger processor: a consumer-group member that decides the commands of the partitions it
//! is assigned and writes their outcome with exactly-once transactions.
//!
//! The loop, per batch: poll commands (bounded by `batch_commands_max` and `batch_linger_ms`) ->
//! for each command not decided before: `System::decide`, produce the events to the event
//! partition of the same number, produce follow-ups to their command partitions, apply ->
//! `send_offsets_to_transaction` -> `commit_transaction`. On any failure the transaction is
//! aborted, the in-memory state of the owned partitions is rebuilt from the event log, and the
//! consumer goes back to the committed offsets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use uuid::Uuid;

use super::Topics;
use super::decided::{DEDUP_WINDOW_MS_DEFAULT, Decided};
use crate::{HEADER_COMMAND_ID, HEADER_SCHEMA_VERSION, HEADER_TYPE, decode};
use yeyak_domain::system::follow_up;
use yeyak_domain::{Campaign, Command, Envelope, System, Target};
use yeyak_log::codec::CodecError;
use yeyak_log::kafka::stored_record;
use yeyak_log::{StoredRecord, client_config};

/// Header on every event the pipeline writes: how many events the decision it belongs to has.
pub const HEADER_DECISION_EVENTS: &str = "decision_events";

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
    pub batch_linger_ms: u64,
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
            group_id: format!("{}yeyak-ledger", topics.prefix),
            transactional_id: format!("{}yeyak-ledger-{instance}", topics.prefix),
            topics,
            batch_commands_max: 20_000,
            batch_linger_ms: 20,
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
    #[error("the consumer has no group metadata yet (not a group member)")]
    NoGroup,
    #[error("cannot encode a record of command {command_id}")]
    Encode {
        command_id: Uuid,
        #[source]
        cause: serde_json::Error,
    },
}

/// What one processor has done, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    pub transactions: u64,
    pub commands: u64,
    /// Follow-ups whose partition this processor owns, decided in the transaction that caused them.
    pub follow_ups_local: u64,
    pub duplicates_skipped: u64,
    pub undecodable_skipped: u64,
    pub events: u64,
    pub aborts: u64,
    pub rebuilds: u64,
    /// Where the time went: waiting for commands, deciding and producing, committing.
    pub poll_ms: u64,
    pub decide_ms: u64,
    pub commit_ms: u64,
}

/// One rebalance callback: assigned (true) or revoked, and which (topic, partition)s.
type AssignmentChange = (bool, Vec<(String, u32)>);

/// Rebalance callbacks only record what changed; the loop acts on it between polls.
struct Assignments {
    changes: Mutex<Vec<AssignmentChange>>,
}

impl ClientContext for Assignments {}

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
        if let Ok(mut changes) = self.changes.lock() {
            changes.push((assigned, partitions));
        }
    }
}

pub struct Processor {
    config: ProcessorConfig,
    campaign: Campaign,
    consumer: BaseConsumer<Assignments>,
    producer: ThreadedProducer<DefaultProducerContext>,
    system: System,
    /// The outside commands answered recently (a retry is not decided twice).
    decided: Decided,
    /// Command partitions owned now, and whether their state is current.
    owned: BTreeMap<(String, u32), bool>,
    pub stats: ProcessorStats,
}

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

impl Processor {
    /// Connects, joins the group and initialises the transactional producer (which fences any
    /// earlier incarnation with the same transactional id).
    pub fn start(config: ProcessorConfig, campaign: Campaign) -> Result<Processor, ProcessorError> {
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
            .create_with_context(Assignments {
                changes: Mutex::new(Vec::new()),
            })
            .map_err(|cause| ProcessorError::Client {
                role: "consumer",
                cause,
            })?;
        let producer: ThreadedProducer<DefaultProducerContext> = client_config(&config.bootstrap)
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
            .create()
            .map_err(|cause| ProcessorError::Client {
                role: "producer",
                cause,
            })?;
        let timeout = Duration::from_millis(config.request_timeout_ms);
        producer
            .init_transactions(timeout)
            .map_err(broker("init_transactions"))?;
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
        Ok(Processor {
            system: System::new(campaign.clone()),
            campaign,
            consumer,
            producer,
            decided: Decided::new(config.dedup_window_ms),
            owned: BTreeMap::new(),
            stats: ProcessorStats::default(),
            config,
        })
    }

    /// Runs until `stop` is set; returns what it did. A fenced processor returns
    /// `ProcessorError::Fenced`: it must not write again.
    pub fn run(&mut self, stop: Arc<AtomicBool>) -> Result<ProcessorStats, ProcessorError> {
        while !stop.load(Ordering::Relaxed) {
            self.step()?;
        }
        Ok(self.stats.clone())
    }

    /// One batch: poll, decide, write in one transaction.
    pub fn step(&mut self) -> Result<usize, ProcessorError> {
        let polling = Instant::now();
        let batch = self.poll_batch()?;
        self.stats.poll_ms += polling.elapsed().as_millis() as u64;
        self.take_rebalances();
        if batch.is_empty() {
            return Ok(0);
        }
        let partitions: BTreeSet<(String, u32)> = batch
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect();
        for tp in &partitions {
            if self.owned.get(tp) != Some(&true) {
                self.rebuild(tp)?;
            }
        }
        match self.transact(&batch) {
            Ok(()) => {
                self.stats.transactions += 1;
                Ok(batch.len())
            }
            Err(ProcessorError::Fenced { cause }) => Err(ProcessorError::Fenced { cause }),
            Err(error) => {
                tracing::warn!(error = %error, "transaction failed; aborting and rebuilding");
                self.stats.aborts += 1;
                let timeout = Duration::from_millis(self.config.request_timeout_ms);
                if let Err(cause) = self.producer.abort_transaction(timeout) {
                    if is_fenced(&cause) {
                        return Err(ProcessorError::Fenced { cause });
                    }
                }
                for owned in self.owned.values_mut() {
                    *owned = false;
                }
                self.rewind()?;
                Ok(0)
            }
        }
    }

    fn poll_batch(&mut self) -> Result<Vec<StoredRecord>, ProcessorError> {
        let mut batch = Vec::new();
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut first_at: Option<Instant> = None;
        while batch.len() < self.config.batch_commands_max {
            let now = Instant::now();
            let until = match first_at {
                Some(t) => t + linger,
                None => deadline,
            };
            if now >= until {
                break;
            }
            match self.consumer.poll(until - now) {
                None => break,
                Some(Err(cause)) => {
                    tracing::warn!(error = %cause, "consumer error");
                    break;
                }
                Some(Ok(message)) => {
                    first_at.get_or_insert_with(Instant::now);
                    batch.push(stored_record(&message));
                }
            }
        }
        Ok(batch)
    }

    fn take_rebalances(&mut self) {
        let changes = match self.consumer.context().changes.lock() {
            Ok(mut changes) => std::mem::take(&mut *changes),
            Err(_) => return,
        };
        for (assigned, partitions) in changes {
            if assigned && !partitions.is_empty() {
                let names: Vec<String> =
                    partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect();
                tracing::info!(partitions = %names.join(","), "partitions assigned");
            }
            for tp in partitions {
                if assigned {
                    self.owned.insert(tp, false);
                } else {
                    self.owned.remove(&tp);
                }
            }
        }
    }

    /// Rebuilds the state of one command partition from its event partition (read_committed,
    /// from the start): forgets what it knew of that partition's keys first.
    fn rebuild(&mut self, (topic, partition): &(String, u32)) -> Result<(), ProcessorError> {
        let Some(event_topic) = self.config.topics.event_topic_of(topic) else {
            return Ok(());
        };
        let topics = self.config.topics.clone();
        let partition = *partition;
        let in_partition =
            |target: &Target| topics.command_partition(target) == (topic.clone(), partition);
        self.system
            .subjects
            .retain(|s, _| !in_partition(&Target::Subject(*s)));
        self.system
            .clinics
            .retain(|c, _| !in_partition(&Target::Clinic(c.clone())));
        if in_partition(&Target::WaitingRoom) {
            self.system.waiting_room = Default::default();
        }
        let events = read_partition(
            &self.config.bootstrap,
            &event_topic,
            partition,
            self.config.request_timeout_ms,
        )?;
        for envelope in &events {
            self.system.apply(envelope);
            self.decided.remember_event(envelope);
        }
        tracing::info!(topic = %event_topic, partition, events = events.len(), "state rebuilt");
        self.owned.insert((topic.clone(), partition), true);
        self.stats.rebuilds += 1;
        Ok(())
    }

    /// After an abort: go back to the committed offsets of every owned partition.
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
            let _ = seek.add_partition_offset(element.topic(), element.partition(), offset);
        }
        self.consumer
            .seek_partitions(seek, timeout)
            .map_err(broker("seek"))?;
        Ok(())
    }

    fn transact(&mut self, batch: &[StoredRecord]) -> Result<(), ProcessorError> {
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let deciding = Instant::now();
        self.producer
            .begin_transaction()
            .map_err(broker("begin_transaction"))?;
        let mut next_offsets: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for stored in batch {
            next_offsets.insert((stored.topic.clone(), stored.partition), stored.offset + 1);
            let command: Command = match serde_json::from_slice(&stored.record.value) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(topic = %stored.topic, partition = stored.partition, offset = stored.offset, error = %e,
                        "undecodable command skipped");
                    self.stats.undecodable_skipped += 1;
                    continue;
                }
            };
            self.decide(command, &stored.topic, stored.partition)?;
        }
        let committing = Instant::now();
        self.stats.decide_ms += committing.duration_since(deciding).as_millis() as u64;
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in &next_offsets {
            offsets
                .add_partition_offset(topic, *partition as i32, Offset::Offset(*next as i64))
                .map_err(broker("offsets"))?;
        }
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or(ProcessorError::NoGroup)?;
        self.producer
            .send_offsets_to_transaction(&offsets, &metadata, timeout)
            .map_err(broker("send_offsets"))?;
        yeyak_log::kafka::settle(&self.producer, timeout);
        self.producer
            .commit_transaction(timeout)
            .map_err(broker("commit_transaction"))?;
        self.stats.commit_ms += committing.elapsed().as_millis() as u64;
        Ok(())
    }

    /// Decides one command and, in the same transaction, every follow-up it causes in a
    /// partition this processor owns (and has rebuilt); follow-ups for partitions owned by
    /// another processor go to their command topic. Deciding a follow-up here, right after its
    /// cause, is one of the orders the command topic could have delivered it in, and it commits
    /// or aborts with its cause; it saves a transaction per hop of a booking.
    fn decide(
        &mut self,
        command: Command,
        topic: &str,
        partition: u32,
    ) -> Result<(), ProcessorError> {
        let mut queue = VecDeque::from([(command, topic.to_owned(), partition)]);
        while let Some((command, topic, partition)) = queue.pop_front() {
            if self.decided.answered(&command) {
                self.stats.duplicates_skipped += 1;
                continue;
            }
            self.stats.commands += 1;
            let (_, envelopes) = self.system.decide(&command);
            let Some(event_topic) = self.config.topics.event_topic_of(&topic) else {
                continue;
            };
            for envelope in &envelopes {
                self.send_event(&event_topic, partition, envelope, envelopes.len())?;
                self.system.apply(envelope);
                if let Some(next) = follow_up(envelope) {
                    let (next_topic, next_partition) =
                        self.config.topics.command_partition(&next.body.target());
                    if self.owned.get(&(next_topic.clone(), next_partition)) == Some(&true) {
                        self.stats.follow_ups_local += 1;
                        queue.push_back((next, next_topic, next_partition));
                    } else {
                        self.send_command(&next)?;
                    }
                }
            }
            if !envelopes.is_empty() {
                self.decided.remember(&command);
            }
            self.stats.events += envelopes.len() as u64;
        }
        Ok(())
    }

    /// Produces one event of a decision of `decision_events` events (the count lets a reader
    /// know when it has seen the whole decision).
    fn send_event(
        &self,
        topic: &str,
        partition: u32,
        envelope: &Envelope,
        decision_events: usize,
    ) -> Result<(), ProcessorError> {
        let value = serde_json::to_vec(envelope).map_err(|cause| ProcessorError::Encode {
            command_id: envelope.command_id,
            cause,
        })?;
        let headers = OwnedHeaders::new()
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
                value: Some(&decision_events.to_string()),
            });
        let record = BaseRecord::to(topic)
            .partition(partition as i32)
            .key(envelope.partition_key.as_bytes())
            .payload(&value)
            .timestamp(envelope.occurred_at_ms)
            .headers(headers);
        self.producer
            .send(record)
            .map_err(|(cause, _)| broker("produce event")(cause))
    }

    fn send_command(&self, command: &Command) -> Result<(), ProcessorError> {
        send_command(&self.producer, &self.config.topics, command, ())
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    pub fn owned_partitions(&self) -> Vec<(String, u32)> {
        self.owned.keys().cloned().collect()
    }
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
