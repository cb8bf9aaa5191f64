//! The HTTP API (axum), one module per resource. Paths, bodies and error codes are a public
//! contract (issue "Front tier"): every error body is `{"error": "<code>", "message": "<text>"}`,
//! bad input is a 400 with a code and never a 500. Handlers are thin: read the request,
//! authenticate, build a command, let the ledger decide, map the outcome.
//!
//! Each resource has one error type that separates the answers a request can expect (each with
//! its stable code) from the unexpected ones (`unavailable`); all of them become [`ApiError`].

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod fill;
pub mod gateway;
pub mod queue;
pub mod refusal;
pub mod reservations;
pub mod schedule;
pub mod slots;
pub mod status;
pub mod ticket;
pub mod verify;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use error::{ApiError, Unexpected};
pub use gateway::{AppState, Front};

/// `200 OK` with a JSON body.
fn ok(body: Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

/// `201 Created` with a JSON body.
fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}
