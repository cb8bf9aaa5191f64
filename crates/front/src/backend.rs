//! The gateway's way to the ledger: a [`Submit`] (the embedded ledger or the Kafka pipeline)
//! and the [`FrontView`] that it feeds with every event before it answers; and the signal that
//! the view changed, which the waiting room's event streams wait on instead of polling it.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command, Envelope};
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::submit::{Embedded, EventSink, Kafka, LedgerHealth, Submit, SubmitError};
use yeyak_log::{EventLog, FsyncPolicy};

use super::view::FrontView;

/// The gateway's view, fed by the ledger in log order per partition, and the count of events
/// it has folded, published after each batch (`changed`).
pub struct SharedView {
    view: RwLock<FrontView>,
    changed: watch::Sender<u64>,
}

impl Default for SharedView {
    fn default() -> SharedView {
        SharedView {
            view: RwLock::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl EventSink for SharedView {
    fn record(&self, events: &[Envelope]) {
        let total = {
            let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
            events.iter().for_each(|e| view.apply(e));
            view.events_total
        };
        // Kept even with nobody watching: a stream that starts later reads the latest.
        self.changed.send_replace(total);
    }
}

/// Where the gateway's commands are decided, and what it reads.
#[derive(Clone)]
pub struct Backend {
    ledger: Arc<dyn Submit>,
    view: Arc<SharedView>,
}

impl Backend {
    /// The embedded ledger on a file log in `dir` (created, or reopened and replayed).
    pub fn embedded_dir(
        dir: &Path,
        campaign: Campaign,
        fsync: FsyncPolicy,
    ) -> Result<Backend, SubmitError> {
        let view = Arc::new(SharedView::default());
        let ledger = Embedded::open_dir(dir, campaign, fsync, view.clone())?;
        Ok(Backend {
            ledger: Arc::new(ledger),
            view,
        })
    }

    /// The embedded ledger on any log.
    pub fn embedded<L: EventLog + Send + 'static>(
        log: L,
        campaign: Campaign,
    ) -> Result<Backend, SubmitError> {
        let view = Arc::new(SharedView::default());
        let ledger = Embedded::open(log, campaign, view.clone())?;
        Ok(Backend {
            ledger: Arc::new(ledger),
            view,
        })
    }

    /// The Kafka pipeline: commands to the command topics, outcomes from the event tail.
    pub fn kafka(
        bootstrap: &str,
        topics: Topics,
        campaign: Campaign,
        timeout: Duration,
    ) -> Result<Backend, SubmitError> {
        let view = Arc::new(SharedView::default());
        let ledger = Kafka::connect(bootstrap, topics, campaign, timeout, view.clone())?;
        Ok(Backend {
            ledger: Arc::new(ledger),
            view,
        })
    }

    pub fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        self.ledger.submit(command)
    }

    pub fn submit_within(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<Outcome, SubmitError> {
        self.ledger.submit_within(command, timeout)
    }

    /// Decides `command` without holding a thread while it waits when the ledger can
    /// ([`Submit::answers_without_blocking`]: the Kafka pipeline and the embedded ledger's writer
    /// thread), else on the blocking pool (a `Submit` with only the trait's blocking default).
    pub async fn decide(
        self,
        command: Command,
        timeout: Duration,
    ) -> Result<Result<Outcome, SubmitError>, tokio::task::JoinError> {
        if !self.ledger.answers_without_blocking() {
            return tokio::task::spawn_blocking(move || self.submit_within(command, timeout)).await;
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.ledger.submit_then(
            command,
            timeout,
            Box::new(move |outcome| {
                // A request given up (its client left) dropped the receiver: nothing to tell.
                answer.send(outcome).ok();
            }),
        );
        Ok(answered.await.unwrap_or(Err(SubmitError::Stopped)))
    }

    pub fn view(&self) -> &RwLock<FrontView> {
        &self.view.view
    }

    /// Wakes whenever the view has folded new events (its value: events folded so far).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.view.changed.subscribe()
    }

    pub fn campaign(&self) -> &Campaign {
        self.ledger.campaign()
    }

    pub fn name(&self) -> &'static str {
        self.ledger.name()
    }

    pub fn health(&self) -> LedgerHealth {
        self.ledger.health()
    }

    pub fn wait_caught_up(&self, quiet: Duration, timeout: Duration) {
        self.ledger.wait_caught_up(quiet, timeout)
    }
}
