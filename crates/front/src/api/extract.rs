//! Reading a request: the strict JSON body, path and query parameters, and the formats of the
//! fields (clinic id, date, reservation id, ticket, resident number). Anything wrong is a 400
//! with a code, never a 500, and the message never quotes what was sent.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use yeyak_domain::{ClinicId, ReservationId, TicketNo, VaccinationDate, pii};
use yeyak_identity::IdentityError;

use super::error::{ApiError, answered_as_api_error};

/// What is wrong with a request as sent.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the request body is too large or could not be read")]
    BodyTooLarge,
    #[error("the body has a field this request does not take")]
    UnknownField,
    #[error("the body lacks the field `{0}`")]
    MissingField(String),
    #[error("a field of the body has the wrong type or value")]
    InvalidField,
    #[error("the body is not a JSON object")]
    InvalidJson,
    #[error("a path parameter could not be read")]
    InvalidPath,
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a clinic id is 1 to 64 of [A-Za-z0-9._:-]")]
    InvalidClinicId,
    #[error("a date is YYYY-MM-DD")]
    InvalidDate,
    #[error("a reservation id is a UUID")]
    InvalidReservationId,
    #[error("a ticket is a number, or `me`")]
    InvalidTicket,
    #[error("{0}")]
    InvalidResidentId(IdentityError),
    /// `400 resident_number_in_text`: a field that would reach the log holds something shaped
    /// like a resident number (names the field, never quotes it).
    #[error(
        "{0} holds something shaped like a resident registration number, which never goes into the log"
    )]
    RegistrationNumberInText(&'static str),
    #[error("an Idempotency-Key is 1 to 64 of [A-Za-z0-9._:-]")]
    InvalidIdempotencyKey,
}

impl RequestError {
    fn code(&self) -> &'static str {
        match self {
            RequestError::BodyTooLarge => "body_too_large",
            RequestError::UnknownField => "unknown_field",
            RequestError::MissingField(_) => "missing_field",
            RequestError::InvalidField => "invalid_field",
            RequestError::InvalidJson => "invalid_json",
            RequestError::InvalidPath => "invalid_path",
            RequestError::InvalidQuery(_) => "invalid_query",
            RequestError::InvalidClinicId => "invalid_clinic_id",
            RequestError::InvalidDate => "invalid_date",
            RequestError::InvalidReservationId => "invalid_reservation_id",
            RequestError::InvalidTicket => "invalid_ticket",
            RequestError::InvalidResidentId(_) => "invalid_resident_id",
            RequestError::RegistrationNumberInText(_) => "resident_number_in_text",
            RequestError::InvalidIdempotencyKey => "invalid_idempotency_key",
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        let status = match error {
            RequestError::BodyTooLarge => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => axum::http::StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

answered_as_api_error!(RequestError);

/// A JSON body that answers 400 with a code for anything wrong: too large, not JSON, unknown
/// fields, wrong types, missing fields.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = RequestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RequestError> {
        let bytes = body_bytes(Bytes::from_request(req, state).await)?;
        json_body(&bytes).map(JsonBody)
    }
}

/// The body's bytes, read to their end (within the configured limit).
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RequestError> {
    body.map_err(|_| RequestError::BodyTooLarge)
}

/// Parses a JSON body. The error never quotes the body (a resident number sent with the wrong
/// type would otherwise be echoed): only our own field names appear.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        if text.starts_with("unknown field") {
            RequestError::UnknownField
        } else if text.starts_with("missing field") {
            RequestError::MissingField(text.split('`').nth(1).unwrap_or("?").to_owned())
        } else if e.is_data() {
            RequestError::InvalidField
        } else {
            RequestError::InvalidJson
        }
    })
}

/// The request's `Idempotency-Key` header, if any: the client's name for one logical request,
/// the same on every retry of it. Up to [`IDEMPOTENCY_KEY_MAX`] of `[A-Za-z0-9._:-]`.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, RequestError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| RequestError::InvalidIdempotencyKey)?;
    let fits = (1..=IDEMPOTENCY_KEY_MAX).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if !fits {
        return Err(RequestError::InvalidIdempotencyKey);
    }
    no_resident_number("Idempotency-Key", key)?;
    Ok(Some(key.to_owned()))
}

/// The longest `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX: usize = 64;

/// The one path parameter of a route.
pub fn path_param(path: Result<Path<String>, PathRejection>) -> Result<String, RequestError> {
    path.map(|Path(text)| text)
        .map_err(|_| RequestError::InvalidPath)
}

/// The query string, read into `T`.
pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, RequestError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| RequestError::InvalidQuery(e.body_text()))
}

pub fn clinic_id(text: &str) -> Result<ClinicId, RequestError> {
    no_resident_number("clinic_id", text)?;
    ClinicId::new(text).ok_or(RequestError::InvalidClinicId)
}

/// Refuses a field that would reach the log holding anything shaped like a resident number
/// (`yeyak_domain::pii`, the same detector as the export guard's).
pub fn no_resident_number(field: &'static str, text: &str) -> Result<(), RequestError> {
    if pii::holds_resident_number(text) {
        return Err(RequestError::RegistrationNumberInText(field));
    }
    Ok(())
}

pub fn date(text: &str) -> Result<VaccinationDate, RequestError> {
    text.parse().map_err(|_| RequestError::InvalidDate)
}

pub fn reservation_id(text: &str) -> Result<ReservationId, RequestError> {
    Uuid::parse_str(text)
        .map(ReservationId)
        .map_err(|_| RequestError::InvalidReservationId)
}

/// A ticket number (`me` is the caller's own ticket, resolved by the route).
pub fn ticket(text: &str) -> Result<TicketNo, RequestError> {
    text.parse::<u64>()
        .map(TicketNo)
        .map_err(|_| RequestError::InvalidTicket)
}
