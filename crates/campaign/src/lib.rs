//! `yeyak simulate`: the whole 2021 campaign (16.21 million people by default) through the real
//! domain, in simulated time, deterministic by seed, with a report.
//!
//! A discrete-event simulation ([`world`]): a priority queue of timed actions, one random
//! stream, no wall clock and no threads in the core. The population ([`people`]), the clinics
//! and their doses ([`supply`]), the identity providers and their lights ([`providers`]) and
//! the people's behaviour ([`behaviour`]) are generated from the seed; every decision is a
//! command decided by the domain's `System` in memory, or by the embedded `Ledger` on a file log
//! that `yeyak replay` audits ([`ledger`]). The figures are folded from the events
//! ([`observe`]) into `summary.json` ([`summary`]) and one self-contained HTML page with SVG
//! plots ([`report`]).
//!
//! Not here: the identity edge (no resident number exists in a simulation), the HTTP tier and
//! Kafka; the front tier's admission controller and lights are modelled from its rules.

pub mod behaviour;
pub mod cli;
pub mod ledger;
pub mod observe;
pub mod people;
pub mod providers;
pub mod report;
mod rng;
pub mod summary;
pub mod supply;
pub mod world;

use std::path::PathBuf;

use yeyak_domain::Campaign;
use yeyak_ledger::embedded::LedgerError;

use crate::ledger::Decide;
use crate::observe::Observer;
use crate::people::REGIONS;
use crate::summary::{Counts, Summary};
use crate::supply::Supply;
use crate::world::{Progress, World};

/// The most people one run simulates.
pub const PEOPLE_MAX: u32 = 40_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("people must be 1 to {PEOPLE_MAX}, got {0}")]
    People(u32),
    #[error("the ledger failed")]
    Ledger(#[from] LedgerError),
    #[error("{0} already holds a log; give --data an empty directory")]
    DataNotEmpty(PathBuf),
    #[error("the campaign file is refused")]
    CampaignFile(#[from] yeyak_log::CampaignFileError),
    #[error("cannot read the clinics file {path}")]
    ClinicsFile {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error(transparent)]
    Clinics(#[from] supply::ClinicsFileError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot encode the summary")]
    Json(#[from] serde_json::Error),
    #[error("cannot draw the plot {plot}: {reason}")]
    Plot { plot: &'static str, reason: String },
}

/// A finished run: its summary and the fold of its events (for the report).
pub struct Simulation {
    pub summary: Summary,
    pub observer: Observer,
}

fn kst_date(at_ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(at_ms + observe::KST_OFFSET_MS)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Runs the campaign for `people` people of the age group (plus those outside it who try)
/// on `ledger`.
pub fn simulate<D: Decide>(
    campaign: Campaign,
    seed: u64,
    people: u32,
    ledger: &mut D,
    progress: &mut dyn Progress,
) -> Result<Simulation, SimulateError> {
    simulate_with_clinics(campaign, seed, people, None, ledger, progress)
}

/// [`simulate`] with the clinics of a file (`Supply::from_csv`) instead of generated ones.
pub fn simulate_with_clinics<D: Decide>(
    campaign: Campaign,
    seed: u64,
    people: u32,
    clinics: Option<Supply>,
    ledger: &mut D,
    progress: &mut dyn Progress,
) -> Result<Simulation, SimulateError> {
    if !(1..=PEOPLE_MAX).contains(&people) {
        return Err(SimulateError::People(people));
    }
    let mut world = World::new(campaign, seed, people, clinics, ledger);
    let cohorts: Vec<u64> = world
        .population
        .cohorts(&world.campaign)
        .iter()
        .map(|c| c.len() as u64)
        .collect();
    world.run(progress)?;
    let violations = world
        .ledger_system()
        .violations()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let counts = Counts {
        seed,
        scale: f64::from(people) / behaviour::PEOPLE_2021,
        population: world.population.len() as u64,
        eligible: u64::from(world.population.eligible),
        cohorts,
        clinics: world.supply.sites.len() as u64,
        regions: REGIONS.len() as u64,
        dates: world.supply.dates.len() as u64,
        doses_per_date: u64::from(world.supply.doses_per_date),
        doses: world.supply.doses_total(),
        commands: world.commands(),
        first_night_cohort: world.first_night_cohort,
        booking_period_last_day: kst_date(world.campaign.change_window.opens_at_ms)
            + chrono::Duration::days(1),
        violations,
    };
    let summary = Summary::new(&world.observer, counts);
    Ok(Simulation {
        summary,
        observer: world.observer,
    })
}
