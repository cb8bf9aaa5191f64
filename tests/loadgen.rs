//! `yeyak loadgen` over hyper's client against a real `yeyak serve` (a rehearsal on the
//! embedded log), with two targets: the first accepts connections and drops them (a gateway
//! that dies), so every request that reaches it is sent again to the next, and the flows
//! complete there.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const ADMIN_TOKEN: &str = "loadgen-test-admin-token-not-a-secret-0123456789";

/// A listener that accepts every connection and closes it at once, on a thread of its own.
fn dying_gateway() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    format!("http://{addr}")
}

/// A rehearsal server on the embedded log, its providers instant and its outflow above the
/// load; with its address.
fn rehearsal() -> (std::process::Child, String, common::lines::Lines) {
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-token",
        ADMIN_TOKEN,
        "--clock",
        "2021-08-09T20:00:00+09:00",
        "--instant-providers",
        "--admit-per-s",
        "100000",
        "--fsync",
        "never",
        "--controller-tick-ms",
        "20",
    ];
    common::lines::serve(&args, START_TIMEOUT)
}

/// Runs `yeyak loadgen ARGS` (with the admin token, none of the caller's environment), then
/// stops `server`; the run's figures (its last line) and its stderr.
fn loadgen(server: &mut std::process::Child, args: &[&str]) -> (serde_json::Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(["loadgen", "--admin-token", ADMIN_TOKEN])
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{report}");
    let figures = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    (figures, report)
}

#[test]
fn a_request_whose_connection_fails_is_sent_again_to_the_next_target() {
    let (mut server, addr, _stderr) = rehearsal();
    let gateway = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let answered = dir.path().join("answered.txt");
    let dying = dying_gateway();
    let answered_path = answered.to_str().unwrap();
    let args = [
        "--target",
        &dying,
        "--target",
        &gateway,
        "--people",
        "60",
        "--connections",
        "4",
        "--read-s",
        "1",
        "--rate",
        "40",
        "--answered",
        answered_path,
    ];
    let (figures, report) = loadgen(&mut server, &args);
    assert_eq!(figures["targets"], 2, "{figures}");
    assert!(figures["failovers"].as_u64().unwrap() > 0, "{figures}");
    assert_eq!(figures["lost_to_failover"], 0, "{figures}");
    let booked = figures["booked"].as_u64().unwrap();
    assert!(booked > 0, "{figures}");
    // Every 201's reservation id, once each.
    let ids: Vec<String> = std::fs::read_to_string(&answered)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!((ids.len() as u64, distinct.len() as u64), (booked, booked));
    assert!(
        ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()),
        "{ids:?}"
    );
    // Paced: 60 people at 40 per second take 1.5 s at least, and progress shows once a second.
    assert!(
        report.contains("people over 4 connections, 40 per second"),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.contains(" booked, ") && l.contains("unix_ms")),
        "{report}"
    );
}

/// With doses for a fraction of the crowd, people who pick a sold-out share are refused and
/// counted: every person either booked or met a sold-out share (nobody else is refused).
#[test]
fn fewer_doses_than_people_sell_out_and_are_counted() {
    let (mut server, addr, _stderr) = rehearsal();
    let target = format!("http://{addr}");
    let args = [
        "--target",
        &target,
        "--people",
        "200",
        "--connections",
        "8",
        "--read-s",
        "0",
        "--doses-percent",
        "40",
    ];
    let (figures, _) = loadgen(&mut server, &args);
    let (booked, sold_out) = (
        figures["booked"].as_u64().unwrap(),
        figures["sold_out"].as_u64().unwrap(),
    );
    assert!(booked > 0 && sold_out > 0, "{figures}");
    assert_eq!(booked + sold_out, 200, "{figures}");
}
