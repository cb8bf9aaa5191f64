//! The command ids a processor has answered, so that a client's retry of a command (same id,
//! sent again) is not decided twice, in memory bounded by time rather than by people.
//!
//! What needs remembering, and for how long:
//! - Follow-ups (hold, settle, grant, retire, release, deposit, return) never: each is produced in the
//!   same Kafka transaction as the event that causes it and consumed with the offsets committed
//!   in the transaction of its decision, so it is delivered exactly once (or decided in the very
//!   transaction that produced it, see `Processor`).
//! - Operators' commands to a clinic (supply, rebalance) for good: they are few, and deciding a
//!   late retry of `RegisterSupply` again would add the doses twice.
//! - Every other outside command (verify, book, cancel, change, enqueue, leave, admit, tick) for
//!   `window_ms` of command time after the newest command seen. Clients retry within seconds;
//!   a retry older than the window is decided again, as a new command, and the partition's rules
//!   (already reserved, already queued, the verification rate limit) answer it.
//!
//! Ids answered inside a Kafka transaction are only *pending* until it commits: an abort forgets
//! them ([`Decided::forget_pending`]), so the redelivered commands are decided again rather than
//! skipped as duplicates of decisions that never became visible.

use std::collections::HashSet;

use uuid::Uuid;

use yeyak_domain::{Command, CommandBody, Envelope, Event, TimestampMs};

/// The default window: ten minutes of command time, the length of the seed's own rules.
pub const DEDUP_WINDOW_MS_DEFAULT: i64 = 10 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct Decided {
    window_ms: i64,
    lasting: HashSet<Uuid>,
    /// Two generations of recent ids: `current` began at `current_from_ms`; an id stays at
    /// least `window_ms` (and less than twice that) after the newest command time seen when it
    /// was recorded. Two sets instead of an index by time keep 16 bytes and a control byte per id.
    current: HashSet<Uuid>,
    previous: HashSet<Uuid>,
    current_from_ms: TimestampMs,
    /// Answered in the open transaction: `(id, command time, lasting)`.
    pending: Vec<(Uuid, TimestampMs, bool)>,
    pending_ids: HashSet<Uuid>,
}

impl Decided {
    pub fn new(window_ms: i64) -> Decided {
        Decided {
            window_ms: window_ms.max(1),
            lasting: HashSet::new(),
            current: HashSet::new(),
            previous: HashSet::new(),
            current_from_ms: TimestampMs::MIN,
            pending: Vec::new(),
            pending_ids: HashSet::new(),
        }
    }

    /// Whether `command` was answered already. Follow-ups are never duplicates (see above).
    pub fn answered(&self, command: &Command) -> bool {
        let id = &command.command_id;
        !command.body.is_follow_up()
            && (self.current.contains(id)
                || self.previous.contains(id)
                || self.lasting.contains(id)
                || self.pending_ids.contains(id))
    }

    /// Records that `command` was answered (decided with at least one event) in the open
    /// transaction: pending until [`Decided::settle`] or [`Decided::forget_pending`].
    pub fn remember(&mut self, command: &Command) {
        if command.body.is_follow_up() || !self.pending_ids.insert(command.command_id) {
            return;
        }
        let lasting = matches!(
            command.body,
            CommandBody::RegisterSupply { .. } | CommandBody::Rebalance { .. }
        );
        self.pending
            .push((command.command_id, command.at_ms, lasting));
    }

    /// The open transaction committed: its answers are remembered.
    pub fn settle(&mut self) {
        for (id, at_ms, lasting) in std::mem::take(&mut self.pending) {
            self.insert(id, at_ms, lasting);
        }
        self.pending_ids.clear();
    }

    /// The open transaction aborted: none of its answers happened.
    pub fn forget_pending(&mut self) {
        self.pending.clear();
        self.pending_ids.clear();
    }

    /// Records the command an event of the log answers (when a partition's state is rebuilt).
    /// Which command it was is not in the envelope; the event type tells an operator's supply
    /// or rebalance (kept for good) and a follow-up's answer (not kept) from the rest.
    pub fn remember_event(&mut self, envelope: &Envelope) {
        let kind = match &envelope.event {
            Event::ClinicRegistered(_)
            | Event::SupplyRegistered(_)
            | Event::DosesMoved(_)
            | Event::DosesWithdrawn(_) => Some(true),
            Event::AdmissionGranted(_)
            | Event::AdmissionUsed(_)
            | Event::TicketRetired(_)
            | Event::ReservationConfirmed(_)
            | Event::BookingRefused(_)
            | Event::ReservationRecorded(_)
            | Event::BookingFailed(_)
            | Event::ReservationChanged(_)
            | Event::ChangeFailed(_)
            | Event::DoseReleased(_)
            | Event::DosesDeposited(_)
            | Event::TransferRefused(_)
            | Event::DosesReturned(_) => None,
            Event::CommandRejected(e) => match e.command.as_str() {
                "register_supply" | "rebalance" => Some(true),
                "grant_admission" | "retire_ticket" | "hold_dose" | "settle_booking"
                | "release_dose" | "deposit_doses" | "return_doses" => None,
                _ => Some(false),
            },
            _ => Some(false),
        };
        if let Some(lasting) = kind {
            self.insert(envelope.command_id, envelope.occurred_at_ms, lasting);
        }
    }

    fn insert(&mut self, id: Uuid, at_ms: TimestampMs, lasting: bool) {
        if lasting {
            self.lasting.insert(id);
            return;
        }
        if self.current_from_ms == TimestampMs::MIN {
            self.current_from_ms = at_ms;
        }
        if at_ms >= self.current_from_ms.saturating_add(self.window_ms) {
            let skipped_a_generation =
                at_ms >= self.current_from_ms.saturating_add(2 * self.window_ms);
            self.previous = std::mem::take(&mut self.current);
            if skipped_a_generation {
                self.previous.clear();
            }
            self.current_from_ms = at_ms;
        }
        // Remembered whatever its time: a command stamped behind the newest one seen (another
        // gateway's clock behind, a rehearsal's clock moved back) is still a command whose retry
        // must not be decided again; it leaves with its generation.
        self.current.insert(id);
    }

    /// How many ids are held (for stats and the memory measurement).
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len() + self.lasting.len() + self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yeyak_domain::{ClinicId, DeviceId, SubjectId, VaccinationDate};

    fn enqueue(id: u128, at_ms: i64) -> Command {
        Command {
            command_id: Uuid::from_u128(id),
            at_ms,
            body: CommandBody::Enqueue {
                subject: SubjectId([1; 16]),
                device: DeviceId::new("d").unwrap(),
            },
        }
    }

    #[test]
    fn a_retry_inside_the_window_is_answered_and_an_old_one_is_forgotten() {
        let mut decided = Decided::new(10 * 60_000);
        let first = enqueue(1, 0);
        decided.remember(&first);
        decided.settle();
        assert!(decided.answered(&first));
        decided.remember(&enqueue(2, 10 * 60_000));
        decided.settle();
        assert!(
            decided.answered(&first),
            "a window after it, it is still remembered"
        );
        decided.remember(&enqueue(3, 19 * 60_000));
        decided.settle();
        assert!(
            decided.answered(&first),
            "less than two windows after it, it may still be remembered"
        );
        decided.remember(&enqueue(4, 20 * 60_000));
        decided.settle();
        assert!(
            !decided.answered(&first),
            "two windows after it, it is forgotten"
        );
        assert!(
            decided.answered(&enqueue(2, 10 * 60_000)),
            "one window after it, it is remembered"
        );
        assert!(decided.answered(&enqueue(3, 19 * 60_000)));
        assert_eq!(decided.len(), 3);
    }

    /// One command stamped far ahead (a gateway whose clock is wrong) once made every command
    /// behind it unremembered, and their retries were decided again.
    #[test]
    fn a_command_stamped_behind_the_newest_is_remembered_too() {
        let mut decided = Decided::new(10 * 60_000);
        decided.remember(&enqueue(1, 5 * 365 * 24 * 3_600_000));
        decided.settle();
        let behind = enqueue(2, 0);
        decided.remember(&behind);
        decided.settle();
        assert!(decided.answered(&behind));
    }

    #[test]
    fn supply_is_remembered_for_good_and_follow_ups_never() {
        let mut decided = Decided::new(60_000);
        let supply = Command {
            command_id: Uuid::from_u128(7),
            at_ms: 0,
            body: CommandBody::RegisterSupply {
                clinic: ClinicId::new("c1").unwrap(),
                name: "n".into(),
                region: "r".into(),
                date: VaccinationDate::from_ymd_opt(2021, 8, 1).unwrap(),
                doses: 5,
                address: None,
                operator: None,
            },
        };
        decided.remember(&supply);
        decided.settle();
        let release = Command {
            command_id: Uuid::from_u128(8),
            at_ms: 0,
            body: CommandBody::ReleaseDose {
                clinic: ClinicId::new("c1").unwrap(),
                reservation: yeyak_domain::ReservationId(Uuid::from_u128(9)),
            },
        };
        decided.remember(&release);
        decided.settle();
        decided.remember(&enqueue(2, 3_600_000));
        decided.settle();
        assert!(decided.answered(&supply));
        assert!(!decided.answered(&release));
        assert_eq!(decided.len(), 2);
    }

    #[test]
    fn an_aborted_transaction_answered_nothing() {
        let mut decided = Decided::new(60_000);
        let kept = enqueue(1, 0);
        decided.remember(&kept);
        decided.settle();
        let lost = enqueue(2, 10);
        decided.remember(&lost);
        assert!(
            decided.answered(&lost),
            "inside its transaction it is answered"
        );
        decided.forget_pending();
        assert!(
            !decided.answered(&lost),
            "after the abort it must be decided again"
        );
        assert!(decided.answered(&kept));
        assert_eq!(decided.len(), 1);
    }
}
