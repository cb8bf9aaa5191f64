//! Identifiers of the domain, and the one pure way to derive new ones.
//!
//! New ids are never drawn at random inside the domain: they are derived from the id of the
//! command that creates them, so a replay of the same commands gives the same ids, byte for byte.

use std::borrow::Cow;

use compact_str::CompactString;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::TimestampMs;

/// A person, pseudonymised: the first 128 bits of HMAC-SHA256(key, resident number).
/// The resident registration number itself never enters the domain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectId(pub [u8; 16]);

impl SubjectId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<SubjectId> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(SubjectId(bytes))
    }
}

impl std::fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubjectId({})", self.to_hex())
    }
}

impl std::fmt::Display for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for SubjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SubjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        SubjectId::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("subject id must be 32 lowercase hex digits"))
    }
}

impl JsonSchema for SubjectId {
    fn schema_name() -> Cow<'static, str> {
        "SubjectId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A pseudonymised person: 128 bits of a keyed hash, as hex.",
            "type": "string",
            "pattern": "^[0-9a-f]{32}$"
        })
    }
}

/// A bounded, printable identifier text: `[A-Za-z0-9._:-]`, 1 to 64 characters, and nothing
/// shaped like a resident number (an id reaches the log and every read model in plain text).
fn valid_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        && !crate::pii::holds_resident_number(text)
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        ///
        /// Held inline up to 24 bytes (no allocation of its own): a person's state keeps a
        /// device and a clinic id, and the writer's memory per person is a benchmark target.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub struct $name(CompactString);

        impl $name {
            /// Validates `text`; `None` when it is empty, longer than 64, has other characters
            /// or holds something shaped like a resident number.
            pub fn new(text: &str) -> Option<$name> {
                valid_name(text).then(|| $name(CompactString::from(text)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(deserializer)?;
                $name::new(&text).ok_or_else(|| {
                    serde::de::Error::custom(concat!(
                        $what,
                        " must be 1 to 64 of [A-Za-z0-9._:-], no resident number"
                    ))
                })
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": "^[A-Za-z0-9._:-]{1,64}$"
                })
            }
        }
    };
}

name_id!(
    /// A medical institution. Its id is the key that decides which clinic partition owns it.
    ClinicId,
    "clinic id"
);
name_id!(
    /// The device (browser, phone) a person verifies and books from.
    DeviceId,
    "device id"
);
name_id!(
    /// A gateway (one `yeyak serve` process) that reports what it measures.
    GatewayId,
    "gateway id"
);
name_id!(
    /// An operator who changes the campaign (supply, rebalance, provider outages): the name
    /// their admin token is bound to, recorded with what they did.
    OperatorId,
    "operator id"
);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[derive(JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One reservation: a dose of one clinic on one vaccination date, held by one subject.
    ReservationId
);
uuid_id!(
    /// One admission out of the waiting room; booking consumes it.
    AdmissionId
);
uuid_id!(
    /// One move of doses between clinics, decided by the source clinic.
    TransferId
);

/// A place in the waiting room, numbered in order of arrival.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct TicketNo(pub u64);

/// Derives a UUIDv7 from the id of the command that creates it: the timestamp part is `at_ms`,
/// the "random" part is SHA-256 over the command id and a purpose string. Deterministic, so a
/// replay reproduces every id; unique as long as command ids are.
pub fn derive_uuid(command_id: Uuid, purpose: &str, at_ms: TimestampMs) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(command_id.as_bytes());
    hash.update(purpose.as_bytes());
    let digest = hash.finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at_ms).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_v7_deterministic_and_distinct_by_purpose() {
        let command = Uuid::from_u128(42);
        let a = derive_uuid(command, "event/0", 1_628_506_800_000);
        assert_eq!(a, derive_uuid(command, "event/0", 1_628_506_800_000));
        assert_ne!(a, derive_uuid(command, "event/1", 1_628_506_800_000));
        assert_eq!(a.get_version_num(), 7);
        let (secs, _) = a.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!(secs, 1_628_506_800);
    }

    #[test]
    fn names_are_bounded() {
        assert!(ClinicId::new("seoul-gangnam-01").is_some());
        assert!(ClinicId::new("").is_none());
        assert!(ClinicId::new(&"x".repeat(65)).is_none());
        assert!(ClinicId::new("a b").is_none());
        assert!(SubjectId::from_hex("zz").is_none());
    }
}
