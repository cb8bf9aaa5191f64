//! The identity providers: one per verification method, each a server with a throughput
//! (verifications a second, scaled with the population) and a person's own time to complete
//! it. A method's light is the front tier's rule (`yeyak_front::congestion::level`), modelled
//! here because this crate does not link the front tier: grey when out, red when the wait to
//! start is at least [`RED_WAIT_MS`], yellow from [`YELLOW_WAIT_MS`], else green (the
//! front's default thresholds). Outages are not modelled yet.

use yeyak_domain::{CongestionLevel, Method};

use crate::rng::Rng;

/// The front tier's default thresholds (`FrontConfig`).
pub const YELLOW_WAIT_MS: i64 = 1_500;
pub const RED_WAIT_MS: i64 = 5_000;
/// A person's own time to complete a verification (typing, the app), uniform in this range.
pub const PERSON_TIME_MS: (i64, i64) = (20_000, 60_000);

/// Per method: the share of people for whom it is the habit (per mille) and its throughput at
/// the full campaign (verifications a second). Assumptions, not published figures: phone is the
/// habit of most and the slowest to scale; the simple-authentication apps (Kakao, Naver, PASS)
/// were added in 2021 to spread the load.
pub const METHODS: [(Method, u64, f64); 7] = [
    (Method::Phone, 400, 250.0),
    (Method::Ipin, 30, 40.0),
    (Method::JointCertificate, 70, 80.0),
    (Method::FinancialCertificate, 50, 80.0),
    (Method::Kakao, 200, 300.0),
    (Method::Naver, 130, 250.0),
    (Method::Pass, 120, 250.0),
];

#[derive(Debug, Clone)]
pub struct Provider {
    pub method: Method,
    /// Verifications a second.
    pub rate_per_s: f64,
    /// When the provider can start the next verification.
    free_at_ms: f64,
}

impl Provider {
    /// How long a verification asked for now waits before it starts.
    pub fn wait_ms(&self, now_ms: i64) -> i64 {
        (self.free_at_ms - now_ms as f64).max(0.0) as i64
    }

    /// Takes a verification asked for at `now_ms`; returns when it starts.
    pub fn take(&mut self, now_ms: i64) -> i64 {
        let start = self.free_at_ms.max(now_ms as f64);
        self.free_at_ms = start + 1000.0 / self.rate_per_s;
        start as i64
    }

    pub fn level(&self, now_ms: i64) -> CongestionLevel {
        let wait = self.wait_ms(now_ms);
        if wait >= RED_WAIT_MS {
            CongestionLevel::Red
        } else if wait >= YELLOW_WAIT_MS {
            CongestionLevel::Yellow
        } else {
            CongestionLevel::Green
        }
    }
}

/// Every method's provider.
#[derive(Debug, Clone)]
pub struct Providers {
    pub all: Vec<Provider>,
}

impl Providers {
    pub fn new(scale: f64) -> Providers {
        Providers {
            all: METHODS
                .iter()
                .map(|&(method, _, rate)| Provider {
                    method,
                    rate_per_s: (rate * scale).max(0.01),
                    free_at_ms: 0.0,
                })
                .collect(),
        }
    }

    /// The habitual method of a person (by the habit shares).
    pub fn habit(rng: &mut Rng) -> usize {
        let mut pick = rng.below(1000);
        for (i, (_, share, _)) in METHODS.iter().enumerate() {
            if pick < *share {
                return i;
            }
            pick -= share;
        }
        0
    }

    /// The method a person picks, steered by the lights: from a red habit most move to the
    /// greenest method (the shortest wait), from a yellow one some do.
    pub fn choose(&self, habit: usize, now_ms: i64, rng: &mut Rng) -> usize {
        let moves = match self.all[habit].level(now_ms) {
            CongestionLevel::Green => false,
            CongestionLevel::Yellow => rng.chance(300),
            CongestionLevel::Red | CongestionLevel::Grey => rng.chance(700),
        };
        if !moves {
            return habit;
        }
        (0..self.all.len())
            .min_by_key(|&i| (self.all[i].wait_ms(now_ms), i))
            .unwrap_or(habit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_provider_turns_red_and_people_move_to_a_green_one() {
        let mut providers = Providers::new(1.0);
        for _ in 0..2_000 {
            providers.all[0].take(0);
        }
        assert_eq!(providers.all[0].level(0), CongestionLevel::Red);
        assert_eq!(providers.all[4].level(0), CongestionLevel::Green);
        let mut rng = Rng::new(1);
        let moved = (0..1000)
            .filter(|_| providers.choose(0, 0, &mut rng) != 0)
            .count();
        assert!((600..800).contains(&moved), "{moved}");
    }
}
