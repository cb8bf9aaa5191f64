//! What every role reads from its arguments (flags, environment, `yeyak.toml`): the
//! pseudonymisation key, the fsync policy, instants, and the stop signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::ValueEnum;

use yeyak_identity::{Pseudonymiser, SecretKey};
use yeyak_log::FsyncPolicy;

#[derive(Clone, Copy, ValueEnum)]
pub enum Fsync {
    /// Every append is on disk before it is applied (survives power loss).
    EveryAppend,
    /// Leave it to the operating system (survives a process crash, not power loss).
    Never,
}

impl From<Fsync> for FsyncPolicy {
    fn from(fsync: Fsync) -> FsyncPolicy {
        match fsync {
            Fsync::EveryAppend => FsyncPolicy::EveryAppend,
            Fsync::Never => FsyncPolicy::Never,
        }
    }
}

/// The pseudonymisation key's variable (hex, at least 32 bytes).
pub const SUBJECT_KEY_ENV: &str = "YEYAK_SUBJECT_KEY";
/// The token signing key's variable (hex, at least 32 bytes).
pub const TOKEN_KEY_ENV: &str = "YEYAK_TOKEN_KEY";

/// How to make both keys, in the words of every error that asks for them. The subject key must
/// stay the same for the whole campaign: a new one makes every person a new subject.
pub const MAKE_KEYS: &str = "make them once per deployment with `eval \"$(yeyak keygen)\"` \
(or `export YEYAK_SUBJECT_KEY=$(openssl rand -hex 32) YEYAK_TOKEN_KEY=$(openssl rand -hex 32)`) \
and keep them (a new subject key makes every person a new subject)";

/// Whether a role may fall back to the public demo key when `YEYAK_SUBJECT_KEY` is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `yeyak demo` and rehearsals on a simulated clock: the public demo key, announced.
    DemoAllowed,
    /// Anything that writes what real people do to a log that outlives it: no key, no start.
    Required,
}

/// The pseudonymisation key of a role's arguments (`--subject-key`, `YEYAK_SUBJECT_KEY` or the
/// file's `keys.subject_key`; hex, at least 32 bytes); without it, the public demo key
/// (announced as such) where `keys` allows it, else an error.
pub fn pseudonymiser(key: Option<&str>, keys: Keys) -> anyhow::Result<Pseudonymiser> {
    match key {
        Some(hex_key) => {
            let bytes = hex::decode(hex_key.trim()).context("YEYAK_SUBJECT_KEY must be hex")?;
            Ok(Pseudonymiser::new(
                SecretKey::new(bytes).context("YEYAK_SUBJECT_KEY")?,
            ))
        }
        None if keys == Keys::Required => {
            anyhow::bail!(
                "YEYAK_SUBJECT_KEY is not set (nor keys.subject_key in yeyak.toml): {MAKE_KEYS}"
            )
        }
        None => {
            eprintln!(
                "note: YEYAK_SUBJECT_KEY is not set; using the public demo key (never in production)"
            );
            Ok(Pseudonymiser::new(SecretKey::new(
                b"yeyak demo key - not a secret!!!".to_vec(),
            )?))
        }
    }
}

/// The pseudonymisation key's argument, for the roles that pseudonymise (`serve`, `demo`).
/// Its value is hidden from `--help` and masked by `yeyak config`.
#[derive(clap::Args)]
pub struct SubjectKeyArg {
    /// Pseudonymisation key (hex, at least 32 bytes), the same for the whole campaign; better
    /// in YEYAK_SUBJECT_KEY or the file's `keys.subject_key` than on a command line.
    #[arg(long, env = SUBJECT_KEY_ENV, hide_env_values = true)]
    subject_key: Option<String>,
}

impl SubjectKeyArg {
    pub fn pseudonymiser(&self, keys: Keys) -> anyhow::Result<Pseudonymiser> {
        pseudonymiser(self.subject_key.as_deref(), keys)
    }
}

pub fn parse_instant(what: &str, text: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{what} is not RFC 3339"))?
        .timestamp_millis())
}

/// The wall clock, for roles whose instant is not given.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            eprintln!("yeyak: cannot listen for SIGTERM ({error}); stop with Ctrl-C");
            if let Err(error) = tokio::signal::ctrl_c().await {
                eprintln!("yeyak: cannot listen for Ctrl-C ({error})");
            }
        }
    }
}

/// A flag that turns true at the first SIGTERM or SIGINT: the long-running roles check it
/// between steps and stop cleanly (a processor between two transactions, a projector between
/// two batches).
pub fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("yeyak-signals".into())
        .spawn(move || {
            runtime.block_on(stop_signal());
            flag.store(true, Ordering::Relaxed);
        })?;
    Ok(stop)
}

/// The durability of the topics a role creates, and checks when they already exist
/// (`yeyak_log::topic_settings`): by default it follows the cluster.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TopicArgs {
    /// Copies of each partition of every topic (default: the broker count, at most 3).
    #[arg(long, env = "YEYAK_TOPIC_REPLICATION")]
    topic_replication: Option<u16>,
    /// `min.insync.replicas` of every topic (default: 2 with 3 or more copies, else 1).
    #[arg(long, env = "YEYAK_TOPIC_MIN_INSYNC")]
    topic_min_insync: Option<u16>,
}

impl TopicArgs {
    pub fn settings(&self) -> yeyak_log::TopicSettings {
        yeyak_log::TopicSettings {
            replication: self.topic_replication,
            min_insync: self.topic_min_insync,
        }
    }
}

/// The campaign a role decides under: a TOML file, or the built-in 2021 18-49 campaign.
#[derive(Clone, Debug, clap::Args)]
pub struct CampaignArg {
    /// The campaign calendar (TOML, like campaigns/2021-18-49.toml); the built-in 2021 18-49
    /// campaign by default. Every process of a deployment must run the same one.
    #[arg(long, env = "YEYAK_CAMPAIGN")]
    pub campaign: Option<std::path::PathBuf>,
}

impl CampaignArg {
    pub fn load(&self) -> anyhow::Result<yeyak_domain::Campaign> {
        Ok(yeyak_log::load_campaign(self.campaign.as_deref())?)
    }
}
