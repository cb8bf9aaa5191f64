//! What the gateway's `FrontView` costs per person: the events of a whole campaign (the campaign
//! simulator's, decided by the real domain: verifications, tickets, admissions, bookings,
//! cancellations, changes, people outside the age group) applied to a `FrontView` as the
//! gateway's event tail applies them, with every heap byte the view allocates counted.
//!
//! CI runs it for 20,000 people and holds the bound; the soak is the same test on a million or
//! more (`docs/BENCHMARKS.md`):
//!
//! ```sh
//! YEYAK_VIEW_PEOPLE=1000000 cargo test --release --test view_memory -- --nocapture
//! ```

use yeyak_campaign::ledger::{Decide, InMemory};
use yeyak_campaign::world::Quiet;
use yeyak_campaign::{SimulateError, simulate};
use yeyak_domain::system::Outcome;
use yeyak_domain::{Campaign, Command, System};
use yeyak_front::FrontConfig;
use yeyak_front::view::FrontView;
use yeyak_tools::heap::{CountingAllocator, live_bytes};

#[global_allocator]
static HEAP: CountingAllocator = CountingAllocator;

/// The view's cost per person the gateway must stay under, all of the campaign's events
/// applied (measured: see `docs/BENCHMARKS.md`).
const VIEW_BYTES_PER_PERSON_MAX: f64 = 320.0;

/// The in-memory domain, whose every outcome's events also go to a `FrontView`.
struct Fed {
    domain: InMemory,
    view: FrontView,
    /// Heap bytes allocated (net) while the view applied events.
    view_bytes: i64,
    /// The most it held at any point of the campaign (the stampedes' live tickets included).
    view_bytes_max: i64,
    events: u64,
}

impl Decide for Fed {
    fn submit(&mut self, command: Command) -> Result<Outcome, SimulateError> {
        let outcome = self.domain.submit(command)?;
        let before = live_bytes().expect("the counting allocator") as i64;
        for envelope in &outcome.events {
            self.view.apply(envelope);
        }
        self.view_bytes += live_bytes().expect("the counting allocator") as i64 - before;
        self.view_bytes_max = self.view_bytes_max.max(self.view_bytes);
        self.events += outcome.events.len() as u64;
        Ok(outcome)
    }

    fn system(&self) -> &System {
        self.domain.system()
    }

    fn reserve(&mut self, people: usize) {
        self.domain.reserve(people);
    }
}

/// Bytes per person each part of the view holds, measured by freeing it.
fn breakdown(view: &mut FrontView, people: u64) -> serde_json::Value {
    fn freed<T: Default>(part: &mut T) -> i64 {
        let before = live_bytes().expect("the counting allocator") as i64;
        drop(std::mem::take(part));
        before - live_bytes().expect("the counting allocator") as i64
    }
    let parts = [
        ("model.reservations", freed(&mut view.model.reservations)),
        ("model.queue_tickets", freed(&mut view.model.queue_tickets)),
        ("model (the rest)", freed(&mut view.model)),
        ("tickets", freed(&mut view.tickets)),
        ("waiting", freed(&mut view.waiting)),
        ("ticket_of", freed(&mut view.ticket_of)),
        ("pre_queue", freed(&mut view.pre_queue)),
        ("births", freed(&mut view.births)),
        ("admissions", freed(&mut view.admissions)),
        ("admitted_at", freed(&mut view.admitted_at)),
        ("retention", freed(&mut view.retention)),
        ("draws", freed(&mut view.draws)),
    ];
    parts
        .into_iter()
        .map(|(name, bytes)| {
            (
                name.to_owned(),
                (bytes as f64 / people as f64).round().into(),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn the_gateways_view_costs_a_bounded_amount_per_person() {
    let eligible: u32 = std::env::var("YEYAK_VIEW_PEOPLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    // As a gateway arms it (`Front::new`): what no live token can ask for is forgotten.
    let mut view = FrontView::default();
    let gateway = FrontConfig::default();
    view.retain_for(gateway.session_ttl_ms + gateway.admission_ttl_ms);
    let mut fed = Fed {
        domain: InMemory::new(Campaign::default_2021()),
        view,
        view_bytes: 0,
        view_bytes_max: 0,
        events: 0,
    };
    let started = std::time::Instant::now();
    let run = simulate(Campaign::default_2021(), 7, eligible, &mut fed, &mut Quiet)
        .expect("the campaign runs");
    let people = run.summary.people.population;
    let per_person = fed.view_bytes as f64 / people as f64;
    let figures = serde_json::json!({
        "people": people,
        "eligible": eligible,
        "events": fed.events,
        "reservations": fed.view.model.reservations.len(),
        "view_bytes": fed.view_bytes,
        "view_bytes_per_person": per_person.round(),
        "view_bytes_max": fed.view_bytes_max,
        "view_bytes_max_per_person": (fed.view_bytes_max as f64 / people as f64).round(),
        "peak_rss_bytes": yeyak_campaign::cli::peak_rss_bytes(),
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    eprintln!("{figures}");
    eprintln!("where it goes: {}", breakdown(&mut fed.view, people));
    assert!(
        fed.events > people,
        "a campaign's worth of events: {figures}"
    );
    let at_most = fed.view_bytes_max as f64 / people as f64;
    assert!(
        at_most <= VIEW_BYTES_PER_PERSON_MAX,
        "the gateway's view held up to {at_most:.0} bytes per person (bound {VIEW_BYTES_PER_PERSON_MAX}): {figures}"
    );
}
