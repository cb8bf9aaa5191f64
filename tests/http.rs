//! The HTTP server's bounds, from a raw socket as a hostile or careless client meets them: a
//! body over the limit gets a `413` the client can read, a slow-loris client is cut off, a
//! connection over the limit and a request over the in-flight bound get `503` with
//! `Retry-After`, and one address sending verifications over its rate gets `429` with
//! `Retry-After` while another address is served.

mod api_common;

use std::time::{Duration, Instant};

use api_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yeyak_front::FrontConfig;
use yeyak_front::backend::Backend;
use yeyak_front::client_rate::ClientRate;
use yeyak_front::server::{HttpLimits, Running};
use yeyak_log::FsyncPolicy;

async fn server(http: HttpLimits) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded_dir(
        dir.path(),
        yeyak_domain::Campaign::default_2021(),
        FsyncPolicy::Never,
    )
    .unwrap();
    let config = FrontConfig { http, ..config() };
    (start(backend, config).await, dir)
}

/// Everything the server sends until it closes (or `within` passes): the answer's text.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no close within {within:?}: {answer:?}");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_the_limit_gets_a_413_the_client_reads_after_sending_it_all() {
    let (running, _dir) = server(HttpLimits::default()).await;
    let body = vec![b' '; 200 * 1024];
    for _ in 0..2 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        let head = format!(
            "POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The whole body goes out, in pieces as a slow uplink sends it (the server reads it to
        // its end instead of closing on the client), then the answer is there to read.
        for piece in body.chunks(25 * 1024) {
            stream
                .write_all(piece)
                .await
                .expect("the server reads the body");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let answer = read_answer_of_one(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"body_too_large\""), "{answer}");
    }
    running.stop().await;
}

/// Reads one answer on a connection that stays open: until the JSON body's end.
async fn read_answer_of_one(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    while !answer.ends_with(b"}") {
        let n = tokio::time::timeout_at(until.into(), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("no reset");
        assert!(n > 0, "closed before the answer: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_loris_client_is_cut_off() {
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..HttpLimits::default()
    };
    let (running, _dir) = server(limits).await;
    // A head that never ends.
    let started = Instant::now();
    let mut head = TcpStream::connect(running.addr).await.unwrap();
    head.write_all(b"GET /v1/congestion HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    read_answer(&mut head, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    // A body that never ends: 408, closed.
    let mut body = TcpStream::connect(running.addr).await.unwrap();
    body.write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let answer = read_answer(&mut body, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    // A head over the size bound: 431.
    let mut big = TcpStream::connect(running.addr).await.unwrap();
    let huge = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    big.write_all(huge.as_bytes()).await.unwrap();
    let answer = read_answer(&mut big, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_connection_or_in_flight_bound_the_answer_is_503_with_retry_after() {
    let limits = HttpLimits {
        connections_max: 2,
        ..HttpLimits::default()
    };
    let (running, _dir) = server(limits).await;
    let _held = [
        TcpStream::connect(running.addr).await.unwrap(),
        TcpStream::connect(running.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    third
        .write_all(b"GET /v1/congestion HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"overloaded\""), "{answer}");
    running.stop().await;

    let (running, _dir) = server(HttpLimits {
        requests_in_flight_max: 0,
        ..HttpLimits::default()
    })
    .await;
    let api = Api::new(&running);
    let answer = api
        .client
        .get(format!("{}/v1/congestion", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifications_over_an_addresss_rate_get_429_and_other_addresses_go_on() {
    let (running, _dir) = server(HttpLimits {
        verify_per_client: Some(ClientRate::new(0.1, 3)),
        ..HttpLimits::default()
    })
    .await;
    let api = Api::new(&running);
    // The burst: three people verify from one address (a shared computer, a NAT).
    for n in 0..3 {
        let answer = api.verify("kakao", &rid("1990-05-19", n), "pc").await;
        answer.expect(200, "");
    }
    let flood = api.verify("kakao", &rid("1990-05-19", 3), "pc").await;
    flood.expect(429, "client_rate_limited");
    let wait = flood.body["retry_after_s"].as_i64().unwrap();
    assert!(
        (5..=10).contains(&wait),
        "one more in 10 s: {:?}",
        flood.body
    );
    let raw = api
        .client
        .post(format!("{}/v1/verify", api.base))
        .json(
            &serde_json::json!({"method": "kakao", "resident_id": rid("1990-05-19", 4),
                                 "name": "x", "device_id": "pc"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    let header: i64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((5..=10).contains(&header), "{header}");
    // Only verification is limited; another address verifies at once.
    api.get("/v1/congestion", None).await.expect(200, "");
    let elsewhere = Api {
        client: reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap(),
        base: api.base.clone(),
        front: api.front.clone(),
    };
    let answer = elsewhere.verify("kakao", &rid("1990-05-19", 5), "pc").await;
    answer.expect(200, "");
    running.stop().await;
}
