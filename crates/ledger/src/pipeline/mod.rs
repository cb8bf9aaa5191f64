//! The production pipeline on Apache Kafka: command topics in, event topics out, one writer per
//! partition, exactly once.
//!
//! A [`processor::Processor`] is a member of a consumer group over the three command topics. For
//! every batch it decides the commands with the pure domain, produces their events to the
//! partition of the same number in the event topic, produces follow-up commands for other
//! partitions, and commits the consumed offsets, all in ONE Kafka transaction. A crash anywhere
//! aborts the transaction: nothing it produced becomes visible (readers use `read_committed`) and
//! the commands are consumed again by whoever owns the partition next. A zombie whose partitions
//! were reassigned is fenced by the group generation when it tries to commit (KIP-447).
//!
//! Not here: the embedded runtime (`crate`), the read models (`yeyak_read::projection`).

pub mod admin;
pub mod batch;
pub mod client;
pub mod decided;
pub mod incarnation;
pub mod ledger_lag;
pub mod processor;
pub mod submission;
pub mod watchdog;
pub mod writer;

use crate::{TOPIC_CLINIC, TOPIC_SUBJECT, TOPIC_WAITING_ROOM, Topology};
use yeyak_domain::Target;
use yeyak_log::partition_for_key;

/// Command records no event answers (undecodable, misrouted), one [`writer::DeadLetter`] each,
/// written in the transaction that consumed them: operators watch it, auditors count it.
pub use yeyak_log::codec::DEAD_LETTERS;
/// Command topics, co-partitioned with the event topics: command partition p of a kind is
/// decided by the writer of event partition p of that kind (same key, same count, same hash).
pub use yeyak_log::codec::{COMMANDS_CLINIC, COMMANDS_SUBJECT, COMMANDS_WAITING_ROOM};

/// Topic names of one deployment: the fixed names behind an optional prefix (tests and
/// benchmarks isolate themselves with a unique prefix on a shared broker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub prefix: String,
    pub topology: Topology,
}

impl Topics {
    pub fn new(prefix: &str, topology: Topology) -> Topics {
        Topics {
            prefix: prefix.to_owned(),
            topology,
        }
    }

    fn named(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `(command topic, event topic, partitions)` of every kind.
    pub fn pairs(&self) -> [(String, String, u32); 3] {
        [
            (
                self.named(COMMANDS_SUBJECT),
                self.named(TOPIC_SUBJECT),
                self.topology.subject_partitions,
            ),
            (
                self.named(COMMANDS_CLINIC),
                self.named(TOPIC_CLINIC),
                self.topology.clinic_partitions,
            ),
            (
                self.named(COMMANDS_WAITING_ROOM),
                self.named(TOPIC_WAITING_ROOM),
                1,
            ),
        ]
    }

    /// The dead-letter topic (one partition).
    pub fn dead_letters(&self) -> String {
        self.named(DEAD_LETTERS)
    }

    /// The command topic and partition that decide a target.
    pub fn command_partition(&self, target: &Target) -> (String, u32) {
        let key = target.key();
        match target {
            Target::Subject(_) => (
                self.named(COMMANDS_SUBJECT),
                partition_for_key(key.as_bytes(), self.topology.subject_partitions),
            ),
            Target::Clinic(_) => (
                self.named(COMMANDS_CLINIC),
                partition_for_key(key.as_bytes(), self.topology.clinic_partitions),
            ),
            Target::WaitingRoom => (self.named(COMMANDS_WAITING_ROOM), 0),
        }
    }

    /// The event topic written by the writer of a command topic.
    pub fn event_topic_of(&self, command_topic: &str) -> Option<String> {
        self.pairs()
            .into_iter()
            .find(|(c, _, _)| c == command_topic)
            .map(|(_, e, _)| e)
    }
}
