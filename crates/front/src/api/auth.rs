//! Bearer tokens: the session or admission token a request carries, checked against this
//! gateway's key and the device the request names (`X-Device-Id`); and the operators' admin
//! token. A token only proves what a gateway saw: the ledger still decides every rule.

use axum::http::{HeaderMap, StatusCode, header};

use super::error::{ApiError, answered_as_api_error};
use super::gateway::Front;
use crate::tokens::{Claims, TokenError, TokenKind};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header; names the token the request needs.
    #[error("this request needs `Authorization: Bearer <{0}>`")]
    Missing(&'static str),
    #[error(transparent)]
    Invalid(#[from] TokenError),
    #[error("admin endpoints are off (start with --admin-token)")]
    AdminDisabled,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let unauthorized =
            |e: &AuthError| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string());
        match &error {
            AuthError::Missing(_) => unauthorized(&error).because("missing"),
            AuthError::Invalid(token) => unauthorized(&error).because(match token {
                TokenError::Malformed => "malformed",
                TokenError::BadSignature => "bad_signature",
                TokenError::Expired => "expired",
                TokenError::WrongKind => "wrong_kind",
                TokenError::OtherDevice => "other_device",
            }),
            AuthError::AdminDisabled => {
                ApiError::new(StatusCode::NOT_FOUND, "admin_disabled", error.to_string())
            }
        }
    }
}

answered_as_api_error!(AuthError);

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The device a request says it comes from (`X-Device-Id`), checked against the token's.
fn device_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-device-id").and_then(|v| v.to_str().ok())
}

impl Front {
    /// The claims of the request's token: of `kind`, or of either kind (`None`).
    pub fn claims(
        &self,
        headers: &HeaderMap,
        kind: Option<TokenKind>,
    ) -> Result<Claims, AuthError> {
        let what = match kind {
            Some(TokenKind::Admission) => "admission token",
            _ => "session token",
        };
        let token = bearer(headers).ok_or(AuthError::Missing(what))?;
        let now = self.clock.now_ms();
        let device = device_header(headers);
        let claims = match kind {
            Some(kind) => self.keys.verify(token, kind, now, device),
            None => self.keys.verify_any(token, now, device),
        };
        Ok(claims?)
    }

    /// Whether the request carries the admin token (compared in constant time).
    pub fn admin(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let expected = self
            .config
            .admin_token
            .as_ref()
            .ok_or(AuthError::AdminDisabled)?;
        let given = bearer(headers).unwrap_or("");
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if same {
            Ok(())
        } else {
            Err(TokenError::BadSignature.into())
        }
    }
}
