//! The auditor's own reading of the rules: a fold of the events that re-derives, from the
//! events and the campaign calendar alone, whether every decision recorded in the log was
//! lawful. It shares no code with the deciding side (`domain::subject`, `domain::clinic`):
//! a bug there must not hide itself here.
//!
//! Events are fed in causal order (see [`super::order`]); every check is counted, and every
//! broken rule becomes a [`Finding`] with the position of the event that broke it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use uuid::Uuid;

use super::draw::Draws;
use super::{Finding, Position};
use yeyak_domain::command::Slot;
use yeyak_domain::event::{
    BookingRequested, ChangeRequested, ReservationConfirmed, ShareRelease, SupplyRegistered,
};
use yeyak_domain::{
    AdmissionId, BirthFacts, Campaign, ClinicId, DeviceId, Envelope, Event, Invariant,
    ReservationId, Share, SubjectId, TransferId,
};

#[derive(Debug, Default)]
struct Person {
    /// What the verification recorded of the birth date: its year and cohort digit.
    birth: Option<BirthFacts>,
    /// The instant and device of the last verification.
    last_verify: Option<(i64, DeviceId)>,
    admission: Option<(AdmissionId, i64, bool)>,
    holding: Option<ReservationId>,
    pending: Option<ReservationId>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Quota {
    capacity: i64,
    booked: i64,
}

#[derive(Debug, Default)]
struct Clinic {
    registered: bool,
    released: bool,
    quotas: BTreeMap<(NaiveDate, Share), Quota>,
    held: HashMap<ReservationId, (SubjectId, NaiveDate, Share)>,
}

impl Clinic {
    /// Moves each released day share to the pool of its date; returns the releases that gave
    /// away more than their day share had unbooked.
    fn release_to_pool(&mut self, releases: &[ShareRelease]) -> Vec<String> {
        let mut short = Vec::new();
        for r in releases {
            let day = self.quotas.entry((r.date, Share::Day(r.day))).or_default();
            if day.capacity - day.booked < i64::from(r.doses) {
                short.push(format!(
                    "{} day{} released {} of {} unbooked",
                    r.date,
                    r.day,
                    r.doses,
                    day.capacity - day.booked
                ));
            }
            day.capacity -= i64::from(r.doses);
            self.quotas
                .entry((r.date, Share::Pool))
                .or_default()
                .capacity += i64::from(r.doses);
        }
        short
    }

    /// The day shares that still keep unbooked doses (none should, after the release).
    fn day_shares_kept(&self) -> Vec<String> {
        self.quotas
            .iter()
            .filter(|((_, share), q)| matches!(share, Share::Day(_)) && q.capacity > q.booked)
            .map(|((date, share), q)| format!("{date} {share} kept {}", q.capacity - q.booked))
            .collect()
    }
}

/// A booking or a change asked for, as the rules read it (a booking replaces nothing).
#[derive(Debug, Clone, Copy)]
struct Request {
    subject: SubjectId,
    reservation: ReservationId,
    replaces: Option<ReservationId>,
    share: Share,
    admission: AdmissionId,
}

impl From<&BookingRequested> for Request {
    fn from(e: &BookingRequested) -> Request {
        Request {
            subject: e.subject,
            reservation: e.reservation,
            replaces: None,
            share: e.share,
            admission: e.admission,
        }
    }
}

impl From<&ChangeRequested> for Request {
    fn from(e: &ChangeRequested) -> Request {
        Request {
            subject: e.subject,
            reservation: e.reservation,
            replaces: Some(e.replaces),
            share: e.share,
            admission: e.admission,
        }
    }
}

/// Where a transfer's doses land, and whether they came back to their sender.
struct Landing<'a> {
    clinic: &'a ClinicId,
    transfer: TransferId,
    returned: bool,
}

/// What a follow-up cause expects as its answer.
#[derive(Debug, Clone)]
struct Cause {
    kind: &'static str,
    reservation: Option<ReservationId>,
    transfer: Option<TransferId>,
    position: Position,
}

/// The auditor's fold.
pub struct RuleBook<'c> {
    campaign: &'c Campaign,
    persons: HashMap<SubjectId, Person>,
    clinics: HashMap<ClinicId, Clinic>,
    /// Doses each person holds at clinics, by (clinic, reservation).
    holders: HashMap<SubjectId, Vec<(ClinicId, ReservationId)>>,
    in_transit: HashMap<TransferId, u32>,
    registered_doses: i64,
    event_ids: HashSet<Uuid>,
    /// Where each command was decided: (topic, partition).
    decided: HashMap<Uuid, (u8, u32)>,
    /// The decision in progress per partition (its command id).
    current: HashMap<(u8, u32), Uuid>,
    topics: Vec<String>,
    open_causes: HashMap<Uuid, Cause>,
    answered_causes: HashSet<Uuid>,
    draws: Draws,
    /// Every partition is read from its start: an answer without its cause is then a violation,
    /// and so is a final dose count that does not add up.
    every_partition: bool,
    /// Whether the event being observed is judged (inside the range) or only folded (history
    /// before the range, read so that the range is judged against the true state).
    pub judging: bool,
    pub checks: BTreeMap<Invariant, u64>,
    pub violations: Vec<Finding>,
    pub notes: Vec<Finding>,
}

fn answer_kind(event: &Event) -> Option<&'static str> {
    Some(match event {
        Event::AdmissionGranted(_) => "grant_admission",
        Event::ReservationConfirmed(_) | Event::BookingRefused(_) => "hold_dose",
        Event::ReservationRecorded(_)
        | Event::ReservationChanged(_)
        | Event::BookingFailed(_)
        | Event::ChangeFailed(_) => "settle_booking",
        Event::DoseReleased(_) => "release_dose",
        Event::DosesDeposited(_) | Event::TransferRefused(_) => "deposit_doses",
        Event::DosesReturned(_) => "return_doses",
        _ => return None,
    })
}

/// The follow-up an event causes (the kind of answer it expects), re-derived here.
fn cause_of(envelope: &Envelope, position: &Position) -> Option<Cause> {
    let (kind, reservation, transfer) = match &envelope.event {
        Event::TicketAdmitted(_) => ("grant_admission", None, None),
        Event::BookingRequested(e) => ("hold_dose", Some(e.reservation), None),
        Event::ChangeRequested(e) => ("hold_dose", Some(e.reservation), None),
        Event::ReservationConfirmed(e) => ("settle_booking", Some(e.reservation), None),
        Event::BookingRefused(e) => ("settle_booking", Some(e.reservation), None),
        Event::ReservationChanged(e) => ("release_dose", Some(e.replaces), None),
        Event::ReservationCancelled(e) => ("release_dose", Some(e.reservation), None),
        Event::DosesWithdrawn(e) => ("deposit_doses", None, Some(e.transfer)),
        Event::TransferRefused(e) => ("return_doses", None, Some(e.transfer)),
        _ => return None,
    };
    Some(Cause {
        kind,
        reservation,
        transfer,
        position: position.clone(),
    })
}

fn reservation_of(event: &Event) -> Option<ReservationId> {
    match event {
        Event::ReservationConfirmed(e) => Some(e.reservation),
        Event::BookingRefused(e) => Some(e.reservation),
        Event::ReservationRecorded(e) => Some(e.reservation),
        Event::ReservationChanged(e) => Some(e.reservation),
        Event::BookingFailed(e) => Some(e.reservation),
        Event::ChangeFailed(e) => Some(e.reservation),
        Event::DoseReleased(e) => Some(e.reservation),
        _ => None,
    }
}

fn transfer_of(event: &Event) -> Option<TransferId> {
    match event {
        Event::DosesDeposited(e) => Some(e.transfer),
        Event::TransferRefused(e) => Some(e.transfer),
        Event::DosesReturned(e) => Some(e.transfer),
        _ => None,
    }
}

impl<'c> RuleBook<'c> {
    pub fn new(campaign: &'c Campaign, every_partition: bool) -> RuleBook<'c> {
        RuleBook {
            campaign,
            persons: HashMap::new(),
            clinics: HashMap::new(),
            holders: HashMap::new(),
            in_transit: HashMap::new(),
            registered_doses: 0,
            event_ids: HashSet::new(),
            decided: HashMap::new(),
            current: HashMap::new(),
            topics: Vec::new(),
            open_causes: HashMap::new(),
            answered_causes: HashSet::new(),
            draws: Draws::default(),
            every_partition,
            judging: true,
            checks: Invariant::ALL.iter().map(|i| (*i, 0)).collect(),
            violations: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Counts one check of `rule`; records a violation when `ok` is false.
    fn check(
        &mut self,
        rule: Invariant,
        ok: bool,
        position: &Position,
        detail: impl FnOnce() -> String,
    ) {
        if !self.judging {
            return;
        }
        *self.checks.entry(rule).or_default() += 1;
        if !ok {
            self.violations.push(Finding {
                code: rule.code(),
                position: Some(position.clone()),
                detail: detail(),
            });
        }
    }

    fn topic_index(&mut self, topic: &str) -> u8 {
        match self.topics.iter().position(|t| t == topic) {
            Some(i) => i as u8,
            None => {
                self.topics.push(topic.to_owned());
                (self.topics.len() - 1) as u8
            }
        }
    }

    /// Folds one event, checking every rule it concerns.
    pub fn observe(&mut self, position: &Position, envelope: &Envelope) {
        self.check_answers(position, envelope);
        let at = envelope.occurred_at_ms;
        match &envelope.event {
            Event::SubjectVerified(e) => {
                self.verified(position, e.subject, e.birth.facts(), &e.device, at)
            }
            Event::AdmissionGranted(e) => {
                self.persons.entry(e.subject).or_default().admission =
                    Some((e.admission, e.expires_at_ms, false));
            }
            Event::BookingRequested(e) => self.requested(position, e.into(), at),
            Event::ChangeRequested(e) => self.requested(position, e.into(), at),
            Event::ReservationRecorded(e) => self.settled(position, e.subject, e.reservation, None),
            Event::ReservationChanged(e) => {
                self.settled(position, e.subject, e.reservation, Some(e.replaces))
            }
            Event::BookingFailed(e) => self.failed(position, e.subject, e.reservation),
            Event::ChangeFailed(e) => self.failed(position, e.subject, e.reservation),
            Event::ReservationCancelled(e) => {
                self.cancelled(position, e.subject, e.reservation, at)
            }
            Event::ClinicRegistered(e) => {
                self.clinics.entry(e.clinic.clone()).or_default().registered = true
            }
            Event::SupplyRegistered(e) => self.supplied(position, e, at),
            Event::ReservationConfirmed(e) => self.confirmed(position, e, at),
            Event::DoseReleased(e) => {
                self.dose_released(position, &e.clinic, e.reservation, e.date, e.from_share)
            }
            Event::SharesReleased(e) => self.shares_released(position, &e.clinic, &e.releases, at),
            Event::DosesMoved(e) => {
                self.withdraw(position, &e.clinic, &e.from, e.doses);
                self.deposit(&e.clinic, &e.to, e.doses);
            }
            Event::DosesWithdrawn(e) => {
                self.withdrawn(position, &e.clinic, e.transfer, &e.from, e.doses)
            }
            Event::DosesDeposited(e) => {
                let landing = Landing {
                    clinic: &e.clinic,
                    transfer: e.transfer,
                    returned: false,
                };
                self.landed(position, landing, &e.to, e.doses)
            }
            Event::DosesReturned(e) => {
                let landing = Landing {
                    clinic: &e.clinic,
                    transfer: e.transfer,
                    returned: true,
                };
                self.landed(position, landing, &e.to, e.doses)
            }
            Event::TransferRefused(e) => {
                self.transfer_refused(position, &e.clinic, e.transfer, e.doses)
            }
            Event::PreQueueJoined(e) => self.draws.joined(e.subject),
            Event::PreQueueDrawn(e) => {
                let found = self.draws.drawn(&e.seed, e.drawn).err();
                self.check(Invariant::OpeningDraw, found.is_none(), position, || {
                    found.unwrap_or_default()
                });
            }
            Event::TicketIssued(e) => {
                if let Some(drawn) = self.draws.issued(e.subject) {
                    let found = drawn.err();
                    self.check(Invariant::OpeningDraw, found.is_none(), position, || {
                        found.unwrap_or_default()
                    });
                }
            }
            Event::DeviceLocked(_)
            | Event::TicketAdmitted(_)
            | Event::TicketLeft(_)
            | Event::TicketSkipped(_)
            | Event::TicketKept(_)
            | Event::TicketRetired(_)
            | Event::AdmissionUsed(_)
            | Event::CongestionReported(_)
            | Event::ProviderSwitched(_)
            | Event::AdmissionsControlled(_)
            | Event::BookingRefused(_)
            | Event::CommandRejected(_) => {}
        }
        if let Some(cause) = cause_of(envelope, position) {
            self.open_causes.insert(envelope.event_id, cause);
        }
    }

    /// Exactly once: unique event ids, one decision per command id (contiguous, in one
    /// partition), and every follow-up answer matching an open cause.
    fn check_answers(&mut self, position: &Position, envelope: &Envelope) {
        let fresh = self.event_ids.insert(envelope.event_id);
        self.check(Invariant::AnsweredOnce, fresh, position, || {
            format!("event id {} occurs twice", envelope.event_id)
        });
        let topic = self.topic_index(&position.topic);
        let here = (topic, position.partition);
        let continues = self.current.get(&here) == Some(&envelope.command_id);
        if !continues {
            self.current.insert(here, envelope.command_id);
            let first = self.decided.insert(envelope.command_id, here).is_none();
            self.check(Invariant::AnsweredOnce, first, position, || {
                format!(
                    "command {} is answered by a second decision",
                    envelope.command_id
                )
            });
        }
        let Some(kind) = answer_kind(&envelope.event) else {
            return;
        };
        match self.open_causes.remove(&envelope.command_id) {
            Some(cause) => {
                let matches = cause.kind == kind
                    && (cause.reservation.is_none()
                        || cause.reservation == reservation_of(&envelope.event))
                    && (cause.transfer.is_none() || cause.transfer == transfer_of(&envelope.event));
                self.answered_causes.insert(envelope.command_id);
                self.check(Invariant::AnsweredOnce, matches, position, || {
                    format!(
                        "{} does not answer the {} caused at {}",
                        envelope.event.type_name(),
                        cause.kind,
                        cause.position
                    )
                });
            }
            None if self.answered_causes.contains(&envelope.command_id) && continues => {}
            None if self.answered_causes.contains(&envelope.command_id) => {
                self.check(Invariant::AnsweredOnce, false, position, || {
                    format!("a second answer to follow-up {}", envelope.command_id)
                });
            }
            None if !self.judging => {}
            None => {
                let finding = Finding {
                    code: Invariant::AnsweredOnce.code(),
                    position: Some(position.clone()),
                    detail: format!(
                        "{} answers follow-up {} whose cause is not in the log{}",
                        envelope.event.type_name(),
                        envelope.command_id,
                        if self.every_partition {
                            ""
                        } else {
                            " partitions read"
                        }
                    ),
                };
                *self.checks.entry(Invariant::AnsweredOnce).or_default() += 1;
                if self.every_partition {
                    self.violations.push(finding)
                } else {
                    self.notes.push(finding)
                }
            }
        }
    }

    fn verified(
        &mut self,
        position: &Position,
        subject: SubjectId,
        birth: BirthFacts,
        device: &DeviceId,
        at: i64,
    ) {
        let rules = &self.campaign.rules;
        let (interval, lock) = (rules.verify_interval_ms, rules.device_lock_ms);
        let last = self
            .persons
            .get(&subject)
            .and_then(|p| p.last_verify.clone());
        if let Some((last_at, last_device)) = last {
            self.check(
                Invariant::VerifyInterval,
                at - last_at >= interval,
                position,
                || {
                    format!(
                        "{subject} verified {} s after the last verification",
                        (at - last_at) / 1000
                    )
                },
            );
            let other = &last_device != device;
            self.check(
                Invariant::DeviceLock,
                !other || at >= last_at + lock,
                position,
                || {
                    format!(
                        "{subject} verified from {device} {} s after {last_device} took the lock",
                        (at - last_at) / 1000
                    )
                },
            );
        }
        let person = self.persons.entry(subject).or_default();
        person.birth = Some(birth);
        person.last_verify = Some((at, device.clone()));
    }

    fn requested(&mut self, position: &Position, request: Request, at: i64) {
        let Request {
            subject,
            reservation,
            replaces,
            share,
            admission,
        } = request;
        let campaign = self.campaign;
        let person = self.persons.entry(subject).or_default();
        let (birth, holding, pending, granted) = (
            person.birth,
            person.holding,
            person.pending,
            person.admission,
        );
        person.pending = Some(reservation);
        let when = campaign.local_time(at);
        let Some(birth) = birth else {
            self.check(Invariant::BookingDayOrChangeWindow, false, position, || {
                format!("{subject} booked at {when} without a verification")
            });
            return;
        };
        let years = &campaign.eligibility;
        self.check(
            Invariant::EligibleAgeGroup,
            years.born_from_year <= birth.year && birth.year <= years.born_to_year,
            position,
            || format!("{subject} born in {} is outside the age group", birth.year),
        );
        // The person's own booking day, from the last digit of their birth day of month.
        let own_day = (campaign.booking_days.iter()).position(|d| d.digit == birth.cohort_digit);
        let lawful = match (share, replaces) {
            (Share::Day(d), None) => {
                own_day == Some(usize::from(d))
                    && campaign
                        .booking_days
                        .get(usize::from(d))
                        .is_some_and(|day| day.window.contains(at))
            }
            (Share::Pool, _) => campaign.change_window.contains(at),
            (Share::Day(_), Some(_)) => false,
        };
        self.check(
            Invariant::BookingDayOrChangeWindow,
            lawful,
            position,
            || {
                format!(
                    "{subject} (digit {}) booked share {share} at {when}",
                    birth.cohort_digit
                )
            },
        );
        let alone =
            pending.is_none() && (holding.is_none() || (replaces.is_some() && holding == replaces));
        self.check(Invariant::OneActiveReservation, alone, position, || {
            format!("{subject} asked for {reservation} while holding {holding:?} with {pending:?} in flight")
        });
        let live = matches!(granted, Some((id, expires, false)) if id == admission && at < expires);
        self.check(Invariant::LiveAdmission, live, position, || {
            format!("{subject} booked at {when} with admission {admission}, which is not theirs, used or expired")
        });
    }

    fn settled(
        &mut self,
        position: &Position,
        subject: SubjectId,
        reservation: ReservationId,
        replaces: Option<ReservationId>,
    ) {
        let person = self.persons.entry(subject).or_default();
        let (pending, holding) = (person.pending, person.holding);
        person.pending = None;
        person.holding = Some(reservation);
        if let Some(a) = person.admission.as_mut() {
            a.2 = true;
        }
        self.check(
            Invariant::ConsistentWithPartition,
            pending == Some(reservation),
            position,
            || format!("{subject} recorded {reservation} that was not in flight ({pending:?})"),
        );
        self.check(
            Invariant::OneActiveReservation,
            holding == replaces,
            position,
            || format!("{subject} recorded {reservation} while holding {holding:?}"),
        );
    }

    fn failed(&mut self, position: &Position, subject: SubjectId, reservation: ReservationId) {
        let person = self.persons.entry(subject).or_default();
        let pending = person.pending.take();
        self.check(
            Invariant::ConsistentWithPartition,
            pending == Some(reservation),
            position,
            || format!("{subject}: {reservation} failed but {pending:?} was in flight"),
        );
    }

    fn supplied(&mut self, position: &Position, supply: &SupplyRegistered, at: i64) {
        let SupplyRegistered {
            clinic: ref clinic_id,
            date,
            doses,
            ref day_shares,
            pool,
            operator: _,
        } = *supply;
        let campaign = self.campaign;
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        let registered = clinic.registered;
        let released = clinic.released;
        for (d, n) in day_shares.iter().enumerate() {
            clinic
                .quotas
                .entry((date, Share::Day(d as u8)))
                .or_default()
                .capacity += i64::from(*n);
        }
        clinic
            .quotas
            .entry((date, Share::Pool))
            .or_default()
            .capacity += i64::from(pool);
        self.registered_doses += i64::from(doses);
        let sum: u64 = day_shares.iter().map(|&n| u64::from(n)).sum::<u64>() + u64::from(pool);
        self.check(
            Invariant::DosesConserved,
            sum == u64::from(doses) && registered,
            position,
            || format!("{clinic_id} {date}: {doses} doses registered as {sum} (clinic registered: {registered})"),
        );
        // Fairness: the doses go evenly to the booking days not yet closed; none to a closed
        // day; nothing to the pool while a day is open; all of it to the pool after the release.
        let open: Vec<usize> = (0..day_shares.len())
            .filter(|&d| {
                campaign
                    .booking_days
                    .get(d)
                    .is_some_and(|day| at < day.window.closes_at_ms)
            })
            .collect();
        let even = if released || open.is_empty() {
            day_shares.iter().all(|&n| n == 0) && pool == doses
        } else {
            let counts: Vec<u32> = open.iter().map(|&d| day_shares[d]).collect();
            let (min, max) = (
                counts.iter().min().copied().unwrap_or(0),
                counts.iter().max().copied().unwrap_or(0),
            );
            max - min <= 1
                && pool == 0
                && day_shares.len() == campaign.share_count()
                && (0..day_shares.len()).all(|d| open.contains(&d) || day_shares[d] == 0)
        };
        self.check(Invariant::EvenSplit, even, position, || {
            format!("{clinic_id} {date}: {doses} doses split {day_shares:?} + pool {pool}")
        });
    }

    fn confirmed(&mut self, position: &Position, confirmed: &ReservationConfirmed, at: i64) {
        let ReservationConfirmed {
            clinic: ref clinic_id,
            reservation,
            subject,
            date,
            share,
            replaces,
        } = *confirmed;
        let campaign = self.campaign;
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        let released = clinic.released;
        let quota = clinic.quotas.entry((date, share)).or_default();
        let before = *quota;
        quota.booked += 1;
        clinic.held.insert(reservation, (subject, date, share));
        self.check(
            Invariant::ShareNotOverbooked,
            before.booked < before.capacity,
            position,
            || {
                format!(
                    "{clinic_id} {date} {share}: booking {} of {} doses",
                    before.booked + 1,
                    before.capacity
                )
            },
        );
        if let Share::Day(d) = share {
            let in_day = campaign
                .booking_days
                .get(usize::from(d))
                .is_some_and(|day| day.window.contains(at));
            self.check(
                Invariant::BookingDayOrChangeWindow,
                in_day && !released,
                position,
                || {
                    format!(
                        "{clinic_id} gave a dose of {share} at {} (released: {released})",
                        campaign.local_time(at)
                    )
                },
            );
        }
        let holds = self.holders.entry(subject).or_default();
        let alone = match (holds.as_slice(), replaces) {
            ([], _) => true,
            ([(_, old)], Some(replaced)) => *old == replaced,
            _ => false,
        };
        let count = holds.len();
        holds.push((clinic_id.clone(), reservation));
        self.check(Invariant::OneActiveReservation, alone, position, || {
            format!(
                "{subject} now holds {} doses ({clinic_id} {reservation})",
                count + 1
            )
        });
    }

    fn dose_released(
        &mut self,
        position: &Position,
        clinic_id: &ClinicId,
        reservation: ReservationId,
        date: NaiveDate,
        from: Share,
    ) {
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        let held = clinic.held.remove(&reservation);
        let quota = clinic.quotas.entry((date, from)).or_default();
        quota.booked -= 1;
        if from != Share::Pool {
            quota.capacity -= 1;
            clinic
                .quotas
                .entry((date, Share::Pool))
                .or_default()
                .capacity += 1;
        }
        let matches = held
            .as_ref()
            .is_some_and(|(_, d, s)| *d == date && *s == from);
        self.check(
            Invariant::ConsistentWithPartition,
            matches,
            position,
            || format!("{clinic_id} released {reservation} ({date} {from}), holding {held:?}"),
        );
        if let Some((subject, _, _)) = held {
            if let Some(holds) = self.holders.get_mut(&subject) {
                holds.retain(|(_, r)| *r != reservation);
            }
        }
    }

    /// A cancellation is lawful in the change window only, and only of what the person holds.
    fn cancelled(
        &mut self,
        position: &Position,
        subject: SubjectId,
        reservation: ReservationId,
        at: i64,
    ) {
        let in_window = self.campaign.change_window.contains(at);
        self.check(
            Invariant::BookingDayOrChangeWindow,
            in_window,
            position,
            || {
                format!(
                    "{subject} cancelled at {} outside the change window",
                    self.campaign.local_time(at)
                )
            },
        );
        let person = self.persons.entry(subject).or_default();
        let held = person.holding == Some(reservation);
        person.holding = None;
        self.check(Invariant::ConsistentWithPartition, held, position, || {
            format!("{subject} cancelled reservation {reservation} they did not hold")
        });
    }

    /// The day shares left unbooked go to the pool once the last booking day has closed: not
    /// before, and exactly what each day share kept, no more and no less.
    fn shares_released(
        &mut self,
        position: &Position,
        clinic_id: &ClinicId,
        releases: &[ShareRelease],
        at: i64,
    ) {
        let due = at >= self.campaign.release_at_ms();
        self.check(Invariant::DosesConserved, due, position, || {
            format!(
                "{clinic_id} released its day shares at {}, before the last booking day closed",
                self.campaign.local_time(at)
            )
        });
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        clinic.released = true;
        let mut short = clinic.release_to_pool(releases);
        short.extend(clinic.day_shares_kept());
        self.check(
            Invariant::DosesConserved,
            short.is_empty(),
            position,
            || {
                format!(
                    "{clinic_id}: release to the pool does not match the day shares: {}",
                    short.join("; ")
                )
            },
        );
    }

    /// Doses leave a clinic for another: they are in transit until deposited or returned.
    fn withdrawn(
        &mut self,
        position: &Position,
        clinic_id: &ClinicId,
        transfer: TransferId,
        from: &Slot,
        doses: u32,
    ) {
        self.withdraw(position, clinic_id, from, doses);
        let fresh = self.in_transit.insert(transfer, doses).is_none();
        self.check(Invariant::DosesConserved, fresh, position, || {
            format!("transfer {transfer} withdrawn twice")
        });
    }

    /// Doses of a transfer land at `clinic_id`: deposited at the receiver, or returned to the
    /// sender after a refusal. Either way they are the ones the transfer carried.
    fn landed(&mut self, position: &Position, landing: Landing, to: &Slot, doses: u32) {
        let Landing {
            clinic: clinic_id,
            transfer,
            returned,
        } = landing;
        let carried = self.in_transit.remove(&transfer);
        let (verb, back) = if returned {
            ("got", " back,")
        } else {
            ("deposited", "")
        };
        self.check(
            Invariant::DosesConserved,
            carried == Some(doses),
            position,
            || {
                format!(
                    "{clinic_id} {verb} {doses} doses of transfer {transfer}{back} carrying {carried:?}"
                )
            },
        );
        self.deposit(clinic_id, to, doses);
    }

    /// A transfer refused by its receiver must name what it carries; the doses stay in transit
    /// until they are returned.
    fn transfer_refused(
        &mut self,
        position: &Position,
        clinic_id: &ClinicId,
        transfer: TransferId,
        doses: u32,
    ) {
        let carried = self.in_transit.get(&transfer).copied();
        self.check(
            Invariant::DosesConserved,
            carried == Some(doses),
            position,
            || {
                format!(
                    "{clinic_id} refused transfer {transfer} of {doses} doses, carrying {carried:?}"
                )
            },
        );
    }

    fn withdraw(&mut self, position: &Position, clinic_id: &ClinicId, from: &Slot, doses: u32) {
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        let quota = clinic.quotas.entry((from.date, from.share)).or_default();
        let unbooked = quota.capacity - quota.booked;
        quota.capacity -= i64::from(doses);
        self.check(
            Invariant::DosesConserved,
            unbooked >= i64::from(doses) && from.clinic == *clinic_id,
            position,
            || {
                format!(
                    "{clinic_id} moved {doses} doses out of {} {} {}, which had {unbooked} unbooked",
                    from.clinic, from.date, from.share
                )
            },
        );
    }

    fn deposit(&mut self, clinic_id: &ClinicId, to: &Slot, doses: u32) {
        let clinic = self.clinics.entry(clinic_id.clone()).or_default();
        clinic
            .quotas
            .entry((to.date, to.share))
            .or_default()
            .capacity += i64::from(doses);
    }

    /// Checks what can only be judged at the end of the range; returns the final conservation
    /// figures `(doses in clinics, in transit, registered)`.
    pub fn finish(&mut self) -> (i64, i64, i64) {
        let in_clinics: i64 = self
            .clinics
            .values()
            .flat_map(|c| c.quotas.values())
            .map(|q| q.capacity)
            .sum();
        let in_transit: i64 = self.in_transit.values().map(|&d| i64::from(d)).sum();
        *self.checks.entry(Invariant::DosesConserved).or_default() += 1;
        if in_clinics + in_transit != self.registered_doses {
            let finding = Finding {
                code: Invariant::DosesConserved.code(),
                position: None,
                detail: format!(
                    "{in_clinics} doses in clinics + {in_transit} in transit != {} registered",
                    self.registered_doses
                ),
            };
            if self.every_partition {
                self.violations.push(finding)
            } else {
                self.notes.push(finding)
            }
        }
        let mut open: Vec<&Cause> = self.open_causes.values().collect();
        open.sort_by(|a, b| a.position.cmp(&b.position));
        for cause in open.iter().take(super::FINDINGS_LISTED_MAX) {
            self.notes.push(Finding {
                code: "open_follow_up",
                position: Some(cause.position.clone()),
                detail: format!(
                    "its {} is not in the log (in flight, or beyond the range)",
                    cause.kind
                ),
            });
        }
        if open.len() > super::FINDINGS_LISTED_MAX {
            self.notes.push(Finding {
                code: "open_follow_up",
                position: None,
                detail: format!(
                    "{} more follow-ups not answered in the range",
                    open.len() - super::FINDINGS_LISTED_MAX
                ),
            });
        }
        (in_clinics, in_transit, self.registered_doses)
    }

    /// Every event id seen (the causal order uses it).
    pub fn has_event(&self, id: &Uuid) -> bool {
        self.event_ids.contains(id)
    }
}
