//! The gateway's side of one submitted command, as a pure state machine: what it does when the
//! command's delivery to the log fails, and when no answer comes. The Kafka submitter
//! (`crate::submit::Kafka`) and the simulator drive it with their own clocks.
//!
//! A delivery that failed is sent again with the same command id (the processor's memory of
//! answered commands makes a copy that did land harmless), at most [`SENDS_MAX`] times and never
//! after the deadline; then the caller is told [`Failure::NotDelivered`]. No answer by the
//! deadline is [`Failure::NoAnswer`]: the command may still be decided, and the caller may ask
//! again with the same id. A request is never forgotten without one of these.

use yeyak_domain::Command;

/// Sends of one command at most (the first and the resends).
pub const SENDS_MAX: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every send failed: the log never acknowledged the command.
    NotDelivered { sends: u32 },
    /// No whole answer by the deadline.
    NoAnswer,
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Wait,
    /// Send the same command again.
    Resend,
    /// Answer the caller with this failure, and stop waiting.
    Fail(Failure),
}

#[derive(Debug, Clone)]
pub struct Submission {
    command: Command,
    sends: u32,
    deadline_ms: u64,
    delivered: bool,
}

impl Submission {
    /// A command sent once at `now_ms`, to be answered by `deadline_ms` (the caller's clock).
    pub fn sent(command: Command, deadline_ms: u64) -> Submission {
        Submission {
            command,
            sends: 1,
            deadline_ms,
            delivered: false,
        }
    }

    pub fn command(&self) -> &Command {
        &self.command
    }

    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// The log acknowledged one of the sends.
    pub fn delivered(&mut self) {
        self.delivered = true;
    }

    /// One send failed.
    pub fn delivery_failed(&mut self, now_ms: u64) -> Next {
        if self.delivered {
            return Next::Wait; // a later copy landed; this one's failure changes nothing
        }
        if self.sends >= SENDS_MAX || now_ms >= self.deadline_ms {
            return Next::Fail(Failure::NotDelivered { sends: self.sends });
        }
        self.sends += 1;
        Next::Resend
    }

    /// Time passed with no answer.
    pub fn tick(&self, now_ms: u64) -> Next {
        if now_ms >= self.deadline_ms {
            Next::Fail(Failure::NoAnswer)
        } else {
            Next::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;
    use yeyak_domain::CommandBody;

    fn admit() -> Command {
        Command {
            command_id: Uuid::from_u128(1),
            at_ms: 0,
            body: CommandBody::Admit {
                tickets_max: 1,
                ttl_ms: 1,
            },
        }
    }

    #[test]
    fn a_failed_delivery_is_sent_again_then_reported_never_forgotten() {
        let mut s = Submission::sent(admit(), 1_000);
        for _ in 1..SENDS_MAX {
            assert_eq!(s.delivery_failed(10), Next::Resend);
        }
        assert_eq!(
            s.delivery_failed(10),
            Next::Fail(Failure::NotDelivered { sends: SENDS_MAX })
        );
        let mut late = Submission::sent(admit(), 1_000);
        assert_eq!(
            late.delivery_failed(1_000),
            Next::Fail(Failure::NotDelivered { sends: 1 })
        );
        let mut landed = Submission::sent(admit(), 1_000);
        landed.delivered();
        assert_eq!(landed.delivery_failed(10), Next::Wait);
        assert_eq!(landed.tick(999), Next::Wait);
        assert_eq!(landed.tick(1_000), Next::Fail(Failure::NoAnswer));
    }
}
