//! `yeyak config`: the effective configuration of a role as TOML (flag > environment > file >
//! default), each value with its source, secrets masked. What the role would run with, minus
//! the checks the role itself makes at start (keys present, URLs reachable).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgMatches, Command};

use yeyak_config::{MASK, Plan, Shown, Source, effective, render};
use yeyak_log::client_properties::{ClientProperties, is_secret, properties_from_env};

use crate::configuration::role_command;

/// The roles shown when none is asked for.
const MAIN_ROLES: &[&str] = &[
    "serve",
    "process",
    "project",
    "replay",
    "export",
    "rebalance",
    "bench",
];

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The role to show (serve, process, project, replay, export, rebalance, bench, demo,
    /// loadgen, simulate); every main role when left out.
    #[arg(long)]
    role: Option<String>,
    /// That role's own flags, after `--`, as it would be run: `yeyak config --role serve --
    /// --listen 0.0.0.0:8080`.
    #[arg(last = true)]
    args: Vec<String>,
}

pub fn run(args: ConfigArgs, plan: &Plan, kafka_flags: &[String]) -> anyhow::Result<ExitCode> {
    let roles: Vec<String> = match &args.role {
        Some(role) => vec![yeyak_config::section_of(role)],
        None => MAIN_ROLES.iter().map(|r| (*r).to_owned()).collect(),
    };
    let file = plan
        .path()
        .map_or("none".to_owned(), |p| p.display().to_string());
    println!("# yeyak's effective configuration: flag > env > file ({file}) > default");
    for role in roles {
        println!("\n# ---- {role} ----");
        print!("{}", show(&role, &args.args, plan, kafka_flags)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn show(
    role: &str,
    args: &[String],
    plan: &Plan,
    kafka_flags: &[String],
) -> anyhow::Result<String> {
    let (command, matches, plan) = parse(role, args, plan)?;
    let mut shown = effective(&plan, role, &command, &matches);
    if command.get_arguments().any(|arg| arg.get_id() == "kafka") {
        shown.extend(kafka_properties(&plan, kafka_flags)?);
    }
    Ok(render(&shown))
}

/// The role's arguments over the file, as the role itself parses them (a file value an
/// explicit argument conflicts with dropped), but with nothing required: a missing value is
/// shown as not set, and the role itself refuses to start then.
fn parse(role: &str, args: &[String], plan: &Plan) -> anyhow::Result<(Command, ArgMatches, Plan)> {
    let mut plan = plan.clone();
    loop {
        let command = role_command(&plan, role)
            .with_context(|| format!("no role {role} (see `yeyak --help`)"))?;
        let mut command = command.mut_args(|arg| {
            arg.required(false)
                .required_unless_present(clap::builder::Resettable::Reset)
        });
        let argv = std::iter::once(role.to_owned()).chain(args.iter().cloned());
        let matches = command
            .try_get_matches_from_mut(argv)
            .map_err(|error| anyhow::anyhow!("{}", error.render()))?;
        match plan.overruled(role, &command, &matches) {
            Some(narrower) => plan = narrower,
            None => return Ok((command, matches, plan)),
        }
    }
}

/// `[kafka.properties]` as every Kafka client of the role gets them: the file's, then
/// `YEYAK_KAFKA_PROPERTIES`, then `--kafka-property`; secret values masked.
fn kafka_properties(plan: &Plan, flags: &[String]) -> anyhow::Result<Vec<Shown>> {
    let mut layers: BTreeMap<String, (String, Source)> = BTreeMap::new();
    for (key, value) in plan.kafka_properties() {
        layers.insert(key.clone(), (value.clone(), Source::File));
    }
    let mut from_flags = ClientProperties::default();
    for (index, entry) in flags.iter().enumerate() {
        from_flags.set_entry(index + 1, entry)?;
    }
    for (properties, source) in [
        (properties_from_env()?, Source::Env),
        (from_flags, Source::Flag),
    ] {
        for (key, value) in properties.shown() {
            layers.insert(key.to_owned(), (value.to_owned(), source));
        }
    }
    Ok(layers
        .into_iter()
        .map(|(key, (value, source))| {
            let value = if is_secret(&key) {
                MASK.to_owned()
            } else {
                value
            };
            Shown {
                section: Some("kafka.properties".to_owned()),
                name: key,
                value: Some(toml::Value::String(value).to_string()),
                source: Some(source),
            }
        })
        .collect())
}
