//! Bearer tokens: the session or admission token a request carries, checked against this
//! gateway's key and the device the request names (`X-Device-Id`); and the operators' admin
//! token. A token only proves what a gateway saw: the ledger still decides every rule.

use axum::http::{HeaderMap, StatusCode, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use yeyak_domain::OperatorId;

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

    /// The operator whose admin token the request carries (compared in constant time, see
    /// [`AdminToken::admits`]).
    pub fn admin(&self, headers: &HeaderMap) -> Result<OperatorId, AuthError> {
        let expected = self
            .config
            .admin_token
            .as_ref()
            .ok_or(AuthError::AdminDisabled)?;
        expected
            .admits(bearer(headers).unwrap_or(""))
            .ok_or(AuthError::Invalid(TokenError::BadSignature))
    }
}

/// Why an admin token is refused at start (the server does not start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "an admin token has {0} bytes; it needs at least {min} (make one with `openssl rand -hex 32`)",
        min = AdminToken::BYTES_MIN
    )]
    TooShort(usize),
    #[error(
        "an admin token may hold only visible ASCII characters, no spaces or commas (make one with `openssl rand -hex 32`)"
    )]
    NotVisibleAscii,
    #[error("an operator's name (before `:`) is 1 to 64 of [A-Za-z0-9._-]")]
    InvalidOperator,
    #[error("cannot read the operating system's random source")]
    NoRandomness,
}

/// The operators' bearer tokens, each bound to the operator's name that is recorded with what
/// they do, kept only as MACs under a key of this process: a request's token is compared by
/// MAC, in constant time and against every operator's, so neither its bytes, its length nor
/// whose it is leak through timing. Never printed.
#[derive(Clone)]
pub struct AdminToken {
    key: [u8; 32],
    operators: Vec<(OperatorId, Vec<u8>)>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Shorter tokens are refused: 32 bytes of `openssl rand -hex 32` are 256 bits.
    pub const BYTES_MIN: usize = 32;
    /// The operator of a token given without a name.
    pub const UNNAMED: &str = "admin";

    /// `TOKEN` (the operator `admin`), or `NAME:TOKEN,NAME:TOKEN,...`, one per operator.
    pub fn new(spec: &str) -> Result<AdminToken, AdminTokenError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| AdminTokenError::NoRandomness)?;
        let mut operators = Vec::new();
        for entry in spec.split(',') {
            let (name, token) = entry.split_once(':').unwrap_or((Self::UNNAMED, entry));
            let operator = OperatorId::new(name).ok_or(AdminTokenError::InvalidOperator)?;
            if token.len() < Self::BYTES_MIN {
                return Err(AdminTokenError::TooShort(token.len()));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(AdminTokenError::NotVisibleAscii);
            }
            let tag = Self::mac(&key, token).finalize().into_bytes().to_vec();
            operators.push((operator, tag));
        }
        Ok(AdminToken { key, operators })
    }

    fn mac(key: &[u8; 32], token: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(token.as_bytes());
        mac
    }

    /// Whose token `given` is: its MAC compared with every operator's in constant time (all of
    /// them, whichever matches).
    pub fn admits(&self, given: &str) -> Option<OperatorId> {
        let mac = Self::mac(&self.key, given);
        let mut found = None;
        for (operator, tag) in &self.operators {
            if mac.clone().verify_slice(tag).is_ok() && found.is_none() {
                found = Some(operator.clone());
            }
        }
        found
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
    fn only_the_whole_token_is_admitted_as_its_operator() {
        let token = AdminToken::new(TOKEN).unwrap();
        assert_eq!(token.admits(TOKEN).unwrap().as_str(), "admin");
        for wrong in ["", &TOKEN[1..], &TOKEN[..31], &format!("{TOKEN}0"), "x"] {
            assert!(token.admits(wrong).is_none(), "{wrong:?}");
        }
        assert!(!format!("{token:?}").contains(TOKEN));
        let other = TOKEN.replace('0', "x");
        let two = AdminToken::new(&format!("alice:{TOKEN},bob:{other}")).unwrap();
        assert_eq!(two.admits(TOKEN).unwrap().as_str(), "alice");
        assert_eq!(two.admits(&other).unwrap().as_str(), "bob");
        assert!(two.admits(&format!("alice:{TOKEN}")).is_none());
        assert_eq!(
            AdminToken::new(&format!("al ice:{TOKEN}")).unwrap_err(),
            AdminTokenError::InvalidOperator
        );
        assert_eq!(
            AdminToken::new(&format!("alice:{TOKEN},bob:short")).unwrap_err(),
            AdminTokenError::TooShort(5)
        );
    }
}
