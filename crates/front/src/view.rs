//! What a gateway reads: the read model (slot quota, clinics, reservations) plus the waiting
//! room as the front tier needs it (who holds which ticket, admissions, the pre-queue, the
//! measured admission rate). A fold of the event log, fed by the backend in log order per
//! partition; it can always be rebuilt, so it is never the authority on any rule.

use std::collections::{BTreeMap, HashMap, VecDeque};

use yeyak_domain::event::AdmissionsControlled;
use yeyak_domain::{
    AdmissionId, BirthFacts, DeviceId, Envelope, Event, Method, ReservationId, SubjectId, TicketNo,
    TimestampMs,
};
use yeyak_read::projection::{ReadModel, ReservationState};

/// The window over which the admission rate is measured.
pub const RATE_WINDOW_MS: i64 = 60_000;
/// Admissions remembered for the rate, at most.
pub const RATE_SAMPLES_MAX: usize = 100_000;

/// What the view forgets once nobody can ask for it any more, and when: a finished ticket (left,
/// skipped, or admitted and past its admission's end) and a verification's birth facts, `after_ms`
/// later. A gateway arms it with the longest a token can live after the verification that
/// started it (the session's lifetime, plus an admission's for one granted at its last moment):
/// a ticket is taken after the verification, so no live token can ask for what is forgotten (an
/// older session must verify again, which records the facts anew). A request for a forgotten
/// ticket is answered as for an unknown one. Unarmed (`FrontView::default`), nothing is
/// forgotten.
#[derive(Debug, Default)]
pub struct Retention {
    after_ms: Option<TimestampMs>,
    /// What falls due when, in the order it was recorded: due instants increase but for the
    /// admission's length (an admitted ticket is due at its end), so something is forgotten at
    /// most that much late.
    due: VecDeque<(TimestampMs, Forget)>,
}

#[derive(Debug, Clone, Copy)]
enum Forget {
    Ticket(TicketNo),
    Birth(SubjectId),
}

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
    /// Each person's active reservation (`GET /v1/reservations/me` looks it up here, not by
    /// walking every reservation).
    pub reservation_of: HashMap<SubjectId, ReservationId>,
    pub pre_queue: BTreeMap<SubjectId, DeviceId>,
    /// What each verified person's booking day and eligibility depend on (their birth year and
    /// cohort digit, never the date, even from a v1 record), kept here rather than in their
    /// tokens, which anyone holding them can read; with when they were recorded.
    pub births: HashMap<SubjectId, (BirthFacts, TimestampMs)>,
    /// Each person's latest admission, as the person's partition recorded it.
    pub admissions: HashMap<SubjectId, AdmissionView>,
    /// Instants of recent admissions (for the measured rate).
    pub admitted_at: VecDeque<TimestampMs>,
    pub admitted_total: u64,
    pub draws: Vec<DrawView>,
    /// The operators' latest admission control and when it was recorded (none: admitting at
    /// the configured rate); the admission controller follows it.
    pub admission_control: Option<(AdmissionsControlled, TimestampMs)>,
    /// The operators' latest switch of each method's provider (`ProviderSwitched`: true, down):
    /// every gateway follows it, and so does one restarted.
    pub provider_outages: BTreeMap<Method, bool>,
    pub events_total: u64,
    pub retention: Retention,
}

impl FrontView {
    /// Forget finished tickets and old birth facts `after_ms` after they can last be asked for
    /// (see [`Retention`]); what is already due goes at the next event.
    /// What the view holds already (a log replayed before it was armed) falls due as if it had
    /// been armed all along; a ticket that ended without an admission, from its issue (its
    /// session began before it).
    pub fn retain_for(&mut self, after_ms: TimestampMs) {
        let after = after_ms.max(0);
        self.retention.after_ms = Some(after);
        let tickets = self.tickets.iter().filter_map(|(n, t)| match t.phase {
            TicketPhase::Waiting => None,
            TicketPhase::Admitted { expires_at_ms, .. } => {
                Some((expires_at_ms, Forget::Ticket(*n)))
            }
            TicketPhase::Left | TicketPhase::Skipped => Some((t.issued_at_ms, Forget::Ticket(*n))),
        });
        let births = self
            .births
            .iter()
            .map(|(s, (_, at))| (*at, Forget::Birth(*s)));
        let mut due: Vec<(TimestampMs, Forget)> = tickets
            .chain(births)
            .map(|(at, what)| (at.saturating_add(after), what))
            .chain(self.retention.due.drain(..))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        self.retention.due = due.into();
    }

    /// The birth facts of a person who verified (and has not been forgotten).
    pub fn birth(&self, subject: &SubjectId) -> Option<BirthFacts> {
        self.births.get(subject).map(|(facts, _)| *facts)
    }

    pub fn apply(&mut self, envelope: &Envelope) {
        self.forget_due(envelope.occurred_at_ms);
        self.fold(envelope);
    }

    fn fold(&mut self, envelope: &Envelope) {
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
                self.retire_at(e.expires_at_ms, Forget::Ticket(e.ticket));
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
                self.retire_at(at, Forget::Ticket(e.ticket));
            }
            Event::TicketSkipped(e) => {
                if let Some(t) = self.tickets.get_mut(&e.ticket) {
                    t.phase = TicketPhase::Skipped;
                }
                self.waiting.remove(&e.ticket);
                self.retire_at(at, Forget::Ticket(e.ticket));
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
                self.births.insert(e.subject, (e.birth.facts(), at));
                self.retire_at(at, Forget::Birth(e.subject));
            }
            Event::ReservationRecorded(e) => {
                self.use_admission(e.subject);
                self.index_reservation(e.reservation);
            }
            Event::ReservationChanged(e) => {
                self.use_admission(e.subject);
                self.index_reservation(e.replaces);
                self.index_reservation(e.reservation);
            }
            Event::ReservationCancelled(e) => self.index_reservation(e.reservation),
            Event::AdmissionsControlled(e) => self.admission_control = Some((e.clone(), at)),
            Event::ProviderSwitched(e) => {
                self.provider_outages.insert(e.method, e.outage);
            }
            _ => {}
        }
    }

    /// Keeps `reservation_of` in step with the model's row of `id`: its person's entry while
    /// it is active, none once it ended (unless another one of theirs took its place).
    fn index_reservation(&mut self, id: ReservationId) {
        let Some(row) = self.model.reservations.get(&id) else {
            return;
        };
        if row.state == ReservationState::Active {
            self.reservation_of.insert(row.subject, id);
        } else if self.reservation_of.get(&row.subject) == Some(&id) {
            self.reservation_of.remove(&row.subject);
        }
    }

    /// Records that `what` can last be asked for at `at_ms` (when retention is armed).
    fn retire_at(&mut self, at_ms: TimestampMs, what: Forget) {
        if let Some(after) = self.retention.after_ms {
            self.retention
                .due
                .push_back((at_ms.saturating_add(after), what));
        }
    }

    /// Forgets what fell due by `now_ms`: a ticket that is finished (never a waiting one, nor an
    /// admission still live), with its person's latest-ticket and admission entries if they
    /// are its own; birth facts not recorded again since.
    fn forget_due(&mut self, now_ms: TimestampMs) {
        while let Some(&(due, what)) = self.retention.due.front() {
            if due > now_ms {
                break;
            }
            self.retention.due.pop_front();
            match what {
                Forget::Ticket(ticket) => self.forget_ticket(ticket, now_ms),
                Forget::Birth(subject) => {
                    let after = self.retention.after_ms.unwrap_or(0);
                    if self
                        .births
                        .get(&subject)
                        .is_some_and(|(_, at)| at.saturating_add(after) <= now_ms)
                    {
                        self.births.remove(&subject);
                    }
                }
            }
        }
    }

    fn forget_ticket(&mut self, ticket: TicketNo, now_ms: TimestampMs) {
        let finished = self.tickets.get(&ticket).is_some_and(|t| match t.phase {
            TicketPhase::Waiting => false,
            TicketPhase::Admitted { expires_at_ms, .. } => expires_at_ms <= now_ms,
            TicketPhase::Left | TicketPhase::Skipped => true,
        });
        if !finished {
            return;
        }
        let Some(t) = self.tickets.remove(&ticket) else {
            return;
        };
        if self.ticket_of.get(&t.subject) == Some(&ticket) {
            self.ticket_of.remove(&t.subject);
        }
        if self
            .admissions
            .get(&t.subject)
            .is_some_and(|a| a.ticket == ticket)
        {
            self.admissions.remove(&t.subject);
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

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use yeyak_domain::{
        BirthDate, Method,
        event::{SubjectVerified, TicketAdmitted, TicketIssued, TicketLeft},
    };

    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn at(view: &mut FrontView, at_ms: TimestampMs, event: impl Into<Event>) {
        view.apply(&Envelope {
            event_id: Uuid::nil(),
            command_id: Uuid::nil(),
            schema_version: 1,
            occurred_at_ms: at_ms,
            partition_key: "waiting-room".to_owned(),
            event: event.into(),
        });
    }

    fn person(n: u8) -> SubjectId {
        SubjectId([n; 16])
    }

    fn issued(view: &mut FrontView, at_ms: TimestampMs, ticket: u64, n: u8) {
        let device = DeviceId::new("phone").expect("a device id");
        let (subject, ticket) = (person(n), TicketNo(ticket));
        at(
            view,
            at_ms,
            TicketIssued {
                ticket,
                subject,
                device,
            },
        );
    }

    fn verified(view: &mut FrontView, at_ms: TimestampMs, n: u8) {
        let birth = BirthDate::Minimal(BirthFacts {
            year: 1990,
            cohort_digit: 9,
        });
        let device = DeviceId::new("phone").expect("a device id");
        let (subject, method) = (person(n), Method::Phone);
        let next_verify_at_ms = at_ms;
        at(
            view,
            at_ms,
            SubjectVerified {
                subject,
                method,
                device,
                birth,
                next_verify_at_ms,
            },
        );
    }

    /// A left ticket and an admitted one are answered for an hour after they end, then
    /// forgotten with their person's entries; a waiting ticket never is.
    #[test]
    fn finished_tickets_are_forgotten_an_hour_after_they_end() {
        let mut view = FrontView::default();
        view.retain_for(HOUR_MS);
        issued(&mut view, 0, 1, 1);
        issued(&mut view, 0, 2, 2);
        issued(&mut view, 0, 3, 3);
        at(
            &mut view,
            10,
            TicketLeft {
                ticket: TicketNo(1),
                subject: person(1),
            },
        );
        let admission = AdmissionId(Uuid::from_u128(7));
        let (ticket, subject, expires_at_ms) = (TicketNo(2), person(2), 600_000);
        at(
            &mut view,
            20,
            TicketAdmitted {
                ticket,
                subject,
                admission,
                expires_at_ms,
            },
        );
        verified(&mut view, HOUR_MS, 9);
        assert_eq!(view.tickets.len(), 3, "nothing is due yet");
        verified(&mut view, HOUR_MS + 10, 9);
        assert!(!view.tickets.contains_key(&TicketNo(1)), "left an hour ago");
        assert!(!view.ticket_of.contains_key(&person(1)));
        assert!(
            view.tickets.contains_key(&TicketNo(2)),
            "its admission ended 50 min ago"
        );
        verified(&mut view, 600_000 + HOUR_MS, 9);
        assert!(!view.tickets.contains_key(&TicketNo(2)));
        assert!(!view.admissions.contains_key(&person(2)));
        verified(&mut view, 100 * HOUR_MS, 9);
        assert!(view.tickets.contains_key(&TicketNo(3)), "still waiting");
        assert_eq!(view.ticket_of.get(&person(3)), Some(&TicketNo(3)));
    }

    /// Birth facts go an hour after the verification that recorded them, unless the person
    /// verified again since; unarmed, the view forgets nothing.
    #[test]
    fn birth_facts_are_kept_an_hour_after_the_last_verification() {
        let mut view = FrontView::default();
        view.retain_for(HOUR_MS);
        verified(&mut view, 0, 1);
        verified(&mut view, 0, 2);
        verified(&mut view, HOUR_MS / 2, 2);
        verified(&mut view, HOUR_MS, 3);
        assert!(view.birth(&person(1)).is_none());
        assert!(
            view.birth(&person(2)).is_some(),
            "verified again half an hour ago"
        );
        verified(&mut view, 2 * HOUR_MS, 3);
        assert!(view.birth(&person(2)).is_none());

        let mut armed_late = FrontView::default();
        verified(&mut armed_late, 0, 1);
        issued(&mut armed_late, 0, 1, 1);
        at(
            &mut armed_late,
            10,
            TicketLeft {
                ticket: TicketNo(1),
                subject: person(1),
            },
        );
        armed_late.retain_for(HOUR_MS);
        verified(&mut armed_late, 2 * HOUR_MS, 2);
        assert!(
            armed_late.birth(&person(1)).is_none(),
            "a replayed log is forgotten too"
        );
        assert!(!armed_late.tickets.contains_key(&TicketNo(1)));

        let mut unarmed = FrontView::default();
        verified(&mut unarmed, 0, 1);
        issued(&mut unarmed, 0, 1, 1);
        at(
            &mut unarmed,
            10,
            TicketLeft {
                ticket: TicketNo(1),
                subject: person(1),
            },
        );
        verified(&mut unarmed, 1000 * HOUR_MS, 2);
        assert!(unarmed.birth(&person(1)).is_some());
        assert!(unarmed.tickets.contains_key(&TicketNo(1)));
    }
}
