//! The pure domain: commands, events, rejections, the campaign calendar, and the three
//! aggregates that decide them (subject, clinic, waiting room).
//!
//! Architecture Invariant: nothing here does IO, reads a clock, draws a random number or can
//! fail on infrastructure. Time, ids and looked-up facts come in with the command; the same
//! inputs always give the same events, which is what makes a replay of the log exact.

pub mod calendar;
pub mod clinic;
pub mod command;
pub mod event;
pub mod ids;
pub mod rejection;
pub mod subject;
pub mod system;
pub mod waiting_room;

pub use calendar::{Campaign, CampaignError, Phase};
pub use command::{Command, CommandBody, Target};
pub use event::{Envelope, Event};
pub use ids::{AdmissionId, ClinicId, DeviceId, ReservationId, SubjectId, TicketNo, TransferId};
pub use rejection::{Rejection, RejectionCode};
pub use system::System;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. The only notion of time the domain has.
pub type TimestampMs = i64;

/// A calendar date of vaccination, `YYYY-MM-DD`.
pub type VaccinationDate = chrono::NaiveDate;

/// The identity-verification methods of the 2021 site.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Phone,
    Ipin,
    JointCertificate,
    FinancialCertificate,
    Kakao,
    Naver,
    Pass,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Phone,
        Method::Ipin,
        Method::JointCertificate,
        Method::FinancialCertificate,
        Method::Kakao,
        Method::Naver,
        Method::Pass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Phone => "phone",
            Method::Ipin => "ipin",
            Method::JointCertificate => "joint_certificate",
            Method::FinancialCertificate => "financial_certificate",
            Method::Kakao => "kakao",
            Method::Naver => "naver",
            Method::Pass => "pass",
        }
    }

    /// Parses a method name; `None` for anything else (the edge answers `unknown_method`).
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Which share of a clinic's doses for one vaccination date a booking draws on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// The share owed to booking day `n` (0-based, calendar order).
    Day(u8),
    /// The change window's pool: what the booking days left over, plus cancellations.
    Pool,
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Share::Day(n) => write!(f, "day{n}"),
            Share::Pool => f.write_str("pool"),
        }
    }
}
