//! `/admin/*` for operators (admin token): register supply, set the clock (only on a simulated
//! clock: `FrontConfig::simulated_clock`), switch a provider's outage, pause or resume
//! admissions and set their rate. A body is parsed only
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
use yeyak_domain::event::AdmissionsControlled;
use yeyak_domain::{AdmitPerMin, CommandBody, Event, Method, OperatorId, TimestampMs};

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
    /// `400 invalid_rate`: not a whole number of admissions a minute in range.
    #[error("admit_per_min is a whole number from 1 to 600000 (pause with paused: true)")]
    InvalidRate,
    /// `400 missing_field`: an admission control that changes nothing.
    #[error("give paused, admit_per_min or both")]
    NoControl,
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
            AdminError::InvalidRate => ApiError::bad("invalid_rate", message),
            AdminError::NoControl => ApiError::bad("missing_field", message),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionsRequest {
    #[serde(default)]
    paused: Option<bool>,
    /// Any JSON number: one out of range (negative, fractional, zero, too large) is answered
    /// `invalid_rate`, not as a body that does not parse.
    #[serde(default)]
    admit_per_min: Option<serde_json::Number>,
}

fn admit_rate(number: &serde_json::Number) -> Result<AdmitPerMin, AdminError> {
    number
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(AdmitPerMin::new)
        .ok_or(AdminError::InvalidRate)
}

/// `POST /admin/admissions`: pause or resume admissions, or set their rate (a field left out
/// keeps what is in force). Recorded in the log with the operator (`AdmissionsControlled`)
/// before it takes effect: the admission controller follows the record, and so does a
/// restarted gateway. Bad input changes nothing.
pub async fn admissions(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (operator, req): (_, AdmissionsRequest) = admin_body(&front, &headers, body)?;
    let admit_per_min = req.admit_per_min.as_ref().map(admit_rate).transpose()?;
    if req.paused.is_none() && admit_per_min.is_none() {
        return Err(AdminError::NoControl);
    }
    let outcome = front
        .decide(CommandBody::ControlAdmissions {
            paused: req.paused,
            admit_per_min,
            operator,
        })
        .await?;
    let now = front.clock.now_ms();
    Refusal::of(&outcome, now)?;
    let recorded = outcome.events.iter().find_map(|e| match &e.event {
        Event::AdmissionsControlled(c) => Some(c),
        _ => None,
    });
    let recorded = recorded.ok_or(Unexpected::Unsettled(
        "the admission control was not recorded",
    ))?;
    Ok(ok(admissions_body(&front, Some((recorded, now)))))
}

/// The admission control in force (`control`: the latest record and its instant, if any) and
/// the rate it makes the controller aim at.
pub fn admissions_body(
    front: &Front,
    control: Option<(&AdmissionsControlled, TimestampMs)>,
) -> serde_json::Value {
    let set = control.and_then(|(c, _)| c.admit_per_min);
    json!({
        "paused": control.is_some_and(|(c, _)| c.paused),
        "admit_per_min": set.map(AdmitPerMin::get),
        "admit_per_s": set.map_or(front.config.admit_per_s, AdmitPerMin::per_s),
        "operator": control.map(|(c, _)| c.operator.as_str().to_owned()),
        "at": control.map(|(_, at)| rfc3339(at)),
    })
}
