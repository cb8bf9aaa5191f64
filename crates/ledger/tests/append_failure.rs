//! The embedded ledger on a log that reports a failed append: written anyway, not written, or
//! failed half-way through a decision's chain. Nothing is lost and nothing is written twice.

use std::sync::Mutex;

use chrono::NaiveDate;
use uuid::Uuid;

use yeyak_domain::command::Slot;
use yeyak_domain::system::Outcome;
use yeyak_domain::{
    Campaign, ClinicId, Command, CommandBody, DeviceId, Envelope, Method, Share, SubjectId,
};
use yeyak_ledger::{Ledger, LedgerError, Topology, read_all};
use yeyak_log::{EventLog, FileLog, FileLogConfig, LogError, Offset, Record, StoredRecord};

/// How a failing append fails.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failing {
    /// Written, then reported failed (an fsync that failed after the write).
    Written,
    /// Not written, reported failed.
    NotWritten,
}

/// A file log whose chosen appends fail: `(appends so far, [(append number, how)])`.
struct Flaky {
    inner: FileLog,
    plan: Mutex<(u32, Vec<(u32, Failing)>)>,
    /// Syncs so far, and the number of the one that fails, if any.
    syncs: Mutex<(u32, Option<u32>)>,
}

impl Flaky {
    fn new(dir: &std::path::Path) -> Flaky {
        Flaky {
            inner: FileLog::open(FileLogConfig::new(dir)).expect("open the log"),
            plan: Mutex::new((0, Vec::new())),
            syncs: Mutex::new((0, None)),
        }
    }

    /// The next sync fails (after its data may well have reached the disk).
    fn fail_next_sync(&self) {
        let mut syncs = self.syncs.lock().unwrap();
        syncs.1 = Some(syncs.0);
    }

    fn syncs(&self) -> u32 {
        self.syncs.lock().unwrap().0
    }

    /// The `nth` append from now (0: the next) fails `how`.
    fn fail(&self, nth: u32, how: Failing) {
        let mut plan = self.plan.lock().unwrap();
        let at = plan.0 + nth;
        plan.1.push((at, how));
    }
}

fn injected() -> LogError {
    LogError::Io {
        path: "flaky".into(),
        source: std::io::Error::other("injected failure"),
    }
}

impl EventLog for Flaky {
    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        self.inner.ensure_topic(topic, partitions)
    }
    fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.inner.partitions(topic)
    }
    fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Offset, LogError> {
        let how = {
            let mut plan = self.plan.lock().unwrap();
            let n = plan.0;
            plan.0 += 1;
            plan.1.iter().find(|(at, _)| *at == n).map(|(_, how)| *how)
        };
        match how {
            None => self.inner.append(topic, partition, records),
            Some(Failing::NotWritten) => Err(injected()),
            Some(Failing::Written) => {
                self.inner.append(topic, partition, records)?;
                Err(injected())
            }
        }
    }
    fn read(
        &self,
        topic: &str,
        partition: u32,
        from: Offset,
        max: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.inner.read(topic, partition, from, max)
    }
    fn end_offset(&self, topic: &str, partition: u32) -> Result<Offset, LogError> {
        self.inner.end_offset(topic, partition)
    }
    fn topics(&self) -> Result<Vec<String>, LogError> {
        self.inner.topics()
    }
    fn sync(&self) -> Result<(), LogError> {
        let mut syncs = self.syncs.lock().unwrap();
        let n = syncs.0;
        syncs.0 += 1;
        if syncs.1 == Some(n) {
            return Err(injected());
        }
        self.inner.sync()
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn opens() -> i64 {
    Campaign::default_2021().booking_days[0].window.opens_at_ms
}

fn open(dir: &std::path::Path) -> Ledger<Flaky> {
    Ledger::open(
        Flaky::new(dir),
        Campaign::default_2021(),
        Topology::default(),
    )
    .unwrap()
}

fn verify(id: u128) -> Command {
    verify_of(id, 7)
}

fn verify_of(id: u128, person: u8) -> Command {
    Command {
        command_id: Uuid::from_u128(id),
        at_ms: opens(),
        body: CommandBody::Verify {
            subject: SubjectId([person; 16]),
            birth_year: 1990,
            cohort_digit: 9,
            method: Method::Kakao,
            device: DeviceId::new("pc").unwrap(),
        },
    }
}

fn events_of(log: &dyn EventLog, command_id: Uuid) -> Vec<Envelope> {
    let mut found = Vec::new();
    read_all(log, &Topology::default(), |_, e| {
        if e.command_id == command_id {
            found.push(e);
        }
    })
    .unwrap();
    found
}

#[test]
fn an_append_reported_failed_but_written_is_the_decision_and_is_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    ledger.log().fail(0, Failing::Written);
    let first = ledger
        .submit(verify(1))
        .expect("the written decision stands");
    let again = ledger.submit(verify(1)).unwrap();
    assert_eq!(first, again);
    let logged = events_of(ledger.log(), Uuid::from_u128(1));
    assert_eq!(logged, first.events, "the decision is in the log once");
}

#[test]
fn an_append_not_written_changes_nothing_and_the_retry_decides_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    ledger.log().fail(0, Failing::NotWritten);
    assert!(matches!(ledger.submit(verify(2)), Err(LedgerError::Log(_))));
    assert!(events_of(ledger.log(), Uuid::from_u128(2)).is_empty());
    let outcome = ledger.submit(verify(2)).unwrap();
    assert_eq!(events_of(ledger.log(), Uuid::from_u128(2)), outcome.events);
}

/// A transfer between two clinics: the withdrawal is written, the deposit's append (a follow-up
/// in another partition) fails. The ledger stops; reopened, it finishes the deposit.
#[test]
fn a_chain_broken_half_way_stops_the_ledger_until_it_is_reopened_and_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    let day = date(2021, 8, 30);
    for (n, clinic) in ["c1", "c2"].into_iter().enumerate() {
        let supply = CommandBody::RegisterSupply {
            clinic: ClinicId::new(clinic).unwrap(),
            name: format!("Clinic {clinic}"),
            region: "seoul".into(),
            date: day,
            doses: 20,
            address: None,
            operator: None,
        };
        let command = Command {
            command_id: Uuid::from_u128(10 + n as u128),
            at_ms: opens(),
            body: supply,
        };
        ledger.submit(command).unwrap();
    }
    let slot = |c: &str| Slot {
        clinic: ClinicId::new(c).unwrap(),
        date: day,
        share: Share::Day(0),
    };
    let transfer = Command {
        command_id: Uuid::from_u128(20),
        at_ms: opens(),
        body: CommandBody::Rebalance {
            from: slot("c1"),
            to: slot("c2"),
            doses: 1,
            operator: None,
        },
    };
    ledger.log().fail(1, Failing::NotWritten);
    assert!(ledger.submit(transfer.clone()).is_err());
    assert!(
        matches!(ledger.submit(verify(3)), Err(LedgerError::Stopped)),
        "a stopped ledger decides nothing"
    );
    drop(ledger);
    let mut ledger = open(dir.path());
    let outcome = ledger.submit(transfer).unwrap();
    assert!(
        outcome
            .events
            .iter()
            .any(|e| e.event.type_name() == "DosesDeposited"),
        "the reopened ledger finished the deposit: {outcome:?}"
    );
    assert!(ledger.system().violations().is_empty());
}

/// Group commit: three people's verifications and a retry of one of them, decided together,
/// share one sync; each is answered as alone, the retry with the first answer, and the events
/// come back in the log's order.
#[test]
fn a_group_shares_one_sync_and_answers_each_command_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    let before = ledger.log().syncs();
    let group = vec![
        verify_of(31, 1),
        verify_of(32, 2),
        verify_of(31, 1),
        verify_of(33, 3),
    ];
    let done = ledger.submit_group(group);
    let answers: Vec<Outcome> = done.answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers[0], answers[2], "the retry gets the first answer");
    for (answer, id) in answers.iter().zip([31, 32, 31, 33]) {
        assert_eq!(events_of(ledger.log(), Uuid::from_u128(id)), answer.events);
    }
    assert_eq!(
        done.appended.len(),
        6,
        "each decision once: {:?}",
        done.appended
    );
    assert_eq!(ledger.log().syncs() - before, 1, "one sync for the group");
}

/// A sync that fails leaves each answer of its group unknown: every one fails, the ledger stops
/// (its memory may be ahead of the disk); reopened, it answers from what the log holds and
/// decides nothing twice.
#[test]
fn a_failed_sync_fails_its_whole_group_and_stops_the_ledger_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = open(dir.path());
    ledger.log().fail_next_sync();
    let done = ledger.submit_group(vec![verify_of(41, 1), verify_of(42, 2)]);
    assert!(
        done.answers.iter().all(Result::is_err),
        "{:?}",
        done.answers
    );
    assert!(done.appended.is_empty(), "nothing unsynced is handed on");
    assert!(
        matches!(ledger.submit(verify_of(41, 1)), Err(LedgerError::Stopped)),
        "not answered from memory"
    );
    drop(ledger);
    let mut ledger = open(dir.path());
    let again = ledger.submit(verify_of(41, 1)).unwrap();
    assert_eq!(events_of(ledger.log(), Uuid::from_u128(41)), again.events);
    assert_eq!(again.events.len(), 2, "decided once");
}
