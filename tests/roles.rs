//! The long-running roles stop cleanly on SIGTERM and on SIGINT (Ctrl-C), as a service manager
//! or an operator stops them: exit code 0 and a last line saying so, not a kill.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a role may take to start (topics, consumer group) and to stop after the signal.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `yeyak` child whose stderr goes to a file.
struct Role {
    child: Child,
    log: std::path::PathBuf,
}

impl Role {
    fn start(args: &[&str], dir: &Path) -> Role {
        let log = dir.join(format!("{}.log", args[0]));
        // Every service is named by the arguments: none by the caller's environment
        // (scripts/test exports YEYAK_KAFKA, which would make a rehearsal `serve` a deployment).
        let child = Command::new(env!("CARGO_BIN_EXE_yeyak"))
            .args(args)
            .env_remove("YEYAK_KAFKA")
            .env_remove("YEYAK_POSTGRES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn yeyak");
        Role { child, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while !self.text().contains(needle) {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the role exited before `{needle}`:\n{}",
                self.text()
            );
            assert!(
                Instant::now() < until,
                "no `{needle}` within {timeout:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (by this child's pid only) and waits for its exit status.
    fn stop_with(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success(), "kill {signal} {pid}");
        let until = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.text());
            }
            if Instant::now() > until {
                self.child.kill().unwrap();
                panic!(
                    "no exit within {STOP_TIMEOUT:?} of {signal}:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_processor_stops_cleanly_on_sigterm_and_on_ctrl_c() {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        eprintln!("skipped: no broker");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::services::unique_prefix("roles");
    for (instance, signal) in [("term", "-TERM"), ("int", "-INT")] {
        let args = [
            "process",
            "--kafka",
            &bootstrap,
            "--topic-prefix",
            &prefix,
            "--instance",
            instance,
        ];
        let mut role = Role::start(&args, dir.path());
        role.wait_for("running", START_TIMEOUT);
        let (status, text) = role.stop_with(signal);
        assert!(status.success(), "{signal}: {status}\n{text}");
        assert!(
            text.contains(&format!("yeyak process {instance}: stopped")),
            "{text}"
        );
    }
}

#[test]
fn a_projector_stops_cleanly_on_sigterm() {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        eprintln!("skipped: no broker");
        return;
    };
    let Some(postgres) = common::pg::postgres_url() else {
        eprintln!("skipped: no database");
        return;
    };
    let schema = common::pg::TestSchema::create(&postgres);
    let url = schema.url();
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::services::unique_prefix("roles");
    // The topics must exist before a projector follows them: a processor creates them.
    let args = [
        "process",
        "--kafka",
        &bootstrap,
        "--topic-prefix",
        &prefix,
        "--instance",
        "p",
    ];
    let mut processor = Role::start(&args, dir.path());
    processor.wait_for("running", START_TIMEOUT);
    let args = [
        "project",
        "--kafka",
        &bootstrap,
        "--postgres",
        &url,
        "--topic-prefix",
        &prefix,
    ];
    let mut projector = Role::start(&args, dir.path());
    projector.wait_for("running", START_TIMEOUT);
    let (status, text) = projector.stop_with("-TERM");
    assert!(status.success(), "{status}\n{text}");
    assert!(text.contains("yeyak project: stopped"), "{text}");
    let (status, text) = processor.stop_with("-TERM");
    assert!(status.success(), "{status}\n{text}");
}

#[test]
fn a_gateway_stops_cleanly_on_sigterm_and_its_data_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // A rehearsal on the embedded log (a simulated clock: the public demo keys are allowed).
    let args = [
        "serve",
        "--data",
        data,
        "--listen",
        "127.0.0.1:0",
        "--clock",
        "2021-08-09T20:05:00+09:00",
    ];
    for signal in ["-TERM", "-INT"] {
        let mut role = Role::start(&args, dir.path());
        role.wait_for("listening on http://", START_TIMEOUT);
        let (status, text) = role.stop_with(signal);
        assert!(status.success(), "{signal}: {status}\n{text}");
        assert!(text.contains("yeyak serve: stopping"), "{text}");
    }
}
