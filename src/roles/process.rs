//! `yeyak process`: one ledger processor on Kafka, until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use yeyak_domain::Campaign;
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::incarnation::Incarnations;
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig, ProcessorError};
use yeyak_ledger::pipeline::watchdog::{self, Backlog, Watchdog};
use yeyak_ledger::pipeline::{Topics, admin};

use crate::metrics::{self, Sample, counter, gauge};
use crate::roles::stall_guard::{self, Steps};
use crate::settings::{CampaignArg, TopicArgs, stop_on_signal};

/// How often a running processor prints its counters.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often it publishes its metrics for the next scrape.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

#[derive(clap::Args)]
pub struct ProcessArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "YEYAK_KAFKA")]
    kafka: String,
    /// Prefix of every topic (isolates deployments sharing a broker).
    #[arg(long, default_value = "")]
    topic_prefix: String,
    /// This processor's instance name; part of its transactional id.
    #[arg(long, default_value = "0")]
    instance: String,
    #[arg(long, default_value_t = 8)]
    subject_partitions: u32,
    #[arg(long, default_value_t = 8)]
    clinic_partitions: u32,
    /// Consumer-group session timeout: how soon a dead processor's partitions move.
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: u32,
    #[command(flatten)]
    durability: TopicArgs,
    #[command(flatten)]
    campaign: CampaignArg,
    /// Serve Prometheus metrics at http://ADDR/metrics (consumer lag per partition,
    /// transactions, aborts, rebuilds, time committing, the last decision).
    #[arg(long, env = "YEYAK_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let campaign = args.campaign.load()?;
    let topology = Topology {
        subject_partitions: args.subject_partitions,
        clinic_partitions: args.clinic_partitions,
    };
    let topics = Topics::new(&args.topic_prefix, topology);
    let durability = admin::ensure_topics(&args.kafka, &topics, args.durability.settings())
        .context("cannot create the topics")?;
    eprintln!(
        "yeyak process {}: topics with {} replica(s), min.insync.replicas {}",
        args.instance, durability.replication, durability.min_insync
    );
    let mut config = ProcessorConfig::new(&args.kafka, topics, &args.instance);
    config.session_timeout_ms = args.session_timeout_ms;
    let stop = stop_on_signal()?;
    let instance = args.instance.clone();
    let processor =
        Processor::start(config.clone(), campaign.clone()).context("cannot start the processor")?;
    let mut running = Supervised::new(processor, config, campaign, instance.clone());
    running = running.watched_by(stall_guard::watch(
        format!("yeyak process {instance}"),
        stop.clone(),
        now_ms,
    )?);
    let snapshot = metrics::Snapshot::default();
    if let Some(listen) = args.metrics_listen {
        let bound = metrics::serve(listen, snapshot.clone())?;
        eprintln!("yeyak process {instance}: metrics on http://{bound}/metrics");
    }
    eprintln!("yeyak process {instance}: running");
    let mut last_report = Instant::now();
    let mut last_published = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        running.beat();
        running = match running.step(&stop)? {
            Some(next) => next,
            None => break,
        };
        if args.metrics_listen.is_some() && last_published.elapsed() > PUBLISH_EVERY {
            *snapshot.lock().unwrap_or_else(|p| p.into_inner()) = running.samples();
            last_published = Instant::now();
        }
        if last_report.elapsed() > REPORT_EVERY {
            eprintln!("yeyak process {instance}: {:?}", running.processor.stats());
            last_report = Instant::now();
        }
    }
    eprintln!("yeyak process {instance}: stopped");
    Ok(ExitCode::SUCCESS)
}

/// A processor and what starts its new incarnations: fencings ([`Incarnations`]) and its
/// watchdog. `yeyak process` runs one, and so does `yeyak serve` when it runs the processor
/// role itself.
pub(crate) struct Supervised {
    processor: Processor,
    config: ProcessorConfig,
    campaign: Campaign,
    instance: String,
    incarnations: Incarnations,
    watchdog: Watchdog,
    last_decision_s: f64,
    /// The heartbeat of its steps, when a stall guard watches them.
    steps: Option<Steps>,
}

impl Supervised {
    pub(crate) fn new(
        processor: Processor,
        config: ProcessorConfig,
        campaign: Campaign,
        instance: String,
    ) -> Supervised {
        Supervised {
            processor,
            config,
            campaign,
            instance,
            incarnations: Incarnations::default(),
            watchdog: Watchdog::new(watchdog::PATIENCE_MS),
            last_decision_s: 0.0,
            steps: None,
        }
    }

    /// Its steps watched by a stall guard (`stall_guard::watch`): each step beats it.
    pub(crate) fn watched_by(mut self, steps: Steps) -> Supervised {
        self.steps = Some(steps);
        self
    }

    /// A step begins (for the stall guard, if any).
    pub(crate) fn beat(&self) {
        if let Some(steps) = &self.steps {
            steps.begin(now_ms());
        }
    }

    /// One batch; a new incarnation when the processor was fenced or its watchdog says so.
    /// `None`: stopped while starting one.
    pub(crate) fn step(mut self, stop: &AtomicBool) -> anyhow::Result<Option<Supervised>> {
        let instance = &self.instance;
        let decided = match self.processor.step() {
            Ok(decided) => decided,
            Err(fenced @ ProcessorError::Fenced { .. }) => {
                if !self.incarnations.start_again(now_ms()) {
                    return Err(fenced).context(
                        "the processor stopped: fenced again and again (does a second process \
                         run with this instance name?)",
                    );
                }
                eprintln!(
                    "yeyak process {instance}: fenced ({fenced}); starting a new incarnation"
                );
                return Ok(self.start_again(stop));
            }
            Err(error) => return Err(error).context("the processor stopped"),
        };
        if decided > 0 {
            self.last_decision_s = metrics::unix_now_s();
        }
        let backlog = Backlog::of(self.processor.lag().into_iter().map(|(_, _, lag)| lag));
        let patience_s = self.watchdog.patience_ms() / 1000;
        if self.watchdog.observe(now_ms(), decided, backlog) {
            eprintln!(
                "yeyak process {instance}: WARN: it owns commands and decided none for {patience_s} s; \
                 its watchdog starts a new incarnation (next patience {} s)",
                self.watchdog.patience_ms() / 1000
            );
            return Ok(self.start_again(stop));
        }
        Ok(Some(self))
    }

    fn start_again(self, stop: &AtomicBool) -> Option<Supervised> {
        let Supervised { processor, .. } = self;
        let steps = self.steps.clone();
        let beat = || {
            if let Some(steps) = &steps {
                steps.begin(now_ms());
            }
        };
        let next = new_incarnation(processor, &self.config, &self.campaign, stop, &beat)?;
        Some(Supervised {
            processor: next,
            ..self
        })
    }

    /// The processor's metrics now.
    fn samples(&self) -> Vec<Sample> {
        let restarts = Restarts {
            fenced: self.incarnations.started(),
            stuck: self.watchdog.started(),
        };
        samples(&self.processor, self.last_decision_s, restarts)
    }
}

pub(crate) fn now_ms() -> u64 {
    (metrics::unix_now_s() * 1000.0) as u64
}

/// How long a new incarnation that cannot start (the broker is down) waits before it tries
/// again.
const START_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// A new incarnation of the processor: a new consumer-group member and producer epoch, state
/// rebuilt from the events. The old one is dropped on a thread of its own: a client whose
/// connections hang may take its socket timeout to close, and the new one must not wait for it
/// (its producer is fenced by the new epoch, its member expires with its session). One that
/// cannot start (the broker is down) tries again until it starts or the process is stopped
/// (`None`): an outage is waited out, not turned into an exit.
fn new_incarnation(
    old: Processor,
    config: &ProcessorConfig,
    campaign: &Campaign,
    stop: &AtomicBool,
    beat: &dyn Fn(),
) -> Option<Processor> {
    eprintln!(
        "yeyak process: the old incarnation stopped at {:?}",
        old.stats()
    );
    let dropped = std::thread::Builder::new()
        .name("old-incarnation".into())
        .spawn(move || drop(old));
    if let Err(error) = dropped {
        // The closure, and the old incarnation with it, was dropped here instead.
        eprintln!(
            "yeyak process: WARN: no thread to drop the old incarnation ({error}): dropped in place"
        );
    }
    while !stop.load(Ordering::Relaxed) {
        // Waiting out an outage is not a stall.
        beat();
        match Processor::start(config.clone(), campaign.clone()) {
            Ok(processor) => return Some(processor),
            Err(error) => {
                eprintln!(
                    "yeyak process: WARN: cannot start a new incarnation yet ({error}); \
                     trying again in {} s",
                    START_AGAIN_AFTER.as_secs()
                );
                std::thread::sleep(START_AGAIN_AFTER);
            }
        }
    }
    None
}

/// New incarnations this process started, by cause.
struct Restarts {
    fenced: u64,
    stuck: u64,
}

/// The processor's metrics now.
fn samples(processor: &Processor, last_decision_s: f64, restarts: Restarts) -> Vec<Sample> {
    let stats = processor.stats();
    let lag = processor
        .lag()
        .into_iter()
        .filter_map(|(topic, partition, lag)| {
            let labels = vec![
                ("topic".to_owned(), topic),
                ("partition".to_owned(), partition.to_string()),
            ];
            Some((labels, lag? as f64))
        })
        .collect();
    vec![
        Sample::Gauge {
            name: "yeyak_processor_lag_records",
            help: "Records of an owned command partition not decided yet (end of the partition minus the consumer's position; a transaction marker counts as one)",
            series: lag,
        },
        gauge(
            "yeyak_processor_owned_partitions",
            "Command partitions this processor owns",
            processor.owned_partitions().len() as f64,
        ),
        counter(
            "yeyak_processor_new_incarnations",
            "New incarnations this process started after being fenced (the counters below restart with each)",
            restarts.fenced,
        ),
        counter(
            "yeyak_processor_watchdog_incarnations",
            "New incarnations its watchdog started: it owned commands and decided none for the watchdog's patience (60 s at first)",
            restarts.stuck,
        ),
        gauge(
            "yeyak_processor_last_decision_timestamp_seconds",
            "When this processor last committed a batch (0: not yet)",
            last_decision_s,
        ),
        counter(
            "yeyak_processor_transactions",
            "Transactions committed",
            stats.transactions,
        ),
        counter(
            "yeyak_processor_commands",
            "Command records decided",
            stats.commands,
        ),
        counter("yeyak_processor_events", "Events written", stats.events),
        counter(
            "yeyak_processor_follow_ups_local",
            "Follow-ups decided in the transaction of their cause",
            stats.follow_ups_local,
        ),
        counter(
            "yeyak_processor_aborts",
            "Transactions aborted",
            stats.aborts,
        ),
        counter(
            "yeyak_processor_rebuilds",
            "Partition states rebuilt from the event log",
            stats.rebuilds,
        ),
        counter(
            "yeyak_processor_broker_errors",
            "Batches that failed on the broker (aborted and decided again)",
            stats.broker_errors,
        ),
        counter(
            "yeyak_processor_batches_dropped_at_rebalance",
            "Polled batches dropped (and polled again) because the group revoked partitions meanwhile",
            stats.batches_dropped_at_rebalance,
        ),
        counter(
            "yeyak_processor_dead_letters",
            "Records answered by a dead letter",
            stats.dead_letters,
        ),
        counter(
            "yeyak_processor_duplicates_skipped",
            "Commands recognised as answered before",
            stats.duplicates_skipped,
        ),
        counter(
            "yeyak_processor_commit_milliseconds",
            "Time spent producing and committing transactions",
            stats.commit_ms,
        ),
        counter(
            "yeyak_processor_decide_milliseconds",
            "Time spent deciding",
            stats.decide_ms,
        ),
    ]
}
