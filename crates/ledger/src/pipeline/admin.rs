//! Creating and deleting the pipeline's topics (configured like every yeyak topic: see
//! `log::kafka::log_topic`), with the durability of `log::topic_settings`.

use std::time::{Duration, Instant};

use rdkafka::metadata::Metadata;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::Topics;
use super::processor::ProcessorError;
use yeyak_log::client_config;
use yeyak_log::kafka::{DurabilityText, block_on, log_topic};
use yeyak_log::topic_settings::{Durability, TopicSettings, TopicSettingsError, check_topic};

/// Creates every command and event topic that is missing, with the deployment's durability
/// (`settings` resolved on the cluster: see `yeyak_log::topic_settings`), and checks every topic
/// that already existed against it: partitions, replication and `min.insync.replicas`. A topic
/// that differs is an error, never silently used. Returns the durability in force.
pub fn ensure_topics(
    bootstrap: &str,
    topics: &Topics,
    settings: TopicSettings,
) -> Result<Durability, ProcessorError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .set("client.id", "yeyak-admin")
        .create()
        .map_err(|cause| ProcessorError::Client {
            role: "admin",
            cause,
        })?;
    let timeout = Duration::from_secs(30);
    let durability = settings
        .resolve_on(admin.inner(), timeout)
        .map_err(|e| ProcessorError::TopicSettings(Box::new(e)))?;
    let text = DurabilityText::from(durability);
    let mut names: Vec<(String, u32)> = topics
        .pairs()
        .into_iter()
        .flat_map(|(command, event, partitions)| [(command, partitions), (event, partitions)])
        .collect();
    names.push((topics.dead_letters(), 1));
    let new: Vec<NewTopic> = names
        .iter()
        .map(|(name, partitions)| log_topic(name, *partitions, &text))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results =
        block_on(admin.create_topics(&new, &options)).map_err(|cause| ProcessorError::Broker {
            operation: "create_topics",
            cause,
        })?;
    let mut existing = Vec::new();
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(topic),
            Err((topic, code)) => {
                tracing::error!(%topic, "cannot create topic");
                return Err(ProcessorError::Broker {
                    operation: "create_topics",
                    cause: rdkafka::error::KafkaError::AdminOp(code),
                });
            }
        }
    }
    check_existing(&admin, &names, &existing, durability, timeout)?;
    Ok(durability)
}

fn check_existing(
    admin: &AdminClient<DefaultClientContext>,
    names: &[(String, u32)],
    existing: &[String],
    durability: Durability,
    timeout: Duration,
) -> Result<(), ProcessorError> {
    if existing.is_empty() {
        return Ok(());
    }
    // A topic another role created a moment ago may not show its settings on every broker
    // yet (seen in the chaos suite: `min.insync.replicas` unset on the three-broker cluster as
    // two processors started together): a mismatch is checked again until it lasts.
    let deadline = Instant::now() + SETTLED_WITHIN;
    loop {
        let metadata = metadata_showing(admin, existing, timeout)?;
        let checked = names
            .iter()
            .filter(|(n, _)| existing.contains(n))
            .try_for_each(|(name, partitions)| {
                check_topic(admin, &metadata, name, *partitions, durability, timeout)
            });
        match checked {
            Ok(()) => return Ok(()),
            Err(error @ TopicSettingsError::Mismatch { .. }) if Instant::now() < deadline => {
                tracing::info!(%error, "a topic's settings differ; checking again");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => return Err(ProcessorError::TopicSettings(Box::new(error))),
        }
    }
}

/// How long a topic's settings may take to show on every broker after another role created it.
const SETTLED_WITHIN: Duration = Duration::from_secs(10);

/// The cluster's metadata once it lists every topic of `names` with its partitions: a topic
/// another role has just created may not be in every broker's metadata yet.
fn metadata_showing(
    admin: &AdminClient<DefaultClientContext>,
    names: &[String],
    timeout: Duration,
) -> Result<Metadata, ProcessorError> {
    let deadline = Instant::now() + timeout;
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|cause| ProcessorError::Broker {
                operation: "metadata",
                cause,
            })?;
        let shown = |name: &String| {
            metadata
                .topics()
                .iter()
                .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
        };
        if names.iter().all(shown) || Instant::now() >= deadline {
            return Ok(metadata);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deletes every topic of a deployment (tests and benchmarks clean up after themselves).
pub fn delete_topics(bootstrap: &str, topics: &Topics) -> Result<(), ProcessorError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .set("client.id", "yeyak-admin")
        .create()
        .map_err(|cause| ProcessorError::Client {
            role: "admin",
            cause,
        })?;
    let mut names: Vec<String> = topics
        .pairs()
        .into_iter()
        .flat_map(|(c, e, _)| [c, e])
        .collect();
    names.push(topics.dead_letters());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    block_on(admin.delete_topics(&refs, &options)).map_err(|cause| ProcessorError::Broker {
        operation: "delete_topics",
        cause,
    })?;
    Ok(())
}
