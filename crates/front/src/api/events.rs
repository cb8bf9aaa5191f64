//! `GET /v1/queue/{ticket|me}/events`: the waiting room pushed to the page as Server-Sent
//! Events instead of polled. Each `ticket` event carries what `GET /v1/queue/{ticket}` would
//! answer at that moment (position, ETA range, `poll_after_ms`; once admitted, the admission,
//! with its token to the owner). It is sent as soon as the ticket's phase changes (an admission
//! is never kept waiting: the stream wakes on every batch the gateway's view folds) and
//! otherwise again every `poll_after_ms` of the last one (the back of a long queue is refreshed
//! less often); a comment every [`KEEP_ALIVE`] tells the page the connection still lives.
//! An `error` event (`{"error", "message"}`, the codes of `GET /v1/queue/{ticket}`) is a last
//! word too.
//!
//! Bounded: a stream ends after its last word (admitted, expired, an error), at the latest after
//! the heartbeat timeout (the page connects again at once), and when the server stops; at most
//! `HttpLimits::event_streams_max` are open (one more is answered `503 overloaded`, and the page
//! polls instead), and each holds one of the server's `connections_max` connections. The
//! owner's open stream is the ticket's heartbeat, as the owner's polls are: a page that went
//! away keeps its ticket alive at most until its stream's bound, then the heartbeat timeout.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use yeyak_domain::TicketNo;

use super::error::ApiError;
use super::extract;
use super::queue::{self, QueueError, Which};
use super::{AppState, Front};
use crate::tokens::Claims;
use crate::view::{FrontView, TicketPhase};

/// A comment this often keeps the connection (and the proxies on its way) from going idle, and
/// tells the page it still hears the server.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A ticket's event between two phase changes is sent again after this, when its body names
/// no `poll_after_ms` (a pre-queue place does).
const REFRESH_DEFAULT: Duration = Duration::from_secs(5);

/// `GET /v1/queue/{ticket|me}/events`: `text/event-stream` of the ticket; the same tokens,
/// checks and codes as `GET /v1/queue/{ticket|me}`, answered before the stream opens.
pub async fn stream(
    State(front): State<AppState>,
    ticket: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, QueueError> {
    let ticket = extract::path_param(ticket)?;
    let owner = queue::owner(&front, &headers)?;
    let which = Which::parse(&ticket)?;
    // An unknown ticket is a 404, not a stream that ends at once.
    queue::look(
        &front,
        &*front.view()?,
        which,
        owner.as_ref(),
        front.clock.now_ms(),
    )?;
    let permit = front
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| QueueError::StreamsFull {
            retry_after_s: front.config.http.retry_after_s,
        })?;
    let lifetime = Duration::from_millis(front.config.heartbeat_timeout_ms.max(1_000));
    let watch = Watch {
        changes: front.backend.changes(),
        stopping: front.stopping.subscribe(),
        ends_at: Instant::now() + lifetime,
        front,
        which,
        owner,
        sent: None,
        finished: false,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(watch, Watch::next);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // A buffering proxy (nginx) would hold the events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What can change a ticket's answer at once, read in O(1): a new phase is sent without delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phase {
    pre_queue: bool,
    ticket: Option<(TicketNo, Option<TicketPhase>)>,
    /// Operators paused admissions: said at once, and so is their resuming.
    admissions_paused: bool,
}

impl Phase {
    fn of(view: &FrontView, which: Which, owner: Option<&Claims>) -> Phase {
        let (pre_queue, ticket) = match (which, owner) {
            (Which::Ticket(ticket), _) => (false, Some(ticket)),
            (Which::Mine, Some(c)) => (
                view.pre_queue.contains_key(&c.sub),
                view.ticket_of.get(&c.sub).copied(),
            ),
            (Which::Mine, None) => (false, None),
        };
        let ticket = ticket.map(|t| (t, view.tickets.get(&t).map(|v| v.phase)));
        Phase {
            pre_queue,
            ticket,
            admissions_paused: super::ticket::admissions_paused(view),
        }
    }
}

/// The last event sent: its phase, when, and when to send it again.
struct Sent {
    phase: Phase,
    refresh_at: Instant,
}

/// One open stream: what it watches and what it has sent.
struct Watch {
    front: AppState,
    which: Which,
    owner: Option<Claims>,
    /// Wakes when the view folds new events.
    changes: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    ends_at: Instant,
    sent: Option<Sent>,
    /// The last word was sent.
    finished: bool,
    /// One of `event_streams_max`, given back when the stream is dropped.
    _permit: OwnedSemaphorePermit,
}

impl Watch {
    /// The next event, or `None` when the stream ends.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watch)> {
        loop {
            if self.finished {
                return None;
            }
            let phase =
                (self.front.view()).map(|view| Phase::of(&view, self.which, self.owner.as_ref()));
            let phase = match phase {
                Ok(phase) => phase,
                Err(e) => return Some(self.last_word(e.into())),
            };
            let due = self
                .sent
                .as_ref()
                .is_none_or(|s| s.phase != phase || Instant::now() >= s.refresh_at);
            if due {
                return Some(match self.send(phase) {
                    Ok(event) => (Ok(event), self),
                    Err(error) => self.last_word(error),
                });
            }
            if !self.wait().await {
                return None;
            }
        }
    }

    /// The ticket's answer now, as an event; the last one once the ticket waits no more.
    fn send(&mut self, phase: Phase) -> Result<Event, QueueError> {
        let front: &Front = &self.front;
        let now = front.clock.now_ms();
        let look = queue::look(front, &*front.view()?, self.which, self.owner.as_ref(), now)?;
        if let Some(ticket) = look.owned {
            front.heartbeat(ticket);
        }
        self.finished = look.body["state"] != "waiting";
        let refresh = look.body["poll_after_ms"]
            .as_u64()
            .map_or(REFRESH_DEFAULT, Duration::from_millis);
        self.sent = Some(Sent {
            phase,
            refresh_at: Instant::now() + refresh,
        });
        Ok(Event::default().event("ticket").data(look.body.to_string()))
    }

    /// An `error` event with the code `GET /v1/queue/{ticket}` would answer; the stream ends.
    fn last_word(mut self, error: QueueError) -> (Result<Event, Infallible>, Watch) {
        self.finished = true;
        let error = ApiError::from(error);
        let body: Value = json!({"error": error.code, "message": error.message});
        let event = Event::default().event("error").data(body.to_string());
        (Ok(event), self)
    }

    /// Until the view changes, the refresh is due, the stream's bound, or the server's stop;
    /// `false`: the stream ends.
    async fn wait(&mut self) -> bool {
        let refresh_at = self.sent.as_ref().map_or(self.ends_at, |s| s.refresh_at);
        tokio::select! {
            changed = self.changes.changed() => changed.is_ok(),
            () = tokio::time::sleep_until(refresh_at) => true,
            _ = self.stopping.wait_for(|stopping| *stopping) => false,
            () = tokio::time::sleep_until(self.ends_at) => false,
        }
    }
}
