//! `docker-compose.yml` stays equivalent to `scripts/services` (same ports, names and
//! credentials on the host) and runs only yeyak commands and options that exist.

use std::process::Command;

use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .unwrap();
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

fn services_env() -> String {
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services"))
        .arg("env")
        .output()
        .unwrap();
    assert!(output.status.success(), "scripts/services env failed");
    String::from_utf8(output.stdout).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_services_are_published_like_scripts_services_starts_them() {
    let compose = compose();
    let env = services_env();
    assert!(
        env.contains("export YEYAK_KAFKA=127.0.0.1:19092\n"),
        "{env}"
    );
    assert!(
        env.contains("export YEYAK_POSTGRES=postgres://yeyak:yeyak@127.0.0.1:15432/yeyak\n"),
        "{env}"
    );
    let services = &compose["services"];
    assert_eq!(
        strings(&services["kafka"]["ports"]),
        ["127.0.0.1:19092:19092"]
    );
    assert!(
        services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
            .as_str()
            .unwrap()
            .contains("PLAINTEXT://127.0.0.1:19092")
    );
    assert_eq!(
        strings(&services["postgres"]["ports"]),
        ["127.0.0.1:15432:5432"]
    );
    for (key, value) in [
        ("POSTGRES_USER", "yeyak"),
        ("POSTGRES_PASSWORD", "yeyak"),
        ("POSTGRES_DB", "yeyak"),
    ] {
        assert_eq!(
            services["postgres"]["environment"][key].as_str(),
            Some(value),
            "{key}"
        );
    }
    for (name, service) in services.as_mapping().unwrap() {
        for port in strings(&service["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} beyond loopback"
            );
        }
    }
}

#[test]
fn every_yeyak_container_runs_a_real_command() {
    let compose = compose();
    let mut roles = 0;
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let command = strings(&service["command"]);
        if service["image"].as_str() != Some("yeyak:local") {
            continue;
        }
        roles += 1;
        let env = &service["environment"];
        assert!(
            env["YEYAK_KAFKA"]
                .as_str()
                .is_some_and(|k| k.starts_with("kafka:")),
            "{name:?}"
        );
        assert!(
            env["YEYAK_POSTGRES"]
                .as_str()
                .is_some_and(|p| p.contains("@postgres:5432/")),
            "{name:?}"
        );
        // The command with --help: clap refuses an unknown subcommand or option with status 2.
        let output = Command::new(env!("CARGO_BIN_EXE_yeyak"))
            .args(&command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name:?}: `yeyak {}` is not a valid command line: {}",
            command.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        roles >= 4,
        "processors, projector and gateway are in the compose file"
    );
}

/// `docker-compose.cluster.yml` publishes the three brokers where `scripts/services up
/// --brokers 3` listens, with three voters and every yeyak role given all three.
#[test]
fn the_three_broker_option_matches_scripts_services() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker-compose.cluster.yml"
    ))
    .unwrap();
    let mut cluster: Value = serde_yaml::from_str(&text).unwrap();
    cluster.apply_merge().unwrap();
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services"))
        .arg("env")
        .env("YEYAK_KAFKA_BROKERS", "3")
        .output()
        .unwrap();
    let env = String::from_utf8(output.stdout).unwrap();
    let bootstrap = "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112";
    assert!(
        env.contains(&format!("export YEYAK_KAFKA={bootstrap}\n")),
        "{env}"
    );
    let services = &cluster["services"];
    for (node, port) in [("kafka-2", 19102), ("kafka-3", 19112)] {
        assert_eq!(
            strings(&services[node]["ports"]),
            [format!("127.0.0.1:{port}:{port}")]
        );
    }
    for node in ["kafka", "kafka-2", "kafka-3"] {
        let env = &services[node]["environment"];
        let voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].as_str().unwrap();
        assert_eq!(voters.split(',').count(), 3, "{node}: {voters}");
        assert_eq!(env["KAFKA_MIN_INSYNC_REPLICAS"].as_u64(), Some(2), "{node}");
    }
    for role in ["processor-a", "processor-b", "projector", "gateway"] {
        let kafka = services[role]["environment"]["YEYAK_KAFKA"]
            .as_str()
            .unwrap();
        assert_eq!(kafka.split(',').count(), 3, "{role}: {kafka}");
        assert!(
            compose()["services"][role].is_mapping(),
            "{role} is in the base file"
        );
    }
}

/// `docker-compose.tls.yml` mounts the certificates `scripts/services certs` makes and speaks
/// TLS the way `YEYAK_SERVICES_TLS=1 scripts/services` does: the SASL_SSL listener published
/// where the script's is, the same SCRAM mechanism, user and password, a server certificate
/// that names the containers, and every yeyak role over SASL_SSL and verify-full.
#[test]
fn the_tls_option_matches_scripts_services_tls_mode() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/docker-compose.tls.yml")).unwrap();
    let mut tls: Value = serde_yaml::from_str(&text).unwrap();
    tls.apply_merge().unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(format!("{root}/scripts/services"))
        .arg("env")
        .env("YEYAK_SERVICES_TLS", "1")
        .env("YEYAK_SERVICES_DIR", state.path())
        .output()
        .unwrap();
    let env = String::from_utf8(output.stdout).unwrap();
    assert!(
        env.contains("export YEYAK_KAFKA_TLS=127.0.0.1:19094\n"),
        "{env}"
    );
    let script_properties = env
        .lines()
        .find_map(|l| l.strip_prefix("export YEYAK_KAFKA_TLS_PROPERTIES='"))
        .unwrap()
        .trim_end_matches('\'');
    let without_ca = |properties: &str| -> Vec<String> {
        let mut kept: Vec<String> = properties
            .split(',')
            .filter(|p| !p.starts_with("ssl.ca.location="))
            .map(str::to_owned)
            .collect();
        kept.sort();
        kept
    };
    let services = &tls["services"];
    assert_eq!(
        strings(&services["kafka"]["ports"]),
        ["127.0.0.1:19094:19094"]
    );
    let password = script_properties
        .split(',')
        .find_map(|p| p.strip_prefix("sasl.password="))
        .unwrap();
    let scram = strings(&services["kafka-scram"]["command"]).join(" ");
    assert!(
        scram.contains(&format!("SCRAM-SHA-512=[password={password}]")) && scram.contains("yeyak"),
        "{scram}"
    );
    let script = std::fs::read_to_string(format!("{root}/scripts/services")).unwrap();
    assert!(
        script.contains("DNS:kafka,DNS:postgres"),
        "the server certificate names the containers"
    );
    let keystore = services["kafka"]["environment"]["KAFKA_SSL_KEYSTORE_PASSWORD"]
        .as_str()
        .unwrap();
    assert!(script.contains(&format!("KEYSTORE_PASSWORD={keystore}\n")));
    for role in ["processor-a", "processor-b", "projector", "gateway"] {
        let service = &services[role];
        let env = &service["environment"];
        let properties = env["YEYAK_KAFKA_PROPERTIES"].as_str().unwrap();
        assert_eq!(
            without_ca(properties),
            without_ca(script_properties),
            "{role}"
        );
        assert!(
            properties.contains("ssl.ca.location=/etc/yeyak/tls/ca.pem"),
            "{role}"
        );
        assert_eq!(env["YEYAK_KAFKA"].as_str(), Some("kafka:29094"), "{role}");
        let postgres = env["YEYAK_POSTGRES"].as_str().unwrap();
        assert!(
            postgres.contains("@postgres:5432/")
                && postgres.contains("sslmode=verify-full&sslrootcert=/etc/yeyak/tls/ca.pem"),
            "{role}: {postgres}"
        );
        assert!(
            strings(&service["volumes"])[0].ends_with(":/etc/yeyak/tls:ro"),
            "{role}"
        );
        assert!(
            compose()["services"][role].is_mapping(),
            "{role} is in the base file"
        );
    }
}
