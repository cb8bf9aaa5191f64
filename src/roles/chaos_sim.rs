//! `yeyak chaos-sim`: the seeded simulator of the writers under faults (`yeyak_sim`).

use std::process::ExitCode;

use yeyak_sim::cli::{ChaosSimArgs, run_cli};

pub fn run(args: ChaosSimArgs) -> anyhow::Result<ExitCode> {
    let kept = run_cli(&args, &mut std::io::stdout().lock())?;
    Ok(if kept {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
