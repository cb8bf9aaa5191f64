//! How safely every yeyak topic keeps its records: how many brokers hold a copy of each
//! partition (`replication`) and how many of them must have a write before it counts
//! (`min.insync.replicas`; with the producers' `acks=all`). The defaults follow the cluster:
//! three copies and two in sync on three or more brokers, every broker's copy below that.
//!
//! A topic that already exists with other settings is refused with a [`TopicSettingsError`]
//! naming the topic, the setting, what was asked and what was found: a deployment never runs
//! on a topic whose partitions or durability differ from its configuration without being told.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

/// The replication of the topics a role creates, as configured; `None` follows the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicSettings {
    /// Copies of each partition; default: `min(brokers, 3)`.
    pub replication: Option<u16>,
    /// `min.insync.replicas`; default: 2 when there are 3 or more copies, else 1.
    pub min_insync: Option<u16>,
}

/// [`TopicSettings`] resolved against a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub replication: u16,
    pub min_insync: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicSettingsError {
    #[error("a replication factor and min.insync.replicas must be at least 1")]
    Zero,
    #[error(
        "a replication factor of {replication} needs {replication} brokers; the cluster has {brokers}"
    )]
    TooFewBrokers { replication: u16, brokers: usize },
    #[error("min.insync.replicas {min_insync} is above the replication factor {replication}")]
    MinInsyncAboveReplication { replication: u16, min_insync: u16 },
    #[error(
        "topic {topic} exists with {setting} {found}, but this deployment asks for {wanted}: \
         give the topic's settings (--topic-replication, --topic-min-insync, the partition \
         counts) or recreate the topic"
    )]
    Mismatch {
        topic: String,
        setting: &'static str,
        wanted: String,
        found: String,
    },
    #[error("Kafka {operation} failed")]
    Broker {
        operation: &'static str,
        #[source]
        cause: KafkaError,
    },
}

impl TopicSettings {
    /// The settings on a cluster of `brokers` brokers.
    pub fn resolve(self, brokers: usize) -> Result<Durability, TopicSettingsError> {
        let cluster = u16::try_from(brokers.min(3)).unwrap_or(3).max(1);
        let replication = self.replication.unwrap_or(cluster);
        let min_insync = self
            .min_insync
            .unwrap_or(if replication >= 3 { 2 } else { 1 });
        if replication == 0 || min_insync == 0 {
            return Err(TopicSettingsError::Zero);
        }
        if usize::from(replication) > brokers {
            return Err(TopicSettingsError::TooFewBrokers {
                replication,
                brokers,
            });
        }
        if min_insync > replication {
            return Err(TopicSettingsError::MinInsyncAboveReplication {
                replication,
                min_insync,
            });
        }
        Ok(Durability {
            replication,
            min_insync,
        })
    }

    /// The settings on the cluster `client` talks to (its broker count from the metadata).
    pub fn resolve_on<C: ClientContext>(
        self,
        client: &rdkafka::client::Client<C>,
        timeout: Duration,
    ) -> Result<Durability, TopicSettingsError> {
        let metadata = client
            .fetch_metadata(None, timeout)
            .map_err(broker("metadata"))?;
        self.resolve(metadata.brokers().len())
    }
}

fn broker(operation: &'static str) -> impl Fn(KafkaError) -> TopicSettingsError {
    move |cause| TopicSettingsError::Broker { operation, cause }
}

/// Checks an existing topic's partition count, replication and `min.insync.replicas`.
pub fn check_topic(
    admin: &AdminClient<DefaultClientContext>,
    metadata: &Metadata,
    topic: &str,
    partitions: u32,
    durability: Durability,
    timeout: Duration,
) -> Result<(), TopicSettingsError> {
    let mismatch = |setting, wanted: String, found: String| TopicSettingsError::Mismatch {
        topic: topic.to_owned(),
        setting,
        wanted,
        found,
    };
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(mismatch(
            "partitions",
            partitions.to_string(),
            "none".into(),
        ));
    };
    if found.partitions().len() != partitions as usize {
        let found = found.partitions().len().to_string();
        return Err(mismatch("partitions", partitions.to_string(), found));
    }
    for partition in found.partitions() {
        let replicas = partition.replicas().len();
        if replicas != usize::from(durability.replication) {
            let wanted = durability.replication.to_string();
            return Err(mismatch("replication", wanted, replicas.to_string()));
        }
    }
    let min_insync = min_insync_of(admin, topic, timeout)?;
    if min_insync != durability.min_insync.to_string() {
        let wanted = durability.min_insync.to_string();
        return Err(mismatch("min.insync.replicas", wanted, min_insync));
    }
    Ok(())
}

fn min_insync_of(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<String, TopicSettingsError> {
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = crate::kafka::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options),
    )
    .map_err(broker("describe_configs"))?;
    let resource = results
        .into_iter()
        .next()
        .ok_or(TopicSettingsError::Broker {
            operation: "describe_configs",
            cause: KafkaError::AdminOpCreation("no answer for the topic".into()),
        })?
        .map_err(|code| TopicSettingsError::Broker {
            operation: "describe_configs",
            cause: KafkaError::AdminOp(code),
        })?;
    Ok(resource
        .get("min.insync.replicas")
        .and_then(|entry| entry.value.clone())
        .unwrap_or_else(|| "unset".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(replication: Option<u16>, min_insync: Option<u16>) -> TopicSettings {
        TopicSettings {
            replication,
            min_insync,
        }
    }

    #[test]
    fn the_defaults_follow_the_cluster() {
        let resolved = |brokers| settings(None, None).resolve(brokers).unwrap();
        let d = |replication, min_insync| Durability {
            replication,
            min_insync,
        };
        assert_eq!(resolved(1), d(1, 1));
        assert_eq!(resolved(2), d(2, 1));
        assert_eq!(resolved(3), d(3, 2));
        assert_eq!(resolved(5), d(3, 2));
    }

    #[test]
    fn impossible_settings_are_refused() {
        assert!(matches!(
            settings(Some(3), None).resolve(1),
            Err(TopicSettingsError::TooFewBrokers { .. })
        ));
        assert!(matches!(
            settings(Some(2), Some(3)).resolve(3),
            Err(TopicSettingsError::MinInsyncAboveReplication { .. })
        ));
        assert!(matches!(
            settings(Some(0), None).resolve(3),
            Err(TopicSettingsError::Zero)
        ));
        assert_eq!(
            settings(Some(1), None).resolve(3).unwrap(),
            Durability {
                replication: 1,
                min_insync: 1
            }
        );
    }
}
