//! The identity providers: one per verification method, each a server with a throughput
//! (verifications a second, scaled with the population) and a person's own time to complete
//! it. A method's light is the front tier's rule (`yeyak_front::congestion::level`), modelled
//! here because this crate does not link the front tier: grey when out, red when the wait to
//! start is at least [`RED_WAIT_MS`], yellow from [`YELLOW_WAIT_MS`], else green (the
//! front's default thresholds). A provider can be out (grey): nobody verifies with it, and an
//! operator records the outage and its end in the log (`SwitchProvider`).

use yeyak_domain::{Campaign, CongestionLevel, Method, TimestampMs};

use crate::rng::Rng;

/// Per booking day and method, the chance (per mille) that its provider fails in the hours
/// after the opening, when it is busiest. An assumption: 2021's site reported identity
/// verification failures on its busiest nights, without figures per provider.
pub const OUTAGE_PER_MILLE: u64 = 100;
/// An outage starts within this long after a booking day's opening ...
pub const OUTAGE_WITHIN_MS: i64 = 4 * 3_600_000;
/// ... and lasts between these (uniform).
pub const OUTAGE_LENGTH_MS: (i64, i64) = (10 * 60_000, 45 * 60_000);

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
    /// When it is out: `[from, to)` windows, in order.
    pub outages: Vec<(TimestampMs, TimestampMs)>,
}

impl Provider {
    pub fn is_out(&self, now_ms: TimestampMs) -> bool {
        self.outages
            .iter()
            .any(|(from, to)| (*from..*to).contains(&now_ms))
    }

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
        if self.is_out(now_ms) {
            CongestionLevel::Grey
        } else if wait >= RED_WAIT_MS {
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
                    outages: Vec::new(),
                })
                .collect(),
        }
    }

    /// Draws the outages of every provider: on each booking day, [`OUTAGE_PER_MILLE`] of a
    /// chance per method of one outage in the hours after the opening.
    pub fn draw_outages(&mut self, campaign: &Campaign, rng: &mut Rng) {
        for day in &campaign.booking_days {
            for provider in &mut self.all {
                if rng.chance(OUTAGE_PER_MILLE) {
                    let from = day.window.opens_at_ms + rng.between(0, OUTAGE_WITHIN_MS);
                    let length = rng.between(OUTAGE_LENGTH_MS.0, OUTAGE_LENGTH_MS.1);
                    provider.outages.push((from, from + length));
                }
            }
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
    /// greenest method (the shortest wait), from a yellow one some do, from a grey one (out)
    /// everyone does. `None` when every provider is out.
    pub fn choose(&self, habit: usize, now_ms: i64, rng: &mut Rng) -> Option<usize> {
        let moves = match self.all[habit].level(now_ms) {
            CongestionLevel::Green => false,
            CongestionLevel::Yellow => rng.chance(300),
            CongestionLevel::Red => rng.chance(700),
            CongestionLevel::Grey => true,
        };
        if !moves {
            return Some(habit);
        }
        (0..self.all.len())
            .filter(|&i| !self.all[i].is_out(now_ms))
            .min_by_key(|&i| (self.all[i].wait_ms(now_ms), i))
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
            .filter(|_| providers.choose(0, 0, &mut rng) != Some(0))
            .count();
        assert!((600..800).contains(&moved), "{moved}");
    }

    #[test]
    fn an_outage_is_grey_and_everyone_moves_to_a_provider_that_is_up() {
        let mut providers = Providers::new(1.0);
        providers.all[0].outages.push((100, 200));
        providers.all[4].outages.push((150, 300));
        assert_eq!(providers.all[0].level(99), CongestionLevel::Green);
        assert_eq!(providers.all[0].level(100), CongestionLevel::Grey);
        assert_eq!(providers.all[0].level(200), CongestionLevel::Green);
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let chosen = providers.choose(0, 160, &mut rng).unwrap();
            assert!(chosen != 0 && chosen != 4, "{chosen}");
        }
        for p in &mut providers.all {
            p.outages.push((1_000, 2_000));
        }
        assert_eq!(providers.choose(2, 1_500, &mut rng), None);
    }

    #[test]
    fn outages_fall_on_booking_days_after_the_opening() {
        let campaign = Campaign::default_2021();
        let mut providers = Providers::new(1.0);
        providers.draw_outages(&campaign, &mut Rng::new(3));
        let outages: Vec<_> = providers.all.iter().flat_map(|p| &p.outages).collect();
        assert!(
            !outages.is_empty() && outages.len() < 30,
            "{}",
            outages.len()
        );
        for (from, to) in outages {
            let day = campaign.booking_days.iter().find(|d| {
                (d.window.opens_at_ms..=d.window.opens_at_ms + OUTAGE_WITHIN_MS).contains(from)
            });
            assert!(day.is_some(), "{from}");
            assert!((OUTAGE_LENGTH_MS.0..=OUTAGE_LENGTH_MS.1).contains(&(to - from)));
        }
    }
}
