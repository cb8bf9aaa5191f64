//! The decoders that read untrusted bytes, fed arbitrary bytes and mutations of valid input
//! and structured mutations of valid JSON (fields removed, values replaced by odd ones) with
//! proptest (cargo-fuzz needs a nightly toolchain this machine does not have): a log record
//! (`codec::decode`), a segment of the embedded log (`scan_partition_readonly`, the export
//! reader's), an export's manifest (`read_manifest`), a command, each HTTP body the API
//! reads, and a token. Zero panics; memory is bounded by the decoders' own limits (a record's
//! length is checked against `record_bytes_max` before anything is allocated). Cases per
//! target: `FUZZ_CASES` (default 2,000), so CI stays bounded (a few seconds).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use yeyak_domain::Command;
use yeyak_front::api::extract::json_body;
use yeyak_front::api::{admin, reservations, verify};
use yeyak_front::tokens::TokenKey;
use yeyak_log::codec::decode;
use yeyak_log::file::scan_partition_readonly;
use yeyak_log::{Record, StoredRecord};
use yeyak_read::audit::export::{MANIFEST_FILE, read_manifest};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// Runs `check` on `cases()` inputs: arbitrary bytes, and `valid` with bytes flipped, cut off
/// or inserted.
fn fuzz(valid: &[u8], check: impl Fn(&[u8])) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let structured = json_mutations(valid);
    let valid = valid.to_vec();
    let mutated = (
        any::<Vec<(usize, u8)>>(),
        any::<usize>(),
        any::<Vec<u8>>(),
        any::<usize>(),
    )
        .prop_map(move |(flips, cut, insert, at)| {
            let mut bytes = valid.clone();
            for (i, b) in flips {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] ^= b;
                }
            }
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, insert);
            bytes.truncate(cut % (bytes.len() + 2));
            bytes
        });
    let input = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        mutated,
        structured
    ];
    runner
        .run(&input, |bytes| {
            check(&bytes);
            Ok(())
        })
        .unwrap();
}

/// Values a hostile client puts where a valid one was.
fn odd_value(pick: usize) -> serde_json::Value {
    use serde_json::json;
    let odd = [
        json!(null),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(""),
        json!("../../etc"),
        json!("900509-1234567"),
        json!("x".repeat(5000)),
        json!([]),
        json!({}),
        json!(true),
    ];
    odd[pick % odd.len()].clone()
}

/// `valid` (when it is JSON) with values replaced by odd ones and fields removed, at random
/// places: structured mutations reach the checks that byte flips rarely get past the parser.
fn json_mutations(valid: &[u8]) -> BoxedStrategy<Vec<u8>> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(valid) else {
        return Just(valid.to_vec()).boxed();
    };
    proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..4)
        .prop_map(move |edits| {
            let mut value = value.clone();
            for (at, pick, remove) in edits {
                mutate(&mut value, at, pick, remove);
            }
            serde_json::to_vec(&value).unwrap()
        })
        .boxed()
}

/// Every node's JSON pointer, the root's ("") first.
fn pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                pointers(
                    v,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Replaces (or removes) the node chosen by `at`, any node equally likely.
fn mutate(value: &mut serde_json::Value, at: usize, pick: usize, remove: bool) {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    let pointer = &all[at % all.len()];
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", ""));
    if remove && !pointer.is_empty() {
        match value.pointer_mut(parent) {
            Some(serde_json::Value::Object(map)) => {
                map.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            Some(serde_json::Value::Array(items)) => {
                items.remove(key.parse::<usize>().unwrap());
            }
            _ => {}
        }
    } else if let Some(node) = value.pointer_mut(pointer) {
        *node = odd_value(pick);
    }
}

const ENVELOPE: &str = r#"{"event_id":"00000000-0000-0000-0000-000000000001","command_id":"00000000-0000-0000-0000-000000000002","schema_version":1,"occurred_at_ms":1627776000000,"partition_key":"c1","event":{"type":"SupplyRegistered","clinic":"c1","date":"2021-08-30","doses":10,"day_shares":[1,1,1,1,1,1,1,1,1,1],"pool":0}}"#;

#[test]
fn a_log_record_of_any_bytes_decodes_or_is_refused() {
    fuzz(ENVELOPE.as_bytes(), |bytes| {
        let stored = StoredRecord {
            topic: "yeyak.clinic".into(),
            partition: 0,
            offset: 0,
            record: Record {
                key: b"c1".to_vec(),
                value: bytes.to_vec(),
                headers: vec![],
                timestamp_ms: 0,
            },
        };
        let _decoded = decode(&stored);
    });
}

#[test]
fn a_segment_of_any_bytes_is_scanned_without_panic_or_unbounded_allocation() {
    // A valid segment to mutate: one written by the embedded log.
    let dir = tempfile::tempdir().unwrap();
    let log = yeyak_log::FileLog::open(yeyak_log::FileLogConfig::new(dir.path())).unwrap();
    use yeyak_log::EventLog;
    log.ensure_topic("t", 1).unwrap();
    let record = Record {
        key: b"k".to_vec(),
        value: ENVELOPE.as_bytes().to_vec(),
        headers: vec![("type".into(), b"SupplyRegistered".to_vec())],
        timestamp_ms: 1,
    };
    log.append("t", 0, &[record.clone(), record]).unwrap();
    drop(log);
    let segment = dir.path().join("t/0/00000000000000000000.log");
    let valid = std::fs::read(&segment).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("00000000000000000000.log");
    fuzz(&valid, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        // 64 KiB at most per record: a claimed length beyond it is refused before allocating.
        let _scanned = scan_partition_readonly(scratch.path(), 64 * 1024, |_| {});
    });
}

#[test]
fn a_manifest_of_any_bytes_is_read_or_refused() {
    let valid = br#"{"format":"yeyak-export v1","log_format":"yeyak-log v1","source":"s","topics":{"yeyak.clinic":8},"partitions":[{"topic":"yeyak.clinic","partition":3,"records":1,"first_offset":0,"last_offset":0,"head":"00"}],"records_total":1,"range":"everything","from_start":true,"every_partition":false}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(MANIFEST_FILE), valid).unwrap();
    read_manifest(dir.path()).expect("the valid manifest is read");
    fuzz(valid, |bytes| {
        std::fs::write(dir.path().join(MANIFEST_FILE), bytes).unwrap();
        let _read = read_manifest(dir.path());
    });
}

#[test]
fn a_command_of_any_bytes_decodes_or_is_refused() {
    let valid = br#"{"command_id":"00000000-0000-0000-0000-000000000002","at_ms":1,"body":{"RegisterSupply":{"clinic":"c1","name":"n","region":"r","date":"2021-08-30","doses":5}}}"#;
    fuzz(valid, |bytes| {
        let _command = serde_json::from_slice::<Command>(bytes);
    });
}

#[test]
fn every_http_body_of_any_bytes_is_read_or_answered_with_a_code() {
    let bodies: [&[u8]; 5] = [
        br#"{"method":"kakao","resident_id":"900519-1123454","name":"x","device_id":"pc"}"#,
        br#"{"clinic_id":"c1","date":"2021-08-30"}"#,
        br#"{"clinic_id":"c1","name":"n","region":"r","date":"2021-08-30","doses":5}"#,
        br#"{"now":"2021-08-09T20:00:00+09:00"}"#,
        br#"{"method":"kakao","outage":true}"#,
    ];
    for valid in bodies {
        fuzz(valid, |bytes| {
            let _ = json_body::<verify::VerifyRequest>(bytes)
                .err()
                .map(|e| e.to_string());
            let _ = json_body::<reservations::BookRequest>(bytes)
                .err()
                .map(|e| e.to_string());
            let _ = json_body::<admin::SupplyRequest>(bytes)
                .err()
                .map(|e| e.to_string());
            let _ = json_body::<admin::ClockRequest>(bytes)
                .err()
                .map(|e| e.to_string());
            let _ = json_body::<admin::ProviderRequest>(bytes)
                .err()
                .map(|e| e.to_string());
        });
    }
}

#[test]
fn a_token_of_any_bytes_verifies_or_is_refused() {
    let key = TokenKey::new(vec![5; 32]);
    let valid = "eyJraW5kIjoic2Vzc2lvbiJ9.AAAA";
    fuzz(valid.as_bytes(), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _claims = key.verify_any(&text, 0, Some("pc"));
    });
}
