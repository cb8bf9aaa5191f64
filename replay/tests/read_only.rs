//! An audit never changes the log it audits. A data directory with a torn tail in one partition
//! and a torn segment header in another is replayed (by the `yeyak-replay` binary and by the
//! library) and exported; afterwards every file's bytes and the directory listing are the same.
//! The replay fails (exit code 2) naming each damage where it is; the export refuses, with its
//! stable code, and writes nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use common::{demo, replay};
use yeyak_log::codec::{TOPIC_CLINIC, TOPIC_SUBJECT};
use yeyak_log::{EventLog, FileLog, FileLogConfig, Offset};
use yeyak_read::audit::cli::{ExportArgs, LogArgs, ReplayArgs, export};

/// Every path under `root`, with the SHA-256 of each file (`None` for a directory).
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, None);
            } else {
                let digest = hex(&Sha256::digest(fs::read(&path).unwrap()));
                out.insert(path, Some(digest));
            }
        }
    }
    out
}

/// Fails naming each path that appeared, disappeared or changed since `before`.
fn assert_unchanged(root: &Path, before: &BTreeMap<PathBuf, Option<String>>, what: &str) {
    let after = tree(root);
    let changed: BTreeSet<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|path| before.get(*path) != after.get(*path))
        .collect();
    assert!(
        changed.is_empty(),
        "{what} changed the data directory: {changed:#?}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Where a damage is: its segment file, the byte where reading stops, the first unread offset.
#[derive(Debug)]
struct At {
    partition: u32,
    path: PathBuf,
    position: u64,
    offset: Offset,
}

/// The demo's log in `data`, then damaged as a crash leaves it: the last append to
/// `yeyak.subject` partition 0 torn (its last 3 bytes never arrived), and a roll of the
/// fullest `yeyak.clinic` partition interrupted after 3 bytes of the new segment's header.
fn damaged_demo(data: &Path) -> (At, At) {
    demo(data);
    let tail_dir = data.join(TOPIC_SUBJECT).join("0");
    let tail_path = tail_dir.join(format!("{:020}.log", 0));
    let len = fs::metadata(&tail_path).unwrap().len();
    fs::write(
        &tail_path,
        &fs::read(&tail_path).unwrap()[..len as usize - 3],
    )
    .unwrap();
    let sound = FileLog::open_read_only(FileLogConfig::new(data)).unwrap();
    let (end, partition) = (0..sound.partitions(TOPIC_CLINIC).unwrap())
        .map(|p| (sound.end_offset(TOPIC_CLINIC, p).unwrap(), p))
        .max()
        .unwrap();
    assert!(end > 0, "the demo books in some clinic");
    let partition_dir = data.join(TOPIC_CLINIC).join(partition.to_string());
    let header_path = partition_dir.join(format!("{end:020}.log"));
    fs::write(&header_path, b"YYK").unwrap();

    // Where the writer's open of a copy cuts: the torn tail's position and offset.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(data, copy.path());
    let writer = FileLog::open(FileLogConfig::new(copy.path())).unwrap();
    let cut = copy.path().join(tail_path.strip_prefix(data).unwrap());
    let tail = At {
        partition: 0,
        position: fs::metadata(cut).unwrap().len(),
        offset: writer.end_offset(TOPIC_SUBJECT, 0).unwrap(),
        path: tail_path,
    };
    assert!(tail.position < len - 3, "the cut is inside the last batch");
    let header = At {
        partition,
        path: header_path,
        position: 0,
        offset: end,
    };
    (tail, header)
}

/// The finding line the human summary shows for a damage.
fn finding_line(topic: &str, at: &At, kind: &str) -> String {
    format!(
        "damaged at {topic}/{}@{}: {kind} at byte {} of {}",
        at.partition,
        at.offset,
        at.position,
        at.path.display()
    )
}

fn data_args(data: &Path) -> LogArgs {
    LogArgs {
        data: Some(data.to_path_buf()),
        ..LogArgs::default()
    }
}

#[test]
fn the_binary_replays_a_damaged_directory_without_changing_it_and_names_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tail, header) = damaged_demo(&data);
    let before = tree(&data);
    let json = dir.path().join("report.json");

    let out = replay(&[
        "--data",
        data.to_str().unwrap(),
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);

    assert_unchanged(&data, &before, "the replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("AUDIT FAILED"), "{stdout}");
    let tail_line = finding_line(TOPIC_SUBJECT, &tail, "torn_tail");
    assert!(
        stdout.contains(&tail_line),
        "no `{tail_line}` in:\n{stdout}"
    );
    let header_line = finding_line(TOPIC_CLINIC, &header, "torn_header");
    assert!(
        stdout.contains(&header_line),
        "no `{header_line}` in:\n{stdout}"
    );

    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let damaged: Vec<&serde_json::Value> = report["integrity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "damaged")
        .collect();
    assert_eq!(damaged.len(), 2, "{:#}", report["integrity"]);
    assert_eq!(
        damaged[1]["position"],
        serde_json::json!({"topic": TOPIC_SUBJECT, "partition": 0, "offset": tail.offset})
    );
    assert!(
        damaged[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("torn_tail at byte {}", tail.position))
    );
}

#[test]
fn the_library_replays_a_damaged_directory_without_changing_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tail, header) = damaged_demo(&data);
    let before = tree(&data);
    let args = ReplayArgs {
        log: data_args(&data),
        quiet: true,
        ..ReplayArgs::default()
    };
    let mut out = Vec::new();

    let report = yeyak_read::audit::cli::replay(&args, &mut out).unwrap();

    assert_unchanged(&data, &before, "the replay");
    assert!(!report.ok());
    let damaged: Vec<_> = report
        .integrity
        .iter()
        .filter(|f| f.code == "damaged")
        .collect();
    let places: Vec<_> = damaged
        .iter()
        .map(|f| {
            let p = f.position.as_ref().unwrap();
            (p.topic.as_str(), p.partition, p.offset)
        })
        .collect();
    assert_eq!(
        places,
        [
            (TOPIC_CLINIC, header.partition, header.offset),
            (TOPIC_SUBJECT, tail.partition, tail.offset)
        ]
    );
    let summary = String::from_utf8(out).unwrap();
    assert!(summary.contains(&finding_line(TOPIC_SUBJECT, &tail, "torn_tail")));
}

#[test]
fn the_export_refuses_a_damaged_directory_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, header) = damaged_demo(&data);
    let before = tree(&data);
    let out = dir.path().join("export");
    let args = ExportArgs {
        log: data_args(&data),
        out: out.clone(),
        quiet: true,
    };

    let result = export(&args, &mut Vec::new());

    assert_unchanged(&data, &before, "the export");
    let Err(error) = result else {
        panic!("the export of a damaged log went through");
    };
    assert_eq!(error.code(), "log_damaged", "{error}");
    let message = error.to_string();
    assert!(message.contains("2 damage found"), "{message}");
    assert!(
        message.contains(&header.path.display().to_string()),
        "{message}"
    );
    assert!(!out.exists(), "nothing is written");
}
