//! `yeyak-bench`: the pipeline on a real Kafka broker against the broker's raw append rate, in
//! one run; prints a table and, last, one JSON line. A binary of its own because it installs the
//! counting allocator (the writer's heap per person), which no production role pays for.

use std::process::ExitCode;

use clap::Parser;

use yeyak_read::audit::source::error_chain;
use yeyak_tools::bench::{self, BenchConfig};

/// Counts live heap bytes, for the writer's memory per person.
#[global_allocator]
static HEAP: yeyak_tools::heap::CountingAllocator = yeyak_tools::heap::CountingAllocator;

#[derive(Parser)]
#[command(
    name = "yeyak-bench",
    version,
    about = "Measure the yeyak pipeline on a real Kafka broker against its raw append rate"
)]
struct Cli {
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
    /// The topic prefix of a deployment whose processors (and projector) run elsewhere (with
    /// `--processors 0`); its topics are kept after the run. Default: a fresh prefix, deleted.
    #[arg(long)]
    topic_prefix: Option<String>,
    /// A librdkafka property for every Kafka client (TLS, SASL), on top of
    /// YEYAK_KAFKA_PROPERTIES; repeatable. Secret values are never shown.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YEYAK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(error) = yeyak_log::client_properties::install(&cli.kafka_properties) {
        eprintln!("yeyak-bench: [{}] {error}", error.code());
        return ExitCode::FAILURE;
    }
    let config = BenchConfig {
        bootstrap: cli.kafka,
        people: cli.people,
        processors: cli.processors,
        partitions: cli.partitions,
        timeout_s: cli.timeout_s,
        batch_linger_ms: cli.linger_ms,
        batch_commands_max: cli.batch_max,
        postgres: cli.postgres,
        rate: cli.rate,
        topic_prefix: cli.topic_prefix,
    };
    match bench::run(&config, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("yeyak-bench: the benchmark failed: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
