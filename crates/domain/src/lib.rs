//! The pure domain: commands, events, rejections, the campaign calendar, and the three
//! aggregates that decide them (subject, clinic, waiting room).
//!
//! Architecture invariant: nothing here does IO, reads a clock, draws a random number or can
//! fail on infrastructure. Time, ids and looked-up facts come in with the command; the same
//! inputs always give the same events, which is what makes a replay of the log exact.

pub mod birth;
pub mod calendar;
pub mod clinic;
pub mod command;
pub mod event;
pub mod ids;
pub mod invariant;
pub mod pii;
pub mod rejection;
pub mod reservation_code;
pub mod schema;
pub mod script;
pub mod stamp;
pub mod subject;
pub mod system;
pub mod table;
pub mod waiting_room;

pub use birth::{BirthDate, BirthFacts};
pub use calendar::{Campaign, CampaignError, Opening, Phase};
pub use command::{Command, CommandBody, Target};
pub use event::{Envelope, Event};
pub use ids::{
    AdmissionId, ClinicId, DeviceId, GatewayId, OperatorId, ReservationId, SubjectId, TicketNo,
    TransferId,
};
pub use invariant::{Invariant, Violation};
pub use rejection::{Rejection, RejectionCode};
pub use reservation_code::ReservationCode;
pub use stamp::CampaignStamp;
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

/// The congestion light of one verification method, as a gateway shows it: green (smooth),
/// yellow (delayed), red (congested), grey (unavailable).
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
pub enum CongestionLevel {
    Green,
    Yellow,
    Red,
    Grey,
}

impl CongestionLevel {
    pub const ALL: [CongestionLevel; 4] = [
        CongestionLevel::Green,
        CongestionLevel::Yellow,
        CongestionLevel::Red,
        CongestionLevel::Grey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CongestionLevel::Green => "green",
            CongestionLevel::Yellow => "yellow",
            CongestionLevel::Red => "red",
            CongestionLevel::Grey => "grey",
        }
    }

    pub fn parse(name: &str) -> Option<CongestionLevel> {
        CongestionLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == name)
    }
}

/// A ratio in thousandths, 0 to 1000: out-of-range values cannot be read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Permille(u16);

impl Permille {
    pub const MAX: u16 = 1000;

    /// `None` beyond 1000.
    pub fn new(value: u16) -> Option<Permille> {
        (value <= Permille::MAX).then_some(Permille(value))
    }

    /// The nearest permille of a ratio, clamped to 0..=1 (NaN reads as 0).
    pub fn of_ratio(ratio: f64) -> Permille {
        let r = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        Permille((r * 1000.0).round() as u16)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Permille {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u16::deserialize(deserializer)?;
        Permille::new(value).ok_or_else(|| serde::de::Error::custom("a permille must be 0 to 1000"))
    }
}

impl schemars::JsonSchema for Permille {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Permille".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Thousandths, 0 to 1000.",
            "type": "integer",
            "minimum": 0,
            "maximum": 1000
        })
    }
}

/// An admission rate an operator sets, in admissions per minute: 1 to [`AdmitPerMin::MAX`].
/// Out-of-range values cannot be read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AdmitPerMin(u32);

impl AdmitPerMin {
    /// 10,000 a second: what one `Admit` may admit at most, every second.
    pub const MAX: u32 = 600_000;

    /// `None` for 0 (that is a pause) and beyond [`AdmitPerMin::MAX`].
    pub fn new(value: u32) -> Option<AdmitPerMin> {
        (1..=AdmitPerMin::MAX)
            .contains(&value)
            .then_some(AdmitPerMin(value))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The same rate in admissions per second.
    pub fn per_s(self) -> f64 {
        f64::from(self.0) / 60.0
    }
}

impl<'de> Deserialize<'de> for AdmitPerMin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        AdmitPerMin::new(value)
            .ok_or_else(|| serde::de::Error::custom("an admission rate is 1 to 600000 a minute"))
    }
}

impl schemars::JsonSchema for AdmitPerMin {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AdmitPerMin".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Admissions per minute, 1 to 600000.",
            "type": "integer",
            "minimum": 1,
            "maximum": 600000
        })
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
