//! The auditors' replay: proves from the log alone that every reservation was fair and lawful.
//!
//! A range of the log (from Kafka, an embedded data directory, or an export made by
//! [`export`]) is read into one stream per partition ([`source`]), put in causal order (a
//! follow-up after the event that caused it; otherwise by time), and folded three ways:
//!
//! - by [`rules::RuleBook`], the auditor's own, independent reading of every rule;
//! - by the live read side, [`ReadModel`], whose digest must equal the live projections'
//!   (compared row by row with PostgreSQL when given);
//! - by the live domain, [`System::apply`], whose state gets a digest too.
//!
//! Not here: deciding anything. The auditor never calls a `decide` function.

pub mod campaign;
pub mod cli;
pub mod commands;
pub mod draw;
pub mod export;
pub mod rules;
pub mod source;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::projection::postgres::ProjectionError;
use crate::projection::{ReadModel, RowDiff, diff_models};
use yeyak_domain::{Campaign, Envelope, Invariant, System};
use yeyak_log::LogError;

/// The most findings of one kind listed one by one (the rest are counted).
pub const FINDINGS_LISTED_MAX: usize = 50;
/// The most row differences with PostgreSQL listed one by one.
pub const ROW_DIFFS_LISTED_MAX: usize = 1000;
/// How often progress is printed on long logs.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Where a record is: its topic, partition and offset in the log it came from, and, for an
/// export, its index in the exported partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)?;
        if let Some(index) = self.index {
            write!(f, " (export record {index})")?;
        }
        Ok(())
    }
}

/// Something the audit found: a broken rule, a tampered record, a difference. `code` is stable
/// and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub position: Option<Position>,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.position {
            Some(p) => write!(f, "{} at {p}: {}", self.code, self.detail),
            None => write!(f, "{}: {}", self.code, self.detail),
        }
    }
}

/// One decoded event with its position.
#[derive(Debug, Clone)]
pub struct Item {
    pub position: Position,
    pub envelope: Envelope,
    /// History before the range: folded so the range is judged against the true state, but not
    /// judged itself.
    pub context: bool,
}

/// One partition's events of the range, in log order.
#[derive(Debug, Clone)]
pub struct Stream {
    pub topic: String,
    pub partition: u32,
    pub items: Vec<Item>,
}

/// A log range read into memory.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Where it was read from, for people.
    pub source: String,
    pub streams: Vec<Stream>,
    /// The range is the whole log (every partition, from its first record to its end).
    pub whole_log: bool,
    /// Every partition read holds its history from its first record (judged or as context).
    pub from_start: bool,
    /// Every partition of the ledger's topics was read.
    pub every_partition: bool,
    /// Damage and tampering found while reading.
    pub integrity: Vec<Finding>,
    /// The command topics (Kafka only, whole-log audits only).
    pub commands: Option<commands::CommandRecords>,
    /// The campaigns the records read say they were decided under.
    pub campaigns: campaign::RecordedCampaigns,
}

impl Loaded {
    pub fn events(&self) -> u64 {
        self.streams.iter().map(|s| s.items.len() as u64).sum()
    }

    /// Events inside the range (judged), without the history read before it.
    pub fn judged(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.items.iter().filter(|i| !i.context).count() as u64)
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the event log failed")]
    Log(#[from] LogError),
    #[error("PostgreSQL failed")]
    Postgres(#[source] Box<ProjectionError>),
    #[error("cannot connect to PostgreSQL")]
    PostgresConnect(#[source] crate::pg::PgConnectError),
    #[error("I/O error on {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad range: {0}")]
    BadRange(String),
    #[error("{} is not an export: {reason}", path.display())]
    NotAnExport { path: PathBuf, reason: String },
    #[error("{} must be a new or empty directory", path.display())]
    OutputNotEmpty { path: PathBuf },
    #[error(
        "refusing to export: the record at {position} contains text shaped like a resident registration number"
    )]
    RegistrationNumberShaped { position: Position },
    #[error("cannot encode the report")]
    Json(#[source] serde_json::Error),
    /// The read-only open of a data directory found damage (`count` in all; `damage` is the
    /// first), and the operation needs the whole log. Nothing was written.
    #[error(
        "refusing to export a damaged log ({count} damage found, `replay --data` lists each; nothing was written): {damage}"
    )]
    LogDamaged {
        damage: Box<yeyak_log::Damage>,
        count: usize,
    },
    #[error("the campaign file is refused")]
    CampaignFile(#[from] yeyak_log::CampaignFileError),
    /// The log was written under another campaign than the one the audit was given: its rules
    /// would be judged against the wrong calendar.
    #[error(
        "refusing to audit: the log was decided under campaign {recorded} ({events} events say so), not under the given campaign {given}; give the campaign file it was written under"
    )]
    OtherCampaign {
        recorded: yeyak_domain::CampaignStamp,
        given: yeyak_domain::CampaignStamp,
        events: u64,
    },
}

impl AuditError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Log(_) => "log_failed",
            AuditError::Postgres(_) | AuditError::PostgresConnect(_) => "postgres_failed",
            AuditError::Io { .. } => "io_failed",
            AuditError::BadRange(_) => "bad_range",
            AuditError::NotAnExport { .. } => "not_an_export",
            AuditError::OutputNotEmpty { .. } => "output_not_empty",
            AuditError::RegistrationNumberShaped { .. } => "resident_number_in_export",
            AuditError::Json(_) => "report_failed",
            AuditError::LogDamaged { .. } => "log_damaged",
            AuditError::OtherCampaign { .. } => "other_campaign",
            AuditError::CampaignFile(e) => e.code(),
        }
    }
}

impl From<ProjectionError> for AuditError {
    fn from(e: ProjectionError) -> AuditError {
        AuditError::Postgres(Box::new(e))
    }
}

pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Progress of a long job on stderr: at most one line per [`PROGRESS_INTERVAL`].
pub struct Progress {
    label: &'static str,
    enabled: bool,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: u64, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            enabled,
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.enabled && self.last.elapsed() >= PROGRESS_INTERVAL {
            self.last = Instant::now();
            self.print();
        }
    }

    fn print(&self) {
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if self.total > 0 {
            let percent = self.done as f64 * 100.0 / self.total as f64;
            eprintln!(
                "{}: {} of {} ({percent:.0}%), {rate:.0}/s",
                self.label, self.done, self.total
            );
        } else {
            eprintln!("{}: {}, {rate:.0}/s", self.label, self.done);
        }
    }

    pub fn finish(&self) {
        if self.enabled {
            self.print();
        }
    }
}

/// The order the events are folded in: each partition in log order; across partitions, a
/// decision that answers a follow-up comes after the event that caused it (its command id is
/// that event's id), and otherwise the earliest decision first. Returns `(stream, item)` pairs,
/// and a finding for each answer that had to be taken before its cause (a broken log).
pub fn causal_order(streams: &[Stream]) -> (Vec<(u32, u32)>, Vec<Finding>) {
    let all_ids: HashSet<uuid::Uuid> = streams
        .iter()
        .flat_map(|s| s.items.iter().map(|i| i.envelope.event_id))
        .collect();
    let total: usize = streams.iter().map(|s| s.items.len()).sum();
    let mut seen: HashSet<uuid::Uuid> = HashSet::with_capacity(all_ids.len());
    let mut heads = vec![0usize; streams.len()];
    let mut order = Vec::with_capacity(total);
    let mut findings = Vec::new();
    loop {
        let mut best: Option<(bool, i64, usize)> = None;
        for (s, stream) in streams.iter().enumerate() {
            let Some(item) = stream.items.get(heads[s]) else {
                continue;
            };
            let id = item.envelope.command_id;
            let ready = !all_ids.contains(&id) || seen.contains(&id);
            let key = (!ready, item.envelope.occurred_at_ms, s);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let Some((blocked, _, s)) = best else { break };
        let items = &streams[s].items;
        let command = items[heads[s]].envelope.command_id;
        if blocked {
            findings.push(Finding {
                code: "answered_once",
                position: Some(items[heads[s]].position.clone()),
                detail: format!("answers follow-up {command}, whose cause comes later in the log"),
            });
        }
        while let Some(item) = items
            .get(heads[s])
            .filter(|i| i.envelope.command_id == command)
        {
            seen.insert(item.envelope.event_id);
            order.push((s as u32, heads[s] as u32));
            heads[s] += 1;
        }
    }
    (order, findings)
}

/// What the audit concluded.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub source: String,
    /// The campaign's name.
    pub campaign: String,
    /// The campaign judged against, and how many events recorded it.
    pub campaign_check: campaign::CampaignCheck,
    pub whole_log: bool,
    pub events: u64,
    /// Of `events`, those inside the range (the rest is history before it, folded not judged).
    pub judged: u64,
    pub partitions: Vec<PartitionSummary>,
    /// Digest of each projection, by name; equal logs give equal digests anywhere.
    pub digests: BTreeMap<String, String>,
    pub row_counts: BTreeMap<String, usize>,
    pub rules: Vec<RuleSummary>,
    pub integrity: Vec<Finding>,
    pub violations: Vec<Finding>,
    pub notes: Vec<Finding>,
    /// Doses in clinics, in transit, registered, at the end of the range.
    pub doses: DoseTotals,
    /// How the command records were answered (Kafka, whole log).
    pub commands: Option<commands::CommandCounts>,
    pub postgres: Option<PostgresComparison>,
    pub elapsed_ms: u64,
    pub events_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub topic: String,
    pub partition: u32,
    pub events: u64,
    pub first_offset: Option<u64>,
    pub last_offset: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleSummary {
    pub code: &'static str,
    pub rule: &'static str,
    pub checked: u64,
    pub violations: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DoseTotals {
    pub in_clinics: i64,
    pub in_transit: i64,
    pub registered: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresComparison {
    pub digest: String,
    pub equal: bool,
    pub differences: usize,
    /// The first [`ROW_DIFFS_LISTED_MAX`] differences: replayed row, then the database's.
    pub rows: Vec<String>,
}

impl AuditReport {
    /// No tampering, no broken rule, no difference with PostgreSQL.
    pub fn ok(&self) -> bool {
        self.integrity.is_empty()
            && self.violations.is_empty()
            && self.postgres.as_ref().is_none_or(|p| p.equal)
    }

    pub fn to_json(&self) -> Result<String, AuditError> {
        serde_json::to_string_pretty(self).map_err(AuditError::Json)
    }

    /// The human summary.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "yeyak replay: {} ({})", self.source, self.campaign)?;
        writeln!(out, "  {}", self.campaign_check.describe())?;
        writeln!(
            out,
            "  {} events in {} partitions{}, replayed in {:.2} s ({:.0} events/s)",
            self.events,
            self.partitions.len(),
            if self.whole_log {
                ", the whole log"
            } else {
                ", a range of the log"
            },
            self.elapsed_ms as f64 / 1000.0,
            self.events_per_s
        )?;
        writeln!(
            out,
            "\nProjections (digest: same log, same digest, on any machine and either backend)"
        )?;
        for (name, digest) in &self.digests {
            writeln!(out, "  {name:<28} {digest}")?;
        }
        writeln!(out, "\nRules, checked against the whole history")?;
        let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
        for rule in &self.rules {
            writeln!(
                out,
                "  [{}] {:<84} {:>9} checks",
                mark(rule.violations == 0),
                rule.rule,
                rule.checked
            )?;
        }
        writeln!(
            out,
            "  doses: {} in clinics + {} in transit = {} registered",
            self.doses.in_clinics, self.doses.in_transit, self.doses.registered
        )?;
        if let Some(c) = &self.commands {
            writeln!(
                out,
                "  commands: {} records, {} submitted, {} answered, {} with no change, {} unanswered, {} pending, {} answered twice, {} resent, {} dead-lettered",
                c.records,
                c.submitted,
                c.answered,
                c.no_change,
                c.unanswered,
                c.pending,
                c.doubly_answered,
                c.resent,
                c.dead_lettered
            )?;
        }
        let listed =
            |out: &mut dyn Write, title: &str, findings: &[Finding]| -> std::io::Result<()> {
                if findings.is_empty() {
                    return Ok(());
                }
                writeln!(out, "\n{title} ({})", findings.len())?;
                for f in findings.iter().take(FINDINGS_LISTED_MAX) {
                    writeln!(out, "  {f}")?;
                }
                if findings.len() > FINDINGS_LISTED_MAX {
                    writeln!(
                        out,
                        "  ... and {} more (see the JSON report)",
                        findings.len() - FINDINGS_LISTED_MAX
                    )?;
                }
                Ok(())
            };
        listed(out, "Tampering and damage", &self.integrity)?;
        listed(out, "Violations", &self.violations)?;
        listed(out, "Notes", &self.notes)?;
        if let Some(pg) = &self.postgres {
            writeln!(out, "\nPostgreSQL read models: digest {}", pg.digest)?;
            if pg.equal {
                writeln!(out, "  [ok  ] equal to the replay, row for row")?;
            } else {
                writeln!(
                    out,
                    "  [FAIL] {} rows differ (replay != database):",
                    pg.differences
                )?;
                for row in pg.rows.iter().take(FINDINGS_LISTED_MAX) {
                    writeln!(out, "    {row}")?;
                }
            }
        }
        writeln!(
            out,
            "\n{}",
            if self.ok() {
                "AUDIT PASSED"
            } else {
                "AUDIT FAILED"
            }
        )?;
        Ok(())
    }
}

/// Options of one audit. Its `Debug` shows no password.
#[derive(Clone, Default)]
pub struct AuditOptions {
    /// Compare with the read models of this database (URL; pick a schema with
    /// `options=-c search_path=...`).
    pub postgres: Option<String>,
    /// Print progress on stderr.
    pub progress: bool,
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field(
                "postgres",
                &self.postgres.as_deref().map(crate::pg::shown_url),
            )
            .field("progress", &self.progress)
            .finish()
    }
}

/// Everything the replay rebuilt, for callers that want more than the report.
pub struct Replayed {
    pub report: AuditReport,
    pub model: ReadModel,
    /// `None` when the log holds an event the live domain refuses to fold (it asserts the very
    /// invariant the event breaks).
    pub system: Option<System>,
}

/// Replays `loaded` and checks it: rules, digests, and PostgreSQL when asked.
pub fn audit(
    loaded: &Loaded,
    campaign: &Campaign,
    options: &AuditOptions,
) -> Result<Replayed, AuditError> {
    let started = Instant::now();
    let campaign_check = loaded.campaigns.check(&campaign.stamp())?;
    let (order, order_findings) = causal_order(&loaded.streams);
    let mut rules = rules::RuleBook::new(campaign, loaded.every_partition && loaded.from_start);
    let mut model = ReadModel::new();
    let mut system = Some(System::new(campaign.clone()));
    let mut refused: Option<Finding> = None;
    let mut progress = Progress::new("replay", order.len() as u64, options.progress);
    for (n, &(s, i)) in order.iter().enumerate() {
        let item = &loaded.streams[s as usize].items[i as usize];
        let before = rules.violations.len();
        rules.judging = !item.context;
        rules.observe(&item.position, &item.envelope);
        model.apply(&item.envelope);
        let breaks_rule = rules.violations.len() > before;
        if let Some(live) = system.as_mut() {
            // The live state asserts its invariants: an event that breaks one is not folded.
            let folded = !breaks_rule
                && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    live.apply(&item.envelope)
                }))
                .is_ok();
            if !folded {
                system = None;
                refused = Some(Finding {
                    code: "domain_state_unavailable",
                    position: Some(item.position.clone()),
                    detail: "the live domain state cannot fold this event (it breaks an invariant the state asserts)"
                        .to_owned(),
                });
            }
        }
        if n % 4096 == 4095 {
            progress.add(4096);
        }
    }
    progress.add(order.len() as u64 % 4096);
    progress.finish();
    let (in_clinics, in_transit, registered) = rules.finish();

    let mut digests = BTreeMap::new();
    digests.insert("read_model".to_owned(), model.digest());
    for (table, digest) in table_digests(&model) {
        digests.insert(format!("read_model.{table}"), digest);
    }
    let mut notes = rules.notes.clone();
    match &system {
        Some(system) => {
            digests.insert("domain_state".to_owned(), system_digest(system));
        }
        None => {
            digests.insert("domain_state".to_owned(), "unavailable".to_owned());
            notes.extend(refused);
        }
    }
    let mut violations = order_findings;
    violations.extend(rules.violations.iter().cloned());
    let mut checks = rules.checks.clone();
    let command_counts = loaded.commands.as_ref().map(|records| {
        let events = loaded
            .streams
            .iter()
            .flat_map(|s| s.items.iter().map(|i| &i.envelope));
        let (counts, found, noted) = commands::check(records, events);
        violations.extend(found);
        notes.extend(noted);
        checks.insert(Invariant::CommandRecordAnswered, counts.records);
        counts
    });
    if !loaded.from_start {
        // Without the history before the range, a rule that depends on it cannot be judged.
        notes.push(Finding {
            code: "partial_history",
            position: None,
            detail: format!(
                "the range does not start at the beginning of the log: {} findings that may depend on earlier history are listed as notes",
                violations.len()
            ),
        });
        notes.append(&mut violations);
    }
    // The command topics exist on Kafka only: elsewhere that rule is not listed at all.
    let judged_rules = Invariant::ALL.iter().filter(|invariant| {
        **invariant != Invariant::CommandRecordAnswered || command_counts.is_some()
    });
    let rule_summaries = judged_rules
        .map(|invariant| RuleSummary {
            code: invariant.code(),
            rule: invariant.rule(),
            checked: checks.get(invariant).copied().unwrap_or(0),
            violations: violations
                .iter()
                .filter(|v| v.code == invariant.code())
                .count() as u64,
        })
        .collect();

    let postgres = match &options.postgres {
        Some(url) => Some(compare_with_postgres(&model, url)?),
        None => None,
    };
    let elapsed = started.elapsed();
    let events = loaded.events();
    let report = AuditReport {
        source: loaded.source.clone(),
        campaign: campaign.name.clone(),
        campaign_check,
        whole_log: loaded.whole_log,
        events,
        judged: loaded.judged(),
        partitions: loaded
            .streams
            .iter()
            .map(|s| PartitionSummary {
                topic: s.topic.clone(),
                partition: s.partition,
                events: s.items.len() as u64,
                first_offset: s.items.first().map(|i| i.position.offset),
                last_offset: s.items.last().map(|i| i.position.offset),
            })
            .collect(),
        digests,
        row_counts: model
            .row_counts()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        rules: rule_summaries,
        integrity: loaded.integrity.clone(),
        violations,
        notes,
        doses: DoseTotals {
            in_clinics,
            in_transit,
            registered,
        },
        commands: command_counts,
        postgres,
        elapsed_ms: elapsed.as_millis() as u64,
        events_per_s: events as f64 / elapsed.as_secs_f64().max(1e-9),
    };
    Ok(Replayed {
        report,
        model,
        system,
    })
}

fn compare_with_postgres(model: &ReadModel, url: &str) -> Result<PostgresComparison, AuditError> {
    let mut client = crate::pg::connect(url).map_err(AuditError::PostgresConnect)?;
    let live = crate::projection::postgres::read_model(&mut client)?;
    let differences: Vec<RowDiff> = diff_models(model, &live);
    Ok(PostgresComparison {
        digest: live.digest(),
        equal: differences.is_empty(),
        differences: differences.len(),
        rows: differences
            .iter()
            .take(ROW_DIFFS_LISTED_MAX)
            .map(ToString::to_string)
            .collect(),
    })
}

/// SHA-256 of each table's section of [`ReadModel::canonical_text`].
pub fn table_digests(model: &ReadModel) -> Vec<(String, String)> {
    let text = model.canonical_text();
    let mut out = Vec::new();
    let mut current: Option<(String, Sha256)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("# ") {
            if let Some((name, hash)) = current.take() {
                out.push((name, hex::encode(hash.finalize())));
            }
            let name = header
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            current = Some((name, Sha256::new()));
        }
        if let Some((_, hash)) = current.as_mut() {
            hash.update(line.as_bytes());
        }
    }
    if let Some((name, hash)) = current {
        out.push((name, hex::encode(hash.finalize())));
    }
    out
}

/// A digest of the live domain state (every partition's state and the dose totals), from a
/// canonical text with every map in key order.
pub fn system_digest(system: &System) -> String {
    let mut text = String::new();
    let mut subjects: Vec<_> = system.subjects.iter().collect();
    subjects.sort_by_key(|(id, _)| **id);
    for (id, state) in subjects {
        let _ = writeln!(text, "subject {id} {state:?}");
    }
    for (id, clinic) in &system.clinics {
        let _ = writeln!(
            text,
            "clinic {id} {:?} released={} shares={} {:?}",
            clinic.profile, clinic.released, clinic.share_count, clinic.dates
        );
        let mut held: Vec<_> = clinic.held.iter().collect();
        held.sort_by_key(|(r, _)| **r);
        for (r, h) in held {
            let _ = writeln!(text, "  held {r} {h:?}");
        }
    }
    let room = &system.waiting_room;
    let _ = writeln!(
        text,
        "waiting_room next={} admitted={} {:?}",
        room.next_ticket, room.admitted_total, room.waiting
    );
    // Only once an operator recorded one: a log without controls keeps its digest.
    if room.control != Default::default() {
        let _ = writeln!(text, "  control {:?}", room.control);
    }
    let mut tickets: Vec<_> = room.tickets().collect();
    tickets.sort_by_key(|(s, _)| *s);
    for (s, t) in tickets {
        let _ = writeln!(text, "  ticket {s} {t:?}");
    }
    let _ = writeln!(text, "totals {:?}", system.totals);
    hex::encode(Sha256::digest(text.as_bytes()))
}
