//! `yeyak process`: one ledger processor on Kafka, until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use yeyak_domain::Campaign;
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig};
use yeyak_ledger::pipeline::{Topics, admin};

use crate::settings::{TopicArgs, stop_on_signal};

/// How often a running processor prints its counters.
const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct ProcessArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "YEYAK_KAFKA")]
    kafka: String,
    /// Prefix of every topic (isolates deployments sharing a broker).
    #[arg(long, default_value = "")]
    topic_prefix: String,
    /// This processor's instance name; part of its transactional id.
    #[arg(long, default_value = "0")]
    instance: String,
    #[arg(long, default_value_t = 8)]
    subject_partitions: u32,
    #[arg(long, default_value_t = 8)]
    clinic_partitions: u32,
    /// Consumer-group session timeout: how soon a dead processor's partitions move.
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: u32,
    #[command(flatten)]
    durability: TopicArgs,
}

pub fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let topology = Topology {
        subject_partitions: args.subject_partitions,
        clinic_partitions: args.clinic_partitions,
    };
    let topics = Topics::new(&args.topic_prefix, topology);
    let durability = admin::ensure_topics(&args.kafka, &topics, args.durability.settings())
        .context("cannot create the topics")?;
    eprintln!(
        "yeyak process {}: topics with {} replica(s), min.insync.replicas {}",
        args.instance, durability.replication, durability.min_insync
    );
    let mut config = ProcessorConfig::new(&args.kafka, topics, &args.instance);
    config.session_timeout_ms = args.session_timeout_ms;
    let stop = stop_on_signal()?;
    let mut processor =
        Processor::start(config, Campaign::default_2021()).context("cannot start the processor")?;
    let instance = &args.instance;
    eprintln!("yeyak process {instance}: running");
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        processor.step().context("the processor stopped")?;
        if last_report.elapsed() > REPORT_EVERY {
            eprintln!("yeyak process {instance}: {:?}", processor.stats());
            last_report = Instant::now();
        }
    }
    eprintln!("yeyak process {instance}: stopped: {:?}", processor.stats());
    Ok(ExitCode::SUCCESS)
}
