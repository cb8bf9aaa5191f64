//! `GET /v1/slots`: what the admitted person may book now, from their booking day's share
//! (or the change window's pool), per clinic and date, with how many doses remain.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use yeyak_domain::{Campaign, Rejection, RejectionCode, Share, TimestampMs};

use super::auth::AuthError;
use super::error::{ApiError, Unexpected, answered_as_api_error};
use super::extract::{self, RequestError};
use super::gateway::Front;
use super::refusal::Refusal;
use super::{AppState, ok};
use crate::tokens::{Claims, TokenKind};
use crate::view::FrontView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotsQuery {
    date: Option<String>,
    region: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SlotsError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Not eligible, or not the person's booking day: the ledger's own rules, checked early.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<SlotsError> for ApiError {
    fn from(error: SlotsError) -> ApiError {
        match error {
            SlotsError::Request(e) => e.into(),
            SlotsError::Auth(e) => e.into(),
            SlotsError::Refused(e) => e.into(),
            SlotsError::Unexpected(e) => e.into(),
        }
    }
}

answered_as_api_error!(SlotsError);

/// The share the person books from now: their booking day's, or the change window's pool. The
/// birth year and cohort digit are the view's (the ledger's record of the verification), never
/// the token's.
fn share_now(
    front: &Front,
    view: &FrontView,
    claims: &Claims,
    now: TimestampMs,
) -> Result<Share, Refusal> {
    let campaign = front.backend.campaign();
    let Some(birth) = view.birth(&claims.sub) else {
        return Err(Refusal::new(
            Rejection::new(RejectionCode::NotVerified),
            now,
        ));
    };
    let phase = campaign
        .may_book(birth, now)
        .map_err(|r| Refusal::new(r, now))?;
    Ok(Campaign::share_of(phase))
}

pub async fn slots(
    State(front): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SlotsQuery>, QueryRejection>,
) -> Result<Response, SlotsError> {
    let query = extract::query(query)?;
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let now = front.clock.now_ms();
    let date = query.date.as_deref().map(extract::date).transpose()?;
    let view = front.view()?;
    let share = share_now(&front, &view, &claims, now)?;
    let mut slots = Vec::new();
    for ((clinic, d, s), row) in &view.model.slot_quota {
        if *s != share || date.is_some_and(|want| want != *d) {
            continue;
        }
        let Some(info) = view.model.clinics.get(clinic) else {
            continue;
        };
        if query.region.as_deref().is_some_and(|r| r != info.region) {
            continue;
        }
        slots.push(json!({
            "clinic_id": clinic.as_str(),
            "name": info.name,
            "region": info.region,
            "address": info.address,
            "date": d.to_string(),
            "share": share.to_string(),
            "capacity": row.capacity,
            "booked": row.booked,
            "remaining": row.remaining().max(0),
        }));
    }
    Ok(ok(json!({"share": share.to_string(), "slots": slots})))
}
