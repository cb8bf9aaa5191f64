//! `yeyak rebalance`: a batch job that moves unused vaccine volume to where it can still be
//! used, without ever racing a booking.
//!
//! It reads the slot-quota projection (rows of `slot_quota`, `clinics`, `reservations`), plans
//! moves, and applies each as a command to the clinic writer that owns the doses: the clinic
//! decides it against its true state (a move of doses booked meanwhile is refused with
//! `insufficient_doses`), so the plan can be stale but never wrong.
//!
//! Policies, in the order they are planned:
//! 1. **release** (the ten booking days are over): every unused day share goes to the change
//!    window's pool. The ledger does this itself at the first command a clinic gets after the
//!    last booking day closes (`SharesReleased`); the job sends that command (`Tick`) to every
//!    clinic whose day shares still hold doses, so the pool is there when the window opens.
//! 2. **close** (`--close-clinic`): a closing clinic's unbooked doses move to the other clinics of
//!    its region (same date, same share, so a booking day keeps what it is owed), split by
//!    their demand (bookings + 1). Its reservations are never moved: they are listed.
//! 3. **demand** (`--demand`): within a region, for each date and share still bookable, the
//!    unbooked doses are spread in proportion to each clinic's bookings, so no clinic runs out
//!    while another sits on doses.
//!
//! Idempotent and resumable: a move's command id is derived from the move and the capacity of
//! its source as planned, so a move re-sent after a crash (planned again from a projection that
//! had not seen it yet) has the same id and the ledger answers it without deciding it again; a
//! plan made after the moves landed finds nothing left to move.
//!
//! Architecture invariant: a rebalance moves doses only through commands that the clinic writers
//! decide ([`apply`] over `yeyak_ledger::submit::Submit`); it never writes the log or a read
//! model itself, so a stale plan can be refused but never be wrong.

pub mod cli;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use uuid::Uuid;
use yeyak_domain::command::Slot;
use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{
    Campaign, ClinicId, Command, CommandBody, Envelope, Event, OperatorId, Share, TimestampMs,
    VaccinationDate,
};
use yeyak_ledger::submit::{EventSink, Submit, SubmitError};
use yeyak_read::projection::{QuotaRow, ReadModel, ReservationState};

/// What to plan.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The instant of the run (the commands carry it).
    pub at_ms: TimestampMs,
    pub close: BTreeSet<ClinicId>,
    pub demand: bool,
    /// Demand moves smaller than this are not worth a command.
    pub min_move: u32,
}

/// One planned move of unbooked doses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// `release`, `close` or `demand`.
    pub policy: &'static str,
    pub region: String,
    pub from: Slot,
    pub to: Slot,
    pub doses: u32,
    /// The source share's capacity the move was planned against (part of its command id).
    pub from_capacity: i64,
}

fn slot_text(slot: &Slot) -> String {
    format!("{}/{}/{}", slot.clinic, slot.date, slot.share)
}

impl Move {
    /// The command that carries this move out. Its id depends only on the move and the state
    /// it was planned against: re-sent, it is deduplicated by the ledger.
    /// The operator is recorded with the move, not part of its id: a run finished by another
    /// operator re-sends the same command.
    pub fn command(&self, at_ms: TimestampMs, operator: Option<&OperatorId>) -> Command {
        let (seed, body) = if self.policy == "release" {
            // One release per clinic, ever: the ledger's own `SharesReleased`.
            (
                format!("rebalance/v1/release/{}", self.from.clinic),
                CommandBody::Tick {
                    clinic: self.from.clinic.clone(),
                },
            )
        } else {
            (
                format!(
                    "rebalance/v1/{}/{}/{}/{}/capacity={}",
                    self.policy,
                    slot_text(&self.from),
                    slot_text(&self.to),
                    self.doses,
                    self.from_capacity
                ),
                CommandBody::Rebalance {
                    from: self.from.clone(),
                    to: self.to.clone(),
                    doses: self.doses,
                    operator: operator.cloned(),
                },
            )
        };
        Command {
            command_id: command_id_from(&seed),
            at_ms,
            body,
        }
    }
}

/// A reservation at a closing clinic: not moved, listed for follow-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUp {
    pub clinic: ClinicId,
    pub reservation: String,
    pub subject: String,
    pub date: VaccinationDate,
}

/// The plan: moves, what cannot be placed, reservations to follow up, and the quotas before
/// and after (as planned).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub moves: Vec<Move>,
    /// Doses of a closing clinic with no other clinic in its region to go to.
    pub unplaced: Vec<(Slot, u32)>,
    pub follow_ups: Vec<FollowUp>,
    #[serde(skip)]
    pub before: BTreeMap<(ClinicId, VaccinationDate, Share), QuotaRow>,
    #[serde(skip)]
    pub after: BTreeMap<(ClinicId, VaccinationDate, Share), QuotaRow>,
    #[serde(skip)]
    pub regions: BTreeMap<ClinicId, String>,
}

/// Splits `total` over `weights` in proportion, largest remainder first (ties: lower index).
fn split(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum <= 0 || weights.is_empty() {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<i64> = weights.iter().map(|w| total * w / sum).collect();
    let mut left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse((total * weights[i]) % sum), i));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

type Quotas = BTreeMap<(ClinicId, VaccinationDate, Share), QuotaRow>;

/// Plans the moves for `policy` from the read model's rows: the release, then the closing
/// clinics, then demand, each planned against the quotas the ones before left. Pure.
pub fn plan(model: &ReadModel, campaign: &Campaign, policy: &Policy) -> Plan {
    let regions: BTreeMap<ClinicId, String> = model
        .clinics
        .iter()
        .map(|(id, c)| (id.clone(), c.region.clone()))
        .collect();
    let mut planner = Planner {
        regions,
        quotas: model.slot_quota.clone(),
        moves: Vec::new(),
        unplaced: Vec::new(),
    };
    if policy.at_ms >= campaign.release_at_ms() {
        planner.release();
    }
    for closing in &policy.close {
        planner.close(closing, policy);
    }
    if policy.demand {
        planner.demand(campaign, policy);
    }
    Plan {
        moves: planner.moves,
        unplaced: planner.unplaced,
        follow_ups: follow_ups(model, policy),
        before: model.slot_quota.clone(),
        after: planner.quotas,
        regions: planner.regions,
    }
}

/// The quotas as the moves planned so far leave them.
struct Planner {
    regions: BTreeMap<ClinicId, String>,
    quotas: Quotas,
    moves: Vec<Move>,
    unplaced: Vec<(Slot, u32)>,
}

impl Planner {
    fn region_of(&self, clinic: &ClinicId) -> String {
        self.regions.get(clinic).cloned().unwrap_or_default()
    }

    /// Plans a move and applies it to the quotas.
    fn take(&mut self, m: Move) {
        let from = self
            .quotas
            .entry((m.from.clinic.clone(), m.from.date, m.from.share))
            .or_default();
        from.capacity -= i64::from(m.doses);
        self.quotas
            .entry((m.to.clinic.clone(), m.to.date, m.to.share))
            .or_default()
            .capacity += i64::from(m.doses);
        self.moves.push(m);
    }

    /// Policy 1, release: the booking days are over, every day share's leftover to the pool.
    fn release(&mut self) {
        let leftovers: Vec<_> = self
            .quotas
            .iter()
            .filter(|((_, _, share), q)| matches!(share, Share::Day(_)) && q.remaining() > 0)
            .map(|(k, q)| (k.clone(), *q))
            .collect();
        for ((clinic, date, share), q) in leftovers {
            let m = Move {
                policy: "release",
                region: self.region_of(&clinic),
                from: Slot {
                    clinic: clinic.clone(),
                    date,
                    share,
                },
                to: Slot {
                    clinic,
                    date,
                    share: Share::Pool,
                },
                doses: q.remaining() as u32,
                from_capacity: q.capacity,
            };
            self.take(m);
        }
    }

    /// Policy 2, close: a closing clinic's unbooked doses to the rest of its region, by demand
    /// (bookings plus one), same date and share.
    fn close(&mut self, closing: &ClinicId, policy: &Policy) {
        let region = self.region_of(closing);
        let receivers: Vec<ClinicId> = self
            .regions
            .iter()
            .filter(|(c, r)| **r == region && !policy.close.contains(*c))
            .map(|(c, _)| c.clone())
            .collect();
        let slots: Vec<_> = self
            .quotas
            .iter()
            .filter(|((c, _, _), q)| c == closing && q.remaining() > 0)
            .map(|(k, q)| (k.clone(), *q))
            .collect();
        for ((clinic, date, share), q) in slots {
            let from = Slot {
                clinic,
                date,
                share,
            };
            if receivers.is_empty() {
                self.unplaced.push((from, q.remaining() as u32));
                continue;
            }
            let weights: Vec<i64> = receivers
                .iter()
                .map(|r| {
                    self.quotas
                        .get(&(r.clone(), date, share))
                        .map_or(0, |row| row.booked)
                        + 1
                })
                .collect();
            for (receiver, doses) in receivers.iter().zip(split(q.remaining(), &weights)) {
                if doses > 0 {
                    let m = Move {
                        policy: "close",
                        region: region.clone(),
                        from: from.clone(),
                        to: Slot {
                            clinic: receiver.clone(),
                            date,
                            share,
                        },
                        doses: doses as u32,
                        from_capacity: q.capacity,
                    };
                    self.take(m);
                }
            }
        }
    }

    /// Policy 3, demand: within each region, date and live share, unbooked doses in
    /// proportion to bookings.
    fn demand(&mut self, campaign: &Campaign, policy: &Policy) {
        let live = |share: Share| match share {
            Share::Pool => true,
            Share::Day(d) => campaign
                .booking_days
                .get(usize::from(d))
                .is_some_and(|day| {
                    policy.at_ms < day.window.closes_at_ms
                        && policy.at_ms < campaign.release_at_ms()
                }),
        };
        let mut groups: BTreeMap<(String, VaccinationDate, Share), Vec<ClinicId>> = BTreeMap::new();
        for (clinic, date, share) in self.quotas.keys() {
            if !policy.close.contains(clinic) && live(*share) {
                groups
                    .entry((self.region_of(clinic), *date, *share))
                    .or_default()
                    .push(clinic.clone());
            }
        }
        for ((region, date, share), clinics) in groups {
            self.balance(&region, date, share, &clinics, policy.min_move);
        }
    }

    /// Moves doses from the clinics above their fair part of a group to those below it.
    fn balance(
        &mut self,
        region: &str,
        date: VaccinationDate,
        share: Share,
        clinics: &[ClinicId],
        min_move: u32,
    ) {
        let rows: Vec<QuotaRow> = clinics
            .iter()
            .map(|c| self.quotas[&(c.clone(), date, share)])
            .collect();
        let unbooked: i64 = rows.iter().map(|r| r.remaining().max(0)).sum();
        let booked: Vec<i64> = rows.iter().map(|r| r.booked.max(0)).collect();
        if clinics.len() < 2 || booked.iter().sum::<i64>() == 0 {
            return;
        }
        let targets = split(unbooked, &booked);
        let least = i64::from(min_move.max(1));
        let mut surplus: Vec<(usize, i64)> = Vec::new();
        let mut deficit: Vec<(usize, i64)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let d = row.remaining().max(0) - targets[i];
            if d >= least {
                surplus.push((i, d));
            } else if -d >= least {
                deficit.push((i, -d));
            }
        }
        let (mut s, mut r) = (0, 0);
        while s < surplus.len() && r < deficit.len() {
            let doses = surplus[s].1.min(deficit[r].1);
            let (from, to) = (surplus[s].0, deficit[r].0);
            let slot = |i: usize| Slot {
                clinic: clinics[i].clone(),
                date,
                share,
            };
            self.take(Move {
                policy: "demand",
                region: region.to_owned(),
                from: slot(from),
                to: slot(to),
                doses: doses as u32,
                from_capacity: rows[from].capacity,
            });
            surplus[s].1 -= doses;
            deficit[r].1 -= doses;
            if surplus[s].1 == 0 {
                s += 1;
            }
            if deficit[r].1 == 0 {
                r += 1;
            }
        }
    }
}

/// The active reservations at closing clinics: never moved, listed for follow-up.
fn follow_ups(model: &ReadModel, policy: &Policy) -> Vec<FollowUp> {
    model
        .reservations
        .iter()
        .filter(|(_, row)| {
            row.state == ReservationState::Active && policy.close.contains(&row.clinic)
        })
        .map(|(id, row)| FollowUp {
            clinic: row.clinic.clone(),
            reservation: id.to_string(),
            subject: row.subject.to_hex(),
            date: row.date,
        })
        .collect()
}

impl Plan {
    pub fn doses_moved(&self) -> u64 {
        self.moves.iter().map(|m| u64::from(m.doses)).sum()
    }

    /// The plan, one line per move, then a table per region (unbooked doses before and after).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "plan: {} moves, {} doses",
            self.moves.len(),
            self.doses_moved()
        ));
        for m in &self.moves {
            line(format!(
                "  {:<8} {:<10} {:<32} -> {:<32} {:>7} doses",
                m.policy,
                m.region,
                slot_text(&m.from),
                slot_text(&m.to),
                m.doses
            ));
        }
        for (slot, doses) in &self.unplaced {
            line(format!(
                "  UNPLACED {} {doses} doses: no other clinic in its region",
                slot_text(slot)
            ));
        }
        if !self.follow_ups.is_empty() {
            line(format!(
                "reservations at closing clinics, for follow-up (not moved): {}",
                self.follow_ups.len()
            ));
            for f in &self.follow_ups {
                line(format!(
                    "  {} {} {} subject {}",
                    f.clinic, f.date, f.reservation, f.subject
                ));
            }
        }
        let mut by_region: BTreeMap<&str, Vec<&ClinicId>> = BTreeMap::new();
        for (clinic, region) in &self.regions {
            by_region.entry(region.as_str()).or_default().push(clinic);
        }
        let sum = |rows: &BTreeMap<(ClinicId, VaccinationDate, Share), QuotaRow>, c: &ClinicId| {
            rows.iter()
                .filter(|((k, _, _), _)| k == c)
                .fold((0i64, 0i64), |(cap, b), (_, q)| {
                    (cap + q.capacity, b + q.booked)
                })
        };
        for (region, clinics) in by_region {
            line(format!("\nregion {region}"));
            line(format!(
                "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>9}  unbooked after",
                "clinic", "capacity", "booked", "unbooked", "moved", "after"
            ));
            let most = clinics
                .iter()
                .map(|c| sum(&self.after, c))
                .map(|(cap, b)| cap - b)
                .max()
                .unwrap_or(0)
                .max(1);
            for c in clinics {
                let (cap, booked) = sum(&self.before, c);
                let (cap_after, _) = sum(&self.after, c);
                let after = cap_after - booked;
                let bar = "#".repeat(((after.max(0) * 20) / most) as usize);
                line(format!(
                    "  {:<16} {:>9} {:>9} {:>9} {:>+9} {:>9}  {bar}",
                    c.as_str(),
                    cap,
                    booked,
                    cap - booked,
                    cap_after - cap,
                    after
                ));
            }
        }
        out
    }
}

/// What happened to one move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    /// The clinic moved the doses (or, for a transfer, the receiver got them).
    Moved,
    /// This very move was decided before (a re-run after a crash): nothing moved again.
    AlreadyApplied,
    /// The clinic refused it (e.g. `insufficient_doses`: booked meanwhile); nothing moved.
    Refused(String),
    /// The receiving clinic refused the transfer; the doses went back.
    Returned(String),
}

/// How a move's outcome reads.
pub fn judge(outcome: &Outcome) -> Applied {
    if let Some(rejection) = outcome.rejection {
        return Applied::Refused(rejection.code.as_str().to_owned());
    }
    for e in &outcome.events {
        if let Event::TransferRefused(t) = &e.event {
            return Applied::Returned(t.code.as_str().to_owned());
        }
    }
    Applied::Moved
}

#[derive(Debug, thiserror::Error)]
pub enum RebalanceError {
    #[error(transparent)]
    Audit(#[from] yeyak_read::audit::AuditError),
    #[error("the ledger failed")]
    Ledger(#[from] yeyak_ledger::LedgerError),
    #[error("a move was not decided (on Kafka: is a processor running?)")]
    Submit(#[from] SubmitError),
    #[error("cannot write the report")]
    Output(#[source] std::io::Error),
    #[error("--operator is 1 to 64 of [A-Za-z0-9._:-], no resident number")]
    InvalidOperator,
    #[error("the campaign file is refused")]
    CampaignFile(#[from] yeyak_log::CampaignFileError),
}

/// The commands of a plan, in order, one per move (one `Tick` per clinic for the release).
pub fn commands(
    plan: &Plan,
    at_ms: TimestampMs,
    operator: Option<&OperatorId>,
) -> Vec<(usize, Command)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, m) in plan.moves.iter().enumerate() {
        let command = m.command(at_ms, operator);
        if seen.insert(command.command_id) {
            out.push((i, command));
        }
    }
    out
}

/// What the ledger has decided so far, as the rebalance needs it: the slot quotas (to plan
/// from, unless they come from PostgreSQL) and the command ids answered (a move decided before
/// is not sent again). Fed by the [`Submit`] the moves go through, so plan and apply see the
/// same log.
pub struct Observed {
    /// `None` when the quotas are read elsewhere: then no event is folded for nothing.
    model: Option<Mutex<ReadModel>>,
    decided: Mutex<HashSet<Uuid>>,
}

impl Default for Observed {
    /// Folds the slot quotas and keeps the decided command ids.
    fn default() -> Observed {
        Observed {
            model: Some(Mutex::new(ReadModel::new())),
            decided: Mutex::new(HashSet::new()),
        }
    }
}

impl Observed {
    /// Keeps the decided command ids only (the quotas come from PostgreSQL).
    pub fn decided_only() -> Observed {
        Observed {
            model: None,
            decided: Mutex::new(HashSet::new()),
        }
    }

    /// The slot quotas as folded so far; `None` for [`Observed::decided_only`].
    pub fn model(&self) -> Option<ReadModel> {
        let model = self.model.as_ref()?;
        Some(model.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    pub fn decided(&self, command_id: Uuid) -> bool {
        self.decided
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&command_id)
    }
}

impl EventSink for Observed {
    fn record(&self, events: &[Envelope]) {
        if let Some(model) = &self.model {
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            events.iter().for_each(|e| model.apply(e));
        }
        let mut decided = self.decided.lock().unwrap_or_else(PoisonError::into_inner);
        decided.extend(events.iter().map(|e| e.command_id));
    }
}

/// Applies the first `limit` commands of a plan through `ledger` (the embedded ledger, or the
/// Kafka pipeline with processors running), one at a time, each awaited before the next.
/// `observed` must be the sink `ledger` feeds, caught up: a move it has seen decided is
/// reported `AlreadyApplied` and not sent. `operator` is recorded with every move.
pub fn apply(
    ledger: &dyn Submit,
    observed: &Observed,
    plan: &Plan,
    (at_ms, operator): (TimestampMs, Option<&OperatorId>),
    limit: Option<usize>,
    out: &mut dyn Write,
) -> Result<Vec<(usize, Applied)>, RebalanceError> {
    let mut results = Vec::new();
    for (i, command) in commands(plan, at_ms, operator)
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
    {
        let applied = if observed.decided(command.command_id) {
            Applied::AlreadyApplied
        } else {
            judge(&ledger.submit(command)?)
        };
        let m = &plan.moves[i];
        writeln!(
            out,
            "  {:<8} {} -> {}: {applied:?}",
            m.policy,
            slot_text(&m.from),
            slot_text(&m.to)
        )
        .map_err(RebalanceError::Output)?;
        results.push((i, applied));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_proportional_exact_and_deterministic() {
        assert_eq!(split(10, &[1, 1]), vec![5, 5]);
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(7, &[3, 0, 1]), vec![5, 0, 2]);
        assert_eq!(split(5, &[0, 0]), vec![0, 0]);
        for total in 0..50 {
            assert_eq!(split(total, &[3, 5, 7]).iter().sum::<i64>(), total);
        }
    }

    #[test]
    fn a_move_carries_its_operator_and_keeps_its_id_whoever_sends_it() {
        let slot = |share| Slot {
            clinic: ClinicId::new("c1").unwrap(),
            date: "2021-08-30".parse().unwrap(),
            share,
        };
        let m = Move {
            policy: "demand",
            region: "seoul".into(),
            from: slot(Share::Pool),
            to: slot(Share::Day(0)),
            doses: 3,
            from_capacity: 10,
        };
        let alice = OperatorId::new("alice").unwrap();
        let by_alice = m.command(0, Some(&alice));
        let by_nobody = m.command(0, None);
        assert_eq!(by_alice.command_id, by_nobody.command_id);
        assert!(matches!(
            by_alice.body,
            CommandBody::Rebalance { operator: Some(ref o), .. } if *o == alice
        ));
    }
}
