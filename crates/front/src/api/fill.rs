//! How full the slots are, for the operator page: per clinic (with its dates and shares) and
//! per booking day, summed from the slot quota. A booking day's share is `day<n>` (0-based, in
//! calendar order); `pool` is the change window's.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use yeyak_domain::calendar::Window;
use yeyak_domain::{Campaign, ClinicId, Opening, Share, TimestampMs, VaccinationDate};
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

/// The share open at `now` (today's booking day's, or the change window's pool) and the
/// booking day's digit; none between two booking days and outside the campaign.
fn share_open(campaign: &Campaign, now: TimestampMs) -> Option<(Share, Option<u8>, Window)> {
    match campaign.open_at(now)? {
        Opening::BookingDay(day) => {
            let index = campaign.booking_days.iter().position(|d| *d == day)?;
            Some((Share::Day(index as u8), Some(day.digit), day.window))
        }
        Opening::ChangeWindow(window) => Some((Share::Pool, None, window)),
    }
}

/// What remains of one share row, as citizens are shown it (`GET /v1/slots`): never below 0.
fn remaining(f: &Fill) -> i64 {
    (f.capacity - f.booked).max(0)
}

fn today_json(f: &Fill) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("capacity".into(), f.capacity.into());
    m.insert("booked".into(), f.booked.into());
    m.insert("remaining".into(), remaining(f).into());
    m.insert("sold_out".into(), (remaining(f) == 0).into());
    m
}

/// Today's share, what citizens see now: per clinic (and each of its dates) and per region,
/// the capacity, booked and `remaining` doses of the share open now, the same figures as
/// `GET /v1/slots` gives the people of that share (`sold_out` when nothing remains: 마감). Null
/// `share` when nothing is open, with the next opening.
pub fn today(model: &ReadModel, campaign: &Campaign, now: TimestampMs) -> Value {
    let Some((share, digit, window)) = share_open(campaign, now) else {
        let next = campaign
            .next_opening(now)
            .map(|o| rfc3339(o.window().opens_at_ms));
        return json!({"share": null, "next_opens_at": next, "clinics": [], "regions": []});
    };
    let mut clinics: BTreeMap<&ClinicId, (Fill, Vec<Value>)> = BTreeMap::new();
    let mut regions: BTreeMap<&str, Fill> = BTreeMap::new();
    for ((clinic, date, s), row) in &model.slot_quota {
        if *s != share {
            continue;
        }
        let mut f = Fill::default();
        f.add(row);
        let entry = clinics.entry(clinic).or_default();
        entry.0.add(row);
        let mut d = today_json(&f);
        d.insert("date".into(), date.to_string().into());
        entry.1.push(Value::Object(d));
        if let Some(info) = model.clinics.get(clinic) {
            regions.entry(info.region.as_str()).or_default().add(row);
        }
    }
    let clinics: Vec<Value> = clinics
        .into_iter()
        .map(|(clinic, (total, dates))| {
            let info = model.clinics.get(clinic);
            let mut c = today_json(&total);
            c.insert("clinic_id".into(), clinic.as_str().into());
            c.insert("name".into(), json!(info.map(|i| i.name.clone())));
            c.insert("region".into(), json!(info.map(|i| i.region.clone())));
            c.insert(
                "address".into(),
                json!(info.and_then(|i| i.address.clone())),
            );
            c.insert("dates".into(), Value::Array(dates));
            Value::Object(c)
        })
        .collect();
    let regions: Vec<Value> = regions
        .into_iter()
        .map(|(region, f)| {
            let mut r = today_json(&f);
            r.insert("region".into(), region.into());
            Value::Object(r)
        })
        .collect();
    json!({
        "share": share.to_string(),
        "digit": digit,
        "opens_at": rfc3339(window.opens_at_ms),
        "closes_at": rfc3339(window.closes_at_ms),
        "clinics": clinics,
        "regions": regions,
    })
}
