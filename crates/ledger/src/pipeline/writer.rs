//! The deterministic core of a ledger processor: no broker, no clock, no thread.
//!
//! Given the command records a consumer polled, [`Writer::decide_batch`] returns the transaction
//! to write (the events per event partition, the follow-ups for partitions owned elsewhere, the
//! dead letters, the offsets to commit) and applies it to its state. It is then told
//! [`Writer::committed`] or [`Writer::aborted`]; after an abort it is as before the transaction:
//! the memory of answered commands forgets what the transaction answered, and every partition
//! the transaction touched is marked stale, to be rebuilt from the committed event log before it
//! decides again (so its state is the fold of the committed events, as before).
//!
//! The Kafka processor ([`super::processor`]) and the simulator (`yeyak-sim`) both drive it
//! through [`super::batch::step`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use yeyak_domain::system::follow_up;
use yeyak_domain::{Campaign, Command, Envelope, System, Target};

use super::Topics;
use super::decided::Decided;

/// The dead letter of a command record that could not be decided as it stands.
pub const DEAD_LETTER_UNDECODABLE: &str = "undecodable_command";
/// The dead letter of a command that arrived on a partition that does not decide its target.
pub const DEAD_LETTER_MISROUTED: &str = "misrouted_command";

/// A command record as polled from a command partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub value: Vec<u8>,
}

/// One event to produce, with the size of the decision it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub topic: String,
    pub partition: u32,
    pub envelope: Envelope,
    pub decision_events: usize,
    /// The decision answers a follow-up (`CommandBody::is_follow_up`).
    pub follow_up: bool,
}

/// A command record answered by no event: written to the dead-letter topic in the same
/// transaction, for operators and auditors, never skipped in silence.
pub use yeyak_log::codec::DeadLetter;

/// Everything one batch writes, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    pub events: Vec<EventRecord>,
    /// Follow-ups for partitions this writer does not own (or has not rebuilt).
    pub commands: Vec<Command>,
    pub dead_letters: Vec<DeadLetter>,
    /// The next offset of every command partition consumed.
    pub offsets: BTreeMap<(String, u32), u64>,
}

/// A deliberate bug, for proving that the simulator catches it. Never set outside tests of the
/// simulator itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mutation {
    #[default]
    None,
    /// The memory of answered commands keeps an aborted transaction's answers.
    KeepMemoryOnAbort,
    /// A follow-up decided here is also sent to its command topic (decided twice).
    FollowUpTwice,
    /// The offsets are committed outside the transaction, before it (the adapter's protocol).
    OffsetsOutsideTransaction,
    /// A batch polled across a revocation is decided (its partitions rebuilt and taken back)
    /// instead of dropped.
    DecideAcrossRevocation,
}

/// What one processor has done, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    pub transactions: u64,
    pub commands: u64,
    /// Follow-ups whose partition this processor owns, decided in the transaction that caused them.
    pub follow_ups_local: u64,
    pub duplicates_skipped: u64,
    /// Command records answered by a dead letter (undecodable or misrouted).
    pub dead_letters: u64,
    pub events: u64,
    pub aborts: u64,
    pub rebuilds: u64,
    /// Broker calls that failed and were retried.
    pub broker_errors: u64,
    /// Polled batches dropped because the group revoked partitions while they were polled
    /// (or held records of partitions not owned): the consumer rewinds instead.
    pub batches_dropped_at_rebalance: u64,
    /// Where the time went: waiting for commands, deciding and producing, committing.
    pub poll_ms: u64,
    pub decide_ms: u64,
    pub commit_ms: u64,
    /// `commit_ms` by phase, as the Kafka processor times it (zero elsewhere).
    pub commit_phases: CommitPhases,
}

/// Where a Kafka transaction's produce-and-commit time goes, in microseconds summed over the
/// transactions: handing the records to the producer (encoding included), adding the offsets
/// (`send_offsets_to_transaction`: AddOffsetsToTxn and TxnOffsetCommit), waiting until every
/// record is acknowledged, and `commit_transaction` (EndTxn; the markers are written by the
/// broker after it answers).
///
/// Beside the sums, each phase's per-transaction times and their total go into [`Spread`]s: a
/// booking waits for the slow transactions, which the sums hide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitPhases {
    pub produce_us: u64,
    pub offsets_us: u64,
    pub flush_us: u64,
    pub end_us: u64,
    /// Per transaction: produce, offsets, acks, end, and their total.
    pub spreads: [Spread; 5],
}

impl CommitPhases {
    /// Counts one transaction's phases (microseconds).
    pub fn record(&mut self, produce_us: u64, offsets_us: u64, flush_us: u64, end_us: u64) {
        self.produce_us += produce_us;
        self.offsets_us += offsets_us;
        self.flush_us += flush_us;
        self.end_us += end_us;
        let total = produce_us + offsets_us + flush_us + end_us;
        for (spread, us) in self
            .spreads
            .iter_mut()
            .zip([produce_us, offsets_us, flush_us, end_us, total])
        {
            spread.record(us);
        }
    }

    /// Adds another processor's phases to these.
    pub fn merge(&mut self, other: &CommitPhases) {
        self.produce_us += other.produce_us;
        self.offsets_us += other.offsets_us;
        self.flush_us += other.flush_us;
        self.end_us += other.end_us;
        for (spread, theirs) in self.spreads.iter_mut().zip(&other.spreads) {
            spread.merge(theirs);
        }
    }
}

/// How durations spread: counts in buckets that double (bucket 0 holds under 1 ms, bucket `i`
/// from 2^(i-1) to 2^i ms, the last everything from 8 s), and the longest seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    buckets: [u32; Spread::BUCKETS],
    pub max_us: u64,
}

impl Spread {
    const BUCKETS: usize = 15;

    pub fn record(&mut self, us: u64) {
        let ms = us / 1_000;
        let bucket = (u64::BITS - ms.leading_zeros()) as usize;
        self.buckets[bucket.min(Self::BUCKETS - 1)] += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Spread) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|&n| u64::from(n)).sum()
    }

    /// The upper bound, in ms, of the bucket that holds quantile `q` (0 < q <= 1); the longest
    /// seen when that is lower. `None` when nothing was recorded.
    pub fn at_most_ms(&self, q: f64) -> Option<f64> {
        let rank = ((self.count() as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let upper_ms = (1u64 << bucket) as f64;
                return Some(upper_ms.min(self.max_us as f64 / 1_000.0));
            }
        }
        None
    }
}

/// The writer of the command partitions a processor owns.
#[derive(Debug, Clone)]
pub struct Writer {
    topics: Topics,
    system: System,
    /// The outside commands answered recently (a retry is not decided twice).
    decided: Decided,
    /// Command partitions owned now, and whether their state is current.
    owned: BTreeMap<(String, u32), bool>,
    /// Partitions whose state the open transaction changed.
    touched: Option<BTreeSet<(String, u32)>>,
    /// Set after a failed batch: the consumer must go back to the committed offsets before it
    /// polls again (the adapter's duty; kept here so that no adapter can forget it).
    pub needs_rewind: bool,
    mutation: Mutation,
    pub stats: ProcessorStats,
}

impl Writer {
    pub fn new(topics: Topics, campaign: Campaign, dedup_window_ms: i64) -> Writer {
        Writer {
            topics,
            system: System::new(campaign),
            decided: Decided::new(dedup_window_ms),
            owned: BTreeMap::new(),
            touched: None,
            needs_rewind: false,
            mutation: Mutation::None,
            stats: ProcessorStats::default(),
        }
    }

    #[doc(hidden)]
    pub fn set_mutation(&mut self, mutation: Mutation) {
        self.mutation = mutation;
    }

    pub fn mutation(&self) -> Mutation {
        self.mutation
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn system(&self) -> &System {
        &self.system
    }

    /// A partition given to this writer: its state is rebuilt before it decides anything (it
    /// may have been written by another writer since this one last owned it).
    pub fn assign(&mut self, partition: (String, u32)) {
        self.owned.insert(partition, false);
    }

    pub fn revoke(&mut self, partition: &(String, u32)) {
        self.owned.remove(partition);
    }

    /// Whether the group assigned `partition` to this writer (current or not).
    pub fn owns(&self, partition: &(String, u32)) -> bool {
        self.owned.contains_key(partition)
    }

    pub fn owned_partitions(&self) -> Vec<(String, u32)> {
        self.owned.keys().cloned().collect()
    }

    /// Owned partitions whose state is the fold of their committed events.
    pub fn current_partitions(&self) -> Vec<(String, u32)> {
        let current = self.owned.iter().filter(|(_, current)| **current);
        current.map(|(tp, _)| tp.clone()).collect()
    }

    /// The partitions of `batch` that must be rebuilt before it is decided.
    pub fn stale(&self, batch: &[CommandRecord]) -> Vec<(String, u32)> {
        let partitions: BTreeSet<(String, u32)> = batch
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .filter(|tp| self.owned.get(tp) != Some(&true))
            .collect();
        partitions.into_iter().collect()
    }

    /// Whether `target` is decided by command partition `(topic, partition)`.
    pub fn decides(&self, (topic, partition): &(String, u32), target: &Target) -> bool {
        self.topics.command_partition(target) == (topic.clone(), *partition)
    }

    /// Replaces the state of one command partition by the fold of its committed events (read
    /// from the start of its event partition), and owns it.
    pub fn rebuild(&mut self, partition: &(String, u32), events: &[Envelope]) {
        let topics = self.topics.clone();
        let here = |target: &Target| {
            topics.command_partition(target) == (partition.0.clone(), partition.1)
        };
        self.system
            .subjects
            .retain(|s, _| !here(&Target::Subject(*s)));
        self.system
            .clinics
            .retain(|c, _| !here(&Target::Clinic(c.clone())));
        if here(&Target::WaitingRoom) {
            self.system.waiting_room = Default::default();
        }
        for envelope in events {
            self.system.apply(envelope);
            self.decided.remember_event(envelope);
        }
        self.owned.insert(partition.clone(), true);
        self.stats.rebuilds += 1;
    }

    /// Decides a batch (every partition of it current) and applies it; the transaction stays
    /// open until [`Writer::committed`] or [`Writer::aborted`].
    pub fn decide_batch(&mut self, batch: &[CommandRecord]) -> Transaction {
        debug_assert!(
            self.stale(batch).is_empty(),
            "a stale partition was decided"
        );
        let mut tx = Transaction::default();
        let touched = self.touched.get_or_insert_with(BTreeSet::new);
        touched.extend(batch.iter().map(|r| (r.topic.clone(), r.partition)));
        for record in batch {
            let here = (record.topic.clone(), record.partition);
            tx.offsets.insert(here.clone(), record.offset + 1);
            match self.command_of(record, &here) {
                Ok(command) => self.decide(command, here, &mut tx),
                Err(letter) => {
                    tracing::error!(topic = %letter.topic, partition = letter.partition,
                        offset = letter.offset, code = %letter.code, detail = %letter.detail,
                        "a command record cannot be decided: written to the dead-letter topic");
                    self.stats.dead_letters += 1;
                    tx.dead_letters.push(letter);
                }
            }
        }
        tx
    }

    fn command_of(
        &self,
        record: &CommandRecord,
        here: &(String, u32),
    ) -> Result<Command, DeadLetter> {
        let letter = |code: &str, detail: String| DeadLetter {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            code: code.to_owned(),
            detail,
        };
        let command: Command = serde_json::from_slice(&record.value).map_err(|e| {
            // Line and column only: the bytes themselves may hold anything.
            let detail = format!("not a command (line {}, column {})", e.line(), e.column());
            letter(DEAD_LETTER_UNDECODABLE, detail)
        })?;
        if !self.decides(here, &command.body.target()) {
            let detail = format!("{} for another partition", command.body.name());
            return Err(letter(DEAD_LETTER_MISROUTED, detail));
        }
        Ok(command)
    }

    /// Decides one command and, in the same transaction, every follow-up it causes in a
    /// current partition of this writer; follow-ups for other partitions go to `tx.commands`.
    fn decide(&mut self, command: Command, here: (String, u32), tx: &mut Transaction) {
        let mut queue = VecDeque::from([(command, here)]);
        while let Some((command, (topic, partition))) = queue.pop_front() {
            if self.decided.answered(&command) {
                self.stats.duplicates_skipped += 1;
                continue;
            }
            self.stats.commands += 1;
            let answers_follow_up = command.body.is_follow_up();
            let (_, envelopes) = self.system.decide(&command);
            let Some(event_topic) = self.topics.event_topic_of(&topic) else {
                continue;
            };
            for envelope in &envelopes {
                self.system.apply(envelope);
                if let Some(next) = follow_up(envelope) {
                    self.route(next, &mut queue, tx);
                }
            }
            if !envelopes.is_empty() {
                self.decided.remember(&command);
            }
            self.stats.events += envelopes.len() as u64;
            let size = envelopes.len();
            tx.events
                .extend(envelopes.into_iter().map(|envelope| EventRecord {
                    topic: event_topic.clone(),
                    partition,
                    envelope,
                    decision_events: size,
                    follow_up: answers_follow_up,
                }));
        }
    }

    fn route(
        &mut self,
        next: Command,
        queue: &mut VecDeque<(Command, (String, u32))>,
        tx: &mut Transaction,
    ) {
        let there = self.topics.command_partition(&next.body.target());
        if self.owned.get(&there) != Some(&true) {
            tx.commands.push(next);
            return;
        }
        self.stats.follow_ups_local += 1;
        if self.mutation == Mutation::FollowUpTwice {
            tx.commands.push(next.clone());
        }
        if let Some(touched) = self.touched.as_mut() {
            touched.insert(there.clone());
        }
        queue.push_back((next, there));
    }

    /// The open transaction committed.
    pub fn committed(&mut self) {
        self.decided.settle();
        self.touched = None;
        self.stats.transactions += 1;
    }

    /// The open transaction aborted (or its outcome is unknown): forget its answers and rebuild
    /// what it touched from the log, which holds its events only if it did commit after all.
    pub fn aborted(&mut self) {
        if self.mutation == Mutation::KeepMemoryOnAbort {
            self.decided.settle();
        } else {
            self.decided.forget_pending();
        }
        for partition in self.touched.take().unwrap_or_default() {
            if let Some(current) = self.owned.get_mut(&partition) {
                *current = false;
            }
        }
        self.stats.aborts += 1;
    }

    /// How many command ids the memory of answered commands holds.
    pub fn remembered(&self) -> usize {
        self.decided.len()
    }
}
