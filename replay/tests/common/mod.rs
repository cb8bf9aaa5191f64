//! What the tests of `yeyak-replay` share: a demo campaign's log, and running the binary.

use std::path::Path;
use std::process::{Command, Output};

use yeyak_log::FsyncPolicy;

/// A small demo campaign's log in `dir`.
pub fn demo(dir: &Path) {
    let key = yeyak_identity::SecretKey::new(b"yeyak test key, not a secret!!!!".to_vec()).unwrap();
    let config = yeyak_tools::demo::DemoConfig {
        people: 300,
        clinics: 4,
        seed: 7,
        data_dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Never,
    };
    let report = yeyak_tools::demo::run(
        &config,
        &yeyak_identity::Pseudonymiser::new(key),
        &mut Vec::new(),
    )
    .unwrap();
    assert!(report.ok(), "{:?}", report.violations);
}

/// Runs the `yeyak-replay` binary.
pub fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yeyak-replay"))
        .args(args)
        .output()
        .expect("run yeyak-replay")
}
