//! The JSON Schemas of the events as they are written to the log: one self-contained document
//! per event type and schema version (the whole [`Envelope`](crate::Envelope), payload
//! included), generated from the Rust types. This is not a validator and not a registry: it only
//! builds the documents that `schemas/` holds; `tests/schemas.rs` checks that the committed files
//! match it, that released files never change, and that every emitted event validates.

use serde_json::{Map, Value, json};

use crate::Event;

/// The JSON Schema dialect of every document.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Where the documents say they live (`$id`): `<BASE>/<Type>.v<version>.json`.
pub const ID_BASE: &str = "https://yeyak.dev/schemas";

/// The file name of the schema of `type_name` at `version`: `<Type>.v<version>.json`.
pub fn file_name(type_name: &str, version: u16) -> String {
    format!("{type_name}.v{version}.json")
}

/// The JSON Schema (draft 2020-12) of one event type's whole envelope, as `serde_json`
/// serializes it, at the type's current schema version; `None` for an unknown type.
///
/// The payload's own definitions are hoisted to the root `$defs`, so the document is
/// self-contained. Unknown properties are allowed everywhere: adding an optional field is a
/// compatible change.
pub fn event_schema(type_name: &str) -> Option<Value> {
    let &(name, version) = Event::TYPES.iter().find(|(name, _)| *name == type_name)?;
    let payload = Event::payload_schema(name)?;
    let Value::Object(mut payload) = payload.to_value() else {
        panic!("the payload schema of {name} is not an object");
    };

    // The payload is moved to `#/properties/event`, its definitions to the root.
    payload.remove("$schema");
    payload.remove("title");
    let mut defs = match payload.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        Some(other) => {
            panic!("the payload schema of {name} has $defs that are not an object: {other}")
        }
        None => Map::new(),
    };
    let mut payload = Value::Object(payload);
    fix_refs(&mut payload);
    for def in defs.values_mut() {
        fix_refs(def);
    }

    // The serde tag: `"type": "<Type>"`, required.
    let object = payload.as_object_mut().expect("an object");
    if object.get("type").and_then(Value::as_str) != Some("object") {
        panic!(
            "the payload schema of {name} is not an object schema: {}",
            Value::Object(object.clone())
        );
    }
    let properties = object.entry("properties").or_insert_with(|| json!({}));
    let properties = properties.as_object_mut().expect("properties is an object");
    assert!(
        !properties.contains_key("type"),
        "the payload {name} has a field `type`, which is the serde tag"
    );
    properties.insert(
        "type".into(),
        json!({
            "description": "The event type: the serde tag of the payload.",
            "type": "string",
            "const": name,
        }),
    );
    let required = object.entry("required").or_insert_with(|| json!([]));
    let required = required.as_array_mut().expect("required is an array");
    required.insert(0, json!("type"));

    let mut root = json!({
        "$schema": DIALECT,
        "$id": format!("{ID_BASE}/{}", file_name(name, version)),
        "title": format!("{name} v{version}"),
        "description": format!(
            "One {name} event (schema version {version}) as the yeyak log records it: \
             the envelope and, under `event`, the payload tagged with its type."
        ),
        "type": "object",
        "properties": {
            "event_id": {
                "description": "The event's id: a UUIDv7 derived from the command id, so a replay reproduces it.",
                "type": "string",
                "format": "uuid",
            },
            "command_id": {
                "description": "The command this event answers; a retry of that command gets these same events.",
                "type": "string",
                "format": "uuid",
            },
            "schema_version": {
                "description": "The version of this event type's schema: this document describes exactly one.",
                "type": "integer",
                "const": version,
            },
            "occurred_at_ms": {
                "description": "When the command was issued: milliseconds since the Unix epoch, UTC.",
                "type": "integer",
                "format": "int64",
            },
            "partition_key": {
                "description": "The key of the partition that decided it (subject id, clinic id or `waiting-room`).",
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
            },
            "event": payload,
        },
        "required": ["event_id", "command_id", "schema_version", "occurred_at_ms", "partition_key", "event"],
    });
    if !defs.is_empty() {
        root.as_object_mut()
            .expect("an object")
            .insert("$defs".into(), Value::Object(std::mem::take(&mut defs)));
    }
    Some(root)
}

/// Rewrites the `$ref`s of a payload schema for its new place: references into its definitions
/// (`#/$defs/...`) stay as they are, since the definitions move to the root; any other
/// reference into the payload document (`#`, `#/properties/...`) now points under
/// `#/properties/event`.
fn fix_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => {
                        if target.starts_with("#/$defs/") {
                            // Unchanged: the definitions are hoisted to the root.
                        } else if let Some(pointer) = target.strip_prefix('#') {
                            *target = format!("#/properties/event{pointer}");
                        } else {
                            panic!("a payload schema refers outside itself: {target}");
                        }
                    }
                    (_, child) => fix_refs(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_refs),
        _ => {}
    }
}

/// Every event type's schema at its current version, with its file name (`<Type>.v<N>.json`),
/// in the order of [`Event::TYPES`].
pub fn all_event_schemas() -> Vec<(String, Value)> {
    Event::TYPES
        .iter()
        .map(|&(name, version)| {
            let schema =
                event_schema(name).unwrap_or_else(|| panic!("{name} is listed in Event::TYPES"));
            (file_name(name, version), schema)
        })
        .collect()
}

/// The committed form of a document: pretty JSON, every object's keys sorted (whatever the
/// `serde_json` map type of the build), a trailing newline.
pub fn render(value: &Value) -> String {
    let mut value = value.clone();
    value.sort_all_objects();
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_schema_and_unknown_types_none() {
        assert_eq!(all_event_schemas().len(), Event::TYPES.len());
        assert!(event_schema("NoSuchEvent").is_none());
    }

    #[test]
    fn refs_into_the_payload_move_under_event() {
        let mut value =
            json!({"a": {"$ref": "#"}, "b": [{"$ref": "#/$defs/X"}, {"$ref": "#/properties/x"}]});
        fix_refs(&mut value);
        assert_eq!(
            value,
            json!({"a": {"$ref": "#/properties/event"}, "b": [{"$ref": "#/$defs/X"}, {"$ref": "#/properties/event/properties/x"}]})
        );
    }
}
