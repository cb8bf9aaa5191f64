//! `summary.json`: the run's figures, from the events (the [`Observer`]), deterministic for a
//! seed (no wall time in it: that is the report's), beside 2021's published ones.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::observe::Observer;

/// 2021's published outcome (the figures the issue quotes).
#[derive(Debug, Clone, Serialize)]
pub struct Published2021 {
    pub first_night_cohort: u64,
    pub first_night_booked_within_4h: u64,
    pub first_night_mean_wait_s: u64,
    pub verifications_9_to_20_aug: u64,
    pub verifications_peak_day: u64,
    pub seed_wait_estimate_s: [u64; 2],
    pub seed_reservations_per_hour: u64,
}

pub const PUBLISHED_2021: Published2021 = Published2021 {
    first_night_cohort: 1_415_453,
    first_night_booked_within_4h: 701_824,
    first_night_mean_wait_s: 60,
    verifications_9_to_20_aug: 28_980_000,
    verifications_peak_day: 3_170_000,
    seed_wait_estimate_s: [30 * 60, 50 * 60],
    seed_reservations_per_hour: 2_000_000,
};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    /// People / 16.21 million: every capacity is scaled by it.
    pub scale: f64,
    pub people: People,
    pub supply: SupplyFigures,
    pub ledger: LedgerFigures,
    pub first_night: FirstNight,
    pub waits: Waits,
    pub eta: Eta,
    pub verifications: Verifications,
    pub reservations: Reservations,
    /// Rejections (and refusals) by code, as recorded.
    pub rejections: BTreeMap<&'static str, u64>,
    pub fairness: Fairness,
    pub published_2021: Published2021,
}

#[derive(Debug, Clone, Serialize)]
pub struct People {
    pub population: u64,
    pub eligible: u64,
    pub outside_group: u64,
    /// People (in the group or not) per booking day, in calendar order.
    pub booking_day_cohorts: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupplyFigures {
    pub clinics: u64,
    pub regions: u64,
    pub vaccination_dates: u64,
    pub doses_per_clinic_date: u64,
    pub doses: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerFigures {
    pub commands: u64,
    pub events: u64,
    /// `System::violations()` at the end: must be empty.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirstNight {
    /// People of the first booking day in the age group.
    pub cohort: u64,
    pub booked_within_4h: u64,
    pub booked_within_4h_permille: u64,
    /// Mean wait of the tickets admitted in those 4 hours.
    pub mean_wait_s: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waits {
    pub admitted: u64,
    pub p50_s: u64,
    pub p95_s: u64,
    pub max_s: u64,
    pub mean_s: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Eta {
    /// |displayed ETA - actual wait| per admitted ticket.
    pub error_p50_s: u64,
    pub error_p95_s: u64,
    pub error_max_s: u64,
    /// Tickets admitted sooner than they were told.
    pub sooner_than_shown_permille: u64,
    /// The error in proportion of the wait (permille), over the waits of at least
    /// `relative_min_wait_s`: p50, p95, and how many waits that is.
    pub relative_min_wait_s: u32,
    pub relative_error_p50_permille: u64,
    pub relative_error_p95_permille: u64,
    pub relative_waits: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verifications {
    pub total: u64,
    /// From the first opening through the change window's first whole day (9-20 Aug in 2021,
    /// the span of the published 28.98 million).
    pub through_first_change_day: u64,
    pub peak_hour: u64,
    /// The busiest calendar day (Korea time) and its count.
    pub peak_day: (String, u64),
    pub by_method: BTreeMap<&'static str, u64>,
    /// Provider outages per method, from the operators' records in the log.
    pub outages_by_method: BTreeMap<&'static str, crate::observe::Outages>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reservations {
    /// Held at the end of the change window.
    pub active: u64,
    pub recorded_by_day_share: Vec<u64>,
    pub capacity_by_day_share: Vec<u64>,
    pub fill_by_day_share_permille: Vec<u64>,
    pub recorded_from_pool: u64,
    pub released_to_pool: u64,
    pub changed: u64,
    pub cancelled: u64,
    /// Doses booked of doses registered per clinic at the end: min, median, max.
    pub clinic_fill_permille: [u64; 3],
}

#[derive(Debug, Clone, Serialize)]
pub struct Fairness {
    /// Each day share's capacity against the even split (total / days), in doses.
    pub day_share_deviation_doses: Vec<i64>,
    /// Highest fill of a day share minus the lowest.
    pub day_share_fill_spread_permille: u64,
    /// Tickets admitted after a ticket issued later than theirs (0 for a FIFO waiting room).
    pub fcfs_inversions: u64,
    pub eta_error_p95_s: u64,
    pub pre_queue_draws: u64,
}

/// What the simulator knows beside the events.
pub struct Counts {
    pub seed: u64,
    pub scale: f64,
    pub population: u64,
    pub eligible: u64,
    pub cohorts: Vec<u64>,
    pub clinics: u64,
    pub regions: u64,
    pub dates: u64,
    pub doses_per_date: u64,
    /// Every dose registered (a clinics file's clinics offer each their own).
    pub doses: u64,
    pub commands: u64,
    pub first_night_cohort: u64,
    /// The day after the change window opens (Korea time): the end of the published span.
    pub booking_period_last_day: chrono::NaiveDate,
    pub violations: Vec<String>,
}

fn permille(part: u64, whole: u64) -> u64 {
    (part * 1000).checked_div(whole).unwrap_or(0)
}

impl Summary {
    pub fn new(o: &Observer, c: Counts) -> Summary {
        let fills: Vec<u64> = o
            .booked_by_share
            .iter()
            .zip(&o.capacity_by_share)
            .map(|(b, cap)| permille(*b, *cap))
            .collect();
        let days_total: u64 = o.capacity_by_share.iter().sum();
        let even = days_total as f64 / o.capacity_by_share.len().max(1) as f64;
        let mut clinic_fill: Vec<u64> = o
            .clinics
            .values()
            .map(|(b, cap)| permille(*b, *cap))
            .collect();
        clinic_fill.sort_unstable();
        let at = |q: usize| clinic_fill.get(q).copied().unwrap_or(0);
        let by_day = o.verifications_by_day();
        let peak_day = by_day
            .iter()
            .max_by_key(|(day, n)| (**n, std::cmp::Reverse(**day)))
            .map(|(d, n)| (d.to_string(), *n))
            .unwrap_or_default();
        let through = c.booking_period_last_day;
        let in_booking_period = by_day.range(..=through).map(|(_, n)| n).sum();
        Summary {
            seed: c.seed,
            scale: (c.scale * 1e6).round() / 1e6,
            people: People {
                population: c.population,
                eligible: c.eligible,
                outside_group: c.population - c.eligible,
                booking_day_cohorts: c.cohorts,
            },
            supply: SupplyFigures {
                clinics: c.clinics,
                regions: c.regions,
                vaccination_dates: c.dates,
                doses_per_clinic_date: c.doses_per_date,
                doses: c.doses,
            },
            ledger: LedgerFigures {
                commands: c.commands,
                events: o.events,
                violations: c.violations,
            },
            first_night: FirstNight {
                cohort: c.first_night_cohort,
                booked_within_4h: o.first_night_booked,
                booked_within_4h_permille: permille(o.first_night_booked, c.first_night_cohort),
                mean_wait_s: o.first_night_waits.mean().round() as u64,
            },
            waits: Waits {
                admitted: o.waits.total,
                p50_s: o.waits.percentile(500),
                p95_s: o.waits.percentile(950),
                max_s: o.waits.max,
                mean_s: o.waits.mean().round() as u64,
            },
            eta: Eta {
                error_p50_s: o.eta_errors.percentile(500),
                error_p95_s: o.eta_errors.percentile(950),
                error_max_s: o.eta_errors.max,
                sooner_than_shown_permille: permille(o.eta_over, o.waits.total),
                relative_min_wait_s: crate::observe::ETA_RELATIVE_MIN_WAIT_S,
                relative_error_p50_permille: o.eta_relative.percentile(500),
                relative_error_p95_permille: o.eta_relative.percentile(950),
                relative_waits: o.eta_relative.total,
            },
            verifications: Verifications {
                total: o.verifications_by_method.values().sum(),
                through_first_change_day: in_booking_period,
                peak_hour: o.verifications_per_hour.iter().copied().max().unwrap_or(0),
                peak_day,
                by_method: o.verifications_by_method.clone(),
                outages_by_method: o.outages.clone(),
            },
            reservations: Reservations {
                active: o.booked_total,
                recorded_by_day_share: o.booked_by_share.clone(),
                capacity_by_day_share: o.capacity_by_share.clone(),
                fill_by_day_share_permille: fills.clone(),
                recorded_from_pool: o.booked_pool,
                released_to_pool: o.released_to_pool,
                changed: o.changed,
                cancelled: o.cancelled,
                clinic_fill_permille: [
                    at(0),
                    at(clinic_fill.len() / 2),
                    at(clinic_fill.len().saturating_sub(1)),
                ],
            },
            rejections: o.rejections.clone(),
            fairness: Fairness {
                day_share_deviation_doses: o
                    .capacity_by_share
                    .iter()
                    .map(|cap| (*cap as f64 - even).round() as i64)
                    .collect(),
                day_share_fill_spread_permille: fills.iter().max().unwrap_or(&0)
                    - fills.iter().min().unwrap_or(&0),
                fcfs_inversions: o.fcfs_inversions,
                eta_error_p95_s: o.eta_errors.percentile(950),
                pre_queue_draws: o.draws,
            },
            published_2021: PUBLISHED_2021,
        }
    }
}
