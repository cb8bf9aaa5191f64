//! Submit a command and wait for its outcome: the one interface the front tier, the operators'
//! jobs and the tools use to have commands decided, on the embedded ledger (the file log) or on
//! the Kafka pipeline (send the command, wait for its whole causal chain on the event tail).
//! Either way every event is handed to an [`EventSink`] (the gateway's view) in log order per
//! partition, before the submitter gets its answer: what a caller was told is already readable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use yeyak_domain::command::Target;
use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command, Envelope, TimestampMs};
use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy};

use crate::pipeline::Topics;
use crate::pipeline::client::{EventTail, Submitter};
use crate::pipeline::ledger_lag::{LagReport, LedgerLag};
use crate::pipeline::processor::ProcessorError;
use crate::pipeline::submission::{Failure, Next, Submission};
use crate::{Ledger, LedgerError, Topology};

/// How long the event tail waits for new events in one poll.
pub const TAIL_POLL_MS: u64 = 5;
/// Events the gateway's tail keeps after their requests were answered, so that a caller who
/// asks again with the same id soon after is answered from the log; older answered chains are
/// forgotten (`Answers::forget_answered`): the tail's memory is bounded by this and by the
/// requests waiting, not by the campaign.
pub const TAIL_KEEP_EVENTS: usize = 50_000;
/// Requests waiting for a decision at once on the Kafka backend, at most.
pub const WAITERS_MAX: usize = 100_000;
/// How long the tail keeps the chain of a request that ran past its deadline, for the caller
/// who asks again with the same id: the processors' memory of answered commands, within which
/// they answer a retry with no new event (the first decision is the answer).
pub const RETRY_WINDOW: Duration =
    Duration::from_millis(crate::pipeline::decided::DEDUP_WINDOW_MS_DEFAULT as u64);

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the ledger failed")]
    Ledger(#[from] LedgerError),
    #[error("the Kafka pipeline failed")]
    Pipeline(#[from] ProcessorError),
    #[error("no decision within {0:?}")]
    Timeout(Duration),
    #[error("the log did not take the command ({sends} sends failed)")]
    NotDelivered { sends: u32 },
    #[error("the event log is damaged: {0}")]
    Damaged(String),
    #[error("too many requests are waiting for a decision")]
    Overloaded,
    #[error("the backend stopped")]
    Stopped,
}

/// Sees every event the ledger decides, in log order per partition, before the submitter of
/// its command is answered: the gateway's view, the rebalance's slot quotas, the benchmark's
/// clock.
pub trait EventSink: Send + Sync + 'static {
    fn record(&self, events: &[Envelope]);
}

/// Where a decision goes once it is known ([`Submit::submit_then`]): called exactly once, from
/// whichever thread learns it. It must not block (send it on a channel).
pub type Reply = Box<dyn FnOnce(Result<Outcome, SubmitError>) + Send>;

/// Decides commands. `submit` blocks its caller; `submit_then` answers a [`Reply`] instead, and
/// does not block when [`Submit::answers_without_blocking`] says so (the HTTP tier then awaits
/// the reply; otherwise it calls it from `spawn_blocking`).
pub trait Submit: Send + Sync + 'static {
    /// Decides `command` and every follow-up it causes; returns the whole outcome.
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError>;
    /// Like `submit`, waiting at most `timeout` for the decision. A decision with no event at
    /// all (an `Admit` that found nobody waiting) is never seen on the event tail: the
    /// admission controller uses a short timeout so that such a decision cannot stall it.
    fn submit_within(&self, command: Command, _timeout: Duration) -> Result<Outcome, SubmitError> {
        self.submit(command)
    }
    /// Like `submit_within`, answering `reply` (on this thread unless the backend has its own
    /// way: see [`Submit::answers_without_blocking`]).
    fn submit_then(&self, command: Command, timeout: Duration, reply: Reply) {
        reply(self.submit_within(command, timeout));
    }
    /// Whether `submit_then` returns at once and answers from another thread (no caller waits
    /// on a thread of its own).
    fn answers_without_blocking(&self) -> bool {
        false
    }
    /// Events handed to the sink so far (replayed ones included).
    fn events_seen(&self) -> u64;
    /// Waits until no new event has reached the sink for `quiet` (at most `timeout`): on Kafka,
    /// the tail has read what was in the event topics, so a gateway starts answering with a
    /// view that is caught up. The embedded ledger is caught up once open.
    fn wait_caught_up(&self, quiet: Duration, timeout: Duration) {
        let until = Instant::now() + timeout;
        let mut last = (u64::MAX, Instant::now());
        while Instant::now() < until {
            let n = self.events_seen();
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() >= quiet {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn campaign(&self) -> &Campaign;
    fn name(&self) -> &'static str;
    /// What the operators' page shows of the ledger's health.
    fn health(&self) -> LedgerHealth {
        LedgerHealth::default()
    }
}

/// The ledger's health as a gateway sees it.
#[derive(Debug, Clone, Default)]
pub struct LedgerHealth {
    /// Requests of this gateway waiting for their decision.
    pub requests_waiting: u64,
    /// When the newest event this gateway saw was decided.
    pub last_event_at_ms: Option<TimestampMs>,
    /// Commands in the command topics the processors have not decided yet, per partition,
    /// as last measured (`Err`: why it is unknown). `None`: the backend decides every command
    /// at once (embedded).
    pub undecided: Option<Result<LagReport, String>>,
}

/// The embedded ledger: one process owns every partition. Concurrent commands are decided in
/// groups that share the log's syncs (group commit): a caller queues its command, and whoever
/// holds the ledger next decides every queued command ([`Ledger::submit_group`]), hands the
/// events to the sink and answers each caller, all after the sync. A blocking caller
/// (`submit`) decides on its own thread; `submit_then` hands the command to the ledger's writer
/// thread (started at its first use) and returns at once.
pub struct Embedded<L: EventLog + Send + 'static> {
    shared: Arc<Shared<L>>,
    /// The writer thread of `submit_then`'s commands.
    writer: Mutex<Option<JoinHandle<()>>>,
    campaign: Campaign,
}

/// What the callers and the writer thread share.
struct Shared<L: EventLog> {
    ledger: Mutex<Ledger<L>>,
    /// Commands waiting for the next group, with where to send each answer.
    queued: Mutex<Vec<Queued>>,
    /// Rung when a command is queued for the writer thread (or it is to stop).
    queued_more: Condvar,
    stop: AtomicBool,
    sink: Arc<dyn EventSink>,
    events_seen: AtomicU64,
    last_event_at_ms: AtomicI64,
}

impl Embedded<FileLog> {
    /// Opens (or creates) the file log in `dir` and replays it into the view. `EveryAppend`
    /// keeps its promise (nothing is answered before it is on disk) with one fsync per
    /// partition and wave of a group instead of one per append (`FsyncPolicy::OnSync`).
    pub fn open_dir(
        dir: &std::path::Path,
        campaign: Campaign,
        fsync: FsyncPolicy,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, SubmitError> {
        let mut config = FileLogConfig::new(dir);
        config.fsync = match fsync {
            FsyncPolicy::EveryAppend => FsyncPolicy::OnSync,
            other => other,
        };
        let log = FileLog::open(config).map_err(LedgerError::from)?;
        Embedded::open(log, campaign, sink)
    }
}

impl<L: EventLog + Send + 'static> Embedded<L> {
    /// Opens the ledger on `log` (replaying it) and hands every event already there to `sink`.
    pub fn open(log: L, campaign: Campaign, sink: Arc<dyn EventSink>) -> Result<Self, SubmitError> {
        let ledger = Ledger::open(log, campaign, Topology::default())?;
        Embedded::from_ledger(ledger, sink)
    }

    /// Takes over an open ledger and hands every event of its log to `sink`.
    pub fn from_ledger(ledger: Ledger<L>, sink: Arc<dyn EventSink>) -> Result<Self, SubmitError> {
        let mut seen = 0u64;
        let mut last_event_at_ms = NOT_YET;
        crate::read_all(ledger.log(), &ledger.topology(), |_, envelope| {
            sink.record(std::slice::from_ref(&envelope));
            seen += 1;
            last_event_at_ms = last_event_at_ms.max(envelope.occurred_at_ms);
        })
        .map_err(LedgerError::from)?;
        Ok(Embedded {
            campaign: ledger.system().campaign.clone(),
            shared: Arc::new(Shared {
                ledger: Mutex::new(ledger),
                queued: Mutex::new(Vec::new()),
                queued_more: Condvar::new(),
                stop: AtomicBool::new(false),
                sink,
                events_seen: AtomicU64::new(seen),
                last_event_at_ms: AtomicI64::new(last_event_at_ms),
            }),
            writer: Mutex::new(None),
        })
    }

    /// Gives the ledger back (once the writer thread, if any, has stopped).
    pub fn into_ledger(self) -> Result<Ledger<L>, SubmitError> {
        let shared = self.shared.clone();
        drop(self);
        let shared = Arc::into_inner(shared).ok_or(SubmitError::Stopped)?;
        shared.ledger.into_inner().map_err(|_| SubmitError::Stopped)
    }

    /// The writer thread, started at the first command handed to it.
    fn writer(&self) -> Result<(), SubmitError> {
        let mut writer = self.writer.lock().map_err(|_| SubmitError::Stopped)?;
        if writer.is_none() {
            let shared = self.shared.clone();
            let started = std::thread::Builder::new()
                .name("yeyak-embedded-writer".into())
                .spawn(move || shared.write_queued())
                .map_err(|_| SubmitError::Stopped)?;
            *writer = Some(started);
        }
        Ok(())
    }
}

impl<L: EventLog + Send + 'static> Drop for Embedded<L> {
    fn drop(&mut self) {
        {
            // Under the queue's lock: the writer looks at `stop` under it before it waits, so
            // it cannot miss the signal.
            let _queued = self.shared.queued.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        self.shared.queued_more.notify_all();
        let writer = self.writer.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(writer) = writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the embedded ledger's writer thread panicked");
        }
    }
}

/// A command waiting for its group, and where its answer goes.
type Queued = (Command, Reply);

impl<L: EventLog + Send + 'static> Shared<L> {
    /// The writer thread: decides whatever is queued, group after group, until stopped.
    fn write_queued(&self) {
        loop {
            {
                let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
                while queued.is_empty() && !self.stop.load(Ordering::Relaxed) {
                    queued = self
                        .queued_more
                        .wait(queued)
                        .unwrap_or_else(|p| p.into_inner());
                }
                if queued.is_empty() {
                    return; // stopped, and nothing is left to answer
                }
            }
            let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            self.decide_queued(&mut ledger);
        }
    }

    /// Decides every queued command as one group, under the ledger's lock (so the sink sees
    /// events in the order they were appended), and answers each caller.
    fn decide_queued(&self, ledger: &mut Ledger<L>) {
        let queued = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        let (commands, callers): (Vec<Command>, Vec<Reply>) = queued.into_iter().unzip();
        let group = ledger.submit_group(commands);
        // A retry answered from the log appended nothing: the sink saw those events already,
        // and sees each event once, as on Kafka.
        if let Some(last) = group.appended.last() {
            self.sink.record(&group.appended);
            self.events_seen
                .fetch_add(group.appended.len() as u64, Ordering::Relaxed);
            self.last_event_at_ms
                .store(last.occurred_at_ms, Ordering::Relaxed);
        }
        for (reply, answer) in callers.into_iter().zip(group.answers) {
            reply(answer.map_err(SubmitError::from));
        }
    }
}

impl<L: EventLog + Send + 'static> Submit for Embedded<L> {
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        let (answer, answered) = channel();
        let reply: Reply = Box::new(move |outcome| {
            // Its caller waits on the ledger's lock or its channel: it cannot be gone.
            answer.send(outcome).ok();
        });
        let shared = &self.shared;
        shared
            .queued
            .lock()
            .map_err(|_| SubmitError::Stopped)?
            .push((command, reply));
        let mut ledger = shared.ledger.lock().map_err(|_| SubmitError::Stopped)?;
        // The group before took this command along, or it is still queued: decide it now.
        if let Ok(outcome) = answered.try_recv() {
            return outcome;
        }
        shared.decide_queued(&mut ledger);
        answered.try_recv().unwrap_or(Err(SubmitError::Stopped))
    }

    /// Queues the command for the writer thread and returns: a stampede's requests wait
    /// without a thread each, and share the writer's syncs.
    fn submit_then(&self, command: Command, _timeout: Duration, reply: Reply) {
        if let Err(error) = self.writer() {
            return reply(Err(error));
        }
        let mut queued = self.shared.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.push((command, reply));
        drop(queued);
        self.shared.queued_more.notify_one();
    }

    fn answers_without_blocking(&self) -> bool {
        true
    }

    fn health(&self) -> LedgerHealth {
        LedgerHealth {
            requests_waiting: 0,
            last_event_at_ms: seen_at(&self.shared.last_event_at_ms),
            undecided: None,
        }
    }

    fn events_seen(&self) -> u64 {
        self.shared.events_seen.load(Ordering::Relaxed)
    }

    fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}

/// No event seen yet.
const NOT_YET: i64 = i64::MIN;

fn seen_at(at: &AtomicI64) -> Option<TimestampMs> {
    Some(at.load(Ordering::Relaxed)).filter(|t| *t != NOT_YET)
}

/// A request waiting for its command's outcome.
struct Waiter {
    /// Tells it apart from other requests for the same command id.
    token: u64,
    submission: Submission,
    timeout: Duration,
    reply: Reply,
}

/// Requests waiting for their command's outcome (several when a caller asks again with the same
/// id while the first request still waits), and the ids registered since the event tail last
/// looked (their chain may be complete already: a retry of a decided command).
#[derive(Default)]
struct Waiting {
    by_command: HashMap<Uuid, Vec<Waiter>>,
    fresh: Vec<Uuid>,
    timed_out: TimedOut,
}

/// The commands of requests that ran past their deadline within [`RETRY_WINDOW`], oldest
/// first, at most [`WAITERS_MAX`]: their chains stay held, so that the caller's retry (the same
/// id: an `Idempotency-Key`) is answered with the first decision. Without them a chain decided
/// after its request gave up is forgotten once 50,000 newer events are read (under a stampede,
/// within seconds), and every retry of it times out too.
#[derive(Debug, Default)]
struct TimedOut {
    ids: VecDeque<(Instant, Uuid)>,
}

impl TimedOut {
    fn remember(&mut self, id: Uuid, now: Instant) {
        self.ids.push_back((now + RETRY_WINDOW, id));
        if self.ids.len() > WAITERS_MAX {
            self.ids.pop_front();
        }
    }

    /// The ids still within their window at `now` (the others are dropped).
    fn held(&mut self, now: Instant) -> impl Iterator<Item = Uuid> + '_ {
        while self.ids.front().is_some_and(|(until, _)| *until <= now) {
            self.ids.pop_front();
        }
        self.ids.iter().map(|(_, id)| *id)
    }
}

type Waiters = Mutex<Waiting>;

/// How often the waiting requests' deliveries and deadlines are looked at.
const DELIVERY_CHECK: Duration = Duration::from_millis(100);

/// The Kafka pipeline: commands go to the command topics (decided by the processors, in this
/// process or others); one tail thread follows the event topics, feeds the view, and hands
/// every waiting request its outcome once the whole causal chain is decided; one watch thread
/// sends again what the log did not take and answers the requests past their deadline. No
/// thread waits per request ([`Submit::submit_then`]).
pub struct Kafka {
    submitter: Arc<Submitter>,
    events_seen: Arc<AtomicU64>,
    last_event_at_ms: Arc<AtomicI64>,
    /// The processors' lag, measured on a thread of its own (`None`: it could not start).
    lag: Option<LedgerLag>,
    waiters: Arc<Waiters>,
    campaign: Campaign,
    timeout: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the tail met an event it cannot decode: nothing is answered any more.
    damaged: Arc<Mutex<Option<String>>>,
    started: Instant,
    /// Numbers the waiting requests.
    tokens: AtomicU64,
}

impl Kafka {
    pub fn connect(
        bootstrap: &str,
        topics: Topics,
        campaign: Campaign,
        timeout: Duration,
        sink: Arc<dyn EventSink>,
    ) -> Result<Kafka, SubmitError> {
        Kafka::connect_keeping(bootstrap, topics, campaign, timeout, sink, TAIL_KEEP_EVENTS)
    }

    /// [`Kafka::connect`], its tail keeping the last `keep_events` events it read (and the
    /// chains still needed) instead of [`TAIL_KEEP_EVENTS`].
    pub fn connect_keeping(
        bootstrap: &str,
        topics: Topics,
        campaign: Campaign,
        timeout: Duration,
        sink: Arc<dyn EventSink>,
        keep_events: usize,
    ) -> Result<Kafka, SubmitError> {
        let submitter = Arc::new(Submitter::connect(bootstrap, topics.clone())?);
        let mut tail = EventTail::open(bootstrap, &topics)?;
        let events_seen = Arc::new(AtomicU64::new(0));
        let last_event_at_ms = Arc::new(AtomicI64::new(NOT_YET));
        let waiters: Arc<Waiters> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let damaged = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let lag = LedgerLag::watch(bootstrap, &topics)
            .inspect_err(|error| tracing::warn!(%error, "the ledger's lag will not be shown"))
            .ok();
        let follow = Follow {
            keep_events,
            seen: events_seen.clone(),
            last_event_at_ms: last_event_at_ms.clone(),
            waiters: waiters.clone(),
            submitter: submitter.clone(),
            stop: stop.clone(),
            damaged: damaged.clone(),
        };
        std::thread::Builder::new()
            .name("yeyak-event-tail".into())
            .spawn(move || follow.run(&mut tail, sink.as_ref()))
            .map_err(|_| SubmitError::Stopped)?;
        let watch = Deliveries {
            waiters: waiters.clone(),
            submitter: submitter.clone(),
            stop: stop.clone(),
            started,
        };
        std::thread::Builder::new()
            .name("yeyak-deliveries".into())
            .spawn(move || watch.run())
            .map_err(|_| SubmitError::Stopped)?;
        Ok(Kafka {
            submitter,
            events_seen,
            last_event_at_ms,
            lag,
            waiters,
            campaign,
            timeout,
            stop,
            damaged,
            started,
            tokens: AtomicU64::new(0),
        })
    }

    fn damaged(&self) -> Option<SubmitError> {
        let damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        damaged.clone().map(SubmitError::Damaged)
    }

    /// Registers a request for `command` (before it is sent: its answer cannot come first).
    fn wait_for(&self, command: Command, timeout: Duration, reply: Reply) -> Result<u64, Reply> {
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let deadline = self.started.elapsed().as_millis() as u64 + timeout.as_millis() as u64;
        let id = command.command_id;
        let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.by_command.len() >= WAITERS_MAX {
            return Err(reply);
        }
        waiting.by_command.entry(id).or_default().push(Waiter {
            token,
            submission: Submission::sent(command, deadline),
            timeout,
            reply,
        });
        waiting.fresh.push(id);
        Ok(token)
    }
}

/// Takes the request `token` for `id` out of the waiting ones, if it still waits.
fn take_waiter(waiting: &mut Waiting, id: Uuid, token: u64) -> Option<Waiter> {
    let waiters = waiting.by_command.get_mut(&id)?;
    let at = waiters.iter().position(|w| w.token == token)?;
    let waiter = waiters.swap_remove(at);
    if waiters.is_empty() {
        waiting.by_command.remove(&id);
    }
    Some(waiter)
}

/// The tail thread: feeds the sink and answers the waiting requests.
struct Follow {
    keep_events: usize,
    seen: Arc<AtomicU64>,
    last_event_at_ms: Arc<AtomicI64>,
    waiters: Arc<Waiters>,
    submitter: Arc<Submitter>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    damaged: Arc<Mutex<Option<String>>>,
}

impl Follow {
    fn run(self, tail: &mut EventTail, sink: &dyn EventSink) {
        let mut applied = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            match tail.poll(Duration::from_millis(TAIL_POLL_MS)) {
                Ok(_) => {}
                Err(error @ ProcessorError::Damaged { .. }) => {
                    // Stepping over it would answer requests from a log with a hole in it.
                    tracing::error!(%error, "the event tail stops: nothing is answered until the log is repaired");
                    self.stop_answering(error.to_string());
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "the event tail failed; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
            let mut touched = HashSet::new();
            if applied < tail.events.len() {
                let new = &tail.events[applied..];
                sink.record(new);
                self.seen.fetch_add(new.len() as u64, Ordering::Relaxed);
                if let Some(last) = new.last() {
                    self.last_event_at_ms
                        .fetch_max(last.occurred_at_ms, Ordering::Relaxed);
                }
                touched.extend(new.iter().map(|e| tail.first_of_chain(e.command_id)));
                applied = tail.events.len();
            }
            let answered = self.answer(tail, touched, &mut applied);
            for (reply, outcome) in answered {
                reply(Ok(outcome));
            }
        }
    }

    /// Takes out every waiting request whose chain is now complete: those a new event belongs
    /// to, and those registered since the last look. Its replies are called without the lock.
    fn answer(
        &self,
        tail: &mut EventTail,
        mut touched: HashSet<Uuid>,
        applied: &mut usize,
    ) -> Vec<(Reply, Outcome)> {
        let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        touched.extend(waiting.fresh.drain(..));
        if *applied >= self.keep_events * 2 {
            let mut waited: HashSet<Uuid> = waiting.by_command.keys().copied().collect();
            waited.extend(waiting.timed_out.held(Instant::now()));
            if tail.forget_answered(self.keep_events, &waited) {
                *applied = tail.events.len(); // every event held was fed to the sink
            }
        }
        let mut answered = Vec::new();
        for id in touched {
            if !waiting.by_command.contains_key(&id) {
                continue;
            }
            let Some(outcome) = tail.chain(id) else {
                continue;
            };
            for waiter in waiting.by_command.remove(&id).into_iter().flatten() {
                answered.push((waiter.reply, outcome.clone()));
            }
            self.submitter.forget(id);
        }
        answered
    }

    /// The log is damaged: every waiting request is told, and none is taken any more.
    fn stop_answering(&self, why: String) {
        let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        *damaged = Some(why.clone());
        drop(damaged);
        let waiting = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for waiter in waiting.by_command.into_values().flatten() {
            (waiter.reply)(Err(SubmitError::Damaged(why.clone())));
        }
    }
}

/// The deliveries' watch: sends again the commands whose delivery failed ([`Submission`]), and
/// answers every request that failed or ran past its deadline: a caller is always told.
struct Deliveries {
    waiters: Arc<Waiters>,
    submitter: Arc<Submitter>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
}

impl Deliveries {
    fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(DELIVERY_CHECK);
            let (resend, failed) = self.look();
            let mut failed = failed;
            for (id, token, command) in resend {
                tracing::info!(command_id = %id, "sending a command again");
                if let Err(error) = self.submitter.send(&command) {
                    let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(waiter) = take_waiter(&mut waiting, id, token) {
                        failed.push((waiter.reply, error.into()));
                    }
                }
            }
            for (reply, error) in failed {
                reply(Err(error));
            }
        }
    }

    /// One look at every waiting request: which command to send again, and which requests
    /// failed (taken out, to be told without the lock).
    #[allow(clippy::type_complexity)]
    fn look(&self) -> (Vec<(Uuid, u64, Command)>, Vec<(Reply, SubmitError)>) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let mut failures = self.submitter.take_all_failures();
        let (mut resend, mut failed) = (Vec::new(), Vec::new());
        let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let mut over = Vec::new();
        let mut timed_out = Vec::new();
        waiting.by_command.retain(|id, waiters| {
            let sends_failed = failures.remove(id).unwrap_or(0);
            if sends_failed > 0 && self.submitter.landed(*id).is_some() {
                waiters.iter_mut().for_each(|w| w.submission.delivered());
            }
            // The failed sends are the first request's to answer (as when each request
            // watched its own: the first to look took them).
            let mut failures = sends_failed;
            let mut n = 0;
            while n < waiters.len() {
                let next = watch(&mut waiters[n].submission, failures, now_ms);
                failures = 0;
                match next {
                    Next::Wait => n += 1,
                    Next::Resend => {
                        let waiter = &waiters[n];
                        resend.push((*id, waiter.token, waiter.submission.command().clone()));
                        n += 1;
                    }
                    Next::Fail(failure) => {
                        let waiter = waiters.swap_remove(n);
                        let error = match failure {
                            Failure::NotDelivered { sends } => SubmitError::NotDelivered { sends },
                            Failure::NoAnswer => {
                                if asked_again(waiter.submission.command()) {
                                    timed_out.push(*id);
                                }
                                SubmitError::Timeout(waiter.timeout)
                            }
                        };
                        failed.push((waiter.reply, error));
                    }
                }
            }
            if waiters.is_empty() {
                over.push(*id);
            }
            !waiters.is_empty()
        });
        let now = Instant::now();
        for id in timed_out {
            waiting.timed_out.remember(id, now);
        }
        drop(waiting);
        for id in over {
            self.submitter.forget(id);
        }
        (resend, failed)
    }
}

/// Whether a caller may ask again with the same id: a person's own request on their partition
/// (verify, book, cancel, change: the gateway names them by the `Idempotency-Key`). The
/// admission controller's `Admit` is never asked again, and its chain may be long.
fn asked_again(command: &Command) -> bool {
    matches!(command.body.target(), Target::Subject(_)) && !command.body.is_follow_up()
}

/// What one waiting request does after `failures` failed sends at `now_ms`.
fn watch(submission: &mut Submission, failures: u32, now_ms: u64) -> Next {
    let mut next = submission.tick(now_ms);
    for _ in 0..failures {
        match submission.delivery_failed(now_ms) {
            Next::Wait => {}
            Next::Resend => next = Next::Resend,
            failed @ Next::Fail(_) => return failed,
        }
    }
    next
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Submit for Kafka {
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        self.submit_within(command, self.timeout)
    }

    fn submit_within(&self, command: Command, timeout: Duration) -> Result<Outcome, SubmitError> {
        let (answer, answered) = channel();
        self.submit_then(
            command,
            timeout,
            Box::new(move |outcome| {
                // A caller that gave up has dropped its receiver: nothing to tell.
                answer.send(outcome).ok();
            }),
        );
        answered.recv().unwrap_or(Err(SubmitError::Stopped))
    }

    /// Registers the request, sends the command, and returns: the tail answers it with the
    /// whole outcome; the deliveries' watch sends it again when the log did not take it
    /// ([`Submission`]) and answers it at its deadline.
    fn submit_then(&self, command: Command, timeout: Duration, reply: Reply) {
        if let Some(damaged) = self.damaged() {
            return reply(Err(damaged));
        }
        let id = command.command_id;
        let sent = command.clone();
        let token = match self.wait_for(command, timeout, reply) {
            Ok(token) => token,
            Err(reply) => return reply(Err(SubmitError::Overloaded)),
        };
        if let Err(error) = self.submitter.send(&sent) {
            let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let waiter = take_waiter(&mut waiting, id, token);
            drop(waiting);
            // Not there any more: its answer came from an earlier send of the same id.
            if let Some(waiter) = waiter {
                (waiter.reply)(Err(error.into()));
            }
        }
    }

    fn answers_without_blocking(&self) -> bool {
        true
    }

    fn events_seen(&self) -> u64 {
        self.events_seen.load(Ordering::Relaxed)
    }

    fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    fn name(&self) -> &'static str {
        "kafka"
    }

    fn health(&self) -> LedgerHealth {
        let requests_waiting = self
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_command
            .values()
            .map(|waiters| waiters.len() as u64)
            .sum();
        let undecided = match &self.lag {
            Some(lag) => lag.latest(),
            None => Err("not measured: its reader could not start".to_owned()),
        };
        LedgerHealth {
            requests_waiting,
            last_event_at_ms: seen_at(&self.last_event_at_ms),
            undecided: Some(undecided),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yeyak_domain::CommandBody;

    #[test]
    fn timed_out_requests_are_held_for_the_retry_window_then_dropped() {
        let (mut timed_out, start) = (TimedOut::default(), Instant::now());
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        timed_out.remember(first, start);
        timed_out.remember(second, start + Duration::from_secs(60));
        let held = |t: &mut TimedOut, at| t.held(at).collect::<Vec<_>>();
        assert_eq!(
            held(&mut timed_out, start + RETRY_WINDOW / 2),
            [first, second]
        );
        assert_eq!(held(&mut timed_out, start + RETRY_WINDOW), [second]);
        assert!(held(&mut timed_out, start + RETRY_WINDOW * 2).is_empty());
    }

    #[test]
    fn timed_out_requests_are_bounded() {
        let (mut timed_out, now) = (TimedOut::default(), Instant::now());
        for n in 0..WAITERS_MAX as u128 + 10 {
            timed_out.remember(Uuid::from_u128(n), now);
        }
        let held: Vec<Uuid> = timed_out.held(now).collect();
        assert_eq!(held.len(), WAITERS_MAX);
        assert_eq!(held[0], Uuid::from_u128(10), "the oldest go first");
    }

    #[test]
    fn a_persons_requests_are_asked_again_and_the_controllers_are_not() {
        let subject = yeyak_domain::SubjectId([7; 16]);
        let command = |body| Command {
            command_id: Uuid::from_u128(1),
            at_ms: 0,
            body,
        };
        let leave = CommandBody::LeaveQueue {
            subject,
            ticket: yeyak_domain::TicketNo(1),
        };
        let admit = CommandBody::Admit {
            tickets_max: 10,
            ttl_ms: 1_000,
        };
        let retire = CommandBody::RetireTicket {
            subject,
            ticket: yeyak_domain::TicketNo(1),
        };
        assert!(!asked_again(&command(leave)));
        assert!(!asked_again(&command(admit)));
        assert!(!asked_again(&command(retire)));
        let cancel = CommandBody::Cancel {
            subject,
            requested_for: subject,
            device: yeyak_domain::DeviceId::new("pc").unwrap(),
            reservation: yeyak_domain::ReservationId(Uuid::from_u128(3)),
        };
        assert!(asked_again(&command(cancel)));
    }
}
