//! [`LogStream`]: many partitions read at once, each from its own offset, as their records
//! arrive (what the PostgreSQL projector follows), and [`PartitionReads`], the stream any
//! [`EventLog`] gets by reading one partition after another. Kafka has its own
//! (`kafka::KafkaStream`: one consumer assigned every partition), which costs no round trip
//! per idle partition.

use std::time::{Duration, Instant};

use super::{EventLog, LogError, Offset, StoredRecord};

/// How long [`PartitionReads::poll`] naps between two rounds that found nothing.
const EMPTY_ROUND_NAP: Duration = Duration::from_millis(5);

/// A partition and the offset to read it from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub offset: Offset,
}

/// Records of many partitions, handed out as they arrive. Opened by [`EventLog::stream`].
pub trait LogStream: Send {
    /// The records that arrived, at most `max_records` (at least one is asked for), waiting up
    /// to `wait` for the first; empty when none came. One partition's records come in offset
    /// order, from where the stream was opened, none skipped and none twice; partitions
    /// interleave.
    fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError>;

    /// The offset of `topic`/`partition` below which every committed record has been handed
    /// out: past the last record handed out, and on Kafka past the transaction markers after
    /// it. `None` for a partition the stream does not read.
    fn position(&mut self, topic: &str, partition: u32) -> Option<Offset>;
}

/// The stream of any [`EventLog`]: each poll reads the partitions one after another with
/// [`EventLog::read`], starting after the partition the last poll stopped in, so that no
/// partition starves. Right for the file log, whose reads cost no round trip.
pub struct PartitionReads<'a, L: EventLog + ?Sized> {
    log: &'a L,
    /// Every partition with the next offset to read, in the order given.
    next: Vec<Position>,
    /// Where the next poll starts (an index into `next`).
    start: usize,
}

impl<'a, L: EventLog + ?Sized> PartitionReads<'a, L> {
    pub fn new(log: &'a L, from: &[Position]) -> PartitionReads<'a, L> {
        PartitionReads {
            log,
            next: from.to_vec(),
            start: 0,
        }
    }

    /// One read of every partition, until `max_records` are in `out`; the next round starts
    /// after the last partition that gave records.
    fn round(&mut self, max_records: usize, out: &mut Vec<StoredRecord>) -> Result<(), LogError> {
        let count = self.next.len();
        let mut last_read = None;
        for i in (0..count).map(|k| (self.start + k) % count) {
            let room = max_records.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            let at = &mut self.next[i];
            let records = self.log.read(&at.topic, at.partition, at.offset, room)?;
            if let Some(last) = records.last() {
                at.offset = last.offset + 1;
                last_read = Some(i);
            }
            out.extend(records);
        }
        if let Some(i) = last_read {
            self.start = (i + 1) % count;
        }
        Ok(())
    }
}

impl<L: EventLog + ?Sized> LogStream for PartitionReads<'_, L> {
    fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            self.round(max_records.max(1), &mut out)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !out.is_empty() || remaining.is_zero() {
                return Ok(out);
            }
            std::thread::sleep(remaining.min(EMPTY_ROUND_NAP));
        }
    }

    fn position(&mut self, topic: &str, partition: u32) -> Option<Offset> {
        self.next
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .map(|p| p.offset)
    }
}
