//! The admission controller: one loop beside the HTTP server that, every tick,
//! 1. at opening, draws the pre-queue with a fresh seed (logged, published at
//!    `/v1/queue/draws`, and recorded in the `PreQueueDrawn` event for auditors);
//! 2. skips waiting tickets whose owner has been silent longer than the heartbeat timeout;
//! 3. admits the next tickets in order at the outflow rate, never holding more than
//!    `admitted_live_max` unused live admissions (an admission that expires unused frees its
//!    place, so the next ticket moves up), and slowing down when the ledger's measured
//!    decision latency rises above the target;
//! 4. once the last booking day has closed, sends a `Tick` to every clinic that still shows
//!    day shares left over: the ledger moves them to the change window's pool at a clinic's
//!    first command after that instant, and without one the pool would read empty until the
//!    clinic happened to get a command;
//! 5. reports each verification method's congestion light (`ReportCongestion`) when it changes
//!    and at least every `congestion_report_ms`, so the log and the `congestion` read model
//!    record what people were shown;
//! 6. follows the operators' recorded admission control (`AdmissionsControlled`, in the view):
//!    while paused it admits nobody (the waiting room would admit nobody either), and a rate
//!    they set replaces `admit_per_s`; a restarted gateway reads it from the log it replays;
//! 7. samples the queue's length and the admissions for the operator page's graph
//!    (`samples.rs`);
//! 8. puts each identity provider in the state the operators last switched it to
//!    (`ProviderSwitched`, in the view), so that a provider marked down on another gateway,
//!    or before a restart, is down here too.
//!
//! Every decision it takes is a command to the ledger, so it is recorded; run one controller
//! per deployment (heartbeats are seen by the gateway that serves the polls).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::api::{AppState, Unexpected};
use super::congestion::{self, Level};
use sha2::{Digest, Sha256};
use yeyak_domain::waiting_room::ADMIT_TICKETS_MAX;
use yeyak_domain::{ClinicId, CommandBody, Event, Method, Permille, Share, TicketNo, TimestampMs};

/// How long the controller waits for one of its decisions (see `Backend::submit_within`).
pub const CONTROLLER_DECISION_TIMEOUT: Duration = Duration::from_secs(2);

/// The most silent tickets skipped in one tick.
pub const SKIPS_PER_TICK_MAX: usize = 1_000;

/// How long a clinic's release `Tick` is given to show in the view before it is sent again.
pub const RELEASE_TICK_RETRY: Duration = Duration::from_secs(10);

/// A fresh draw seed: 128 bits from a v7 UUID's random part and the time, hashed.
fn fresh_seed() -> String {
    let mut h = Sha256::new();
    h.update(uuid::Uuid::now_v7().as_bytes());
    h.update(uuid::Uuid::now_v7().as_bytes());
    hex::encode(&h.finalize()[..16])
}

pub async fn run(front: AppState) {
    let tick = Duration::from_millis(front.config.controller_tick_ms.max(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut budget = 0.0f64;
    let mut last = Instant::now();
    let mut ticked: HashMap<ClinicId, Instant> = HashMap::new();
    let mut reported: HashMap<Method, (Level, Instant)> = HashMap::new();
    loop {
        interval.tick().await;
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        release_day_shares(&front, &mut ticked);
        follow_provider_switches(&front);
        report_congestion(&front, &mut reported);
        if let Err(error) = step(&front, elapsed, &mut budget).await {
            tracing::warn!(%error, "the admission controller's step failed");
        }
    }
}

/// Step 8: the providers as the operators last switched them in the log, on any gateway.
fn follow_provider_switches(front: &AppState) {
    let switched = match front.backend.view().read() {
        Ok(view) => view.provider_outages.clone(),
        Err(_) => return,
    };
    crate::providers::follow_switches(&front.providers, &switched);
}

/// Step 4: a `Tick` for each clinic whose day shares still hold doses after the last booking
/// day closed. Sent on a task of its own, so that a slow answer cannot hold admissions up.
fn release_day_shares(front: &AppState, ticked: &mut HashMap<ClinicId, Instant>) {
    let now = front.clock.now_ms();
    if now < front.backend.campaign().release_at_ms() {
        return;
    }
    let due: Vec<ClinicId> = match front.backend.view().read() {
        Ok(view) => {
            let mut due: Vec<ClinicId> = view
                .model
                .slot_quota
                .iter()
                .filter(|((_, _, share), row)| {
                    matches!(share, Share::Day(_)) && row.remaining() > 0
                })
                .map(|((clinic, _, _), _)| clinic.clone())
                .collect();
            due.dedup();
            due
        }
        Err(_) => return,
    };
    ticked.retain(|_, at| at.elapsed() < RELEASE_TICK_RETRY);
    let due: Vec<ClinicId> = due
        .into_iter()
        .filter(|c| !ticked.contains_key(c))
        .collect();
    if due.is_empty() {
        return;
    }
    for clinic in &due {
        ticked.insert(clinic.clone(), Instant::now());
    }
    let front = front.clone();
    tokio::spawn(async move {
        for clinic in due {
            if let Err(error) = front
                .decide_within(CommandBody::Tick { clinic }, CONTROLLER_DECISION_TIMEOUT)
                .await
            {
                tracing::warn!(%error, "a release tick failed");
            }
        }
    });
}

/// Step 5: a `ReportCongestion` for each method whose light changed since its last report, or
/// whose last report is `congestion_report_ms` old. Sent on a task of its own, like step 4; a
/// report that fails is sent again at the next period.
fn report_congestion(front: &AppState, reported: &mut HashMap<Method, (Level, Instant)>) {
    let period = Duration::from_millis(front.config.congestion_report_ms);
    if period.is_zero() {
        return;
    }
    let t = front.thresholds();
    let mut due = Vec::new();
    for (method, provider) in &front.providers {
        let health = provider.health();
        let level = congestion::level(&health, &t);
        let stale = reported
            .get(method)
            .is_none_or(|(last, at)| *last != level || at.elapsed() >= period);
        if !stale {
            continue;
        }
        reported.insert(*method, (level, Instant::now()));
        let wait = congestion::expected_wait_ms(&health);
        due.push(CommandBody::ReportCongestion {
            gateway: front.config.gateway.clone(),
            method: *method,
            level,
            wait_ms: if wait.is_finite() && wait > 0.0 {
                wait.round() as u64
            } else {
                0
            },
            in_flight: health.in_flight,
            capacity: health.capacity,
            failure_permille: Permille::of_ratio(health.failure_ratio),
            provider_up: !health.outage,
        });
    }
    if due.is_empty() {
        return;
    }
    let front = front.clone();
    tokio::spawn(async move {
        for report in due {
            if let Err(error) = front
                .decide_within(report, CONTROLLER_DECISION_TIMEOUT)
                .await
            {
                tracing::warn!(%error, "a congestion report failed");
            }
        }
    });
}

/// Steps 1 to 3, once per tick.
async fn step(front: &AppState, elapsed_s: f64, budget: &mut f64) -> Result<(), Unexpected> {
    let now = front.clock.now_ms();
    let opened = front.config.opens_at_ms.is_none_or(|o| now >= o);
    let queue = Queue::look(front, now)?;
    if let Ok(mut samples) = front.samples.lock() {
        samples.observe(now, queue.waiting as u64, queue.admitted_total);
    }
    if opened && queue.pre_queue > 0 {
        draw(front, queue.pre_queue).await?;
    }
    skip(front, &queue.silent).await?;
    let rate = outflow_rate(front, queue.set_rate_per_s);
    if !opened || queue.paused {
        *budget = 0.0;
        publish_budget(front, 0.0);
        return Ok(());
    }
    // At most a second's worth at once, and the admission being earned: no burst after a
    // quiet spell, and no fraction of an admission lost at every tick (capped at a second's
    // worth, 3.43 a second admitted 3).
    let earned = *budget + rate * elapsed_s;
    *budget = earned.min(rate.max(1.0) + 1.0);
    let allowed = (budget.floor() as usize).min(queue.waiting);
    let saved = *budget;
    let admitted = admit(front, budget, &queue).await?;
    // Only a tick that left people waiting says what the outflow can be: one that admitted
    // everyone was held back by arrivals, not by the controller.
    if queue.waiting > admitted {
        let lost = if admitted < allowed {
            earned - saved
        } else {
            0.0
        };
        observe_outflow(front, lost, elapsed_s, rate);
    }
    publish_budget(front, *budget);
    Ok(())
}

/// What the next tick may admit at once, for the ETAs.
fn publish_budget(front: &AppState, budget: f64) {
    if let Ok(mut published) = front.admit_budget.lock() {
        *published = budget;
    }
}

/// How long the achieved outflow is smoothed over.
const OUTFLOW_SMOOTHING_S: f64 = 5.0;

/// What a tick achieved (tickets/s): the rate, less the budget it threw away while the cap on
/// live admissions held people back (`lost`: it admitted fewer than its budget allowed, and
/// the budget was full). Not the tick's admissions: at a few admissions a minute most ticks
/// admit nobody while they earn the next admission, and counting them as nothing achieved
/// (while the ticks that emptied the queue were not counted at all) measured a tenth of the
/// rate, ETAs of an hour for a wait of a minute.
fn achieved_per_s(rate: f64, lost: f64, elapsed_s: f64) -> f64 {
    (rate - lost / elapsed_s).max(0.0)
}

/// The achieved outflow smoothed over [`OUTFLOW_SMOOTHING_S`] (an exponential average,
/// starting from the target `rate`), with a tick's `sample` folded in.
fn smoothed_outflow(before: Option<f64>, sample: f64, elapsed_s: f64, rate: f64) -> f64 {
    let weight = elapsed_s / (elapsed_s + OUTFLOW_SMOOTHING_S);
    let before = before.unwrap_or(rate);
    before + weight * (sample - before)
}

/// Folds a tick that left people waiting into the achieved outflow: the budget it `lost`.
fn observe_outflow(front: &AppState, lost: f64, elapsed_s: f64, rate: f64) {
    if elapsed_s <= 0.0 {
        return;
    }
    let sample = achieved_per_s(rate, lost, elapsed_s);
    if let Ok(mut observed) = front.admitted_while_waiting.lock() {
        *observed = Some(smoothed_outflow(*observed, sample, elapsed_s, rate));
    }
}

/// What a step needs of the waiting room, read in one look at the view.
struct Queue {
    pre_queue: usize,
    /// Waiting tickets whose owner has not polled this gateway within the heartbeat timeout.
    silent: Vec<TicketNo>,
    waiting: usize,
    /// Admissions granted, not used and not expired.
    live: usize,
    admitted_total: u64,
    /// An operator paused admissions (the latest `AdmissionsControlled`).
    paused: bool,
    /// The rate an operator set (tickets/s), instead of the configured one.
    set_rate_per_s: Option<f64>,
}

impl Queue {
    fn look(front: &AppState, now: TimestampMs) -> Result<Queue, Unexpected> {
        let view = front
            .backend
            .view()
            .read()
            .map_err(|_| Unexpected::ViewUnavailable)?;
        let timeout = Duration::from_millis(front.config.heartbeat_timeout_ms);
        let mut beats = front
            .heartbeats
            .lock()
            .map_err(|_| Unexpected::HeartbeatsUnavailable)?;
        // Tickets this gateway has not seen yet start their clock now.
        for ticket in view.waiting.keys() {
            beats.entry(*ticket).or_insert_with(Instant::now);
        }
        beats.retain(|t, _| view.waiting.contains_key(t));
        let silent: Vec<TicketNo> = beats
            .iter()
            .filter(|(_, at)| at.elapsed() > timeout)
            .map(|(t, _)| *t)
            .take(SKIPS_PER_TICK_MAX)
            .collect();
        let control = view.admission_control.as_ref().map(|(c, _)| c);
        Ok(Queue {
            pre_queue: view.pre_queue.len(),
            silent,
            waiting: view.waiting.len(),
            live: view.admitted_live(now),
            admitted_total: view.admitted_total,
            paused: control.is_some_and(|c| c.paused),
            set_rate_per_s: control.and_then(|c| c.admit_per_min).map(|r| r.per_s()),
        })
    }
}

/// Step 1: the pre-queue's draw, with a fresh seed that is logged and recorded.
async fn draw(front: &AppState, people: usize) -> Result<(), Unexpected> {
    let seed = fresh_seed();
    tracing::info!(%seed, people, "drawing the pre-queue");
    eprintln!("yeyak serve: pre-queue draw of {people} people with seed {seed}");
    let draw = CommandBody::DrawPreQueue { seed };
    front
        .decide_within(draw, CONTROLLER_DECISION_TIMEOUT)
        .await?;
    Ok(())
}

/// Step 2: skip the silent tickets.
async fn skip(front: &AppState, silent: &[TicketNo]) -> Result<(), Unexpected> {
    for &ticket in silent {
        let skip = CommandBody::SkipTicket { ticket };
        front
            .decide_within(skip, CONTROLLER_DECISION_TIMEOUT)
            .await?;
        if let Ok(mut beats) = front.heartbeats.lock() {
            beats.remove(&ticket);
        }
    }
    Ok(())
}

/// The outflow rate (the one an operator set, else the configured one), scaled down while the
/// ledger answers slower than the target; published for the ETAs.
fn outflow_rate(front: &AppState, set_per_s: Option<f64>) -> f64 {
    let configured = set_per_s.unwrap_or(front.config.admit_per_s);
    let rate = match front.metrics.decision_ewma_ms() {
        Some(ms) if ms > front.config.target_decision_ms => {
            configured * (front.config.target_decision_ms / ms).clamp(0.25, 1.0)
        }
        _ => configured,
    };
    if let Ok(mut r) = front.admit_rate.lock() {
        *r = rate;
    }
    rate
}

/// Step 3: admit as many waiting tickets as the budget and the room for live admissions allow;
/// the budget pays for those actually admitted. Answers how many were admitted.
async fn admit(front: &AppState, budget: &mut f64, queue: &Queue) -> Result<usize, Unexpected> {
    let room = (front.config.admitted_live_max as usize).saturating_sub(queue.live);
    let admit = (budget.floor() as usize).min(room).min(queue.waiting);
    if admit == 0 {
        return Ok(0);
    }
    let admit_command = CommandBody::Admit {
        tickets_max: admit.min(ADMIT_TICKETS_MAX as usize) as u32,
        ttl_ms: front.config.admission_ttl_ms,
    };
    let outcome = front
        .decide_within(admit_command, CONTROLLER_DECISION_TIMEOUT)
        .await?;
    let admitted = outcome
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::TicketAdmitted(_)))
        .count();
    *budget -= admitted as f64;
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The controller's tick as `step` takes it, with people always waiting and `room` for
    /// live admissions: (admitted, lost).
    fn tick(budget: &mut f64, rate: f64, room: usize) -> (usize, f64) {
        let earned = *budget + rate;
        *budget = earned.min(rate.max(1.0) + 1.0);
        let allowed = budget.floor() as usize;
        let admitted = allowed.min(room);
        let lost = if admitted < allowed {
            earned - *budget
        } else {
            0.0
        };
        *budget -= admitted as f64;
        (admitted, lost)
    }

    /// At a few admissions a minute the controller admits one person every eight ticks: the
    /// seven ticks between admit nobody, yet they earn the next admission, so what it achieves
    /// while people wait is its rate; and at 3.43 a second it admits 3.43 a second, not 3.
    #[test]
    fn whole_admissions_achieve_the_rate() {
        for rate in [0.125, 0.1028, 3.43] {
            let (mut budget, mut achieved, mut admitted) = (0.0, None, 0);
            for tick_no in 1..=1_000 {
                let (granted, lost) = tick(&mut budget, rate, usize::MAX);
                admitted += granted;
                let sample = achieved_per_s(rate, lost, 1.0);
                let smoothed = smoothed_outflow(achieved, sample, 1.0, rate);
                achieved = Some(smoothed);
                assert!(
                    (smoothed - rate).abs() < 1e-9,
                    "tick {tick_no}: {smoothed}/s"
                );
            }
            let per_s = admitted as f64 / 1_000.0;
            assert!(
                (per_s - rate).abs() < 2e-3,
                "{per_s}/s admitted for {rate}/s"
            );
        }
    }

    /// The cap on live admissions holds the budget full: what it cannot spend is lost, and the
    /// achieved outflow falls with it.
    #[test]
    fn a_budget_held_full_by_the_cap_achieves_nothing() {
        let (rate, mut budget) = (3.43, 4.43);
        let (admitted, lost) = tick(&mut budget, rate, 0);
        assert_eq!(admitted, 0);
        assert!(achieved_per_s(rate, lost, 1.0) < 1e-9, "{lost} lost");
    }
}
