//! Where the simulator's commands are decided: the domain's `System` in memory (the default,
//! for the full campaign), or the embedded `Ledger` over a `FileLog` (`--data DIR`), which keeps
//! the log so that `yeyak replay --data DIR` audits it. Both run the same `decide`/`apply`.

use std::path::Path;

use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command, System};
use yeyak_ledger::embedded::Ledger;
use yeyak_log::codec::Topology;
use yeyak_log::{FileLog, FileLogConfig, FsyncPolicy};

use crate::SimulateError;

/// Decides a command from outside and its follow-ups; shows the state it decides on (what the
/// site's pages would show: remaining doses, one's reservation).
pub trait Decide {
    fn submit(&mut self, command: Command) -> Result<Outcome, SimulateError>;
    fn system(&self) -> &System;
    /// Makes room for `people` people at once, where the state allows it, so that the largest
    /// tables are not grown (and briefly held twice) in the middle of the run.
    fn reserve(&mut self, people: usize);
}

/// The pure domain in memory: nothing is kept but the state.
pub struct InMemory(pub System);

impl InMemory {
    pub fn new(campaign: Campaign) -> InMemory {
        InMemory(System::new(campaign))
    }
}

impl Decide for InMemory {
    fn submit(&mut self, command: Command) -> Result<Outcome, SimulateError> {
        Ok(self.0.execute(command))
    }

    fn system(&self) -> &System {
        &self.0
    }

    fn reserve(&mut self, people: usize) {
        self.0.subjects.reserve(people);
        self.0.waiting_room.reserve(people);
    }
}

/// The embedded ledger on a new log in `dir` (which must hold none yet). Appends are left to
/// the OS to flush (a simulation, not a service). It keeps every decision in memory (its
/// `Answers`), so it is for runs of up to a few hundred thousand people.
pub fn open_file_ledger(dir: &Path, campaign: Campaign) -> Result<Ledger<FileLog>, SimulateError> {
    let mut config = FileLogConfig::new(dir);
    config.fsync = FsyncPolicy::Never;
    let log = FileLog::open(config).map_err(|e| SimulateError::Ledger(e.into()))?;
    let ledger = Ledger::open(log, campaign, Topology::default())?;
    if ledger.events_total() > 0 {
        return Err(SimulateError::DataNotEmpty(dir.to_path_buf()));
    }
    Ok(ledger)
}

impl Decide for Ledger<FileLog> {
    fn submit(&mut self, command: Command) -> Result<Outcome, SimulateError> {
        Ok(Ledger::submit(self, command)?)
    }

    fn system(&self) -> &System {
        Ledger::system(self)
    }

    /// The embedded ledger's state is its own: it grows as it goes.
    fn reserve(&mut self, _people: usize) {}
}
