//! What a processor does when it owns commands and decides none for too long: start a new
//! incarnation of itself.
//!
//! Seen on real Kafka after a whole-cluster freeze (the chaos suite's broker-stall): a processor
//! whose client never recovered its connection to the group coordinator owned every command
//! partition, fetched nothing (it waited for committed offsets that never came) and decided
//! nothing for minutes, silently; another cycled "making the producer again" every 90 s. Nothing
//! was lost, but nothing moved either. A new incarnation (a new consumer-group member, a new
//! producer epoch, state rebuilt from the events: what the simulator's crash and restart proves
//! correct) makes new connections.
//!
//! The rule, pure so that the simulator drives the same one: a processor that owns at least one
//! command partition with commands not decided yet (or whose backlog it cannot even tell: its
//! client reports nothing) and decides none for the watchdog's patience starts again. Each time
//! it does so without deciding anything in between, the patience doubles (up to
//! [`PATIENCE_MAX_FACTOR`] times the first), so that a broker that is simply down for a long
//! time is not hammered by new members; the first decision resets it. A watchdog never stops the
//! process: an outage is waited out, loudly (each new incarnation is logged and counted).

/// The real processor's first patience: longer than a broker stall it survives by itself (the
/// chaos suite freezes the broker 35 s; a healthy processor decides again within seconds of
/// the resume) and much shorter than the minutes a wedged client stays wedged.
pub const PATIENCE_MS: u64 = 60_000;
/// The patience grows to at most this many times the first.
pub const PATIENCE_MAX_FACTOR: u64 = 8;

/// What a processor's owned command partitions hold, as its client reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// It owns no partition, or every owned partition is decided to its end.
    None,
    /// Some owned partition has commands not decided yet, or reports no lag at all.
    Waiting,
}

/// The lag a partition decided to its end may still report: the marker of the transaction that
/// wrote its last record counts as one.
const SETTLED_LAG: i64 = 1;

impl Backlog {
    /// From the lag of each owned partition (`None`: not reported). A lag of one is a
    /// transaction marker, not a command: a processor wedged with a single command per partition
    /// is not seen (a backlog that small is rare under the load where wedges happened).
    pub fn of(lags: impl IntoIterator<Item = Option<i64>>) -> Backlog {
        let behind = lags
            .into_iter()
            .any(|lag| lag.is_none_or(|n| n > SETTLED_LAG));
        if behind {
            Backlog::Waiting
        } else {
            Backlog::None
        }
    }
}

/// One processor's watchdog, in milliseconds of any clock.
#[derive(Debug, Clone)]
pub struct Watchdog {
    first_patience_ms: u64,
    patience_ms: u64,
    /// Since when it has been waiting with a backlog and no decision.
    stuck_since: Option<u64>,
    started: u64,
}

impl Watchdog {
    pub fn new(patience_ms: u64) -> Watchdog {
        Watchdog {
            first_patience_ms: patience_ms,
            patience_ms,
            stuck_since: None,
            started: 0,
        }
    }

    /// One step of the processor at `now_ms`: `decided` commands, and its backlog after the
    /// step. True when it must start a new incarnation now (counted).
    pub fn observe(&mut self, now_ms: u64, decided: usize, backlog: Backlog) -> bool {
        if decided > 0 {
            self.patience_ms = self.first_patience_ms;
        }
        if decided > 0 || backlog == Backlog::None {
            self.stuck_since = None;
            return false;
        }
        let since = *self.stuck_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) < self.patience_ms {
            return false;
        }
        self.stuck_since = None;
        self.patience_ms = (self.patience_ms * 2).min(self.first_patience_ms * PATIENCE_MAX_FACTOR);
        self.started += 1;
        true
    }

    /// How long it waits now before the next new incarnation.
    pub fn patience_ms(&self) -> u64 {
        self.patience_ms
    }

    /// New incarnations it started so far.
    pub fn started(&self) -> u64 {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 1_000;

    #[test]
    fn a_processor_with_a_backlog_that_decides_nothing_starts_again_after_its_patience() {
        let mut watchdog = Watchdog::new(P);
        assert!(!watchdog.observe(0, 0, Backlog::Waiting));
        assert!(!watchdog.observe(P - 1, 0, Backlog::Waiting));
        assert!(watchdog.observe(P, 0, Backlog::Waiting));
        assert_eq!(watchdog.started(), 1);
    }

    #[test]
    fn deciding_or_having_nothing_to_decide_is_not_being_stuck() {
        let mut watchdog = Watchdog::new(P);
        for t in 0..10 {
            assert!(!watchdog.observe(t * P, 1, Backlog::Waiting));
            assert!(!watchdog.observe(t * P + P / 2, 0, Backlog::None));
        }
        assert_eq!(watchdog.started(), 0);
    }

    #[test]
    fn its_patience_doubles_while_nothing_moves_up_to_a_bound_and_resets_on_a_decision() {
        let mut watchdog = Watchdog::new(P);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let since = now;
            while !watchdog.observe(now, 0, Backlog::Waiting) {
                now += 10;
            }
            waits.push((now - since) / P);
        }
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        watchdog.observe(now, 3, Backlog::Waiting);
        assert_eq!(watchdog.patience_ms(), P);
    }

    #[test]
    fn an_owned_partition_that_reports_no_lag_is_a_backlog_and_a_marker_is_not() {
        assert_eq!(Backlog::of([]), Backlog::None);
        assert_eq!(Backlog::of([Some(0), Some(1)]), Backlog::None);
        assert_eq!(Backlog::of([Some(0), Some(4)]), Backlog::Waiting);
        assert_eq!(Backlog::of([Some(0), None]), Backlog::Waiting);
    }
}
