//! `yeyak bench`: the pipeline's throughput and latency on a real Kafka broker, against the raw
//! append rate of the same broker measured in the same run.
//!
//! Workload: the shared generator's crowd of the first booking day ([`crate::workload`]): N
//! eligible people born on a day ending in its digit, each with a device of their own, 50
//! clinics with five vaccination dates and doses for everyone (or, with `doses_percent`, for
//! that share of the crowd: then some find their pick sold out), each person's verification
//! method and (skewed) choice of clinic and date. They arrive all at once at the opening (the
//! stampede) or paced at `rate` a second; each verifies, takes a ticket, is admitted in order
//! at `admit_per_s` (every 20 ms, what the rate paid for, like the gateway's controller), and
//! books the moment the admission arrives.
//!
//! Request path: as the front tier has it ([`front`]): every command goes through
//! `yeyak_ledger::submit::Submit` on the Kafka pipeline (send, then wait for its whole causal
//! chain on the event tail), from a bounded pool of blocking threads as large as the gateway's.
//!
//! Measured: completed reservations per second from the first command sent (the supply) to the
//! last reservation's outcome; events per second; latency from the admission seen (the person
//! presses "book") to the booking's outcome with its reservation (the whole person -> clinic ->
//! person chain, and the wait for a free thread); with `postgres`, from the reservation seen
//! decided to the projector's commit of its row (the projector follows as `yeyak project` does),
//! and overbooked shares and double holders counted in the read models; and the raw ceiling:
//! the run's own records (key, value, headers) appended again to the same partitions by the
//! processors' own transactional producer (`processor::producer`), in transactions of their
//! size.

pub mod cli;
pub mod front;
pub mod memory;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use uuid::Uuid;

use yeyak_domain::{Campaign, SubjectId, System};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::admin::{delete_topics, ensure_topics};
use yeyak_ledger::pipeline::client::EventTail;
use yeyak_ledger::pipeline::processor::{
    self, Processor, ProcessorConfig, ProcessorError, ProcessorStats,
};
use yeyak_ledger::submit::{Kafka, Submit, SubmitError};
use yeyak_log::{Recovering, TopicSettings};
use yeyak_read::projection::postgres::ProjectionError;

use crate::workload::{Arrival, Supply, Workload, WorkloadConfig, WorkloadError};
use front::{BenchSink, Crowd, Front};

/// Clinics of the benchmark's workload.
pub const CLINICS: u32 = 50;
/// The seed of the benchmark's people and their choices.
pub const SEED: u64 = 2021;
/// How often the run hands work to the pool.
const DISPATCH_EVERY: Duration = Duration::from_millis(1);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for the run's events to be read back from the event topics.
const READ_BACK_MAX: Duration = Duration::from_secs(120);
/// Longest wait for the projector to write the last reservation's row.
const PROJECTION_WAIT_MAX: Duration = Duration::from_secs(120);
/// How long one step of the benchmark's projector waits for records (as `yeyak project`'s).
const PROJECTION_STEP_WAIT: Duration = Duration::from_millis(100);
/// The raw baseline's transaction size when the processors ran in other processes.
const RAW_EVENTS_PER_TRANSACTION_UNKNOWN: f64 = 1_000.0;
/// The admission rate by default: the pipeline is measured, not the doorman (a deployment's
/// gateway admits 500 a second unless told otherwise).
pub const ADMIT_PER_S_DEFAULT: u32 = 5_000;

/// One benchmark run. Its `Debug` shows no password.
#[derive(Clone)]
pub struct BenchConfig {
    pub bootstrap: String,
    pub people: u32,
    pub processors: u32,
    pub partitions: u32,
    pub timeout_s: u64,
    /// How long a processor waits to fill a batch after its first command.
    pub batch_linger_ms: u64,
    /// A batch closes once no command came for this long.
    pub batch_quiet_ms: u64,
    /// The most commands in one processor batch (one Kafka transaction).
    pub batch_commands_max: usize,
    /// When given, a PostgreSQL projector follows the run (in a fresh schema) and the latency
    /// from a reservation's decision to its row is measured.
    pub postgres: Option<String>,
    /// People arriving per second (verify + enqueue paced); `None`: everyone at once (the
    /// stampede).
    pub rate: Option<u32>,
    /// Admissions per second, as the gateway's controller grants them: every 20 ms the tickets
    /// that the rate has paid for since ([`ADMIT_PER_S_DEFAULT`] by default).
    pub admit_per_s: u32,
    /// Doses for this percentage of the crowd (`Supply::CrowdPercent`): below 100 some people
    /// find their pick sold out. `None`: doses for everyone.
    pub doses_percent: Option<u32>,
    /// The deployment's topic prefix, when the run goes through processors (and a projector)
    /// started by someone else (`processors: 0`, `scripts/chaos`): its topics are then kept
    /// for the auditors. `None`: a fresh prefix, deleted after the run.
    pub topic_prefix: Option<String>,
}

impl std::fmt::Debug for BenchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let postgres = self.postgres.as_deref().map(yeyak_read::pg::shown_url);
        f.debug_struct("BenchConfig")
            .field("bootstrap", &self.bootstrap)
            .field("people", &self.people)
            .field("processors", &self.processors)
            .field("partitions", &self.partitions)
            .field("timeout_s", &self.timeout_s)
            .field("batch_linger_ms", &self.batch_linger_ms)
            .field("batch_quiet_ms", &self.batch_quiet_ms)
            .field("batch_commands_max", &self.batch_commands_max)
            .field("postgres", &postgres)
            .field("rate", &self.rate)
            .field("admit_per_s", &self.admit_per_s)
            .field("doses_percent", &self.doses_percent)
            .field("topic_prefix", &self.topic_prefix)
            .finish()
    }
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
    Projection(#[source] Box<yeyak_read::projection::postgres::ProjectionError>),
    #[error("the benchmark's database setup failed")]
    Database(#[from] postgres::Error),
    #[error("a request failed on its way through the Kafka pipeline")]
    Submit(#[from] SubmitError),
    #[error("the workload cannot be generated")]
    Workload(#[from] WorkloadError),
    #[error("a made-up person did not pass the identity edge")]
    Identity(#[from] yeyak_identity::IdentityError),
    #[error("the ledger refused the benchmark's supply: {0}")]
    Refused(String),
}

impl From<ProjectionError> for BenchError {
    fn from(error: ProjectionError) -> Self {
        BenchError::Projection(Box::new(error))
    }
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
    /// Shares booked over their doses and people holding two reservations, counted in the
    /// PostgreSQL read models the projector wrote (with `--postgres`), else in a replay of the
    /// run's events; `counted_in` says which.
    pub overbooked: u64,
    pub double_reserved: u64,
    pub counted_in: &'static str,
    /// Bookings refused because the share the person picked was sold out, and for any other
    /// reason (none expected).
    pub sold_out: u64,
    pub refused_otherwise: u64,
    pub admit_per_s: u32,
    pub doses_percent: Option<u32>,
    /// The raw baseline's records per Kafka transaction: the processors' events per
    /// transaction in this run.
    pub raw_events_per_transaction: f64,
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
    /// `processor_commit_ms` by phase (summed over the transactions): records handed to the
    /// producer, offsets added to the transaction, records acknowledged, `commit_transaction`.
    pub processor_produce_ms: u64,
    pub processor_offsets_ms: u64,
    pub processor_flush_ms: u64,
    pub processor_end_ms: u64,
    /// One transaction's produce, offsets, acks, end and their total: p50 / p99 / longest, ms
    /// (p50 and p99 are the upper bounds of their doubling buckets).
    pub transaction_ms: [[Option<f64>; 3]; 5],
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

/// The heap the writer's state takes for the events of a run: `(state, dedup)` bytes: every
/// partition's state (`System`: people, clinics, the waiting room) folded from the events, and
/// the memory of answered command ids (`Decided`) fed the same events. `None` without the
/// counting allocator ([`crate::heap`]).
pub fn writer_memory(
    events: &[yeyak_domain::Envelope],
    campaign: &Campaign,
) -> Option<(usize, usize)> {
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

/// The projector's offsets, each with the instant they were committed.
type Snapshots = Arc<Mutex<Vec<(Instant, BTreeMap<(String, u32), u64>)>>>;

/// A PostgreSQL projector following the run in a schema of its own.
struct Projector {
    thread: JoinHandle<Result<(), BenchError>>,
    admin: postgres::Client,
    schema: String,
}

fn start_processors(
    config: &BenchConfig,
    topics: &Topics,
    campaign: &Campaign,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<JoinHandle<Result<ProcessorStats, ProcessorError>>>, BenchError> {
    let mut workers = Vec::new();
    for i in 0..config.processors {
        let mut processor_config =
            ProcessorConfig::new(&config.bootstrap, topics.clone(), &format!("bench-{i}"));
        processor_config.session_timeout_ms = 10_000;
        processor_config.batch_linger_ms = config.batch_linger_ms;
        processor_config.batch_quiet_ms = config.batch_quiet_ms;
        processor_config.batch_commands_max = config.batch_commands_max;
        let mut processor = Processor::start(processor_config, campaign.clone())?;
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || processor.run(stop)));
    }
    Ok(workers)
}

/// The projector, on its own thread, following the run as `yeyak project` does (a step: one
/// poll of every partition, its batches applied): after every step that committed, a snapshot
/// of its offsets with the instant, to time each reservation's row. Once stopped it catches up
/// with every committed record, for the counts.
fn start_projector(
    url: &str,
    config: &BenchConfig,
    topics: &Topics,
    stop: &Arc<AtomicBool>,
    snapshots: &Snapshots,
) -> Result<Projector, BenchError> {
    let schema = format!("bench_{}", &Uuid::now_v7().simple().to_string()[20..]);
    let mut admin = yeyak_read::pg::connect(url)
        .map_err(|cause| BenchError::Projection(Box::new(ProjectionError::Connect(cause))))?;
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
            if projector.step(PROJECTION_STEP_WAIT)?.batches == 0 {
                continue;
            }
            let offsets = projector.offsets()?;
            if let Ok(mut s) = snapshots.lock() {
                s.push((Instant::now(), offsets));
            }
        }
        projector.run_until_caught_up()?;
        Ok(())
    });
    Ok(Projector {
        thread,
        admin,
        schema,
    })
}

/// What the read models show once the projector caught up.
struct ProjectedCounts {
    overbooked: u64,
    double_reserved: u64,
}

/// Stops the projector (it catches up first), counts overbooked shares and people holding two
/// reservations in its read models, and drops its schema.
fn stop_projector(projector: Projector) -> Result<ProjectedCounts, BenchError> {
    let Projector {
        thread,
        mut admin,
        schema,
    } = projector;
    let ended = thread
        .join()
        .unwrap_or_else(|_| Err(BenchError::Refused("the projector thread panicked".into())));
    let counted = ended.and_then(|()| {
        let row = admin.query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {schema}.slot_quota WHERE booked > capacity),
                        (SELECT count(*) FROM (SELECT subject_id FROM {schema}.reservations
                          WHERE state = 'active' GROUP BY subject_id HAVING count(*) > 1) d)"
            ),
            &[],
        )?;
        let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(ProjectedCounts {
            overbooked: count(0),
            double_reserved: count(1),
        })
    });
    if let Err(e) = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")) {
        tracing::warn!(error = %e, schema, "cannot drop the benchmark's schema");
    }
    counted
}

/// The crowd of the first booking day, arriving all at once or at `rate` a second.
fn crowd(config: &BenchConfig, campaign: &Campaign) -> Result<Crowd, BenchError> {
    let arrival = config.rate.map_or(Arrival::Stampede, Arrival::paced);
    let mut workload = WorkloadConfig::booking_day(SEED, config.people, CLINICS, arrival);
    if let Some(percent) = config.doses_percent {
        workload.supply = Supply::CrowdPercent(percent);
    }
    let workload = Workload::generate(&workload, campaign)?;
    Crowd::new(workload, campaign.booking_days[0].window.opens_at_ms)
}

/// Hands people to the pool as they arrive (their arrival times counted from `opened`, when
/// the doors opened) and are admitted, until every one is done.
fn drive(
    front: &mut Front,
    config: &BenchConfig,
    started: Instant,
    opened: Instant,
    out: &mut dyn Write,
) -> Result<(), BenchError> {
    let deadline = started + Duration::from_secs(config.timeout_s);
    let people = u64::from(config.people);
    let mut last_progress = Instant::now();
    loop {
        let finished = front.tally.finished.load(Ordering::Relaxed);
        if finished >= people {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(config.timeout_s));
        }
        if let Some(error) = front.tally.failure() {
            return Err(error.into());
        }
        front.dispatch(opened.elapsed());
        if last_progress.elapsed() > PROGRESS_EVERY {
            // The wall-clock instant lets a fault injector (scripts/chaos) find the first
            // decision after its fault.
            let unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            writeln!(
                out,
                "  {:>6.1} s: {} events, {} of {} reservations (unix_ms {unix_ms})",
                started.elapsed().as_secs_f64(),
                front.ledger.events_seen(),
                finished,
                config.people
            )?;
            last_progress = Instant::now();
        }
        std::thread::sleep(DISPATCH_EVERY);
    }
}

/// Reads the run's events back from the event topics, with where each one is.
fn read_back(config: &BenchConfig, topics: &Topics, events: u64) -> Result<EventTail, BenchError> {
    let mut tail = EventTail::open(&config.bootstrap, topics)?;
    let until = Instant::now() + READ_BACK_MAX;
    while (tail.events.len() as u64) < events && Instant::now() < until {
        tail.poll(Duration::from_millis(50))?;
    }
    Ok(tail)
}

/// From each reservation seen decided to its row in PostgreSQL, sorted; waits (a while) for
/// the projector to write the last one.
fn projection_latencies(
    tail: &EventTail,
    seen: &[(Uuid, Instant)],
    snapshots: &Snapshots,
    prefix: &str,
) -> Vec<f64> {
    let index_of: HashMap<Uuid, usize> = tail
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id, i))
        .collect();
    let projected_at = |event_id: &Uuid| -> Option<Instant> {
        let (topic, partition, offset) = &tail.positions[*index_of.get(event_id)?];
        let name = topic.strip_prefix(prefix).unwrap_or(topic).to_owned();
        let snapshots = snapshots.lock().ok()?;
        snapshots
            .iter()
            .find(|(_, o)| {
                o.get(&(name.clone(), *partition))
                    .is_some_and(|next| next > offset)
            })
            .map(|(t, _)| *t)
    };
    let until = Instant::now() + PROJECTION_WAIT_MAX;
    if let Some((last, _)) = seen.iter().max_by_key(|(_, at)| *at) {
        while projected_at(last).is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(event_id, seen_at)| {
            let at = projected_at(event_id)?;
            Some(at.saturating_duration_since(*seen_at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    latencies
}

fn join_processors(
    workers: Vec<JoinHandle<Result<ProcessorStats, ProcessorError>>>,
) -> ProcessorStats {
    let mut total = ProcessorStats::default();
    for worker in workers {
        match worker.join() {
            Ok(Ok(stats)) => {
                total.transactions += stats.transactions;
                total.commands += stats.commands;
                total.follow_ups_local += stats.follow_ups_local;
                total.poll_ms += stats.poll_ms;
                total.decide_ms += stats.decide_ms;
                total.commit_ms += stats.commit_ms;
                total.commit_phases.merge(&stats.commit_phases);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "processor ended with an error"),
            Err(_) => tracing::warn!("a processor thread panicked"),
        }
    }
    total
}

/// What the run's events show once replayed.
struct Checks {
    events: u64,
    avg_event_bytes: f64,
    writer: Option<(usize, usize)>,
    overbooked: u64,
    double_reserved: u64,
    /// Where `overbooked` and `double_reserved` were counted.
    counted_in: &'static str,
    reservations: u64,
}

fn check(events: &[yeyak_domain::Envelope], campaign: &Campaign) -> Checks {
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0))
        .sum();
    let writer = writer_memory(events, campaign);
    let mut replayed = System::new(campaign.clone());
    for envelope in events {
        replayed.apply(envelope);
    }
    let overbooked = replayed
        .violations()
        .iter()
        .filter(|v| v.invariant == yeyak_domain::Invariant::ShareNotOverbooked)
        .count() as u64;
    let mut holdings: HashMap<SubjectId, u32> = HashMap::new();
    for clinic in replayed.clinics.values() {
        for held in clinic.held.values() {
            *holdings.entry(held.subject).or_default() += 1;
        }
    }
    Checks {
        events: events.len() as u64,
        avg_event_bytes: bytes as f64 / events.len().max(1) as f64,
        writer,
        overbooked,
        double_reserved: holdings.values().filter(|&&n| n > 1).count() as u64,
        counted_in: "event replay",
        reservations: replayed
            .subjects
            .values()
            .filter(|s| s.reservation_id().is_some())
            .count() as u64,
    }
}

/// The raw ceiling on the same broker: the run's own events, encoded as the processors wrote
/// them (key, value, headers with the campaign's), appended again to the same partitions of
/// topics of their own by the processors' own producer (`processor::producer`), in
/// transactions of the processors' size (`per_transaction` records), as fast as it goes.
/// Appends per second, and the topics (to be deleted).
fn raw_append_rate(
    config: &BenchConfig,
    prefix: &str,
    tail: &EventTail,
    campaign: &Campaign,
    per_transaction: usize,
) -> Result<(f64, Topics), BenchError> {
    let raw_topics = Topics::new(
        &format!("{prefix}raw."),
        Topology {
            subject_partitions: config.partitions,
            clinic_partitions: config.partitions,
        },
    );
    ensure_topics(&config.bootstrap, &raw_topics, TopicSettings::default())?;
    let stamp = campaign.stamp();
    let mut records = Vec::with_capacity(tail.events.len());
    for (envelope, (topic, partition, _)) in tail.events.iter().zip(&tail.positions) {
        let record = yeyak_log::codec::encode_under(envelope, &stamp)
            .map_err(|e| BenchError::Refused(format!("cannot encode an event again: {e}")))?;
        let name = topic.strip_prefix(prefix).unwrap_or(topic);
        records.push((format!("{}{name}", raw_topics.prefix), *partition, record));
    }
    let producer = processor::producer(&ProcessorConfig::new(
        &config.bootstrap,
        raw_topics.clone(),
        &format!("bench-raw-{}", Uuid::now_v7().simple()),
    ))?;
    let broker =
        |operation| move |cause| BenchError::Pipeline(ProcessorError::Broker { operation, cause });
    let timeout = Duration::from_secs(120);
    let raw_started = Instant::now();
    for chunk in records.chunks(per_transaction.max(1)) {
        producer.begin_transaction().map_err(broker("raw begin"))?;
        for (topic, partition, record) in chunk {
            let mut headers = rdkafka::message::OwnedHeaders::new();
            for (key, value) in &record.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key,
                    value: Some(value),
                });
            }
            produce(
                &producer,
                BaseRecord::to(topic)
                    .partition(*partition as i32)
                    .key(&record.key)
                    .payload(&record.value)
                    .headers(headers),
            )?;
        }
        yeyak_log::kafka::settle(&producer, timeout); // as the processors do before commit
        producer
            .commit_transaction(timeout)
            .map_err(broker("raw commit"))?;
    }
    Ok((
        records.len() as f64 / raw_started.elapsed().as_secs_f64(),
        raw_topics,
    ))
}

/// Produces one record, waiting while the producer's queue is full.
fn produce(
    producer: &ThreadedProducer<Recovering>,
    mut record: BaseRecord<'_, Vec<u8>, Vec<u8>>,
) -> Result<(), BenchError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
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

fn delete(config: &BenchConfig, topics: &Topics) {
    if let Err(e) = delete_topics(&config.bootstrap, topics) {
        tracing::warn!(error = %e, prefix = topics.prefix, "cannot delete the benchmark's topics");
    }
}

/// Runs the benchmark and writes its report to `out`: progress, a table, then one JSON line.
pub fn run(config: &BenchConfig, out: &mut dyn Write) -> Result<BenchReport, BenchError> {
    run_campaign(config, &Campaign::default_2021(), out)
}

/// [`run`] under another campaign than the built-in 2021 18-49 one (`yeyak-bench --campaign`):
/// the crowd of its first booking day.
pub fn run_campaign(
    config: &BenchConfig,
    campaign: &Campaign,
    out: &mut dyn Write,
) -> Result<BenchReport, BenchError> {
    let campaign = campaign.clone();
    let prefix = config
        .topic_prefix
        .clone()
        .unwrap_or_else(|| format!("bench{}.", &Uuid::now_v7().simple().to_string()[20..]));
    let topology = Topology {
        subject_partitions: config.partitions,
        clinic_partitions: config.partitions,
    };
    let topics = Topics::new(&prefix, topology);
    ensure_topics(&config.bootstrap, &topics, TopicSettings::default())?;
    writeln!(
        out,
        "yeyak bench: {} people, {} processor(s), {} partitions, broker {}",
        config.people, config.processors, config.partitions, config.bootstrap
    )?;
    let crowd = Arc::new(crowd(config, &campaign)?);

    let rss_before = rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = start_processors(config, &topics, &campaign, &stop)?;
    let snapshots: Snapshots = Arc::new(Mutex::new(Vec::new()));
    let projector = match &config.postgres {
        None => None,
        Some(url) => Some(start_projector(url, config, &topics, &stop, &snapshots)?),
    };
    let sink = Arc::new(BenchSink::new(&crowd));
    let timeout = Duration::from_secs(config.timeout_s);
    let ledger = Kafka::connect(
        &config.bootstrap,
        topics.clone(),
        campaign.clone(),
        timeout,
        sink.clone(),
    )?;
    let mut front = Front::start(Arc::new(ledger), sink.clone(), crowd, timeout);

    let started = Instant::now();
    // The crowd arrives once the doors open, after the supply is registered: counted from
    // the start, the arrivals due meanwhile came as one burst that filled the whole pool, and
    // the first tenth of the bookings of a paced run waited for a thread.
    let driven = front.register_supply().and_then(|()| {
        front.open_doors(config.admit_per_s);
        drive(&mut front, config, started, Instant::now(), out)
    });
    if let Err(error) = driven {
        stop.store(true, Ordering::Relaxed);
        return Err(error);
    }
    let pipeline_s = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let events_seen = front.ledger.events_seen();
    let latencies_ms = front.tally.latencies_ms();
    let sold_out = front.tally.sold_out.load(Ordering::Relaxed);
    let refused = front.tally.refused.load(Ordering::Relaxed);
    front.finish();

    let mut tail = read_back(config, &topics, events_seen)?;
    let projection_ms = if projector.is_some() {
        projection_latencies(&tail, &sink.reservations_seen(), &snapshots, &prefix)
    } else {
        Vec::new()
    };
    stop.store(true, Ordering::Relaxed);
    let stats = join_processors(workers);
    let projected = projector.map(stop_projector).transpose()?;
    // Count the follow-up events still in flight after the last reservation (none expected).
    tail.poll(Duration::from_millis(500))?;
    let mut checks = check(&tail.events, &campaign);
    if let Some(projected) = projected {
        checks.overbooked = projected.overbooked;
        checks.double_reserved = projected.double_reserved;
        checks.counted_in = "PostgreSQL";
    }
    // The processors' size of transaction (they ran elsewhere with `--processors 0`: a guess).
    let per_transaction = match stats.transactions {
        0 => RAW_EVENTS_PER_TRANSACTION_UNKNOWN,
        n => checks.events as f64 / n as f64,
    };
    let (raw_append_per_s, raw_topics) = raw_append_rate(
        config,
        &prefix,
        &tail,
        &campaign,
        per_transaction.round() as usize,
    )?;

    let report = BenchReport::new(
        config,
        &checks,
        Measured {
            pipeline_s,
            raw_append_per_s,
            latencies_ms,
            projection_ms,
            rss_growth: rss_after.saturating_sub(rss_before),
            stats,
            sold_out,
            refused,
            raw_events_per_transaction: per_transaction,
        },
    );
    if config.topic_prefix.is_none() {
        delete(config, &topics);
    }
    delete(config, &raw_topics);
    print_report(out, &report)?;
    Ok(report)
}

/// The run's timings and the processors' figures.
struct Measured {
    pipeline_s: f64,
    raw_append_per_s: f64,
    latencies_ms: Vec<f64>,
    projection_ms: Vec<f64>,
    rss_growth: u64,
    stats: ProcessorStats,
    sold_out: u64,
    refused: u64,
    raw_events_per_transaction: f64,
}

impl BenchReport {
    fn new(config: &BenchConfig, checks: &Checks, measured: Measured) -> BenchReport {
        let per_person = |bytes: f64| bytes / f64::from(config.people.max(1));
        let events = checks.events as f64;
        let stats = &measured.stats;
        BenchReport {
            people: config.people,
            processors: config.processors,
            reservations: checks.reservations,
            reservations_per_s: checks.reservations as f64 / measured.pipeline_s,
            events: checks.events,
            events_per_s: events / measured.pipeline_s,
            avg_event_bytes: checks.avg_event_bytes,
            raw_append_per_s: measured.raw_append_per_s,
            ratio: (events / measured.pipeline_s) / measured.raw_append_per_s,
            p50_decision_ms: percentile(&measured.latencies_ms, 50.0),
            p99_decision_ms: percentile(&measured.latencies_ms, 99.0),
            p99_projection_ms: (!measured.projection_ms.is_empty())
                .then(|| percentile(&measured.projection_ms, 99.0)),
            overbooked: checks.overbooked,
            double_reserved: checks.double_reserved,
            counted_in: checks.counted_in,
            sold_out: measured.sold_out,
            refused_otherwise: measured.refused,
            admit_per_s: config.admit_per_s,
            doses_percent: config.doses_percent,
            raw_events_per_transaction: measured.raw_events_per_transaction,
            rss_bytes_per_person: per_person(measured.rss_growth as f64),
            writer_state_bytes_per_person: checks.writer.map(|(state, _)| per_person(state as f64)),
            dedup_bytes_per_person: checks.writer.map(|(_, dedup)| per_person(dedup as f64)),
            follow_ups_local: stats.follow_ups_local,
            transactions: stats.transactions,
            commands_per_transaction: stats.commands as f64 / stats.transactions.max(1) as f64,
            processor_poll_ms: stats.poll_ms,
            processor_decide_ms: stats.decide_ms,
            processor_commit_ms: stats.commit_ms,
            processor_produce_ms: stats.commit_phases.produce_us / 1_000,
            processor_offsets_ms: stats.commit_phases.offsets_us / 1_000,
            processor_flush_ms: stats.commit_phases.flush_us / 1_000,
            processor_end_ms: stats.commit_phases.end_us / 1_000,
            transaction_ms: stats.commit_phases.spreads.map(|spread| {
                let longest = (spread.count() > 0).then(|| spread.max_us as f64 / 1_000.0);
                [spread.at_most_ms(0.5), spread.at_most_ms(0.99), longest]
            }),
        }
    }
}

fn print_report(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
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
            "raw records per transaction",
            format!("{:.0}", report.raw_events_per_transaction),
        ),
        (
            "admissions / s (controller)",
            format!("{}", report.admit_per_s),
        ),
        (
            "doses for % of the crowd",
            report
                .doses_percent
                .map_or("all".to_owned(), |p| format!("{p}")),
        ),
        ("bookings refused sold out", format!("{}", report.sold_out)),
        (
            "bookings refused otherwise",
            format!("{}", report.refused_otherwise),
        ),
        (
            "admission seen -> booked p50 ms",
            format!("{:.1}", report.p50_decision_ms),
        ),
        (
            "admission seen -> booked p99 ms",
            format!("{:.1}", report.p99_decision_ms),
        ),
        (
            "booked seen -> PostgreSQL row p99 ms",
            report
                .p99_projection_ms
                .map_or("not measured".to_owned(), |ms| format!("{ms:.1}")),
        ),
        (
            "overbooked shares",
            format!("{} ({})", report.overbooked, report.counted_in),
        ),
        (
            "people holding two",
            format!("{} ({})", report.double_reserved, report.counted_in),
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
        (
            "committing: produce / offsets / acks / end ms",
            format!(
                "{} / {} / {} / {}",
                report.processor_produce_ms,
                report.processor_offsets_ms,
                report.processor_flush_ms,
                report.processor_end_ms
            ),
        ),
    ];
    let phases = ["produce", "offsets", "acks", "end", "total"];
    let spread = |[p50, p99, longest]: [Option<f64>; 3]| {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        format!("{} / {} / {}", ms(p50), ms(p99), ms(longest))
    };
    let per_transaction = phases
        .iter()
        .zip(report.transaction_ms)
        .map(|(phase, ms)| (format!("txn {phase} p50/p99/max ms"), spread(ms)));
    let rows = rows
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(per_transaction);
    for (name, value) in rows {
        writeln!(out, "  {name:<34} {value:>14}")?;
    }
    writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default())
}
