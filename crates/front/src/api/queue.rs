//! `/v1/queue`: take a place in the waiting room (or in the pre-queue before opening), look at
//! it, leave it; and `/v1/queue/draws`, the published pre-queue draws. Whether a request gets
//! a new ticket or keeps the one it holds is the waiting room's decision, made from its own
//! state (so every gateway answers alike): the handlers only map its answer.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use yeyak_domain::system::Outcome;
use yeyak_domain::{CommandBody, Event, RejectionCode, SubjectId, TicketNo, TimestampMs};

use super::auth::{AuthError, bearer};
use super::error::{ApiError, Unexpected, answered_as_api_error};
use super::extract::{self, RequestError};
use super::refusal::Refusal;
use super::schedule;
use super::ticket::{pre_queue_body, ticket_body};
use super::{AppState, Front, created, ok};
use crate::clock::rfc3339;
use crate::tokens::{Claims, TokenKind};
use crate::view::FrontView;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// `404 unknown_ticket`: the caller holds none (`me`), or no such ticket exists (a finished
    /// one is forgotten once no live token can ask for it).
    #[error("{0}")]
    UnknownTicket(&'static str),
    /// `404 not_queued`: leaving `me` without holding a ticket.
    #[error("you hold no ticket")]
    NotQueued,
    /// `503 overloaded`: as many event streams are open as the server holds; poll instead.
    #[error("the server holds as many event streams as it can; poll the ticket instead")]
    StreamsFull { retry_after_s: u64 },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> ApiError {
        let message = error.to_string();
        match error {
            QueueError::Request(e) => e.into(),
            QueueError::Auth(e) => e.into(),
            QueueError::UnknownTicket(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_ticket", message)
            }
            QueueError::NotQueued => ApiError::new(StatusCode::NOT_FOUND, "not_queued", message),
            QueueError::StreamsFull { retry_after_s } => ApiError {
                retry_after_s: Some(retry_after_s as i64),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
            },
            QueueError::Refused(e) => e.into(),
            QueueError::Unexpected(e) => e.into(),
        }
    }
}

answered_as_api_error!(QueueError);

type Answer = Result<Response, QueueError>;

/// The waiting room's answer to a request for a place.
enum Place {
    /// A new ticket, at the back.
    Issued(TicketNo),
    /// The live ticket the person already holds.
    Kept(TicketNo),
    /// A place in the pre-queue: `joined` now, or held already.
    PreQueue { joined: bool },
}

impl Place {
    fn of(
        outcome: &Outcome,
        view: &FrontView,
        subject: &SubjectId,
        now: TimestampMs,
    ) -> Result<Place, QueueError> {
        if let Some(rejection) = outcome.rejection {
            return match rejection.code {
                RejectionCode::AlreadyQueued => Place::already_queued(view, subject),
                _ => Err(Refusal::new(rejection, now).into()),
            };
        }
        let place = outcome.events.iter().find_map(|e| match &e.event {
            Event::TicketIssued(t) => Some(Place::Issued(t.ticket)),
            Event::TicketKept(t) => Some(Place::Kept(t.ticket)),
            Event::PreQueueJoined(_) => Some(Place::PreQueue { joined: true }),
            _ => None,
        });
        place.ok_or_else(|| Unexpected::Unsettled("the waiting room gave no place").into())
    }

    fn ticket(&self) -> Option<TicketNo> {
        match self {
            Place::Issued(ticket) | Place::Kept(ticket) => Some(*ticket),
            Place::PreQueue { .. } => None,
        }
    }

    /// `201 Created` for a new place, `200 OK` for the one held already.
    fn answer(&self, body: Value) -> Response {
        match self {
            Place::Issued(_) | Place::PreQueue { joined: true } => created(body),
            Place::Kept(_) | Place::PreQueue { joined: false } => ok(body),
        }
    }

    /// `AlreadyQueued` is the pre-queue's answer (there is no ticket to give back before the
    /// draw); from a ledger older than `TicketKept` it also meant a live ticket, which the view
    /// then names.
    fn already_queued(view: &FrontView, subject: &SubjectId) -> Result<Place, QueueError> {
        if view.pre_queue.contains_key(subject) {
            return Ok(Place::PreQueue { joined: false });
        }
        let ticket = view.ticket_of.get(subject).copied();
        ticket
            .map(Place::Kept)
            .ok_or(QueueError::Unexpected(Unexpected::ViewUnavailable))
    }
}

/// `POST /v1/queue`: a new place (`201`), or the one the person holds already (`200`).
pub async fn enter(State(front): State<AppState>, headers: HeaderMap) -> Answer {
    let claims = front.claims(&headers, Some(TokenKind::Session))?;
    let (subject, device) = (claims.sub, claims.dev.clone());
    schedule::may_queue(&front, &*front.view()?, &subject, front.clock.now_ms())?;
    let command = if front.pre_queue_open(front.clock.now_ms()) {
        CommandBody::JoinPreQueue { subject, device }
    } else {
        CommandBody::Enqueue { subject, device }
    };
    let outcome = front.decide(command).await?;
    let now = front.clock.now_ms();
    let view = front.view()?;
    let place = Place::of(&outcome, &view, &subject, now)?;
    let Some(ticket) = place.ticket() else {
        return Ok(place.answer(pre_queue_body(&front, &view, now)));
    };
    front.heartbeat(ticket);
    let body = ticket_body(&front, &view, ticket, Some(&claims), now)
        .ok_or(Unexpected::ViewUnavailable)?;
    Ok(place.answer(body))
}

/// `GET /v1/queue/{ticket|me}`: anyone may look at a ticket; only the owner's session gets
/// the admission token, and the owner's poll keeps the ticket alive.
pub async fn status(
    State(front): State<AppState>,
    ticket: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let ticket = extract::path_param(ticket)?;
    let now = front.clock.now_ms();
    let owner = owner(&front, &headers)?;
    let which = Which::parse(&ticket)?;
    let look = look(&front, &*front.view()?, which, owner.as_ref(), now)?;
    if let Some(ticket) = look.owned {
        front.heartbeat(ticket);
    }
    Ok(ok(look.body))
}

/// The ticket a path names: the caller's own (`me`: also the place in the pre-queue), or one
/// by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Mine,
    Ticket(TicketNo),
}

impl Which {
    pub fn parse(param: &str) -> Result<Which, QueueError> {
        if param == "me" {
            return Ok(Which::Mine);
        }
        Ok(Which::Ticket(extract::ticket(param)?))
    }
}

/// The caller's session, if it sent a token (which must then be a valid session token).
pub fn owner(front: &Front, headers: &HeaderMap) -> Result<Option<Claims>, QueueError> {
    match bearer(headers) {
        Some(_) => Ok(Some(front.claims(headers, Some(TokenKind::Session))?)),
        None => Ok(None),
    }
}

/// A place as `owner` may see it, and the ticket if the caller owns it (whose look is then
/// the owner's heartbeat).
pub struct Look {
    pub body: Value,
    pub owned: Option<TicketNo>,
}

/// What `GET /v1/queue/{ticket|me}` answers `owner` at `now`; its event stream sends the same.
pub fn look(
    front: &Front,
    view: &FrontView,
    which: Which,
    owner: Option<&Claims>,
    now: TimestampMs,
) -> Result<Look, QueueError> {
    let ticket = match which {
        Which::Ticket(ticket) => ticket,
        Which::Mine => {
            let claims = owner.ok_or(AuthError::Missing("session token"))?;
            if view.pre_queue.contains_key(&claims.sub) {
                let body = pre_queue_body(front, view, now);
                return Ok(Look { body, owned: None });
            }
            let mine = view.ticket_of.get(&claims.sub).copied();
            mine.ok_or(QueueError::UnknownTicket("you hold no ticket"))?
        }
    };
    let body = ticket_body(front, view, ticket, owner, now).ok_or(QueueError::UnknownTicket(
        "no such ticket, or it ended long enough ago to be forgotten",
    ))?;
    let owns = |c: &Claims| {
        view.tickets
            .get(&ticket)
            .is_some_and(|t| t.subject == c.sub)
    };
    let owned = owner.filter(|c| owns(c)).map(|_| ticket);
    Ok(Look { body, owned })
}

/// `DELETE /v1/queue/{ticket|me}`: give the place up.
pub async fn leave(
    State(front): State<AppState>,
    ticket: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Answer {
    let ticket = extract::path_param(ticket)?;
    let claims = front.claims(&headers, Some(TokenKind::Session))?;
    let ticket = if ticket == "me" {
        let view = front.view()?;
        let mine = view.ticket_of.get(&claims.sub).copied();
        mine.ok_or(QueueError::NotQueued)?
    } else {
        extract::ticket(&ticket)?
    };
    let outcome = front
        .decide(CommandBody::LeaveQueue {
            subject: claims.sub,
            ticket,
        })
        .await?;
    Refusal::of(&outcome, front.clock.now_ms())?;
    Ok(ok(
        json!({"ticket": ticket.0, "state": "expired", "reason": "left"}),
    ))
}

/// `GET /v1/queue/draws`: every pre-queue draw with its published seed.
pub async fn draws(State(front): State<AppState>) -> Answer {
    let view = front.view()?;
    let list: Vec<Value> = view
        .draws
        .iter()
        .map(|d| json!({"seed": d.seed, "drawn": d.drawn, "at": rfc3339(d.at_ms)}))
        .collect();
    Ok(ok(json!({
        "opens_at": front.config.opens_at_ms.map(rfc3339),
        "draw": front.config.pre_queue_draw,
        "draws": list,
    })))
}
