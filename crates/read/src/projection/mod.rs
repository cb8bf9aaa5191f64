//! Read models: the rows operators and the web frontend query, as a pure fold of the event log.
//!
//! [`ReadModel`] is the in-memory fold (ordered maps, so iteration is in primary-key order). It is
//! the reference the PostgreSQL tables of `projections/*.sql` must equal, and what the embedded
//! mode serves. [`postgres::PgProjector`] writes the same rows into PostgreSQL, exactly once.
//!
//! Every row is decided by the events of ONE partition (a clinic's rows by its clinic partition,
//! a reservation by its person's partition, a ticket by the waiting room), except the refusal
//! counts, which only ever add up. So the fold does not depend on how the partitions are
//! interleaved, which is what lets each partition be projected on its own, at its own pace.

pub mod postgres;

/// What a projector does with a batch of one partition's records (increasing offsets), given the
/// `next_offset` its store holds: the one rule that makes a projection exactly once, whatever
/// was read twice or by whom (the PostgreSQL projector and the simulator's both follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPlan {
    /// Every record is below the stored offset: applied before.
    AlreadyApplied,
    /// The batch starts beyond the stored offset on a log without gaps: records were missed.
    Gap,
    /// Apply the records after the first `skip` (those were applied before).
    Apply { skip: usize },
}

pub fn plan_batch(stored: u64, offsets: &[u64], dense: bool) -> BatchPlan {
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return BatchPlan::AlreadyApplied;
    };
    if stored > last {
        return BatchPlan::AlreadyApplied;
    }
    if stored < first && dense {
        return BatchPlan::Gap;
    }
    BatchPlan::Apply {
        skip: offsets.iter().take_while(|&&o| o < stored).count(),
    }
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use yeyak_domain::{
    ClinicId, CongestionLevel, Envelope, Event, GatewayId, Method, RejectionCode, ReservationId,
    Share, SubjectId, TicketNo, TimestampMs, VaccinationDate,
};

/// `slot_quota` key: clinic, vaccination date, share.
pub type QuotaKey = (ClinicId, VaccinationDate, Share);

/// One row of `slot_quota`. Signed, like the database's `bigint`, so no fold can panic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaRow {
    pub capacity: i64,
    pub booked: i64,
}

impl QuotaRow {
    pub fn remaining(&self) -> i64 {
        self.capacity - self.booked
    }
}

/// One row of `clinics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicRow {
    pub name: String,
    pub region: String,
    pub booking_days: i64,
    /// `ClinicRegistered` v2's road address; none in v1 records.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReservationState {
    Active,
    Cancelled,
    Replaced,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Active => "active",
            ReservationState::Cancelled => "cancelled",
            ReservationState::Replaced => "replaced",
        }
    }

    pub fn parse(text: &str) -> Option<ReservationState> {
        [
            ReservationState::Active,
            ReservationState::Cancelled,
            ReservationState::Replaced,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One row of `reservations`. `share` is the share the person's booking asked for (the clinic
/// may have drawn the dose from the pool instead; `slot_quota` counts where it was drawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    pub subject: SubjectId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
    pub state: ReservationState,
    pub booked_at_ms: TimestampMs,
    pub ended_at_ms: Option<TimestampMs>,
    pub replaces: Option<ReservationId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TicketState {
    Waiting,
    Admitted,
    Left,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Waiting => "waiting",
            TicketState::Admitted => "admitted",
            TicketState::Left => "left",
        }
    }

    pub fn parse(text: &str) -> Option<TicketState> {
        [
            TicketState::Waiting,
            TicketState::Admitted,
            TicketState::Left,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One row of `queue_tickets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub subject: SubjectId,
    pub state: TicketState,
    pub issued_at_ms: TimestampMs,
    pub admitted_at_ms: Option<TimestampMs>,
    pub expires_at_ms: Option<TimestampMs>,
}

/// One row of `congestion`: the latest report of a verification method (the waiting room
/// decides every report, so "latest" is the log's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CongestionRow {
    pub level: CongestionLevel,
    pub wait_ms: i64,
    pub in_flight: i64,
    pub capacity: i64,
    /// Thousandths of the recent verifications that failed, 0 to 1000.
    pub failure_permille: i64,
    pub provider_up: bool,
    pub gateway: GatewayId,
    pub reported_at_ms: TimestampMs,
}

/// `rejections` key: the event type that recorded the refusal, the command refused, the code.
pub type RejectionKey = (String, String, RejectionCode);

/// `share` as the tables write it: `day0`..`day9`, `pool`.
pub fn share_text(share: Share) -> String {
    share.to_string()
}

/// Parses `day<n>` or `pool`.
pub fn parse_share(text: &str) -> Option<Share> {
    if text == "pool" {
        return Some(Share::Pool);
    }
    let n = text.strip_prefix("day")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok().map(Share::Day)
}

pub fn parse_rejection_code(text: &str) -> Option<RejectionCode> {
    RejectionCode::ALL.into_iter().find(|c| c.as_str() == text)
}

/// The keys of the rows one or more events touch: what a partial model must hold before they
/// are folded into it (see [`ReadModel::apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub clinics: BTreeSet<ClinicId>,
    /// Every share of these (clinic, date) pairs.
    pub dates: BTreeSet<(ClinicId, VaccinationDate)>,
    pub reservations: BTreeSet<ReservationId>,
    pub tickets: BTreeSet<TicketNo>,
    /// `congestion` rows (written whole: a report replaces its method's row).
    pub methods: BTreeSet<Method>,
}

impl Touched {
    /// Adds the keys `envelope` reads or writes. A quota change touches its clinic's row too
    /// (its `booking_days` says which day shares a date has).
    pub fn add(&mut self, envelope: &Envelope) {
        let mut date = |clinic: &ClinicId, date: VaccinationDate| {
            self.clinics.insert(clinic.clone());
            self.dates.insert((clinic.clone(), date));
        };
        match &envelope.event {
            Event::ClinicRegistered(e) => {
                self.clinics.insert(e.clinic.clone());
            }
            Event::SupplyRegistered(e) => date(&e.clinic, e.date),
            Event::ReservationConfirmed(e) => date(&e.clinic, e.date),
            Event::DoseReleased(e) => date(&e.clinic, e.date),
            Event::SharesReleased(e) => {
                for r in &e.releases {
                    date(&e.clinic, r.date);
                }
            }
            Event::DosesMoved(e) => {
                date(&e.clinic, e.from.date);
                date(&e.clinic, e.to.date);
            }
            Event::DosesWithdrawn(e) => date(&e.clinic, e.from.date),
            Event::DosesDeposited(e) => date(&e.clinic, e.to.date),
            Event::DosesReturned(e) => date(&e.clinic, e.to.date),
            Event::ReservationRecorded(e) => {
                self.reservations.insert(e.reservation);
            }
            Event::ReservationChanged(e) => {
                self.reservations.insert(e.reservation);
                self.reservations.insert(e.replaces);
            }
            Event::ReservationCancelled(e) => {
                self.reservations.insert(e.reservation);
            }
            Event::TicketIssued(e) => {
                self.tickets.insert(e.ticket);
            }
            Event::TicketAdmitted(e) => {
                self.tickets.insert(e.ticket);
            }
            Event::TicketLeft(e) => {
                self.tickets.insert(e.ticket);
            }
            Event::TicketSkipped(e) => {
                self.tickets.insert(e.ticket);
            }
            Event::CongestionReported(e) => {
                self.methods.insert(e.method);
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.clinics.is_empty()
            && self.dates.is_empty()
            && self.reservations.is_empty()
            && self.tickets.is_empty()
            && self.methods.is_empty()
    }
}

/// Every read-model row, in primary-key order. `apply` is total: it never panics, whatever the
/// events say (an event that names a row the model lacks changes nothing or creates the row, the
/// same way in memory and in the database).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadModel {
    pub slot_quota: BTreeMap<QuotaKey, QuotaRow>,
    pub clinics: BTreeMap<ClinicId, ClinicRow>,
    pub reservations: BTreeMap<ReservationId, ReservationRow>,
    pub queue_tickets: BTreeMap<TicketNo, TicketRow>,
    pub rejections: BTreeMap<RejectionKey, i64>,
    pub congestion: BTreeMap<Method, CongestionRow>,
}

impl ReadModel {
    pub fn new() -> ReadModel {
        ReadModel::default()
    }

    /// The quota row of a share; touching a date creates every share of it (day shares from the
    /// clinic's `booking_days`, and the pool), like the clinic's own state does.
    fn quota(&mut self, clinic: &ClinicId, date: VaccinationDate, share: Share) -> &mut QuotaRow {
        let days = self
            .clinics
            .get(clinic)
            .map_or(0, |c| c.booking_days.clamp(0, i64::from(u8::MAX)));
        for d in 0..days {
            self.slot_quota
                .entry((clinic.clone(), date, Share::Day(d as u8)))
                .or_default();
        }
        self.slot_quota
            .entry((clinic.clone(), date, Share::Pool))
            .or_default();
        self.slot_quota
            .entry((clinic.clone(), date, share))
            .or_default()
    }

    fn reject(&mut self, source: &str, command: &str, code: RejectionCode) {
        *self
            .rejections
            .entry((source.to_owned(), command.to_owned(), code))
            .or_default() += 1;
    }

    /// Folds an event, except those that only move `queue_tickets` rows: for a reader that
    /// answers for tickets from elsewhere (the gateway's view), which then keeps none of those
    /// rows. The match that decides it stands beside `apply`'s.
    pub fn apply_but_queue_tickets(&mut self, envelope: &Envelope) {
        let only_queue_rows = matches!(
            envelope.event,
            Event::TicketIssued(_)
                | Event::TicketAdmitted(_)
                | Event::TicketLeft(_)
                | Event::TicketSkipped(_)
        );
        if !only_queue_rows {
            self.apply(envelope);
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, envelope: &Envelope) {
        let at = envelope.occurred_at_ms;
        match &envelope.event {
            // ---- clinics and their doses
            Event::ClinicRegistered(e) => {
                self.clinics.insert(
                    e.clinic.clone(),
                    ClinicRow {
                        name: e.name.clone(),
                        region: e.region.clone(),
                        booking_days: i64::from(e.booking_days),
                        address: e.address.clone(),
                    },
                );
            }
            Event::SupplyRegistered(e) => {
                self.quota(&e.clinic, e.date, Share::Pool).capacity += i64::from(e.pool);
                for (day, doses) in e.day_shares.iter().enumerate() {
                    let day = u8::try_from(day).unwrap_or(u8::MAX);
                    self.quota(&e.clinic, e.date, Share::Day(day)).capacity += i64::from(*doses);
                }
            }
            Event::ReservationConfirmed(e) => self.quota(&e.clinic, e.date, e.share).booked += 1,
            Event::DoseReleased(e) => {
                let from = self.quota(&e.clinic, e.date, e.from_share);
                from.booked -= 1;
                if e.from_share != Share::Pool {
                    from.capacity -= 1;
                    self.quota(&e.clinic, e.date, Share::Pool).capacity += 1;
                }
            }
            Event::SharesReleased(e) => {
                for r in &e.releases {
                    self.quota(&e.clinic, r.date, Share::Day(r.day)).capacity -= i64::from(r.doses);
                    self.quota(&e.clinic, r.date, Share::Pool).capacity += i64::from(r.doses);
                }
            }
            Event::DosesMoved(e) => {
                self.quota(&e.clinic, e.from.date, e.from.share).capacity -= i64::from(e.doses);
                self.quota(&e.clinic, e.to.date, e.to.share).capacity += i64::from(e.doses);
            }
            Event::DosesWithdrawn(e) => {
                self.quota(&e.clinic, e.from.date, e.from.share).capacity -= i64::from(e.doses)
            }
            Event::DosesDeposited(e) => {
                self.quota(&e.clinic, e.to.date, e.to.share).capacity += i64::from(e.doses)
            }
            Event::DosesReturned(e) => {
                self.quota(&e.clinic, e.to.date, e.to.share).capacity += i64::from(e.doses)
            }

            // ---- reservations, as the person's partition records them
            Event::ReservationRecorded(e) => {
                self.reservations.insert(
                    e.reservation,
                    ReservationRow {
                        subject: e.subject,
                        clinic: e.clinic.clone(),
                        date: e.date,
                        share: e.share,
                        state: ReservationState::Active,
                        booked_at_ms: at,
                        ended_at_ms: None,
                        replaces: None,
                    },
                );
            }
            Event::ReservationChanged(e) => {
                if let Some(old) = self.reservations.get_mut(&e.replaces) {
                    old.state = ReservationState::Replaced;
                    old.ended_at_ms = Some(at);
                }
                self.reservations.insert(
                    e.reservation,
                    ReservationRow {
                        subject: e.subject,
                        clinic: e.clinic.clone(),
                        date: e.date,
                        share: e.share,
                        state: ReservationState::Active,
                        booked_at_ms: at,
                        ended_at_ms: None,
                        replaces: Some(e.replaces),
                    },
                );
            }
            Event::ReservationCancelled(e) => {
                if let Some(row) = self.reservations.get_mut(&e.reservation) {
                    row.state = ReservationState::Cancelled;
                    row.ended_at_ms = Some(at);
                }
            }

            // ---- the waiting room
            Event::TicketIssued(e) => {
                self.queue_tickets.insert(
                    e.ticket,
                    TicketRow {
                        subject: e.subject,
                        state: TicketState::Waiting,
                        issued_at_ms: at,
                        admitted_at_ms: None,
                        expires_at_ms: None,
                    },
                );
            }
            Event::TicketAdmitted(e) => {
                if let Some(row) = self.queue_tickets.get_mut(&e.ticket) {
                    row.state = TicketState::Admitted;
                    row.admitted_at_ms = Some(at);
                    row.expires_at_ms = Some(e.expires_at_ms);
                }
            }
            Event::TicketLeft(e) => {
                if let Some(row) = self.queue_tickets.get_mut(&e.ticket) {
                    row.state = TicketState::Left;
                }
            }
            // A skipped ticket is gone from the queue like a left one.
            Event::TicketSkipped(e) => {
                if let Some(row) = self.queue_tickets.get_mut(&e.ticket) {
                    row.state = TicketState::Left;
                }
            }

            // ---- the congestion lights: the latest report of a method wins
            Event::CongestionReported(e) => {
                self.congestion.insert(
                    e.method,
                    CongestionRow {
                        level: e.level,
                        wait_ms: i64::try_from(e.wait_ms).unwrap_or(i64::MAX),
                        in_flight: i64::from(e.in_flight),
                        capacity: i64::from(e.capacity),
                        failure_permille: i64::from(e.failure_permille.get()),
                        provider_up: e.provider_up,
                        gateway: e.gateway.clone(),
                        reported_at_ms: at,
                    },
                );
            }

            // ---- refusals
            Event::CommandRejected(e) => {
                self.reject("CommandRejected", &e.command, e.rejection.code)
            }
            Event::BookingFailed(e) => self.reject("BookingFailed", "book", e.code),
            Event::ChangeFailed(e) => self.reject("ChangeFailed", "rebook", e.code),
            Event::BookingRefused(e) => self.reject("BookingRefused", "hold_dose", e.code),
            Event::TransferRefused(e) => self.reject("TransferRefused", "deposit_doses", e.code),

            // A used admission's ticket stays `admitted` in `queue_tickets`: that is what it was.
            Event::SubjectVerified(_)
            | Event::DeviceLocked(_)
            | Event::AdmissionGranted(_)
            | Event::AdmissionUsed(_)
            | Event::BookingRequested(_)
            | Event::ChangeRequested(_)
            | Event::TicketKept(_)
            | Event::TicketRetired(_)
            | Event::PreQueueJoined(_)
            | Event::PreQueueDrawn(_)
            | Event::ProviderSwitched(_)
            | Event::AdmissionsControlled(_) => {}
        }
    }

    /// How many waiting tickets have a lower number than `ticket` (the `queue_position` view).
    pub fn queue_position(&self, ticket: TicketNo) -> Option<usize> {
        let row = self.queue_tickets.get(&ticket)?;
        (row.state == TicketState::Waiting).then(|| {
            self.queue_tickets
                .range(..ticket)
                .filter(|(_, r)| r.state == TicketState::Waiting)
                .count()
        })
    }

    /// Every row, one line each, tables in a fixed order and rows in primary-key order; text
    /// fields JSON-quoted. Independent of the machine, the locale and the database's settings.
    pub fn canonical_lines(&self) -> Vec<(Table, String)> {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let opt = |v: Option<i64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
        let mut lines = Vec::new();
        for (clinic, row) in &self.clinics {
            let mut line = format!(
                "{}\t{}\t{}\t{}",
                q(clinic.as_str()),
                q(&row.name),
                q(&row.region),
                row.booking_days
            );
            // Only when there is one: a log without addresses keeps its digests.
            if let Some(address) = &row.address {
                line.push_str(&format!("\t{}", q(address)));
            }
            lines.push((Table::Clinics, line));
        }
        for ((clinic, date, share), row) in &self.slot_quota {
            let line = format!(
                "{}\t{date}\t{share}\t{}\t{}\t{}",
                q(clinic.as_str()),
                row.capacity,
                row.booked,
                row.remaining()
            );
            lines.push((Table::SlotQuota, line));
        }
        for (id, r) in &self.reservations {
            let replaces = r
                .replaces
                .map_or_else(|| "null".to_owned(), |r| r.to_string());
            let line = format!(
                "{id}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{replaces}",
                r.subject,
                q(r.clinic.as_str()),
                r.date,
                r.share,
                r.state.as_str(),
                r.booked_at_ms,
                opt(r.ended_at_ms)
            );
            lines.push((Table::Reservations, line));
        }
        for (ticket, t) in &self.queue_tickets {
            let line = format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                ticket.0,
                t.subject,
                t.state.as_str(),
                t.issued_at_ms,
                opt(t.admitted_at_ms),
                opt(t.expires_at_ms)
            );
            lines.push((Table::QueueTickets, line));
        }
        for ((source, command, code), count) in &self.rejections {
            lines.push((
                Table::Rejections,
                format!("{}\t{}\t{}\t{count}", q(source), q(command), code.as_str()),
            ));
        }
        for (method, c) in &self.congestion {
            let line = format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                method.as_str(),
                c.level.as_str(),
                c.wait_ms,
                c.in_flight,
                c.capacity,
                c.failure_permille,
                c.provider_up,
                q(c.gateway.as_str()),
                c.reported_at_ms
            );
            lines.push((Table::Congestion, line));
        }
        lines
    }

    /// The canonical text: a header per table (`# table rows`) then its rows.
    pub fn canonical_text(&self) -> String {
        let lines = self.canonical_lines();
        let mut out = String::new();
        for table in Table::ALL {
            let rows: Vec<&String> = lines
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, l)| l)
                .collect();
            let _ = writeln!(out, "# {} {}", table.name(), rows.len());
            for row in rows {
                out.push_str(row);
                out.push('\n');
            }
        }
        out
    }

    /// SHA-256 (hex) of [`ReadModel::canonical_text`]: same events, same digest, anywhere.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_text().as_bytes()))
    }

    /// Row counts per table.
    pub fn row_counts(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            (Table::Clinics.name(), self.clinics.len()),
            (Table::SlotQuota.name(), self.slot_quota.len()),
            (Table::Reservations.name(), self.reservations.len()),
            (Table::QueueTickets.name(), self.queue_tickets.len()),
            (Table::Rejections.name(), self.rejections.len()),
            (Table::Congestion.name(), self.congestion.len()),
        ])
    }
}

/// The read-model tables, in digest order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Clinics,
    SlotQuota,
    Reservations,
    QueueTickets,
    Rejections,
    Congestion,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Clinics,
        Table::SlotQuota,
        Table::Reservations,
        Table::QueueTickets,
        Table::Rejections,
        Table::Congestion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Clinics => "clinics",
            Table::SlotQuota => "slot_quota",
            Table::Reservations => "reservations",
            Table::QueueTickets => "queue_tickets",
            Table::Rejections => "rejections",
            Table::Congestion => "congestion",
        }
    }
}

/// One row that differs between two models: `left`/`right` are its canonical lines (`None` when
/// the row is missing on that side). The key is the line's text up to the first non-key field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDiff {
    pub table: Table,
    pub key: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

impl std::fmt::Display for RowDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |s: &Option<String>| s.clone().unwrap_or_else(|| "(missing)".to_owned());
        write!(
            f,
            "{} {}: {} != {}",
            self.table.name(),
            self.key,
            side(&self.left),
            side(&self.right)
        )
    }
}

/// Every row that differs between `left` and `right`, table by table, in key order.
pub fn diff_models(left: &ReadModel, right: &ReadModel) -> Vec<RowDiff> {
    let keyed = |model: &ReadModel| -> BTreeMap<(Table, String), String> {
        model
            .canonical_lines()
            .into_iter()
            .map(|(table, line)| {
                let key_fields = match table {
                    Table::Clinics
                    | Table::Reservations
                    | Table::QueueTickets
                    | Table::Congestion => 1,
                    Table::SlotQuota | Table::Rejections => 3,
                };
                let key = line
                    .split('\t')
                    .take(key_fields)
                    .collect::<Vec<_>>()
                    .join("\t");
                ((table, key), line)
            })
            .collect()
    };
    let (l, r) = (keyed(left), keyed(right));
    let keys: BTreeSet<&(Table, String)> = l.keys().chain(r.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (l.get(k), r.get(k));
            (a != b).then(|| RowDiff {
                table: k.0,
                key: k.1.clone(),
                left: a.cloned(),
                right: b.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_trip() {
        for share in [Share::Day(0), Share::Day(9), Share::Day(12), Share::Pool] {
            assert_eq!(parse_share(&share_text(share)), Some(share));
        }
        for bad in ["day", "day01", "dayx", "Pool", "day-1", "day256"] {
            assert_eq!(parse_share(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_empty_model_has_a_stable_digest() {
        let text = ReadModel::new().canonical_text();
        assert_eq!(
            text,
            "# clinics 0\n# slot_quota 0\n# reservations 0\n# queue_tickets 0\n# rejections 0\n# congestion 0\n"
        );
        assert_eq!(
            ReadModel::new().digest(),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
    }
}
