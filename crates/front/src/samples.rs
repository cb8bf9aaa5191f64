//! The operator page's graph: the queue's length and the admissions, one sample per minute of
//! the server's clock over the last hour, in a bounded ring the gateway keeps (not recorded:
//! the log holds the facts; a restarted gateway starts a new graph). Pure: the time and the
//! figures are arguments, the admission controller feeds it at every tick.

use std::collections::VecDeque;

use yeyak_domain::TimestampMs;

/// The length of one sample.
pub const SAMPLE_MS: i64 = 60_000;
/// Samples kept: an hour's.
pub const SAMPLES_MAX: usize = 60;

/// One minute of the waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The minute's start, by the server's clock.
    pub minute_ms: TimestampMs,
    /// The queue's length at the minute's latest look.
    pub queue_depth: u64,
    /// The longest queue seen in the minute.
    pub queue_depth_max: u64,
    /// Admissions granted in the minute (seen in this gateway's view).
    pub admitted: u64,
}

/// The ring of the last [`SAMPLES_MAX`] minutes.
#[derive(Debug, Default)]
pub struct Samples {
    ring: VecDeque<Sample>,
    /// Admissions in all at the previous look: a look counts the increase.
    admitted_total: Option<u64>,
}

impl Samples {
    /// One look at the waiting room at `now_ms`: `queue_depth` waiting, `admitted_total`
    /// admitted since the log began.
    pub fn observe(&mut self, now_ms: TimestampMs, queue_depth: u64, admitted_total: u64) {
        let minute_ms = now_ms - now_ms.rem_euclid(SAMPLE_MS);
        let before = self.admitted_total.replace(admitted_total);
        let admitted = admitted_total.saturating_sub(before.unwrap_or(admitted_total));
        if self
            .ring
            .back()
            .is_some_and(|last| last.minute_ms > minute_ms)
        {
            // The clock went back (a rehearsal's `POST /admin/clock`): a new graph.
            self.ring.clear();
        }
        match self.ring.back_mut() {
            Some(last) if last.minute_ms == minute_ms => {
                last.queue_depth = queue_depth;
                last.queue_depth_max = last.queue_depth_max.max(queue_depth);
                last.admitted += admitted;
            }
            _ => {
                self.ring.push_back(Sample {
                    minute_ms,
                    queue_depth,
                    queue_depth_max: queue_depth,
                    admitted,
                });
                if self.ring.len() > SAMPLES_MAX {
                    self.ring.pop_front();
                }
            }
        }
    }

    /// The samples of the hour before `now_ms` (the current minute included), oldest first.
    pub fn last_hour(&self, now_ms: TimestampMs) -> impl Iterator<Item = &Sample> {
        let from = now_ms - SAMPLE_MS * SAMPLES_MAX as i64;
        self.ring.iter().filter(move |s| s.minute_ms > from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: TimestampMs = 1_628_506_800_000; // 2021-08-09T20:00+09:00, a minute's start

    fn figures(s: &Samples, now: TimestampMs) -> Vec<(i64, u64, u64, u64)> {
        s.last_hour(now)
            .map(|x| {
                let minute = (x.minute_ms - T0) / SAMPLE_MS;
                (minute, x.queue_depth, x.queue_depth_max, x.admitted)
            })
            .collect()
    }

    #[test]
    fn a_minute_counts_its_admissions_and_keeps_its_longest_queue() {
        let mut s = Samples::default();
        s.observe(T0 + 1_000, 10, 500); // the log's earlier admissions are not this minute's
        s.observe(T0 + 20_000, 30, 505);
        s.observe(T0 + 59_000, 5, 530);
        s.observe(T0 + 61_000, 4, 531);
        assert_eq!(figures(&s, T0 + 61_000), [(0, 5, 30, 30), (1, 4, 4, 1)]);
    }

    #[test]
    fn the_ring_holds_an_hour_and_starts_over_when_the_clock_goes_back() {
        let mut s = Samples::default();
        for minute in 0..90 {
            s.observe(T0 + minute * SAMPLE_MS, minute as u64, minute as u64);
        }
        let kept = figures(&s, T0 + 89 * SAMPLE_MS);
        assert_eq!(kept.len(), SAMPLES_MAX);
        assert_eq!(kept.first().unwrap().0, 30);
        // Two hours later, nothing is of the last hour but the new minute.
        s.observe(T0 + 209 * SAMPLE_MS, 7, 89);
        assert_eq!(figures(&s, T0 + 209 * SAMPLE_MS), [(209, 7, 7, 0)]);
        s.observe(T0, 1, 95);
        assert_eq!(figures(&s, T0), [(0, 1, 1, 6)]);
    }
}
