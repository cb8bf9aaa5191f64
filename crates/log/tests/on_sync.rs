//! `FsyncPolicy::OnSync`: appends are readable at once and survive the process, and `sync`
//! covers every partition appended to since the last one.

use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy, Record};

fn record(value: &str) -> Record {
    Record {
        key: b"k".to_vec(),
        value: value.as_bytes().to_vec(),
        timestamp_ms: 1,
        headers: Vec::new(),
    }
}

fn config(dir: &std::path::Path) -> FileLogConfig {
    let mut config = FileLogConfig::new(dir);
    config.fsync = FsyncPolicy::OnSync;
    config
}

#[test]
fn appends_before_a_sync_are_read_and_survive_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(config(dir.path())).unwrap();
    log.ensure_topic("t", 2).unwrap();
    log.append("t", 0, &[record("a"), record("b")]).unwrap();
    log.append("t", 1, &[record("c")]).unwrap();
    assert_eq!(
        log.read("t", 0, 0, 10).unwrap().len(),
        2,
        "readable before the sync"
    );
    log.sync().unwrap();
    log.append("t", 1, &[record("d")]).unwrap();
    drop(log);
    let log = FileLog::open(config(dir.path())).unwrap();
    let values = |p| -> Vec<Vec<u8>> {
        let read = log.read("t", p, 0, 10).unwrap();
        read.into_iter().map(|r| r.record.value).collect()
    };
    assert_eq!(values(0), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(
        values(1),
        [b"c".to_vec(), b"d".to_vec()],
        "a process crash loses nothing"
    );
    log.sync().unwrap();
}
