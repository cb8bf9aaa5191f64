//! `yeyak rebalance` on the embedded ledger: the dry-run plan (snapshot), a run then a second
//! run that moves nothing, a crash in the middle then a resume (the total volume conserved,
//! nothing moved twice), the release after the booking days, and the auditor's verdict on the
//! log afterwards.

mod common;

use std::path::Path;

use yeyak_domain::system::command_id_from;
use yeyak_domain::{
    AdmissionId, Campaign, ClinicId, Command, CommandBody, DeviceId, Event, Method, SubjectId,
};
use yeyak_ledger::submit::Embedded;
use yeyak_ledger::{Ledger, Topology};
use yeyak_log::{FileLog, FileLogConfig, FsyncPolicy};
use yeyak_ops::{Applied, Observed, Plan, Policy, apply, plan};
use yeyak_read::audit::source::{Range, load};
use yeyak_read::audit::{AuditOptions, audit};
use yeyak_read::projection::ReadModel;

fn at(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

fn open(dir: &Path) -> Ledger<FileLog> {
    let log = FileLog::open(FileLogConfig {
        fsync: FsyncPolicy::Never,
        ..FileLogConfig::new(dir)
    })
    .unwrap();
    Ledger::open(log, Campaign::default_2021(), Topology::default()).unwrap()
}

/// Applies a plan through the embedded ledger's submit interface, as `yeyak rebalance --data`
/// does, and gives the ledger back.
fn apply_embedded(
    ledger: &mut Ledger<FileLog>,
    plan: &Plan,
    at_ms: i64,
    limit: Option<usize>,
) -> Vec<(usize, Applied)> {
    let dir = tempfile::tempdir().unwrap();
    let placeholder = open(dir.path());
    let taken = std::mem::replace(ledger, placeholder);
    let observed = std::sync::Arc::new(Observed::default());
    let embedded = Embedded::from_ledger(taken, observed.clone()).unwrap();
    let operator = yeyak_domain::OperatorId::new("planner").unwrap();
    let applied = apply(
        &embedded,
        &observed,
        plan,
        (at_ms, Some(&operator)),
        limit,
        &mut Vec::new(),
    )
    .unwrap();
    *ledger = embedded.into_ledger().unwrap();
    applied
}

fn submit(ledger: &mut Ledger<FileLog>, seed: &str, at_ms: i64, body: CommandBody) -> Vec<Event> {
    let command = Command {
        command_id: command_id_from(seed),
        at_ms,
        body,
    };
    ledger
        .submit(command)
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event)
        .collect()
}

/// Three clinics in Seoul and one in Busan with 100 doses each for two dates; on the first
/// booking day, people book mostly at s1 (it runs out of its day-0 share), a few at s2 and one
/// at s3, which is about to close.
fn campaign_so_far(dir: &Path) -> Ledger<FileLog> {
    let mut ledger = open(dir);
    let before = at("2021-08-09T12:00:00+09:00");
    for (clinic, region) in [
        ("s1", "seoul"),
        ("s2", "seoul"),
        ("s3", "seoul"),
        ("b1", "busan"),
    ] {
        for date in ["2021-08-30", "2021-09-02"] {
            let body = CommandBody::RegisterSupply {
                clinic: ClinicId::new(clinic).unwrap(),
                name: format!("Clinic {clinic}"),
                region: region.into(),
                date: date.parse().unwrap(),
                doses: 100,
                address: None,
                operator: None,
            };
            submit(
                &mut ledger,
                &format!("supply/{clinic}/{date}"),
                before,
                body,
            );
        }
    }
    let opens = at("2021-08-09T20:00:00+09:00");
    let device = DeviceId::new("pc").unwrap();
    let people: Vec<SubjectId> = (0..16)
        .map(|n| common::subject_of(&format!("p{n}")))
        .collect();
    for (n, subject) in people.iter().enumerate() {
        let verify = CommandBody::Verify {
            subject: *subject,
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Kakao,
            device: device.clone(),
        };
        submit(&mut ledger, &format!("verify/{n}"), opens, verify);
        submit(
            &mut ledger,
            &format!("enqueue/{n}"),
            opens + 1,
            CommandBody::Enqueue {
                subject: *subject,
                device: device.clone(),
            },
        );
    }
    let admitted = submit(
        &mut ledger,
        "admit",
        opens + 60_000,
        CommandBody::Admit {
            tickets_max: 100,
            ttl_ms: 3_600_000,
        },
    );
    let admission = |subject: &SubjectId| -> AdmissionId {
        admitted
            .iter()
            .find_map(|e| match e {
                Event::AdmissionGranted(g) if g.subject == *subject => Some(g.admission),
                _ => None,
            })
            .expect("admitted")
    };
    for (n, subject) in people.iter().enumerate() {
        let clinic = match n {
            0..=11 => "s1",
            12..=14 => "s2",
            _ => "s3",
        };
        let body = CommandBody::Book {
            subject: *subject,
            requested_for: *subject,
            device: device.clone(),
            clinic: ClinicId::new(clinic).unwrap(),
            date: "2021-08-30".parse().unwrap(),
            admission: admission(subject),
        };
        submit(
            &mut ledger,
            &format!("book/{n}"),
            opens + 120_000 + n as i64,
            body,
        );
    }
    ledger
}

fn model_of(ledger: &Ledger<FileLog>) -> ReadModel {
    let mut model = ReadModel::new();
    yeyak_ledger::read_all(ledger.log(), &ledger.topology(), |_, e| model.apply(&e)).unwrap();
    model
}

fn policy() -> Policy {
    Policy {
        at_ms: at("2021-08-09T22:00:00+09:00"),
        close: [ClinicId::new("s3").unwrap()].into_iter().collect(),
        demand: true,
        min_move: 1,
    }
}

fn plan_for(ledger: &Ledger<FileLog>, policy: &Policy) -> Plan {
    plan(&model_of(ledger), &Campaign::default_2021(), policy)
}

/// The auditor's verdict on the ledger's log: every rule holds, doses conserved.
fn audited(ledger: &Ledger<FileLog>) -> yeyak_read::audit::AuditReport {
    let loaded = load(ledger.log(), &Range::default(), "test".into(), false).unwrap();
    let report = audit(&loaded, &Campaign::default_2021(), &AuditOptions::default())
        .unwrap()
        .report;
    assert!(report.ok(), "{:#?}", report.violations);
    assert_eq!(
        report.doses.in_clinics + report.doses.in_transit,
        report.doses.registered
    );
    report
}

fn total_capacity(model: &ReadModel) -> i64 {
    model.slot_quota.values().map(|q| q.capacity).sum()
}

#[test]
fn the_dry_run_plan() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = campaign_so_far(dir.path());
    let plan = plan_for(&ledger, &policy());
    assert_eq!(
        plan.follow_ups.len(),
        1,
        "the reservation at the closing clinic is listed, not moved"
    );
    insta::assert_snapshot!(plan.render());
}

#[test]
fn a_run_moves_the_plan_and_a_second_run_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = campaign_so_far(dir.path());
    let before = model_of(&ledger);
    let plan = plan_for(&ledger, &policy());
    assert!(plan.moves.len() >= 4, "{}", plan.render());
    let applied = apply_embedded(&mut ledger, &plan, policy().at_ms, None);
    assert!(
        applied.iter().all(|(_, a)| *a == Applied::Moved),
        "{applied:?}"
    );
    let after = model_of(&ledger);
    assert_eq!(
        total_capacity(&after),
        total_capacity(&before),
        "the total volume is conserved"
    );
    assert_eq!(
        plan.after, after.slot_quota,
        "the ledger did what the plan said"
    );
    let s3: i64 = after
        .slot_quota
        .iter()
        .filter(|((c, _, _), _)| c.as_str() == "s3")
        .map(|(_, q)| q.remaining())
        .sum();
    assert_eq!(s3, 0, "the closing clinic keeps no unbooked dose");
    assert!(
        after
            .reservations
            .values()
            .any(|r| r.clinic.as_str() == "s3"),
        "its reservation was not moved"
    );

    let again = plan_for(&ledger, &policy());
    assert!(again.moves.is_empty(), "{}", again.render());
    let events = ledger.events_total();
    apply_embedded(&mut ledger, &again, policy().at_ms, None);
    assert_eq!(ledger.events_total(), events);
    audited(&ledger);
}

#[test]
fn a_crash_in_the_middle_then_a_resume_conserves_the_volume_and_moves_nothing_twice() {
    // The uninterrupted run, for reference.
    let reference_dir = tempfile::tempdir().unwrap();
    let mut reference = campaign_so_far(reference_dir.path());
    let plan = plan_for(&reference, &policy());
    apply_embedded(&mut reference, &plan, policy().at_ms, None);
    let expected = model_of(&reference).slot_quota;

    // Crash after two moves; the resumed run works from a projection that had not seen them
    // (the same plan): the two are answered from the log, the rest are moved.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = campaign_so_far(dir.path());
    let total = total_capacity(&model_of(&ledger));
    let plan = plan_for(&ledger, &policy());
    apply_embedded(&mut ledger, &plan, policy().at_ms, Some(2));
    drop(ledger);
    let mut ledger = open(dir.path());
    let resumed = apply_embedded(&mut ledger, &plan, policy().at_ms, None);
    assert_eq!(
        resumed
            .iter()
            .filter(|(_, a)| *a == Applied::AlreadyApplied)
            .count(),
        2,
        "{resumed:?}"
    );
    assert!(
        resumed.iter().skip(2).all(|(_, a)| *a == Applied::Moved),
        "{resumed:?}"
    );
    assert_eq!(
        model_of(&ledger).slot_quota,
        expected,
        "the same end as without the crash"
    );
    assert_eq!(total_capacity(&model_of(&ledger)), total);
    assert!(plan_for(&ledger, &policy()).moves.is_empty());
    audited(&ledger);

    // Crash after three moves; the resumed run plans afresh from the log: what moved is not
    // planned again, the rest is, and a third run has nothing left.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = campaign_so_far(dir.path());
    let plan = plan_for(&ledger, &policy());
    apply_embedded(&mut ledger, &plan, policy().at_ms, Some(3));
    drop(ledger);
    let mut ledger = open(dir.path());
    let fresh = plan_for(&ledger, &policy());
    assert!(fresh.moves.len() < plan.moves.len(), "{}", fresh.render());
    let resumed = apply_embedded(&mut ledger, &fresh, policy().at_ms, None);
    assert!(
        resumed.iter().all(|(_, a)| *a == Applied::Moved),
        "{resumed:?}"
    );
    assert_eq!(
        total_capacity(&model_of(&ledger)),
        total,
        "the total volume is conserved"
    );
    assert!(plan_for(&ledger, &policy()).moves.is_empty());
    let report = audited(&ledger);
    let moves = report
        .rules
        .iter()
        .find(|r| r.code == "answered_once")
        .unwrap();
    assert_eq!(moves.violations, 0, "no command decided twice");
}

#[test]
fn after_the_booking_days_every_unused_day_share_goes_to_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = campaign_so_far(dir.path());
    let release = Policy {
        at_ms: at("2021-08-19T19:00:00+09:00"),
        ..Policy::default()
    };
    let plan = plan_for(&ledger, &release);
    assert!(
        plan.moves
            .iter()
            .all(|m| m.policy == "release" && m.to.share == yeyak_domain::Share::Pool)
    );
    let unused: i64 = model_of(&ledger)
        .slot_quota
        .iter()
        .filter(|((_, _, s), _)| matches!(s, yeyak_domain::Share::Day(_)))
        .map(|(_, q)| q.remaining())
        .sum();
    assert_eq!(plan.doses_moved() as i64, unused);
    apply_embedded(&mut ledger, &plan, release.at_ms, None);
    assert_eq!(
        plan.after,
        model_of(&ledger).slot_quota,
        "the ledger released what the plan said"
    );
    assert!(plan_for(&ledger, &release).moves.is_empty());
    audited(&ledger);
}

#[test]
fn the_command_line_dry_run_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = campaign_so_far(dir.path());
    let ends = common::end_offsets(ledger.log());
    drop(ledger);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "rebalance",
            "--data",
            dir.path().to_str().unwrap(),
            "--at",
            "2021-08-09T22:00:00+09:00",
        ])
        .args(["--close-clinic", "s3", "--demand", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("dry run: nothing moved") && text.contains("region seoul"),
        "{text}"
    );
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    assert_eq!(common::end_offsets(&log), ends);
    drop(log);
    // Moving doses needs to say who does it (recorded with every move).
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(["rebalance", "--data", dir.path().to_str().unwrap()])
        .args(["--close-clinic", "s3"])
        .env_remove("YEYAK_OPERATOR")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--operator"));
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    assert_eq!(common::end_offsets(&log), ends);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "rebalance",
            "--data",
            dir.path().to_str().unwrap(),
            "--close-clinic",
            "nowhere",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such clinic"));
}
