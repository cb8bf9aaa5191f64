//! Signed tokens: a session token (after verification) and an admission token (after the
//! waiting room admitted the ticket), both bound to the subject and the device, both
//! short-lived. `base64url(claims JSON) . base64url(HMAC-SHA256(key, "yeyak-token-v1." claims))`.
//!
//! A token only proves what the gateway saw; the ledger still decides: an admission is
//! single-use and a device is the verified one only as long as the person's partition says so.
//!
//! The claims are readable by whoever holds the token (base64), so they hold no personal data:
//! a pseudonymous subject id, a random device id, ids and instants. The birth year and cohort
//! digit a booking day depends on stay on the server, keyed by the subject
//! (`FrontView::births`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use yeyak_domain::{AdmissionId, DeviceId, SubjectId, TicketNo, TimestampMs};

const CONTEXT: &[u8] = b"yeyak-token-v1.";

/// The largest token accepted (a bound on what is decoded).
pub const TOKEN_BYTES_MAX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Session,
    Admission,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub kind: TokenKind,
    pub sub: SubjectId,
    pub dev: DeviceId,
    pub exp: TimestampMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adm: Option<AdmissionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tkt: Option<TicketNo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("this is not the kind of token this request needs")]
    WrongKind,
    #[error("the token belongs to another device")]
    OtherDevice,
}

/// The operating system's random source could not be read (no key is made without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the operating system's random source")]
pub struct NoRandomness;

/// The server's signing key, never printed.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    pub fn new(bytes: Vec<u8>) -> TokenKey {
        TokenKey(bytes)
    }

    /// A key for this process only (tokens do not verify in another gateway process): 32
    /// bytes from the operating system's random source.
    pub fn ephemeral() -> Result<TokenKey, NoRandomness> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
        Ok(TokenKey(bytes))
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()));
        format!("{payload}.{tag}")
    }

    /// Checks the signature, the kind and the expiry (and the device, when the caller names one).
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now_ms: TimestampMs,
        device: Option<&str>,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify_any(token, now_ms, device)?;
        if claims.kind != kind {
            return Err(TokenError::WrongKind);
        }
        Ok(claims)
    }

    /// Like [`TokenKey::verify`], for either kind.
    pub fn verify_any(
        &self,
        token: &str,
        now_ms: TimestampMs,
        device: Option<&str>,
    ) -> Result<Claims, TokenError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if now_ms >= claims.exp {
            return Err(TokenError::Expired);
        }
        if let Some(device) = device {
            if device != claims.dev.as_str() {
                return Err(TokenError::OtherDevice);
            }
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            kind,
            sub: SubjectId([1; 16]),
            dev: DeviceId::new("pc").unwrap(),
            exp: 10_000,
            adm: None,
            tkt: None,
        }
    }

    #[test]
    fn ephemeral_keys_are_random() {
        let (a, b) = (
            TokenKey::ephemeral().unwrap(),
            TokenKey::ephemeral().unwrap(),
        );
        assert_eq!(a.0.len(), 32);
        assert_ne!(a.0, b.0);
        // Not two time-ordered UUIDs: their version nibble (7) would sit at byte 6 and 22.
        let v7 = |k: &TokenKey| k.0[6] >> 4 == 7 && k.0[22] >> 4 == 7;
        assert!(!(0..8).all(|_| v7(&TokenKey::ephemeral().unwrap())));
    }

    #[test]
    fn tokens_verify_and_refuse_forgery_expiry_kind_and_device() {
        let key = TokenKey::new(vec![3; 32]);
        let token = key.sign(&claims(TokenKind::Session));
        assert_eq!(
            key.verify(&token, TokenKind::Session, 9_999, Some("pc"))
                .unwrap(),
            claims(TokenKind::Session)
        );
        assert_eq!(
            key.verify(&token, TokenKind::Session, 10_000, None),
            Err(TokenError::Expired)
        );
        assert_eq!(
            key.verify(&token, TokenKind::Admission, 0, None),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            key.verify(&token, TokenKind::Session, 0, Some("phone")),
            Err(TokenError::OtherDevice)
        );
        let other = TokenKey::new(vec![4; 32]);
        assert_eq!(
            other.verify(&token, TokenKind::Session, 0, None),
            Err(TokenError::BadSignature)
        );
        // A changed payload with the old signature.
        let mut forged = claims(TokenKind::Session);
        forged.exp = i64::MAX;
        let forged_payload = key.sign(&forged);
        let tampered = format!(
            "{}.{}",
            forged_payload.split('.').next().unwrap(),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(
            key.verify(&tampered, TokenKind::Session, 0, None),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            key.verify("garbage", TokenKind::Session, 0, None),
            Err(TokenError::Malformed)
        );
    }
}
