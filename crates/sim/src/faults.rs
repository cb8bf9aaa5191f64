//! The faults a run injects, how often (drawn from the seed, so that some seeds are calm and
//! some are storms), and how many of each kind were injected.

use std::collections::BTreeMap;
use std::fmt;

use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `begin_transaction` fails.
    AbortAtBegin,
    /// Producing a record of the transaction fails.
    AbortAtProduce,
    /// Adding the offsets to the transaction fails.
    AbortAtOffsets,
    /// The commit fails: nothing of the transaction is written.
    AbortAtCommit,
    /// The commit succeeds, and the processor is told it timed out.
    CommitTimedOut,
    /// A processor dies in the middle of a batch (its memory is lost); it restarts later.
    Crash,
    /// A processor pauses mid-batch, its session expires, the group moves on without it; when
    /// it wakes up it tries to commit (a zombie). Sometimes a new incarnation with the same
    /// transactional id has started meanwhile.
    Zombie,
    /// Another processor joins the group while a batch is in flight.
    RebalanceMidBatch,
    /// The broker answers nothing for a while.
    Stall,
    /// A client's send is lost: not written, reported failed.
    DeliveryLost,
    /// A client's send is written and reported failed (the client sends it again: a duplicate).
    DeliveryTimedOut,
    /// A client gives up waiting and asks again with the same command id.
    ClientRetry,
    /// A record that is not a command lands in a command topic.
    Garbage,
    /// Rewinding the consumer fails.
    RewindFailed,
    /// Reading an event partition to rebuild fails.
    RebuildFailed,
    /// The projector's store transaction fails.
    ProjectorAbort,
    /// The projector dies (its memory is lost).
    ProjectorCrash,
    /// Another processor joins while a poll is under way: records already polled belong to
    /// partitions the group now gives the newcomer (the revocation arrives with the batch).
    RebalanceMidPoll,
    /// The broker stalled past the transaction timeout: the coordinator aborted the open
    /// transaction and bumped the producer's epoch. The processor is fenced though no other
    /// incarnation runs; it starts a new one of itself (`incarnation`).
    TransactionTimedOut,
    /// A processor's client stops fetching for good while it stays in the group with its
    /// partitions (seen on real Kafka: a connection to the group coordinator that never came
    /// back after a whole-cluster freeze). Its polls return nothing; the faults stopping does
    /// not cure it. Its watchdog must start a new incarnation (`watchdog`).
    Wedged,
}

pub const ALL: [Fault; 20] = [
    Fault::AbortAtBegin,
    Fault::AbortAtProduce,
    Fault::AbortAtOffsets,
    Fault::AbortAtCommit,
    Fault::CommitTimedOut,
    Fault::Crash,
    Fault::Zombie,
    Fault::RebalanceMidBatch,
    Fault::Stall,
    Fault::DeliveryLost,
    Fault::DeliveryTimedOut,
    Fault::ClientRetry,
    Fault::Garbage,
    Fault::RewindFailed,
    Fault::RebuildFailed,
    Fault::ProjectorAbort,
    Fault::ProjectorCrash,
    Fault::RebalanceMidPoll,
    Fault::TransactionTimedOut,
    Fault::Wedged,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::AbortAtBegin => "abort_at_begin",
            Fault::AbortAtProduce => "abort_at_produce",
            Fault::AbortAtOffsets => "abort_at_offsets",
            Fault::AbortAtCommit => "abort_at_commit",
            Fault::CommitTimedOut => "commit_timed_out",
            Fault::Crash => "crash",
            Fault::Zombie => "zombie",
            Fault::RebalanceMidBatch => "rebalance_mid_batch",
            Fault::Stall => "stall",
            Fault::DeliveryLost => "delivery_lost",
            Fault::DeliveryTimedOut => "delivery_timed_out",
            Fault::ClientRetry => "client_retry",
            Fault::Garbage => "garbage_record",
            Fault::RewindFailed => "rewind_failed",
            Fault::RebuildFailed => "rebuild_failed",
            Fault::ProjectorAbort => "projector_abort",
            Fault::ProjectorCrash => "projector_crash",
            Fault::RebalanceMidPoll => "rebalance_mid_poll",
            Fault::TransactionTimedOut => "transaction_timed_out",
            Fault::Wedged => "wedged",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per mille per opportunity, for each fault; drawn once per run.
#[derive(Debug, Clone)]
pub struct Rates(BTreeMap<Fault, u32>);

impl Rates {
    /// A storm level from the seed (0: calm, 3: storm), then each rate around it.
    pub fn draw(rng: &mut Rng) -> Rates {
        let level = rng.below(4) as u32;
        let mut rates = BTreeMap::new();
        for fault in ALL {
            let base = match fault {
                Fault::Stall
                | Fault::Crash
                | Fault::Zombie
                | Fault::ProjectorCrash
                | Fault::TransactionTimedOut => 4,
                Fault::RebalanceMidBatch | Fault::RebalanceMidPoll | Fault::Garbage => 6,
                _ => 25,
            };
            let rate = if rng.chance(150) { 0 } else { base * level / 2 };
            rates.insert(
                fault,
                rate + rng.below(u64::from(base / 2 + 1)) as u32 * level.min(1),
            );
        }
        Rates(rates)
    }

    pub fn calm() -> Rates {
        Rates(ALL.iter().map(|f| (*f, 0)).collect())
    }

    pub fn of(&self, fault: Fault) -> u32 {
        self.0.get(&fault).copied().unwrap_or(0)
    }
}

/// How many faults of each kind a run (or many) injected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected(pub BTreeMap<Fault, u64>);

impl Injected {
    pub fn add(&mut self, fault: Fault) {
        *self.0.entry(fault).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Injected) {
        for (fault, n) in &other.0 {
            *self.0.entry(*fault).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, fault: Fault) -> u64 {
        self.0.get(&fault).copied().unwrap_or(0)
    }
}
