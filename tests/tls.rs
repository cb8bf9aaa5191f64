//! TLS to the real services: Kafka over SASL_SSL (SCRAM-SHA-512) and PostgreSQL with
//! `sslmode=verify-full`, against the local services `YEYAK_SERVICES_TLS=1 scripts/services up`
//! makes (a certificate authority of their own). A client with the right CA and password
//! connects and round-trips; one trusting another CA, or with a wrong password, is refused.
//!
//! Needs `YEYAK_KAFKA_TLS`, `YEYAK_KAFKA_TLS_PROPERTIES`, `YEYAK_POSTGRES_TLS` and
//! `YEYAK_TLS_OTHER_CA` (printed by that command; `scripts/test` starts such services and sets
//! them). Without them every test here says so and passes.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::{Topics, admin};
use yeyak_log::{ClientProperties, EventLog, KafkaConfig, KafkaLog, LogError, Record};

/// How long a client that is refused keeps trying before the test sees the error.
const REFUSED_WITHIN_MS: u32 = 8_000;

struct KafkaTls {
    bootstrap: String,
    properties: String,
    other_ca: String,
}

fn kafka_tls() -> Option<KafkaTls> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (
        var("YEYAK_KAFKA_TLS"),
        var("YEYAK_KAFKA_TLS_PROPERTIES"),
        var("YEYAK_TLS_OTHER_CA"),
    ) {
        (Some(bootstrap), Some(properties), Some(other_ca)) => Some(KafkaTls {
            bootstrap,
            properties,
            other_ca,
        }),
        _ => {
            eprintln!(
                "skipped: no Kafka with TLS (YEYAK_KAFKA_TLS, YEYAK_KAFKA_TLS_PROPERTIES, \
                 YEYAK_TLS_OTHER_CA: run YEYAK_SERVICES_TLS=1 scripts/services up)"
            );
            None
        }
    }
}

/// The services' client properties with `changes` on top.
fn properties(tls: &KafkaTls, changes: &[(&str, &str)]) -> ClientProperties {
    let mut properties = ClientProperties::parse_list(&tls.properties).expect("the properties");
    for (key, value) in changes {
        properties.set(key, value).expect("a property");
    }
    properties
}

fn connect(
    tls: &KafkaTls,
    label: &str,
    properties: ClientProperties,
) -> Result<KafkaLog, LogError> {
    KafkaLog::connect(KafkaConfig {
        topic_prefix: common::services::unique_prefix(label),
        request_timeout_ms: REFUSED_WITHIN_MS,
        properties,
        ..KafkaConfig::new(&tls.bootstrap, format!("yeyak-test-{label}"))
    })
}

#[test]
fn kafka_over_sasl_ssl_round_trips_a_record_with_the_right_ca_and_password() {
    let Some(tls) = kafka_tls() else { return };
    let log = connect(&tls, "tls", properties(&tls, &[])).expect("connect over SASL_SSL");
    log.ensure_topic("events", 1).unwrap();
    let record = Record {
        key: b"clinic-1".to_vec(),
        value: b"{\"tls\":true}".to_vec(),
        headers: vec![("event-type".to_owned(), b"SupplyRegistered".to_vec())],
        timestamp_ms: 1_628_506_800_000,
    };
    let offset = log
        .append("events", 0, std::slice::from_ref(&record))
        .unwrap();
    let read = log.read("events", 0, offset, 10).unwrap();
    assert_eq!(read.first().map(|s| &s.record), Some(&record));
    log.delete_topics(&["events"]).unwrap();
}

#[test]
fn kafka_refuses_a_client_that_trusts_another_ca() {
    let Some(tls) = kafka_tls() else { return };
    let other_ca = tls.other_ca.clone();
    let refused = connect(
        &tls,
        "tls-ca",
        properties(&tls, &[("ssl.ca.location", &other_ca)]),
    );
    assert!(refused.is_err(), "a client trusting another CA connected");
}

#[test]
fn kafka_refuses_a_wrong_password() {
    let Some(tls) = kafka_tls() else { return };
    let refused = connect(
        &tls,
        "tls-pw",
        properties(&tls, &[("sasl.password", "not-it")]),
    );
    assert!(refused.is_err(), "a wrong password was accepted");
}

/// The binary passes `YEYAK_KAFKA_PROPERTIES` and `--kafka-property` (which wins) to its
/// pipeline clients, and shows the password nowhere.
#[test]
fn yeyak_process_runs_over_sasl_ssl_with_passed_through_properties() {
    let Some(tls) = kafka_tls() else { return };
    let password = properties(&tls, &[])
        .get("sasl.password")
        .expect("a password")
        .to_owned();
    let prefix = common::services::unique_prefix("tls-process");
    let mut child = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "process",
            "--kafka",
            &tls.bootstrap,
            "--topic-prefix",
            &prefix,
        ])
        .args([
            "--instance",
            "tls",
            "--subject-partitions",
            "1",
            "--clinic-partitions",
            "1",
        ])
        .args(["--kafka-property", &format!("sasl.password={password}")])
        .env(
            "YEYAK_KAFKA_PROPERTIES",
            format!("{},sasl.password=wrong", tls.properties),
        )
        .env("YEYAK_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start yeyak process");
    let mut stderr = common::lines::Lines::follow(child.stderr.take().unwrap());
    let running = stderr
        .wait_for(": running", Duration::from_secs(90))
        .is_some();
    let stop = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait for yeyak process");
    stderr.drain(Duration::from_secs(10));
    let seen = stderr.seen;

    yeyak_log::client_properties::set_process_properties(properties(&tls, &[]));
    let topics = Topics::new(
        &prefix,
        Topology {
            subject_partitions: 1,
            clinic_partitions: 1,
        },
    );
    admin::delete_topics(&tls.bootstrap, &topics).expect("delete the topics over SASL_SSL");

    assert!(
        running,
        "the processor did not start over SASL_SSL:\n{seen}"
    );
    assert!(stop.is_ok_and(|s| s.success()));
    assert!(status.success(), "{status:?}\n{seen}");
    assert!(seen.contains("sasl.password=***"), "{seen}");
    assert!(
        !seen.contains(&password),
        "the password was printed:\n{seen}"
    );
}

fn postgres_tls() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var("YEYAK_POSTGRES_TLS"), var("YEYAK_TLS_OTHER_CA")) {
        (Some(url), Some(other_ca)) => Some((url, other_ca)),
        _ => {
            eprintln!(
                "skipped: no PostgreSQL with TLS (YEYAK_POSTGRES_TLS, YEYAK_TLS_OTHER_CA: run \
                 YEYAK_SERVICES_TLS=1 scripts/services up)"
            );
            None
        }
    }
}

/// `url` with the value of one query parameter replaced.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let (head, query) = url.split_once('?').expect("a URL with parameters");
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == key => format!("{key}={value}"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

#[test]
fn postgres_verify_full_connects_over_tls_with_the_right_ca() {
    let Some((url, _)) = postgres_tls() else {
        return;
    };
    assert!(url.contains("sslmode=verify-full"), "{url}");
    let mut client = yeyak_read::pg::connect(&url).expect("connect with verify-full");
    let row = client
        .query_one(
            "SELECT ssl, $1::int + 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[&41i32],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0), "the connection is not encrypted");
    assert_eq!(row.get::<_, i32>(1), 42);
}

#[test]
fn postgres_refuses_a_client_that_trusts_another_ca() {
    let Some((url, other_ca)) = postgres_tls() else {
        return;
    };
    let url = with_param(&url, "sslrootcert", &other_ca);
    let refused = yeyak_read::pg::connect(&url);
    assert!(
        matches!(refused, Err(yeyak_read::pg::PgConnectError::Connect(_))),
        "a client trusting another CA connected"
    );
}

#[test]
fn postgres_refuses_a_wrong_password_over_tls() {
    let Some((url, _)) = postgres_tls() else {
        return;
    };
    let (scheme_user, rest) = url.split_once('@').expect("user@host");
    let (scheme_name, _) = scheme_user.rsplit_once(':').expect("user:password");
    let url = format!("{scheme_name}:not-it@{rest}");
    assert!(
        yeyak_read::pg::connect(&url).is_err(),
        "a wrong password was accepted"
    );
}

/// Needs no service: the binary refuses a property yeyak sets itself before connecting.
#[test]
fn a_property_yeyak_sets_itself_is_refused_with_its_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(["process", "--kafka", "127.0.0.1:1"])
        .args(["--kafka-property", "isolation.level=read_uncommitted"])
        .env_remove("YEYAK_KAFKA_PROPERTIES")
        .output()
        .expect("run yeyak process");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[reserved_kafka_property]") && stderr.contains("isolation.level"),
        "{stderr}"
    );
}
