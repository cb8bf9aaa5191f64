//! The ledger on a real Apache Kafka broker (`Ledger<KafkaLog>`): every seed scenario gives the
//! same transcript as the pure system and as the file log, a reopened ledger replays to the
//! same state, and a retried command appends nothing.
//!
//! Needs a broker: `YEYAK_KAFKA=127.0.0.1:19092` (see `tests/common/services.rs`). The ledger's
//! topic names are fixed, so every ledger here gets its own random topic prefix.

mod common;

use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{Campaign, Command, CommandBody, DeviceId, Method, System};
use yeyak_ledger::{Ledger, Topology, replay};
use yeyak_log::{EventLog, FileLog, FileLogConfig, KafkaConfig, KafkaLog};

struct OnKafka(Ledger<KafkaLog>);

impl common::Runner for OnKafka {
    fn run(&mut self, command: Command) -> Outcome {
        self.0.submit(command).expect("the Kafka log works")
    }
}

struct OnFile(Ledger<FileLog>);

impl common::Runner for OnFile {
    fn run(&mut self, command: Command) -> Outcome {
        self.0.submit(command).expect("the file log works")
    }
}

/// A topic prefix of its own; its topics are deleted when this is dropped (also on a panic).
struct Prefix {
    config: KafkaConfig,
}

impl Prefix {
    fn new(label: &str) -> Option<Prefix> {
        let Some(bootstrap) = common::services::kafka_bootstrap() else {
            eprintln!("skipped: no broker");
            return None;
        };
        let config = KafkaConfig {
            topic_prefix: common::services::unique_prefix(label),
            ..KafkaConfig::new(bootstrap, format!("yeyak-test-ledger-{label}"))
        };
        Some(Prefix { config })
    }

    fn open(&self) -> Ledger<KafkaLog> {
        let log = KafkaLog::connect(self.config.clone()).expect("connect to the broker");
        Ledger::open(log, Campaign::default_2021(), Topology::default())
            .expect("open the ledger on Kafka")
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(log) = KafkaLog::connect(self.config.clone()) else {
            return;
        };
        if let Ok(topics) = log.topics() {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(e) = log.delete_topics(&names) {
                eprintln!("could not delete test topics {names:?}: {e}");
            }
        }
    }
}

fn same_state(a: &System, b: &System) {
    assert_eq!(a.subjects, b.subjects);
    assert_eq!(a.clinics, b.clinics);
    assert_eq!(a.waiting_room, b.waiting_room);
    assert_eq!(a.totals, b.totals);
}

#[test]
fn every_scenario_decides_on_kafka_exactly_like_the_pure_system_and_the_file_log() {
    let Some(_) = common::services::kafka_bootstrap() else {
        eprintln!("skipped: no broker");
        return;
    };
    assert!(!common::scenarios::SCENARIOS.is_empty());
    for (name, script) in common::scenarios::SCENARIOS {
        let prefix = Prefix::new(name).unwrap();
        let mut system = System::new(Campaign::default_2021());
        let in_memory = common::run_script(&mut system, script);

        let dir = tempfile::tempdir().unwrap();
        let file_log = FileLog::open(FileLogConfig::new(dir.path())).unwrap();
        let mut on_file =
            OnFile(Ledger::open(file_log, Campaign::default_2021(), Topology::default()).unwrap());
        let file_transcript = common::run_script(&mut on_file, script);

        let mut on_kafka = OnKafka(prefix.open());
        let kafka_transcript = common::run_script(&mut on_kafka, script);
        assert_eq!(
            kafka_transcript, in_memory,
            "{name}: Kafka vs the pure system"
        );
        assert_eq!(
            kafka_transcript, file_transcript,
            "{name}: Kafka vs the file log"
        );
        same_state(on_kafka.0.system(), &system);
        assert!(
            on_kafka.0.system().violations().is_empty(),
            "{name}: {:?}",
            on_kafka.0.system().violations()
        );
        assert_eq!(
            on_kafka.0.events_total(),
            on_file.0.events_total(),
            "{name}"
        );

        // Reopening on the same prefix replays the topics into the same state.
        let live_events = on_kafka.0.events_total();
        drop(on_kafka);
        let reopened = prefix.open();
        same_state(reopened.system(), &system);
        assert_eq!(
            reopened.events_total(),
            live_events,
            "{name}: reopening decides nothing new"
        );
        let (replayed, count) = replay(
            reopened.log(),
            Campaign::default_2021(),
            &Topology::default(),
        )
        .unwrap();
        same_state(&replayed, &system);
        assert_eq!(count, live_events);
        // The log holds exactly the ledger's topics, without the prefix.
        let mut expected: Vec<String> = Topology::default()
            .topics()
            .iter()
            .map(|(t, _)| (*t).to_owned())
            .collect();
        expected.sort();
        assert_eq!(reopened.log().topics().unwrap(), expected);
    }
}

#[test]
fn a_retried_command_gets_the_first_answer_and_appends_nothing() {
    let Some(prefix) = Prefix::new("retry") else {
        return;
    };
    let mut ledger = prefix.open();
    let at = chrono::DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .timestamp_millis();
    let verify = Command {
        command_id: command_id_from("verify-once"),
        at_ms: at,
        body: CommandBody::Verify {
            subject: common::subject_of("a"),
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Pass,
            device: DeviceId::new("pc").unwrap(),
        },
    };
    let first = ledger.submit(verify.clone()).unwrap();
    assert!(first.rejection.is_none());
    assert!(!first.events.is_empty());
    let before = common::end_offsets(ledger.log());
    let again = ledger.submit(verify.clone()).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        before,
        common::end_offsets(ledger.log()),
        "a retry appends nothing"
    );

    // Also after a restart: the answer comes from the log.
    drop(ledger);
    let mut ledger = prefix.open();
    let after_restart = ledger.submit(verify).unwrap();
    assert_eq!(first, after_restart);
    assert_eq!(before, common::end_offsets(ledger.log()));
}
