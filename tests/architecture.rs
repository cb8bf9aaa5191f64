//! The most important boundary, held by a test: the domain does no IO, reads no clock and
//! draws no random number.

#[test]
fn the_domain_is_pure() {
    let forbidden = [
        "std::time",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "rand::",
        "tokio",
        "rdkafka",
        "postgres",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "std::thread",
        "Uuid::new_v4",
        "Uuid::now_v7",
        "println!",
        "tracing::",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} uses {word}: the domain must stay pure",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 9,
        "expected the domain's modules in {}",
        dir.display()
    );
}

#[test]
fn resident_numbers_stay_at_the_edge() {
    // Only the identity edge (and the demo, which makes up people) may touch resident numbers.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("ResidentNumber") {
                assert!(
                    ["identity.rs", "demo.rs"].contains(&name.as_str()),
                    "{name} handles resident numbers"
                );
            }
        }
    }
}
