//! Behaviour of the embedded file log through the public `yeyak_log` API: round trips, segment
//! rolls, reopening, crash recovery, damage detection, concurrency and error values.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use yeyak_log::{
    EventLog, FileLog, FileLogConfig, FsyncPolicy, LogError, Offset, Record, StoredRecord,
    partition_for_key,
};

const TOPIC: &str = "bookings";

fn config(root: &Path, segment_bytes_max: u64) -> FileLogConfig {
    FileLogConfig {
        segment_bytes_max,
        ..FileLogConfig::new(root)
    }
}

/// A record whose every field depends on `(partition, n)`, with varying sizes.
fn make_record(partition: u32, n: u64) -> Record {
    let filler = "x".repeat((n as usize * 7) % 61);
    Record {
        key: format!("patient-{partition}-{n}").into_bytes(),
        value: format!("{{\"partition\":{partition},\"n\":{n},\"pad\":\"{filler}\"}}").into_bytes(),
        headers: vec![
            ("event-type".to_owned(), b"SlotBooked".to_vec()),
            ("command-id".to_owned(), n.to_be_bytes().to_vec()),
        ],
        timestamp_ms: 1_700_000_000_000 + n as i64 * 1_000 - 7,
    }
}

fn stored(topic: &str, partition: u32, offset: Offset, record: Record) -> StoredRecord {
    StoredRecord {
        topic: topic.to_owned(),
        partition,
        offset,
        record,
    }
}

/// Reads a whole partition in small pages (to exercise paging across segments).
fn read_all(log: &FileLog, topic: &str, partition: u32) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    loop {
        let next = out.len() as Offset;
        let page = log.read(topic, partition, next, 7).unwrap();
        if page.is_empty() {
            return out;
        }
        assert!(page.len() <= 7);
        out.extend(page);
    }
}

fn segment_files(root: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let dir = root.join(topic).join(partition.to_string());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
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

fn flip_byte(path: &Path, position: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[position as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

#[test]
fn round_trip_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let partitions = 4;
    let log = FileLog::open(config(dir.path(), 512)).unwrap();
    log.ensure_topic(TOPIC, partitions).unwrap();
    log.ensure_topic(TOPIC, partitions).unwrap();
    assert_eq!(log.partitions(TOPIC).unwrap(), partitions);

    let mut expected: Vec<Vec<StoredRecord>> = vec![Vec::new(); partitions as usize];
    for batch in 0..60u64 {
        let partition = (batch % u64::from(partitions)) as u32;
        let next = expected[partition as usize].len() as Offset;
        let records: Vec<Record> = (0..1 + batch % 3)
            .map(|i| make_record(partition, next + i))
            .collect();
        let first = log.append(TOPIC, partition, &records).unwrap();
        assert_eq!(first, next, "batch {batch}");
        for (i, r) in records.into_iter().enumerate() {
            expected[partition as usize].push(stored(TOPIC, partition, next + i as u64, r));
        }
    }
    for p in 0..partitions {
        assert!(
            segment_files(dir.path(), TOPIC, p).len() > 3,
            "partition {p} should have rolled several segments"
        );
        let expected_p = &expected[p as usize];
        assert_eq!(
            log.end_offset(TOPIC, p).unwrap(),
            expected_p.len() as Offset
        );
        assert_eq!(read_all(&log, TOPIC, p), *expected_p);
        // A read in the middle, spanning a segment boundary somewhere.
        assert_eq!(
            log.read(TOPIC, p, 5, 11).unwrap(),
            expected_p[5..16].to_vec()
        );
        // At and past the end: empty.
        let end = expected_p.len() as Offset;
        assert!(log.read(TOPIC, p, end, 10).unwrap().is_empty());
        assert!(log.read(TOPIC, p, end + 100, 10).unwrap().is_empty());
        assert!(log.read(TOPIC, p, 0, 0).unwrap().is_empty());
        // An empty append is a no-op returning the end offset.
        assert_eq!(log.append(TOPIC, p, &[]).unwrap(), end);
        assert_eq!(log.end_offset(TOPIC, p).unwrap(), end);
    }
    drop(log);

    let log = FileLog::open(config(dir.path(), 512)).unwrap();
    assert_eq!(log.topics().unwrap(), vec![TOPIC.to_owned()]);
    assert_eq!(log.partitions(TOPIC).unwrap(), partitions);
    log.ensure_topic(TOPIC, partitions).unwrap();
    for p in 0..partitions {
        let expected_p = &mut expected[p as usize];
        assert_eq!(read_all(&log, TOPIC, p), *expected_p);
        let next = expected_p.len() as Offset;
        let records = vec![make_record(p, next), make_record(p, next + 1)];
        assert_eq!(log.append(TOPIC, p, &records).unwrap(), next);
        for (i, r) in records.into_iter().enumerate() {
            expected_p.push(stored(TOPIC, p, next + i as u64, r));
        }
        assert_eq!(read_all(&log, TOPIC, p), *expected_p);
    }
}

#[test]
fn reads_from_every_offset_use_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(config(dir.path(), 16 * 1024)).unwrap();
    log.ensure_topic(TOPIC, 1).unwrap();
    let mut expected = Vec::new();
    for n in 0..300u64 {
        let mut record = make_record(0, n);
        record.value.extend(std::iter::repeat_n(b'v', 200));
        log.append(TOPIC, 0, std::slice::from_ref(&record)).unwrap();
        expected.push(stored(TOPIC, 0, n, record));
    }
    assert!(segment_files(dir.path(), TOPIC, 0).len() >= 4);
    for check in [&log, &FileLog::open(config(dir.path(), 16 * 1024)).unwrap()] {
        for from in 0..=300usize {
            let got = check.read(TOPIC, 0, from as Offset, 3).unwrap();
            let want = &expected[from..(from + 3).min(expected.len())];
            assert_eq!(got, want, "from {from}");
        }
    }
}

#[test]
fn partition_for_key_spreads_keys_and_is_stable() {
    let partitions = 8;
    let mut counts = vec![0u32; partitions as usize];
    for i in 0..10_000 {
        let key = format!("patient-{i}");
        let p = partition_for_key(key.as_bytes(), partitions);
        assert!(p < partitions);
        assert_eq!(p, partition_for_key(key.as_bytes(), partitions));
        counts[p as usize] += 1;
    }
    for (p, &count) in counts.iter().enumerate() {
        assert!(
            (1_000..=1_500).contains(&count),
            "partition {p} got {count} of 10000 keys"
        );
    }
    // toPositive(murmur2(key)) % n for keys from Kafka's murmur2 test vectors.
    assert_eq!(partition_for_key(b"foobar", 12), 6);
    assert_eq!(partition_for_key(b"21", 16), 12);
    assert_eq!(partition_for_key(b"abc", 12), 3);
    assert_eq!(partition_for_key(b"a-little-bit-longer-string", 100), 19);
    assert_eq!(partition_for_key(b"", 12), 9);
    assert_eq!(partition_for_key(b"anything", 1), 0);
}

/// A log with many batches on partition 0 (several sealed segments plus an active one holding
/// at least three batches) and a few on partition 1, with the byte end of every batch.
struct CrashFixture {
    dir: tempfile::TempDir,
    segment_bytes_max: u64,
    /// Records of each batch on partition 0, in order.
    batches: Vec<Vec<Record>>,
    /// For each batch of partition 0: the segment it went to and the file length after it.
    batch_ends: Vec<(PathBuf, u64)>,
    partition1: Vec<StoredRecord>,
}

impl CrashFixture {
    fn build() -> CrashFixture {
        let dir = tempfile::tempdir().unwrap();
        let segment_bytes_max = 1024;
        let log = FileLog::open(config(dir.path(), segment_bytes_max)).unwrap();
        log.ensure_topic(TOPIC, 2).unwrap();
        let mut batches = Vec::new();
        let mut batch_ends = Vec::new();
        let mut partition1 = Vec::new();
        let mut next: Offset = 0;
        let mut b = 0u64;
        loop {
            let records: Vec<Record> = (0..1 + b % 3).map(|i| make_record(0, next + i)).collect();
            assert_eq!(log.append(TOPIC, 0, &records).unwrap(), next);
            next += records.len() as u64;
            let segment = segment_files(dir.path(), TOPIC, 0).pop().unwrap();
            let len = fs::metadata(&segment).unwrap().len();
            batch_ends.push((segment.clone(), len));
            batches.push(records);
            if b % 4 == 0 {
                let offset = partition1.len() as Offset;
                let r = make_record(1, offset);
                assert_eq!(
                    log.append(TOPIC, 1, std::slice::from_ref(&r)).unwrap(),
                    offset
                );
                partition1.push(stored(TOPIC, 1, offset, r));
            }
            b += 1;
            let in_active = batch_ends.iter().filter(|(s, _)| *s == segment).count();
            if b >= 30 && in_active >= 3 {
                break;
            }
        }
        CrashFixture {
            dir,
            segment_bytes_max,
            batches,
            batch_ends,
            partition1,
        }
    }

    fn active_segment(&self) -> &Path {
        &self.batch_ends[self.batch_ends.len() - 1].0
    }

    fn active_len(&self) -> u64 {
        self.batch_ends[self.batch_ends.len() - 1].1
    }

    /// Indexes of the batches stored in the active segment.
    fn active_batches(&self) -> Vec<usize> {
        let active = self.active_segment();
        (0..self.batches.len())
            .filter(|&i| self.batch_ends[i].0 == active)
            .collect()
    }

    /// Where batch `i` starts in its segment.
    fn batch_start(&self, i: usize) -> u64 {
        if i > 0 && self.batch_ends[i - 1].0 == self.batch_ends[i].0 {
            self.batch_ends[i - 1].1
        } else {
            8
        }
    }

    /// Copies the log to a fresh directory; `damage` gets the copy of the active segment.
    fn damaged_copy(&self, damage: impl FnOnce(&Path)) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), copy.path());
        let relative = self.active_segment().strip_prefix(self.dir.path()).unwrap();
        damage(&copy.path().join(relative));
        copy
    }

    /// Opens `root` and checks it holds exactly the batches `surviving` on partition 0 (and all
    /// of partition 1), then that an append continues at the next offset.
    fn check_recovered(&self, root: &Path, surviving: &[usize], what: &str) {
        let log = FileLog::open(config(root, self.segment_bytes_max)).unwrap();
        let mut expected = Vec::new();
        for &b in surviving {
            for r in &self.batches[b] {
                let offset = expected.len() as Offset;
                expected.push(stored(TOPIC, 0, offset, r.clone()));
            }
        }
        let end = expected.len() as Offset;
        assert_eq!(log.end_offset(TOPIC, 0).unwrap(), end, "{what}");
        assert_eq!(read_all(&log, TOPIC, 0), expected, "{what}");
        assert_eq!(read_all(&log, TOPIC, 1), self.partition1, "{what}");

        let new_batch = vec![make_record(0, 9_000), make_record(0, 9_001)];
        assert_eq!(log.append(TOPIC, 0, &new_batch).unwrap(), end, "{what}");
        for (i, r) in new_batch.into_iter().enumerate() {
            expected.push(stored(TOPIC, 0, end + i as u64, r));
        }
        assert_eq!(read_all(&log, TOPIC, 0), expected, "{what}");
        drop(log);
        // And the recovered state is itself stable across another reopen.
        let log = FileLog::open(config(root, self.segment_bytes_max)).unwrap();
        assert_eq!(read_all(&log, TOPIC, 0), expected, "{what} (second reopen)");
    }

    /// The batches that survive cutting the active segment at `cut`.
    fn surviving_after_cut(&self, cut: u64) -> Vec<usize> {
        let active = self.active_segment();
        (0..self.batches.len())
            .filter(|&i| self.batch_ends[i].0 != active || self.batch_ends[i].1 <= cut)
            .collect()
    }

    fn check_cut(&self, cut: u64, zero_fill: u64) {
        let copy = self.damaged_copy(|segment| {
            let file = fs::OpenOptions::new().write(true).open(segment).unwrap();
            file.set_len(cut).unwrap();
            // A crash can also leave a zero-filled tail (allocated but unwritten blocks).
            file.set_len(cut + zero_fill).unwrap();
        });
        let surviving = self.surviving_after_cut(cut);
        self.check_recovered(
            copy.path(),
            &surviving,
            &format!("cut at {cut} + {zero_fill} zero bytes"),
        );
    }
}

#[test]
fn crash_in_the_middle_of_an_append_at_every_byte_of_the_last_batches() {
    let fixture = CrashFixture::build();
    let active = fixture.active_batches();
    assert!(active.len() >= 3);
    assert!(segment_files(fixture.dir.path(), TOPIC, 0).len() >= 3);
    // Every byte position over the last two batches, including "no cut at all".
    let from = fixture.batch_start(active[active.len() - 2]);
    for cut in from..=fixture.active_len() {
        fixture.check_cut(cut, 0);
    }
    // A torn segment header (crash right after a roll created the file).
    for cut in 0..8 {
        fixture.check_cut(cut, 0);
    }
}

#[test]
fn crash_in_the_middle_of_an_append_at_random_points() {
    let fixture = CrashFixture::build();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(0..=fixture.active_len(), 0..64u64), |(cut, zero_fill)| {
            fixture.check_cut(cut, zero_fill);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_flipped_byte_in_the_active_segment_truncates_from_that_record() {
    let fixture = CrashFixture::build();
    let active = fixture.active_batches();
    let victim = active[active.len() / 2];
    let position = fixture.batch_start(victim) + 20;
    let copy = fixture.damaged_copy(|segment| flip_byte(segment, position));
    let surviving: Vec<usize> = (0..victim).collect();
    fixture.check_recovered(
        copy.path(),
        &surviving,
        "flipped byte in the active segment",
    );
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_corruption_with_coordinates() {
    let fixture = CrashFixture::build();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(fixture.dir.path(), copy.path());
    let sealed = copy
        .path()
        .join(TOPIC)
        .join("0")
        .join("00000000000000000000.log");
    // The second batch of the first segment starts where the first one ended.
    assert_eq!(fixture.batch_ends[1].0, fixture.batch_ends[0].0);
    let record_start = fixture.batch_ends[0].1;
    flip_byte(&sealed, record_start + 20);

    match FileLog::open(config(copy.path(), fixture.segment_bytes_max)) {
        Err(LogError::Corrupt {
            topic,
            partition,
            path,
            position,
            reason,
        }) => {
            assert_eq!(topic, TOPIC);
            assert_eq!(partition, 0);
            assert_eq!(path, sealed);
            assert_eq!(position, record_start);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The damaged file was not "repaired".
    assert_eq!(
        fs::metadata(&sealed).unwrap().len(),
        fs::metadata(
            fixture
                .dir
                .path()
                .join(TOPIC)
                .join("0")
                .join("00000000000000000000.log")
        )
        .unwrap()
        .len()
    );
}

#[test]
fn a_cut_sealed_segment_is_corruption() {
    let fixture = CrashFixture::build();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(fixture.dir.path(), copy.path());
    let sealed = copy
        .path()
        .join(TOPIC)
        .join("0")
        .join("00000000000000000000.log");
    let len = fs::metadata(&sealed).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    match FileLog::open(config(copy.path(), fixture.segment_bytes_max)) {
        Err(LogError::Corrupt {
            topic,
            partition,
            path,
            ..
        }) => {
            assert_eq!((topic.as_str(), partition), (TOPIC, 0));
            assert_eq!(path, sealed);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The value written at `(partition, offset)` in the concurrency test.
fn concurrent_record(partition: u32, offset: Offset) -> Record {
    Record {
        key: format!("k{partition}").into_bytes(),
        value: format!("p{partition}o{offset}").into_bytes(),
        headers: vec![("n".to_owned(), offset.to_le_bytes().to_vec())],
        timestamp_ms: offset as i64,
    }
}

#[test]
fn concurrent_appends_to_different_partitions_with_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let partitions = 4u32;
    let batches_per_writer = 150u64;
    let log = Arc::new(
        FileLog::open(FileLogConfig {
            fsync: FsyncPolicy::Never,
            ..config(dir.path(), 4096)
        })
        .unwrap(),
    );
    log.ensure_topic(TOPIC, partitions).unwrap();

    let writers: Vec<_> = (0..partitions)
        .map(|p| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut next: Offset = 0;
                for b in 0..batches_per_writer {
                    let records: Vec<Record> = (0..1 + (b + u64::from(p)) % 3)
                        .map(|i| concurrent_record(p, next + i))
                        .collect();
                    assert_eq!(log.append(TOPIC, p, &records).unwrap(), next);
                    next += records.len() as u64;
                }
                next
            })
        })
        .collect();

    // The offsets at which each writer's batches end (0 = before the first batch).
    let batch_ends: Vec<Vec<Offset>> = (0..partitions)
        .map(|p| {
            let mut ends = vec![0];
            for b in 0..batches_per_writer {
                let last = ends[ends.len() - 1];
                ends.push(last + 1 + (b + u64::from(p)) % 3);
            }
            ends
        })
        .collect();
    let reader = {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut cursors = vec![0 as Offset; partitions as usize];
            let mut seen = vec![0u64; partitions as usize];
            loop {
                let mut progressed = false;
                for p in 0..partitions {
                    let page = log.read(TOPIC, p, cursors[p as usize], 50).unwrap();
                    let reached_end = page.len() < 50;
                    for r in page {
                        assert_eq!(r.offset, cursors[p as usize]);
                        assert_eq!(r.record, concurrent_record(p, r.offset));
                        cursors[p as usize] += 1;
                        seen[p as usize] += 1;
                        progressed = true;
                    }
                    // A read that stops short stopped at the end of the log, which is always
                    // at a batch boundary: no batch is ever visible in part.
                    if reached_end {
                        assert!(
                            batch_ends[p as usize].contains(&cursors[p as usize]),
                            "partition {p}: read stopped inside a batch at {}",
                            cursors[p as usize]
                        );
                    }
                }
                // Done when every partition was read to the end its writer will reach (known
                // in advance: an end of the log seen before the writers started is no end).
                let all_read = (0..partitions)
                    .all(|p| batch_ends[p as usize].last() == Some(&cursors[p as usize]));
                if all_read {
                    return seen;
                }
                if !progressed {
                    thread::yield_now();
                }
                assert!(Instant::now() < deadline, "reader did not finish");
            }
        })
    };

    let totals: Vec<Offset> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let seen = reader.join().unwrap();
    assert_eq!(seen, totals);
    for p in 0..partitions {
        let total = totals[p as usize];
        assert_eq!(log.end_offset(TOPIC, p).unwrap(), total);
        let expected: Vec<StoredRecord> = (0..total)
            .map(|o| stored(TOPIC, p, o, concurrent_record(p, o)))
            .collect();
        assert_eq!(read_all(&log, TOPIC, p), expected);
    }
}

#[test]
fn concurrent_appends_to_one_partition_keep_batches_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(FileLog::open(config(dir.path(), 2048)).unwrap());
    log.ensure_topic(TOPIC, 1).unwrap();
    let threads: Vec<_> = (0..3u8)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for b in 0..40u8 {
                    let records: Vec<Record> = (0..3u8)
                        .map(|i| Record {
                            key: vec![t],
                            value: vec![t, b, i],
                            headers: Vec::new(),
                            timestamp_ms: 0,
                        })
                        .collect();
                    log.append(TOPIC, 0, &records).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let all = read_all(&log, TOPIC, 0);
    assert_eq!(all.len(), 3 * 40 * 3);
    for (i, chunk) in all.chunks(3).enumerate() {
        let first = &chunk[0].record.value;
        for (j, r) in chunk.iter().enumerate() {
            assert_eq!(r.offset, (i * 3 + j) as Offset);
            assert_eq!(
                r.record.value,
                vec![first[0], first[1], j as u8],
                "batch interleaved"
            );
        }
    }
}

#[test]
fn errors_are_values() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig {
        record_bytes_max: 1024,
        ..config(dir.path(), 4096)
    })
    .unwrap();
    let r = make_record(0, 0);

    // Unknown topic.
    let unknown = |e: LogError| matches!(e, LogError::UnknownTopic { topic } if topic == "nope");
    assert!(unknown(log.partitions("nope").unwrap_err()));
    assert!(unknown(
        log.append("nope", 0, std::slice::from_ref(&r)).unwrap_err()
    ));
    assert!(unknown(log.read("nope", 0, 0, 10).unwrap_err()));
    assert!(unknown(log.end_offset("nope", 0).unwrap_err()));

    // Bad partition.
    log.ensure_topic(TOPIC, 3).unwrap();
    let no_partition = |e: LogError| matches!(e, LogError::NoSuchPartition { topic, partition: 3, partitions: 3 } if topic == TOPIC);
    assert!(no_partition(
        log.append(TOPIC, 3, std::slice::from_ref(&r)).unwrap_err()
    ));
    assert!(no_partition(log.read(TOPIC, 3, 0, 1).unwrap_err()));
    assert!(no_partition(log.end_offset(TOPIC, 3).unwrap_err()));

    // Bad topic names.
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "with space",
        "é",
        &"t".repeat(250),
    ] {
        match log.ensure_topic(name, 1) {
            Err(LogError::InvalidName { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
        assert!(matches!(
            log.read(name, 0, 0, 1),
            Err(LogError::InvalidName { .. })
        ));
    }
    log.ensure_topic(&"t".repeat(249), 1).unwrap();

    // Mismatched partition count, before and after reopening.
    match log.ensure_topic(TOPIC, 5) {
        Err(LogError::TopicExists {
            topic,
            existing: 3,
            requested: 5,
        }) => assert_eq!(topic, TOPIC),
        other => panic!("expected TopicExists, got {other:?}"),
    }
    assert!(matches!(
        log.ensure_topic("zero", 0),
        Err(LogError::InvalidPartitionCount { partitions: 0, .. })
    ));

    // A record too large fails the whole batch; nothing becomes visible.
    let mut big = make_record(0, 1);
    big.value = vec![0u8; 2000];
    match log.append(TOPIC, 0, &[r.clone(), big]) {
        Err(LogError::RecordTooLarge {
            topic,
            partition: 0,
            index: 1,
            max_bytes: 1024,
            size_bytes,
        }) => {
            assert_eq!(topic, TOPIC);
            assert!(size_bytes > 2000);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(log.end_offset(TOPIC, 0).unwrap(), 0);
    assert_eq!(log.append(TOPIC, 0, std::slice::from_ref(&r)).unwrap(), 0);

    let mut topics = log.topics().unwrap();
    assert_eq!(topics.len(), 2);
    topics.sort();
    assert_eq!(log.topics().unwrap(), topics, "topics() is sorted");
    drop(log);

    let log = FileLog::open(config(dir.path(), 4096)).unwrap();
    assert!(matches!(
        log.ensure_topic(TOPIC, 2),
        Err(LogError::TopicExists {
            existing: 3,
            requested: 2,
            ..
        })
    ));
    assert_eq!(
        log.read(TOPIC, 0, 0, 10).unwrap(),
        vec![stored(TOPIC, 0, 0, r)]
    );
}

#[test]
fn io_errors_carry_the_path_and_print_one_level() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"plain file").unwrap();
    let root = not_a_dir.join("root");
    match FileLog::open(config(&root, 4096)) {
        Err(e @ LogError::Io { .. }) => {
            let LogError::Io { path, .. } = &e else {
                unreachable!()
            };
            assert!(path.starts_with(&not_a_dir), "{}", path.display());
            let source = std::error::Error::source(&e).expect("an I/O error has a source");
            assert!(!e.to_string().contains(&source.to_string()), "{e}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn topics_are_sorted_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(config(dir.path(), 4096)).unwrap();
    for t in [
        "vaccinations",
        "appointments",
        "audit.export",
        "slots_2026-01",
    ] {
        log.ensure_topic(t, 2).unwrap();
    }
    let want = vec![
        "appointments".to_owned(),
        "audit.export".to_owned(),
        "slots_2026-01".to_owned(),
        "vaccinations".to_owned(),
    ];
    assert_eq!(log.topics().unwrap(), want);
    drop(log);
    // Foreign files and directories in the root are ignored.
    fs::write(dir.path().join("README"), b"not a topic").unwrap();
    fs::create_dir(dir.path().join("no-metadata")).unwrap();
    let log = FileLog::open(config(dir.path(), 4096)).unwrap();
    assert_eq!(log.topics().unwrap(), want);
}

#[test]
fn an_interrupted_topic_creation_is_completed_by_ensure_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(config(dir.path(), 4096)).unwrap();
    log.ensure_topic(TOPIC, 2).unwrap();
    drop(log);
    // Simulate a crash before topic.json was written.
    fs::remove_file(dir.path().join(TOPIC).join("topic.json")).unwrap();
    let log = FileLog::open(config(dir.path(), 4096)).unwrap();
    assert!(log.topics().unwrap().is_empty());
    log.ensure_topic(TOPIC, 2).unwrap();
    let r = make_record(1, 0);
    assert_eq!(log.append(TOPIC, 1, std::slice::from_ref(&r)).unwrap(), 0);
    assert_eq!(
        log.read(TOPIC, 1, 0, 5).unwrap(),
        vec![stored(TOPIC, 1, 0, r)]
    );
}
