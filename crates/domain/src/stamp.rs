//! Which campaign an event was decided under: the campaign's id and the SHA-256 of a canonical
//! form of the parsed campaign ([`CampaignStamp`]). Writers put it on every event record; the
//! auditors' replay refuses to judge a log against another campaign.
//!
//! The hash is of what the rules read, not of the file's bytes: comments, whitespace, key order
//! and how an instant is written (`+09:00` or `Z`) do not change it; any value the rules read
//! (a booking day, a date, a duration, the age group, the name, the id) does.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::calendar::{Campaign, Window};

/// A campaign as its events record it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CampaignStamp {
    pub id: String,
    /// SHA-256 of [`canonical_form`], lowercase hex.
    pub sha256: String,
}

impl fmt::Display for CampaignStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (sha256 {})", self.id, self.sha256)
    }
}

// Do not change: logs record the hash of this form, and an audit compares it with the hash of
// the campaign it is given. A new form is a new version line, read beside the old one.
const CANONICAL_VERSION: &str = "yeyak-campaign v1";

#[derive(Serialize)]
struct Canonical<'c> {
    id: &'c str,
    name: &'c str,
    utc_offset_s: i32,
    born_from_year: u16,
    born_to_year: u16,
    first_vaccination_date: String,
    last_vaccination_date: String,
    verify_interval_ms: i64,
    device_lock_ms: i64,
    /// `(digit, opens_at_ms, closes_at_ms)` in calendar order.
    booking_days: Vec<(u8, i64, i64)>,
    change_window: (i64, i64),
}

fn span(window: Window) -> (i64, i64) {
    (window.opens_at_ms, window.closes_at_ms)
}

/// The canonical form: a version line, then one line of JSON with the fields in a fixed order
/// and every instant in milliseconds since the epoch.
pub fn canonical_form(campaign: &Campaign) -> String {
    let canonical = Canonical {
        id: &campaign.id,
        name: &campaign.name,
        utc_offset_s: campaign.utc_offset.local_minus_utc(),
        born_from_year: campaign.eligibility.born_from_year,
        born_to_year: campaign.eligibility.born_to_year,
        first_vaccination_date: campaign.vaccination.first_date.to_string(),
        last_vaccination_date: campaign.vaccination.last_date.to_string(),
        verify_interval_ms: campaign.rules.verify_interval_ms,
        device_lock_ms: campaign.rules.device_lock_ms,
        booking_days: campaign
            .booking_days
            .iter()
            .map(|day| (day.digit, day.window.opens_at_ms, day.window.closes_at_ms))
            .collect(),
        change_window: span(campaign.change_window),
    };
    // A struct of strings and numbers always serializes.
    let json = serde_json::to_string(&canonical).expect("the canonical form serializes");
    format!("{CANONICAL_VERSION}\n{json}\n")
}

impl Campaign {
    /// The id and content hash events decided under this campaign record.
    pub fn stamp(&self) -> CampaignStamp {
        CampaignStamp {
            id: self.id.clone(),
            sha256: hex::encode(Sha256::digest(canonical_form(self).as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::calendar::DEFAULT_CAMPAIGN_TOML;

    use super::*;

    fn stamp_of(text: &str) -> CampaignStamp {
        Campaign::from_toml(text).unwrap().stamp()
    }

    #[test]
    fn the_shipped_campaign_has_a_frozen_hash() {
        // Do not change: logs written by earlier builds record this hash.
        assert_eq!(
            stamp_of(DEFAULT_CAMPAIGN_TOML).to_string(),
            "2021-18-49 (sha256 4b059a6e77f502ae2a5c3580887d86df231cfd4bc5510fd81c76e1619e8a7a0d)"
        );
    }

    #[test]
    fn comments_whitespace_and_how_an_instant_is_written_do_not_change_the_hash() {
        let reworded = DEFAULT_CAMPAIGN_TOML
            .replace("# ", "#  another comment ")
            .replace(" = ", "   =   ")
            .replace(
                "opens_at = \"2021-08-09T20:00:00+09:00\"",
                "opens_at = \"2021-08-09T11:00:00Z\"",
            );
        assert_ne!(reworded, DEFAULT_CAMPAIGN_TOML);
        assert_eq!(stamp_of(&reworded), stamp_of(DEFAULT_CAMPAIGN_TOML));
    }

    #[test]
    fn any_value_the_rules_read_changes_the_hash() {
        let changes = [
            ("2021-08-09T20:00:00+09:00", "2021-08-09T21:00:00+09:00"),
            ("born_to_year = 2003", "born_to_year = 2002"),
            ("last_date = \"2021-10-02\"", "last_date = \"2021-10-03\""),
            ("device_lock_ms = 600000", "device_lock_ms = 600001"),
            ("ages 18-49\"", "ages 18 to 49\""),
        ];
        let shipped = stamp_of(DEFAULT_CAMPAIGN_TOML);
        for (from, to) in changes {
            let changed = DEFAULT_CAMPAIGN_TOML.replacen(from, to, 1);
            assert_ne!(changed, DEFAULT_CAMPAIGN_TOML, "{from}");
            let stamp = stamp_of(&changed);
            assert_eq!(stamp.id, shipped.id);
            assert_ne!(stamp.sha256, shipped.sha256, "{from} -> {to}");
        }
    }
}
