//! A rule of the ledger refused the command: the rejection's code becomes the error code, with
//! its HTTP status and text. Token-shaped refusals keep the contract's `invalid_token` code and
//! give the rule as the `reason`; a transient rule gives `retry_after_s`.

use axum::http::StatusCode;
use yeyak_domain::system::Outcome;
use yeyak_domain::{Rejection, RejectionCode, TimestampMs};

use super::error::ApiError;

/// A refusal by the ledger, and the instant it is answered (for `retry_after_s`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{}", text(self.rejection.code))]
pub struct Refusal {
    pub rejection: Rejection,
    pub now_ms: TimestampMs,
}

impl Refusal {
    pub fn new(rejection: impl Into<Rejection>, now_ms: TimestampMs) -> Refusal {
        Refusal {
            rejection: rejection.into(),
            now_ms,
        }
    }

    /// The outcome's refusal, if the ledger refused the command.
    pub fn of(outcome: &Outcome, now_ms: TimestampMs) -> Result<(), Refusal> {
        match outcome.rejection {
            Some(rejection) => Err(Refusal::new(rejection, now_ms)),
            None => Ok(()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let Refusal { rejection, now_ms } = refusal;
        let (code, reason) = public_code(rejection.code);
        ApiError {
            status: status(rejection.code),
            code,
            message: refusal.to_string(),
            retry_after_s: rejection
                .retry_at_ms
                .map(|at| ((at - now_ms).max(0) + 999) / 1000),
            reason,
        }
    }
}

/// The code a client sees, and the reason given with it.
fn public_code(code: RejectionCode) -> (&'static str, Option<&'static str>) {
    match code {
        RejectionCode::NotVerified => ("invalid_token", Some("not_verified")),
        RejectionCode::AdmissionRequired => ("invalid_token", Some("admission_used")),
        RejectionCode::AdmissionExpired => ("invalid_token", Some("admission_expired")),
        other => (other.as_str(), None),
    }
}

fn status(code: RejectionCode) -> StatusCode {
    use RejectionCode::*;
    match code {
        DateOutOfRange | InvalidDoses => StatusCode::BAD_REQUEST,
        NotVerified | AdmissionRequired | AdmissionExpired => StatusCode::UNAUTHORIZED,
        ProxyForbidden | NotEligible | CampaignClosed | NotYourBookingDay | NotInChangeWindow => {
            StatusCode::FORBIDDEN
        }
        NoSuchReservation | NotQueued | UnknownClinic => StatusCode::NOT_FOUND,
        VerifyRateLimited => StatusCode::TOO_MANY_REQUESTS,
        DeviceLocked | BookingInProgress | AlreadyReserved | AlreadyQueued | ClinicConflict
        | NoSupply | SoldOut | InsufficientDoses => StatusCode::CONFLICT,
    }
}

fn text(code: RejectionCode) -> &'static str {
    use RejectionCode::*;
    match code {
        ProxyForbidden => "only the verified person may book for themself",
        DeviceLocked => "another device verified first and holds this person for 10 minutes",
        VerifyRateLimited => "verification is allowed once per 10 minutes",
        NotVerified => "this device is no longer the one that verified; verify again",
        DateOutOfRange => "the date is outside the campaign's vaccination period",
        InvalidDoses => "doses must be at least 1 and within the configured maximum",
        NotEligible => "outside the campaign's age group",
        CampaignClosed => "the campaign is over",
        NotYourBookingDay => "today is not the booking day of your birth date's last digit",
        NotInChangeWindow => "cancel and change open with the change window",
        BookingInProgress => "a booking of yours is still being decided",
        AlreadyReserved => "you already hold a reservation",
        NoSuchReservation => "no such active reservation of yours",
        AdmissionRequired => "the admission token was already used or is not yours",
        AdmissionExpired => "the admission has expired; queue again",
        AlreadyQueued => "you already hold a place in the waiting room",
        NotQueued => "the ticket is not waiting",
        UnknownClinic => "no clinic is registered under this id",
        ClinicConflict => "the clinic was registered with another name, region or address",
        NoSupply => "the clinic has no doses on that date",
        SoldOut => "no doses left for your booking day at this clinic and date",
        InsufficientDoses => "not enough unbooked doses",
    }
}
