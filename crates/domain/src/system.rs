//! The whole ledger as one pure value: every partition's state, the routing of follow-ups
//! between partitions, and the checks of every invariant. The embedded ledger and the property
//! tests run on it; the production pipeline runs the same `decide`/`apply` split by partition.

use std::collections::{BTreeMap, HashMap, VecDeque};

use uuid::Uuid;

use super::calendar::Campaign;
use super::clinic::{self, ClinicState};
use super::command::{Command, CommandBody, Target};
use super::event::*;
use super::ids::derive_uuid;
use super::subject::{self, Context, SharedClinicIds, SubjectState};
use super::table::Table;
use super::waiting_room::{self, WaitingRoomState};
use super::{ClinicId, Event, Rejection, Share, SubjectId, TransferId};

/// The longest chain of follow-ups one command can cause (book: request, hold, settle; change:
/// one more release). A longer chain is a routing bug.
pub const FOLLOW_UP_DEPTH_MAX: usize = 8;

/// Doses the whole system answers for, kept to check conservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub registered_doses: u64,
    /// Withdrawn from one clinic, not yet deposited at another or returned.
    pub in_transit: BTreeMap<TransferId, u32>,
}

#[derive(Debug, Clone)]
pub struct System {
    pub campaign: Campaign,
    /// Boxed states in a [`Table`]: a pointer per person beside the id, and no unused slots
    /// (the writer's memory per person is a benchmark target, issue 16).
    pub subjects: Table<SubjectId, Box<SubjectState>>,
    pub clinics: BTreeMap<ClinicId, ClinicState>,
    pub waiting_room: WaitingRoomState,
    pub totals: Totals,
    /// The one copy of each clinic id the persons' reservations point at.
    shared_clinic_ids: SharedClinicIds,
}

/// What one command did: its own events (or its rejection) and every follow-up's events, in the
/// order they were decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rejection: Option<Rejection>,
    pub events: Vec<Envelope>,
}

impl Outcome {
    /// The last event of the chain that is not a follow-up's rejection: for a booking, the
    /// person's final answer (`ReservationRecorded` or `BookingFailed`). The bookkeeping of a
    /// used admission that follows a recorded booking (`AdmissionUsed`, `TicketRetired`) is
    /// not an answer, so it is passed over.
    pub fn last_event(&self) -> Option<&Event> {
        self.events
            .iter()
            .rev()
            .map(|e| &e.event)
            .find(|e| !matches!(e, Event::AdmissionUsed(_) | Event::TicketRetired(_)))
    }
}

pub use crate::invariant::{Invariant, Violation};

impl System {
    pub fn new(campaign: Campaign) -> System {
        System {
            campaign,
            subjects: Table::new(),
            clinics: BTreeMap::new(),
            waiting_room: WaitingRoomState::default(),
            totals: Totals::default(),
            shared_clinic_ids: SharedClinicIds::default(),
        }
    }

    /// Decides `command` against the state of its partition and wraps the result in envelopes. A
    /// rejection becomes one `CommandRejected` envelope, so it is recorded like any event.
    pub fn decide(&self, command: &Command) -> (Result<(), Rejection>, Vec<Envelope>) {
        let target = command.body.target();
        let ctx = Context {
            campaign: &self.campaign,
            command_id: command.command_id,
            now_ms: command.at_ms,
        };
        let decided = match &target {
            Target::Subject(id) => {
                let empty = SubjectState::default();
                subject::decide(
                    self.subjects.get(id).map_or(&empty, |s| &**s),
                    &command.body,
                    &ctx,
                )
            }
            Target::Clinic(id) => {
                let empty = ClinicState::default();
                clinic::decide(self.clinics.get(id).unwrap_or(&empty), &command.body, &ctx)
            }
            Target::WaitingRoom => waiting_room::decide(&self.waiting_room, &command.body, &ctx),
        };
        let (result, events) = match decided {
            Ok(events) => (Ok(()), events),
            Err(rejection) => (
                Err(rejection),
                vec![
                    CommandRejected {
                        command: command.body.name().to_owned(),
                        rejection,
                    }
                    .into(),
                ],
            ),
        };
        let key = target.key();
        let envelopes = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Envelope {
                event_id: derive_uuid(command.command_id, &format!("event/{i}"), command.at_ms),
                command_id: command.command_id,
                schema_version: event.schema_version(),
                occurred_at_ms: command.at_ms,
                partition_key: key.clone(),
                event,
            })
            .collect();
        (result, envelopes)
    }

    /// Folds one event into the state of the partition it belongs to.
    pub fn apply(&mut self, envelope: &Envelope) {
        let event = &envelope.event;
        match event {
            Event::SubjectVerified(e) => self.subject_mut(e.subject, event),
            Event::DeviceLocked(e) => self.subject_mut(e.subject, event),
            Event::AdmissionGranted(e) => self.subject_mut(e.subject, event),
            Event::AdmissionUsed(e) => self.subject_mut(e.subject, event),
            Event::BookingRequested(e) => self.subject_mut(e.subject, event),
            Event::ChangeRequested(e) => self.subject_mut(e.subject, event),
            Event::ReservationRecorded(e) => self.subject_mut(e.subject, event),
            Event::ReservationChanged(e) => self.subject_mut(e.subject, event),
            Event::BookingFailed(e) => self.subject_mut(e.subject, event),
            Event::ChangeFailed(e) => self.subject_mut(e.subject, event),
            Event::ReservationCancelled(e) => self.subject_mut(e.subject, event),
            Event::TicketIssued(_)
            | Event::TicketAdmitted(_)
            | Event::TicketLeft(_)
            | Event::TicketSkipped(_)
            | Event::TicketKept(_)
            | Event::TicketRetired(_)
            | Event::PreQueueJoined(_)
            | Event::PreQueueDrawn(_)
            | Event::CongestionReported(_)
            | Event::ProviderSwitched(_)
            | Event::AdmissionsControlled(_) => waiting_room::apply(&mut self.waiting_room, event),
            Event::ClinicRegistered(e) => self.clinic_mut(&e.clinic, event),
            Event::SupplyRegistered(e) => {
                self.totals.registered_doses += u64::from(e.doses);
                self.clinic_mut(&e.clinic, event)
            }
            Event::ReservationConfirmed(e) => self.clinic_mut(&e.clinic, event),
            Event::BookingRefused(e) => self.clinic_mut(&e.clinic, event),
            Event::DoseReleased(e) => self.clinic_mut(&e.clinic, event),
            Event::SharesReleased(e) => self.clinic_mut(&e.clinic, event),
            Event::DosesMoved(e) => self.clinic_mut(&e.clinic, event),
            Event::DosesWithdrawn(e) => {
                self.totals.in_transit.insert(e.transfer, e.doses);
                self.clinic_mut(&e.clinic, event)
            }
            Event::DosesDeposited(e) => {
                self.totals.in_transit.remove(&e.transfer);
                self.clinic_mut(&e.clinic, event)
            }
            Event::TransferRefused(e) => self.clinic_mut(&e.clinic, event),
            Event::DosesReturned(e) => {
                self.totals.in_transit.remove(&e.transfer);
                self.clinic_mut(&e.clinic, event)
            }
            Event::CommandRejected(_) => {}
        }
    }

    fn subject_mut(&mut self, id: SubjectId, event: &Event) {
        let state = self.subjects.get_or_default(id);
        subject::apply(state, event, &mut self.shared_clinic_ids);
    }

    fn clinic_mut(&mut self, id: &ClinicId, event: &Event) {
        if !self.clinics.contains_key(id) {
            self.clinics.insert(id.clone(), ClinicState::default());
        }
        if let Some(state) = self.clinics.get_mut(id) {
            clinic::apply(state, event);
        }
    }

    /// Runs a command and every follow-up it causes, to the end. Pure and in memory: for tests,
    /// simulations and the auditors' reference runs.
    pub fn execute(&mut self, command: Command) -> Outcome {
        let mut queue = VecDeque::from([(command, 0usize)]);
        let mut outcome = Outcome {
            rejection: None,
            events: Vec::new(),
        };
        let mut first = true;
        while let Some((command, depth)) = queue.pop_front() {
            assert!(
                depth <= FOLLOW_UP_DEPTH_MAX,
                "follow-up chain too deep at {}",
                command.body.name()
            );
            let (result, envelopes) = self.decide(&command);
            if first {
                outcome.rejection = result.err();
                first = false;
            }
            for envelope in &envelopes {
                self.apply(envelope);
                if let Some(next) = follow_up(envelope) {
                    queue.push_back((next, depth + 1));
                }
            }
            outcome.events.extend(envelopes);
        }
        outcome
    }

    /// Every broken invariant of a quiet system (no follow-up in flight).
    pub fn violations(&self) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut held_by: HashMap<SubjectId, Vec<(ClinicId, super::ReservationId)>> = HashMap::new();
        let mut held_doses = 0u64;
        for (id, clinic) in &self.clinics {
            for (date, supply) in &clinic.dates {
                let shares = supply
                    .days
                    .iter()
                    .enumerate()
                    .map(|(d, q)| (Share::Day(d as u8), q));
                for (share, quota) in shares.chain(std::iter::once((Share::Pool, &supply.pool))) {
                    if quota.booked > quota.capacity {
                        found.push(Violation::new(
                            Invariant::ShareNotOverbooked,
                            format!(
                                "{id} {date} {share}: {} booked of {}",
                                quota.booked, quota.capacity
                            ),
                        ));
                    }
                }
                let booked_here = clinic.held.values().filter(|h| h.date == *date).count() as u64;
                if booked_here != supply.booked() {
                    found.push(Violation::new(
                        Invariant::ConsistentWithPartition,
                        format!(
                            "{id} {date}: {booked_here} held but {} booked",
                            supply.booked()
                        ),
                    ));
                }
            }
            for (reservation, held) in &clinic.held {
                held_by
                    .entry(held.subject)
                    .or_default()
                    .push((id.clone(), *reservation));
            }
            held_doses += clinic::doses_held(clinic);
        }
        for (subject, holdings) in &held_by {
            if holdings.len() > 1 {
                found.push(Violation::new(
                    Invariant::OneActiveReservation,
                    format!("{subject} holds {} doses", holdings.len()),
                ));
            }
            let recorded = self.subjects.get(subject).and_then(|s| s.reservation_id());
            if recorded != Some(holdings[0].1) {
                found.push(Violation::new(
                    Invariant::OneActiveReservation,
                    format!(
                        "{subject}: clinic holds {} but the person records {recorded:?}",
                        holdings[0].1
                    ),
                ));
            }
        }
        for (subject, state) in &self.subjects {
            if let Some(h) = state.reservation() {
                let at_clinic = self
                    .clinics
                    .get(&h.clinic)
                    .and_then(|c| c.held.get(&h.reservation));
                if at_clinic.map(|held| held.subject) != Some(*subject) {
                    found.push(Violation::new(
                        Invariant::OneActiveReservation,
                        format!(
                            "{subject}: reservation {} not held by {}",
                            h.reservation, h.clinic
                        ),
                    ));
                }
            }
            if state.pending().is_some() {
                found.push(Violation::new(
                    Invariant::AnsweredOnce,
                    format!("{subject}: a booking is still in flight"),
                ));
            }
            if let Some(ticket) = self.live_ticket_of_used_admission(subject, state) {
                found.push(Violation::new(
                    Invariant::ConsistentWithPartition,
                    format!(
                        "{subject}: the admission of ticket {} was used but the ticket is still live",
                        ticket.0
                    ),
                ));
            }
        }
        let in_transit: u64 = self.totals.in_transit.values().map(|&d| u64::from(d)).sum();
        if held_doses + in_transit != self.totals.registered_doses {
            found.push(Violation::new(
                Invariant::DosesConserved,
                format!(
                    "{held_doses} in clinics + {in_transit} in transit != {} registered",
                    self.totals.registered_doses
                ),
            ));
        }
        found
    }
}

impl System {
    /// The person's admitted ticket, if the waiting room still counts it live although the
    /// person's partition says its admission was used (the retirement never arrived).
    fn live_ticket_of_used_admission(
        &self,
        subject: &SubjectId,
        state: &SubjectState,
    ) -> Option<super::TicketNo> {
        let admission = state.admission().filter(|a| a.used)?;
        match self.waiting_room.ticket_of(subject) {
            Some((ticket, waiting_room::TicketState::Admitted { .. }))
                if ticket == admission.ticket =>
            {
                Some(ticket)
            }
            _ => None,
        }
    }
}

/// The command another partition must decide because of `envelope`, if any. Its id is the
/// event's id, so a redelivered event yields the same command, which the target answers once.
pub fn follow_up(envelope: &Envelope) -> Option<Command> {
    let body = match &envelope.event {
        Event::TicketAdmitted(e) => CommandBody::GrantAdmission {
            subject: e.subject,
            admission: e.admission,
            ticket: e.ticket,
            expires_at_ms: e.expires_at_ms,
        },
        Event::AdmissionUsed(e) => CommandBody::RetireTicket {
            subject: e.subject,
            ticket: e.ticket,
        },
        Event::BookingRequested(e) => CommandBody::HoldDose {
            clinic: e.clinic.clone(),
            reservation: e.reservation,
            subject: e.subject,
            date: e.date,
            share: e.share,
            replaces: None,
        },
        Event::ChangeRequested(e) => CommandBody::HoldDose {
            clinic: e.clinic.clone(),
            reservation: e.reservation,
            subject: e.subject,
            date: e.date,
            share: e.share,
            replaces: Some(e.replaces),
        },
        Event::ReservationConfirmed(e) => CommandBody::SettleBooking {
            subject: e.subject,
            reservation: e.reservation,
            refused: None,
        },
        Event::BookingRefused(e) => CommandBody::SettleBooking {
            subject: e.subject,
            reservation: e.reservation,
            refused: Some(e.code),
        },
        Event::ReservationChanged(e) => CommandBody::ReleaseDose {
            clinic: e.old_clinic.clone(),
            reservation: e.replaces,
        },
        Event::ReservationCancelled(e) => CommandBody::ReleaseDose {
            clinic: e.clinic.clone(),
            reservation: e.reservation,
        },
        Event::DosesWithdrawn(e) => CommandBody::DepositDoses {
            transfer: e.transfer,
            from: e.from.clone(),
            to: e.to.clone(),
            doses: e.doses,
        },
        Event::TransferRefused(e) => CommandBody::ReturnDoses {
            transfer: e.transfer,
            from: e.from.clone(),
            doses: e.doses,
            refused: e.code,
        },
        _ => return None,
    };
    Some(Command {
        command_id: envelope.event_id,
        at_ms: envelope.occurred_at_ms,
        body,
    })
}

/// A command id for tests and tools that have no client-chosen id: derived from a seed text.
pub fn command_id_from(seed: &str) -> Uuid {
    derive_uuid(Uuid::nil(), seed, 0)
}
