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

/// Rates below this are taken as this (tickets/s): a paused controller gives long ETAs, not
/// infinite ones.
const MIN_RATE: f64 = 0.001;

/// The slow end of an ETA's range: the expected rate times this (the controller may slow down
/// when the ledger does).
pub const ETA_SLOW_MARGIN: f64 = 0.8;

impl Front {
    /// How soon a waiting page should ask again: a tenth of the shortest wait it may have, so
    /// the back of a long queue asks seldom and its front often.
    pub fn poll_after_ms(&self, eta_low_s: i64) -> u64 {
        (eta_low_s.max(0) as u64 * 100).clamp(POLL_AFTER_MIN_MS, self.poll_after_max_ms())
    }

    /// The longest a waiting page may go without asking (a poll is the owner's heartbeat).
    pub fn poll_after_max_ms(&self) -> u64 {
        (self.config.heartbeat_timeout_ms / 3).clamp(POLL_AFTER_MIN_MS, POLL_AFTER_MAX_MS)
    }

    /// The outflow the controller aims at now (its target, already slowed down while the
    /// ledger answers slowly), and the rate people can expect: the target, or what the
    /// controller achieved while people were waiting when that was less (admissions held back
    /// by the cap on live ones; a tick that admits nobody while it earns the next admission
    /// achieves the rate, see `controller::achieved_per_s`). Not the last minute's admissions:
    /// before a burst they count the quiet minute too (the first ETA of a burst was 99 s for a
    /// wait of 15 s).
    pub fn expected_rates(&self) -> (f64, f64) {
        let target = self
            .admit_rate
            .lock()
            .map(|r| *r)
            .unwrap_or(self.config.admit_per_s)
            .max(MIN_RATE);
        let achieved = self.admitted_while_waiting.lock().ok().and_then(|a| *a);
        let expected = achieved.map_or(target, |a| a.min(target)).max(MIN_RATE);
        (target, expected)
    }

    /// An honest ETA for `ahead` people in front: seconds until opening plus the time the
    /// expected rate needs for those the controller has not yet earned admissions for. Its
    /// budget counts whole (a fraction of an admission included): at a few admissions a
    /// minute, a budget of 0.7 is the next admission 0.3 of an interval away, not a whole one.
    /// The range: from the target rate to the expected rate slowed by [`ETA_SLOW_MARGIN`],
    /// plus a tick.
    pub fn eta(&self, ahead: usize, now_ms: TimestampMs) -> (i64, [i64; 2]) {
        let (target, expected) = self.expected_rates();
        let until_open = self
            .config
            .opens_at_ms
            .map_or(0.0, |o| ((o - now_ms).max(0)) as f64 / 1000.0);
        let earned = self.admit_budget.lock().map_or(0.0, |b| b.max(0.0));
        let tick_s = self.config.controller_tick_ms as f64 / 1000.0;
        eta_of(ahead, earned, (target, expected), until_open, tick_s)
    }
}

/// The ETA and its range for `ahead` people in front, `earned` admissions in the controller's
/// budget, its `target` and `expected` rates, `until_open` seconds and a tick of `tick_s`.
fn eta_of(
    ahead: usize,
    earned: f64,
    (target, expected): (f64, f64),
    until_open: f64,
    tick_s: f64,
) -> (i64, [i64; 2]) {
    let after = (ahead as f64 + 1.0 - earned).max(0.0);
    let eta = until_open + after / expected;
    let low = until_open + after / target;
    let high = until_open + after / (expected * ETA_SLOW_MARGIN) + tick_s;
    (eta.ceil() as i64, [low.floor() as i64, high.ceil() as i64])
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
            body["state"] = json!("waiting");
            body["position"] = json!(position);
            if admissions_paused(view) {
                // Nobody is admitted until an operator resumes: no ETA rather than a false one.
                body["admissions_paused"] = json!(true);
                body["eta_s"] = Value::Null;
                body["poll_after_ms"] = json!(front.poll_after_max_ms());
            } else {
                let (eta, range) = front.eta(position, now);
                body["admissions_paused"] = json!(false);
                body["eta_s"] = json!(eta);
                body["eta_range_s"] = json!(range);
                body["poll_after_ms"] = json!(front.poll_after_ms(range[0]));
            }
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

/// An operator paused admissions (the latest `AdmissionsControlled` in the log).
pub fn admissions_paused(view: &FrontView) -> bool {
    view.admission_control
        .as_ref()
        .is_some_and(|(control, _)| control.paused)
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
    let (eta, range) = front.eta(ahead, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget of 0.75 admission is the next one a quarter of an interval away: at one
    /// admission every 8 s the one in front waits 2 s, not 8.
    #[test]
    fn the_budget_earned_so_far_shortens_the_wait() {
        let rates = (0.125, 0.125);
        assert_eq!(eta_of(0, 0.75, rates, 0.0, 1.0).0, 2);
        assert_eq!(eta_of(9, 0.75, rates, 0.0, 1.0).0, 74);
        assert_eq!(
            eta_of(0, 1.0, rates, 0.0, 1.0).0,
            0,
            "admitted at the next tick"
        );
        assert_eq!(eta_of(0, 0.0, rates, 60.0, 1.0), (68, [68, 71]));
    }
}
