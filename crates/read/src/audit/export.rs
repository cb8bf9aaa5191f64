//! `yeyak export`: a range of the log written to a directory an auditor can take offline, and
//! the reading side that proves it was not tampered with.
//!
//! # Format "yeyak-export v1"
//!
//! ```text
//! <dir>/manifest.json                        what was exported, per partition, and the chain heads
//! <dir>/<topic>/topic.json, <dir>/<topic>/<partition>/<base offset>.log
//!                                            the embedded log's format ("yeyak-log v1", src/log/file.rs):
//!                                            every record has a CRC-32C, offsets start at 0
//! ```
//!
//! Every exported record keeps its key, value, timestamp and headers, and gets two headers:
//! `yeyak.source_offset` (its offset in the log it was exported from, in decimal) and
//! `yeyak.chain`, 64 bytes: the previous record's link, then this record's link, where
//!
//! ```text
//! link(-1) = SHA-256("yeyak-export v1" | topic | 0x00 | partition as u32 LE)
//! link(i)  = SHA-256(link(i-1) | SHA-256(content(i)))
//! content  = timestamp i64 LE | key | each header but yeyak.chain: name, value | value
//!            (each byte string preceded by its length as u32 LE)
//! ```
//!
//! The manifest holds, per partition, the record count, the first and last source offsets and
//! the last link (the head). The CRC catches accidental damage; the chain catches a record that
//! was edited and re-checksummed, removed, copied or moved, even with the offsets renumbered;
//! the manifest's head catches records cut off at the end. The manifest's own SHA-256 is
//! printed by the export, to be handed over apart from the files.
//!
//! Only pseudonymised subject ids leave: a record containing text shaped like a resident
//! registration number in any form (`yeyak_domain::pii`: with or without the dash, with
//! spaces) stops the export, and nothing is left behind.
//!
//! `yeyak export --data DIR` reads the data directory read-only and refuses it if it is
//! damaged, even by a torn tail a crash left ([`AuditError::LogDamaged`], `[log_damaged]`),
//! before writing anything: the part before the damage would be an export that looks whole.
//! Letting the ledger open the directory first repairs what a crash left (it truncates a torn
//! tail, and says so); other damage is for `replay --data` to list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use yeyak_domain::pii;

use super::source::{Range, ledger_partitions, read_partition};
use super::{AuditError, Finding, Item, Loaded, Position, Progress, Stream, io_error};
use yeyak_log::codec::{HEADER_COMMAND_ID, decode};
use yeyak_log::file::{ScannedRecord, scan_partition_readonly};
use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy, Record, StoredRecord};

pub const EXPORT_FORMAT: &str = "yeyak-export v1";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const HEADER_SOURCE_OFFSET: &str = "yeyak.source_offset";
pub const HEADER_CHAIN: &str = "yeyak.chain";
const LINK_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub log_format: String,
    /// Where the records were read from, for people.
    pub source: String,
    /// Partition count of each exported topic.
    pub topics: BTreeMap<String, u32>,
    pub partitions: Vec<ManifestPartition>,
    pub records_total: u64,
    /// The range asked for, for people.
    pub range: String,
    /// Every exported partition starts at its first record (nothing before the range is missing).
    #[serde(default)]
    pub from_start: bool,
    /// Every partition of the ledger's topics was exported.
    #[serde(default)]
    pub every_partition: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPartition {
    pub topic: String,
    pub partition: u32,
    pub records: u64,
    pub first_offset: Option<u64>,
    pub last_offset: Option<u64>,
    /// The last record's link (hex); the genesis link when the partition is empty.
    pub head: String,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub manifest: Manifest,
    pub manifest_sha256: String,
    pub dir: PathBuf,
}

/// The link before the first record of a partition.
pub fn genesis(topic: &str, partition: u32) -> [u8; LINK_BYTES] {
    let mut hash = Sha256::new();
    hash.update(EXPORT_FORMAT.as_bytes());
    hash.update(topic.as_bytes());
    hash.update([0u8]);
    hash.update(partition.to_le_bytes());
    hash.finalize().into()
}

fn content_hash(record: &Record) -> [u8; LINK_BYTES] {
    let mut hash = Sha256::new();
    let mut bytes = |b: &[u8]| {
        hash.update((b.len() as u32).to_le_bytes());
        hash.update(b);
    };
    bytes(&record.timestamp_ms.to_le_bytes());
    bytes(&record.key);
    for (name, value) in &record.headers {
        if name != HEADER_CHAIN {
            bytes(name.as_bytes());
            bytes(value);
        }
    }
    bytes(&record.value);
    hash.finalize().into()
}

fn link(prev: &[u8; LINK_BYTES], record: &Record) -> [u8; LINK_BYTES] {
    let mut hash = Sha256::new();
    hash.update(prev);
    hash.update(content_hash(record));
    hash.finalize().into()
}

/// Whether a record holds text shaped like a resident number (`yeyak_domain::pii`, the one
/// detector the edge uses too): in its key, its headers, and every string (and field name) of
/// its JSON value. JSON numbers are not text (an instant in milliseconds has thirteen digits
/// too); a value that is not JSON is scanned whole.
fn record_has_resident_number(record: &Record) -> bool {
    let raw = |bytes: &[u8]| pii::resident_number_at(bytes).is_some();
    raw(&record.key)
        || record
            .headers
            .iter()
            .any(|(name, value)| raw(name.as_bytes()) || raw(value))
        || match serde_json::from_slice::<serde_json::Value>(&record.value) {
            Ok(value) => json_holds_resident_number(&value),
            Err(_) => raw(&record.value),
        }
}

fn json_holds_resident_number(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => pii::holds_resident_number(text),
        Value::Array(items) => items.iter().any(json_holds_resident_number),
        Value::Object(fields) => fields
            .iter()
            .any(|(name, v)| pii::holds_resident_number(name) || json_holds_resident_number(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn describe_range(range: &Range) -> String {
    let mut parts: Vec<String> = range
        .offsets
        .iter()
        .map(|((t, p), (from, to))| {
            format!(
                "{t}:{p}={}..{}",
                from.map(|f| f.to_string()).unwrap_or_default(),
                to.map(|t| t.to_string()).unwrap_or_default()
            )
        })
        .collect();
    if range.only_named {
        parts.push("only these partitions".to_owned());
    }
    if let Some(f) = range.from_ms {
        parts.push(format!("from {f} ms"));
    }
    if let Some(t) = range.to_ms {
        parts.push(format!("until {t} ms"));
    }
    if parts.is_empty() {
        "everything".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Exports a range of the ledger's topics of `log` into `dir` (new or empty).
pub fn export(
    log: &dyn EventLog,
    range: &Range,
    dir: &Path,
    source: String,
    progress: bool,
) -> Result<ExportSummary, AuditError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
        if entries.next().is_some() {
            return Err(AuditError::OutputNotEmpty {
                path: dir.to_path_buf(),
            });
        }
    }
    let result = write_export(log, range, dir, source, progress);
    if result.is_err() {
        // Nothing half-written is left behind (the directory was new or empty).
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn write_export(
    log: &dyn EventLog,
    range: &Range,
    dir: &Path,
    source: String,
    progress: bool,
) -> Result<ExportSummary, AuditError> {
    let out = FileLog::open(FileLogConfig {
        fsync: FsyncPolicy::Never,
        ..FileLogConfig::new(dir)
    })?;
    let partitions = ledger_partitions(log)?;
    let mut topics = BTreeMap::new();
    let mut total = 0;
    for (topic, partition) in &partitions {
        if !topics.contains_key(topic) {
            let count = log.partitions(topic)?;
            out.ensure_topic(topic, count)?;
            topics.insert(topic.clone(), count);
        }
        total += log.end_offset(topic, *partition)?;
    }
    let mut meter = Progress::new("export", total, progress);
    let mut manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        log_format: yeyak_log::file::FORMAT_NAME.to_owned(),
        source,
        topics,
        partitions: Vec::new(),
        records_total: 0,
        range: describe_range(range),
        from_start: range.from_ms.is_none()
            && range
                .offsets
                .values()
                .all(|(from, _)| from.is_none_or(|f| f == 0)),
        every_partition: !range.only_named,
    };
    for (topic, partition) in partitions {
        let Some((from, to)) = range.bounds(&topic, partition) else {
            continue;
        };
        let mut entry = ManifestPartition {
            topic: topic.clone(),
            partition,
            records: 0,
            first_offset: None,
            last_offset: None,
            head: String::new(),
        };
        let mut prev = genesis(&topic, partition);
        let mut batch: Vec<Record> = Vec::new();
        let mut batch_command: Option<Vec<u8>> = None;
        let mut failure: Option<AuditError> = None;
        read_partition(log, &topic, partition, from, to, |stored: StoredRecord| {
            meter.add(1);
            if failure.is_some() || !range.admits_time(stored.record.timestamp_ms) {
                return;
            }
            if record_has_resident_number(&stored.record) {
                let position = Position {
                    topic: topic.clone(),
                    partition,
                    offset: stored.offset,
                    index: None,
                };
                failure = Some(AuditError::RegistrationNumberShaped { position });
                return;
            }
            let mut record = stored.record;
            record
                .headers
                .retain(|(name, _)| name != HEADER_CHAIN && name != HEADER_SOURCE_OFFSET);
            record.headers.push((
                HEADER_SOURCE_OFFSET.to_owned(),
                stored.offset.to_string().into_bytes(),
            ));
            let next = link(&prev, &record);
            let mut chain = prev.to_vec();
            chain.extend_from_slice(&next);
            record.headers.push((HEADER_CHAIN.to_owned(), chain));
            prev = next;
            entry.records += 1;
            entry.first_offset.get_or_insert(stored.offset);
            entry.last_offset = Some(stored.offset);
            // One decision, one atomic batch, as in the source.
            let command = record
                .headers
                .iter()
                .find(|(n, _)| n == HEADER_COMMAND_ID)
                .map(|(_, v)| v.clone());
            if command != batch_command && !batch.is_empty() {
                if let Err(e) = out.append(&topic, partition, &batch) {
                    failure = Some(e.into());
                }
                batch.clear();
            }
            batch_command = command;
            batch.push(record);
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !batch.is_empty() {
            out.append(&topic, partition, &batch)?;
        }
        entry.head = hex::encode(prev);
        manifest.records_total += entry.records;
        manifest.partitions.push(entry);
    }
    meter.finish();
    drop(out);
    sync_tree(dir)?;
    let text = serde_json::to_string_pretty(&manifest).map_err(AuditError::Json)? + "\n";
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, &text).map_err(io_error(&path))?;
    sync_tree(dir)?;
    Ok(ExportSummary {
        manifest_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        manifest,
        dir: dir.to_path_buf(),
    })
}

/// fsync every file and directory under `dir` (the export log was written without fsync).
fn sync_tree(dir: &Path) -> Result<(), AuditError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io_error(&path))? {
                stack.push(entry.map_err(io_error(&path))?.path());
            }
        }
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_error(&path))?;
    }
    Ok(())
}

/// The largest manifest read (a manifest lists partitions, not records: megabytes at most).
pub const MANIFEST_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Topics an export may list, at most (the ledger has three).
pub const TOPICS_MAX: usize = 64;
/// Partitions of one exported topic, at most.
pub const TOPIC_PARTITIONS_MAX: u32 = 4096;

/// Reads the manifest of an export and checks it before anything is allocated or opened on its
/// word: its size, its topic names (Kafka's rules: no path separator, neither `.` nor `..`, so
/// nothing is joined into a path outside the export), its counts, and that every partition it
/// lists is one of its topics', once. A manifest is hostile input until it has passed these.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String), AuditError> {
    let not_an_export = |reason: String| AuditError::NotAnExport {
        path: dir.to_path_buf(),
        reason,
    };
    let path = dir.join(MANIFEST_FILE);
    let size = std::fs::metadata(&path)
        .map_err(|e| not_an_export(format!("no readable {MANIFEST_FILE} ({e})")))?
        .len();
    if size > MANIFEST_BYTES_MAX {
        return Err(not_an_export(format!(
            "{MANIFEST_FILE} has {size} bytes, more than {MANIFEST_BYTES_MAX}"
        )));
    }
    let text = std::fs::read(&path)
        .map_err(|e| not_an_export(format!("no readable {MANIFEST_FILE} ({e})")))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| not_an_export(format!("{MANIFEST_FILE} is not a manifest: {e}")))?;
    if manifest.format != EXPORT_FORMAT {
        return Err(not_an_export(format!(
            "format {:?}, expected {EXPORT_FORMAT:?}",
            manifest.format
        )));
    }
    manifest.check().map_err(not_an_export)?;
    Ok((manifest, hex::encode(Sha256::digest(&text))))
}

impl Manifest {
    /// What must hold before an export is read on the manifest's word (see [`read_manifest`]).
    fn check(&self) -> Result<(), String> {
        if self.topics.len() > TOPICS_MAX {
            return Err(format!(
                "{} topics, more than {TOPICS_MAX}",
                self.topics.len()
            ));
        }
        for (topic, &count) in &self.topics {
            yeyak_log::file::validate_topic_name(topic)
                .map_err(|_| "a topic name is not a topic name (Kafka's rules)".to_owned())?;
            if count > TOPIC_PARTITIONS_MAX {
                return Err(format!(
                    "a topic has {count} partitions, more than {TOPIC_PARTITIONS_MAX}"
                ));
            }
        }
        let mut listed = BTreeSet::new();
        let mut total: u64 = 0;
        for entry in &self.partitions {
            let count = self
                .topics
                .get(&entry.topic)
                .ok_or_else(|| "a partition of a topic the manifest does not list".to_owned())?;
            if entry.partition >= *count || !listed.insert((&entry.topic, entry.partition)) {
                return Err(format!(
                    "{}/{} is out of range or listed twice",
                    entry.topic, entry.partition
                ));
            }
            total = total
                .checked_add(entry.records)
                .ok_or_else(|| "the record counts overflow".to_owned())?;
        }
        if total != self.records_total {
            return Err(format!(
                "records_total is {}, the partitions add up to {total}",
                self.records_total
            ));
        }
        Ok(())
    }
}

/// One record found in an exported partition.
struct Found {
    slot: u64,
    export_offset: u64,
    source_offset: Option<u64>,
    record: Record,
    /// `(prev, link)` from the record's chain header.
    chain: Option<([u8; LINK_BYTES], [u8; LINK_BYTES])>,
}

impl Found {
    fn position(&self, topic: &str, partition: u32) -> Position {
        Position {
            topic: topic.to_owned(),
            partition,
            offset: self.source_offset.unwrap_or(self.export_offset),
            index: Some(self.export_offset),
        }
    }

    fn consistent(&self) -> bool {
        self.chain
            .is_some_and(|(prev, stored)| link(&prev, &self.record) == stored)
    }
}

fn parse_found(slot: u64, export_offset: u64, record: Record) -> Found {
    let header = |name: &str| {
        record
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let source_offset =
        header(HEADER_SOURCE_OFFSET).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
    let chain = header(HEADER_CHAIN)
        .filter(|v| v.len() == 2 * LINK_BYTES)
        .map(|v| {
            let mut prev = [0u8; LINK_BYTES];
            let mut next = [0u8; LINK_BYTES];
            prev.copy_from_slice(&v[..LINK_BYTES]);
            next.copy_from_slice(&v[LINK_BYTES..]);
            (prev, next)
        });
    Found {
        slot,
        export_offset,
        source_offset,
        record,
        chain,
    }
}

/// Reads an export without changing a byte of it, checks it against its manifest, and returns
/// its events (in the original order, one copy of each) with every sign of tampering found.
pub fn read_export(dir: &Path, progress: bool) -> Result<Loaded, AuditError> {
    let (manifest, manifest_sha256) = read_manifest(dir)?;
    let mut loaded = Loaded {
        source: format!(
            "export {} (manifest sha256 {manifest_sha256})",
            dir.display()
        ),
        whole_log: manifest.range == "everything",
        from_start: manifest.from_start,
        every_partition: manifest.every_partition,
        ..Loaded::default()
    };
    let mut meter = Progress::new("verify", manifest.records_total, progress);
    for expected in &manifest.partitions {
        // The checks run in this order, and each pushes its findings in the order it finds
        // them: reports and tests read the findings in that order.
        let mut exported = ExportedPartition::scan(dir, expected, &mut meter)?;
        exported.altered_content();
        exported.duplicated();
        exported.reordered();
        exported.dropped_offsets();
        exported.appended_offsets();
        let last_link = exported.chain_in_offset_order();
        exported.end_against_manifest(last_link);
        exported.first_source_offset();
        loaded.integrity.append(&mut exported.findings);
        let stream = exported.decode(&mut loaded.integrity, &mut loaded.campaigns);
        loaded.streams.push(stream);
    }
    loaded
        .integrity
        .extend(unlisted_partitions(dir, &manifest)?);
    meter.finish();
    Ok(loaded)
}

/// One partition of an export as found on disk, checked against its manifest entry.
struct ExportedPartition<'m> {
    expected: &'m ManifestPartition,
    /// Every record that decoded, in slot order.
    found: Vec<Found>,
    /// Slots whose bytes are not a record (already reported as altered).
    damaged: BTreeSet<u64>,
    /// The first copy of each export offset (an index into `found`), in offset order: the
    /// records the partition holds, once each. Filled by [`Self::duplicated`].
    first_copy: BTreeMap<u64, usize>,
    /// Signs of tampering in this partition, in the order they were found.
    findings: Vec<Finding>,
}

impl<'m> ExportedPartition<'m> {
    /// Reads the partition's records without opening the log; a slot that does not decode is
    /// found altered, and a partition the manifest counts records for but that is not on disk
    /// is found dropped whole.
    fn scan(
        dir: &Path,
        expected: &'m ManifestPartition,
        meter: &mut Progress,
    ) -> Result<Self, AuditError> {
        let mut exported = ExportedPartition {
            expected,
            found: Vec::new(),
            damaged: BTreeSet::new(),
            first_copy: BTreeMap::new(),
            findings: Vec::new(),
        };
        let partition_dir = dir
            .join(&expected.topic)
            .join(expected.partition.to_string());
        if partition_dir.is_dir() {
            scan_partition_readonly(
                &partition_dir,
                FileLogConfig::DEFAULT_RECORD_BYTES_MAX,
                |scanned: ScannedRecord| {
                    meter.add(1);
                    exported.take(scanned);
                },
            )?;
        } else if expected.records > 0 {
            let position = exported.at(expected.first_offset.unwrap_or(0), Some(0));
            push(
                &mut exported.findings,
                "dropped",
                Some(position),
                "the whole partition is missing".to_owned(),
            );
        }
        Ok(exported)
    }

    /// Keeps one scanned slot: a record, or damage at its place.
    fn take(&mut self, scanned: ScannedRecord) {
        match scanned.decoded {
            Ok((offset, _, record)) => self.found.push(parse_found(scanned.index, offset, record)),
            Err(reason) => {
                self.damaged.insert(scanned.index);
                let position = self.at(scanned.index, Some(scanned.index));
                push(
                    &mut self.findings,
                    "altered",
                    Some(position),
                    format!(
                        "record slot {} at byte {} of {}: {reason}",
                        scanned.index,
                        scanned.position,
                        scanned.path.display()
                    ),
                );
            }
        }
    }

    /// Altered: content that does not match its own link (edited, checksum recomputed).
    fn altered_content(&mut self) {
        for f in &self.found {
            if !f.consistent() {
                let what = if f.chain.is_none() {
                    "has no chain link"
                } else {
                    "does not match its chain link: its content was changed"
                };
                let position = self.position_of(f);
                push(
                    &mut self.findings,
                    "altered",
                    Some(position),
                    format!("export record {} {what}", f.export_offset),
                );
            }
        }
    }

    /// Duplicated: an offset seen before, or a link seen before on a record that matches it
    /// (an inconsistent record's link proves nothing). Every other record is a first copy.
    fn duplicated(&mut self) {
        let mut links: HashMap<[u8; LINK_BYTES], u64> = HashMap::new();
        for (i, f) in self.found.iter().enumerate() {
            let copy_of = self
                .first_copy
                .get(&f.export_offset)
                .map(|_| f.export_offset)
                .or_else(|| {
                    f.chain
                        .and_then(|(_, l)| links.get(&l).copied())
                        .filter(|_| f.consistent())
                });
            if let Some(original) = copy_of {
                let position = self.position_of(f);
                push(
                    &mut self.findings,
                    "duplicated",
                    Some(position),
                    format!(
                        "record slot {} is a second copy of export record {original}",
                        f.slot
                    ),
                );
                continue;
            }
            self.first_copy.insert(f.export_offset, i);
            if let Some((_, l)) = f.chain {
                links.insert(l, f.export_offset);
            }
        }
    }

    /// Reordered: a record found after one with a higher offset.
    fn reordered(&mut self) {
        let mut highest: Option<u64> = None;
        for (i, f) in self.found.iter().enumerate() {
            if self.first_copy.get(&f.export_offset) != Some(&i) {
                continue; // a second copy, already reported
            }
            if let Some(h) = highest.filter(|&h| f.export_offset < h) {
                let position = self.position_of(f);
                push(
                    &mut self.findings,
                    "reordered",
                    Some(position),
                    format!(
                        "export record {} is stored at slot {}, after export record {h}",
                        f.export_offset, f.slot
                    ),
                );
            }
            highest = highest.max(Some(f.export_offset));
        }
    }

    /// Dropped: offsets the manifest counts that are nowhere, one finding per run of them (a
    /// damaged slot accounts for the offset of its place). The runs are the gaps between the
    /// offsets found, so the work is bounded by what is on disk, not by the manifest's count.
    fn dropped_offsets(&mut self) {
        let present: BTreeSet<u64> = self
            .first_copy
            .keys()
            .chain(&self.damaged)
            .copied()
            .collect();
        for (a, b) in gaps(&present, self.expected.records) {
            let detail = if a == b {
                format!("export record {a} is missing")
            } else {
                format!("export records {a}..={b} are missing")
            };
            let position = self.at(a, Some(a));
            push(&mut self.findings, "dropped", Some(position), detail);
        }
    }

    /// Appended: offsets beyond the count the manifest lists.
    fn appended_offsets(&mut self) {
        let records = self.expected.records;
        for (&o, &i) in self.first_copy.range(records..) {
            let position = self.position_of(&self.found[i]);
            push(
                &mut self.findings,
                "appended",
                Some(position),
                format!("export record {o} is beyond the {records} the manifest lists"),
            );
        }
    }

    /// The chain, in offset order: each record must follow the one before it. Returns the last
    /// link on the chain (the partition's head), if any record has one.
    fn chain_in_offset_order(&mut self) -> Option<[u8; LINK_BYTES]> {
        let genesis = genesis(&self.expected.topic, self.expected.partition);
        let mut prev: Option<(u64, [u8; LINK_BYTES])> = None;
        for &i in self.first_copy.values() {
            let f = &self.found[i];
            let Some((stored_prev, stored_link)) = f.chain else {
                continue;
            };
            let expected_prev = match prev {
                None if f.export_offset == 0 => Some(genesis),
                Some((o, l)) if o + 1 == f.export_offset => Some(l),
                _ => None, // a gap, already reported
            };
            if expected_prev.is_some_and(|p| p != stored_prev) && f.consistent() {
                let position = self.position_of(f);
                push(
                    &mut self.findings,
                    "dropped",
                    Some(position),
                    format!(
                        "the chain breaks before export record {}: a record was removed or replaced and the offsets renumbered",
                        f.export_offset
                    ),
                );
            }
            prev = Some((f.export_offset, stored_link));
        }
        prev.map(|(_, l)| l)
    }

    /// The partition's end against the manifest's count and head: records cut off at the end
    /// leave a chain that holds but ends early. Only judged when nothing else was found, which
    /// would already explain the difference.
    fn end_against_manifest(&mut self, last_link: Option<[u8; LINK_BYTES]>) {
        let expected = self.expected;
        let head =
            hex::encode(last_link.unwrap_or_else(|| genesis(&expected.topic, expected.partition)));
        let held = self.first_copy.len() as u64;
        if self.findings.is_empty() && (head != expected.head || held != expected.records) {
            let position = self.at(
                expected.last_offset.unwrap_or(0),
                Some(expected.records.saturating_sub(1)),
            );
            push(
                &mut self.findings,
                "dropped",
                Some(position),
                format!(
                    "the partition ends differently than the manifest says ({held} of {} records, head differs)",
                    expected.records
                ),
            );
        }
    }

    /// The first record's source offset against the manifest's: the chain does not cover
    /// where the range started in the source log.
    fn first_source_offset(&mut self) {
        let Some(first) = self.expected.first_offset else {
            return;
        };
        let Some(f) = self.first_copy.values().next().map(|&i| &self.found[i]) else {
            return;
        };
        if f.export_offset == 0 && f.source_offset != Some(first) {
            let position = self.position_of(f);
            push(
                &mut self.findings,
                "altered",
                Some(position),
                format!(
                    "source offset {:?}, the manifest says {first}",
                    f.source_offset
                ),
            );
        }
    }

    /// The partition's events in offset order, one copy of each; a record that is not an
    /// event is left out and found undecodable.
    fn decode(
        &self,
        integrity: &mut Vec<Finding>,
        campaigns: &mut super::campaign::RecordedCampaigns,
    ) -> Stream {
        let (topic, partition) = (&self.expected.topic, self.expected.partition);
        let mut stream = Stream {
            topic: topic.clone(),
            partition,
            items: Vec::with_capacity(self.first_copy.len()),
        };
        for &i in self.first_copy.values() {
            let f = &self.found[i];
            let position = self.position_of(f);
            let stored = StoredRecord {
                topic: topic.clone(),
                partition,
                offset: position.offset,
                record: f.record.clone(),
            };
            campaigns.count(&stored.record.headers);
            match decode(&stored) {
                Ok(envelope) => stream.items.push(Item {
                    position,
                    envelope,
                    context: false,
                }),
                Err(e) => integrity.push(Finding {
                    code: "undecodable",
                    position: Some(position),
                    detail: super::source::error_chain(&e),
                }),
            }
        }
        stream
    }

    /// A position in this partition.
    fn at(&self, offset: u64, index: Option<u64>) -> Position {
        Position {
            topic: self.expected.topic.clone(),
            partition: self.expected.partition,
            offset,
            index,
        }
    }

    fn position_of(&self, f: &Found) -> Position {
        f.position(&self.expected.topic, self.expected.partition)
    }
}

/// Appended: records in partitions of the exported topics that the manifest does not list.
fn unlisted_partitions(dir: &Path, manifest: &Manifest) -> Result<Vec<Finding>, AuditError> {
    let mut findings = Vec::new();
    for (topic, count) in &manifest.topics {
        for p in 0..*count {
            let listed = manifest
                .partitions
                .iter()
                .any(|e| &e.topic == topic && e.partition == p);
            let partition_dir = dir.join(topic).join(p.to_string());
            if listed || !partition_dir.is_dir() {
                continue;
            }
            let mut extra = 0;
            scan_partition_readonly(
                &partition_dir,
                FileLogConfig::DEFAULT_RECORD_BYTES_MAX,
                |_| extra += 1,
            )?;
            if extra > 0 {
                findings.push(Finding {
                    code: "appended",
                    position: Some(Position {
                        topic: topic.clone(),
                        partition: p,
                        offset: 0,
                        index: Some(0),
                    }),
                    detail: format!("{extra} records in a partition the manifest does not list"),
                });
            }
        }
    }
    Ok(findings)
}

fn push(
    findings: &mut Vec<Finding>,
    code: &'static str,
    position: Option<Position>,
    detail: String,
) {
    findings.push(Finding {
        code,
        position,
        detail,
    });
}

/// The runs of `0..records` that `present` does not hold, as inclusive `(first, last)` pairs:
/// as many steps as `present` has members, whatever `records` says.
fn gaps(present: &BTreeSet<u64>, records: u64) -> Vec<(u64, u64)> {
    let mut next = 0u64;
    let mut out = Vec::new();
    for &o in present.range(..records).chain(std::iter::once(&records)) {
        if o > next {
            out.push((next, o - 1));
        }
        next = o.saturating_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_reads_keys_headers_and_json_strings_but_not_json_numbers() {
        let record = |key: &[u8], value: &[u8], header: &[u8]| Record {
            key: key.to_vec(),
            value: value.to_vec(),
            timestamp_ms: 0,
            headers: vec![("h".to_owned(), header.to_vec())],
        };
        let planted = [
            record(b"9005091234567", b"{}", b""),
            record(b"k", b"{\"a\":[\"x 900509 1234567\"]}", b""),
            record(b"k", b"{\"900509-1234567\":1}", b""),
            record(b"k", b"not json 900509-1234567", b""),
            record(b"k", b"{}", b"900509 - 1234567"),
        ];
        for r in &planted {
            assert!(record_has_resident_number(r), "{r:?}");
        }
        let clean = record(
            b"k",
            b"{\"at_ms\":1610120000000,\"d\":\"2021-08-30\"}",
            b"1",
        );
        assert!(!record_has_resident_number(&clean));
    }

    #[test]
    fn gaps_are_the_runs_not_present_and_cost_what_is_present() {
        let present: BTreeSet<u64> = [1, 2, 3, 7, 9, 10].into();
        assert_eq!(gaps(&present, 12), vec![(0, 0), (4, 6), (8, 8), (11, 11)]);
        assert_eq!(gaps(&present, 3), vec![(0, 0)]);
        assert_eq!(gaps(&BTreeSet::new(), 0), vec![]);
        // A manifest's count of u64::MAX costs one gap, not 2^64 steps.
        assert_eq!(gaps(&present, u64::MAX).last(), Some(&(11, u64::MAX - 1)));
    }
}
