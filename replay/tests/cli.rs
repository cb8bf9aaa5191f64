//! `yeyak-replay`, the auditors' binary, from the outside: exit code 0 on a clean log, 2 on a
//! tampered one, 1 with a stable error code when it cannot run.

mod common;

use common::{demo, replay};
use yeyak_read::audit::cli::{ExportArgs, LogArgs, export};

#[test]
fn the_auditors_binary_passes_a_clean_export_and_fails_a_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data);
    let out = dir.path().join("export");
    let args = ExportArgs {
        log: LogArgs {
            data: Some(data.clone()),
            ..LogArgs::default()
        },
        out: out.clone(),
        quiet: true,
    };
    export(&args, &mut Vec::new()).unwrap();

    let json = dir.path().join("report.json");
    let passed = replay(&[
        "--from-export",
        out.to_str().unwrap(),
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(passed.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("AUDIT PASSED"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["violations"], serde_json::json!([]));

    // The data directory itself, read-only: the same verdict.
    let passed = replay(&["--data", data.to_str().unwrap(), "--quiet"]);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passed.stdout)
    );

    // One record dropped from a segment of the export: exit code 2, named where it happened.
    let segment = out.join("yeyak.waiting-room/0/00000000000000000000.log");
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..bytes.len() / 2]).unwrap();
    let failed = replay(&["--from-export", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(
        failed.status.code(),
        Some(2),
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
}

#[test]
fn a_log_that_is_not_there_is_a_clear_error_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = replay(&[
        "--from-export",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("[not_an_export]"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
