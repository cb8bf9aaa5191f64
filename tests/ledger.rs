//! The embedded ledger on the real file log: the same scenarios give the same events as the
//! pure system, a retried command changes nothing, a reopened ledger equals the live one, and a
//! crash between two partitions' appends is finished on reopen without deciding anything twice.

mod common;

use yeyak_domain::system::{Outcome, command_id_from};
use yeyak_domain::{Campaign, ClinicId, Command, CommandBody, DeviceId, Event, Method, System};
use yeyak_ledger::{Ledger, LedgerError, Topology, replay};
use yeyak_log::{EventLog, FileLog, FileLogConfig};

struct OnLedger(Ledger<FileLog>);

impl common::Runner for OnLedger {
    fn run(&mut self, command: Command) -> Outcome {
        self.0.submit(command).expect("the file log works")
    }
}

fn open(dir: &std::path::Path) -> Ledger<FileLog> {
    let log = FileLog::open(FileLogConfig::new(dir)).expect("open log");
    Ledger::open(log, Campaign::default_2021(), Topology::default()).expect("open ledger")
}

fn same_state(a: &System, b: &System) {
    assert_eq!(a.subjects, b.subjects);
    assert_eq!(a.clinics, b.clinics);
    assert_eq!(a.waiting_room, b.waiting_room);
    assert_eq!(a.totals, b.totals);
}

#[test]
fn the_file_ledger_decides_exactly_like_the_pure_system() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = OnLedger(open(dir.path()));
    let mut system = System::new(Campaign::default_2021());
    let on_file = common::run_script(&mut ledger, common::scenarios::script("cancel_and_change"));
    let in_memory = common::run_script(&mut system, common::scenarios::script("cancel_and_change"));
    assert_eq!(on_file, in_memory);
    assert!(on_file.contains("ReservationChanged"), "{on_file}");
    same_state(ledger.0.system(), &system);

    // Reopening replays the log into the same state.
    let live_events = ledger.0.events_total();
    drop(ledger);
    let reopened = open(dir.path());
    same_state(reopened.system(), &system);
    assert_eq!(reopened.events_total(), live_events);
    let (replayed, count) = replay(
        reopened.log(),
        Campaign::default_2021(),
        &Topology::default(),
    )
    .unwrap();
    same_state(&replayed, &system);
    assert_eq!(count, live_events);
}

#[test]
fn a_retried_command_gets_the_first_answer_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    let at = chrono::DateTime::parse_from_rfc3339("2021-08-09T20:00:00+09:00")
        .unwrap()
        .timestamp_millis();
    let verify = Command {
        command_id: command_id_from("verify-once"),
        at_ms: at,
        body: CommandBody::Verify {
            subject: common::subject_of("a"),
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Pass,
            device: DeviceId::new("pc").unwrap(),
        },
    };
    let first = ledger.submit(verify.clone()).unwrap();
    assert!(first.rejection.is_none());
    let before = common::end_offsets(ledger.log());
    let again = ledger.submit(verify.clone()).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        before,
        common::end_offsets(ledger.log()),
        "a retry appends nothing"
    );

    // Also after a restart: the answer comes from the log.
    drop(ledger);
    let mut ledger = open(dir.path());
    let after_restart = ledger.submit(verify).unwrap();
    assert_eq!(first, after_restart);
    assert_eq!(before, common::end_offsets(ledger.log()));
}

#[test]
fn follow_ups_are_not_accepted_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    let forged = Command {
        command_id: command_id_from("forged"),
        at_ms: 0,
        body: CommandBody::ReleaseDose {
            clinic: ClinicId::new("c1").unwrap(),
            reservation: yeyak_domain::ReservationId(uuid::Uuid::nil()),
        },
    };
    assert!(matches!(
        ledger.submit(forged),
        Err(LedgerError::FollowUpFromOutside { .. })
    ));
}

#[test]
fn a_crash_between_the_person_and_the_clinic_is_finished_on_reopen() {
    // Run the scenario up to the booking, then append the person's BookingRequested as a
    // crashed writer would have left it: appended, but no follow-up decided anywhere.
    let dir = tempfile::tempdir().unwrap();
    let script = r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
    ";
    let mut ledger = OnLedger(open(dir.path()));
    common::run_script(&mut ledger, script);
    let ledger = ledger.0;
    let subject = common::subject_of("a");
    let admission = ledger.system().subjects[&subject]
        .admission()
        .unwrap()
        .admission;
    let at = chrono::DateTime::parse_from_rfc3339("2021-08-09T20:05:00+09:00")
        .unwrap()
        .timestamp_millis();
    let book = Command {
        command_id: command_id_from("book-then-crash"),
        at_ms: at,
        body: CommandBody::Book {
            subject,
            requested_for: subject,
            device: DeviceId::new("pc").unwrap(),
            clinic: ClinicId::new("c1").unwrap(),
            date: "2021-08-30".parse().unwrap(),
            admission,
        },
    };
    let (result, envelopes) = ledger.system().decide(&book);
    assert!(result.is_ok());
    assert!(matches!(envelopes[0].event, Event::BookingRequested(_)));
    let (topic, partition) = ledger.topology().locate(&book.body.target());
    let records: Vec<_> = envelopes
        .iter()
        .map(|e| yeyak_ledger::encode(e).unwrap())
        .collect();
    ledger.log().append(topic, partition, &records).unwrap();
    drop(ledger);

    // Reopen: the hold and the settlement are decided once, and the person holds the dose.
    let reopened = open(dir.path());
    let held = reopened.system().subjects[&subject]
        .reservation()
        .expect("the booking was finished");
    assert_eq!(held.clinic.as_str(), "c1");
    assert!(
        reopened.system().violations().is_empty(),
        "{:?}",
        reopened.system().violations()
    );
    let total = reopened.events_total();
    drop(reopened);
    // And reopening again decides nothing new.
    let again = open(dir.path());
    assert_eq!(again.events_total(), total);
    assert_eq!(again.system().subjects[&subject].reservation(), Some(held));
}

#[test]
fn a_torn_tail_loses_only_the_torn_batch() {
    // Cut the clinic partition's file in the middle of its last batch: reopening drops that
    // batch and finishes the booking again, deterministically, with the same ids.
    let dir = tempfile::tempdir().unwrap();
    let script = r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
        book a clinic=c1 date=2021-08-30
    ";
    let mut ledger = OnLedger(open(dir.path()));
    common::run_script(&mut ledger, script);
    let live = ledger.0.system().clone();
    let (topic, partition) = ledger
        .0
        .topology()
        .locate(&yeyak_domain::Target::Clinic(ClinicId::new("c1").unwrap()));
    drop(ledger);
    let partition_dir = dir.path().join(topic).join(partition.to_string());
    let segment = std::fs::read_dir(&partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 7).unwrap();
    drop(file);
    let reopened = open(dir.path());
    same_state(reopened.system(), &live);
}
