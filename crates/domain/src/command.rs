//! Commands: what someone asks the ledger to do. Imperative names; each is decided by exactly
//! one partition (its [`Target`]).
//!
//! Commands are a wire type (the HTTP tier and the Kafka command topics carry them), so they are
//! versioned by their serde shape: add optional fields, never rename.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AdmissionId, AdmitPerMin, ClinicId, CongestionLevel, DeviceId, GatewayId, Method, OperatorId,
    Permille, RejectionCode, ReservationId, Share, SubjectId, TicketNo, TimestampMs, TransferId,
    VaccinationDate,
};

/// One command, with the facts that make its decision deterministic: its id (idempotency: a
/// retry with the same id gets the same answer) and the instant it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub command_id: Uuid,
    pub at_ms: TimestampMs,
    pub body: CommandBody,
}

/// A place where doses live: one share of one clinic's doses on one vaccination date.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slot {
    pub clinic: ClinicId,
    pub date: VaccinationDate,
    pub share: Share,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandBody {
    // ---- the person's partition ------------------------------------------------------------
    /// A verification completed by an identity provider. `birth_year` and `cohort_digit` (the
    /// last digit of the birth day) were derived at the edge from the resident number, which
    /// itself never travels further, nor does the birth date.
    Verify {
        subject: SubjectId,
        birth_year: u16,
        #[serde(deserialize_with = "crate::birth::deserialize_cohort_digit")]
        cohort_digit: u8,
        method: Method,
        device: DeviceId,
    },
    /// Book a dose. `subject` is who verified; `requested_for` is whom the request names.
    Book {
        subject: SubjectId,
        requested_for: SubjectId,
        device: DeviceId,
        clinic: ClinicId,
        date: VaccinationDate,
        admission: AdmissionId,
    },
    /// Cancel one's reservation (change window only).
    Cancel {
        subject: SubjectId,
        requested_for: SubjectId,
        device: DeviceId,
        reservation: ReservationId,
    },
    /// Change one's reservation to another clinic or date, atomically (change window only).
    Rebook {
        subject: SubjectId,
        requested_for: SubjectId,
        device: DeviceId,
        reservation: ReservationId,
        clinic: ClinicId,
        date: VaccinationDate,
        admission: AdmissionId,
    },

    // ---- the waiting room ------------------------------------------------------------------
    /// Take a place in the waiting room.
    Enqueue {
        subject: SubjectId,
        device: DeviceId,
    },
    /// Give one's place up.
    LeaveQueue {
        subject: SubjectId,
        ticket: TicketNo,
    },
    /// Admit up to `tickets_max` waiting tickets, in order; each admission is valid for `ttl_ms`.
    Admit { tickets_max: u32, ttl_ms: i64 },
    /// Wait in the pre-queue: before the waiting room opens, arrivals get no ticket yet; the
    /// draw at opening orders them.
    JoinPreQueue {
        subject: SubjectId,
        device: DeviceId,
    },
    /// Order everyone in the pre-queue by a draw under `seed` (published by the front tier and
    /// recorded in the event) and give them tickets in that order, behind every waiting ticket.
    DrawPreQueue { seed: String },
    /// Skip a waiting ticket whose holder went silent (the front tier's heartbeat timed out),
    /// so it does not stall the queue.
    SkipTicket { ticket: TicketNo },
    /// A gateway's congestion light of one verification method and what it was computed from,
    /// recorded for the `congestion` read model (the waiting room decides it: one partition,
    /// a few reports per method and minute).
    ReportCongestion {
        gateway: GatewayId,
        method: Method,
        level: CongestionLevel,
        /// The wait a person starting now should expect at the provider (ms).
        wait_ms: u64,
        in_flight: u32,
        capacity: u32,
        failure_permille: Permille,
        /// False while the provider is out.
        provider_up: bool,
    },
    /// An operator switched a verification method's provider out (or back in); recorded by
    /// the waiting room with who did it (it changes nothing there).
    SwitchProvider {
        method: Method,
        outage: bool,
        operator: OperatorId,
    },

    /// An operator paused or resumed admissions, or set their rate (a field left out keeps
    /// what is in force); recorded by the waiting room with who did it, and followed by it: no
    /// `Admit` admits anyone while admissions are paused.
    ControlAdmissions {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        admit_per_min: Option<AdmitPerMin>,
        operator: OperatorId,
    },

    // ---- a clinic's partition (operators) ----------------------------------------------------
    /// Register doses of a clinic for one vaccination date; the first registration names the
    /// clinic. The ledger splits the doses evenly over the booking days.
    RegisterSupply {
        clinic: ClinicId,
        name: String,
        region: String,
        date: VaccinationDate,
        doses: u32,
        /// The clinic's road address, one short line (absent from commands of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// Who registered it (absent from tools and from commands of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<OperatorId>,
    },
    /// Move unbooked doses from one slot to another (the source clinic decides).
    Rebalance {
        from: Slot,
        to: Slot,
        doses: u32,
        /// Who moved them (absent from commands of older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<OperatorId>,
    },
    /// Time passes at a clinic: releases the day shares to the pool once the last booking day is over.
    Tick { clinic: ClinicId },

    // ---- follow-ups: derived from another partition's event, never accepted from outside ----
    /// (waiting room -> person) An admission was granted.
    GrantAdmission {
        subject: SubjectId,
        admission: AdmissionId,
        ticket: TicketNo,
        expires_at_ms: TimestampMs,
    },
    /// (person -> waiting room) An admission was used: its ticket is done.
    RetireTicket {
        subject: SubjectId,
        ticket: TicketNo,
    },
    /// (person -> clinic) Hold a dose for a requested booking or change.
    HoldDose {
        clinic: ClinicId,
        reservation: ReservationId,
        subject: SubjectId,
        date: VaccinationDate,
        share: Share,
        replaces: Option<ReservationId>,
    },
    /// (clinic -> person) The clinic's answer to a hold.
    SettleBooking {
        subject: SubjectId,
        reservation: ReservationId,
        refused: Option<RejectionCode>,
    },
    /// (person -> clinic) A reservation ended (cancelled or replaced): give its dose back.
    ReleaseDose {
        clinic: ClinicId,
        reservation: ReservationId,
    },
    /// (clinic -> clinic) Doses withdrawn elsewhere arrive here.
    DepositDoses {
        transfer: TransferId,
        from: Slot,
        to: Slot,
        doses: u32,
    },
    /// (clinic -> clinic) A deposit was refused: take the doses back.
    ReturnDoses {
        transfer: TransferId,
        from: Slot,
        doses: u32,
        refused: RejectionCode,
    },
}

/// The partition that decides a command: single writer per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Subject(SubjectId),
    Clinic(ClinicId),
    WaitingRoom,
}

/// The one key of the waiting room partition.
pub const WAITING_ROOM_KEY: &str = "waiting-room";

impl Target {
    /// The log key of the partition that owns this target.
    pub fn key(&self) -> String {
        match self {
            Target::Subject(s) => s.to_hex(),
            Target::Clinic(c) => c.as_str().to_owned(),
            Target::WaitingRoom => WAITING_ROOM_KEY.to_owned(),
        }
    }
}

impl CommandBody {
    pub fn target(&self) -> Target {
        use CommandBody::*;
        match self {
            Verify { subject, .. }
            | Book { subject, .. }
            | Cancel { subject, .. }
            | Rebook { subject, .. }
            | GrantAdmission { subject, .. }
            | SettleBooking { subject, .. } => Target::Subject(*subject),
            Enqueue { .. }
            | LeaveQueue { .. }
            | Admit { .. }
            | JoinPreQueue { .. }
            | DrawPreQueue { .. }
            | SkipTicket { .. }
            | ReportCongestion { .. }
            | SwitchProvider { .. }
            | ControlAdmissions { .. }
            | RetireTicket { .. } => Target::WaitingRoom,
            RegisterSupply { clinic, .. }
            | Tick { clinic }
            | HoldDose { clinic, .. }
            | ReleaseDose { clinic, .. } => Target::Clinic(clinic.clone()),
            Rebalance { from, .. } | ReturnDoses { from, .. } => {
                Target::Clinic(from.clinic.clone())
            }
            DepositDoses { to, .. } => Target::Clinic(to.clinic.clone()),
        }
    }

    /// Follow-ups are produced by the ledger itself; the edge refuses them from outside.
    pub fn is_follow_up(&self) -> bool {
        use CommandBody::*;
        matches!(
            self,
            GrantAdmission { .. }
                | RetireTicket { .. }
                | HoldDose { .. }
                | SettleBooking { .. }
                | ReleaseDose { .. }
                | DepositDoses { .. }
                | ReturnDoses { .. }
        )
    }

    /// The command's name, as recorded with a rejection.
    pub fn name(&self) -> &'static str {
        use CommandBody::*;
        match self {
            Verify { .. } => "verify",
            Book { .. } => "book",
            Cancel { .. } => "cancel",
            Rebook { .. } => "rebook",
            Enqueue { .. } => "enqueue",
            LeaveQueue { .. } => "leave_queue",
            Admit { .. } => "admit",
            JoinPreQueue { .. } => "join_pre_queue",
            DrawPreQueue { .. } => "draw_pre_queue",
            SkipTicket { .. } => "skip_ticket",
            ReportCongestion { .. } => "report_congestion",
            SwitchProvider { .. } => "switch_provider",
            ControlAdmissions { .. } => "control_admissions",
            RegisterSupply { .. } => "register_supply",
            Rebalance { .. } => "rebalance",
            Tick { .. } => "tick",
            GrantAdmission { .. } => "grant_admission",
            RetireTicket { .. } => "retire_ticket",
            HoldDose { .. } => "hold_dose",
            SettleBooking { .. } => "settle_booking",
            ReleaseDose { .. } => "release_dose",
            DepositDoses { .. } => "deposit_doses",
            ReturnDoses { .. } => "return_doses",
        }
    }
}
