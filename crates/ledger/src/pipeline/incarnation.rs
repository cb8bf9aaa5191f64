//! What a fenced processor does: start a new incarnation of itself, unless it keeps being
//! fenced.
//!
//! A processor is fenced when its transactional id got a newer producer epoch. Two causes look
//! the same from the client:
//! - the broker stalled longer than the transaction timeout, and the coordinator aborted the
//!   open transaction and bumped the epoch (Kafka 4's transactions): nobody else runs, and a
//!   processor that stops here stops the pipeline for good (the chaos suite's broker-stall);
//! - a second process with the same instance name runs (a deployment mistake, or a restart
//!   before the old process died): the two would fence each other for ever.
//!
//! So a fenced processor starts again as a new incarnation (what a process supervisor would
//! do, and what the simulator's crash and restart proves correct: a new consumer-group member,
//! a new producer epoch, state rebuilt from the event log), at most [`FENCED_MAX`] times in
//! [`FENCED_WINDOW_MS`]; fenced once more in that window, it stops with the error.

use std::collections::VecDeque;

/// Fencings within [`FENCED_WINDOW_MS`] a processor starts again after.
pub const FENCED_MAX: usize = 3;
/// The window over which fencings are counted.
pub const FENCED_WINDOW_MS: u64 = 10 * 60 * 1000;

/// The fencings of one processor (one transactional id), in milliseconds of any clock.
#[derive(Debug, Default, Clone)]
pub struct Incarnations {
    fenced_at: VecDeque<u64>,
    started: u64,
}

impl Incarnations {
    /// Whether a processor fenced at `now_ms` starts again (and counts it if so).
    pub fn start_again(&mut self, now_ms: u64) -> bool {
        while let Some(&at) = self.fenced_at.front() {
            if now_ms.saturating_sub(at) < FENCED_WINDOW_MS {
                break;
            }
            self.fenced_at.pop_front();
        }
        if self.fenced_at.len() >= FENCED_MAX {
            return false;
        }
        self.fenced_at.push_back(now_ms);
        self.started += 1;
        true
    }

    /// New incarnations started so far.
    pub fn started(&self) -> u64 {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_processor_fenced_now_and_then_always_starts_again() {
        let mut incarnations = Incarnations::default();
        for i in 0..10 {
            assert!(incarnations.start_again(i * FENCED_WINDOW_MS));
        }
        assert_eq!(incarnations.started(), 10);
    }

    #[test]
    fn a_processor_fenced_again_and_again_stops() {
        let mut incarnations = Incarnations::default();
        for i in 0..FENCED_MAX as u64 {
            assert!(incarnations.start_again(i * 1000));
        }
        assert!(!incarnations.start_again(FENCED_MAX as u64 * 1000));
        assert_eq!(incarnations.started(), FENCED_MAX as u64);
        // Once the first fencing is out of the window, one more start is allowed.
        assert!(incarnations.start_again(FENCED_WINDOW_MS + 1));
    }
}
