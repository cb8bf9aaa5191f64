//! The PostgreSQL read models against the in-memory reference fold, on file logs made by the
//! embedded ledger: the seed's scenarios and a demo campaign. Each test works in a fresh schema.
//!
//! Needs `YEYAK_POSTGRES` (see `common::pg::postgres_url`).

mod common;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use common::pg::{TestSchema, postgres_url};
use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command};
use yeyak_ledger::{Ledger, Topology, read_all};
use yeyak_log::{
    EventLog, FileLog, FileLogConfig, FsyncPolicy, LogError, LogStream, Offset, Position, Record,
    StoredRecord,
};
use yeyak_read::projection::postgres::{
    BatchOutcome, PgProjector, ProjectionError, READ_MODELS_PROJECTION, STREAM_QUIET_CHECK, diff,
    migrate, read_digest, read_model,
};
use yeyak_read::projection::{ReadModel, Table};

struct OnLedger(Ledger<FileLog>);

impl common::Runner for OnLedger {
    fn run(&mut self, command: Command) -> Outcome {
        self.0.submit(command).expect("the file log works")
    }
}

macro_rules! database_or_skip {
    () => {
        match postgres_url() {
            Some(url) => url,
            None => {
                println!("skipped: YEYAK_SKIP_SERVICES=1 and no YEYAK_POSTGRES");
                return;
            }
        }
    };
}

/// A file log holding one seed scenario, run through the embedded ledger.
fn scenario_log(name: &str) -> (tempfile::TempDir, Ledger<FileLog>) {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    let mut ledger =
        OnLedger(Ledger::open(log, Campaign::default_2021(), Topology::default()).unwrap());
    common::run_script(&mut ledger, common::scenarios::script(name));
    (dir, ledger.0)
}

/// A file log holding a demo campaign of `people` people.
fn demo_log(people: u32, dir: &Path) -> FileLog {
    let config = yeyak_tools::demo::DemoConfig {
        people,
        clinics: 4,
        seed: 2021,
        data_dir: dir.join("log"),
        fsync: FsyncPolicy::Never,
    };
    let key =
        yeyak_identity::Pseudonymiser::new(yeyak_identity::SecretKey::new(vec![7; 32]).unwrap());
    let report = yeyak_tools::demo::run(&config, &key, &mut Vec::new()).unwrap();
    assert!(report.ok(), "{report:?}");
    FileLog::open(FileLogConfig::new(dir.join("log"))).unwrap()
}

/// The reference: every event folded in memory, topic by topic, partition by partition.
fn reference(log: &dyn EventLog) -> (ReadModel, u64) {
    let mut model = ReadModel::new();
    let count = read_all(log, &Topology::default(), |_, e| model.apply(&e)).unwrap();
    (model, count)
}

fn projector<'a>(schema: &TestSchema, log: &'a dyn EventLog) -> PgProjector<'a> {
    PgProjector::new(
        schema.client(),
        log,
        Topology::default(),
        READ_MODELS_PROJECTION,
    )
    .unwrap()
}

/// The database equals the reference: same digest, no differing row, same queue positions.
fn assert_same(model: &ReadModel, client: &mut Client, what: &str) {
    let differing = diff(model, client).unwrap();
    assert!(
        differing.is_empty(),
        "{what}: {} rows differ, first: {}",
        differing.len(),
        differing[0]
    );
    assert_eq!(read_digest(client).unwrap(), model.digest(), "{what}");
    let positions = client
        .query(
            "SELECT ticket, position FROM queue_position ORDER BY ticket",
            &[],
        )
        .unwrap();
    let waiting: Vec<(i64, i64)> = model
        .queue_tickets
        .keys()
        .filter_map(|t| model.queue_position(*t).map(|p| (t.0 as i64, p as i64)))
        .collect();
    let from_view: Vec<(i64, i64)> = positions.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(from_view, waiting, "{what}: queue_position");
}

#[test]
fn every_seed_scenario_projects_to_the_in_memory_read_model() {
    let url = database_or_skip!();
    for (name, _) in common::scenarios::SCENARIOS {
        let (_dir, ledger) = scenario_log(name);
        let (model, count) = reference(ledger.log());
        let schema = TestSchema::create(&url);
        let mut p = projector(&schema, ledger.log());
        p.set_batch_events_max(3); // many batches per partition, even for a short scenario
        let counts = p.run_until_caught_up().unwrap();
        assert_eq!(counts.events, count, "{name}");
        assert_eq!(counts.skipped, 0, "{name}");
        assert_same(&model, p.client(), name);
        // Caught up: another run reads nothing and changes nothing.
        assert_eq!(p.run_until_caught_up().unwrap().events, 0, "{name}");
        assert_same(&model, p.client(), name);
    }
}

#[test]
fn the_demo_campaign_projects_to_the_in_memory_read_model() {
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(600, dir.path());
    let (model, count) = reference(&log);
    assert!(count > 5_000, "{count} events");
    assert!(model.reservations.len() > 200, "{:?}", model.row_counts());

    let schema = TestSchema::create(&url);
    let mut p = projector(&schema, &log);
    let started = Instant::now();
    let counts = p.run_until_caught_up().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(counts.events, count);
    println!(
        "projected {} events in {} batches in {:.2?}: {:.0} events/s into PostgreSQL (rows: {:?})",
        counts.events,
        counts.batches,
        elapsed,
        counts.events as f64 / elapsed.as_secs_f64(),
        model.row_counts()
    );
    assert_same(&model, p.client(), "demo");

    // The tables mean what they say: quota bookings match the active reservations per clinic/date.
    let mismatched: i64 = p
        .client()
        .query_one(
            "SELECT count(*) FROM (SELECT clinic_id, vaccination_date, sum(booked) AS booked FROM slot_quota \
             GROUP BY 1, 2) q FULL JOIN (SELECT clinic_id, vaccination_date, count(*) AS active FROM reservations \
             WHERE state = 'active' GROUP BY 1, 2) r USING (clinic_id, vaccination_date) \
             WHERE coalesce(q.booked, 0) <> coalesce(r.active, 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(mismatched, 0);
    let negative: i64 = p
        .client()
        .query_one("SELECT count(*) FROM slot_quota WHERE remaining < 0", &[])
        .unwrap()
        .get(0);
    assert_eq!(negative, 0);
}

#[test]
fn the_read_model_of_cancel_and_change() {
    // No database needed: the reference fold itself, as a reviewed snapshot.
    let (_dir, ledger) = scenario_log("cancel_and_change");
    let (model, _) = reference(ledger.log());
    insta::assert_snapshot!("read_model_cancel_and_change", model.canonical_text());
}

#[test]
fn the_fold_does_not_depend_on_the_order_partitions_are_read_in() {
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(300, dir.path());
    let (forward, _) = reference(&log);
    let mut backward = ReadModel::new();
    let mut partitions: Vec<(&str, u32)> = Topology::default()
        .topics()
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .collect();
    partitions.reverse();
    for (topic, partition) in partitions {
        for record in log.read(topic, partition, 0, usize::MAX).unwrap() {
            backward.apply(&yeyak_ledger::decode(&record).unwrap());
        }
    }
    assert_eq!(backward.digest(), forward.digest());
}

/// The batches of one poll, one per partition, share one transaction: fewer commits than
/// batches, no partition twice in one, and the same rows as the reference.
#[test]
fn the_batches_of_one_poll_share_a_transaction() {
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(200, dir.path());
    let (model, count) = reference(&log);
    let schema = TestSchema::create(&url);
    let mut projector = projector(&schema, &log);
    projector.set_batch_events_max(64);
    let seen: Arc<std::sync::Mutex<Vec<(u64, String, u32)>>> = Arc::default();
    let recorded = seen.clone();
    projector.set_before_commit(Box::new(move |info| {
        recorded.lock().unwrap().push((
            info.transactions_before,
            info.topic.clone(),
            info.partition,
        ));
        ControlFlow::Continue(())
    }));
    let counts = projector.run_until_caught_up().unwrap();
    assert_eq!(counts.events, count);
    assert_same(&model, projector.client(), "grouped");
    let seen = seen.lock().unwrap();
    let transactions: std::collections::BTreeSet<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(seen.len() as u64, counts.batches);
    assert!(
        transactions.len() < seen.len(),
        "{} transactions for {} batches",
        transactions.len(),
        seen.len()
    );
    let distinct: std::collections::BTreeSet<&(u64, String, u32)> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a partition twice in one transaction"
    );
}

#[test]
fn a_projector_stopped_after_some_batches_resumes_exactly_once() {
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(200, dir.path());
    let (model, count) = reference(&log);
    let schema = TestSchema::create(&url);

    let mut first = projector(&schema, &log);
    first.set_batch_events_max(50);
    let half = first.run_batches(20).unwrap();
    assert_eq!(half.batches, 20);
    assert!(half.events > 0 && half.events < count);
    drop(first); // "crash": the process is gone between two batches

    let mut second = projector(&schema, &log);
    second.set_batch_events_max(37);
    let rest = second.run_until_caught_up().unwrap();
    assert_eq!(
        half.events + rest.events,
        count,
        "every event applied exactly once"
    );
    assert_same(&model, second.client(), "resumed");
    let again = second.run_until_caught_up().unwrap();
    assert_eq!((again.batches, again.events), (0, 0));
    assert_same(&model, second.client(), "caught up");
}

#[test]
fn a_batch_rolled_back_before_commit_applies_nothing() {
    let url = database_or_skip!();
    let (_dir, ledger) = scenario_log("release_to_pool");
    let (model, count) = reference(ledger.log());
    let schema = TestSchema::create(&url);

    let mut first = projector(&schema, ledger.log());
    first.set_batch_events_max(2);
    let committed = Arc::new(AtomicU64::new(0));
    let counted = committed.clone();
    first.set_before_commit(Box::new(move |info| {
        // The third transaction is open, its rows and offsets written: stop right there.
        if info.transactions_before == 2 {
            ControlFlow::Break(())
        } else {
            counted.fetch_add(info.next_offset - info.first_offset, Ordering::SeqCst);
            ControlFlow::Continue(())
        }
    }));
    let err = first.run_until_caught_up().unwrap_err();
    assert!(matches!(err, ProjectionError::Interrupted { .. }), "{err}");
    let stored: u64 = first.offsets().unwrap().values().sum();
    let committed = committed.load(Ordering::SeqCst);
    assert!(
        committed >= 4,
        "two transactions of batches of two: {committed}"
    );
    assert_eq!(
        stored, committed,
        "two transactions committed, the third rolled back"
    );
    drop(first); // the connection goes away

    let mut second = projector(&schema, ledger.log());
    let rest = second.run_until_caught_up().unwrap();
    assert_eq!(rest.events, count - committed);
    assert_same(&model, second.client(), "after the rollback");
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

fn terminate(url: &str, pid: i32) {
    let mut killer = Client::connect(url, NoTls).unwrap();
    let killed: bool = killer
        .query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed, "backend {pid} terminated");
}

#[test]
fn a_connection_killed_inside_a_batch_loses_nothing_and_applies_nothing_twice() {
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(200, dir.path());
    let (model, count) = reference(&log);
    let schema = TestSchema::create(&url);

    // Deterministic: the connection dies while the 10th transaction is open.
    let mut first = projector(&schema, &log);
    first.set_batch_events_max(16);
    let pid = backend_pid(first.client());
    let killer_url = url.clone();
    let committed = Arc::new(AtomicU64::new(0));
    let counted = committed.clone();
    let mut killed = false;
    first.set_before_commit(Box::new(move |info| {
        if info.transactions_before == 9 {
            if !std::mem::replace(&mut killed, true) {
                terminate(&killer_url, pid);
            }
        } else {
            counted.fetch_add(info.next_offset - info.first_offset, Ordering::SeqCst);
        }
        ControlFlow::Continue(())
    }));
    let err = first.run_until_caught_up().unwrap_err();
    assert!(matches!(err, ProjectionError::BatchDb { .. }), "{err:?}");
    drop(first);
    let mut check = schema.client();
    let stored: i64 = check
        .query_one(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM projection_offsets",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        stored as u64,
        committed.load(Ordering::SeqCst),
        "exactly the nine committed transactions"
    );
    assert!(stored > 0);

    // Whenever: another connection kills the projector's backend while it runs.
    let mut second = projector(&schema, &log);
    second.set_batch_events_max(5);
    let pid = backend_pid(second.client());
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (url, schema_name, done) = (url.clone(), schema.name.clone(), done.clone());
        std::thread::spawn(move || {
            let mut watcher = Client::connect(&url, NoTls).unwrap();
            let progress = format!(
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM {schema_name}.projection_offsets"
            );
            loop {
                let now: i64 = watcher.query_one(&progress, &[]).unwrap().get(0);
                if now >= stored + 500 || done.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let killed: bool = watcher
                .query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid])
                .unwrap()
                .get(0);
            killed
        })
    };
    let result = second.run_until_caught_up();
    done.store(true, Ordering::SeqCst);
    let killed = killer.join().unwrap();
    assert!(
        killed && result.is_err(),
        "the run was cut short: {result:?}"
    );
    drop(second);

    let mut third = projector(&schema, &log);
    let rest = third.run_until_caught_up().unwrap();
    assert!(rest.events > 0 && rest.events < count);
    assert_same(&model, third.client(), "after two killed connections");
    let total: i64 = third
        .client()
        .query_one(
            "SELECT sum(next_offset)::bigint FROM projection_offsets",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(total as u64, count);
}

#[test]
fn a_redelivered_batch_changes_nothing() {
    let url = database_or_skip!();
    let (_dir, ledger) = scenario_log("cancel_and_change");
    let (model, _) = reference(ledger.log());
    let schema = TestSchema::create(&url);
    let mut p = projector(&schema, ledger.log());

    // The clinic partition with the most records.
    let topology = Topology::default();
    let (topic, partition) = (0..topology.clinic_partitions)
        .map(|p| ("yeyak.clinic", p))
        .max_by_key(|(t, p)| ledger.log().end_offset(t, *p).unwrap())
        .unwrap();
    let records = ledger.log().read(topic, partition, 0, usize::MAX).unwrap();
    assert!(records.len() >= 4, "{} records", records.len());
    let (n, k) = (records.len(), records.len() / 2);

    assert_eq!(
        p.apply_batch(&records[..k]).unwrap(),
        BatchOutcome::Applied {
            events: k as u64,
            skipped: 0,
            next_offset: k as u64
        }
    );
    let after_first = read_digest(p.client()).unwrap();
    // The same range again: refused by the offset check, nothing written.
    assert_eq!(
        p.apply_batch(&records[..k]).unwrap(),
        BatchOutcome::AlreadyApplied {
            next_offset: k as u64
        }
    );
    assert_eq!(
        p.apply_batch(&records[1..k]).unwrap(),
        BatchOutcome::AlreadyApplied {
            next_offset: k as u64
        }
    );
    assert_eq!(read_digest(p.client()).unwrap(), after_first);
    // A range beyond the stored offset would skip records: refused.
    let gap = p.apply_batch(&records[k + 1..]).unwrap_err();
    assert!(
        matches!(gap, ProjectionError::OffsetGap { stored, first, .. } if stored == k as u64 && first == k as u64 + 1)
    );
    // Not one partition's consecutive records: refused.
    let mixed = [records[k].clone(), records[k].clone()];
    assert!(matches!(
        p.apply_batch(&mixed).unwrap_err(),
        ProjectionError::NotContiguous { .. }
    ));
    // Overlapping: the applied part is dropped, the rest applied once.
    assert_eq!(
        p.apply_batch(&records[1..]).unwrap(),
        BatchOutcome::Applied {
            events: (n - k) as u64,
            skipped: (k - 1) as u64,
            next_offset: n as u64
        }
    );
    assert_eq!(
        p.apply_batch(&records).unwrap(),
        BatchOutcome::AlreadyApplied {
            next_offset: n as u64
        }
    );

    let rest = p.run_until_caught_up().unwrap();
    assert_eq!(rest.skipped, 0);
    assert_same(&model, p.client(), "after redeliveries");
}

#[test]
fn a_rebuild_from_zero_gives_the_same_digest_and_repairs_a_damaged_table() {
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(150, dir.path());
    let (model, count) = reference(&log);
    let schema = TestSchema::create(&url);
    let mut p = projector(&schema, &log);
    p.run_until_caught_up().unwrap();
    let digest = read_digest(p.client()).unwrap();
    assert_eq!(digest, model.digest());

    // Damage one row by hand: the digest and the diff see it.
    p.client()
        .batch_execute(
            "UPDATE slot_quota SET capacity = capacity + 1 WHERE (clinic_id, vaccination_date, share) = \
             (SELECT clinic_id, vaccination_date, share FROM slot_quota ORDER BY 1, 2, 3 LIMIT 1)",
        )
        .unwrap();
    assert_ne!(read_digest(p.client()).unwrap(), digest);
    let differing = diff(&model, p.client()).unwrap();
    assert_eq!(differing.len(), 1, "{differing:?}");
    assert_eq!(differing[0].table, Table::SlotQuota);

    let rebuilt = p.rebuild().unwrap();
    assert_eq!(rebuilt.events, count);
    assert_eq!(read_digest(p.client()).unwrap(), digest);
    assert_same(&model, p.client(), "rebuilt");
    assert_eq!(read_model(p.client()).unwrap(), model);
}

#[test]
fn migrations_apply_once() {
    let url = database_or_skip!();
    let schema = TestSchema::create(&url);
    let mut client = schema.client();
    assert_eq!(migrate(&mut client).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(migrate(&mut client).unwrap(), Vec::<i64>::new());
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    // Two projectors starting at once on a fresh schema: one migrates, the other finds it done.
    let other = TestSchema::create(&url);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut c = other.client();
            std::thread::spawn(move || migrate(&mut c).unwrap())
        })
        .collect();
    let mut applied: Vec<Vec<i64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    applied.sort();
    assert_eq!(applied, vec![vec![], vec![1, 2, 3, 4]]);
}

/// The queue's ETA comes from the admissions of the last minute of event time: 10 admitted in
/// it -> 1 every 6 s; the ticket at position p waits (p + 1) * 6 s, as a range of 80%..125%.
#[test]
fn the_queue_eta_is_measured_from_the_last_minute_of_admissions() {
    use yeyak_domain::system::command_id_from;
    use yeyak_domain::{CommandBody, DeviceId, SubjectId};
    let url = database_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
    let mut ledger = Ledger::open(log, Campaign::default_2021(), Topology::default()).unwrap();
    let t0 = Campaign::default_2021().booking_days[0].window.opens_at_ms;
    let device = DeviceId::new("phone").unwrap();
    let mut submit = |seed: String, at_ms: i64, body: CommandBody| {
        ledger
            .submit(Command {
                command_id: command_id_from(&seed),
                at_ms,
                body,
            })
            .unwrap();
    };
    // Two admissions long before: outside the minute, they must not count.
    for n in 0..17u8 {
        let body = CommandBody::Enqueue {
            subject: SubjectId([n; 16]),
            device: device.clone(),
        };
        submit(
            format!("eta/enqueue/{n}"),
            t0 - 600_000 + i64::from(n),
            body,
        );
    }
    submit(
        "eta/admit/old".into(),
        t0 - 300_000,
        CommandBody::Admit {
            tickets_max: 2,
            ttl_ms: 600_000,
        },
    );
    submit(
        "eta/admit/1".into(),
        t0,
        CommandBody::Admit {
            tickets_max: 5,
            ttl_ms: 600_000,
        },
    );
    submit(
        "eta/admit/2".into(),
        t0 + 30_000,
        CommandBody::Admit {
            tickets_max: 5,
            ttl_ms: 600_000,
        },
    );
    let schema = TestSchema::create(&url);
    projector(&schema, ledger.log())
        .run_until_caught_up()
        .unwrap();
    let mut client = schema.client();
    let rate = client
        .query_one(
            "SELECT admitted_last_minute, measured_at_ms FROM queue_admission_rate",
            &[],
        )
        .unwrap();
    assert_eq!(
        (rate.get::<_, i64>(0), rate.get::<_, i64>(1)),
        (10, t0 + 30_000)
    );
    let rows: Vec<(i64, i64, i64, i64)> = client
        .query(
            "SELECT position, eta_s, eta_low_s, eta_high_s FROM queue_position ORDER BY ticket",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, 6, 4, 8),
            (1, 12, 9, 15),
            (2, 18, 14, 23),
            (3, 24, 19, 30),
            (4, 30, 24, 38)
        ]
    );
}

#[test]
fn the_latest_congestion_report_of_each_method_is_its_row() {
    let url = database_or_skip!();
    let (_dir, ledger) = scenario_log("congestion_reports");
    let (model, _) = reference(ledger.log());
    let schema = TestSchema::create(&url);
    let mut p = projector(&schema, ledger.log());
    // One report per batch: the later kakao report must replace the earlier row in the database
    // too, not only within one batch's fold.
    p.set_batch_events_max(1);
    p.run_until_caught_up().unwrap();
    assert_same(&model, p.client(), "congestion_reports");
    type Row = (String, String, i64, i64, i64, i64, bool, String, String);
    let rows: Vec<Row> = p
        .client()
        .query(
            "SELECT method, level, wait_ms, in_flight, capacity, failure_permille, provider_up, \
             gateway, failure_ratio::text FROM congestion ORDER BY method",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect();
    let row = |m: &str, l: &str, w, f, c, p, up, g: &str, r: &str| {
        (
            m.to_owned(),
            l.to_owned(),
            w,
            f,
            c,
            p,
            up,
            g.to_owned(),
            r.to_owned(),
        )
    };
    assert_eq!(
        rows,
        vec![
            row("ipin", "grey", 0, 0, 50, 1000, false, "gw-1", "1.000"),
            row("kakao", "red", 7500, 120, 100, 25, true, "gw-1", "0.025"),
            row("pass", "yellow", 2500, 85, 100, 20, true, "gw-2", "0.020"),
        ]
    );
    // The kakao row carries the later report's instant (20:00 KST), not the earlier one's.
    let at: i64 = p
        .client()
        .query_one(
            "SELECT reported_at_ms FROM congestion WHERE method = 'kakao'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        at,
        model.congestion[&yeyak_domain::Method::Kakao].reported_at_ms
    );
    assert_eq!(
        at,
        chrono::DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
            .unwrap()
            .timestamp_millis()
    );
    // A rebuild from offset zero gives the same rows.
    p.rebuild().unwrap();
    assert_same(&model, p.client(), "congestion_reports rebuilt");
}

/// A log whose stream is stuck: it hands out nothing, whatever the partitions hold (a Kafka
/// client that lost its broker without reporting an error).
struct StuckStream<'a>(&'a FileLog);

/// The stuck stream: every poll waits, and nothing comes.
struct Nothing(Vec<Position>);

impl LogStream for Nothing {
    fn poll(&mut self, _max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        std::thread::sleep(wait);
        Ok(Vec::new())
    }

    fn position(&mut self, topic: &str, partition: u32) -> Option<Offset> {
        let at = self
            .0
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)?;
        Some(at.offset)
    }
}

impl EventLog for StuckStream<'_> {
    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        self.0.ensure_topic(topic, partitions)
    }
    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.0.partitions(topic)
    }
    fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Offset, LogError> {
        self.0.append(topic, partition, records)
    }
    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.0.read(topic, partition, from, max_records)
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        self.0.end_offset(topic, partition)
    }
    fn topics(&self) -> Result<Vec<String>, LogError> {
        self.0.topics()
    }
    fn stream<'s>(&'s self, from: &[Position]) -> Result<Box<dyn LogStream + 's>, LogError> {
        Ok(Box::new(Nothing(from.to_vec())))
    }
}

#[test]
fn a_stream_that_hands_out_nothing_while_records_wait_is_an_error_to_connect_again_after() {
    let url = database_or_skip!();
    let (_dir, ledger) = scenario_log("release_to_pool");
    let stuck = StuckStream(ledger.log());
    let schema = TestSchema::create(&url);
    let mut p = projector(&schema, &stuck);
    let started = Instant::now();
    let error = loop {
        assert!(started.elapsed() < STREAM_QUIET_CHECK * 4, "never noticed");
        match p.step(Duration::from_millis(100)) {
            Ok(counts) => assert_eq!(counts.events, 0),
            Err(error) => break error,
        }
    };
    // Two checks, the same partitions behind at the same positions both times.
    assert!(started.elapsed() >= STREAM_QUIET_CHECK * 2, "{error}");
    assert!(
        matches!(error, ProjectionError::Follow(LogError::Timeout { .. })),
        "{error:?}"
    );
    assert!(error.is_transient(), "a projector connects again after it");

    // The same quiet with nothing to wait for is no error: the real stream, caught up.
    let mut idle = projector(&schema, ledger.log());
    idle.run_until_caught_up().unwrap();
    let started = Instant::now();
    while started.elapsed() < STREAM_QUIET_CHECK * 2 + Duration::from_secs(1) {
        assert_eq!(idle.step(Duration::from_millis(100)).unwrap().events, 0);
    }
}
