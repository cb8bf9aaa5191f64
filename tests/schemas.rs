//! The event schemas of `schemas/`: the committed files are what the code generates, released
//! files never change, every event the system emits validates against the schema of its type
//! and version (read from disk, as a consumer in another language would), the schemas reject
//! broken events, and every emitted envelope survives a JSON round trip.
//!
//! Regenerate the files after an intended, compatible change with
//! `YEYAK_BLESS_SCHEMAS=1 cargo test --test schemas`; see `schemas/README.md`.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use yeyak_domain::schema::{all_event_schemas, file_name, render};
use yeyak_domain::system::Outcome;
use yeyak_domain::{Command, Envelope, Event, System};

// ---- where the files are ----------------------------------------------------------------------

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Files of `schemas/` that are not schemas.
const NOT_SCHEMAS: [&str; 3] = ["README.md", "RELEASED", ".gitattributes"];

const BLESS: &str = "YEYAK_BLESS_SCHEMAS";

/// `schemas/RELEASED`, parsed: `(sha256 hex, file name)` per line, in file order (none when the
/// file does not exist yet).
fn released() -> Vec<(String, String)> {
    let path = schemas_dir().join("RELEASED");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            let (hash, name) = line.split_once("  ").unwrap_or_else(|| {
                panic!(
                    "schemas/RELEASED line {}: expected `<sha256 hex>  <file name>`, got {line:?}",
                    number + 1
                )
            });
            assert!(
                hash.len() == 64
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "schemas/RELEASED line {}: {hash:?} is not a lowercase sha256 hex digest",
                number + 1
            );
            (hash.to_owned(), name.to_owned())
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `<Type>.v<N>.json` -> (`Type`, N).
fn parse_file_name(name: &str) -> Option<(&str, u16)> {
    let stem = name.strip_suffix(".json")?;
    let (type_name, version) = stem.rsplit_once(".v")?;
    Some((type_name, version.parse().ok()?))
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => return "they differ only in line endings".into(),
            (e, a) if e == a => continue,
            (e, a) => {
                return format!(
                    "first difference at line {number}:\n    code:      {e:?}\n    committed: {a:?}"
                );
            }
        }
    }
    unreachable!()
}

// ---- the committed files ----------------------------------------------------------------------

#[test]
fn committed_schemas_match_the_code() {
    let bless = std::env::var(BLESS).as_deref() == Ok("1");
    let dir = schemas_dir();
    let generated = all_event_schemas();
    let mut problems = Vec::new();
    for (name, schema) in &generated {
        let text = render(schema);
        let path = dir.join(name);
        match fs::read(&path) {
            Ok(committed) if committed == text.as_bytes() => {}
            _ if bless => {
                fs::create_dir_all(&dir).expect("create schemas/");
                fs::write(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                eprintln!("wrote schemas/{name}");
            }
            Ok(committed) => problems.push(format!(
                "schemas/{name} differs from what the code generates; {}",
                first_difference(&text, &String::from_utf8_lossy(&committed))
            )),
            Err(e) => problems.push(format!("schemas/{name} is missing ({e})")),
        }
    }

    // Every other file is a retired, released version of a known type, or a stray.
    let current: BTreeMap<&str, u16> = Event::TYPES.iter().copied().collect();
    let generated_names: BTreeSet<&str> = generated.iter().map(|(name, _)| name.as_str()).collect();
    let released_names: BTreeSet<String> = released().into_iter().map(|(_, name)| name).collect();
    for entry in fs::read_dir(&dir).expect("read schemas/") {
        let name = entry
            .expect("a directory entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if NOT_SCHEMAS.contains(&name.as_str()) || generated_names.contains(name.as_str()) {
            continue;
        }
        let retired = parse_file_name(&name).is_some_and(|(type_name, version)| {
            current.get(type_name).is_some_and(|&now| version < now)
        }) && released_names.contains(&name);
        if !retired {
            problems.push(format!(
                "schemas/{name} is a stray: no event type generates it and it is not a released older \
                 version of a current type (delete it, or release it if it is an old version)"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "the committed schemas do not match the code:\n  {}\n\nIf the change is intended and compatible \
         (see schemas/README.md), regenerate the files with `{BLESS}=1 cargo test --test schemas` and \
         commit them. A released file must not change: bump the version instead.",
        problems.join("\n  ")
    );
}

#[test]
fn every_committed_schema_is_a_valid_draft_2020_12_schema() {
    for (name, _) in all_event_schemas() {
        let schema = schema_from_disk(&name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "schemas/{name}"
        );
        assert_eq!(
            schema["$id"],
            format!("https://yeyak.dev/schemas/{name}"),
            "schemas/{name}"
        );
        if let Err(error) = jsonschema::meta::validate(&schema) {
            panic!("schemas/{name} is not a valid JSON Schema: {error}");
        }
    }
}

#[test]
fn released_schemas_never_change() {
    let dir = schemas_dir();
    let released = released();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (hash, name) in &released {
        if !seen.insert(name.clone()) {
            problems.push(format!("{name} is listed twice in schemas/RELEASED"));
        }
        match fs::read(dir.join(name)) {
            Ok(bytes) => {
                let now = sha256_hex(&bytes);
                if now != *hash {
                    let (type_name, version) = parse_file_name(name).unwrap_or((name.as_str(), 0));
                    problems.push(format!(
                        "schemas/{name} was released with sha256 {hash} but is now {now}: a released schema \
                         never changes. Restore it (git checkout schemas/{name}) and bump the version instead: \
                         {} with schema_version {} in `events!`, and an upcaster",
                        file_name(type_name, version + 1),
                        version + 1
                    ));
                }
            }
            Err(e) => problems.push(format!("schemas/{name} is released but cannot be read ({e}); never delete a released schema")),
        }
    }
    for (name, _) in all_event_schemas() {
        if !seen.contains(&name) {
            problems.push(format!(
                "schemas/{name} is not released yet. Once it is final, release it: \
                 (cd schemas && sha256sum {name} >> RELEASED)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "released schemas:\n  {}",
        problems.join("\n  ")
    );
}

// ---- every emitted event ----------------------------------------------------------------------

/// Runs commands on a [`System`] and keeps every envelope they produce.
struct Recorder {
    system: System,
    envelopes: Vec<Envelope>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            system: System::new(common::campaign()),
            envelopes: Vec::new(),
        }
    }
}

impl common::Runner for Recorder {
    fn run(&mut self, command: Command) -> Outcome {
        let outcome = self.system.execute(command);
        self.envelopes.extend(outcome.events.iter().cloned());
        outcome
    }
}

fn run(script: &str) -> (String, Vec<Envelope>) {
    let mut recorder = Recorder::new();
    let transcript = common::run_script(&mut recorder, script);
    (transcript, recorder.envelopes)
}

// A random script: a few people, clinics, dates and instants across the whole campaign.

/// Every envelope of every scenario, then of 64 random scripts, each given to `visit` (a panic in
/// it fails the test with the smallest random script that still fails).
fn for_every_emitted_envelope(visit: impl FnMut(&Envelope)) {
    let visit = RefCell::new(visit);
    for (name, script) in common::scenarios::SCENARIOS {
        let (_, envelopes) = run(script);
        assert!(!envelopes.is_empty(), "scenario {name} produced no event");
        envelopes.iter().for_each(|e| (visit.borrow_mut())(e));
    }
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&common::random::script(), |script| {
        let (_, envelopes) = run(&script);
        envelopes.iter().for_each(|e| (visit.borrow_mut())(e));
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

fn schema_from_disk(name: &str) -> Value {
    let path = schemas_dir().join(name);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validators of the committed files, built on first use; formats (`uuid`, `date`) are checked.
#[derive(Default)]
struct Validators(BTreeMap<String, jsonschema::Validator>);

impl Validators {
    fn get(&mut self, name: &str) -> &jsonschema::Validator {
        self.0.entry(name.to_owned()).or_insert_with(|| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(&schema_from_disk(name))
                .unwrap_or_else(|e| panic!("schemas/{name} does not compile: {e}"))
        })
    }

    /// The validation errors of `value` against `schemas/<name>`, one line each.
    fn errors(&mut self, name: &str, value: &Value) -> Vec<String> {
        self.get(name)
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

fn schema_file_of(envelope: &Envelope) -> String {
    file_name(envelope.event.type_name(), envelope.schema_version)
}

#[test]
fn every_emitted_event_validates_against_its_schema() {
    let mut validators = Validators::default();
    let mut seen = BTreeSet::new();
    let mut count = 0usize;
    for_every_emitted_envelope(|envelope| {
        let name = schema_file_of(envelope);
        let value = serde_json::to_value(envelope).expect("an envelope serializes");
        let errors = validators.errors(&name, &value);
        assert!(
            errors.is_empty(),
            "this event does not validate against schemas/{name}:\n{}\nerrors:\n  {}",
            serde_json::to_string_pretty(&value).unwrap(),
            errors.join("\n  ")
        );
        seen.insert(envelope.event.type_name());
        count += 1;
    });
    let never: Vec<&str> = Event::TYPES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !seen.contains(name))
        .collect();
    assert!(
        never.is_empty(),
        "no scenario or random script produced {never:?}: add a scenario that does"
    );
    assert!(count > 100, "only {count} events validated");
}

#[test]
fn every_emitted_envelope_round_trips_through_json() {
    for_every_emitted_envelope(|envelope| {
        let bytes = serde_json::to_vec(envelope).expect("an envelope serializes");
        let back: Envelope = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{e}: cannot read back {}", String::from_utf8_lossy(&bytes))
        });
        assert_eq!(&back, envelope, "{}", String::from_utf8_lossy(&bytes));
    });
}

#[test]
fn leaving_the_queue_is_recorded() {
    let (name, script) = common::scenarios::SCENARIOS
        .iter()
        .find(|(name, _)| *name == "leave_the_queue")
        .expect("the scenario");
    let (transcript, envelopes) = run(script);
    assert!(
        envelopes
            .iter()
            .any(|e| matches!(e.event, Event::TicketLeft(_))),
        "{transcript}"
    );
    insta::assert_snapshot!(*name, transcript);
}

// ---- the schemas are not vacuous --------------------------------------------------------------

/// The first envelope of `type_name` in a scenario, as JSON.
fn emitted(scenario: &str, type_name: &str) -> Value {
    let (_, script) = common::scenarios::SCENARIOS
        .iter()
        .find(|(name, _)| *name == scenario)
        .expect("the scenario");
    let (_, envelopes) = run(script);
    let envelope = envelopes
        .iter()
        .find(|e| e.event.type_name() == type_name)
        .unwrap_or_else(|| panic!("{scenario} produces no {type_name}"));
    serde_json::to_value(envelope).expect("an envelope serializes")
}

#[test]
fn schemas_reject_broken_events() {
    let mut validators = Validators::default();
    let verified = emitted("digit_nine_books_on_its_day", "SubjectVerified");
    let schema = "SubjectVerified.v2.json";
    assert_eq!(
        validators.errors(schema, &verified),
        Vec::<String>::new(),
        "the unbroken event validates"
    );

    type Mutation = fn(&mut Value);
    let broken: [(&str, Mutation); 18] = [
        ("another type", |v| {
            v["event"]["type"] = json!("DeviceLocked")
        }),
        ("no type", |v| {
            drop(v["event"].as_object_mut().unwrap().remove("type"))
        }),
        ("no subject", |v| {
            drop(v["event"].as_object_mut().unwrap().remove("subject"))
        }),
        ("no event_id", |v| {
            drop(v.as_object_mut().unwrap().remove("event_id"))
        }),
        ("no event", |v| {
            drop(v.as_object_mut().unwrap().remove("event"))
        }),
        ("a subject of 31 hex digits", |v| {
            v["event"]["subject"] = json!("0123456789abcdef0123456789abcde")
        }),
        ("a subject in upper case", |v| {
            v["event"]["subject"] = json!("0123456789ABCDEF0123456789ABCDEF")
        }),
        ("a subject that is not hex", |v| {
            v["event"]["subject"] = json!("0123456789abcdef0123456789abcdeg")
        }),
        ("schema version 1", |v| v["schema_version"] = json!(1)),
        ("schema version as text", |v| {
            v["schema_version"] = json!("2")
        }),
        ("an event id that is not a uuid", |v| {
            v["event_id"] = json!("not-a-uuid")
        }),
        ("a birth year as text", |v| {
            v["event"]["birth_year"] = json!("1990")
        }),
        ("no birth year", |v| {
            drop(v["event"].as_object_mut().unwrap().remove("birth_year"))
        }),
        ("a cohort digit of 10", |v| {
            v["event"]["cohort_digit"] = json!(10)
        }),
        ("an unknown method", |v| v["event"]["method"] = json!("fax")),
        ("a cohort digit beyond u8", |v| {
            v["event"]["cohort_digit"] = json!(300)
        }),
        ("an empty partition key", |v| v["partition_key"] = json!("")),
        ("a partition key of 65 characters", |v| {
            v["partition_key"] = json!("k".repeat(65))
        }),
    ];
    for (what, mutate) in broken {
        let mut value = verified.clone();
        mutate(&mut value);
        assert!(
            !validators.errors(schema, &value).is_empty(),
            "schemas/{schema} accepts an event with {what}:\n{}",
            serde_json::to_string_pretty(&value).unwrap()
        );
    }

    // Another type's event does not pass for this one.
    let locked = emitted("digit_nine_books_on_its_day", "DeviceLocked");
    assert!(
        !validators.errors(schema, &locked).is_empty(),
        "a DeviceLocked passes for a SubjectVerified"
    );

    // An optional field may be null or absent; anything else in its place is refused.
    let confirmed = emitted("cancel_and_change", "ReservationConfirmed");
    let schema = "ReservationConfirmed.v1.json";
    assert_eq!(validators.errors(schema, &confirmed), Vec::<String>::new());
    let mut absent = confirmed.clone();
    absent["event"].as_object_mut().unwrap().remove("replaces");
    assert_eq!(
        validators.errors(schema, &absent),
        Vec::<String>::new(),
        "replaces is optional"
    );
    let mut wrong = confirmed.clone();
    wrong["event"]["replaces"] = json!(42);
    assert!(
        !validators.errors(schema, &wrong).is_empty(),
        "replaces must be a reservation id or null"
    );

    // The compatibility rule: an unknown, added field is accepted, in the envelope and the payload.
    let mut extended = verified.clone();
    extended["trace_id"] = json!("abc");
    extended["event"]["assurance_level"] = json!(2);
    assert_eq!(
        validators.errors("SubjectVerified.v2.json", &extended),
        Vec::<String>::new(),
        "an added optional field must stay valid"
    );
}

/// A record written under an older released version of a type is read through its upcaster
/// (SupplyRegistered, DosesMoved, DosesWithdrawn v1: no operator) and re-encodes byte for byte
/// as it was written; a version this build does not know is refused.
#[test]
fn older_released_versions_are_read_through_their_upcasters() {
    use yeyak_log::codec::{decode, encode};
    use yeyak_log::{Record, StoredRecord};
    let v1 = json!({
        "event_id": "00000000-0000-0000-0000-000000000001",
        "command_id": "00000000-0000-0000-0000-000000000002",
        "schema_version": 1,
        "occurred_at_ms": 1_627_776_000_000i64,
        "partition_key": "c1",
        "event": {"type": "SupplyRegistered", "clinic": "c1", "date": "2021-08-30", "doses": 10,
                  "day_shares": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], "pool": 0},
    });
    let stored = |value: &Value| StoredRecord {
        topic: "yeyak.clinic".into(),
        partition: 0,
        offset: 0,
        record: Record {
            key: b"c1".to_vec(),
            value: serde_json::to_vec(value).unwrap(),
            headers: vec![],
            timestamp_ms: 0,
        },
    };
    let schema = jsonschema::validator_for(&schema_from_disk("SupplyRegistered.v1.json")).unwrap();
    assert!(schema.is_valid(&v1));
    let envelope = decode(&stored(&v1)).expect("a v1 record is read");
    let Event::SupplyRegistered(supply) = &envelope.event else {
        panic!("{envelope:?}")
    };
    assert_eq!(
        (supply.operator.as_ref(), envelope.schema_version),
        (None, 1)
    );
    let again: Value = serde_json::from_slice(&encode(&envelope).unwrap().value).unwrap();
    assert_eq!(again, v1, "re-encoded as written");
    let mut v3 = v1.clone();
    v3["schema_version"] = 3.into();
    assert!(
        decode(&stored(&v3)).is_err(),
        "an unknown version is refused"
    );
    let mut older = v1.clone();
    older["event"] =
        json!({"type": "TicketLeft", "ticket": 1, "subject": "00000000000000000000000000000001"});
    older["schema_version"] = 0.into();
    assert!(decode(&stored(&older)).is_err());
}

/// `SubjectVerified` v2 records the birth year and cohort digit, not the birth date (data
/// minimisation). A v1 record (with the date) is read through its upcaster: the rules get the
/// same year and digit from it, and it re-encodes as written; a record whose shape is not its
/// version's is refused, and the v2 schema has no birth date.
#[test]
fn a_v1_verification_with_its_birth_date_is_read_and_v2_carries_only_year_and_digit() {
    use yeyak_domain::BirthFacts;
    use yeyak_log::codec::{decode, encode};
    use yeyak_log::{Record, StoredRecord};
    let subject = "0123456789abcdef0123456789abcdef";
    let v1 = json!({
        "event_id": "00000000-0000-0000-0000-000000000001",
        "command_id": "00000000-0000-0000-0000-000000000002",
        "schema_version": 1,
        "occurred_at_ms": 1_628_506_800_000i64,
        "partition_key": subject,
        "event": {"type": "SubjectVerified", "subject": subject, "method": "kakao",
                  "device": "pc", "birth_date": "1990-05-19", "cohort_digit": 9,
                  "next_verify_at_ms": 1_628_507_400_000i64},
    });
    let stored = |value: &Value| StoredRecord {
        topic: "yeyak.subject".into(),
        partition: 0,
        offset: 0,
        record: Record {
            key: subject.as_bytes().to_vec(),
            value: serde_json::to_vec(value).unwrap(),
            headers: vec![],
            timestamp_ms: 0,
        },
    };
    let mut validators = Validators::default();
    assert_eq!(
        validators.errors("SubjectVerified.v1.json", &v1),
        Vec::<String>::new()
    );
    let envelope = decode(&stored(&v1)).expect("a v1 record is read");
    let Event::SubjectVerified(verified) = &envelope.event else {
        panic!("{envelope:?}")
    };
    assert_eq!(
        (verified.birth.facts(), envelope.schema_version),
        (
            BirthFacts {
                year: 1990,
                cohort_digit: 9
            },
            1
        )
    );
    let again: Value = serde_json::from_slice(&encode(&envelope).unwrap().value).unwrap();
    assert_eq!(again, v1, "re-encoded as written");

    let v2 = emitted("digit_nine_books_on_its_day", "SubjectVerified");
    assert_eq!(v2["schema_version"], json!(2));
    let fields: BTreeSet<&String> = v2["event"].as_object().unwrap().keys().collect();
    let expected = [
        "birth_year",
        "cohort_digit",
        "device",
        "method",
        "next_verify_at_ms",
    ];
    assert_eq!(
        fields.into_iter().map(String::as_str).collect::<Vec<_>>(),
        [&expected[..], &["subject", "type"]].concat()
    );
    let properties =
        schema_from_disk("SubjectVerified.v2.json")["properties"]["event"]["properties"]
            .as_object()
            .unwrap()
            .clone();
    assert!(!properties.contains_key("birth_date"), "{properties:?}");

    let mut mislabelled = v1.clone();
    mislabelled["schema_version"] = 2.into();
    assert!(decode(&stored(&mislabelled)).is_err(), "a v1 shape as v2");
    let mut mislabelled = v2.clone();
    mislabelled["schema_version"] = 1.into();
    assert!(decode(&stored(&mislabelled)).is_err(), "a v2 shape as v1");
    let mut beyond = v2.clone();
    beyond["event"]["cohort_digit"] = 10.into();
    assert!(decode(&stored(&beyond)).is_err(), "a cohort digit of 10");
}
