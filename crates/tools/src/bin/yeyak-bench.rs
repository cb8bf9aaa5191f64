//! `yeyak-bench`: the pipeline on a real Kafka broker against the broker's raw append rate, in
//! one run; prints a table and, last, one JSON line. A binary of its own because it installs the
//! counting allocator (the writer's heap per person), which no production role pays for.

use std::process::ExitCode;

use yeyak_read::audit::source::error_chain;
use yeyak_tools::bench::{self, cli};

/// Counts live heap bytes, for the writer's memory per person.
#[global_allocator]
static HEAP: yeyak_tools::heap::CountingAllocator = yeyak_tools::heap::CountingAllocator;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YEYAK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, plan) = match cli::parse(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("yeyak-bench: [{}] {error}", error.code());
            return ExitCode::FAILURE;
        }
    };
    let properties =
        yeyak_log::client_properties::install(plan.kafka_properties(), &cli.kafka_properties);
    if let Err(error) = properties {
        eprintln!("yeyak-bench: [{}] {error}", error.code());
        return ExitCode::FAILURE;
    }
    let campaign = match yeyak_log::load_campaign(cli.campaign.as_deref()) {
        Ok(campaign) => campaign,
        Err(error) => {
            eprintln!("yeyak-bench: [{}] {}", error.code(), error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config();
    match bench::run_campaign(&config, &campaign, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("yeyak-bench: the benchmark failed: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
