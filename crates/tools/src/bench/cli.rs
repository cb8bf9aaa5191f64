//! `yeyak-bench`'s command line, here rather than in its binary so that `yeyak config --role
//! bench` shows (and `yeyak` checks) the same arguments; and [`parse`], the arguments over
//! `yeyak.toml` (flag > environment > file > default).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use yeyak_config::{ConfigError, ConfigFile, Plan};

use super::BenchConfig;

/// The bench's section of `yeyak.toml`.
pub const ROLE: &str = "bench";

#[derive(Parser)]
#[command(
    name = "yeyak-bench",
    version,
    about = "Measure the yeyak pipeline on a real Kafka broker against its raw append rate"
)]
pub struct BenchCli {
    /// The configuration file (`yeyak.toml`: its `[kafka]` and `[bench]`), under the
    /// environment variables and the flags.
    #[arg(long, env = yeyak_config::CONFIG_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "YEYAK_KAFKA")]
    pub kafka: String,
    #[arg(long, default_value_t = 20_000)]
    pub people: u32,
    /// Processors in this process (each a consumer-group member with its own transactions).
    #[arg(long, default_value_t = 1)]
    pub processors: u32,
    /// Partitions of each topic kind.
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// How long a processor waits to fill a batch after its first command.
    #[arg(long, default_value_t = 20)]
    pub linger_ms: u64,
    /// A processor's batch closes once no command came for this long.
    #[arg(long, default_value_t = 1)]
    pub quiet_ms: u64,
    /// The most commands in one processor batch (one Kafka transaction).
    #[arg(long, default_value_t = 20_000)]
    pub batch_max: usize,
    /// Also run a PostgreSQL projector and measure decision -> row latency.
    #[arg(long, env = "YEYAK_POSTGRES")]
    pub postgres: Option<String>,
    /// People arriving per second (paced: latency at a given load); without it everyone
    /// arrives at once (the stampede: throughput).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Admissions per second, granted as the gateway's controller grants them (every 20 ms,
    /// what the rate paid for): the pipeline is measured at this outflow. A deployment's
    /// gateway admits 500 a second by default.
    #[arg(long, default_value_t = super::ADMIT_PER_S_DEFAULT)]
    pub admit_per_s: u32,
    /// Doses for this percentage of the crowd, in every day share: below 100, people whose
    /// pick sold out are refused (`sold_out`, counted). Without it there are doses for all.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub doses_percent: Option<u32>,
    /// The topic prefix of a deployment whose processors (and projector) run elsewhere (with
    /// `--processors 0`); its topics are kept after the run. Default: a fresh prefix, deleted.
    #[arg(long)]
    pub topic_prefix: Option<String>,
    /// A librdkafka property for every Kafka client (TLS, SASL), on top of
    /// YEYAK_KAFKA_PROPERTIES and the file's `[kafka.properties]`; repeatable. Secret values
    /// are never shown.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// The campaign calendar (TOML, like campaigns/2021-18-49.toml): the crowd is that of its
    /// first booking day; the built-in 2021 18-49 campaign by default.
    #[arg(long, env = "YEYAK_CAMPAIGN")]
    pub campaign: Option<PathBuf>,
}

impl BenchCli {
    pub fn config(self) -> BenchConfig {
        BenchConfig {
            bootstrap: self.kafka,
            people: self.people,
            processors: self.processors,
            partitions: self.partitions,
            timeout_s: self.timeout_s,
            batch_linger_ms: self.linger_ms,
            batch_quiet_ms: self.quiet_ms,
            batch_commands_max: self.batch_max,
            postgres: self.postgres,
            rate: self.rate,
            admit_per_s: self.admit_per_s,
            doses_percent: self.doses_percent,
            topic_prefix: self.topic_prefix,
        }
    }
}

/// The configuration file's plan for the bench (empty without a file): its keys are checked
/// against the bench's arguments; other roles' sections are left to `yeyak`.
pub fn plan(args: &[OsString]) -> Result<Plan, ConfigError> {
    let Some(path) = yeyak_config::locate(args) else {
        return Ok(Plan::default());
    };
    let file = ConfigFile::read(&path)?;
    Plan::new(
        &file,
        &[(ROLE.to_owned(), BenchCli::command())],
        yeyak_config::ROLES,
    )
}

/// The bench's arguments over the file. Exits on a command-line error, as `Parser::parse` does.
pub fn parse(args: &[OsString]) -> Result<(BenchCli, Plan), ConfigError> {
    let (matches, mut command, plan) = plan(args)?.parse_role(ROLE, BenchCli::command, args);
    let cli = BenchCli::from_arg_matches(&matches)
        .unwrap_or_else(|error| error.format(&mut command).exit());
    Ok((cli, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of `yeyak-bench --config FILE` with `text` in the file.
    fn plan_of(name: &str, text: &str) -> Result<Plan, ConfigError> {
        let path =
            std::env::temp_dir().join(format!("yeyak-bench-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let args: Vec<OsString> = ["yeyak-bench", "--config", path.to_str().unwrap()]
            .iter()
            .map(OsString::from)
            .collect();
        let plan = plan(&args);
        std::fs::remove_file(&path).unwrap();
        plan
    }

    #[test]
    fn the_bench_never_takes_a_deployments_topic_prefix_from_the_file() {
        let plan = plan_of(
            "prefix",
            "[kafka]\nbootstrap = \"k:9092\"\ntopic_prefix = \"prod.\"\n",
        )
        .unwrap();
        assert!(plan.sets(ROLE, "kafka"));
        assert!(!plan.sets(ROLE, "topic_prefix"));
        let plan = plan_of("own-prefix", "[bench]\ntopic_prefix = \"chaos.\"\n").unwrap();
        assert!(plan.sets(ROLE, "topic_prefix"));
    }

    #[test]
    fn its_keys_are_checked_and_other_roles_left_to_yeyak() {
        let refused = plan_of("wrong", "[bench]\npeople = \"many\"\n").unwrap_err();
        assert_eq!(refused.code(), "config_wrong_type");
        assert!(refused.to_string().contains("bench.people"), "{refused}");
        let refused = plan_of("unknown", "[bench]\npeeple = 5\n").unwrap_err();
        assert!(
            refused.to_string().contains("unknown key bench.peeple"),
            "{refused}"
        );
        plan_of("others", "[serve]\nlisen = 1\n").unwrap();
    }
}
