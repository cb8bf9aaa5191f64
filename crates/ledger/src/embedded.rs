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
use yeyak_domain::{Campaign, CampaignStamp, Command, Envelope, System};

use crate::pipeline::client::{Answers, DecisionHeaders};
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

/// What a group of commands did ([`Ledger::submit_group`]): each command's answer, in the
/// group's order, and every event appended and synced, in the order it was appended (each
/// partition's log order).
#[derive(Debug)]
pub struct GroupOutcome {
    pub answers: Vec<Result<Outcome, LedgerError>>,
    pub appended: Vec<Envelope>,
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
            answers.record(envelope, DecisionHeaders::default());
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
            if let Some(Err(error)) = ledger.run_chains(vec![command]).answers.pop() {
                return Err(error);
            }
        }
        Ok(ledger)
    }

    /// Decides a command from outside and every follow-up it causes; returns what happened. A
    /// retry with the same command id returns the first answer and changes nothing.
    pub fn submit(&mut self, command: Command) -> Result<Outcome, LedgerError> {
        let mut group = self.submit_group(vec![command]);
        group.answers.pop().unwrap_or(Err(LedgerError::Stopped))
    }

    /// Decides commands from outside together, sharing the log's syncs (group commit): each
    /// command as [`Ledger::submit`] would, in the group's order, and every follow-up in waves,
    /// each wave's appends synced ([`EventLog::sync`]) before the next is decided. So an event
    /// is never appended before its cause is on disk, and every answer comes after a sync. A
    /// sync that fails stops the ledger and fails every answer of the group still to give.
    pub fn submit_group(&mut self, commands: Vec<Command>) -> GroupOutcome {
        let mut answers: Vec<Option<Result<Outcome, LedgerError>>> = Vec::new();
        let (mut chains, mut retried) = (Vec::new(), Vec::new());
        let mut ids = std::collections::HashSet::new();
        for (i, command) in commands.into_iter().enumerate() {
            answers.push(self.answered_before(&command));
            if answers[i].is_some() {
                continue;
            }
            if ids.insert(command.command_id) {
                chains.push((i, command));
            } else {
                retried.push((i, command));
            }
        }
        let run = self.run_chains_at(chains, answers.len());
        let mut appended = run.appended;
        for (slot, answer) in answers.iter_mut().zip(run.answers) {
            if slot.is_none() {
                *slot = Some(answer);
            }
        }
        // The same command twice in one group: the second is answered once the first is.
        for (i, command) in retried {
            let mut again = self.submit_group(vec![command]);
            appended.append(&mut again.appended);
            answers[i] = again.answers.pop();
        }
        GroupOutcome {
            answers: answers
                .into_iter()
                .map(|a| a.unwrap_or(Err(LedgerError::Stopped)))
                .collect(),
            appended,
        }
    }

    /// The answer a command from outside gets without being decided: refused (a follow-up, a
    /// stopped ledger, whose memory may be ahead of its log) or decided before (its chain).
    fn answered_before(&self, command: &Command) -> Option<Result<Outcome, LedgerError>> {
        if command.body.is_follow_up() {
            return Some(Err(LedgerError::FollowUpFromOutside {
                command: command.body.name(),
            }));
        }
        if self.stopped {
            return Some(Err(LedgerError::Stopped));
        }
        self.answers.chain(command.command_id).map(Ok)
    }

    /// Runs each command's chain (no checks: also the follow-ups a reopen finishes).
    fn run_chains(&mut self, commands: Vec<Command>) -> GroupOutcome {
        let n = commands.len();
        self.run_chains_at(commands.into_iter().enumerate().collect(), n)
    }

    /// decide -> append -> apply for the commands (`(slot, command)` of `n` answers), then their
    /// follow-ups, breadth first across the group: one wave at a time, each synced.
    fn run_chains_at(&mut self, chains: Vec<(usize, Command)>, n: usize) -> GroupOutcome {
        let mut outcomes: Vec<Result<Outcome, LedgerError>> = (0..n)
            .map(|_| {
                Ok(Outcome {
                    rejection: None,
                    events: Vec::new(),
                })
            })
            .collect();
        let mut appended = Vec::new();
        let mut wave = chains;
        let mut first = true;
        while !wave.is_empty() {
            let (mut next, mut written) = (Vec::new(), Vec::new());
            for (i, command) in wave {
                let Ok(outcome) = &mut outcomes[i] else {
                    continue;
                };
                match self.step(&command, first, outcome, &mut written) {
                    Ok(follow_ups) => next.extend(follow_ups.into_iter().map(|c| (i, c))),
                    Err(error) => outcomes[i] = Err(error),
                }
            }
            if let Err(error) = self.log.sync() {
                tracing::error!(%error, "a sync of the log failed: the ledger stops until reopened");
                self.stopped = true;
                let mut error = Some(LedgerError::from(error));
                for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                    *outcome = Err(error.take().unwrap_or(LedgerError::Stopped));
                }
                break;
            }
            appended.append(&mut written);
            wave = next;
            first = false;
        }
        GroupOutcome {
            answers: outcomes,
            appended,
        }
    }

    /// Decides one command of a chain, appends its events (not synced) and applies them; returns
    /// its follow-ups. `first`: the command from outside, whose rejection is the answer's.
    fn step(
        &mut self,
        command: &Command,
        first: bool,
        outcome: &mut Outcome,
        written: &mut Vec<Envelope>,
    ) -> Result<Vec<Command>, LedgerError> {
        if self.stopped {
            return Err(LedgerError::Stopped);
        }
        if self.answers.has_events(command.command_id) {
            return Ok(Vec::new());
        }
        let (result, envelopes) = self.system.decide(command);
        if first {
            outcome.rejection = result.err();
        }
        if envelopes.is_empty() {
            return Ok(Vec::new());
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
        self.events_total += envelopes.len() as u64;
        let mut follow_ups = Vec::new();
        for envelope in &envelopes {
            self.answers
                .record(envelope.clone(), DecisionHeaders::default());
            self.system.apply(envelope);
            follow_ups.extend(follow_up(envelope));
        }
        written.extend(envelopes.iter().cloned());
        outcome.events.extend(envelopes);
        Ok(follow_ups)
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
