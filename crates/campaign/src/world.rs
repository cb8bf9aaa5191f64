//! The discrete-event simulation: a priority queue of timed actions in simulated time (no wall
//! clock, no threads), drawn from one seed. People arrive, verify at an identity provider,
//! queue, are admitted, pick a clinic and a date from what the site shows, book, give up and
//! come back, change and cancel; the admission controller admits at its rate. Every decision
//! is a command to the ledger ([`Decide`]); the people read its answers as a page would.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use yeyak_domain::system::Outcome;
use yeyak_domain::{
    AdmissionId, Campaign, Command, CommandBody, Event, GatewayId, OperatorId, Permille, Share,
    SubjectId, TicketNo, TimestampMs,
};

use crate::SimulateError;
use crate::behaviour::*;
use crate::ledger::Decide;
use crate::observe::Observer;
use crate::people::{Population, birth, device_of, person_of, subject_of};
use crate::providers::{METHODS, PERSON_TIME_MS, Providers};
use crate::rng::{Rng, mix};
use crate::supply::Supply;

/// What a person comes to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Intent {
    Nothing = 0,
    Book = 1,
    Change = 2,
    Cancel = 3,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    PrepareDay(u8),
    PrepareChangeWindow,
    Draw(u8),
    Arrive(u32),
    Verified {
        person: u32,
        method: u8,
    },
    SecondDevice {
        person: u32,
        method: u8,
    },
    VerifyAgain {
        person: u32,
        method: u8,
    },
    GiveUp {
        person: u32,
        ticket: u64,
    },
    Skip(u64),
    /// The operator records that a method's provider is out (or back).
    Outage {
        method: u8,
        out: bool,
    },
    Book {
        person: u32,
        admission: AdmissionId,
        tries: u8,
    },
    Tick,
    Release,
    Sample,
}

#[derive(Debug, Clone, Copy)]
struct Scheduled {
    at_ms: TimestampMs,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

/// Told how the run goes, every so many actions.
pub trait Progress {
    fn update(&mut self, now_ms: TimestampMs, people_done: u64, events: u64);
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {
    fn update(&mut self, _: TimestampMs, _: u64, _: u64) {}
}

/// How often progress is told, in actions.
const PROGRESS_EVERY: u64 = 1 << 16;

pub struct World<'a, D: Decide> {
    pub campaign: Campaign,
    seed: u64,
    rng: Rng,
    ledger: &'a mut D,
    pub observer: Observer,
    pub population: Population,
    pub supply: Supply,
    providers: Providers,
    cohorts: Vec<Vec<u32>>,
    intent: Vec<u8>,
    visits: Vec<u8>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    commands: u64,
    now_ms: TimestampMs,
    admit_per_s: f64,
    live_max: u64,
    budget: f64,
    /// Tickets whose holder closed the page without leaving (skipped after the heartbeat).
    silent: HashSet<u64>,
    reported: Vec<(u8, TimestampMs)>,
    /// (region, share) found without a dose at this instant: not scanned again for an hour.
    exhausted: HashMap<(u8, Share), TimestampMs>,
    gateway: GatewayId,
    pub people_done: u64,
    pub first_night_cohort: u64,
}

impl<'a, D: Decide> World<'a, D> {
    /// A world of `people` people; the supply generated for them unless `clinics` gives it.
    pub fn new(
        campaign: Campaign,
        seed: u64,
        people: u32,
        clinics: Option<Supply>,
        ledger: &'a mut D,
    ) -> World<'a, D> {
        let scale = f64::from(people) / PEOPLE_2021;
        let population = Population::generate(seed, people);
        let supply =
            clinics.unwrap_or_else(|| Supply::generate(&campaign, scale, population.eligible));
        let admit_per_s = ADMIT_PER_HOUR_2021 * scale / 3600.0;
        let cohorts = population.cohorts(&campaign);
        let n = population.len();
        let eligible = population.eligible;
        ledger.reserve(expected_visitors(eligible, n as u32 - eligible));
        World {
            observer: Observer::new(&campaign, admit_per_s, u64::from(people)),
            rng: Rng::new(mix(seed ^ 0x0077_6f72_6c64)),
            seed,
            ledger,
            providers: {
                let mut providers = Providers::new(scale);
                providers.draw_outages(&campaign, &mut Rng::new(mix(seed ^ 0x6f75_7461_6765)));
                providers
            },
            cohorts,
            intent: vec![Intent::Nothing as u8; n],
            visits: vec![0; n],
            queue: BinaryHeap::new(),
            seq: 0,
            commands: 0,
            now_ms: 0,
            admit_per_s,
            live_max: ((admit_per_s * LIVE_MAX_S).ceil() as u64).max(1),
            budget: 0.0,
            silent: HashSet::new(),
            reported: vec![(u8::MAX, 0); METHODS.len()],
            exhausted: HashMap::new(),
            gateway: GatewayId::new("simulator").expect("a valid gateway id"),
            people_done: 0,
            first_night_cohort: 0,
            population,
            supply,
            campaign,
        }
    }

    /// Registers the supply, runs the ten booking days and the change window, to its close.
    pub fn run(&mut self, progress: &mut dyn Progress) -> Result<(), SimulateError> {
        let first_open = self.campaign.booking_days[0].window.opens_at_ms;
        self.now_ms = first_open - SUPPLY_AHEAD_MS;
        let commands: Vec<CommandBody> = self.supply.commands().collect();
        for body in commands {
            self.submit(body)?;
        }
        for (d, day) in self.campaign.booking_days.clone().iter().enumerate() {
            self.schedule(
                day.window.opens_at_ms - PREPARE_AHEAD_MS,
                Action::PrepareDay(d as u8),
            );
            self.schedule(day.window.opens_at_ms, Action::Draw(d as u8));
        }
        let window = self.campaign.change_window;
        self.schedule(
            window.opens_at_ms - PREPARE_AHEAD_MS,
            Action::PrepareChangeWindow,
        );
        self.schedule(self.campaign.release_at_ms(), Action::Release);
        for m in 0..self.providers.all.len() {
            for (from, to) in self.providers.all[m].outages.clone() {
                let method = m as u8;
                self.schedule(from, Action::Outage { method, out: true });
                self.schedule(to, Action::Outage { method, out: false });
            }
        }
        self.schedule(first_open - PREPARE_AHEAD_MS, Action::Tick);
        self.schedule(first_open, Action::Sample);
        let mut steps = 0u64;
        while let Some(Reverse(next)) = self.queue.pop() {
            if next.at_ms >= window.closes_at_ms {
                break;
            }
            self.now_ms = next.at_ms;
            self.act(next.action)?;
            steps += 1;
            if steps % PROGRESS_EVERY == 0 {
                progress.update(self.now_ms, self.people_done, self.observer.events);
            }
        }
        progress.update(self.now_ms, self.people_done, self.observer.events);
        Ok(())
    }

    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// The state the ledger decided on.
    pub fn ledger_system(&self) -> &yeyak_domain::System {
        self.ledger.system()
    }

    fn schedule(&mut self, at_ms: TimestampMs, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at_ms,
            seq: self.seq,
            action,
        }));
    }

    /// Decides one command now and folds its events; the command id is drawn from the seed.
    fn submit(&mut self, body: CommandBody) -> Result<Outcome, SimulateError> {
        self.commands += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&mix(self.seed ^ 0x0063_6d64).to_be_bytes());
        bytes[8..].copy_from_slice(&self.commands.to_be_bytes());
        let command = Command {
            command_id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
            at_ms: self.now_ms,
            body,
        };
        let outcome = self.ledger.submit(command)?;
        for envelope in &outcome.events {
            self.observer.observe(envelope);
        }
        Ok(outcome)
    }

    fn subject(&self, person: u32) -> SubjectId {
        subject_of(self.seed, person)
    }

    /// The reservation `person` holds now, in the ledger's state.
    fn holding(&self, person: u32) -> Option<yeyak_domain::subject::Holding> {
        let subject = self.subject(person);
        let state = self.ledger.system().subjects.get(&subject)?;
        state.reservation()
    }

    fn act(&mut self, action: Action) -> Result<(), SimulateError> {
        match action {
            Action::PrepareDay(d) => self.prepare_day(d),
            Action::PrepareChangeWindow => self.prepare_change_window(),
            Action::Draw(d) => self.draw(d)?,
            Action::Arrive(person) => self.arrive(person),
            Action::Verified { person, method } => self.verified(person, method)?,
            Action::SecondDevice { person, method } => {
                self.verify(person, method, true)?;
            }
            Action::VerifyAgain { person, method } => {
                self.verify(person, method, false)?;
            }
            Action::GiveUp { person, ticket } => self.give_up(person, ticket)?,
            Action::Skip(ticket) => {
                if self.observer.is_waiting(ticket) {
                    self.submit(CommandBody::SkipTicket {
                        ticket: TicketNo(ticket),
                    })?;
                }
                self.silent.remove(&ticket);
            }
            Action::Book {
                person,
                admission,
                tries,
            } => self.book(person, admission, tries)?,
            Action::Outage { method, out } => {
                self.submit(CommandBody::SwitchProvider {
                    method: METHODS[usize::from(method)].0,
                    outage: out,
                    operator: OperatorId::new(OPERATOR).expect("a valid operator id"),
                })?;
            }
            Action::Tick => self.tick()?,
            Action::Release => self.release()?,
            Action::Sample => {
                self.observer.sample_queue(self.now_ms);
                self.schedule(self.now_ms + SAMPLE_MS, Action::Sample);
            }
        }
        Ok(())
    }

    // ---- arrivals ------------------------------------------------------------------------

    /// The day's crowd: who of the cohort tries, and when each arrives.
    fn prepare_day(&mut self, d: u8) {
        let window = self.campaign.booking_days[usize::from(d)].window;
        let cohort = std::mem::take(&mut self.cohorts[usize::from(d)]);
        for &person in &cohort {
            let born = self.population.births[person as usize];
            let eligible = birth::eligible(&self.campaign, born);
            if d == 0 && eligible {
                self.first_night_cohort += 1;
            }
            let tries = if eligible {
                PARTICIPATE_PER_MILLE
            } else {
                OUTSIDE_TRIES_PER_MILLE
            };
            if !self.rng.chance(tries) {
                continue;
            }
            self.intent[person as usize] = Intent::Book as u8;
            let at = self.booking_day_arrival(window.opens_at_ms, window.closes_at_ms);
            self.schedule(at, Action::Arrive(person));
        }
    }

    /// A stampede at the opening, a few minutes early for some (the pre-queue), then a decay
    /// until the close.
    fn booking_day_arrival(&mut self, opens: TimestampMs, closes: TimestampMs) -> TimestampMs {
        let r = self.rng.below(1000);
        if r < PRE_QUEUE_PER_MILLE {
            return opens - self.rng.between(1, PRE_QUEUE_MS);
        }
        if r < PRE_QUEUE_PER_MILLE + STAMPEDE_PER_MILLE {
            let mut at = self.rng.exponential(STAMPEDE_MEAN_MS as f64) as i64;
            if at >= STAMPEDE_MS {
                at = self.rng.between(0, STAMPEDE_MS - 1);
            }
            return opens + at;
        }
        let span = closes - opens - STAMPEDE_MS - CLOSING_MARGIN_MS;
        let mut at = self.rng.exponential(LATER_MEAN_MS as f64) as i64;
        if at >= span {
            at = self.rng.between(0, span - 1);
        }
        opens + STAMPEDE_MS + at
    }

    /// The change window's crowd: some holders come back to change or cancel, some of the
    /// age group without a reservation come to book from the pool.
    fn prepare_change_window(&mut self) {
        let window = self.campaign.change_window;
        for person in 0..self.population.len() as u32 {
            let holds = self.holding(person).is_some();
            let intent = if holds {
                if !self.rng.chance(HOLDER_RETURNS_PER_MILLE) {
                    continue;
                }
                if self.rng.chance(CHANGE_PER_MILLE) {
                    Intent::Change
                } else {
                    Intent::Cancel
                }
            } else if birth::eligible(&self.campaign, self.population.births[person as usize])
                && self.rng.chance(LATE_BOOKER_PER_MILLE)
            {
                Intent::Book
            } else {
                continue;
            };
            self.intent[person as usize] = intent as u8;
            self.visits[person as usize] = 0;
            let span = window.closes_at_ms - window.opens_at_ms - CLOSING_MARGIN_MS;
            let mean = if self.rng.chance(CHANGE_RUSH_PER_MILLE) {
                CHANGE_RUSH_MEAN_MS
            } else {
                CHANGE_LATER_MEAN_MS
            };
            let mut at = self.rng.exponential(mean as f64) as i64;
            if at >= span {
                at = self.rng.between(0, span - 1);
            }
            self.schedule(window.opens_at_ms + at, Action::Arrive(person));
        }
    }

    /// A visit starts: the method (steered by the lights), then the provider's queue and the
    /// person's own time.
    fn arrive(&mut self, person: u32) {
        let mut habit_rng = Rng::new(mix(self.seed ^ u64::from(person)));
        let habit = Providers::habit(&mut habit_rng);
        let Some(method) = self.providers.choose(habit, self.now_ms, &mut self.rng) else {
            // Every provider is out: the person comes back later.
            let at = self.now_ms + self.rng.between(RETRY_MIN_MS, RETRY_MAX_MS);
            self.schedule(at, Action::Arrive(person));
            return;
        };
        let starts = self.providers.all[method].take(self.now_ms);
        let done = starts + self.rng.between(PERSON_TIME_MS.0, PERSON_TIME_MS.1);
        self.schedule(
            done,
            Action::Verified {
                person,
                method: method as u8,
            },
        );
    }

    fn verify(&mut self, person: u32, method: u8, second: bool) -> Result<Outcome, SimulateError> {
        let body = birth::verify(
            self.subject(person),
            self.population.births[person as usize],
            METHODS[usize::from(method)].0,
            device_of(person, second),
        );
        self.submit(body)
    }

    fn verified(&mut self, person: u32, method: u8) -> Result<(), SimulateError> {
        let outcome = self.verify(person, method, false)?;
        if let Some(rejection) = outcome.rejection {
            let retry = rejection.retry_at_ms.unwrap_or(self.now_ms + RETRY_MIN_MS);
            self.schedule(retry.max(self.now_ms + 1), Action::Arrive(person));
            return Ok(());
        }
        if self.rng.chance(SECOND_DEVICE_PER_MILLE) {
            self.schedule(
                self.now_ms + SECOND_DEVICE_MS,
                Action::SecondDevice { person, method },
            );
        }
        if self.rng.chance(IMPATIENT_PER_MILLE) {
            self.schedule(
                self.now_ms + IMPATIENT_MS,
                Action::VerifyAgain { person, method },
            );
        }
        if self.intent[person as usize] == Intent::Cancel as u8 {
            return self.cancel(person);
        }
        self.enqueue(person)
    }

    fn cancel(&mut self, person: u32) -> Result<(), SimulateError> {
        let subject = self.subject(person);
        if let Some(held) = self.holding(person) {
            self.submit(CommandBody::Cancel {
                subject,
                requested_for: subject,
                device: device_of(person, false),
                reservation: held.reservation,
            })?;
        }
        self.people_done += 1;
        Ok(())
    }

    /// A place in the waiting room, or in the pre-queue before the booking day opens.
    fn enqueue(&mut self, person: u32) -> Result<(), SimulateError> {
        let subject = self.subject(person);
        let device = device_of(person, false);
        let born = self.population.births[person as usize];
        let opens = birth::booking_day(&self.campaign, born).map(|d| {
            self.campaign.booking_days[usize::from(d)]
                .window
                .opens_at_ms
        });
        let body = match opens {
            Some(opens) if self.now_ms < opens && opens - self.now_ms <= PRE_QUEUE_MS * 2 => {
                CommandBody::JoinPreQueue { subject, device }
            }
            _ => CommandBody::Enqueue { subject, device },
        };
        let outcome = self.submit(body)?;
        self.follow(&outcome);
        Ok(())
    }

    /// What people learn from an answer: a new ticket (and its ETA) or an admission.
    fn follow(&mut self, outcome: &Outcome) {
        for envelope in &outcome.events {
            match &envelope.event {
                Event::TicketIssued(e) => self.ticket_issued(person_of(&e.subject), e.ticket.0),
                Event::TicketAdmitted(e) if !self.silent.contains(&e.ticket.0) => {
                    let think = self.rng.between(THINK_MS.0, THINK_MS.1);
                    let action = Action::Book {
                        person: person_of(&e.subject),
                        admission: e.admission,
                        tries: 0,
                    };
                    self.schedule(self.now_ms + think, action);
                }
                _ => {}
            }
        }
    }

    /// Whoever sees a wait longer than their patience leaves after a look; the others wait,
    /// and leave if it takes much longer than they were told.
    fn ticket_issued(&mut self, person: u32, ticket: u64) {
        let eta_ms = i64::from(self.observer.eta_s(ticket)) * 1000;
        let patience = if self.rng.chance(PATIENT_PER_MILLE) {
            PATIENT_MS
        } else {
            self.rng.between(PATIENCE_MS.0, PATIENCE_MS.1)
        };
        let at = if eta_ms > patience {
            self.now_ms + LOOK_MS
        } else {
            self.now_ms + 2 * eta_ms.max(patience) + LOOK_MS
        };
        self.schedule(at, Action::GiveUp { person, ticket });
    }

    fn give_up(&mut self, person: u32, ticket: u64) -> Result<(), SimulateError> {
        if !self.observer.is_waiting(ticket) {
            return Ok(());
        }
        if self.rng.chance(SILENT_PER_MILLE) {
            self.silent.insert(ticket);
            self.schedule(self.now_ms + HEARTBEAT_TIMEOUT_MS, Action::Skip(ticket));
        } else {
            let subject = self.subject(person);
            self.submit(CommandBody::LeaveQueue {
                subject,
                ticket: TicketNo(ticket),
            })?;
        }
        self.come_back_later(person);
        Ok(())
    }

    /// Another visit later in the window the person is in, while visits remain.
    fn come_back_later(&mut self, person: u32) {
        let visits = &mut self.visits[person as usize];
        *visits += 1;
        let closes = self.closes_for(person);
        let at = self.now_ms + self.rng.between(RETRY_MIN_MS, RETRY_MAX_MS);
        if self.visits[person as usize] < VISITS_MAX && at < closes - CLOSING_MARGIN_MS {
            self.schedule(at, Action::Arrive(person));
        } else {
            self.people_done += 1;
        }
    }

    /// When the window the person is acting in closes.
    fn closes_for(&self, person: u32) -> TimestampMs {
        let window = self.campaign.change_window;
        if self.now_ms >= window.opens_at_ms {
            return window.closes_at_ms;
        }
        let born = self.population.births[person as usize];
        birth::booking_day(&self.campaign, born)
            .map(|d| {
                self.campaign.booking_days[usize::from(d)]
                    .window
                    .closes_at_ms
            })
            .filter(|closes| *closes > self.now_ms)
            .unwrap_or(window.opens_at_ms)
    }

    // ---- booking ---------------------------------------------------------------------------

    fn book(
        &mut self,
        person: u32,
        admission: AdmissionId,
        tries: u8,
    ) -> Result<(), SimulateError> {
        let subject = self.subject(person);
        let blind = tries == 0 && self.rng.chance(BLIND_PICK_PER_MILLE);
        let (clinic, date) = self.pick(person, blind);
        let held = self.holding(person);
        let device = device_of(person, false);
        let body = match held {
            Some(held) if self.intent[person as usize] == Intent::Change as u8 => {
                CommandBody::Rebook {
                    subject,
                    requested_for: subject,
                    device,
                    reservation: held.reservation,
                    clinic,
                    date,
                    admission,
                }
            }
            _ => CommandBody::Book {
                subject,
                requested_for: subject,
                device,
                clinic,
                date,
                admission,
            },
        };
        let outcome = self.submit(body)?;
        let refused = outcome.rejection.is_none()
            && matches!(
                outcome.last_event(),
                Some(Event::BookingFailed(_) | Event::ChangeFailed(_))
            );
        if refused && tries + 1 < BOOK_TRIES_MAX {
            let at = self.now_ms + self.rng.between(THINK_MS.0, THINK_MS.1) / 2;
            self.schedule(
                at,
                Action::Book {
                    person,
                    admission,
                    tries: tries + 1,
                },
            );
        } else {
            self.people_done += 1;
        }
        Ok(())
    }

    /// A clinic of the person's region and a date, from what the site shows as remaining for
    /// the person's share (or, `blind`, without looking: a stale page).
    fn pick(&mut self, person: u32, blind: bool) -> (yeyak_domain::ClinicId, chrono::NaiveDate) {
        let region = self.population.regions[person as usize];
        let r = usize::from(region);
        let in_region = self.supply.by_region[r].len() as u64;
        let dates = self.supply.dates.len() as u64;
        let home = self.supply.by_region[r][(mix(u64::from(person)) % in_region) as usize];
        let clinic = if self.rng.chance(NEAREST_PER_MILLE) {
            home
        } else {
            self.supply.by_region[r][self.rng.below(in_region) as usize]
        };
        let date = if self.rng.chance(EARLIEST_PER_MILLE) {
            0
        } else {
            self.rng.below(dates) as usize
        };
        let first = (clinic, date);
        let share = self.share_of(person);
        if blind || share.is_none() || self.remaining(first, share) > 0 {
            return self.slot(first);
        }
        for _ in 0..PICK_TRIES {
            let c = self.supply.by_region[r][self.rng.below(in_region) as usize];
            let d = self.rng.below(dates) as usize;
            if self.remaining((c, d), share) > 0 {
                return self.slot((c, d));
            }
        }
        self.scan(region, share.unwrap_or(Share::Pool))
            .map_or_else(|| self.slot(first), |s| self.slot(s))
    }

    /// Every clinic and date of the region, from a random place: the first with a dose.
    fn scan(&mut self, region: u8, share: Share) -> Option<(u32, usize)> {
        if let Some(at) = self.exhausted.get(&(region, share)) {
            if self.now_ms - at < EXHAUSTED_RECHECK_MS {
                return None;
            }
        }
        let clinics = &self.supply.by_region[usize::from(region)];
        let start = self.rng.below(clinics.len() as u64) as usize;
        for k in 0..clinics.len() {
            let c = clinics[(start + k) % clinics.len()];
            for d in 0..self.supply.dates.len() {
                if self.remaining((c, d), Some(share)) > 0 {
                    return Some((c, d));
                }
            }
        }
        self.exhausted.insert((region, share), self.now_ms);
        None
    }

    fn slot(&self, (clinic, date): (u32, usize)) -> (yeyak_domain::ClinicId, chrono::NaiveDate) {
        (
            self.supply.sites[clinic as usize].id.clone(),
            self.supply.dates[date],
        )
    }

    /// The share a booking of this person would draw on now, if they may book now.
    fn share_of(&self, person: u32) -> Option<Share> {
        let born = self.population.births[person as usize];
        self.campaign
            .booking_phase(yeyak_domain::BirthFacts::of_date(born), self.now_ms)
            .ok()
            .map(Campaign::share_of)
    }

    fn remaining(&self, (clinic, date): (u32, usize), share: Option<Share>) -> u32 {
        let Some(share) = share else { return 0 };
        let site = &self.supply.sites[clinic as usize];
        self.ledger
            .system()
            .clinics
            .get(&site.id)
            .and_then(|c| c.dates.get(&self.supply.dates[date]))
            .and_then(|d| d.quota(share))
            .map_or(0, |q| q.remaining())
    }

    // ---- the operators and the controller ----------------------------------------------------

    /// At a booking day's opening, the pre-queue's draw, with a seed drawn from the run's.
    fn draw(&mut self, d: u8) -> Result<(), SimulateError> {
        if self.observer.pre_queue == 0 {
            return Ok(());
        }
        let seed = format!("{:016x}", mix(self.seed ^ (0x6472_6177 + u64::from(d))));
        let outcome = self.submit(CommandBody::DrawPreQueue { seed })?;
        self.follow(&outcome);
        Ok(())
    }

    /// Once a second: admit at the rate, within the room for live admissions (the front tier's
    /// `controller::step`); report the lights that changed.
    fn tick(&mut self) -> Result<(), SimulateError> {
        let live = self.observer.live_admissions(self.now_ms);
        let tick_s = TICK_MS as f64 / 1000.0;
        let earned = self.budget + self.admit_per_s * tick_s;
        self.budget = earned.min(self.admit_per_s.max(1.0) + 1.0);
        let room = self.live_max.saturating_sub(live);
        let allowed = (self.budget.floor() as u64).min(self.observer.waiting);
        let admit = allowed.min(room);
        let saved = self.budget;
        let admitted = if admit > 0 {
            let outcome = self.submit(CommandBody::Admit {
                tickets_max: admit.min(u64::from(yeyak_domain::waiting_room::ADMIT_TICKETS_MAX))
                    as u32,
                ttl_ms: ADMISSION_TTL_MS,
            })?;
            let admitted = outcome
                .events
                .iter()
                .filter(|e| matches!(e.event, Event::TicketAdmitted(_)))
                .count();
            self.budget -= admitted as f64;
            self.follow(&outcome);
            admitted as u64
        } else {
            0
        };
        let lost = if admitted < allowed {
            earned - saved
        } else {
            0.0
        };
        self.observer.controller_tick(lost, tick_s, self.budget);
        self.report_lights()?;
        self.schedule(self.now_ms + TICK_MS, Action::Tick);
        Ok(())
    }

    fn report_lights(&mut self) -> Result<(), SimulateError> {
        for m in 0..self.providers.all.len() {
            let provider = &self.providers.all[m];
            let level = provider.level(self.now_ms) as u8;
            let (last, at) = self.reported[m];
            if last == level && self.now_ms - at < REPORT_MS {
                continue;
            }
            self.reported[m] = (level, self.now_ms);
            let body = CommandBody::ReportCongestion {
                gateway: self.gateway.clone(),
                method: provider.method,
                level: provider.level(self.now_ms),
                wait_ms: provider.wait_ms(self.now_ms) as u64,
                in_flight: 0,
                capacity: provider.rate_per_s.ceil() as u32,
                failure_permille: Permille::of_ratio(0.0),
                provider_up: !provider.is_out(self.now_ms),
            };
            self.submit(body)?;
        }
        Ok(())
    }

    /// After the last booking day: a `Tick` to every clinic, so the day shares' leftovers move
    /// to the change window's pool (as the front tier's controller does).
    fn release(&mut self) -> Result<(), SimulateError> {
        for c in 0..self.supply.sites.len() {
            let clinic = self.supply.sites[c].id.clone();
            self.submit(CommandBody::Tick { clinic })?;
        }
        Ok(())
    }
}
