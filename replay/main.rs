//! `yeyak-replay`: the auditors' replay as a binary of its own (the same as `yeyak replay`).
//! Thin: the work is `yeyak_read::audit`. Exit code 0 when the audit passed, 2 when it found
//! tampering, a broken rule or a difference with PostgreSQL, 1 when it could not run.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "yeyak-replay",
    version,
    about = "Replay and audit a yeyak log (Kafka, data directory or export)"
)]
struct Cli {
    #[command(flatten)]
    args: yeyak_read::audit::cli::ReplayArgs,
    /// A librdkafka property for every Kafka client (TLS, SASL), on top of
    /// YEYAK_KAFKA_PROPERTIES; repeatable. Secret values are never shown.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = yeyak_log::client_properties::install(&cli.kafka_properties) {
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
