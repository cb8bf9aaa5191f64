//! A place in the waiting room as its page shows it: the ticket's state, position and an
//! honest ETA, how soon to ask again (`poll_after_ms`), and, to its owner only, the admission
//! token; or, before the draw at opening, the place in the pre-queue.

use serde_json::{Value, json};
use yeyak_domain::{AdmissionId, TicketNo, TimestampMs};

use super::gateway::Front;
use crate::clock::rfc3339;
use crate::tokens::{Claims, TokenKind};
use crate::view::{FrontView, TicketPhase, TicketView};

/// A waiting page that polls asks again after this much at least...
pub const POLL_AFTER_MIN_MS: u64 = 1_000;
/// ...and at most (also never more than a third of the heartbeat timeout: a poll is the
/// owner's heartbeat).
pub const POLL_AFTER_MAX_MS: u64 = 15_000;

impl Front {
    /// How soon a waiting page should ask again: a tenth of the shortest wait it may have, so
    /// the back of a long queue asks seldom and its front often.
    pub fn poll_after_ms(&self, eta_low_s: i64) -> u64 {
        let ceiling =
            (self.config.heartbeat_timeout_ms / 3).clamp(POLL_AFTER_MIN_MS, POLL_AFTER_MAX_MS);
        (eta_low_s.max(0) as u64 * 100).clamp(POLL_AFTER_MIN_MS, ceiling)
    }

    /// The admission rate people can expect: measured if admissions ran lately, otherwise the
    /// controller's current outflow rate.
    pub fn expected_rate(&self, view: &FrontView, now_ms: TimestampMs) -> f64 {
        let configured = self
            .admit_rate
            .lock()
            .map(|r| *r)
            .unwrap_or(self.config.admit_per_s);
        view.admission_rate(now_ms)
            .filter(|r| *r > 0.0)
            .unwrap_or(configured)
            .max(0.001)
    }

    /// An honest ETA for `ahead` people in front: seconds until opening plus the time the
    /// measured rate needs, with a range of +-25% on the rate.
    pub fn eta(&self, view: &FrontView, ahead: usize, now_ms: TimestampMs) -> (i64, [i64; 2]) {
        let rate = self.expected_rate(view, now_ms);
        let until_open = self
            .config
            .opens_at_ms
            .map_or(0.0, |o| ((o - now_ms).max(0)) as f64 / 1000.0);
        let people = ahead as f64 + 1.0;
        let eta = until_open + people / rate;
        let low = until_open + people / (rate * 1.25);
        let high = until_open + people / (rate * 0.75);
        (eta.ceil() as i64, [low.floor() as i64, high.ceil() as i64])
    }
}

/// The ticket as `owner` (the caller's session, if any) may see it; `None` if the view does
/// not know it.
pub fn ticket_body(
    front: &Front,
    view: &FrontView,
    ticket: TicketNo,
    owner: Option<&Claims>,
    now: TimestampMs,
) -> Option<Value> {
    let t = view.tickets.get(&ticket)?;
    let mut body = json!({"ticket": ticket.0});
    match t.phase {
        TicketPhase::Waiting => {
            let position = view.position(ticket).unwrap_or(0);
            let (eta, range) = front.eta(view, position, now);
            body["state"] = json!("waiting");
            body["position"] = json!(position);
            body["eta_s"] = json!(eta);
            body["eta_range_s"] = json!(range);
            body["poll_after_ms"] = json!(front.poll_after_ms(range[0]));
        }
        TicketPhase::Admitted {
            admission,
            expires_at_ms,
        } => {
            let admitted = Admitted {
                ticket,
                admission,
                expires_at_ms,
            };
            admitted.fill(&mut body, front, view, t, owner, now);
        }
        TicketPhase::Left | TicketPhase::Skipped => {
            body["state"] = json!("expired");
            body["reason"] = json!(if t.phase == TicketPhase::Left {
                "left"
            } else {
                "skipped"
            });
            body["position"] = Value::Null;
            body["eta_s"] = Value::Null;
        }
    }
    Some(body)
}

/// An admitted ticket: its admission and until when it is valid.
struct Admitted {
    ticket: TicketNo,
    admission: AdmissionId,
    expires_at_ms: TimestampMs,
}

impl Admitted {
    /// An admission that expired unused reads `expired`; a used one stays `admitted`, marked
    /// `used`. Only the owner, while it is live, gets the admission token.
    fn fill(
        &self,
        body: &mut Value,
        front: &Front,
        view: &FrontView,
        t: &TicketView,
        owner: Option<&Claims>,
        now: TimestampMs,
    ) {
        let used = view
            .admissions
            .get(&t.subject)
            .is_some_and(|a| a.admission == self.admission && a.used);
        let expired = now >= self.expires_at_ms;
        body["state"] = json!(if expired && !used {
            "expired"
        } else {
            "admitted"
        });
        body["position"] = json!(0);
        body["eta_s"] = json!(0);
        body["expires_at"] = json!(rfc3339(self.expires_at_ms));
        // What is left of the admission by the server's clock: a page counts it down with its
        // own, whatever its date (a rehearsal's clock is not the browser's). Rounded up, so a
        // page's countdown never ends before the admission does: once it has, asking for a
        // place gives a new one, not the admission just run out.
        body["expires_in_s"] = json!(((self.expires_at_ms - now).max(0) + 999) / 1000);
        if used {
            body["used"] = json!(true);
        }
        if let Some(claims) = owner.filter(|c| c.sub == t.subject && !expired && !used) {
            body["admission_token"] = json!(front.keys.sign(&self.token(claims)));
        }
    }

    /// The admission token: the owner's session claims, bound to this admission.
    fn token(&self, session: &Claims) -> Claims {
        Claims {
            kind: TokenKind::Admission,
            sub: session.sub,
            dev: session.dev.clone(),
            exp: self.expires_at_ms,
            adm: Some(self.admission),
            tkt: Some(self.ticket),
        }
    }
}

/// A place in the pre-queue: no ticket before the draw; everyone in it and every waiting
/// ticket counts as ahead.
pub fn pre_queue_body(front: &Front, view: &FrontView, now: TimestampMs) -> Value {
    let ahead = view.pre_queue.len().saturating_sub(1) + view.waiting.len();
    let (eta, range) = front.eta(view, ahead, now);
    json!({
        "ticket": null,
        "state": "waiting",
        "pre_queue": true,
        "position": ahead,
        "eta_s": eta,
        "eta_range_s": range,
        "poll_after_ms": front.poll_after_ms(range[0]),
        "opens_at": front.config.opens_at_ms.map(rfc3339),
    })
}
