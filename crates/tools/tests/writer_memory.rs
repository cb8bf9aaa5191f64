//! The writer's memory per person without Kafka (issue 16): the benchmark's booking day decided
//! through the domain's `System` (`yeyak_tools::bench::memory`), measured under the counting
//! allocator as `yeyak-bench` measures it. The only test of this binary: the allocator counts
//! every thread's allocations.
//!
//! `YEYAK_WRITER_PEOPLE` sets the crowd (20,000 by default); the figures are printed:
//! `cargo test -p yeyak-tools --release --test writer_memory -- --nocapture`.

use yeyak_tools::bench::memory::{decide_booking_day, measure, state_parts};
use yeyak_tools::heap::CountingAllocator;

#[global_allocator]
static HEAP: CountingAllocator = CountingAllocator;

const PEOPLE_DEFAULT: u32 = 20_000;
/// Issue 16's target for the writer's state (every partition's), per person.
const STATE_BYTES_PER_PERSON_MAX: f64 = 256.0;

#[test]
fn the_writer_state_of_a_booking_day_per_person() {
    let people = std::env::var("YEYAK_WRITER_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PEOPLE_DEFAULT);
    let campaign = yeyak_domain::Campaign::default_2021();
    let day = decide_booking_day(people, &campaign).expect("the booking day is decided");
    assert_eq!(
        day.reserved, day.people,
        "everyone books in the benchmark's day"
    );
    let memory = measure(&day, &campaign).expect("the counting allocator is installed");
    println!(
        "writer memory, {} people, {} events: state {:.1} B per person, ids {:.1} B per person",
        memory.people,
        day.events.len(),
        memory.state_per_person(),
        memory.ids_per_person()
    );
    for (part, bytes) in state_parts(&day, &campaign).expect("counted") {
        println!(
            "  {part}: {:.1} B per person",
            bytes as f64 / memory.people as f64
        );
    }
    assert!(
        memory.state_per_person() <= STATE_BYTES_PER_PERSON_MAX,
        "{memory:?}"
    );
}
