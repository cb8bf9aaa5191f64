//! Events: what happened, in the past tense. The log of events is the source of truth; every
//! read model is a fold of it.
//!
//! Events are the wire boundary of the system: each type has a schema version and a JSON Schema
//! in `schemas/<Type>.v<version>.json`. A released schema never changes; a change that is not
//! backward compatible is a new version with an upcaster.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::command::Slot;
use super::{
    AdmissionId, AdmitPerMin, BirthDate, BirthFacts, ClinicId, CongestionLevel, DeviceId,
    GatewayId, Method, OperatorId, Permille, Rejection, RejectionCode, ReservationId, Share,
    SubjectId, TicketNo, TimestampMs, TransferId, VaccinationDate,
};

/// An event with its coordinates: which command it answers, when, and which partition it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7, derived from the command id (so a replay reproduces it).
    pub event_id: Uuid,
    /// The command this event answers; a retry of that command gets these same events.
    pub command_id: Uuid,
    /// The version of this event type's schema.
    pub schema_version: u16,
    pub occurred_at_ms: TimestampMs,
    /// The key of the partition that decided it (subject id, clinic id or `waiting-room`).
    pub partition_key: String,
    pub event: Event,
}

// ---- the person's partition ------------------------------------------------------------------

/// A person completed identity verification (see `wire::SubjectVerified` for what v2 records).
/// In memory, `birth` is what the record holds: the facts the rules need (v2), or the whole
/// date of a v1 record, which re-encodes as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::SubjectVerifiedAny", into = "wire::SubjectVerifiedAny")]
pub struct SubjectVerified {
    pub subject: SubjectId,
    pub method: Method,
    pub device: DeviceId,
    pub birth: BirthDate,
    /// Another verification of this person is refused before this instant.
    pub next_verify_at_ms: TimestampMs,
}

impl JsonSchema for SubjectVerified {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SubjectVerified".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        wire::SubjectVerified::json_schema(generator)
    }
}

/// The shapes `SubjectVerified` has had on the wire, and its upcaster from v1.
mod wire {
    use super::*;

    /// A person completed identity verification. The resident number is never recorded, nor
    /// the birth date: only the two facts the rules need, derived from the number at the edge
    /// (the birth year for the age group, the cohort digit for the booking day).
    #[derive(Serialize, Deserialize, JsonSchema)]
    pub struct SubjectVerified {
        pub subject: SubjectId,
        pub method: Method,
        pub device: DeviceId,
        pub birth_year: u16,
        /// The last digit of the day of month of the birth date (0 to 9).
        #[schemars(range(max = 9))]
        #[serde(deserialize_with = "crate::birth::deserialize_cohort_digit")]
        pub cohort_digit: u8,
        /// Another verification of this person is refused before this instant.
        pub next_verify_at_ms: TimestampMs,
    }

    /// Version 1 (schemas/SubjectVerified.v1.json): the whole birth date.
    #[derive(Serialize, Deserialize)]
    pub struct SubjectVerifiedV1 {
        pub subject: SubjectId,
        pub method: Method,
        pub device: DeviceId,
        pub birth_date: VaccinationDate,
        pub cohort_digit: u8,
        pub next_verify_at_ms: TimestampMs,
    }

    /// Either version, told apart by its fields (`birth_year` or `birth_date`); the envelope's
    /// `schema_version` must agree (`Event::reads_version`).
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum SubjectVerifiedAny {
        V2(SubjectVerified),
        V1(SubjectVerifiedV1),
    }

    impl From<SubjectVerifiedAny> for super::SubjectVerified {
        fn from(any: SubjectVerifiedAny) -> Self {
            match any {
                SubjectVerifiedAny::V2(e) => super::SubjectVerified {
                    subject: e.subject,
                    method: e.method,
                    device: e.device,
                    birth: BirthDate::Minimal(BirthFacts {
                        year: e.birth_year,
                        cohort_digit: e.cohort_digit,
                    }),
                    next_verify_at_ms: e.next_verify_at_ms,
                },
                SubjectVerifiedAny::V1(e) => super::SubjectVerified {
                    subject: e.subject,
                    method: e.method,
                    device: e.device,
                    birth: BirthDate::Whole(e.birth_date),
                    next_verify_at_ms: e.next_verify_at_ms,
                },
            }
        }
    }

    impl From<super::SubjectVerified> for SubjectVerifiedAny {
        fn from(e: super::SubjectVerified) -> Self {
            let facts = e.birth.facts();
            match e.birth {
                BirthDate::Minimal(_) => SubjectVerifiedAny::V2(SubjectVerified {
                    subject: e.subject,
                    method: e.method,
                    device: e.device,
                    birth_year: facts.year,
                    cohort_digit: facts.cohort_digit,
                    next_verify_at_ms: e.next_verify_at_ms,
                }),
                BirthDate::Whole(birth_date) => SubjectVerifiedAny::V1(SubjectVerifiedV1 {
                    subject: e.subject,
                    method: e.method,
                    device: e.device,
                    birth_date,
                    cohort_digit: facts.cohort_digit,
                    next_verify_at_ms: e.next_verify_at_ms,
                }),
            }
        }
    }
}

/// The verifying device holds the person: other devices are refused until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceLocked {
    pub subject: SubjectId,
    pub device: DeviceId,
    pub until_ms: TimestampMs,
}

/// The waiting room admitted this person; the admission is theirs to book with until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdmissionGranted {
    pub subject: SubjectId,
    pub admission: AdmissionId,
    pub ticket: TicketNo,
    pub expires_at_ms: TimestampMs,
}

/// The person's admission was used: a booking or change with it was recorded. Its ticket is done
/// in the waiting room (`TicketRetired` follows), so the person may queue again at once, for a
/// change, instead of waiting for the admission to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdmissionUsed {
    pub subject: SubjectId,
    pub admission: AdmissionId,
    pub ticket: TicketNo,
}

/// A booking passed every rule of the person's partition; the clinic decides the dose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BookingRequested {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
    pub admission: AdmissionId,
}

/// A change passed every rule of the person's partition; the new clinic decides the dose while
/// the old reservation stays untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeRequested {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub replaces: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
    pub admission: AdmissionId,
}

/// The person holds this reservation now (the clinic confirmed the dose).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationRecorded {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
}

/// The person's reservation was replaced by a new one; the old clinic gets its dose back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationChanged {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
    pub replaces: ReservationId,
    pub old_clinic: ClinicId,
    pub old_date: VaccinationDate,
}

/// The clinic refused the dose; the person holds nothing new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BookingFailed {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub code: RejectionCode,
}

/// The new clinic refused the dose; the old reservation stays exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeFailed {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub replaces: ReservationId,
    pub code: RejectionCode,
}

/// The person cancelled; the clinic gets the dose back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationCancelled {
    pub subject: SubjectId,
    pub reservation: ReservationId,
    pub clinic: ClinicId,
    pub date: VaccinationDate,
}

// ---- the waiting room --------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketIssued {
    pub ticket: TicketNo,
    pub subject: SubjectId,
    pub device: DeviceId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketAdmitted {
    pub ticket: TicketNo,
    pub subject: SubjectId,
    pub admission: AdmissionId,
    pub expires_at_ms: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketLeft {
    pub ticket: TicketNo,
    pub subject: SubjectId,
}

/// A silent ticket was skipped: its holder stopped keeping it alive (no heartbeat within the
/// front tier's timeout), so the tickets behind it moved up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketSkipped {
    pub ticket: TicketNo,
    pub subject: SubjectId,
}

/// A person who holds a live ticket asked for a place again (a refresh, a second tab, another
/// gateway): they keep that ticket and its place, and no new ticket is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketKept {
    pub ticket: TicketNo,
    pub subject: SubjectId,
}

/// The admission of this admitted ticket was used to book or change: the ticket is done, and
/// its holder may take a new one at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TicketRetired {
    pub ticket: TicketNo,
    pub subject: SubjectId,
}

/// A person arrived before the waiting room opened and waits in the pre-queue for the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreQueueJoined {
    pub subject: SubjectId,
    pub device: DeviceId,
}

/// The pre-queue was drawn: its `drawn` people get tickets, in the events that follow in the
/// same decision, ordered by SHA-256(`seed` bytes, 0x00, subject id bytes) ascending (ties
/// impossible in practice; broken by subject id). An auditor re-runs the draw from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreQueueDrawn {
    pub seed: String,
    pub drawn: u32,
}

/// A gateway reported the congestion light of one verification method, with what it computed
/// it from: the wait a person starting now should expect (ms), the verifications in flight at
/// the provider and its capacity, the share of recent verifications that failed (thousandths),
/// and whether the provider is up. The latest report of a method is its current light.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CongestionReported {
    pub gateway: GatewayId,
    pub method: Method,
    pub level: CongestionLevel,
    pub wait_ms: u64,
    pub in_flight: u32,
    pub capacity: u32,
    pub failure_permille: Permille,
    pub provider_up: bool,
}

/// An operator switched a verification method's provider out (`outage`) or back in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderSwitched {
    pub method: Method,
    pub outage: bool,
    pub operator: OperatorId,
}

/// An operator paused or resumed admissions, or set their rate. It records the admission
/// control in force after the decision, whole: the latest record is the one in force (none
/// recorded: admitting, at the gateway's configured rate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdmissionsControlled {
    /// While true, no `Admit` admits anyone.
    pub paused: bool,
    /// The rate the admission controller aims at; null: the gateway's configured rate.
    pub admit_per_min: Option<AdmitPerMin>,
    pub operator: OperatorId,
}

// ---- a clinic's partition ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClinicRegistered {
    pub clinic: ClinicId,
    pub name: String,
    pub region: String,
    /// How many day shares each date's doses are split into (the campaign's booking days).
    pub booking_days: u8,
    /// The clinic's road address, one short line (v2; absent in v1 records and when the
    /// registration gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Doses arrived for one date, split over the booking days (`day_shares[i]` for booking day i)
/// and the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupplyRegistered {
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub doses: u32,
    pub day_shares: Vec<u32>,
    pub pool: u32,
    /// The operator who registered the doses (v2; absent in v1 records and from tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorId>,
}

/// The clinic holds a dose for this reservation: the booking (or change) is decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationConfirmed {
    pub clinic: ClinicId,
    pub reservation: ReservationId,
    pub subject: SubjectId,
    pub date: VaccinationDate,
    /// The share the dose was drawn from (a day share that was already released draws on the pool).
    pub share: Share,
    pub replaces: Option<ReservationId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BookingRefused {
    pub clinic: ClinicId,
    pub reservation: ReservationId,
    pub subject: SubjectId,
    pub code: RejectionCode,
}

/// A reservation ended; its dose returns to the date's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DoseReleased {
    pub clinic: ClinicId,
    pub reservation: ReservationId,
    pub date: VaccinationDate,
    pub from_share: Share,
}

/// One day share's leftover moved to the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShareRelease {
    pub date: VaccinationDate,
    pub day: u8,
    pub doses: u32,
}

/// The last booking day closed: every day share left over went to the change window's pool.
/// Recorded once per clinic, by the ledger itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SharesReleased {
    pub clinic: ClinicId,
    pub releases: Vec<ShareRelease>,
}

/// An operator moved unbooked doses between two slots of the same clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DosesMoved {
    pub clinic: ClinicId,
    pub from: Slot,
    pub to: Slot,
    pub doses: u32,
    /// The operator who moved them (v2; absent in v1 records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorId>,
}

/// Doses left this clinic on their way to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DosesWithdrawn {
    pub clinic: ClinicId,
    pub transfer: TransferId,
    pub from: Slot,
    pub to: Slot,
    pub doses: u32,
    /// The operator who moved them (v2; absent in v1 records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DosesDeposited {
    pub clinic: ClinicId,
    pub transfer: TransferId,
    pub from: Slot,
    pub to: Slot,
    pub doses: u32,
}

/// The receiving clinic refused a transfer; the doses go back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransferRefused {
    pub clinic: ClinicId,
    pub transfer: TransferId,
    pub from: Slot,
    pub to: Slot,
    pub doses: u32,
    pub code: RejectionCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DosesReturned {
    pub clinic: ClinicId,
    pub transfer: TransferId,
    pub to: Slot,
    pub doses: u32,
}

// ---- any partition ----------------------------------------------------------------------------

/// A command was refused. Recorded so that a retry of the same command id, and a replay, get
/// the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandRejected {
    pub command: String,
    pub rejection: Rejection,
}

macro_rules! events {
    ($($variant:ident = $version:literal),* $(,)?) => {
        /// Every event type. The serde tag `type` is the type's name; never rename a variant.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Event {
            $($variant($variant),)*
        }

        impl Event {
            /// Every event type's name and current schema version.
            pub const TYPES: &'static [(&'static str, u16)] = &[$((stringify!($variant), $version),)*];

            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => stringify!($variant),)*
                }
            }

            pub fn schema_version(&self) -> u16 {
                match self {
                    $(Event::$variant(_) => $version,)*
                }
            }

            /// The JSON Schema of the payload of the event type `name` (for `schemas/`).
            pub fn payload_schema(name: &str) -> Option<schemars::Schema> {
                match name {
                    $(stringify!($variant) => Some(schemars::schema_for!($variant)),)*
                    _ => None,
                }
            }
        }

        $(impl From<$variant> for Event {
            fn from(e: $variant) -> Event {
                Event::$variant(e)
            }
        })*
    };
}

events! {
    SubjectVerified = 2,
    DeviceLocked = 1,
    AdmissionGranted = 1,
    AdmissionUsed = 1,
    BookingRequested = 1,
    ChangeRequested = 1,
    ReservationRecorded = 1,
    ReservationChanged = 1,
    BookingFailed = 1,
    ChangeFailed = 1,
    ReservationCancelled = 1,
    TicketIssued = 1,
    TicketAdmitted = 1,
    TicketLeft = 1,
    TicketSkipped = 1,
    TicketKept = 1,
    TicketRetired = 1,
    PreQueueJoined = 1,
    PreQueueDrawn = 1,
    CongestionReported = 1,
    ProviderSwitched = 1,
    AdmissionsControlled = 1,
    ClinicRegistered = 2,
    SupplyRegistered = 2,
    ReservationConfirmed = 1,
    BookingRefused = 1,
    DoseReleased = 1,
    SharesReleased = 1,
    DosesMoved = 2,
    DosesWithdrawn = 2,
    DosesDeposited = 1,
    TransferRefused = 1,
    DosesReturned = 1,
    CommandRejected = 1,
}

/// The oldest schema version still read of each event type that has older ones. A record of
/// such a version is read by its upcaster. For `SupplyRegistered`, `DosesMoved` and
/// `DosesWithdrawn` that is serde's: their v2 only added an optional field (the operator), which
/// a v1 record leaves absent (`None`); likewise `ClinicRegistered` v2's address. `SubjectVerified` v2 records the birth year instead of
/// the birth date (data minimisation); a v1 record is read with its date (`BirthDate::Whole`),
/// which the rules use only through the same two facts. The envelope keeps the version it was
/// written with, so a v1 log replays, audits and re-encodes exactly as before.
const READ_FROM_VERSION: &[(&str, u16)] = &[
    ("SubjectVerified", 1),
    ("SupplyRegistered", 1),
    ("DosesMoved", 1),
    ("DosesWithdrawn", 1),
    ("ClinicRegistered", 1),
];

impl Event {
    /// Whether a record of this event's type written under schema `version` is read (the
    /// current version, or an older one with an upcaster), and its payload has that version's
    /// shape where versions differ in shape.
    pub fn reads_version(&self, version: u16) -> bool {
        let current = self.schema_version();
        let oldest = READ_FROM_VERSION
            .iter()
            .find(|(name, _)| *name == self.type_name())
            .map_or(current, |(_, v)| *v);
        let shape_agrees = match self {
            Event::SubjectVerified(e) => e.birth.schema_version() == version,
            _ => true,
        };
        (oldest..=current).contains(&version) && shape_agrees
    }
}
