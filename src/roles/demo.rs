//! `yeyak demo`: the scaled-down 2021 campaign on the embedded log (the main job).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use yeyak_tools::demo::{self, DemoConfig};

use crate::settings::{CampaignArg, Fsync, Keys, SubjectKeyArg};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many people (about a fifth fall outside the 18-49 group).
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
    #[command(flatten)]
    subject_key: SubjectKeyArg,
    #[command(flatten)]
    campaign: CampaignArg,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let campaign = args.campaign.load()?;
    let (data_dir, temporary) = match args.data {
        Some(dir) => (dir, false),
        None => (
            std::env::temp_dir().join(format!("yeyak-demo-{}", std::process::id())),
            true,
        ),
    };
    let config = DemoConfig {
        people: args.people,
        clinics: args.clinics,
        seed: args.seed,
        data_dir: data_dir.clone(),
        fsync: args.fsync.into(),
    };
    let result = demo::run_campaign(
        &config,
        &campaign,
        &args.subject_key.pseudonymiser(Keys::DemoAllowed)?,
        &mut std::io::stdout().lock(),
    );
    if temporary {
        if let Err(error) = std::fs::remove_dir_all(&data_dir) {
            eprintln!("yeyak demo: cannot remove {}: {error}", data_dir.display());
        }
    }
    let report = result.context("the demo failed")?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
