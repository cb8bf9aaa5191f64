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
    /// Serve the HTTP API and the web page (the front tier), on the embedded log by default or
    /// on Kafka (+ PostgreSQL) with the processor and projector roles in the same process.
    Serve(Box<ServeArgs>),
    /// Measure how many requests per second a running `yeyak serve` answers (bounded load on
    /// loopback: verify, queue, poll, book), and print a table and one JSON line.
    Loadgen {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Admin token of the server (to register supply and set the clock).
        #[arg(long, env = "YEYAK_ADMIN_TOKEN")]
        admin_token: String,
        /// People who each verify, queue, poll and book.
        #[arg(long, default_value_t = 2000)]
        people: u32,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Seconds of `GET /v1/congestion` + `GET /v1/queue/{ticket}` read load after the flows.
        #[arg(long, default_value_t = 5)]
        read_s: u64,
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

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Start the server's clock at this instant (RFC 3339); it then runs in real time.
    #[arg(long)]
    clock: Option<String>,
    /// Turns the admin endpoints on, guarded by this bearer token.
    #[arg(long, env = "YEYAK_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Keep the embedded log here (created if missing; reopened and replayed if not empty).
    /// Without it, and without --kafka, a temporary directory that is removed at exit.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Kafka bootstrap servers: run on the Kafka pipeline instead of the embedded log.
    #[arg(long, env = "YEYAK_KAFKA")]
    kafka: Option<String>,
    /// PostgreSQL URL: also run the projector role (needs --kafka).
    #[arg(long, env = "YEYAK_POSTGRES")]
    postgres: Option<String>,
    /// Roles this process runs on Kafka (comma-separated): gateway, processor, projector.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gateway,processor,projector"
    )]
    roles: Vec<Role>,
    #[arg(long, default_value = "")]
    topic_prefix: String,
    /// The waiting room opens at this instant (RFC 3339); earlier arrivals wait in the pre-queue.
    #[arg(long)]
    opens_at: Option<String>,
    /// First come, first served even before opening: no pre-queue draw.
    #[arg(long)]
    fifo_only: bool,
    /// Tickets admitted per second at most.
    #[arg(long, default_value_t = 500.0)]
    admit_per_s: f64,
    /// How long an admission (and its token) is valid.
    #[arg(long, default_value_t = 600)]
    admission_ttl_s: i64,
    /// A waiting ticket whose page has not polled for this long is skipped.
    #[arg(long, default_value_t = 60)]
    heartbeat_timeout_s: u64,
    /// The admission controller's period (it admits what the outflow rate allows each tick).
    #[arg(long, default_value_t = 200)]
    controller_tick_ms: u64,
    /// Report each verification method's congestion light to the ledger (the `congestion` read
    /// model) when it changes and at least every this many seconds; 0 = never.
    #[arg(long, default_value_t = 10)]
    congestion_report_s: u64,
    /// When appends of the embedded log reach the disk.
    #[arg(long, value_enum, default_value_t = Fsync::EveryAppend)]
    fsync: Fsync,
    /// Identity providers answer at once (for load measurements), instead of the simulated latencies.
    #[arg(long)]
    instant_providers: bool,
    /// Token signing key (hex, at least 32 bytes); every gateway of a deployment needs the same.
    /// Without it, a key for this process only.
    #[arg(long, env = "YEYAK_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    Gateway,
    Processor,
    Projector,
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
        Commands::Serve(args) => serve(args),
        Commands::Loadgen {
            url,
            admin_token,
            people,
            connections,
            read_s,
        } => {
            let config = yeyak::front::loadgen::LoadConfig {
                url,
                admin_token,
                people,
                connections,
                read_s,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = runtime
                .block_on(yeyak::front::loadgen::run(&config))
                .context("the load generator failed")?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
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

fn parse_instant(what: &str, text: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{what} is not RFC 3339"))?
        .timestamp_millis())
}

/// `yeyak serve`: the gateway on the embedded log, or the roles on Kafka (+ PostgreSQL).
fn serve(args: Box<ServeArgs>) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use yeyak::front::backend::{Backend, Embedded, Kafka};
    use yeyak::front::{FrontConfig, api::Front, providers::ProviderConfig, tokens::TokenKey};

    let campaign = yeyak::domain::Campaign::default_2021();
    let topology = yeyak::ledger::Topology::default();
    let mut config = FrontConfig {
        admin_token: args.admin_token.clone(),
        ..FrontConfig::default()
    };
    config.opens_at_ms = args
        .opens_at
        .as_deref()
        .map(|t| parse_instant("--opens-at", t))
        .transpose()?;
    config.pre_queue_draw = !args.fifo_only;
    config.admit_per_s = args.admit_per_s;
    config.admission_ttl_ms = args.admission_ttl_s * 1000;
    config.heartbeat_timeout_ms = args.heartbeat_timeout_s * 1000;
    config.controller_tick_ms = args.controller_tick_ms;
    config.congestion_report_ms = args.congestion_report_s.saturating_mul(1000);
    if args.instant_providers {
        config.providers = yeyak::domain::Method::ALL
            .iter()
            .map(|m| (*m, ProviderConfig::instant()))
            .collect();
    }
    let keys = match &args.token_key {
        Some(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("--token-key must be hex")?;
            anyhow::ensure!(bytes.len() >= 32, "--token-key must be at least 32 bytes");
            TokenKey::new(bytes)
        }
        None => TokenKey::ephemeral(),
    };
    let pseudonymiser = pseudonymiser()?;
    let runs = |role: Role| args.roles.contains(&role);

    let mut temporary = None;
    let kafka = args.kafka.clone().filter(|k| !k.trim().is_empty());
    let postgres = args.postgres.clone().filter(|p| !p.trim().is_empty());
    let backend: Arc<dyn Backend> = match &kafka {
        None => {
            anyhow::ensure!(
                postgres.is_none(),
                "--postgres needs --kafka (the projector follows the Kafka event topics)"
            );
            let dir = match &args.data {
                Some(dir) => dir.clone(),
                None => {
                    let dir =
                        std::env::temp_dir().join(format!("yeyak-serve-{}", std::process::id()));
                    temporary = Some(dir.clone());
                    dir
                }
            };
            eprintln!("yeyak serve: embedded log in {}", dir.display());
            let fsync = match args.fsync {
                Fsync::EveryAppend => FsyncPolicy::EveryAppend,
                Fsync::Never => FsyncPolicy::Never,
            };
            Arc::new(
                Embedded::open_dir(&dir, campaign.clone(), fsync)
                    .context("cannot open the embedded ledger")?,
            )
        }
        Some(kafka) => {
            use yeyak::pipeline::{Topics, admin};
            let topics = Topics::new(&args.topic_prefix, topology);
            admin::ensure_topics(kafka, &topics, 1).context("cannot create the topics")?;
            if runs(Role::Processor) {
                let (kafka, topics, campaign) = (kafka.clone(), topics.clone(), campaign.clone());
                std::thread::Builder::new().name("yeyak-processor".into()).spawn(move || loop {
                    use yeyak::pipeline::processor::{Processor, ProcessorConfig};
                    let config = ProcessorConfig::new(&kafka, topics.clone(), &format!("serve-{}", std::process::id()));
                    match Processor::start(config, campaign.clone()) {
                        Ok(mut processor) => loop {
                            if let Err(error) = processor.step() {
                                eprintln!("yeyak serve: the processor stopped ({error}); restarting");
                                break;
                            }
                        },
                        Err(error) => eprintln!("yeyak serve: cannot start the processor ({error}); retrying"),
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                })?;
            }
            if runs(Role::Projector) {
                if let Some(postgres) = postgres.clone() {
                    let (kafka, prefix) = (kafka.clone(), args.topic_prefix.clone());
                    std::thread::Builder::new().name("yeyak-projector".into()).spawn(move || loop {
                        use yeyak::log::{KafkaConfig, KafkaLog};
                        use yeyak::projection::postgres::{PgProjector, READ_MODELS_PROJECTION};
                        let log = match KafkaLog::connect(KafkaConfig { topic_prefix: prefix.clone(), ..KafkaConfig::new(kafka.clone(), "yeyak-projector") }) {
                            Ok(log) => log,
                            Err(error) => {
                                eprintln!("yeyak serve: the projector cannot connect to Kafka ({error}); retrying");
                                std::thread::sleep(std::time::Duration::from_secs(1));
                                continue;
                            }
                        };
                        match PgProjector::connect(&postgres, &log, topology, READ_MODELS_PROJECTION) {
                            Ok(mut projector) => loop {
                                if let Err(error) = projector.run_until_caught_up() {
                                    eprintln!("yeyak serve: the projector stopped ({error}); restarting");
                                    break;
                                }
                                std::thread::sleep(std::time::Duration::from_millis(200));
                            },
                            Err(error) => eprintln!("yeyak serve: cannot start the projector ({error}); retrying"),
                        }
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    })?;
                }
            }
            if !runs(Role::Gateway) {
                eprintln!("yeyak serve: running without the gateway role; stop with Ctrl-C");
                loop {
                    std::thread::park();
                }
            }
            let kafka = Kafka::connect(kafka, topics, campaign.clone(), config.decision_timeout)
                .context("cannot connect to Kafka")?;
            kafka.wait_caught_up(
                std::time::Duration::from_millis(500),
                std::time::Duration::from_secs(60),
            );
            Arc::new(kafka)
        }
    };
    let front = Front::new(config, backend, keys, pseudonymiser);
    if let Some(clock) = &args.clock {
        front.clock.set(parse_instant("--clock", clock)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = yeyak::front::server::start(front, args.listen)
            .await
            .context("cannot listen")?;
        eprintln!(
            "yeyak serve: listening on http://{} ({} backend)",
            running.addr,
            running.front.backend.name()
        );
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("yeyak serve: stopping");
        running.stop().await;
        anyhow::Ok(())
    })?;
    if let Some(dir) = temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(ExitCode::SUCCESS)
}
