//! The waiting room: one partition that orders everyone who verified, and admits them in that
//! order at the rate the ledger can absorb. A person holds at most one live ticket.
//!
//! Before opening, arrivals wait in a pre-queue without tickets; the draw at opening
//! (`DrawPreQueue`, seeded from outside and recorded) gives them tickets in a random but
//! reproducible order. A ticket whose holder went silent is skipped (`SkipTicket`).
//!
//! Asking for a place again is decided here, from this partition's own state, so that every
//! gateway gets the same answer: a person holding a live ticket keeps it (`TicketKept`); one
//! whose ticket was left, skipped, expired or used (`RetireTicket`, after a booking) gets a new
//! ticket at the back.
//!
//! Not here: how fast to admit (the admission controller outside decides `tickets_max`), when
//! to draw and whom to skip (the front tier's controller decides and records it), and the
//! signing of admission tokens (the front tier's edge).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::command::CommandBody;
use super::event::*;
use super::ids::derive_uuid;
use super::subject::Context;
use super::table::Table;
use super::{
    AdmissionId, AdmitPerMin, DeviceId, Event, Rejection, RejectionCode, SubjectId, TicketNo,
    TimestampMs,
};

/// The most tickets one `Admit` may admit: a bound on the size of one decision.
pub const ADMIT_TICKETS_MAX: u32 = 10_000;

/// The draw's sort key of one person: SHA-256(seed, 0x00, subject id). Public so that an
/// auditor (and the tests) can re-run a recorded draw.
pub fn draw_key(seed: &str, subject: &SubjectId) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update([0u8]);
    hasher.update(subject.0);
    hasher.finalize().into()
}

/// The order a draw under `seed` gives the people of a pre-queue.
pub fn draw_order(seed: &str, people: impl IntoIterator<Item = SubjectId>) -> Vec<SubjectId> {
    let mut keyed: Vec<([u8; 32], SubjectId)> = people
        .into_iter()
        .map(|s| (draw_key(seed, &s), s))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, s)| s).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Waiting,
    /// Admitted; the admission is live until `expires_at_ms`.
    Admitted {
        expires_at_ms: TimestampMs,
    },
    /// Admitted, and the admission was used to book or change: done, no longer live.
    Used,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitingRoomState {
    /// The next ticket number to issue.
    pub next_ticket: u64,
    /// Tickets waiting, in order.
    pub waiting: BTreeMap<TicketNo, SubjectId>,
    /// Each person's latest ticket and its state ([`WaitingRoomState::ticket_of`]), in two
    /// tables: a person is in at most one. The live tickets (waiting or admitted) with their
    /// state; and the used ones, which everyone who booked keeps, by number only (the writer's
    /// memory per person is a benchmark target, issue 16).
    live: Table<SubjectId, (TicketNo, TicketState)>,
    used: Table<SubjectId, TicketNo>,
    pub admitted_total: u64,
    /// People waiting for the draw, with the device they joined from.
    pub pre_queue: BTreeMap<SubjectId, DeviceId>,
    /// What operators decided about admissions (`AdmissionsControlled`).
    pub control: AdmissionControl,
}

/// The operators' admission control in force: paused or not, and the rate they set (none: the
/// gateway's configured rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionControl {
    pub paused: bool,
    pub admit_per_min: Option<AdmitPerMin>,
}

impl WaitingRoomState {
    /// The person's latest ticket and its state (none once left or skipped).
    pub fn ticket_of(&self, subject: &SubjectId) -> Option<(TicketNo, TicketState)> {
        match self.live.get(subject) {
            Some(live) => Some(*live),
            None => self.used.get(subject).map(|t| (*t, TicketState::Used)),
        }
    }

    /// Every person's latest ticket and its state, in no order.
    pub fn tickets(&self) -> impl Iterator<Item = (SubjectId, (TicketNo, TicketState))> + '_ {
        let live = self.live.iter().map(|(s, t)| (*s, *t));
        live.chain(self.used.iter().map(|(s, t)| (*s, (*t, TicketState::Used))))
    }

    /// Room for `people` used tickets (a simulation that knows its crowd).
    pub fn reserve(&mut self, people: usize) {
        self.used.reserve(people);
    }

    /// Sets the person's latest ticket.
    fn set_ticket(&mut self, subject: SubjectId, ticket: TicketNo, state: TicketState) {
        if state == TicketState::Used {
            self.live.remove(&subject);
            self.used.insert(subject, ticket);
        } else {
            self.used.remove(&subject);
            self.live.insert(subject, (ticket, state));
        }
    }

    /// Forgets the person's ticket (left or skipped).
    fn remove_ticket(&mut self, subject: &SubjectId) {
        self.live.remove(subject);
        self.used.remove(subject);
    }

    /// How many tickets wait ahead of `ticket` (0 = next in line).
    pub fn position(&self, ticket: TicketNo) -> Option<usize> {
        self.waiting
            .contains_key(&ticket)
            .then(|| self.waiting.range(..ticket).count())
    }

    fn live_ticket(&self, subject: &SubjectId, now_ms: TimestampMs) -> Option<TicketNo> {
        match self.ticket_of(subject) {
            Some((t, TicketState::Waiting)) => Some(t),
            Some((t, TicketState::Admitted { expires_at_ms })) if now_ms < expires_at_ms => Some(t),
            _ => None,
        }
    }

    /// The place a person who asks for one already has: their live ticket, kept (`Some`), or
    /// none, so they may take a new one (`None`). In the pre-queue there is no ticket to give
    /// back yet: `AlreadyQueued`.
    fn place_held(
        &self,
        subject: &SubjectId,
        now_ms: TimestampMs,
    ) -> Result<Option<Event>, Rejection> {
        if self.pre_queue.contains_key(subject) {
            return Err(Rejection::new(RejectionCode::AlreadyQueued));
        }
        Ok(self.live_ticket(subject, now_ms).map(|ticket| {
            TicketKept {
                ticket,
                subject: *subject,
            }
            .into()
        }))
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
            let place = state.place_held(subject, now)?.unwrap_or_else(|| {
                TicketIssued {
                    ticket: TicketNo(state.next_ticket),
                    subject: *subject,
                    device: device.clone(),
                }
                .into()
            });
            Ok(vec![place])
        }
        CommandBody::LeaveQueue { subject, ticket } => leave(state, *subject, *ticket),
        // Paused by an operator: nobody is admitted, whatever a gateway asks.
        CommandBody::Admit { .. } if state.control.paused => Ok(vec![]),
        CommandBody::Admit {
            tickets_max,
            ttl_ms,
        } => Ok(admit(state, ctx, *tickets_max, *ttl_ms)),
        CommandBody::JoinPreQueue { subject, device } => {
            let place = state.place_held(subject, now)?.unwrap_or_else(|| {
                PreQueueJoined {
                    subject: *subject,
                    device: device.clone(),
                }
                .into()
            });
            Ok(vec![place])
        }
        // Always recorded, as the fact it is; it retires the ticket only if that is still the
        // person's admitted one (they may have left it, or hold a newer one since).
        CommandBody::RetireTicket { subject, ticket } => Ok(vec![
            TicketRetired {
                ticket: *ticket,
                subject: *subject,
            }
            .into(),
        ]),
        CommandBody::DrawPreQueue { seed } => Ok(draw(state, seed)),
        CommandBody::SkipTicket { ticket } => match state.waiting.get(ticket) {
            Some(subject) => Ok(vec![
                TicketSkipped {
                    ticket: *ticket,
                    subject: *subject,
                }
                .into(),
            ]),
            None => Err(Rejection::new(RejectionCode::NotQueued)),
        },
        // The ranges are the types' (a permille beyond 1000, an unknown level or method, a
        // malformed gateway id cannot be read off the wire), so every report is recorded. It
        // changes nothing in the waiting room: it feeds the `congestion` read model.
        CommandBody::ReportCongestion {
            gateway,
            method,
            level,
            wait_ms,
            in_flight,
            capacity,
            failure_permille,
            provider_up,
        } => Ok(vec![
            CongestionReported {
                gateway: gateway.clone(),
                method: *method,
                level: *level,
                wait_ms: *wait_ms,
                in_flight: *in_flight,
                capacity: *capacity,
                failure_permille: *failure_permille,
                provider_up: *provider_up,
            }
            .into(),
        ]),
        CommandBody::SwitchProvider {
            method,
            outage,
            operator,
        } => Ok(vec![
            ProviderSwitched {
                method: *method,
                outage: *outage,
                operator: operator.clone(),
            }
            .into(),
        ]),
        CommandBody::ControlAdmissions {
            paused,
            admit_per_min,
            operator,
        } => Ok(vec![
            AdmissionsControlled {
                paused: paused.unwrap_or(state.control.paused),
                admit_per_min: admit_per_min.or(state.control.admit_per_min),
                operator: operator.clone(),
            }
            .into(),
        ]),
        other => unreachable!(
            "command {} is not decided by the waiting room",
            other.name()
        ),
    }
}

/// Leaves the queue: a waiting ticket, or one's admitted ticket (used or not); giving an
/// admitted ticket up lets the person queue again before its admission expires.
fn leave(
    state: &WaitingRoomState,
    subject: SubjectId,
    ticket: TicketNo,
) -> Result<Vec<Event>, Rejection> {
    let admitted = matches!(
        state.ticket_of(&subject),
        Some((t, TicketState::Admitted { .. } | TicketState::Used)) if t == ticket
    );
    if state.waiting.get(&ticket) != Some(&subject) && !admitted {
        return Err(Rejection::new(RejectionCode::NotQueued));
    }
    Ok(vec![TicketLeft { ticket, subject }.into()])
}

/// Admits the first waiting tickets, at most `tickets_max` (and [`ADMIT_TICKETS_MAX`]), each
/// with an admission valid for `ttl_ms`.
fn admit(state: &WaitingRoomState, ctx: &Context, tickets_max: u32, ttl_ms: i64) -> Vec<Event> {
    let count = tickets_max.min(ADMIT_TICKETS_MAX) as usize;
    let (now, ttl) = (ctx.now_ms, ttl_ms.max(0));
    state
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
        .collect()
}

/// The opening draw: the seed is recorded and the pre-queue gets tickets in the drawn order.
fn draw(state: &WaitingRoomState, seed: &str) -> Vec<Event> {
    let order = draw_order(seed, state.pre_queue.keys().copied());
    let mut events: Vec<Event> = vec![
        PreQueueDrawn {
            seed: seed.to_owned(),
            drawn: order.len() as u32,
        }
        .into(),
    ];
    for (i, subject) in order.iter().enumerate() {
        events.push(
            TicketIssued {
                ticket: TicketNo(state.next_ticket + i as u64),
                subject: *subject,
                device: state.pre_queue[subject].clone(),
            }
            .into(),
        );
    }
    events
}

pub fn apply(state: &mut WaitingRoomState, event: &Event) {
    match event {
        Event::TicketIssued(e) => {
            debug_assert_eq!(e.ticket.0, state.next_ticket);
            state.next_ticket = e.ticket.0 + 1;
            state.waiting.insert(e.ticket, e.subject);
            state.set_ticket(e.subject, e.ticket, TicketState::Waiting);
            state.pre_queue.remove(&e.subject);
        }
        Event::TicketAdmitted(e) => {
            state.waiting.remove(&e.ticket);
            let admitted = TicketState::Admitted {
                expires_at_ms: e.expires_at_ms,
            };
            state.set_ticket(e.subject, e.ticket, admitted);
            state.admitted_total += 1;
        }
        Event::TicketLeft(e) => {
            state.waiting.remove(&e.ticket);
            state.remove_ticket(&e.subject);
        }
        Event::TicketSkipped(e) => {
            state.waiting.remove(&e.ticket);
            state.remove_ticket(&e.subject);
        }
        Event::TicketRetired(e) => {
            if let Some((ticket, TicketState::Admitted { .. })) = state.ticket_of(&e.subject) {
                if ticket == e.ticket {
                    state.set_ticket(e.subject, ticket, TicketState::Used);
                }
            }
        }
        // The person kept the ticket they had: nothing moves.
        Event::TicketKept(_) => {}
        Event::PreQueueJoined(e) => {
            state.pre_queue.insert(e.subject, e.device.clone());
        }
        Event::AdmissionsControlled(e) => {
            state.control = AdmissionControl {
                paused: e.paused,
                admit_per_min: e.admit_per_min,
            };
        }
        // A congestion report is recorded for the read models; the queue is as it was.
        Event::CongestionReported(_) | Event::ProviderSwitched(_) => {}
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Campaign;
    use uuid::Uuid;

    fn subject(n: u8) -> SubjectId {
        SubjectId([n; 16])
    }

    fn run(state: &mut WaitingRoomState, body: CommandBody) -> Result<Vec<Event>, Rejection> {
        let campaign = Campaign::default_2021();
        let ctx = Context {
            campaign: &campaign,
            command_id: Uuid::nil(),
            now_ms: 1_000,
        };
        let events = decide(state, &body, &ctx)?;
        events.iter().for_each(|e| apply(state, e));
        Ok(events)
    }

    fn device() -> DeviceId {
        DeviceId::new("pc").unwrap()
    }

    #[test]
    fn the_draw_orders_the_pre_queue_by_its_seed_behind_the_waiting_tickets() {
        let mut state = WaitingRoomState::default();
        run(
            &mut state,
            CommandBody::Enqueue {
                subject: subject(100),
                device: device(),
            },
        )
        .unwrap();
        for n in 0..20 {
            run(
                &mut state,
                CommandBody::JoinPreQueue {
                    subject: subject(n),
                    device: device(),
                },
            )
            .unwrap();
        }
        let again = run(
            &mut state,
            CommandBody::JoinPreQueue {
                subject: subject(3),
                device: device(),
            },
        );
        assert_eq!(again.unwrap_err().code, RejectionCode::AlreadyQueued);
        let queued = run(
            &mut state,
            CommandBody::Enqueue {
                subject: subject(3),
                device: device(),
            },
        );
        assert_eq!(queued.unwrap_err().code, RejectionCode::AlreadyQueued);

        let events = run(
            &mut state,
            CommandBody::DrawPreQueue {
                seed: "published-seed".into(),
            },
        )
        .unwrap();
        assert_eq!(
            events[0],
            Event::from(PreQueueDrawn {
                seed: "published-seed".into(),
                drawn: 20
            })
        );
        let issued: Vec<(u64, SubjectId)> = events[1..]
            .iter()
            .map(|e| match e {
                Event::TicketIssued(t) => (t.ticket.0, t.subject),
                other => panic!("{other:?}"),
            })
            .collect();
        let expected = draw_order("published-seed", (0..20).map(subject));
        assert_eq!(issued.iter().map(|(_, s)| *s).collect::<Vec<_>>(), expected);
        assert_eq!(
            issued.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            (1..21).collect::<Vec<_>>()
        );
        // Another seed gives another order: the draw depends on it.
        assert_ne!(draw_order("another-seed", (0..20).map(subject)), expected);
        assert!(state.pre_queue.is_empty());
        assert_eq!(state.position(TicketNo(0)), Some(0));
        // An empty draw is recorded too and issues nothing.
        let empty = run(&mut state, CommandBody::DrawPreQueue { seed: "s2".into() }).unwrap();
        assert_eq!(empty.len(), 1);
    }

    #[test]
    fn a_congestion_report_is_recorded_as_sent_and_leaves_the_queue_as_it_was() {
        let mut state = WaitingRoomState::default();
        run(
            &mut state,
            CommandBody::Enqueue {
                subject: subject(1),
                device: device(),
            },
        )
        .unwrap();
        let before = state.clone();
        let report = CommandBody::ReportCongestion {
            gateway: crate::GatewayId::new("gw-1").unwrap(),
            method: crate::Method::Kakao,
            level: crate::CongestionLevel::Red,
            wait_ms: 7_500,
            in_flight: 120,
            capacity: 100,
            failure_permille: crate::Permille::new(25).unwrap(),
            provider_up: true,
        };
        let events = run(&mut state, report).unwrap();
        assert_eq!(
            events,
            vec![Event::from(CongestionReported {
                gateway: crate::GatewayId::new("gw-1").unwrap(),
                method: crate::Method::Kakao,
                level: crate::CongestionLevel::Red,
                wait_ms: 7_500,
                in_flight: 120,
                capacity: 100,
                failure_permille: crate::Permille::new(25).unwrap(),
                provider_up: true,
            })]
        );
        assert_eq!(state, before);
        // Out-of-range values never reach the decision: the wire refuses them.
        assert!(crate::Permille::new(1001).is_none());
        let json = r#"{"type":"report_congestion","gateway":"gw-1","method":"kakao","level":"red","wait_ms":1,"in_flight":0,"capacity":1,"failure_permille":1001,"provider_up":true}"#;
        assert!(serde_json::from_str::<CommandBody>(json).is_err());
        let json = json.replace("1001", "1000");
        assert!(serde_json::from_str::<CommandBody>(&json).is_ok());
        let json = json.replace("\"red\"", "\"purple\"");
        assert!(serde_json::from_str::<CommandBody>(&json).is_err());
    }

    fn enqueue(state: &mut WaitingRoomState, n: u8) -> Event {
        let events = run(
            state,
            CommandBody::Enqueue {
                subject: subject(n),
                device: device(),
            },
        )
        .unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        events[0].clone()
    }

    fn issued(ticket: u64, n: u8) -> Event {
        Event::from(TicketIssued {
            ticket: TicketNo(ticket),
            subject: subject(n),
            device: device(),
        })
    }

    fn kept(ticket: u64, n: u8) -> Event {
        Event::from(TicketKept {
            ticket: TicketNo(ticket),
            subject: subject(n),
        })
    }

    #[test]
    fn asking_again_keeps_a_live_ticket_and_a_done_one_gives_way_to_a_new_one_at_the_back() {
        let mut state = WaitingRoomState::default();
        assert_eq!(enqueue(&mut state, 1), issued(0, 1));
        assert_eq!(
            enqueue(&mut state, 1),
            kept(0, 1),
            "a refresh keeps the place"
        );
        assert_eq!(enqueue(&mut state, 2), issued(1, 2));
        let leave = CommandBody::LeaveQueue {
            subject: subject(1),
            ticket: TicketNo(0),
        };
        run(&mut state, leave).unwrap();
        assert_eq!(enqueue(&mut state, 1), issued(2, 1), "left: a new ticket");
        assert_eq!(state.position(TicketNo(2)), Some(1), "at the back");

        let admit = CommandBody::Admit {
            tickets_max: 1,
            ttl_ms: 60_000,
        };
        run(&mut state, admit).unwrap();
        assert_eq!(enqueue(&mut state, 2), kept(1, 2), "admitted, not used");
        let retire = CommandBody::RetireTicket {
            subject: subject(2),
            ticket: TicketNo(1),
        };
        run(&mut state, retire.clone()).unwrap();
        assert_eq!(enqueue(&mut state, 2), issued(3, 2), "used: a new ticket");
        // A late retirement of the old ticket leaves the new one alone.
        run(&mut state, retire).unwrap();
        assert_eq!(enqueue(&mut state, 2), kept(3, 2));

        let expiring = CommandBody::Admit {
            tickets_max: 1,
            ttl_ms: 0,
        };
        run(&mut state, expiring).unwrap();
        assert_eq!(
            enqueue(&mut state, 1),
            issued(4, 1),
            "expired: a new ticket"
        );
    }

    #[test]
    fn a_skipped_ticket_frees_its_place_and_its_holder_may_queue_again() {
        let mut state = WaitingRoomState::default();
        for n in 0..3 {
            run(
                &mut state,
                CommandBody::Enqueue {
                    subject: subject(n),
                    device: device(),
                },
            )
            .unwrap();
        }
        let skipped = run(
            &mut state,
            CommandBody::SkipTicket {
                ticket: TicketNo(1),
            },
        )
        .unwrap();
        assert_eq!(
            skipped,
            vec![Event::from(TicketSkipped {
                ticket: TicketNo(1),
                subject: subject(1)
            })]
        );
        assert_eq!(state.position(TicketNo(2)), Some(1));
        let twice = run(
            &mut state,
            CommandBody::SkipTicket {
                ticket: TicketNo(1),
            },
        );
        assert_eq!(twice.unwrap_err().code, RejectionCode::NotQueued);
        run(
            &mut state,
            CommandBody::Enqueue {
                subject: subject(1),
                device: device(),
            },
        )
        .unwrap();
        assert_eq!(state.position(TicketNo(3)), Some(2));
    }
}
