//! The OpenAPI 3 document of the API, served at `/openapi.json` (hand-written; kept in step
//! with `api.rs` by `tests/api.rs`, which checks every documented path answers).

pub const DOCUMENT: &str = include_str!("openapi.json");
