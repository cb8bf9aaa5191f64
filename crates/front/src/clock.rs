//! The server's clock: real time, shifted. `--clock` (a rehearsal) and then `POST /admin/clock` move it; it then
//! runs on in real time. Every command takes its instant from here (the domain reads no clock).

use std::sync::atomic::{AtomicI64, Ordering};

use yeyak_domain::TimestampMs;

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

fn system_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Clock {
    /// A clock that reads `now_ms` now.
    pub fn starting_at(now_ms: Option<TimestampMs>) -> Clock {
        let clock = Clock::default();
        if let Some(now) = now_ms {
            clock.set(now);
        }
        clock
    }

    pub fn now_ms(&self) -> TimestampMs {
        system_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn set(&self, now_ms: TimestampMs) {
        self.offset_ms
            .store(now_ms - system_ms(), Ordering::Relaxed);
    }
}

/// An instant as RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: TimestampMs) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
