//! The writer's memory per person, without a broker: the benchmark's booking day decided through
//! the domain's `System` directly, with the commands the benchmark's front sends ([`super::front`]:
//! every clinic's supply, then for each person verify and enqueue, admissions in order, and the
//! booking of the person's pick with the admission granted), then measured as `yeyak-bench`
//! measures a run's events ([`super::writer_memory`]: the heap of a fresh `System` folding them,
//! and of the `Decided` memory fed them). `tests/writer_memory.rs` runs it under the counting
//! allocator.

use yeyak_domain::system::command_id_from;
use yeyak_domain::{Campaign, Command, CommandBody, Envelope, Event, System};

use super::front::{ADMISSION_TTL_MS, Crowd};
use super::{BenchError, CLINICS, SEED};
use crate::workload::{Arrival, Workload, WorkloadConfig};

/// People who arrive between two admissions: the stampede reaches the ledger in waves of the
/// front's work queue, and the admission loop admits whoever waits in between.
pub const ARRIVALS_PER_ADMIT: usize = 1_000;

/// One booking day decided in memory: every event, in the order it was decided.
pub struct DecidedDay {
    pub people: usize,
    pub reserved: usize,
    pub events: Vec<Envelope>,
}

/// The writer's heap for a day's events, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterMemory {
    pub people: usize,
    /// Every partition's state: the people, the clinics, the waiting room, the totals.
    pub state_bytes: usize,
    /// The memory of answered command ids (`Decided`, the default window).
    pub ids_bytes: usize,
}

impl WriterMemory {
    pub fn state_per_person(&self) -> f64 {
        self.state_bytes as f64 / self.people.max(1) as f64
    }

    pub fn ids_per_person(&self) -> f64 {
        self.ids_bytes as f64 / self.people.max(1) as f64
    }
}

/// Decides the benchmark's booking day of `people` (a stampede at the first day's opening)
/// through a `System`. A refused supply is an error, as in the benchmark.
pub fn decide_booking_day(people: u32, campaign: &Campaign) -> Result<DecidedDay, BenchError> {
    let config = WorkloadConfig::booking_day(SEED, people, CLINICS, Arrival::Stampede);
    let workload = Workload::generate(&config, campaign)?;
    let crowd = Crowd::new(workload, campaign.booking_days[0].window.opens_at_ms)?;
    let at_ms = crowd.at_ms;
    let mut day = Day {
        system: System::new(campaign.clone()),
        events: Vec::new(),
    };
    for (c, clinic) in crowd.workload.clinics.iter().enumerate() {
        for (d, body) in clinic.supply_commands().enumerate() {
            let n = c * clinic.supply.len() + d;
            let command = crowd.command("supply", n, at_ms - 1, body);
            if let Some(r) = day.run(command).rejection {
                return Err(BenchError::Refused(r.code.as_str().to_owned()));
            }
        }
    }
    let mut reserved = 0;
    let everyone: Vec<usize> = (0..crowd.people()).collect();
    for (admits, wave) in everyone.chunks(ARRIVALS_PER_ADMIT).enumerate() {
        for &n in wave {
            day.arrive(&crowd, n);
        }
        let admit = Command {
            command_id: command_id_from(&format!("bench/admit/{admits}")),
            at_ms: at_ms + 1,
            body: CommandBody::Admit {
                tickets_max: wave.len() as u32,
                ttl_ms: ADMISSION_TTL_MS,
            },
        };
        let granted: Vec<_> = day
            .run(admit)
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::AdmissionGranted(g) => Some((crowd.person_of[&g.subject], g.admission)),
                _ => None,
            })
            .collect();
        for (n, admission) in granted {
            let outcome = day.run(crowd.book(n, admission));
            if outcome
                .events
                .iter()
                .any(|e| matches!(e.event, Event::ReservationRecorded(_)))
            {
                reserved += 1;
            }
        }
    }
    Ok(DecidedDay {
        people: crowd.people(),
        reserved,
        events: day.events,
    })
}

/// What `yeyak-bench` reports for these events; `None` without the counting allocator.
pub fn measure(day: &DecidedDay, campaign: &Campaign) -> Option<WriterMemory> {
    let (state_bytes, ids_bytes) = super::writer_memory(&day.events, campaign)?;
    Some(WriterMemory {
        people: day.people,
        state_bytes,
        ids_bytes,
    })
}

/// The state's heap by part (a copy of each part, measured as it is allocated: a hash table's
/// copy has the same buckets): `(part, bytes)`; `None` without the counting allocator.
pub fn state_parts(day: &DecidedDay, campaign: &Campaign) -> Option<Vec<(&'static str, usize)>> {
    let mut system = System::new(campaign.clone());
    for envelope in &day.events {
        system.apply(envelope);
    }
    let size_of = |copy: &dyn Fn() -> Box<dyn std::any::Any>| {
        let before = crate::heap::live_bytes()?;
        let made = copy();
        let after = crate::heap::live_bytes()?;
        drop(made);
        Some(after.saturating_sub(before))
    };
    Some(vec![
        (
            "people (table and states)",
            size_of(&|| Box::new(system.subjects.clone()))?,
        ),
        ("clinics", size_of(&|| Box::new(system.clinics.clone()))?),
        (
            "waiting room",
            size_of(&|| Box::new(system.waiting_room.clone()))?,
        ),
    ])
}

struct Day {
    system: System,
    events: Vec<Envelope>,
}

impl Day {
    fn run(&mut self, command: Command) -> yeyak_domain::system::Outcome {
        let outcome = self.system.execute(command);
        self.events.extend(outcome.events.iter().cloned());
        outcome
    }

    /// Verify, then take a ticket (unless the verification was refused), as the front does.
    fn arrive(&mut self, crowd: &Crowd, n: usize) {
        if self.run(crowd.verify(n)).rejection.is_some() {
            return;
        }
        self.run(crowd.enqueue(n));
    }
}
