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

use yeyak_domain::system::{Outcome, follow_up};
use yeyak_domain::{Campaign, Command, Event, System};
use yeyak_log::codec::{CodecError, Topology, encode, read_all};
use yeyak_log::{EventLog, LogError};

/// What can go wrong in the embedded ledger: the log, a record, or a command from outside that
/// only the ledger may issue.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the event log failed")]
    Log(#[from] LogError),
    #[error("a record of the log is broken")]
    Codec(#[from] CodecError),
    #[error(
        "command {command} is a follow-up the ledger derives itself; it is not accepted from outside"
    )]
    FollowUpFromOutside { command: &'static str },
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
