//! The librdkafka properties an operator passes through to every Kafka client yeyak builds
//! (TLS, SASL, tuning: `security.protocol=SASL_SSL`, `ssl.ca.location=...`), and
//! [`client_config`], the one way a client's configuration starts. The binaries fill it from
//! `yeyak.toml`'s `[kafka.properties]`, `YEYAK_KAFKA_PROPERTIES` and `--kafka-property
//! KEY=VALUE` ([`install`]).
//!
//! The properties come first and yeyak's own settings of a client are set after them, so a
//! property can never undo what exactly-once relies on; the keys yeyak decides itself
//! ([`RESERVED_KEYS`]) are refused outright rather than silently overridden. Values of secret
//! keys (passwords, JAAS configurations, private keys) never appear in `Debug`, in
//! [`ClientProperties::masked`], or in an error.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

/// The environment variable the binaries read: `KEY=VALUE` entries separated by newlines, or
/// by commas when there is no newline.
pub const PROPERTIES_ENV: &str = "YEYAK_KAFKA_PROPERTIES";

/// Keys yeyak sets itself on the clients that need them; a pass-through value would either be
/// overridden or break exactly-once, so it is refused. `bootstrap.servers` is `--kafka`.
pub const RESERVED_KEYS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "client.id",
    "group.id",
    "transactional.id",
    "enable.idempotence",
    "acks",
    "isolation.level",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
];

/// Parts of a key that mark its value as a secret.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "secret",
    "jaas",
    "key.pem",
    "oauthbearer.config",
];

/// What replaces a secret value wherever properties are shown.
const MASK: &str = "***";

/// A property that cannot be passed through. Never quotes a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropertyError {
    #[error("Kafka property entry {index} is not KEY=VALUE")]
    Malformed { index: usize },
    #[error("Kafka property {key} is set by yeyak itself and cannot be passed through")]
    Reserved { key: String },
    #[error("Kafka property {key} is refused by librdkafka: {reason}")]
    Invalid { key: String, reason: String },
}

impl PropertyError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PropertyError::Malformed { .. } => "malformed_kafka_property",
            PropertyError::Reserved { .. } => "reserved_kafka_property",
            PropertyError::Invalid { .. } => "invalid_kafka_property",
        }
    }
}

/// librdkafka properties passed through to every client, by key (a later value of a key wins).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties {
    entries: BTreeMap<String, String>,
}

/// Whether a property's value must never be shown.
pub fn is_secret(key: &str) -> bool {
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

impl ClientProperties {
    /// Parses `KEY=VALUE` entries separated by newlines, or by commas when there is no newline
    /// (so a value may hold commas in the newline form). Blank entries and lines starting with
    /// `#` are skipped. Each entry is checked like [`ClientProperties::set`].
    pub fn parse_list(text: &str) -> Result<ClientProperties, PropertyError> {
        let separator = if text.contains('\n') { '\n' } else { ',' };
        let mut properties = ClientProperties::default();
        let entries = text
            .split(separator)
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (index, entry) in entries.enumerate() {
            properties.set_entry(index + 1, entry)?;
        }
        Ok(properties)
    }

    /// Adds one `KEY=VALUE` entry (the form of `--kafka-property`).
    pub fn set_entry(&mut self, index: usize, entry: &str) -> Result<(), PropertyError> {
        let (key, value) = entry
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or(PropertyError::Malformed { index })?;
        self.set(key, value)
    }

    /// Adds a property after checking that yeyak does not set it itself and that librdkafka
    /// knows it and accepts its value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PropertyError> {
        if RESERVED_KEYS.contains(&key) {
            return Err(PropertyError::Reserved {
                key: key.to_owned(),
            });
        }
        let mut probe = ClientConfig::new();
        probe.set(key, value);
        if let Err(error) = probe.create_native_config() {
            return Err(PropertyError::Invalid {
                key: key.to_owned(),
                reason: invalid_reason(key, &error),
            });
        }
        self.entries.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// Every property of `other` on top of these (`other` wins per key).
    pub fn merge(&mut self, other: ClientProperties) {
        self.entries.extend(other.entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of a property (secret or not: for the client, never for display).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// `key=value, ...` with every secret value replaced by `***`: what logs may show.
    pub fn masked(&self) -> String {
        self.shown()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every property as `(key, value)`, each secret value replaced by `***`: what may be shown.
    pub fn shown(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| {
            let shown = if is_secret(k) { MASK } else { v.as_str() };
            (k.as_str(), shown)
        })
    }

    /// A client configuration: `bootstrap.servers`, then these properties. The caller sets
    /// its own options after this.
    pub fn client_config(&self, bootstrap: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.entries {
            config.set(key, value);
        }
        config.set("bootstrap.servers", bootstrap);
        config
    }
}

/// librdkafka's reason, unless the key is a secret (its reason may quote the value).
fn invalid_reason(key: &str, error: &KafkaError) -> String {
    match error {
        KafkaError::ClientConfig(_, description, _, _) if !is_secret(key) => description.clone(),
        _ => "invalid value".to_owned(),
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.shown()).finish()
    }
}

/// The properties of this process, set once by the binary at start.
static PROCESS_PROPERTIES: RwLock<ClientProperties> = RwLock::new(ClientProperties {
    entries: BTreeMap::new(),
});

/// Sets the properties every client of this process gets through [`client_config`].
pub fn set_process_properties(properties: ClientProperties) {
    *PROCESS_PROPERTIES
        .write()
        .unwrap_or_else(PoisonError::into_inner) = properties;
}

/// The properties set by [`set_process_properties`] (none by default).
pub fn process_properties() -> ClientProperties {
    PROCESS_PROPERTIES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The start of every Kafka client's configuration in yeyak: `bootstrap.servers` and this
/// process's pass-through properties ([`set_process_properties`]).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    process_properties().client_config(bootstrap)
}

/// The properties of `YEYAK_KAFKA_PROPERTIES` (none when it is unset).
pub fn properties_from_env() -> Result<ClientProperties, PropertyError> {
    match std::env::var(PROPERTIES_ENV) {
        Ok(text) => ClientProperties::parse_list(&text),
        Err(_) => Ok(ClientProperties::default()),
    }
}

/// What a binary does at start: the configuration file's `[kafka.properties]` (`file`), then
/// `YEYAK_KAFKA_PROPERTIES`, then its `--kafka-property` entries (per key, the environment wins
/// over the file and a flag over both) become this process's properties. Returns them (to log
/// with [`ClientProperties::masked`]).
pub fn install(
    file: &[(String, String)],
    flags: &[String],
) -> Result<ClientProperties, PropertyError> {
    let mut properties = ClientProperties::default();
    for (key, value) in file {
        properties.set(key, value)?;
    }
    properties.merge(properties_from_env()?);
    for (index, entry) in flags.iter().enumerate() {
        properties.set_entry(index + 1, entry)?;
    }
    set_process_properties(properties.clone());
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_or_newlines_separate_entries() {
        let p = ClientProperties::parse_list(
            "security.protocol=SASL_SSL, sasl.mechanism=SCRAM-SHA-512",
        )
        .unwrap();
        assert_eq!(p.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        let p = ClientProperties::parse_list(
            "# TLS\nssl.cipher.suites=ECDHE-RSA-AES128-GCM-SHA256,ECDHE-RSA-AES256-GCM-SHA384\n\nlinger.ms=5\n",
        )
        .unwrap();
        assert_eq!(
            p.get("ssl.cipher.suites"),
            Some("ECDHE-RSA-AES128-GCM-SHA256,ECDHE-RSA-AES256-GCM-SHA384")
        );
        assert_eq!(p.get("linger.ms"), Some("5"));
    }

    #[test]
    fn secrets_never_show() {
        let p = ClientProperties::parse_list(
            "sasl.username=yeyak,sasl.password=hunter2,ssl.key.password=hunter3,sasl.oauthbearer.client.secret=hunter4",
        )
        .unwrap();
        let shown = format!("{p:?} {}", p.masked());
        assert!(shown.contains("sasl.username"), "{shown}");
        assert!(shown.contains("yeyak"), "{shown}");
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(p.get("sasl.password"), Some("hunter2"));
    }

    #[test]
    fn refusals_name_the_key_and_never_the_value() {
        assert_eq!(
            ClientProperties::parse_list("linger.ms=1,hunter2").unwrap_err(),
            PropertyError::Malformed { index: 2 }
        );
        assert_eq!(
            ClientProperties::parse_list("transactional.id=x").unwrap_err(),
            PropertyError::Reserved {
                key: "transactional.id".into()
            }
        );
        let unknown = ClientProperties::parse_list("no.such.property=1").unwrap_err();
        assert!(
            matches!(&unknown, PropertyError::Invalid { key, .. } if key == "no.such.property")
        );
        let bad = ClientProperties::parse_list("security.protocol=hunter2").unwrap_err();
        assert!(matches!(&bad, PropertyError::Invalid { key, .. } if key == "security.protocol"));
        let pasted = ClientProperties::parse_list("sasl.password=x,hunter2").unwrap_err();
        assert!(!pasted.to_string().contains("hunter2"), "{pasted}");
    }

    #[test]
    fn properties_come_before_bootstrap_and_the_callers_settings() {
        let p = ClientProperties::parse_list("linger.ms=7,security.protocol=SSL").unwrap();
        let mut config = p.client_config("127.0.0.1:1");
        config.set("linger.ms", "1");
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:1"));
        assert_eq!(config.get("security.protocol"), Some("SSL"));
        assert_eq!(config.get("linger.ms"), Some("1"));
    }
}
