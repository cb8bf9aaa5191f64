//! `yeyak-replay`: the auditors' replay as a binary of its own (the same as `yeyak replay`).
//! Thin: the work is `yeyak_read::audit`. Exit code 0 when the audit passed, 2 when it found
//! tampering, a broken rule or a difference with PostgreSQL, 1 when it could not run.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use yeyak_config::{ConfigError, ConfigFile, Plan};

/// The section of `yeyak.toml` this binary takes (with `[kafka]`, `[postgres]`, `campaign`).
const ROLE: &str = "replay";

#[derive(Parser)]
#[command(
    name = "yeyak-replay",
    version,
    about = "Replay and audit a yeyak log (Kafka, data directory or export)"
)]
struct Cli {
    /// The configuration file (`yeyak.toml`: `campaign`, `[kafka]`, `[postgres]`, `[replay]`),
    /// under the environment variables and the flags.
    #[arg(long, env = yeyak_config::CONFIG_ENV, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    args: yeyak_read::audit::cli::ReplayArgs,
    /// A librdkafka property for every Kafka client (TLS, SASL), on top of
    /// YEYAK_KAFKA_PROPERTIES and the file's `[kafka.properties]`; repeatable. Secret values
    /// are never shown.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
}

/// The arguments over `yeyak.toml` (flag > environment > file > default); exits on a
/// command-line error, as `Parser::parse` does.
fn parse(args: &[OsString]) -> Result<(Cli, Plan), ConfigError> {
    let plan = match yeyak_config::locate(args) {
        Some(path) => Plan::new(
            &ConfigFile::read(&path)?,
            &[(ROLE.to_owned(), Cli::command())],
            yeyak_config::ROLES,
        )?,
        None => Plan::default(),
    };
    let (matches, mut command, plan) = plan.parse_role(ROLE, Cli::command, args);
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    Ok((cli, plan))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let (cli, plan) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("yeyak-replay: [{}] {error}", error.code());
            return ExitCode::FAILURE;
        }
    };
    let properties =
        yeyak_log::client_properties::install(plan.kafka_properties(), &cli.kafka_properties);
    if let Err(error) = properties {
        eprintln!("yeyak-replay: [{}] {error}", error.code());
        return ExitCode::FAILURE;
    }
    match yeyak_read::audit::cli::replay(&cli.args, &mut std::io::stdout().lock()) {
        Ok(report) if report.ok() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(2),
        Err(error) => {
            eprintln!(
                "yeyak-replay: [{}] {}",
                error.code(),
                yeyak_read::audit::source::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
