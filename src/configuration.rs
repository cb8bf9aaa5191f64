//! The configuration of a run: `yeyak.toml` ([`yeyak_config`]) under the environment variables
//! and the flags. The file is read before the arguments are parsed, checked against every role
//! this binary knows (its subcommands and `yeyak-bench`), and set as the defaults of the roles'
//! arguments, so clap's precedence gives flag > environment > file > built-in default.

use std::ffi::OsString;

use clap::{Command, CommandFactory, FromArgMatches};
use yeyak_config::{ConfigError, ConfigFile, Plan, section_of};
use yeyak_tools::bench::cli::{BenchCli, ROLE as BENCH};

use crate::Cli;

/// Every role whose arguments this binary knows, by section: its subcommands (but `config`
/// itself), and `yeyak-bench` (whose section it checks too, and shows with `yeyak config
/// --role bench`).
pub fn roles() -> Vec<(String, Command)> {
    let mut roles: Vec<(String, Command)> = Cli::command()
        .get_subcommands()
        .filter(|command| command.get_name() != "config")
        .map(|command| (section_of(command.get_name()), command.clone()))
        .collect();
    roles.push((BENCH.to_owned(), BenchCli::command()));
    roles
}

/// The file's plan (empty without a file): every key checked against every role.
pub fn plan(args: &[OsString]) -> Result<Plan, ConfigError> {
    let Some(path) = yeyak_config::locate(args) else {
        return Ok(Plan::default());
    };
    let file = ConfigFile::read(&path)?;
    Plan::new(&file, &roles(), yeyak_config::ROLES)
}

/// The command of `role` (a section) with the file's defaults: a subcommand of `yeyak`, or
/// `yeyak-bench`'s.
pub fn role_command(plan: &Plan, role: &str) -> Option<Command> {
    roles()
        .into_iter()
        .find(|(section, _)| section == role)
        .map(|(section, command)| plan.inject(&section, command))
}

/// `yeyak`'s command with the file's defaults in every subcommand.
fn command(plan: &Plan) -> Command {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|command| command.get_name().to_owned())
        .collect();
    names.iter().fold(Cli::command(), |command, name| {
        command.mut_subcommand(name, |sub| plan.inject(&section_of(name), sub))
    })
}

/// The arguments over the file. A file value that an explicit argument conflicts with (a
/// `--data` given, `kafka.bootstrap` in the file) is dropped, as a default would be. Exits on a
/// command-line error, as `Parser::parse` does.
pub fn parse(args: &[OsString]) -> Result<(Cli, Plan), ConfigError> {
    let mut plan = plan(args)?;
    loop {
        let mut command = command(&plan);
        let matches = command
            .try_get_matches_from_mut(args)
            .unwrap_or_else(|error| error.exit());
        let overruled = matches.subcommand().and_then(|(name, sub)| {
            let role = command.find_subcommand(name)?;
            plan.overruled(&section_of(name), role, sub)
        });
        match overruled {
            Some(narrower) => plan = narrower,
            None => {
                let cli = Cli::from_arg_matches(&matches)
                    .unwrap_or_else(|error| error.format(&mut command).exit());
                return Ok((cli, plan));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_section_is_known_to_both_binaries() {
        let mut sections: Vec<String> = roles()
            .into_iter()
            .filter(|(_, command)| command.get_arguments().next().is_some())
            .map(|(section, _)| section)
            .collect();
        sections.sort();
        assert_eq!(sections, yeyak_config::ROLES);
    }
}
