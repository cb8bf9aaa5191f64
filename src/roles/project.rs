//! `yeyak project`: the PostgreSQL projector, until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use yeyak_ledger::Topology;
use yeyak_log::{KafkaConfig, KafkaLog};
use yeyak_read::projection::postgres::{
    PgProjector, ProjectionCounts, ProjectionError, READ_MODELS_PROJECTION,
};

use crate::metrics;
use crate::settings::stop_on_signal;

/// How long one poll of the event topics waits for a record before the projector looks at
/// `stop` again. Records are applied as soon as they arrive: this delays none.
const POLL_WAIT: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
pub struct ProjectArgs {
    #[arg(long, env = "YEYAK_KAFKA")]
    kafka: String,
    #[arg(long, env = "YEYAK_POSTGRES")]
    postgres: String,
    #[arg(long, default_value = "")]
    topic_prefix: String,
    #[arg(long, default_value_t = 8)]
    subject_partitions: u32,
    #[arg(long, default_value_t = 8)]
    clinic_partitions: u32,
    /// Drop the read models and project again from offset zero first.
    #[arg(long)]
    rebuild: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (batches and events written, reconnects,
    /// the last batch).
    #[arg(long, env = "YEYAK_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let source = Source {
        kafka: &args.kafka,
        topic_prefix: &args.topic_prefix,
        postgres: &args.postgres,
        topology: Topology {
            subject_partitions: args.subject_partitions,
            clinic_partitions: args.clinic_partitions,
        },
    };
    let stop = stop_on_signal()?;
    let progress = Progress::default();
    if let Some(listen) = args.metrics_listen {
        let bound = metrics::serve(listen, progress.snapshot.clone())?;
        eprintln!("yeyak project: metrics on http://{bound}/metrics");
    }
    follow(&source, args.rebuild, &stop, &progress, || {
        eprintln!("yeyak project: running")
    })?;
    eprintln!("yeyak project: stopped");
    Ok(ExitCode::SUCCESS)
}

/// What a projector follows (the event topics) and where it writes (PostgreSQL).
pub struct Source<'a> {
    pub kafka: &'a str,
    pub topic_prefix: &'a str,
    pub postgres: &'a str,
    pub topology: Topology,
}

/// How long the projector waits before it connects again after the broker or the database
/// failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Projects the event topics into PostgreSQL until `stop` turns true (or an error that needs a
/// person): the loop of `yeyak project` and of the projector thread of `yeyak serve`. `ready` is
/// called once connected (and rebuilt, with `rebuild`). When the broker or PostgreSQL fails or
/// restarts, it connects again and goes on from the offsets its last committed batch stored
/// (exactly once: rows and offsets commit together).
pub fn follow(
    source: &Source,
    rebuild: bool,
    stop: &AtomicBool,
    progress: &Progress,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut ready = Some(ready);
    let mut rebuild = rebuild;
    while !stop.load(Ordering::Relaxed) {
        match project(source, &mut rebuild, stop, progress, &mut ready) {
            Ok(()) => return Ok(()),
            Err(error) if error.is_transient() => {
                progress.reconnected();
                let waiting = error.is_missing_topic();
                let error = format!("{:#}", anyhow::Error::new(error));
                if waiting {
                    tracing::warn!(
                        error,
                        "the projector waits for its topics (the processors create them)"
                    );
                } else {
                    tracing::warn!(error, "the projector connects again");
                }
                std::thread::sleep(RETRY_AFTER);
            }
            Err(error) => return Err(error).context("the projector stopped"),
        }
    }
    Ok(())
}

/// One connection's run of the projector, until `stop` or an error.
fn project(
    source: &Source,
    rebuild: &mut bool,
    stop: &AtomicBool,
    progress: &Progress,
    ready: &mut Option<impl FnOnce()>,
) -> Result<(), ProjectionError> {
    let log = KafkaLog::connect(KafkaConfig {
        topic_prefix: source.topic_prefix.to_owned(),
        ..KafkaConfig::new(source.kafka, "yeyak-projector")
    })
    .map_err(|source| ProjectionError::Log {
        topic: String::new(),
        partition: 0,
        offset: 0,
        source,
    })?;
    let mut projector = PgProjector::connect(
        source.postgres,
        &log,
        source.topology,
        READ_MODELS_PROJECTION,
    )?;
    if *rebuild {
        let counts = projector.rebuild()?;
        eprintln!("yeyak project: rebuilt: {counts:?}");
        *rebuild = false;
    }
    if let Some(ready) = ready.take() {
        ready();
    }
    while !stop.load(Ordering::Relaxed) {
        let counts = projector.step(POLL_WAIT)?;
        if counts.batches > 0 {
            tracing::debug!(?counts, "projected");
        }
        progress.stepped(&counts);
    }
    Ok(())
}

/// What the projector has done, published for `/metrics` after every poll of the log.
#[derive(Default)]
pub struct Progress {
    totals: Mutex<(ProjectionCounts, u64, f64)>,
    snapshot: metrics::Snapshot,
}

impl Progress {
    fn stepped(&self, counts: &ProjectionCounts) {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals.0.batches += counts.batches;
        totals.0.events += counts.events;
        totals.0.skipped += counts.skipped;
        if counts.batches > 0 {
            totals.2 = metrics::unix_now_s();
        }
        self.publish(&totals);
    }

    fn reconnected(&self) {
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals.1 += 1;
        self.publish(&totals);
    }

    fn publish(&self, (counts, reconnects, last_batch_s): &(ProjectionCounts, u64, f64)) {
        let samples = vec![
            metrics::counter(
                "yeyak_projector_batches",
                "Batches committed to PostgreSQL (rows and offsets in one transaction)",
                counts.batches,
            ),
            metrics::counter("yeyak_projector_events", "Events applied", counts.events),
            metrics::counter(
                "yeyak_projector_skipped",
                "Events read but found applied already",
                counts.skipped,
            ),
            metrics::counter(
                "yeyak_projector_reconnects",
                "Times the projector connected again after a broker or database failure",
                *reconnects,
            ),
            metrics::gauge(
                "yeyak_projector_last_batch_timestamp_seconds",
                "When the projector last committed a batch (0: not yet)",
                *last_batch_s,
            ),
        ];
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = samples;
    }
}
