//! `/admin/*` for operators (admin token): register supply, set the clock (only on a simulated
//! clock: `FrontConfig::simulated_clock`), switch a provider's outage. A body is parsed only
//! after the admin check, so a caller without the token learns nothing from its errors but the
//! server's bounds on every body (`413`, `408`). (`/admin/status` is with the other figures in
//! `status`.)

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use yeyak_domain::{CommandBody, Event, Method, OperatorId};

use super::auth::AuthError;
use super::error::{ApiError, Unexpected, answered_as_api_error};
use super::extract::{self, RequestError};
use super::gateway::Front;
use super::refusal::Refusal;
use super::{AppState, created, ok};
use crate::clock::rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// `400 invalid_field`: a clinic's name, region or address out of bounds.
    #[error("{0} is 1 to 100 characters")]
    InvalidText(&'static str),
    #[error("now is an RFC 3339 instant, e.g. 2021-08-09T20:00:00+09:00")]
    InvalidTime,
    #[error("no such method")]
    UnknownMethod,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> ApiError {
        let message = error.to_string();
        match error {
            AdminError::Request(e) => e.into(),
            AdminError::Auth(e) => e.into(),
            AdminError::InvalidText(_) => ApiError::bad("invalid_field", message),
            AdminError::InvalidTime => ApiError::bad("invalid_time", message),
            AdminError::UnknownMethod => ApiError::bad("unknown_method", message),
            AdminError::Refused(e) => e.into(),
            AdminError::Unexpected(e) => e.into(),
        }
    }
}

answered_as_api_error!(AdminError);

type Answer = Result<Response, AdminError>;

/// The admin check (which operator), then the body.
fn admin_body<T: DeserializeOwned>(
    front: &Front,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(OperatorId, T), AdminError> {
    let operator = front.admin(headers)?;
    let bytes = extract::body_bytes(body)?;
    Ok((operator, extract::json_body(&bytes)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyRequest {
    clinic_id: String,
    name: String,
    region: String,
    /// The clinic's road address (optional).
    #[serde(default)]
    address: Option<String>,
    date: String,
    doses: u32,
}

/// `POST /admin/supply`: doses of a clinic for one date (the first supply names the clinic).
pub async fn supply(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (operator, req): (_, SupplyRequest) = admin_body(&front, &headers, body)?;
    let clinic = extract::clinic_id(&req.clinic_id)?;
    let date = extract::date(&req.date)?;
    let texts = [
        ("name", Some(&req.name)),
        ("region", Some(&req.region)),
        ("address", req.address.as_ref()),
    ];
    for (field, text) in texts.into_iter().filter_map(|(f, t)| t.map(|t| (f, t))) {
        if text.trim().is_empty() || text.chars().count() > 100 {
            return Err(AdminError::InvalidText(field));
        }
        extract::no_resident_number(field, text)?;
    }
    let outcome = front
        .decide(CommandBody::RegisterSupply {
            clinic,
            name: req.name,
            region: req.region,
            date,
            doses: req.doses,
            address: req.address,
            operator: Some(operator),
        })
        .await?;
    Refusal::of(&outcome, front.clock.now_ms())?;
    let registered = outcome.events.iter().find_map(|e| match &e.event {
        Event::SupplyRegistered(s) => Some(s),
        _ => None,
    });
    let s = registered.ok_or(Unexpected::Unsettled("the supply was not recorded"))?;
    Ok(created(json!({
        "clinic_id": s.clinic.as_str(),
        "date": s.date.to_string(),
        "doses": s.doses,
        "day_shares": s.day_shares,
        "pool": s.pool,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    now: String,
}

/// `POST /admin/clock`: the gateway's clock (a rehearsal of the campaign's days).
pub async fn clock(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (_, req): (_, ClockRequest) = admin_body(&front, &headers, body)?;
    let now =
        chrono::DateTime::parse_from_rfc3339(&req.now).map_err(|_| AdminError::InvalidTime)?;
    front.clock.set(now.timestamp_millis());
    Ok(ok(json!({"now": rfc3339(front.clock.now_ms())})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    method: String,
    outage: bool,
}

/// `POST /admin/providers`: switch a simulated provider's outage on or off; recorded in the log
/// with the operator (`ProviderSwitched`) before it takes effect.
pub async fn provider(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (operator, req): (_, ProviderRequest) = admin_body(&front, &headers, body)?;
    let method = Method::parse(&req.method).ok_or(AdminError::UnknownMethod)?;
    let provider = front
        .providers
        .get(&method)
        .ok_or(AdminError::UnknownMethod)?;
    let outcome = front
        .decide(CommandBody::SwitchProvider {
            method,
            outage: req.outage,
            operator: operator.clone(),
        })
        .await?;
    Refusal::of(&outcome, front.clock.now_ms())?;
    provider.set_outage(req.outage);
    Ok(ok(json!({
        "method": method.as_str(),
        "outage": req.outage,
        "operator": operator.as_str(),
    })))
}
