//! The architecture as a compiler fact, held by tests: the crate graph is the drawing of
//! ARCHITECTURE.md, the domain is pure, the auditors' side cannot write, and resident numbers
//! stay at the edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The drawing: every workspace crate and the workspace crates it may depend on directly
/// (normal dependencies). A crate missing here, or an edge the drawing lacks, fails the test.
const DRAWING: &[(&str, &[&str])] = &[
    ("yeyak-domain", &[]),
    ("yeyak-config", &[]),
    ("yeyak-identity", &["yeyak-domain"]),
    ("yeyak-log", &["yeyak-domain"]),
    ("yeyak-ledger", &["yeyak-domain", "yeyak-log"]),
    ("yeyak-read", &["yeyak-domain", "yeyak-log"]),
    (
        "yeyak-front",
        &[
            "yeyak-domain",
            "yeyak-identity",
            "yeyak-log",
            "yeyak-ledger",
            "yeyak-read",
        ],
    ),
    (
        "yeyak-ops",
        &["yeyak-domain", "yeyak-log", "yeyak-ledger", "yeyak-read"],
    ),
    (
        "yeyak-tools",
        &[
            "yeyak-config",
            "yeyak-domain",
            "yeyak-identity",
            "yeyak-log",
            "yeyak-ledger",
            "yeyak-read",
        ],
    ),
    ("yeyak-replay", &["yeyak-config", "yeyak-log", "yeyak-read"]),
    ("yeyak-sim", &["yeyak-domain", "yeyak-ledger", "yeyak-read"]),
    (
        "yeyak-campaign",
        &["yeyak-domain", "yeyak-log", "yeyak-ledger"],
    ),
    (
        "yeyak",
        &[
            "yeyak-config",
            "yeyak-domain",
            "yeyak-identity",
            "yeyak-log",
            "yeyak-ledger",
            "yeyak-read",
            "yeyak-front",
            "yeyak-ops",
            "yeyak-tools",
            "yeyak-sim",
            "yeyak-campaign",
        ],
    ),
];

/// Crates that do IO: none of them may be in the domain's dependencies, even indirectly.
const IO_CRATES: &[&str] = &[
    "tokio",
    "rdkafka",
    "rdkafka-sys",
    "postgres",
    "tokio-postgres",
    "axum",
    "hyper",
    "reqwest",
    "mio",
    "socket2",
    "tracing",
];
/// The crates that can append to the log.
const WRITERS: &[&str] = &[
    "yeyak-ledger",
    "yeyak-ops",
    "yeyak-front",
    "yeyak-tools",
    "yeyak-campaign",
];
/// The edges: the only crates that may see a resident number.
const EDGES: &[&str] = &["yeyak-front", "yeyak-tools", "yeyak"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The target this machine builds for (the graph is resolved for it alone).
fn host() -> String {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_owned()
}

/// The resolved graph of normal dependencies: package name -> names it depends on.
fn normal_graph() -> BTreeMap<String, BTreeSet<String>> {
    let metadata: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--filter-platform",
        &host(),
    ]))
    .unwrap();
    let name_of: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let name = name_of[node["id"].as_str().unwrap()].to_owned();
        let deps: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph.entry(name).or_insert_with(BTreeSet::new).extend(deps);
    }
    graph
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(next) = stack.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_crate_graph_is_the_drawing() {
    let graph = normal_graph();
    let workspace: BTreeSet<&str> = DRAWING.iter().map(|(name, _)| *name).collect();
    let actual_workspace: BTreeSet<&str> = graph
        .keys()
        .map(String::as_str)
        .filter(|n| *n == "yeyak" || n.starts_with("yeyak-"))
        .collect();
    assert_eq!(
        actual_workspace, workspace,
        "a crate is missing from the drawing"
    );
    for (name, allowed) in DRAWING {
        let actual: BTreeSet<&str> = graph[*name]
            .iter()
            .map(String::as_str)
            .filter(|d| workspace.contains(d))
            .collect();
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        assert_eq!(
            actual, allowed,
            "{name} depends on other crates than the drawing says"
        );
    }
}

#[test]
fn the_domain_depends_on_no_io_crate() {
    let graph = normal_graph();
    let reached = closure(&graph, "yeyak-domain");
    for io in IO_CRATES {
        assert!(!reached.contains(*io), "yeyak-domain depends on {io}");
    }
}

#[test]
fn the_auditors_side_depends_on_no_writer() {
    let graph = normal_graph();
    for reader in ["yeyak-read", "yeyak-replay"] {
        let reached = closure(&graph, reader);
        for writer in WRITERS {
            assert!(!reached.contains(*writer), "{reader} depends on {writer}");
        }
    }
}

#[test]
fn only_the_edges_depend_on_identity() {
    let graph = normal_graph();
    for (name, deps) in &graph {
        if deps.contains("yeyak-identity") {
            assert!(
                EDGES.contains(&name.as_str()),
                "{name} depends on yeyak-identity"
            );
        }
    }
}

#[test]
fn testing_the_domain_builds_no_kafka_and_no_database() {
    let tree = cargo(&[
        "tree",
        "-p",
        "yeyak-domain",
        "-e",
        "normal,build,dev",
        "--prefix",
        "none",
        "--locked",
        "--target",
        &host(),
    ]);
    for io in ["rdkafka", "postgres", "tokio"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{io} "))),
            "`cargo test -p yeyak-domain` builds {io}:\n{tree}"
        );
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

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
    let files = rust_files(&root().join("crates/domain/src"));
    assert!(files.len() >= 10, "expected the domain's modules");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} uses {word}: the domain must stay pure",
                path.display()
            );
        }
    }
}

#[test]
fn resident_numbers_stay_at_the_edge() {
    // The identity crate defines them; the tools make up people, and so do the front tier's
    // tests (its HTTP edge takes them; the root's tests/ do the same and are not scanned).
    let allowed = ["crates/identity/", "crates/tools/", "crates/front/tests/"];
    let mut files = rust_files(&root().join("crates"));
    files.extend(rust_files(&root().join("src")));
    files.extend(rust_files(&root().join("replay")));
    for path in files {
        let name = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("ResidentNumber") {
            assert!(
                allowed.iter().any(|a| name.starts_with(a)),
                "{name} handles resident numbers"
            );
        }
    }
}
