//! `FileLog::open_read_only`: whatever it finds, not a byte, file or directory on disk changes;
//! each partition is served up to its first damage, and every damage is listed with its
//! coordinates. Where the writer's open repairs (a torn tail, a torn header), the read-only
//! open serves exactly what the writer keeps.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use yeyak_log::{
    Damage, DamageKind, EventLog, FileLog, FileLogConfig, FsyncPolicy, LogError, Offset, Record,
    StoredRecord,
};

const TOPIC: &str = "bookings";
const PARTITIONS: u32 = 3;
/// Small segments, so every partition has several (about two batches each).
const SEGMENT_BYTES_MAX: u64 = 400;
const BATCHES: u64 = 12;

fn config(root: &Path) -> FileLogConfig {
    FileLogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        fsync: FsyncPolicy::Never,
        ..FileLogConfig::new(root)
    }
}

fn record(partition: u32, n: u64) -> Record {
    Record {
        key: format!("k{partition}-{n}").into_bytes(),
        value: format!(
            "{{\"p\":{partition},\"n\":{n},\"pad\":\"{}\"}}",
            "x".repeat(n as usize % 9)
        )
        .into_bytes(),
        headers: vec![("event-type".to_owned(), b"booked".to_vec())],
        timestamp_ms: 1_700_000_000_000 + n as i64,
    }
}

/// A log of `BATCHES` batches of one to three records in each partition of `TOPIC`, written by
/// the writer and closed. Returns the offsets where each batch of partition 0 starts.
fn build(root: &Path) -> Vec<Offset> {
    let log = FileLog::open(config(root)).unwrap();
    log.ensure_topic(TOPIC, PARTITIONS).unwrap();
    let mut starts = Vec::new();
    for partition in 0..PARTITIONS {
        let mut n = 0;
        for batch in 0..BATCHES {
            let records: Vec<Record> = (0..1 + batch % 3)
                .map(|i| record(partition, n + i))
                .collect();
            let first = log.append(TOPIC, partition, &records).unwrap();
            if partition == 0 {
                starts.push(first);
            }
            n += records.len() as u64;
        }
    }
    starts
}

fn read_all(log: &FileLog, topic: &str, partition: u32) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    loop {
        let page = log.read(topic, partition, out.len() as Offset, 5).unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// What a read-only open must leave alone: every path under `root`, and for files their bytes,
/// length and modification time.
type Tree = BTreeMap<PathBuf, Option<(Vec<u8>, SystemTime)>>;

fn tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, None);
            } else {
                let bytes = fs::read(&path).unwrap();
                out.insert(path, Some((bytes, meta.modified().unwrap())));
            }
        }
    }
    out
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

fn segments(root: &Path, partition: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root.join(TOPIC).join(partition.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Opens `root` read-only, checks that nothing on disk changed, and returns the log.
fn open_read_only_unchanged(root: &Path) -> FileLog {
    let before = tree(root);
    let log = FileLog::open_read_only(config(root)).unwrap();
    for partition in 0..PARTITIONS {
        read_all(&log, TOPIC, partition);
    }
    assert!(matches!(
        log.append(TOPIC, 0, &[record(0, 999)]),
        Err(LogError::ReadOnly { .. })
    ));
    assert_eq!(tree(root), before, "a read-only open changed the directory");
    log
}

/// What the writer's open of a copy of `root` keeps of each partition (it repairs the copy).
fn writer_view(root: &Path) -> Vec<Vec<StoredRecord>> {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(root, copy.path());
    let log = FileLog::open(config(copy.path())).unwrap();
    (0..PARTITIONS).map(|p| read_all(&log, TOPIC, p)).collect()
}

fn read_only_view(log: &FileLog) -> Vec<Vec<StoredRecord>> {
    (0..PARTITIONS).map(|p| read_all(log, TOPIC, p)).collect()
}

fn only(damage: &[Damage]) -> &Damage {
    assert_eq!(damage.len(), 1, "{damage:#?}");
    &damage[0]
}

#[test]
fn a_sound_log_reads_as_the_writer_reads_it_and_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    assert!(segments(dir.path(), 0).len() > 3, "several segments");
    let log = open_read_only_unchanged(dir.path());
    assert!(log.is_read_only());
    assert_eq!(log.damage(), &[] as &[Damage]);
    assert_eq!(read_only_view(&log), writer_view(dir.path()));
    assert_eq!(log.topics().unwrap(), vec![TOPIC.to_owned()]);
    for partition in 0..PARTITIONS {
        let end = log.end_offset(TOPIC, partition).unwrap();
        assert_eq!(end, read_all(&log, TOPIC, partition).len() as Offset);
    }

    let before = tree(dir.path());
    match log.append(TOPIC, 1, &[]) {
        Err(LogError::ReadOnly {
            topic,
            partition: Some(1),
            operation: "append",
            ..
        }) => assert_eq!(topic, TOPIC),
        other => panic!("expected ReadOnly, got {other:?}"),
    }
    let refused = log.ensure_topic("new-topic", 1).unwrap_err();
    assert!(matches!(refused, LogError::ReadOnly { .. }), "{refused:?}");
    assert!(refused.to_string().contains("read-only"), "{refused}");
    log.ensure_topic(TOPIC, PARTITIONS).unwrap();
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn a_torn_tail_is_reported_where_the_writer_would_cut_and_is_left_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let active = segments(dir.path(), 1).pop().unwrap();
    let len = fs::metadata(&active).unwrap().len();
    // A crash in the middle of the last append: its last 5 bytes never arrived.
    fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let writer = writer_view(dir.path());

    let log = open_read_only_unchanged(dir.path());
    let damage = only(log.damage());
    assert_eq!(damage.kind, DamageKind::TornTail);
    assert_eq!((damage.topic.as_str(), damage.partition), (TOPIC, Some(1)));
    assert_eq!(damage.path, active);
    assert_eq!(damage.offset, writer[1].len() as Offset);
    assert_eq!(log.end_offset(TOPIC, 1).unwrap(), damage.offset);
    assert!(damage.detail.contains("cut short"), "{damage}");
    assert_eq!(read_only_view(&log), writer);
    assert_eq!(
        fs::metadata(&active).unwrap().len(),
        len - 5,
        "not truncated"
    );

    // The position is where the writer cuts the file.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    drop(FileLog::open(config(copy.path())).unwrap());
    let copied = copy.path().join(active.strip_prefix(dir.path()).unwrap());
    assert_eq!(damage.position, fs::metadata(copied).unwrap().len());
    assert!(
        damage
            .to_string()
            .starts_with("torn_tail in topic \"bookings\" partition 1, ")
    );
}

#[test]
fn every_cut_of_the_active_segment_serves_what_the_writer_keeps() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let active = segments(dir.path(), 0).pop().unwrap();
    let whole = fs::read(&active).unwrap();
    for cut in 1..whole.len() - 8 {
        let case = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), case.path());
        let path = case.path().join(active.strip_prefix(dir.path()).unwrap());
        fs::write(&path, &whole[..whole.len() - cut]).unwrap();
        let log = FileLog::open_read_only(config(case.path())).unwrap();
        let served = read_only_view(&log);
        // The case is a copy already: the writer may repair it in place.
        let writer = FileLog::open(config(case.path())).unwrap();
        let kept: Vec<Vec<StoredRecord>> = (0..PARTITIONS)
            .map(|p| read_all(&writer, TOPIC, p))
            .collect();
        assert_eq!(served, kept, "cut {cut}");
        let served = served[0].len() as u64;
        match log.damage() {
            [] => assert!(
                served > 0,
                "cut {cut}: a whole batch was cut off, no damage"
            ),
            [damage] => {
                assert_eq!(damage.kind, DamageKind::TornTail, "cut {cut}");
                assert_eq!(damage.offset, served, "cut {cut}");
            }
            more => panic!("cut {cut}: {more:#?}"),
        }
    }
}

#[test]
fn a_torn_header_of_the_active_segment_is_reported_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let log = FileLog::open(config(dir.path())).unwrap();
    let end = log.end_offset(TOPIC, 2).unwrap();
    drop(log);
    // A roll interrupted after three bytes of the new segment's header.
    let torn = dir
        .path()
        .join(TOPIC)
        .join("2")
        .join(format!("{end:020}.log"));
    fs::write(&torn, b"YYK").unwrap();
    let writer = writer_view(dir.path());

    let log = open_read_only_unchanged(dir.path());
    let damage = only(log.damage());
    assert_eq!(damage.kind, DamageKind::TornHeader);
    assert_eq!(damage.partition, Some(2));
    assert_eq!(
        (damage.path.as_path(), damage.position),
        (torn.as_path(), 0)
    );
    assert_eq!(damage.offset, end);
    assert_eq!(read_only_view(&log), writer);
    assert_eq!(fs::read(&torn).unwrap(), b"YYK");
}

#[test]
fn a_bad_checksum_in_a_sealed_segment_ends_the_partition_there() {
    let dir = tempfile::tempdir().unwrap();
    let starts = build(dir.path());
    let whole = FileLog::open_read_only(config(dir.path())).unwrap();
    let all = read_all(&whole, TOPIC, 0);
    let first = segments(dir.path(), 0).remove(0);
    // A byte of the second batch's first record (the first batch is one record).
    let mut bytes = fs::read(&first).unwrap();
    let first_length = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let record_start = 8 + 4 + u64::from(first_length);
    bytes[record_start as usize + 20] ^= 0x5a;
    fs::write(&first, bytes).unwrap();
    assert!(matches!(
        FileLog::open(config(dir.path())),
        Err(LogError::Corrupt { .. })
    ));

    let log = open_read_only_unchanged(dir.path());
    let damage = only(log.damage());
    assert_eq!(damage.kind, DamageKind::BadRecord);
    assert_eq!((damage.partition, &damage.path), (Some(0), &first));
    assert_eq!((damage.position, damage.offset), (record_start, starts[1]));
    assert!(damage.detail.contains("checksum"), "{damage}");
    assert!(
        damage.detail.contains("later segment(s) are not read"),
        "{damage}"
    );
    assert_eq!(read_all(&log, TOPIC, 0), all[..starts[1] as usize]);
    // The other partitions are whole.
    assert_eq!(read_all(&log, TOPIC, 1), read_all(&whole, TOPIC, 1));
}

#[test]
fn a_missing_segment_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let files = segments(dir.path(), 1);
    fs::remove_file(&files[1]).unwrap();
    let log = open_read_only_unchanged(dir.path());
    let damage = only(log.damage());
    assert_eq!(damage.kind, DamageKind::Gap);
    assert_eq!(
        (damage.path.as_path(), damage.position),
        (files[2].as_path(), 0)
    );
    let first_end: Offset = files[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(damage.offset, first_end);
    assert_eq!(log.end_offset(TOPIC, 1).unwrap(), first_end);
}

#[test]
fn damage_to_topics_and_partitions_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let log = FileLog::open(config(dir.path())).unwrap();
    for topic in ["no-meta", "bad-meta"] {
        log.ensure_topic(topic, 1).unwrap();
        log.append(topic, 0, &[record(0, 0)]).unwrap();
    }
    drop(log);
    fs::remove_file(dir.path().join("no-meta/topic.json")).unwrap();
    fs::write(
        dir.path().join("bad-meta/topic.json"),
        b"{\"format\":\"v0\"}",
    )
    .unwrap();
    fs::remove_dir_all(dir.path().join(TOPIC).join("2")).unwrap();

    let log = open_read_only_unchanged(dir.path());
    let found: Vec<(DamageKind, &str, Option<u32>)> = log
        .damage()
        .iter()
        .map(|d| (d.kind, d.topic.as_str(), d.partition))
        .collect();
    let mut expected = vec![
        (DamageKind::BadTopicMetadata, "bad-meta", None),
        (DamageKind::MissingPartition, TOPIC, Some(2)),
        (DamageKind::IncompleteTopic, "no-meta", None),
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort();
    expected.sort();
    assert_eq!(found_sorted, expected, "{:#?}", log.damage());
    assert_eq!(log.topics().unwrap(), vec![TOPIC.to_owned()]);
    assert_eq!(log.end_offset(TOPIC, 2).unwrap(), 0);
    assert!(!read_all(&log, TOPIC, 1).is_empty());
}

#[test]
fn a_missing_root_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nowhere");
    match FileLog::open_read_only(config(&root)) {
        Err(LogError::Io { path, .. }) => assert_eq!(path, root),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(!root.exists());
}
