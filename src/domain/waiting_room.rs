//! The waiting room: one partition that orders everyone who verified, and admits them in that
//! order at the rate the ledger can absorb. A person holds at most one live ticket.
//!
//! Not here: how fast to admit (the admission controller outside decides `tickets_max`), and
//! the signing of admission tokens (the front tier's edge).

use std::collections::{BTreeMap, HashMap};

use super::command::CommandBody;
use super::event::*;
use super::ids::derive_uuid;
use super::subject::Context;
use super::{AdmissionId, Event, Rejection, RejectionCode, SubjectId, TicketNo, TimestampMs};

/// The most tickets one `Admit` may admit: a bound on the size of one decision.
pub const ADMIT_TICKETS_MAX: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Waiting,
    /// Admitted; the admission is live until `expires_at_ms`.
    Admitted {
        expires_at_ms: TimestampMs,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitingRoomState {
    /// The next ticket number to issue.
    pub next_ticket: u64,
    /// Tickets waiting, in order.
    pub waiting: BTreeMap<TicketNo, SubjectId>,
    /// Each person's latest ticket and its state.
    pub tickets: HashMap<SubjectId, (TicketNo, TicketState)>,
    pub admitted_total: u64,
}

impl WaitingRoomState {
    /// How many tickets wait ahead of `ticket` (0 = next in line).
    pub fn position(&self, ticket: TicketNo) -> Option<usize> {
        self.waiting
            .contains_key(&ticket)
            .then(|| self.waiting.range(..ticket).count())
    }

    fn live_ticket(&self, subject: &SubjectId, now_ms: TimestampMs) -> Option<TicketNo> {
        match self.tickets.get(subject) {
            Some((t, TicketState::Waiting)) => Some(*t),
            Some((t, TicketState::Admitted { expires_at_ms })) if now_ms < *expires_at_ms => {
                Some(*t)
            }
            _ => None,
        }
    }
}

pub fn decide(
    state: &WaitingRoomState,
    command: &CommandBody,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    let now = ctx.now_ms;
    match command {
        CommandBody::Enqueue { subject, device } => {
            if state.live_ticket(subject, now).is_some() {
                return Err(Rejection::new(RejectionCode::AlreadyQueued));
            }
            Ok(vec![
                TicketIssued {
                    ticket: TicketNo(state.next_ticket),
                    subject: *subject,
                    device: device.clone(),
                }
                .into(),
            ])
        }
        CommandBody::LeaveQueue { subject, ticket } => {
            if state.waiting.get(ticket) != Some(subject) {
                return Err(Rejection::new(RejectionCode::NotQueued));
            }
            Ok(vec![
                TicketLeft {
                    ticket: *ticket,
                    subject: *subject,
                }
                .into(),
            ])
        }
        CommandBody::Admit {
            tickets_max,
            ttl_ms,
        } => {
            let count = (*tickets_max).min(ADMIT_TICKETS_MAX) as usize;
            let ttl = (*ttl_ms).max(0);
            Ok(state
                .waiting
                .iter()
                .take(count)
                .map(|(ticket, subject)| {
                    TicketAdmitted {
                        ticket: *ticket,
                        subject: *subject,
                        admission: AdmissionId(derive_uuid(
                            ctx.command_id,
                            &format!("admission/{}", ticket.0),
                            now,
                        )),
                        expires_at_ms: now + ttl,
                    }
                    .into()
                })
                .collect())
        }
        other => unreachable!(
            "command {} is not decided by the waiting room",
            other.name()
        ),
    }
}

pub fn apply(state: &mut WaitingRoomState, event: &Event) {
    match event {
        Event::TicketIssued(e) => {
            debug_assert_eq!(e.ticket.0, state.next_ticket);
            state.next_ticket = e.ticket.0 + 1;
            state.waiting.insert(e.ticket, e.subject);
            state
                .tickets
                .insert(e.subject, (e.ticket, TicketState::Waiting));
        }
        Event::TicketAdmitted(e) => {
            state.waiting.remove(&e.ticket);
            state.tickets.insert(
                e.subject,
                (
                    e.ticket,
                    TicketState::Admitted {
                        expires_at_ms: e.expires_at_ms,
                    },
                ),
            );
            state.admitted_total += 1;
        }
        Event::TicketLeft(e) => {
            state.waiting.remove(&e.ticket);
            state.tickets.remove(&e.subject);
        }
        _ => {}
    }
}
