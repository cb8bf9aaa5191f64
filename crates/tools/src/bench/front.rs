//! The benchmark's request path, as the front tier has it: every command that needs its
//! outcome goes through [`Submit`] on the Kafka pipeline (send, then wait for the whole causal
//! chain on the event tail), without a thread waiting per request, like the gateway's; an
//! admission loop admits whoever waits, like the gateway's controller; an [`EventSink`] sees
//! the admissions (the waiting page's news) and when each reservation was decided.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{
    AdmissionId, BirthFacts, Command, CommandBody, Envelope, Event, RejectionCode, SubjectId,
};
use yeyak_identity::{Pseudonymiser, SecretKey};
use yeyak_ledger::submit::{EventSink, Kafka, Submit, SubmitError, WAITERS_MAX};

use super::BenchError;
use crate::workload::{Arrival, Plan, Workload};

/// People with a request waiting for its decision at once, at most: as many as one gateway
/// lets wait ([`WAITERS_MAX`]: its requests wait without a thread each), so the benchmark has
/// the front tier's concurrency, not more.
pub const IN_FLIGHT_MAX: usize = WAITERS_MAX;
/// Threads registering the clinics' supply before the crowd arrives.
pub const SUPPLY_THREADS: usize = 32;
/// How often the admission loop admits, and how long it waits for the decision (an admission
/// of nobody has no event: it is never answered).
pub const ADMIT_EVERY: Duration = Duration::from_millis(20);
/// The admissions a quiet spell may save up, in seconds of the rate (the controller's budget
/// is spent as it comes, too).
const ADMIT_BUDGET_S_MAX: f64 = 0.1;
/// How long an admission lasts (longer than any benchmark).
pub const ADMISSION_TTL_MS: i64 = 3_600_000;

/// The people of the run, pseudonymised, with their plans.
pub struct Crowd {
    pub workload: Workload,
    pub plans: Vec<Plan>,
    pub subjects: Vec<SubjectId>,
    pub births: Vec<BirthFacts>,
    pub person_of: HashMap<SubjectId, usize>,
    /// The simulated instant of the run: the booking day's opening.
    pub at_ms: i64,
}

impl Crowd {
    /// The workload's people through the identity edge, each with a plan. Their resident
    /// numbers are made up but valid, so they are pseudonymised under a random key of this run
    /// (never a public one): what the benchmark writes to Kafka cannot be traced back to a
    /// number, not even to a made-up one.
    pub fn new(mut workload: Workload, at_ms: i64) -> Result<Crowd, BenchError> {
        let edge = Pseudonymiser::new(SecretKey::random()?);
        let mut subjects = Vec::with_capacity(workload.people.len());
        let mut births = Vec::with_capacity(workload.people.len());
        for person in &workload.people {
            let (subject, birth) = edge.subject_of(&person.resident_number)?;
            subjects.push(subject);
            births.push(birth);
        }
        let plans = workload.choices.plans(workload.people.len());
        let person_of = subjects.iter().enumerate().map(|(n, s)| (*s, n)).collect();
        Ok(Crowd {
            workload,
            plans,
            subjects,
            births,
            person_of,
            at_ms,
        })
    }

    /// How many people.
    pub fn people(&self) -> usize {
        self.subjects.len()
    }

    /// The benchmark's command `name` of person (or item) `n`: its id is derived from both.
    /// Person `n` verifies, with their own device and their plan's method.
    pub fn verify(&self, n: usize) -> Command {
        let verify = CommandBody::Verify {
            subject: self.subjects[n],
            birth_year: self.births[n].year,
            cohort_digit: self.births[n].cohort_digit,
            method: self.plans[n].visit.method,
            device: self.workload.people[n].device.clone(),
        };
        self.command("verify", n, self.at_ms, verify)
    }

    /// Person `n` takes a ticket.
    pub fn enqueue(&self, n: usize) -> Command {
        let enqueue = CommandBody::Enqueue {
            subject: self.subjects[n],
            device: self.workload.people[n].device.clone(),
        };
        self.command("enqueue", n, self.at_ms, enqueue)
    }

    /// Person `n` books their pick with `admission`.
    pub fn book(&self, n: usize, admission: AdmissionId) -> Command {
        let pick = self.plans[n].pick;
        let book = CommandBody::Book {
            subject: self.subjects[n],
            requested_for: self.subjects[n],
            device: self.workload.people[n].device.clone(),
            clinic: self.workload.clinics[pick.clinic].id.clone(),
            date: self.workload.dates[pick.date],
            admission,
        };
        self.command("book", n, self.at_ms + 2, book)
    }

    pub fn command(&self, name: &str, n: usize, at_ms: i64, body: CommandBody) -> Command {
        Command {
            command_id: command_id_from(&format!("bench/{name}/{n}")),
            at_ms,
            body,
        }
    }
}

/// What the event tail showed: admissions not yet handed to the pool, and each reservation with
/// the instant it was seen decided. Bounded by the crowd: at most one of each per person.
#[derive(Default)]
struct Seen {
    admitted: VecDeque<(usize, AdmissionId)>,
    reservations: Vec<(Uuid, Instant)>,
}

/// Sees every event the pipeline decided, on the Kafka backend's tail thread; never blocks.
pub struct BenchSink {
    person_of: HashMap<SubjectId, usize>,
    seen: Mutex<Seen>,
}

impl BenchSink {
    pub fn new(crowd: &Crowd) -> BenchSink {
        BenchSink {
            person_of: crowd.person_of.clone(),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Every reservation's event id and the instant it was seen decided.
    pub fn reservations_seen(&self) -> Vec<(Uuid, Instant)> {
        self.seen
            .lock()
            .map(|s| s.reservations.clone())
            .unwrap_or_default()
    }
}

impl EventSink for BenchSink {
    fn record(&self, events: &[Envelope]) {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        for envelope in events {
            match &envelope.event {
                Event::AdmissionGranted(g) => {
                    if let Some(&n) = self.person_of.get(&g.subject) {
                        seen.admitted.push_back((n, g.admission));
                    }
                }
                Event::ReservationRecorded(_) => seen.reservations.push((envelope.event_id, now)),
                _ => {}
            }
        }
    }
}

/// What the pool did: people done (booked, refused or sold out), booking latencies, and the
/// first failure of the request path.
#[derive(Default)]
pub struct Tally {
    pub finished: AtomicU64,
    /// Bookings refused because the pick was sold out, and for any other reason.
    pub sold_out: AtomicU64,
    pub refused: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    failure: Mutex<Option<SubmitError>>,
}

impl Tally {
    fn fail(&self, error: SubmitError) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(error);
        }
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<SubmitError> {
        self.failure.lock().ok()?.take()
    }

    /// Booking -> reservation latencies, sorted.
    pub fn latencies_ms(&self) -> Vec<f64> {
        let mut latencies = self
            .latencies_ms
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        latencies.sort_by(|a, b| a.total_cmp(b));
        latencies
    }
}

/// One person's next request.
#[derive(Debug, Clone, Copy)]
enum Step {
    Verify(usize),
    /// Take a ticket (after a verification).
    Enqueue(usize),
    /// Book with the admission; `handed` is when the person pressed "book".
    Book {
        person: usize,
        admission: AdmissionId,
        handed: Instant,
    },
}

/// Times a person asks again, with the same command id, when the log did not take a command.
const PATIENCE: u32 = 10;
/// How long a person waits before asking again.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// The people's requests, as the gateway has them: each submitted without a thread waiting for
/// it ([`Submit::submit_then`]); its answer, on the event tail's thread, submits the person's
/// next request. At most [`IN_FLIGHT_MAX`] people have a request waiting at once.
struct Flows {
    ledger: Arc<Kafka>,
    crowd: Arc<Crowd>,
    tally: Arc<Tally>,
    timeout: Duration,
    /// People with a request waiting for its decision.
    in_flight: AtomicUsize,
    /// Requests the log did not take, to be asked again (when, which, the tries so far).
    later: Mutex<Vec<(Instant, Step, u32)>>,
}

impl Flows {
    fn command(&self, step: Step) -> Command {
        match step {
            Step::Verify(n) => self.crowd.verify(n),
            Step::Enqueue(n) => self.crowd.enqueue(n),
            Step::Book {
                person, admission, ..
            } => self.crowd.book(person, admission),
        }
    }

    /// A person starts a request (counted in flight until their answer).
    fn start(self: &Arc<Self>, step: Step) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.submit(step, 1);
    }

    fn submit(self: &Arc<Self>, step: Step, tries: u32) {
        let flows = self.clone();
        self.ledger.submit_then(
            self.command(step),
            self.timeout,
            Box::new(move |answer| flows.answered(step, tries, answer)),
        );
    }

    /// A request's answer: the person's next request, or they are done, waiting for their
    /// admission, or asking again later when the log did not take the command (a broker that
    /// stalls long enough for every resend to fail), as a person pressing the button again.
    fn answered(self: &Arc<Self>, step: Step, tries: u32, answer: Result<Outcome, SubmitError>) {
        let outcome = match answer {
            Err(SubmitError::NotDelivered { sends }) if tries < PATIENCE => {
                tracing::info!(?step, sends, "not delivered; asking again");
                let mut later = self.later.lock().unwrap_or_else(|p| p.into_inner());
                return later.push((Instant::now() + ASK_AGAIN_AFTER, step, tries + 1));
            }
            Err(error) => {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                return self.tally.fail(error);
            }
            Ok(outcome) => outcome,
        };
        match step {
            Step::Verify(n) if outcome.rejection.is_none() => {
                return self.submit(Step::Enqueue(n), 1);
            }
            Step::Verify(_) => self.done(),
            Step::Enqueue(_) if outcome.rejection.is_some() => self.done(),
            Step::Enqueue(_) => {} // waits for their admission
            Step::Book { handed, .. } => {
                self.tally.booked(&outcome, handed);
                self.done();
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn done(&self) {
        self.tally.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks again whatever is due.
    fn ask_again(self: &Arc<Self>) {
        let now = Instant::now();
        let due: Vec<(Step, u32)> = {
            let mut later = self.later.lock().unwrap_or_else(|p| p.into_inner());
            let (due, wait) = later.drain(..).partition(|(at, _, _)| *at <= now);
            *later = wait;
            due.into_iter()
                .map(|(_, step, tries)| (step, tries))
                .collect()
        };
        for (step, tries) in due {
            self.submit(step, tries);
        }
    }
}

impl Tally {
    /// A booking's answer: counted as reserved (with its latency), sold out or refused.
    fn booked(&self, outcome: &Outcome, handed: Instant) {
        match refusal(outcome) {
            Some(RejectionCode::SoldOut) => self.sold_out.fetch_add(1, Ordering::Relaxed),
            Some(_) => self.refused.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        let reserved = outcome
            .events
            .iter()
            .any(|e| matches!(e.event, Event::ReservationRecorded(_)));
        if reserved && let Ok(mut latencies) = self.latencies_ms.lock() {
            latencies.push(handed.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

/// The front tier of the benchmark: the people's requests and the admission loop.
pub struct Front {
    pub ledger: Arc<Kafka>,
    pub sink: Arc<BenchSink>,
    pub tally: Arc<Tally>,
    crowd: Arc<Crowd>,
    flows: Arc<Flows>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    arrived: usize,
}

impl Front {
    /// The front tier; the admission loop starts with [`Front::open_doors`]. `timeout`: how
    /// long a request waits for its decision.
    pub fn start(
        ledger: Arc<Kafka>,
        sink: Arc<BenchSink>,
        crowd: Arc<Crowd>,
        timeout: Duration,
    ) -> Front {
        let tally = Arc::new(Tally::default());
        let flows = Arc::new(Flows {
            ledger: ledger.clone(),
            crowd: crowd.clone(),
            tally: tally.clone(),
            timeout,
            in_flight: AtomicUsize::new(0),
            later: Mutex::default(),
        });
        Front {
            ledger,
            sink,
            tally,
            crowd,
            flows,
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            arrived: 0,
        }
    }

    /// Registers every clinic's doses for every date, and waits until they are decided.
    pub fn register_supply(&self) -> Result<(), BenchError> {
        let mut commands = Vec::new();
        for (c, clinic) in self.crowd.workload.clinics.iter().enumerate() {
            for (d, body) in clinic.supply_commands().enumerate() {
                let n = c * clinic.supply.len() + d;
                commands.push(self.crowd.command("supply", n, self.crowd.at_ms - 1, body));
            }
        }
        let ledger = &*self.ledger;
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..SUPPLY_THREADS)
                .map(|t| {
                    let mine: Vec<Command> = commands
                        .iter()
                        .skip(t)
                        .step_by(SUPPLY_THREADS)
                        .cloned()
                        .collect();
                    scope.spawn(move || register(ledger, mine))
                })
                .collect();
            threads.into_iter().try_for_each(|t| {
                t.join()
                    .unwrap_or(Err(BenchError::Refused("panicked".into())))
            })
        })
    }

    /// Starts the admission loop: every [`ADMIT_EVERY`], as many waiting tickets as
    /// `admit_per_s` paid for since.
    pub fn open_doors(&mut self, admit_per_s: u32) {
        let (ledger, stop, tally, at_ms) = (
            self.ledger.clone(),
            self.stop.clone(),
            self.tally.clone(),
            self.crowd.at_ms,
        );
        self.threads.push(std::thread::spawn(move || {
            admit_at(&ledger, f64::from(admit_per_s), at_ms, &stop, &tally)
        }));
    }

    /// Starts the bookings of whoever was admitted, then the visits of whoever is due to arrive
    /// `elapsed` into the run, and asks again what is due, as far as [`IN_FLIGHT_MAX`] allows.
    pub fn dispatch(&mut self, elapsed: Duration) {
        self.flows.ask_again();
        let room = |flows: &Flows| flows.in_flight.load(Ordering::Relaxed) < IN_FLIGHT_MAX;
        if let Ok(mut seen) = self.sink.seen.lock() {
            while room(&self.flows) {
                let Some((person, admission)) = seen.admitted.pop_front() else {
                    break;
                };
                let handed = Instant::now();
                self.flows.start(Step::Book {
                    person,
                    admission,
                    handed,
                });
            }
        }
        let arrival: Arrival = self.crowd.workload.arrival;
        while self.arrived < self.crowd.people()
            && arrival.offset_ms(self.arrived) <= elapsed.as_millis() as i64
            && room(&self.flows)
        {
            self.flows.start(Step::Verify(self.arrived));
            self.arrived += 1;
        }
    }

    /// Stops the admission loop and waits for it.
    pub fn finish(mut self) {
        self.close();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::warn!("a benchmark front thread panicked");
            }
        }
    }

    /// Stops the admission loop.
    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Front {
    /// A run given up (timeout, failure) stops its front without waiting for requests in flight.
    fn drop(&mut self) {
        self.close();
    }
}

fn register(ledger: &Kafka, commands: Vec<Command>) -> Result<(), BenchError> {
    for command in commands {
        if let Some(r) = ledger.submit(command)?.rejection {
            return Err(BenchError::Refused(r.code.as_str().to_owned()));
        }
    }
    Ok(())
}

/// Why a booking was refused: the command's rejection, or the clinic's answer in its chain
/// (`BookingFailed`: the pick sold out meanwhile).
fn refusal(outcome: &Outcome) -> Option<RejectionCode> {
    outcome.rejection.as_ref().map(|r| r.code).or_else(|| {
        outcome.events.iter().find_map(|e| match &e.event {
            Event::BookingFailed(failed) => Some(failed.code),
            _ => None,
        })
    })
}

/// The admission loop, until stopped: like the gateway's controller, a budget that grows at
/// `per_s` and pays for the tickets each admission granted. An admission that found nobody is
/// never answered: its wait times out, as the gateway's controller expects.
fn admit_at(ledger: &Kafka, per_s: f64, at_ms: i64, stop: &AtomicBool, tally: &Tally) {
    let started = Instant::now();
    let mut last = started;
    let mut budget = 0.0f64;
    let mut k = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        budget = (budget + per_s * now.duration_since(last).as_secs_f64())
            .min((per_s * ADMIT_BUDGET_S_MAX).max(1.0));
        last = now;
        let tickets = (budget.floor() as u32).min(yeyak_domain::waiting_room::ADMIT_TICKETS_MAX);
        if tickets > 0 {
            let admit = Command {
                command_id: command_id_from(&format!("bench/admit/{k}")),
                at_ms: at_ms + 1,
                body: CommandBody::Admit {
                    tickets_max: tickets,
                    ttl_ms: ADMISSION_TTL_MS,
                },
            };
            k += 1;
            match ledger.submit_within(admit, ADMIT_EVERY) {
                Ok(outcome) => {
                    let granted = outcome
                        .events
                        .iter()
                        .filter(|e| matches!(e.event, Event::AdmissionGranted(_)))
                        .count();
                    budget -= granted as f64;
                }
                Err(SubmitError::Timeout(_) | SubmitError::NotDelivered { .. }) => {}
                Err(error) => return tally.fail(error),
            }
        }
        let ticks = now.duration_since(started).as_millis() / ADMIT_EVERY.as_millis() + 1;
        let next = started + ADMIT_EVERY * ticks as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadConfig;

    /// Each run pseudonymises its made-up people under a key of its own: the same people get
    /// other subject ids in another run (a public key would give the same ones).
    #[test]
    fn each_run_pseudonymises_under_a_key_of_its_own() {
        let campaign = yeyak_domain::Campaign::default_2021();
        let crowd = || {
            let config = WorkloadConfig::booking_day(7, 20, 2, Arrival::Stampede);
            let workload = Workload::generate(&config, &campaign).unwrap();
            Crowd::new(workload, 0).unwrap()
        };
        let (first, second) = (crowd(), crowd());
        assert_eq!(first.births, second.births);
        assert!(first.subjects.iter().all(|s| !second.subjects.contains(s)));
    }
}
