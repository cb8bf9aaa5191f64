//! The ledger: runs the domain's partitions on an [`EventLog`], one writer per partition.
//!
//! A command is decided by its partition, its events are appended to that partition as one
//! atomic batch, and only then applied; follow-ups for other partitions are derived from the
//! appended events. This is the embedded runtime (one process owns every partition); the Kafka
//! pipeline runs the same decide -> append -> apply loop per partition with transactions.
//!
//! Architecture Invariant: state changes only by applying events read back from, or just
//! appended to, the log. Reopening a ledger replays its log and finishes any follow-up a crash
//! interrupted (follow-up ids are the ids of the events that caused them, so nothing is decided
//! twice).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::domain::command::Target;
use crate::domain::system::{Outcome, follow_up};
use crate::domain::{Campaign, Command, Envelope, Event, System};
use crate::log::{EventLog, LogError, Offset, Record, StoredRecord, partition_for_key};

/// Topic of the person partitions, keyed by subject id.
pub const TOPIC_SUBJECT: &str = "yeyak.subject";
/// Topic of the clinic partitions, keyed by clinic id.
pub const TOPIC_CLINIC: &str = "yeyak.clinic";
/// Topic of the waiting room: one partition, one key.
pub const TOPIC_WAITING_ROOM: &str = "yeyak.waiting-room";

/// How many records one read of the log asks for.
pub const READ_BATCH_RECORDS_MAX: usize = 4096;

/// Partition counts of the ledger's topics. Fixed for the life of a log: the partition of a
/// key depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub subject_partitions: u32,
    pub clinic_partitions: u32,
}

impl Default for Topology {
    fn default() -> Topology {
        Topology {
            subject_partitions: 8,
            clinic_partitions: 8,
        }
    }
}

impl Topology {
    /// Every topic with its partition count.
    pub fn topics(&self) -> [(&'static str, u32); 3] {
        [
            (TOPIC_SUBJECT, self.subject_partitions),
            (TOPIC_CLINIC, self.clinic_partitions),
            (TOPIC_WAITING_ROOM, 1),
        ]
    }

    /// The topic and partition that own a target.
    pub fn locate(&self, target: &Target) -> (&'static str, u32) {
        let key = target.key();
        match target {
            Target::Subject(_) => (
                TOPIC_SUBJECT,
                partition_for_key(key.as_bytes(), self.subject_partitions),
            ),
            Target::Clinic(_) => (
                TOPIC_CLINIC,
                partition_for_key(key.as_bytes(), self.clinic_partitions),
            ),
            Target::WaitingRoom => (TOPIC_WAITING_ROOM, 0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the event log failed")]
    Log(#[from] LogError),
    #[error("cannot decode event at {topic}/{partition}@{offset}")]
    Decode {
        topic: String,
        partition: u32,
        offset: Offset,
        #[source]
        cause: serde_json::Error,
    },
    #[error(
        "event {event_type} at {topic}/{partition}@{offset} has schema version {version}, which this build does not know"
    )]
    SchemaVersion {
        topic: String,
        partition: u32,
        offset: Offset,
        event_type: String,
        version: u16,
    },
    #[error("cannot encode an event of command {command_id}")]
    Encode {
        command_id: Uuid,
        #[source]
        cause: serde_json::Error,
    },
    #[error(
        "command {command} is a follow-up the ledger derives itself; it is not accepted from outside"
    )]
    FollowUpFromOutside { command: &'static str },
}

/// Header names on every event record.
pub const HEADER_TYPE: &str = "type";
pub const HEADER_COMMAND_ID: &str = "command_id";
pub const HEADER_SCHEMA_VERSION: &str = "schema_version";

/// Encodes an envelope as a log record: key = partition key, value = the envelope's JSON.
pub fn encode(envelope: &Envelope) -> Result<Record, LedgerError> {
    let value = serde_json::to_vec(envelope).map_err(|cause| LedgerError::Encode {
        command_id: envelope.command_id,
        cause,
    })?;
    Ok(Record {
        key: envelope.partition_key.as_bytes().to_vec(),
        value,
        headers: vec![
            (
                HEADER_TYPE.to_owned(),
                envelope.event.type_name().as_bytes().to_vec(),
            ),
            (
                HEADER_COMMAND_ID.to_owned(),
                envelope.command_id.to_string().into_bytes(),
            ),
            (
                HEADER_SCHEMA_VERSION.to_owned(),
                envelope.schema_version.to_string().into_bytes(),
            ),
        ],
        timestamp_ms: envelope.occurred_at_ms,
    })
}

/// Decodes a log record into an envelope, refusing schema versions this build does not know.
pub fn decode(stored: &StoredRecord) -> Result<Envelope, LedgerError> {
    let envelope: Envelope =
        serde_json::from_slice(&stored.record.value).map_err(|cause| LedgerError::Decode {
            topic: stored.topic.clone(),
            partition: stored.partition,
            offset: stored.offset,
            cause,
        })?;
    if envelope.schema_version != envelope.event.schema_version() {
        return Err(LedgerError::SchemaVersion {
            topic: stored.topic.clone(),
            partition: stored.partition,
            offset: stored.offset,
            event_type: envelope.event.type_name().to_owned(),
            version: envelope.schema_version,
        });
    }
    Ok(envelope)
}

/// Reads every partition of every ledger topic from the start, in offset order per partition,
/// and hands each envelope to `visit` with its coordinates.
pub fn read_all(
    log: &dyn EventLog,
    topology: &Topology,
    mut visit: impl FnMut(&StoredRecord, Envelope),
) -> Result<u64, LedgerError> {
    let mut count = 0u64;
    for (topic, partitions) in topology.topics() {
        for partition in 0..partitions {
            let mut offset = 0;
            loop {
                let batch = log.read(topic, partition, offset, READ_BATCH_RECORDS_MAX)?;
                let Some(last) = batch.last() else { break };
                offset = last.offset + 1;
                for stored in &batch {
                    let envelope = decode(stored)?;
                    visit(stored, envelope);
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}

/// The embedded ledger: every partition's writer in one process, on any [`EventLog`].
pub struct Ledger<L: EventLog> {
    log: L,
    topology: Topology,
    system: System,
    /// Every command id that produced events: a redelivered follow-up is not decided again.
    decided: HashSet<Uuid>,
    /// Outcomes of commands submitted from outside, for retries with the same id.
    answered: HashMap<Uuid, Outcome>,
    events_total: u64,
}

impl<L: EventLog> Ledger<L> {
    /// Opens a ledger on `log`: creates the topics if missing, replays every event, and
    /// finishes the follow-ups a crash may have interrupted.
    pub fn open(log: L, campaign: Campaign, topology: Topology) -> Result<Ledger<L>, LedgerError> {
        for (topic, partitions) in topology.topics() {
            log.ensure_topic(topic, partitions)?;
        }
        let mut system = System::new(campaign);
        let mut decided = HashSet::new();
        let mut answered: HashMap<Uuid, Outcome> = HashMap::new();
        let mut causes = Vec::new();
        let events_total = read_all(&log, &topology, |_, envelope| {
            system.apply(&envelope);
            decided.insert(envelope.command_id);
            if let Some(next) = follow_up(&envelope) {
                causes.push(next);
            }
            let outcome = answered.entry(envelope.command_id).or_insert(Outcome {
                rejection: None,
                events: vec![],
            });
            if let Event::CommandRejected(r) = &envelope.event {
                outcome.rejection = Some(r.rejection);
            }
            outcome.events.push(envelope);
        })?;
        // Follow-ups are not answers to outside commands.
        for cause in &causes {
            answered.remove(&cause.command_id);
        }
        let mut ledger = Ledger {
            log,
            topology,
            system,
            decided,
            answered,
            events_total,
        };
        causes.retain(|c| !ledger.decided.contains(&c.command_id));
        causes.sort_by_key(|c| (c.at_ms, c.command_id));
        for command in causes {
            ledger.run(command)?;
        }
        Ok(ledger)
    }

    /// Decides a command from outside and every follow-up it causes; returns what happened. A
    /// retry with the same command id returns the first answer and changes nothing.
    pub fn submit(&mut self, command: Command) -> Result<Outcome, LedgerError> {
        if command.body.is_follow_up() {
            return Err(LedgerError::FollowUpFromOutside {
                command: command.body.name(),
            });
        }
        if let Some(previous) = self.answered.get(&command.command_id) {
            return Ok(previous.clone());
        }
        let id = command.command_id;
        let outcome = self.run(command)?;
        self.answered.insert(id, outcome.clone());
        Ok(outcome)
    }

    /// decide -> append -> apply, for a command and its follow-ups, breadth first.
    fn run(&mut self, command: Command) -> Result<Outcome, LedgerError> {
        let mut queue = std::collections::VecDeque::from([command]);
        let mut outcome = Outcome {
            rejection: None,
            events: Vec::new(),
        };
        let mut first = true;
        while let Some(command) = queue.pop_front() {
            if self.decided.contains(&command.command_id) {
                continue;
            }
            let (result, envelopes) = self.system.decide(&command);
            if first {
                outcome.rejection = result.err();
                first = false;
            }
            if envelopes.is_empty() {
                continue;
            }
            let (topic, partition) = self.topology.locate(&command.body.target());
            let records = envelopes
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>, _>>()?;
            self.log.append(topic, partition, &records)?;
            self.decided.insert(command.command_id);
            self.events_total += envelopes.len() as u64;
            for envelope in &envelopes {
                self.system.apply(envelope);
                if let Some(next) = follow_up(envelope) {
                    queue.push_back(next);
                }
            }
            outcome.events.extend(envelopes);
        }
        Ok(outcome)
    }

    pub fn system(&self) -> &System {
        &self.system
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// Events appended or replayed since this ledger was opened, in total.
    pub fn events_total(&self) -> u64 {
        self.events_total
    }
}

/// Replays a whole log into a fresh system: the auditors' and the tests' reference.
pub fn replay(
    log: &dyn EventLog,
    campaign: Campaign,
    topology: &Topology,
) -> Result<(System, u64), LedgerError> {
    let mut system = System::new(campaign);
    let count = read_all(log, topology, |_, envelope| system.apply(&envelope))?;
    Ok((system, count))
}
