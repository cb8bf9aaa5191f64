//! What a gateway reads: the read model (slot quota, clinics, reservations) plus the waiting
//! room as the front tier needs it (who holds which ticket, admissions, the pre-queue, the
//! measured admission rate). A fold of the event log, fed by the backend in log order per
//! partition; it can always be rebuilt, so it is never the authority on any rule.

use std::collections::{BTreeMap, HashMap, VecDeque};

use yeyak_domain::event::AdmissionsControlled;
use yeyak_domain::{
    AdmissionId, BirthFacts, DeviceId, Envelope, Event, SubjectId, TicketNo, TimestampMs,
};
use yeyak_read::projection::ReadModel;

/// The window over which the admission rate is measured.
pub const RATE_WINDOW_MS: i64 = 60_000;
/// Admissions remembered for the rate, at most.
pub const RATE_SAMPLES_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketPhase {
    Waiting,
    Admitted {
        admission: AdmissionId,
        expires_at_ms: TimestampMs,
    },
    Left,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    pub subject: SubjectId,
    pub device: DeviceId,
    pub issued_at_ms: TimestampMs,
    pub phase: TicketPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionView {
    pub admission: AdmissionId,
    pub ticket: TicketNo,
    pub expires_at_ms: TimestampMs,
    pub used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawView {
    pub seed: String,
    pub drawn: u32,
    pub at_ms: TimestampMs,
}

#[derive(Debug, Default)]
pub struct FrontView {
    pub model: ReadModel,
    pub tickets: BTreeMap<TicketNo, TicketView>,
    /// Waiting tickets in order.
    pub waiting: BTreeMap<TicketNo, SubjectId>,
    /// Each person's latest ticket.
    pub ticket_of: HashMap<SubjectId, TicketNo>,
    pub pre_queue: BTreeMap<SubjectId, DeviceId>,
    /// What each verified person's booking day and eligibility depend on (their birth year and
    /// cohort digit, never the date, even from a v1 record), kept here rather than in their
    /// tokens, which anyone holding them can read.
    pub births: HashMap<SubjectId, BirthFacts>,
    /// Each person's latest admission, as the person's partition recorded it.
    pub admissions: HashMap<SubjectId, AdmissionView>,
    /// Instants of recent admissions (for the measured rate).
    pub admitted_at: VecDeque<TimestampMs>,
    pub admitted_total: u64,
    pub draws: Vec<DrawView>,
    /// The operators' latest admission control and when it was recorded (none: admitting at
    /// the configured rate); the admission controller follows it.
    pub admission_control: Option<(AdmissionsControlled, TimestampMs)>,
    pub events_total: u64,
}

impl FrontView {
    pub fn apply(&mut self, envelope: &Envelope) {
        // The gateway answers for tickets from its own `tickets` and never reads the model's
        // queue-ticket rows (the projector keeps them in PostgreSQL): 115 B per person spared.
        self.model.apply_but_queue_tickets(envelope);
        self.events_total += 1;
        let at = envelope.occurred_at_ms;
        match &envelope.event {
            Event::TicketIssued(e) => {
                self.tickets.insert(
                    e.ticket,
                    TicketView {
                        subject: e.subject,
                        device: e.device.clone(),
                        issued_at_ms: at,
                        phase: TicketPhase::Waiting,
                    },
                );
                self.waiting.insert(e.ticket, e.subject);
                self.ticket_of.insert(e.subject, e.ticket);
                self.pre_queue.remove(&e.subject);
            }
            Event::TicketAdmitted(e) => {
                if let Some(t) = self.tickets.get_mut(&e.ticket) {
                    t.phase = TicketPhase::Admitted {
                        admission: e.admission,
                        expires_at_ms: e.expires_at_ms,
                    };
                }
                self.waiting.remove(&e.ticket);
                self.admitted_at.push_back(at);
                if self.admitted_at.len() > RATE_SAMPLES_MAX {
                    self.admitted_at.pop_front();
                }
                self.admitted_total += 1;
            }
            Event::TicketLeft(e) => {
                if let Some(t) = self.tickets.get_mut(&e.ticket) {
                    t.phase = TicketPhase::Left;
                }
                self.waiting.remove(&e.ticket);
            }
            Event::TicketSkipped(e) => {
                if let Some(t) = self.tickets.get_mut(&e.ticket) {
                    t.phase = TicketPhase::Skipped;
                }
                self.waiting.remove(&e.ticket);
            }
            Event::PreQueueJoined(e) => {
                self.pre_queue.insert(e.subject, e.device.clone());
            }
            Event::PreQueueDrawn(e) => self.draws.push(DrawView {
                seed: e.seed.clone(),
                drawn: e.drawn,
                at_ms: at,
            }),
            Event::AdmissionGranted(e) => {
                self.admissions.insert(
                    e.subject,
                    AdmissionView {
                        admission: e.admission,
                        ticket: e.ticket,
                        expires_at_ms: e.expires_at_ms,
                        used: false,
                    },
                );
            }
            Event::SubjectVerified(e) => {
                self.births.insert(e.subject, e.birth.facts());
            }
            Event::ReservationRecorded(e) => self.use_admission(e.subject),
            Event::ReservationChanged(e) => self.use_admission(e.subject),
            Event::AdmissionsControlled(e) => self.admission_control = Some((e.clone(), at)),
            _ => {}
        }
    }

    fn use_admission(&mut self, subject: SubjectId) {
        if let Some(a) = self.admissions.get_mut(&subject) {
            a.used = true;
        }
    }

    /// Tickets waiting ahead of `ticket`.
    pub fn position(&self, ticket: TicketNo) -> Option<usize> {
        self.waiting
            .contains_key(&ticket)
            .then(|| self.waiting.range(..ticket).count())
    }

    /// Admissions per second over the last [`RATE_WINDOW_MS`] before `now_ms`; `None` before any.
    pub fn admission_rate(&self, now_ms: TimestampMs) -> Option<f64> {
        let from = now_ms - RATE_WINDOW_MS;
        let recent: Vec<TimestampMs> = self
            .admitted_at
            .iter()
            .rev()
            .take_while(|t| **t > from)
            .copied()
            .collect();
        let oldest = *recent.last()?;
        // Over the time admissions have actually been running, at least one second.
        let span_ms = (now_ms - oldest).clamp(1_000, RATE_WINDOW_MS);
        Some(recent.len() as f64 * 1000.0 / span_ms as f64)
    }

    /// Admissions granted, not used and not expired at `now_ms`.
    pub fn admitted_live(&self, now_ms: TimestampMs) -> usize {
        self.admissions
            .values()
            .filter(|a| !a.used && now_ms < a.expires_at_ms)
            .count()
    }
}
