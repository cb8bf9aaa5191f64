//! Creating and deleting the pipeline's topics (configured like every yeyak topic: see
//! `log::kafka::log_topic`).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::Topics;
use super::processor::ProcessorError;
use yeyak_log::client_config;
use yeyak_log::kafka::{block_on, log_topic};

/// Creates every command and event topic that is missing (replication factor 1: the loopback
/// broker of the scripts; a cluster sets its own default with `replication`).
pub fn ensure_topics(
    bootstrap: &str,
    topics: &Topics,
    replication: u16,
) -> Result<(), ProcessorError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .set("client.id", "yeyak-admin")
        .create()
        .map_err(|cause| ProcessorError::Client {
            role: "admin",
            cause,
        })?;
    let mut names: Vec<(String, u32)> = topics
        .pairs()
        .into_iter()
        .flat_map(|(command, event, partitions)| [(command, partitions), (event, partitions)])
        .collect();
    names.push((topics.dead_letters(), 1));
    let new: Vec<NewTopic> = names
        .iter()
        .map(|(name, partitions)| log_topic(name, *partitions, replication))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        block_on(admin.create_topics(&new, &options)).map_err(|cause| ProcessorError::Broker {
            operation: "create_topics",
            cause,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProcessorError::Broker {
                    operation: "create_topics",
                    cause: rdkafka::error::KafkaError::AdminOp(code),
                })
                .inspect_err(|_| tracing::error!(%topic, "cannot create topic"));
            }
        }
    }
    Ok(())
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
