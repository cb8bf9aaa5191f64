//! `yeyak bench`: the pipeline's throughput and latency on a real Kafka broker, against the raw
//! append rate of the same broker measured in the same run.
//!
//! Workload: the seed's stampede. N people of one booking day verify, take a ticket, are
//! admitted in order, and book the moment their admission arrives, across 50 clinics with enough
//! doses for everyone. Measured: completed reservations per second from the first command sent to
//! the last reservation recorded; events per second; latency from a booking sent to its
//! reservation recorded (the whole person -> clinic -> person chain); and the raw ceiling:
//! rdkafka producing as many records of the average event size, as fast as it can.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use uuid::Uuid;

use yeyak_domain::system::command_id_from;
use yeyak_domain::{
    Campaign, ClinicId, Command, CommandBody, DeviceId, Event, Method, SubjectId, System,
};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::admin::{delete_topics, ensure_topics};
use yeyak_ledger::pipeline::client::{EventTail, Submitter};
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig, ProcessorError};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub bootstrap: String,
    pub people: u32,
    pub processors: u32,
    pub partitions: u32,
    pub timeout_s: u64,
    /// How long a processor waits to fill a batch after its first command.
    pub batch_linger_ms: u64,
    /// The most commands in one processor batch (one Kafka transaction).
    pub batch_commands_max: usize,
    /// When given, a PostgreSQL projector follows the run (in a fresh schema) and the latency
    /// from a reservation's decision to its row is measured.
    pub postgres: Option<String>,
    /// People arriving per second (verify + enqueue paced, admissions every 20 ms); `None`:
    /// everyone at once (the stampede).
    pub rate: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("the pipeline failed")]
    Pipeline(#[from] ProcessorError),
    #[error("cannot write the report")]
    Io(#[from] std::io::Error),
    #[error("the run did not finish in {0} s")]
    Timeout(u64),
    #[error("the projector cannot read the event log")]
    Log(#[source] yeyak_log::LogError),
    #[error("the projector failed")]
    Projection(#[from] yeyak_read::projection::postgres::ProjectionError),
    #[error("the benchmark's database setup failed")]
    Database(#[from] postgres::Error),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub people: u32,
    pub processors: u32,
    pub reservations: u64,
    pub reservations_per_s: f64,
    pub events: u64,
    pub events_per_s: f64,
    pub avg_event_bytes: f64,
    pub raw_append_per_s: f64,
    pub ratio: f64,
    pub p50_decision_ms: f64,
    pub p99_decision_ms: f64,
    /// From a reservation seen decided to its row committed in PostgreSQL; `null` without
    /// `--postgres`.
    pub p99_projection_ms: Option<f64>,
    pub overbooked: u64,
    pub double_reserved: u64,
    pub rss_bytes_per_person: f64,
    /// Heap bytes per person of the writer's state (every partition's `System` state) rebuilt
    /// from the run's events, and of its recently-decided command ids; `null` when the counting
    /// allocator is not installed (the library used without the `yeyak` binary).
    pub writer_state_bytes_per_person: Option<f64>,
    pub dedup_bytes_per_person: Option<f64>,
    /// Follow-ups decided in the transaction of their cause (their partition was local).
    pub follow_ups_local: u64,
    /// Kafka transactions the processors committed, and commands per transaction.
    pub transactions: u64,
    pub commands_per_transaction: f64,
    /// The processors' time, summed: waiting for commands, deciding and producing, committing.
    pub processor_poll_ms: u64,
    pub processor_decide_ms: u64,
    pub processor_commit_ms: u64,
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The heap the writer's state takes for the events of a run: `(state, dedup)` bytes.
fn writer_memory(events: &[yeyak_domain::Envelope], campaign: &Campaign) -> Option<(usize, usize)> {
    let before = crate::heap::live_bytes()?;
    let mut system = yeyak_domain::System::new(campaign.clone());
    for envelope in events {
        system.apply(envelope);
    }
    let middle = crate::heap::live_bytes()?;
    let mut decided = yeyak_ledger::pipeline::decided::Decided::new(
        yeyak_ledger::pipeline::decided::DEDUP_WINDOW_MS_DEFAULT,
    );
    for envelope in events {
        decided.remember_event(envelope);
    }
    let after = crate::heap::live_bytes()?;
    let measured = (middle.saturating_sub(before), after.saturating_sub(middle));
    drop((system, decided));
    Some(measured)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn run(config: &BenchConfig, out: &mut dyn Write) -> Result<BenchReport, BenchError> {
    let campaign = Campaign::default_2021();
    let prefix = format!("bench{}.", &Uuid::now_v7().simple().to_string()[20..]);
    let topics = Topics::new(
        &prefix,
        Topology {
            subject_partitions: config.partitions,
            clinic_partitions: config.partitions,
        },
    );
    ensure_topics(&config.bootstrap, &topics, 1)?;
    writeln!(
        out,
        "yeyak bench: {} people, {} processor(s), {} partitions, broker {}",
        config.people, config.processors, config.partitions, config.bootstrap
    )?;

    let rss_before = rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..config.processors {
        let mut processor_config =
            ProcessorConfig::new(&config.bootstrap, topics.clone(), &format!("bench-{i}"));
        processor_config.session_timeout_ms = 10_000;
        processor_config.batch_linger_ms = config.batch_linger_ms;
        processor_config.batch_commands_max = config.batch_commands_max;
        let processor = Processor::start(processor_config, campaign.clone())?;
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut processor = processor;
            processor.run(stop)
        }));
    }

    // The projector, on its own thread: snapshots of its offsets with the instant they were
    // committed, to time each reservation's row.
    type Snapshots =
        Arc<std::sync::Mutex<Vec<(Instant, std::collections::BTreeMap<(String, u32), u64>)>>>;
    let snapshots: Snapshots = Arc::new(std::sync::Mutex::new(Vec::new()));
    let projector = match &config.postgres {
        None => None,
        Some(url) => {
            let schema = format!("bench_{}", &Uuid::now_v7().simple().to_string()[20..]);
            let mut admin = postgres::Client::connect(url, postgres::NoTls)?;
            admin.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
            let url = format!("{url}?options=-c%20search_path%3D{schema}");
            let (stop, snapshots, prefix, topology, bootstrap) = (
                stop.clone(),
                snapshots.clone(),
                topics.prefix.clone(),
                topics.topology,
                config.bootstrap.clone(),
            );
            let thread = std::thread::spawn(move || -> Result<(), BenchError> {
                let log = yeyak_log::KafkaLog::connect(yeyak_log::KafkaConfig {
                    topic_prefix: prefix,
                    ..yeyak_log::KafkaConfig::new(bootstrap, "yeyak-bench-projector")
                })
                .map_err(BenchError::Log)?;
                let mut projector = yeyak_read::projection::postgres::PgProjector::connect(
                    &url,
                    &log,
                    topology,
                    yeyak_read::projection::postgres::READ_MODELS_PROJECTION,
                )?;
                while !stop.load(Ordering::Relaxed) {
                    projector.run_until_caught_up()?;
                    let offsets = projector.offsets()?;
                    if let Ok(mut s) = snapshots.lock() {
                        s.push((Instant::now(), offsets));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(())
            });
            Some((thread, admin, schema))
        }
    };

    let submitter = Submitter::connect(&config.bootstrap, topics.clone())?;
    let mut tail = EventTail::open(&config.bootstrap, &topics)?;
    let at = campaign.booking_days[0].window.opens_at_ms;
    let clinics: Vec<ClinicId> = (0..50)
        .filter_map(|c| ClinicId::new(&format!("clinic-{c:02}")))
        .collect();
    let date = campaign.vaccination.first_date;
    let doses_per_clinic = (config.people / 50 + 1) * 10 + 10;
    let device = DeviceId::new("phone").unwrap_or_else(|| unreachable!());
    let subject = |n: u32| SubjectId(*command_id_from(&format!("bench/person/{n}")).as_bytes());
    let birth_date = chrono::NaiveDate::from_ymd_opt(1990, 5, 9).unwrap_or_default();

    let started = Instant::now();
    for (c, clinic) in clinics.iter().enumerate() {
        let body = CommandBody::RegisterSupply {
            clinic: clinic.clone(),
            name: format!("Clinic {c}"),
            region: "seoul".into(),
            date,
            doses: doses_per_clinic,
        };
        submitter.send(&Command {
            command_id: command_id_from(&format!("bench/supply/{c}")),
            at_ms: at - 1,
            body,
        })?;
    }
    let arrive = |n: u32| -> Result<(), BenchError> {
        let who = subject(n);
        let verify = CommandBody::Verify {
            subject: who,
            birth_date,
            method: Method::Kakao,
            device: device.clone(),
        };
        submitter.send(&Command {
            command_id: command_id_from(&format!("bench/verify/{n}")),
            at_ms: at,
            body: verify,
        })?;
        let enqueue = CommandBody::Enqueue {
            subject: who,
            device: device.clone(),
        };
        submitter.send(&Command {
            command_id: command_id_from(&format!("bench/enqueue/{n}")),
            at_ms: at,
            body: enqueue,
        })?;
        Ok(())
    };
    let admit = |k: u32| -> Result<(), BenchError> {
        let body = CommandBody::Admit {
            tickets_max: 10_000,
            ttl_ms: 3_600_000,
        };
        submitter.send(&Command {
            command_id: command_id_from(&format!("bench/admit/{k}")),
            at_ms: at + 1,
            body,
        })?;
        Ok(())
    };
    let mut arrived = 0u32;
    let mut admits_sent = 0u32;
    if config.rate.is_none() {
        for n in 0..config.people {
            arrive(n)?;
        }
        arrived = config.people;
        for k in 0..config.people.div_ceil(10_000) {
            admit(k)?;
        }
        admits_sent = config.people.div_ceil(10_000);
    }

    // Book the moment an admission arrives; measure each booking to its recorded reservation.
    let person_of: HashMap<SubjectId, u32> = (0..config.people).map(|n| (subject(n), n)).collect();
    let mut booked_at: HashMap<SubjectId, Instant> = HashMap::new();
    let mut latencies_ms: Vec<f64> = Vec::with_capacity(config.people as usize);
    let mut decided_seen: Vec<(usize, Instant)> = Vec::with_capacity(config.people as usize);
    let mut seen = 0usize;
    let mut finished = 0u64;
    let mut last_progress = Instant::now();
    let deadline = started + Duration::from_secs(config.timeout_s);
    while finished < u64::from(config.people) {
        if Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
            return Err(BenchError::Timeout(config.timeout_s));
        }
        if let Some(rate) = config.rate {
            // Paced arrivals: person n arrives n / rate seconds in; the waiting room admits
            // whoever waits every 20 ms.
            let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64)
                .min(u64::from(config.people)) as u32;
            while arrived < due {
                arrive(arrived)?;
                arrived += 1;
            }
            let admits_due = (started.elapsed().as_millis() / 20) as u32;
            if admits_sent < admits_due {
                admit(admits_sent)?;
                admits_sent = admits_due;
            }
        }
        tail.poll(Duration::from_millis(if config.rate.is_some() {
            1
        } else {
            5
        }))?;
        for envelope in &tail.events[seen..] {
            match &envelope.event {
                Event::AdmissionGranted(g) => {
                    let Some(&n) = person_of.get(&g.subject) else {
                        continue;
                    };
                    let clinic = clinics[(n % 50) as usize].clone();
                    let body = CommandBody::Book {
                        subject: g.subject,
                        requested_for: g.subject,
                        device: device.clone(),
                        clinic,
                        date,
                        admission: g.admission,
                    };
                    submitter.send(&Command {
                        command_id: command_id_from(&format!("bench/book/{n}")),
                        at_ms: at + 2,
                        body,
                    })?;
                    booked_at.insert(g.subject, Instant::now());
                }
                Event::ReservationRecorded(r) => {
                    if let Some(t) = booked_at.get(&r.subject) {
                        latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    finished += 1;
                }
                Event::BookingFailed(_) => finished += 1,
                _ => {}
            }
        }
        let now = Instant::now();
        for index in seen..tail.events.len() {
            if matches!(tail.events[index].event, Event::ReservationRecorded(_)) {
                decided_seen.push((index, now));
            }
        }
        seen = tail.events.len();
        if last_progress.elapsed() > Duration::from_secs(2) {
            writeln!(
                out,
                "  {:>6.1} s: {} events, {} of {} reservations",
                started.elapsed().as_secs_f64(),
                seen,
                finished,
                config.people
            )?;
            last_progress = Instant::now();
        }
    }
    let pipeline_s = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let projected = |snapshots: &Snapshots,
                     (topic, partition, offset): &(String, u32, u64)|
     -> Option<Instant> {
        let name = topic
            .strip_prefix(topics.prefix.as_str())
            .unwrap_or(topic)
            .to_owned();
        let snapshots = snapshots.lock().ok()?;
        snapshots
            .iter()
            .find(|(_, o)| {
                o.get(&(name.clone(), *partition))
                    .is_some_and(|next| next > offset)
            })
            .map(|(t, _)| *t)
    };
    let mut projection_ms: Vec<f64> = Vec::new();
    if projector.is_some() {
        let until = Instant::now() + Duration::from_secs(120);
        while let Some((index, _)) = decided_seen.last() {
            if projected(&snapshots, &tail.positions[*index]).is_some() || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (index, seen_at) in &decided_seen {
            if let Some(at) = projected(&snapshots, &tail.positions[*index]) {
                projection_ms.push(at.saturating_duration_since(*seen_at).as_secs_f64() * 1000.0);
            }
        }
        projection_ms.sort_by(|a, b| a.total_cmp(b));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some((thread, mut admin, schema)) = projector {
        match thread.join() {
            Ok(Err(e)) => tracing::warn!(error = %e, "the projector ended with an error"),
            Err(_) => tracing::warn!("the projector thread panicked"),
            Ok(Ok(())) => {}
        }
        let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    }
    let (mut transactions, mut commands, mut follow_ups_local) = (0u64, 0u64, 0u64);
    let (mut poll_ms, mut decide_ms, mut commit_ms) = (0u64, 0u64, 0u64);
    for worker in workers {
        match worker.join() {
            Ok(Ok(stats)) => {
                transactions += stats.transactions;
                commands += stats.commands;
                follow_ups_local += stats.follow_ups_local;
                poll_ms += stats.poll_ms;
                decide_ms += stats.decide_ms;
                commit_ms += stats.commit_ms;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "processor ended with an error"),
            Err(_) => tracing::warn!("a processor thread panicked"),
        }
    }
    // Count the follow-up events still in flight after the last reservation (none expected).
    tail.poll(Duration::from_millis(500))?;

    let events = tail.events.len() as u64;
    let bytes: usize = tail
        .events
        .iter()
        .map(|e| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0))
        .sum();
    let avg_event_bytes = bytes as f64 / events.max(1) as f64;
    let writer = writer_memory(&tail.events, &campaign);
    let mut replayed = System::new(campaign);
    for envelope in &tail.events {
        replayed.apply(envelope);
    }
    let violations = replayed.violations();
    let overbooked = violations
        .iter()
        .filter(|v| v.invariant == yeyak_domain::Invariant::ShareNotOverbooked)
        .count() as u64;
    let mut holdings: HashMap<SubjectId, u32> = HashMap::new();
    for clinic in replayed.clinics.values() {
        for held in clinic.held.values() {
            *holdings.entry(held.subject).or_default() += 1;
        }
    }
    let double_reserved = holdings.values().filter(|&&n| n > 1).count() as u64;
    let reservations = replayed
        .subjects
        .values()
        .filter(|s| s.reservation.is_some())
        .count() as u64;

    // The raw ceiling on the same broker: as many records of the average event size.
    let raw_topics = Topics::new(
        &format!("{prefix}raw."),
        Topology {
            subject_partitions: config.partitions,
            clinic_partitions: config.partitions,
        },
    );
    ensure_topics(&config.bootstrap, &raw_topics, 1)?;
    let raw_target = raw_topics.pairs()[0].1.clone();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap)
        .set("client.id", "yeyak-bench-raw")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "2000000")
        .set("compression.type", "none")
        .create()
        .map_err(|cause| ProcessorError::Client {
            role: "raw producer",
            cause,
        })?;
    let payload = vec![b'x'; avg_event_bytes.round() as usize];
    let raw_started = Instant::now();
    for i in 0..events {
        let key = format!("k{}", i % 100_000);
        let mut record = BaseRecord::to(&raw_target).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((cause, _)) => {
                    return Err(ProcessorError::Broker {
                        operation: "raw produce",
                        cause,
                    }
                    .into());
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|cause| ProcessorError::Broker {
            operation: "raw flush",
            cause,
        })?;
    let raw_s = raw_started.elapsed().as_secs_f64();

    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let report = BenchReport {
        people: config.people,
        processors: config.processors,
        reservations,
        reservations_per_s: reservations as f64 / pipeline_s,
        events,
        events_per_s: events as f64 / pipeline_s,
        avg_event_bytes,
        raw_append_per_s: events as f64 / raw_s,
        ratio: (events as f64 / pipeline_s) / (events as f64 / raw_s),
        p50_decision_ms: percentile(&latencies_ms, 50.0),
        p99_decision_ms: percentile(&latencies_ms, 99.0),
        p99_projection_ms: (!projection_ms.is_empty()).then(|| percentile(&projection_ms, 99.0)),
        overbooked,
        double_reserved,
        rss_bytes_per_person: rss_after.saturating_sub(rss_before) as f64
            / f64::from(config.people.max(1)),
        writer_state_bytes_per_person: writer
            .map(|(state, _)| state as f64 / f64::from(config.people.max(1))),
        dedup_bytes_per_person: writer
            .map(|(_, dedup)| dedup as f64 / f64::from(config.people.max(1))),
        follow_ups_local,
        transactions,
        commands_per_transaction: commands as f64 / transactions.max(1) as f64,
        processor_poll_ms: poll_ms,
        processor_decide_ms: decide_ms,
        processor_commit_ms: commit_ms,
    };
    let _ = delete_topics(&config.bootstrap, &topics);
    let _ = delete_topics(&config.bootstrap, &raw_topics);

    writeln!(out, "\n  {:<34} {:>14}", "measure", "value")?;
    let rows = [
        ("completed reservations", format!("{}", report.reservations)),
        (
            "reservations / s (end to end)",
            format!("{:.0}", report.reservations_per_s),
        ),
        ("events", format!("{}", report.events)),
        ("pipeline events / s", format!("{:.0}", report.events_per_s)),
        (
            "raw appends / s (same broker)",
            format!("{:.0}", report.raw_append_per_s),
        ),
        ("ratio (pipeline / raw)", format!("{:.3}", report.ratio)),
        (
            "average event bytes",
            format!("{:.0}", report.avg_event_bytes),
        ),
        (
            "booking -> reservation p50 ms",
            format!("{:.1}", report.p50_decision_ms),
        ),
        (
            "booking -> reservation p99 ms",
            format!("{:.1}", report.p99_decision_ms),
        ),
        (
            "reservation -> PostgreSQL row p99 ms",
            report
                .p99_projection_ms
                .map_or("not measured".to_owned(), |ms| format!("{ms:.1}")),
        ),
        ("overbooked shares", format!("{}", report.overbooked)),
        (
            "people holding two doses",
            format!("{}", report.double_reserved),
        ),
        (
            "RSS growth per person (bytes)",
            format!("{:.0}", report.rss_bytes_per_person),
        ),
        (
            "writer state bytes per person",
            report
                .writer_state_bytes_per_person
                .map_or("not measured".to_owned(), |b| format!("{b:.0}")),
        ),
        (
            "recent command ids bytes per person",
            report
                .dedup_bytes_per_person
                .map_or("not measured".to_owned(), |b| format!("{b:.0}")),
        ),
        (
            "follow-ups decided locally",
            format!("{}", report.follow_ups_local),
        ),
        ("Kafka transactions", format!("{}", report.transactions)),
        (
            "commands per transaction",
            format!("{:.1}", report.commands_per_transaction),
        ),
        (
            "processor ms polling / deciding / committing",
            format!(
                "{} / {} / {}",
                report.processor_poll_ms, report.processor_decide_ms, report.processor_commit_ms
            ),
        ),
    ];
    for (name, value) in rows {
        writeln!(out, "  {name:<34} {value:>14}")?;
    }
    writeln!(
        out,
        "{}",
        serde_json::to_string(&report).unwrap_or_default()
    )?;
    Ok(report)
}
