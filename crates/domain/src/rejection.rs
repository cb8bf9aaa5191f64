//! Why a command was refused: one closed set of stable, machine-readable codes.
//!
//! A rejection is a domain outcome, not a failure: it is recorded in the log like any event, so
//! a retry of the same command id and a replay both get the same answer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TimestampMs;

/// The rule that refused a command. The `snake_case` names are a public contract (HTTP error
/// codes, metrics, auditors' reports): never rename one, only add.
///
/// Listed in order of precedence: when several rules fail, a decision reports the first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The request names someone other than the verified subject.
    ProxyForbidden,
    /// Another device completed verification first and holds the person.
    DeviceLocked,
    /// The person verified less than the configured interval ago.
    VerifyRateLimited,
    /// No verification, or this device is not the one that verified last.
    NotVerified,
    /// The vaccination date lies outside the campaign's vaccination period.
    DateOutOfRange,
    /// A dose count of zero or beyond the configured maximum.
    InvalidDoses,
    /// Outside the target age group of the campaign.
    NotEligible,
    /// The change window is over: no booking, cancel or change any more.
    CampaignClosed,
    /// Not the booking day of this person's birth-date digit (nor the change window).
    NotYourBookingDay,
    /// Cancel and change are only possible in the change window.
    NotInChangeWindow,
    /// A booking or change of this person is still being decided.
    BookingInProgress,
    /// The person already holds an active reservation.
    AlreadyReserved,
    /// The reservation named is not this person's active one.
    NoSuchReservation,
    /// Booking needs an admission from the waiting room that has not been used.
    AdmissionRequired,
    /// The admission has expired.
    AdmissionExpired,
    /// The person already holds a live ticket in the waiting room.
    AlreadyQueued,
    /// The ticket named is not waiting.
    NotQueued,
    /// No clinic is registered under this id.
    UnknownClinic,
    /// The clinic was registered before with another name or region.
    ClinicConflict,
    /// The clinic has no doses on that vaccination date.
    NoSupply,
    /// The share this booking draws on is used up.
    SoldOut,
    /// A rebalance asks for more unbooked doses than the share holds.
    InsufficientDoses,
}

impl RejectionCode {
    pub const ALL: [RejectionCode; 22] = [
        RejectionCode::ProxyForbidden,
        RejectionCode::DeviceLocked,
        RejectionCode::VerifyRateLimited,
        RejectionCode::NotVerified,
        RejectionCode::DateOutOfRange,
        RejectionCode::InvalidDoses,
        RejectionCode::NotEligible,
        RejectionCode::CampaignClosed,
        RejectionCode::NotYourBookingDay,
        RejectionCode::NotInChangeWindow,
        RejectionCode::BookingInProgress,
        RejectionCode::AlreadyReserved,
        RejectionCode::NoSuchReservation,
        RejectionCode::AdmissionRequired,
        RejectionCode::AdmissionExpired,
        RejectionCode::AlreadyQueued,
        RejectionCode::NotQueued,
        RejectionCode::UnknownClinic,
        RejectionCode::ClinicConflict,
        RejectionCode::NoSupply,
        RejectionCode::SoldOut,
        RejectionCode::InsufficientDoses,
    ];

    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::ProxyForbidden => "proxy_forbidden",
            RejectionCode::DeviceLocked => "device_locked",
            RejectionCode::VerifyRateLimited => "verify_rate_limited",
            RejectionCode::NotVerified => "not_verified",
            RejectionCode::DateOutOfRange => "date_out_of_range",
            RejectionCode::InvalidDoses => "invalid_doses",
            RejectionCode::NotEligible => "not_eligible",
            RejectionCode::CampaignClosed => "campaign_closed",
            RejectionCode::NotYourBookingDay => "not_your_booking_day",
            RejectionCode::NotInChangeWindow => "not_in_change_window",
            RejectionCode::BookingInProgress => "booking_in_progress",
            RejectionCode::AlreadyReserved => "already_reserved",
            RejectionCode::NoSuchReservation => "no_such_reservation",
            RejectionCode::AdmissionRequired => "admission_required",
            RejectionCode::AdmissionExpired => "admission_expired",
            RejectionCode::AlreadyQueued => "already_queued",
            RejectionCode::NotQueued => "not_queued",
            RejectionCode::UnknownClinic => "unknown_clinic",
            RejectionCode::ClinicConflict => "clinic_conflict",
            RejectionCode::NoSupply => "no_supply",
            RejectionCode::SoldOut => "sold_out",
            RejectionCode::InsufficientDoses => "insufficient_doses",
        }
    }

    /// Transient: the same command may succeed later without any change by the caller.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            RejectionCode::DeviceLocked
                | RejectionCode::VerifyRateLimited
                | RejectionCode::NotYourBookingDay
                | RejectionCode::BookingInProgress
        )
    }
}

impl std::fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: the rule, and when a retry could succeed (for transient rules).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error,
)]
#[error("{code}")]
pub struct Rejection {
    pub code: RejectionCode,
    /// For transient rules: the instant from which a retry can succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<TimestampMs>,
}

impl Rejection {
    pub fn new(code: RejectionCode) -> Rejection {
        Rejection {
            code,
            retry_at_ms: None,
        }
    }

    pub fn retry_at(code: RejectionCode, at_ms: TimestampMs) -> Rejection {
        Rejection {
            code,
            retry_at_ms: Some(at_ms),
        }
    }
}

impl From<RejectionCode> for Rejection {
    fn from(code: RejectionCode) -> Rejection {
        Rejection::new(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialize_as_their_name() {
        let mut seen = std::collections::BTreeSet::new();
        for code in RejectionCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
