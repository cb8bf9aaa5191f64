//! An in-memory Kafka with the semantics the ledger relies on, and faults drawn from the seed.
//!
//! - Partitions: command partitions hold raw bytes (a record may be garbage); event partitions
//!   hold envelopes with the size of their decision; one dead-letter partition.
//! - Transactions: a processor's records are buffered and appended at commit, atomically with
//!   the group's offsets (read_committed readers never see an open or aborted transaction).
//! - Fencing: `init_transactions` bumps the epoch of a transactional id, and a commit with an
//!   older epoch is refused as fenced; a commit from a member whose group generation is old
//!   (a rebalance happened since its poll, or it was expelled) is refused (KIP-447).
//! - The group: members, a generation, partitions dealt round-robin, committed offsets.
//! - Clients: a send is written, lost, or written and reported failed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use yeyak_domain::{Command, Envelope};
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::batch::CommandLog;
use yeyak_ledger::pipeline::client::DecisionHeaders;
use yeyak_ledger::pipeline::watchdog::Backlog;
use yeyak_ledger::pipeline::writer::{CommandRecord, DeadLetter, EventRecord, Transaction};

use crate::faults::{Fault, Injected, Rates};
use crate::rng::Rng;

pub type Partition = (String, u32);

/// What the broker said to a processor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("fenced: a newer incarnation owns transactional id {0}")]
    Fenced(String),
    #[error("{0}")]
    Failed(&'static str),
    #[error("the process crashed")]
    Crashed,
}

/// What a client was told about its send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Written,
    Lost,
    /// Written, but reported failed.
    TimedOut,
}

#[derive(Debug, Default)]
struct Group {
    generation: u64,
    members: BTreeSet<u64>,
    assignment: BTreeMap<Partition, u64>,
    committed: BTreeMap<Partition, u64>,
}

/// The cluster and everything a run shares: the clock, the seed's randomness, the trace.
pub struct Cluster {
    pub now_ms: u64,
    pub rng: Rng,
    pub rates: Rates,
    pub injected: Injected,
    pub trace: Vec<String>,
    pub stalled_until: u64,
    pub topics: Topics,
    pub commands: BTreeMap<Partition, Vec<Vec<u8>>>,
    pub events: BTreeMap<Partition, Vec<(Envelope, DecisionHeaders)>>,
    pub dead_letters: Vec<DeadLetter>,
    group: Group,
    epochs: BTreeMap<String, u64>,
    next_member: u64,
    /// Members that asked to join mid-batch: the world starts a processor for each.
    pub joined: Vec<u64>,
}

pub type Shared = Rc<RefCell<Cluster>>;

impl Cluster {
    pub fn new(topics: Topics, rng: Rng, rates: Rates) -> Cluster {
        let mut commands = BTreeMap::new();
        let mut events = BTreeMap::new();
        for (command, event, partitions) in topics.pairs() {
            for p in 0..partitions {
                commands.insert((command.clone(), p), Vec::new());
                events.insert((event.clone(), p), Vec::new());
            }
        }
        Cluster {
            now_ms: 0,
            rng,
            rates,
            injected: Injected::default(),
            trace: Vec::new(),
            stalled_until: 0,
            topics,
            commands,
            events,
            dead_letters: Vec::new(),
            group: Group::default(),
            epochs: BTreeMap::new(),
            next_member: 1,
            joined: Vec::new(),
        }
    }

    pub fn note(&mut self, line: String) {
        self.trace.push(format!("{:>6} ms  {line}", self.now_ms));
    }

    /// Whether `fault` strikes now (and counts it).
    pub fn strikes(&mut self, fault: Fault) -> bool {
        let rate = self.rates.of(fault);
        if rate > 0 && self.rng.chance(rate) {
            self.injected.add(fault);
            return true;
        }
        false
    }

    pub fn stalled(&self) -> bool {
        self.now_ms < self.stalled_until
    }

    /// A new member; the group rebalances.
    pub fn join(&mut self) -> u64 {
        let member = self.next_member;
        self.next_member += 1;
        self.group.members.insert(member);
        self.rebalance();
        member
    }

    /// A member leaves (its session expired); the group rebalances.
    pub fn leave(&mut self, member: u64) {
        if self.group.members.remove(&member) {
            self.rebalance();
        }
    }

    fn rebalance(&mut self) {
        self.group.generation += 1;
        self.group.assignment.clear();
        let members: Vec<u64> = self.group.members.iter().copied().collect();
        if !members.is_empty() {
            for (i, partition) in self.commands.keys().enumerate() {
                let member = members[i % members.len()];
                self.group.assignment.insert(partition.clone(), member);
            }
        }
        let generation = self.group.generation;
        self.note(format!(
            "rebalance: generation {generation}, members {members:?}"
        ));
    }

    /// A new incarnation of a transactional id: older ones are fenced.
    pub fn init_transactions(&mut self, transactional_id: &str) -> u64 {
        let epoch = self.epochs.entry(transactional_id.to_owned()).or_default();
        *epoch += 1;
        *epoch
    }

    pub fn committed(&self, partition: &Partition) -> u64 {
        self.group.committed.get(partition).copied().unwrap_or(0)
    }

    /// Whether every command partition is consumed to its end.
    pub fn consumed(&self) -> bool {
        self.commands
            .iter()
            .all(|(p, records)| self.committed(p) == records.len() as u64)
    }

    /// A client's send of a command (or of any bytes) to a command partition.
    pub fn send(&mut self, partition: &Partition, value: Vec<u8>) -> Delivery {
        let outcome = if self.stalled() {
            if self.rng.chance(500) {
                Delivery::Lost
            } else {
                Delivery::TimedOut
            }
        } else if self.strikes(Fault::DeliveryLost) {
            Delivery::Lost
        } else if self.strikes(Fault::DeliveryTimedOut) {
            Delivery::TimedOut
        } else {
            Delivery::Written
        };
        if outcome != Delivery::Lost {
            if let Some(records) = self.commands.get_mut(partition) {
                records.push(value);
            }
        }
        outcome
    }

    fn append(&mut self, pending: Pending) {
        for event in pending.events {
            let EventRecord {
                topic,
                partition,
                envelope,
                decision_events,
                follow_up,
            } = event;
            if let Some(records) = self.events.get_mut(&(topic, partition)) {
                let decision = DecisionHeaders {
                    events: Some(decision_events),
                    follow_up,
                };
                records.push((envelope, decision));
            }
        }
        for command in pending.commands {
            let partition = self.topics.command_partition(&command.body.target());
            let value = serde_json::to_vec(&command).expect("a command encodes");
            if let Some(records) = self.commands.get_mut(&partition) {
                records.push(value);
            }
        }
        self.dead_letters.extend(pending.dead_letters);
    }
}

#[derive(Debug, Default)]
struct Pending {
    events: Vec<EventRecord>,
    commands: Vec<Command>,
    dead_letters: Vec<DeadLetter>,
}

/// One processor's consumer and transactional producer on the simulated cluster.
pub struct SimLog {
    cluster: Shared,
    pub member: u64,
    pub transactional_id: String,
    epoch: u64,
    generation: u64,
    owned: Vec<Partition>,
    positions: BTreeMap<Partition, u64>,
    open: Option<Pending>,
    changes: Vec<(bool, Vec<Partition>)>,
    /// Set by a crash fault: the world drops this processor.
    pub crashed: bool,
    /// Set by a zombie fault: the world pauses this processor and may start another
    /// incarnation of its transactional id.
    pub zombie: bool,
    /// Set by a wedge fault: polls return nothing from then on (the member stays in the group
    /// until the next rebalance, which it cannot join).
    pub wedged: bool,
    /// A poll found the broker stalled: the next one that reaches it may find this client
    /// wedged (where real clients were seen to wedge: after a freeze).
    saw_stall: bool,
}

impl SimLog {
    /// Joins the group and initialises the transactional producer.
    pub fn start(cluster: &Shared, transactional_id: &str) -> SimLog {
        let mut c = cluster.borrow_mut();
        let epoch = c.init_transactions(transactional_id);
        let member = c.join();
        c.note(format!(
            "{transactional_id} starts as member {member}, epoch {epoch}"
        ));
        drop(c);
        SimLog::member(cluster, transactional_id, member, epoch)
    }

    /// A member that joined already (mid-batch), with its own transactional id.
    pub fn member(cluster: &Shared, transactional_id: &str, member: u64, epoch: u64) -> SimLog {
        SimLog {
            cluster: cluster.clone(),
            member,
            transactional_id: transactional_id.to_owned(),
            epoch,
            generation: 0,
            owned: Vec::new(),
            positions: BTreeMap::new(),
            open: None,
            changes: Vec::new(),
            crashed: false,
            zombie: false,
            wedged: false,
            saw_stall: false,
        }
    }

    /// Whether the group gives `partition` to this member now, and this member knows it.
    pub fn owns_now(&self, partition: &Partition) -> bool {
        let c = self.cluster.borrow();
        self.generation == c.group.generation
            && c.group.assignment.get(partition) == Some(&self.member)
    }

    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// A broker call fails while the broker stalls.
    fn answering(&self) -> Result<(), SimError> {
        if self.cluster.borrow().stalled() {
            return Err(SimError::Failed("the broker does not answer (stalled)"));
        }
        Ok(())
    }

    /// The broker call fails if the broker stalls or `fault` strikes.
    fn call(&self, fault: Fault) -> Result<(), SimError> {
        self.answering()?;
        let mut c = self.cluster.borrow_mut();
        if c.strikes(fault) {
            let line = format!("{}: {fault}", self.transactional_id);
            c.note(line);
            return Err(SimError::Failed(fault.name()));
        }
        Ok(())
    }

    fn crash_strikes(&mut self) -> bool {
        let mut c = self.cluster.borrow_mut();
        if c.strikes(Fault::Crash) {
            c.note(format!("{} crashes mid-batch", self.transactional_id));
            self.crashed = true;
            return true;
        }
        false
    }

    /// A wedged member keeps its partitions (its heartbeats still go) until the group
    /// rebalances: it cannot join the new generation, and the group drops it.
    fn stay_wedged(&mut self) {
        let mut c = self.cluster.borrow_mut();
        if c.group.generation != self.generation && c.group.members.contains(&self.member) {
            c.note(format!(
                "{} (member {}) is wedged and cannot join the new generation: the group drops it",
                self.transactional_id, self.member
            ));
            c.leave(self.member);
        }
    }

    fn wedge_strikes(&mut self) -> bool {
        let mut c = self.cluster.borrow_mut();
        if !self.owned.is_empty() && c.strikes(Fault::Wedged) {
            c.note(format!(
                "{} is wedged: its client fetches nothing from now on",
                self.transactional_id
            ));
            self.wedged = true;
        }
        self.wedged
    }

    /// Commands of the partitions this member owns (as it knows them) not polled yet: what its
    /// client reports as lag.
    pub fn backlog(&self) -> Backlog {
        let c = self.cluster.borrow();
        let behind = self
            .owned
            .iter()
            .any(|p| self.positions[p] < c.commands[p].len() as u64);
        if behind {
            Backlog::Waiting
        } else {
            Backlog::None
        }
    }

    /// Joins again if expelled, and takes a new assignment after a rebalance (eager: all
    /// revoked, then the new ones assigned, positions at the committed offsets).
    fn follow_group(&mut self) {
        let mut c = self.cluster.borrow_mut();
        if !c.group.members.contains(&self.member) {
            c.group.members.insert(self.member);
            c.rebalance();
        }
        if self.generation == c.group.generation {
            return;
        }
        self.changes.push((false, std::mem::take(&mut self.owned)));
        self.owned = c
            .group
            .assignment
            .iter()
            .filter(|(_, m)| **m == self.member)
            .map(|(p, _)| p.clone())
            .collect();
        self.positions = self
            .owned
            .iter()
            .map(|p| (p.clone(), c.committed(p)))
            .collect();
        self.generation = c.group.generation;
        self.changes.push((true, self.owned.clone()));
    }
}

impl CommandLog for SimLog {
    type Error = SimError;

    fn is_fenced(error: &SimError) -> bool {
        matches!(error, SimError::Fenced(_) | SimError::Crashed)
    }

    /// Records of the owned partitions, interleaved across partitions at random.
    fn poll(&mut self, max: usize) -> Result<Vec<CommandRecord>, SimError> {
        if self.wedged {
            self.stay_wedged();
            return Ok(Vec::new());
        }
        if let Err(stalled) = self.answering() {
            self.saw_stall = true;
            return Err(stalled);
        }
        if std::mem::take(&mut self.saw_stall) && self.wedge_strikes() {
            return Ok(Vec::new());
        }
        self.follow_group();
        let mut c = self.cluster.borrow_mut();
        let want = 1 + c.rng.below(max as u64) as usize;
        let mut batch = Vec::new();
        while batch.len() < want {
            let ready: Vec<&Partition> = self
                .owned
                .iter()
                .filter(|p| self.positions[*p] < c.commands[*p].len() as u64)
                .collect();
            if ready.is_empty() {
                break;
            }
            let partition = (*ready[c.rng.below(ready.len() as u64) as usize]).clone();
            let offset = self.positions[&partition];
            batch.push(CommandRecord {
                topic: partition.0.clone(),
                partition: partition.1,
                offset,
                value: c.commands[&partition][offset as usize].clone(),
            });
            self.positions.insert(partition, offset + 1);
        }
        let mid_poll = !batch.is_empty() && c.strikes(Fault::RebalanceMidPoll);
        if mid_poll {
            let member = c.join();
            c.joined.push(member);
            c.note(format!(
                "member {member} joins while {} polls: its batch straddles a revocation",
                self.transactional_id
            ));
        }
        drop(c);
        if mid_poll {
            // The revocation (and the new generation) arrive with the batch, as librdkafka's
            // rebalance callback can fire between two polls of one batch.
            self.follow_group();
        }
        Ok(batch)
    }

    fn assignment_changes(&mut self) -> Vec<(bool, Vec<Partition>)> {
        std::mem::take(&mut self.changes)
    }

    fn read_events(&mut self, topic: &str, partition: u32) -> Result<Vec<Envelope>, SimError> {
        self.call(Fault::RebuildFailed)?;
        let c = self.cluster.borrow();
        let records = c.events.get(&(topic.to_owned(), partition));
        Ok(records.map_or_else(Vec::new, |r| r.iter().map(|(e, _)| e.clone()).collect()))
    }

    fn begin(&mut self) -> Result<(), SimError> {
        self.call(Fault::AbortAtBegin)?;
        self.open = Some(Pending::default());
        Ok(())
    }

    fn produce(&mut self, tx: &Transaction) -> Result<(), SimError> {
        self.call(Fault::AbortAtProduce)?;
        if self.crash_strikes() {
            return Err(SimError::Crashed);
        }
        {
            let mut c = self.cluster.borrow_mut();
            if c.strikes(Fault::Zombie) {
                let line = format!(
                    "{} pauses: its session expires (a zombie)",
                    self.transactional_id
                );
                c.note(line);
                c.leave(self.member);
                self.zombie = true;
            } else if c.strikes(Fault::RebalanceMidBatch) {
                let member = c.join();
                c.joined.push(member);
            } else if c.strikes(Fault::TransactionTimedOut) {
                let line = format!(
                    "{}: the coordinator times the transaction out and bumps the epoch",
                    self.transactional_id
                );
                c.note(line);
                *c.epochs.entry(self.transactional_id.clone()).or_default() += 1;
            }
        }
        let open = self
            .open
            .as_mut()
            .ok_or(SimError::Failed("produce outside a transaction"))?;
        open.events.extend(tx.events.iter().cloned());
        open.commands.extend(tx.commands.iter().cloned());
        open.dead_letters.extend(tx.dead_letters.iter().cloned());
        Ok(())
    }

    fn commit(&mut self, offsets: &BTreeMap<Partition, u64>) -> Result<(), SimError> {
        self.call(Fault::AbortAtOffsets)?;
        {
            let c = self.cluster.borrow();
            if c.epochs.get(&self.transactional_id) != Some(&self.epoch) {
                return Err(SimError::Fenced(self.transactional_id.clone()));
            }
            if self.generation != c.group.generation || !c.group.members.contains(&self.member) {
                return Err(SimError::Failed("illegal generation: the group rebalanced"));
            }
        }
        self.call(Fault::AbortAtCommit)?;
        if self.crash_strikes() {
            return Err(SimError::Crashed);
        }
        let pending = self
            .open
            .take()
            .ok_or(SimError::Failed("commit outside a transaction"))?;
        let mut c = self.cluster.borrow_mut();
        let records = pending.events.len();
        c.append(pending);
        for (partition, next) in offsets {
            c.group.committed.insert(partition.clone(), *next);
        }
        let line = format!(
            "{} commits {records} events, offsets {offsets:?}",
            self.transactional_id
        );
        c.note(line);
        if c.strikes(Fault::CommitTimedOut) {
            c.note(format!(
                "{}: the commit is reported timed out",
                self.transactional_id
            ));
            return Err(SimError::Failed("commit timed out"));
        }
        Ok(())
    }

    fn commit_offsets_directly(
        &mut self,
        offsets: &BTreeMap<Partition, u64>,
    ) -> Result<(), SimError> {
        let mut c = self.cluster.borrow_mut();
        for (partition, next) in offsets {
            c.group.committed.insert(partition.clone(), *next);
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), SimError> {
        self.open = None;
        self.answering()
    }

    fn rewind(&mut self) -> Result<(), SimError> {
        self.call(Fault::RewindFailed)?;
        let c = self.cluster.borrow();
        for partition in &self.owned {
            self.positions
                .insert(partition.clone(), c.committed(partition));
        }
        Ok(())
    }
}
