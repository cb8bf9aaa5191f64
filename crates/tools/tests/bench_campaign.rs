//! `yeyak-bench --campaign FILE` reads the campaign before anything else: a file with an error
//! stops it at start with a stable code and the error named, before any broker is asked.

use std::process::{Command, Stdio};

#[test]
fn a_campaign_file_with_an_error_stops_the_bench_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = yeyak_domain::calendar::DEFAULT_CAMPAIGN_TOML
        .replace("born_to_year = 2003", "born_to_year = 1900");
    let file = dir.path().join("wrong.toml");
    std::fs::write(&file, wrong).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_yeyak-bench"))
        .args(["--kafka", "127.0.0.1:1", "--campaign"])
        .arg(&file)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("[campaign_file_invalid]"), "{stderr}");
    assert!(
        stderr.contains("born_from_year is after born_to_year"),
        "{stderr}"
    );
}
