//! The ledger's invariants: one vocabulary for the live checker ([`crate::System::violations`]),
//! the auditors' rules (`yeyak_read::audit::rules`) and the table of ARCHITECTURE.md. The code
//! of each is what reports and JSON carry; it never changes once released.

use std::fmt;

/// An invariant of the ledger, named after the rule; in the order the auditors' summary lists
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// No share of a clinic's date holds more bookings than its capacity.
    ShareNotOverbooked,
    /// At most one active reservation per person at every instant; the person and the clinic
    /// agree on it.
    OneActiveReservation,
    /// Bookings only on the person's booking day, or from the pool in the change window.
    BookingDayOrChangeWindow,
    /// Bookings only by people of the campaign's age group.
    EligibleAgeGroup,
    /// Every booking and change uses a live admission of the waiting room.
    LiveAdmission,
    /// No verification within the verify interval of the last.
    VerifyInterval,
    /// No verification from a second device while the first one holds the lock.
    DeviceLock,
    /// Doses are conserved across supply, bookings, releases, rebalances and transfers.
    DosesConserved,
    /// Supply is split evenly over the booking days still open.
    EvenSplit,
    /// Every command is answered exactly once, every follow-up by the right partition.
    AnsweredOnce,
    /// Every event is consistent with what its partition held.
    ConsistentWithPartition,
    /// Every command record the log accepted (the command topics, on Kafka) is answered, and
    /// every record that is not a command has a dead letter.
    CommandRecordAnswered,
    /// The opening draw gives the pre-queue its tickets in the order its recorded seed gives.
    OpeningDraw,
}

impl Invariant {
    pub const ALL: [Invariant; 13] = [
        Invariant::ShareNotOverbooked,
        Invariant::OneActiveReservation,
        Invariant::BookingDayOrChangeWindow,
        Invariant::EligibleAgeGroup,
        Invariant::LiveAdmission,
        Invariant::VerifyInterval,
        Invariant::DeviceLock,
        Invariant::DosesConserved,
        Invariant::EvenSplit,
        Invariant::AnsweredOnce,
        Invariant::ConsistentWithPartition,
        Invariant::CommandRecordAnswered,
        Invariant::OpeningDraw,
    ];

    /// The stable code of a breach of this invariant, as reports carry it.
    // Do not change: auditors' reports and their tooling key on these codes.
    pub fn code(self) -> &'static str {
        match self {
            Invariant::ShareNotOverbooked => "overbooked",
            Invariant::OneActiveReservation => "two_active_reservations",
            Invariant::BookingDayOrChangeWindow => "outside_booking_day",
            Invariant::EligibleAgeGroup => "not_eligible",
            Invariant::LiveAdmission => "without_admission",
            Invariant::VerifyInterval => "verify_too_soon",
            Invariant::DeviceLock => "second_device_in_lock",
            Invariant::DosesConserved => "doses_not_conserved",
            Invariant::EvenSplit => "uneven_split",
            Invariant::AnsweredOnce => "answered_once",
            Invariant::ConsistentWithPartition => "inconsistent",
            Invariant::CommandRecordAnswered => "command_unanswered",
            Invariant::OpeningDraw => "draw_out_of_order",
        }
    }

    /// The rule in one sentence, as the auditors' summary prints it.
    pub fn rule(self) -> &'static str {
        match self {
            Invariant::ShareNotOverbooked => "no share overbooked",
            Invariant::OneActiveReservation => {
                "at most one active reservation per person at every instant"
            }
            Invariant::BookingDayOrChangeWindow => {
                "bookings only on the person's booking day, or from the pool in the change window"
            }
            Invariant::EligibleAgeGroup => "bookings only by people of the campaign's age group",
            Invariant::LiveAdmission => {
                "every booking and change uses a live admission of the waiting room"
            }
            Invariant::VerifyInterval => {
                "no verification within the verify interval (10 minutes) of the last"
            }
            Invariant::DeviceLock => {
                "no verification from a second device while the first one holds the lock"
            }
            Invariant::DosesConserved => {
                "doses conserved across supply, bookings, releases, rebalances and transfers"
            }
            Invariant::EvenSplit => "supply split evenly over the booking days still open",
            Invariant::AnsweredOnce => {
                "every command answered exactly once, every follow-up by the right partition"
            }
            Invariant::ConsistentWithPartition => {
                "every event consistent with what its partition held"
            }
            Invariant::CommandRecordAnswered => {
                "every command the log accepted answered, every other record dead-lettered"
            }
            Invariant::OpeningDraw => {
                "the opening draw's tickets in the order its recorded seed gives the pre-queue"
            }
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A broken invariant: which one, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invariant_has_its_own_code_and_rule() {
        let codes: std::collections::BTreeSet<_> =
            Invariant::ALL.iter().map(|i| i.code()).collect();
        let rules: std::collections::BTreeSet<_> =
            Invariant::ALL.iter().map(|i| i.rule()).collect();
        assert_eq!(codes.len(), Invariant::ALL.len());
        assert_eq!(rules.len(), Invariant::ALL.len());
        let mut sorted = Invariant::ALL;
        sorted.sort();
        assert_eq!(sorted, Invariant::ALL, "ALL is in declaration order");
    }
}
