//! The production pipeline against the real Apache Kafka broker: processors are consumer-group
//! members that decide with exactly-once transactions. Needs `YEYAK_KAFKA` (scripts/test starts
//! a broker); fails rather than passes without one.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{
    AdmissionId, Campaign, ClinicId, Command, CommandBody, DeviceId, Event, Method, System,
};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::admin::{delete_topics, ensure_topics};
use yeyak_ledger::pipeline::client::{EventTail, Submitter, decided_past};
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig};

fn kafka() -> Option<String> {
    common::services::kafka_bootstrap()
}

fn fresh_topics(partitions: u32) -> Topics {
    let prefix = format!("t{}.", &Uuid::now_v7().simple().to_string()[20..]);
    Topics::new(
        &prefix,
        Topology {
            subject_partitions: partitions,
            clinic_partitions: partitions,
        },
    )
}

/// A processor on a thread of the test.
struct InProcess {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<yeyak_ledger::pipeline::processor::ProcessorStats>,
}

impl InProcess {
    fn start(bootstrap: &str, topics: &Topics, instance: &str) -> InProcess {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let config = ProcessorConfig::new(bootstrap, topics.clone(), instance);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut processor =
                    Processor::start(config, Campaign::default_2021()).expect("start");
                processor.run(stop).expect("run")
            })
        };
        InProcess { stop, thread }
    }

    fn stop(self) -> yeyak_ledger::pipeline::processor::ProcessorStats {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the processor thread")
    }
}

/// Runs scripts through the pipeline: send, then wait for the command's whole chain. A command
/// whose decision has no event (a `tick` with nothing due, an `admit` with nobody waiting) is
/// known to be decided once the processors' group has committed past it.
struct OnKafka {
    bootstrap: String,
    group_id: String,
    submitter: Submitter,
    tail: EventTail,
}

impl OnKafka {
    fn new(bootstrap: &str, topics: &Topics) -> OnKafka {
        OnKafka {
            bootstrap: bootstrap.to_owned(),
            group_id: ProcessorConfig::new(bootstrap, topics.clone(), "-").group_id,
            submitter: Submitter::connect(bootstrap, topics.clone()).unwrap(),
            tail: EventTail::open(bootstrap, topics).unwrap(),
        }
    }
}

impl common::Runner for OnKafka {
    fn run(&mut self, command: Command) -> Outcome {
        let id = command.command_id;
        self.submitter.send(&command).expect("send");
        self.submitter
            .flush(Duration::from_secs(30))
            .expect("flush");
        let sent = Instant::now();
        loop {
            if let Some(outcome) = self.tail.chain(id) {
                return outcome;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(60),
                "no decision for {id}"
            );
            if !self.tail.has_events(id) && sent.elapsed() > Duration::from_millis(300) {
                let (topic, partition, offset) = self
                    .submitter
                    .landed(id)
                    .expect("the command was delivered");
                if decided_past(&self.bootstrap, &self.group_id, &topic, partition, offset).unwrap()
                {
                    // Decided: its events, if any, are committed; give the tail time to read
                    // them (a fixed 200 ms was once too short, right after the group formed).
                    let reading = Instant::now();
                    while !self.tail.has_events(id) && reading.elapsed() < Duration::from_secs(3) {
                        self.tail.poll(Duration::from_millis(100)).unwrap();
                    }
                    if !self.tail.has_events(id) {
                        return Outcome {
                            rejection: None,
                            events: Vec::new(),
                        };
                    }
                }
            }
            self.tail.poll(Duration::from_millis(20)).unwrap();
        }
    }
}

#[test]
fn scenarios_through_kafka_decide_exactly_like_the_pure_system() {
    let Some(bootstrap) = kafka() else { return };
    // Each scenario on a fresh deployment (its command ids are numbered by line) and a fresh
    // pure system, side by side; the transcripts must be identical.
    for name in [
        "digit_nine_books_on_its_day",
        "cancel_and_change",
        "change_to_full_clinic",
        "rebalance",
    ] {
        let topics = fresh_topics(3);
        ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
        let processor = InProcess::start(&bootstrap, &topics, "in-process");
        let mut on_kafka = OnKafka::new(&bootstrap, &topics);
        let mut system = System::new(Campaign::default_2021());
        let script = common::scenarios::script(name);
        let through_kafka = common::run_script(&mut on_kafka, script);
        let in_memory = common::run_script(&mut system, script);
        assert_eq!(through_kafka, in_memory, "scenario {name}");
        let stats = processor.stop();
        assert!(stats.transactions > 0 && stats.events > 0, "{stats:?}");
        assert!(on_kafka.tail.duplicate_event_ids().is_empty());
        let _ = delete_topics(&bootstrap, &topics);
    }
}

/// A child `yeyak process`, logging to a file.
struct ProcessorProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl ProcessorProcess {
    fn start(
        bootstrap: &str,
        topics: &Topics,
        instance: &str,
        dir: &std::path::Path,
    ) -> ProcessorProcess {
        let log = dir.join(format!(
            "processor-{instance}-{}.log",
            Uuid::now_v7().simple()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
            .args([
                "process",
                "--kafka",
                bootstrap,
                "--topic-prefix",
                &topics.prefix,
                "--instance",
                instance,
            ])
            .args([
                "--subject-partitions",
                &topics.topology.subject_partitions.to_string(),
            ])
            .args([
                "--clinic-partitions",
                &topics.topology.clinic_partitions.to_string(),
            ])
            .args(["--session-timeout-ms", "6000"])
            .env("YEYAK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn yeyak process");
        ProcessorProcess { child, log }
    }

    /// Waits until the processor's log contains `needle`.
    fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(needle)
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "no {needle:?} in {} after {timeout:?}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

const PEOPLE: usize = 1500;

/// Supply, then 1500 people of booking day 0 verify and queue; admitted at once; then each books
/// one of six clinic-dates whose day-0 share holds 200 doses: 1200 bookings succeed, 300 sell out.
struct Workload {
    at: i64,
    clinics: Vec<ClinicId>,
    dates: Vec<chrono::NaiveDate>,
    submitted: Vec<Uuid>,
}

impl Workload {
    fn new() -> Workload {
        Workload {
            at: chrono::DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
                .unwrap()
                .timestamp_millis(),
            clinics: ["c1", "c2", "c3"]
                .iter()
                .map(|c| ClinicId::new(c).unwrap())
                .collect(),
            dates: vec!["2021-08-30".parse().unwrap(), "2021-09-02".parse().unwrap()],
            submitted: Vec::new(),
        }
    }

    fn send(&mut self, submitter: &Submitter, seed: &str, at_ms: i64, body: CommandBody) {
        let command = Command {
            command_id: command_id_from(seed),
            at_ms,
            body,
        };
        self.submitted.push(command.command_id);
        submitter.send(&command).unwrap();
    }

    fn person(n: usize) -> yeyak_domain::SubjectId {
        common::subject_of(&format!("crowd/{n}"))
    }

    fn arrive(&mut self, submitter: &Submitter) {
        for (c, clinic) in self.clinics.clone().iter().enumerate() {
            for date in self.dates.clone() {
                let body = CommandBody::RegisterSupply {
                    clinic: clinic.clone(),
                    name: format!("Clinic {c}"),
                    region: "seoul".into(),
                    date,
                    doses: 2000,
                    address: None,
                    operator: None,
                };
                self.send(
                    submitter,
                    &format!("supply/{clinic}/{date}"),
                    self.at - 3_600_000,
                    body,
                );
            }
        }
        let device = DeviceId::new("pc").unwrap();
        for n in 0..PEOPLE {
            let subject = Workload::person(n);
            let verify = CommandBody::Verify {
                subject,
                birth_year: 1990,
                cohort_digit: 9,
                method: Method::Naver,
                device: device.clone(),
            };
            self.send(submitter, &format!("verify/{n}"), self.at, verify);
            self.send(
                submitter,
                &format!("enqueue/{n}"),
                self.at + 1,
                CommandBody::Enqueue {
                    subject,
                    device: device.clone(),
                },
            );
        }
    }

    fn admit(&mut self, submitter: &Submitter) {
        self.send(
            submitter,
            "admit",
            self.at + 60_000,
            CommandBody::Admit {
                tickets_max: 10_000,
                ttl_ms: 3_600_000,
            },
        );
    }

    /// Sends the bookings of people `range` (admissions read from the tail).
    fn book(&mut self, submitter: &Submitter, tail: &EventTail, range: std::ops::Range<usize>) {
        let admissions: std::collections::HashMap<_, AdmissionId> = tail
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::AdmissionGranted(g) => Some((g.subject, g.admission)),
                _ => None,
            })
            .collect();
        assert_eq!(admissions.len(), PEOPLE, "everyone was admitted");
        for n in range {
            let subject = Workload::person(n);
            let body = CommandBody::Book {
                subject,
                requested_for: subject,
                device: DeviceId::new("pc").unwrap(),
                clinic: self.clinics[n % 3].clone(),
                date: self.dates[(n / 3) % 2],
                admission: admissions[&subject],
            };
            self.send(
                submitter,
                &format!("book/{n}"),
                self.at + 120_000 + n as i64,
                body,
            );
        }
        submitter.flush(Duration::from_secs(30)).unwrap();
    }
}

fn wait_settled(tail: &mut EventTail, submitted: &[Uuid], timeout: Duration) {
    let until = Instant::now() + timeout;
    while !tail.settled(submitted) {
        assert!(
            Instant::now() < until,
            "not settled in {timeout:?}: {} events",
            tail.events.len()
        );
        tail.poll(Duration::from_millis(200)).unwrap();
    }
}

fn check_exactly_once(tail: &EventTail) {
    assert!(
        tail.duplicate_event_ids().is_empty(),
        "a command was decided twice"
    );
    let mut replayed = System::new(Campaign::default_2021());
    for envelope in &tail.events {
        replayed.apply(envelope);
    }
    let violations = replayed.violations();
    assert!(violations.is_empty(), "{violations:?}");
    let recorded = tail
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::ReservationRecorded(_)))
        .count();
    let failed = tail
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::BookingFailed(_)))
        .count();
    assert_eq!(
        (recorded, failed),
        (1200, 300),
        "six shares of 200 doses for 1500 people"
    );
}

#[test]
fn a_processor_killed_mid_stream_loses_nothing_and_decides_nothing_twice() {
    let Some(bootstrap) = kafka() else { return };
    let dir = tempfile::tempdir().unwrap();
    let topics = fresh_topics(4);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let submitter = Submitter::connect(&bootstrap, topics.clone()).unwrap();
    let mut tail = EventTail::open(&bootstrap, &topics).unwrap();
    let mut workload = Workload::new();
    let first = ProcessorProcess::start(&bootstrap, &topics, "a", dir.path());

    workload.arrive(&submitter);
    workload.admit(&submitter);
    submitter.flush(Duration::from_secs(30)).unwrap();
    wait_settled(&mut tail, &workload.submitted, Duration::from_secs(120));
    // Bookings arrive in chunks; the processor is killed with SIGKILL right after a chunk is
    // sent (so, most likely, in the middle of a transaction), and the rest arrive while no
    // processor runs.
    for chunk in 0..4 {
        workload.book(&submitter, &tail, chunk * 150..(chunk + 1) * 150);
        std::thread::sleep(Duration::from_millis(100));
    }
    workload.book(&submitter, &tail, 600..750);
    let log = first.kill();
    tail.poll(Duration::from_secs(1)).unwrap();
    let decided_before_kill = tail.events.len();
    workload.book(&submitter, &tail, 750..PEOPLE);

    let second = ProcessorProcess::start(&bootstrap, &topics, "a", dir.path());
    wait_settled(&mut tail, &workload.submitted, Duration::from_secs(180));
    let second_log = second.kill();
    assert!(
        tail.events.len() > decided_before_kill,
        "the restarted processor finished the stream"
    );
    check_exactly_once(&tail);
    assert!(
        log.contains("running") && second_log.contains("state rebuilt"),
        "{log}\n---\n{second_log}"
    );

    // The projector, killed with SIGKILL mid-way and restarted, ends with exactly the rows of
    // the in-memory read model of the same events.
    if let Some(postgres) = common::pg::postgres_url() {
        let schema = common::pg::TestSchema::create(&postgres);
        let url = schema.url();
        let mut model = yeyak_read::projection::ReadModel::new();
        for envelope in &tail.events {
            model.apply(envelope);
        }
        let project = |dir: &std::path::Path| {
            let log = dir.join(format!("projector-{}.log", Uuid::now_v7().simple()));
            std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
                .args([
                    "project",
                    "--kafka",
                    &bootstrap,
                    "--postgres",
                    &url,
                    "--topic-prefix",
                    &topics.prefix,
                ])
                .args(["--subject-partitions", "4", "--clinic-partitions", "4"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
                .spawn()
                .expect("spawn yeyak project")
        };
        let mut first = project(dir.path());
        std::thread::sleep(Duration::from_millis(700));
        first.kill().unwrap();
        first.wait().unwrap();
        let mut second = project(dir.path());
        let mut client = schema.client();
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let digest = yeyak_read::projection::postgres::read_digest(&mut client).ok();
            if digest.as_deref() == Some(model.digest().as_str()) {
                break;
            }
            assert!(
                Instant::now() < until,
                "the projection never matched the read model"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        second.kill().unwrap();
        second.wait().unwrap();
        assert!(
            yeyak_read::projection::postgres::diff(&model, &mut client)
                .unwrap()
                .is_empty()
        );
    }
    let _ = delete_topics(&bootstrap, &topics);
}

#[test]
fn two_processors_share_the_partitions_and_a_paused_zombie_cannot_write() {
    let Some(bootstrap) = kafka() else { return };
    let dir = tempfile::tempdir().unwrap();
    let topics = fresh_topics(4);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let submitter = Submitter::connect(&bootstrap, topics.clone()).unwrap();
    let mut tail = EventTail::open(&bootstrap, &topics).unwrap();
    let mut workload = Workload::new();
    let a = ProcessorProcess::start(&bootstrap, &topics, "a", dir.path());
    a.wait_for_log("partitions assigned", Duration::from_secs(60));
    let b = ProcessorProcess::start(&bootstrap, &topics, "b", dir.path());
    // `b` gets partitions only by a rebalance that splits them with `a`.
    b.wait_for_log("partitions assigned", Duration::from_secs(60));

    workload.arrive(&submitter);
    workload.admit(&submitter);
    submitter.flush(Duration::from_secs(30)).unwrap();
    wait_settled(&mut tail, &workload.submitted, Duration::from_secs(120));
    workload.book(&submitter, &tail, 0..PEOPLE / 2);

    // Freeze `a` mid-stream for longer than its session: `b` takes its partitions over; when
    // `a` wakes up it is a zombie, and whatever it tries to commit is fenced.
    a.signal("-STOP");
    workload.book(&submitter, &tail, PEOPLE / 2..PEOPLE);
    std::thread::sleep(Duration::from_secs(9));
    a.signal("-CONT");
    wait_settled(&mut tail, &workload.submitted, Duration::from_secs(180));
    let a_log = a.kill();
    let b_log = b.kill();
    check_exactly_once(&tail);
    assert!(
        a_log.matches("partitions assigned").count() >= 2,
        "a was assigned, then rebalanced:\n{a_log}"
    );
    assert!(
        b_log.contains("state rebuilt"),
        "b decided commands:\n{b_log}"
    );
    let _ = delete_topics(&bootstrap, &topics);
}

#[test]
fn random_scripts_through_kafka_decide_like_the_pure_system() {
    // The core's property, on a smaller scale: random interleavings of every command through the
    // real pipeline give exactly the pure system's events, and the invariants hold.
    let Some(bootstrap) = kafka() else { return };
    let cases = std::env::var("YEYAK_PIPELINE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&common::random::script(), |script| {
            let topics = fresh_topics(2);
            ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
            let processor = InProcess::start(&bootstrap, &topics, "random");
            let mut on_kafka = OnKafka::new(&bootstrap, &topics);
            let mut system = System::new(Campaign::default_2021());
            let through_kafka = common::run_script(&mut on_kafka, &script);
            let in_memory = common::run_script(&mut system, &script);
            processor.stop();
            let _ = delete_topics(&bootstrap, &topics);
            proptest::prop_assert_eq!(through_kafka, in_memory);
            proptest::prop_assert!(system.violations().is_empty());
            proptest::prop_assert!(on_kafka.tail.duplicate_event_ids().is_empty());
            Ok(())
        })
        .unwrap();
}

/// Runs commands on the pure system and keeps every event, in order.
struct Recording {
    system: System,
    events: Vec<yeyak_domain::Envelope>,
}

impl common::Runner for Recording {
    fn run(&mut self, command: Command) -> Outcome {
        let outcome = self.system.execute(command);
        self.events.extend(outcome.events.iter().cloned());
        outcome
    }
}

#[test]
fn book_cancel_and_change_through_kafka_into_postgresql_equal_the_embedded_run() {
    let Some(bootstrap) = kafka() else { return };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let topics = fresh_topics(3);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let processor = InProcess::start(&bootstrap, &topics, "to-postgres");
    let script = common::scenarios::script("cancel_and_change");
    let mut on_kafka = OnKafka::new(&bootstrap, &topics);
    let through_kafka = common::run_script(&mut on_kafka, script);
    processor.stop();
    assert!(
        through_kafka.contains("ReservationChanged")
            && through_kafka.contains("ReservationCancelled")
    );

    // The embedded run of the same commands, folded into the in-memory read model.
    let mut embedded = Recording {
        system: System::new(Campaign::default_2021()),
        events: Vec::new(),
    };
    assert_eq!(common::run_script(&mut embedded, script), through_kafka);
    let mut model = yeyak_read::projection::ReadModel::new();
    for envelope in &embedded.events {
        model.apply(envelope);
    }

    // The projector reads the pipeline's event topics into PostgreSQL.
    let schema = common::pg::TestSchema::create(&postgres);
    let log = yeyak_log::KafkaLog::connect(yeyak_log::KafkaConfig {
        topic_prefix: topics.prefix.clone(),
        ..yeyak_log::KafkaConfig::new(bootstrap.clone(), "projector")
    })
    .unwrap();
    let mut projector = yeyak_read::projection::postgres::PgProjector::new(
        schema.client(),
        &log,
        topics.topology,
        yeyak_read::projection::postgres::READ_MODELS_PROJECTION,
    )
    .unwrap();
    projector.run_until_caught_up().unwrap();
    let differences = yeyak_read::projection::postgres::diff(&model, projector.client()).unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(
        yeyak_read::projection::postgres::read_digest(projector.client()).unwrap(),
        model.digest()
    );
    // Caught up: running again changes nothing.
    let again = projector.run_until_caught_up().unwrap();
    assert_eq!(
        yeyak_read::projection::postgres::read_digest(projector.client()).unwrap(),
        model.digest(),
        "{again:?}"
    );
    drop(projector);
    let _ = delete_topics(&bootstrap, &topics);
}

/// `yeyak project` started before the processors that create its topics waits for them (it
/// once stopped at once with "unknown topic", and its deployment then had no read models).
#[test]
fn a_projector_started_before_its_topics_exist_waits_for_them() {
    let Some(bootstrap) = kafka() else { return };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let topics = fresh_topics(2);
    let schema = common::pg::TestSchema::create(&postgres);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("projector.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "project",
            "--kafka",
            &bootstrap,
            "--postgres",
            &schema.url(),
        ])
        .args(["--topic-prefix", &topics.prefix])
        .args(["--subject-partitions", "2", "--clinic-partitions", "2"])
        .env("YEYAK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    wait_for_line(&log, "waits for its topics", Duration::from_secs(60));

    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let processor = InProcess::start(&bootstrap, &topics, "late-topics");
    let mut on_kafka = OnKafka::new(&bootstrap, &topics);
    let through_kafka = common::run_script(
        &mut on_kafka,
        common::scenarios::script("cancel_and_change"),
    );
    processor.stop();
    assert!(through_kafka.contains("ReservationCancelled"));

    // What the projector must reach: the events the processor wrote, folded.
    let reader = yeyak_log::KafkaLog::connect(yeyak_log::KafkaConfig {
        topic_prefix: topics.prefix.clone(),
        ..yeyak_log::KafkaConfig::new(bootstrap.clone(), "reader")
    })
    .unwrap();
    let mut model = yeyak_read::projection::ReadModel::new();
    {
        use yeyak_log::EventLog as _;
        for (topic, count) in topics.topology.topics() {
            for partition in 0..count {
                for record in reader.read(topic, partition, 0, usize::MAX).unwrap() {
                    model.apply(&yeyak_ledger::decode(&record).unwrap());
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = schema.client();
    loop {
        let digest = yeyak_read::projection::postgres::read_digest(&mut client).ok();
        if digest.as_ref() == Some(&model.digest()) {
            break;
        }
        let alive = child.try_wait().unwrap().is_none();
        assert!(
            alive && Instant::now() < deadline,
            "the projector {} without projecting the events:\n{}",
            if alive { "ran 60 s" } else { "stopped" },
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    delete_topics(&bootstrap, &topics).unwrap();
}

#[test]
fn the_benchmark_runs_end_to_end_and_counts_no_overbooking() {
    let Some(bootstrap) = kafka() else { return };
    let config = yeyak_tools::bench::BenchConfig {
        bootstrap,
        people: 300,
        processors: 1,
        partitions: 2,
        timeout_s: 120,
        batch_linger_ms: 5,
        batch_quiet_ms: 1,
        batch_commands_max: 2_000,
        postgres: common::pg::postgres_url(),
        rate: Some(3_000),
        admit_per_s: yeyak_tools::bench::ADMIT_PER_S_DEFAULT,
        // Fewer doses than people: some find their pick sold out.
        doses_percent: Some(60),
        topic_prefix: None,
    };
    let mut out = Vec::new();
    let report = yeyak_tools::bench::run(&config, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(report.sold_out > 0, "{text}");
    assert_eq!(report.refused_otherwise, 0, "{text}");
    assert_eq!(report.reservations + report.sold_out, 300, "{text}");
    assert_eq!(
        (report.overbooked, report.double_reserved),
        (0, 0),
        "{text}"
    );
    let counted_in = if config.postgres.is_some() {
        "PostgreSQL"
    } else {
        "event replay"
    };
    assert_eq!(report.counted_in, counted_in, "{text}");
    assert!(
        report.events_per_s > 0.0 && report.raw_append_per_s > 0.0 && report.ratio > 0.0,
        "{text}"
    );
    assert!(report.p99_decision_ms >= report.p50_decision_ms, "{text}");
    if config.postgres.is_some() {
        assert!(report.p99_projection_ms.is_some(), "{text}");
    }
    let json = text.lines().last().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap();
    for key in [
        "reservations_per_s",
        "events_per_s",
        "raw_append_per_s",
        "ratio",
        "p50_decision_ms",
        "p99_decision_ms",
        "p99_projection_ms",
        "overbooked",
        "double_reserved",
        "sold_out",
        "counted_in",
    ] {
        assert!(parsed.get(key).is_some(), "no {key} in {json}");
    }
}

/// Reads the whole dead-letter topic (read_committed).
fn dead_letters(
    bootstrap: &str,
    topics: &Topics,
    expected: usize,
) -> Vec<yeyak_ledger::pipeline::writer::DeadLetter> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dead-letter-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(&topics.dead_letters(), 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut letters = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while letters.len() < expected && Instant::now() < until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            letters.push(serde_json::from_slice(message.payload().unwrap()).unwrap());
        }
    }
    letters
}

#[test]
fn records_that_are_not_commands_for_their_partition_are_dead_lettered_not_skipped() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let Some(bootstrap) = kafka() else { return };
    let topics = fresh_topics(2);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let processor = InProcess::start(&bootstrap, &topics, "dead-letters");
    let raw: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let verify = Command {
        command_id: command_id_from("dead-letter/verify"),
        at_ms: Campaign::default_2021().booking_days[0].window.opens_at_ms,
        body: CommandBody::Verify {
            subject: common::subject_of("dl"),
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Kakao,
            device: DeviceId::new("pc").unwrap(),
        },
    };
    let (topic, right) = topics.command_partition(&verify.body.target());
    let wrong = 1 - right;
    let misrouted = serde_json::to_vec(&Command {
        command_id: command_id_from("dead-letter/misrouted"),
        ..verify.clone()
    })
    .unwrap();
    raw.send(
        BaseRecord::<(), [u8]>::to(&topic)
            .partition(right as i32)
            .payload(&b"{\"not\": a command"[..]),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    raw.send(
        BaseRecord::<(), [u8]>::to(&topic)
            .partition(wrong as i32)
            .payload(&misrouted[..]),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    raw.flush(Duration::from_secs(30)).unwrap();
    let mut on_kafka = OnKafka::new(&bootstrap, &topics);
    let outcome = common::Runner::run(&mut on_kafka, verify);
    assert!(
        outcome.rejection.is_none(),
        "the command after the garbage is decided: {outcome:?}"
    );
    let mut letters = dead_letters(&bootstrap, &topics, 2);
    letters.sort_by_key(|l| l.partition == wrong);
    let codes: Vec<(u32, &str)> = letters
        .iter()
        .map(|l| (l.partition, l.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [(right, "undecodable_command"), (wrong, "misrouted_command")]
    );
    assert!(letters.iter().all(|l| l.topic == topic && l.offset == 0));
    let stats = processor.stop();
    assert_eq!(stats.dead_letters, 2, "{stats:?}");
    delete_topics(&bootstrap, &topics).unwrap();
}

/// The topics' durability follows the cluster, and a topic that exists with other settings
/// (partitions, min.insync.replicas) is refused at start, naming the topic and the setting.
#[test]
fn topics_with_other_settings_are_refused_at_start() {
    use yeyak_ledger::pipeline::processor::ProcessorError;
    use yeyak_log::{TopicSettings, TopicSettingsError};
    let Some(bootstrap) = kafka() else { return };
    let topics = fresh_topics(4);
    let durability = ensure_topics(&bootstrap, &topics, TopicSettings::default()).unwrap();
    assert_eq!(
        (durability.replication, durability.min_insync),
        (1, 1),
        "one broker"
    );
    // Again with the same settings: the existing topics pass the check.
    ensure_topics(&bootstrap, &topics, TopicSettings::default()).unwrap();

    let other_partitions = Topics::new(
        &topics.prefix,
        Topology {
            subject_partitions: 2,
            clinic_partitions: 4,
        },
    );
    let refused = ensure_topics(&bootstrap, &other_partitions, TopicSettings::default());
    let Err(ProcessorError::TopicSettings(refusal)) = refused else {
        panic!("another partition count must be refused, got {refused:?}");
    };
    let TopicSettingsError::Mismatch { topic, setting, .. } = *refusal else {
        panic!("a mismatch, not {refusal:?}");
    };
    assert_eq!(setting, "partitions");
    assert!(topic.ends_with("yeyak.commands.subject"), "{topic}");

    let stricter = TopicSettings {
        replication: Some(1),
        min_insync: Some(1),
    };
    ensure_topics(&bootstrap, &topics, stricter).unwrap();
    let too_many = TopicSettings {
        replication: Some(3),
        min_insync: None,
    };
    let refused = ensure_topics(&bootstrap, &topics, too_many);
    let Err(ProcessorError::TopicSettings(refusal)) = refused else {
        panic!("three replicas on one broker must be refused, got {refused:?}");
    };
    assert!(matches!(*refusal, TopicSettingsError::TooFewBrokers { .. }));
    delete_topics(&bootstrap, &topics).unwrap();
}

/// `yeyak process --metrics-listen` serves Prometheus metrics: after a workload, the lag of its
/// command partitions (back to 0 once decided), transactions and commands are there.
#[test]
fn a_processor_serves_its_metrics() {
    let Some(bootstrap) = kafka() else { return };
    let topics = fresh_topics(2);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("processor.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "process",
            "--kafka",
            &bootstrap,
            "--topic-prefix",
            &topics.prefix,
        ])
        .args(["--subject-partitions", "2", "--clinic-partitions", "2"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let address = wait_for_line(&log, "metrics on http://", Duration::from_secs(60));
    let url = address
        .split("metrics on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let submitter = Submitter::connect(&bootstrap, topics.clone()).unwrap();
    let mut tail = EventTail::open(&bootstrap, &topics).unwrap();
    let mut workload = Workload::new();
    workload.arrive(&submitter);
    submitter.flush(Duration::from_secs(30)).unwrap();
    wait_settled(&mut tail, &workload.submitted, Duration::from_secs(120));

    let value = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = http_get(&url);
        let lags: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("yeyak_processor_lag_records{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        let settled = lags.len() == 5 && lags.iter().all(|lag| *lag <= 1.0);
        if settled || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("yeyak_processor_lag_records{"))
            .count(),
        5,
        "one lag per owned command partition (2 + 2 + 1):\n{text}"
    );
    let commands = value(&text, "yeyak_processor_commands_total").unwrap();
    assert!(
        commands >= workload.submitted.len() as f64,
        "{commands} commands decided:\n{text}"
    );
    assert!(value(&text, "yeyak_processor_transactions_total").unwrap() >= 1.0);
    assert!(value(&text, "yeyak_processor_last_decision_timestamp_seconds").unwrap() > 0.0);
    delete_topics(&bootstrap, &topics).unwrap();
}

/// The body of a plain `GET` of `url` (http://HOST:PORT/PATH).
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}

/// The first line of `log` that contains `needle`, waiting for it up to `timeout`.
fn wait_for_line(log: &std::path::Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every partition of a log with its records, in order.
type PartitionRecords = Vec<(&'static str, u32, Vec<yeyak_log::Record>)>;

/// The records of every partition of a demo campaign's file log (`people` people), and the
/// read model they fold into.
fn demo_partitions(
    people: u32,
    dir: &std::path::Path,
) -> (PartitionRecords, yeyak_read::projection::ReadModel) {
    use yeyak_log::EventLog as _;
    let config = yeyak_tools::demo::DemoConfig {
        people,
        clinics: 4,
        seed: 2021,
        data_dir: dir.join("log"),
        fsync: yeyak_log::FsyncPolicy::Never,
    };
    let key =
        yeyak_identity::Pseudonymiser::new(yeyak_identity::SecretKey::new(vec![7; 32]).unwrap());
    let report = yeyak_tools::demo::run(&config, &key, &mut Vec::new()).unwrap();
    assert!(report.ok(), "{report:?}");
    let log = yeyak_log::FileLog::open(yeyak_log::FileLogConfig::new(dir.join("log"))).unwrap();
    let mut model = yeyak_read::projection::ReadModel::new();
    let mut partitions = Vec::new();
    for (topic, count) in Topology::default().topics() {
        for partition in 0..count {
            let records = log.read(topic, partition, 0, usize::MAX).unwrap();
            for record in &records {
                model.apply(&yeyak_ledger::decode(record).unwrap());
            }
            let records = records.into_iter().map(|r| r.record).collect();
            partitions.push((topic, partition, records));
        }
    }
    (partitions, model)
}

/// Copies `partitions` into Kafka in small transactions, one partition after another in turn,
/// so that the records of every partition arrive interleaved.
fn copy_interleaved(log: &yeyak_log::KafkaLog, partitions: &[(&str, u32, Vec<yeyak_log::Record>)]) {
    use yeyak_log::EventLog as _;
    const CHUNK: usize = 7;
    for round in 0.. {
        let mut copied = false;
        for (topic, partition, records) in partitions {
            if let Some(chunk) = records.chunks(CHUNK).nth(round) {
                log.append(topic, *partition, chunk).unwrap();
                copied = true;
            }
        }
        if !copied {
            return;
        }
    }
}

/// Exactly once while following many partitions: a demo campaign's events arrive on all 17
/// partitions interleaved while a projector streams them; its PostgreSQL connection is killed
/// inside its fourth transaction, and a new projector (new Kafka and PostgreSQL connections, as
/// `yeyak project` connects again) goes on from the stored offsets while the records still
/// come. A record skipped leaves rows missing; a record applied twice shows in the counts.
#[test]
fn a_projector_following_interleaved_partitions_applies_each_record_once_across_a_reconnect() {
    use std::ops::ControlFlow;
    use std::sync::{Arc, Mutex};
    use yeyak_log::EventLog as _;
    use yeyak_read::projection::postgres::{PgProjector, READ_MODELS_PROJECTION, diff};
    let Some(bootstrap) = kafka() else { return };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (partitions, model) = demo_partitions(150, dir.path());
    let count: usize = partitions.iter().map(|(_, _, r)| r.len()).sum();
    let topology = Topology::default();
    let prefix = format!("t{}.", &Uuid::now_v7().simple().to_string()[20..]);
    let topics = Topics::new(&prefix, topology);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let connect = |label: &str| {
        yeyak_log::KafkaLog::connect(yeyak_log::KafkaConfig {
            topic_prefix: prefix.clone(),
            ..yeyak_log::KafkaConfig::new(bootstrap.clone(), label)
        })
        .unwrap()
    };
    let writer = connect("copier");
    let copying = std::thread::spawn(move || copy_interleaved(&writer, &partitions));
    let schema = common::pg::TestSchema::create(&postgres);
    let deadline = Instant::now() + Duration::from_secs(120);

    // The first projector: its connection dies inside its fourth transaction.
    let seen: Arc<Mutex<std::collections::BTreeSet<(String, u32)>>> = Arc::default();
    let error = {
        let log = connect("projector-1");
        let mut client = schema.client();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let mut first = PgProjector::new(client, &log, topology, READ_MODELS_PROJECTION).unwrap();
        let (url, seen) = (postgres.clone(), seen.clone());
        let mut killed = false;
        // Inside the fourth transaction: three committed before it (one transaction holds the
        // batches of several partitions, so a count of batches could fall in the first).
        first.set_before_commit(Box::new(move |info| {
            seen.lock()
                .unwrap()
                .insert((info.topic.clone(), info.partition));
            if info.transactions_before == 3 && !std::mem::replace(&mut killed, true) {
                let mut killer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                killer
                    .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
                    .unwrap();
            }
            ControlFlow::Continue(())
        }));
        loop {
            assert!(Instant::now() < deadline, "the connection was never killed");
            if let Err(error) = first.step(Duration::from_millis(100)) {
                break error;
            }
        }
    };
    assert!(error.is_transient(), "{error}");
    assert!(
        seen.lock().unwrap().len() >= 3,
        "batches of several partitions before the kill: {seen:?}"
    );
    // What the first projector committed: the records below its stored offsets.
    let stored: Vec<(String, i64, i64)> = schema
        .client()
        .query(
            "SELECT topic, partition, next_offset FROM projection_offsets",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();

    // The second projector follows on while the copy goes on, then catches up.
    let log = connect("projector-2");
    let mut second =
        PgProjector::new(schema.client(), &log, topology, READ_MODELS_PROJECTION).unwrap();
    let mut applied = yeyak_read::projection::postgres::ProjectionCounts::default();
    while !copying.is_finished() {
        assert!(Instant::now() < deadline, "the copy never ended");
        let counts = second.step(Duration::from_millis(100)).unwrap();
        applied.events += counts.events;
        applied.skipped += counts.skipped;
    }
    copying.join().unwrap();
    let rest = second.run_until_caught_up().unwrap();
    applied.events += rest.events;
    applied.skipped += rest.skipped;

    let before_kill: usize = stored
        .iter()
        .map(|(topic, partition, next)| {
            log.read(topic, *partition as u32, 0, usize::MAX)
                .unwrap()
                .iter()
                .filter(|r| (r.offset as i64) < *next)
                .count()
        })
        .sum();
    assert!(
        before_kill > 0 && before_kill < count,
        "{before_kill} of {count}"
    );
    assert_eq!(
        (before_kill + applied.events as usize, applied.skipped),
        (count, 0),
        "every record applied once"
    );
    let differences = diff(&model, second.client()).unwrap();
    assert!(
        differences.is_empty(),
        "{:?}",
        &differences[..differences.len().min(3)]
    );
    drop(second);
    let _ = delete_topics(&bootstrap, &topics);
}

/// A person's request that ran past its deadline (no processor yet) is asked again with the same
/// id once many newer events were read. The processors answer a retry with no new event, so the
/// gateway's tail must still hold the first decision's chain, which it keeps for the retry window
/// although it forgets everything else beyond its last events. (Before, the retry timed out
/// too: under a stampede a tail of 50,000 events forgets a chain within seconds.)
#[test]
fn a_retry_after_its_deadline_gets_the_first_decision_after_the_tail_forgot_older_events() {
    use yeyak_ledger::submit::{EventSink, Kafka, Submit, SubmitError};
    struct Nobody;
    impl EventSink for Nobody {
        fn record(&self, _: &[yeyak_domain::Envelope]) {}
    }
    let Some(bootstrap) = kafka() else { return };
    let topics = fresh_topics(2);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let campaign = Campaign::default_2021();
    let at_ms = campaign.booking_days[0].window.opens_at_ms;
    let keep = 10;
    let ledger = Kafka::connect_keeping(
        &bootstrap,
        topics.clone(),
        campaign,
        Duration::from_secs(30),
        std::sync::Arc::new(Nobody),
        keep,
    )
    .unwrap();
    let verify = |n: usize| Command {
        command_id: command_id_from(&format!("retry-after-deadline/{n}")),
        at_ms,
        body: CommandBody::Verify {
            subject: common::subject_of(&format!("p{n}")),
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Pass,
            device: DeviceId::new("pc").unwrap(),
        },
    };
    let gave_up = ledger.submit_within(verify(0), Duration::from_millis(300));
    assert!(
        matches!(gave_up, Err(SubmitError::Timeout(_))),
        "{gave_up:?}"
    );

    let processor = InProcess::start(&bootstrap, &topics, "in-process");
    let deciding = Instant::now();
    while ledger.events_seen() == 0 {
        assert!(
            deciding.elapsed() < Duration::from_secs(60),
            "never decided"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 1..=3 * keep {
        let outcome = ledger.submit(verify(n)).unwrap();
        assert!(!outcome.events.is_empty(), "{outcome:?}");
    }
    assert!(ledger.events_seen() as usize > 2 * keep, "the tail forgot");

    let again = ledger
        .submit_within(verify(0), Duration::from_secs(10))
        .expect("answered with the first decision");
    assert!(again.rejection.is_none(), "{again:?}");
    assert!(
        (again.events.iter()).any(|e| matches!(e.event, Event::SubjectVerified(_))),
        "{again:?}"
    );
    let stats = processor.stop();
    assert_eq!(
        stats.events as usize,
        ledger.events_seen() as usize,
        "nothing decided twice"
    );
    let _ = delete_topics(&bootstrap, &topics);
}
