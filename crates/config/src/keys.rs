//! The file's layout: the keys every role shares, each mapped onto the argument id it sets, and
//! the sections of the roles, whose keys are their arguments' ids.

/// The shared keys and the argument each sets in every role that has that argument. A role's
/// section may not hold these arguments again (one spelling per option).
pub const SHARED: &[(&str, &str)] = &[
    ("campaign", "campaign"),
    ("kafka.bootstrap", "kafka"),
    ("kafka.topic_prefix", "topic_prefix"),
    ("kafka.replication", "topic_replication"),
    ("kafka.min_insync", "topic_min_insync"),
    ("kafka.subject_partitions", "subject_partitions"),
    ("kafka.clinic_partitions", "clinic_partitions"),
    ("postgres.url", "postgres"),
    ("keys.subject_key", "subject_key"),
    ("keys.token_key", "token_key"),
    ("keys.admin_token", "admin_token"),
];

/// Arguments of a role that mean something else than the shared key of the same id, so they
/// take no shared value and are set in the role's section: `yeyak-bench`'s `topic_prefix`
/// names a deployment to run through (its topics kept), and the bench must never write its
/// made-up people into a deployment's topics because a file names them.
const NOT_SHARED: &[(&str, &str)] = &[("bench", "topic_prefix")];

/// The table of librdkafka properties passed through to every Kafka client.
pub const KAFKA_PROPERTIES: &str = "properties";

/// Every role's section, of both binaries (`yeyak`'s subcommands and `yeyak-bench`): a binary
/// checks the sections of the roles it has and leaves the others' alone.
pub const ROLES: &[&str] = &[
    "bench",
    "chaos_sim",
    "demo",
    "export",
    "loadgen",
    "process",
    "project",
    "rebalance",
    "replay",
    "serve",
    "simulate",
];

/// Arguments that are no key of the file.
pub(crate) const NOT_KEYS: &[&str] = &["help", "version", "config", "kafka_properties"];

/// The section of a subcommand: its name with `_` for `-` (`chaos-sim` → `chaos_sim`).
pub fn section_of(subcommand: &str) -> String {
    subcommand.replace('-', "_")
}

/// Whether `name` is the section of shared keys (`kafka`, `postgres`, `keys`).
pub(crate) fn is_shared_section(name: &str) -> bool {
    SHARED.iter().any(|(key, _)| {
        key.split_once('.')
            .is_some_and(|(section, _)| section == name)
    })
}

/// The argument a shared key sets in `role`, if the key is shared and `role` takes it.
pub(crate) fn shared_id(role: &str, key: &str) -> Option<&'static str> {
    SHARED
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, id)| *id)
        .filter(|id| !is_not_shared(role, id))
}

fn is_not_shared(role: &str, id: &str) -> bool {
    NOT_SHARED.iter().any(|(r, i)| *r == role && *i == id)
}

/// The shared key that sets argument `id` of `role`, if any.
pub(crate) fn shared_key(role: &str, id: &str) -> Option<&'static str> {
    SHARED
        .iter()
        .find(|(_, i)| *i == id)
        .map(|(key, _)| *key)
        .filter(|_| !is_not_shared(role, id))
}

/// The key of argument `id` in `role`: its shared key, or `role.id`.
pub(crate) fn key_of(role: &str, id: &str) -> String {
    shared_key(role, id).map_or_else(|| format!("{role}.{id}"), str::to_owned)
}
