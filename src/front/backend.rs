//! Where the front tier's commands are decided: the embedded ledger on the file log (default),
//! or the Kafka pipeline (send the command, wait for its whole causal chain on the event tail).
//! Either way the backend also feeds the gateway's [`FrontView`] with every event, in log
//! order per partition, before it answers: what a request was told is already readable.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::view::FrontView;
use crate::domain::system::Outcome;
use crate::domain::{Campaign, Command};
use crate::ledger::{Ledger, LedgerError, Topology};
use crate::log::{EventLog, FileLog, FileLogConfig, FsyncPolicy};
use crate::pipeline::Topics;
use crate::pipeline::client::{EventTail, Submitter};
use crate::pipeline::processor::ProcessorError;

/// How long the event tail waits for new events in one poll.
pub const TAIL_POLL_MS: u64 = 5;
/// Requests waiting for a decision at once on the Kafka backend, at most.
pub const WAITERS_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
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

/// Decides commands and keeps the view. Blocking: the HTTP tier calls it from
/// `spawn_blocking`.
pub trait Backend: Send + Sync + 'static {
    /// Decides `command` and every follow-up it causes; returns the whole outcome.
    fn submit(&self, command: Command) -> Result<Outcome, BackendError>;
    /// Like `submit`, waiting at most `timeout` for the decision. A decision with no event at
    /// all (an `Admit` that found nobody waiting) is never seen on the event tail: the
    /// admission controller uses a short timeout so that such a decision cannot stall it.
    fn submit_within(&self, command: Command, timeout: Duration) -> Result<Outcome, BackendError> {
        let _ = timeout;
        self.submit(command)
    }
    fn view(&self) -> &RwLock<FrontView>;
    fn campaign(&self) -> &Campaign;
    fn name(&self) -> &'static str;
}

/// The embedded ledger: one process owns every partition; commands are decided one at a time.
pub struct Embedded<L: EventLog> {
    ledger: Mutex<Ledger<L>>,
    view: RwLock<FrontView>,
    campaign: Campaign,
}

impl Embedded<FileLog> {
    /// Opens (or creates) the file log in `dir` and replays it into the view.
    pub fn open_dir(dir: &std::path::Path, campaign: Campaign, fsync: FsyncPolicy) -> Result<Self, BackendError> {
        let mut config = FileLogConfig::new(dir);
        config.fsync = fsync;
        let log = FileLog::open(config).map_err(LedgerError::from)?;
        Embedded::open(log, campaign)
    }
}

impl<L: EventLog + Send + 'static> Embedded<L> {
    pub fn open(log: L, campaign: Campaign) -> Result<Self, BackendError> {
        let topology = Topology::default();
        let ledger = Ledger::open(log, campaign.clone(), topology)?;
        let mut view = FrontView::default();
        crate::ledger::read_all(ledger.log(), &topology, |_, envelope| view.apply(&envelope))?;
        Ok(Embedded { ledger: Mutex::new(ledger), view: RwLock::new(view), campaign })
    }
}

impl<L: EventLog + Send + 'static> Backend for Embedded<L> {
    fn submit(&self, command: Command) -> Result<Outcome, BackendError> {
        let mut ledger = self.ledger.lock().map_err(|_| BackendError::Stopped)?;
        let outcome = ledger.submit(command)?;
        // Still under the ledger's lock: the view sees events in the order they were appended.
        if let Ok(mut view) = self.view.write() {
            outcome.events.iter().for_each(|e| view.apply(e));
        }
        Ok(outcome)
    }

    fn view(&self) -> &RwLock<FrontView> {
        &self.view
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
    view: Arc<RwLock<FrontView>>,
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
    ) -> Result<Kafka, BackendError> {
        let submitter = Submitter::connect(bootstrap, topics.clone())?;
        let mut tail = EventTail::open(bootstrap, &topics)?;
        let view = Arc::new(RwLock::new(FrontView::default()));
        let waiters: Arc<Waiters> = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (thread_view, thread_waiters, thread_stop) = (view.clone(), waiters.clone(), stop.clone());
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
                        if let Ok(mut view) = thread_view.write() {
                            tail.events[applied..].iter().for_each(|e| view.apply(e));
                        }
                        applied = tail.events.len();
                    }
                    let Ok(mut waiting) = thread_waiters.lock() else { return };
                    waiting.retain(|id, reply| match tail.chain(*id) {
                        Some(outcome) => {
                            let _ = reply.send(outcome);
                            false
                        }
                        None => true,
                    });
                }
            })
            .map_err(|_| BackendError::Stopped)?;
        Ok(Kafka { submitter, view, waiters, campaign, timeout, stop })
    }

    /// Waits until the tail has read everything that was in the event topics when called
    /// (at most `timeout`): a gateway starts answering with a view that is caught up.
    pub fn wait_caught_up(&self, quiet: Duration, timeout: Duration) {
        let until = Instant::now() + timeout;
        let mut last = (u64::MAX, Instant::now());
        while Instant::now() < until {
            let n = self.view.read().map(|v| v.events_total).unwrap_or(0);
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() >= quiet {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Backend for Kafka {
    fn submit(&self, command: Command) -> Result<Outcome, BackendError> {
        self.submit_within(command, self.timeout)
    }

    fn submit_within(&self, command: Command, timeout: Duration) -> Result<Outcome, BackendError> {
        let id = command.command_id;
        let (reply, answer): (Sender<Outcome>, Receiver<Outcome>) = channel();
        {
            let mut waiting = self.waiters.lock().map_err(|_| BackendError::Stopped)?;
            if waiting.len() >= WAITERS_MAX {
                return Err(BackendError::Overloaded);
            }
            waiting.insert(id, reply);
        }
        if let Err(error) = self.submitter.send(&command) {
            self.waiters.lock().map_err(|_| BackendError::Stopped)?.remove(&id);
            return Err(error.into());
        }
        match answer.recv_timeout(timeout) {
            Ok(outcome) => Ok(outcome),
            Err(_) => {
                if let Ok(mut waiting) = self.waiters.lock() {
                    waiting.remove(&id);
                }
                Err(BackendError::Timeout(timeout))
            }
        }
    }

    fn view(&self) -> &RwLock<FrontView> {
        &self.view
    }

    fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}
