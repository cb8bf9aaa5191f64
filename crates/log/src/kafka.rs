//! [`KafkaLog`]: the [`EventLog`] on a real Apache Kafka cluster, through librdkafka (rdkafka); it is not a broker, not a consumer group member, and not the production pipeline.
//!
//! # How the trait maps onto Kafka
//!
//! - **Topics** get a configurable prefix ([`KafkaConfig::topic_prefix`]) that callers never
//!   see: `ensure_topic("yeyak.clinic")` creates `<prefix>yeyak.clinic`, and
//!   [`EventLog::topics`] lists only prefixed topics, with the prefix stripped (and never
//!   Kafka's internal `__` topics). Topics are created with time and size retention off
//!   (`retention.ms=-1`, `retention.bytes=-1`), `CreateTime` timestamps and no limit on how old
//!   or how far ahead a timestamp may be: an event log must not lose its 2021 events after
//!   seven days. Their replication and `min.insync.replicas` are the deployment's
//!   ([`KafkaConfig::topic_settings`], by default following the cluster). A topic that already
//!   exists must have the partition count asked for; its other settings are checked by the
//!   pipeline's `ensure_topics`, not here.
//! - **Append** is one Kafka transaction per call (a transactional, idempotent producer with
//!   `acks=all`): begin, produce every record to the given partition, wait for every delivery,
//!   commit; any failure aborts. Readers use `isolation.level=read_committed`, so an append is
//!   visible entirely or not at all. Appends are serialised (one transaction at a time per
//!   `KafkaLog`). The broker writes the commit markers only after the commit returns, so
//!   `append` then waits until the batch is visible (the partition's last stable offset is past
//!   it): whoever reads after `append` returned sees the batch, as with the file log. An error
//!   after the commit (a [`LogError::Timeout`] while waiting) leaves the batch committed; an
//!   error before it leaves nothing visible. An earlier transaction of *another* producer that
//!   stays open on the partition hides everything after it from every reader until it ends; then
//!   `append` only waits until something follows the batch.
//! - **Offsets are not dense.** Every committed transaction leaves a control record (the commit
//!   marker) in the partition, and aborted records keep their offsets too. Reads skip both, so
//!   the offsets a read returns increase but have gaps; [`EventLog::end_offset`] is the high
//!   watermark (one past the last marker). Callers must only rely on "offsets increase" and on
//!   "read from `last + 1`".
//! - **Reads** use one consumer per partition (no group membership, no offset commits), kept
//!   and reused: while the caller keeps reading forward from where the last read stopped, the
//!   consumer streams on (prefetching), so a long replay is fast; a read that reaches the end of
//!   the partition unassigns it, so idle readers cost the broker nothing.
//! - **Streams** ([`EventLog::stream`], for a follower of every partition such as the
//!   PostgreSQL projector) are one more consumer, assigned all the partitions asked for at
//!   their offsets: one fetch per broker covers them all, records come as soon as their
//!   transaction commits, and an idle partition costs no request of its own.
//!   [`EventLog::stable_end`] is the last stable offset, which a stream's position reaches
//!   (past the transaction markers) once it handed out every committed record.
//! - **Timestamps** must be positive: librdkafka replaces a timestamp of 0 with the current
//!   time, and Kafka does not store negative ones. Such records are refused with
//!   [`LogError::InvalidRecord`] (the file log accepts any `i64`).
//!
//! Every librdkafka option this module relies on is set explicitly where the client is built.
//! Errors from the broker come back as [`LogError::Broker`] or [`LogError::Timeout`]; nothing
//! here panics on a broker's answer.

use std::collections::HashMap;

use crate::topic_settings::{Durability, TopicSettings};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};

use super::broker_recovery::{Recovering, STATISTICS_INTERVAL_MS};
use super::client_properties::ClientProperties;
use super::file::validate_topic_name;
use super::stream::{LogStream, Position};
use super::{EventLog, LogError, Offset, Record, StoredRecord};

/// How long a broker may hold a fetch that has nothing to return. librdkafka reports the end
/// of a partition only with the fetch response *after* the one that reached it, so this bounds
/// how long a read that reaches the end waits. Readers are unassigned at the end (the reported
/// end, or the last stable offset: `at_stable_end`), so a short wait does not make idle readers
/// poll the broker.
const FETCH_WAIT_MAX_MS: &str = "10";
/// How long a read waits for a record before it asks whether it is at the last stable offset.
const STABLE_END_CHECK: Duration = Duration::from_millis(5);
/// How much a partition's consumer may prefetch.
const READ_PREFETCH_KBYTES: &str = "16384";
/// How long a broker may hold a fetch of a [`KafkaStream`] that has nothing to return. It delays
/// no record (a fetch returns once a record is committed); it is how often an idle stream asks.
const STREAM_FETCH_WAIT_MAX_MS: &str = "50";
/// How much a [`KafkaStream`] may prefetch, all partitions together.
const STREAM_PREFETCH_KBYTES: &str = "65536";
/// How often `ensure_topic` looks at the metadata while waiting for a new topic.
const TOPIC_WAIT_STEP: Duration = Duration::from_millis(50);
/// How long `send` waits before retrying when librdkafka's local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// A topic name starting with this is Kafka's own (`__consumer_offsets`, `__transaction_state`).
const INTERNAL_TOPIC_PREFIX: &str = "__";

/// Configuration of a [`KafkaLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`, e.g. `127.0.0.1:19092`.
    pub bootstrap: String,
    /// `client.id` of every client; readers and the admin client get a suffix.
    pub client_id: String,
    /// `transactional.id` of the producer. Give a stable id to one writer so that a restarted
    /// writer fences its previous incarnation (whose unfinished transaction is aborted). `None`
    /// picks a fresh random id, which fences nothing.
    pub transactional_id: Option<String>,
    /// Prepended to every topic name, invisible to callers; empty for none. Lets several
    /// ledgers (or tests) share one cluster.
    pub topic_prefix: String,
    /// Replication and `min.insync.replicas` of created topics (default: follow the cluster).
    pub topic_settings: TopicSettings,
    /// Bound on every request to the broker, on a read that gets no answer, and on waiting for
    /// a created topic to appear.
    pub request_timeout_ms: u32,
    /// `transaction.timeout.ms`: the broker aborts a transaction left open longer than this.
    /// Also the producer's `message.timeout.ms`.
    pub transaction_timeout_ms: u32,
    /// `linger.ms` of the producer: how long it waits to fill a produce request.
    pub linger_ms: u32,
    /// librdkafka properties passed through to every client (TLS, SASL), before yeyak's own.
    pub properties: ClientProperties,
}

impl KafkaConfig {
    /// A random transactional id, no prefix, the cluster's replication, 30 s requests, 60 s
    /// transactions, 1 ms linger, and this process's pass-through properties.
    pub fn new(bootstrap: impl Into<String>, client_id: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            bootstrap: bootstrap.into(),
            client_id: client_id.into(),
            transactional_id: None,
            topic_prefix: String::new(),
            topic_settings: TopicSettings::default(),
            request_timeout_ms: 30_000,
            transaction_timeout_ms: 60_000,
            linger_ms: 1,
            properties: crate::client_properties::process_properties(),
        }
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.request_timeout_ms))
    }
}

/// The [`EventLog`] on an Apache Kafka cluster. See the [module documentation](self).
pub struct KafkaLog {
    config: KafkaConfig,
    /// The transactional producer; the lock makes one append one transaction.
    producer: Mutex<FutureProducer<Recovering>>,
    admin: AdminClient<DefaultClientContext>,
    /// Metadata and high watermarks (`read_uncommitted`, so its "latest" is the high watermark).
    meta: BaseConsumer,
    /// Last stable offsets (`read_committed`, so its "latest" is the last stable offset).
    stable: BaseConsumer,
    /// Partition counts by full topic name, filled on first use.
    partition_counts: Mutex<HashMap<String, u32>>,
    /// One consumer per (full topic name, partition), created on first read.
    readers: Mutex<HashMap<(String, u32), SharedReader>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The client context of yeyak's readers of a partition up to its end. Reaching the end is how
/// a reader knows it is caught up (`enable.partition.eof`), not a fault; but librdkafka also
/// reports it as a "global" error, which rdkafka's default context logs at ERROR level, a false
/// alarm in an operator's log. It is logged at DEBUG here; every other error stays an ERROR.
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) | KafkaError::PartitionEOF(_) => {
                tracing::debug!(%reason, "end of partition");
            }
            error => tracing::error!(%error, %reason, "librdkafka"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// A reader, locked by whoever reads its partition.
type SharedReader = Arc<Mutex<Reader>>;

/// A consumer for one partition, and where it stands.
struct Reader {
    consumer: BaseConsumer<ReaderContext>,
    /// The consumer is assigned and streams on from `position` (the last read stopped at
    /// `max_records`). Unassigned after a read reached the end of the partition (librdkafka
    /// reports an end only once per positioning) or failed.
    streaming: bool,
    /// The offset after the last record handed out since the consumer was positioned (or where
    /// it was positioned).
    position: Offset,
    /// The last stable offset when the consumer was last positioned.
    positioned_stable_end: i64,
    /// After a read reached the end: `(position, positioned_stable_end)`. There is no committed
    /// record at or after that position while the last stable offset has not moved, so a read
    /// from there needs no fetch.
    ended: Option<(Offset, i64)>,
}

/// Whether a broker error is a passing state (a new topic's leader not elected yet, a leader
/// moving) that a retry within the request timeout can outlast.
fn transient(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
        )
    )
}

/// `fetch_watermarks`, retried through transient broker states until `timeout`.
pub fn watermarks<X: rdkafka::consumer::ConsumerContext, C: Consumer<X>>(
    client: &C,
    full: &str,
    partition: u32,
    timeout: Duration,
) -> Result<(i64, i64), KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        match client.fetch_watermarks(full, partition as i32, timeout) {
            Err(error) if transient(&error) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// How every yeyak topic is created: an event log keeps everything (no time or size retention)
/// and takes any timestamp, since events carry the campaign's own instants (2021); its
/// durability is the deployment's (`min_insync` is kept in `durability`, which must outlive the
/// returned value).
pub fn log_topic<'a>(
    name: &'a str,
    partitions: u32,
    durability: &'a DurabilityText,
) -> NewTopic<'a> {
    NewTopic::new(
        name,
        partitions as i32,
        TopicReplication::Fixed(i32::from(durability.replication)),
    )
    .set("min.insync.replicas", &durability.min_insync)
    .set("cleanup.policy", "delete")
    .set("retention.ms", "-1")
    .set("retention.bytes", "-1")
    .set("message.timestamp.type", "CreateTime")
    .set("message.timestamp.before.max.ms", "9223372036854775807")
    .set("message.timestamp.after.max.ms", "9223372036854775807")
}

/// [`Durability`] with `min.insync.replicas` as the text a topic configuration holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityText {
    pub replication: u16,
    pub min_insync: String,
}

impl From<Durability> for DurabilityText {
    fn from(durability: Durability) -> DurabilityText {
        DurabilityText {
            replication: durability.replication,
            min_insync: durability.min_insync.to_string(),
        }
    }
}

/// A poisoned lock guards nothing half-updated here (clients and plain values), so it is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits (up to `timeout`) until the producer has nothing in flight: every message acknowledged
/// and its delivery report served by the producer's own polling thread.
///
/// Call it before `commit_transaction`: rust-rdkafka's commit first flushes, and its flush, when
/// a message is still in flight, polls the event queue for 100 ms at a time, a queue that the
/// producer's polling thread serves instead. Every commit then cost ~100 ms whatever its size
/// (measured: a transaction of 241 commands, 139 ms). Waiting here in short naps first makes that
/// flush find nothing to do.
pub fn settle<C: rdkafka::producer::ProducerContext, P: Producer<C>>(
    producer: &P,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Runs a future to completion on this thread. rdkafka's futures are completed by its own
/// background threads, so nothing else is needed to drive them.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}

fn broker_error<'a>(
    topic: &'a str,
    partition: Option<u32>,
    operation: &'static str,
) -> impl FnOnce(KafkaError) -> LogError + 'a {
    move |cause| LogError::Broker {
        topic: topic.to_owned(),
        partition,
        operation,
        cause: Box::new(cause),
    }
}

fn is_unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
    )
}

impl KafkaLog {
    /// Builds the clients, checks that the cluster answers, and initialises transactions
    /// (which fences an earlier producer with the same transactional id).
    pub fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        let timeout = config.request_timeout();
        let request_timeout_ms = config.request_timeout_ms.to_string();
        let transaction_timeout_ms = config.transaction_timeout_ms.to_string();
        let transactional_id = config
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", config.client_id, uuid::Uuid::now_v7()));

        let recovering = Recovering::new(&config.bootstrap);
        let recovery = Arc::clone(&recovering.0);
        let producer: FutureProducer<Recovering> = config
            .properties
            .client_config(&config.bootstrap)
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
            .set("client.id", &config.client_id)
            .set("transactional.id", &transactional_id)
            .set("transaction.timeout.ms", &transaction_timeout_ms)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("retries", "2147483647")
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "1000")
            .set("linger.ms", config.linger_ms.to_string())
            .set("compression.type", "none")
            .set("message.timeout.ms", &transaction_timeout_ms)
            .set("request.timeout.ms", &request_timeout_ms)
            .set("socket.timeout.ms", &request_timeout_ms)
            // Appends name their partition; this only matters to someone producing without
            // one, and is Kafka's (Java) default, which `partition_for_key` reproduces.
            .set("partitioner", "murmur2_random")
            .set("allow.auto.create.topics", "false")
            .create_with_context(recovering)
            .map_err(broker_error("", None, "create producer"))?;
        recovery.attach(producer.client());

        let admin: AdminClient<DefaultClientContext> = config
            .properties
            .client_config(&config.bootstrap)
            .set("client.id", format!("{}-admin", config.client_id))
            .set("socket.timeout.ms", &request_timeout_ms)
            .create()
            .map_err(broker_error("", None, "create admin client"))?;

        let offsets_client = |isolation_level: &str| -> Result<BaseConsumer, LogError> {
            config
                .properties
                .client_config(&config.bootstrap)
                .set("client.id", format!("{}-offsets", config.client_id))
                .set(
                    "group.id",
                    format!("{}-offsets-{}", config.client_id, uuid::Uuid::now_v7()),
                )
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", isolation_level)
                .set("allow.auto.create.topics", "false")
                .set("socket.timeout.ms", &request_timeout_ms)
                // No statistics, and so no broker recovery: this client is never polled, and
                // every report would wait in its queue for good. A lost cluster fails its
                // calls, and the projector connects again (`ProjectionError::is_transient`).
                .create()
                .map_err(broker_error("", None, "create metadata client"))
        };
        let meta = offsets_client("read_uncommitted")?;
        let stable = offsets_client("read_committed")?;

        // Fail now, with a clear error, if the cluster does not answer.
        meta.fetch_metadata(None, timeout)
            .map_err(broker_error("", None, "fetch metadata"))?;
        init_transactions_patiently(&producer, timeout)?;

        Ok(KafkaLog {
            config,
            producer: Mutex::new(producer),
            admin,
            meta,
            stable,
            partition_counts: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration this log was opened with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// The topic's name on the cluster (with the prefix), checked against Kafka's rules.
    pub fn kafka_topic_name(&self, topic: &str) -> Result<String, LogError> {
        validate_topic_name(topic)?;
        let full = format!("{}{topic}", self.config.topic_prefix);
        validate_topic_name(&full)?;
        Ok(full)
    }

    /// Deletes topics (names without the prefix); a topic that does not exist is not an error.
    /// Not part of [`EventLog`]: an event log never deletes anything, but tests clean up.
    pub fn delete_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        let names = topics
            .iter()
            .map(|t| self.kafka_topic_name(t))
            .collect::<Result<Vec<_>, _>>()?;
        {
            let mut readers = lock(&self.readers);
            readers.retain(|(name, _), _| !names.contains(name));
            let mut counts = lock(&self.partition_counts);
            for name in &names {
                counts.remove(name);
            }
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = block_on(self.admin.delete_topics(&refs, &self.admin_options())).map_err(
            broker_error(topics.first().copied().unwrap_or(""), None, "delete topics"),
        )?;
        for (result, topic) in results.into_iter().zip(topics) {
            match result {
                Ok(_) => {}
                Err((_, code)) if is_unknown_topic(code) => {}
                Err((_, code)) => {
                    return Err(LogError::Broker {
                        topic: (*topic).to_owned(),
                        partition: None,
                        operation: "delete topic",
                        cause: Box::new(KafkaError::AdminOp(code)),
                    });
                }
            }
        }
        Ok(())
    }

    fn admin_options(&self) -> AdminOptions {
        let timeout = self.config.request_timeout();
        AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout))
    }

    /// The partition count of a topic as the cluster reports it now; `None` if it does not exist.
    fn fetch_partition_count(&self, topic: &str, full: &str) -> Result<Option<u32>, LogError> {
        let metadata = match self
            .meta
            .fetch_metadata(Some(full), self.config.request_timeout())
        {
            Ok(metadata) => metadata,
            Err(KafkaError::MetadataFetch(code)) if is_unknown_topic(code) => return Ok(None),
            Err(e) => return Err(broker_error(topic, None, "fetch metadata")(e)),
        };
        let Some(found) = metadata.topics().iter().find(|t| t.name() == full) else {
            return Ok(None);
        };
        if let Some(error) = found.error() {
            let code = RDKafkaErrorCode::from(error);
            if is_unknown_topic(code) {
                return Ok(None);
            }
            return Err(LogError::Broker {
                topic: topic.to_owned(),
                partition: None,
                operation: "fetch metadata",
                cause: Box::new(KafkaError::MetadataFetch(code)),
            });
        }
        if found.partitions().is_empty() {
            return Ok(None);
        }
        Ok(Some(found.partitions().len() as u32))
    }

    /// The partition count, from the cache or the cluster.
    fn partition_count(&self, topic: &str, full: &str) -> Result<u32, LogError> {
        if let Some(&n) = lock(&self.partition_counts).get(full) {
            return Ok(n);
        }
        let n = self
            .fetch_partition_count(topic, full)?
            .ok_or_else(|| LogError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        lock(&self.partition_counts).insert(full.to_owned(), n);
        Ok(n)
    }

    /// The full topic name, after checking that the topic has this partition.
    fn locate(&self, topic: &str, partition: u32) -> Result<String, LogError> {
        let full = self.kafka_topic_name(topic)?;
        let partitions = self.partition_count(topic, &full)?;
        if partition >= partitions {
            return Err(LogError::NoSuchPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        Ok(full)
    }

    /// Waits until the metadata shows the topic with `partitions` partitions, each with a leader.
    fn wait_for_topic(&self, topic: &str, full: &str, partitions: u32) -> Result<(), LogError> {
        let deadline = Instant::now() + self.config.request_timeout();
        loop {
            let ready = match self
                .meta
                .fetch_metadata(Some(full), self.config.request_timeout())
            {
                Ok(metadata) => metadata.topics().iter().any(|t| {
                    t.name() == full
                        && t.error().is_none()
                        && t.partitions().len() as u32 == partitions
                        && t.partitions()
                            .iter()
                            .all(|p| p.error().is_none() && p.leader() >= 0)
                }),
                Err(KafkaError::MetadataFetch(code)) if is_unknown_topic(code) => false,
                Err(e) => return Err(broker_error(topic, None, "fetch metadata")(e)),
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LogError::Timeout {
                    topic: topic.to_owned(),
                    partition: None,
                    operation: "wait for a created topic",
                });
            }
            thread::sleep(TOPIC_WAIT_STEP);
        }
    }

    fn new_reader(&self, topic: &str, partition: u32) -> Result<Reader, LogError> {
        let request_timeout_ms = self.config.request_timeout_ms.to_string();
        let consumer: BaseConsumer<ReaderContext> = self
            .config
            .properties
            .client_config(&self.config.bootstrap)
            .set("client.id", format!("{}-reader", self.config.client_id))
            // Needed by librdkafka's assign(); the group is never joined and nothing is committed.
            .set(
                "group.id",
                format!("{}-reader-{}", self.config.client_id, uuid::Uuid::now_v7()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
            .set("fetch.min.bytes", "1")
            .set("queued.max.messages.kbytes", READ_PREFETCH_KBYTES)
            .set("check.crcs", "true")
            .set("allow.auto.create.topics", "false")
            .set("socket.timeout.ms", &request_timeout_ms)
            // No statistics, and so no broker recovery: a reader is polled only while it reads,
            // and an idle one would queue a report every interval until its next read.
            .create_with_context(ReaderContext)
            .map_err(broker_error(topic, Some(partition), "create consumer"))?;
        Ok(Reader {
            consumer,
            streaming: false,
            position: 0,
            positioned_stable_end: 0,
            ended: None,
        })
    }

    fn reader(&self, topic: &str, full: &str, partition: u32) -> Result<SharedReader, LogError> {
        let key = (full.to_owned(), partition);
        if let Some(reader) = lock(&self.readers).get(&key) {
            return Ok(Arc::clone(reader));
        }
        // Built outside the map's lock: creating a client takes a moment.
        let reader = Arc::new(Mutex::new(self.new_reader(topic, partition)?));
        Ok(Arc::clone(lock(&self.readers).entry(key).or_insert(reader)))
    }

    /// Produces `records` in the open transaction and waits for every delivery; returns the
    /// offset of the first.
    fn produce_all(
        &self,
        producer: &FutureProducer<Recovering>,
        topic: &str,
        full: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<(Offset, Offset), LogError> {
        let deadline =
            Instant::now() + Duration::from_millis(u64::from(self.config.transaction_timeout_ms));
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (name, value) in &record.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value.as_slice()),
                });
            }
            let mut message = FutureRecord::to(full)
                .partition(partition as i32)
                .key(record.key.as_slice())
                .payload(record.value.as_slice())
                .timestamp(record.timestamp_ms)
                .headers(headers);
            loop {
                match producer.send_result(message) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        // Deliveries are in flight; wait for room in librdkafka's queue.
                        message = back;
                        thread::sleep(QUEUE_FULL_BACKOFF);
                    }
                    Err((e, _)) => return Err(broker_error(topic, Some(partition), "produce")(e)),
                }
            }
        }
        let mut span: Option<(i64, i64)> = None;
        for delivery in deliveries {
            match block_on(delivery) {
                Ok(Ok(delivered)) => {
                    let o = delivered.offset;
                    span = Some(span.map_or((o, o), |(first, last)| (first.min(o), last.max(o))));
                }
                Ok(Err((e, _))) => return Err(broker_error(topic, Some(partition), "produce")(e)),
                Err(_canceled) => {
                    return Err(broker_error(topic, Some(partition), "produce")(
                        KafkaError::Canceled,
                    ));
                }
            }
        }
        match span {
            Some((first, last)) if first >= 0 => Ok((first as Offset, last as Offset)),
            _ => Err(LogError::Broker {
                topic: topic.to_owned(),
                partition: Some(partition),
                operation: "produce (delivery report without an offset)",
                cause: Box::new(KafkaError::MessageProduction(RDKafkaErrorCode::Fail)),
            }),
        }
    }

    /// Commits the open transaction, retrying while librdkafka says the error is retriable.
    fn commit(
        &self,
        producer: &FutureProducer<Recovering>,
        topic: &str,
        partition: u32,
    ) -> Result<(), LogError> {
        let timeout = self.config.request_timeout();
        let deadline = Instant::now() + timeout;
        loop {
            settle(producer, timeout);
            match producer.commit_transaction(timeout) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(ref e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::warn!(topic, partition, error = %e, "retrying a Kafka transaction commit");
                }
                Err(e) => {
                    return Err(broker_error(topic, Some(partition), "commit transaction")(
                        e,
                    ));
                }
            }
        }
    }

    /// Waits until the batch at `first..=last` is visible to read_committed readers (the
    /// commit markers are written by the broker after the commit returns), so that whoever reads
    /// after `append` returned, in this process or another, sees the batch. If an earlier open
    /// transaction of another producer holds the last stable offset below the batch, it waits
    /// only until something follows the batch (its commit marker, in a single-writer partition).
    fn wait_visible(
        &self,
        topic: &str,
        full: &str,
        partition: u32,
        first: Offset,
        last: Offset,
    ) -> Result<(), LogError> {
        let timeout = self.config.request_timeout();
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(500);
        loop {
            let (_, stable_end) = watermarks(&self.stable, full, partition, timeout).map_err(
                broker_error(topic, Some(partition), "fetch the last stable offset"),
            )?;
            if stable_end > last as i64 {
                return Ok(());
            }
            if stable_end < first as i64 {
                let (_, high) = watermarks(&self.meta, full, partition, timeout)
                    .map_err(broker_error(topic, Some(partition), "fetch watermarks"))?;
                if high > last as i64 + 1 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(LogError::Timeout {
                    topic: topic.to_owned(),
                    partition: Some(partition),
                    operation: "wait for a committed append to become visible",
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn abort(&self, producer: &FutureProducer<Recovering>, topic: &str, partition: u32) {
        if let Err(e) = producer.abort_transaction(self.config.request_timeout()) {
            // The producer may be unusable now (e.g. fenced); the next append reports it.
            tracing::error!(topic, partition, error = %e, "aborting a Kafka transaction failed");
        }
    }

    /// Whether the reader has every committed record: its consumer's position (which
    /// librdkafka moves past transaction markers, records it never hands out) is at the last
    /// stable offset, asked again once the one known is reached. A read_committed consumer
    /// reports the end of a partition only at the high watermark, so while a processor's
    /// transaction is open past the last stable offset, a read that waited for the end waited
    /// for that transaction, or for the request timeout (the projector ran 16 s behind).
    fn at_stable_end(
        &self,
        reader: &mut Reader,
        topic: &str,
        full: &str,
        partition: u32,
    ) -> Result<bool, LogError> {
        let consumed = reader
            .consumer
            .position()
            .ok()
            .and_then(|list| {
                list.find_partition(full, partition as i32)
                    .and_then(|e| e.offset().to_raw())
            })
            .unwrap_or(-1);
        let position = consumed.max(reader.position as i64);
        if position < reader.positioned_stable_end {
            return Ok(false);
        }
        let (_, stable_end) =
            watermarks(&self.stable, full, partition, self.config.request_timeout()).map_err(
                broker_error(topic, Some(partition), "fetch the last stable offset"),
            )?;
        reader.positioned_stable_end = stable_end;
        Ok(stable_end <= position)
    }

    fn poll_into(
        &self,
        reader: &mut Reader,
        (topic, full): (&str, &str),
        partition: u32,
        max_records: usize,
        out: &mut Vec<StoredRecord>,
    ) -> Result<(), LogError> {
        let deadline = Instant::now() + self.config.request_timeout();
        let mut idle = true;
        while out.len() < max_records {
            if idle && self.at_stable_end(reader, topic, full, partition)? {
                // At the end, like a reported end: unassigned until the next read positions it.
                reader.streaming = false;
                reader.ended = Some((reader.position, reader.positioned_stable_end));
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                if out.is_empty() {
                    return Err(LogError::Timeout {
                        topic: topic.to_owned(),
                        partition: Some(partition),
                        operation: "read",
                    });
                }
                return Ok(());
            }
            match reader.consumer.poll(remaining.min(STABLE_END_CHECK)) {
                None => idle = true,
                Some(Ok(message)) => {
                    idle = false;
                    let offset = message.offset();
                    if offset < 0 {
                        continue;
                    }
                    let headers = message
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(StoredRecord {
                        topic: topic.to_owned(),
                        partition,
                        offset: offset as Offset,
                        record: Record {
                            key: message.key().map(<[u8]>::to_vec).unwrap_or_default(),
                            value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                            headers,
                            timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
                        },
                    });
                    reader.position = offset as Offset + 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    reader.streaming = false;
                    reader.ended = Some((reader.position, reader.positioned_stable_end));
                    return Ok(());
                }
                Some(Err(e)) => {
                    // Position again on the next read rather than trust the consumer's state.
                    reader.streaming = false;
                    return Err(broker_error(topic, Some(partition), "read")(e));
                }
            }
        }
        Ok(())
    }
}

/// `init_transactions`, asked again while the transaction coordinator is not ready, until
/// `timeout`: a cluster that just started creates `__transaction_state` for its first
/// transactional producer and answers "not coordinator" or "coordinator load in progress"
/// meanwhile (librdkafka gave up with the first in a CI run on a fresh broker).
fn init_transactions_patiently<C: rdkafka::producer::ProducerContext + 'static>(
    producer: &FutureProducer<C>,
    timeout: Duration,
) -> Result<(), LogError> {
    patiently_init_transactions(|| producer.init_transactions(timeout), timeout)
        .map_err(broker_error("", None, "init transactions"))
}

/// Calls `init` (a producer's `init_transactions`) again while it fails because the transaction
/// coordinator is not ready, until `timeout`; any other error, or the last, is returned. Every
/// transactional producer of yeyak starts through it (`KafkaLog`, the processors).
pub fn patiently_init_transactions(
    mut init: impl FnMut() -> Result<(), KafkaError>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        let error = match init() {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let coordinator_not_ready = matches!(
            &error,
            KafkaError::Transaction(e) if e.is_retriable() || matches!(
                e.code(),
                RDKafkaErrorCode::NotCoordinator
                    | RDKafkaErrorCode::CoordinatorLoadInProgress
                    | RDKafkaErrorCode::CoordinatorNotAvailable
            )
        );
        if !coordinator_not_ready || Instant::now() >= deadline {
            return Err(error);
        }
        tracing::info!(%error, "the transaction coordinator is not ready; asking again");
        thread::sleep(Duration::from_millis(500));
    }
}

impl EventLog for KafkaLog {
    fn dense_offsets(&self) -> bool {
        false
    }

    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        let full = self.kafka_topic_name(topic)?;
        if partitions == 0 || partitions > i32::MAX as u32 {
            return Err(LogError::InvalidPartitionCount {
                topic: topic.to_owned(),
                partitions,
            });
        }
        let compare = |existing: u32| {
            if existing == partitions {
                Ok(())
            } else {
                Err(LogError::TopicExists {
                    topic: topic.to_owned(),
                    existing,
                    requested: partitions,
                })
            }
        };
        if let Some(existing) = self.fetch_partition_count(topic, &full)? {
            lock(&self.partition_counts).insert(full.clone(), existing);
            return compare(existing);
        }
        let durability = self
            .config
            .topic_settings
            .resolve_on(self.admin.inner(), self.config.request_timeout())
            .map_err(|cause| LogError::TopicSettings {
                topic: topic.to_owned(),
                cause,
            })?;
        let durability = DurabilityText::from(durability);
        let new_topic = log_topic(&full, partitions, &durability);
        let results = block_on(
            self.admin
                .create_topics([&new_topic], &self.admin_options()),
        )
        .map_err(broker_error(topic, None, "create topic"))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    // Someone else created it meanwhile: compare with theirs.
                    self.wait_for_topic_any(topic, &full)?;
                    let existing = self.fetch_partition_count(topic, &full)?.ok_or_else(|| {
                        LogError::UnknownTopic {
                            topic: topic.to_owned(),
                        }
                    })?;
                    lock(&self.partition_counts).insert(full.clone(), existing);
                    return compare(existing);
                }
                Err((_, code)) => {
                    return Err(LogError::Broker {
                        topic: topic.to_owned(),
                        partition: None,
                        operation: "create topic",
                        cause: Box::new(KafkaError::AdminOp(code)),
                    });
                }
            }
        }
        self.wait_for_topic(topic, &full, partitions)?;
        tracing::debug!(topic = full, partitions, "created Kafka topic");
        lock(&self.partition_counts).insert(full, partitions);
        Ok(())
    }

    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        let full = self.kafka_topic_name(topic)?;
        let n =
            self.fetch_partition_count(topic, &full)?
                .ok_or_else(|| LogError::UnknownTopic {
                    topic: topic.to_owned(),
                })?;
        lock(&self.partition_counts).insert(full, n);
        Ok(n)
    }

    fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Offset, LogError> {
        let full = self.locate(topic, partition)?;
        if records.is_empty() {
            return self.end_offset(topic, partition);
        }
        if let Some(index) = records.iter().position(|r| r.timestamp_ms <= 0) {
            return Err(LogError::InvalidRecord {
                topic: topic.to_owned(),
                partition,
                index,
                reason: format!(
                    "timestamp {} ms: Kafka records need a positive timestamp",
                    records[index].timestamp_ms
                ),
            });
        }
        let producer = lock(&self.producer);
        producer.begin_transaction().map_err(broker_error(
            topic,
            Some(partition),
            "begin transaction",
        ))?;
        let (first, last) = match self.produce_all(&producer, topic, &full, partition, records) {
            Ok(span) => span,
            Err(e) => {
                self.abort(&producer, topic, partition);
                return Err(e);
            }
        };
        if let Err(e) = self.commit(&producer, topic, partition) {
            if let LogError::Broker { cause, .. } = &e
                && let KafkaError::Transaction(rde) = cause.as_ref()
                && rde.txn_requires_abort()
            {
                self.abort(&producer, topic, partition);
            }
            return Err(e);
        }
        // Committed. Another append may start while we wait: it is a new transaction.
        drop(producer);
        self.wait_visible(topic, &full, partition, first, last)?;
        Ok(first)
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let full = self.locate(topic, partition)?;
        if max_records == 0 {
            return Ok(Vec::new());
        }
        let reader = self.reader(topic, &full, partition)?;
        let mut reader = lock(&reader);
        if !(reader.streaming && reader.position == from) {
            // Position the consumer. Nothing to fetch at or past the last stable offset, and a
            // fetch there would only wait for the broker's fetch.wait.max.ms.
            reader.streaming = false;
            // Asked through `stable`: the reader's own connection may be busy with a fetch.
            let (_, stable_end) = watermarks(
                &self.stable,
                &full,
                partition,
                self.config.request_timeout(),
            )
            .map_err(broker_error(topic, Some(partition), "fetch watermarks"))?;
            if i64::try_from(from).map_or(true, |f| f >= stable_end) {
                return Ok(Vec::new());
            }
            if let Some((end, end_stable)) = reader.ended
                && from >= end
                && stable_end == end_stable
            {
                return Ok(Vec::new());
            }
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&full, partition as i32, KafkaOffset::Offset(from as i64))
                .map_err(broker_error(topic, Some(partition), "assign"))?;
            reader.ended = None;
            reader.consumer.assign(&assignment).map_err(broker_error(
                topic,
                Some(partition),
                "assign",
            ))?;
            reader.streaming = true;
            reader.position = from;
            reader.positioned_stable_end = stable_end;
        }
        let mut out = Vec::with_capacity(max_records.min(4096));
        let result = self.poll_into(
            &mut reader,
            (topic, &full),
            partition,
            max_records,
            &mut out,
        );
        if !reader.streaming {
            // At the end (or failed): stop fetching until the next read positions it again.
            if let Err(e) = reader.consumer.unassign() {
                tracing::warn!(topic, partition, error = %e, "unassigning a Kafka reader failed");
            }
        }
        result?;
        Ok(out)
    }

    fn end_offset(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        let full = self.locate(topic, partition)?;
        let (_, high) = watermarks(&self.meta, &full, partition, self.config.request_timeout())
            .map_err(broker_error(topic, Some(partition), "fetch watermarks"))?;
        Ok(high.max(0) as Offset)
    }

    fn stable_end(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        let full = self.locate(topic, partition)?;
        let (_, stable_end) = watermarks(
            &self.stable,
            &full,
            partition,
            self.config.request_timeout(),
        )
        .map_err(broker_error(
            topic,
            Some(partition),
            "fetch the last stable offset",
        ))?;
        Ok(stable_end.max(0) as Offset)
    }

    fn stream<'s>(&'s self, from: &[Position]) -> Result<Box<dyn LogStream + 's>, LogError> {
        Ok(Box::new(KafkaStream::open(self, from)?))
    }

    fn topics(&self) -> Result<Vec<String>, LogError> {
        let metadata = self
            .meta
            .fetch_metadata(None, self.config.request_timeout())
            .map_err(broker_error("", None, "fetch metadata"))?;
        let prefix = &self.config.topic_prefix;
        let mut topics: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with(INTERNAL_TOPIC_PREFIX))
            .filter_map(|t| t.name().strip_prefix(prefix.as_str()))
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        topics.sort();
        topics.dedup();
        Ok(topics)
    }
}

impl Drop for KafkaLog {
    /// Closes the readers in parallel: closing a consumer takes librdkafka a while (~100 ms).
    fn drop(&mut self) {
        let readers: Vec<_> = lock(&self.readers)
            .drain()
            .map(|(_, reader)| reader)
            .collect();
        let closing: Vec<_> = readers
            .into_iter()
            .map(|reader| thread::spawn(move || drop(reader)))
            .collect();
        for handle in closing {
            let _ = handle.join();
        }
    }
}

impl KafkaLog {
    /// Waits until the metadata shows the topic at all (created by someone else).
    fn wait_for_topic_any(&self, topic: &str, full: &str) -> Result<(), LogError> {
        let deadline = Instant::now() + self.config.request_timeout();
        while self.fetch_partition_count(topic, full)?.is_none() {
            if Instant::now() >= deadline {
                return Err(LogError::Timeout {
                    topic: topic.to_owned(),
                    partition: None,
                    operation: "wait for a topic created by another client",
                });
            }
            thread::sleep(TOPIC_WAIT_STEP);
        }
        Ok(())
    }
}

/// A consumed Kafka message as the log's record type, with its coordinates.
pub fn stored_record(message: &BorrowedMessage<'_>) -> StoredRecord {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|Header { key, value }| (key.to_owned(), value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    StoredRecord {
        topic: message.topic().to_owned(),
        partition: message.partition() as u32,
        offset: message.offset() as u64,
        record: Record {
            key: message.key().unwrap_or_default().to_vec(),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
            timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
        },
    }
}

/// [`LogStream`] on Kafka: one read_committed consumer assigned every partition asked for, at
/// its offset, streaming on. A poll costs no request per partition: the consumer fetches all of
/// them in one request per broker, and a partition's records are handed out as soon as their
/// transaction commits (no wait for an end of partition, which a read_committed consumer is
/// told only at the high watermark).
pub struct KafkaStream {
    consumer: BaseConsumer<ReaderContext>,
    prefix: String,
    /// The offset after the last record handed out (or where the stream started), by (topic
    /// without the prefix, partition).
    next: HashMap<(String, u32), Offset>,
}

impl KafkaStream {
    fn open(log: &KafkaLog, from: &[Position]) -> Result<KafkaStream, LogError> {
        let config = &log.config;
        let consumer: BaseConsumer<ReaderContext> = config
            .properties
            .client_config(&config.bootstrap)
            .set("client.id", format!("{}-stream", config.client_id))
            // Needed by librdkafka's assign(); the group is never joined and nothing is committed.
            .set(
                "group.id",
                format!("{}-stream-{}", config.client_id, uuid::Uuid::now_v7()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", STREAM_FETCH_WAIT_MAX_MS)
            .set("fetch.min.bytes", "1")
            .set("queued.max.messages.kbytes", STREAM_PREFETCH_KBYTES)
            .set("check.crcs", "true")
            .set("allow.auto.create.topics", "false")
            .set("socket.timeout.ms", config.request_timeout_ms.to_string())
            // No statistics, and so no broker recovery: a stream that stops getting records while
            // its partitions grow is the follower's to notice (it connects again).
            .create_with_context(ReaderContext)
            .map_err(broker_error("", None, "create the stream's consumer"))?;
        let mut assignment = TopicPartitionList::new();
        let mut next = HashMap::new();
        for p in from {
            let full = log.locate(&p.topic, p.partition)?;
            // Beyond any partition's end: the consumer reports it (`auto.offset.reset=error`).
            let offset = i64::try_from(p.offset).unwrap_or(i64::MAX);
            assignment
                .add_partition_offset(&full, p.partition as i32, KafkaOffset::Offset(offset))
                .map_err(broker_error(&p.topic, Some(p.partition), "assign"))?;
            next.insert((p.topic.clone(), p.partition), p.offset);
        }
        consumer.assign(&assignment).map_err(broker_error(
            "",
            None,
            "assign the stream's partitions",
        ))?;
        Ok(KafkaStream {
            consumer,
            prefix: config.topic_prefix.clone(),
            next,
        })
    }
}

impl LogStream for KafkaStream {
    fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < max_records.max(1) {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(message)) => {
                    let mut record = stored_record(&message);
                    let Some(topic) = record.topic.strip_prefix(self.prefix.as_str()) else {
                        continue;
                    };
                    record.topic = topic.to_owned();
                    self.next
                        .insert((record.topic.clone(), record.partition), record.offset + 1);
                    out.push(record);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(broker_error("", None, "stream")(e)),
            }
            // Whatever else is already here, without waiting again.
            timeout = Duration::ZERO;
        }
        Ok(out)
    }

    fn position(&mut self, topic: &str, partition: u32) -> Option<Offset> {
        let next = *self.next.get(&(topic.to_owned(), partition))?;
        // librdkafka's position also moves past the transaction markers it skips.
        let full = format!("{}{topic}", self.prefix);
        let consumed = self
            .consumer
            .position()
            .ok()
            .and_then(|list| {
                list.find_partition(&full, partition as i32)
                    .and_then(|e| e.offset().to_raw())
            })
            .and_then(|raw| Offset::try_from(raw).ok());
        Some(consumed.map_or(next, |c| c.max(next)))
    }
}
