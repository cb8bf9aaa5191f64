//! `/v1/reservations`: book with an admission, look at one's reservation, cancel it or change
//! it (in the change window). The person's partition decides, the clinic holds the dose, and
//! the handlers answer with the person's final outcome.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use yeyak_domain::system::Outcome;
use yeyak_domain::{
    AdmissionId, CommandBody, Event, Rejection, ReservationCode, ReservationId, SubjectId,
    TimestampMs,
};
use yeyak_read::projection::ReservationState;

use super::auth::AuthError;
use super::error::{ApiError, Unexpected, answered_as_api_error};
use super::extract::{self, JsonBody, RequestError};
use super::gateway::Front;
use super::refusal::Refusal;
use super::schedule;
use super::{AppState, created, ok};
use crate::clock::rfc3339;
use crate::tokens::{Claims, TokenError, TokenKind};

/// A booking, or a change: the clinic and date wanted, and optionally whom it is for (anyone
/// but the verified person is refused).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    clinic_id: String,
    date: String,
    #[serde(default)]
    resident_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// `404 no_such_reservation`: the caller holds none.
    #[error("you hold no reservation")]
    NoReservation,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<ReservationError> for ApiError {
    fn from(error: ReservationError) -> ApiError {
        let message = error.to_string();
        match error {
            ReservationError::Request(e) => e.into(),
            ReservationError::Auth(e) => e.into(),
            ReservationError::NoReservation => {
                ApiError::new(StatusCode::NOT_FOUND, "no_such_reservation", message)
            }
            ReservationError::Refused(e) => e.into(),
            ReservationError::Unexpected(e) => e.into(),
        }
    }
}

answered_as_api_error!(ReservationError);

type Answer = Result<Response, ReservationError>;

/// Whom the request names: the verified person unless the body names someone.
fn requested_for(
    front: &Front,
    claims: &Claims,
    resident_id: Option<&str>,
) -> Result<SubjectId, RequestError> {
    match resident_id {
        None => Ok(claims.sub),
        Some(text) => front
            .pseudonymiser
            .subject_of(text)
            .map(|(s, _)| s)
            .map_err(RequestError::InvalidResidentId),
    }
}

/// The admission an admission token carries.
fn admission_of(claims: &Claims) -> Result<AdmissionId, AuthError> {
    claims.adm.ok_or(AuthError::Invalid(TokenError::WrongKind))
}

/// The person's final answer in a booking or change chain.
fn settled(outcome: &Outcome, now: TimestampMs) -> Result<&Event, ReservationError> {
    Refusal::of(outcome, now)?;
    for envelope in outcome.events.iter().rev() {
        match &envelope.event {
            Event::ReservationRecorded(_) | Event::ReservationChanged(_) => {
                return Ok(&envelope.event);
            }
            Event::BookingFailed(f) => return Err(Refusal::new(Rejection::new(f.code), now).into()),
            Event::ChangeFailed(f) => return Err(Refusal::new(Rejection::new(f.code), now).into()),
            _ => {}
        }
    }
    Err(Unexpected::Unsettled("the booking was not settled").into())
}

/// `POST /v1/reservations`: book with the admission token.
pub async fn book(
    State(front): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<BookRequest>,
) -> Answer {
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let key = extract::idempotency_key(&headers)?;
    let clinic = extract::clinic_id(&req.clinic_id)?;
    let date = extract::date(&req.date)?;
    let requested_for = requested_for(&front, &claims, req.resident_id.as_deref())?;
    let admission = admission_of(&claims)?;
    let body = CommandBody::Book {
        subject: claims.sub,
        requested_for,
        device: claims.dev.clone(),
        clinic,
        date,
        admission,
    };
    let outcome = front
        .decide_once(key.as_deref(), &claims.sub, &claims.dev, body)
        .await?;
    match settled(&outcome, front.clock.now_ms())? {
        Event::ReservationRecorded(r) => Ok(created(json!({
            "reservation_id": r.reservation.0.to_string(),
            "reservation_code": code(r.reservation),
            "clinic_id": r.clinic.as_str(),
            "date": r.date.to_string(),
            "share": r.share.to_string(),
        }))),
        _ => Err(Unexpected::Unsettled("unexpected settlement").into()),
    }
}

/// `GET /v1/reservations/me`: the caller's active reservation.
pub async fn mine(State(front): State<AppState>, headers: HeaderMap) -> Answer {
    let claims = front.claims(&headers, None)?;
    let view = front.view()?;
    let (id, r) = view
        .reservation_of
        .get(&claims.sub)
        .and_then(|id| view.model.reservations.get_key_value(id))
        .filter(|(_, r)| r.state == ReservationState::Active)
        .ok_or(ReservationError::NoReservation)?;
    let clinic = view.model.clinics.get(&r.clinic);
    Ok(ok(json!({
        "reservation_id": id.0.to_string(),
        "reservation_code": code(*id),
        "clinic_id": r.clinic.as_str(),
        "clinic_name": clinic.map(|c| c.name.clone()),
        "region": clinic.map(|c| c.region.clone()),
        "clinic_address": clinic.and_then(|c| c.address.clone()),
        "date": r.date.to_string(),
        "share": r.share.to_string(),
        "state": r.state.as_str(),
        "booked_at": rfc3339(r.booked_at_ms),
        "change": schedule::change_body(front.backend.campaign(), front.clock.now_ms()),
    })))
}

/// `DELETE /v1/reservations/{id}`: cancel (change window only).
pub async fn cancel(
    State(front): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let id = extract::path_param(id)?;
    let claims = front.claims(&headers, None)?;
    let key = extract::idempotency_key(&headers)?;
    let reservation = extract::reservation_id(&id)?;
    let body = CommandBody::Cancel {
        subject: claims.sub,
        requested_for: claims.sub,
        device: claims.dev.clone(),
        reservation,
    };
    let outcome = front
        .decide_once(key.as_deref(), &claims.sub, &claims.dev, body)
        .await?;
    Refusal::of(&outcome, front.clock.now_ms())?;
    Ok(ok(json!({
        "reservation_id": reservation.0.to_string(),
        "reservation_code": code(reservation),
        "state": "cancelled",
    })))
}

/// `PUT /v1/reservations/{id}`: change to another clinic or date with the admission token
/// (change window only); the old reservation stays if the new clinic refuses.
pub async fn change(
    State(front): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<BookRequest>,
) -> Answer {
    let id = extract::path_param(id)?;
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let key = extract::idempotency_key(&headers)?;
    let reservation = extract::reservation_id(&id)?;
    let clinic = extract::clinic_id(&req.clinic_id)?;
    let date = extract::date(&req.date)?;
    let requested_for = requested_for(&front, &claims, req.resident_id.as_deref())?;
    let admission = admission_of(&claims)?;
    let body = CommandBody::Rebook {
        subject: claims.sub,
        requested_for,
        device: claims.dev.clone(),
        reservation,
        clinic,
        date,
        admission,
    };
    let outcome = front
        .decide_once(key.as_deref(), &claims.sub, &claims.dev, body)
        .await?;
    match settled(&outcome, front.clock.now_ms())? {
        Event::ReservationChanged(r) => Ok(ok(json!({
            "reservation_id": r.reservation.0.to_string(),
            "reservation_code": code(r.reservation),
            "clinic_id": r.clinic.as_str(),
            "date": r.date.to_string(),
            "share": r.share.to_string(),
            "replaces": r.replaces.0.to_string(),
            "replaces_code": code(r.replaces),
        }))),
        _ => Err(Unexpected::Unsettled("unexpected settlement").into()),
    }
}

/// The reservation's code people read out (`yeyak_domain::ReservationCode`), 10 characters.
fn code(reservation: ReservationId) -> String {
    ReservationCode::of(reservation).as_str().to_owned()
}
