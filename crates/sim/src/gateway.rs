//! The simulated gateway: sends commands for its clients through [`Submission`] (the gateway's
//! own delivery rules), follows the event partitions like the Kafka tail ([`Answers`]), and
//! records every answer it gave, for the check that each one is the log's.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use yeyak_domain::system::Outcome;
use yeyak_domain::{AdmissionId, Command, Event, SubjectId};
use yeyak_ledger::pipeline::client::Answers;
use yeyak_ledger::pipeline::submission::{Failure, Next, Submission};

use crate::cluster::{Delivery, Partition, Shared};
use crate::faults::Fault;

/// How long a client waits for an answer (simulated ms).
pub const ANSWER_WITHIN_MS: u64 = 400;

/// What a client hears about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Answer(Outcome),
    Failed(Failure),
}

pub struct Gateway {
    pub answers: Answers,
    read: BTreeMap<Partition, usize>,
    waiting: BTreeMap<Uuid, Submission>,
    /// Admissions granted, by person (what the page learns from the view).
    pub admissions: HashMap<SubjectId, AdmissionId>,
    /// Every answer given to a client: `(command id, outcome)`.
    pub told: Vec<(Uuid, Outcome)>,
    /// Heard by clients since the last call of [`Gateway::heard`].
    heard: Vec<(Uuid, Heard)>,
}

impl Gateway {
    pub fn new() -> Gateway {
        Gateway {
            answers: Answers::default(),
            read: BTreeMap::new(),
            waiting: BTreeMap::new(),
            admissions: HashMap::new(),
            told: Vec::new(),
            heard: Vec::new(),
        }
    }

    /// Sends a command for a client; its answer (or failure) comes through [`Gateway::heard`].
    pub fn submit(&mut self, cluster: &Shared, command: Command) {
        let now = cluster.borrow().now_ms;
        let id = command.command_id;
        let submission = Submission::sent(command, now + ANSWER_WITHIN_MS);
        let delivery = send(cluster, submission.command());
        self.waiting.insert(id, submission);
        self.delivered(cluster, id, delivery);
    }

    fn delivered(&mut self, cluster: &Shared, id: Uuid, mut delivery: Delivery) {
        loop {
            let Some(submission) = self.waiting.get_mut(&id) else {
                return;
            };
            if delivery == Delivery::Written {
                submission.delivered();
                return;
            }
            let now = cluster.borrow().now_ms;
            match submission.delivery_failed(now) {
                Next::Resend => delivery = send(cluster, submission.command()),
                Next::Wait => return,
                Next::Fail(failure) => {
                    self.waiting.remove(&id);
                    self.heard.push((id, Heard::Failed(failure)));
                    return;
                }
            }
        }
    }

    /// Reads what was committed since, answers the waiting requests, and times out the rest.
    pub fn follow(&mut self, cluster: &Shared) {
        let c = cluster.borrow();
        for (partition, records) in &c.events {
            let from = self.read.get(partition).copied().unwrap_or(0);
            for (envelope, decision) in &records[from..] {
                if let Event::AdmissionGranted(e) = &envelope.event {
                    self.admissions.insert(e.subject, e.admission);
                }
                self.answers.record(envelope.clone(), *decision);
            }
            self.read.insert(partition.clone(), records.len());
        }
        let now = c.now_ms;
        drop(c);
        let ids: Vec<Uuid> = self.waiting.keys().copied().collect();
        for id in ids {
            if let Some(outcome) = self.answers.chain(id) {
                self.waiting.remove(&id);
                self.told.push((id, outcome.clone()));
                self.heard.push((id, Heard::Answer(outcome)));
            } else if let Some(Next::Fail(failure)) = self.waiting.get(&id).map(|s| s.tick(now)) {
                self.waiting.remove(&id);
                self.heard.push((id, Heard::Failed(failure)));
            }
        }
    }

    pub fn heard(&mut self) -> Vec<(Uuid, Heard)> {
        std::mem::take(&mut self.heard)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

impl Default for Gateway {
    fn default() -> Gateway {
        Gateway::new()
    }
}

fn send(cluster: &Shared, command: &Command) -> Delivery {
    let mut c = cluster.borrow_mut();
    let partition = c.topics.command_partition(&command.body.target());
    let value = serde_json::to_vec(command).expect("a command encodes");
    let delivery = c.send(&partition, value);
    if delivery != Delivery::Written {
        let what = match delivery {
            Delivery::Lost => Fault::DeliveryLost,
            _ => Fault::DeliveryTimedOut,
        };
        c.note(format!(
            "send of {} {}: {what}",
            command.body.name(),
            command.command_id
        ));
    }
    delivery
}
