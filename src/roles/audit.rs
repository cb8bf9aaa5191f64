//! The auditors' and operators' batch roles: `yeyak replay`, `yeyak export`, `yeyak rebalance`.

use std::process::ExitCode;

use anyhow::Context;

use yeyak_ops::cli::RebalanceArgs;
use yeyak_read::audit::AuditError;
use yeyak_read::audit::cli::{ExportArgs, ReplayArgs};
use yeyak_read::audit::source::error_chain;

use crate::settings::now_ms;

fn coded(error: AuditError) -> anyhow::Error {
    anyhow::anyhow!("[{}] {}", error.code(), error_chain(&error))
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let report =
        yeyak_read::audit::cli::replay(&args, &mut std::io::stdout().lock()).map_err(coded)?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    yeyak_read::audit::cli::export(&args, &mut std::io::stdout().lock()).map_err(coded)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rebalance(args: RebalanceArgs) -> anyhow::Result<ExitCode> {
    yeyak_ops::cli::rebalance(&args, now_ms(), &mut std::io::stdout().lock())
        .context("the rebalance failed")?;
    Ok(ExitCode::SUCCESS)
}
