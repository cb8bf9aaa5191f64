//! The HTTP API (axum). Paths, bodies and error codes are a public contract (issue "Front
//! tier"): every error body is `{"error": "<code>", "message": "<text>"}`, bad input is a 400
//! with a code and never a 500. Handlers are thin: authenticate, build a command, let the
//! backend decide, map the outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::FrontConfig;
use super::backend::Backend;
use super::clock::{Clock, rfc3339};
use super::congestion::{self, Level, Thresholds};
use super::metrics::Metrics;
use super::providers::{IdentityProvider, ProviderError, SimulatedProvider};
use super::tokens::{Claims, TokenError, TokenKey, TokenKind};
use super::view::{FrontView, TicketPhase};
use yeyak_domain::system::Outcome;
use yeyak_domain::{
    ClinicId, Command, CommandBody, DeviceId, Event, Method, Phase, Rejection, RejectionCode,
    ReservationId, Share, SubjectId, TicketNo, TimestampMs,
};
use yeyak_identity::Pseudonymiser;
use yeyak_ledger::submit::SubmitError;
use yeyak_read::projection::ReservationState;

/// The gateway: configuration, the backend, and what this process measures.
pub struct Front {
    pub config: FrontConfig,
    pub backend: Backend,
    pub clock: Clock,
    pub keys: TokenKey,
    pub pseudonymiser: Pseudonymiser,
    pub providers: BTreeMap<Method, Arc<dyn IdentityProvider>>,
    pub metrics: Metrics,
    /// Last sign of life of each waiting ticket's owner (this process's polls).
    pub heartbeats: Mutex<HashMap<TicketNo, Instant>>,
    /// The outflow rate the controller currently uses (tickets/s).
    pub admit_rate: Mutex<f64>,
}

impl Front {
    pub fn new(
        config: FrontConfig,
        backend: Backend,
        keys: TokenKey,
        pseudonymiser: Pseudonymiser,
    ) -> Front {
        let seed = Uuid::now_v7().as_u128() as u64;
        let providers = config
            .providers
            .iter()
            .map(|(m, c)| {
                (
                    *m,
                    Arc::new(SimulatedProvider::new(*m, c.clone(), seed))
                        as Arc<dyn IdentityProvider>,
                )
            })
            .collect();
        let rate = config.admit_per_s;
        Front {
            config,
            backend,
            clock: Clock::default(),
            keys,
            pseudonymiser,
            providers,
            metrics: Metrics::default(),
            heartbeats: Mutex::new(HashMap::new()),
            admit_rate: Mutex::new(rate),
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            yellow_wait_ms: self.config.yellow_wait_ms,
            red_wait_ms: self.config.red_wait_ms,
            grey_failure_ratio: self.config.grey_failure_ratio,
        }
    }

    /// Decides one command on the backend (off the async threads) and measures the decision.
    pub async fn decide(&self, body: CommandBody) -> Result<Outcome, ApiError> {
        self.decide_within(body, self.config.decision_timeout).await
    }

    /// [`Front::decide`], waiting at most `timeout` for the decision.
    pub async fn decide_within(
        &self,
        body: CommandBody,
        timeout: std::time::Duration,
    ) -> Result<Outcome, ApiError> {
        let command = Command {
            command_id: Uuid::now_v7(),
            at_ms: self.clock.now_ms(),
            body,
        };
        let backend = self.backend.clone();
        let started = Instant::now();
        let result =
            tokio::task::spawn_blocking(move || backend.submit_within(command, timeout)).await;
        self.metrics.decision(started.elapsed());
        match result {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(ApiError::unavailable(&error)),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the ledger call was cancelled",
            )),
        }
    }

    pub fn heartbeat(&self, ticket: TicketNo) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.insert(ticket, Instant::now());
        }
    }

    /// The admission rate people can expect: measured if admissions ran lately, otherwise the
    /// controller's current outflow rate.
    pub fn expected_rate(&self, view: &FrontView, now_ms: TimestampMs) -> f64 {
        let configured = self
            .admit_rate
            .lock()
            .map(|r| *r)
            .unwrap_or(self.config.admit_per_s);
        view.admission_rate(now_ms)
            .filter(|r| *r > 0.0)
            .unwrap_or(configured)
            .max(0.001)
    }

    /// An honest ETA for `ahead` people in front: seconds until opening plus the time the
    /// measured rate needs, with a range of +-25% on the rate.
    pub fn eta(&self, view: &FrontView, ahead: usize, now_ms: TimestampMs) -> (i64, [i64; 2]) {
        let rate = self.expected_rate(view, now_ms);
        let until_open = self
            .config
            .opens_at_ms
            .map_or(0.0, |o| ((o - now_ms).max(0)) as f64 / 1000.0);
        let people = ahead as f64 + 1.0;
        let eta = until_open + people / rate;
        let low = until_open + people / (rate * 1.25);
        let high = until_open + people / (rate * 0.75);
        (eta.ceil() as i64, [low.floor() as i64, high.ceil() as i64])
    }

    fn pre_queue_open(&self, now_ms: TimestampMs) -> bool {
        self.config.pre_queue_draw && self.config.opens_at_ms.is_some_and(|o| now_ms < o)
    }
}

pub type AppState = Arc<Front>;

// ---- errors -----------------------------------------------------------------------------------

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

    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn invalid_token(error: TokenError) -> ApiError {
        let reason = match error {
            TokenError::Malformed => "malformed",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::WrongKind => "wrong_kind",
            TokenError::OtherDevice => "other_device",
        };
        ApiError {
            reason: Some(reason),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string())
        }
    }

    fn missing_token(what: &str) -> ApiError {
        ApiError {
            reason: Some("missing"),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!("this request needs `Authorization: Bearer <{what}>`"),
            )
        }
    }

    fn unavailable(error: &SubmitError) -> ApiError {
        tracing::warn!(%error, "a ledger call failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the ledger did not answer: {error}"),
        )
    }

    /// A rule of the ledger refused the command.
    pub fn rejected(rejection: Rejection, now_ms: TimestampMs) -> ApiError {
        use RejectionCode::*;
        let code = rejection.code;
        let (status, text) = match code {
            ProxyForbidden => (
                StatusCode::FORBIDDEN,
                "only the verified person may book for themself",
            ),
            DeviceLocked => (
                StatusCode::CONFLICT,
                "another device verified first and holds this person for 10 minutes",
            ),
            VerifyRateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "verification is allowed once per 10 minutes",
            ),
            NotVerified => (
                StatusCode::UNAUTHORIZED,
                "this device is no longer the one that verified; verify again",
            ),
            DateOutOfRange => (
                StatusCode::BAD_REQUEST,
                "the date is outside the campaign's vaccination period",
            ),
            InvalidDoses => (
                StatusCode::BAD_REQUEST,
                "doses must be at least 1 and within the configured maximum",
            ),
            NotEligible => (StatusCode::FORBIDDEN, "outside the campaign's age group"),
            CampaignClosed => (StatusCode::FORBIDDEN, "the campaign is over"),
            NotYourBookingDay => (
                StatusCode::FORBIDDEN,
                "today is not the booking day of your birth date's last digit",
            ),
            NotInChangeWindow => (
                StatusCode::FORBIDDEN,
                "cancel and change open with the change window",
            ),
            BookingInProgress => (
                StatusCode::CONFLICT,
                "a booking of yours is still being decided",
            ),
            AlreadyReserved => (StatusCode::CONFLICT, "you already hold a reservation"),
            NoSuchReservation => (StatusCode::NOT_FOUND, "no such active reservation of yours"),
            AdmissionRequired => (
                StatusCode::UNAUTHORIZED,
                "the admission token was already used or is not yours",
            ),
            AdmissionExpired => (
                StatusCode::UNAUTHORIZED,
                "the admission has expired; queue again",
            ),
            AlreadyQueued => (
                StatusCode::CONFLICT,
                "you already hold a place in the waiting room",
            ),
            NotQueued => (StatusCode::NOT_FOUND, "the ticket is not waiting"),
            UnknownClinic => (
                StatusCode::NOT_FOUND,
                "no clinic is registered under this id",
            ),
            ClinicConflict => (
                StatusCode::CONFLICT,
                "the clinic was registered with another name or region",
            ),
            NoSupply => (StatusCode::CONFLICT, "the clinic has no doses on that date"),
            SoldOut => (
                StatusCode::CONFLICT,
                "no doses left for your booking day at this clinic and date",
            ),
            InsufficientDoses => (StatusCode::CONFLICT, "not enough unbooked doses"),
        };
        // Token-shaped refusals keep the contract's `invalid_token` code; the rule is the reason.
        let (public, reason) = match code {
            NotVerified => ("invalid_token", Some("not_verified")),
            AdmissionRequired => ("invalid_token", Some("admission_used")),
            AdmissionExpired => ("invalid_token", Some("admission_expired")),
            other => (other.as_str(), None),
        };
        ApiError {
            status,
            code: public,
            message: text.to_owned(),
            retry_after_s: rejection
                .retry_at_ms
                .map(|at| ((at - now_ms).max(0) + 999) / 1000),
            reason,
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
        if self.code == "body_too_large" {
            // The body was not read to its end, so this connection cannot carry another request:
            // say so, or a keep-alive client sends its next request into a closed socket.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

// ---- a strict JSON body -----------------------------------------------------------------------

/// A JSON body that answers 400 with a code for anything wrong: too large, not JSON, unknown
/// fields, wrong types, missing fields.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| too_large())?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| body_error(&e))
    }
}

fn too_large() -> ApiError {
    ApiError::bad(
        "body_too_large",
        "the request body is too large or could not be read",
    )
}

fn bad_path() -> ApiError {
    ApiError::bad("invalid_path", "a path parameter could not be read")
}

/// The 400 of a body that does not parse. The message never quotes the body (a resident number
/// sent with the wrong type would otherwise be echoed): only our own field names appear.
fn body_error(e: &serde_json::Error) -> ApiError {
    let text = e.to_string();
    if text.starts_with("unknown field") {
        ApiError::bad(
            "unknown_field",
            "the body has a field this request does not take",
        )
    } else if text.starts_with("missing field") {
        let field = text.split('`').nth(1).unwrap_or("?");
        ApiError::bad(
            "missing_field",
            format!("the body lacks the field `{field}`"),
        )
    } else if e.is_data() {
        ApiError::bad(
            "invalid_field",
            "a field of the body has the wrong type or value",
        )
    } else {
        ApiError::bad("invalid_json", "the body is not a JSON object")
    }
}

// ---- authentication ---------------------------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<&str> {
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
    fn claims(&self, headers: &HeaderMap, kind: Option<TokenKind>) -> Result<Claims, ApiError> {
        let what = match kind {
            Some(TokenKind::Admission) => "admission token",
            _ => "session token",
        };
        let token = bearer(headers).ok_or_else(|| ApiError::missing_token(what))?;
        let now = self.clock.now_ms();
        let result = match kind {
            Some(kind) => self.keys.verify(token, kind, now, device_header(headers)),
            None => self.keys.verify_any(token, now, device_header(headers)),
        };
        result.map_err(ApiError::invalid_token)
    }

    fn admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.config.admin_token else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "admin_disabled",
                "admin endpoints are off (start with --admin-token)",
            ));
        };
        let given = bearer(headers).unwrap_or("");
        // Compare in constant time.
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ApiError::invalid_token(TokenError::BadSignature))
        }
    }
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

fn parse_clinic(text: &str) -> Result<ClinicId, ApiError> {
    ClinicId::new(text).ok_or_else(|| {
        ApiError::bad(
            "invalid_clinic_id",
            "a clinic id is 1 to 64 of [A-Za-z0-9._:-]",
        )
    })
}

fn parse_date(text: &str) -> Result<chrono::NaiveDate, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad("invalid_date", "a date is YYYY-MM-DD"))
}

fn parse_reservation(text: &str) -> Result<ReservationId, ApiError> {
    Uuid::parse_str(text)
        .map(ReservationId)
        .map_err(|_| ApiError::bad("invalid_reservation_id", "a reservation id is a UUID"))
}

// ---- POST /v1/verify --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    method: String,
    resident_id: String,
    name: String,
    device_id: String,
}

pub async fn verify(
    State(front): State<AppState>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> ApiResult {
    let method = Method::parse(&req.method).ok_or_else(|| {
        ApiError::bad(
            "unknown_method",
            "method is one of phone, ipin, joint_certificate, financial_certificate, kakao, naver, pass",
        )
    })?;
    let (subject, birth_date) = front
        .pseudonymiser
        .subject_of(&req.resident_id)
        .map_err(|e| ApiError::bad("invalid_resident_id", e.to_string()))?;
    if req.name.trim().is_empty() || req.name.chars().count() > 64 {
        return Err(ApiError::bad("invalid_name", "name is 1 to 64 characters"));
    }
    let device = DeviceId::new(&req.device_id).ok_or_else(|| {
        ApiError::bad(
            "invalid_device_id",
            "device_id is 1 to 64 of [A-Za-z0-9._:-]",
        )
    })?;
    let provider = front.providers.get(&method).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "method_unavailable",
            "this method is not offered",
        )
    })?;
    if let Err(error) = provider.verify().await {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "method_unavailable",
            format!("{error}; choose another method"),
        );
        e.reason = Some(match error {
            ProviderError::Outage => "outage",
            ProviderError::Congested => "congested",
            ProviderError::Failed => "failed",
        });
        e.retry_after_s = Some(5);
        return Err(e);
    }
    let outcome = front
        .decide(CommandBody::Verify {
            subject,
            birth_date,
            method,
            device: device.clone(),
        })
        .await?;
    let now = front.clock.now_ms();
    if let Some(rejection) = outcome.rejection {
        return Err(ApiError::rejected(rejection, now));
    }
    let expires_at_ms = now + front.config.session_ttl_ms;
    let claims = Claims {
        kind: TokenKind::Session,
        sub: subject,
        dev: device,
        bd: birth_date,
        exp: expires_at_ms,
        adm: None,
        tkt: None,
    };
    Ok(ok(json!({
        "session_token": front.keys.sign(&claims),
        "expires_at": rfc3339(expires_at_ms),
        "booking_day": front.backend.campaign().booking_day_of(birth_date),
    })))
}

// ---- the waiting room -------------------------------------------------------------------------

fn ticket_body(
    front: &Front,
    view: &FrontView,
    ticket: TicketNo,
    owner: Option<&Claims>,
    now: TimestampMs,
) -> Option<Value> {
    let t = view.tickets.get(&ticket)?;
    let mut body = json!({"ticket": ticket.0});
    match t.phase {
        TicketPhase::Waiting => {
            let position = view.position(ticket).unwrap_or(0);
            let (eta, range) = front.eta(view, position, now);
            body["state"] = json!("waiting");
            body["position"] = json!(position);
            body["eta_s"] = json!(eta);
            body["eta_range_s"] = json!(range);
        }
        TicketPhase::Admitted {
            admission,
            expires_at_ms,
        } => {
            let used = view
                .admissions
                .get(&t.subject)
                .is_some_and(|a| a.admission == admission && a.used);
            let expired = now >= expires_at_ms;
            body["state"] = json!(if expired && !used {
                "expired"
            } else {
                "admitted"
            });
            body["position"] = json!(0);
            body["eta_s"] = json!(0);
            body["expires_at"] = json!(rfc3339(expires_at_ms));
            if used {
                body["used"] = json!(true);
            }
            if let Some(claims) = owner.filter(|c| c.sub == t.subject && !expired && !used) {
                let token = Claims {
                    kind: TokenKind::Admission,
                    sub: claims.sub,
                    dev: claims.dev.clone(),
                    bd: claims.bd,
                    exp: expires_at_ms,
                    adm: Some(admission),
                    tkt: Some(ticket),
                };
                body["admission_token"] = json!(front.keys.sign(&token));
            }
        }
        TicketPhase::Left | TicketPhase::Skipped => {
            body["state"] = json!("expired");
            body["reason"] = json!(if t.phase == TicketPhase::Left {
                "left"
            } else {
                "skipped"
            });
            body["position"] = Value::Null;
            body["eta_s"] = Value::Null;
        }
    }
    Some(body)
}

fn pre_queue_body(front: &Front, view: &FrontView, now: TimestampMs) -> Value {
    let ahead = view.pre_queue.len().saturating_sub(1) + view.waiting.len();
    let (eta, range) = front.eta(view, ahead, now);
    json!({
        "ticket": null,
        "state": "waiting",
        "pre_queue": true,
        "position": ahead,
        "eta_s": eta,
        "eta_range_s": range,
        "opens_at": front.config.opens_at_ms.map(rfc3339),
    })
}

pub async fn queue_enter(State(front): State<AppState>, headers: HeaderMap) -> ApiResult {
    let claims = front.claims(&headers, Some(TokenKind::Session))?;
    let now = front.clock.now_ms();
    let body = if front.pre_queue_open(now) {
        CommandBody::JoinPreQueue {
            subject: claims.sub,
            device: claims.dev.clone(),
        }
    } else {
        CommandBody::Enqueue {
            subject: claims.sub,
            device: claims.dev.clone(),
        }
    };
    let mut outcome = front.decide(body.clone()).await?;
    if outcome
        .rejection
        .is_some_and(|r| r.code == RejectionCode::AlreadyQueued)
    {
        // An admission already used to book: leave that ticket and queue again (for a change).
        if let Some(ticket) = used_admitted_ticket(&front, &claims.sub)? {
            front
                .decide(CommandBody::LeaveQueue {
                    subject: claims.sub,
                    ticket,
                })
                .await?;
            outcome = front.decide(body).await?;
        }
    }
    let now = front.clock.now_ms();
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let issued = outcome.events.iter().find_map(|e| match &e.event {
        Event::TicketIssued(t) => Some(t.ticket),
        _ => None,
    });
    match (outcome.rejection, issued) {
        (None, Some(ticket)) => {
            front.heartbeat(ticket);
            let body =
                ticket_body(&front, &view, ticket, Some(&claims), now).ok_or_else(poisoned)?;
            Ok(created(body))
        }
        (None, None) => Ok(created(pre_queue_body(&front, &view, now))),
        (Some(r), _) if r.code == RejectionCode::AlreadyQueued => {
            // A refresh or a second tab: the same place, not a new one.
            if view.pre_queue.contains_key(&claims.sub) {
                return Ok(ok(pre_queue_body(&front, &view, now)));
            }
            let ticket = view
                .ticket_of
                .get(&claims.sub)
                .copied()
                .ok_or_else(poisoned)?;
            front.heartbeat(ticket);
            let body =
                ticket_body(&front, &view, ticket, Some(&claims), now).ok_or_else(poisoned)?;
            Ok(ok(body))
        }
        (Some(r), _) => Err(ApiError::rejected(r, now)),
    }
}

/// The person's admitted ticket whose admission was used, if that is what they hold.
fn used_admitted_ticket(front: &Front, subject: &SubjectId) -> Result<Option<TicketNo>, ApiError> {
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let Some(ticket) = view.ticket_of.get(subject).copied() else {
        return Ok(None);
    };
    let admitted = view
        .tickets
        .get(&ticket)
        .is_some_and(|t| matches!(t.phase, TicketPhase::Admitted { .. }));
    let used = view
        .admissions
        .get(subject)
        .is_some_and(|a| a.ticket == ticket && a.used);
    Ok((admitted && used).then_some(ticket))
}

fn poisoned() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the gateway's view is not available",
    )
}

fn parse_ticket(text: &str) -> Result<TicketNo, ApiError> {
    text.parse::<u64>()
        .map(TicketNo)
        .map_err(|_| ApiError::bad("invalid_ticket", "a ticket is a number, or `me`"))
}

pub async fn queue_status(
    State(front): State<AppState>,
    ticket: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let Path(ticket) = ticket.map_err(|_| bad_path())?;
    let now = front.clock.now_ms();
    // A token, if given, must be valid; only the owner's session gets the admission token.
    let owner = match bearer(&headers) {
        Some(_) => Some(front.claims(&headers, Some(TokenKind::Session))?),
        None => None,
    };
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let ticket = if ticket == "me" {
        let claims = owner
            .as_ref()
            .ok_or_else(|| ApiError::missing_token("session token"))?;
        if view.pre_queue.contains_key(&claims.sub) {
            return Ok(ok(pre_queue_body(&front, &view, now)));
        }
        *view.ticket_of.get(&claims.sub).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_ticket",
                "you hold no ticket",
            )
        })?
    } else {
        parse_ticket(&ticket)?
    };
    let body = ticket_body(&front, &view, ticket, owner.as_ref(), now)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_ticket", "no such ticket"))?;
    if owner.as_ref().is_some_and(|c| {
        view.tickets
            .get(&ticket)
            .is_some_and(|t| t.subject == c.sub)
    }) {
        front.heartbeat(ticket);
    }
    Ok(ok(body))
}

pub async fn queue_leave(
    State(front): State<AppState>,
    ticket: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let Path(ticket) = ticket.map_err(|_| bad_path())?;
    let claims = front.claims(&headers, Some(TokenKind::Session))?;
    let ticket = if ticket == "me" {
        let view = front.backend.view().read().map_err(|_| poisoned())?;
        *view.ticket_of.get(&claims.sub).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_queued", "you hold no ticket")
        })?
    } else {
        parse_ticket(&ticket)?
    };
    let outcome = front
        .decide(CommandBody::LeaveQueue {
            subject: claims.sub,
            ticket,
        })
        .await?;
    if let Some(r) = outcome.rejection {
        return Err(ApiError::rejected(r, front.clock.now_ms()));
    }
    Ok(ok(
        json!({"ticket": ticket.0, "state": "expired", "reason": "left"}),
    ))
}

// ---- GET /v1/congestion -----------------------------------------------------------------------

pub fn congestion_list(front: &Front) -> Vec<Value> {
    let t = front.thresholds();
    let mut lights: Vec<(Method, Level, f64)> = front
        .providers
        .iter()
        .map(|(m, p)| {
            let h = p.health();
            (
                *m,
                congestion::level(&h, &t),
                congestion::expected_wait_ms(&h) / 1000.0,
            )
        })
        .collect();
    // The fastest selectable method is recommended.
    let best = lights
        .iter()
        .filter(|(_, l, _)| *l != Level::Grey)
        .min_by(|a, b| {
            (a.1, a.2)
                .partial_cmp(&(b.1, b.2))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(m, _, _)| *m);
    lights.sort_by_key(|(m, _, _)| *m);
    lights
        .into_iter()
        .map(|(m, level, wait_s)| {
            json!({
                "method": m.as_str(),
                "level": level.as_str(),
                "wait_s": (wait_s * 10.0).round() / 10.0,
                "recommended": Some(m) == best,
            })
        })
        .collect()
}

pub async fn congestion(State(front): State<AppState>) -> Response {
    ok(Value::Array(congestion_list(&front)))
}

// ---- GET /v1/slots ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotsQuery {
    date: Option<String>,
    region: Option<String>,
}

fn phase_share(front: &Front, claims: &Claims, now: TimestampMs) -> Result<Share, ApiError> {
    let campaign = front.backend.campaign();
    if !campaign.is_eligible(claims.bd) {
        return Err(ApiError::rejected(
            Rejection::new(RejectionCode::NotEligible),
            now,
        ));
    }
    let phase = campaign
        .booking_phase(claims.bd, now)
        .map_err(|r| ApiError::rejected(r, now))?;
    Ok(match phase {
        Phase::BookingDay(_) | Phase::ChangeWindow => yeyak_domain::Campaign::share_of(phase),
    })
}

pub async fn slots(
    State(front): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SlotsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| ApiError::bad("invalid_query", e.body_text()))?;
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let now = front.clock.now_ms();
    let share = phase_share(&front, &claims, now)?;
    let date = query.date.as_deref().map(parse_date).transpose()?;
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let mut slots = Vec::new();
    for ((clinic, d, s), row) in &view.model.slot_quota {
        if *s != share || date.is_some_and(|want| want != *d) {
            continue;
        }
        let Some(info) = view.model.clinics.get(clinic) else {
            continue;
        };
        if query.region.as_deref().is_some_and(|r| r != info.region) {
            continue;
        }
        slots.push(json!({
            "clinic_id": clinic.as_str(),
            "name": info.name,
            "region": info.region,
            "date": d.to_string(),
            "share": share.to_string(),
            "capacity": row.capacity,
            "booked": row.booked,
            "remaining": row.remaining().max(0),
        }));
    }
    Ok(ok(json!({"share": share.to_string(), "slots": slots})))
}

// ---- reservations -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    clinic_id: String,
    date: String,
    /// Optional: whom the booking is for. Anyone but the verified person is refused.
    #[serde(default)]
    resident_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    clinic_id: String,
    date: String,
    #[serde(default)]
    resident_id: Option<String>,
}

impl Front {
    fn requested_for(
        &self,
        claims: &Claims,
        resident_id: Option<&str>,
    ) -> Result<SubjectId, ApiError> {
        match resident_id {
            None => Ok(claims.sub),
            Some(text) => self
                .pseudonymiser
                .subject_of(text)
                .map(|(s, _)| s)
                .map_err(|e| ApiError::bad("invalid_resident_id", e.to_string())),
        }
    }
}

/// The person's final answer in a booking or change chain.
fn settled(outcome: &Outcome, now: TimestampMs) -> Result<&Event, ApiError> {
    if let Some(r) = outcome.rejection {
        return Err(ApiError::rejected(r, now));
    }
    for envelope in outcome.events.iter().rev() {
        match &envelope.event {
            Event::ReservationRecorded(_) | Event::ReservationChanged(_) => {
                return Ok(&envelope.event);
            }
            Event::BookingFailed(f) => return Err(ApiError::rejected(Rejection::new(f.code), now)),
            Event::ChangeFailed(f) => return Err(ApiError::rejected(Rejection::new(f.code), now)),
            _ => {}
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the booking was not settled",
    ))
}

pub async fn book(
    State(front): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<BookRequest>,
) -> ApiResult {
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let clinic = parse_clinic(&req.clinic_id)?;
    let date = parse_date(&req.date)?;
    let requested_for = front.requested_for(&claims, req.resident_id.as_deref())?;
    let admission = claims
        .adm
        .ok_or_else(|| ApiError::invalid_token(TokenError::WrongKind))?;
    let outcome = front
        .decide(CommandBody::Book {
            subject: claims.sub,
            requested_for,
            device: claims.dev.clone(),
            clinic,
            date,
            admission,
        })
        .await?;
    match settled(&outcome, front.clock.now_ms())? {
        Event::ReservationRecorded(r) => Ok(created(json!({
            "reservation_id": r.reservation.0.to_string(),
            "clinic_id": r.clinic.as_str(),
            "date": r.date.to_string(),
            "share": r.share.to_string(),
        }))),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unexpected settlement",
        )),
    }
}

pub async fn my_reservation(State(front): State<AppState>, headers: HeaderMap) -> ApiResult {
    let claims = front.claims(&headers, None)?;
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let found = view
        .model
        .reservations
        .iter()
        .find(|(_, r)| r.subject == claims.sub && r.state == ReservationState::Active);
    let Some((id, r)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_reservation",
            "you hold no reservation",
        ));
    };
    let clinic = view.model.clinics.get(&r.clinic);
    Ok(ok(json!({
        "reservation_id": id.0.to_string(),
        "clinic_id": r.clinic.as_str(),
        "clinic_name": clinic.map(|c| c.name.clone()),
        "region": clinic.map(|c| c.region.clone()),
        "date": r.date.to_string(),
        "share": r.share.to_string(),
        "state": r.state.as_str(),
        "booked_at": rfc3339(r.booked_at_ms),
    })))
}

pub async fn cancel(
    State(front): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let Path(id) = id.map_err(|_| bad_path())?;
    let claims = front.claims(&headers, None)?;
    let reservation = parse_reservation(&id)?;
    let outcome = front
        .decide(CommandBody::Cancel {
            subject: claims.sub,
            requested_for: claims.sub,
            device: claims.dev.clone(),
            reservation,
        })
        .await?;
    if let Some(r) = outcome.rejection {
        return Err(ApiError::rejected(r, front.clock.now_ms()));
    }
    Ok(ok(
        json!({"reservation_id": reservation.0.to_string(), "state": "cancelled"}),
    ))
}

pub async fn change(
    State(front): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ChangeRequest>,
) -> ApiResult {
    let Path(id) = id.map_err(|_| bad_path())?;
    let claims = front.claims(&headers, Some(TokenKind::Admission))?;
    let reservation = parse_reservation(&id)?;
    let clinic = parse_clinic(&req.clinic_id)?;
    let date = parse_date(&req.date)?;
    let requested_for = front.requested_for(&claims, req.resident_id.as_deref())?;
    let admission = claims
        .adm
        .ok_or_else(|| ApiError::invalid_token(TokenError::WrongKind))?;
    let outcome = front
        .decide(CommandBody::Rebook {
            subject: claims.sub,
            requested_for,
            device: claims.dev.clone(),
            reservation,
            clinic,
            date,
            admission,
        })
        .await?;
    match settled(&outcome, front.clock.now_ms())? {
        Event::ReservationChanged(r) => Ok(ok(json!({
            "reservation_id": r.reservation.0.to_string(),
            "clinic_id": r.clinic.as_str(),
            "date": r.date.to_string(),
            "share": r.share.to_string(),
            "replaces": r.replaces.0.to_string(),
        }))),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unexpected settlement",
        )),
    }
}

// ---- operators --------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyRequest {
    clinic_id: String,
    name: String,
    region: String,
    date: String,
    doses: u32,
}

pub async fn admin_supply(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    front.admin(&headers)?;
    let body = body.map_err(|_| too_large())?;
    let JsonBody(req): JsonBody<SupplyRequest> = parse_body(&body)?;
    let clinic = parse_clinic(&req.clinic_id)?;
    let date = parse_date(&req.date)?;
    for (field, text) in [("name", &req.name), ("region", &req.region)] {
        if text.trim().is_empty() || text.chars().count() > 100 {
            return Err(ApiError::bad(
                "invalid_field",
                format!("{field} is 1 to 100 characters"),
            ));
        }
    }
    let outcome = front
        .decide(CommandBody::RegisterSupply {
            clinic,
            name: req.name,
            region: req.region,
            date,
            doses: req.doses,
        })
        .await?;
    if let Some(r) = outcome.rejection {
        return Err(ApiError::rejected(r, front.clock.now_ms()));
    }
    let registered = outcome.events.iter().find_map(|e| match &e.event {
        Event::SupplyRegistered(s) => Some(s.clone()),
        _ => None,
    });
    let Some(s) = registered else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the supply was not recorded",
        ));
    };
    Ok(created(json!({
        "clinic_id": s.clinic.as_str(),
        "date": s.date.to_string(),
        "doses": s.doses,
        "day_shares": s.day_shares,
        "pool": s.pool,
    })))
}

/// Parses an admin body after the admin check (so a caller without the token learns nothing).
fn parse_body<T: DeserializeOwned>(bytes: &Bytes) -> Result<JsonBody<T>, ApiError> {
    serde_json::from_slice(bytes)
        .map(JsonBody)
        .map_err(|e| body_error(&e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    now: String,
}

pub async fn admin_clock(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    front.admin(&headers)?;
    let body = body.map_err(|_| too_large())?;
    let JsonBody(req): JsonBody<ClockRequest> = parse_body(&body)?;
    let now = chrono::DateTime::parse_from_rfc3339(&req.now).map_err(|_| {
        ApiError::bad(
            "invalid_time",
            "now is an RFC 3339 instant, e.g. 2021-08-09T20:00:00+09:00",
        )
    })?;
    front.clock.set(now.timestamp_millis());
    Ok(ok(json!({"now": rfc3339(front.clock.now_ms())})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    method: String,
    outage: bool,
}

pub async fn admin_provider(
    State(front): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    front.admin(&headers)?;
    let body = body.map_err(|_| too_large())?;
    let JsonBody(req): JsonBody<ProviderRequest> = parse_body(&body)?;
    let method = Method::parse(&req.method)
        .ok_or_else(|| ApiError::bad("unknown_method", "no such method"))?;
    let provider = front
        .providers
        .get(&method)
        .ok_or_else(|| ApiError::bad("unknown_method", "no such method"))?;
    provider.set_outage(req.outage);
    Ok(ok(json!({"method": method.as_str(), "outage": req.outage})))
}

/// Capacity and booked doses of one `slot_quota` row or a sum of rows.
#[derive(Debug, Clone, Copy, Default)]
struct Fill {
    capacity: i64,
    booked: i64,
}

impl Fill {
    fn add(&mut self, row: &yeyak_read::projection::QuotaRow) {
        self.capacity += row.capacity;
        self.booked += row.booked;
    }

    fn json(&self) -> Value {
        json!({"capacity": self.capacity, "booked": self.booked})
    }
}

/// A total and its split by share (`day0`..`day9`, `pool`).
type FillByShare = (Fill, BTreeMap<String, Fill>);

/// Fill per clinic (with its dates and shares) and per booking day, from the slot quota.
/// A booking day's share is `day<n>` (0-based, calendar order); `pool` is the change window's.
fn fill_body(view: &FrontView, campaign: &yeyak_domain::Campaign, now: TimestampMs) -> Value {
    let model = &view.model;
    let mut clinics: BTreeMap<&ClinicId, (FillByShare, Vec<Value>)> = BTreeMap::new();
    let mut by_share: BTreeMap<Share, Fill> = BTreeMap::new();
    let mut dates: BTreeMap<(&ClinicId, String), FillByShare> = BTreeMap::new();
    for ((clinic, date, share), row) in &model.slot_quota {
        let ((total, shares), _) = clinics.entry(clinic).or_default();
        total.add(row);
        shares.entry(share.to_string()).or_default().add(row);
        by_share.entry(*share).or_default().add(row);
        let (day_total, day_shares) = dates.entry((clinic, date.to_string())).or_default();
        day_total.add(row);
        day_shares.entry(share.to_string()).or_default().add(row);
    }
    for ((clinic, date), (total, shares)) in dates {
        if let Some((_, list)) = clinics.get_mut(clinic) {
            list.push(json!({
                "date": date,
                "capacity": total.capacity,
                "booked": total.booked,
                "shares": shares.iter().map(|(k, f)| (k.clone(), f.json())).collect::<serde_json::Map<_, _>>(),
            }));
        }
    }
    let fill: Vec<Value> = clinics
        .into_iter()
        .map(|(clinic, ((total, shares), dates))| {
            let info = model.clinics.get(clinic);
            json!({
                "clinic_id": clinic.as_str(),
                "name": info.map(|c| c.name.clone()),
                "region": info.map(|c| c.region.clone()),
                "capacity": total.capacity,
                "booked": total.booked,
                "shares": shares.iter().map(|(k, f)| (k.clone(), f.json())).collect::<serde_json::Map<_, _>>(),
                "dates": dates,
            })
        })
        .collect();
    let window = |share: Share, w: &yeyak_domain::calendar::Window, digit: Option<u8>| {
        let f = by_share.get(&share).copied().unwrap_or_default();
        json!({
            "share": share.to_string(),
            "digit": digit,
            "opens_at": rfc3339(w.opens_at_ms),
            "closes_at": rfc3339(w.closes_at_ms),
            "open": w.contains(now),
            "capacity": f.capacity,
            "booked": f.booked,
        })
    };
    let mut days: Vec<Value> = campaign
        .booking_days
        .iter()
        .enumerate()
        .map(|(i, d)| window(Share::Day(i as u8), &d.window, Some(d.digit)))
        .collect();
    days.push(window(Share::Pool, &campaign.change_window, None));
    json!({"fill": fill, "booking_days": days})
}

/// The operator page's data: queue depth, admission rate, lights, fill per booking day and clinic.
pub fn status_body(front: &Front) -> Result<Value, ApiError> {
    let now = front.clock.now_ms();
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let fill = fill_body(&view, front.backend.campaign(), now);
    let rate = *front.admit_rate.lock().map_err(|_| poisoned())?;
    Ok(json!({
        "now": rfc3339(now),
        "backend": front.backend.name(),
        "queue_depth": view.waiting.len(),
        "pre_queue": view.pre_queue.len(),
        "admitted_total": view.admitted_total,
        "admitted_live": view.admitted_live(now),
        "admitted_live_max": front.config.admitted_live_max,
        "admission_rate_per_s": view.admission_rate(now).unwrap_or(0.0),
        "outflow_rate_per_s": rate,
        "admit_per_s": front.config.admit_per_s,
        "opens_at": front.config.opens_at_ms.map(rfc3339),
        "draws": view.draws.iter().map(|d| json!({"seed": d.seed, "drawn": d.drawn, "at": rfc3339(d.at_ms)})).collect::<Vec<_>>(),
        "lights": congestion_list(front),
        "fill": fill["fill"],
        "booking_days": fill["booking_days"],
    }))
}

pub async fn admin_status(State(front): State<AppState>, headers: HeaderMap) -> ApiResult {
    front.admin(&headers)?;
    Ok(ok(status_body(&front)?))
}

/// `GET /v1/queue/draws`: every pre-queue draw with its published seed.
pub async fn draws(State(front): State<AppState>) -> ApiResult {
    let view = front.backend.view().read().map_err(|_| poisoned())?;
    let list: Vec<Value> = view
        .draws
        .iter()
        .map(|d| json!({"seed": d.seed, "drawn": d.drawn, "at": rfc3339(d.at_ms)}))
        .collect();
    Ok(ok(
        json!({"opens_at": front.config.opens_at_ms.map(rfc3339), "draw": front.config.pre_queue_draw, "draws": list}),
    ))
}

// ---- /metrics ---------------------------------------------------------------------------------

pub async fn metrics(State(front): State<AppState>) -> Response {
    use std::fmt::Write as _;
    let now = front.clock.now_ms();
    let mut gauges = String::new();
    if let Ok(view) = front.backend.view().read() {
        let _ = writeln!(
            gauges,
            "# HELP yeyak_queue_depth Tickets waiting in the waiting room.\n# TYPE yeyak_queue_depth gauge"
        );
        let _ = writeln!(gauges, "yeyak_queue_depth {}", view.waiting.len());
        let _ = writeln!(
            gauges,
            "# HELP yeyak_pre_queue_depth People waiting for the opening draw.\n# TYPE yeyak_pre_queue_depth gauge"
        );
        let _ = writeln!(gauges, "yeyak_pre_queue_depth {}", view.pre_queue.len());
        let _ = writeln!(
            gauges,
            "# HELP yeyak_admission_rate Admissions per second, measured over the last minute.\n# TYPE yeyak_admission_rate gauge"
        );
        let _ = writeln!(
            gauges,
            "yeyak_admission_rate {}",
            view.admission_rate(now).unwrap_or(0.0)
        );
        let _ = writeln!(
            gauges,
            "# HELP yeyak_admitted_total Tickets admitted.\n# TYPE yeyak_admitted_total counter"
        );
        let _ = writeln!(gauges, "yeyak_admitted_total {}", view.admitted_total);
    }
    let _ = writeln!(
        gauges,
        "# HELP yeyak_verification_wait_seconds Measured verification wait per method.\n# TYPE yeyak_verification_wait_seconds gauge"
    );
    for (m, p) in &front.providers {
        let _ = writeln!(
            gauges,
            "yeyak_verification_wait_seconds{{method=\"{}\"}} {}",
            m.as_str(),
            p.health().wait_ms / 1000.0
        );
    }
    let _ = writeln!(
        gauges,
        "# HELP yeyak_congestion_level Light per method: 0 green, 1 yellow, 2 red, 3 grey.\n# TYPE yeyak_congestion_level gauge"
    );
    let t = front.thresholds();
    for (m, p) in &front.providers {
        let _ = writeln!(
            gauges,
            "yeyak_congestion_level{{method=\"{}\"}} {}",
            m.as_str(),
            congestion::level(&p.health(), &t) as u8
        );
    }
    let body = front.metrics.render(&gauges);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
