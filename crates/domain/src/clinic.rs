//! A clinic's partition: its doses per vaccination date, split into one share per booking day
//! plus the change window's pool, and the reservations holding them. Keyed by clinic id.
//!
//! Enforced here: no share is ever overbooked; a booking draws only on its booking day's share
//! (or the pool in the change window); the day shares left over are released to the pool once,
//! by the ledger itself, when the last booking day closes; every other move of doses is an
//! explicit event, and doses are conserved.

use std::collections::BTreeMap;

use super::calendar::Campaign;
use super::command::{CommandBody, Slot, Target};
use super::event::*;
use super::ids::derive_uuid;
use super::subject::Context;
use super::table::Table;
use super::{
    ClinicId, Event, OperatorId, Rejection, RejectionCode, ReservationId, Share, SubjectId,
    TransferId, VaccinationDate,
};

/// The most doses one registration or move may carry: a bound against typos.
pub const DOSES_PER_COMMAND_MAX: u32 = 1_000_000;

/// Capacity and bookings of one share. `booked <= capacity` always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub capacity: u32,
    pub booked: u32,
}

impl Quota {
    pub fn remaining(&self) -> u32 {
        self.capacity - self.booked
    }
}

/// One vaccination date's doses at a clinic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateSupply {
    /// One per booking day, in calendar order.
    pub days: Vec<Quota>,
    pub pool: Quota,
}

impl DateSupply {
    fn new(share_count: usize) -> DateSupply {
        DateSupply {
            days: vec![Quota::default(); share_count],
            pool: Quota::default(),
        }
    }

    pub fn quota(&self, share: Share) -> Option<&Quota> {
        match share {
            Share::Day(d) => self.days.get(usize::from(d)),
            Share::Pool => Some(&self.pool),
        }
    }

    fn quota_mut(&mut self, share: Share) -> Option<&mut Quota> {
        match share {
            Share::Day(d) => self.days.get_mut(usize::from(d)),
            Share::Pool => Some(&mut self.pool),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.days
            .iter()
            .chain(std::iter::once(&self.pool))
            .map(|q| u64::from(q.capacity))
            .sum()
    }

    pub fn booked(&self) -> u64 {
        self.days
            .iter()
            .chain(std::iter::once(&self.pool))
            .map(|q| u64::from(q.booked))
            .sum()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub region: String,
    pub address: Option<String>,
}

/// The audit's digest of the domain's state prints profiles with `Debug`: a clinic without an
/// address prints as it did before addresses, so an old log keeps its digest.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Profile");
        d.field("name", &self.name).field("region", &self.region);
        if let Some(address) = &self.address {
            d.field("address", address);
        }
        d.finish()
    }
}

impl Profile {
    /// Whether a later supply's naming of the clinic agrees with this registration.
    fn agrees_with(&self, other: &Profile) -> bool {
        self.name == other.name
            && self.region == other.region
            && (other.address.is_none() || other.address == self.address)
    }
}

/// A reservation as the clinic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub subject: SubjectId,
    pub date: VaccinationDate,
    pub share: Share,
}

/// Everything one clinic's partition knows. In memory only; never serialized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClinicState {
    pub profile: Option<Profile>,
    pub dates: BTreeMap<VaccinationDate, DateSupply>,
    /// The reservations held (a [`Table`]: one entry per reservation).
    pub held: Table<ReservationId, Held>,
    /// The day shares have been released to the pool.
    pub released: bool,
    /// How many booking days (day shares) each date is split into; set at registration.
    pub share_count: usize,
}

/// The leftover of every day share, to be moved to the pool.
fn release_event(clinic: &ClinicId, state: &ClinicState) -> SharesReleased {
    let mut releases = Vec::new();
    for (date, supply) in &state.dates {
        for (day, quota) in supply.days.iter().enumerate() {
            if quota.remaining() > 0 {
                releases.push(ShareRelease {
                    date: *date,
                    day: day as u8,
                    doses: quota.remaining(),
                });
            }
        }
    }
    SharesReleased {
        clinic: clinic.clone(),
        releases,
    }
}

/// Decides a command of a clinic's partition. Pure. Before the command itself, a due release of
/// the day shares is decided, so it is recorded ahead of anything that happens after it.
pub fn decide(
    state: &ClinicState,
    command: &CommandBody,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    let Target::Clinic(clinic) = command.target() else {
        unreachable!(
            "command {} is not decided by a clinic's partition",
            command.name()
        )
    };
    let due =
        state.profile.is_some() && !state.released && ctx.now_ms >= ctx.campaign.release_at_ms();
    if !due {
        return decide_command(state, &clinic, command, ctx);
    }
    let release: Event = release_event(&clinic, state).into();
    let mut after = state.clone();
    apply(&mut after, &release);
    let mut events = vec![release];
    events.extend(decide_command(&after, &clinic, command, ctx)?);
    Ok(events)
}

fn check_doses(doses: u32) -> Result<(), Rejection> {
    if doses == 0 || doses > DOSES_PER_COMMAND_MAX {
        return Err(Rejection::new(RejectionCode::InvalidDoses));
    }
    Ok(())
}

/// The operator's name on the events that record what they did (supply and moves of doses).
fn signed(mut events: Vec<Event>, operator: &Option<OperatorId>) -> Vec<Event> {
    for event in &mut events {
        match event {
            Event::SupplyRegistered(e) => e.operator.clone_from(operator),
            Event::DosesMoved(e) => e.operator.clone_from(operator),
            Event::DosesWithdrawn(e) => e.operator.clone_from(operator),
            _ => {}
        }
    }
    events
}

fn decide_command(
    state: &ClinicState,
    clinic: &ClinicId,
    command: &CommandBody,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    match command {
        CommandBody::RegisterSupply {
            clinic,
            name,
            region,
            date,
            doses,
            address,
            operator,
        } => {
            let profile = Profile {
                name: name.clone(),
                region: region.clone(),
                address: address.clone(),
            };
            register_supply(state, clinic, ctx, profile, *date, *doses)
                .map(|events| signed(events, operator))
        }
        CommandBody::Tick { .. } => Ok(vec![]),
        CommandBody::HoldDose {
            reservation,
            subject,
            date,
            share,
            replaces,
            ..
        } => {
            let hold = Hold {
                reservation: *reservation,
                subject: *subject,
                date: *date,
                share: *share,
                replaces: *replaces,
            };
            Ok(hold_dose(state, clinic, &hold))
        }
        CommandBody::ReleaseDose { reservation, .. } => {
            Ok(release_dose(state, clinic, *reservation))
        }
        CommandBody::Rebalance {
            from,
            to,
            doses,
            operator,
        } => rebalance(state, clinic, ctx, from, to, *doses).map(|events| signed(events, operator)),
        CommandBody::DepositDoses {
            transfer,
            from,
            to,
            doses,
        } => Ok(vec![deposit_doses(
            state, clinic, *transfer, from, to, *doses,
        )]),
        CommandBody::ReturnDoses {
            transfer,
            from,
            doses,
            ..
        } => {
            let mut to = from.clone();
            if state.released {
                to.share = Share::Pool;
            }
            Ok(vec![
                DosesReturned {
                    clinic: clinic.clone(),
                    transfer: *transfer,
                    to,
                    doses: *doses,
                }
                .into(),
            ])
        }
        other => unreachable!(
            "command {} is not decided by a clinic's partition",
            other.name()
        ),
    }
}

/// Doses for a date, split evenly over the booking days still open (all to the pool once the
/// day shares are released); the clinic is registered by its first supply. A later supply that
/// names the clinic otherwise (another name, region, or an address it was not registered with)
/// is a conflict; one that gives no address agrees with any.
fn register_supply(
    state: &ClinicState,
    clinic: &ClinicId,
    ctx: &Context,
    profile: Profile,
    date: VaccinationDate,
    doses: u32,
) -> Result<Vec<Event>, Rejection> {
    let campaign = ctx.campaign;
    check_doses(doses)?;
    if !campaign.is_vaccination_date(date) {
        return Err(Rejection::new(RejectionCode::DateOutOfRange));
    }
    let mut events: Vec<Event> = Vec::new();
    match &state.profile {
        Some(p) if !p.agrees_with(&profile) => {
            return Err(Rejection::new(RejectionCode::ClinicConflict));
        }
        Some(_) => {}
        None => events.push(
            ClinicRegistered {
                clinic: clinic.clone(),
                name: profile.name,
                region: profile.region,
                booking_days: campaign.share_count() as u8,
                address: profile.address,
            }
            .into(),
        ),
    }
    let (mut day_shares, mut pool) = campaign.split_doses(doses, date, ctx.now_ms);
    if state.released {
        // After the release, everything belongs to the change window.
        pool = doses;
        day_shares = vec![0; day_shares.len()];
    }
    events.push(
        SupplyRegistered {
            clinic: clinic.clone(),
            date,
            doses,
            day_shares,
            pool,
            operator: None,
        }
        .into(),
    );
    Ok(events)
}

/// What a person's booking or change asks the clinic to hold.
struct Hold {
    reservation: ReservationId,
    subject: SubjectId,
    date: VaccinationDate,
    share: Share,
    replaces: Option<ReservationId>,
}

/// Holds a dose of the share, or refuses (as an event: the person's partition must hear it).
fn hold_dose(state: &ClinicState, clinic: &ClinicId, hold: &Hold) -> Vec<Event> {
    let refuse = |code| -> Vec<Event> {
        vec![
            BookingRefused {
                clinic: clinic.clone(),
                reservation: hold.reservation,
                subject: hold.subject,
                code,
            }
            .into(),
        ]
    };
    if state.held.contains_key(&hold.reservation) {
        return vec![]; // a redelivered hold: the dose is already held
    }
    if state.profile.is_none() {
        return refuse(RejectionCode::UnknownClinic);
    }
    let Some(supply) = state.dates.get(&hold.date) else {
        return refuse(RejectionCode::NoSupply);
    };
    // A day share that was already released lives on in the pool.
    let share = if state.released {
        Share::Pool
    } else {
        hold.share
    };
    match supply.quota(share) {
        Some(q) if q.remaining() > 0 => vec![
            ReservationConfirmed {
                clinic: clinic.clone(),
                reservation: hold.reservation,
                subject: hold.subject,
                date: hold.date,
                share,
                replaces: hold.replaces,
            }
            .into(),
        ],
        Some(_) => refuse(RejectionCode::SoldOut),
        None => refuse(RejectionCode::NoSupply),
    }
}

/// Gives a held dose back to its share; a release seen before gives nothing back twice.
fn release_dose(state: &ClinicState, clinic: &ClinicId, reservation: ReservationId) -> Vec<Event> {
    match state.held.get(&reservation) {
        Some(held) => vec![
            DoseReleased {
                clinic: clinic.clone(),
                reservation,
                date: held.date,
                from_share: held.share,
            }
            .into(),
        ],
        None => vec![],
    }
}

/// Moves unbooked doses within the clinic, or withdraws them for a transfer to another.
fn rebalance(
    state: &ClinicState,
    clinic: &ClinicId,
    ctx: &Context,
    from: &Slot,
    to: &Slot,
    doses: u32,
) -> Result<Vec<Event>, Rejection> {
    check_rebalance(state, ctx.campaign, from, to, doses)?;
    let event: Event = if to.clinic == *clinic {
        DosesMoved {
            clinic: clinic.clone(),
            from: from.clone(),
            to: to.clone(),
            doses,
            operator: None,
        }
        .into()
    } else {
        DosesWithdrawn {
            clinic: clinic.clone(),
            transfer: TransferId(derive_uuid(ctx.command_id, "transfer", ctx.now_ms)),
            from: from.clone(),
            to: to.clone(),
            doses,
            operator: None,
        }
        .into()
    };
    Ok(vec![event])
}

/// A move needs a known clinic, a campaign date, and that many unbooked doses at its source.
fn check_rebalance(
    state: &ClinicState,
    campaign: &Campaign,
    from: &Slot,
    to: &Slot,
    doses: u32,
) -> Result<(), Rejection> {
    check_doses(doses)?;
    if state.profile.is_none() {
        return Err(Rejection::new(RejectionCode::UnknownClinic));
    }
    if !campaign.is_vaccination_date(to.date) {
        return Err(Rejection::new(RejectionCode::DateOutOfRange));
    }
    let available = state
        .dates
        .get(&from.date)
        .and_then(|s| s.quota(from.share))
        .map(Quota::remaining);
    match available {
        None => return Err(Rejection::new(RejectionCode::NoSupply)),
        Some(a) if a < doses => return Err(Rejection::new(RejectionCode::InsufficientDoses)),
        Some(_) => {}
    }
    if let (Share::Day(d), _) | (_, Share::Day(d)) = (from.share, to.share) {
        if usize::from(d) >= campaign.share_count() {
            return Err(Rejection::new(RejectionCode::NoSupply));
        }
    }
    Ok(())
}

/// Receives a transfer (into the pool once the day shares are released), or refuses it so the
/// doses go back.
fn deposit_doses(
    state: &ClinicState,
    clinic: &ClinicId,
    transfer: TransferId,
    from: &Slot,
    to: &Slot,
    doses: u32,
) -> Event {
    if state.profile.is_none() {
        return TransferRefused {
            clinic: clinic.clone(),
            transfer,
            from: from.clone(),
            to: to.clone(),
            doses,
            code: RejectionCode::UnknownClinic,
        }
        .into();
    }
    let mut to = to.clone();
    if state.released {
        to.share = Share::Pool;
    }
    DosesDeposited {
        clinic: clinic.clone(),
        transfer,
        from: from.clone(),
        to,
        doses,
    }
    .into()
}

impl ClinicState {
    fn supply_mut(&mut self, date: VaccinationDate) -> &mut DateSupply {
        let share_count = self.share_count;
        self.dates
            .entry(date)
            .or_insert_with(|| DateSupply::new(share_count))
    }

    fn quota_mut(&mut self, date: VaccinationDate, share: Share) -> &mut Quota {
        let supply = self.supply_mut(date);
        match supply.quota_mut(share) {
            Some(q) => q,
            None => panic!(
                "share {share} does not exist on {date}: a decided event names a share the state lacks"
            ),
        }
    }
}

/// Folds one event of a clinic's partition into the state. Never fails: an event that breaks an
/// invariant here is a bug in `decide`, so it is asserted.
pub fn apply(state: &mut ClinicState, event: &Event) {
    match event {
        Event::ClinicRegistered(e) => {
            state.profile = Some(Profile {
                name: e.name.clone(),
                region: e.region.clone(),
                address: e.address.clone(),
            });
            state.share_count = usize::from(e.booking_days);
        }
        Event::SupplyRegistered(e) => {
            debug_assert_eq!(e.day_shares.len(), state.share_count);
            let supply = state.supply_mut(e.date);
            for (quota, add) in supply.days.iter_mut().zip(&e.day_shares) {
                quota.capacity += add;
            }
            supply.pool.capacity += e.pool;
        }
        Event::ReservationConfirmed(e) => {
            let quota = state.quota_mut(e.date, e.share);
            assert!(
                quota.booked < quota.capacity,
                "overbooked {} {} {}",
                e.clinic,
                e.date,
                e.share
            );
            quota.booked += 1;
            state.held.insert(
                e.reservation,
                Held {
                    subject: e.subject,
                    date: e.date,
                    share: e.share,
                },
            );
        }
        Event::DoseReleased(e) => {
            let held = state.held.remove(&e.reservation);
            debug_assert!(
                held.is_some(),
                "released a reservation the clinic does not hold"
            );
            let quota = state.quota_mut(e.date, e.from_share);
            quota.booked -= 1;
            if e.from_share != Share::Pool {
                // The dose leaves its day share for the pool.
                quota.capacity -= 1;
                state.quota_mut(e.date, Share::Pool).capacity += 1;
            }
        }
        Event::SharesReleased(e) => {
            state.released = true;
            for r in &e.releases {
                let day = state.quota_mut(r.date, Share::Day(r.day));
                assert!(day.remaining() >= r.doses, "released more than a share had");
                day.capacity -= r.doses;
                state.quota_mut(r.date, Share::Pool).capacity += r.doses;
            }
        }
        Event::DosesMoved(e) => {
            let from = state.quota_mut(e.from.date, e.from.share);
            assert!(from.remaining() >= e.doses, "moved more than a share had");
            from.capacity -= e.doses;
            state.quota_mut(e.to.date, e.to.share).capacity += e.doses;
        }
        Event::DosesWithdrawn(e) => {
            let from = state.quota_mut(e.from.date, e.from.share);
            assert!(
                from.remaining() >= e.doses,
                "withdrew more than a share had"
            );
            from.capacity -= e.doses;
        }
        Event::DosesDeposited(e) => {
            state.quota_mut(e.to.date, e.to.share).capacity += e.doses;
        }
        Event::DosesReturned(e) => {
            state.quota_mut(e.to.date, e.to.share).capacity += e.doses;
        }
        Event::TransferRefused(_) => {}
        _ => {}
    }
}

/// Total doses a clinic holds in its shares (booked or not).
pub fn doses_held(state: &ClinicState) -> u64 {
    state.dates.values().map(DateSupply::capacity).sum()
}
