//! The embedded, file-backed log: append-only, segmented, one directory per partition.
//!
//! This is the default [`EventLog`] when no Kafka broker is configured. Its on-disk format,
//! "yeyak-log v1", is also what auditors receive as an exported log, so it is specified here
//! and must not change without a new version number.
//!
//! # Layout
//!
//! ```text
//! <root>/<topic>/topic.json                       {"format":"yeyak-log v1","partitions":<n>}
//! <root>/<topic>/<partition>/<base offset>.log    segments; the base offset has 20 digits,
//!                                                 e.g. 00000000000000000000.log
//! ```
//!
//! Topic names follow Kafka's rules: 1 to 249 characters from `[a-zA-Z0-9._-]`, and neither
//! `.` nor `..`. Partitions are numbered from 0. A partition's segments hold consecutive offsets
//! starting at 0: each segment is named after the offset of its first record, and the next
//! segment starts where the previous one ends. The log never deletes anything. The last
//! segment of a partition is the *active* one, which receives appends; the others are *sealed*.
//! Only one writable `FileLog` may have a given root open at a time (this is not enforced, and
//! no lock file is written); a read-only one (below) may be opened any number of times, but
//! while a writer appends it can see the append in flight as a torn tail.
//!
//! # Segment format (all integers little-endian)
//!
//! A segment starts with an 8-byte header: the magic bytes `YYKLOG` followed by the format
//! version as a `u16` (1). Records follow back to back:
//!
//! | field          | type                | meaning                                              |
//! |----------------|---------------------|------------------------------------------------------|
//! | `length`       | `u32`               | number of bytes of the record after this field       |
//! | `crc`          | `u32`               | CRC-32C (Castagnoli) of all the bytes after this field |
//! | `offset`       | `u64`               | the record's offset in its partition                  |
//! | `timestamp_ms` | `i64`               | milliseconds since the Unix epoch, as given by the writer |
//! | `flags`        | `u8`                | bit 0: last record of an atomic batch; other bits are 0 |
//! | key            | `u32` len + bytes   |                                                      |
//! | header count   | `u16`               |                                                      |
//! | each header    | `u16` name len + UTF-8 name, `u32` value len + value bytes |             |
//! | value          | `u32` len + bytes   |                                                      |
//!
//! A record, including its `length` field, is at most
//! [`FileLogConfig::record_bytes_max`] bytes; readers reject larger lengths before allocating.
//!
//! # Atomic batches and crash recovery
//!
//! One [`EventLog::append`] writes one batch: consecutive records of which only the last has
//! the batch-end flag, written with a single write call. A batch never spans two segments. On
//! open, the active segment of every partition is scanned: the scan stops at the first record
//! that is cut short, has a bad length or checksum, or does not carry the next expected offset;
//! the file is then truncated at the end of the last complete batch before that point. A crash
//! in the middle of an append therefore loses that whole append and nothing else, and a new
//! append continues with the next offset. Each truncation is reported with `tracing::warn!`.
//!
//! Sealed segments are never truncated: any damage there is [`LogError::Corrupt`]. The same
//! holds for damage found by a read. Note that a damaged byte in the middle of the *active*
//! segment cannot be told apart from a torn write and truncates everything from that record on.
//!
//! # Read-only open, for auditors
//!
//! [`FileLog::open_read_only`] never creates, writes, truncates, renames, locks or syncs
//! anything, whatever it finds: it only lists directories and opens files for reading. It runs
//! the same scan as the writer's open, but where the writer would repair (truncate a torn
//! tail, rewrite a torn header, ignore a topic without `topic.json`) or refuse to open
//! ([`LogError::Corrupt`], [`LogError::CorruptMetadata`]), it records a [`Damage`] and serves
//! each partition up to its first damage: the complete batches before it, nothing after it,
//! not even later segments. Every kind of damage is a [`DamageKind`]; each carries the topic,
//! the partition, the file, the byte where the unread part starts and the offset the first
//! unread record would have. [`FileLog::damage`] lists them. On a torn tail or a torn header
//! of the active segment, it serves exactly what the writer's open would keep. Appends and
//! topic creation fail with [`LogError::ReadOnly`]; I/O errors (a missing root, a file it may
//! not read) are errors as usual.
//!
//! # Reads
//!
//! Every segment keeps a sparse in-memory index (an entry at least every 4 KiB), built during
//! the open scan and kept up to date by appends, so a read starts near its first offset.
//! Readers open the segment file themselves and read only the bytes of complete batches, so
//! they run concurrently with appends to the same partition. Each partition has its own lock,
//! held by an append for its write (and fsync) and by a read only to look up where to start, so
//! a read of a partition can wait for an append in flight on that same partition, never for
//! I/O on another one. Topic creation takes a separate lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use super::{EventLog, LogError, Offset, Record, StoredRecord};

/// The 8 bytes every segment starts with: magic `YYKLOG` and version 1 as a `u16`.
pub const SEGMENT_HEADER: [u8; 8] = [b'Y', b'Y', b'K', b'L', b'O', b'G', 1, 0];
/// The name of the format, as written in `topic.json`.
pub const FORMAT_NAME: &str = "yeyak-log v1";

const SEGMENT_HEADER_LEN: u64 = SEGMENT_HEADER.len() as u64;
const MAGIC_LEN: usize = 6;
/// Flag bit 0: last record of an atomic batch.
const FLAG_BATCH_END: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_BATCH_END;
/// Size of the `length` field that precedes each record.
const LENGTH_FIELD_LEN: u64 = 4;
/// Smallest possible record after the length field: crc, offset, timestamp, flags, key length,
/// header count, value length.
const MIN_RECORD_BODY_LEN: u32 = 4 + 8 + 8 + 1 + 4 + 2 + 4;
/// A sparse index entry is added when the previous one is at least this many bytes back.
const INDEX_INTERVAL_BYTES: u64 = 4096;
const TOPIC_META_FILE: &str = "topic.json";
const TOPIC_META_TMP_FILE: &str = "topic.json.tmp";
const SEGMENT_SUFFIX: &str = ".log";
const SEGMENT_NAME_DIGITS: usize = 20;
const TOPIC_NAME_MAX: usize = 249;
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// When appended data is forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every append, before `append` returns; directories are synced when
    /// segments and topics are created. An append that returned survives a power loss.
    EveryAppend,
    /// Leave flushing to the operating system. Much faster, and a crash of the *process* loses
    /// nothing, but a crash of the *machine* (power loss, kernel panic) can lose appends that
    /// had already returned, and because the OS may write pages out of order it can also leave
    /// damage that recovery has to truncate. Segments are still synced once when they are
    /// sealed (at a roll), so sealed segments stay sound.
    Never,
    /// Appends are written, not synced; [`EventLog::sync`] `fdatasync`s every partition
    /// appended to since the last sync, once. An append is durable once a `sync` after it has
    /// returned: a caller that answers only then (the embedded ledger's group commit) keeps
    /// `EveryAppend`'s promise, with one fsync per partition for many appends. New segments,
    /// topics and directories are synced at once, as with `EveryAppend`. A crash of the machine
    /// before the sync can lose those appends (each partition keeps a prefix of its own: a torn
    /// tail is truncated on open), never one that a sync covered.
    OnSync,
}

impl FsyncPolicy {
    /// Whether segments, topics and directories are synced when they are created.
    fn syncs_structure(self) -> bool {
        self != FsyncPolicy::Never
    }
}

/// Configuration of a [`FileLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLogConfig {
    /// Directory holding one subdirectory per topic; created if missing.
    pub root: PathBuf,
    /// A new segment is started before a batch that would make the active segment larger than
    /// this (unless the active segment holds no record yet, so a single big batch still fits).
    pub segment_bytes_max: u64,
    /// When appends are forced to disk.
    pub fsync: FsyncPolicy,
    /// Largest encoded record, length field included. Appends of larger records fail with
    /// [`LogError::RecordTooLarge`]; when reading, a larger length is treated as damage. Do not
    /// lower it below the size of records already stored.
    pub record_bytes_max: u32,
}

impl FileLogConfig {
    /// Default segment size: 64 MiB.
    pub const DEFAULT_SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
    /// Default record size limit: 16 MiB.
    pub const DEFAULT_RECORD_BYTES_MAX: u32 = 16 * 1024 * 1024;

    /// 64 MiB segments, fsync on every append, records up to 16 MiB.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileLogConfig {
            root: root.into(),
            segment_bytes_max: Self::DEFAULT_SEGMENT_BYTES_MAX,
            fsync: FsyncPolicy::EveryAppend,
            record_bytes_max: Self::DEFAULT_RECORD_BYTES_MAX,
        }
    }
}

/// What kind of damage a read-only open found; see [`Damage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DamageKind {
    /// Bytes after the last complete batch of the active segment: an append cut short by a
    /// crash, or a damaged record there (the two cannot be told apart). The writer's open
    /// would truncate them.
    TornTail,
    /// A segment shorter than its header, or a prefix of the header followed by zeros only:
    /// its creation was interrupted. The writer's open rewrites it if it is the active segment.
    TornHeader,
    /// A segment that does not start with the "yeyak-log v1" header (bad magic or version).
    BadHeader,
    /// A sealed segment with a record cut short, with a bad length, checksum, body or offset,
    /// or ending in an incomplete batch.
    BadRecord,
    /// A segment that does not start where the previous one ends (one is missing or renamed),
    /// or a first segment that does not start at offset 0.
    Gap,
    /// A partition counted by `topic.json` without a directory or without any segment.
    MissingPartition,
    /// A topic directory without `topic.json`: its creation was interrupted (or the file was
    /// removed). The writer's open ignores the topic.
    IncompleteTopic,
    /// A `topic.json` that is not "yeyak-log v1" topic metadata.
    BadTopicMetadata,
}

impl DamageKind {
    /// A stable machine-readable name, e.g. `torn_tail`.
    pub fn code(self) -> &'static str {
        match self {
            DamageKind::TornTail => "torn_tail",
            DamageKind::TornHeader => "torn_header",
            DamageKind::BadHeader => "bad_header",
            DamageKind::BadRecord => "bad_record",
            DamageKind::Gap => "gap",
            DamageKind::MissingPartition => "missing_partition",
            DamageKind::IncompleteTopic => "incomplete_topic",
            DamageKind::BadTopicMetadata => "bad_topic_metadata",
        }
    }
}

impl std::fmt::Display for DamageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One damage found by [`FileLog::open_read_only`]: where the readable part of a partition
/// (or, with no partition, of a whole topic) ends, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub kind: DamageKind,
    pub topic: String,
    /// `None` when the topic itself is damaged (its metadata): none of its partitions is read.
    pub partition: Option<u32>,
    /// The segment file; the partition directory, the topic directory or `topic.json` when the
    /// damage is there.
    pub path: PathBuf,
    /// The first byte of `path` that was not read; everything before it was read and is sound.
    pub position: u64,
    /// The offset the first unread record would have: the partition's end offset as served.
    pub offset: Offset,
    /// What was found there, for people.
    pub detail: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in topic {:?}", self.kind, self.topic)?;
        if let Some(partition) = self.partition {
            write!(f, " partition {partition}")?;
        }
        write!(
            f,
            ", {} at byte {} (offset {}): {}",
            self.path.display(),
            self.position,
            self.offset,
            self.detail
        )
    }
}

/// The embedded file-backed log. See the [module documentation](self) for the format.
#[derive(Debug)]
pub struct FileLog {
    config: FileLogConfig,
    /// Held only to look up or insert a topic, never during I/O.
    topics: RwLock<BTreeMap<String, Arc<TopicState>>>,
    /// Serialises topic creation (which does I/O) without blocking lookups.
    create_lock: Mutex<()>,
    /// Set by [`FileLog::open_read_only`]: every write is refused before it touches anything.
    read_only: bool,
    /// What a read-only open found; always empty for a writable log (its open repairs or fails).
    damage: Vec<Damage>,
}

#[derive(Debug)]
struct TopicState {
    partitions: Vec<Mutex<Partition>>,
}

#[derive(Debug)]
struct Partition {
    topic: String,
    partition: u32,
    dir: PathBuf,
    /// Sorted by base offset; the last one is the active segment. Never empty in a writable
    /// log; in a read-only one, the segments before the first damage (possibly none).
    segments: Vec<Segment>,
    /// Write handle of the active segment; `None` in a read-only log.
    active_file: Option<File>,
    /// Set when a failed write could not be undone; appends are refused until reopening.
    poisoned: Option<String>,
    /// Appended to since the last sync (`FsyncPolicy::OnSync`).
    unsynced: bool,
}

#[derive(Debug)]
struct Segment {
    base_offset: Offset,
    path: PathBuf,
    /// Bytes of the header and complete batches; readers never look past this.
    len: u64,
    /// Offset after the last record of the segment.
    end_offset: Offset,
    index: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    offset: Offset,
    position: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicMeta {
    format: String,
    partitions: u32,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A panic while a lock was held cannot leave the state half-updated: state is only changed
/// after the I/O it describes succeeded, by plain assignments. So a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason| {
        Err(LogError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("a topic name cannot be empty");
    }
    if name == "." || name == ".." {
        return invalid("a topic name cannot be \".\" or \"..\"");
    }
    if name.len() > TOPIC_NAME_MAX {
        return invalid("a topic name can be at most 249 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("a topic name may only contain ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn segment_file_name(base_offset: Offset) -> String {
    format!(
        "{base_offset:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

fn parse_segment_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    // Directories can only be synced through a handle on Unix; elsewhere this is best effort.
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Record encoding and decoding
// ---------------------------------------------------------------------------------------------

/// Encoded size of `record`, length field included.
fn encoded_len(record: &Record) -> u64 {
    let headers: u64 = record
        .headers
        .iter()
        .map(|(name, value)| 2 + name.len() as u64 + 4 + value.len() as u64)
        .sum();
    LENGTH_FIELD_LEN
        + u64::from(MIN_RECORD_BODY_LEN)
        + record.key.len() as u64
        + headers
        + record.value.len() as u64
}

/// Appends the encoding of `record` to `buf`. The caller has checked that the record fits in
/// `record_bytes_max` (hence every length fits its field) and in the header limits.
fn encode_record(buf: &mut Vec<u8>, record: &Record, offset: Offset, flags: u8) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]); // length and crc, filled in below
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    buf.push(flags);
    buf.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record.key);
    buf.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for (name, value) in &record.headers {
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value);
    }
    buf.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    buf.extend_from_slice(&record.value);

    let length = (buf.len() - start - 4) as u32;
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&length.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A record decoded from a segment.
#[derive(Debug)]
struct Decoded {
    offset: Offset,
    flags: u8,
    record: Record,
    /// Bytes taken in the file, length field included.
    framed_len: u64,
}

#[derive(Debug)]
enum ReadOutcome {
    /// No byte at all where the next record would start.
    End,
    Record(Decoded),
    /// The bytes at this position are not a valid record.
    Damaged(String),
}

/// Reads into `buf` until it is full or the input ends; returns the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads one record. Never allocates more than `record_bytes_max`.
fn read_record<R: Read>(reader: &mut R, record_bytes_max: u32) -> io::Result<ReadOutcome> {
    let mut length_bytes = [0u8; 4];
    let got = read_full(reader, &mut length_bytes)?;
    if got == 0 {
        return Ok(ReadOutcome::End);
    }
    if got < length_bytes.len() {
        return Ok(ReadOutcome::Damaged(format!(
            "length field cut short ({got} of 4 bytes)"
        )));
    }
    let length = u32::from_le_bytes(length_bytes);
    if length < MIN_RECORD_BODY_LEN {
        return Ok(ReadOutcome::Damaged(format!(
            "record length {length} is below the minimum {MIN_RECORD_BODY_LEN}"
        )));
    }
    let framed_len = LENGTH_FIELD_LEN + u64::from(length);
    if framed_len > u64::from(record_bytes_max) {
        return Ok(ReadOutcome::Damaged(format!(
            "record length {framed_len} exceeds record_bytes_max {record_bytes_max}"
        )));
    }
    let mut body = vec![0u8; length as usize];
    let got = read_full(reader, &mut body)?;
    if got < body.len() {
        return Ok(ReadOutcome::Damaged(format!(
            "record cut short ({got} of {length} bytes)"
        )));
    }
    let stored_crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let actual_crc = crc32c::crc32c(&body[4..]);
    if stored_crc != actual_crc {
        return Ok(ReadOutcome::Damaged(format!(
            "checksum mismatch (stored {stored_crc:08x}, computed {actual_crc:08x})"
        )));
    }
    match decode_body(&body[4..]) {
        Ok((offset, flags, record)) => Ok(ReadOutcome::Record(Decoded {
            offset,
            flags,
            record,
            framed_len,
        })),
        Err(reason) => Ok(ReadOutcome::Damaged(reason)),
    }
}

/// Bounds-checked reader over a record body.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("{what} runs past the end of the record"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    fn bytes_u32(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let len = self.u32(what)?;
        Ok(self.take(len as usize, what)?.to_vec())
    }
}

/// Decodes everything after the crc.
fn decode_body(bytes: &[u8]) -> Result<(Offset, u8, Record), String> {
    let mut c = Cursor { bytes, pos: 0 };
    let offset = c.u64("offset")?;
    let timestamp_ms = c.i64("timestamp")?;
    let flags = c.u8("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown flag bits {flags:#04x}"));
    }
    let key = c.bytes_u32("key")?;
    let header_count = c.u16("header count")?;
    let mut headers = Vec::with_capacity(usize::from(header_count).min(bytes.len() / 6));
    for _ in 0..header_count {
        let name_len = c.u16("header name length")?;
        let name = c.take(usize::from(name_len), "header name")?;
        let name =
            String::from_utf8(name.to_vec()).map_err(|_| "header name is not UTF-8".to_owned())?;
        let value = c.bytes_u32("header value")?;
        headers.push((name, value));
    }
    let value = c.bytes_u32("value")?;
    if c.pos != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the value",
            bytes.len() - c.pos
        ));
    }
    Ok((
        offset,
        flags,
        Record {
            key,
            value,
            headers,
            timestamp_ms,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Segment scanning (open and recovery)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum HeaderState {
    Ok,
    /// Shorter than the header but a prefix of it: a segment whose creation was interrupted.
    Torn,
    Bad(String),
}

#[derive(Debug)]
struct Scan {
    header: HeaderState,
    file_len: u64,
    /// End of the last complete batch (or of the header).
    valid_len: u64,
    /// Offset after the last record of the last complete batch.
    end_offset: Offset,
    /// Index entries for records before `valid_len`.
    index: Vec<IndexEntry>,
    /// Position and description of the first bad record, if the scan stopped at one.
    damage: Option<(u64, String)>,
}

fn add_index_entry(index: &mut Vec<IndexEntry>, offset: Offset, position: u64) {
    let due = match index.last() {
        None => true,
        Some(last) => position.saturating_sub(last.position) >= INDEX_INTERVAL_BYTES,
    };
    if due {
        index.push(IndexEntry { offset, position });
    }
}

/// Reads the rest of `reader` and tells whether every byte is zero.
fn rest_is_zero(reader: &mut impl Read) -> std::io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

fn scan_segment(path: &Path, base_offset: Offset, record_bytes_max: u32) -> Result<Scan, LogError> {
    let file = File::open(path).map_err(io_error(path))?;
    let file_len = file.metadata().map_err(io_error(path))?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);

    let mut scan = Scan {
        header: HeaderState::Ok,
        file_len,
        valid_len: 0,
        end_offset: base_offset,
        index: Vec::new(),
        damage: None,
    };

    let mut header = [0u8; SEGMENT_HEADER.len()];
    let got = read_full(&mut reader, &mut header).map_err(io_error(path))?;
    if got < header.len() {
        let prefix = header[..got]
            .iter()
            .zip(&SEGMENT_HEADER)
            .take_while(|(a, b)| a == b)
            .count();
        scan.header = if header[prefix..got].iter().all(|&b| b == 0) {
            HeaderState::Torn
        } else {
            HeaderState::Bad("not a yeyak-log segment (bad magic)".to_owned())
        };
        return Ok(scan);
    }
    if header != SEGMENT_HEADER {
        // A crash while a segment was being created can leave a prefix of the header followed
        // by zeros (the file system extended the file but the bytes never arrived), and
        // nothing else: that is a torn header, not damage.
        let prefix = header
            .iter()
            .zip(&SEGMENT_HEADER)
            .take_while(|(a, b)| a == b)
            .count();
        if header[prefix..].iter().all(|&b| b == 0)
            && rest_is_zero(&mut reader).map_err(io_error(path))?
        {
            scan.header = HeaderState::Torn;
            return Ok(scan);
        }
    }
    if header[..MAGIC_LEN] != SEGMENT_HEADER[..MAGIC_LEN] {
        scan.header = HeaderState::Bad("not a yeyak-log segment (bad magic)".to_owned());
        return Ok(scan);
    }
    if header != SEGMENT_HEADER {
        let version = u16::from_le_bytes([header[6], header[7]]);
        scan.header = HeaderState::Bad(format!("unsupported format version {version}"));
        return Ok(scan);
    }

    scan.valid_len = SEGMENT_HEADER_LEN;
    let mut position = SEGMENT_HEADER_LEN;
    let mut expected = base_offset;
    loop {
        match read_record(&mut reader, record_bytes_max).map_err(io_error(path))? {
            ReadOutcome::End => break,
            ReadOutcome::Damaged(reason) => {
                scan.damage = Some((position, reason));
                break;
            }
            ReadOutcome::Record(decoded) => {
                if decoded.offset != expected {
                    scan.damage = Some((
                        position,
                        format!("offset {} where {expected} was expected", decoded.offset),
                    ));
                    break;
                }
                add_index_entry(&mut scan.index, decoded.offset, position);
                position += decoded.framed_len;
                expected += 1;
                if decoded.flags & FLAG_BATCH_END != 0 {
                    scan.valid_len = position;
                    scan.end_offset = expected;
                }
            }
        }
    }
    let valid_len = scan.valid_len;
    scan.index.retain(|entry| entry.position < valid_len);
    Ok(scan)
}

// ---------------------------------------------------------------------------------------------
// Partitions
// ---------------------------------------------------------------------------------------------

/// Where a read of one segment starts and stops, taken under the partition lock.
struct ReadPlan {
    path: PathBuf,
    start_offset: Offset,
    start_position: u64,
    len: u64,
    end_offset: Offset,
}

impl Segment {
    /// The last indexed record at or before `offset`.
    fn seek_point(&self, offset: Offset) -> (Offset, u64) {
        let i = self.index.partition_point(|entry| entry.offset <= offset);
        match i.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(entry) => (entry.offset, entry.position),
            None => (self.base_offset, SEGMENT_HEADER_LEN),
        }
    }
}

impl Partition {
    fn next_offset(&self) -> Offset {
        self.segments.last().map_or(0, |s| s.end_offset)
    }

    fn read_plan(&self, from: Offset) -> Option<ReadPlan> {
        if from >= self.next_offset() {
            return None;
        }
        let i = self.segments.partition_point(|s| s.base_offset <= from);
        let segment = self.segments.get(i.checked_sub(1)?)?;
        let (start_offset, start_position) = segment.seek_point(from);
        Some(ReadPlan {
            path: segment.path.clone(),
            start_offset,
            start_position,
            len: segment.len,
            end_offset: segment.end_offset,
        })
    }
}

fn create_segment_file(path: &Path, sync: bool) -> Result<File, LogError> {
    // `truncate`: a file with this name can only be left over from a roll that failed before
    // any record was written to it (its base offset is the partition's end offset).
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(&SEGMENT_HEADER).map_err(io_error(path))?;
    if sync {
        file.sync_all().map_err(io_error(path))?;
    }
    Ok(file)
}

fn list_segments(dir: &Path) -> Result<Vec<(Offset, PathBuf)>, LogError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(base) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        segments.push((base, entry.path()));
    }
    segments.sort();
    Ok(segments)
}

/// Opens one partition directory, validating sealed segments and recovering the active one.
fn open_partition(
    config: &FileLogConfig,
    topic: &str,
    partition: u32,
    dir: PathBuf,
    create: bool,
) -> Result<Partition, LogError> {
    let sync = config.fsync.syncs_structure();
    if create {
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    }
    let mut listed = if dir.is_dir() {
        list_segments(&dir)?
    } else {
        Vec::new()
    };
    let corrupt = |path: &Path, position: u64, reason: String| LogError::Corrupt {
        topic: topic.to_owned(),
        partition,
        path: path.to_path_buf(),
        position,
        reason,
    };
    if listed.is_empty() {
        if !create {
            return Err(corrupt(
                &dir,
                0,
                "partition directory is missing or holds no segment".to_owned(),
            ));
        }
        let path = dir.join(segment_file_name(0));
        create_segment_file(&path, sync)?;
        if sync {
            sync_dir(&dir)?;
        }
        listed.push((0, path));
    }

    let last = listed.len() - 1;
    let mut segments = Vec::with_capacity(listed.len());
    let mut expected_base: Offset = 0;
    for (i, (base_offset, path)) in listed.into_iter().enumerate() {
        if base_offset != expected_base {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "segment starts at offset {base_offset}, but the partition continues at {expected_base}"
                ),
            ));
        }
        let scan = scan_segment(&path, base_offset, config.record_bytes_max)?;
        let is_active = i == last;
        let scan = if is_active {
            recover_active_segment(topic, partition, &path, base_offset, scan)?
        } else {
            check_sealed_segment(scan)
                .map_err(|(position, reason)| corrupt(&path, position, reason))?
        };
        expected_base = scan.end_offset;
        segments.push(Segment {
            base_offset,
            path,
            len: scan.valid_len,
            end_offset: scan.end_offset,
            index: scan.index,
        });
    }

    let active_path = match segments.last() {
        Some(segment) => segment.path.clone(),
        None => return Err(corrupt(&dir, 0, "partition holds no segment".to_owned())),
    };
    let active_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&active_path)
        .map_err(io_error(&active_path))?;
    Ok(Partition {
        topic: topic.to_owned(),
        partition,
        dir,
        segments,
        active_file: Some(active_file),
        poisoned: None,
        unsynced: false,
    })
}

/// A sealed segment must be whole: valid header, every record valid, ending with a batch end.
fn check_sealed_segment(scan: Scan) -> Result<Scan, (u64, String)> {
    match &scan.header {
        HeaderState::Ok => {}
        HeaderState::Torn => return Err((0, "segment header cut short".to_owned())),
        HeaderState::Bad(reason) => return Err((0, reason.clone())),
    }
    if let Some((position, reason)) = &scan.damage {
        return Err((*position, reason.clone()));
    }
    if scan.valid_len != scan.file_len {
        return Err((
            scan.valid_len,
            "sealed segment ends in an incomplete batch".to_owned(),
        ));
    }
    Ok(scan)
}

/// Truncates the active segment after its last complete batch (or rewrites a torn header).
fn recover_active_segment(
    topic: &str,
    partition: u32,
    path: &Path,
    base_offset: Offset,
    mut scan: Scan,
) -> Result<Scan, LogError> {
    match &scan.header {
        HeaderState::Ok => {}
        HeaderState::Bad(reason) => {
            return Err(LogError::Corrupt {
                topic: topic.to_owned(),
                partition,
                path: path.to_path_buf(),
                position: 0,
                reason: reason.clone(),
            });
        }
        HeaderState::Torn => {
            tracing::warn!(
                topic,
                partition,
                segment = %path.display(),
                cut_bytes = scan.file_len,
                "rewriting the header of an active segment whose creation was interrupted"
            );
            let mut file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(io_error(path))?;
            file.write_all(&SEGMENT_HEADER).map_err(io_error(path))?;
            file.sync_all().map_err(io_error(path))?;
            scan.header = HeaderState::Ok;
            scan.file_len = SEGMENT_HEADER_LEN;
            scan.valid_len = SEGMENT_HEADER_LEN;
            scan.end_offset = base_offset;
            scan.index.clear();
            return Ok(scan);
        }
    }
    if scan.valid_len < scan.file_len {
        let reason = match &scan.damage {
            Some((position, reason)) => format!("{reason} at byte {position}"),
            None => "incomplete batch (no batch-end record)".to_owned(),
        };
        tracing::warn!(
            topic,
            partition,
            segment = %path.display(),
            position = scan.valid_len,
            next_offset = scan.end_offset,
            cut_bytes = scan.file_len - scan.valid_len,
            reason = %reason,
            "truncating the torn tail of the active segment"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        file.set_len(scan.valid_len).map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))?;
        scan.file_len = scan.valid_len;
    }
    Ok(scan)
}

// ---------------------------------------------------------------------------------------------
// Read-only open: the same scan, damage recorded instead of repaired
// ---------------------------------------------------------------------------------------------

/// The valid topic names under `root` that are directories, with their paths.
fn topic_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).map_err(io_error(root))? {
        let entry = entry.map_err(io_error(root))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let dir = entry.path();
        if validate_topic_name(&name).is_ok() && dir.is_dir() {
            out.push((name, dir));
        }
    }
    // Sorted, so that damage is listed in the same order on every machine.
    out.sort();
    Ok(out)
}

/// The partition count of a topic directory; `None`, with the damage recorded, when its
/// `topic.json` is missing or unreadable as metadata (I/O errors are errors).
fn topic_meta_or_damage(
    topic: &str,
    dir: &Path,
    damage: &mut Vec<Damage>,
) -> Result<Option<u32>, LogError> {
    let path = dir.join(TOPIC_META_FILE);
    let (kind, path, detail) = match read_topic_meta(topic, &path) {
        Ok(Some(partitions)) => return Ok(Some(partitions)),
        Ok(None) => (
            DamageKind::IncompleteTopic,
            dir.to_path_buf(),
            "topic directory without topic.json (its creation was interrupted): not read"
                .to_owned(),
        ),
        Err(LogError::CorruptMetadata { reason, .. }) => (
            DamageKind::BadTopicMetadata,
            path,
            format!("{reason}: the topic is not read"),
        ),
        Err(e) => return Err(e),
    };
    damage.push(Damage {
        kind,
        topic: topic.to_owned(),
        partition: None,
        path,
        position: 0,
        offset: 0,
        detail,
    });
    Ok(None)
}

/// Damage that ends a partition, before its topic and partition are attached.
#[derive(Debug)]
struct SegmentDamage {
    kind: DamageKind,
    path: PathBuf,
    position: u64,
    detail: String,
}

/// Opens one partition directory without writing: its segments up to the first damage, and
/// that damage.
fn open_partition_read_only(
    config: &FileLogConfig,
    topic: &str,
    partition: u32,
    dir: PathBuf,
) -> Result<(Partition, Option<Damage>), LogError> {
    let listed = if dir.is_dir() {
        list_segments(&dir)?
    } else {
        Vec::new()
    };
    let mut segments = Vec::with_capacity(listed.len());
    let found = if listed.is_empty() {
        Some(SegmentDamage {
            kind: DamageKind::MissingPartition,
            path: dir.clone(),
            position: 0,
            detail: "partition directory is missing or holds no segment".to_owned(),
        })
    } else {
        readable_segments(config, &listed, &mut segments)?
    };
    let offset = segments.last().map_or(0, |s: &Segment| s.end_offset);
    let damage = found.map(|found| Damage {
        kind: found.kind,
        topic: topic.to_owned(),
        partition: Some(partition),
        path: found.path,
        position: found.position,
        offset,
        detail: found.detail,
    });
    let p = Partition {
        topic: topic.to_owned(),
        partition,
        dir,
        segments,
        active_file: None,
        poisoned: None,
        unsynced: false,
    };
    Ok((p, damage))
}

/// Pushes the sound segments of `listed` (not empty, in offset order) to `segments`, up to the
/// first damage, which it returns; later segments are not read.
fn readable_segments(
    config: &FileLogConfig,
    listed: &[(Offset, PathBuf)],
    segments: &mut Vec<Segment>,
) -> Result<Option<SegmentDamage>, LogError> {
    let last = listed.len() - 1;
    for (i, (base_offset, path)) in listed.iter().enumerate() {
        let expected_base = segments.last().map_or(0, |s| s.end_offset);
        let (segment, found) =
            readable_segment(config, path, *base_offset, expected_base, i == last)?;
        segments.extend(segment);
        if let Some(mut found) = found {
            if i < last {
                let later = last - i;
                found.detail += &format!("; the partition's {later} later segment(s) are not read");
            }
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// What a read-only open makes of one segment: its sound part (none if its place or header
/// is wrong), and the damage that ends the partition in it, if any.
fn readable_segment(
    config: &FileLogConfig,
    path: &Path,
    base_offset: Offset,
    expected_base: Offset,
    is_active: bool,
) -> Result<(Option<Segment>, Option<SegmentDamage>), LogError> {
    let found = |kind, position, detail| SegmentDamage {
        kind,
        path: path.to_path_buf(),
        position,
        detail,
    };
    if base_offset != expected_base {
        let detail = format!(
            "segment starts at offset {base_offset}, but the partition continues at {expected_base}"
        );
        return Ok((None, Some(found(DamageKind::Gap, 0, detail))));
    }
    let scan = scan_segment(path, base_offset, config.record_bytes_max)?;
    match &scan.header {
        HeaderState::Ok => {}
        HeaderState::Torn => {
            let detail = torn_header_detail(scan.file_len, is_active);
            return Ok((None, Some(found(DamageKind::TornHeader, 0, detail))));
        }
        HeaderState::Bad(reason) => {
            return Ok((None, Some(found(DamageKind::BadHeader, 0, reason.clone()))));
        }
    }
    let tail =
        tail_damage(&scan, is_active).map(|(kind, detail)| found(kind, scan.valid_len, detail));
    let segment = Segment {
        base_offset,
        path: path.to_path_buf(),
        len: scan.valid_len,
        end_offset: scan.end_offset,
        index: scan.index,
    };
    Ok((Some(segment), tail))
}

fn torn_header_detail(file_len: u64, is_active: bool) -> String {
    let what = format!(
        "segment header cut short (a file of {file_len} bytes, past a prefix of the header only zeros)"
    );
    if is_active {
        format!("{what}: its creation was interrupted; the writer's open would rewrite it")
    } else {
        format!("{what} in a sealed segment")
    }
}

/// The damage after the last complete batch of a scanned segment with a sound header.
fn tail_damage(scan: &Scan, is_active: bool) -> Option<(DamageKind, String)> {
    if scan.damage.is_none() && scan.valid_len == scan.file_len {
        return None;
    }
    let what = match &scan.damage {
        Some((position, reason)) => format!("{reason} at byte {position}"),
        None => "incomplete batch (no batch-end record)".to_owned(),
    };
    let unread = scan.file_len - scan.valid_len;
    Some(if is_active {
        let detail = format!(
            "{unread} bytes after the last complete batch of the active segment: {what}; the writer's open would truncate them"
        );
        (DamageKind::TornTail, detail)
    } else {
        let detail = format!("{what}; the last {unread} bytes of this sealed segment are not read");
        (DamageKind::BadRecord, detail)
    })
}

// ---------------------------------------------------------------------------------------------
// FileLog
// ---------------------------------------------------------------------------------------------

impl FileLog {
    /// Opens (creating the root directory if needed) and recovers every topic under
    /// `config.root`. Fails with [`LogError::Corrupt`] if a sealed segment is damaged.
    pub fn open(config: FileLogConfig) -> Result<FileLog, LogError> {
        let root = config.root.clone();
        fs::create_dir_all(&root).map_err(io_error(&root))?;
        let mut topics = BTreeMap::new();
        for (name, dir) in topic_dirs(&root)? {
            let meta_path = dir.join(TOPIC_META_FILE);
            let Some(partitions) = read_topic_meta(&name, &meta_path)? else {
                tracing::warn!(
                    topic = %name,
                    dir = %dir.display(),
                    "ignoring a topic directory without topic.json (its creation was interrupted)"
                );
                continue;
            };
            let state = open_topic(&config, &name, &dir, partitions, false)?;
            topics.insert(name, Arc::new(state));
        }
        Ok(FileLog {
            config,
            topics: RwLock::new(topics),
            create_lock: Mutex::new(()),
            read_only: false,
            damage: Vec::new(),
        })
    }

    /// Opens the log under `config.root` without changing anything on disk: see "Read-only
    /// open" in the [module documentation](self). Damage is not an error here: each partition
    /// is served up to its first damage, and [`FileLog::damage`] lists what was found. Fails
    /// on I/O errors only, e.g. when `config.root` does not exist (it is not created).
    pub fn open_read_only(config: FileLogConfig) -> Result<FileLog, LogError> {
        let mut topics = BTreeMap::new();
        let mut damage = Vec::new();
        for (name, dir) in topic_dirs(&config.root)? {
            let Some(partitions) = topic_meta_or_damage(&name, &dir, &mut damage)? else {
                continue;
            };
            let mut opened = Vec::with_capacity(partitions as usize);
            for partition in 0..partitions {
                let partition_dir = dir.join(partition.to_string());
                let (p, found) =
                    open_partition_read_only(&config, &name, partition, partition_dir)?;
                damage.extend(found);
                opened.push(Mutex::new(p));
            }
            let state = TopicState { partitions: opened };
            topics.insert(name, Arc::new(state));
        }
        Ok(FileLog {
            config,
            topics: RwLock::new(topics),
            create_lock: Mutex::new(()),
            read_only: true,
            damage,
        })
    }

    /// Every damage [`FileLog::open_read_only`] found, in topic and partition order. Empty for
    /// a log opened with [`FileLog::open`], which repairs a torn tail (with a warning) and fails
    /// on any other damage.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// Whether the log was opened with [`FileLog::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The error a write to a read-only log gets.
    fn read_only_error(
        &self,
        topic: &str,
        partition: Option<u32>,
        operation: &'static str,
    ) -> LogError {
        LogError::ReadOnly {
            root: self.config.root.clone(),
            topic: topic.to_owned(),
            partition,
            operation,
        }
    }

    /// Refuses a write to a read-only log, before anything is touched.
    fn writable(
        &self,
        topic: &str,
        partition: Option<u32>,
        operation: &'static str,
    ) -> Result<(), LogError> {
        if self.read_only {
            return Err(self.read_only_error(topic, partition, operation));
        }
        Ok(())
    }

    /// The configuration this log was opened with.
    pub fn config(&self) -> &FileLogConfig {
        &self.config
    }

    fn topic(&self, topic: &str) -> Result<Arc<TopicState>, LogError> {
        validate_topic_name(topic)?;
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        topics
            .get(topic)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }

    fn with_partition<T>(
        &self,
        topic: &str,
        partition: u32,
        f: impl FnOnce(&mut Partition) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let state = self.topic(topic)?;
        let count = state.partitions.len() as u32;
        let cell =
            state
                .partitions
                .get(partition as usize)
                .ok_or_else(|| LogError::NoSuchPartition {
                    topic: topic.to_owned(),
                    partition,
                    partitions: count,
                })?;
        let mut guard = lock(cell);
        f(&mut guard)
    }

    fn append_locked(&self, p: &mut Partition, records: &[Record]) -> Result<Offset, LogError> {
        let first = p.next_offset();
        if records.is_empty() {
            return Ok(first);
        }
        if let Some(reason) = &p.poisoned {
            let path = p
                .segments
                .last()
                .map_or_else(|| p.dir.clone(), |s| s.path.clone());
            return Err(LogError::Io {
                path,
                source: io::Error::other(format!(
                    "appends are refused until the log is reopened: {reason}"
                )),
            });
        }

        // Validate and encode the whole batch before touching the file.
        let mut total: u64 = 0;
        for (index, record) in records.iter().enumerate() {
            check_record(p, index, record, self.config.record_bytes_max)?;
            total += encoded_len(record);
        }
        let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut relative_positions = Vec::with_capacity(records.len());
        let last = records.len() - 1;
        for (i, record) in records.iter().enumerate() {
            relative_positions.push(buf.len() as u64);
            let flags = if i == last { FLAG_BATCH_END } else { 0 };
            encode_record(&mut buf, record, first + i as u64, flags);
        }

        let needs_roll = p.segments.last().is_some_and(|active| {
            active.len > SEGMENT_HEADER_LEN
                && active.len + buf.len() as u64 > self.config.segment_bytes_max
        });
        if needs_roll {
            self.roll(p)?;
        }

        let sync = self.config.fsync == FsyncPolicy::EveryAppend;
        let Some(active_file) = p.active_file.as_mut() else {
            return Err(self.read_only_error(&p.topic, Some(p.partition), "append"));
        };
        let Some(active) = p.segments.last_mut() else {
            return Err(LogError::Corrupt {
                topic: p.topic.clone(),
                partition: p.partition,
                path: p.dir.clone(),
                position: 0,
                reason: "partition holds no segment".to_owned(),
            });
        };
        let start = active.len;
        let written = active_file
            .seek(SeekFrom::Start(start))
            .and_then(|_| active_file.write_all(&buf));
        let synced = match written {
            Ok(()) if sync => active_file.sync_data().map_err(|e| (e, true)),
            Ok(()) => Ok(()),
            Err(e) => Err((e, false)),
        };
        if let Err((source, sync_failed)) = synced {
            // Undo the partial batch so it can never become visible. After a failed fsync the
            // state of the page cache is unknown, so the partition is also closed to appends.
            let undone = active_file.set_len(start);
            if sync_failed || undone.is_err() {
                p.poisoned = Some(format!(
                    "a failed write at byte {start} of {} could not be safely undone",
                    active.path.display()
                ));
            }
            return Err(LogError::Io {
                path: active.path.clone(),
                source,
            });
        }

        for (i, relative) in relative_positions.into_iter().enumerate() {
            add_index_entry(&mut active.index, first + i as u64, start + relative);
        }
        p.unsynced |= self.config.fsync == FsyncPolicy::OnSync;
        active.len = start + buf.len() as u64;
        active.end_offset = first + records.len() as u64;
        Ok(first)
    }

    /// Seals the active segment and starts a new one at the partition's end offset.
    fn roll(&self, p: &mut Partition) -> Result<(), LogError> {
        let sync = self.config.fsync.syncs_structure();
        if let (Some(active), Some(file)) = (p.segments.last(), &p.active_file) {
            // Always synced, whatever the policy: sealed segments must stay sound.
            file.sync_all().map_err(io_error(&active.path))?;
        }
        let base_offset = p.next_offset();
        let path = p.dir.join(segment_file_name(base_offset));
        let file = create_segment_file(&path, sync)?;
        if sync {
            sync_dir(&p.dir)?;
        }
        tracing::debug!(
            topic = %p.topic,
            partition = p.partition,
            base_offset,
            "rolled to a new segment"
        );
        p.active_file = Some(file);
        p.segments.push(Segment {
            base_offset,
            path,
            len: SEGMENT_HEADER_LEN,
            end_offset: base_offset,
            index: Vec::new(),
        });
        Ok(())
    }

    fn read_impl(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        let mut next = from;
        loop {
            // The lock is held only to plan; the file is read without it.
            let plan = self.with_partition(topic, partition, |p| Ok(p.read_plan(next)))?;
            if out.len() >= max_records {
                break;
            }
            let Some(plan) = plan else { break };
            let after = self.read_segment(topic, partition, &plan, next, max_records, &mut out)?;
            if after <= next {
                break;
            }
            next = after;
        }
        Ok(out)
    }

    /// Reads records of one segment with offsets `>= from` into `out` until `out` holds
    /// `max_records` or the planned bytes end. Returns the offset after the last record read.
    fn read_segment(
        &self,
        topic: &str,
        partition: u32,
        plan: &ReadPlan,
        from: Offset,
        max_records: usize,
        out: &mut Vec<StoredRecord>,
    ) -> Result<Offset, LogError> {
        let path = &plan.path;
        let corrupt = |position: u64, reason: String| LogError::Corrupt {
            topic: topic.to_owned(),
            partition,
            path: path.clone(),
            position,
            reason,
        };
        let mut file = File::open(path).map_err(io_error(path))?;
        file.seek(SeekFrom::Start(plan.start_position))
            .map_err(io_error(path))?;
        let limit = plan.len.saturating_sub(plan.start_position);
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file.take(limit));
        let mut position = plan.start_position;
        let mut expected = plan.start_offset;
        while out.len() < max_records {
            match read_record(&mut reader, self.config.record_bytes_max).map_err(io_error(path))? {
                ReadOutcome::End => {
                    if expected != plan.end_offset {
                        return Err(corrupt(
                            position,
                            format!(
                                "segment ends at offset {expected}, but {} was expected",
                                plan.end_offset
                            ),
                        ));
                    }
                    break;
                }
                ReadOutcome::Damaged(reason) => return Err(corrupt(position, reason)),
                ReadOutcome::Record(decoded) => {
                    if decoded.offset != expected {
                        return Err(corrupt(
                            position,
                            format!("offset {} where {expected} was expected", decoded.offset),
                        ));
                    }
                    if decoded.offset >= from {
                        out.push(StoredRecord {
                            topic: topic.to_owned(),
                            partition,
                            offset: decoded.offset,
                            record: decoded.record,
                        });
                    }
                    position += decoded.framed_len;
                    expected += 1;
                }
            }
        }
        Ok(expected)
    }

    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        self.writable(topic, None, "create topic")?;
        let _creating = lock(&self.create_lock);
        // Another thread may have created it while we waited.
        if let Ok(existing) = self.topic(topic) {
            return compare_partition_count(topic, existing.partitions.len() as u32, partitions);
        }
        let dir = self.config.root.join(topic);
        let meta_path = dir.join(TOPIC_META_FILE);
        // A topic.json on disk that this log did not load can only come from another writer;
        // never overwrite it with a different count.
        if let Some(existing) = read_topic_meta(topic, &meta_path)? {
            compare_partition_count(topic, existing, partitions)?;
        }
        let sync = self.config.fsync.syncs_structure();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        // Partitions first, topic.json last: a topic without topic.json is ignored on open and
        // completed by the next ensure_topic, reusing whatever segments already exist.
        let state = open_topic(&self.config, topic, &dir, partitions, true)?;
        write_topic_meta(&dir, partitions, sync)?;
        if sync {
            sync_dir(&dir)?;
            sync_dir(&self.config.root)?;
        }
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        topics.insert(topic.to_owned(), Arc::new(state));
        Ok(())
    }
}

fn check_record(
    p: &Partition,
    index: usize,
    record: &Record,
    record_bytes_max: u32,
) -> Result<(), LogError> {
    let invalid = |reason: String| LogError::InvalidRecord {
        topic: p.topic.clone(),
        partition: p.partition,
        index,
        reason,
    };
    if record.headers.len() > usize::from(u16::MAX) {
        return Err(invalid(format!(
            "{} headers, at most {} are allowed",
            record.headers.len(),
            u16::MAX
        )));
    }
    if let Some((name, _)) = record
        .headers
        .iter()
        .find(|(name, _)| name.len() > usize::from(u16::MAX))
    {
        return Err(invalid(format!(
            "a header name is {} bytes long, at most {} are allowed",
            name.len(),
            u16::MAX
        )));
    }
    let size = encoded_len(record);
    if size > u64::from(record_bytes_max) {
        return Err(LogError::RecordTooLarge {
            topic: p.topic.clone(),
            partition: p.partition,
            index,
            size_bytes: size,
            max_bytes: record_bytes_max,
        });
    }
    Ok(())
}

fn compare_partition_count(topic: &str, existing: u32, requested: u32) -> Result<(), LogError> {
    if existing == requested {
        Ok(())
    } else {
        Err(LogError::TopicExists {
            topic: topic.to_owned(),
            existing,
            requested,
        })
    }
}

fn open_topic(
    config: &FileLogConfig,
    topic: &str,
    dir: &Path,
    partitions: u32,
    create: bool,
) -> Result<TopicState, LogError> {
    let mut opened = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let partition_dir = dir.join(partition.to_string());
        let p = open_partition(config, topic, partition, partition_dir, create)?;
        opened.push(Mutex::new(p));
    }
    Ok(TopicState { partitions: opened })
}

/// `Ok(None)` if the file does not exist.
fn read_topic_meta(topic: &str, path: &Path) -> Result<Option<u32>, LogError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let bad = |reason: String| LogError::CorruptMetadata {
        topic: topic.to_owned(),
        path: path.to_path_buf(),
        reason,
    };
    let meta: TopicMeta = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not valid topic metadata: {e}")))?;
    if meta.format != FORMAT_NAME {
        return Err(bad(format!(
            "format {:?}, expected {FORMAT_NAME:?}",
            meta.format
        )));
    }
    if meta.partitions == 0 {
        return Err(bad("zero partitions".to_owned()));
    }
    Ok(Some(meta.partitions))
}

fn write_topic_meta(dir: &Path, partitions: u32, sync: bool) -> Result<(), LogError> {
    let meta = TopicMeta {
        format: FORMAT_NAME.to_owned(),
        partitions,
    };
    let tmp = dir.join(TOPIC_META_TMP_FILE);
    let path = dir.join(TOPIC_META_FILE);
    let mut json = serde_json::to_vec(&meta).map_err(|e| LogError::Io {
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    json.push(b'\n');
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&json).map_err(io_error(&tmp))?;
    if sync {
        file.sync_all().map_err(io_error(&tmp))?;
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(io_error(&path))?;
    Ok(())
}

impl EventLog for FileLog {
    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        validate_topic_name(topic)?;
        if partitions == 0 {
            return Err(LogError::InvalidPartitionCount {
                topic: topic.to_owned(),
                partitions,
            });
        }
        match self.topic(topic) {
            Ok(existing) => {
                compare_partition_count(topic, existing.partitions.len() as u32, partitions)
            }
            Err(LogError::UnknownTopic { .. }) => self.create_topic(topic, partitions),
            Err(e) => Err(e),
        }
    }

    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Offset, LogError> {
        self.writable(topic, Some(partition), "append")?;
        self.with_partition(topic, partition, |p| self.append_locked(p, records))
    }

    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.read_impl(topic, partition, from, max_records)
    }

    fn end_offset(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        self.with_partition(topic, partition, |p| Ok(p.next_offset()))
    }

    fn topics(&self) -> Result<Vec<String>, LogError> {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        Ok(topics.keys().cloned().collect())
    }

    /// `fdatasync`s each partition appended to since the last sync (`FsyncPolicy::OnSync`), all
    /// at once (one thread each: the file system commits concurrent syncs together). A failed
    /// fsync leaves the page cache in an unknown state: that partition refuses appends until
    /// the log is reopened, as after a failed fsync of an append.
    fn sync(&self) -> Result<(), LogError> {
        if self.config.fsync != FsyncPolicy::OnSync {
            return Ok(());
        }
        let states: Vec<Arc<TopicState>> = {
            let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
            topics.values().cloned().collect()
        };
        let dirty: Vec<&Mutex<Partition>> = states
            .iter()
            .flat_map(|state| &state.partitions)
            .filter(|cell| lock(cell).unsynced)
            .collect();
        match dirty.as_slice() {
            [] => Ok(()),
            [one] => sync_partition(&mut lock(one)),
            many => std::thread::scope(|scope| {
                let syncs: Vec<_> = many
                    .iter()
                    .map(|cell| scope.spawn(|| sync_partition(&mut lock(cell))))
                    .collect();
                // Every sync is joined (the scope waits for them all); a failed one has closed
                // its partition to appends, and the first failure is the answer.
                syncs.into_iter().try_for_each(|sync| {
                    sync.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
            }),
        }
    }
}

fn sync_partition(p: &mut Partition) -> Result<(), LogError> {
    if !p.unsynced {
        return Ok(());
    }
    let (Some(file), Some(active)) = (&p.active_file, p.segments.last()) else {
        return Ok(());
    };
    if let Err(source) = file.sync_data() {
        let path = active.path.clone();
        p.poisoned = Some(format!("an fsync of {} failed", path.display()));
        return Err(LogError::Io { path, source });
    }
    p.unsynced = false;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Read-only scan, for auditors
// ---------------------------------------------------------------------------------------------

/// One record slot of a segment as found on disk by [`scan_partition_readonly`]: either a
/// record that passed its checksum, or the description of what is wrong at that place.
#[derive(Debug)]
pub struct ScannedRecord {
    /// The segment file and the byte position where the record starts.
    pub path: PathBuf,
    pub position: u64,
    /// The record's slot in the partition as scanned (0 for the first record found).
    pub index: u64,
    /// The offset, flags and record; or why the bytes are not a valid record.
    pub decoded: Result<(Offset, u8, Record), String>,
}

/// Reads every record of one partition directory of a "yeyak-log v1" log, in segment order,
/// without opening the log (which would truncate a damaged active segment) and without writing
/// anything. A record whose checksum or body is bad is reported and skipped (its length field
/// says where the next one starts); a length that cannot be trusted ends the scan with one last
/// damaged entry. Offsets are NOT checked here: judging gaps is the caller's business.
pub fn scan_partition_readonly(
    dir: &Path,
    record_bytes_max: u32,
    mut visit: impl FnMut(ScannedRecord),
) -> Result<(), LogError> {
    let mut segments: Vec<(Offset, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = parse_segment_file_name(&name) {
            segments.push((base, entry.path()));
        }
    }
    segments.sort();
    let mut index = 0u64;
    for (_, path) in segments {
        let file = File::open(&path).map_err(io_error(&path))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let mut header = [0u8; SEGMENT_HEADER.len()];
        let got = read_full(&mut reader, &mut header).map_err(io_error(&path))?;
        if got < header.len() || header != SEGMENT_HEADER {
            visit(ScannedRecord {
                path: path.clone(),
                position: 0,
                index,
                decoded: Err("not a yeyak-log v1 segment (bad header)".to_owned()),
            });
            continue;
        }
        let mut position = SEGMENT_HEADER_LEN;
        loop {
            let mut length_bytes = [0u8; 4];
            let got = read_full(&mut reader, &mut length_bytes).map_err(io_error(&path))?;
            if got == 0 {
                break;
            }
            let length = u32::from_le_bytes(length_bytes);
            let framed_len = LENGTH_FIELD_LEN + u64::from(length);
            if got < 4 || length < MIN_RECORD_BODY_LEN || framed_len > u64::from(record_bytes_max) {
                let reason = format!(
                    "unreadable record length {length}: the rest of the segment is skipped"
                );
                visit(ScannedRecord {
                    path: path.clone(),
                    position,
                    index,
                    decoded: Err(reason),
                });
                index += 1;
                break;
            }
            let mut body = vec![0u8; length as usize];
            let got = read_full(&mut reader, &mut body).map_err(io_error(&path))?;
            if got < body.len() {
                let reason = format!("record cut short ({got} of {length} bytes)");
                visit(ScannedRecord {
                    path: path.clone(),
                    position,
                    index,
                    decoded: Err(reason),
                });
                index += 1;
                break;
            }
            let stored_crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
            let actual_crc = crc32c::crc32c(&body[4..]);
            let decoded = if stored_crc != actual_crc {
                Err(format!(
                    "checksum mismatch (stored {stored_crc:08x}, computed {actual_crc:08x})"
                ))
            } else {
                decode_body(&body[4..])
            };
            visit(ScannedRecord {
                path: path.clone(),
                position,
                index,
                decoded,
            });
            index += 1;
            position += framed_len;
        }
    }
    Ok(())
}

/// The partition count a topic directory's `topic.json` declares (`None` without one).
pub fn topic_partitions(topic: &str, dir: &Path) -> Result<Option<u32>, LogError> {
    read_topic_meta(topic, &dir.join(TOPIC_META_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str) -> Record {
        Record {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            headers: vec![("event-type".to_owned(), b"booked".to_vec())],
            timestamp_ms: -5,
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let r = record("k", "v");
        let mut buf = Vec::new();
        encode_record(&mut buf, &r, 42, FLAG_BATCH_END);
        assert_eq!(buf.len() as u64, encoded_len(&r));
        let mut reader = &buf[..];
        match read_record(&mut reader, 1024).unwrap() {
            ReadOutcome::Record(d) => {
                assert_eq!(d.offset, 42);
                assert_eq!(d.flags, FLAG_BATCH_END);
                assert_eq!(d.record, r);
                assert_eq!(d.framed_len, buf.len() as u64);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            read_record(&mut reader, 1024).unwrap(),
            ReadOutcome::End
        ));
    }

    #[test]
    fn encoding_is_the_documented_layout() {
        let r = Record {
            key: b"K".to_vec(),
            value: b"VV".to_vec(),
            headers: vec![("h".to_owned(), b"x".to_vec())],
            timestamp_ms: 7,
        };
        let mut buf = Vec::new();
        encode_record(&mut buf, &r, 3, FLAG_BATCH_END);
        let mut body = Vec::new();
        body.extend_from_slice(&3u64.to_le_bytes());
        body.extend_from_slice(&7i64.to_le_bytes());
        body.push(1);
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b'K');
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.push(b'h');
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b'x');
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(b"VV");
        let mut expected = Vec::new();
        expected.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(buf, expected);
    }

    #[test]
    fn a_huge_length_is_damage_not_an_allocation() {
        let mut buf = u32::MAX.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0u8; 64]);
        let mut reader = &buf[..];
        assert!(matches!(
            read_record(&mut reader, 16 * 1024 * 1024).unwrap(),
            ReadOutcome::Damaged(_)
        ));
    }

    #[test]
    fn every_cut_of_a_record_is_damage() {
        let r = record("key", "value");
        let mut buf = Vec::new();
        encode_record(&mut buf, &r, 0, FLAG_BATCH_END);
        for cut in 1..buf.len() {
            let mut reader = &buf[..cut];
            assert!(
                matches!(
                    read_record(&mut reader, 1024).unwrap(),
                    ReadOutcome::Damaged(_)
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn unknown_flags_are_damage() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &record("k", "v"), 0, 0x80);
        let mut reader = &buf[..];
        assert!(matches!(
            read_record(&mut reader, 1024).unwrap(),
            ReadOutcome::Damaged(_)
        ));
    }

    #[test]
    fn segment_names_have_twenty_digits() {
        assert_eq!(segment_file_name(0), "00000000000000000000.log");
        assert_eq!(segment_file_name(1234), "00000000000000001234.log");
        assert_eq!(
            parse_segment_file_name("00000000000000001234.log"),
            Some(1234)
        );
        assert_eq!(parse_segment_file_name("1234.log"), None);
        assert_eq!(parse_segment_file_name("0000000000000000123x.log"), None);
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
    }

    #[test]
    fn seek_point_uses_the_last_entry_at_or_before() {
        let segment = Segment {
            base_offset: 10,
            path: PathBuf::new(),
            len: 0,
            end_offset: 100,
            index: vec![
                IndexEntry {
                    offset: 10,
                    position: 8,
                },
                IndexEntry {
                    offset: 40,
                    position: 5000,
                },
                IndexEntry {
                    offset: 70,
                    position: 9100,
                },
            ],
        };
        assert_eq!(segment.seek_point(10), (10, 8));
        assert_eq!(segment.seek_point(39), (10, 8));
        assert_eq!(segment.seek_point(40), (40, 5000));
        assert_eq!(segment.seek_point(99), (70, 9100));
    }

    #[test]
    fn topic_names_follow_kafka() {
        for ok in ["a", "A-b_c.d", "0", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic_name(bad), Err(LogError::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
