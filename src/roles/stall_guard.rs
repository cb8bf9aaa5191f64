//! What a processor does when one of its steps never returns. librdkafka's transactional calls
//! can block for good: `send_offsets_to_transaction` waits for its reply with no deadline of its
//! own ("enforced by the background op"), and after a broker of the cluster was killed a chaos
//! run saw a processor wait there for ten minutes, its watchdog blind (it runs between steps)
//! and SIGTERM unheard. A thread of its own watches the steps: a stop asked for and not reached
//! within [`STOP_GRACE_MS`], or a step running longer than [`STEP_DEADLINE_MS`], ends the process
//! with an error. Nothing is lost by it: the open transaction is never committed (the broker
//! aborts it, or the next incarnation's epoch fences it) and its commands are decided again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How long a stop may wait for the step in flight.
pub const STOP_GRACE_MS: u64 = 20_000;
/// The longest a step may take: far over every client timeout of a step (requests 30 s, the
/// transaction's 60 s), so only a call that does not return reaches it.
pub const STEP_DEADLINE_MS: u64 = 300_000;

/// Why the guard ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// A stop was asked for and the step in flight has not returned.
    Stop { waited_ms: u64 },
    /// One step has run for longer than the deadline.
    Step { running_ms: u64 },
}

/// The guard's verdict at `now_ms`, pure: the step in flight began at `step_began_ms`, a stop
/// was asked for at `stop_asked_ms`.
pub fn verdict(now_ms: u64, step_began_ms: u64, stop_asked_ms: Option<u64>) -> Option<Stalled> {
    if let Some(asked) = stop_asked_ms {
        let waited_ms = now_ms.saturating_sub(asked);
        if waited_ms >= STOP_GRACE_MS {
            return Some(Stalled::Stop { waited_ms });
        }
    }
    let running_ms = now_ms.saturating_sub(step_began_ms);
    (running_ms >= STEP_DEADLINE_MS).then_some(Stalled::Step { running_ms })
}

/// The steps' heartbeat, shared with the guard's thread.
#[derive(Clone)]
pub struct Steps(Arc<AtomicU64>);

impl Steps {
    /// A step begins (or the loop is between steps).
    pub fn begin(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }
}

/// Starts the guard of `name`'s steps; `stop` is the process's stop flag.
pub fn watch(name: String, stop: Arc<AtomicBool>, now_ms: fn() -> u64) -> std::io::Result<Steps> {
    let steps = Steps(Arc::new(AtomicU64::new(now_ms())));
    let beat = steps.0.clone();
    std::thread::Builder::new()
        .name("stall-guard".into())
        .spawn(move || {
            let mut stop_asked_ms = None;
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = now_ms();
                if stop.load(Ordering::Relaxed) {
                    stop_asked_ms.get_or_insert(now);
                }
                if let Some(stalled) = verdict(now, beat.load(Ordering::Relaxed), stop_asked_ms) {
                    end(&name, stalled);
                }
            }
        })?;
    Ok(steps)
}

fn end(name: &str, stalled: Stalled) -> ! {
    match stalled {
        Stalled::Stop { waited_ms } => eprintln!(
            "{name}: ERROR: asked to stop {} s ago, its step still blocked inside a Kafka call: \
             exiting without leaving its group (its open transaction is aborted by the broker)",
            waited_ms / 1000
        ),
        Stalled::Step { running_ms } => eprintln!(
            "{name}: ERROR: one step has been blocked for {} s inside a Kafka call that does not \
             return: exiting so that it is started again (nothing it decided is committed)",
            running_ms / 1000
        ),
    }
    std::process::exit(STALLED_EXIT_CODE)
}

/// The exit code of a process the guard ended.
pub const STALLED_EXIT_CODE: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_waits_its_grace_then_ends_the_process() {
        assert_eq!(verdict(1_000, 0, None), None);
        assert_eq!(
            verdict(30_000, 29_000, Some(20_000)),
            None,
            "10 s after the stop"
        );
        let waited_ms = STOP_GRACE_MS;
        assert_eq!(
            verdict(40_000, 39_000, Some(20_000)),
            Some(Stalled::Stop { waited_ms })
        );
    }

    #[test]
    fn a_step_past_the_deadline_ends_the_process() {
        let began = 1_000;
        assert_eq!(verdict(began + STEP_DEADLINE_MS - 1, began, None), None);
        let running_ms = STEP_DEADLINE_MS;
        assert_eq!(
            verdict(began + STEP_DEADLINE_MS, began, None),
            Some(Stalled::Step { running_ms })
        );
    }
}
