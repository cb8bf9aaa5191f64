//! Whose day it is: `GET /v1/schedule` (what is open now and what opens next, for everyone),
//! and, for one verified person, whether they may book now and, if not, when or why not
//! (answered with their verification, and checked again before they may queue). Every answer
//! is the campaign calendar's (`yeyak_domain::Campaign::may_book`, the rules `decide` applies
//! to a booking); times are in the campaign's local time (Korea time), so the page shows them
//! as they are.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};
use yeyak_domain::{BirthFacts, Campaign, Opening, SubjectId, TimestampMs};

use super::gateway::Front;
use super::refusal::Refusal;
use super::{AppState, ok};
use crate::view::FrontView;

/// One opening: a booking day with its digit, or the change window (`digit` null).
fn opening_body(campaign: &Campaign, opening: Opening) -> Value {
    let (kind, digit) = match opening {
        Opening::BookingDay(day) => ("booking_day", Some(day.digit)),
        Opening::ChangeWindow(_) => ("change_window", None),
    };
    let window = opening.window();
    json!({
        "kind": kind,
        "digit": digit,
        "opens_at": campaign.local_rfc3339(window.opens_at_ms),
        "closes_at": campaign.local_rfc3339(window.closes_at_ms),
    })
}

fn age_group(campaign: &Campaign) -> Value {
    json!({
        "born_from_year": campaign.eligibility.born_from_year,
        "born_to_year": campaign.eligibility.born_to_year,
    })
}

/// Whether a person of `birth` may book at `at_ms`: `open`, until `closes_at`; or not, with
/// the rule's code as `reason` and, where the calendar has one, when they may (`opens_at`).
pub fn booking_body(campaign: &Campaign, birth: BirthFacts, at_ms: TimestampMs) -> Value {
    let local = |ms| campaign.local_rfc3339(ms);
    let (open, reason, opens_at, closes_at) = match campaign.may_book(birth, at_ms) {
        Ok(phase) => (
            true,
            None,
            None,
            Some(local(campaign.window_of(phase).closes_at_ms)),
        ),
        Err(rejection) => (
            false,
            Some(rejection.code.as_str()),
            rejection.retry_at_ms.map(local),
            None,
        ),
    };
    json!({
        "open": open,
        "reason": reason,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "booking_day": campaign.booking_day_of(birth),
        "age_group": age_group(campaign),
    })
}

/// Whether a reservation may be cancelled or changed at `at_ms` (the change window only): `open`
/// until `closes_at`, or not, with the rule as `reason` and, before the window, `opens_at`.
pub fn change_body(campaign: &Campaign, at_ms: TimestampMs) -> Value {
    let local = |ms| campaign.local_rfc3339(ms);
    let window = campaign.change_window;
    match campaign.change_allowed(at_ms) {
        Ok(()) => json!({
            "open": true, "reason": null, "opens_at": null, "closes_at": local(window.closes_at_ms),
        }),
        Err(rejection) => json!({
            "open": false,
            "reason": rejection.code.as_str(),
            "opens_at": rejection.retry_at_ms.map(local),
            "closes_at": null,
        }),
    }
}

/// The instant a place asked for now would be admitted from: at opening for the pre-queue.
fn admitted_from(front: &Front, now_ms: TimestampMs) -> TimestampMs {
    match front.config.opens_at_ms {
        Some(opens_at) if front.pre_queue_open(now_ms) => opens_at,
        _ => now_ms,
    }
}

/// A person may take a place in the waiting room only if they may book when it admits them:
/// an admission spent on a booking the ledger refuses is one someone else could have had. A
/// person the view has not seen verify yet is left to the waiting room (their booking is still
/// the ledger's to refuse).
pub fn may_queue(
    front: &Front,
    view: &FrontView,
    subject: &SubjectId,
    now_ms: TimestampMs,
) -> Result<(), Refusal> {
    let Some(birth) = view.birth(subject) else {
        return Ok(());
    };
    let at = admitted_from(front, now_ms);
    let campaign = front.backend.campaign();
    campaign
        .may_book(birth, at)
        .map(|_| ())
        .map_err(|rejection| Refusal::new(rejection, now_ms))
}

/// `GET /v1/schedule`: what is open now (`open`, null between two booking days), what opens
/// next, and the age group.
pub async fn schedule(State(front): State<AppState>) -> Response {
    let campaign = front.backend.campaign();
    let now = front.clock.now_ms();
    let body = |o: Option<Opening>| o.map(|o| opening_body(campaign, o));
    ok(json!({
        "now": campaign.local_rfc3339(now),
        "open": body(campaign.open_at(now)),
        "next": body(campaign.next_opening(now)),
        "age_group": age_group(campaign),
    }))
}
