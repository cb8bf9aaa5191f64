//! What the front tier's tests share: a server on booking day 9 on the embedded log, a raw
//! HTTP call, and a verified person with a place in the queue.
#![allow(dead_code)]

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yeyak_domain::Campaign;
use yeyak_front::api::Front;
use yeyak_front::backend::Backend;
use yeyak_front::server::Running;
use yeyak_front::tokens::TokenKey;
use yeyak_front::{FrontConfig, server};
use yeyak_identity::{Pseudonymiser, ResidentNumber, SecretKey};
use yeyak_log::FsyncPolicy;

pub const BOOKING_DAY_9: &str = "2021-08-09T20:05:00+09:00";

/// A server on booking day 9 whose controller admits nobody: the tests admit by hand.
pub async fn server(config: FrontConfig) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        Backend::embedded_dir(dir.path(), Campaign::default_2021(), FsyncPolicy::Never).unwrap();
    let key = SecretKey::new(b"yeyak events tests key, not secr".to_vec()).unwrap();
    let front = Front::new(
        config,
        backend,
        TokenKey::new(vec![7; 32]),
        Pseudonymiser::new(key),
    );
    let now = chrono::DateTime::parse_from_rfc3339(BOOKING_DAY_9).unwrap();
    front.clock.set(now.timestamp_millis());
    let running = server::start(front, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (running, dir)
}

pub fn config() -> FrontConfig {
    FrontConfig {
        admit_per_s: 0.0,
        simulated_clock: true,
        ..FrontConfig::fast()
    }
}

/// One request on its own connection: status and JSON body.
pub async fn call(
    running: &Running,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    call_with(running, method, path, token, None).await
}

pub async fn call_with(
    running: &Running,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A person born on a 9th (today's booking day) verified and queued: session and ticket.
pub async fn queued(running: &Running, serial: u32) -> (String, u64) {
    let rid = ResidentNumber::synthesize("1990-03-09".parse().unwrap(), false, serial);
    let body = json!({"method": "kakao", "resident_id": rid, "name": "n", "device_id": format!("d{serial}")});
    let (status, verified) = call_with(running, "POST", "/v1/verify", None, Some(body)).await;
    assert_eq!(status, 200, "{verified}");
    let session = verified["session_token"].as_str().unwrap().to_owned();
    let (status, place) = call(running, "POST", "/v1/queue", Some(&session)).await;
    assert_eq!(status, 201, "{place}");
    (session, place["ticket"].as_u64().unwrap())
}
