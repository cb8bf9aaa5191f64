//! The waiting room's event stream (`GET /v1/queue/{ticket}/events`), from a raw socket as a
//! page meets it: the ticket at once, the admission pushed as soon as it is decided (long
//! before the refresh the ticket asks for), then the end; the owner's stream keeps the ticket
//! alive; the stream's bounds (open streams, lifetime, the server's stop) and its 404.

mod common;

use std::time::{Duration, Instant};

use common::{call, config, queued, server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yeyak_domain::{CommandBody, TicketNo};
use yeyak_front::FrontConfig;
use yeyak_front::server::{HttpLimits, Running};

/// An open event stream, read as a page reads it.
struct Events {
    stream: TcpStream,
    text: String,
    read: usize,
}

impl Events {
    /// Opens it: the answer's status line and headers, and the stream.
    async fn open(running: &Running, ticket: &str, token: Option<&str>) -> (String, Events) {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
        let head = format!(
            "GET /v1/queue/{ticket}/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n{auth}\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut events = Events {
            stream,
            text: String::new(),
            read: 0,
        };
        while !events.text.contains("\r\n\r\n") {
            assert!(events.fill(Duration::from_secs(5)).await, "no answer");
        }
        let (head, _) = events.text.split_once("\r\n\r\n").unwrap();
        let head = head.to_owned();
        events.read = head.len() + 4;
        (head, events)
    }

    /// Reads more; `false` at the end of the connection or after `within`.
    async fn fill(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(within, self.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            _ => false,
        }
    }

    /// The next event (name and data) within `within`; `None` if the stream ended (the
    /// chunked body's last chunk) or nothing came.
    async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let rest = &self.text[self.read..];
            if let Some(at) = rest.find("event: ") {
                if let Some(end) = rest[at..].find("\n\n") {
                    let block = &rest[at..at + end];
                    self.read += at + end + 2;
                    let name = block["event: ".len()..block.find('\n')?].to_owned();
                    let data = block.split_once("data: ")?.1;
                    return Some((name, serde_json::from_str(data).unwrap()));
                }
            }
            if rest.contains("\r\n0\r\n\r\n") || rest.starts_with("0\r\n\r\n") {
                return None;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.fill(left).await {
                return None;
            }
        }
    }

    /// Whether the stream ends (its last chunk, or the connection closed) within `within`.
    async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.text[self.read..].contains("0\r\n\r\n") {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            if !self.fill(left).await {
                return tokio::time::Instant::now() < deadline;
            }
        }
    }
}

async fn admit_one(running: &Running) {
    let admit = CommandBody::Admit {
        tickets_max: 1,
        ttl_ms: 600_000,
    };
    running.front.decide(admit).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admission_is_pushed_at_once_and_the_stream_ends() {
    let (running, _dir) = server(config()).await;
    queued(&running, 1).await;
    let (session, ticket) = queued(&running, 2).await;

    let (head, mut events) = Events::open(&running, &ticket.to_string(), Some(&session)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let (name, waiting) = events.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(name, "ticket");
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert_eq!(waiting["position"], 1);
    assert!(waiting["eta_range_s"].is_array());
    // Nobody is admitted: the ETA is long, and so is the refresh a page is asked to wait.
    let refresh_ms = waiting["poll_after_ms"].as_u64().unwrap();
    assert!(refresh_ms >= 10_000, "{waiting}");

    // The person ahead is admitted, then this ticket: its admission is pushed at once,
    // although no refresh is due for another ten seconds.
    admit_one(&running).await;
    let admitted_at = Instant::now();
    admit_one(&running).await;
    let (_, admitted) = events.next(Duration::from_secs(2)).await.unwrap();
    assert!(admitted_at.elapsed() < Duration::from_secs(1));
    assert_eq!(admitted["state"], "admitted", "{admitted}");
    assert!(
        admitted["admission_token"].is_string(),
        "the owner's admission"
    );
    assert!(admitted["expires_in_s"].as_i64().unwrap() > 0);
    // Its last word: the stream ends.
    assert!(events.ends_within(Duration::from_secs(2)).await);
    // Another person's ticket, watched without a session, shows no token to anyone else.
    let (_, mut theirs) = Events::open(&running, &ticket.to_string(), None).await;
    let (_, seen) = theirs.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(seen["state"], "admitted");
    assert!(seen.get("admission_token").is_none(), "{seen}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owners_open_stream_keeps_the_ticket_alive() {
    let config = FrontConfig {
        heartbeat_timeout_ms: 3_000,
        ..config()
    };
    let (running, _dir) = server(config).await;
    let (_, silent) = queued(&running, 3).await;
    let (session, watched) = queued(&running, 4).await;
    let (_, mut events) = Events::open(&running, &watched.to_string(), Some(&session)).await;
    // Twice the heartbeat timeout with the stream open (it ends at its bound and is opened
    // again, as the page does), and no poll.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        while events.next(Duration::from_millis(500)).await.is_some() {}
        if events.ends_within(Duration::from_millis(10)).await {
            (_, events) = Events::open(&running, &watched.to_string(), Some(&session)).await;
        }
    }
    let state = |t: u64| {
        let view = running.front.view().unwrap();
        view.tickets.get(&TicketNo(t)).map(|t| t.phase)
    };
    use yeyak_front::view::TicketPhase;
    assert_eq!(
        state(silent),
        Some(TicketPhase::Skipped),
        "no page, no life"
    );
    assert_eq!(
        state(watched),
        Some(TicketPhase::Waiting),
        "its stream kept it"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_are_bounded_in_number_and_lifetime() {
    let config = FrontConfig {
        heartbeat_timeout_ms: 2_000,
        http: HttpLimits {
            event_streams_max: 1,
            ..HttpLimits::default()
        },
        ..config()
    };
    let (running, _dir) = server(config).await;
    let (session, ticket) = queued(&running, 5).await;
    let path = ticket.to_string();

    // A ticket nobody holds: the 404 of GET /v1/queue/{ticket}, no stream.
    let (status, body) = call(&running, "GET", "/v1/queue/999999/events", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_ticket"))
    );

    let (_, mut open) = Events::open(&running, &path, Some(&session)).await;
    assert!(open.next(Duration::from_secs(2)).await.is_some());
    let (over, _) = Events::open(&running, &path, Some(&session)).await;
    assert!(over.starts_with("HTTP/1.1 503"), "{over}");
    assert!(over.to_lowercase().contains("retry-after: 1"), "{over}");
    // It lives no longer than the heartbeat timeout; then its place is free again.
    let opened = Instant::now();
    assert!(
        open.ends_within(Duration::from_secs(4)).await,
        "bounded lifetime"
    );
    assert!(opened.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (again, mut open) = Events::open(&running, &path, Some(&session)).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(open.next(Duration::from_secs(2)).await.is_some());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_ends_at_the_stop() {
    // Its own bound is the heartbeat timeout, a minute here: longer than the stop may take.
    let (running, _dir) = server(config()).await;
    let (session, ticket) = queued(&running, 6).await;
    let (_, mut open) = Events::open(&running, &ticket.to_string(), Some(&session)).await;
    assert!(open.next(Duration::from_secs(2)).await.is_some());
    // The stop does not wait out the stream (the graceful stop's grace is 30 s).
    let stopping = Instant::now();
    running.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    assert!(open.ends_within(Duration::from_secs(1)).await);
}
