//! The simulated projector: transactions of batches of several event partitions applied to a
//! store (the read model and its offsets, changed atomically, as a PostgreSQL transaction
//! would), by the same rule as the PostgreSQL projector ([`plan_batch`]). It reads twice, aborts
//! and crashes.

use std::collections::BTreeMap;

use yeyak_read::projection::{BatchPlan, ReadModel, plan_batch};

use crate::cluster::{Partition, Shared};
use crate::faults::Fault;

#[derive(Default)]
pub struct Projector {
    /// What the store holds: committed with its offsets, never one without the other.
    pub model: ReadModel,
    pub stored: BTreeMap<Partition, u64>,
    /// Where the projector reads next (its memory, lost in a crash).
    next: BTreeMap<Partition, u64>,
    /// Batches that started beyond the stored offset (never expected).
    pub gaps: Vec<String>,
}

impl Projector {
    /// One transaction: a batch of each of some partitions with something to read (one poll's
    /// batches share a transaction, as in the PostgreSQL projector), if any.
    pub fn step(&mut self, cluster: &Shared) {
        let mut c = cluster.borrow_mut();
        if c.strikes(Fault::ProjectorCrash) {
            c.note("the projector crashes".to_owned());
            self.next = self.stored.clone();
            return;
        }
        let mut ready: Vec<Partition> = c
            .events
            .iter()
            .filter(|(p, records)| self.next.get(*p).copied().unwrap_or(0) < records.len() as u64)
            .map(|(p, _)| p.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        let take = 1 + c.rng.below(ready.len() as u64) as usize;
        let mut group = Vec::with_capacity(take);
        for _ in 0..take {
            let i = c.rng.below(ready.len() as u64) as usize;
            group.push(ready.swap_remove(i));
        }
        let mut model = self.model.clone();
        let mut moved = Vec::new();
        for partition in group {
            let mut from = self.next.get(&partition).copied().unwrap_or(0);
            if c.rng.chance(100) {
                from = from.saturating_sub(1 + c.rng.below(3)); // read again what was applied
            }
            let len = c.events[&partition].len() as u64;
            let until = (from + 1 + c.rng.below(6)).min(len);
            let offsets: Vec<u64> = (from..until).collect();
            let stored = self.stored.get(&partition).copied().unwrap_or(0);
            match plan_batch(stored, &offsets, true) {
                BatchPlan::AlreadyApplied => {
                    self.next.insert(partition, stored.max(until));
                }
                BatchPlan::Gap => {
                    // The whole transaction fails: every partition reads on from its store.
                    self.gaps
                        .push(format!("{partition:?}: stored {stored}, batch from {from}"));
                    self.next.insert(partition, stored);
                    for (p, _) in moved {
                        let at = self.stored.get(&p).copied().unwrap_or(0);
                        self.next.insert(p, at);
                    }
                    return;
                }
                BatchPlan::Apply { skip } => {
                    let records = &c.events[&partition][(from as usize + skip)..until as usize];
                    for (envelope, _) in records {
                        model.apply(envelope);
                    }
                    moved.push((partition, until));
                }
            }
        }
        if moved.is_empty() {
            return;
        }
        if c.strikes(Fault::ProjectorAbort) {
            c.note(format!(
                "the projector's transaction of {} batches aborts",
                moved.len()
            ));
            for (p, _) in moved {
                let at = self.stored.get(&p).copied().unwrap_or(0);
                self.next.insert(p, at);
            }
            return;
        }
        self.model = model;
        for (p, until) in moved {
            self.stored.insert(p.clone(), until);
            self.next.insert(p, until);
        }
    }

    /// Whether every event partition is projected to its end.
    pub fn caught_up(&self, cluster: &Shared) -> bool {
        let c = cluster.borrow();
        c.events
            .iter()
            .all(|(p, records)| self.stored.get(p).copied().unwrap_or(0) == records.len() as u64)
    }
}
