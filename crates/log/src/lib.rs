//! The event log the ledger runs on (topics, partitions, keys, offsets with Apache Kafka's
//! semantics): the embedded file-backed implementation and the Kafka adapter. Only [`codec`]
//! knows what a record holds (an event envelope) and which topics the ledger has; the rest
//! moves bytes.
//!
//! Architecture invariant: a log opened read-only ([`FileLog::open_read_only`]) never changes a
//! byte on disk, whatever it finds there.
//!
//! - [`EventLog`] is the trait the ledger uses. It mentions no file-specific type, so a Kafka
//!   adapter can implement it too.
//! - [`FileLog`] is the embedded implementation, used when no Kafka broker is configured. Its
//!   on-disk format ("yeyak-log v1", documented in [`mod@file`]) is also the format of exported
//!   logs handed to auditors. [`FileLog::open`] is the writer's open: it repairs what a crash
//!   left (truncates a torn tail). [`FileLog::open_read_only`] is the auditors': it repairs
//!   nothing, reads up to the first damage of each partition and lists every [`Damage`].
//! - [`partition_for_key`] maps a key to a partition exactly like Kafka's default partitioner.

pub mod broker_recovery;
pub mod campaign_file;
pub mod client_properties;
pub mod codec;
pub mod file;
pub mod kafka;
pub mod partitioner;
pub mod stream;
pub mod topic_settings;

pub use broker_recovery::{BrokerRecovery, Recovering};
pub use campaign_file::{CampaignFileError, load_campaign};
pub use client_properties::{ClientProperties, PropertyError, client_config};
pub use file::{Damage, DamageKind, FileLog, FileLogConfig, FsyncPolicy};
pub use kafka::{KafkaConfig, KafkaLog};
pub use partitioner::partition_for_key;
pub use stream::{LogStream, PartitionReads, Position};
pub use topic_settings::{Durability, TopicSettings, TopicSettingsError};

use std::path::PathBuf;

/// Position of a record within one partition; the first record of a partition has offset 0.
pub type Offset = u64;

/// One record to append. Headers carry metadata such as the event type and command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: i64,
}

/// A record as read back, with its coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: Offset,
    pub record: Record,
}

/// Everything that can go wrong in a log. Each variant carries the coordinates it concerns.
///
/// `Display` describes this level only; the underlying cause, if any, is available through
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The topic does not exist (call [`EventLog::ensure_topic`] first).
    #[error("unknown topic {topic:?}")]
    UnknownTopic { topic: String },

    /// The topic exists but has no partition with this number.
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    NoSuchPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },

    /// The topic exists with a different partition count than requested.
    #[error("topic {topic:?} exists with {existing} partitions, not {requested}")]
    TopicExists {
        topic: String,
        existing: u32,
        requested: u32,
    },

    /// The topic settings cannot be met by the cluster, or an existing topic differs from them.
    #[error("the settings of topic {topic:?} are refused")]
    TopicSettings {
        topic: String,
        #[source]
        cause: TopicSettingsError,
    },

    /// A topic must have at least one partition.
    #[error("topic {topic:?} cannot have {partitions} partitions")]
    InvalidPartitionCount { topic: String, partitions: u32 },

    /// Stored data is damaged in a way that is not a torn tail left by a crash, e.g. a bad
    /// checksum in the middle of a sealed segment. `position` is the byte position in `path`
    /// where the damaged record (or header) starts.
    #[error(
        "corrupt log data in topic {topic:?} partition {partition}, {} at byte {position}: {reason}",
        path.display()
    )]
    Corrupt {
        topic: String,
        partition: u32,
        path: PathBuf,
        position: u64,
        reason: String,
    },

    /// A topic's metadata file (`topic.json`) is missing fields or unreadable.
    #[error("corrupt metadata for topic {topic:?} in {}: {reason}", path.display())]
    CorruptMetadata {
        topic: String,
        path: PathBuf,
        reason: String,
    },

    /// A topic name that Kafka would also reject.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// A record whose encoded size exceeds the configured maximum. `index` is its position in
    /// the slice given to `append`.
    #[error(
        "record {index} for topic {topic:?} partition {partition} is {size_bytes} bytes, more than the maximum {max_bytes}"
    )]
    RecordTooLarge {
        topic: String,
        partition: u32,
        index: usize,
        size_bytes: u64,
        max_bytes: u32,
    },

    /// A record the format cannot represent (e.g. more than 65535 headers, or a header name
    /// longer than 65535 bytes). `index` is its position in the slice given to `append`.
    #[error("record {index} for topic {topic:?} partition {partition} cannot be stored: {reason}")]
    InvalidRecord {
        topic: String,
        partition: u32,
        index: usize,
        reason: String,
    },

    /// A write (`operation`: "append", "create topic") on a log opened with
    /// [`FileLog::open_read_only`], refused before touching anything.
    #[error(
        "{operation} refused{}: the log at {} is open read-only",
        coordinates(topic, *partition),
        root.display()
    )]
    ReadOnly {
        root: PathBuf,
        topic: String,
        partition: Option<u32>,
        operation: &'static str,
    },

    /// A request to the Kafka cluster failed (the cause is librdkafka's error). `topic` is empty
    /// for operations on no particular topic, such as connecting.
    #[error("Kafka {operation} failed{}", coordinates(topic, *partition))]
    Broker {
        topic: String,
        partition: Option<u32>,
        operation: &'static str,
        /// Boxed: librdkafka's error is large, and every `Result` of the log carries `LogError`.
        #[source]
        cause: Box<rdkafka::error::KafkaError>,
    },

    /// The Kafka cluster did not answer in time.
    #[error("Kafka {operation} timed out{}", coordinates(topic, *partition))]
    Timeout {
        topic: String,
        partition: Option<u32>,
        operation: &'static str,
    },
}

/// " on topic \"t\" partition p" for the messages of variants whose partition is optional;
/// nothing for no topic.
fn coordinates(topic: &str, partition: Option<u32>) -> String {
    match (topic.is_empty(), partition) {
        (true, _) => String::new(),
        (false, None) => format!(" on topic {topic:?}"),
        (false, Some(p)) => format!(" on topic {topic:?} partition {p}"),
    }
}

/// The log the ledger runs on: the embedded file log or Apache Kafka.
pub trait EventLog: Send + Sync {
    /// Creates the topic with `partitions` partitions if missing; fine if it exists with the same count; error if different.
    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError>;

    /// The number of partitions of an existing topic.
    fn partitions(&self, topic: &str) -> Result<u32, LogError>;

    /// Appends `records` to one partition atomically and in order (all or none become visible,
    /// also after a crash); returns the offset of the first. An empty slice is a no-op returning the end offset.
    fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Offset, LogError>;

    /// Up to `max_records` records from offset `from` (inclusive), in offset order; empty at the end.
    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError>;

    /// The offset the next append will get (the "high watermark").
    fn end_offset(&self, topic: &str, partition: u32) -> Result<Offset, LogError>;

    /// The offset below which every record is readable now: the end for the file log, the last
    /// stable offset on Kafka (below the first record of a transaction still open). A reader
    /// whose [`LogStream::position`] reached it has every record committed when it was asked.
    fn stable_end(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        self.end_offset(topic, partition)
    }

    /// Reads many partitions at once, each from its own offset, as their records arrive: what a
    /// follower of the whole log (the PostgreSQL projector) polls. By default, reads of one
    /// partition after another ([`PartitionReads`]); Kafka streams them through one consumer.
    fn stream<'s>(&'s self, from: &[Position]) -> Result<Box<dyn LogStream + 's>, LogError> {
        Ok(Box::new(PartitionReads::new(self, from)))
    }

    /// Whether offsets are consecutive (every offset below the end holds a record). The file log's
    /// are; Kafka's are not (transaction markers take offsets), so a reader there may only rely on
    /// offsets increasing.
    fn dense_offsets(&self) -> bool {
        true
    }

    /// Topics that exist, sorted.
    fn topics(&self) -> Result<Vec<String>, LogError>;

    /// Makes every append that returned before this call durable, when the log defers that to
    /// this call ([`file::FsyncPolicy::OnSync`]: many appends share one fsync per partition).
    /// A no-op for a log whose appends are durable when they return, or never forced.
    fn sync(&self) -> Result<(), LogError> {
        Ok(())
    }
}
