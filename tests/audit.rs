//! The auditors' replay on the embedded log: the demo campaign and random histories replay to
//! the live projections' digests with every rule holding; every kind of tampering with an
//! export is found at its position; a forged overbooking is reported; an export refuses
//! anything shaped like a resident registration number.

mod common;

use std::path::{Path, PathBuf};

use uuid::Uuid;

use yeyak_domain::event::{ClinicRegistered, ReservationConfirmed};
use yeyak_domain::system::Outcome;
use yeyak_domain::{
    Campaign, ClinicId, Command, Envelope, Event, ReservationId, Share, SubjectId, System,
};
use yeyak_ledger::{Ledger, TOPIC_CLINIC, Topology, encode};
use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy, partition_for_key};
use yeyak_read::audit::export::{self, MANIFEST_FILE};
use yeyak_read::audit::source::{Range, load};
use yeyak_read::audit::{AuditOptions, Finding, Loaded, audit, system_digest};
use yeyak_read::projection::ReadModel;

/// The embedded ledger with its live read side: the read model folded from every outcome as it
/// happens, the way the embedded mode serves it.
struct Live {
    ledger: Ledger<FileLog>,
    model: ReadModel,
}

impl Live {
    fn open(dir: &Path) -> Live {
        let log = FileLog::open(FileLogConfig {
            fsync: FsyncPolicy::Never,
            ..FileLogConfig::new(dir)
        })
        .unwrap();
        Live {
            ledger: Ledger::open(log, Campaign::default_2021(), Topology::default()).unwrap(),
            model: ReadModel::new(),
        }
    }
}

impl common::Runner for Live {
    fn run(&mut self, command: Command) -> Outcome {
        let outcome = self.ledger.submit(command).expect("the file log works");
        for envelope in &outcome.events {
            self.model.apply(envelope);
        }
        outcome
    }
}

fn load_dir(dir: &Path) -> Loaded {
    let log = FileLog::open(FileLogConfig::new(dir)).unwrap();
    load(
        &log,
        &Range::default(),
        format!("data {}", dir.display()),
        false,
    )
    .unwrap()
}

fn replay(loaded: &Loaded) -> yeyak_read::audit::Replayed {
    audit(loaded, &Campaign::default_2021(), &AuditOptions::default()).unwrap()
}

fn demo(dir: &Path, people: u32) {
    let key = yeyak_identity::SecretKey::new(b"yeyak test key, not a secret!!!!".to_vec()).unwrap();
    let config = yeyak_tools::demo::DemoConfig {
        people,
        clinics: 4,
        seed: 7,
        data_dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Never,
    };
    let report = yeyak_tools::demo::run(
        &config,
        &yeyak_identity::Pseudonymiser::new(key),
        &mut Vec::new(),
    )
    .unwrap();
    assert!(report.ok(), "{:?}", report.violations);
}

/// A log with the events issue 15 added (a clinic's address, `ClinicRegistered` v2; the
/// operators' admission control, `AdmissionsControlled`) replays to the live digests with every
/// rule holding.
#[test]
fn a_log_with_addresses_and_admission_controls_replays_to_the_live_digests() {
    for name in ["clinic_address", "operators_pause_admissions"] {
        let dir = tempfile::tempdir().unwrap();
        let mut live = Live::open(dir.path());
        common::run_script(&mut live, common::scenarios::script(name));
        let replayed = replay(&load_dir(dir.path()));
        let report = &replayed.report;
        assert!(report.ok(), "{name}: {:#?}", report.violations);
        assert_eq!(report.digests["read_model"], live.model.digest(), "{name}");
        assert_eq!(
            report.digests["domain_state"],
            system_digest(live.ledger.system()),
            "{name}"
        );
    }
}

#[test]
fn the_demo_campaign_replays_to_the_live_digests_from_the_log_and_from_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data, 1500);
    // The live state: the ledger reopened on its log; the live read model: folded from it.
    let live = Live::open(&data);
    let mut live_model = ReadModel::new();
    yeyak_ledger::read_all(live.ledger.log(), &Topology::default(), |_, e| {
        live_model.apply(&e)
    })
    .unwrap();

    let replayed = replay(&load_dir(&data));
    let report = &replayed.report;
    assert!(
        report.ok(),
        "{:#?}",
        (&report.integrity, &report.violations)
    );
    assert!(report.whole_log);
    assert_eq!(report.events, live.ledger.events_total());
    assert_eq!(report.digests["read_model"], live_model.digest());
    assert_eq!(
        report.digests["domain_state"],
        system_digest(live.ledger.system())
    );
    // The demo has no pre-queue: its opening draw is exercised by `yeyak simulate`'s log
    // (crates/campaign/tests/simulate.rs).
    assert!(
        report
            .rules
            .iter()
            .all(|r| r.checked > 0 || r.code == "draw_out_of_order"),
        "every rule was exercised: {:#?}",
        report.rules
    );
    assert_eq!(
        report.doses.in_clinics + report.doses.in_transit,
        report.doses.registered
    );

    let out = dir.path().join("export");
    let summary = export::export(
        live.ledger.log(),
        &Range::default(),
        &out,
        "test".into(),
        false,
    )
    .unwrap();
    assert_eq!(summary.manifest.records_total, report.events);
    let from_export = replay(&export::read_export(&out, false).unwrap()).report;
    assert!(from_export.ok(), "{:#?}", from_export.integrity);
    assert_eq!(
        from_export.digests, report.digests,
        "same log, same digests"
    );
    // The positions of an export's events are the source offsets, with the export index.
    let item = &export::read_export(&out, false).unwrap().streams[0].items[3];
    assert_eq!((item.position.offset, item.position.index), (3, Some(3)));
}

#[test]
fn random_histories_replay_to_the_live_digests_with_every_rule_holding() {
    use proptest::strategy::{Strategy, ValueTree};
    let cases = std::env::var("YEYAK_AUDIT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut checked: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for case in 0..cases {
        let script = common::random::script()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let dir = tempfile::tempdir().unwrap();
        let mut live = Live::open(dir.path());
        let mut pure = System::new(Campaign::default_2021());
        common::run_script(&mut live, &script);
        common::run_script(&mut pure, &script);
        let replayed = replay(&load_dir(dir.path()));
        let report = &replayed.report;
        assert!(
            report.ok(),
            "case {case}:\n{script}\n{:#?}",
            report.violations
        );
        assert!(report.notes.is_empty(), "case {case}: {:#?}", report.notes);
        assert_eq!(
            report.digests["read_model"],
            live.model.digest(),
            "case {case}"
        );
        assert_eq!(
            report.digests["domain_state"],
            system_digest(live.ledger.system()),
            "case {case}"
        );
        assert_eq!(
            report.digests["domain_state"],
            system_digest(&pure),
            "case {case}"
        );
        for rule in &report.rules {
            *checked.entry(rule.code).or_default() += rule.checked;
        }
    }
    // The histories exercise the rules (bookings, changes, verifications, moves).
    for code in [
        "overbooked",
        "two_active_reservations",
        "outside_booking_day",
        "verify_too_soon",
        "doses_not_conserved",
    ] {
        assert!(checked[code] > 0, "{code} never checked: {checked:?}");
    }
}

// ---- tampering ----------------------------------------------------------------------------

/// A segment split into its header and framed records.
struct Segment {
    path: PathBuf,
    header: Vec<u8>,
    records: Vec<Vec<u8>>,
}

impl Segment {
    fn read(path: PathBuf) -> Segment {
        let bytes = std::fs::read(&path).unwrap();
        let mut records = Vec::new();
        let mut at = 8;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            records.push(bytes[at..at + 4 + len].to_vec());
            at += 4 + len;
        }
        Segment {
            path,
            header: bytes[..8].to_vec(),
            records,
        }
    }

    fn write(&self) {
        let mut bytes = self.header.clone();
        for r in &self.records {
            bytes.extend_from_slice(r);
        }
        std::fs::write(&self.path, bytes).unwrap();
    }
}

/// Recomputes a framed record's CRC-32C, as a careful forger would.
fn reseal(record: &mut [u8]) {
    let crc = crc32c(&record[8..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn set_offset(record: &mut [u8], offset: u64) {
    record[8..16].copy_from_slice(&offset.to_le_bytes());
}

/// CRC-32C (Castagnoli), bitwise: the test does not borrow the log's implementation.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The integrity findings of a tampered copy of `export`.
fn tamper(export: &Path, name: &str, edit: impl FnOnce(&mut Segment)) -> Vec<Finding> {
    let copy = export.parent().unwrap().join(name);
    copy_dir(export, &copy);
    let mut segment = Segment::read(copy.join("yeyak.waiting-room/0/00000000000000000000.log"));
    edit(&mut segment);
    segment.write();
    let loaded = export::read_export(&copy, false).unwrap();
    loaded.integrity
}

fn at(findings: &[Finding], code: &str, index: u64) -> bool {
    findings.iter().any(|f| {
        f.code == code
            && f.position.as_ref().is_some_and(|p| {
                p.topic == "yeyak.waiting-room" && p.partition == 0 && p.index == Some(index)
            })
    })
}

#[test]
fn every_kind_of_tampering_with_an_export_is_found_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data, 600);
    let out = dir.path().join("export");
    let log = FileLog::open(FileLogConfig::new(&data)).unwrap();
    export::export(&log, &Range::default(), &out, "test".into(), false).unwrap();
    assert!(
        export::read_export(&out, false)
            .unwrap()
            .integrity
            .is_empty(),
        "the export is intact"
    );
    const K: usize = 100;

    let dropped = tamper(&out, "dropped", |s| {
        s.records.remove(K);
    });
    assert!(
        at(&dropped, "dropped", K as u64) && dropped.len() == 1,
        "{dropped:#?}"
    );

    let duplicated = tamper(&out, "duplicated", |s| {
        let copy = s.records[K].clone();
        s.records.insert(K + 1, copy);
    });
    assert!(
        at(&duplicated, "duplicated", K as u64) && duplicated.len() == 1,
        "{duplicated:#?}"
    );

    let reordered = tamper(&out, "reordered", |s| s.records.swap(K, K + 1));
    assert!(
        at(&reordered, "reordered", K as u64) && reordered.len() == 1,
        "{reordered:#?}"
    );

    // A changed byte: the record's checksum no longer holds.
    let damaged = tamper(&out, "damaged", |s| {
        let last = s.records[K].len() - 3;
        s.records[K][last] ^= 0x01;
    });
    assert!(
        at(&damaged, "altered", K as u64) && damaged.len() == 1,
        "{damaged:#?}"
    );
    assert!(damaged[0].detail.contains("checksum"), "{damaged:#?}");

    // A careful forger changes a ticket number and recomputes the checksum: the chain holds it.
    let altered = tamper(&out, "altered", |s| {
        let record = &mut s.records[K];
        let needle = b"\"ticket\":";
        let at = record
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("a waiting-room event names its ticket")
            + needle.len();
        record[at] = if record[at] == b'9' {
            b'1'
        } else {
            record[at] + 1
        };
        reseal(record);
    });
    assert!(
        at(&altered, "altered", K as u64) && altered.len() == 1,
        "{altered:#?}"
    );
    assert!(altered[0].detail.contains("chain"), "{altered:#?}");

    // ... or drops a record and renumbers every later one, resealing each: the chain breaks.
    let renumbered = tamper(&out, "renumbered", |s| {
        s.records.remove(K);
        for (i, record) in s.records.iter_mut().enumerate().skip(K) {
            set_offset(record, i as u64);
            reseal(record);
        }
    });
    assert!(at(&renumbered, "dropped", K as u64), "{renumbered:#?}");

    // A tampered export fails the audit, with the findings in the report.
    let copy = dir.path().join("reordered");
    let report = replay(&export::read_export(&copy, false).unwrap()).report;
    assert!(!report.ok() && !report.integrity.is_empty());
}

#[test]
fn a_forged_overbooking_appended_by_hand_is_reported_as_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 1500);
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    let before = replay(&load_dir(dir.path()));
    assert!(before.report.ok());
    // A day share the demo sold out.
    let full = |(k, q): (
        &(ClinicId, chrono::NaiveDate, Share),
        &yeyak_read::projection::QuotaRow,
    )| { (q.capacity > 0 && q.remaining() == 0).then(|| k.clone()) };
    let (clinic, date, share) = before
        .model
        .slot_quota
        .iter()
        .filter(|((_, _, s), _)| matches!(s, Share::Day(_)))
        .find_map(full)
        .or_else(|| before.model.slot_quota.iter().find_map(full))
        .expect("the demo sells a share out");
    let campaign = Campaign::default_2021();
    let at_ms = match share {
        Share::Day(d) => campaign.booking_days[usize::from(d)].window.opens_at_ms + 60_000,
        Share::Pool => campaign.change_window.opens_at_ms + 60_000,
    };
    let forged = Envelope {
        event_id: Uuid::from_u128(0xf0f0),
        command_id: Uuid::from_u128(0xf0f1),
        schema_version: 1,
        occurred_at_ms: at_ms,
        partition_key: clinic.as_str().to_owned(),
        event: Event::ReservationConfirmed(ReservationConfirmed {
            clinic: clinic.clone(),
            reservation: ReservationId(Uuid::from_u128(0xf0f2)),
            subject: SubjectId([7; 16]),
            date,
            share,
            replaces: None,
        }),
    };
    let partition = partition_for_key(
        clinic.as_str().as_bytes(),
        Topology::default().clinic_partitions,
    );
    let offset = log
        .append(TOPIC_CLINIC, partition, &[encode(&forged).unwrap()])
        .unwrap();
    drop(log);

    let report = replay(&load_dir(dir.path())).report;
    assert!(!report.ok());
    let overbooked: Vec<&Finding> = report
        .violations
        .iter()
        .filter(|v| v.code == "overbooked")
        .collect();
    assert_eq!(overbooked.len(), 1, "{:#?}", report.violations);
    let position = overbooked[0].position.as_ref().unwrap();
    assert_eq!(
        (position.topic.as_str(), position.partition, position.offset),
        (TOPIC_CLINIC, partition, offset)
    );
    assert!(
        report
            .rules
            .iter()
            .any(|r| r.code == "overbooked" && r.violations == 1)
    );
    // The forged answer answers no command: reported too.
    assert!(
        report.violations.iter().any(|v| v.code == "answered_once"),
        "{:#?}",
        report.violations
    );
    assert_eq!(report.digests["domain_state"], "unavailable");
}

/// Exports a log holding one clinic named `name` in `region`.
fn export_one_clinic(name: &str, region: &str) -> (Result<(), String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = FileLog::open(FileLogConfig::new(&data)).unwrap();
    for (topic, partitions) in Topology::default().topics() {
        log.ensure_topic(topic, partitions).unwrap();
    }
    let clinic = ClinicId::new("c1").unwrap();
    let leaked = Envelope {
        event_id: Uuid::from_u128(1),
        command_id: Uuid::from_u128(2),
        schema_version: 1,
        occurred_at_ms: 1_610_120_000_000,
        partition_key: "c1".into(),
        event: Event::ClinicRegistered(ClinicRegistered {
            clinic: clinic.clone(),
            name: name.into(),
            region: region.into(),
            booking_days: 10,
            address: None,
        }),
    };
    let partition = partition_for_key(b"c1", 8);
    log.append(TOPIC_CLINIC, partition, &[encode(&leaked).unwrap()])
        .unwrap();
    let out = dir.path().join("export");
    let result = export::export(&log, &Range::default(), &out, "test".into(), false);
    let result = match result {
        Ok(_) => Ok(()),
        Err(error) => {
            assert_eq!(error.code(), "resident_number_in_export");
            let text = yeyak_read::audit::source::error_chain(&error);
            assert!(
                text.contains(&format!("{TOPIC_CLINIC}/{partition}@0")),
                "{text}"
            );
            assert!(!out.exists(), "nothing is left behind");
            Err(text)
        }
    };
    (result, dir)
}

#[test]
fn an_export_refuses_anything_shaped_like_a_resident_registration_number() {
    for planted in [
        "900509-1234567",
        "9005091234567",
        "900509 1234567",
        "900509 - 1234567",
    ] {
        let text = format!("call {planted}");
        for (name, region) in [(&text[..], "seoul"), ("Clinic", &text[..])] {
            let (result, _dir) = export_one_clinic(name, region);
            let error = result.expect_err(&text);
            assert!(
                !error.contains("900509"),
                "the error never quotes it: {error}"
            );
        }
    }
    // An instant in milliseconds (13 digits, a valid YYMMDD) is a number, not text.
    let (result, _dir) = export_one_clinic("Clinic", "seoul");
    result.expect("a clean log exports");
}

#[test]
fn a_range_of_the_log_replays_with_its_open_follow_ups_as_notes() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), 300);
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    let mut range = Range::default();
    range.add_partition_range("yeyak.subject:0=0..50").unwrap();
    range.only_named = true;
    let loaded = load(&log, &range, "range".into(), false).unwrap();
    assert!(!loaded.whole_log);
    assert_eq!(loaded.events(), 50);
    let report = replay(&loaded).report;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.code == "open_follow_up" || n.code == "answered_once")
    );
    // From the change window on: the history before is read as context, so the range is judged
    // against the true state, and nothing is wrongly reported.
    let since = Range {
        from_ms: Some(Campaign::default_2021().change_window.opens_at_ms),
        ..Range::default()
    };
    let loaded = load(&log, &since, "since".into(), false).unwrap();
    assert!(
        loaded.judged() > 0 && loaded.judged() < loaded.events(),
        "{} of {}",
        loaded.judged(),
        loaded.events()
    );
    let report = replay(&loaded).report;
    assert!(report.ok(), "{:#?}", report.violations);
    assert_eq!(report.judged, loaded.judged());
    // An export of a later range has no history before it: what may depend on it are notes.
    let mut later = Range::default();
    for p in 0..8 {
        later
            .add_partition_range(&format!("yeyak.subject:{p}=100.."))
            .unwrap();
    }
    let out = dir.path().join("later");
    export::export(&log, &later, &out, "later".into(), false).unwrap();
    let report = replay(&export::read_export(&out, false).unwrap()).report;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(
        report.notes.iter().any(|n| n.code == "partial_history"),
        "{:#?}",
        report.notes
    );
    for bad in [
        "yeyak.subject=1..2",
        "yeyak.subject:x=1..2",
        "yeyak.subject:1=5..2",
        "yeyak.subject:1=1-2",
    ] {
        assert_eq!(
            Range::default()
                .add_partition_range(bad)
                .unwrap_err()
                .code(),
            "bad_range",
            "{bad}"
        );
    }
}

#[test]
fn the_command_lines_export_and_replay_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo(&data, 300);
    let out = dir.path().join("export");
    let run = |bin: &str, args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .output()
            .expect("run the binary")
    };
    let exported = run(
        env!("CARGO_BIN_EXE_yeyak"),
        &[
            "export",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert!(out.join(MANIFEST_FILE).exists());
    let json = dir.path().join("report.json");
    let replayed = run(
        env!("CARGO_BIN_EXE_yeyak"),
        &[
            "replay",
            "--from-export",
            out.to_str().unwrap(),
            "--quiet",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("AUDIT PASSED"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["violations"], serde_json::json!([]));

    // Tampered: exit code 2.
    let mut segment = Segment::read(out.join("yeyak.waiting-room/0/00000000000000000000.log"));
    segment.records.remove(5);
    segment.write();
    let replayed = run(
        env!("CARGO_BIN_EXE_yeyak"),
        &["replay", "--from-export", out.to_str().unwrap(), "--quiet"],
    );
    assert_eq!(replayed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("dropped at yeyak.waiting-room/0"));
    // Bad input: a clear error with its code, exit code 1.
    let missing = run(
        env!("CARGO_BIN_EXE_yeyak"),
        &[
            "replay",
            "--from-export",
            dir.path().join("nowhere").to_str().unwrap(),
        ],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("[not_an_export]"));
}

/// One honest booking, then one forged event at a time appended by hand: each is reported under
/// the rule it breaks, at its position.
#[test]
fn each_forged_event_is_reported_under_the_rule_it_breaks() {
    use yeyak_domain::command::Slot;
    use yeyak_domain::event::{BookingRequested, DosesMoved, SubjectVerified, SupplyRegistered};
    use yeyak_domain::{AdmissionId, BirthDate, BirthFacts, CommandBody, DeviceId, Method};
    use yeyak_ledger::TOPIC_SUBJECT;

    let campaign = Campaign::default_2021();
    let opens = campaign.booking_days[0].window.opens_at_ms; // digit 9
    let base = tempfile::tempdir().unwrap();
    let subject = common::subject_of("s9");
    let clinic = ClinicId::new("c1").unwrap();
    let date: chrono::NaiveDate = "2021-08-30".parse().unwrap();
    {
        let mut live = Live::open(base.path());
        let mut submit = |n: u32, at_ms: i64, body: CommandBody| {
            let command_id = yeyak_domain::system::command_id_from(&format!("honest/{n}"));
            common::Runner::run(
                &mut live,
                Command {
                    command_id,
                    at_ms,
                    body,
                },
            )
        };
        let supply = CommandBody::RegisterSupply {
            clinic: clinic.clone(),
            name: "Clinic".into(),
            region: "seoul".into(),
            date,
            doses: 20,
            address: None,
            operator: None,
        };
        submit(0, opens - 3_600_000, supply);
        let device = DeviceId::new("pc").unwrap();
        submit(
            1,
            opens,
            CommandBody::Verify {
                subject,
                birth_year: 1990,
                cohort_digit: 9,
                method: Method::Kakao,
                device: device.clone(),
            },
        );
        submit(
            2,
            opens + 1,
            CommandBody::Enqueue {
                subject,
                device: device.clone(),
            },
        );
        let admitted = submit(
            3,
            opens + 2,
            CommandBody::Admit {
                tickets_max: 10,
                ttl_ms: 3_600_000,
            },
        );
        let admission = admitted
            .events
            .iter()
            .find_map(|e| match &e.event {
                Event::AdmissionGranted(g) => Some(g.admission),
                _ => None,
            })
            .unwrap();
        let book = CommandBody::Book {
            subject,
            requested_for: subject,
            device,
            clinic: clinic.clone(),
            date,
            admission,
        };
        let booked = submit(4, opens + 3, book);
        assert!(matches!(
            booked.last_event(),
            Some(Event::ReservationRecorded(_))
        ));
    }
    assert!(replay(&load_dir(base.path())).report.ok());

    let subject_key = subject.to_hex();
    let forge = |n: u128, at_ms: i64, key: &str, event: Event| Envelope {
        event_id: Uuid::from_u128(0xfeed_0000 + n),
        command_id: Uuid::from_u128(0xc0de_0000 + n),
        schema_version: event.schema_version(),
        occurred_at_ms: at_ms,
        partition_key: key.to_owned(),
        event,
    };
    let verified = |device: &str| {
        Event::SubjectVerified(SubjectVerified {
            subject,
            method: Method::Naver,
            device: DeviceId::new(device).unwrap(),
            birth: BirthDate::Minimal(BirthFacts {
                year: 1990,
                cohort_digit: 9,
            }),
            next_verify_at_ms: opens + 60_000 + campaign.rules.verify_interval_ms,
        })
    };
    let cases: Vec<(&str, &str, Envelope)> = vec![
        (
            "verify_too_soon",
            TOPIC_SUBJECT,
            forge(1, opens + 60_000, &subject_key, verified("pc")),
        ),
        (
            "second_device_in_lock",
            TOPIC_SUBJECT,
            forge(2, opens + 60_000, &subject_key, verified("phone")),
        ),
        (
            "outside_booking_day",
            TOPIC_SUBJECT,
            forge(
                3,
                campaign.booking_days[3].window.opens_at_ms,
                &subject_key,
                Event::BookingRequested(BookingRequested {
                    subject,
                    reservation: ReservationId(Uuid::from_u128(9)),
                    clinic: clinic.clone(),
                    date,
                    share: Share::Day(3),
                    admission: AdmissionId(Uuid::from_u128(9)),
                }),
            ),
        ),
        (
            "doses_not_conserved",
            TOPIC_CLINIC,
            forge(
                4,
                opens + 60_000,
                "c1",
                Event::DosesMoved(DosesMoved {
                    clinic: clinic.clone(),
                    from: Slot {
                        clinic: clinic.clone(),
                        date,
                        share: Share::Day(0),
                    },
                    to: Slot {
                        clinic: clinic.clone(),
                        date,
                        share: Share::Pool,
                    },
                    doses: 5,
                    operator: None,
                }),
            ),
        ),
        (
            "uneven_split",
            TOPIC_CLINIC,
            forge(
                5,
                opens - 60_000,
                "c1",
                Event::SupplyRegistered(SupplyRegistered {
                    clinic: clinic.clone(),
                    date,
                    doses: 10,
                    day_shares: vec![10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    pool: 0,
                    operator: None,
                }),
            ),
        ),
    ];
    for (code, topic, envelope) in cases {
        let copy = base
            .path()
            .parent()
            .unwrap()
            .join(format!("forged-{code}-{}", Uuid::now_v7().simple()));
        copy_dir(base.path(), &copy);
        let log = FileLog::open(FileLogConfig::new(&copy)).unwrap();
        let partition = partition_for_key(envelope.partition_key.as_bytes(), 8);
        let offset = log
            .append(topic, partition, &[encode(&envelope).unwrap()])
            .unwrap();
        drop(log);
        let report = replay(&load_dir(&copy)).report;
        let _ = std::fs::remove_dir_all(&copy);
        let found = report.violations.iter().any(|v| {
            v.code == code
                && v.position.as_ref().is_some_and(|p| {
                    p.topic == topic && p.partition == partition && p.offset == offset
                })
        });
        assert!(found, "{code}: {:#?}", report.violations);
        assert!(!report.ok());
    }
    // A copy of an honest event appended again: the same event id twice.
    let copy = base
        .path()
        .parent()
        .unwrap()
        .join(format!("forged-copy-{}", Uuid::now_v7().simple()));
    copy_dir(base.path(), &copy);
    let log = FileLog::open(FileLogConfig::new(&copy)).unwrap();
    let partition = partition_for_key(subject_key.as_bytes(), 8);
    let first = log.read(TOPIC_SUBJECT, partition, 0, 1).unwrap().remove(0);
    log.append(TOPIC_SUBJECT, partition, &[first.record])
        .unwrap();
    drop(log);
    let report = replay(&load_dir(&copy)).report;
    let _ = std::fs::remove_dir_all(&copy);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.code == "answered_once" && v.detail.contains("twice")),
        "{:#?}",
        report.violations
    );
}

/// A copy of `export` whose manifest `edit` changed, read back.
fn with_manifest(
    export: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<yeyak_read::audit::Loaded, yeyak_read::audit::AuditError> {
    let copy = export.parent().unwrap().join(name);
    copy_dir(export, &copy);
    let path = copy.join(export::MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    export::read_export(&copy, false)
}

#[test]
fn a_hostile_manifest_is_refused_or_costs_only_what_is_on_disk() {
    let (result, dir) = export_one_clinic("Clinic", "seoul");
    result.unwrap();
    let out = dir.path().join("export");
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let refused: [(&str, Edit); 5] = [
        (
            "path",
            Box::new(|m| {
                m["topics"]["../outside"] = 1.into();
                let mut entry = m["partitions"][0].clone();
                entry["topic"] = "../outside".into();
                m["partitions"].as_array_mut().unwrap().push(entry);
            }),
        ),
        (
            "partitions",
            Box::new(|m| m["topics"][TOPIC_CLINIC] = u32::MAX.into()),
        ),
        (
            "twice",
            Box::new(|m| {
                let entry = m["partitions"][0].clone();
                m["partitions"].as_array_mut().unwrap().push(entry);
            }),
        ),
        ("total", Box::new(|m| m["records_total"] = u64::MAX.into())),
        (
            "unlisted",
            Box::new(|m| m["partitions"][0]["topic"] = "yeyak.other".into()),
        ),
    ];
    for (name, edit) in refused {
        let error = with_manifest(&out, name, edit).expect_err(name);
        assert_eq!(error.code(), "not_an_export", "{name}: {error}");
    }
    // A count of 2^64 - 1 records: read in the time and memory of the one record on disk,
    // and found dropped.
    let partition = partition_for_key(b"c1", 8);
    let loaded = with_manifest(&out, "count", |m| {
        for entry in m["partitions"].as_array_mut().unwrap() {
            if entry["topic"] == TOPIC_CLINIC && entry["partition"] == partition {
                entry["records"] = u64::MAX.into();
            }
        }
        m["records_total"] = u64::MAX.into();
    })
    .unwrap();
    assert!(
        loaded.integrity.iter().any(|f| f.code == "dropped"),
        "{:#?}",
        loaded.integrity
    );
}

/// A log written by the build before the operators' schema versions and data minimisation
/// (`SupplyRegistered`, `DosesWithdrawn` and `SubjectVerified` v1, the last with birth dates:
/// `yeyak demo --people 12 --clinics 6 --seed 7`, then `yeyak rebalance --demand`), committed in `tests/fixtures/v1-log` with that build's own audit report, replays
/// and audits identically with this build: same digests, rules, findings and doses.
#[test]
fn a_v1_log_replays_and_audits_as_it_did_when_it_was_written() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-log");
    let log = FileLog::open_read_only(FileLogConfig::new(&dir)).unwrap();
    let loaded = load(&log, &Range::default(), "fixture".into(), false).unwrap();
    let old: Vec<&str> = loaded
        .streams
        .iter()
        .flat_map(|s| &s.items)
        .filter(|i| i.envelope.schema_version < i.envelope.event.schema_version())
        .map(|i| i.envelope.event.type_name())
        .collect();
    assert!(
        ["SupplyRegistered", "DosesWithdrawn", "SubjectVerified"]
            .iter()
            .all(|t| old.contains(t)),
        "{old:?}"
    );
    let report = serde_json::to_value(replay(&loaded).report).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.with_extension("report.json")).unwrap()).unwrap();
    for (key, value) in expected.as_object().unwrap() {
        if key == "rules" {
            // A rule added since is listed in addition; the rules of then are judged as then.
            for rule in value.as_array().unwrap() {
                let now = report[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["code"] == rule["code"]);
                assert_eq!(now, Some(rule), "rule {}", rule["code"]);
            }
            continue;
        }
        assert_eq!(&report[key], value, "{key}");
    }
}
