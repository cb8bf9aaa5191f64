//! The one error body every answer shares, `{"error": code, "message": text}` (with
//! `retry_after_s` and `reason` where a rule gives them), and the failures no request can
//! avoid ([`Unexpected`]: the ledger or the gateway's view unavailable, answered `503`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use yeyak_ledger::submit::SubmitError;

/// An error answer: status, stable code, human message, and optional extra fields.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_s: Option<i64>,
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            reason: None,
        }
    }

    /// A `400 Bad Request`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `reason`: which of the ways to fail this code stands for.
    pub fn because(self, reason: &'static str) -> ApiError {
        ApiError {
            reason: Some(reason),
            ..self
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some(s) = self.retry_after_s {
            body["retry_after_s"] = json!(s);
        }
        if let Some(r) = self.reason {
            body["reason"] = json!(r);
        }
        let mut response = (self.status, Json(body)).into_response();
        // For the metrics (`measure`): the refusals by code.
        response.extensions_mut().insert(AnsweredCode(self.code));
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The error code an answer carries, for the metrics' count of refusals by code.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredCode(pub &'static str);

/// What went wrong that the request could not have avoided: answered `503 unavailable` and
/// logged, since someone should look at it.
#[derive(Debug, thiserror::Error)]
pub enum Unexpected {
    #[error("the ledger did not answer: {0}")]
    Ledger(#[from] SubmitError),
    #[error("the ledger call was cancelled")]
    Cancelled,
    #[error("the gateway's view is not available")]
    ViewUnavailable,
    #[error("the gateway's heartbeats are not available")]
    HeartbeatsUnavailable,
    /// The ledger decided, but not with an event the command leads to.
    #[error("{0}")]
    Unsettled(&'static str),
}

impl From<Unexpected> for ApiError {
    fn from(error: Unexpected) -> ApiError {
        tracing::warn!(%error, "a request could not be answered");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            error.to_string(),
        )
    }
}

/// Answers each of `families`' errors with the one error body (axum needs `IntoResponse` on
/// a handler's error type; the mapping itself is each family's `From<_> for ApiError`).
macro_rules! answered_as_api_error {
    ($($family:ty),* $(,)?) => {$(
        impl axum::response::IntoResponse for $family {
            fn into_response(self) -> axum::response::Response {
                $crate::api::error::ApiError::from(self).into_response()
            }
        }
    )*};
}

pub(crate) use answered_as_api_error;

answered_as_api_error!(Unexpected);
