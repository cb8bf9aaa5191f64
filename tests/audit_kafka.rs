//! The auditors' replay and the rebalance on the real services: the same log gives the same
//! digests on Kafka as on the file log, equal to PostgreSQL's read models row for row (and a
//! changed row is printed); an export from Kafka keeps the broker's offsets; the pipeline's own
//! log audits clean, and a rebalance goes through the clinic writers, once.
//!
//! Needs `YEYAK_KAFKA` and `YEYAK_POSTGRES` (scripts/test starts both).

mod common;

use std::time::Duration;

use uuid::Uuid;

use yeyak_domain::system::command_id_from;
use yeyak_domain::{Campaign, ClinicId, Command, CommandBody};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::admin::{delete_topics, ensure_topics};
use yeyak_ledger::pipeline::client::{EventTail, Submitter};
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig};
use yeyak_ledger::submit::{Kafka, Submit};
use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy, KafkaConfig, KafkaLog};
use yeyak_ops::{Applied, Observed, Policy, apply, plan};
use yeyak_read::audit::export;
use yeyak_read::audit::source::{Range, load};
use yeyak_read::audit::{AuditOptions, Loaded, audit};
use yeyak_read::projection::ReadModel;
use yeyak_read::projection::postgres::{PgProjector, READ_MODELS_PROJECTION};

fn replay(loaded: &Loaded, postgres: Option<String>) -> yeyak_read::audit::AuditReport {
    let options = AuditOptions {
        postgres,
        progress: false,
    };
    audit(loaded, &Campaign::default_2021(), &options)
        .unwrap()
        .report
}

fn kafka_log(bootstrap: &str, prefix: &str) -> KafkaLog {
    KafkaLog::connect(KafkaConfig {
        topic_prefix: prefix.to_owned(),
        ..KafkaConfig::new(bootstrap, "audit-test")
    })
    .expect("connect to the broker")
}

#[test]
fn the_same_log_on_kafka_and_on_the_file_log_gives_the_same_digests_and_equals_postgresql() {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        return;
    };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = yeyak_identity::SecretKey::new(b"yeyak test key, not a secret!!!!".to_vec()).unwrap();
    let config = yeyak_tools::demo::DemoConfig {
        people: 400,
        clinics: 3,
        seed: 11,
        data_dir: data.clone(),
        fsync: FsyncPolicy::Never,
    };
    assert!(
        yeyak_tools::demo::run(
            &config,
            &yeyak_identity::Pseudonymiser::new(key),
            &mut Vec::new()
        )
        .unwrap()
        .ok()
    );
    let file = FileLog::open(FileLogConfig::new(&data)).unwrap();
    let on_file = replay(
        &load(&file, &Range::default(), "file".into(), false).unwrap(),
        None,
    );
    assert!(on_file.ok(), "{:#?}", on_file.violations);

    // The demo's log, partition by partition, onto Kafka (transactional appends: sparse offsets).
    let prefix = common::services::unique_prefix("audit");
    let kafka = kafka_log(&bootstrap, &prefix);
    for (topic, partitions) in Topology::default().topics() {
        kafka.ensure_topic(topic, partitions).unwrap();
        for p in 0..partitions {
            let records: Vec<_> = file
                .read(topic, p, 0, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|s| s.record)
                .collect();
            for chunk in records.chunks(500) {
                kafka.append(topic, p, chunk).unwrap();
            }
        }
    }
    let loaded = load(&kafka, &Range::default(), "kafka".into(), false).unwrap();
    assert_eq!(loaded.events(), on_file.events);
    let on_kafka = replay(&loaded, None);
    assert!(on_kafka.ok(), "{:#?}", on_kafka.violations);
    assert_eq!(
        on_kafka.digests, on_file.digests,
        "same log, same digests, either backend"
    );

    // PostgreSQL's read models, projected from Kafka: equal row for row.
    let schema = common::pg::TestSchema::create(&postgres);
    let mut projector = PgProjector::new(
        schema.client(),
        &kafka,
        Topology::default(),
        READ_MODELS_PROJECTION,
    )
    .unwrap();
    projector.run_until_caught_up().unwrap();
    let url = schema.url();
    let compared = replay(&loaded, Some(url.clone()));
    let pg = compared.postgres.as_ref().unwrap();
    assert!(pg.equal && compared.ok(), "{pg:#?}");
    assert_eq!(pg.digest, on_file.digests["read_model"]);
    // The same through the command lines.
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
            .args(args)
            .output()
            .unwrap()
    };
    let replayed = run(&[
        "replay",
        "--kafka",
        &bootstrap,
        "--topic-prefix",
        &prefix,
        "--postgres",
        &url,
        "--quiet",
    ]);
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(
        text.contains("AUDIT PASSED") && text.contains("equal to the replay, row for row"),
        "{text}"
    );
    let at = "2021-09-20T10:00:00+09:00";
    let planned = run(&[
        "rebalance",
        "--kafka",
        &bootstrap,
        "--topic-prefix",
        &prefix,
        "--at",
        at,
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(
        planned.status.success() && text.contains("dry run: nothing moved"),
        "{text}"
    );
    // A row changed behind the projector's back is found and printed.
    let mut client = schema.client();
    client
        .batch_execute("UPDATE slot_quota SET capacity = capacity + 1 WHERE (clinic_id, vaccination_date, share) IN (SELECT clinic_id, vaccination_date, share FROM slot_quota ORDER BY 1, 2, 3 LIMIT 1)")
        .unwrap();
    let differs = replay(&loaded, Some(url));
    let pg = differs.postgres.as_ref().unwrap();
    assert!(!differs.ok() && pg.differences == 1, "{pg:#?}");
    assert!(pg.rows[0].starts_with("slot_quota "), "{pg:#?}");

    // An export from Kafka: the positions are the broker's offsets; the index is the export's.
    let out = dir.path().join("export");
    export::export(&kafka, &Range::default(), &out, "kafka".into(), false).unwrap();
    let exported = export::read_export(&out, false).unwrap();
    assert!(exported.integrity.is_empty(), "{:#?}", exported.integrity);
    assert_eq!(replay(&exported, None).digests, on_file.digests);
    let sparse = exported
        .streams
        .iter()
        .flat_map(|s| &s.items)
        .any(|i| Some(i.position.offset) != i.position.index);
    assert!(
        sparse,
        "Kafka's transaction markers take offsets; the export keeps the broker's"
    );
    let names: Vec<&str> = Topology::default()
        .topics()
        .iter()
        .map(|(t, _)| *t)
        .collect();
    let _ = kafka.delete_topics(&names);
}

/// A processor on a thread of the test.
struct InProcess {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl InProcess {
    fn start(bootstrap: &str, topics: &Topics) -> InProcess {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let config = ProcessorConfig::new(bootstrap, topics.clone(), "audit");
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut processor =
                    Processor::start(config, Campaign::default_2021()).expect("start");
                processor.run(stop).expect("run");
            })
        };
        InProcess { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the processor thread");
    }
}

#[test]
fn the_pipeline_s_log_audits_clean_and_a_rebalance_goes_through_the_clinic_writers_once() {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        return;
    };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let prefix = format!("t{}.", &Uuid::now_v7().simple().to_string()[20..]);
    let topics = Topics::new(
        &prefix,
        Topology {
            subject_partitions: 2,
            clinic_partitions: 2,
        },
    );
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();
    let processor = InProcess::start(&bootstrap, &topics);
    let submitter = Submitter::connect(&bootstrap, topics.clone()).unwrap();
    let mut tail = EventTail::open(&bootstrap, &topics).unwrap();

    // Three clinics of one region; the third closes before the booking days.
    let before = chrono::DateTime::parse_from_rfc3339("2021-08-09T12:00:00+09:00")
        .unwrap()
        .timestamp_millis();
    for clinic in ["s1", "s2", "s3"] {
        let command = Command {
            command_id: command_id_from(&format!("supply/{clinic}")),
            at_ms: before,
            body: CommandBody::RegisterSupply {
                clinic: ClinicId::new(clinic).unwrap(),
                name: format!("Clinic {clinic}"),
                region: "seoul".into(),
                date: "2021-08-30".parse().unwrap(),
                doses: 40,
                address: None,
                operator: None,
            },
        };
        submitter.send(&command).unwrap();
        submitter.flush(Duration::from_secs(30)).unwrap();
        assert!(
            tail.wait_for(command.command_id, Duration::from_secs(60))
                .unwrap()
                .is_some()
        );
    }

    let log = kafka_log(&bootstrap, &prefix);
    let model_now = |log: &KafkaLog| {
        let mut model = ReadModel::new();
        for stream in load(log, &Range::default(), "kafka".into(), false)
            .unwrap()
            .streams
        {
            for item in stream.items {
                model.apply(&item.envelope);
            }
        }
        model
    };
    let policy = Policy {
        at_ms: before + 60_000,
        close: [ClinicId::new("s3").unwrap()].into_iter().collect(),
        demand: false,
        min_move: 1,
    };
    let campaign = Campaign::default_2021();
    let planned = plan(&model_now(&log), &campaign, &policy);
    assert_eq!(planned.doses_moved(), 40, "{}", planned.render());
    let timeout = Duration::from_secs(60);
    // Through the one submit interface, as `yeyak rebalance --kafka` does.
    let observed = std::sync::Arc::new(Observed::default());
    let ledger = Kafka::connect(
        &bootstrap,
        topics.clone(),
        campaign.clone(),
        timeout,
        observed.clone(),
    )
    .unwrap();
    ledger.wait_caught_up(Duration::from_millis(300), timeout);
    let applied = apply(
        &ledger,
        &observed,
        &planned,
        (policy.at_ms, None),
        None,
        &mut Vec::new(),
    )
    .unwrap();
    assert!(
        applied.iter().all(|(_, a)| *a == Applied::Moved),
        "{applied:?}"
    );
    // Sent again (a resume from a stale projection): answered from the log, nothing moves.
    let again = apply(
        &ledger,
        &observed,
        &planned,
        (policy.at_ms, None),
        None,
        &mut Vec::new(),
    )
    .unwrap();
    assert!(
        again.iter().all(|(_, a)| *a == Applied::AlreadyApplied),
        "{again:?}"
    );
    let model = model_now(&log);
    assert_eq!(
        model.slot_quota, planned.after,
        "the clinic writers did what the plan said"
    );
    assert!(
        plan(&model, &campaign, &policy).moves.is_empty(),
        "a second run moves nothing"
    );
    // A record that is not a command: the processor dead-letters it, the auditor counts it.
    {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let raw: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let topic = format!("{prefix}{}", yeyak_log::codec::COMMANDS_CLINIC);
        raw.send(
            BaseRecord::<(), [u8]>::to(&topic)
                .partition(0)
                .payload(&b"not a command"[..]),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        raw.flush(Duration::from_secs(30)).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while yeyak_read::audit::commands::load(&log)
            .unwrap()
            .unwrap()
            .dead_letters
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < until,
                "no dead letter for the garbage"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    processor.stop();

    // The auditor: every rule holds; the digest is the live read model's (folded from the
    // tail) and PostgreSQL's.
    let mut live = ReadModel::new();
    while tail.poll(Duration::from_millis(300)).unwrap() > 0 {}
    for envelope in &tail.events {
        live.apply(envelope);
    }
    let schema = common::pg::TestSchema::create(&postgres);
    let mut projector = PgProjector::new(
        schema.client(),
        &log,
        topics.topology,
        READ_MODELS_PROJECTION,
    )
    .unwrap();
    projector.run_until_caught_up().unwrap();
    // The rebalance's other source of slot quotas, PostgreSQL, agrees: nothing left to move.
    let from_pg = yeyak_read::projection::postgres::read_model(&mut schema.client()).unwrap();
    assert_eq!(from_pg.slot_quota, model.slot_quota);
    assert!(plan(&from_pg, &campaign, &policy).moves.is_empty());
    let mut loaded = load(&log, &Range::default(), "kafka".into(), false).unwrap();
    loaded.commands = yeyak_read::audit::commands::load(&log).unwrap();
    let report = replay(&loaded, Some(schema.url()));
    assert!(report.ok(), "{:#?}", (&report.violations, &report.postgres));
    // Every event the processor wrote names its campaign; under another, the audit is refused.
    let check = &report.campaign_check;
    assert_eq!(
        (check.recorded_events, check.unrecorded_events),
        (report.events, 0)
    );
    let another = Campaign::from_toml(
        &yeyak_domain::calendar::DEFAULT_CAMPAIGN_TOML
            .replace("id = \"2021-18-49\"", "id = \"another-2021\""),
    )
    .unwrap();
    match audit(&loaded, &another, &AuditOptions::default()) {
        Err(refused) => {
            assert_eq!(refused.code(), "other_campaign");
            let text = refused.to_string();
            assert!(text.contains(&campaign.stamp().to_string()), "{text}");
            assert!(text.contains(&another.stamp().to_string()), "{text}");
        }
        Ok(_) => panic!("audited a log of the 2021 campaign against another"),
    }
    let counts = report
        .commands
        .clone()
        .expect("the command topics were read");
    assert!(counts.submitted > 0 && counts.answered > 0, "{counts:?}");
    assert_eq!(
        (
            counts.unanswered,
            counts.pending,
            counts.doubly_answered,
            counts.dead_lettered
        ),
        (0, 0, 0, 1),
        "{counts:?}"
    );
    assert!(report.notes.is_empty(), "{:#?}", report.notes);
    assert_eq!(report.digests["read_model"], live.digest());
    let transfers = report
        .rules
        .iter()
        .find(|r| r.code == "doses_not_conserved")
        .unwrap();
    assert!(
        transfers.checked >= 2 * applied.len() as u64,
        "every withdrawal and deposit was checked"
    );
    let _ = delete_topics(&bootstrap, &topics);
}

/// The embedded ledger on a Kafka log, with its live read side folded from every outcome.
struct LiveOnKafka {
    ledger: yeyak_ledger::Ledger<KafkaLog>,
    model: ReadModel,
}

impl common::Runner for LiveOnKafka {
    fn run(&mut self, command: Command) -> yeyak_domain::system::Outcome {
        let outcome = self.ledger.submit(command).expect("the Kafka log works");
        for envelope in &outcome.events {
            self.model.apply(envelope);
        }
        outcome
    }
}

#[test]
fn random_histories_on_kafka_replay_to_the_live_digests_and_postgresql() {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        return;
    };
    let Some(postgres) = common::pg::postgres_url() else {
        return;
    };
    let cases = std::env::var("YEYAK_AUDIT_KAFKA_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for case in 0..cases {
        let script = common::random::script()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let prefix = common::services::unique_prefix("audit-random");
        let ledger = yeyak_ledger::Ledger::open(
            kafka_log(&bootstrap, &prefix),
            Campaign::default_2021(),
            Topology::default(),
        )
        .unwrap();
        let mut live = LiveOnKafka {
            ledger,
            model: ReadModel::new(),
        };
        common::run_script(&mut live, &script);
        let log = kafka_log(&bootstrap, &prefix);
        let schema = common::pg::TestSchema::create(&postgres);
        let mut projector = PgProjector::new(
            schema.client(),
            &log,
            Topology::default(),
            READ_MODELS_PROJECTION,
        )
        .unwrap();
        projector.run_until_caught_up().unwrap();
        let report = replay(
            &load(&log, &Range::default(), "kafka".into(), false).unwrap(),
            Some(schema.url()),
        );
        assert!(
            report.ok(),
            "case {case}:\n{script}\n{:#?}",
            (&report.violations, &report.postgres)
        );
        assert_eq!(
            report.digests["read_model"],
            live.model.digest(),
            "case {case}"
        );
        assert_eq!(
            report.digests["domain_state"],
            yeyak_read::audit::system_digest(live.ledger.system()),
            "case {case}"
        );
        let names: Vec<&str> = Topology::default()
            .topics()
            .iter()
            .map(|(t, _)| *t)
            .collect();
        let _ = log.delete_topics(&names);
    }
}
