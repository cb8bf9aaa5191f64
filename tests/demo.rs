//! `yeyak demo` end to end on a temporary directory: every check passes and the report names
//! the rules the seed is about.

use yeyak_identity::{Pseudonymiser, SecretKey};
use yeyak_log::FsyncPolicy;
use yeyak_tools::demo::{DemoConfig, run};

#[test]
fn the_demo_campaign_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = DemoConfig {
        people: 800,
        clinics: 3,
        seed: 7,
        data_dir: dir.path().join("log"),
        fsync: FsyncPolicy::Never,
    };
    let key = Pseudonymiser::new(SecretKey::new(vec![42; 32]).unwrap());
    let mut out = Vec::new();
    let report = run(&config, &key, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(report.ok(), "{text}");
    assert!(report.reservations > 300, "{text}");
    for code in [
        "device_locked",
        "verify_rate_limited",
        "not_eligible",
        "sold_out",
    ] {
        assert!(report.rejections.contains_key(code), "no {code} in {text}");
    }
    assert!(
        text.contains("booking day 10 (digit 8, 2021-08-18 20:00)"),
        "{text}"
    );
    assert!(text.contains("[ok  ] replay of"), "{text}");

    // A second run on the same directory is refused rather than mixed into the old log.
    let again = run(&config, &key, &mut Vec::new());
    assert!(matches!(
        again,
        Err(yeyak_tools::demo::DemoError::Config(_))
    ));
}
