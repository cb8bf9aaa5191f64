//! Which campaign the records of a log say they were decided under (the `campaign_id` and
//! `campaign_sha256` headers every writer puts on an event), against the campaign the audit is
//! given: another campaign is refused ([`AuditError::OtherCampaign`], code `other_campaign`);
//! a log without the headers (an earlier build's, a hand-made fixture) is audited as before and
//! the report says the campaign was not recorded.

use std::collections::BTreeMap;

use serde::Serialize;

use super::AuditError;
use yeyak_domain::CampaignStamp;
use yeyak_log::codec::recorded_campaign;

/// The campaigns the records read say they were decided under, counted.
#[derive(Debug, Clone, Default)]
pub struct RecordedCampaigns {
    by_stamp: BTreeMap<CampaignStamp, u64>,
    unrecorded: u64,
}

impl RecordedCampaigns {
    /// Counts one record by its headers.
    pub fn count(&mut self, headers: &[(String, Vec<u8>)]) {
        match recorded_campaign(headers) {
            Some(stamp) => *self.by_stamp.entry(stamp).or_default() += 1,
            None => self.unrecorded += 1,
        }
    }

    /// Refuses a log any record of which was decided under another campaign than `given`.
    pub fn check(&self, given: &CampaignStamp) -> Result<CampaignCheck, AuditError> {
        if let Some((recorded, &events)) = self.by_stamp.iter().find(|(s, _)| *s != given) {
            return Err(AuditError::OtherCampaign {
                recorded: recorded.clone(),
                given: given.clone(),
                events,
            });
        }
        Ok(CampaignCheck {
            id: given.id.clone(),
            sha256: given.sha256.clone(),
            recorded_events: self.by_stamp.values().sum(),
            unrecorded_events: self.unrecorded,
        })
    }
}

/// The campaign an audit judged against, and how many records said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignCheck {
    pub id: String,
    pub sha256: String,
    /// Records that name this campaign.
    pub recorded_events: u64,
    /// Records that name none (an earlier build's log, a hand-made record).
    pub unrecorded_events: u64,
}

impl CampaignCheck {
    /// One line for people.
    pub fn describe(&self) -> String {
        let head = format!("campaign {} (sha256 {})", self.id, self.sha256);
        match (self.recorded_events, self.unrecorded_events) {
            (0, 0) => format!("{head}: the log is empty"),
            (0, _) => format!(
                "{head}: not recorded in the log (an earlier build's log?), audited against it as given"
            ),
            (_, 0) => format!("{head}: recorded on every event"),
            (recorded, unrecorded) => {
                format!("{head}: recorded on {recorded} events, not recorded on {unrecorded}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(id: &str, sha256: &str) -> CampaignStamp {
        CampaignStamp {
            id: id.to_owned(),
            sha256: sha256.to_owned(),
        }
    }

    fn headers(stamp: &CampaignStamp) -> Vec<(String, Vec<u8>)> {
        yeyak_log::codec::campaign_headers(stamp)
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn another_campaign_is_refused_naming_both() {
        let (a, b) = (stamp("a", "aa"), stamp("b", "bb"));
        let mut recorded = RecordedCampaigns::default();
        recorded.count(&headers(&a));
        recorded.count(&[]);
        let check = recorded.check(&a).unwrap();
        assert_eq!((check.recorded_events, check.unrecorded_events), (1, 1));
        let refused = recorded.check(&b).unwrap_err();
        assert_eq!(refused.code(), "other_campaign");
        let text = refused.to_string();
        assert!(
            text.contains("a (sha256 aa)") && text.contains("b (sha256 bb)"),
            "{text}"
        );
    }

    #[test]
    fn a_log_without_the_headers_is_audited_and_says_so() {
        let mut recorded = RecordedCampaigns::default();
        recorded.count(&[("type".to_owned(), b"x".to_vec())]);
        let check = recorded.check(&stamp("a", "aa")).unwrap();
        assert!(check.describe().contains("not recorded"), "{check:?}");
    }
}
