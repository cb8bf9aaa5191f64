//! `yeyak serve`: the gateway on the embedded log, or the roles on Kafka (+ PostgreSQL) in one
//! process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

use yeyak_domain::{Campaign, Method};
use yeyak_front::api::auth::AdminToken;
use yeyak_front::backend::Backend;
use yeyak_front::client_rate::ClientRate;
use yeyak_front::providers::ProviderConfig;
use yeyak_front::server::TlsFiles;
use yeyak_front::tokens::TokenKey;
use yeyak_front::{FrontConfig, api::Front};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig};
use yeyak_ledger::pipeline::{Topics, admin};

use crate::roles::process::{self, Supervised};
use crate::roles::project::{Progress, Source, follow};
use crate::roles::stall_guard;
use crate::settings::{
    CampaignArg, Fsync, Keys, MAKE_KEYS, SubjectKeyArg, TopicArgs, parse_instant, stop_signal,
};

/// How long a role thread waits before it starts again after a failure.
const RESTART_AFTER: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    campaign: CampaignArg,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// A rehearsal: start a simulated clock at this instant (RFC 3339); it then runs in real
    /// time, and operators may move it (`POST /admin/clock`, which exists only then).
    #[arg(long)]
    clock: Option<String>,
    /// Turns the admin endpoints on, guarded by this bearer token (at least 32 bytes, e.g.
    /// `openssl rand -hex 32`).
    #[arg(long, env = "YEYAK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Keep the embedded log here (created if missing; reopened and replayed if not empty).
    /// Without it, and without --kafka, a temporary directory that is removed at exit. Excludes
    /// --kafka (given here, it overrules the configuration file's kafka.bootstrap).
    #[arg(long, conflicts_with = "kafka")]
    data: Option<PathBuf>,
    /// Kafka bootstrap servers: run on the Kafka pipeline instead of the embedded log.
    #[arg(long, env = "YEYAK_KAFKA")]
    kafka: Option<String>,
    /// PostgreSQL URL: also run the projector role (needs --kafka).
    #[arg(long, env = "YEYAK_POSTGRES")]
    postgres: Option<String>,
    /// Roles this process runs on Kafka (comma-separated): gateway, processor, projector.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gateway,processor,projector"
    )]
    roles: Vec<Role>,
    #[arg(long, default_value = "")]
    topic_prefix: String,
    #[command(flatten)]
    durability: TopicArgs,
    /// The waiting room opens at this instant (RFC 3339); earlier arrivals wait in the pre-queue.
    #[arg(long)]
    opens_at: Option<String>,
    /// First come, first served even before opening: no pre-queue draw.
    #[arg(long)]
    fifo_only: bool,
    /// Tickets admitted per second at most.
    #[arg(long, default_value_t = 500.0)]
    admit_per_s: f64,
    /// How long an admission (and its token) is valid.
    #[arg(long, default_value_t = 600)]
    admission_ttl_s: i64,
    /// A waiting ticket whose page has not polled for this long is skipped.
    #[arg(long, default_value_t = 60)]
    heartbeat_timeout_s: u64,
    /// The admission controller's period (it admits what the outflow rate allows each tick).
    #[arg(long, default_value_t = 200)]
    controller_tick_ms: u64,
    /// Report each verification method's congestion light to the ledger (the `congestion` read
    /// model) when it changes and at least every this many seconds; 0 = never.
    #[arg(long, default_value_t = 10)]
    congestion_report_s: u64,
    /// When appends of the embedded log reach the disk.
    #[arg(long, value_enum, default_value_t = Fsync::EveryAppend)]
    fsync: Fsync,
    /// Identity providers answer at once (for load measurements), instead of the simulated latencies.
    #[arg(long)]
    instant_providers: bool,
    /// `POST /v1/verify` per client address (IPv4, or IPv6 /64) and second at most, on average
    /// (429 client_rate_limited); off by default: behind a proxy or a carrier's NAT many people
    /// share one address.
    #[arg(long, value_name = "N")]
    verify_rate_per_ip: Option<f64>,
    /// How many verifications one address may send at once under --verify-rate-per-ip.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        requires = "verify_rate_per_ip"
    )]
    verify_burst_per_ip: u32,
    /// Token signing key (hex, at least 32 bytes); every gateway of a deployment needs the same.
    /// Required (with YEYAK_SUBJECT_KEY) unless this is a rehearsal: the embedded log with
    /// --clock, which then uses a random key for this process only.
    #[arg(long, env = "YEYAK_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    #[command(flatten)]
    subject_key: SubjectKeyArg,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first), for
    /// deployments without a TLS-terminating proxy; needs --tls-key.
    #[arg(long, env = "YEYAK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "YEYAK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    Gateway,
    Processor,
    Projector,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // clap's `requires` holds for flags and variables, not for the file's defaults.
    anyhow::ensure!(
        args.tls_cert.is_some() == args.tls_key.is_some(),
        "--tls-cert and --tls-key (serve.tls_cert, serve.tls_key) go together"
    );
    let campaign = args.campaign.load()?;
    let config = front_config(&args)?;
    let kafka = args.kafka.clone().filter(|k| !k.trim().is_empty());
    // Only a rehearsal on the embedded log and a simulated clock may run on demo keys.
    let key_policy = match (&kafka, &args.clock) {
        (None, Some(_)) => Keys::DemoAllowed,
        _ => Keys::Required,
    };
    let keys = token_key(&args, key_policy)?;
    let pseudonymiser = args.subject_key.pseudonymiser(key_policy)?;
    anyhow::ensure!(
        kafka.is_none() || args.data.is_none(),
        "--data (the embedded log) and --kafka or YEYAK_KAFKA exclude each other"
    );
    let mut temporary = None;
    let backend = match &kafka {
        None => embedded(&args, campaign, &mut temporary)?,
        Some(kafka) => match kafka_roles(&args, kafka, campaign, &config)? {
            Some(backend) => backend,
            None => return Ok(ExitCode::SUCCESS),
        },
    };
    let front = Front::new(config, backend, keys, pseudonymiser);
    if let Some(clock) = &args.clock {
        front.clock.set(parse_instant("--clock", clock)?);
    }
    let tls = args
        .tls_cert
        .clone()
        .zip(args.tls_key.clone())
        .map(|(cert, key)| TlsFiles { cert, key });
    let served = serve_http(front, args.listen, tls);
    if let Some(dir) = temporary {
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            eprintln!("yeyak serve: cannot remove {}: {error}", dir.display());
        }
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

fn front_config(args: &ServeArgs) -> anyhow::Result<FrontConfig> {
    let admin_token = args
        .admin_token
        .as_deref()
        .map(AdminToken::new)
        .transpose()
        .context("--admin-token / YEYAK_ADMIN_TOKEN")?;
    let mut config = FrontConfig {
        admin_token,
        simulated_clock: args.clock.is_some(),
        ..FrontConfig::default()
    };
    config.opens_at_ms = args
        .opens_at
        .as_deref()
        .map(|t| parse_instant("--opens-at", t))
        .transpose()?;
    config.pre_queue_draw = !args.fifo_only;
    config.admit_per_s = args.admit_per_s;
    config.admission_ttl_ms = args.admission_ttl_s * 1000;
    config.heartbeat_timeout_ms = args.heartbeat_timeout_s * 1000;
    config.controller_tick_ms = args.controller_tick_ms;
    config.congestion_report_ms = args.congestion_report_s.saturating_mul(1000);
    if let Some(per_s) = args.verify_rate_per_ip {
        anyhow::ensure!(
            per_s.is_finite() && per_s > 0.0,
            "--verify-rate-per-ip must be a positive number of requests a second"
        );
        config.http.verify_per_client = Some(ClientRate::new(per_s, args.verify_burst_per_ip));
    }
    if args.instant_providers {
        config.providers = Method::ALL
            .iter()
            .map(|m| (*m, ProviderConfig::instant()))
            .collect();
    }
    Ok(config)
}

fn token_key(args: &ServeArgs, keys: Keys) -> anyhow::Result<TokenKey> {
    Ok(match &args.token_key {
        Some(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("--token-key must be hex")?;
            anyhow::ensure!(bytes.len() >= 32, "--token-key must be at least 32 bytes");
            TokenKey::new(bytes)
        }
        None if keys == Keys::Required => {
            anyhow::bail!("YEYAK_TOKEN_KEY (or --token-key) is not set: {MAKE_KEYS}")
        }
        None => TokenKey::ephemeral()?,
    })
}

/// The embedded ledger in `--data`, or in a temporary directory removed at exit.
fn embedded(
    args: &ServeArgs,
    campaign: Campaign,
    temporary: &mut Option<PathBuf>,
) -> anyhow::Result<Backend> {
    anyhow::ensure!(
        args.postgres.as_deref().is_none_or(|p| p.trim().is_empty()),
        "--postgres needs --kafka (the projector follows the Kafka event topics)"
    );
    let dir = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("yeyak-serve-{}", std::process::id()));
            *temporary = Some(dir.clone());
            dir
        }
    };
    eprintln!("yeyak serve: embedded log in {}", dir.display());
    Backend::embedded_dir(&dir, campaign, args.fsync.into())
        .context("cannot open the embedded ledger")
}

/// Starts the processor and projector roles this process runs, and the gateway's backend
/// (`None` without the gateway role: then this returns only when stopped).
fn kafka_roles(
    args: &ServeArgs,
    kafka: &str,
    campaign: Campaign,
    config: &FrontConfig,
) -> anyhow::Result<Option<Backend>> {
    let runs = |role: Role| args.roles.contains(&role);
    let topology = Topology::default();
    let topics = Topics::new(&args.topic_prefix, topology);
    let durability = admin::ensure_topics(kafka, &topics, args.durability.settings())
        .context("cannot create the topics")?;
    eprintln!(
        "yeyak serve: topics with {} replica(s), min.insync.replicas {}",
        durability.replication, durability.min_insync
    );
    if runs(Role::Processor) {
        spawn_processor(kafka.to_owned(), topics.clone(), campaign.clone())?;
    }
    let postgres = args.postgres.clone().filter(|p| !p.trim().is_empty());
    if let (true, Some(postgres)) = (runs(Role::Projector), postgres) {
        spawn_projector(
            kafka.to_owned(),
            args.topic_prefix.clone(),
            postgres,
            topology,
        )?;
    }
    if !runs(Role::Gateway) {
        eprintln!("yeyak serve: running without the gateway role; stop with Ctrl-C");
        wait_for_stop()?;
        return Ok(None);
    }
    let backend = Backend::kafka(kafka, topics, campaign, config.decision_timeout)
        .context("cannot connect to Kafka")?;
    backend.wait_caught_up(Duration::from_millis(500), Duration::from_secs(60));
    Ok(Some(backend))
}

/// A processor on a thread of its own, supervised as `yeyak process` supervises its own (new
/// incarnations when fenced, and by its watchdog when it owns commands and decides none),
/// and started again after any other failure. Its stall guard, too: a step blocked inside a
/// Kafka call for 5 minutes ends the whole server (exit code 3), to be started again by its
/// supervisor, as `yeyak process` does (nothing is lost: the open transaction is aborted).
fn spawn_processor(kafka: String, topics: Topics, campaign: Campaign) -> anyhow::Result<()> {
    let instance = format!("serve-{}", std::process::id());
    // The processor runs as long as the server: nothing stops it but the process's end.
    static NEVER: AtomicBool = AtomicBool::new(false);
    let steps = stall_guard::watch(
        format!("yeyak serve (processor {instance})"),
        Arc::new(AtomicBool::new(false)),
        process::now_ms,
    )?;
    std::thread::Builder::new()
        .name("yeyak-processor".into())
        .spawn(move || {
            loop {
                steps.begin(process::now_ms());
                let config = ProcessorConfig::new(&kafka, topics.clone(), &instance);
                match Processor::start(config.clone(), campaign.clone()) {
                    Ok(processor) => {
                        let running =
                            Supervised::new(processor, config, campaign.clone(), instance.clone())
                                .watched_by(steps.clone());
                        supervise(running, &NEVER);
                    }
                    Err(error) => {
                        eprintln!("yeyak serve: cannot start the processor ({error}); retrying")
                    }
                }
                steps.begin(process::now_ms());
                std::thread::sleep(RESTART_AFTER);
            }
        })?;
    Ok(())
}

/// Steps the processor until it stops or fails (said on stderr: the caller starts it again).
fn supervise(mut running: Supervised, stop: &AtomicBool) {
    loop {
        running.beat();
        running = match running.step(stop) {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(error) => {
                eprintln!("yeyak serve: the processor stopped ({error:#}); restarting");
                return;
            }
        };
    }
}

/// A PostgreSQL projector on a thread of its own, started again after every failure.
fn spawn_projector(
    kafka: String,
    prefix: String,
    postgres: String,
    topology: Topology,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("yeyak-projector".into())
        .spawn(move || {
            let source = Source {
                kafka: &kafka,
                topic_prefix: &prefix,
                postgres: &postgres,
                topology,
            };
            // Runs as long as the process: only a failure ends `follow`.
            let never = AtomicBool::new(false);
            loop {
                if let Err(error) = follow(&source, false, &never, &Progress::default(), || {}) {
                    eprintln!("yeyak serve: the projector stopped ({error:#}); restarting");
                }
                std::thread::sleep(RESTART_AFTER);
            }
        })?;
    Ok(())
}

/// Blocks until SIGTERM or Ctrl-C.
fn wait_for_stop() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(stop_signal());
    Ok(())
}

/// Serves HTTP (HTTPS with `tls`) until SIGTERM or Ctrl-C, then drains.
fn serve_http(
    front: Front,
    listen: std::net::SocketAddr,
    tls: Option<TlsFiles>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (running, scheme) = match &tls {
            None => (yeyak_front::server::start(front, listen).await, "http"),
            Some(tls) => (
                yeyak_front::server::start_https(front, listen, tls).await,
                "https",
            ),
        };
        let running = running.with_context(|| match &tls {
            None => "cannot listen".to_owned(),
            Some(tls) => format!(
                "cannot listen with HTTPS ({}, {})",
                tls.cert.display(),
                tls.key.display()
            ),
        })?;
        eprintln!(
            "yeyak serve: listening on {scheme}://{} ({} backend)",
            running.addr,
            running.front.backend.name()
        );
        stop_signal().await;
        eprintln!("yeyak serve: stopping");
        running.stop().await;
        anyhow::Ok(())
    })
}
