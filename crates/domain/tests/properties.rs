//! Property tests: random interleavings of commands from several people, devices, clinics and
//! instants, checked after every step against the invariants and against a small reference
//! model of the verification rules; at the end, a replay of the events must rebuild the same
//! state. The seed of a failing case is printed by proptest and kept in
//! `tests/properties.proptest-regressions`.

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use uuid::Uuid;

use yeyak_domain::command::Slot;
use yeyak_domain::{
    AdmissionId, BirthFacts, Campaign, ClinicId, Command, CommandBody, DeviceId, Envelope, Event,
    Method, RejectionCode, ReservationId, Share, SubjectId, System, TicketNo,
};

const PEOPLE: [&str; 6] = [
    "1990-05-09",
    "1985-02-19",
    "1999-01-01",
    "2003-12-13",
    "1960-03-09",
    "1972-01-10",
];
const CLINICS: [&str; 3] = ["c1", "c2", "c3"];
const DATES: [&str; 3] = ["2021-08-30", "2021-09-02", "2021-12-25"];
const DEVICES: [&str; 2] = ["pc", "phone"];

#[derive(Debug, Clone)]
enum Op {
    Verify {
        person: usize,
        device: usize,
        method: usize,
    },
    Enqueue {
        person: usize,
    },
    Leave {
        person: usize,
    },
    Admit {
        tickets: u32,
    },
    Book {
        person: usize,
        clinic: usize,
        date: usize,
        proxy: bool,
        other_device: bool,
    },
    Cancel {
        person: usize,
    },
    Rebook {
        person: usize,
        clinic: usize,
        date: usize,
    },
    Supply {
        clinic: usize,
        date: usize,
        doses: u32,
    },
    Tick {
        clinic: usize,
    },
    Rebalance {
        from: usize,
        to: usize,
        date: usize,
        pool: bool,
        doses: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PEOPLE.len();
    prop_oneof![
        4 => (p.clone(), 0..2usize, 0..7usize).prop_map(|(person, device, method)| Op::Verify { person, device, method }),
        3 => p.clone().prop_map(|person| Op::Enqueue { person }),
        1 => p.clone().prop_map(|person| Op::Leave { person }),
        2 => (1..4u32).prop_map(|tickets| Op::Admit { tickets }),
        6 => (p.clone(), 0..3usize, 0..3usize, prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(person, clinic, date, proxy, other_device)| Op::Book { person, clinic, date, proxy, other_device }),
        2 => p.clone().prop_map(|person| Op::Cancel { person }),
        2 => (p, 0..3usize, 0..3usize).prop_map(|(person, clinic, date)| Op::Rebook { person, clinic, date }),
        2 => (0..3usize, 0..3usize, 1..25u32).prop_map(|(clinic, date, doses)| Op::Supply { clinic, date, doses }),
        1 => (0..3usize).prop_map(|clinic| Op::Tick { clinic }),
        1 => (0..3usize, 0..3usize, 0..2usize, any::<bool>(), 1..6u32)
            .prop_map(|(from, to, date, pool, doses)| Op::Rebalance { from, to, date, pool, doses }),
    ]
}

/// How far the clock moves before a step: from nothing to a day, so one case crosses several
/// booking days and often reaches the change window.
fn advance_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        1 => Just(1i64),
        3 => Just(60_000i64),
        1 => Just(599_000i64),
        2 => Just(5 * 60_000i64),
        2 => Just(11 * 60_000i64),
        2 => Just(2 * 3_600_000i64),
        2 => Just(9 * 3_600_000i64),
        2 => Just(26 * 3_600_000i64),
    ]
}

#[derive(Default, Clone)]
struct Client {
    device: Option<DeviceId>,
    admission: Option<AdmissionId>,
    ticket: Option<TicketNo>,
    reservation: Option<ReservationId>,
}

/// The reference model of the verification rules, kept apart from the domain's own state.
#[derive(Default, Clone)]
struct VerifyModel {
    last: Option<(i64, DeviceId)>,
}

struct World {
    campaign: Campaign,
    system: System,
    clients: Vec<Client>,
    verify_model: Vec<VerifyModel>,
    log: Vec<Envelope>,
    now_ms: i64,
    step: u64,
}

fn subject(person: usize) -> SubjectId {
    yeyak_domain::script::subject_of(&format!("p{person}"))
}

fn birth(person: usize) -> NaiveDate {
    PEOPLE[person].parse().unwrap()
}

fn clinic(i: usize) -> ClinicId {
    ClinicId::new(CLINICS[i]).unwrap()
}

fn date(i: usize) -> NaiveDate {
    DATES[i].parse().unwrap()
}

impl World {
    fn new() -> World {
        let campaign = Campaign::default_2021();
        World {
            system: System::new(campaign.clone()),
            campaign,
            clients: vec![Client::default(); PEOPLE.len()],
            verify_model: vec![VerifyModel::default(); PEOPLE.len()],
            log: Vec::new(),
            now_ms: chrono::DateTime::parse_from_rfc3339("2021-08-09T19:00:00+09:00")
                .unwrap()
                .timestamp_millis(),
            step: 0,
        }
    }

    fn command(&self, op: &Op) -> CommandBody {
        let nil_reservation = ReservationId(Uuid::nil());
        let nil_admission = AdmissionId(Uuid::nil());
        match op.clone() {
            Op::Verify {
                person,
                device,
                method,
            } => CommandBody::Verify {
                subject: subject(person),
                birth_year: BirthFacts::of_date(birth(person)).year,
                cohort_digit: BirthFacts::of_date(birth(person)).cohort_digit,
                method: Method::ALL[method],
                device: DeviceId::new(DEVICES[device]).unwrap(),
            },
            Op::Enqueue { person } => CommandBody::Enqueue {
                subject: subject(person),
                device: self.device(person, false),
            },
            Op::Leave { person } => CommandBody::LeaveQueue {
                subject: subject(person),
                ticket: self.clients[person].ticket.unwrap_or(TicketNo(u64::MAX)),
            },
            Op::Admit { tickets } => CommandBody::Admit {
                tickets_max: tickets,
                ttl_ms: 20 * 60_000,
            },
            Op::Book {
                person,
                clinic: c,
                date: d,
                proxy,
                other_device,
            } => CommandBody::Book {
                subject: subject(person),
                requested_for: if proxy {
                    subject((person + 1) % PEOPLE.len())
                } else {
                    subject(person)
                },
                device: self.device(person, other_device),
                clinic: clinic(c),
                date: date(d),
                admission: self.clients[person].admission.unwrap_or(nil_admission),
            },
            Op::Cancel { person } => CommandBody::Cancel {
                subject: subject(person),
                requested_for: subject(person),
                device: self.device(person, false),
                reservation: self.clients[person].reservation.unwrap_or(nil_reservation),
            },
            Op::Rebook {
                person,
                clinic: c,
                date: d,
            } => CommandBody::Rebook {
                subject: subject(person),
                requested_for: subject(person),
                device: self.device(person, false),
                reservation: self.clients[person].reservation.unwrap_or(nil_reservation),
                clinic: clinic(c),
                date: date(d),
                admission: self.clients[person].admission.unwrap_or(nil_admission),
            },
            Op::Supply {
                clinic: c,
                date: d,
                doses,
            } => CommandBody::RegisterSupply {
                clinic: clinic(c),
                name: format!("Clinic {c}"),
                region: "seoul".into(),
                date: date(d),
                doses,
                address: None,
                operator: None,
            },
            Op::Tick { clinic: c } => CommandBody::Tick { clinic: clinic(c) },
            Op::Rebalance {
                from,
                to,
                date: d,
                pool,
                doses,
            } => {
                let share = if pool { Share::Pool } else { Share::Day(0) };
                CommandBody::Rebalance {
                    from: Slot {
                        clinic: clinic(from),
                        date: date(d),
                        share,
                    },
                    to: Slot {
                        clinic: clinic(to),
                        date: date((d + 1) % 2),
                        share,
                    },
                    doses,
                    operator: None,
                }
            }
        }
    }

    fn device(&self, person: usize, other: bool) -> DeviceId {
        let own = self.clients[person]
            .device
            .clone()
            .unwrap_or_else(|| DeviceId::new("pc").unwrap());
        if other {
            DeviceId::new(if own.as_str() == "pc" { "phone" } else { "pc" }).unwrap()
        } else {
            own
        }
    }

    fn step(&mut self, advance: i64, op: &Op) -> Result<(), TestCaseError> {
        self.now_ms += advance;
        self.step += 1;
        let body = self.command(op);
        let command = Command {
            command_id: yeyak_domain::system::command_id_from(&format!("step/{}", self.step)),
            at_ms: self.now_ms,
            body: body.clone(),
        };
        let outcome = self.system.execute(command);

        // The reference model of verification: rate limit and first-device lock.
        if let CommandBody::Verify { device, .. } = &body {
            let Op::Verify { person, .. } = op else {
                unreachable!()
            };
            let model = &mut self.verify_model[*person];
            let expected = match &model.last {
                Some((at, d)) if self.now_ms < at + 600_000 && d != device => {
                    Some(RejectionCode::DeviceLocked)
                }
                Some((at, _)) if self.now_ms < at + 600_000 => {
                    Some(RejectionCode::VerifyRateLimited)
                }
                _ => None,
            };
            prop_assert_eq!(
                outcome.rejection.map(|r| r.code),
                expected,
                "verify of p{} at step {}",
                person,
                self.step
            );
            if expected.is_none() {
                model.last = Some((self.now_ms, device.clone()));
            }
        }
        // No proxy booking, ever.
        if let CommandBody::Book {
            subject,
            requested_for,
            ..
        }
        | CommandBody::Rebook {
            subject,
            requested_for,
            ..
        }
        | CommandBody::Cancel {
            subject,
            requested_for,
            ..
        } = &body
        {
            if subject != requested_for {
                prop_assert_eq!(
                    outcome.rejection.map(|r| r.code),
                    Some(RejectionCode::ProxyForbidden)
                );
            }
        }
        for envelope in &outcome.events {
            self.check_event(&body, envelope)?;
            self.learn(envelope);
        }
        self.log.extend(outcome.events);

        let violations = self.system.violations();
        prop_assert!(
            violations.is_empty(),
            "after step {} ({:?}): {:?}",
            self.step,
            op,
            violations
        );
        Ok(())
    }

    /// Rules that every event must satisfy, checked against the campaign independently of the
    /// decision that produced it.
    fn check_event(&self, body: &CommandBody, envelope: &Envelope) -> Result<(), TestCaseError> {
        let at = envelope.occurred_at_ms;
        let recorded = match &envelope.event {
            Event::ReservationRecorded(e) => Some((e.subject, e.share, e.clinic.clone())),
            Event::ReservationChanged(e) => Some((e.subject, e.share, e.clinic.clone())),
            _ => None,
        };
        if let Some((who, share, _)) = recorded {
            let person = (0..PEOPLE.len()).find(|&p| subject(p) == who).unwrap();
            let born = birth(person);
            prop_assert!(
                self.campaign.is_eligible(BirthFacts::of_date(born)),
                "an ineligible person holds a reservation"
            );
            if let CommandBody::Book {
                subject,
                requested_for,
                ..
            }
            | CommandBody::Rebook {
                subject,
                requested_for,
                ..
            } = body
            {
                prop_assert_eq!(subject, requested_for);
                prop_assert_eq!(
                    *subject,
                    who,
                    "a reservation for someone other than the requester"
                );
            }
            // Booking days by the last digit of the birth day, 20:00 to 18:00 the next day.
            let digit = (born.day() % 10) as u8;
            let own_day = self
                .campaign
                .booking_days
                .iter()
                .position(|d| d.digit == digit)
                .unwrap() as u8;
            let window = self.campaign.booking_days[usize::from(own_day)].window;
            let change = self.campaign.change_window;
            match share {
                Share::Day(d) => {
                    prop_assert_eq!(d, own_day, "drew on another booking day's share");
                    prop_assert!(window.opens_at_ms <= at && at < change.closes_at_ms);
                }
                Share::Pool => {
                    prop_assert!(at >= self.campaign.release_at_ms() && at < change.closes_at_ms)
                }
            }
            prop_assert!(
                window.contains(at) || change.contains(at),
                "a reservation outside the person's day or window"
            );
        }
        if let Event::DeviceLocked(e) = &envelope.event {
            prop_assert_eq!(e.until_ms, at + 600_000);
        }
        Ok(())
    }

    fn learn(&mut self, envelope: &Envelope) {
        let find = |s: SubjectId| (0..PEOPLE.len()).find(|&p| subject(p) == s);
        match &envelope.event {
            Event::SubjectVerified(e) => {
                if let Some(p) = find(e.subject) {
                    self.clients[p].device = Some(e.device.clone());
                }
            }
            Event::AdmissionGranted(e) => {
                if let Some(p) = find(e.subject) {
                    self.clients[p].admission = Some(e.admission);
                }
            }
            Event::TicketIssued(e) => {
                if let Some(p) = find(e.subject) {
                    self.clients[p].ticket = Some(e.ticket);
                }
            }
            Event::ReservationRecorded(e) => {
                if let Some(p) = find(e.subject) {
                    self.clients[p].reservation = Some(e.reservation);
                }
            }
            Event::ReservationChanged(e) => {
                if let Some(p) = find(e.subject) {
                    self.clients[p].reservation = Some(e.reservation);
                }
            }
            _ => {}
        }
    }

    /// Replaying every event into a fresh system rebuilds exactly the live state.
    fn check_replay(&self) -> Result<(), TestCaseError> {
        let mut replayed = System::new(self.campaign.clone());
        for envelope in &self.log {
            replayed.apply(envelope);
        }
        prop_assert_eq!(&replayed.subjects, &self.system.subjects);
        prop_assert_eq!(&replayed.clinics, &self.system.clinics);
        prop_assert_eq!(&replayed.waiting_room, &self.system.waiting_room);
        prop_assert_eq!(&replayed.totals, &self.system.totals);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(steps in prop::collection::vec((advance_ms(), op()), 1..160)) {
        let mut world = World::new();
        for (advance, op) in &steps {
            world.step(*advance, op)?;
        }
        world.check_replay()?;
    }

    #[test]
    fn a_retried_command_gets_the_same_events(steps in prop::collection::vec((advance_ms(), op()), 1..60)) {
        // Deciding twice from the same state is the same decision: ids included.
        let mut world = World::new();
        for (advance, op) in &steps {
            let body = world.command(op);
            let command = Command {
                command_id: yeyak_domain::system::command_id_from(&format!("retry/{}", world.step)),
                at_ms: world.now_ms + advance,
                body,
            };
            let first = world.system.decide(&command);
            let second = world.system.decide(&command);
            prop_assert_eq!(first, second);
            world.step(*advance, op)?;
        }
    }
}

#[test]
fn the_shares_of_a_clinic_day_are_never_overbooked_in_a_stampede() {
    // 200 people of booking day 0 race for 10 doses (one per booking day): exactly one gets day 0's dose.
    let mut system = System::new(Campaign::default_2021());
    let at = chrono::DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .timestamp_millis();
    let id = |s: &str| yeyak_domain::system::command_id_from(s);
    let supply = CommandBody::RegisterSupply {
        clinic: clinic(0),
        name: "Clinic".into(),
        region: "seoul".into(),
        date: date(0),
        doses: 10,
        address: None,
        operator: None,
    };
    system.execute(Command {
        command_id: id("supply"),
        at_ms: at - 1,
        body: supply,
    });
    let device = DeviceId::new("pc").unwrap();
    let mut confirmed = 0;
    for n in 0..200 {
        let who = yeyak_domain::script::subject_of(&format!("stampede/{n}"));
        let verify = CommandBody::Verify {
            subject: who,
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Kakao,
            device: device.clone(),
        };
        system.execute(Command {
            command_id: id(&format!("v/{n}")),
            at_ms: at,
            body: verify,
        });
        let enqueue = CommandBody::Enqueue {
            subject: who,
            device: device.clone(),
        };
        system.execute(Command {
            command_id: id(&format!("q/{n}")),
            at_ms: at,
            body: enqueue,
        });
    }
    let admitted = system.execute(Command {
        command_id: id("admit"),
        at_ms: at,
        body: CommandBody::Admit {
            tickets_max: 500,
            ttl_ms: 600_000,
        },
    });
    for envelope in &admitted.events {
        if let Event::AdmissionGranted(g) = &envelope.event {
            let book = CommandBody::Book {
                subject: g.subject,
                requested_for: g.subject,
                device: device.clone(),
                clinic: clinic(0),
                date: date(0),
                admission: g.admission,
            };
            let outcome = system.execute(Command {
                command_id: id(&format!("b/{}", g.ticket.0)),
                at_ms: at + 1,
                body: book,
            });
            if matches!(outcome.last_event(), Some(Event::ReservationRecorded(_))) {
                confirmed += 1;
            }
        }
    }
    assert_eq!(
        confirmed, 1,
        "day 0's share of 10 doses is exactly one dose"
    );
    assert!(system.violations().is_empty());
}
