//! The fold of every event the ledger decided, in order: what the report and the fairness
//! figures are computed from (the log, not the simulator's own counters). It also serves the
//! simulated front tier what a gateway reads from its view: the queue's length, a ticket's
//! displayed ETA, the live admissions.

use std::collections::{BTreeMap, VecDeque};

use yeyak_domain::{Campaign, Envelope, Event, Method, Share, TimestampMs};

/// Longest wait or ETA error the histograms resolve to the second (longer ones count in the
/// last bucket).
pub const HISTOGRAM_S_MAX: usize = 48 * 3600;
/// Tickets kept for the ETA-against-wait scatter plot.
pub const ETA_SAMPLES_MAX: u64 = 2_000;
/// The first night's window of the 2021 figure (701,824 booked within about 4 hours).
pub const FIRST_NIGHT_MS: i64 = 4 * 3600 * 1000;

/// How long the outflow achieved while people waited is smoothed over (the front tier's
/// `OUTFLOW_SMOOTHING_S`).
pub const OUTFLOW_SMOOTHING_S: f64 = 5.0;

/// The shortest wait an ETA's error is also measured against in proportion: under it, a
/// second of rounding is already a large share (a 1 s wait shown as 2 s is 100% off).
pub const ETA_RELATIVE_MIN_WAIT_S: u32 = 30;

/// Korea's offset from UTC (no daylight saving time).
pub const KST_OFFSET_MS: i64 = 9 * 3_600_000;

/// Counts per second, for percentiles.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    pub total: u64,
    pub sum: u128,
    pub max: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; HISTOGRAM_S_MAX + 1],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    pub fn add(&mut self, seconds: u64) {
        self.counts[(seconds as usize).min(HISTOGRAM_S_MAX)] += 1;
        self.total += 1;
        self.sum += u128::from(seconds);
        self.max = self.max.max(seconds);
    }

    /// The smallest second at or under which `permille` of the counts fall.
    pub fn percentile(&self, permille: u64) -> u64 {
        let wanted = (self.total * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (s, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return s as u64;
            }
        }
        0
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// Counts per bucket of `width_s` seconds, up to the last non-empty one.
    pub fn buckets(&self, width_s: usize) -> Vec<u64> {
        let last = self.counts.iter().rposition(|&n| n > 0).unwrap_or(0);
        self.counts[..=last]
            .chunks(width_s.max(1))
            .map(|c| c.iter().sum())
            .collect()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// A ticket as the log tells it.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    issued_s: u32,
    eta_s: u32,
    waiting: bool,
}

/// Everything the report needs, folded from the events.
#[derive(Debug, Clone)]
pub struct Observer {
    origin_ms: TimestampMs,
    day_windows: Vec<(TimestampMs, TimestampMs)>,
    /// The controller's target rate (a second).
    admit_per_s: f64,
    /// What the controller achieved over the ticks that left people waiting (smoothed), when
    /// any did: the ETA's rate when it is below the target, as the front tier's.
    achieved_while_waiting: Option<f64>,
    /// Admissions the controller may grant at once at its next tick.
    admit_budget: f64,
    eta_stride: u64,
    tickets: Vec<Ticket>,
    pub waiting: u64,
    pub pre_queue: u64,
    /// Live admissions (admitted, not used), by expiry.
    live: VecDeque<(TimestampMs, u64)>,
    used: std::collections::HashSet<u64>,
    pub events: u64,
    pub waits: Histogram,
    /// |displayed ETA - actual wait| per admitted ticket.
    pub eta_errors: Histogram,
    /// Waits shorter than the ETA shown (the ETA was pessimistic).
    pub eta_over: u64,
    /// |displayed ETA - actual wait| in permille of the wait, for waits of at least
    /// [`ETA_RELATIVE_MIN_WAIT_S`] (the goal: p95 within 10%).
    pub eta_relative: Histogram,
    pub eta_samples: Vec<(u32, u32)>,
    max_admitted: Option<u64>,
    pub fcfs_inversions: u64,
    pub admitted: u64,
    pub verifications_per_hour: Vec<u64>,
    pub verifications_by_method: BTreeMap<&'static str, u64>,
    /// Per booking day: (hours since its opening, tickets waiting), sampled by the simulator.
    pub queue_series: Vec<Vec<(f64, u64)>>,
    /// Per method: (hours since the first opening, light 0 green .. 3 grey) as reported.
    pub lights: BTreeMap<&'static str, Vec<(f64, u8)>>,
    /// Per method: outages an operator recorded, and the milliseconds out (the open one
    /// since when).
    pub outages: BTreeMap<&'static str, Outages>,
    pub capacity_by_share: Vec<u64>,
    pub capacity_pool: u64,
    /// Day shares' leftovers moved to the pool when the last booking day closed.
    pub released_to_pool: u64,
    pub booked_by_share: Vec<u64>,
    pub booked_pool: u64,
    pub booked_total: u64,
    pub changed: u64,
    pub cancelled: u64,
    /// Per clinic: (booked now, doses registered).
    pub clinics: BTreeMap<String, (u64, u64)>,
    pub rejections: BTreeMap<&'static str, u64>,
    /// Recorded in the first booking day's share within [`FIRST_NIGHT_MS`] of its opening.
    pub first_night_booked: u64,
    pub first_night_waits: Histogram,
    pub draws: u64,
}

impl Observer {
    pub fn new(campaign: &Campaign, admit_per_s: f64, expected_tickets: u64) -> Observer {
        let days = campaign.booking_days.len();
        Observer {
            origin_ms: campaign.booking_days[0].window.opens_at_ms,
            day_windows: campaign
                .booking_days
                .iter()
                .map(|d| (d.window.opens_at_ms, d.window.closes_at_ms))
                .collect(),
            admit_per_s,
            achieved_while_waiting: None,
            admit_budget: 0.0,
            eta_stride: (expected_tickets / ETA_SAMPLES_MAX).max(1),
            tickets: Vec::new(),
            waiting: 0,
            pre_queue: 0,
            live: VecDeque::new(),
            used: Default::default(),
            events: 0,
            waits: Histogram::new(),
            eta_errors: Histogram::new(),
            eta_over: 0,
            eta_relative: Histogram::new(),
            eta_samples: Vec::new(),
            max_admitted: None,
            fcfs_inversions: 0,
            admitted: 0,
            verifications_per_hour: Vec::new(),
            verifications_by_method: BTreeMap::new(),
            queue_series: vec![Vec::new(); days],
            lights: BTreeMap::new(),
            outages: BTreeMap::new(),
            capacity_by_share: vec![0; days],
            capacity_pool: 0,
            released_to_pool: 0,
            booked_by_share: vec![0; days],
            booked_pool: 0,
            booked_total: 0,
            changed: 0,
            cancelled: 0,
            clinics: BTreeMap::new(),
            rejections: BTreeMap::new(),
            first_night_booked: 0,
            first_night_waits: Histogram::new(),
            draws: 0,
        }
    }

    fn since_origin_s(&self, at_ms: TimestampMs) -> u32 {
        ((at_ms - self.origin_ms).max(0) / 1000) as u32
    }

    /// The ETA a ticket was shown when it was issued (seconds).
    pub fn eta_s(&self, ticket: u64) -> u32 {
        self.tickets.get(ticket as usize).map_or(0, |t| t.eta_s)
    }

    pub fn is_waiting(&self, ticket: u64) -> bool {
        self.tickets.get(ticket as usize).is_some_and(|t| t.waiting)
    }

    /// Admissions granted, not used and not expired at `now_ms`.
    pub fn live_admissions(&mut self, now_ms: TimestampMs) -> u64 {
        while let Some(&(expires, ticket)) = self.live.front() {
            if expires > now_ms {
                break;
            }
            self.live.pop_front();
            self.used.remove(&ticket);
        }
        (self.live.len() - self.used.len()) as u64
    }

    /// Records the queue's length for every booking day open at `now_ms`.
    pub fn sample_queue(&mut self, now_ms: TimestampMs) {
        for (d, (opens, closes)) in self.day_windows.iter().enumerate() {
            if *opens <= now_ms && now_ms < *closes {
                let hours = (now_ms - opens) as f64 / 3_600_000.0;
                self.queue_series[d].push((hours, self.waiting));
            }
        }
    }

    pub fn observe(&mut self, envelope: &Envelope) {
        self.events += 1;
        let at = envelope.occurred_at_ms;
        match &envelope.event {
            Event::SubjectVerified(e) => self.verified(e.method, at),
            Event::TicketIssued(e) => self.issued(e.ticket.0, at),
            Event::TicketAdmitted(e) => self.admitted(e.ticket.0, at, e.expires_at_ms),
            Event::TicketLeft(e) => self.left(e.ticket.0),
            Event::TicketSkipped(e) => self.left(e.ticket.0),
            Event::TicketRetired(e) => {
                self.used.insert(e.ticket.0);
            }
            Event::PreQueueJoined(_) => self.pre_queue += 1,
            Event::PreQueueDrawn(e) => {
                self.pre_queue -= u64::from(e.drawn);
                self.draws += 1;
            }
            Event::ProviderSwitched(e) => {
                let outages = self.outages.entry(e.method.as_str()).or_default();
                match (e.outage, outages.since_ms.take()) {
                    (true, None) => {
                        outages.count += 1;
                        outages.since_ms = Some(at);
                    }
                    (true, Some(since)) => outages.since_ms = Some(since),
                    (false, Some(since)) => outages.out_ms += (at - since).max(0) as u64,
                    (false, None) => {}
                }
            }
            Event::CongestionReported(e) => {
                let hours = (at - self.origin_ms) as f64 / 3_600_000.0;
                let light = e.level as u8;
                self.lights
                    .entry(e.method.as_str())
                    .or_default()
                    .push((hours, light));
            }
            Event::SupplyRegistered(e) => {
                for (d, doses) in e.day_shares.iter().enumerate() {
                    self.capacity_by_share[d] += u64::from(*doses);
                }
                self.capacity_pool += u64::from(e.pool);
                self.clinic_mut(e.clinic.as_str()).1 += u64::from(e.doses);
            }
            Event::SharesReleased(e) => {
                let released: u64 = e.releases.iter().map(|r| u64::from(r.doses)).sum();
                self.released_to_pool += released;
            }
            Event::ReservationConfirmed(e) => {
                self.clinic_mut(e.clinic.as_str()).0 += 1;
            }
            Event::DoseReleased(e) => {
                if let Some(c) = self.clinics.get_mut(e.clinic.as_str()) {
                    c.0 = c.0.saturating_sub(1);
                }
            }
            Event::ReservationRecorded(e) => self.recorded(e.share, at),
            Event::ReservationChanged(_) => self.changed += 1,
            Event::ReservationCancelled(_) => {
                self.cancelled += 1;
                self.booked_total -= 1;
            }
            Event::BookingFailed(e) => self.rejected(e.code.as_str()),
            Event::ChangeFailed(e) => self.rejected(e.code.as_str()),
            Event::CommandRejected(e) => self.rejected(e.rejection.code.as_str()),
            _ => {}
        }
    }

    fn verified(&mut self, method: Method, at: TimestampMs) {
        let hour = (self.since_origin_s(at) / 3600) as usize;
        if self.verifications_per_hour.len() <= hour {
            self.verifications_per_hour.resize(hour + 1, 0);
        }
        self.verifications_per_hour[hour] += 1;
        *self
            .verifications_by_method
            .entry(method.as_str())
            .or_default() += 1;
    }

    /// Verifications per calendar day in Korea (UTC+9), from the hourly counts (the first
    /// opening is on the hour).
    pub fn verifications_by_day(&self) -> BTreeMap<chrono::NaiveDate, u64> {
        let mut days = BTreeMap::new();
        for (hour, n) in self.verifications_per_hour.iter().enumerate() {
            let at = self.origin_ms + hour as i64 * 3_600_000 + KST_OFFSET_MS;
            if let Some(t) = chrono::DateTime::from_timestamp_millis(at) {
                *days.entry(t.date_naive()).or_default() += n;
            }
        }
        days
    }

    fn clinic_mut(&mut self, clinic: &str) -> &mut (u64, u64) {
        if !self.clinics.contains_key(clinic) {
            self.clinics.insert(clinic.to_owned(), (0, 0));
        }
        self.clinics.get_mut(clinic).expect("inserted above")
    }

    /// The controller's tick of `elapsed_s`: the budget it threw away while the cap on live
    /// admissions held people back (`lost`), and the budget it keeps for the next. A tick that
    /// left people waiting is folded into the achieved outflow: the rate less what was lost,
    /// as the front tier's `controller::achieved_per_s` (not the tick's whole admissions).
    pub fn controller_tick(&mut self, lost: f64, elapsed_s: f64, budget: f64) {
        self.admit_budget = budget;
        if self.waiting == 0 || elapsed_s <= 0.0 {
            return;
        }
        let sample = (self.admit_per_s - lost / elapsed_s).max(0.0);
        let weight = elapsed_s / (elapsed_s + OUTFLOW_SMOOTHING_S);
        let before = self.achieved_while_waiting.unwrap_or(self.admit_per_s);
        self.achieved_while_waiting = Some(before + weight * (sample - before));
    }

    /// The ETA of a ticket with `ahead` people in front, by the front tier's rule
    /// (`Front::eta`): the admissions the controller has earned (its budget, a fraction of one
    /// included) count as done, the others take the expected rate (the target, or what was
    /// achieved while people waited when that was less).
    fn eta_s_for(&self, ahead: u64) -> u32 {
        let expected = self
            .achieved_while_waiting
            .map_or(self.admit_per_s, |a| a.min(self.admit_per_s))
            .max(1e-3);
        let after = ((ahead + 1) as f64 - self.admit_budget.max(0.0)).max(0.0);
        (after / expected).ceil() as u32
    }

    fn issued(&mut self, ticket: u64, at: TimestampMs) {
        debug_assert_eq!(
            ticket,
            self.tickets.len() as u64,
            "tickets are numbered in order"
        );
        let eta_s = self.eta_s_for(self.waiting);
        self.tickets.push(Ticket {
            issued_s: self.since_origin_s(at),
            eta_s,
            waiting: true,
        });
        self.waiting += 1;
    }

    fn admitted(&mut self, ticket: u64, at: TimestampMs, expires_at_ms: TimestampMs) {
        let now_s = self.since_origin_s(at);
        let Some(t) = self.tickets.get_mut(ticket as usize) else {
            return;
        };
        t.waiting = false;
        let (issued_s, eta_s) = (t.issued_s, t.eta_s);
        self.waiting -= 1;
        self.admitted += 1;
        let wait_s = now_s.saturating_sub(issued_s);
        self.waits.add(u64::from(wait_s));
        self.eta_errors.add(u64::from(wait_s.abs_diff(eta_s)));
        if wait_s >= ETA_RELATIVE_MIN_WAIT_S {
            let permille = u64::from(wait_s.abs_diff(eta_s)) * 1000 / u64::from(wait_s);
            self.eta_relative.add(permille);
        }
        if wait_s < eta_s {
            self.eta_over += 1;
        }
        if ticket % self.eta_stride == 0 {
            self.eta_samples.push((eta_s, wait_s));
        }
        let first_open = self.day_windows[0].0;
        if at < first_open + FIRST_NIGHT_MS {
            self.first_night_waits.add(u64::from(wait_s));
        }
        // An inversion: admitted after a ticket issued later than this one.
        match self.max_admitted {
            Some(max) if ticket < max => self.fcfs_inversions += 1,
            _ => self.max_admitted = Some(ticket),
        }
        self.live.push_back((expires_at_ms, ticket));
    }

    fn left(&mut self, ticket: u64) {
        if let Some(t) = self.tickets.get_mut(ticket as usize) {
            if t.waiting {
                t.waiting = false;
                self.waiting -= 1;
            }
        }
    }

    fn recorded(&mut self, share: Share, at: TimestampMs) {
        self.booked_total += 1;
        match share {
            Share::Day(d) => {
                self.booked_by_share[usize::from(d)] += 1;
                if d == 0 && at < self.day_windows[0].0 + FIRST_NIGHT_MS {
                    self.first_night_booked += 1;
                }
            }
            Share::Pool => self.booked_pool += 1,
        }
    }

    fn rejected(&mut self, code: &'static str) {
        *self.rejections.entry(code).or_default() += 1;
    }
}

/// A method's provider outages, as operators recorded them (`ProviderSwitched`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outages {
    pub count: u64,
    /// Milliseconds out, over the closed outages.
    pub out_ms: u64,
    #[serde(skip)]
    since_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator's controller at `rate` with people always waiting and room for every
    /// admission: whole admissions once its budget holds one.
    #[derive(Clone, Copy)]
    struct Controller {
        rate: f64,
        budget: f64,
    }

    impl Controller {
        /// One tick of a second: how many it admits.
        fn step(&mut self) -> u64 {
            self.budget = (self.budget + self.rate).min(self.rate.max(1.0) + 1.0);
            let admitted = self.budget.floor() as u64;
            self.budget -= admitted as f64;
            admitted
        }

        fn tick(&mut self, observer: &mut Observer) {
            self.step();
            observer.controller_tick(0.0, 1.0, self.budget);
        }

        /// Seconds until `ahead + 1` more are admitted, from now.
        fn wait_s(mut self, ahead: u64) -> u32 {
            let (mut waited, mut admitted) = (0, 0);
            while admitted <= ahead {
                admitted += self.step();
                waited += 1;
            }
            waited
        }
    }

    /// The ETA shown at every phase of the controller's cycle is the wait that follows, within
    /// a tick, at a few admissions a minute (the 3,000-person run's 0.103/s) as at a few a
    /// second (100,000 people's 3.43/s). The ticks between two whole admissions admit nobody
    /// yet achieve the rate (they earn the next admission), and the budget earned so far
    /// shortens the wait: counting those ticks as nothing achieved showed up to three times
    /// the wait in the queue, and a hundred times at the next opening after a quiet night.
    #[test]
    fn at_a_few_admissions_a_minute_or_a_second_the_eta_is_the_wait() {
        for rate in [0.125, 0.1028, 3.43] {
            let mut observer = Observer::new(&Campaign::default_2021(), rate, 3_000);
            observer.waiting = 1_000;
            let mut controller = Controller { rate, budget: 0.0 };
            for _ in 0..1_000 {
                controller.tick(&mut observer);
            }
            let ahead = (rate * 80.0).ceil() as u64;
            let mut off = Vec::new();
            for phase in 0..24 {
                let eta = observer.eta_s_for(ahead);
                let waited = controller.wait_s(ahead);
                if eta.abs_diff(waited) > 1 {
                    off.push((phase, eta, waited));
                }
                controller.tick(&mut observer);
            }
            assert!(off.is_empty(), "{rate}/s, (phase, ETA s, wait s): {off:?}");
        }
    }
}
