//! The people's behaviour and the front tier's settings, as named numbers. Assumptions unless
//! a comment names a source (`shared/SEED.md` for the 2021 facts); change them here.

/// The 18-49 group of 2021 (SEED.md).
pub const PEOPLE_2021: f64 = 16_210_000.0;
/// Reservations the rebuilt site was expected to take an hour (SEED.md): the admission rate at
/// full scale (scaled with the population, like every capacity).
pub const ADMIT_PER_HOUR_2021: f64 = 2_000_000.0;

// ---- who comes, and when ----------------------------------------------------------------------

/// Of the age group, who tries on their booking day.
pub const PARTICIPATE_PER_MILLE: u64 = 700;
/// Of the people outside the group, who try anyway.
pub const OUTSIDE_TRIES_PER_MILLE: u64 = 500;
/// Arrive in the minutes before the opening (the pre-queue, drawn at the opening).
pub const PRE_QUEUE_PER_MILLE: u64 = 50;
pub const PRE_QUEUE_MS: i64 = 10 * 60_000;
/// Arrive in the first half hour (the stampede), exponentially with this mean.
pub const STAMPEDE_PER_MILLE: u64 = 450;
pub const STAMPEDE_MS: i64 = 30 * 60_000;
pub const STAMPEDE_MEAN_MS: i64 = 6 * 60_000;
/// The rest arrive later, decaying with this mean, until the close.
pub const LATER_MEAN_MS: i64 = 4 * 3_600_000;
/// Nobody plans to arrive in the last minutes of a window.
pub const CLOSING_MARGIN_MS: i64 = 15 * 60_000;
/// When a day's (or the change window's) crowd is drawn, before its opening.
pub const PREPARE_AHEAD_MS: i64 = 3_600_000;
/// When the operators register the supply, before the first opening.
pub const SUPPLY_AHEAD_MS: i64 = 24 * 3_600_000;

// ---- the change window ------------------------------------------------------------------------

/// Reservation holders who come back in the change window (as `yeyak_tools::workload`).
pub const HOLDER_RETURNS_PER_MILLE: u64 = 150;
/// Of those, who change (the others cancel) (as `yeyak_tools::workload`).
pub const CHANGE_PER_MILLE: u64 = 500;
/// Of the age group without a reservation, who come to book from the pool.
pub const LATE_BOOKER_PER_MILLE: u64 = 300;
/// Of the change window's crowd, who come in its first hours, and the mean of each part.
pub const CHANGE_RUSH_PER_MILLE: u64 = 300;
pub const CHANGE_RUSH_MEAN_MS: i64 = 30 * 60_000;
pub const CHANGE_LATER_MEAN_MS: i64 = 3 * 24 * 3_600_000;

/// How many people the model expects to come at all, with a margin: the ledger's tables of
/// people are sized for them up front (a table grown in the middle of the run is briefly held
/// twice; one sized for everyone, also those who never come, is twice as large at 16 million).
/// Of the group: those who try on their day, and late bookers among those who did not; of the
/// others, those who try anyway. A table still grows if more come.
pub fn expected_visitors(eligible: u32, outside: u32) -> usize {
    let never_tried = 1000 - PARTICIPATE_PER_MILLE;
    let group_per_mille = PARTICIPATE_PER_MILLE + never_tried * LATE_BOOKER_PER_MILLE / 1000;
    let expected = u64::from(eligible) * group_per_mille / 1000
        + u64::from(outside) * OUTSIDE_TRIES_PER_MILLE / 1000;
    (expected + expected / VISITORS_MARGIN_DIVISOR) as usize
}
const VISITORS_MARGIN_DIVISOR: u64 = 20;

// ---- a visit ----------------------------------------------------------------------------------

/// Verify on a second phone at once (refused: the first device holds them), as the workload.
pub const SECOND_DEVICE_PER_MILLE: u64 = 80;
pub const SECOND_DEVICE_MS: i64 = 3_000;
/// Verify again impatiently a minute later (refused: once per 10 minutes), as the workload.
pub const IMPATIENT_PER_MILLE: u64 = 40;
pub const IMPATIENT_MS: i64 = 60_000;
/// Wait whatever the displayed wait (up to [`PATIENT_MS`]); the others' patience is uniform
/// in [`PATIENCE_MS`].
pub const PATIENT_PER_MILLE: u64 = 500;
pub const PATIENT_MS: i64 = 3 * 3_600_000;
pub const PATIENCE_MS: (i64, i64) = (5 * 60_000, 60 * 60_000);
/// How long one looks at a displayed wait before leaving.
pub const LOOK_MS: i64 = 30_000;
/// Of those who give up, who close the page without leaving (skipped after the heartbeat).
pub const SILENT_PER_MILLE: u64 = 500;
/// When a person who gave up comes back, and how many visits one makes at most.
pub const RETRY_MIN_MS: i64 = 30 * 60_000;
pub const RETRY_MAX_MS: i64 = 3 * 3_600_000;
pub const VISITS_MAX: u8 = 4;
/// From an admission to the booking (choosing a clinic and a date).
pub const THINK_MS: (i64, i64) = (20_000, 90_000);
/// The nearest clinic, the earliest date (as `yeyak_tools::workload`).
pub const NEAREST_PER_MILLE: u64 = 400;
pub const EARLIEST_PER_MILLE: u64 = 500;
/// Book from a stale page without looking at what remains (and may meet `sold_out`).
pub const BLIND_PICK_PER_MILLE: u64 = 100;
/// Bookings tried with one admission before giving up.
pub const BOOK_TRIES_MAX: u8 = 3;
/// Random slots looked at before scanning the region.
pub const PICK_TRIES: usize = 16;
/// A region found without doses for a share is not scanned again for this long.
pub const EXHAUSTED_RECHECK_MS: i64 = 3_600_000;

// ---- the front tier (the admission controller's rule, `yeyak_front::controller`) ---------------

/// The controller's tick.
pub const TICK_MS: i64 = 1_000;
/// At most this many seconds of the rate in unused live admissions.
pub const LIVE_MAX_S: f64 = 120.0;
/// An admission's validity (`FrontConfig`'s default).
pub const ADMISSION_TTL_MS: i64 = 10 * 60_000;
/// A silent ticket is skipped after this (`FrontConfig`'s default).
pub const HEARTBEAT_TIMEOUT_MS: i64 = 60_000;
/// A light is reported when it changes, and at least this often.
pub const REPORT_MS: i64 = 10 * 60_000;
/// The queue's length is sampled this often.
pub const SAMPLE_MS: i64 = 60_000;

/// The operator the simulator records provider outages under.
pub const OPERATOR: &str = "simulated-operator";
