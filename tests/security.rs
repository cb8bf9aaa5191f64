//! What `yeyak serve` refuses at start, from the outside (the binary, no services): a short or
//! empty admin token, and missing keys where a run is not a rehearsal; and `yeyak keygen`, the
//! one-line way to make the keys that the refusals point to.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A refused start ends at once; a server that starts is stopped after this and fails the test.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const REHEARSAL: [&str; 2] = ["--clock", "2021-08-09T20:00:00+09:00"];

/// Runs `yeyak serve ARGS` with `env` (and no key or service from the caller's environment) and
/// returns its stderr, asserting that it refused to start.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_yeyak"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("YEYAK_SUBJECT_KEY")
        .env_remove("YEYAK_TOKEN_KEY")
        .env_remove("YEYAK_ADMIN_TOKEN")
        .env_remove("YEYAK_KAFKA")
        .env_remove("YEYAK_POSTGRES")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = command.spawn().expect("spawn yeyak");
    let until = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "yeyak serve {args:?} started:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{args:?}");
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn a_short_or_empty_admin_token_is_refused_with_how_to_make_one() {
    for token in ["", "secret", "0123456789abcdef0123456789abcde"] {
        let mut args = REHEARSAL.to_vec();
        args.extend(["--admin-token", token]);
        let text = refused(&args, &[]);
        assert!(text.contains("openssl rand -hex 32"), "{token:?}: {text}");
        if !token.is_empty() {
            assert!(!text.contains(token), "the error repeats the token: {text}");
        }
        let text = refused(&REHEARSAL, &[("YEYAK_ADMIN_TOKEN", token)]);
        assert!(text.contains("at least 32"), "{token:?} in the env: {text}");
    }
}

#[test]
fn a_server_on_real_time_or_on_kafka_needs_both_keys() {
    let kafka = [
        "--kafka",
        "127.0.0.1:1",
        "--clock",
        "2021-08-09T20:00:00+09:00",
    ];
    for args in [&[][..], &kafka[..]] {
        for (env, missing) in [
            (vec![], "YEYAK_TOKEN_KEY"),
            (vec![("YEYAK_TOKEN_KEY", KEY)], "YEYAK_SUBJECT_KEY"),
            (vec![("YEYAK_SUBJECT_KEY", KEY)], "YEYAK_TOKEN_KEY"),
        ] {
            let text = refused(args, &env);
            assert!(text.contains(missing), "{args:?} {env:?}: {text}");
            assert!(text.contains("openssl rand -hex 32"), "{text}");
            assert!(text.contains("eval \"$(yeyak keygen)\""), "{text}");
        }
    }
}

/// `yeyak keygen` prints both keys as `export` lines, fresh every time, and a server given
/// them gets past the keys (here to the next refusal, `--postgres` without `--kafka`).
#[test]
fn keygen_makes_keys_that_serve_accepts() {
    let keygen = || {
        let out = Command::new(env!("CARGO_BIN_EXE_yeyak"))
            .arg("keygen")
            .output()
            .expect("run yeyak keygen");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let text = keygen();
    let keys: Vec<(&str, &str)> = text
        .lines()
        .map(|line| {
            let (name, key) = line
                .strip_prefix("export ")
                .unwrap()
                .split_once('=')
                .unwrap();
            assert_eq!(key.len(), 64, "{line}");
            assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
            (name, key)
        })
        .collect();
    let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["YEYAK_SUBJECT_KEY", "YEYAK_TOKEN_KEY"]);
    assert_ne!(keys[0].1, keys[1].1);
    assert!(!keygen().contains(keys[0].1), "the same key twice");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let text = refused(
        &["--data", data, "--postgres", "postgres://127.0.0.1:1/x"],
        &keys,
    );
    assert!(text.contains("--postgres needs --kafka"), "{text}");
    // --data with --kafka is refused when parsing, before the keys are read.
    let text = refused(&["--kafka", "127.0.0.1:1", "--data", data], &keys);
    assert!(text.contains("cannot be used with"), "{text}");
    let kafka_env = [keys[0], keys[1], ("YEYAK_KAFKA", "127.0.0.1:1")];
    let text = refused(&["--data", data], &kafka_env);
    assert!(text.contains("cannot be used with"), "{text}");
}
