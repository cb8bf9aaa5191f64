//! The congestion light per verification method: green (smooth), yellow (delayed), red
//! (congested), grey (unavailable), from the provider's measured wait and health, with the
//! thresholds of the configuration. Pure: measurements in, light out.

use super::providers::Health;

/// The light is the domain's `CongestionLevel`: the one the gateway shows is the one it records.
pub use yeyak_domain::CongestionLevel as Level;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub yellow_wait_ms: f64,
    pub red_wait_ms: f64,
    pub grey_failure_ratio: f64,
}

/// The light of one method. The expected wait counts the people already in front of the
/// provider: a full provider is at least yellow even before its measured wait rises.
pub fn level(health: &Health, t: &Thresholds) -> Level {
    if health.outage || health.failure_ratio > t.grey_failure_ratio {
        return Level::Grey;
    }
    let wait = expected_wait_ms(health);
    let load = f64::from(health.in_flight) / f64::from(health.capacity.max(1));
    if wait >= t.red_wait_ms || load >= 1.0 {
        Level::Red
    } else if wait >= t.yellow_wait_ms || load >= 0.8 {
        Level::Yellow
    } else {
        Level::Green
    }
}

/// What a person starting now should expect to wait (ms).
pub fn expected_wait_ms(health: &Health) -> f64 {
    if health.verifications_total == 0 {
        health.nominal_wait_ms
    } else {
        health.wait_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(wait_ms: f64, in_flight: u32, failure_ratio: f64, outage: bool) -> Health {
        Health {
            outage,
            wait_ms,
            in_flight,
            capacity: 100,
            failure_ratio,
            verifications_total: 10,
            nominal_wait_ms: 0.0,
        }
    }

    #[test]
    fn lights_follow_wait_load_and_health() {
        let t = Thresholds {
            yellow_wait_ms: 1000.0,
            red_wait_ms: 5000.0,
            grey_failure_ratio: 0.5,
        };
        assert_eq!(level(&health(100.0, 0, 0.0, false), &t), Level::Green);
        assert_eq!(level(&health(1000.0, 0, 0.0, false), &t), Level::Yellow);
        assert_eq!(level(&health(100.0, 85, 0.0, false), &t), Level::Yellow);
        assert_eq!(level(&health(6000.0, 0, 0.0, false), &t), Level::Red);
        assert_eq!(level(&health(100.0, 100, 0.0, false), &t), Level::Red);
        assert_eq!(level(&health(100.0, 0, 0.6, false), &t), Level::Grey);
        assert_eq!(level(&health(100.0, 0, 0.0, true), &t), Level::Grey);
    }
}
