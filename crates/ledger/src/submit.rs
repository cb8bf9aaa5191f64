//! Submit a command and wait for its outcome: the one interface the front tier, the operators'
//! jobs and the tools use to have commands decided, on the embedded ledger (the file log) or on
//! the Kafka pipeline (send the command, wait for its whole causal chain on the event tail).
//! Either way every event is handed to an [`EventSink`] (the gateway's view) in log order per
//! partition, before the submitter gets its answer: what a caller was told is already readable.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

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

/// Decides commands. Blocking: the HTTP tier calls it from `spawn_blocking`.
pub trait Submit: Send + Sync + 'static {
    /// Decides `command` and every follow-up it causes; returns the whole outcome.
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError>;
    /// Like `submit`, waiting at most `timeout` for the decision. A decision with no event at
    /// all (an `Admit` that found nobody waiting) is never seen on the event tail: the
    /// admission controller uses a short timeout so that such a decision cannot stall it.
    fn submit_within(&self, command: Command, _timeout: Duration) -> Result<Outcome, SubmitError> {
        self.submit(command)
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
/// events to the sink and answers each caller, all after the sync.
pub struct Embedded<L: EventLog> {
    ledger: Mutex<Ledger<L>>,
    /// Commands waiting for the next group, with where to send each answer.
    queued: Mutex<Vec<Queued>>,
    sink: Arc<dyn EventSink>,
    events_seen: AtomicU64,
    last_event_at_ms: AtomicI64,
    campaign: Campaign,
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
            ledger: Mutex::new(ledger),
            queued: Mutex::new(Vec::new()),
            sink,
            events_seen: AtomicU64::new(seen),
            last_event_at_ms: AtomicI64::new(last_event_at_ms),
        })
    }

    /// Gives the ledger back.
    pub fn into_ledger(self) -> Result<Ledger<L>, SubmitError> {
        self.ledger.into_inner().map_err(|_| SubmitError::Stopped)
    }
}

/// A command waiting for its group, and where its answer goes.
type Queued = (Command, Sender<Result<Outcome, SubmitError>>);

impl<L: EventLog + Send + 'static> Embedded<L> {
    /// Decides every queued command as one group, under the ledger's lock (so the sink sees
    /// events in the order they were appended), and answers each caller.
    fn decide_queued(&self, ledger: &mut Ledger<L>) {
        let queued = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        let (commands, callers): (Vec<Command>, Vec<_>) = queued.into_iter().unzip();
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
        for (caller, answer) in callers.into_iter().zip(group.answers) {
            if caller.send(answer.map_err(SubmitError::from)).is_err() {
                // Its caller waits on the ledger's lock, held here: it cannot be gone.
                tracing::warn!("a caller of the embedded ledger left before its answer");
            }
        }
    }
}

impl<L: EventLog + Send + 'static> Submit for Embedded<L> {
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        let (answer, answered) = channel();
        self.queued
            .lock()
            .map_err(|_| SubmitError::Stopped)?
            .push((command, answer));
        let mut ledger = self.ledger.lock().map_err(|_| SubmitError::Stopped)?;
        // The group before took this command along, or it is still queued: decide it now.
        if let Ok(outcome) = answered.try_recv() {
            return outcome;
        }
        self.decide_queued(&mut ledger);
        answered.try_recv().unwrap_or(Err(SubmitError::Stopped))
    }

    fn health(&self) -> LedgerHealth {
        LedgerHealth {
            requests_waiting: 0,
            last_event_at_ms: seen_at(&self.last_event_at_ms),
            undecided: None,
        }
    }

    fn events_seen(&self) -> u64 {
        self.events_seen.load(Ordering::Relaxed)
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

/// Requests waiting for their command's outcome (several when a caller asks again with the same
/// id while the first request still waits).
type Waiters = Mutex<HashMap<Uuid, Vec<(u64, Sender<Outcome>)>>>;

/// How often a waiting request looks at its deliveries.
const DELIVERY_CHECK: Duration = Duration::from_millis(100);

/// The Kafka pipeline: commands go to the command topics (decided by the processors, in this
/// process or others); one tail thread follows the event topics, feeds the view, and hands
/// every waiting request its outcome once the whole causal chain is decided.
pub struct Kafka {
    submitter: Submitter,
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
        let submitter = Submitter::connect(bootstrap, topics.clone())?;
        let mut tail = EventTail::open(bootstrap, &topics)?;
        let events_seen = Arc::new(AtomicU64::new(0));
        let last_event_at_ms = Arc::new(AtomicI64::new(NOT_YET));
        let waiters: Arc<Waiters> = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let damaged = Arc::new(Mutex::new(None));
        let lag = LedgerLag::watch(bootstrap, &topics)
            .inspect_err(|error| tracing::warn!(%error, "the ledger's lag will not be shown"))
            .ok();
        let follow = Follow {
            seen: events_seen.clone(),
            last_event_at_ms: last_event_at_ms.clone(),
            waiters: waiters.clone(),
            stop: stop.clone(),
            damaged: damaged.clone(),
        };
        std::thread::Builder::new()
            .name("yeyak-event-tail".into())
            .spawn(move || follow.run(&mut tail, sink.as_ref()))
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
            started: Instant::now(),
            tokens: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn damaged(&self) -> Option<SubmitError> {
        let damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        damaged.clone().map(SubmitError::Damaged)
    }

    /// Stops waiting for `id` in the request `token` (others may wait for it too).
    fn forget(&self, id: Uuid, token: u64) {
        let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(replies) = waiting.get_mut(&id) {
            replies.retain(|(t, _)| *t != token);
            if replies.is_empty() {
                waiting.remove(&id);
            }
        }
    }
}

/// The tail thread: feeds the sink and answers the waiting requests.
struct Follow {
    seen: Arc<AtomicU64>,
    last_event_at_ms: Arc<AtomicI64>,
    waiters: Arc<Waiters>,
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
                    let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
                    *damaged = Some(error.to_string());
                    drop(damaged);
                    self.waiters
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "the event tail failed; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
            if applied < tail.events.len() {
                sink.record(&tail.events[applied..]);
                self.seen
                    .fetch_add((tail.events.len() - applied) as u64, Ordering::Relaxed);
                if let Some(last) = tail.events.last() {
                    self.last_event_at_ms
                        .fetch_max(last.occurred_at_ms, Ordering::Relaxed);
                }
                applied = tail.events.len();
            }
            let mut waiting = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if applied >= TAIL_KEEP_EVENTS * 2 {
                let waited: HashSet<Uuid> = waiting.keys().copied().collect();
                if tail.forget_answered(TAIL_KEEP_EVENTS, &waited) {
                    applied = tail.events.len(); // every event held was fed to the sink
                }
            }
            waiting.retain(|id, replies| match tail.chain(*id) {
                Some(outcome) => {
                    for (_, reply) in replies.drain(..) {
                        // A caller that gave up has dropped its receiver: nothing to tell.
                        reply.send(outcome.clone()).ok();
                    }
                    false
                }
                None => true,
            });
        }
    }
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

    /// Sends the command, then waits for its whole outcome; a failed delivery is sent again with
    /// the same id ([`Submission`]), and a caller is always told what happened.
    fn submit_within(&self, command: Command, timeout: Duration) -> Result<Outcome, SubmitError> {
        if let Some(damaged) = self.damaged() {
            return Err(damaged);
        }
        let id = command.command_id;
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let (reply, answer): (Sender<Outcome>, Receiver<Outcome>) = channel();
        {
            let mut waiting = self.waiters.lock().map_err(|_| SubmitError::Stopped)?;
            if waiting.len() >= WAITERS_MAX {
                return Err(SubmitError::Overloaded);
            }
            waiting.entry(id).or_default().push((token, reply));
        }
        let deadline = self.now_ms() + timeout.as_millis() as u64;
        let mut submission = Submission::sent(command, deadline);
        if let Err(error) = self.submitter.send(submission.command()) {
            self.forget(id, token);
            return Err(error.into());
        }
        loop {
            match answer.recv_timeout(DELIVERY_CHECK) {
                Ok(outcome) => {
                    self.submitter.forget(id);
                    return Ok(outcome);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.damaged().unwrap_or(SubmitError::Stopped));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.submitter.landed(id).is_some() {
                submission.delivered();
            }
            let mut next = submission.tick(self.now_ms());
            for _ in 0..self.submitter.take_failures(id) {
                match submission.delivery_failed(self.now_ms()) {
                    Next::Resend => {
                        tracing::info!(command_id = %id, sends = submission.sends(), "sending a command again");
                        self.submitter.send(submission.command())?;
                    }
                    Next::Wait => {}
                    failed @ Next::Fail(_) => {
                        next = failed;
                        break;
                    }
                }
            }
            if let Next::Fail(failure) = next {
                self.forget(id, token);
                self.submitter.forget(id);
                return Err(match failure {
                    Failure::NotDelivered { sends } => SubmitError::NotDelivered { sends },
                    Failure::NoAnswer => SubmitError::Timeout(timeout),
                });
            }
        }
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
            .values()
            .map(|replies| replies.len() as u64)
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
