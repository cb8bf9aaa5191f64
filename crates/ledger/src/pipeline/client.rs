//! The caller's side of the pipeline: submit commands to their partitions, and follow the event
//! topics (read_committed) to see what was decided, including every follow-up a command caused.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Mutex;
use uuid::Uuid;

use super::Topics;
use super::processor::{HEADER_DECISION_EVENTS, HEADER_FOLLOW_UP, ProcessorError, send_command};
use crate::decode;
use yeyak_domain::system::{Outcome, follow_up};
use yeyak_domain::{Command, Envelope, Event};
use yeyak_log::broker_recovery::with_statistics;
use yeyak_log::kafka::stored_record;
use yeyak_log::{BrokerRecovery, Recovering, client_config};

/// Where each sent command landed: `(topic, partition, offset)` by command id, and how many
/// sends of each failed (not yet taken by its submitter); and the producer's way back to a
/// cluster it lost ([`BrokerRecovery`]).
pub struct Deliveries {
    landed: Mutex<HashMap<Uuid, (String, i32, i64)>>,
    failed: Mutex<HashMap<Uuid, u32>>,
    recovery: BrokerRecovery,
}

impl Deliveries {
    fn new(bootstrap: &str) -> Deliveries {
        Deliveries {
            landed: Mutex::default(),
            failed: Mutex::default(),
            recovery: BrokerRecovery::new(bootstrap),
        }
    }
}

impl ClientContext for Deliveries {
    fn stats_raw(&self, statistics: &[u8]) {
        self.recovery.observe_raw(statistics);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Uuid>;

    fn delivery(&self, result: &DeliveryResult<'_>, command_id: Box<Uuid>) {
        match result {
            Ok(message) => {
                if let Ok(mut landed) = self.landed.lock() {
                    landed.insert(
                        *command_id,
                        (
                            message.topic().to_owned(),
                            message.partition(),
                            message.offset(),
                        ),
                    );
                }
            }
            Err((error, _)) => {
                tracing::warn!(command_id = %command_id, %error, "a command was not delivered");
                let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
                *failed.entry(*command_id).or_default() += 1;
            }
        }
    }
}

/// Sends commands (idempotent producer; not transactional: a command is a request, and its
/// id makes a retry harmless), and remembers where each one landed.
pub struct Submitter {
    producer: ThreadedProducer<Deliveries>,
    topics: Topics,
}

impl Submitter {
    pub fn connect(bootstrap: &str, topics: Topics) -> Result<Submitter, ProcessorError> {
        let producer: ThreadedProducer<Deliveries> = with_statistics(&mut client_config(bootstrap))
            .set("client.id", "yeyak-submitter")
            .set("enable.idempotence", "true")
            // A send the broker has not taken in this time is reported failed, and the request
            // waiting for it sends it again or tells its caller (`submission`).
            .set("message.timeout.ms", "30000")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("queue.buffering.max.messages", "1000000")
            .set("compression.type", "none")
            .create_with_context(Deliveries::new(bootstrap))
            .map_err(|cause| ProcessorError::Client {
                role: "submitter",
                cause,
            })?;
        producer.context().recovery.attach(producer.client());
        Ok(Submitter { producer, topics })
    }

    pub fn send(&self, command: &Command) -> Result<(), ProcessorError> {
        send_command(
            &self.producer,
            &self.topics,
            command,
            Box::new(command.command_id),
        )
    }

    pub fn flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        self.producer
            .flush(timeout)
            .map_err(|cause| ProcessorError::Broker {
                operation: "flush",
                cause,
            })
    }

    /// How many sends of `command_id` failed since the last call.
    pub fn take_failures(&self, command_id: Uuid) -> u32 {
        let failed = &self.producer.context().failed;
        let mut failed = failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.remove(&command_id).unwrap_or(0)
    }

    /// How many sends of each command failed since the last call.
    pub fn take_all_failures(&self) -> HashMap<Uuid, u32> {
        let failed = &self.producer.context().failed;
        std::mem::take(&mut *failed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Forgets where `command_id` landed and its failed sends (its request is over).
    pub fn forget(&self, command_id: Uuid) {
        let context = self.producer.context();
        context
            .landed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&command_id);
        context
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&command_id);
    }

    /// Where a sent command landed, once the broker acknowledged it.
    pub fn landed(&self, command_id: Uuid) -> Option<(String, i32, i64)> {
        self.producer
            .context()
            .landed
            .lock()
            .ok()?
            .get(&command_id)
            .cloned()
    }
}

/// Whether the processors' group has committed past `offset` of a command partition: the
/// command is decided (its events, if any, were committed in the same transaction).
pub fn decided_past(
    bootstrap: &str,
    group_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<bool, ProcessorError> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|cause| ProcessorError::Client {
            role: "offset reader",
            cause,
        })?;
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .map_err(|cause| ProcessorError::Broker {
            operation: "committed offsets",
            cause,
        })?;
    Ok(committed
        .elements()
        .iter()
        .any(|e| matches!(e.offset(), Offset::Offset(o) if o > offset)))
}

/// Whether a consumer error only says that a broker connection was lost (the client
/// reconnects by itself; nothing read is lost).
fn connection_lost(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(Code::BrokerTransportFailure | Code::AllBrokersDown | Code::NetworkException)
    )
}

/// What an event's record says of the decision it belongs to (the processor's headers): how many
/// events the decision has, and whether it answers a follow-up (a command the ledger derived
/// from another partition's event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionHeaders {
    pub events: Option<usize>,
    pub follow_up: bool,
}

/// Every decision read so far, by the command it answers: enough to give a caller the whole
/// outcome of its command once every link of the causal chain is there. Pure: the Kafka tail and
/// the simulator's gateway both fill one.
///
/// The partitions of a chain are read in any order: a follow-up's decision may be read before
/// the event that caused it (one transaction spans both), and then nothing held yet leads it
/// back to its chain's first command.
#[derive(Debug, Default)]
pub struct Answers {
    pub events: Vec<Envelope>,
    /// Envelopes by the command id they answer.
    by_command: HashMap<Uuid, Vec<usize>>,
    /// How many events each decision has (from the `decision_events` header).
    decision_sizes: HashMap<Uuid, usize>,
    /// The command each follow-up of the events held was caused by: a new event leads back to
    /// the first command of its chain, the one a request waits for ([`Answers::first_of_chain`]).
    caused_by: HashMap<Uuid, Uuid>,
    /// Commands whose records say they are follow-ups. One whose cause is not read yet is an
    /// orphan: [`Answers::forget_answered`] keeps it until its cause leads it to its chain.
    follow_ups: HashSet<Uuid>,
}

/// Links of a causal chain followed back at most (a chain is a handful of decisions long).
const CHAIN_LINKS_MAX: usize = 64;

impl Answers {
    /// One event read, with what its record says of its decision.
    pub fn record(&mut self, envelope: Envelope, decision: DecisionHeaders) {
        if let Some(size) = decision.events {
            self.decision_sizes.insert(envelope.command_id, size);
        }
        if decision.follow_up {
            self.follow_ups.insert(envelope.command_id);
        }
        self.by_command
            .entry(envelope.command_id)
            .or_default()
            .push(self.events.len());
        if let Some(next) = follow_up(&envelope) {
            self.caused_by.insert(next.command_id, envelope.command_id);
        }
        self.events.push(envelope);
    }

    /// The first command of the causal chain `command_id` belongs to (itself when nothing held
    /// caused it): the command whose request a new event may complete.
    pub fn first_of_chain(&self, command_id: Uuid) -> Uuid {
        let mut id = command_id;
        for _ in 0..CHAIN_LINKS_MAX {
            match self.caused_by.get(&id) {
                Some(&cause) => id = cause,
                None => break,
            }
        }
        id
    }

    /// The whole causal chain of `command_id` (its events, then its follow-ups' events, breadth
    /// first: the order `System::execute` gives), if every link has been decided.
    pub fn chain(&self, command_id: Uuid) -> Option<Outcome> {
        let mut outcome = Outcome {
            rejection: None,
            events: Vec::new(),
        };
        let mut queue = VecDeque::from([command_id]);
        let mut first = true;
        while let Some(id) = queue.pop_front() {
            let indexes = self.by_command.get(&id)?;
            if self
                .decision_sizes
                .get(&id)
                .is_some_and(|&size| indexes.len() < size)
            {
                return None; // the rest of this decision has not been read yet
            }
            for &i in indexes {
                let envelope = &self.events[i];
                if first {
                    if let Event::CommandRejected(r) = &envelope.event {
                        outcome.rejection = Some(r.rejection);
                    }
                }
                if let Some(next) = follow_up(envelope) {
                    queue.push_back(next.command_id);
                }
                outcome.events.push(envelope.clone());
            }
            first = false;
        }
        Some(outcome)
    }

    /// Forgets the decisions that no waiting request needs: once more than `2 * keep` events
    /// are held, every event but the last `keep` read is dropped unless it belongs to the
    /// (possibly partial) chain of a command in `waited`, or is an orphan (a follow-up whose
    /// cause is not read yet: its chain is not known). The way from a follow-up not read yet
    /// (or kept) to its chain's first command is kept too, when the event that gave it goes.
    /// Memory is then bounded by `keep` and the chains still waited for or under way, not by
    /// the log. A caller who asks again with the same id after its answer was forgotten is not
    /// answered from the tail (it times out; the read models hold the outcome). Returns which
    /// of the events held before were kept, in order.
    pub fn forget_answered(&mut self, keep: usize, waited: &HashSet<Uuid>) -> Option<Vec<bool>> {
        if self.events.len() <= keep.saturating_mul(2) {
            return None;
        }
        let pinned = self.chain_ids(waited);
        let cutoff = self.events.len() - keep;
        let kept: Vec<bool> = (self.events.iter().enumerate())
            .map(|(i, e)| {
                i >= cutoff || pinned.contains(&e.command_id) || self.orphaned(e.command_id)
            })
            .collect();
        let kept_commands: HashSet<Uuid> = (self.events.iter().zip(&kept))
            .filter(|(_, k)| **k)
            .map(|(e, _)| e.command_id)
            .collect();
        let links: Vec<(Uuid, Uuid)> = (self.caused_by.keys())
            .filter(|next| !self.by_command.contains_key(next) || kept_commands.contains(next))
            .map(|&next| (next, self.first_of_chain(next)))
            .collect();
        let events = std::mem::take(&mut self.events);
        let sizes = std::mem::take(&mut self.decision_sizes);
        let follow_ups = std::mem::take(&mut self.follow_ups);
        self.by_command.clear();
        self.caused_by.clear();
        for (envelope, _) in events.into_iter().zip(&kept).filter(|(_, k)| **k) {
            let decision = DecisionHeaders {
                events: sizes.get(&envelope.command_id).copied(),
                follow_up: follow_ups.contains(&envelope.command_id),
            };
            self.record(envelope, decision);
        }
        for (next, first) in links {
            self.caused_by.entry(next).or_insert(first);
        }
        Some(kept)
    }

    /// Whether `command_id`'s chain leads back to a follow-up whose cause is not read yet.
    fn orphaned(&self, command_id: Uuid) -> bool {
        self.follow_ups.contains(&self.first_of_chain(command_id))
    }

    /// Every command id of the chains of `roots` that has been read so far (the roots included).
    fn chain_ids(&self, roots: &HashSet<Uuid>) -> HashSet<Uuid> {
        let mut ids: HashSet<Uuid> = roots.clone();
        let mut queue: VecDeque<Uuid> = roots.iter().copied().collect();
        while let Some(id) = queue.pop_front() {
            for &i in self.by_command.get(&id).into_iter().flatten() {
                if let Some(next) = follow_up(&self.events[i])
                    && ids.insert(next.command_id)
                {
                    queue.push_back(next.command_id);
                }
            }
        }
        ids
    }

    /// Whether any event answers `command_id` yet.
    pub fn has_events(&self, command_id: Uuid) -> bool {
        self.by_command.contains_key(&command_id)
    }

    /// Every submitted command answered, and every follow-up decided.
    pub fn settled(&self, submitted: &[Uuid]) -> bool {
        submitted.iter().all(|id| self.chain(*id).is_some())
    }

    /// Event ids that occur more than once: a command decided twice would show here, since
    /// event ids are derived from the command id.
    pub fn duplicate_event_ids(&self) -> Vec<Uuid> {
        let mut seen = HashSet::new();
        self.events
            .iter()
            .filter(|e| !seen.insert(e.event_id))
            .map(|e| e.event_id)
            .collect()
    }
}

/// Follows every event partition of a deployment from the start, read_committed.
pub struct EventTail {
    consumer: BaseConsumer<Recovering>,
    pub answers: Answers,
    /// Where each of `answers.events` was read: `(topic, partition, offset)`.
    pub positions: Vec<(String, u32, u64)>,
}

impl std::ops::Deref for EventTail {
    type Target = Answers;

    fn deref(&self) -> &Answers {
        &self.answers
    }
}

impl EventTail {
    pub fn open(bootstrap: &str, topics: &Topics) -> Result<EventTail, ProcessorError> {
        let consumer: BaseConsumer<Recovering> = with_statistics(&mut client_config(bootstrap))
            .set("client.id", "yeyak-tail")
            .set("group.id", "yeyak-tail-unused")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Recovering::new(bootstrap))
            .map_err(|cause| ProcessorError::Client {
                role: "tail",
                cause,
            })?;
        consumer.context().0.attach(consumer.client());
        let mut assignment = TopicPartitionList::new();
        for (_, event_topic, partitions) in topics.pairs() {
            for p in 0..partitions {
                assignment
                    .add_partition_offset(&event_topic, p as i32, Offset::Beginning)
                    .map_err(|cause| ProcessorError::Broker {
                        operation: "assign",
                        cause,
                    })?;
            }
        }
        consumer
            .assign(&assignment)
            .map_err(|cause| ProcessorError::Broker {
                operation: "assign",
                cause,
            })?;
        Ok(EventTail {
            consumer,
            answers: Answers::default(),
            positions: Vec::new(),
        })
    }

    /// Reads what has arrived: waits up to `wait` for the first event, then takes what the
    /// consumer already holds (its waiters are answered without waiting out `wait`).
    pub fn poll(&mut self, wait: Duration) -> Result<usize, ProcessorError> {
        let until = Instant::now() + wait;
        let mut read = 0;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(read);
            }
            let wait = if read == 0 {
                until - now
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                None => return Ok(read),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                // A broker that went away: librdkafka reconnects (or moves to the new leader)
                // by itself and the tail reads on from where it was.
                Some(Err(cause)) if connection_lost(&cause) => {
                    tracing::debug!(error = %cause, "the tail lost a broker; reading on");
                }
                Some(Err(cause)) => {
                    return Err(ProcessorError::Broker {
                        operation: "tail",
                        cause,
                    });
                }
                Some(Ok(message)) => {
                    let decision = decision_headers(&message);
                    let stored = stored_record(&message);
                    let envelope = decode(&stored).map_err(|cause| ProcessorError::Damaged {
                        topic: stored.topic.clone(),
                        partition: stored.partition,
                        offset: stored.offset,
                        cause: Box::new(cause),
                    })?;
                    self.answers.record(envelope, decision);
                    self.positions
                        .push((stored.topic, stored.partition, stored.offset));
                    read += 1;
                }
            }
        }
    }

    /// [`Answers::forget_answered`], with the positions of the events kept alongside.
    pub fn forget_answered(&mut self, keep: usize, waited: &HashSet<Uuid>) -> bool {
        let Some(kept) = self.answers.forget_answered(keep, waited) else {
            return false;
        };
        let positions = std::mem::take(&mut self.positions);
        self.positions = positions
            .into_iter()
            .zip(kept)
            .filter_map(|(position, keep)| keep.then_some(position))
            .collect();
        true
    }

    /// Waits until the chain of `command_id` is complete.
    pub fn wait_for(
        &mut self,
        command_id: Uuid,
        timeout: Duration,
    ) -> Result<Option<Outcome>, ProcessorError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(outcome) = self.chain(command_id) {
                return Ok(Some(outcome));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            self.poll(Duration::from_millis(50))?;
        }
    }
}

/// What an event record's headers say of its decision.
fn decision_headers(message: &rdkafka::message::BorrowedMessage<'_>) -> DecisionHeaders {
    let mut decision = DecisionHeaders::default();
    for header in message.headers().into_iter().flat_map(|h| h.iter()) {
        let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
        match header.key {
            HEADER_DECISION_EVENTS => decision.events = value.and_then(|v| v.parse().ok()),
            HEADER_FOLLOW_UP => decision.follow_up = value == Some("1"),
            _ => {}
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use yeyak_domain::{Campaign, Command, CommandBody, SubjectId, System, TicketNo};

    /// The events of `n` people leaving a queue they are not in (one refusal each, no follow-up).
    fn verified(n: u128) -> Vec<Envelope> {
        let system = System::new(Campaign::default_2021());
        (0..n)
            .flat_map(|i| {
                let command = Command {
                    command_id: Uuid::from_u128(i + 1),
                    at_ms: 1_628_000_000_000,
                    body: CommandBody::LeaveQueue {
                        subject: SubjectId([i as u8; 16]),
                        ticket: TicketNo(i as u64),
                    },
                };
                system.decide(&command).1
            })
            .collect()
    }

    fn one_event() -> DecisionHeaders {
        DecisionHeaders {
            events: Some(1),
            follow_up: false,
        }
    }

    /// The seed's first scenario on the pure system: the booking's root command and its whole
    /// chain (the booking, then the follow-ups' decisions on the clinic and back), with each
    /// event's headers as the processor writes them.
    fn booking_chain() -> (Uuid, Vec<(Envelope, DecisionHeaders)>) {
        struct Chains(System, Vec<(Uuid, Vec<Envelope>)>);
        impl yeyak_domain::script::Runner for Chains {
            fn run(&mut self, command: Command) -> Outcome {
                let id = command.command_id;
                let outcome = self.0.execute(command);
                self.1.push((id, outcome.events.clone()));
                outcome
            }
        }
        let mut chains = Chains(System::new(yeyak_domain::script::campaign()), Vec::new());
        let (_, script) = yeyak_domain::script::scenarios::SCENARIOS[0];
        yeyak_domain::script::run_script(&mut chains, script);
        let (root, events) = (chains.1.into_iter())
            .find(|(_, events)| {
                (events.iter()).any(|e| matches!(e.event, Event::ReservationRecorded(_)))
            })
            .expect("the scenario books");
        let sizes: HashMap<Uuid, usize> = events.iter().fold(HashMap::new(), |mut n, e| {
            *n.entry(e.command_id).or_default() += 1;
            n
        });
        let events = (events.into_iter())
            .map(|e| {
                let decision = DecisionHeaders {
                    events: Some(sizes[&e.command_id]),
                    follow_up: e.command_id != root,
                };
                (e, decision)
            })
            .collect();
        (root, events)
    }

    /// A transaction holds a whole chain, and the tail may read the clinic's partition first:
    /// the follow-ups' decisions come before the event that caused them, further back than the
    /// events kept. They are kept, and the booking is answered once its own event is read.
    /// (Before, they were forgotten and the request was never answered: a stampede of 50,000
    /// left 1,678 bookings decided and unanswered.)
    #[test]
    fn follow_ups_read_before_their_cause_are_kept_until_it_comes() {
        let (root, chain) = booking_chain();
        let (mine, follow_ups): (Vec<_>, Vec<_>) = chain
            .iter()
            .cloned()
            .partition(|(e, _)| e.command_id == root);
        assert!(!mine.is_empty() && follow_ups.len() >= 2, "{chain:?}");
        let mut answers = Answers::default();
        for (e, decision) in follow_ups {
            answers.record(e, decision);
        }
        for e in verified(30) {
            answers.record(e, one_event());
        }
        let waited: HashSet<Uuid> = [root].into();
        assert!(answers.forget_answered(10, &waited).is_some());
        assert_eq!(answers.chain(root).map(|o| o.events.len()), None);
        for (e, decision) in mine {
            answers.record(e, decision);
        }
        assert_eq!(
            answers.first_of_chain(chain.last().unwrap().0.command_id),
            root
        );
        let outcome = answers.chain(root).expect("the whole chain is held");
        let ids =
            |events: Vec<Envelope>| events.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(
            ids(outcome.events),
            ids(chain.into_iter().map(|(e, _)| e).collect())
        );
    }

    /// The other order, when nobody waits for the chain: its first decision is forgotten before
    /// the follow-ups are read. They still lead back to it, so they are forgotten in turn instead
    /// of being held as orphans for ever.
    #[test]
    fn follow_ups_of_a_forgotten_cause_are_forgotten_too() {
        let (root, chain) = booking_chain();
        let (mine, follow_ups): (Vec<_>, Vec<_>) =
            chain.into_iter().partition(|(e, _)| e.command_id == root);
        let mut answers = Answers::default();
        for (e, decision) in mine {
            answers.record(e, decision);
        }
        for e in verified(30) {
            answers.record(e, one_event());
        }
        assert!(answers.forget_answered(10, &HashSet::new()).is_some());
        assert!(!answers.has_events(root), "forgotten: nobody waits for it");
        let follow_up_ids: Vec<Uuid> = follow_ups.iter().map(|(e, _)| e.command_id).collect();
        for (e, decision) in follow_ups {
            answers.record(e, decision);
        }
        let filler: Vec<Envelope> = verified(60).into_iter().skip(30).collect();
        for e in filler {
            answers.record(e, one_event());
        }
        assert!(answers.forget_answered(10, &HashSet::new()).is_some());
        assert_eq!(answers.events.len(), 10, "only the last 10 are held");
        assert!(follow_up_ids.iter().all(|id| !answers.has_events(*id)));
    }

    #[test]
    fn answered_chains_are_forgotten_and_waited_ones_kept() {
        let events = verified(100);
        assert_eq!(events.len(), 100, "one event per decision");
        let mut answers = Answers::default();
        for e in &events {
            answers.record(e.clone(), one_event());
        }
        let waited: HashSet<Uuid> = [events[3].command_id].into();
        assert!(
            answers.forget_answered(60, &waited).is_none(),
            "under twice the bound"
        );
        let kept = answers
            .forget_answered(10, &waited)
            .expect("over the bound");
        assert_eq!(kept.iter().filter(|k| **k).count(), 11);
        assert_eq!(answers.events.len(), 11, "the last 10 and the waited one");
        assert!(
            answers.chain(events[3].command_id).is_some(),
            "still answerable"
        );
        assert!(answers.chain(events[50].command_id).is_none(), "forgotten");
        assert!(
            answers.chain(events[95].command_id).is_some(),
            "recent, kept"
        );
    }
}
