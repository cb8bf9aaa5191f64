//! The auditors count commands. On Kafka a command is a record too (the command topics), so an
//! auditor can see what was asked, not only what was decided: every command record the log
//! accepted must be answered, exactly once, in the event topics (its events, or its recorded
//! rejection), and every record that is not a command for its partition must have a dead letter
//! (`yeyak.commands.dead-letter`). A command accepted by Kafka and never decided leaves a trace
//! here, which the event topics alone cannot show.
//!
//! Processors decide each command partition in offset order, so an unanswered record followed
//! by an answered one in the same partition was lost; unanswered records after the last answered
//! one may still be waiting for a processor (consumer lag): they are counted as pending, and
//! noted, not judged. Admissions, ticks and draws may change nothing, and then have no event:
//! they are counted apart.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use yeyak_domain::{Command, CommandBody, Envelope, Invariant, TimestampMs};
use yeyak_log::codec::{
    COMMANDS_CLINIC, COMMANDS_SUBJECT, COMMANDS_WAITING_ROOM, DEAD_LETTERS, DeadLetter,
};
use yeyak_log::{EventLog, LogError};

use super::source::read_partition;
use super::{Finding, Position};

pub const COMMAND_TOPICS: [&str; 3] = [COMMANDS_SUBJECT, COMMANDS_CLINIC, COMMANDS_WAITING_ROOM];

/// What a command record holds: the command's id and name, or nothing readable.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    pub position: Position,
    pub command: Option<(Uuid, &'static str, bool)>,
}

/// Every record of the command topics, and where the dead letters point.
#[derive(Debug, Clone, Default)]
pub struct CommandRecords {
    pub records: Vec<CommandRecord>,
    pub dead_letters: BTreeSet<(String, u32, u64)>,
}

/// How the commands of the log were answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommandCounts {
    /// Records in the command topics (a command sent twice is two records).
    pub records: u64,
    /// Distinct commands among them.
    pub submitted: u64,
    pub answered: u64,
    /// Admissions, ticks and draws with no event: they changed nothing (or were lost; the log
    /// cannot tell).
    pub no_change: u64,
    pub unanswered: u64,
    /// After the last answered record of their partition: maybe not decided yet.
    pub pending: u64,
    pub doubly_answered: u64,
    /// Records of a command sent again with the same id.
    pub resent: u64,
    pub dead_lettered: u64,
}

fn may_change_nothing(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Admit { .. } | CommandBody::Tick { .. } | CommandBody::DrawPreQueue { .. }
    )
}

/// Reads the command topics and the dead letters of `log`; `None` when it has no command topics
/// (the embedded log and its exports: there commands are never records).
pub fn load(log: &dyn EventLog) -> Result<Option<CommandRecords>, LogError> {
    let mut loaded = CommandRecords::default();
    let mut any = false;
    for topic in COMMAND_TOPICS {
        let partitions = match log.partitions(topic) {
            Ok(n) => n,
            Err(LogError::UnknownTopic { .. }) => continue,
            Err(e) => return Err(e),
        };
        any = true;
        for partition in 0..partitions {
            read_partition(log, topic, partition, 0, None, |stored| {
                let command = serde_json::from_slice::<Command>(&stored.record.value)
                    .ok()
                    .map(|c| (c.command_id, c.body.name(), may_change_nothing(&c.body)));
                loaded.records.push(CommandRecord {
                    position: Position {
                        topic: topic.to_owned(),
                        partition,
                        offset: stored.offset,
                        index: None,
                    },
                    command,
                });
            })?;
        }
    }
    if !any {
        return Ok(None);
    }
    if log.partitions(DEAD_LETTERS).is_ok() {
        read_partition(log, DEAD_LETTERS, 0, 0, None, |stored| {
            let Ok(letter) = serde_json::from_slice::<DeadLetter>(&stored.record.value) else {
                return;
            };
            // The processor names the topic as the broker does (with the deployment's prefix).
            if let Some(topic) = COMMAND_TOPICS.iter().find(|t| letter.topic.ends_with(*t)) {
                let position = ((*topic).to_owned(), letter.partition, letter.offset);
                loaded.dead_letters.insert(position);
            }
        })?;
    }
    Ok(Some(loaded))
}

/// The decisions of each command: the instants they were made at, and whether an event of
/// one was written twice.
#[derive(Default)]
struct Decisions {
    by_command: HashMap<Uuid, BTreeSet<TimestampMs>>,
    doubled: HashSet<Uuid>,
}

impl Decisions {
    fn of<'e>(events: impl IntoIterator<Item = &'e Envelope>) -> Decisions {
        let mut decisions = Decisions::default();
        let mut seen = HashSet::new();
        for e in events {
            let at = decisions.by_command.entry(e.command_id).or_default();
            at.insert(e.occurred_at_ms);
            if !seen.insert(e.event_id) {
                decisions.doubled.insert(e.command_id);
            }
        }
        decisions
    }

    fn answered(&self, id: &Uuid) -> bool {
        self.by_command.contains_key(id)
    }

    /// A command decided twice: an event written twice, or decisions at two instants.
    fn twice(&self, id: &Uuid) -> bool {
        self.doubled.contains(id) || self.by_command.get(id).is_some_and(|at| at.len() > 1)
    }
}

/// Counts and judges every command record against the events: `(counts, violations, notes)`.
pub fn check<'e>(
    records: &CommandRecords,
    events: impl IntoIterator<Item = &'e Envelope>,
) -> (CommandCounts, Vec<Finding>, Vec<Finding>) {
    let decisions = Decisions::of(events);
    let lettered = |p: &Position| {
        records
            .dead_letters
            .contains(&(p.topic.clone(), p.partition, p.offset))
    };
    let is_answered = |r: &CommandRecord| {
        lettered(&r.position) || r.command.is_some_and(|(id, _, _)| decisions.answered(&id))
    };
    // The last answered offset of each partition: what lies after it may be pending.
    let mut last_answered: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    for r in records.records.iter().filter(|r| is_answered(r)) {
        let key = (r.position.topic.as_str(), r.position.partition);
        let last = last_answered.entry(key).or_default();
        *last = (*last).max(r.position.offset);
    }
    let pending = |p: &Position| {
        last_answered
            .get(&(p.topic.as_str(), p.partition))
            .is_none_or(|last| p.offset > *last)
    };
    let mut counts = CommandCounts {
        records: records.records.len() as u64,
        ..CommandCounts::default()
    };
    let (mut violations, mut notes) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    let unanswered = |p: &Position, detail: String| Finding {
        code: Invariant::CommandRecordAnswered.code(),
        position: Some(p.clone()),
        detail,
    };
    for r in &records.records {
        if lettered(&r.position) {
            counts.dead_lettered += 1;
            continue;
        }
        let Some((id, name, silent)) = r.command else {
            let detail = "a record that is not a command, with no dead letter".to_owned();
            if pending(&r.position) {
                counts.pending += 1;
                notes.push(unanswered(&r.position, detail + " (maybe not read yet)"));
            } else {
                counts.unanswered += 1;
                violations.push(unanswered(&r.position, detail + ": skipped in silence"));
            }
            continue;
        };
        if !seen.insert(id) {
            counts.resent += 1;
            continue;
        }
        counts.submitted += 1;
        if decisions.answered(&id) {
            counts.answered += 1;
            if decisions.twice(&id) {
                counts.doubly_answered += 1;
                violations.push(Finding {
                    code: Invariant::AnsweredOnce.code(),
                    position: Some(r.position.clone()),
                    detail: format!("{name} {id} was decided more than once"),
                });
            }
        } else if silent {
            counts.no_change += 1;
        } else if pending(&r.position) {
            counts.pending += 1;
            let detail = format!(
                "{name} {id} has no answer yet (after the last answered record of its partition: maybe not decided yet)"
            );
            notes.push(unanswered(&r.position, detail));
        } else {
            counts.unanswered += 1;
            let detail = format!("{name} {id} was accepted by the log and never answered");
            violations.push(unanswered(&r.position, detail));
        }
    }
    (counts, violations, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yeyak_domain::{Event, SubjectId};

    fn record(partition: u32, offset: u64, id: u128) -> CommandRecord {
        CommandRecord {
            position: Position {
                topic: COMMANDS_SUBJECT.to_owned(),
                partition,
                offset,
                index: None,
            },
            command: Some((Uuid::from_u128(id), "verify", false)),
        }
    }

    fn event(command: u128, event: u128, at: i64) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(event),
            command_id: Uuid::from_u128(command),
            schema_version: 1,
            occurred_at_ms: at,
            partition_key: "k".into(),
            event: Event::TicketLeft(yeyak_domain::event::TicketLeft {
                ticket: yeyak_domain::TicketNo(1),
                subject: SubjectId([0; 16]),
            }),
        }
    }

    #[test]
    fn lost_pending_resent_twice_and_dead_lettered_are_told_apart() {
        let mut garbage = record(0, 5, 0);
        garbage.command = None;
        let records = CommandRecords {
            records: vec![
                record(0, 0, 1), // answered
                record(0, 1, 2), // lost: a later record of partition 0 is answered
                record(0, 2, 1), // 1 sent again
                record(0, 3, 3), // answered twice
                record(0, 4, 4), // answered
                garbage,         // dead-lettered
                record(1, 0, 5), // pending: nothing after it is answered
            ],
            dead_letters: [(COMMANDS_SUBJECT.to_owned(), 0, 5)].into(),
        };
        let events = [
            event(1, 10, 0),
            event(3, 30, 0),
            event(3, 31, 7),
            event(4, 40, 0),
        ];
        let (counts, violations, notes) = check(&records, &events);
        assert_eq!(
            counts,
            CommandCounts {
                records: 7,
                submitted: 5,
                answered: 3,
                no_change: 0,
                unanswered: 1,
                pending: 1,
                doubly_answered: 1,
                resent: 1,
                dead_lettered: 1,
            }
        );
        let codes: Vec<_> = violations
            .iter()
            .map(|v| (v.code, v.position.as_ref().map(|p| p.offset)))
            .collect();
        assert_eq!(
            codes,
            [("command_unanswered", Some(1)), ("answered_once", Some(3))]
        );
        assert_eq!(notes.len(), 1);
    }
}
