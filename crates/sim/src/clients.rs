//! The people and the operator of a run: each a small state machine that submits commands
//! through the gateway and, when told a failure, asks again with the same command id (as a
//! person pressing the button again would), a bounded number of times.

use chrono::NaiveDate;
use uuid::Uuid;

use yeyak_domain::command::Slot;
use yeyak_domain::system::Outcome;
use yeyak_domain::{
    BirthFacts, ClinicId, Command, CommandBody, DeviceId, Event, Method, OperatorId, Share,
    SubjectId, TimestampMs, VaccinationDate,
};

use crate::gateway::Heard;
use crate::rng::Rng;

/// Tries of one command before a client gives up.
pub const TRIES_MAX: u32 = 8;
pub const DATES: [(i32, u32, u32); 2] = [(2021, 8, 30), (2021, 9, 2)];
pub const CLINICS: [&str; 3] = ["c1", "c2", "c3"];
/// Birth dates whose booking day is the first (digit 9), and one outside the age group.
const ELIGIBLE: [(i32, u32, u32); 4] = [(1990, 5, 9), (1985, 2, 19), (1992, 7, 29), (1999, 12, 9)];
const TOO_OLD: (i32, u32, u32) = (1960, 3, 9);

pub fn date((y, m, d): (i32, u32, u32)) -> VaccinationDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

pub fn clinic(name: &str) -> ClinicId {
    ClinicId::new(name).expect("a valid clinic id")
}

pub fn command_id(rng: &mut Rng) -> Uuid {
    Uuid::from_u128((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Verify,
    Enqueue,
    AwaitAdmission,
    Book,
    Done(&'static str),
}

/// A command being asked, with its tries.
#[derive(Debug, Clone)]
pub struct Asking {
    pub command: Command,
    pub tries: u32,
    pub waiting: bool,
    pub next_at: u64,
}

impl Asking {
    fn new(command: Command, now: u64) -> Asking {
        Asking {
            command,
            tries: 0,
            waiting: false,
            next_at: now,
        }
    }

    /// Whether it should be sent now (and counts the try).
    pub fn due(&mut self, now: u64) -> bool {
        if self.waiting || now < self.next_at {
            return false;
        }
        self.tries += 1;
        self.waiting = true;
        true
    }

    /// A failure heard: ask again later, or give up.
    fn failed(&mut self, now: u64, rng: &mut Rng) -> bool {
        self.waiting = false;
        self.next_at = now + 20 + rng.below(200);
        self.tries < TRIES_MAX
    }
}

pub struct Citizen {
    pub subject: SubjectId,
    birth: BirthFacts,
    device: DeviceId,
    pub stage: Stage,
    pub asking: Option<Asking>,
}

impl Citizen {
    pub fn new(n: usize, rng: &mut Rng) -> Citizen {
        let birth = if rng.chance(100) {
            TOO_OLD
        } else {
            *rng.pick(&ELIGIBLE)
        };
        let mut subject = [0u8; 16];
        subject[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        subject[8..].copy_from_slice(&(n as u64).to_le_bytes());
        Citizen {
            subject: SubjectId(subject),
            birth: BirthFacts::of_date(date(birth)),
            device: DeviceId::new(&format!("device-{n}")).expect("a valid device"),
            stage: Stage::Verify,
            asking: None,
        }
    }

    pub fn done(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// The command to ask now, if any (a new one for a new stage).
    pub fn next(
        &mut self,
        now: u64,
        at_ms: TimestampMs,
        rng: &mut Rng,
        admission: Option<yeyak_domain::AdmissionId>,
    ) -> Option<Command> {
        if self.stage == Stage::AwaitAdmission {
            match admission {
                Some(_) => self.stage = Stage::Book,
                None => return None,
            }
        }
        if self.asking.is_none() {
            let body = self.body(rng, admission)?;
            let command = Command {
                command_id: command_id(rng),
                at_ms,
                body,
            };
            self.asking = Some(Asking::new(command, now));
        }
        let asking = self.asking.as_mut()?;
        asking.due(now).then(|| asking.command.clone())
    }

    fn body(
        &self,
        rng: &mut Rng,
        admission: Option<yeyak_domain::AdmissionId>,
    ) -> Option<CommandBody> {
        let subject = self.subject;
        let device = self.device.clone();
        Some(match self.stage {
            Stage::Verify => CommandBody::Verify {
                subject,
                birth_year: self.birth.year,
                cohort_digit: self.birth.cohort_digit,
                method: *rng.pick(&[Method::Kakao, Method::Naver, Method::Pass]),
                device,
            },
            Stage::Enqueue => CommandBody::Enqueue { subject, device },
            Stage::Book => CommandBody::Book {
                subject,
                requested_for: subject,
                device,
                clinic: clinic(CLINICS[rng.below(CLINICS.len() as u64) as usize]),
                date: date(*rng.pick(&DATES)),
                admission: admission?,
            },
            Stage::AwaitAdmission | Stage::Done(_) => return None,
        })
    }

    /// What the gateway said about the command being asked.
    pub fn hear(&mut self, heard: &Heard, now: u64, rng: &mut Rng) {
        let Some(asking) = self.asking.as_mut() else {
            return;
        };
        match heard {
            Heard::Failed(_) => {
                if !asking.failed(now, rng) {
                    self.stage = Stage::Done("gave up");
                    self.asking = None;
                }
            }
            Heard::Answer(outcome) => {
                self.asking = None;
                self.stage = next_stage(self.stage, outcome);
            }
        }
    }
}

fn next_stage(stage: Stage, outcome: &Outcome) -> Stage {
    let refused = outcome.rejection.is_some();
    match stage {
        Stage::Verify if refused => Stage::Done("not verified"),
        Stage::Verify => Stage::Enqueue,
        Stage::Enqueue if refused => Stage::Done("no ticket"),
        Stage::Enqueue => Stage::AwaitAdmission,
        Stage::Book => {
            let reserved = outcome
                .events
                .iter()
                .any(|e| matches!(e.event, Event::ReservationRecorded(_)));
            Stage::Done(if reserved { "reserved" } else { "not reserved" })
        }
        other => other,
    }
}

/// The operator: supply first, a transfer between clinics, and the waiting room's admissions.
pub struct Operator {
    pub errands: Vec<Asking>,
    next_admit_at: u64,
}

/// How often the operator admits (simulated ms), and how many at once.
const ADMIT_EVERY_MS: u64 = 25;
const ADMIT_AT_ONCE: u32 = 3;

impl Operator {
    pub fn new(at_ms: TimestampMs, rng: &mut Rng) -> Operator {
        let mut errands = Vec::new();
        for name in CLINICS {
            for d in DATES {
                let doses = 10 + rng.below(21) as u32;
                let body = CommandBody::RegisterSupply {
                    clinic: clinic(name),
                    name: format!("Clinic {name}"),
                    region: "seoul".to_owned(),
                    date: date(d),
                    doses,
                    address: None,
                    operator: OperatorId::new("sim-operator"),
                };
                errands.push(Asking::new(
                    Command {
                        command_id: command_id(rng),
                        at_ms,
                        body,
                    },
                    0,
                ));
            }
        }
        let transfer = CommandBody::Rebalance {
            from: Slot {
                clinic: clinic("c1"),
                date: date(DATES[0]),
                share: Share::Day(0),
            },
            to: Slot {
                clinic: clinic("c3"),
                date: date(DATES[0]),
                share: Share::Day(0),
            },
            doses: 1,
            operator: OperatorId::new("sim-operator"),
        };
        errands.push(Asking::new(
            Command {
                command_id: command_id(rng),
                at_ms: at_ms + 50,
                body: transfer,
            },
            50,
        ));
        Operator {
            errands,
            next_admit_at: 30,
        }
    }

    /// An admission, if it is time (fire and forget: one that finds nobody has no answer).
    pub fn admit(&mut self, now: u64, at_ms: TimestampMs, rng: &mut Rng) -> Option<Command> {
        if now < self.next_admit_at {
            return None;
        }
        self.next_admit_at = now + ADMIT_EVERY_MS;
        Some(Command {
            command_id: command_id(rng),
            at_ms,
            body: CommandBody::Admit {
                tickets_max: ADMIT_AT_ONCE,
                ttl_ms: 10 * 60 * 1000,
            },
        })
    }

    pub fn hear(
        &mut self,
        id: Uuid,
        heard: &Heard,
        now: u64,
        rng: &mut Rng,
    ) -> Option<&'static str> {
        let i = self
            .errands
            .iter()
            .position(|e| e.command.command_id == id)?;
        match heard {
            Heard::Answer(_) => {
                self.errands.remove(i);
                None
            }
            Heard::Failed(_) => {
                if self.errands[i].failed(now, rng) {
                    None
                } else {
                    self.errands.remove(i);
                    Some("an operator's command was never answered")
                }
            }
        }
    }
}
