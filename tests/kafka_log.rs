//! The log contract on a real Apache Kafka broker (`KafkaLog`): round trips, increasing offsets,
//! atomic appends under read_committed, topic creation, key placement identical to Kafka's own
//! default partitioner, and errors as values.
//!
//! Needs a broker: `YEYAK_KAFKA=127.0.0.1:19092` (see `tests/common/services.rs`). Every test
//! works under its own random topic prefix and deletes its topics at the end.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use yeyak_log::{
    EventLog, KafkaConfig, KafkaLog, LogError, LogStream, Offset, Position, Record, StoredRecord,
    partition_for_key,
};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A `KafkaLog` under a unique prefix that deletes its topics when dropped.
struct TestLog {
    log: KafkaLog,
}

impl std::ops::Deref for TestLog {
    type Target = KafkaLog;
    fn deref(&self) -> &KafkaLog {
        &self.log
    }
}

impl Drop for TestLog {
    fn drop(&mut self) {
        if let Ok(topics) = self.log.topics() {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(e) = self.log.delete_topics(&names) {
                eprintln!("could not delete test topics {names:?}: {e}");
            }
        }
    }
}

fn config(bootstrap: &str, label: &str) -> KafkaConfig {
    KafkaConfig {
        topic_prefix: common::services::unique_prefix(label),
        ..KafkaConfig::new(bootstrap, format!("yeyak-test-{label}"))
    }
}

fn test_log(label: &str) -> Option<TestLog> {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        eprintln!("skipped: no broker");
        return None;
    };
    let log = KafkaLog::connect(config(&bootstrap, label)).expect("connect to the broker");
    Some(TestLog { log })
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
            ("event-type".to_owned(), "예약".as_bytes().to_vec()),
        ],
        timestamp_ms: 1_628_506_800_000 + n as i64 * 1_000 - 7,
    }
}

/// Reads a whole partition in pages of `page`, from `last + 1` each time.
fn read_all(log: &KafkaLog, topic: &str, partition: u32, page: usize) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    let mut from = 0;
    loop {
        let batch = log.read(topic, partition, from, page).unwrap();
        assert!(batch.len() <= page);
        let Some(last) = batch.last() else { return out };
        from = last.offset + 1;
        out.extend(batch);
    }
}

fn assert_increasing(records: &[StoredRecord]) {
    for pair in records.windows(2) {
        assert!(
            pair[0].offset < pair[1].offset,
            "offsets must increase: {} then {}",
            pair[0].offset,
            pair[1].offset
        );
    }
}

#[test]
fn records_round_trip_with_keys_headers_and_timestamps_across_partitions() {
    let Some(log) = test_log("roundtrip") else {
        return;
    };
    log.ensure_topic("events", 3).unwrap();
    let mut expected: Vec<Vec<Record>> = vec![Vec::new(); 3];
    let mut firsts: Vec<Vec<(Offset, usize)>> = vec![Vec::new(); 3];
    let mut n = 0;
    for round in 0..4 {
        for partition in 0..3u32 {
            let batch: Vec<Record> = (0..(1 + round * partition as usize))
                .map(|_| {
                    n += 1;
                    make_record(partition, n)
                })
                .collect();
            let first = log.append("events", partition, &batch).unwrap();
            firsts[partition as usize].push((first, expected[partition as usize].len()));
            expected[partition as usize].extend(batch);
        }
    }
    // Odd records: empty key, empty value, a header with an empty value, no headers at all.
    let odd = vec![
        Record {
            key: vec![],
            value: vec![],
            headers: vec![],
            timestamp_ms: 1,
        },
        Record {
            key: vec![0, 255, 1],
            value: vec![0; 3000],
            headers: vec![("empty".to_owned(), vec![])],
            timestamp_ms: 4_102_444_800_000, // 2100: no limit on timestamps ahead
        },
    ];
    let first = log.append("events", 1, &odd).unwrap();
    firsts[1].push((first, expected[1].len()));
    expected[1].extend(odd);

    for partition in 0..3u32 {
        for page in [1, 7, 4096] {
            let stored = read_all(&log, "events", partition, page);
            assert_increasing(&stored);
            let records: Vec<Record> = stored.iter().map(|s| s.record.clone()).collect();
            assert_eq!(
                records, expected[partition as usize],
                "partition {partition}, pages of {page}"
            );
            assert!(
                stored
                    .iter()
                    .all(|s| s.topic == "events" && s.partition == partition)
            );
            // The offset append returned is the offset of the batch's first record.
            for (offset, index) in &firsts[partition as usize] {
                assert_eq!(stored[*index].offset, *offset);
            }
            // Reading from the middle starts at the first record at or after `from`.
            let middle = stored[stored.len() / 2].offset;
            let tail = log.read("events", partition, middle, 3).unwrap();
            assert_eq!(tail[0], stored[stored.len() / 2]);
        }
        let end = log.end_offset("events", partition).unwrap();
        let last = read_all(&log, "events", partition, 100)
            .last()
            .unwrap()
            .offset;
        assert!(end > last);
        assert!(log.read("events", partition, end, 10).unwrap().is_empty());
        assert!(
            log.read("events", partition, end + 1000, 10)
                .unwrap()
                .is_empty()
        );
        // An empty append is a no-op returning the end offset.
        assert_eq!(log.append("events", partition, &[]).unwrap(), end);
        assert_eq!(log.end_offset("events", partition).unwrap(), end);
    }
}

#[test]
fn offsets_increase_and_end_offset_moves_with_every_append() {
    let Some(log) = test_log("offsets") else {
        return;
    };
    log.ensure_topic("t", 1).unwrap();
    assert_eq!(log.end_offset("t", 0).unwrap(), 0);
    let mut previous: Option<Offset> = None;
    for n in 0..20 {
        let before = log.end_offset("t", 0).unwrap();
        let batch: Vec<Record> = (0..(n % 3 + 1))
            .map(|i| make_record(0, n * 10 + i))
            .collect();
        let first = log.append("t", 0, &batch).unwrap();
        // A single writer: the batch starts at the end offset it saw.
        assert_eq!(first, before);
        if let Some(p) = previous {
            assert!(first > p);
        }
        let after = log.end_offset("t", 0).unwrap();
        // The records plus the transaction's commit marker.
        assert_eq!(after, before + batch.len() as u64 + 1);
        previous = Some(first);
    }
    // Reading forward from where the last read stopped sees only the new records.
    let all = read_all(&log, "t", 0, 5);
    assert_eq!(all.len(), (0..20).map(|n| n % 3 + 1).sum::<u64>() as usize);
    let next = all.last().unwrap().offset + 1;
    assert!(log.read("t", 0, next, 10).unwrap().is_empty());
    let first = log.append("t", 0, &[make_record(0, 999)]).unwrap();
    let more = log.read("t", 0, next, 10).unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].offset, first);
    assert_eq!(more[0].record, make_record(0, 999));
}

fn raw_transactional_producer(bootstrap: &str, id: &str) -> FutureProducer {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "yeyak-test-raw")
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("compression.type", "none")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

#[test]
fn an_aborted_or_open_transaction_is_never_visible_to_read() {
    let Some(log) = test_log("atomic") else {
        return;
    };
    let bootstrap = log.config().bootstrap.clone();
    log.ensure_topic("t", 2).unwrap();
    let full = log.kafka_topic_name("t").unwrap();
    let committed = vec![make_record(0, 1), make_record(0, 2)];
    log.append("t", 0, &committed).unwrap();

    // A second producer writes three records to the same partition and aborts: the records are
    // in the partition (the high watermark moved past them) but no read returns them.
    let raw = raw_transactional_producer(
        &bootstrap,
        &format!("yeyak-test-raw-{}", uuid::Uuid::now_v7()),
    );
    let before = log.end_offset("t", 0).unwrap();
    raw.begin_transaction().unwrap();
    for n in 0..3 {
        let value = format!("aborted {n}");
        raw.send_result(
            FutureRecord::to(&full)
                .partition(0)
                .key("k")
                .payload(&value),
        )
        .unwrap();
    }
    raw.flush(TIMEOUT).unwrap();
    assert!(
        log.end_offset("t", 0).unwrap() >= before + 3,
        "the aborted records were written"
    );
    raw.abort_transaction(TIMEOUT).unwrap();
    let seen: Vec<Record> = read_all(&log, "t", 0, 100)
        .into_iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(seen, committed);

    // An open transaction hides everything after its first record, ours included, until it
    // ends; reads return promptly meanwhile instead of waiting for it.
    raw.begin_transaction().unwrap();
    raw.send_result(
        FutureRecord::to(&full)
            .partition(0)
            .key("k")
            .payload("open"),
    )
    .unwrap();
    raw.flush(TIMEOUT).unwrap();
    let ours = make_record(0, 3);
    let ours_at = log.append("t", 0, std::slice::from_ref(&ours)).unwrap();
    let started = Instant::now();
    let seen: Vec<Record> = read_all(&log, "t", 0, 100)
        .into_iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(
        seen, committed,
        "nothing after an open transaction is stable yet"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a read does not wait for an open transaction"
    );
    raw.abort_transaction(TIMEOUT).unwrap();
    let seen = read_all(&log, "t", 0, 100);
    assert_eq!(
        seen.iter().map(|s| s.record.clone()).collect::<Vec<_>>(),
        [committed.clone(), vec![ours]].concat()
    );
    assert_eq!(seen.last().unwrap().offset, ours_at);

    // KafkaLog's own append aborts when a record fails half-way through the batch (a record over
    // the producer's 1 MB message.max.bytes): nothing of the batch is visible, and the next
    // append works.
    let end_before = log.end_offset("t", 1).unwrap();
    let too_big = Record {
        value: vec![7; 2_000_000],
        ..make_record(1, 11)
    };
    let batch = vec![make_record(1, 10), too_big, make_record(1, 12)];
    match log.append("t", 1, &batch) {
        Err(e @ LogError::Broker { .. }) => {
            let LogError::Broker {
                topic, partition, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!((topic.as_str(), *partition), ("t", Some(1)));
            assert!(e.to_string().starts_with("Kafka "), "{e}");
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("expected a broker error, got {other:?}"),
    }
    assert!(
        read_all(&log, "t", 1, 100).is_empty(),
        "an aborted append leaves nothing visible"
    );
    assert!(log.end_offset("t", 1).unwrap() >= end_before);
    let after = log.append("t", 1, &[make_record(1, 13)]).unwrap();
    let seen = read_all(&log, "t", 1, 100);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].offset, &seen[0].record),
        (after, &make_record(1, 13))
    );
}

/// Polls `stream` until it handed out `count` records (or the timeout), then a little longer.
fn poll_count(stream: &mut dyn LogStream, count: usize) -> Vec<StoredRecord> {
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        out.extend(stream.poll(7, Duration::from_millis(50)).unwrap());
    }
    // Nothing more may come: not a record twice, not an aborted one.
    out.extend(stream.poll(100, Duration::from_millis(300)).unwrap());
    out
}

#[test]
fn a_stream_of_many_partitions_hands_out_each_committed_record_once_and_passes_the_markers() {
    let Some(log) = test_log("stream") else {
        return;
    };
    let bootstrap = log.config().bootstrap.clone();
    const PARTITIONS: u32 = 4;
    log.ensure_topic("t", PARTITIONS).unwrap();
    let full = log.kafka_topic_name("t").unwrap();
    let mut expected: Vec<Vec<Record>> = vec![Vec::new(); PARTITIONS as usize];
    let mut n = 0;
    let mut append_round = |log: &KafkaLog, expected: &mut Vec<Vec<Record>>, round: usize| {
        for partition in 0..PARTITIONS {
            let batch: Vec<Record> = (0..1 + (round + partition as usize) % 3)
                .map(|_| {
                    n += 1;
                    make_record(partition, n)
                })
                .collect();
            log.append("t", partition, &batch).unwrap();
            expected[partition as usize].extend(batch);
        }
    };
    for round in 0..3 {
        append_round(&log, &mut expected, round);
    }
    // Partition 1 is read from its third record on.
    let skipped_offset = read_all(&log, "t", 1, 100)[2].offset;
    expected[1].drain(..2);
    let from: Vec<Position> = (0..PARTITIONS)
        .map(|partition| Position {
            topic: "t".to_owned(),
            partition,
            offset: if partition == 1 { skipped_offset } else { 0 },
        })
        .collect();
    let mut stream = log.stream(&from).unwrap();
    // More rounds while the stream is open, and an aborted transaction on partition 3.
    for round in 3..6 {
        append_round(&log, &mut expected, round);
    }
    let raw = raw_transactional_producer(
        &bootstrap,
        &format!("yeyak-test-raw-{}", uuid::Uuid::now_v7()),
    );
    raw.begin_transaction().unwrap();
    raw.send_result(
        FutureRecord::to(&full)
            .partition(3)
            .key("k")
            .payload("aborted"),
    )
    .unwrap();
    raw.flush(TIMEOUT).unwrap();
    raw.abort_transaction(TIMEOUT).unwrap();

    let count: usize = expected.iter().map(Vec::len).sum();
    let got = poll_count(stream.as_mut(), count);
    assert_eq!(got.len(), count, "every committed record once");
    for partition in 0..PARTITIONS {
        let mine: Vec<&StoredRecord> = got.iter().filter(|r| r.partition == partition).collect();
        let records: Vec<Record> = mine.iter().map(|r| r.record.clone()).collect();
        assert_eq!(
            records, expected[partition as usize],
            "partition {partition}"
        );
        assert!(mine.windows(2).all(|w| w[0].offset < w[1].offset));
        assert!(
            mine.iter().all(|r| r.topic == "t"),
            "the prefix is not shown"
        );
        // Past the last record's commit marker (and partition 3's abort marker): caught up.
        let stable_end = log.stable_end("t", partition).unwrap();
        assert_eq!(stable_end, log.end_offset("t", partition).unwrap());
        assert_eq!(
            stream.position("t", partition),
            Some(stable_end),
            "partition {partition}"
        );
    }
    assert_eq!(stream.position("t", PARTITIONS), None);
    // A record committed later comes by itself.
    log.append("t", 2, &[make_record(2, 999)]).unwrap();
    let later = poll_count(stream.as_mut(), 1);
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].record, make_record(2, 999));
}

#[test]
fn ensure_topic_is_idempotent_and_refuses_a_different_partition_count() {
    let Some(log) = test_log("topics") else {
        return;
    };
    assert_eq!(
        log.topics().unwrap(),
        Vec::<String>::new(),
        "a fresh prefix has no topics"
    );
    log.ensure_topic("b.second", 3).unwrap();
    log.ensure_topic("b.second", 3).unwrap();
    log.ensure_topic("a_first", 1).unwrap();
    assert_eq!(log.partitions("b.second").unwrap(), 3);
    assert_eq!(log.partitions("a_first").unwrap(), 1);
    assert_eq!(
        log.topics().unwrap(),
        vec!["a_first".to_owned(), "b.second".to_owned()]
    );
    match log.ensure_topic("b.second", 4) {
        Err(LogError::TopicExists {
            topic,
            existing: 3,
            requested: 4,
        }) => assert_eq!(topic, "b.second"),
        other => panic!("expected TopicExists, got {other:?}"),
    }
    assert!(matches!(
        log.ensure_topic("c", 0),
        Err(LogError::InvalidPartitionCount { partitions: 0, .. })
    ));
    for name in ["", ".", "..", "has space", "slash/", &"x".repeat(250)] {
        match log.ensure_topic(name, 1) {
            Err(LogError::InvalidName { .. }) => {}
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
    }
    // Another client on the same prefix sees the same topics.
    let other = KafkaLog::connect(log.config().clone()).unwrap();
    assert_eq!(other.topics().unwrap(), log.topics().unwrap());
    other.ensure_topic("b.second", 3).unwrap();
    assert!(matches!(
        other.ensure_topic("a_first", 2),
        Err(LogError::TopicExists { existing: 1, .. })
    ));
}

#[test]
fn keys_land_where_kafkas_own_default_partitioner_puts_them() {
    let Some(log) = test_log("partitioner") else {
        return;
    };
    let bootstrap = log.config().bootstrap.clone();
    // A plain producer that picks the partition itself, like a Java client would:
    // murmur2_random is librdkafka's name for Kafka's Java default (murmur2 of the key).
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("client.id", "yeyak-test-partitioner")
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let mut keys: Vec<Vec<u8>> = vec![
        vec![],
        b"a".to_vec(),
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"abcd".to_vec(),
        b"abcde".to_vec(),
        "서울-강남구 보건소".as_bytes().to_vec(),
        vec![0xff; 17],
        vec![0x80, 0x00, 0x7f],
    ];
    keys.extend((0..150).map(|n| format!("subject-{n}").into_bytes()));
    keys.extend((0..60u32).map(|n| {
        uuid::Uuid::from_u128(u128::from(n) * 0x9e37_79b9_7f4a_7c15)
            .simple()
            .to_string()
            .into_bytes()
    }));
    let mut checked = 0;
    let mut used = BTreeSet::new();
    for partitions in [1u32, 7, 8, 16] {
        let topic = format!("p{partitions}");
        log.ensure_topic(&topic, partitions).unwrap();
        let full = log.kafka_topic_name(&topic).unwrap();
        let deliveries: Vec<_> = keys
            .iter()
            .map(|key| {
                producer
                    .send_result(FutureRecord::to(&full).key(key.as_slice()).payload("x"))
                    .unwrap()
            })
            .collect();
        for (key, delivery) in keys.iter().zip(deliveries) {
            let delivered = futures_lite_block_on(delivery).unwrap().unwrap();
            let expected = partition_for_key(key, partitions);
            assert_eq!(
                delivered.partition as u32, expected,
                "key {key:?} with {partitions} partitions"
            );
            used.insert((partitions, expected));
            checked += 1;
        }
    }
    assert_eq!(checked, keys.len() * 4);
    assert!(used.len() > 20, "the keys spread over the partitions");
}

/// Waits for an rdkafka future (completed by rdkafka's own threads) on this thread.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn errors_are_values() {
    let Some(log) = test_log("errors") else {
        return;
    };
    log.ensure_topic("t", 3).unwrap();
    let unknown = |e: LogError| matches!(e, LogError::UnknownTopic { topic } if topic == "nope");
    assert!(unknown(log.partitions("nope").unwrap_err()));
    assert!(unknown(
        log.append("nope", 0, &[make_record(0, 1)]).unwrap_err()
    ));
    assert!(unknown(log.read("nope", 0, 0, 10).unwrap_err()));
    assert!(unknown(log.end_offset("nope", 0).unwrap_err()));
    let no_partition = |e: LogError| matches!(e, LogError::NoSuchPartition { topic, partition: 3, partitions: 3 } if topic == "t");
    assert!(no_partition(
        log.append("t", 3, &[make_record(0, 1)]).unwrap_err()
    ));
    assert!(no_partition(log.read("t", 3, 0, 10).unwrap_err()));
    assert!(no_partition(log.end_offset("t", 3).unwrap_err()));
    for timestamp_ms in [0, -5] {
        let bad = Record {
            timestamp_ms,
            ..make_record(0, 2)
        };
        match log.append("t", 0, &[make_record(0, 1), bad]) {
            Err(LogError::InvalidRecord {
                index: 1,
                partition: 0,
                ..
            }) => {}
            other => panic!("expected InvalidRecord, got {other:?}"),
        }
    }
    assert!(
        log.read("t", 0, 0, 10).unwrap().is_empty(),
        "refused batches append nothing"
    );

    // No broker at that address: an error value from connect, within the timeout.
    let started = Instant::now();
    let nowhere = KafkaConfig {
        request_timeout_ms: 2_000,
        ..KafkaConfig::new("127.0.0.1:1", "yeyak-test-nowhere")
    };
    match KafkaLog::connect(nowhere) {
        Err(e @ (LogError::Broker { .. } | LogError::Timeout { .. })) => {
            assert!(e.to_string().starts_with("Kafka "), "{e}");
        }
        Err(other) => panic!("expected a broker error, got {other:?}"),
        Ok(_) => panic!("connected to a port where no broker listens"),
    }
    assert!(started.elapsed() < Duration::from_secs(20));

    // A second writer with the same transactional id fences the first: the first's next append
    // is an error, not a panic, and writes nothing.
    let id = format!("yeyak-test-fence-{}", uuid::Uuid::now_v7());
    let first = KafkaLog::connect(KafkaConfig {
        transactional_id: Some(id.clone()),
        ..log.config().clone()
    })
    .unwrap();
    first.append("t", 2, &[make_record(2, 1)]).unwrap();
    let second = KafkaLog::connect(KafkaConfig {
        transactional_id: Some(id),
        ..log.config().clone()
    })
    .unwrap();
    assert!(matches!(
        first.append("t", 2, &[make_record(2, 2)]),
        Err(LogError::Broker { .. })
    ));
    second.append("t", 2, &[make_record(2, 3)]).unwrap();
    let seen: Vec<Record> = read_all(&log, "t", 2, 10)
        .into_iter()
        .map(|s| s.record)
        .collect();
    assert_eq!(seen, vec![make_record(2, 1), make_record(2, 3)]);
}

#[test]
fn throughput_of_reads_and_appends() {
    let Some(log) = test_log("throughput") else {
        return;
    };
    log.ensure_topic("t", 2).unwrap();
    let record = |n: u64| Record {
        key: format!("subject-{n}").into_bytes(),
        value: vec![b'v'; 200],
        headers: vec![("type".to_owned(), b"SubjectVerified".to_vec())],
        timestamp_ms: 1_628_506_800_000 + n as i64,
    };

    let started = Instant::now();
    let appends_1 = 200;
    for n in 0..appends_1 {
        log.append("t", 1, &[record(n)]).unwrap();
    }
    let one = appends_1 as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let appends_100 = 50;
    for n in 0..appends_100 {
        let batch: Vec<Record> = (0..100).map(|i| record(n * 100 + i)).collect();
        log.append("t", 1, &batch).unwrap();
    }
    let hundred = (appends_100 * 100) as f64 / started.elapsed().as_secs_f64();

    let total = 100_000u64;
    let started = Instant::now();
    for n in 0..total / 1000 {
        let batch: Vec<Record> = (0..1000).map(|i| record(n * 1000 + i)).collect();
        log.append("t", 0, &batch).unwrap();
    }
    let thousand = total as f64 / started.elapsed().as_secs_f64();

    // A fresh reader, as a replay would have.
    let reader = KafkaLog::connect(log.config().clone()).unwrap();
    let started = Instant::now();
    let mut from = 0;
    let mut count = 0u64;
    loop {
        let batch = reader.read("t", 0, from, 4096).unwrap();
        let Some(last) = batch.last() else { break };
        from = last.offset + 1;
        count += batch.len() as u64;
    }
    let elapsed = started.elapsed();
    let read = count as f64 / elapsed.as_secs_f64();
    assert_eq!(count, total);
    eprintln!(
        "kafka throughput: read {total} records in {elapsed:?} ({read:.0}/s); appends of 1 record: {one:.0} records/s; \
         of 100 records: {hundred:.0} records/s; of 1000 records: {thousand:.0} records/s"
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "reading 100k records took {elapsed:?}"
    );
}
