//! The `yeyak` binary: clap over `yeyak.toml` (`configuration`), the settings, and one function
//! per role (`src/roles/`). `anyhow` lives here and nowhere else.

mod configuration;
mod metrics;
mod roles;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the gateway's, processor's and tail's threads allocate
/// and free many small objects at once (docs/BENCHMARKS.md, session 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "yeyak",
    version,
    about = "An event-sourced reservation ledger for mass vaccination booking"
)]
struct Cli {
    /// The configuration file (TOML; `yeyak.example.toml` documents every key), under the
    /// environment variables and the flags: flag > environment > file > built-in default.
    #[arg(long, env = yeyak_config::CONFIG_ENV, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// A librdkafka property for every Kafka client of any role (TLS, SASL, tuning), e.g.
    /// `security.protocol=SASL_SSL`; repeatable, on top of YEYAK_KAFKA_PROPERTIES (entries
    /// separated by newlines, or by commas) and the file's `[kafka.properties]`. Secret values
    /// are never shown.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", global = true)]
    kafka_properties: Vec<String>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a scaled-down 2021 campaign end to end on the embedded log and check every invariant.
    Demo(roles::demo::DemoArgs),
    /// Make a deployment's keys (YEYAK_SUBJECT_KEY, YEYAK_TOKEN_KEY) from the operating
    /// system's random source, printed as `export` lines: `eval "$(yeyak keygen)"`.
    Keygen(roles::keygen::KeygenArgs),
    /// Run a ledger processor: a consumer-group member over the command topics that decides and
    /// writes events with exactly-once Kafka transactions. Runs until SIGTERM or Ctrl-C (a kill
    /// is safe too).
    Process(roles::process::ProcessArgs),
    /// Run the PostgreSQL projector: follows the event topics and keeps the read models, exactly
    /// once (rows and offsets in one transaction). Runs until SIGTERM or Ctrl-C (a kill is safe
    /// too).
    Project(roles::project::ProjectArgs),
    /// Serve the HTTP API and the web page (the front tier), on the embedded log by default or
    /// on Kafka (+ PostgreSQL) with the processor and projector roles in the same process.
    Serve(Box<roles::serve::ServeArgs>),
    /// Measure how many requests per second a running `yeyak serve` answers (bounded load on
    /// loopback: verify, queue, poll, book), and print a table and one JSON line.
    Loadgen(roles::loadgen::LoadgenArgs),
    /// Auditors: replay a range of the log (Kafka, a data directory or an export), check every
    /// rule against the whole history, print each projection's digest, and compare with
    /// PostgreSQL. Exit code 2 when anything is wrong. Opens every log read-only.
    Replay(yeyak_read::audit::cli::ReplayArgs),
    /// Write a range of the log to a directory (the embedded log's format, checksums, a manifest
    /// with a hash chain) for auditors to work offline.
    Export(yeyak_read::audit::cli::ExportArgs),
    /// Move unused vaccine volume where it can still be used: day shares to the pool after the
    /// booking days, a closing clinic's doses to its region, toward demand. Decided by the
    /// clinic writers; idempotent and resumable.
    Rebalance(yeyak_ops::cli::RebalanceArgs),
    /// Run the seeded simulator of the writers under faults (aborts, crashes, zombies,
    /// rebalances, stalls, lost and repeated deliveries) and check that every command is
    /// answered exactly once. Prints seeds per second and the faults injected per kind; exit
    /// code 2 with the seed and its trace when a promise is broken.
    ChaosSim(yeyak_sim::cli::ChaosSimArgs),
    /// Print the effective configuration of a role (every main role without --role) as TOML,
    /// each value with its source (flag, env, file, default), secrets masked.
    Config(roles::config::ConfigArgs),
    /// Simulate the whole campaign (16.21 million people by default) through the real domain in
    /// simulated time, deterministic by seed, and write summary.json and report.html. Exit
    /// code 2 when an invariant was broken.
    Simulate(yeyak_campaign::cli::SimulateArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YEYAK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, plan) = match configuration::parse(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("yeyak: [{}] {error}", error.code());
            return ExitCode::FAILURE;
        }
    };
    match yeyak_log::client_properties::install(plan.kafka_properties(), &cli.kafka_properties) {
        Ok(properties) if !properties.is_empty() => {
            tracing::info!(properties = %properties.masked(), "Kafka client properties")
        }
        Ok(_) => {}
        Err(error) => {
            eprintln!("yeyak: [{}] {error}", error.code());
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Commands::Demo(args) => roles::demo::run(args),
        Commands::Keygen(args) => roles::keygen::run(args),
        Commands::Process(args) => roles::process::run(args),
        Commands::Project(args) => roles::project::run(args),
        Commands::Serve(args) => roles::serve::run(*args),
        Commands::Loadgen(args) => roles::loadgen::run(args),
        Commands::Replay(args) => roles::audit::replay(args),
        Commands::Export(args) => roles::audit::export(args),
        Commands::Rebalance(args) => roles::audit::rebalance(args),
        Commands::ChaosSim(args) => roles::chaos_sim::run(args),
        Commands::Simulate(args) => roles::simulate::run(args),
        Commands::Config(args) => roles::config::run(args, &plan, &cli.kafka_properties),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("yeyak: {error:#}");
            ExitCode::FAILURE
        }
    }
}
