//! The `yeyak` binary: a thin edge over the library. `anyhow` lives here and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use yeyak::demo::{self, DemoConfig};
use yeyak::identity::{Pseudonymiser, SecretKey};
use yeyak::log::FsyncPolicy;

#[derive(Parser)]
#[command(name = "yeyak", version, about = "An event-sourced reservation ledger for mass vaccination booking")]
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
            Ok(Pseudonymiser::new(SecretKey::new(bytes).context("YEYAK_SUBJECT_KEY")?))
        }
        Err(_) => {
            eprintln!("note: YEYAK_SUBJECT_KEY is not set; using the public demo key (never in production)");
            Ok(Pseudonymiser::new(SecretKey::new(b"yeyak demo key - not a secret!!!".to_vec())?))
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("YEYAK_LOG").unwrap_or_else(|_| "warn".into()))
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
        Commands::Demo { people, clinics, seed, data, fsync } => {
            let (data_dir, temporary) = match data {
                Some(dir) => (dir, false),
                None => (std::env::temp_dir().join(format!("yeyak-demo-{}", std::process::id())), true),
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
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}
