//! Submit a command and wait for its outcome: the one interface the front tier, the operators'
//! jobs and the tools use to have commands decided, on the embedded ledger (the file log) or on
//! the Kafka pipeline (send the command, wait for its whole causal chain on the event tail).
//! Either way every event is handed to an [`EventSink`] (the gateway's view) in log order per
//! partition, before the submitter gets its answer: what a caller was told is already readable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command, Envelope};
use yeyak_log::{EventLog, FileLog, FileLogConfig, FsyncPolicy};

use crate::pipeline::Topics;
use crate::pipeline::client::{EventTail, Submitter};
use crate::pipeline::processor::ProcessorError;
use crate::{Ledger, LedgerError, Topology};

/// How long the event tail waits for new events in one poll.
pub const TAIL_POLL_MS: u64 = 5;
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
}

/// The embedded ledger: one process owns every partition; commands are decided one at a time.
pub struct Embedded<L: EventLog> {
    ledger: Mutex<Ledger<L>>,
    sink: Arc<dyn EventSink>,
    events_seen: AtomicU64,
    campaign: Campaign,
}

impl Embedded<FileLog> {
    /// Opens (or creates) the file log in `dir` and replays it into the view.
    pub fn open_dir(
        dir: &std::path::Path,
        campaign: Campaign,
        fsync: FsyncPolicy,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, SubmitError> {
        let mut config = FileLogConfig::new(dir);
        config.fsync = fsync;
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
        crate::read_all(ledger.log(), &ledger.topology(), |_, envelope| {
            sink.record(std::slice::from_ref(&envelope));
            seen += 1;
        })
        .map_err(LedgerError::from)?;
        Ok(Embedded {
            campaign: ledger.system().campaign.clone(),
            ledger: Mutex::new(ledger),
            sink,
            events_seen: AtomicU64::new(seen),
        })
    }

    /// Gives the ledger back.
    pub fn into_ledger(self) -> Result<Ledger<L>, SubmitError> {
        self.ledger.into_inner().map_err(|_| SubmitError::Stopped)
    }
}

impl<L: EventLog + Send + 'static> Submit for Embedded<L> {
    fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        let mut ledger = self.ledger.lock().map_err(|_| SubmitError::Stopped)?;
        let before = ledger.events_total();
        let outcome = ledger.submit(command)?;
        // A retry answered from the log appended nothing: the sink saw those events already,
        // and sees each event once, as on Kafka. Still under the ledger's lock, so the sink
        // sees events in the order they were appended.
        if ledger.events_total() > before {
            self.sink.record(&outcome.events);
            self.events_seen
                .fetch_add(outcome.events.len() as u64, Ordering::Relaxed);
        }
        Ok(outcome)
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

type Waiters = Mutex<HashMap<Uuid, Sender<Outcome>>>;

/// The Kafka pipeline: commands go to the command topics (decided by the processors, in this
/// process or others); one tail thread follows the event topics, feeds the view, and hands
/// every waiting request its outcome once the whole causal chain is decided.
pub struct Kafka {
    submitter: Submitter,
    events_seen: Arc<AtomicU64>,
    waiters: Arc<Waiters>,
    campaign: Campaign,
    timeout: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
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
        let waiters: Arc<Waiters> = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (thread_seen, thread_waiters, thread_stop) =
            (events_seen.clone(), waiters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("yeyak-event-tail".into())
            .spawn(move || {
                let mut applied = 0usize;
                while !thread_stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Err(error) = tail.poll(Duration::from_millis(TAIL_POLL_MS)) {
                        tracing::warn!(%error, "the event tail failed; retrying");
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    if applied < tail.events.len() {
                        sink.record(&tail.events[applied..]);
                        thread_seen
                            .fetch_add((tail.events.len() - applied) as u64, Ordering::Relaxed);
                        applied = tail.events.len();
                    }
                    let Ok(mut waiting) = thread_waiters.lock() else {
                        return;
                    };
                    waiting.retain(|id, reply| match tail.chain(*id) {
                        Some(outcome) => {
                            let _ = reply.send(outcome);
                            false
                        }
                        None => true,
                    });
                }
            })
            .map_err(|_| SubmitError::Stopped)?;
        Ok(Kafka {
            submitter,
            events_seen,
            waiters,
            campaign,
            timeout,
            stop,
        })
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

    fn submit_within(&self, command: Command, timeout: Duration) -> Result<Outcome, SubmitError> {
        let id = command.command_id;
        let (reply, answer): (Sender<Outcome>, Receiver<Outcome>) = channel();
        {
            let mut waiting = self.waiters.lock().map_err(|_| SubmitError::Stopped)?;
            if waiting.len() >= WAITERS_MAX {
                return Err(SubmitError::Overloaded);
            }
            waiting.insert(id, reply);
        }
        if let Err(error) = self.submitter.send(&command) {
            self.waiters
                .lock()
                .map_err(|_| SubmitError::Stopped)?
                .remove(&id);
            return Err(error.into());
        }
        match answer.recv_timeout(timeout) {
            Ok(outcome) => Ok(outcome),
            Err(_) => {
                if let Ok(mut waiting) = self.waiters.lock() {
                    waiting.remove(&id);
                }
                Err(SubmitError::Timeout(timeout))
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
}
