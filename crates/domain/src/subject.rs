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

/// Everything one person's partition knows about them. In memory only; never serialized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectState {
    /// What the last verification recorded of the birth date (since v2: year and cohort digit).
    pub birth_date: Option<BirthDate>,
    pub verification: Option<Verification>,
    pub admission: Option<Admission>,
    pub reservation: Option<Holding>,
    /// Boxed: a booking is in flight for a moment in a person's life, so most states keep
    /// only the pointer (the writer's memory per person is a benchmark target).
    pub pending: Option<Box<Pending>>,
}

/// The context every decision gets: the campaign and the instant of the command.
pub struct Context<'a> {
    pub campaign: &'a Campaign,
    pub command_id: Uuid,
    pub now_ms: TimestampMs,
}

impl SubjectState {
    /// The device that may act for this person: the one that verified last.
    fn require_verified(&self, device: &DeviceId) -> Result<(Verification, BirthFacts), Rejection> {
        match (&self.verification, self.birth_date) {
            (Some(v), Some(birth)) if &v.device == device => Ok((v.clone(), birth.facts())),
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
        let (_, birth) = self.require_verified(device)?;
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
        match &self.admission {
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
    if let Some(last) = &state.verification {
        if &last.device != device && now < last.lock_until_ms {
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
    if state.reservation.is_some() {
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
    match &state.reservation {
        Some(held) if held.reservation == reservation => Ok(vec![
            ReservationCancelled {
                subject,
                reservation,
                clinic: held.clinic.clone(),
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
    match &state.reservation {
        Some(held) if held.reservation == reservation => {}
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
            let Some(old) = state
                .reservation
                .as_ref()
                .filter(|h| h.reservation == replaces)
            else {
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
                old_clinic: old.clinic.clone(),
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
        events.extend(state.admission.as_ref().map(|a| {
            Event::from(AdmissionUsed {
                subject,
                admission: a.admission,
                ticket: a.ticket,
            })
        }));
    }
    events
}

/// Folds one event of the person's partition into the state. Never fails.
pub fn apply(state: &mut SubjectState, event: &Event) {
    match event {
        Event::SubjectVerified(e) => {
            state.birth_date = Some(e.birth);
            state.verification = Some(Verification {
                device: e.device.clone(),
                method: e.method,
                next_verify_at_ms: e.next_verify_at_ms,
                lock_until_ms: e.next_verify_at_ms,
            });
        }
        Event::DeviceLocked(e) => {
            if let Some(v) = state.verification.as_mut() {
                debug_assert_eq!(
                    v.device, e.device,
                    "the lock goes to the device that verified"
                );
                v.lock_until_ms = e.until_ms;
            }
        }
        Event::AdmissionGranted(e) => {
            state.admission = Some(Admission {
                admission: e.admission,
                ticket: e.ticket,
                expires_at_ms: e.expires_at_ms,
                used: false,
            });
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
            state.reservation = Some(Holding {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
            });
            state.use_admission();
        }
        Event::ReservationChanged(e) => {
            state.pending = None;
            state.reservation = Some(Holding {
                reservation: e.reservation,
                clinic: e.clinic.clone(),
                date: e.date,
                share: e.share,
            });
            state.use_admission();
        }
        Event::BookingFailed(_) | Event::ChangeFailed(_) => {
            state.pending = None;
        }
        Event::ReservationCancelled(_) => {
            state.reservation = None;
        }
        // The recorded booking or change before it marked the admission used already (logs
        // written before this event existed have only that); it is news for the waiting room.
        Event::AdmissionUsed(_) => {}
        _ => {}
    }
}

impl SubjectState {
    fn use_admission(&mut self) {
        if let Some(a) = self.admission.as_mut() {
            a.used = true;
        }
    }
}
