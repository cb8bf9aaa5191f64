//! `yeyak keygen`: makes a deployment's two keys from the operating system's random source and
//! prints them as shell `export` lines (`eval "$(yeyak keygen)"`). It writes nothing else
//! anywhere: keeping them (a secret store, the deployment's environment) is the operator's job.

use std::process::ExitCode;

use anyhow::Context;

use crate::settings::{SUBJECT_KEY_ENV, TOKEN_KEY_ENV};

/// Bytes of each key (the least either accepts).
const KEY_BYTES: usize = 32;

#[derive(clap::Args)]
pub struct KeygenArgs {}

pub fn run(_: KeygenArgs) -> anyhow::Result<ExitCode> {
    for name in [SUBJECT_KEY_ENV, TOKEN_KEY_ENV] {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("the operating system's random source")?;
        println!("export {name}={}", hex::encode(key));
    }
    Ok(ExitCode::SUCCESS)
}
