//! The read models in PostgreSQL: [`PgProjector`] folds each topic-partition of the log into the
//! tables of `projections/*.sql`, exactly once.
//!
//! Exactly once: a batch of one partition's records (at most [`PROJECTION_BATCH_EVENTS_MAX`]) is
//! applied in a transaction that also moves that partition's `next_offset` in
//! `projection_offsets`; the batches of one poll, one per partition, share ONE transaction. The
//! transaction first locks every offset row it moves (in the order of topic and partition) and
//! drops every record below the stored offset, so a crash anywhere (before, during or after the
//! commit) and a redelivered batch both leave each record applied once. The lock also keeps two
//! projectors of the same projection from interleaving their writes to one partition's rows.
//!
//! How the log is read: one [`LogStream`] over every partition of the topology, opened at the
//! stored offsets and kept between runs (dropped on any error, so that a run after a failure
//! starts again from what is committed). What one poll hands out is cut into batches per
//! partition; records of a partition never wait for a pass over the other partitions.
//!
//! How the batches are written: the rows they touch are loaded (one query per table), they are
//! folded into them, partition after partition, with the very same [`ReadModel::apply`] as the
//! in-memory reference, and the result is written back with one multi-row upsert per table
//! (`unnest` of arrays). Refusal counts are written as increments.
//!
//! Types cross the wire as text and `bigint` (dates, uuids cast in SQL), so no optional feature
//! of the `postgres` crate is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ::postgres::{Client, Row, Statement, Transaction};

use super::{
    ClinicRow, CongestionRow, QuotaRow, ReadModel, ReservationRow, ReservationState, RowDiff,
    TicketRow, TicketState, Touched, diff_models, parse_rejection_code, parse_share,
};
use yeyak_domain::{
    ClinicId, CongestionLevel, Envelope, GatewayId, Method, ReservationId, SubjectId, TicketNo,
};
use yeyak_log::codec::{CodecError, Topology, decode};
use yeyak_log::{EventLog, LogError, LogStream, Offset, Position, StoredRecord};

/// The most records one projection transaction applies.
pub const PROJECTION_BATCH_EVENTS_MAX: usize = 10_000;

/// The most records one poll of the log hands the projector (all partitions together; each
/// partition's share is applied in batches of at most the batch size).
pub const PROJECTION_POLL_EVENTS_MAX: usize = 20_000;

/// How long [`PgProjector::run_until_caught_up`] waits in one poll for a record it knows is
/// committed.
const CATCH_UP_POLL: Duration = Duration::from_millis(20);

/// How long the log's stream may hand out nothing before the projector asks whether the
/// partitions hold records it has not got. If they still do at the next such check, with no
/// record in between, the stream is stalled (a broker gone silent, a client stuck):
/// [`ProjectionError::Follow`], after which a projector connects again.
pub const STREAM_QUIET_CHECK: Duration = Duration::from_secs(5);

/// The projection name of the read models of `projections/001_read_models.sql`.
pub const READ_MODELS_PROJECTION: &str = "read_models";

/// One migration file, embedded at build time.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order of version. Never edit a released one; add the next.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_read_models",
        sql: include_str!("../../../../projections/001_read_models.sql"),
    },
    Migration {
        version: 2,
        name: "002_queue_eta",
        sql: include_str!("../../../../projections/002_queue_eta.sql"),
    },
    Migration {
        version: 3,
        name: "003_congestion",
        sql: include_str!("../../../../projections/003_congestion.sql"),
    },
    Migration {
        version: 4,
        name: "004_clinic_address",
        sql: include_str!("../../../../projections/004_clinic_address.sql"),
    },
];

const BOOTSTRAP_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

/// Everything that can go wrong while projecting. Variants about a record carry its coordinates.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] crate::pg::PgConnectError),

    #[error("migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: ::postgres::Error,
    },

    #[error("PostgreSQL failed while {action}")]
    Db {
        action: &'static str,
        #[source]
        source: ::postgres::Error,
    },

    #[error("PostgreSQL failed while {action} for the batch at {topic}/{partition}@{offset}")]
    BatchDb {
        action: &'static str,
        topic: String,
        partition: u32,
        offset: Offset,
        #[source]
        source: ::postgres::Error,
    },

    #[error("cannot read the log at {topic}/{partition}@{offset}")]
    Log {
        topic: String,
        partition: u32,
        offset: Offset,
        #[source]
        source: LogError,
    },

    /// Following the log failed: its stream failed or stalled, or a partition's stable end could
    /// not be asked (the error names where).
    #[error("cannot follow the log")]
    Follow(#[source] LogError),

    #[error("cannot decode the event at {topic}/{partition}@{offset}")]
    Decode {
        topic: String,
        partition: u32,
        offset: Offset,
        #[source]
        source: CodecError,
    },

    /// The batch starts after the stored offset: applying it would skip records.
    #[error(
        "projection {projection:?} is at {topic}/{partition}@{stored}, but the batch starts at {first}"
    )]
    OffsetGap {
        projection: String,
        topic: String,
        partition: u32,
        stored: Offset,
        first: Offset,
    },

    /// A batch must be one partition's records at increasing offsets (consecutive on a log whose
    /// offsets are dense).
    #[error("batch record {topic}/{partition}@{offset} does not follow the one before it")]
    NotContiguous {
        topic: String,
        partition: u32,
        offset: Offset,
    },

    /// The stored offset lies beyond the end of the log: this is not the log the projection read.
    #[error(
        "projection {projection:?} is at {topic}/{partition}@{stored}, beyond the log's end {end}"
    )]
    AheadOfLog {
        projection: String,
        topic: String,
        partition: u32,
        stored: Offset,
        end: Offset,
    },

    #[error("{what} at {topic}/{partition}@{offset} does not fit a bigint")]
    OutOfRange {
        what: &'static str,
        topic: String,
        partition: u32,
        offset: Offset,
    },

    /// A row read back from the database that no event could have written.
    #[error("a row of {table} is not valid: {reason}")]
    BadRow { table: &'static str, reason: String },

    /// The before-commit hook asked to stop: the batch was rolled back.
    #[error("stopped before committing the batch at {topic}/{partition}@{offset}")]
    Interrupted {
        topic: String,
        partition: u32,
        offset: Offset,
    },
}

impl ProjectionError {
    /// Whether the projector may connect again and go on: the broker or the database failed or
    /// went away (its batch was rolled back, its offsets with it), or a topic it follows does not
    /// exist yet (a projector started before the processors that create the topics). Anything
    /// else (a damaged log, a gap, another log than the projection's) is a stop that needs a
    /// person.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Connect(_)
            | ProjectionError::Db { .. }
            | ProjectionError::BatchDb { .. } => true,
            ProjectionError::Log { source, .. } | ProjectionError::Follow(source) => matches!(
                source,
                LogError::Broker { .. } | LogError::Timeout { .. } | LogError::UnknownTopic { .. }
            ),
            _ => false,
        }
    }

    /// A topic the projector follows does not exist (yet).
    pub fn is_missing_topic(&self) -> bool {
        matches!(
            self,
            ProjectionError::Log {
                source: LogError::UnknownTopic { .. },
                ..
            } | ProjectionError::Follow(LogError::UnknownTopic { .. })
        )
    }
}

fn db(action: &'static str) -> impl FnOnce(::postgres::Error) -> ProjectionError {
    move |source| ProjectionError::Db { action, source }
}

/// Applies every migration not applied yet, in one transaction under an advisory lock (so
/// concurrent projectors of one schema do not race). Returns the versions applied now.
pub fn migrate(client: &mut Client) -> Result<Vec<i64>, ProjectionError> {
    let mut tx = client.transaction().map_err(db("starting the migration"))?;
    tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('yeyak.migrations ' || coalesce(current_schema(), '')))")
        .map_err(db("locking the migrations"))?;
    tx.batch_execute(BOOTSTRAP_SQL)
        .map_err(db("creating schema_migrations"))?;
    let applied: BTreeSet<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .map_err(db("reading schema_migrations"))?
        .iter()
        .map(|r| r.try_get::<_, i64>(0))
        .collect::<Result<_, _>>()
        .map_err(db("reading schema_migrations"))?;
    let mut now = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let failed = |source| ProjectionError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        tx.batch_execute(m.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .map_err(failed)?;
        now.push(m.version);
    }
    tx.commit().map_err(db("committing the migration"))?;
    Ok(now)
}

/// What one call of [`PgProjector::apply_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// `events` records were applied (after dropping `skipped` already applied ones); the
    /// partition's `next_offset` is now `next_offset`.
    Applied {
        events: u64,
        skipped: u64,
        next_offset: Offset,
    },
    /// Every record was applied before; nothing changed. The stored offset is `next_offset`.
    AlreadyApplied { next_offset: Offset },
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionCounts {
    /// Partition batches committed (the batches of one poll share a transaction).
    pub batches: u64,
    /// Records applied.
    pub events: u64,
    /// Records read but found applied already (another projector, or a redelivery).
    pub skipped: u64,
}

/// The batch about to be committed, as the before-commit hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    pub topic: String,
    pub partition: u32,
    pub first_offset: Offset,
    pub next_offset: Offset,
    /// Batches this projector committed before this one.
    pub committed_before: u64,
    /// Transactions this projector committed before this batch's (the batches of one poll
    /// share one).
    pub transactions_before: u64,
}

/// Called for each batch inside its transaction just before COMMIT; `Break` rolls the
/// transaction (every batch in it) back and ends the run with
/// [`ProjectionError::Interrupted`]. For fault-injection tests and tracing.
pub type BeforeCommit<'a> = Box<dyn FnMut(&BatchInfo) -> ControlFlow<()> + Send + 'a>;

struct Statements {
    ensure_offset: Statement,
    lock_offset: Statement,
    advance_offset: Statement,
    load_clinics: Statement,
    load_quota: Statement,
    load_reservations: Statement,
    load_tickets: Statement,
    upsert_clinics: Statement,
    upsert_quota: Statement,
    upsert_reservations: Statement,
    upsert_tickets: Statement,
    add_rejections: Statement,
    upsert_congestion: Statement,
}

const SELECT_CLINICS: &str = "SELECT clinic_id, name, region, booking_days, address FROM clinics";
const SELECT_QUOTA: &str = "SELECT q.clinic_id, to_char(q.vaccination_date, 'YYYY-MM-DD'), q.share, q.capacity, q.booked FROM slot_quota q";
const SELECT_RESERVATIONS: &str = "SELECT reservation_id::text, subject_id, clinic_id, \
    to_char(vaccination_date, 'YYYY-MM-DD'), share, state, booked_at_ms, ended_at_ms, replaces::text FROM reservations";
const SELECT_TICKETS: &str = "SELECT ticket, subject_id, state, issued_at_ms, admitted_at_ms, expires_at_ms FROM queue_tickets";
const SELECT_REJECTIONS: &str = "SELECT source, command, code, count FROM rejections";
const SELECT_CONGESTION: &str = "SELECT method, level, wait_ms, in_flight, capacity, \
    failure_permille, provider_up, gateway, reported_at_ms FROM congestion";

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, ProjectionError> {
        let mut p = |sql: &str| {
            client
                .prepare(sql)
                .map_err(db("preparing the projector's statements"))
        };
        Ok(Statements {
            ensure_offset: p(
                "INSERT INTO projection_offsets (projection, topic, partition, next_offset) \
                VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
            )?,
            lock_offset: p("SELECT next_offset FROM projection_offsets \
                WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE")?,
            advance_offset: p("UPDATE projection_offsets SET next_offset = $4 \
                WHERE projection = $1 AND topic = $2 AND partition = $3")?,
            load_clinics: p(&format!(
                "{SELECT_CLINICS} WHERE clinic_id = ANY($1::text[])"
            ))?,
            load_quota: p(&format!(
                "{SELECT_QUOTA} JOIN unnest($1::text[], $2::text[]) AS k(c, d) \
                 ON q.clinic_id = k.c AND q.vaccination_date = k.d::date"
            ))?,
            load_reservations: p(&format!(
                "{SELECT_RESERVATIONS} WHERE reservation_id = ANY($1::text[]::uuid[])"
            ))?,
            load_tickets: p(&format!(
                "{SELECT_TICKETS} WHERE ticket = ANY($1::bigint[])"
            ))?,
            upsert_clinics: p(
                "INSERT INTO clinics (clinic_id, name, region, booking_days, address) \
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) \
                ON CONFLICT (clinic_id) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region, \
                booking_days = EXCLUDED.booking_days, address = EXCLUDED.address",
            )?,
            upsert_quota: p(
                "INSERT INTO slot_quota (clinic_id, vaccination_date, share, capacity, booked) \
                SELECT c, d::date, s, cap, b FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
                AS u(c, d, s, cap, b) \
                ON CONFLICT (clinic_id, vaccination_date, share) DO UPDATE SET capacity = EXCLUDED.capacity, \
                booked = EXCLUDED.booked",
            )?,
            upsert_reservations: p(
                "INSERT INTO reservations (reservation_id, subject_id, clinic_id, \
                vaccination_date, share, state, booked_at_ms, ended_at_ms, replaces) \
                SELECT r::uuid, s, c, d::date, sh, st, b, e, rp::uuid FROM unnest($1::text[], $2::text[], \
                $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[]) \
                AS u(r, s, c, d, sh, st, b, e, rp) \
                ON CONFLICT (reservation_id) DO UPDATE SET subject_id = EXCLUDED.subject_id, \
                clinic_id = EXCLUDED.clinic_id, vaccination_date = EXCLUDED.vaccination_date, \
                share = EXCLUDED.share, state = EXCLUDED.state, booked_at_ms = EXCLUDED.booked_at_ms, \
                ended_at_ms = EXCLUDED.ended_at_ms, replaces = EXCLUDED.replaces",
            )?,
            upsert_tickets: p(
                "INSERT INTO queue_tickets (ticket, subject_id, state, issued_at_ms, \
                admitted_at_ms, expires_at_ms) \
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) \
                ON CONFLICT (ticket) DO UPDATE SET subject_id = EXCLUDED.subject_id, state = EXCLUDED.state, \
                issued_at_ms = EXCLUDED.issued_at_ms, admitted_at_ms = EXCLUDED.admitted_at_ms, \
                expires_at_ms = EXCLUDED.expires_at_ms",
            )?,
            add_rejections: p("INSERT INTO rejections (source, command, code, count) \
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                ON CONFLICT (source, command, code) DO UPDATE SET count = rejections.count + EXCLUDED.count")?,
            upsert_congestion: p(
                "INSERT INTO congestion (method, level, wait_ms, in_flight, capacity, \
                failure_permille, provider_up, gateway, reported_at_ms) \
                SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
                $6::bigint[], $7::bool[], $8::text[], $9::bigint[]) \
                ON CONFLICT (method) DO UPDATE SET level = EXCLUDED.level, wait_ms = EXCLUDED.wait_ms, \
                in_flight = EXCLUDED.in_flight, capacity = EXCLUDED.capacity, \
                failure_permille = EXCLUDED.failure_permille, provider_up = EXCLUDED.provider_up, \
                gateway = EXCLUDED.gateway, reported_at_ms = EXCLUDED.reported_at_ms",
            )?,
        })
    }
}

/// Projects a log into the read-model tables of the connection's schema (its `search_path`).
pub struct PgProjector<'a> {
    client: Client,
    log: &'a dyn EventLog,
    topology: Topology,
    name: String,
    batch_events_max: usize,
    statements: Statements,
    before_commit: Option<BeforeCommit<'a>>,
    committed: u64,
    transactions: u64,
    /// Every partition of the topology, streaming on from where the projection stood when it
    /// was opened. Dropped on any error, and whenever records polled may not all be applied, so
    /// that the next run opens it again at the stored offsets.
    stream: Option<Box<dyn LogStream + 'a>>,
    quiet: QuietWatch,
}

/// Notices a stream that hands out nothing while its partitions hold records for it.
#[derive(Default)]
struct QuietWatch {
    /// Since when nothing came (`None`: something came since the last check).
    since: Option<Instant>,
    /// The partitions behind their stable end at the last check, with the stream's position.
    behind: Vec<(String, u32, Offset)>,
}

/// The records of each partition, in the order the partitions first appear.
fn by_partition(records: Vec<StoredRecord>) -> Vec<Vec<StoredRecord>> {
    let mut groups: Vec<Vec<StoredRecord>> = Vec::new();
    for record in records {
        let group = groups
            .iter_mut()
            .find(|g| g[0].topic == record.topic && g[0].partition == record.partition);
        match group {
            Some(group) => group.push(record),
            None => groups.push(vec![record]),
        }
    }
    groups
}

/// Where one batch's error happened.
struct At<'t> {
    topic: &'t str,
    partition: u32,
    offset: Offset,
}

impl At<'_> {
    fn db(&self, action: &'static str) -> impl FnOnce(::postgres::Error) -> ProjectionError + '_ {
        move |source| ProjectionError::BatchDb {
            action,
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            source,
        }
    }

    fn range(&self, what: &'static str) -> ProjectionError {
        ProjectionError::OutOfRange {
            what,
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

fn to_i64(value: u64, what: &'static str, at: &At) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| at.range(what))
}

impl<'a> PgProjector<'a> {
    /// A projector on an open connection; applies the migrations first.
    pub fn new(
        mut client: Client,
        log: &'a dyn EventLog,
        topology: Topology,
        name: &str,
    ) -> Result<PgProjector<'a>, ProjectionError> {
        migrate(&mut client)?;
        let statements = Statements::prepare(&mut client)?;
        Ok(PgProjector {
            client,
            log,
            topology,
            name: name.to_owned(),
            batch_events_max: PROJECTION_BATCH_EVENTS_MAX,
            statements,
            before_commit: None,
            committed: 0,
            transactions: 0,
            stream: None,
            quiet: QuietWatch::default(),
        })
    }

    /// Connects to `url` (TLS as its `sslmode` asks: `crate::pg`; put
    /// `options=-c search_path=...` in it to pick a schema).
    pub fn connect(
        url: &str,
        log: &'a dyn EventLog,
        topology: Topology,
        name: &str,
    ) -> Result<PgProjector<'a>, ProjectionError> {
        let client = crate::pg::connect(url).map_err(ProjectionError::Connect)?;
        PgProjector::new(client, log, topology, name)
    }

    /// Smaller batches (at least 1, at most [`PROJECTION_BATCH_EVENTS_MAX`]).
    pub fn set_batch_events_max(&mut self, n: usize) {
        self.batch_events_max = n.clamp(1, PROJECTION_BATCH_EVENTS_MAX);
    }

    pub fn set_before_commit(&mut self, hook: BeforeCommit<'a>) {
        self.before_commit = Some(hook);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn into_client(self) -> Client {
        self.client
    }

    /// This projection's stored `next_offset` per (topic, partition).
    pub fn offsets(&mut self) -> Result<BTreeMap<(String, u32), Offset>, ProjectionError> {
        let rows = self
            .client
            .query("SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = $1", &[&self.name])
            .map_err(db("reading projection_offsets"))?;
        let mut offsets = BTreeMap::new();
        for row in rows {
            let bad = |reason: String| ProjectionError::BadRow {
                table: "projection_offsets",
                reason,
            };
            let topic: String = row.try_get(0).map_err(db("reading projection_offsets"))?;
            let partition: i64 = row.try_get(1).map_err(db("reading projection_offsets"))?;
            let next: i64 = row.try_get(2).map_err(db("reading projection_offsets"))?;
            let partition =
                u32::try_from(partition).map_err(|_| bad(format!("partition {partition}")))?;
            let next = u64::try_from(next).map_err(|_| bad(format!("next_offset {next}")))?;
            offsets.insert((topic, partition), next);
        }
        Ok(offsets)
    }

    /// Applies every record committed when it is called (each partition up to its stable end:
    /// [`EventLog::stable_end`]), batch by batch.
    pub fn run_until_caught_up(&mut self) -> Result<ProjectionCounts, ProjectionError> {
        self.run(None)
    }

    /// Like [`PgProjector::run_until_caught_up`], but stops after committing `batches` batches.
    pub fn run_batches(&mut self, batches: u64) -> Result<ProjectionCounts, ProjectionError> {
        self.run(Some(batches))
    }

    /// Waits up to `wait` for records of any partition and applies what came, one transaction
    /// per partition's batch: the loop of a projector that follows the log
    /// (`yeyak project`). Returns with nothing done when nothing came.
    pub fn step(&mut self, wait: Duration) -> Result<ProjectionCounts, ProjectionError> {
        let mut counts = ProjectionCounts::default();
        let result = self.poll_and_apply(wait, None, &mut counts);
        let flow = self.forget_stream_on_error(result)?;
        debug_assert!(flow.is_continue(), "only a bound on batches breaks");
        Ok(counts)
    }

    fn run(&mut self, batches_max: Option<u64>) -> Result<ProjectionCounts, ProjectionError> {
        let mut counts = ProjectionCounts::default();
        let result = self.catch_up(batches_max, &mut counts);
        self.forget_stream_on_error(result)?;
        Ok(counts)
    }

    /// Polls and applies until every partition's stream position reaches the stable end it had
    /// when this was called, or `batches_max` batches are committed.
    fn catch_up(
        &mut self,
        batches_max: Option<u64>,
        counts: &mut ProjectionCounts,
    ) -> Result<(), ProjectionError> {
        let mut targets = self.stable_ends()?;
        loop {
            let stream = self.open_stream()?;
            targets.retain(|(topic, partition, end)| {
                stream
                    .position(topic, *partition)
                    .is_some_and(|at| at < *end)
            });
            if targets.is_empty() {
                return Ok(());
            }
            let go_on = self.poll_and_apply(CATCH_UP_POLL, batches_max, counts)?;
            if go_on.is_break() {
                return Ok(());
            }
        }
    }

    /// Every partition of the topology with its stable end now.
    fn stable_ends(&self) -> Result<Vec<(String, u32, Offset)>, ProjectionError> {
        let mut ends = Vec::new();
        for (topic, partitions) in self.topology.topics() {
            for partition in 0..partitions {
                let end = self
                    .log
                    .stable_end(topic, partition)
                    .map_err(ProjectionError::Follow)?;
                ends.push((topic.to_owned(), partition, end));
            }
        }
        Ok(ends)
    }

    /// The stream of every partition, opened at the stored offsets if it is not open.
    fn open_stream(&mut self) -> Result<&mut Box<dyn LogStream + 'a>, ProjectionError> {
        if self.stream.is_none() {
            let stored = self.offsets()?;
            let mut from = Vec::new();
            for (topic, partitions) in self.topology.topics() {
                for partition in 0..partitions {
                    let next = stored
                        .get(&(topic.to_owned(), partition))
                        .copied()
                        .unwrap_or(0);
                    self.check_within_log(topic, partition, next)?;
                    from.push(Position {
                        topic: topic.to_owned(),
                        partition,
                        offset: next,
                    });
                }
            }
            self.stream = Some(self.log.stream(&from).map_err(ProjectionError::Follow)?);
            self.quiet = QuietWatch::default();
        }
        Ok(self.stream.as_mut().expect("opened above"))
    }

    /// Refuses a stored offset beyond the log's end: the projection read another log.
    fn check_within_log(
        &self,
        topic: &str,
        partition: u32,
        next: Offset,
    ) -> Result<(), ProjectionError> {
        let end = self
            .log
            .end_offset(topic, partition)
            .map_err(|source| ProjectionError::Log {
                topic: topic.to_owned(),
                partition,
                offset: next,
                source,
            })?;
        if next > end {
            return Err(ProjectionError::AheadOfLog {
                projection: self.name.clone(),
                topic: topic.to_owned(),
                partition,
                stored: next,
                end,
            });
        }
        Ok(())
    }

    fn forget_stream_on_error<T>(
        &mut self,
        result: Result<T, ProjectionError>,
    ) -> Result<T, ProjectionError> {
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    /// One poll of the stream (up to `wait` for the first record), and every record it gave
    /// applied, each partition's in batches. `Break` when `batches_max` stopped it (the stream
    /// is dropped then: records it handed out were left unapplied).
    fn poll_and_apply(
        &mut self,
        wait: Duration,
        batches_max: Option<u64>,
        counts: &mut ProjectionCounts,
    ) -> Result<ControlFlow<()>, ProjectionError> {
        let records = self
            .open_stream()?
            .poll(PROJECTION_POLL_EVENTS_MAX, wait)
            .map_err(ProjectionError::Follow)?;
        if records.is_empty() {
            self.check_quiet()?;
            return Ok(ControlFlow::Continue(()));
        }
        self.quiet = QuietWatch::default();
        let partitions = by_partition(records);
        let chunks: Vec<Vec<&[StoredRecord]>> = partitions
            .iter()
            .map(|records| records.chunks(self.batch_events_max).collect())
            .collect();
        // Round r: the r-th batch of every partition, all in one transaction.
        for round in 0.. {
            let mut batches: Vec<&[StoredRecord]> = chunks
                .iter()
                .filter_map(|c| c.get(round).copied())
                .collect();
            if batches.is_empty() {
                break;
            }
            if let Some(max) = batches_max {
                let room = max.saturating_sub(counts.batches) as usize;
                if room < batches.len() {
                    batches.truncate(room);
                    if room > 0 {
                        self.count(&batches, counts)?;
                    }
                    self.stream = None;
                    return Ok(ControlFlow::Break(()));
                }
            }
            self.count(&batches, counts)?;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Applies `batches` in one transaction and adds what happened to `counts`.
    fn count(
        &mut self,
        batches: &[&[StoredRecord]],
        counts: &mut ProjectionCounts,
    ) -> Result<(), ProjectionError> {
        let outcomes = self.apply_together(batches)?;
        for (batch, outcome) in batches.iter().zip(outcomes) {
            match outcome {
                BatchOutcome::Applied {
                    events, skipped, ..
                } => {
                    counts.batches += 1;
                    counts.events += events;
                    counts.skipped += skipped;
                }
                // Another projector of this projection is ahead here: its rows stand.
                BatchOutcome::AlreadyApplied { .. } => counts.skipped += batch.len() as u64,
            }
        }
        Ok(())
    }

    /// After a poll that got nothing: every [`STREAM_QUIET_CHECK`] of quiet, the partitions
    /// behind their stable end; the same ones at the same positions twice in a row is a stall.
    fn check_quiet(&mut self) -> Result<(), ProjectionError> {
        let since = *self.quiet.since.get_or_insert_with(Instant::now);
        if since.elapsed() < STREAM_QUIET_CHECK {
            return Ok(());
        }
        let ends = self.stable_ends()?;
        let stream = self.open_stream()?;
        let behind: Vec<(String, u32, Offset)> = ends
            .into_iter()
            .filter_map(|(topic, partition, end)| {
                let at = stream.position(&topic, partition)?;
                (at < end).then_some((topic, partition, at))
            })
            .collect();
        if let Some((topic, partition, _)) = behind.iter().find(|b| self.quiet.behind.contains(b)) {
            return Err(ProjectionError::Follow(LogError::Timeout {
                topic: topic.clone(),
                partition: Some(*partition),
                operation: "stream (committed records not delivered)",
            }));
        }
        self.quiet = QuietWatch {
            since: Some(Instant::now()),
            behind,
        };
        Ok(())
    }

    /// Empties the read-model tables and this projection's offsets, then projects from offset 0.
    pub fn rebuild(&mut self) -> Result<ProjectionCounts, ProjectionError> {
        let mut tx = self
            .client
            .transaction()
            .map_err(db("starting the rebuild"))?;
        tx.batch_execute(
            "TRUNCATE clinics, slot_quota, reservations, queue_tickets, rejections, congestion",
        )
        .map_err(db("truncating the read models"))?;
        tx.execute(
            "DELETE FROM projection_offsets WHERE projection = $1",
            &[&self.name],
        )
        .map_err(db("resetting the offsets"))?;
        tx.commit().map_err(db("committing the rebuild's reset"))?;
        self.stream = None;
        self.run_until_caught_up()
    }

    /// Applies one partition's records (consecutive offsets) in one transaction, with the new
    /// `next_offset`. Records below the stored offset are dropped (they were applied before); a
    /// batch starting beyond it is refused with [`ProjectionError::OffsetGap`]. An empty slice
    /// touches nothing and answers `AlreadyApplied { next_offset: 0 }`.
    ///
    /// The projector's own stream no longer knows where the projection stands after this: the
    /// next run opens it again at the stored offsets.
    pub fn apply_batch(
        &mut self,
        records: &[StoredRecord],
    ) -> Result<BatchOutcome, ProjectionError> {
        self.stream = None;
        self.apply(records)
    }

    fn apply(&mut self, records: &[StoredRecord]) -> Result<BatchOutcome, ProjectionError> {
        if records.is_empty() {
            return Ok(BatchOutcome::AlreadyApplied { next_offset: 0 });
        }
        let mut outcomes = self.apply_together(&[records])?;
        Ok(outcomes.remove(0))
    }

    /// Applies several partitions' batches (each non-empty, one partition's consecutive
    /// records, no two of one partition) in ONE transaction: every offset row is locked (in
    /// the order of topic and partition, so that two projectors of one projection cannot
    /// deadlock), the batches already applied are left out, the rows the others touch are
    /// loaded once, folded, written once, and every partition's offset moves with them.
    /// Outcomes in the order of `batches`.
    fn apply_together(
        &mut self,
        batches: &[&[StoredRecord]],
    ) -> Result<Vec<BatchOutcome>, ProjectionError> {
        let dense = self.log.dense_offsets();
        let mut decoded = Vec::with_capacity(batches.len());
        for records in batches {
            decoded.push(decode_batch(records, dense)?);
        }
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.sort_by_key(|&i| (&batches[i][0].topic, batches[i][0].partition));

        let st = &self.statements;
        let first = &batches[order[0]][0];
        let at = At {
            topic: &first.topic,
            partition: first.partition,
            offset: first.offset,
        };
        let mut tx = self
            .client
            .transaction()
            .map_err(at.db("starting the transaction"))?;
        let mut outcomes = vec![None; batches.len()];
        let mut applied = Vec::new();
        for &i in &order {
            let records = batches[i];
            let (stored, plan) = lock_and_plan(&mut tx, st, &self.name, records, dense)?;
            match plan {
                super::BatchPlan::AlreadyApplied => {
                    outcomes[i] = Some(BatchOutcome::AlreadyApplied {
                        next_offset: stored,
                    });
                }
                super::BatchPlan::Gap => {
                    return Err(ProjectionError::OffsetGap {
                        projection: self.name.clone(),
                        topic: records[0].topic.clone(),
                        partition: records[0].partition,
                        stored,
                        first: records[0].offset,
                    });
                }
                super::BatchPlan::Apply { skip } => applied.push((i, skip)),
            }
        }
        if applied.is_empty() {
            return Ok(outcomes.into_iter().flatten().collect()); // the drop rolls back
        }

        let mut touched = Touched::default();
        for &(i, skip) in &applied {
            decoded[i][skip..].iter().for_each(|e| touched.add(e));
        }
        let mut model = load_touched(&mut tx, st, &touched, &at)?;
        for &(i, skip) in &applied {
            for envelope in &decoded[i][skip..] {
                model.apply(envelope);
            }
        }
        write_touched(&mut tx, st, &model, &touched, &at)?;
        let mut infos = Vec::with_capacity(applied.len());
        for (n, &(i, skip)) in applied.iter().enumerate() {
            let records = batches[i];
            let (topic, partition) = (records[0].topic.as_str(), records[0].partition);
            let here = At {
                topic,
                partition,
                offset: records[skip].offset,
            };
            let end = records[records.len() - 1].offset + 1;
            let next_i64 = to_i64(end, "the next offset", &here)?;
            let next_key: [&(dyn ::postgres::types::ToSql + Sync); 4] =
                [&self.name, &topic, &i64::from(partition), &next_i64];
            tx.execute(&st.advance_offset, &next_key)
                .map_err(here.db("moving the offset"))?;
            infos.push(BatchInfo {
                topic: topic.to_owned(),
                partition,
                first_offset: records[skip].offset,
                next_offset: end,
                committed_before: self.committed + n as u64,
                transactions_before: self.transactions,
            });
            outcomes[i] = Some(BatchOutcome::Applied {
                events: (records.len() - skip) as u64,
                skipped: skip as u64,
                next_offset: end,
            });
        }
        if let Some(hook) = self.before_commit.as_mut() {
            for info in &infos {
                if hook(info).is_break() {
                    drop(tx); // rolls back
                    return Err(ProjectionError::Interrupted {
                        topic: info.topic.clone(),
                        partition: info.partition,
                        offset: info.first_offset,
                    });
                }
            }
        }
        tx.commit().map_err(at.db("committing the batches"))?;
        self.committed += infos.len() as u64;
        self.transactions += 1;
        for info in &infos {
            tracing::debug!(projection = %self.name, topic = info.topic, partition = info.partition,
                from = info.first_offset, to = info.next_offset, "projected a batch");
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

/// One partition's records checked (one partition, offsets increasing: consecutive on a log
/// with dense offsets; on Kafka transaction markers leave gaps) and decoded.
fn decode_batch(records: &[StoredRecord], dense: bool) -> Result<Vec<Envelope>, ProjectionError> {
    let (topic, partition) = (records[0].topic.as_str(), records[0].partition);
    for (i, r) in records.iter().enumerate() {
        let follows = i == 0 || {
            let before = records[i - 1].offset;
            if dense {
                r.offset == before + 1
            } else {
                r.offset > before
            }
        };
        if r.topic != topic || r.partition != partition || !follows {
            return Err(ProjectionError::NotContiguous {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
            });
        }
    }
    records
        .iter()
        .map(|r| {
            decode(r).map_err(|source| ProjectionError::Decode {
                topic: r.topic.clone(),
                partition: r.partition,
                offset: r.offset,
                source,
            })
        })
        .collect()
}

/// Locks the batch's partition's offset row (creating it at 0) and plans the batch against the
/// stored offset (returned too).
fn lock_and_plan(
    tx: &mut Transaction<'_>,
    st: &Statements,
    name: &str,
    records: &[StoredRecord],
    dense: bool,
) -> Result<(Offset, super::BatchPlan), ProjectionError> {
    let first = &records[0];
    let at = At {
        topic: &first.topic,
        partition: first.partition,
        offset: first.offset,
    };
    let partition_i64 = i64::from(first.partition);
    let key: [&(dyn ::postgres::types::ToSql + Sync); 3] = [&name, &first.topic, &partition_i64];
    tx.execute(&st.ensure_offset, &key)
        .map_err(at.db("creating the offset row"))?;
    let stored = stored_offset(tx, st, name, &first.topic, first.partition)?;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    Ok((stored, super::plan_batch(stored, &offsets, dense)))
}

/// The partition's stored offset, its row locked (`FOR UPDATE`) until the transaction ends.
fn stored_offset(
    tx: &mut Transaction<'_>,
    st: &Statements,
    name: &str,
    topic: &str,
    partition: u32,
) -> Result<Offset, ProjectionError> {
    let at = At {
        topic,
        partition,
        offset: 0,
    };
    let key: [&(dyn ::postgres::types::ToSql + Sync); 3] = [&name, &topic, &i64::from(partition)];
    let stored: i64 = tx
        .query_one(&st.lock_offset, &key)
        .and_then(|row| row.try_get(0))
        .map_err(at.db("locking the offset row"))?;
    u64::try_from(stored).map_err(|_| ProjectionError::BadRow {
        table: "projection_offsets",
        reason: format!("next_offset {stored} for {topic}/{partition}"),
    })
}

/// The rows `touched` names, as they are in the database (refusal counts start empty: they
/// are written as increments).
fn load_touched(
    tx: &mut Transaction<'_>,
    st: &Statements,
    touched: &Touched,
    at: &At,
) -> Result<ReadModel, ProjectionError> {
    let mut model = ReadModel::new();
    if !touched.clinics.is_empty() {
        let ids: Vec<&str> = touched.clinics.iter().map(ClinicId::as_str).collect();
        for row in tx
            .query(&st.load_clinics, &[&ids])
            .map_err(at.db("loading clinics"))?
        {
            let (k, v) = clinic_row(&row)?;
            model.clinics.insert(k, v);
        }
    }
    if !touched.dates.is_empty() {
        let clinics: Vec<&str> = touched.dates.iter().map(|(c, _)| c.as_str()).collect();
        let dates: Vec<String> = touched.dates.iter().map(|(_, d)| d.to_string()).collect();
        for row in tx
            .query(&st.load_quota, &[&clinics, &dates])
            .map_err(at.db("loading slot_quota"))?
        {
            let (k, v) = quota_row(&row)?;
            model.slot_quota.insert(k, v);
        }
    }
    if !touched.reservations.is_empty() {
        let ids: Vec<String> = touched.reservations.iter().map(|r| r.to_string()).collect();
        for row in tx
            .query(&st.load_reservations, &[&ids])
            .map_err(at.db("loading reservations"))?
        {
            let (k, v) = reservation_row(&row)?;
            model.reservations.insert(k, v);
        }
    }
    if !touched.tickets.is_empty() {
        let tickets: Vec<i64> = touched
            .tickets
            .iter()
            .map(|t| to_i64(t.0, "a ticket number", at))
            .collect::<Result<_, _>>()?;
        for row in tx
            .query(&st.load_tickets, &[&tickets])
            .map_err(at.db("loading queue_tickets"))?
        {
            let (k, v) = ticket_row(&row)?;
            model.queue_tickets.insert(k, v);
        }
    }
    Ok(model)
}

/// Upserts every row of `model` that `touched` names, and adds the refusal counts.
fn write_touched(
    tx: &mut Transaction<'_>,
    st: &Statements,
    model: &ReadModel,
    touched: &Touched,
    at: &At,
) -> Result<(), ProjectionError> {
    let clinics: Vec<(&ClinicId, &ClinicRow)> = touched
        .clinics
        .iter()
        .filter_map(|c| model.clinics.get_key_value(c))
        .collect();
    if !clinics.is_empty() {
        let ids: Vec<&str> = clinics.iter().map(|(c, _)| c.as_str()).collect();
        let names: Vec<&str> = clinics.iter().map(|(_, r)| r.name.as_str()).collect();
        let regions: Vec<&str> = clinics.iter().map(|(_, r)| r.region.as_str()).collect();
        let days: Vec<i64> = clinics.iter().map(|(_, r)| r.booking_days).collect();
        let addresses: Vec<Option<&str>> =
            clinics.iter().map(|(_, r)| r.address.as_deref()).collect();
        tx.execute(
            &st.upsert_clinics,
            &[&ids, &names, &regions, &days, &addresses],
        )
        .map_err(at.db("writing clinics"))?;
    }

    let quota: Vec<_> = model
        .slot_quota
        .iter()
        .filter(|((c, d, _), _)| touched.dates.contains(&(c.clone(), *d)))
        .collect();
    if !quota.is_empty() {
        let clinics: Vec<&str> = quota.iter().map(|((c, _, _), _)| c.as_str()).collect();
        let dates: Vec<String> = quota.iter().map(|((_, d, _), _)| d.to_string()).collect();
        let shares: Vec<String> = quota.iter().map(|((_, _, s), _)| s.to_string()).collect();
        let capacity: Vec<i64> = quota.iter().map(|(_, q)| q.capacity).collect();
        let booked: Vec<i64> = quota.iter().map(|(_, q)| q.booked).collect();
        tx.execute(
            &st.upsert_quota,
            &[&clinics, &dates, &shares, &capacity, &booked],
        )
        .map_err(at.db("writing slot_quota"))?;
    }

    let reservations: Vec<(&ReservationId, &ReservationRow)> = touched
        .reservations
        .iter()
        .filter_map(|r| model.reservations.get_key_value(r))
        .collect();
    if !reservations.is_empty() {
        let ids: Vec<String> = reservations.iter().map(|(r, _)| r.to_string()).collect();
        let subjects: Vec<String> = reservations
            .iter()
            .map(|(_, r)| r.subject.to_hex())
            .collect();
        let clinics: Vec<&str> = reservations
            .iter()
            .map(|(_, r)| r.clinic.as_str())
            .collect();
        let dates: Vec<String> = reservations
            .iter()
            .map(|(_, r)| r.date.to_string())
            .collect();
        let shares: Vec<String> = reservations
            .iter()
            .map(|(_, r)| r.share.to_string())
            .collect();
        let states: Vec<&str> = reservations.iter().map(|(_, r)| r.state.as_str()).collect();
        let booked: Vec<i64> = reservations.iter().map(|(_, r)| r.booked_at_ms).collect();
        let ended: Vec<Option<i64>> = reservations.iter().map(|(_, r)| r.ended_at_ms).collect();
        let replaces: Vec<Option<String>> = reservations
            .iter()
            .map(|(_, r)| r.replaces.map(|x| x.to_string()))
            .collect();
        tx.execute(
            &st.upsert_reservations,
            &[
                &ids, &subjects, &clinics, &dates, &shares, &states, &booked, &ended, &replaces,
            ],
        )
        .map_err(at.db("writing reservations"))?;
    }

    let tickets: Vec<(&TicketNo, &TicketRow)> = touched
        .tickets
        .iter()
        .filter_map(|t| model.queue_tickets.get_key_value(t))
        .collect();
    if !tickets.is_empty() {
        let numbers: Vec<i64> = tickets
            .iter()
            .map(|(t, _)| to_i64(t.0, "a ticket number", at))
            .collect::<Result<_, _>>()?;
        let subjects: Vec<String> = tickets.iter().map(|(_, t)| t.subject.to_hex()).collect();
        let states: Vec<&str> = tickets.iter().map(|(_, t)| t.state.as_str()).collect();
        let issued: Vec<i64> = tickets.iter().map(|(_, t)| t.issued_at_ms).collect();
        let admitted: Vec<Option<i64>> = tickets.iter().map(|(_, t)| t.admitted_at_ms).collect();
        let expires: Vec<Option<i64>> = tickets.iter().map(|(_, t)| t.expires_at_ms).collect();
        tx.execute(
            &st.upsert_tickets,
            &[&numbers, &subjects, &states, &issued, &admitted, &expires],
        )
        .map_err(at.db("writing queue_tickets"))?;
    }

    if !model.rejections.is_empty() {
        let sources: Vec<&str> = model
            .rejections
            .keys()
            .map(|(s, _, _)| s.as_str())
            .collect();
        let commands: Vec<&str> = model
            .rejections
            .keys()
            .map(|(_, c, _)| c.as_str())
            .collect();
        let codes: Vec<&str> = model
            .rejections
            .keys()
            .map(|(_, _, c)| c.as_str())
            .collect();
        let counts: Vec<i64> = model.rejections.values().copied().collect();
        tx.execute(&st.add_rejections, &[&sources, &commands, &codes, &counts])
            .map_err(at.db("adding to rejections"))?;
    }

    // A report replaces its method's whole row, so these rows are written, never loaded.
    let congestion: Vec<(&Method, &CongestionRow)> = touched
        .methods
        .iter()
        .filter_map(|m| model.congestion.get_key_value(m))
        .collect();
    if !congestion.is_empty() {
        let methods: Vec<&str> = congestion.iter().map(|(m, _)| m.as_str()).collect();
        let levels: Vec<&str> = congestion.iter().map(|(_, c)| c.level.as_str()).collect();
        let waits: Vec<i64> = congestion.iter().map(|(_, c)| c.wait_ms).collect();
        let in_flight: Vec<i64> = congestion.iter().map(|(_, c)| c.in_flight).collect();
        let capacity: Vec<i64> = congestion.iter().map(|(_, c)| c.capacity).collect();
        let failures: Vec<i64> = congestion.iter().map(|(_, c)| c.failure_permille).collect();
        let up: Vec<bool> = congestion.iter().map(|(_, c)| c.provider_up).collect();
        let gateways: Vec<&str> = congestion.iter().map(|(_, c)| c.gateway.as_str()).collect();
        let at_ms: Vec<i64> = congestion.iter().map(|(_, c)| c.reported_at_ms).collect();
        tx.execute(
            &st.upsert_congestion,
            &[
                &methods, &levels, &waits, &in_flight, &capacity, &failures, &up, &gateways, &at_ms,
            ],
        )
        .map_err(at.db("writing congestion"))?;
    }
    Ok(())
}

// ---- reading rows back ------------------------------------------------------------------------

fn get<'r, T: ::postgres::types::FromSql<'r>>(
    row: &'r Row,
    i: usize,
    table: &'static str,
) -> Result<T, ProjectionError> {
    row.try_get(i).map_err(|e| ProjectionError::BadRow {
        table,
        reason: format!("column {i}: {e}"),
    })
}

fn bad(table: &'static str, what: &str, value: &str) -> ProjectionError {
    ProjectionError::BadRow {
        table,
        reason: format!("{what} {value:?}"),
    }
}

fn clinic_row(row: &Row) -> Result<(ClinicId, ClinicRow), ProjectionError> {
    const T: &str = "clinics";
    let id: String = get(row, 0, T)?;
    let clinic = ClinicId::new(&id).ok_or_else(|| bad(T, "clinic_id", &id))?;
    Ok((
        clinic,
        ClinicRow {
            name: get(row, 1, T)?,
            region: get(row, 2, T)?,
            booking_days: get(row, 3, T)?,
            address: get(row, 4, T)?,
        },
    ))
}

fn quota_row(row: &Row) -> Result<(super::QuotaKey, QuotaRow), ProjectionError> {
    const T: &str = "slot_quota";
    let id: String = get(row, 0, T)?;
    let clinic = ClinicId::new(&id).ok_or_else(|| bad(T, "clinic_id", &id))?;
    let date: String = get(row, 1, T)?;
    let date = date
        .parse()
        .map_err(|_| bad(T, "vaccination_date", &date))?;
    let share: String = get(row, 2, T)?;
    let share = parse_share(&share).ok_or_else(|| bad(T, "share", &share))?;
    Ok((
        (clinic, date, share),
        QuotaRow {
            capacity: get(row, 3, T)?,
            booked: get(row, 4, T)?,
        },
    ))
}

fn reservation_row(row: &Row) -> Result<(ReservationId, ReservationRow), ProjectionError> {
    const T: &str = "reservations";
    let uuid = |text: &str| {
        uuid::Uuid::parse_str(text)
            .map(ReservationId)
            .map_err(|_| bad(T, "uuid", text))
    };
    let id: String = get(row, 0, T)?;
    let subject: String = get(row, 1, T)?;
    let clinic: String = get(row, 2, T)?;
    let date: String = get(row, 3, T)?;
    let share: String = get(row, 4, T)?;
    let state: String = get(row, 5, T)?;
    let replaces: Option<String> = get(row, 8, T)?;
    Ok((
        uuid(&id)?,
        ReservationRow {
            subject: SubjectId::from_hex(&subject).ok_or_else(|| bad(T, "subject_id", &subject))?,
            clinic: ClinicId::new(&clinic).ok_or_else(|| bad(T, "clinic_id", &clinic))?,
            date: date
                .parse()
                .map_err(|_| bad(T, "vaccination_date", &date))?,
            share: parse_share(&share).ok_or_else(|| bad(T, "share", &share))?,
            state: ReservationState::parse(&state).ok_or_else(|| bad(T, "state", &state))?,
            booked_at_ms: get(row, 6, T)?,
            ended_at_ms: get(row, 7, T)?,
            replaces: replaces.as_deref().map(uuid).transpose()?,
        },
    ))
}

fn ticket_row(row: &Row) -> Result<(TicketNo, TicketRow), ProjectionError> {
    const T: &str = "queue_tickets";
    let ticket: i64 = get(row, 0, T)?;
    let subject: String = get(row, 1, T)?;
    let state: String = get(row, 2, T)?;
    Ok((
        TicketNo(u64::try_from(ticket).map_err(|_| bad(T, "ticket", &ticket.to_string()))?),
        TicketRow {
            subject: SubjectId::from_hex(&subject).ok_or_else(|| bad(T, "subject_id", &subject))?,
            state: TicketState::parse(&state).ok_or_else(|| bad(T, "state", &state))?,
            issued_at_ms: get(row, 3, T)?,
            admitted_at_ms: get(row, 4, T)?,
            expires_at_ms: get(row, 5, T)?,
        },
    ))
}

fn congestion_row(row: &Row) -> Result<(Method, CongestionRow), ProjectionError> {
    const T: &str = "congestion";
    let method: String = get(row, 0, T)?;
    let level: String = get(row, 1, T)?;
    let gateway: String = get(row, 7, T)?;
    Ok((
        Method::parse(&method).ok_or_else(|| bad(T, "method", &method))?,
        CongestionRow {
            level: CongestionLevel::parse(&level).ok_or_else(|| bad(T, "level", &level))?,
            wait_ms: get(row, 2, T)?,
            in_flight: get(row, 3, T)?,
            capacity: get(row, 4, T)?,
            failure_permille: get(row, 5, T)?,
            provider_up: get(row, 6, T)?,
            gateway: GatewayId::new(&gateway).ok_or_else(|| bad(T, "gateway", &gateway))?,
            reported_at_ms: get(row, 8, T)?,
        },
    ))
}

/// Every read-model row of the connection's schema, as a [`ReadModel`].
pub fn read_model(client: &mut Client) -> Result<ReadModel, ProjectionError> {
    let mut model = ReadModel::new();
    // One snapshot for all tables, so a projector committing meanwhile cannot tear the read.
    let mut tx = client
        .build_transaction()
        .isolation_level(::postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(db("starting the read"))?;
    for row in tx
        .query(SELECT_CLINICS, &[])
        .map_err(db("reading clinics"))?
    {
        let (k, v) = clinic_row(&row)?;
        model.clinics.insert(k, v);
    }
    for row in tx
        .query(SELECT_QUOTA, &[])
        .map_err(db("reading slot_quota"))?
    {
        let (k, v) = quota_row(&row)?;
        model.slot_quota.insert(k, v);
    }
    for row in tx
        .query(SELECT_RESERVATIONS, &[])
        .map_err(db("reading reservations"))?
    {
        let (k, v) = reservation_row(&row)?;
        model.reservations.insert(k, v);
    }
    for row in tx
        .query(SELECT_TICKETS, &[])
        .map_err(db("reading queue_tickets"))?
    {
        let (k, v) = ticket_row(&row)?;
        model.queue_tickets.insert(k, v);
    }
    for row in tx
        .query(SELECT_REJECTIONS, &[])
        .map_err(db("reading rejections"))?
    {
        const T: &str = "rejections";
        let code: String = get(&row, 2, T)?;
        let code = parse_rejection_code(&code).ok_or_else(|| bad(T, "code", &code))?;
        model
            .rejections
            .insert((get(&row, 0, T)?, get(&row, 1, T)?, code), get(&row, 3, T)?);
    }
    for row in tx
        .query(SELECT_CONGESTION, &[])
        .map_err(db("reading congestion"))?
    {
        let (k, v) = congestion_row(&row)?;
        model.congestion.insert(k, v);
    }
    tx.commit().map_err(db("ending the read"))?;
    Ok(model)
}

/// The digest of the database's rows, comparable with [`ReadModel::digest`].
pub fn read_digest(client: &mut Client) -> Result<String, ProjectionError> {
    Ok(read_model(client)?.digest())
}

/// Every row that differs between `model` (left) and the database (right).
pub fn diff(model: &ReadModel, client: &mut Client) -> Result<Vec<RowDiff>, ProjectionError> {
    Ok(diff_models(model, &read_model(client)?))
}
