//! `POST /v1/verify`: a person verifies their identity with one of the methods. The provider
//! answers first; then the person's partition decides (the first device holds the person for
//! 10 minutes, one verification per 10 minutes), and the gateway signs a session token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use yeyak_domain::{BirthFacts, CommandBody, DeviceId, Method, SubjectId};

use super::error::{ApiError, Unexpected, answered_as_api_error};
use super::extract::{self, JsonBody, RequestError};
use super::gateway::Front;
use super::refusal::Refusal;
use super::schedule;
use super::{AppState, ok};
use crate::clock::rfc3339;
use crate::providers::ProviderError;
use crate::tokens::{Claims, TokenKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    method: String,
    resident_id: String,
    name: String,
    device_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(
        "method is one of phone, ipin, joint_certificate, financial_certificate, kakao, naver, pass"
    )]
    UnknownMethod,
    #[error("name is 1 to 64 characters")]
    InvalidName,
    #[error("device_id is 1 to 64 of [A-Za-z0-9._:-]")]
    InvalidDeviceId,
    #[error("this method is not offered")]
    MethodNotOffered,
    /// The provider is out, congested or failed: another method may work now.
    #[error("{0}; choose another method")]
    ProviderDown(ProviderError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// How long a person should wait before trying the same method again.
const PROVIDER_RETRY_AFTER_S: i64 = 5;

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> ApiError {
        let message = error.to_string();
        let method_unavailable = |message| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "method_unavailable",
                message,
            )
        };
        match error {
            VerifyError::Request(e) => e.into(),
            VerifyError::UnknownMethod => ApiError::bad("unknown_method", message),
            VerifyError::InvalidName => ApiError::bad("invalid_name", message),
            VerifyError::InvalidDeviceId => ApiError::bad("invalid_device_id", message),
            VerifyError::MethodNotOffered => method_unavailable(message),
            VerifyError::ProviderDown(down) => ApiError {
                retry_after_s: Some(PROVIDER_RETRY_AFTER_S),
                ..method_unavailable(message).because(match down {
                    ProviderError::Outage => "outage",
                    ProviderError::Congested => "congested",
                    ProviderError::Failed => "failed",
                })
            },
            VerifyError::Refused(e) => e.into(),
            VerifyError::Unexpected(e) => e.into(),
        }
    }
}

answered_as_api_error!(VerifyError);

/// A verification request, read and checked.
struct Verification {
    method: Method,
    subject: SubjectId,
    birth: BirthFacts,
    device: DeviceId,
}

impl Verification {
    fn read(front: &Front, req: &VerifyRequest) -> Result<Verification, VerifyError> {
        let method = Method::parse(&req.method).ok_or(VerifyError::UnknownMethod)?;
        let (subject, birth) = front
            .pseudonymiser
            .subject_of(&req.resident_id)
            .map_err(RequestError::InvalidResidentId)?;
        if req.name.trim().is_empty() || req.name.chars().count() > 64 {
            return Err(VerifyError::InvalidName);
        }
        extract::no_resident_number("device_id", &req.device_id)?;
        let device = DeviceId::new(&req.device_id).ok_or(VerifyError::InvalidDeviceId)?;
        Ok(Verification {
            method,
            subject,
            birth,
            device,
        })
    }
}

pub async fn verify(
    State(front): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<Response, VerifyError> {
    let key = extract::idempotency_key(&headers)?;
    let v = Verification::read(&front, &req)?;
    let provider = front
        .providers
        .get(&v.method)
        .ok_or(VerifyError::MethodNotOffered)?;
    provider.verify().await.map_err(VerifyError::ProviderDown)?;
    let body = CommandBody::Verify {
        subject: v.subject,
        birth_year: v.birth.year,
        cohort_digit: v.birth.cohort_digit,
        method: v.method,
        device: v.device.clone(),
    };
    let outcome = front
        .decide_once(key.as_deref(), &v.subject, &v.device, body)
        .await?;
    let now = front.clock.now_ms();
    Refusal::of(&outcome, now)?;
    let expires_at_ms = now + front.config.session_ttl_ms;
    let session = Claims {
        kind: TokenKind::Session,
        sub: v.subject,
        dev: v.device,
        exp: expires_at_ms,
        adm: None,
        tkt: None,
    };
    Ok(ok(json!({
        "session_token": front.keys.sign(&session),
        "expires_at": rfc3339(expires_at_ms),
        "booking_day": front.backend.campaign().booking_day_of(v.birth),
        "booking": schedule::booking_body(front.backend.campaign(), v.birth, now),
    })))
}
