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

use yeyak_domain::system::{Outcome, follow_up};
use yeyak_domain::{Campaign, CampaignStamp, Command, System};

use crate::pipeline::client::Answers;
use yeyak_log::codec::{CodecError, Topology, encode_under, read_all, recorded_campaign};
use yeyak_log::{EventLog, LogError, Record};

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
    #[error(
        "the ledger stopped after a write failed half-way through a decision; reopen it (it finishes the decision from its log)"
    )]
    Stopped,
    #[error(
        "the log was written under campaign {recorded}, not {running}; open it with the campaign file it was written under"
    )]
    OtherCampaign {
        recorded: CampaignStamp,
        running: CampaignStamp,
    },
}

/// The embedded ledger: every partition's writer in one process, on any [`EventLog`].
pub struct Ledger<L: EventLog> {
    log: L,
    topology: Topology,
    system: System,
    /// Recorded on every event appended ([`encode_under`]).
    campaign: CampaignStamp,
    /// Every decision of the log, by command id: a redelivered follow-up is not decided again,
    /// and a retry of an outside command is answered with its whole chain, as the first time
    /// (also after a reopen, which the chains of the log answer).
    answers: Answers,
    events_total: u64,
    /// Set when a write failed after part of a decision's chain was written: the memory may
    /// differ from the log, so nothing more is decided until the ledger is reopened.
    stopped: bool,
}

impl<L: EventLog> Ledger<L> {
    /// Opens a ledger on `log`: creates the topics if missing, replays every event, and
    /// finishes the follow-ups a crash may have interrupted.
    pub fn open(log: L, campaign: Campaign, topology: Topology) -> Result<Ledger<L>, LedgerError> {
        for (topic, partitions) in topology.topics() {
            log.ensure_topic(topic, partitions)?;
        }
        let stamp = campaign.stamp();
        let mut system = System::new(campaign);
        let mut answers = Answers::default();
        let mut causes = Vec::new();
        let mut other_campaign = None;
        let events_total = read_all(&log, &topology, |stored, envelope| {
            match recorded_campaign(&stored.record.headers) {
                Some(recorded) if recorded != stamp => other_campaign = Some(recorded),
                _ => {}
            }
            system.apply(&envelope);
            if let Some(next) = follow_up(&envelope) {
                causes.push(next);
            }
            answers.record(envelope, None);
        })?;
        if let Some(recorded) = other_campaign {
            return Err(LedgerError::OtherCampaign {
                recorded,
                running: stamp,
            });
        }
        let mut ledger = Ledger {
            log,
            topology,
            system,
            campaign: stamp,
            answers,
            events_total,
            stopped: false,
        };
        causes.retain(|c| !ledger.answers.has_events(c.command_id));
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
        if let Some(previous) = self.answers.chain(command.command_id) {
            return Ok(previous);
        }
        if self.stopped {
            return Err(LedgerError::Stopped);
        }
        self.run(command)
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
            if self.answers.has_events(command.command_id) {
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
                .map(|envelope| encode_under(envelope, &self.campaign))
                .collect::<Result<Vec<_>, _>>()?;
            if let Err(error) = self.append(topic, partition, &records) {
                // Something of this chain is in the log already: stop until reopened.
                self.stopped |= !outcome.events.is_empty();
                return Err(error);
            }
            for envelope in &envelopes {
                self.answers.record(envelope.clone(), None);
            }
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

    /// Appends a decision's records. A log that reports a failure may have written them all the
    /// same (an fsync that failed after the write): then they are the decision, and deciding it
    /// again would write it twice. Written partly, or unknowable: the ledger stops.
    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<(), LedgerError> {
        let before = self.log.end_offset(topic, partition)?;
        let error = match self.log.append(topic, partition, records) {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        match self.log.end_offset(topic, partition) {
            Ok(end) if end == before => Err(error.into()),
            Ok(end)
                if end == before + records.len() as u64
                    && self.holds(topic, partition, before, records) =>
            {
                tracing::warn!(%error, topic, partition, "the log reported a failed append that it had written: the decision stands");
                Ok(())
            }
            _ => {
                tracing::error!(%error, topic, partition, "an append failed half-way: the ledger stops until reopened");
                self.stopped = true;
                Err(error.into())
            }
        }
    }

    /// Whether the log holds exactly `records` from offset `from`.
    fn holds(&self, topic: &str, partition: u32, from: u64, records: &[Record]) -> bool {
        match self.log.read(topic, partition, from, records.len()) {
            Ok(stored) => {
                stored.len() == records.len()
                    && stored
                        .iter()
                        .zip(records)
                        .all(|(s, r)| s.record.value == r.value && s.record.key == r.key)
            }
            Err(_) => false,
        }
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
