//! `yeyak rebalance`: its arguments, and one run (plan from the slot quotas, print, apply).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use yeyak_domain::{Campaign, ClinicId, OperatorId};
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::submit::{Embedded, Kafka, Submit};
use yeyak_log::codec::{TOPIC_CLINIC, TOPIC_SUBJECT, Topology};
use yeyak_log::{EventLog, FsyncPolicy, KafkaConfig, KafkaLog};
use yeyak_read::audit::AuditError;
use yeyak_read::audit::cli::parse_instant;

use crate::{Applied, Observed, Plan, Policy, RebalanceError, apply, plan};

/// `yeyak rebalance`. Its `Debug` shows no password.
#[derive(Clone, Default, clap::Args)]
pub struct RebalanceArgs {
    /// The campaign calendar (TOML); the built-in 2021 18-49 campaign by default. It must be
    /// the one the ledger runs under.
    #[arg(long, env = "YEYAK_CAMPAIGN")]
    pub campaign: Option<PathBuf>,
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
    /// Who runs this (recorded with every move in the log); needed unless --dry-run.
    #[arg(long, env = "YEYAK_OPERATOR", required_unless_present = "dry_run")]
    pub operator: Option<String>,
    /// Apply only the first N moves (the rest on a later run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// How long to wait for each move's answer on Kafka.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
}

impl std::fmt::Debug for RebalanceArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let postgres = self.postgres.as_deref().map(yeyak_read::pg::shown_url);
        f.debug_struct("RebalanceArgs")
            .field("campaign", &self.campaign)
            .field("data", &self.data)
            .field("kafka", &self.kafka)
            .field("topic_prefix", &self.topic_prefix)
            .field("postgres", &postgres)
            .field("at", &self.at)
            .field("close_clinic", &self.close_clinic)
            .field("demand", &self.demand)
            .field("min_move", &self.min_move)
            .field("dry_run", &self.dry_run)
            .field("operator", &self.operator)
            .field("limit", &self.limit)
            .field("timeout_s", &self.timeout_s)
            .finish()
    }
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

fn policy(args: &RebalanceArgs, now_ms: i64) -> Result<Policy, RebalanceError> {
    let at_ms = match &args.at {
        Some(text) => parse_instant("at", text)?,
        None => now_ms,
    };
    let mut close = BTreeSet::new();
    for id in &args.close_clinic {
        close.insert(
            ClinicId::new(id)
                .ok_or_else(|| bad(format!("--close-clinic `{id}` is not a clinic id")))?,
        );
    }
    Ok(Policy {
        at_ms,
        close,
        demand: args.demand,
        min_move: args.min_move,
    })
}

/// The writer the moves go through, fed into `observed`, and what it is for people.
fn open_ledger(
    args: &RebalanceArgs,
    campaign: Campaign,
    observed: Arc<Observed>,
) -> Result<(Box<dyn Submit>, String), RebalanceError> {
    match (&args.data, &args.kafka) {
        (Some(dir), None) => {
            if !dir.is_dir() {
                return Err(bad(format!("--data {}: no such directory", dir.display())));
            }
            let ledger = Embedded::open_dir(dir, campaign, FsyncPolicy::EveryAppend, observed)?;
            Ok((Box::new(ledger), format!("data {}", dir.display())))
        }
        (None, Some(bootstrap)) => {
            let log = KafkaLog::connect(KafkaConfig {
                topic_prefix: args.topic_prefix.clone(),
                ..KafkaConfig::new(bootstrap, "yeyak-rebalance")
            })
            .map_err(AuditError::from)?;
            let topology = Topology {
                subject_partitions: log.partitions(TOPIC_SUBJECT).map_err(AuditError::from)?,
                clinic_partitions: log.partitions(TOPIC_CLINIC).map_err(AuditError::from)?,
            };
            let topics = Topics::new(&args.topic_prefix, topology);
            let timeout = Duration::from_secs(args.timeout_s);
            let ledger = Kafka::connect(bootstrap, topics, campaign, timeout, observed)?;
            // Everything decided so far: a move decided before is not sent again.
            ledger.wait_caught_up(Duration::from_millis(300), timeout);
            let what = format!("kafka {bootstrap} prefix {:?}", args.topic_prefix);
            Ok((Box::new(ledger), what))
        }
        _ => Err(bad("name the ledger: --data DIR or --kafka SERVERS".into())),
    }
}

/// Runs `yeyak rebalance`; `now_ms` is the wall clock (the binary's), used without --at.
pub fn rebalance(
    args: &RebalanceArgs,
    now_ms: i64,
    out: &mut dyn Write,
) -> Result<RebalanceRun, RebalanceError> {
    let campaign = yeyak_log::load_campaign(args.campaign.as_deref())?;
    let policy = policy(args, now_ms)?;
    let observed = Arc::new(match args.postgres {
        Some(_) => Observed::decided_only(),
        None => Observed::default(),
    });
    let (ledger, what) = open_ledger(args, campaign.clone(), observed.clone())?;
    let model = match (&args.postgres, observed.model()) {
        (Some(url), _) => {
            let mut client = yeyak_read::pg::connect(url).map_err(AuditError::PostgresConnect)?;
            yeyak_read::projection::postgres::read_model(&mut client).map_err(AuditError::from)?
        }
        (None, Some(model)) => model,
        (None, None) => return Err(bad("no slot quotas: neither folded nor --postgres".into())),
    };
    for clinic in &policy.close {
        if !model.clinics.contains_key(clinic) {
            return Err(bad(format!(
                "--close-clinic {clinic}: no such clinic in the slot quotas"
            )));
        }
    }
    let plan = plan(&model, &campaign, &policy);
    let io = RebalanceError::Output;
    writeln!(
        out,
        "yeyak rebalance: {what} at {}",
        campaign.local_time(policy.at_ms)
    )
    .map_err(io)?;
    write!(out, "{}", plan.render()).map_err(io)?;
    if args.dry_run || plan.moves.is_empty() {
        let why = if args.dry_run {
            "dry run: nothing moved"
        } else {
            "nothing to move"
        };
        writeln!(out, "\n{why}").map_err(io)?;
        return Ok(RebalanceRun {
            plan,
            applied: Vec::new(),
        });
    }
    writeln!(out, "\napplying").map_err(io)?;
    let operator = args
        .operator
        .as_deref()
        .map(|name| OperatorId::new(name).ok_or(RebalanceError::InvalidOperator))
        .transpose()?;
    let applied = apply(
        &*ledger,
        &observed,
        &plan,
        (policy.at_ms, operator.as_ref()),
        args.limit,
        out,
    )?;
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
