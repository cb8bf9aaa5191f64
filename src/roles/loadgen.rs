//! `yeyak loadgen`: bounded HTTP load against a running `yeyak serve` on loopback.

use std::process::ExitCode;

use anyhow::Context;

use yeyak_tools::loadgen::{self, LoadConfig};

use crate::settings::CampaignArg;

#[derive(clap::Args)]
pub struct LoadgenArgs {
    /// A gateway's base URL; repeatable: the connections are spread over them, and a request
    /// whose connection fails is sent again to the next.
    #[arg(
        long = "target",
        visible_alias = "url",
        default_value = "http://127.0.0.1:8080"
    )]
    target: Vec<String>,
    /// Admin token of the server (to register supply and set the clock).
    #[arg(long, env = "YEYAK_ADMIN_TOKEN", hide_env_values = true)]
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
    /// People started per second (person n starts n/RATE seconds in); without it, as fast as
    /// the connections allow.
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Doses for this percentage of the crowd (1-1000), spread over the clinics and dates:
    /// below 100 some people meet a sold-out share (409 sold_out, counted). Without it, doses
    /// for everyone.
    #[arg(long, value_name = "PERCENT")]
    doses_percent: Option<u32>,
    /// Write the reservation id of every booking answered 201 here, one per line.
    #[arg(long, value_name = "FILE")]
    answered: Option<std::path::PathBuf>,
    // The server's campaign (give it the server's file): the crowd is its first booking day's.
    #[command(flatten)]
    campaign: CampaignArg,
}

pub fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    let config = LoadConfig {
        targets: args.target,
        campaign: args.campaign.load()?,
        admin_token: args.admin_token,
        people: args.people,
        connections: args.connections,
        read_s: args.read_s,
        rate: args.rate,
        answered: args.answered,
        doses_percent: args.doses_percent,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(loadgen::run(&config))
        .context("the load generator failed")?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "a rate is a positive number of people per second, got {text}"
        )),
    }
}
