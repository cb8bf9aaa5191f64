//! How full the slots are, for the operator page: per clinic (with its dates and shares) and
//! per booking day, summed from the slot quota. A booking day's share is `day<n>` (0-based, in
//! calendar order); `pool` is the change window's.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use yeyak_domain::calendar::Window;
use yeyak_domain::{Campaign, ClinicId, Share, TimestampMs, VaccinationDate};
use yeyak_read::projection::{QuotaRow, ReadModel};

use crate::clock::rfc3339;

/// Capacity and booked doses of one `slot_quota` row or a sum of rows.
#[derive(Debug, Clone, Copy, Default)]
struct Fill {
    capacity: i64,
    booked: i64,
}

impl Fill {
    fn add(&mut self, row: &QuotaRow) {
        self.capacity += row.capacity;
        self.booked += row.booked;
    }

    fn json(&self) -> Value {
        json!({"capacity": self.capacity, "booked": self.booked})
    }
}

/// A total and its split by share (`day0`..`day9`, `pool`).
#[derive(Debug, Default)]
struct FillByShare {
    total: Fill,
    shares: BTreeMap<String, Fill>,
}

impl FillByShare {
    fn add(&mut self, share: &Share, row: &QuotaRow) {
        self.total.add(row);
        self.shares.entry(share.to_string()).or_default().add(row);
    }

    fn shares_json(&self) -> Map<String, Value> {
        self.shares
            .iter()
            .map(|(k, f)| (k.clone(), f.json()))
            .collect()
    }
}

/// A clinic's fill: in all, and per date.
#[derive(Debug, Default)]
struct ClinicFill {
    all: FillByShare,
    dates: BTreeMap<VaccinationDate, FillByShare>,
}

/// The fill of every clinic, with its dates and shares.
pub fn per_clinic(model: &ReadModel) -> Vec<Value> {
    let mut clinics: BTreeMap<&ClinicId, ClinicFill> = BTreeMap::new();
    for ((clinic, date, share), row) in &model.slot_quota {
        let fill = clinics.entry(clinic).or_default();
        fill.all.add(share, row);
        fill.dates.entry(*date).or_default().add(share, row);
    }
    let clinic_json = |(clinic, fill): (&ClinicId, ClinicFill)| {
        let info = model.clinics.get(clinic);
        let dates: Vec<Value> = fill
            .dates
            .iter()
            .map(|(date, f)| {
                json!({
                    "date": date.to_string(),
                    "capacity": f.total.capacity,
                    "booked": f.total.booked,
                    "shares": f.shares_json(),
                })
            })
            .collect();
        json!({
            "clinic_id": clinic.as_str(),
            "name": info.map(|c| c.name.clone()),
            "region": info.map(|c| c.region.clone()),
            "capacity": fill.all.total.capacity,
            "booked": fill.all.total.booked,
            "shares": fill.all.shares_json(),
            "dates": dates,
        })
    };
    clinics.into_iter().map(clinic_json).collect()
}

/// Every booking day's share, then the change window's pool: its window, whether it is open
/// at `now`, and its fill over all clinics.
pub fn per_booking_day(model: &ReadModel, campaign: &Campaign, now: TimestampMs) -> Vec<Value> {
    let mut by_share: BTreeMap<Share, Fill> = BTreeMap::new();
    for ((_, _, share), row) in &model.slot_quota {
        by_share.entry(*share).or_default().add(row);
    }
    let window = |share: Share, w: &Window, digit: Option<u8>| {
        let f = by_share.get(&share).copied().unwrap_or_default();
        json!({
            "share": share.to_string(),
            "digit": digit,
            "opens_at": rfc3339(w.opens_at_ms),
            "closes_at": rfc3339(w.closes_at_ms),
            "open": w.contains(now),
            "capacity": f.capacity,
            "booked": f.booked,
        })
    };
    let mut days: Vec<Value> = campaign
        .booking_days
        .iter()
        .enumerate()
        .map(|(i, d)| window(Share::Day(i as u8), &d.window, Some(d.digit)))
        .collect();
    days.push(window(Share::Pool, &campaign.change_window, None));
    days
}
