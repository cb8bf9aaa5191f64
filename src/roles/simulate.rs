//! `yeyak simulate`: the whole campaign through the real domain in simulated time, with a
//! report (`yeyak_campaign`).

use std::process::ExitCode;

use yeyak_campaign::cli::{SimulateArgs, run_cli};

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let held = run_cli(&args, &mut std::io::stderr().lock())?;
    Ok(if held {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
