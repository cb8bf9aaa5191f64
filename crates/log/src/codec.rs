//! Where the log meets the domain: the ledger's topics and their partition counts
//! ([`Topology`]), and how an event envelope becomes a log record and back ([`encode`],
//! [`decode`], [`read_all`]). Readers (projections, the audit) and writers (the ledger) share
//! this module and nothing else of each other.
//!
//! Architecture invariant: a record decodes to exactly the envelope that was encoded, and a
//! schema version this build does not know is an error, never a guess.

use uuid::Uuid;

use yeyak_domain::command::Target;
use yeyak_domain::{CampaignStamp, Envelope};

use crate::{EventLog, LogError, Offset, Record, StoredRecord, partition_for_key};

/// Topic of the person partitions, keyed by subject id.
pub const TOPIC_SUBJECT: &str = "yeyak.subject";
/// Topic of the clinic partitions, keyed by clinic id.
pub const TOPIC_CLINIC: &str = "yeyak.clinic";
/// Topic of the waiting room: one partition, one key.
pub const TOPIC_WAITING_ROOM: &str = "yeyak.waiting-room";

/// Command topics of the Kafka pipeline, co-partitioned with the event topic of their kind.
pub const COMMANDS_SUBJECT: &str = "yeyak.commands.subject";
pub const COMMANDS_CLINIC: &str = "yeyak.commands.clinic";
pub const COMMANDS_WAITING_ROOM: &str = "yeyak.commands.waiting-room";
/// Command records no event answers (undecodable, misrouted), one [`DeadLetter`] each.
pub const DEAD_LETTERS: &str = "yeyak.commands.dead-letter";

/// The answer to a command record that could not be decided as it stands: written by the
/// processor in the transaction that consumed the record, read by operators and auditors. It
/// names the record by position only (its bytes stay where they are).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub code: String,
    pub detail: String,
}

/// How many records one read of the log asks for.
pub const READ_BATCH_RECORDS_MAX: usize = 4096;

/// Partition counts of the ledger's topics. Fixed for the life of a log: the partition of a
/// key depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub subject_partitions: u32,
    pub clinic_partitions: u32,
}

impl Default for Topology {
    fn default() -> Topology {
        Topology {
            subject_partitions: 8,
            clinic_partitions: 8,
        }
    }
}

impl Topology {
    /// Every topic with its partition count.
    pub fn topics(&self) -> [(&'static str, u32); 3] {
        [
            (TOPIC_SUBJECT, self.subject_partitions),
            (TOPIC_CLINIC, self.clinic_partitions),
            (TOPIC_WAITING_ROOM, 1),
        ]
    }

    /// The topic and partition that own a target.
    pub fn locate(&self, target: &Target) -> (&'static str, u32) {
        let key = target.key();
        match target {
            Target::Subject(_) => (
                TOPIC_SUBJECT,
                partition_for_key(key.as_bytes(), self.subject_partitions),
            ),
            Target::Clinic(_) => (
                TOPIC_CLINIC,
                partition_for_key(key.as_bytes(), self.clinic_partitions),
            ),
            Target::WaitingRoom => (TOPIC_WAITING_ROOM, 0),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the event log failed")]
    Log(#[from] LogError),
    #[error("cannot decode event at {topic}/{partition}@{offset}")]
    Decode {
        topic: String,
        partition: u32,
        offset: Offset,
        #[source]
        cause: serde_json::Error,
    },
    #[error(
        "event {event_type} at {topic}/{partition}@{offset} has schema version {version}, which this build does not know"
    )]
    SchemaVersion {
        topic: String,
        partition: u32,
        offset: Offset,
        event_type: String,
        version: u16,
    },
    #[error("cannot encode an event of command {command_id}")]
    Encode {
        command_id: Uuid,
        #[source]
        cause: serde_json::Error,
    },
}

/// Header names on every event record.
pub const HEADER_TYPE: &str = "type";
pub const HEADER_COMMAND_ID: &str = "command_id";
pub const HEADER_SCHEMA_VERSION: &str = "schema_version";
/// The campaign an event was decided under ([`CampaignStamp`]): its id and content hash. On
/// every event a writer appends; logs of earlier builds and hand-made records lack them.
pub const HEADER_CAMPAIGN_ID: &str = "campaign_id";
pub const HEADER_CAMPAIGN_SHA256: &str = "campaign_sha256";

/// The two campaign headers of an event decided under `campaign`.
pub fn campaign_headers(campaign: &CampaignStamp) -> [(&'static str, &str); 2] {
    [
        (HEADER_CAMPAIGN_ID, campaign.id.as_str()),
        (HEADER_CAMPAIGN_SHA256, campaign.sha256.as_str()),
    ]
}

/// The campaign a record says it was decided under; `None` when it does not say (both headers
/// are needed, in UTF-8).
pub fn recorded_campaign(headers: &[(String, Vec<u8>)]) -> Option<CampaignStamp> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
    };
    Some(CampaignStamp {
        id: header(HEADER_CAMPAIGN_ID)?,
        sha256: header(HEADER_CAMPAIGN_SHA256)?,
    })
}

/// Encodes an envelope decided under `campaign`: [`encode`]'s record with the campaign headers.
/// Every writer appends through this.
pub fn encode_under(envelope: &Envelope, campaign: &CampaignStamp) -> Result<Record, CodecError> {
    let mut record = encode(envelope)?;
    for (name, value) in campaign_headers(campaign) {
        record
            .headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
    }
    Ok(record)
}

/// Encodes an envelope as a log record: key = partition key, value = the envelope's JSON. It
/// says nothing of the campaign: writers use [`encode_under`].
pub fn encode(envelope: &Envelope) -> Result<Record, CodecError> {
    let value = serde_json::to_vec(envelope).map_err(|cause| CodecError::Encode {
        command_id: envelope.command_id,
        cause,
    })?;
    Ok(Record {
        key: envelope.partition_key.as_bytes().to_vec(),
        value,
        headers: vec![
            (
                HEADER_TYPE.to_owned(),
                envelope.event.type_name().as_bytes().to_vec(),
            ),
            (
                HEADER_COMMAND_ID.to_owned(),
                envelope.command_id.to_string().into_bytes(),
            ),
            (
                HEADER_SCHEMA_VERSION.to_owned(),
                envelope.schema_version.to_string().into_bytes(),
            ),
        ],
        timestamp_ms: envelope.occurred_at_ms,
    })
}

/// Decodes a log record into an envelope, refusing schema versions this build does not know
/// (an older version is read through its upcaster: `Event::reads_version`).
pub fn decode(stored: &StoredRecord) -> Result<Envelope, CodecError> {
    let envelope: Envelope =
        serde_json::from_slice(&stored.record.value).map_err(|cause| CodecError::Decode {
            topic: stored.topic.clone(),
            partition: stored.partition,
            offset: stored.offset,
            cause,
        })?;
    if !envelope.event.reads_version(envelope.schema_version) {
        return Err(CodecError::SchemaVersion {
            topic: stored.topic.clone(),
            partition: stored.partition,
            offset: stored.offset,
            event_type: envelope.event.type_name().to_owned(),
            version: envelope.schema_version,
        });
    }
    Ok(envelope)
}

/// Reads every partition of every ledger topic from the start, in offset order per partition,
/// and hands each envelope to `visit` with its coordinates.
pub fn read_all(
    log: &dyn EventLog,
    topology: &Topology,
    mut visit: impl FnMut(&StoredRecord, Envelope),
) -> Result<u64, CodecError> {
    let mut count = 0u64;
    for (topic, partitions) in topology.topics() {
        for partition in 0..partitions {
            let mut offset = 0;
            loop {
                let batch = log.read(topic, partition, offset, READ_BATCH_RECORDS_MAX)?;
                let Some(last) = batch.last() else { break };
                offset = last.offset + 1;
                for stored in &batch {
                    let envelope = decode(stored)?;
                    visit(stored, envelope);
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}
