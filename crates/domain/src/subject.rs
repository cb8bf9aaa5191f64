//! The person's partition: verification, the device lock, admissions, and the one active
//! reservation a person may hold. Keyed by subject id.
//!
//! Enforced here: verification rate limit, first-device lock, no proxy booking, eligibility,
//! the booking day and the change window, at most one active reservation per person (a booking
//! or change in flight blocks every other), single-use admissions.

use super::calendar::Campaign;
use super::command::CommandBody;
use super::event::*;
use super::ids::derive_uuid;
use super::{
    AdmissionId, BirthDate, BirthFacts, ClinicId, DeviceId, Event, Method, Rejection,
    RejectionCode, ReservationId, Share, SubjectId, TicketNo, TimestampMs, VaccinationDate,
};
use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

/// The last completed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub device: DeviceId,
    pub method: Method,
    /// Another verification of this person is refused before this instant.
    pub next_verify_at_ms: TimestampMs,
    /// Other devices are refused before this instant.
    pub lock_until_ms: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub admission: AdmissionId,
    /// The waiting room's ticket it was granted for (retired there once the admission is used).
    pub ticket: TicketNo,
    pub expires_at_ms: TimestampMs,
    pub used: bool,
}

/// A reservation as the person holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
}

/// A booking or change the clinic has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
    /// `Some` for a change: the reservation it replaces.
    pub replaces: Option<ReservationId>,
}

/// Whether the person holds an admission, and whether it was used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum AdmissionHeld {
    #[default]
    None,
    Unused,
    Used,
}

/// Everything one person's partition knows about them. In memory only; never serialized.
///
/// Read through [`SubjectState::verification`], [`SubjectState::admission`],
/// [`SubjectState::reservation`] and [`SubjectState::pending`], which give the records above.
/// Held flat, 120 bytes with no padding, because the writer keeps one per person and its memory
/// per person is a benchmark target (issue 16): the verification, the admission and the
/// reservation are fields side by side, each present or not by one field of its own (the device,
/// `admission_held`, the clinic), and the held reservation's clinic id is the system's one
/// shared copy ([`SharedClinicIds`]), 8 bytes instead of 24. Its `Debug` (the audit's digest of
/// the domain state) prints the records, as when they were the fields.
#[derive(Clone)]
pub struct SubjectState {
    /// What the last verification recorded of the birth date (since v2: year and cohort digit).
    birth_date: Option<BirthDate>,
    /// The last verification: its device (none before the first), method and instants.
    device: Option<DeviceId>,
    method: Option<Method>,
    next_verify_at_ms: TimestampMs,
    lock_until_ms: TimestampMs,
    /// The last admission granted, if `admission_held` says there is one.
    admission_held: AdmissionHeld,
    admission: AdmissionId,
    admission_ticket: TicketNo,
    admission_expires_at_ms: TimestampMs,
    /// The reservation held, if `reservation_clinic` is `Some`.
    reservation_clinic: Option<Arc<ClinicId>>,
    reservation: ReservationId,
    reservation_date: VaccinationDate,
    reservation_share: Share,
    /// Boxed: a booking is in flight for a moment in a person's life, so most states keep
    /// only the pointer.
    pending: Option<Box<Pending>>,
}

impl Default for SubjectState {
    fn default() -> SubjectState {
        SubjectState {
            birth_date: None,
            device: None,
            method: None,
            next_verify_at_ms: 0,
            lock_until_ms: 0,
            admission_held: AdmissionHeld::None,
            admission: AdmissionId(Uuid::nil()),
            admission_ticket: TicketNo(0),
            admission_expires_at_ms: 0,
            reservation_clinic: None,
            reservation: ReservationId(Uuid::nil()),
            reservation_date: VaccinationDate::MIN,
            reservation_share: Share::Pool,
            pending: None,
        }
    }
}

/// Equal when the records are: what a field of a record not held keeps is not compared.
impl PartialEq for SubjectState {
    fn eq(&self, other: &SubjectState) -> bool {
        self.birth_date == other.birth_date
            && self.verification() == other.verification()
            && self.admission() == other.admission()
            && self.reservation() == other.reservation()
            && self.pending == other.pending
    }
}

impl Eq for SubjectState {}

/// As the derived `Debug` of the records as fields printed it, so a log's digest of the domain
/// state does not depend on how the state is laid out in memory.
impl std::fmt::Debug for SubjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectState")
            .field("birth_date", &self.birth_date)
            .field("verification", &self.verification())
            .field("admission", &self.admission())
            .field("reservation", &self.reservation())
            .field("pending", &self.pending)
            .finish()
    }
}

/// The one shared copy of each clinic id that persons hold a reservation at: a cache of the
/// system (what it holds changes no decision), grown only by recorded reservations, so only by
/// clinics that confirmed one.
#[derive(Debug, Clone, Default)]
pub struct SharedClinicIds(HashSet<Arc<ClinicId>>);

impl SharedClinicIds {
    fn share(&mut self, clinic: &ClinicId) -> Arc<ClinicId> {
        if let Some(shared) = self.0.get(clinic) {
            return shared.clone();
        }
        let shared = Arc::new(clinic.clone());
        self.0.insert(shared.clone());
        shared
    }
}

impl SubjectState {
    /// What the last verification recorded of the birth date.
    pub fn birth_date(&self) -> Option<BirthDate> {
        self.birth_date
    }

    /// The last completed verification.
    pub fn verification(&self) -> Option<Verification> {
        match (&self.device, self.method) {
            (Some(device), Some(method)) => Some(Verification {
                device: device.clone(),
                method,
                next_verify_at_ms: self.next_verify_at_ms,
                lock_until_ms: self.lock_until_ms,
            }),
            _ => None,
        }
    }

    /// The last admission granted, used or not.
    pub fn admission(&self) -> Option<Admission> {
        let used = match self.admission_held {
            AdmissionHeld::None => return None,
            AdmissionHeld::Unused => false,
            AdmissionHeld::Used => true,
        };
        Some(Admission {
            admission: self.admission,
            ticket: self.admission_ticket,
            expires_at_ms: self.admission_expires_at_ms,
            used,
        })
    }

    /// The reservation the person holds.
    pub fn reservation(&self) -> Option<Holding> {
        self.reservation_clinic.as_ref().map(|clinic| Holding {
            reservation: self.reservation,
            clinic: ClinicId::clone(clinic),
            date: self.reservation_date,
            share: self.reservation_share,
        })
    }

    /// The id of the reservation the person holds.
    pub fn reservation_id(&self) -> Option<ReservationId> {
        self.reservation_clinic.as_ref().map(|_| self.reservation)
    }

    /// The booking or change in flight.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_deref()
    }

    fn hold(&mut self, clinics: &mut SharedClinicIds, held: Holding) {
        self.reservation_clinic = Some(clinics.share(&held.clinic));
        self.reservation = held.reservation;
        self.reservation_date = held.date;
        self.reservation_share = held.share;
    }
}

/// The context every decision gets: the campaign and the instant of the command.
pub struct Context<'a> {
    pub campaign: &'a Campaign,
    pub command_id: Uuid,
    pub now_ms: TimestampMs,
}

impl SubjectState {
    /// The device that may act for this person: the one that verified last.
    fn require_verified(&self, device: &DeviceId) -> Result<BirthFacts, Rejection> {
        match (&self.device, self.method, self.birth_date) {
            (Some(verified), Some(_), Some(birth)) if verified == device => Ok(birth.facts()),
            _ => Err(Rejection::new(RejectionCode::NotVerified)),
        }
    }

    /// The checks a booking and a change share, in precedence order: the requester books for
    /// themself, from the device that verified, a date of the campaign, and is in its age group.
    fn require_booker(
        &self,
        subject: &SubjectId,
        requested_for: &SubjectId,
        device: &DeviceId,
        date: VaccinationDate,
        campaign: &Campaign,
    ) -> Result<BirthFacts, Rejection> {
        if requested_for != subject {
            return Err(Rejection::new(RejectionCode::ProxyForbidden));
        }
        let birth = self.require_verified(device)?;
        if !campaign.is_vaccination_date(date) {
            return Err(Rejection::new(RejectionCode::DateOutOfRange));
        }
        if !campaign.is_eligible(birth) {
            return Err(Rejection::new(RejectionCode::NotEligible));
        }
        Ok(birth)
    }

    fn require_admission(
        &self,
        admission: AdmissionId,
        now_ms: TimestampMs,
    ) -> Result<(), Rejection> {
        match self.admission() {
            Some(a) if a.admission == admission && !a.used => {
                if now_ms >= a.expires_at_ms {
                    Err(Rejection::new(RejectionCode::AdmissionExpired))
                } else {
                    Ok(())
                }
            }
            _ => Err(Rejection::new(RejectionCode::AdmissionRequired)),
        }
    }

    fn require_idle(&self) -> Result<(), Rejection> {
        if self.pending.is_some() {
            return Err(Rejection::new(RejectionCode::BookingInProgress));
        }
        Ok(())
    }
}

/// Decides a command of the person's partition. Pure.
pub fn decide(
    state: &SubjectState,
    command: &CommandBody,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    match command {
        CommandBody::Verify {
            subject,
            birth_year,
            cohort_digit,
            method,
            device,
        } => {
            let birth = BirthFacts {
                year: *birth_year,
                cohort_digit: *cohort_digit,
            };
            verify(state, ctx, *subject, birth, *method, device)
        }
        CommandBody::Book {
            subject,
            requested_for,
            device,
            clinic,
            date,
            admission,
        } => {
            let request = Request {
                subject,
                requested_for,
                device,
                clinic,
                date,
                admission,
            };
            book(state, ctx, &request)
        }
        CommandBody::Cancel {
            subject,
            requested_for,
            device,
            reservation,
        } => cancel(state, ctx, *subject, *requested_for, device, *reservation),
        CommandBody::Rebook {
            subject,
            requested_for,
            device,
            reservation,
            clinic,
            date,
            admission,
        } => {
            let request = Request {
                subject,
                requested_for,
                device,
                clinic,
                date,
                admission,
            };
            rebook(state, ctx, &request, *reservation)
        }
        CommandBody::GrantAdmission {
            subject,
            admission,
            ticket,
            expires_at_ms,
        } => Ok(vec![
            AdmissionGranted {
                subject: *subject,
                admission: *admission,
                ticket: *ticket,
                expires_at_ms: *expires_at_ms,
            }
            .into(),
        ]),
        CommandBody::SettleBooking {
            subject,
            reservation,
            refused,
        } => Ok(settle(state, *subject, *reservation, *refused)),
        other => unreachable!(
            "command {} is not decided by a person's partition",
            other.name()
        ),
    }
}

/// What a booking and a change ask for.
struct Request<'c> {
    subject: &'c SubjectId,
    requested_for: &'c SubjectId,
    device: &'c DeviceId,
    clinic: &'c ClinicId,
    date: &'c VaccinationDate,
    admission: &'c AdmissionId,
}

/// A verification: refused while another device holds the lock or within the interval.
fn verify(
    state: &SubjectState,
    ctx: &Context,
    subject: SubjectId,
    birth: BirthFacts,
    method: Method,
    device: &DeviceId,
) -> Result<Vec<Event>, Rejection> {
    let (rules, now) = (&ctx.campaign.rules, ctx.now_ms);
    if let Some(last) = state.verification() {
        if last.device != *device && now < last.lock_until_ms {
            return Err(Rejection::retry_at(
                RejectionCode::DeviceLocked,
                last.lock_until_ms,
            ));
        }
        if now < last.next_verify_at_ms {
            return Err(Rejection::retry_at(
                RejectionCode::VerifyRateLimited,
                last.next_verify_at_ms,
            ));
        }
    }
    Ok(vec![
        SubjectVerified {
            subject,
            method,
            device: device.clone(),
            birth: BirthDate::Minimal(birth),
            next_verify_at_ms: now + rules.verify_interval_ms,
        }
        .into(),
        DeviceLocked {
            subject,
            device: device.clone(),
            until_ms: now + rules.device_lock_ms,
        }
        .into(),
    ])
}

/// A booking on the person's booking day (or from the pool in the change window).
fn book(state: &SubjectState, ctx: &Context, r: &Request) -> Result<Vec<Event>, Rejection> {
    let (campaign, now) = (ctx.campaign, ctx.now_ms);
    let birth = state.require_booker(r.subject, r.requested_for, r.device, *r.date, campaign)?;
    let phase = campaign.booking_phase(birth, now)?;
    state.require_idle()?;
    if state.reservation_id().is_some() {
        return Err(Rejection::new(RejectionCode::AlreadyReserved));
    }
    state.require_admission(*r.admission, now)?;
    Ok(vec![
        BookingRequested {
            subject: *r.subject,
            reservation: ReservationId(derive_uuid(ctx.command_id, "reservation", now)),
            clinic: r.clinic.clone(),
            date: *r.date,
            share: Campaign::share_of(phase),
            admission: *r.admission,
        }
        .into(),
    ])
}

/// A cancellation, in the change window, of the reservation the person holds.
fn cancel(
    state: &SubjectState,
    ctx: &Context,
    subject: SubjectId,
    requested_for: SubjectId,
    device: &DeviceId,
    reservation: ReservationId,
) -> Result<Vec<Event>, Rejection> {
    if requested_for != subject {
        return Err(Rejection::new(RejectionCode::ProxyForbidden));
    }
    state.require_verified(device)?;
    ctx.campaign.change_allowed(ctx.now_ms)?;
    state.require_idle()?;
    match state.reservation() {
        Some(held) if held.reservation == reservation => Ok(vec![
            ReservationCancelled {
                subject,
                reservation,
                clinic: held.clinic,
                date: held.date,
            }
            .into(),
        ]),
        _ => Err(Rejection::new(RejectionCode::NoSuchReservation)),
    }
}

/// A change of the reservation the person holds, in the change window, from the pool.
fn rebook(
    state: &SubjectState,
    ctx: &Context,
    r: &Request,
    reservation: ReservationId,
) -> Result<Vec<Event>, Rejection> {
    let (campaign, now) = (ctx.campaign, ctx.now_ms);
    state.require_booker(r.subject, r.requested_for, r.device, *r.date, campaign)?;
    campaign.change_allowed(now)?;
    state.require_idle()?;
    match state.reservation_id() {
        Some(held) if held == reservation => {}
        _ => return Err(Rejection::new(RejectionCode::NoSuchReservation)),
    }
    state.require_admission(*r.admission, now)?;
    Ok(vec![
        ChangeRequested {
            subject: *r.subject,
            reservation: ReservationId(derive_uuid(ctx.command_id, "reservation", now)),
            replaces: reservation,
            clinic: r.clinic.clone(),
            date: *r.date,
            share: Share::Pool,
            admission: *r.admission,
        }
        .into(),
    ])
}

/// The clinic's answer to the booking or change in flight. A settlement that matches nothing
/// in flight is a redelivery: nothing changes.
fn settle(
    state: &SubjectState,
    subject: SubjectId,
    reservation: ReservationId,
    refused: Option<RejectionCode>,
) -> Vec<Event> {
    let Some(pending) = state
        .pending
        .as_ref()
        .filter(|p| p.reservation == reservation)
    else {
        return vec![];
    };
    let event: Event = match (refused, pending.replaces) {
        (None, None) => ReservationRecorded {
            subject,
            reservation,
            clinic: pending.clinic.clone(),
            date: pending.date,
            share: pending.share,
        }
        .into(),
        (None, Some(replaces)) => {
            let Some(old) = state.reservation().filter(|h| h.reservation == replaces) else {
                // The pending change blocks cancel, so the old reservation cannot be gone.
                unreachable!("a change in flight always has its old reservation")
            };
            ReservationChanged {
                subject,
                reservation,
                clinic: pending.clinic.clone(),
                date: pending.date,
                share: pending.share,
                replaces,
                old_clinic: old.clinic,
                old_date: old.date,
            }
            .into()
        }
        (Some(code), None) => BookingFailed {
            subject,
            reservation,
            code,
        }
        .into(),
        (Some(code), Some(replaces)) => ChangeFailed {
            subject,
            reservation,
            replaces,
            code,
        }
        .into(),
    };
    let mut events = vec![event];
    // A recorded booking or change uses the admission: the waiting room must learn it, or the
    // person could not queue again (for a change) until the admission expired.
    if refused.is_none() {
        events.extend(state.admission().map(|a| {
            Event::from(AdmissionUsed {
                subject,
                admission: a.admission,
                ticket: a.ticket,
            })
        }));
    }
    events
}

/// Folds one event of the person's partition into the state. Never fails. A recorded
/// reservation's clinic id is held as the copy `clinics` shares.
pub fn apply(state: &mut SubjectState, event: &Event, clinics: &mut SharedClinicIds) {
    match event {
        Event::SubjectVerified(e) => {
            state.birth_date = Some(e.birth);
            state.device = Some(e.device.clone());
            state.method = Some(e.method);
            state.next_verify_at_ms = e.next_verify_at_ms;
            state.lock_until_ms = e.next_verify_at_ms;
        }
        Event::DeviceLocked(e) => {
            if let Some(device) = &state.device {
                debug_assert_eq!(
                    *device, e.device,
                    "the lock goes to the device that verified"
                );
                state.lock_until_ms = e.until_ms;
            }
        }
        Event::AdmissionGranted(e) => {
            state.admission_held = AdmissionHeld::Unused;
            state.admission = e.admission;
            state.admission_ticket = e.ticket;
            state.admission_expires_at_ms = e.expires_at_ms;
        }
        Event::BookingRequested(e) => {
            state.pending = Some(Box::new(Pending {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
                replaces: None,
            }));
        }
        Event::ChangeRequested(e) => {
            state.pending = Some(Box::new(Pending {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
                replaces: Some(e.replaces),
            }));
        }
        Event::ReservationRecorded(e) => {
            state.pending = None;
            let held = Holding {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
            };
            state.hold(clinics, held);
            state.use_admission();
        }
        Event::ReservationChanged(e) => {
            state.pending = None;
            let held = Holding {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
            };
            state.hold(clinics, held);
            state.use_admission();
        }
        Event::BookingFailed(_) | Event::ChangeFailed(_) => {
            state.pending = None;
        }
        Event::ReservationCancelled(_) => {
            state.reservation_clinic = None;
        }
        // The recorded booking or change before it marked the admission used already (logs
        // written before this event existed have only that); it is news for the waiting room.
        Event::AdmissionUsed(_) => {}
        _ => {}
    }
}

impl SubjectState {
    fn use_admission(&mut self) {
        if self.admission_held == AdmissionHeld::Unused {
            self.admission_held = AdmissionHeld::Used;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer keeps one state per person (issue 16): no padding, the clinic id shared.
    #[test]
    fn a_person_s_state_is_120_bytes() {
        assert_eq!(std::mem::size_of::<SubjectState>(), 120);
    }

    /// The `Debug` the audit's digest of the domain state hashes: the records as fields, as the
    /// derived `Debug` printed them when they were.
    #[test]
    fn a_state_prints_its_records_as_fields() {
        let mut clinics = SharedClinicIds::default();
        let mut state = SubjectState::default();
        assert_eq!(
            format!("{state:?}"),
            "SubjectState { birth_date: None, verification: None, admission: None, \
             reservation: None, pending: None }"
        );
        let subject = SubjectId([7; 16]);
        let clinic = ClinicId::new("c1").unwrap();
        let date: VaccinationDate = "2021-08-30".parse().unwrap();
        let events: Vec<Event> = vec![
            AdmissionGranted {
                subject,
                admission: AdmissionId(Uuid::from_u128(5)),
                ticket: TicketNo(3),
                expires_at_ms: 99,
            }
            .into(),
            ReservationRecorded {
                subject,
                reservation: ReservationId(Uuid::from_u128(6)),
                clinic: clinic.clone(),
                date,
                share: Share::Day(0),
            }
            .into(),
        ];
        events
            .iter()
            .for_each(|e| apply(&mut state, e, &mut clinics));
        assert_eq!(
            format!("{state:?}"),
            "SubjectState { birth_date: None, verification: None, admission: Some(Admission { \
             admission: AdmissionId(00000000-0000-0000-0000-000000000005), ticket: TicketNo(3), \
             expires_at_ms: 99, used: true }), reservation: Some(Holding { reservation: \
             ReservationId(00000000-0000-0000-0000-000000000006), clinic: ClinicId(\"c1\"), date: \
             2021-08-30, share: Day(0) }), pending: None }"
        );
        let cancelled: Event = ReservationCancelled {
            subject,
            reservation: ReservationId(Uuid::from_u128(6)),
            clinic,
            date,
        }
        .into();
        apply(&mut state, &cancelled, &mut clinics);
        assert_eq!(state.reservation(), None);
        assert_eq!(state.admission().map(|a| a.used), Some(true));
    }
}
