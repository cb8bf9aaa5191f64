//! Where a replay reads from: any [`EventLog`] (the embedded data directory, a Kafka cluster),
//! restricted to a range of offsets per partition and of record timestamps.
//!
//! A data directory is opened read-only ([`yeyak_log::FileLog::open_read_only`]): each
//! partition is read up to its first damage, and each damage becomes a `damaged` finding
//! ([`damage_finding`]) instead of being repaired.
//!
//! Exports are read by [`super::export::read_export`], which also checks their integrity.

use std::collections::BTreeMap;

use super::{AuditError, Finding, Item, Loaded, Position, Progress, Stream};
use yeyak_log::codec::{
    READ_BATCH_RECORDS_MAX, TOPIC_CLINIC, TOPIC_SUBJECT, TOPIC_WAITING_ROOM, decode,
};
use yeyak_log::{Damage, EventLog, LogError, Offset, StoredRecord};

/// The ledger's event topics, in the order a replay reads them.
pub const LEDGER_TOPICS: [&str; 3] = [TOPIC_SUBJECT, TOPIC_CLINIC, TOPIC_WAITING_ROOM];

/// Which part of the log to read. Empty: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    /// Per (topic, partition): offsets `[from, to)`; `None` for the start / the end. A
    /// partition not named here is read whole, unless `only_named` is set.
    pub offsets: BTreeMap<(String, u32), (Option<Offset>, Option<Offset>)>,
    /// Read only the partitions named in `offsets`.
    pub only_named: bool,
    /// Records with a timestamp in `[from_ms, to_ms)` only.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Range {
    /// The whole log: nothing restricted.
    pub fn is_whole(&self) -> bool {
        self.offsets
            .values()
            .all(|(from, to)| from.is_none_or(|f| f == 0) && to.is_none())
            && !self.only_named
            && self.from_ms.is_none()
            && self.to_ms.is_none()
    }

    /// Parses `TOPIC:PARTITION=FROM..TO` (either bound may be left out: `3..`, `..100`).
    pub fn add_partition_range(&mut self, text: &str) -> Result<(), AuditError> {
        let bad = || AuditError::BadRange(format!("`{text}` is not TOPIC:PARTITION=FROM..TO"));
        let (place, span) = text.split_once('=').ok_or_else(bad)?;
        let (topic, partition) = place.rsplit_once(':').ok_or_else(bad)?;
        let partition: u32 = partition.parse().map_err(|_| bad())?;
        let (from, to) = span.split_once("..").ok_or_else(bad)?;
        let bound = |s: &str| -> Result<Option<Offset>, AuditError> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad())
            }
        };
        let (from, to) = (bound(from)?, bound(to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(AuditError::BadRange(format!(
                    "`{text}`: the range ends before it starts"
                )));
            }
        }
        self.offsets
            .insert((topic.to_owned(), partition), (from, to));
        Ok(())
    }

    /// The offsets to read of one partition, and whether it is read at all.
    pub fn bounds(&self, topic: &str, partition: u32) -> Option<(Offset, Option<Offset>)> {
        match self.offsets.get(&(topic.to_owned(), partition)) {
            Some((from, to)) => Some((from.unwrap_or(0), *to)),
            None if self.only_named => None,
            None => Some((0, None)),
        }
    }

    pub fn admits_time(&self, timestamp_ms: i64) -> bool {
        self.from_ms.is_none_or(|f| timestamp_ms >= f)
            && self.to_ms.is_none_or(|t| timestamp_ms < t)
    }
}

/// Reads the records of one partition in `[from, to)` (to: the end offset at the call),
/// handing each to `visit`. Works on sparse offsets (Kafka's transaction markers).
pub fn read_partition(
    log: &dyn EventLog,
    topic: &str,
    partition: u32,
    from: Offset,
    to: Option<Offset>,
    mut visit: impl FnMut(StoredRecord),
) -> Result<(), LogError> {
    let end = log.end_offset(topic, partition)?;
    let to = to.map_or(end, |t| t.min(end));
    let mut offset = from;
    while offset < to {
        let batch = log.read(topic, partition, offset, READ_BATCH_RECORDS_MAX)?;
        let Some(last) = batch.last() else { break };
        offset = last.offset + 1;
        for stored in batch {
            if stored.offset >= to {
                return Ok(());
            }
            visit(stored);
        }
    }
    Ok(())
}

/// The partitions of the ledger's topics that exist in `log`.
pub fn ledger_partitions(log: &dyn EventLog) -> Result<Vec<(String, u32)>, LogError> {
    let mut out = Vec::new();
    for topic in LEDGER_TOPICS {
        match log.partitions(topic) {
            Ok(n) => out.extend((0..n).map(|p| (topic.to_owned(), p))),
            Err(LogError::UnknownTopic { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Reads a range of the ledger's topics of `log` into memory, decoding every event. A record
/// that cannot be decoded is reported (with its position) and left out.
pub fn load(
    log: &dyn EventLog,
    range: &Range,
    source: String,
    progress: bool,
) -> Result<Loaded, AuditError> {
    let partitions = ledger_partitions(log)?;
    let mut total = 0;
    for (topic, partition) in &partitions {
        total += log.end_offset(topic, *partition)?;
    }
    let mut loaded = Loaded {
        source,
        whole_log: range.is_whole(),
        from_start: true,
        every_partition: !range.only_named,
        ..Loaded::default()
    };
    let mut meter = Progress::new("read", total, progress);
    for (topic, partition) in partitions {
        let Some((from, to)) = range.bounds(&topic, partition) else {
            continue;
        };
        let mut stream = Stream {
            topic: topic.clone(),
            partition,
            items: Vec::new(),
        };
        let mut undecodable = Vec::new();
        // The history before the range is read too, as context: the range is judged against
        // the true state of every partition, not against an empty one.
        read_partition(log, &topic, partition, 0, to, |stored| {
            meter.add(1);
            let timestamp_ms = stored.record.timestamp_ms;
            if range.to_ms.is_some_and(|t| timestamp_ms >= t) {
                return;
            }
            loaded.campaigns.count(&stored.record.headers);
            let context = stored.offset < from || range.from_ms.is_some_and(|f| timestamp_ms < f);
            let position = Position {
                topic: topic.clone(),
                partition,
                offset: stored.offset,
                index: None,
            };
            match decode(&stored) {
                Ok(envelope) => stream.items.push(Item {
                    position,
                    envelope,
                    context,
                }),
                Err(e) if !context => undecodable.push(Finding {
                    code: "undecodable",
                    position: Some(position),
                    detail: format!("not an event this build can read: {}", error_chain(&e)),
                }),
                Err(_) => {}
            }
        })?;
        loaded.integrity.extend(undecodable);
        loaded.streams.push(stream);
    }
    meter.finish();
    Ok(loaded)
}

/// The finding for damage a read-only open found: at the partition's first unread offset, with
/// the file and byte where reading stopped. Damage to a whole topic has no position.
pub fn damage_finding(damage: &Damage) -> Finding {
    let position = damage.partition.map(|partition| Position {
        topic: damage.topic.clone(),
        partition,
        offset: damage.offset,
        index: None,
    });
    let read = match damage.partition {
        Some(_) => format!("read up to offset {}, nothing from there on", damage.offset),
        None => format!("topic {:?} not read", damage.topic),
    };
    Finding {
        code: "damaged",
        position,
        detail: format!(
            "{} at byte {} of {}: {}; {read}, and nothing on disk changed",
            damage.kind,
            damage.position,
            damage.path.display(),
            damage.detail
        ),
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use yeyak_log::DamageKind;

    use super::*;

    fn damage(partition: Option<u32>) -> Damage {
        Damage {
            kind: DamageKind::TornTail,
            topic: "yeyak.clinic".to_owned(),
            partition,
            path: PathBuf::from("/d/yeyak.clinic/3/00000000000000000000.log"),
            position: 4096,
            offset: 812,
            detail: "record cut short (20 of 96 bytes) at byte 4096".to_owned(),
        }
    }

    #[test]
    fn damage_is_a_finding_at_the_first_unread_offset_with_its_file_and_byte() {
        let finding = damage_finding(&damage(Some(3)));
        assert_eq!(finding.code, "damaged");
        assert_eq!(
            finding.to_string(),
            "damaged at yeyak.clinic/3@812: torn_tail at byte 4096 of \
             /d/yeyak.clinic/3/00000000000000000000.log: record cut short (20 of 96 bytes) at \
             byte 4096; read up to offset 812, nothing from there on, and nothing on disk changed"
        );
    }

    #[test]
    fn damage_to_a_whole_topic_has_no_position_and_names_the_topic() {
        let finding = damage_finding(&damage(None));
        assert_eq!(finding.position, None);
        assert!(
            finding.detail.contains("topic \"yeyak.clinic\" not read"),
            "{finding}"
        );
    }

    #[test]
    fn a_refused_export_of_a_damaged_log_has_a_stable_code() {
        let error = AuditError::LogDamaged {
            damage: Box::new(damage(Some(3))),
            count: 2,
        };
        assert_eq!(error.code(), "log_damaged");
        assert!(
            error
                .to_string()
                .contains("torn_tail in topic \"yeyak.clinic\" partition 3")
        );
    }
}
