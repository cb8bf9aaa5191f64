//! The `yeyak` binary: a thin edge over the library. `anyhow` lives here and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use yeyak::demo::{self, DemoConfig};

/// Counts live heap bytes, for `yeyak bench`'s writer memory per person.
#[global_allocator]
static HEAP: yeyak::heap::CountingAllocator = yeyak::heap::CountingAllocator;

use yeyak::identity::{Pseudonymiser, SecretKey};
use yeyak::log::FsyncPolicy;

#[derive(Parser)]
#[command(
    name = "yeyak",
    version,
    about = "An event-sourced reservation ledger for mass vaccination booking"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a scaled-down 2021 campaign end to end on the embedded log and check every invariant.
    Demo {
        /// How many people (about 10% fall outside the 18-49 group).
        #[arg(long, default_value_t = 5000)]
        people: u32,
        /// How many clinics.
        #[arg(long, default_value_t = 4)]
        clinics: u32,
        /// Seed of the made-up population and their choices.
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        /// Where to keep the log (must be empty or missing); by default a temporary directory
        /// that is removed afterwards.
        #[arg(long)]
        data: Option<PathBuf>,
        /// When appends reach the disk (the demo's default leaves it to the OS).
        #[arg(long, value_enum, default_value_t = Fsync::Never)]
        fsync: Fsync,
    },
    /// Run a ledger processor: a consumer-group member over the command topics that decides and
    /// writes events with exactly-once Kafka transactions. Runs until stopped (a kill is safe).
    Process {
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
    },
    /// Run the PostgreSQL projector: follows the event topics and keeps the read models, exactly
    /// once (rows and offsets in one transaction). Runs until stopped (a kill is safe).
    Project {
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
    },
    /// Auditors: replay a range of the log (Kafka, a data directory or an export), check every
    /// rule against the whole history, print each projection's digest, and compare with
    /// PostgreSQL. Exit code 2 when anything is wrong.
    Replay(yeyak::audit::cli::ReplayArgs),
    /// Write a range of the log to a directory (the embedded log's format, checksums, a manifest
    /// with a hash chain) for auditors to work offline.
    Export(yeyak::audit::cli::ExportArgs),
    /// Move unused vaccine volume where it can still be used: day shares to the pool after the
    /// booking days, a closing clinic's doses to its region, toward demand. Decided by the
    /// clinic writers; idempotent and resumable.
    Rebalance(yeyak::audit::cli::RebalanceArgs),
    /// Measure the pipeline on a real Kafka broker against the broker's raw append rate, in one
    /// run; prints a table and, last, one JSON line.
    Bench {
        #[arg(long, env = "YEYAK_KAFKA")]
        kafka: String,
        #[arg(long, default_value_t = 20_000)]
        people: u32,
        /// Processors in this process (each a consumer-group member with its own transactions).
        #[arg(long, default_value_t = 1)]
        processors: u32,
        /// Partitions of each topic kind.
        #[arg(long, default_value_t = 8)]
        partitions: u32,
        /// Give up after this long.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        /// How long a processor waits to fill a batch after its first command.
        #[arg(long, default_value_t = 20)]
        linger_ms: u64,
        /// The most commands in one processor batch (one Kafka transaction).
        #[arg(long, default_value_t = 20_000)]
        batch_max: usize,
        /// Also run a PostgreSQL projector and measure decision -> row latency.
        #[arg(long, env = "YEYAK_POSTGRES")]
        postgres: Option<String>,
        /// People arriving per second (paced: latency at a given load); without it everyone
        /// arrives at once (the stampede: throughput).
        #[arg(long)]
        rate: Option<u32>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Fsync {
    /// Every append is on disk before it is applied (survives power loss).
    EveryAppend,
    /// Leave it to the operating system (survives a process crash, not power loss).
    Never,
}

/// The pseudonymisation key: `YEYAK_SUBJECT_KEY` (hex, at least 32 bytes), or a fixed demo key
/// that is announced as such.
fn pseudonymiser() -> anyhow::Result<Pseudonymiser> {
    match std::env::var("YEYAK_SUBJECT_KEY") {
        Ok(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("YEYAK_SUBJECT_KEY must be hex")?;
            Ok(Pseudonymiser::new(
                SecretKey::new(bytes).context("YEYAK_SUBJECT_KEY")?,
            ))
        }
        Err(_) => {
            eprintln!(
                "note: YEYAK_SUBJECT_KEY is not set; using the public demo key (never in production)"
            );
            Ok(Pseudonymiser::new(SecretKey::new(
                b"yeyak demo key - not a secret!!!".to_vec(),
            )?))
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YEYAK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("yeyak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Commands::Demo {
            people,
            clinics,
            seed,
            data,
            fsync,
        } => {
            let (data_dir, temporary) = match data {
                Some(dir) => (dir, false),
                None => (
                    std::env::temp_dir().join(format!("yeyak-demo-{}", std::process::id())),
                    true,
                ),
            };
            let config = DemoConfig {
                people,
                clinics,
                seed,
                data_dir: data_dir.clone(),
                fsync: match fsync {
                    Fsync::EveryAppend => FsyncPolicy::EveryAppend,
                    Fsync::Never => FsyncPolicy::Never,
                },
            };
            let result = demo::run(&config, &pseudonymiser()?, &mut std::io::stdout().lock());
            if temporary {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
            let report = result.context("the demo failed")?;
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Commands::Bench {
            kafka,
            people,
            processors,
            partitions,
            timeout_s,
            linger_ms,
            batch_max,
            postgres,
            rate,
        } => {
            let config = yeyak::bench::BenchConfig {
                bootstrap: kafka,
                people,
                processors,
                partitions,
                timeout_s,
                batch_linger_ms: linger_ms,
                batch_commands_max: batch_max,
                postgres,
                rate,
            };
            yeyak::bench::run(&config, &mut std::io::stdout().lock())
                .context("the benchmark failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Replay(args) => {
            let report =
                yeyak::audit::cli::replay(&args, &mut std::io::stdout().lock()).map_err(|e| {
                    anyhow::anyhow!("[{}] {}", e.code(), yeyak::audit::source::error_chain(&e))
                })?;
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Commands::Export(args) => {
            yeyak::audit::cli::export(&args, &mut std::io::stdout().lock()).map_err(|e| {
                anyhow::anyhow!("[{}] {}", e.code(), yeyak::audit::source::error_chain(&e))
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Rebalance(args) => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            yeyak::audit::cli::rebalance(&args, now_ms, &mut std::io::stdout().lock())
                .context("the rebalance failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Project {
            kafka,
            postgres,
            topic_prefix,
            subject_partitions,
            clinic_partitions,
            rebuild,
        } => {
            use yeyak::log::{KafkaConfig, KafkaLog};
            use yeyak::projection::postgres::{PgProjector, READ_MODELS_PROJECTION};
            let topology = yeyak::ledger::Topology {
                subject_partitions,
                clinic_partitions,
            };
            let log = KafkaLog::connect(KafkaConfig {
                topic_prefix,
                ..KafkaConfig::new(kafka, "yeyak-projector")
            })
            .context("cannot connect to Kafka")?;
            let mut projector =
                PgProjector::connect(&postgres, &log, topology, READ_MODELS_PROJECTION)
                    .context("cannot start the projector")?;
            if rebuild {
                let counts = projector.rebuild().context("the rebuild failed")?;
                eprintln!("yeyak project: rebuilt: {counts:?}");
            }
            eprintln!("yeyak project: running");
            loop {
                let counts = projector
                    .run_until_caught_up()
                    .context("the projector stopped")?;
                tracing::info!(?counts, "caught up");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        Commands::Process {
            kafka,
            topic_prefix,
            instance,
            subject_partitions,
            clinic_partitions,
            session_timeout_ms,
        } => {
            use yeyak::pipeline::{
                Topics, admin,
                processor::{Processor, ProcessorConfig},
            };
            let topology = yeyak::ledger::Topology {
                subject_partitions,
                clinic_partitions,
            };
            let topics = Topics::new(&topic_prefix, topology);
            admin::ensure_topics(&kafka, &topics, 1).context("cannot create the topics")?;
            let mut config = ProcessorConfig::new(&kafka, topics, &instance);
            config.session_timeout_ms = session_timeout_ms;
            let mut processor = Processor::start(config, yeyak::domain::Campaign::default_2021())
                .context("cannot start the processor")?;
            eprintln!("yeyak process {instance}: running");
            let mut last_report = std::time::Instant::now();
            loop {
                processor.step().context("the processor stopped")?;
                if last_report.elapsed() > std::time::Duration::from_secs(5) {
                    eprintln!("yeyak process {instance}: {:?}", processor.stats);
                    last_report = std::time::Instant::now();
                }
            }
        }
    }
}
