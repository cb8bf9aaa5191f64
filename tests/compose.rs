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
