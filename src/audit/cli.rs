//! The command lines of `yeyak replay` (also the `yeyak-replay` binary of `replay/`), `yeyak
//! export` and `yeyak rebalance`: clap arguments and the runs behind them, shared by both
//! binaries so they cannot drift apart. Exit codes are the binaries' business.

use std::io::Write;
use std::path::PathBuf;

use super::export::ExportSummary;
use super::source::{Range, load};
use super::{AuditError, AuditOptions, AuditReport, Loaded};
use crate::domain::{Campaign, ClinicId};
use crate::ledger::{TOPIC_CLINIC, TOPIC_SUBJECT, Topology};
use crate::log::{EventLog, FileLog, FileLogConfig, KafkaConfig, KafkaLog};
use crate::projection::ReadModel;
use crate::rebalance::{self, Applied, Plan, Policy, RebalanceError};

/// Where the log is: an embedded data directory or a Kafka cluster, and which part of it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// An embedded data directory (the ledger's file log, or an export opened as a plain log).
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

/// An opened log of either kind.
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
}

fn parse_instant(field: &str, text: &str) -> Result<i64, AuditError> {
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

    /// Opens the log, and says what it is for people.
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
                    OpenLog::File(FileLog::open(FileLogConfig::new(dir))?),
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

fn campaign(path: &Option<PathBuf>) -> Result<Campaign, AuditError> {
    match path {
        None => Ok(Campaign::default_2021()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(super::io_error(path))?;
            Campaign::from_toml(&text)
                .map_err(|e| AuditError::BadRange(format!("campaign {}: {e}", path.display())))
        }
    }
}

/// `yeyak replay`.
#[derive(Debug, Clone, Default, clap::Args)]
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

/// Reads the log the arguments name.
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
            load(log.as_log(), &args.log.range()?, what, !args.quiet)
        }
    }
}

/// Runs a replay: prints the summary (or the JSON) to `out`, writes the JSON report if asked.
pub fn replay(args: &ReplayArgs, out: &mut dyn Write) -> Result<AuditReport, AuditError> {
    let campaign = campaign(&args.campaign)?;
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

pub fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<ExportSummary, AuditError> {
    let (log, what) = args.log.open("yeyak-export")?;
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

/// `yeyak rebalance`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RebalanceArgs {
    /// The embedded data directory of the ledger (moves are decided by the embedded ledger).
    #[arg(long, conflicts_with = "kafka")]
    pub data: Option<PathBuf>,
    /// Kafka bootstrap servers (moves go through the pipeline; processors must be running).
    #[arg(long)]
    pub kafka: Option<String>,
    #[arg(long, default_value = "")]
    pub topic_prefix: String,
    /// Read the slot quotas from PostgreSQL (the projector's tables) instead of folding the log.
    #[arg(long)]
    pub postgres: Option<String>,
    /// The instant of the run (RFC 3339); now by default.
    #[arg(long)]
    pub at: Option<String>,
    /// A clinic that closes: its unbooked doses go to the rest of its region. Repeatable.
    #[arg(long = "close-clinic", value_name = "CLINIC")]
    pub close_clinic: Vec<String>,
    /// Spread unbooked doses within each region in proportion to bookings.
    #[arg(long)]
    pub demand: bool,
    /// Demand moves smaller than this many doses are skipped.
    #[arg(long, default_value_t = 1)]
    pub min_move: u32,
    /// Print the plan and the table per region; move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply only the first N moves (the rest on a later run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// How long to wait for each move's answer on Kafka.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
}

/// What a rebalance run did.
#[derive(Debug, Clone)]
pub struct RebalanceRun {
    pub plan: Plan,
    pub applied: Vec<(usize, Applied)>,
}

fn bad(text: String) -> RebalanceError {
    RebalanceError::Audit(AuditError::BadRange(text))
}

/// Runs `yeyak rebalance`; `now_ms` is the wall clock (the binary's), used without --at.
pub fn rebalance(
    args: &RebalanceArgs,
    now_ms: i64,
    out: &mut dyn Write,
) -> Result<RebalanceRun, RebalanceError> {
    let campaign = Campaign::default_2021();
    let at_ms = match &args.at {
        Some(text) => parse_instant("at", text)?,
        None => now_ms,
    };
    let mut close = std::collections::BTreeSet::new();
    for id in &args.close_clinic {
        close.insert(
            ClinicId::new(id)
                .ok_or_else(|| bad(format!("--close-clinic `{id}` is not a clinic id")))?,
        );
    }
    let policy = Policy {
        at_ms,
        close,
        demand: args.demand,
        min_move: args.min_move,
    };
    let log_args = LogArgs {
        data: args.data.clone(),
        kafka: args.kafka.clone(),
        topic_prefix: args.topic_prefix.clone(),
        ..LogArgs::default()
    };
    let (log, what) = log_args.open("yeyak-rebalance")?;
    let topology = Topology {
        subject_partitions: log
            .as_log()
            .partitions(TOPIC_SUBJECT)
            .map_err(AuditError::from)?,
        clinic_partitions: log
            .as_log()
            .partitions(TOPIC_CLINIC)
            .map_err(AuditError::from)?,
    };
    let model = match &args.postgres {
        Some(url) => {
            let mut client = ::postgres::Client::connect(url, ::postgres::NoTls)
                .map_err(AuditError::PostgresConnect)?;
            crate::projection::postgres::read_model(&mut client).map_err(AuditError::from)?
        }
        None => {
            let loaded = load(log.as_log(), &Range::default(), what.clone(), false)?;
            let mut model = ReadModel::new();
            for stream in &loaded.streams {
                for item in &stream.items {
                    model.apply(&item.envelope);
                }
            }
            model
        }
    };
    for clinic in &policy.close {
        if !model.clinics.contains_key(clinic) {
            return Err(bad(format!(
                "--close-clinic {clinic}: no such clinic in the slot quotas"
            )));
        }
    }
    let plan = rebalance::plan(&model, &campaign, &policy);
    let io = |e| {
        RebalanceError::Audit(AuditError::Io {
            path: PathBuf::from("-"),
            source: e,
        })
    };
    writeln!(
        out,
        "yeyak rebalance: {what} at {}",
        campaign.local_time(at_ms)
    )
    .map_err(io)?;
    write!(out, "{}", plan.render()).map_err(io)?;
    if args.dry_run || plan.moves.is_empty() {
        writeln!(
            out,
            "\n{}",
            if args.dry_run {
                "dry run: nothing moved"
            } else {
                "nothing to move"
            }
        )
        .map_err(io)?;
        return Ok(RebalanceRun {
            plan,
            applied: Vec::new(),
        });
    }
    writeln!(out, "\napplying").map_err(io)?;
    let applied = match log {
        OpenLog::File(file) => {
            let mut ledger = crate::ledger::Ledger::open(file, campaign, topology)?;
            rebalance::apply_embedded(&mut ledger, &plan, at_ms, args.limit, out)?
        }
        OpenLog::Kafka(_) => {
            let bootstrap = args.kafka.clone().unwrap_or_default();
            let topics = crate::pipeline::Topics::new(&args.topic_prefix, topology);
            let submitter =
                crate::pipeline::client::Submitter::connect(&bootstrap, topics.clone())?;
            let mut tail = crate::pipeline::client::EventTail::open(&bootstrap, &topics)?;
            let timeout = std::time::Duration::from_secs(args.timeout_s);
            rebalance::apply_kafka(
                &submitter, &mut tail, &plan, at_ms, args.limit, timeout, out,
            )?
        }
    };
    let moved = applied.iter().filter(|(_, a)| *a == Applied::Moved).count();
    let again = applied
        .iter()
        .filter(|(_, a)| *a == Applied::AlreadyApplied)
        .count();
    writeln!(
        out,
        "{moved} moved, {again} already applied before, {} refused or returned",
        applied.len() - moved - again
    )
    .map_err(io)?;
    Ok(RebalanceRun { plan, applied })
}
