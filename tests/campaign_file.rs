//! Every long-running role decides under the campaign file it is given (`--campaign`,
//! `YEYAK_CAMPAIGN`, or the file's `campaign` key), the built-in 2021 18-49 campaign otherwise;
//! a campaign file with an error stops the role at start with the error named; the two shipped
//! campaigns run end to end on the same binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::yeyak;

const START_TIMEOUT: Duration = Duration::from_secs(60);

fn campaign_2021() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/2021-18-49.toml");
    std::fs::read_to_string(path).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The body of `GET path`.
fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_server_opens_its_booking_days_when_its_campaign_file_says() {
    let dir = tempfile::tempdir().unwrap();
    // The first booking day opens an hour later than in 2021.
    let later = campaign_2021().replacen(
        "opens_at = \"2021-08-09T20:00:00+09:00\"",
        "opens_at = \"2021-08-09T21:00:00+09:00\"",
        1,
    );
    let file = write(dir.path(), "later.toml", &later);
    let args = [
        "serve",
        "--campaign",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--clock",
        "2021-08-09T20:30:00+09:00",
    ];
    let (mut child, addr, _stderr) = common::lines::serve(&args, START_TIMEOUT);
    let schedule = get(&addr, "/v1/schedule");
    child.kill().unwrap();
    child.wait().unwrap();
    let schedule: serde_json::Value = serde_json::from_str(&schedule).unwrap();
    // At 20:30 the 2021 calendar is open; this file's first day opens at 21:00.
    assert!(schedule["open"].is_null(), "{schedule}");
    assert!(
        schedule["next"].to_string().contains("2021-08-09T21:00:00"),
        "{schedule}"
    );
}

#[test]
fn a_campaign_file_with_an_error_stops_every_role_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // The change window opens before the last booking day closes.
    let wrong = campaign_2021().replace(
        "[change_window]\nopens_at = \"2021-08-19T20:00:00+09:00\"",
        "[change_window]\nopens_at = \"2021-08-19T12:00:00+09:00\"",
    );
    assert_ne!(wrong, campaign_2021(), "the change window was moved");
    let file = write(dir.path(), "wrong.toml", &wrong);
    let file = file.to_str().unwrap();
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let runs: [&[&str]; 6] = [
        &[
            "serve",
            "--campaign",
            file,
            "--clock",
            "2021-08-09T20:30:00+09:00",
        ],
        &["process", "--campaign", file, "--kafka", "127.0.0.1:1"],
        &["rebalance", "--campaign", file, "--data", data, "--dry-run"],
        &["process", "--campaign", missing, "--kafka", "127.0.0.1:1"],
        &["demo", "--campaign", file, "--people", "10"],
        &[
            "loadgen",
            "--campaign",
            file,
            "--url",
            "http://127.0.0.1:1",
            "--admin-token",
            "not-used",
        ],
    ];
    for args in runs {
        let output = yeyak(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started:\n{stderr}");
        let named = stderr.contains("change window opens before the last booking day closes")
            || stderr.contains("cannot read the campaign file");
        assert!(named, "{args:?}:\n{stderr}");
    }
    assert!(!Path::new(data).exists(), "nothing was created");
}

/// The two shipped campaigns on the same binary, end to end: the demo under each books on its
/// own calendar and age group, and the replay of each log passes under its own campaign file
/// and refuses the other.
#[test]
fn the_same_binary_runs_both_shipped_campaigns_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        (
            "2021-18-49.toml",
            "2021-50-59.toml",
            "ages 18-49 (",
            "booking day  1 (digit 9, 2021-08-09 20:00)",
        ),
        (
            "2021-50-59.toml",
            "2021-18-49.toml",
            "ages 50-59 (illustrative calendar) (",
            "booking day  1 (digit 0, 2021-07-20 20:00)",
        ),
    ];
    for (own, other, name, first_day) in runs {
        let data = dir.path().join(own);
        let data = data.to_str().unwrap();
        let (own, other) = (root.join(own), root.join(other));
        let (own, other) = (own.to_str().unwrap(), other.to_str().unwrap());
        let demo = yeyak(&[
            "demo",
            "--campaign",
            own,
            "--people",
            "300",
            "--clinics",
            "2",
            "--data",
            data,
        ]);
        let stdout = String::from_utf8_lossy(&demo.stdout);
        let stderr = String::from_utf8_lossy(&demo.stderr);
        assert!(demo.status.success(), "{own}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(name) && stdout.contains(first_day),
            "{stdout}"
        );
        assert!(stdout.contains("reservations, "), "{stdout}");
        let replayed = yeyak(&["replay", "--data", data, "--campaign", own, "--quiet"]);
        let report = String::from_utf8_lossy(&replayed.stdout);
        assert!(replayed.status.success(), "{own}:\n{report}");
        assert!(report.contains("recorded on every event"), "{report}");
        let refused = yeyak(&["replay", "--data", data, "--campaign", other, "--quiet"]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{own} audited under {other}");
        assert!(stderr.contains("[other_campaign]"), "{stderr}");
    }
}
