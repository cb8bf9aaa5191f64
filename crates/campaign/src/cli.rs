//! `yeyak simulate`: the arguments, the progress bar, and the files of a run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use yeyak_domain::{Campaign, TimestampMs};

use crate::ledger::{InMemory, open_file_ledger};
use crate::report::{self, RunFacts};
use crate::supply::Supply;
use crate::world::Progress;
use crate::{SimulateError, Simulation, simulate_with_clinics};

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// People of the 18-49 group (2% more outside it try anyway); every capacity scales with it.
    #[arg(long, default_value_t = 16_210_000)]
    pub people: u32,
    /// The campaign calendar (TOML); the 2021 18-49 campaign by default.
    #[arg(long)]
    pub campaign: Option<PathBuf>,
    /// The clinics (CSV: `id,region,name,date,doses`, one line per clinic and vaccination
    /// date; every region needs a clinic); generated for the population by default.
    #[arg(long)]
    pub clinics: Option<PathBuf>,
    /// Seed of the population, the supply and every choice.
    #[arg(long, default_value_t = 2021)]
    pub seed: u64,
    /// Where to write summary.json and report.html.
    #[arg(long, default_value = "simulation")]
    pub out: PathBuf,
    /// Keep the log in this (empty) directory, decided by the embedded ledger, so that
    /// `yeyak replay --data DIR` audits it (for runs of up to a few hundred thousand people).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs one simulation and writes its files; `Ok(false)` when an invariant was broken.
pub fn run_cli(args: &SimulateArgs, err: &mut dyn Write) -> Result<bool, SimulateError> {
    let campaign = yeyak_log::load_campaign(args.campaign.as_deref())?;
    let clinics = match &args.clinics {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|cause| SimulateError::ClinicsFile {
                    path: path.clone(),
                    cause,
                })?;
            Some(Supply::from_csv(&campaign, &text)?)
        }
        None => None,
    };
    let mut bar = Bar::new(&campaign, args.quiet);
    let started = Instant::now();
    let (seed, people) = (args.seed, args.people);
    let simulation = match &args.data {
        Some(dir) => {
            let mut ledger = open_file_ledger(dir, campaign.clone())?;
            simulate_with_clinics(campaign, seed, people, clinics, &mut ledger, &mut bar)?
        }
        None => {
            let mut ledger = InMemory::new(campaign.clone());
            simulate_with_clinics(campaign, seed, people, clinics, &mut ledger, &mut bar)?
        }
    };
    bar.bar.finish_and_clear();
    let facts = RunFacts {
        wall_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
    };
    write_outputs(&args.out, &simulation, &facts)?;
    let s = &simulation.summary;
    let line = format!(
        "yeyak simulate: {} people, {} events in {:.1} s ({:.0} events/s), peak RSS {} MiB; \
         waits p50 {} s, p95 {} s, max {} s; {} reservations; {} violations; report in {}",
        s.people.population,
        s.ledger.events,
        facts.wall_s,
        s.ledger.events as f64 / facts.wall_s.max(1e-9),
        facts.peak_rss_bytes.unwrap_or(0) / (1 << 20),
        s.waits.p50_s,
        s.waits.p95_s,
        s.waits.max_s,
        s.reservations.active,
        s.ledger.violations.len(),
        args.out.join("report.html").display()
    );
    writeln!(err, "{line}").map_err(|cause| SimulateError::Write {
        path: PathBuf::from("stderr"),
        cause,
    })?;
    Ok(s.ledger.violations.is_empty())
}

/// `summary.json` and `report.html` in `out` (created if missing).
pub fn write_outputs(
    out: &Path,
    simulation: &Simulation,
    facts: &RunFacts,
) -> Result<(), SimulateError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|cause| SimulateError::Write { path, cause })
    };
    std::fs::create_dir_all(out).map_err(|cause| SimulateError::Write {
        path: out.to_path_buf(),
        cause,
    })?;
    let mut json = serde_json::to_string_pretty(&simulation.summary)?;
    json.push('\n');
    write("summary.json", json.as_bytes())?;
    let html = report::html(simulation, facts)?;
    write("report.html", html.as_bytes())
}

/// The peak resident memory of this process (Linux: `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The progress bar on stderr: simulated time, people done, events a second (hidden when
/// stderr is not a terminal, or with `--quiet`).
struct Bar {
    bar: ProgressBar,
    start_ms: TimestampMs,
    started: Instant,
}

impl Bar {
    fn new(campaign: &Campaign, quiet: bool) -> Bar {
        let start_ms = campaign.booking_days[0].window.opens_at_ms - 3_600_000;
        let span = (campaign.change_window.closes_at_ms - start_ms).max(1) as u64;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(span)
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar {
            bar,
            start_ms,
            started: Instant::now(),
        }
    }
}

impl Progress for Bar {
    fn update(&mut self, now_ms: TimestampMs, people_done: u64, events: u64) {
        self.bar
            .set_position((now_ms - self.start_ms).max(0) as u64);
        let kst = chrono::DateTime::from_timestamp_millis(now_ms + 9 * 3_600_000)
            .map(|t| t.format("%m-%d %H:%M KST").to_string())
            .unwrap_or_default();
        let rate = events as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{kst} · {people_done} people done · {rate:.0} events/s"
        ));
    }
}
