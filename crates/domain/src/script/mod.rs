//! The scenario script language: a few lines per command, run through one `check` that prints
//! every resulting event, one per line, for an insta snapshot. The domain's tests, the ledger's
//! on the real logs, and the auditors' tests all speak it; [`scenarios`] holds the seed's
//! scenarios as scripts, and [`random`] random scripts for property tests (feature `script`).
//!
//! ```text
//! at      2021-08-09T20:00+09:00
//! supply  clinic=c1 date=2021-08-30 doses=10
//! verify  s9 born=1990-05-19 device=pc
//! enqueue s9
//! admit   10
//! prequeue s9        (before opening)   draw seed=abc   skip s9 (a silent ticket)
//! book    s9 clinic=c1 date=2021-08-30
//! supply  clinic=c1 date=2021-08-30 doses=10 by=alice   (also rebalance: the operator)
//! switch  kakao outage=true by=alice                     (a provider's outage switch)
//! ```
//! Names of people (`s9`) stand for pseudonymous subject ids; ids in the output are replaced
//! by short aliases (`r1`, `a1`, ...) in order of appearance, and instants by Korea time.

#[cfg(feature = "script")]
pub mod random;
pub mod scenarios;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;
use uuid::Uuid;

use crate::command::Slot;
use crate::system::Outcome;
use crate::{
    AdmissionId, AdmitPerMin, BirthFacts, Campaign, ClinicId, Command, CommandBody,
    CongestionLevel, DeviceId, Envelope, Event, GatewayId, Method, OperatorId, Permille,
    ReservationId, Share, SubjectId, TicketNo,
};

/// Runs commands somewhere (the pure system, or a ledger on a real log) and gives the outcome.
pub trait Runner {
    fn run(&mut self, command: Command) -> Outcome;
}

impl Runner for crate::System {
    fn run(&mut self, command: Command) -> Outcome {
        self.execute(command)
    }
}

pub fn subject_of(name: &str) -> SubjectId {
    let id = crate::system::command_id_from(&format!("subject/{name}"));
    SubjectId(*id.as_bytes())
}

#[derive(Default)]
struct Person {
    device: Option<String>,
    admission: Option<AdmissionId>,
    ticket: Option<TicketNo>,
    reservation: Option<ReservationId>,
}

/// Parses and runs a script; returns the transcript.
pub fn run_script(runner: &mut dyn Runner, script: &str) -> String {
    let kst = FixedOffset::east_opt(9 * 3600).unwrap();
    let mut now_ms: i64 = 0;
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    let mut aliases = Aliases::default();
    let mut out = String::new();
    for (number, raw) in script.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap();
        let mut positional = Vec::new();
        let mut args: HashMap<&str, &str> = HashMap::new();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    args.insert(k, v);
                }
                None => positional.push(w),
            }
        }
        if verb == "at" {
            now_ms = parse_at(positional[0]);
            out.push_str(&format!("\n-- at {}\n", local(now_ms, kst)));
            continue;
        }
        let command_id = crate::system::command_id_from(&format!("script/{number}"));
        let name = positional
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let person = people.entry(name.clone()).or_default();
        let subject = subject_of(&name);
        let clinic = |args: &HashMap<&str, &str>| ClinicId::new(args["clinic"]).unwrap();
        let date = |args: &HashMap<&str, &str>| args["date"].parse::<NaiveDate>().unwrap();
        let device = |person: &Person, args: &HashMap<&str, &str>| {
            DeviceId::new(
                args.get("device")
                    .copied()
                    .or(person.device.as_deref())
                    .unwrap_or("pc"),
            )
            .unwrap()
        };
        let requested_for =
            |args: &HashMap<&str, &str>| args.get("for").map(|n| subject_of(n)).unwrap_or(subject);
        let admission = |person: &Person, args: &HashMap<&str, &str>| match args.get("admission") {
            Some(&"none") => AdmissionId(Uuid::nil()),
            _ => person.admission.unwrap_or(AdmissionId(Uuid::nil())),
        };
        let operator =
            |args: &HashMap<&str, &str>| args.get("by").map(|n| OperatorId::new(n).unwrap());
        let body = match verb {
            "supply" => CommandBody::RegisterSupply {
                clinic: clinic(&args),
                name: args.get("name").unwrap_or(&"Clinic").to_string(),
                region: args.get("region").unwrap_or(&"seoul").to_string(),
                date: date(&args),
                doses: args["doses"].parse().unwrap(),
                address: args.get("address").map(|a| a.replace('_', " ")),
                operator: operator(&args),
            },
            "verify" => {
                let birth = BirthFacts::of_date(args["born"].parse().unwrap());
                CommandBody::Verify {
                    subject,
                    birth_year: birth.year,
                    cohort_digit: birth.cohort_digit,
                    method: Method::parse(args.get("method").unwrap_or(&"kakao")).unwrap(),
                    device: device(person, &args),
                }
            }
            "enqueue" => CommandBody::Enqueue {
                subject,
                device: device(person, &args),
            },
            "leave" => CommandBody::LeaveQueue {
                subject,
                ticket: person.ticket.unwrap_or(TicketNo(u64::MAX)),
            },
            "prequeue" => CommandBody::JoinPreQueue {
                subject,
                device: device(person, &args),
            },
            "draw" => CommandBody::DrawPreQueue {
                seed: args["seed"].to_owned(),
            },
            // `congest <method> level=.. wait_ms=.. in_flight=.. capacity=.. failure=<permille>
            // up=true|false gateway=..`: a gateway's congestion report.
            "congest" => CommandBody::ReportCongestion {
                gateway: GatewayId::new(args.get("gateway").unwrap_or(&"gw-1")).unwrap(),
                method: Method::parse(&name).unwrap(),
                level: CongestionLevel::parse(args["level"]).unwrap(),
                wait_ms: args.get("wait_ms").map_or(0, |v| v.parse().unwrap()),
                in_flight: args.get("in_flight").map_or(0, |v| v.parse().unwrap()),
                capacity: args.get("capacity").map_or(100, |v| v.parse().unwrap()),
                failure_permille: Permille::new(
                    args.get("failure").map_or(0, |v| v.parse().unwrap()),
                )
                .unwrap(),
                provider_up: args.get("up").is_none_or(|v| *v == "true"),
            },
            "skip" => CommandBody::SkipTicket {
                ticket: person.ticket.unwrap_or(TicketNo(u64::MAX)),
            },
            "admit" => CommandBody::Admit {
                tickets_max: positional
                    .first()
                    .map(|n| n.parse().unwrap())
                    .unwrap_or(1000),
                ttl_ms: args
                    .get("ttl_min")
                    .map(|m| m.parse::<i64>().unwrap() * 60_000)
                    .unwrap_or(30 * 60_000),
            },
            "book" => CommandBody::Book {
                subject,
                requested_for: requested_for(&args),
                device: device(person, &args),
                clinic: clinic(&args),
                date: date(&args),
                admission: admission(person, &args),
            },
            "cancel" => CommandBody::Cancel {
                subject,
                requested_for: requested_for(&args),
                device: device(person, &args),
                reservation: person.reservation.unwrap_or(ReservationId(Uuid::nil())),
            },
            "rebook" => CommandBody::Rebook {
                subject,
                requested_for: requested_for(&args),
                device: device(person, &args),
                reservation: person.reservation.unwrap_or(ReservationId(Uuid::nil())),
                clinic: clinic(&args),
                date: date(&args),
                admission: admission(person, &args),
            },
            "switch" => CommandBody::SwitchProvider {
                method: Method::parse(&name).unwrap(),
                outage: args.get("outage") != Some(&"false"),
                operator: operator(&args).unwrap_or_else(|| OperatorId::new("admin").unwrap()),
            },
            "control" => CommandBody::ControlAdmissions {
                paused: args.get("paused").map(|p| *p == "true"),
                admit_per_min: args
                    .get("per_min")
                    .map(|n| AdmitPerMin::new(n.parse().unwrap()).unwrap()),
                operator: operator(&args).unwrap_or_else(|| OperatorId::new("admin").unwrap()),
            },
            "tick" => CommandBody::Tick {
                clinic: ClinicId::new(&name).unwrap(),
            },
            "rebalance" => CommandBody::Rebalance {
                from: parse_slot(args["from"]),
                to: parse_slot(args["to"]),
                doses: args["doses"].parse().unwrap(),
                operator: operator(&args),
            },
            other => panic!("line {}: unknown verb {other}", number + 1),
        };
        out.push_str(&format!("> {line}\n"));
        let outcome = runner.run(Command {
            command_id,
            at_ms: now_ms,
            body,
        });
        for envelope in &outcome.events {
            learn(&mut people, envelope);
            out.push_str(&format!("  {}\n", render(envelope, &mut aliases, kst)));
        }
        if let Some(rejection) = outcome.rejection {
            let retry = rejection
                .retry_at_ms
                .map(|t| format!(" (retry at {})", local(t, kst)))
                .unwrap_or_default();
            out.push_str(&format!("  rejected: {}{retry}\n", rejection.code));
        }
    }
    out
}

/// Keeps what a person's client would remember: device, admission, ticket, reservation.
fn learn(people: &mut BTreeMap<String, Person>, envelope: &Envelope) {
    let subject = match &envelope.event {
        Event::SubjectVerified(e) => e.subject,
        Event::AdmissionGranted(e) => e.subject,
        Event::TicketIssued(e) => e.subject,
        Event::ReservationRecorded(e) => e.subject,
        Event::ReservationChanged(e) => e.subject,
        _ => return,
    };
    let Some(person) = people
        .iter_mut()
        .find(|(n, _)| subject_of(n) == subject)
        .map(|(_, p)| p)
    else {
        return;
    };
    match &envelope.event {
        Event::SubjectVerified(e) => person.device = Some(e.device.to_string()),
        Event::AdmissionGranted(e) => person.admission = Some(e.admission),
        Event::TicketIssued(e) => person.ticket = Some(e.ticket),
        Event::ReservationRecorded(e) => person.reservation = Some(e.reservation),
        Event::ReservationChanged(e) => person.reservation = Some(e.reservation),
        _ => {}
    }
}

fn parse_slot(text: &str) -> Slot {
    let mut parts = text.split('/');
    let clinic = ClinicId::new(parts.next().unwrap()).unwrap();
    let date = parts.next().unwrap().parse().unwrap();
    let share = match parts.next().unwrap() {
        "pool" => Share::Pool,
        day => Share::Day(day.trim_start_matches("day").parse().unwrap()),
    };
    Slot {
        clinic,
        date,
        share,
    }
}

fn parse_at(text: &str) -> i64 {
    let normalized = if text.len() == "2021-08-09T20:00+09:00".len() {
        format!("{}:00{}", &text[..16], &text[16..])
    } else {
        text.to_owned()
    };
    DateTime::parse_from_rfc3339(&normalized)
        .unwrap()
        .timestamp_millis()
}

fn local(ms: i64, kst: FixedOffset) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&kst)
        .format("%m-%d %H:%M:%S")
        .to_string()
}

#[derive(Default)]
struct Aliases {
    names: HashMap<String, String>,
    counts: HashMap<char, usize>,
}

impl Aliases {
    fn alias(&mut self, kind: char, id: &str) -> String {
        if let Some(a) = self.names.get(id) {
            return a.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let a = format!("{kind}{n}");
        self.names.insert(id.to_owned(), a.clone());
        a
    }
}

/// One event, one line: `key Type field=value ...`, ids aliased, instants in Korea time.
pub fn render_event(event: &Event, key: &str) -> String {
    render(
        &Envelope {
            event_id: Uuid::nil(),
            command_id: Uuid::nil(),
            schema_version: event.schema_version(),
            occurred_at_ms: 0,
            partition_key: key.to_owned(),
            event: event.clone(),
        },
        &mut Aliases::default(),
        FixedOffset::east_opt(9 * 3600).unwrap(),
    )
}

fn render(envelope: &Envelope, aliases: &mut Aliases, kst: FixedOffset) -> String {
    let value = serde_json::to_value(&envelope.event).unwrap();
    let key = display_key(&envelope.partition_key);
    let Value::Object(fields) = value else {
        unreachable!()
    };
    let mut parts = vec![
        format!("[{key}]"),
        fields["type"].as_str().unwrap().to_owned(),
    ];
    for (name, v) in fields.iter().filter(|(n, _)| *n != "type") {
        parts.push(format!("{name}={}", render_value(name, v, aliases, kst)));
    }
    parts.join(" ")
}

fn display_key(key: &str) -> String {
    for n in [
        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s60", "a", "b", "c", "old",
        "late",
    ] {
        if subject_of(n).to_hex() == key {
            return n.to_owned();
        }
    }
    key.to_owned()
}

fn render_value(name: &str, v: &Value, aliases: &mut Aliases, kst: FixedOffset) -> String {
    match v {
        Value::String(s) if s.len() == 32 && SubjectId::from_hex(s).is_some() => display_key(s),
        Value::String(s) if Uuid::parse_str(s).is_ok() && s.len() == 36 => {
            let kind = match name {
                "admission" => 'a',
                "transfer" => 't',
                _ => 'r',
            };
            aliases.alias(kind, s)
        }
        Value::String(s) => s.clone(),
        // An instant, not a duration such as `wait_ms`.
        Value::Number(n) if name.ends_with("_ms") && name != "wait_ms" => {
            local(n.as_i64().unwrap(), kst)
        }
        Value::Null => "-".into(),
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", render_value(k, v, aliases, kst)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|v| render_value(name, v, aliases, kst))
                .collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

pub fn campaign() -> Campaign {
    Campaign::default_2021()
}
