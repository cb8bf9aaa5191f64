//! The command lines of `yeyak replay` (also the `yeyak-replay` binary of `replay/`), `yeyak
//! export` and `yeyak rebalance`: clap arguments and the runs behind them, shared by both
//! binaries so they cannot drift apart. Exit codes are the binaries' business.
//!
//! `--data DIR` is opened read-only ([`FileLog::open_read_only`]): an audit never changes the
//! log it audits. The replay lists each damage it found as a `damaged` finding (so it fails,
//! exit code 2); the export refuses a damaged log ([`AuditError::LogDamaged`], code
//! `log_damaged`) rather than hand over a part of it that looks whole.

use std::io::Write;
use std::path::PathBuf;

use super::export::ExportSummary;
use super::source::{Range, damage_finding, load};
use super::{AuditError, AuditOptions, AuditReport, Loaded};
use yeyak_log::{Damage, EventLog, FileLog, FileLogConfig, KafkaConfig, KafkaLog};

/// Where the log is: an embedded data directory or a Kafka cluster, and which part of it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// An embedded data directory (the ledger's file log, or an export opened as a plain log),
    /// opened read-only: nothing on disk changes, damage is reported.
    #[arg(long, conflicts_with = "kafka")]
    pub data: Option<PathBuf>,
    /// Kafka bootstrap servers: read the event topics there.
    #[arg(long)]
    pub kafka: Option<String>,
    /// Prefix of every topic on the cluster.
    #[arg(long, default_value = "")]
    pub topic_prefix: String,
    /// Offsets to read of one partition, `TOPIC:PARTITION=FROM..TO` (to exclusive; either bound
    /// may be left out). Repeatable; other partitions are read whole unless --only-ranges.
    #[arg(long = "range", value_name = "TOPIC:PARTITION=FROM..TO")]
    pub ranges: Vec<String>,
    /// Read only the partitions named by --range.
    #[arg(long)]
    pub only_ranges: bool,
    /// Only records with a timestamp at or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records with a timestamp before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

/// An opened log of either kind. A data directory is always open read-only.
pub enum OpenLog {
    File(FileLog),
    Kafka(Box<KafkaLog>),
}

impl OpenLog {
    pub fn as_log(&self) -> &dyn EventLog {
        match self {
            OpenLog::File(log) => log,
            OpenLog::Kafka(log) => log.as_ref(),
        }
    }

    /// The damage the read-only open of a data directory found (none on Kafka).
    pub fn damage(&self) -> &[Damage] {
        match self {
            OpenLog::File(log) => log.damage(),
            OpenLog::Kafka(_) => &[],
        }
    }

    /// Fails with [`AuditError::LogDamaged`] if the open found any damage.
    pub fn refuse_damage(&self) -> Result<(), AuditError> {
        match self.damage() {
            [] => Ok(()),
            [first, ..] => Err(AuditError::LogDamaged {
                damage: Box::new(first.clone()),
                count: self.damage().len(),
            }),
        }
    }
}

/// An instant given as `--{field}` in RFC 3339, or a `BadRange` error that names the flag.
pub fn parse_instant(field: &str, text: &str) -> Result<i64, AuditError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| AuditError::BadRange(format!("--{field} `{text}` is not RFC 3339: {e}")))
}

impl LogArgs {
    pub fn range(&self) -> Result<Range, AuditError> {
        let mut range = Range {
            only_named: self.only_ranges,
            ..Range::default()
        };
        for text in &self.ranges {
            range.add_partition_range(text)?;
        }
        range.from_ms = self
            .since
            .as_deref()
            .map(|t| parse_instant("since", t))
            .transpose()?;
        range.to_ms = self
            .until
            .as_deref()
            .map(|t| parse_instant("until", t))
            .transpose()?;
        Ok(range)
    }

    /// Opens the log (a data directory read-only: see [`OpenLog::damage`]), and says what it
    /// is for people.
    pub fn open(&self, client_id: &str) -> Result<(OpenLog, String), AuditError> {
        match (&self.data, &self.kafka) {
            (Some(dir), None) => {
                if !dir.is_dir() {
                    return Err(AuditError::Io {
                        path: dir.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no such directory",
                        ),
                    });
                }
                Ok((
                    OpenLog::File(FileLog::open_read_only(FileLogConfig::new(dir))?),
                    format!("data {}", dir.display()),
                ))
            }
            (None, Some(bootstrap)) => {
                let config = KafkaConfig {
                    topic_prefix: self.topic_prefix.clone(),
                    ..KafkaConfig::new(bootstrap, client_id)
                };
                let what = format!("kafka {bootstrap} prefix {:?}", self.topic_prefix);
                Ok((OpenLog::Kafka(Box::new(KafkaLog::connect(config)?)), what))
            }
            _ => Err(AuditError::BadRange(
                "name the log: --data DIR or --kafka SERVERS (or --from-export DIR)".into(),
            )),
        }
    }
}

/// `yeyak replay`. Its `Debug` shows no password.
#[derive(Clone, Default, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// An export made by `yeyak export` (checked for tampering first; works with no broker).
    #[arg(long, conflicts_with_all = ["data", "kafka"])]
    pub from_export: Option<PathBuf>,
    /// Compare the replayed read models with this database's, row by row (URL; a schema can be
    /// chosen with `?options=-c%20search_path%3D<schema>`).
    #[arg(long)]
    pub postgres: Option<String>,
    /// Write the JSON report to this file (`-`: to stdout, instead of the summary).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The campaign calendar (TOML); the built-in 2021 18-49 campaign by default.
    #[arg(long)]
    pub campaign: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl std::fmt::Debug for ReplayArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayArgs")
            .field("log", &self.log)
            .field("from_export", &self.from_export)
            .field(
                "postgres",
                &self.postgres.as_deref().map(crate::pg::shown_url),
            )
            .field("json", &self.json)
            .field("campaign", &self.campaign)
            .field("quiet", &self.quiet)
            .finish()
    }
}

/// Reads the log the arguments name. Damage of a data directory comes first among the
/// integrity findings.
pub fn load_log(args: &ReplayArgs) -> Result<Loaded, AuditError> {
    match &args.from_export {
        Some(dir) => {
            if !args.log.ranges.is_empty() || args.log.since.is_some() || args.log.until.is_some() {
                return Err(AuditError::BadRange(
                    "an export is replayed whole; ranges are chosen at export".into(),
                ));
            }
            super::export::read_export(dir, !args.quiet)
        }
        None => {
            let (log, what) = args.log.open("yeyak-replay")?;
            let mut loaded = load(log.as_log(), &args.log.range()?, what, !args.quiet)?;
            if loaded.whole_log {
                loaded.commands = super::commands::load(log.as_log())?;
            }
            let mut integrity: Vec<_> = log.damage().iter().map(damage_finding).collect();
            integrity.append(&mut loaded.integrity);
            loaded.integrity = integrity;
            Ok(loaded)
        }
    }
}

/// Runs a replay: prints the summary (or the JSON) to `out`, writes the JSON report if asked.
pub fn replay(args: &ReplayArgs, out: &mut dyn Write) -> Result<AuditReport, AuditError> {
    let campaign = yeyak_log::load_campaign(args.campaign.as_deref())?;
    let loaded = load_log(args)?;
    let options = AuditOptions {
        postgres: args.postgres.clone(),
        progress: !args.quiet,
    };
    let report = super::audit(&loaded, &campaign, &options)?.report;
    let io = |e| AuditError::Io {
        path: PathBuf::from("-"),
        source: e,
    };
    match args.json.as_deref() {
        Some(path) if path.as_os_str() == "-" => {
            writeln!(out, "{}", report.to_json()?).map_err(io)?
        }
        Some(path) => {
            std::fs::write(path, report.to_json()? + "\n").map_err(super::io_error(path))?;
            report.print(out).map_err(io)?;
        }
        None => report.print(out).map_err(io)?,
    }
    Ok(report)
}

/// `yeyak export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// The directory to write (new or empty).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub quiet: bool,
}

/// Runs an export. A damaged data directory is refused before anything is written: an export
/// of the part before the damage would look whole to whoever receives it.
pub fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<ExportSummary, AuditError> {
    let (log, what) = args.log.open("yeyak-export")?;
    log.refuse_damage()?;
    let summary = super::export::export(
        log.as_log(),
        &args.log.range()?,
        &args.out,
        what,
        !args.quiet,
    )?;
    let io = |e| AuditError::Io {
        path: PathBuf::from("-"),
        source: e,
    };
    writeln!(
        out,
        "exported {} records to {}",
        summary.manifest.records_total,
        summary.dir.display()
    )
    .map_err(io)?;
    for p in &summary.manifest.partitions {
        let offsets = match (p.first_offset, p.last_offset) {
            (Some(first), Some(last)) => format!("offsets {first}..={last}"),
            _ => "empty".to_owned(),
        };
        writeln!(
            out,
            "  {:<20} {:>3} {:>10} records  {offsets}",
            p.topic, p.partition, p.records
        )
        .map_err(io)?;
    }
    writeln!(
        out,
        "manifest sha256 {} (hand it over apart from the files)",
        summary.manifest_sha256
    )
    .map_err(io)?;
    Ok(summary)
}
