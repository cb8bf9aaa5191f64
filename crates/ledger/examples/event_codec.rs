//! What the wire format costs per event: JSON encoding and decoding of the seed's scenarios'
//! events (every kind a booking day writes), and the header strings the processor formats.
//! `cargo run --release -p yeyak-ledger --example event_codec [N]` (default 500,000 events).

use std::hint::black_box;
use std::time::Instant;

use yeyak_domain::script::{Runner, campaign, run_script, scenarios::SCENARIOS};
use yeyak_domain::system::Outcome;
use yeyak_domain::{Command, Envelope, System};

/// Runs scripts on the pure system and keeps every event.
struct Recorder(System, Vec<Envelope>);

impl Runner for Recorder {
    fn run(&mut self, command: Command) -> Outcome {
        let outcome = self.0.execute(command);
        self.1.extend(outcome.events.iter().cloned());
        outcome
    }
}

fn per_event_us(n: usize, mut each: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        each(i);
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let mut recorder = Recorder(System::new(campaign()), Vec::new());
    for (_, script) in SCENARIOS {
        recorder.0 = System::new(campaign());
        run_script(&mut recorder, script);
    }
    let events = recorder.1;
    let encoded: Vec<Vec<u8>> = (events.iter())
        .map(|e| serde_json::to_vec(e).expect("an event encodes"))
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    let encode = per_event_us(n, |i| {
        black_box(serde_json::to_vec(&events[i % events.len()]).expect("encodes"));
    });
    let decode = per_event_us(n, |i| {
        let event: Envelope = serde_json::from_slice(&encoded[i % encoded.len()]).expect("decodes");
        black_box(event);
    });
    let headers = per_event_us(n, |i| {
        let e = &events[i % events.len()];
        black_box((e.command_id.to_string(), e.schema_version.to_string()));
    });
    println!(
        "the {} scenarios' {} events, {} B each on average: JSON encode {encode:.2} us, \
         decode {decode:.2} us, header strings {headers:.2} us per event ({n} of each)",
        SCENARIOS.len(),
        events.len(),
        bytes / events.len()
    );
}
