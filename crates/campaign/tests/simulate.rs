//! A small campaign, end to end: deterministic by seed (the summary is a snapshot), every
//! invariant held, its log audited by the auditors' replay, and a report whose every plot has
//! data.

use yeyak_campaign::cli::write_outputs;
use yeyak_campaign::ledger::{InMemory, open_file_ledger};
use yeyak_campaign::observe::Observer;
use yeyak_campaign::report::RunFacts;
use yeyak_campaign::world::Quiet;
use yeyak_campaign::{Simulation, simulate};
use yeyak_domain::Campaign;
use yeyak_read::audit::cli::{LogArgs, ReplayArgs, replay};

const PEOPLE: u32 = 3_000;

fn in_memory(seed: u64) -> Simulation {
    let campaign = Campaign::default_2021();
    let mut ledger = InMemory::new(campaign.clone());
    simulate(campaign, seed, PEOPLE, &mut ledger, &mut Quiet).unwrap()
}

fn json(simulation: &Simulation) -> String {
    serde_json::to_string_pretty(&simulation.summary).unwrap()
}

#[test]
fn a_seed_gives_the_same_campaign_and_every_invariant_holds() {
    let first = in_memory(7);
    assert_eq!(
        json(&first),
        json(&in_memory(7)),
        "the same seed, another summary"
    );
    assert_ne!(
        json(&first),
        json(&in_memory(8)),
        "another seed, the same summary"
    );
    let s = &first.summary;
    assert!(s.ledger.violations.is_empty(), "{:?}", s.ledger.violations);
    assert!(s.reservations.active > 0 && s.waits.admitted > 0);
    assert_eq!(s.fairness.fcfs_inversions, 0);
    insta::assert_json_snapshot!("summary_3000_people_seed_7", s);
}

#[test]
fn with_a_data_directory_the_log_passes_the_auditors_replay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let campaign = Campaign::default_2021();
    let mut ledger = open_file_ledger(&data, campaign.clone()).unwrap();
    let on_file = simulate(campaign, 7, PEOPLE, &mut ledger, &mut Quiet).unwrap();
    drop(ledger);
    assert_eq!(
        json(&on_file),
        json(&in_memory(7)),
        "the file ledger decided otherwise"
    );
    let args = ReplayArgs {
        log: LogArgs {
            data: Some(data),
            ..LogArgs::default()
        },
        quiet: true,
        ..ReplayArgs::default()
    };
    let mut out = Vec::new();
    let report = replay(&args, &mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(report.ok(), "{text}");
    assert_eq!(report.events, on_file.summary.ledger.events, "{text}");
    let draws = report.rules.iter().find(|r| r.code == "draw_out_of_order");
    assert!(
        draws.is_some_and(|r| r.checked > 0),
        "the opening draws were re-run: {text}"
    );
}

/// The marks (lines, points, bars) of each plot of a page, by plot.
fn marks(html: &str) -> Vec<(&'static str, usize)> {
    PLOTS
        .iter()
        .map(|plot| {
            let start = html
                .find(&format!("<figure id=\"plot-{plot}\">"))
                .unwrap_or_else(|| panic!("no plot {plot}"));
            let figure = &html[start..start + html[start..].find("</figure>").unwrap()];
            let count = ["<polyline", "<circle", "<rect", "<path", "<line"]
                .iter()
                .map(|m| figure.matches(m).count())
                .sum();
            (*plot, count)
        })
        .collect()
}

const PLOTS: [&str; 6] = ["queue", "waits", "eta", "verifications", "lights", "fill"];

#[test]
fn the_report_is_one_page_whose_every_plot_has_data() {
    let simulation = in_memory(7);
    let dir = tempfile::tempdir().unwrap();
    let facts = RunFacts {
        wall_s: 1.0,
        peak_rss_bytes: None,
    };
    write_outputs(dir.path(), &simulation, &facts).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for outside in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(outside), "not self-contained: {outside}");
    }
    // The same page drawn from no event at all has the axes, the legends and the reference
    // lines: each plot of the run must draw more than that.
    let nothing = Simulation {
        summary: simulation.summary.clone(),
        observer: Observer::new(&Campaign::default_2021(), 1.0, 1),
    };
    let empty = yeyak_campaign::report::html(&nothing, &facts).unwrap();
    for ((plot, drawn), (_, frame)) in marks(&html).into_iter().zip(marks(&empty)) {
        assert!(
            drawn > frame,
            "plot {plot} has no data: {drawn} marks, {frame} without data"
        );
    }
    let summary = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(summary.contains("\"published_2021\""));
}

#[test]
fn a_clinics_file_is_the_supply_of_the_run() {
    let campaign = Campaign::default_2021();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../campaigns/clinics-example.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let clinics = yeyak_campaign::supply::Supply::from_csv(&campaign, &text).unwrap();
    let doses = clinics.doses_total();
    let mut ledger = InMemory::new(campaign.clone());
    let run = yeyak_campaign::simulate_with_clinics(
        campaign,
        7,
        PEOPLE,
        Some(clinics),
        &mut ledger,
        &mut Quiet,
    )
    .unwrap();
    let s = &run.summary;
    assert!(s.ledger.violations.is_empty(), "{:?}", s.ledger.violations);
    assert_eq!((s.supply.clinics, s.supply.vaccination_dates), (34, 3));
    assert_eq!(s.supply.doses, doses);
    assert_eq!(doses, 17 * 4 * 20);
    assert!(
        s.reservations.active > 0 && s.reservations.active <= doses,
        "{} reservations for {doses} doses",
        s.reservations.active
    );
    assert!(
        in_memory(7).summary.reservations.active > doses,
        "the generated supply reserves more: the file was used"
    );
}
