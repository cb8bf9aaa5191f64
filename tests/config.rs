//! `yeyak.toml` from the outside (the binary, no services): flag > environment > file >
//! default for options of two roles, in what `yeyak config` shows and in what a role runs
//! with; unknown keys and wrong types refused with the key named before anything starts;
//! secrets masked by `yeyak config` and never on stderr; `yeyak.example.toml` parses for every
//! role and documents every key.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every role with a section.
use yeyak_config::ROLES;

/// A refused start ends at once; anything slower fails the test.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const SUBJECT_KEY: &str = "5ab1ec7000000000000000000000000000000000000000000000000000000001";
const TOKEN_KEY: &str = "70ce000000000000000000000000000000000000000000000000000000000002";
const ADMIN_TOKEN: &str = "admin-secret-0123456789abcdef0123456789";
const PG_PASSWORD: &str = "pg-secret-pw";
const SASL_PASSWORD: &str = "sasl-secret-pw";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory holding `yeyak.toml` with `text`.
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yeyak.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `yeyak ARGS` with only `env` in its environment, to completion (bounded).
fn yeyak(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn yeyak");
    let until = Instant::now() + START_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            child.kill().unwrap();
            panic!("yeyak {args:?} did not end: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `yeyak config` output: `section.name` → (value, source); unset keys have no entry.
fn shown(output: &Output) -> BTreeMap<String, (String, String)> {
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut section = String::new();
    let mut keys = BTreeMap::new();
    for line in text(&output.stdout).lines() {
        if line.starts_with("# ---- ") {
            section = String::new();
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((name, rest)) = line.split_once(" = ") {
            let (value, source) = rest.rsplit_once("  # ").unwrap();
            keys.insert(
                format!("{section}.{name}"),
                (value.to_owned(), source.to_owned()),
            );
        }
    }
    keys
}

fn config_of(role: &str, file: &Path, env: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut args = vec![
        "--config",
        file.to_str().unwrap(),
        "config",
        "--role",
        role,
        "--",
    ];
    args.extend(flags);
    yeyak(&args, env)
}

fn pair(value: &str, source: &str) -> (String, String) {
    (value.to_owned(), source.to_owned())
}

const LAYERED: &str = r#"
[kafka]
bootstrap = "file:9092"
replication = 1
[serve]
listen = "127.0.0.1:7001"
admit_per_s = 250.0
fifo_only = true
[process]
instance = "from-file"
session_timeout_ms = 7000
"#;

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let (_dir, file) = config_file(LAYERED);
    let serve = shown(&config_of("serve", &file, &[], &[]));
    assert_eq!(serve["kafka.bootstrap"], pair("\"file:9092\"", "file"));
    assert_eq!(serve["serve.listen"], pair("\"127.0.0.1:7001\"", "file"));
    assert_eq!(serve["serve.admit_per_s"], pair("250", "file"));
    assert_eq!(serve["serve.fifo_only"], pair("true", "file"));
    assert_eq!(serve["serve.admission_ttl_s"], pair("600", "default"));
    let env = [
        ("YEYAK_KAFKA", "env:9092"),
        ("YEYAK_TOPIC_REPLICATION", "2"),
    ];
    let serve = shown(&config_of(
        "serve",
        &file,
        &env,
        &["--listen", "127.0.0.1:7002"],
    ));
    assert_eq!(serve["kafka.bootstrap"], pair("\"env:9092\"", "env"));
    assert_eq!(serve["kafka.replication"], pair("2", "env"));
    assert_eq!(serve["serve.listen"], pair("\"127.0.0.1:7002\"", "flag"));
    let flags = ["--kafka", "flag:9092", "--topic-replication", "3"];
    let serve = shown(&config_of("serve", &file, &env, &flags));
    assert_eq!(serve["kafka.bootstrap"], pair("\"flag:9092\"", "flag"));
    assert_eq!(serve["kafka.replication"], pair("3", "flag"));

    // A flag that excludes a file value overrules it.
    let serve = shown(&config_of(
        "serve",
        &file,
        &[],
        &["--data", "/var/lib/yeyak"],
    ));
    assert!(!serve.contains_key("kafka.bootstrap"), "{serve:?}");
    assert_eq!(serve["serve.data"], pair("\"/var/lib/yeyak\"", "flag"));

    let process = shown(&config_of("process", &file, &[], &[]));
    assert_eq!(process["kafka.bootstrap"], pair("\"file:9092\"", "file"));
    assert_eq!(process["process.instance"], pair("\"from-file\"", "file"));
    assert_eq!(process["process.session_timeout_ms"], pair("7000", "file"));
    assert_eq!(process["kafka.subject_partitions"], pair("8", "default"));
    assert!(!process.contains_key("serve.listen"), "{process:?}");
    let process = shown(&config_of("process", &file, &env, &["--instance", "b"]));
    assert_eq!(process["kafka.bootstrap"], pair("\"env:9092\"", "env"));
    assert_eq!(process["process.instance"], pair("\"b\"", "flag"));
}

/// The first line of `yeyak demo`'s report: the campaign, people, eligible and clinics.
fn demo_headline(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_role_runs_with_the_layered_values() {
    let (_dir, file) = config_file("[demo]\npeople = 60\nclinics = 1\nseed = 7\n");
    let file = file.to_str().unwrap();
    let from_file = demo_headline(&yeyak(&["--config", file, "demo"], &[]));
    assert!(from_file.contains("(60 people, "), "{from_file}");
    assert!(from_file.ends_with(", 1 clinics)"), "{from_file}");
    let env = [("YEYAK_CONFIG", file)];
    assert_eq!(
        demo_headline(&yeyak(&["demo"], &env)),
        from_file,
        "YEYAK_CONFIG"
    );
    let flagged = demo_headline(&yeyak(&["demo", "--people", "80"], &env));
    assert!(flagged.contains("(80 people, "), "the flag wins: {flagged}");
    assert!(flagged.ends_with(", 1 clinics)"), "{flagged}");
}

/// Runs a rehearsal server (embedded log in the file's directory, `data`) with the file
/// `file_text`; the directory and the file are returned so that they can be looked at and used
/// again.
fn rehearsal_with(file_text: &str) -> (Output, tempfile::TempDir, PathBuf) {
    let (dir, file) = config_file(file_text);
    let data = dir.path().join("data");
    let args = [
        "--config",
        file.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--clock",
        "2021-08-09T20:00:00+09:00",
        "--data",
        data.to_str().unwrap(),
    ];
    (yeyak(&args, &[]), dir, file)
}

/// Runs a role that would start (a rehearsal server) with a bad file: it must end at once,
/// non-zero, with the key named, having printed nothing on stdout.
fn refused(file_text: &str, key_error: &str) {
    let (output, dir, file) = rehearsal_with(file_text);
    let data = dir.path().join("data");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{file_text}");
    assert!(stderr.contains(key_error), "{file_text}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{file_text}: {}",
        text(&output.stdout)
    );
    assert!(!data.exists(), "the server started: {file_text}");
    // Every role refuses the same file, not only the one the key is for.
    let output = yeyak(&["--config", file.to_str().unwrap(), "replay"], &[]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains(key_error), "{file_text}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_the_key_named() {
    refused("[serve]\nlisen = \"0.0.0.0:80\"\n", "[config_unknown_key] ");
    refused(
        "[serve]\nlisen = \"0.0.0.0:80\"\n",
        "unknown key serve.lisen",
    );
    refused(
        "[kafka]\nbootstrp = \"x:9092\"\n",
        "unknown key kafka.bootstrp",
    );
    refused("[srve]\nlisten = \"0.0.0.0:80\"\n", "unknown key srve");
    refused(
        "[serve]\nadmit_per_s = \"fast\"\n",
        "serve.admit_per_s must be a number, not string",
    );
    refused(
        "[kafka]\nreplication = \"three\"\n",
        "kafka.replication must be an integer, not string",
    );
    refused(
        "[kafka]\nreplication = 70000\n",
        "kafka.replication: invalid value",
    );
    refused(
        "[serve]\nfsync = \"sometimes\"\n",
        "serve.fsync: expected one of",
    );
    refused(
        "[kafka.properties]\n\"no.such.property\" = \"1\"\n",
        "no.such.property",
    );
    refused("[serve\nlisten = 1\n", "line 1: not TOML");
}

#[test]
fn a_certificate_without_its_key_in_the_file_is_refused() {
    // clap's `requires` does not see the file's values: the server checks the pair itself.
    let (output, dir, _file) = rehearsal_with("[serve]\ntls_cert = \"server.pem\"\n");
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("go together"),
        "{}",
        text(&output.stderr)
    );
    assert!(!dir.path().join("data").exists(), "the server started");
}

const SECRETS: &str = r#"
[kafka]
bootstrap = "127.0.0.1:1"
[kafka.properties]
"sasl.username" = "yeyak"
"sasl.password" = "sasl-secret-pw"
[postgres]
url = "postgres://yeyak:pg-secret-pw@127.0.0.1:1/yeyak"
[keys]
subject_key = "5ab1ec7000000000000000000000000000000000000000000000000000000001"
token_key = "70ce000000000000000000000000000000000000000000000000000000000002"
admin_token = "admin-secret-0123456789abcdef0123456789"
"#;

fn assert_no_secret(what: &str, text: &str) {
    for secret in [
        SUBJECT_KEY,
        TOKEN_KEY,
        ADMIN_TOKEN,
        PG_PASSWORD,
        SASL_PASSWORD,
    ] {
        assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
    }
}

#[test]
fn secrets_are_masked_by_yeyak_config() {
    let (_dir, file) = config_file(SECRETS);
    let output = yeyak(&["--config", file.to_str().unwrap(), "config"], &[]);
    assert_no_secret("yeyak config", &text(&output.stdout));
    let keys = shown(&output);
    assert_eq!(keys["keys.token_key"], pair("\"***\"", "file"));
    assert_eq!(keys["keys.admin_token"], pair("\"***\"", "file"));
    assert_eq!(keys["keys.subject_key"], pair("\"***\"", "file"));
    assert_eq!(
        keys["postgres.url"],
        pair("\"postgres://yeyak:***@127.0.0.1:1/yeyak\"", "file")
    );
    assert_eq!(
        keys["kafka.properties.\"sasl.password\""],
        pair("\"***\"", "file")
    );
    assert_eq!(
        keys["kafka.properties.\"sasl.username\""],
        pair("\"yeyak\"", "file")
    );
    // Secrets from the environment and flags are masked the same way.
    let env = [("YEYAK_TOKEN_KEY", TOKEN_KEY)];
    let flags = ["--admin-token", ADMIN_TOKEN];
    let output = config_of("serve", &file, &env, &flags);
    assert_no_secret("yeyak config (env, flag)", &text(&output.stdout));
    assert_eq!(shown(&output)["keys.token_key"], pair("\"***\"", "env"));
}

/// The answer's status line of `GET path` with `token`.
fn get_status(addr: &str, path: &str, token: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_server_takes_its_keys_from_the_file_and_logs_none() {
    // A rehearsal on the embedded log: no Kafka, hence no PostgreSQL.
    let rehearsal = SECRETS
        .replace("bootstrap = \"127.0.0.1:1\"", "")
        .replace("[postgres]", "")
        .replace(
            &format!("url = \"postgres://yeyak:{PG_PASSWORD}@127.0.0.1:1/yeyak\""),
            "",
        );
    let (dir, file) = config_file(&rehearsal);
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--clock", "2021-08-09T20:00:00+09:00"])
        .env_clear()
        .env("YEYAK_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + START_TIMEOUT;
    let addr = loop {
        let log = std::fs::read_to_string(&stderr_path).unwrap();
        if let Some(rest) = log.split("listening on http://").nth(1) {
            break rest.split(' ').next().unwrap().to_owned();
        }
        if Instant::now() > until || child.try_wait().unwrap().is_some() {
            child.kill().unwrap();
            panic!("the server did not start:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let with_token = get_status(&addr, "/admin/status", ADMIN_TOKEN);
    let without = get_status(
        &addr,
        "/admin/status",
        "wrong-token-0123456789abcdef0123456789",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(with_token.contains(" 200"), "{with_token}");
    assert!(without.contains(" 401"), "{without}");
    assert_no_secret(
        "serve's log",
        &std::fs::read_to_string(&stderr_path).unwrap(),
    );
}

#[test]
fn the_readmes_example_parses_for_every_role() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let configuration = readme.split("## Configuration").nth(1).unwrap();
    let example = configuration.split("```toml\n").nth(1).unwrap();
    let example = example.split("```").next().unwrap();
    let (_dir, file) = config_file(example);
    for role in ROLES {
        let output = config_of(role, &file, &[], &[]);
        assert!(output.status.success(), "{role}: {}", text(&output.stderr));
    }
}

#[test]
fn the_example_file_parses_for_every_role_and_documents_every_key() {
    let example = root().join("yeyak.example.toml");
    for role in ROLES {
        let output = config_of(role, &example, &[], &[]);
        assert!(output.status.success(), "{role}: {}", text(&output.stderr));
    }
    let example_text = std::fs::read_to_string(&example).unwrap();
    let documented = |section: &str, name: &str| {
        let mut current = "";
        example_text.lines().any(|line| {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = s;
            }
            let line = line.trim_start_matches("# ");
            current == section && line.starts_with(&format!("{name} ="))
        })
    };
    let (_dir, empty) = config_file("");
    let mut listed = String::new();
    for role in ROLES {
        let output = config_of(role, &empty, &[], &[]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        listed.push_str(&text(&output.stdout));
    }
    let mut section = String::new();
    for line in listed.lines() {
        if line.starts_with("# ---- ") {
            section = String::new();
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let name = match line.split_once(" = ") {
            Some((name, _)) => name,
            None => match line
                .strip_prefix("# ")
                .and_then(|l| l.split_once(": not set"))
            {
                Some((name, _)) => name,
                None => continue,
            },
        };
        assert!(
            documented(&section, name),
            "yeyak.example.toml does not document [{section}] {name}"
        );
    }
}

#[test]
fn debug_output_shows_no_password() {
    let url = Some(format!("postgres://yeyak:{PG_PASSWORD}@db:5432/yeyak"));
    let replay = yeyak_read::audit::cli::ReplayArgs {
        postgres: url.clone(),
        ..Default::default()
    };
    let audit = yeyak_read::audit::AuditOptions {
        postgres: url.clone(),
        progress: false,
    };
    let rebalance = yeyak_ops::cli::RebalanceArgs {
        postgres: url.clone(),
        ..Default::default()
    };
    let bench = yeyak_tools::bench::BenchConfig {
        bootstrap: "127.0.0.1:1".into(),
        people: 1,
        processors: 1,
        partitions: 1,
        timeout_s: 1,
        batch_linger_ms: 1,
        batch_quiet_ms: 1,
        batch_commands_max: 1,
        postgres: url,
        rate: None,
        admit_per_s: 1,
        doses_percent: None,
        topic_prefix: None,
    };
    for shown in [
        format!("{replay:?}"),
        format!("{audit:?}"),
        format!("{rebalance:?}"),
        format!("{bench:?}"),
    ] {
        assert!(
            shown.contains("postgres://yeyak:***@db:5432/yeyak"),
            "{shown}"
        );
        assert_no_secret("Debug", &shown);
    }
}
