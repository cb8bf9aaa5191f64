//! Every event records the campaign it was decided under (id and content hash, in the record's
//! headers), and the auditors' replay refuses a log written under another campaign than the one
//! it is given (`[other_campaign]`, naming both), on the data directory and on its export; a
//! log without the headers (an earlier build's) is audited and the report says so. The ledger
//! itself refuses to go on with a log of another campaign.

use std::path::{Path, PathBuf};
use std::process::Output;

use yeyak_domain::Campaign;
use yeyak_domain::calendar::DEFAULT_CAMPAIGN_TOML;
use yeyak_ledger::{Ledger, LedgerError, Topology};
use yeyak_log::codec::{TOPIC_WAITING_ROOM, recorded_campaign};
use yeyak_log::{EventLog, FileLog, FileLogConfig};

mod common;
use common::yeyak;

/// The shipped campaign under another id, and the file it is written to.
fn another_campaign(dir: &Path) -> (Campaign, PathBuf) {
    let text = DEFAULT_CAMPAIGN_TOML.replace("id = \"2021-18-49\"", "id = \"another-2021\"");
    let path = dir.join("another.toml");
    std::fs::write(&path, &text).unwrap();
    (Campaign::from_toml(&text).unwrap(), path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_refused(output: &Output, ours: &Campaign, theirs: &Campaign) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "not refused:\n{stderr}");
    assert!(stderr.contains("[other_campaign]"), "{stderr}");
    for stamp in [ours.stamp(), theirs.stamp()] {
        assert!(stderr.contains(&stamp.to_string()), "{stamp} in:\n{stderr}");
    }
}

#[test]
fn a_log_is_audited_under_its_own_campaign_and_refused_under_another() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let demo = yeyak(&["demo", "--people", "200", "--clinics", "2", "--data", data]);
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let shipped = Campaign::default_2021();
    let (another, another_file) = another_campaign(dir.path());
    let another_file = another_file.to_str().unwrap();

    // Every record names the campaign it was decided under.
    let log = FileLog::open_read_only(FileLogConfig::new(data)).unwrap();
    let records = log.read(TOPIC_WAITING_ROOM, 0, 0, usize::MAX).unwrap();
    assert!(!records.is_empty());
    for stored in &records {
        assert_eq!(
            recorded_campaign(&stored.record.headers),
            Some(shipped.stamp())
        );
    }
    drop(log);

    let passed = yeyak(&["replay", "--data", data, "--quiet"]);
    assert!(passed.status.success(), "{}", text(&passed.stdout));
    let stdout = text(&passed.stdout);
    assert!(
        stdout.contains(&format!(
            "campaign {}: recorded on every event",
            shipped.stamp()
        )),
        "{stdout}"
    );
    let refused = yeyak(&["replay", "--data", data, "--campaign", another_file]);
    assert_refused(&refused, &shipped, &another);

    // The export keeps the headers: the same answers from it.
    let export = dir.path().join("export");
    let export = export.to_str().unwrap();
    let exported = yeyak(&["export", "--data", data, "--out", export, "--quiet"]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let passed = yeyak(&["replay", "--from-export", export, "--quiet"]);
    assert!(passed.status.success(), "{}", text(&passed.stdout));
    let refused = yeyak(&[
        "replay",
        "--from-export",
        export,
        "--campaign",
        another_file,
    ]);
    assert_refused(&refused, &shipped, &another);

    // The ledger does not go on with a log of another campaign.
    let log = FileLog::open(FileLogConfig::new(data)).unwrap();
    match Ledger::open(log, another.clone(), Topology::default()) {
        Err(LedgerError::OtherCampaign { recorded, running }) => {
            assert_eq!((recorded, running), (shipped.stamp(), another.stamp()));
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("the ledger went on under another campaign"),
    }
}

#[test]
fn a_log_of_an_earlier_build_is_audited_and_the_report_says_its_campaign_was_not_recorded() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-log");
    let dir = tempfile::tempdir().unwrap();
    let (_, another_file) = another_campaign(dir.path());
    for campaign in [None, Some(another_file.to_str().unwrap())] {
        let mut args = vec!["replay", "--data", fixture.to_str().unwrap(), "--quiet"];
        args.extend(campaign.iter().flat_map(|file| ["--campaign", file]));
        let output = yeyak(&args);
        let stdout = text(&output.stdout);
        assert!(stdout.contains(": not recorded in the log"), "{stdout}");
    }
}
