//! Bearer tokens: the session or admission token a request carries, checked against this
//! gateway's key and the device the request names (`X-Device-Id`); and the operators' admin
//! token. A token only proves what a gateway saw: the ledger still decides every rule.

use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

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

    /// Whether the request carries the admin token (compared in constant time, see
    /// [`AdminToken::admits`]).
    pub fn admin(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let expected = self
            .config
            .admin_token
            .as_ref()
            .ok_or(AuthError::AdminDisabled)?;
        if expected.admits(bearer(headers).unwrap_or("")) {
            Ok(())
        } else {
            Err(TokenError::BadSignature.into())
        }
    }
}

/// Why an admin token is refused at start (the server does not start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "the admin token has {0} bytes; it needs at least {min} (make one with `openssl rand -hex 32`)",
        min = AdminToken::BYTES_MIN
    )]
    TooShort(usize),
    #[error(
        "the admin token may hold only visible ASCII characters, no spaces (make one with `openssl rand -hex 32`)"
    )]
    NotVisibleAscii,
    #[error("cannot read the operating system's random source")]
    NoRandomness,
}

/// The operators' bearer token, kept only as a MAC under a key of this process: a request's
/// token is compared by MAC, in constant time, so neither its bytes nor its length leak
/// through timing. Never printed.
#[derive(Clone)]
pub struct AdminToken {
    key: [u8; 32],
    tag: Vec<u8>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Shorter tokens are refused: 32 bytes of `openssl rand -hex 32` are 256 bits.
    pub const BYTES_MIN: usize = 32;

    pub fn new(token: &str) -> Result<AdminToken, AdminTokenError> {
        if token.len() < Self::BYTES_MIN {
            return Err(AdminTokenError::TooShort(token.len()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminTokenError::NotVisibleAscii);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| AdminTokenError::NoRandomness)?;
        let tag = Self::mac(&key, token).finalize().into_bytes().to_vec();
        Ok(AdminToken { key, tag })
    }

    fn mac(key: &[u8; 32], token: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(token.as_bytes());
        mac
    }

    /// Whether `given` is the token: MACs of equal length compared in constant time.
    pub fn admits(&self, given: &str) -> bool {
        Self::mac(&self.key, given).verify_slice(&self.tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn short_or_invisible_admin_tokens_are_refused_and_the_error_says_how_to_make_one() {
        assert_eq!(
            AdminToken::new("").unwrap_err(),
            AdminTokenError::TooShort(0)
        );
        assert_eq!(
            AdminToken::new(&TOKEN[1..]).unwrap_err(),
            AdminTokenError::TooShort(31)
        );
        assert_eq!(
            AdminToken::new(&format!("{TOKEN} x")).unwrap_err(),
            AdminTokenError::NotVisibleAscii
        );
        assert!(
            AdminTokenError::TooShort(0)
                .to_string()
                .contains("openssl rand -hex 32")
        );
    }

    #[test]
    fn only_the_whole_token_is_admitted() {
        let token = AdminToken::new(TOKEN).unwrap();
        assert!(token.admits(TOKEN));
        for wrong in ["", &TOKEN[1..], &TOKEN[..31], &format!("{TOKEN}0"), "x"] {
            assert!(!token.admits(wrong), "{wrong:?}");
        }
        assert!(!format!("{token:?}").contains(TOKEN));
    }
}
