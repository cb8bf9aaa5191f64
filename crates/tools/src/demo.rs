//! `yeyak demo`: a scaled-down 2021 campaign on the embedded log, end to end: resident numbers
//! pseudonymised at the edge, verification with second devices and retries, the waiting room,
//! all ten booking days, the release to the pool, and the change window's bookings, cancels and
//! changes. It prints what a health agency would look at, and checks every invariant, including
//! that a replay of the log from disk rebuilds exactly the live state.
//!
//! The people, the clinics and their supply, the arrivals and every choice come from the shared
//! generator ([`crate::workload`], [`WorkloadConfig::campaign`]); the demo draws the choices in
//! the order people act, so a seed gives the same report on every machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use yeyak_domain::{
    AdmissionId, BirthFacts, Campaign, ClinicId, Command, CommandBody, DeviceId, Event,
    ReservationId, Share, SubjectId, System,
};
use yeyak_identity::Pseudonymiser;
use yeyak_ledger::{Ledger, LedgerError, Topology, replay};
use yeyak_log::{FileLog, FileLogConfig, FsyncPolicy, LogError};

use crate::workload::{Arrival, CLINICS_MAX, Choices, Workload, WorkloadConfig, WorkloadError};

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub people: u32,
    pub clinics: u32,
    pub seed: u64,
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the ledger failed")]
    Ledger(#[from] LedgerError),
    #[error("the log failed")]
    Log(#[from] LogError),
    #[error("cannot write the report")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error("the workload cannot be generated")]
    Workload(#[from] WorkloadError),
}

/// What the demo found; `ok()` when every check passed.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub reservations: u64,
    pub events: u64,
    pub violations: Vec<String>,
    pub replay_matches: bool,
    pub rejections: BTreeMap<String, u64>,
}

impl DemoReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.replay_matches
    }
}

struct Person {
    subject: SubjectId,
    birth: BirthFacts,
    device: DeviceId,
    admission: Option<AdmissionId>,
    reservation: Option<ReservationId>,
}

/// Admissions per batch and how long one lasts.
const ADMIT_BATCH_TICKETS: u32 = 500;
const ADMISSION_TTL_MS: i64 = 20 * 60_000;

struct Run {
    ledger: Ledger<FileLog>,
    choices: Choices,
    seq: u64,
    report: DemoReport,
    people: Vec<Person>,
    clinics: Vec<ClinicId>,
    dates: Vec<NaiveDate>,
}

impl Run {
    fn submit(
        &mut self,
        at_ms: i64,
        body: CommandBody,
    ) -> Result<yeyak_domain::system::Outcome, DemoError> {
        self.seq += 1;
        let command_id = yeyak_domain::system::command_id_from(&format!("demo/{}", self.seq));
        let outcome = self.ledger.submit(Command {
            command_id,
            at_ms,
            body,
        })?;
        if let Some(r) = outcome.rejection {
            *self
                .report
                .rejections
                .entry(r.code.as_str().to_owned())
                .or_default() += 1;
        }
        for envelope in &outcome.events {
            match &envelope.event {
                Event::BookingFailed(e) => {
                    *self
                        .report
                        .rejections
                        .entry(e.code.as_str().to_owned())
                        .or_default() += 1;
                }
                Event::ChangeFailed(e) => {
                    *self
                        .report
                        .rejections
                        .entry(e.code.as_str().to_owned())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        Ok(outcome)
    }

    fn learn(&mut self, person: usize, outcome: &yeyak_domain::system::Outcome) {
        for envelope in &outcome.events {
            match &envelope.event {
                Event::ReservationRecorded(e) => {
                    self.people[person].reservation = Some(e.reservation)
                }
                Event::ReservationChanged(e) => {
                    self.people[person].reservation = Some(e.reservation)
                }
                Event::ReservationCancelled(_) => self.people[person].reservation = None,
                _ => {}
            }
        }
    }

    /// Verify (with the odd second device and impatient retry), then take a ticket.
    fn arrive(&mut self, person: usize, at_ms: i64) -> Result<(), DemoError> {
        let p = &self.people[person];
        let (subject, birth, device) = (p.subject, p.birth, p.device.clone());
        let visit = self.choices.visit();
        let method = visit.method;
        self.submit(
            at_ms,
            CommandBody::Verify {
                subject,
                birth_year: birth.year,
                cohort_digit: birth.cohort_digit,
                method,
                device: device.clone(),
            },
        )?;
        if visit.second_device {
            // The same person on a phone at the same time: refused for 10 minutes.
            let phone = DeviceId::new("second-phone").unwrap_or(device.clone());
            self.submit(
                at_ms + 30_000,
                CommandBody::Verify {
                    subject,
                    birth_year: birth.year,
                    cohort_digit: birth.cohort_digit,
                    method,
                    device: phone,
                },
            )?;
        }
        if visit.retries {
            self.submit(
                at_ms + 60_000,
                CommandBody::Verify {
                    subject,
                    birth_year: birth.year,
                    cohort_digit: birth.cohort_digit,
                    method,
                    device: device.clone(),
                },
            )?;
        }
        self.submit(at_ms + 1_000, CommandBody::Enqueue { subject, device })?;
        Ok(())
    }

    /// Admits everyone waiting, in batches, remembering their admissions.
    fn admit_all(&mut self, mut at_ms: i64) -> Result<i64, DemoError> {
        loop {
            let outcome = self.submit(
                at_ms,
                CommandBody::Admit {
                    tickets_max: ADMIT_BATCH_TICKETS,
                    ttl_ms: ADMISSION_TTL_MS,
                },
            )?;
            let mut admitted = 0;
            for envelope in &outcome.events {
                if let Event::AdmissionGranted(g) = &envelope.event {
                    if let Some(p) = self.people.iter_mut().find(|p| p.subject == g.subject) {
                        p.admission = Some(g.admission);
                    }
                    admitted += 1;
                }
            }
            if admitted == 0 {
                return Ok(at_ms);
            }
            at_ms += 60_000;
        }
    }

    /// Most people want the nearest clinic and an early date: a skewed choice, so some shares
    /// sell out and others do not.
    fn choose(&mut self) -> (ClinicId, NaiveDate) {
        let pick = self.choices.pick();
        (self.clinics[pick.clinic].clone(), self.dates[pick.date])
    }

    fn book(&mut self, person: usize, at_ms: i64) -> Result<(), DemoError> {
        let Some(admission) = self.people[person].admission else {
            return Ok(());
        };
        let p = &self.people[person];
        let (subject, device) = (p.subject, p.device.clone());
        for _attempt in 0..3 {
            let (clinic, date) = self.choose();
            let outcome = self.submit(
                at_ms,
                CommandBody::Book {
                    subject,
                    requested_for: subject,
                    device: device.clone(),
                    clinic,
                    date,
                    admission,
                },
            )?;
            self.learn(person, &outcome);
            let sold_out = matches!(outcome.last_event(), Some(Event::BookingFailed(_)));
            if !sold_out {
                break;
            }
        }
        Ok(())
    }
}

/// Runs the demo and writes its report to `out`.
pub fn run(
    config: &DemoConfig,
    pseudonymiser: &Pseudonymiser,
    out: &mut dyn Write,
) -> Result<DemoReport, DemoError> {
    run_campaign(config, &Campaign::default_2021(), pseudonymiser, out)
}

/// [`run`] under another campaign than the built-in 2021 18-49 one (`yeyak demo --campaign`).
pub fn run_campaign(
    config: &DemoConfig,
    campaign: &Campaign,
    pseudonymiser: &Pseudonymiser,
    out: &mut dyn Write,
) -> Result<DemoReport, DemoError> {
    if config.people == 0 || config.clinics == 0 || config.clinics > CLINICS_MAX {
        return Err(DemoError::Config(
            "people must be > 0 and clinics 1 to 1000".into(),
        ));
    }
    let started = Instant::now();
    let ledger = open_empty(config, campaign)?;
    let workload = Workload::generate(
        &WorkloadConfig::campaign(config.seed, config.people, config.clinics),
        campaign,
    )?;
    writeln!(
        out,
        "yeyak demo: {} ({} people, {} eligible, {} clinics)",
        campaign.name, config.people, workload.eligible, config.clinics
    )?;
    writeln!(out, "log: {}", config.data_dir.display())?;
    let mut run = Run::start(ledger, &workload, pseudonymiser)?;
    run.register_supply(campaign, &workload)?;
    run.booking_days(campaign, &workload, out)?;
    run.release(campaign)?;
    run.change_window(campaign, out)?;
    let elapsed = started.elapsed();
    print_summary(out, campaign, run.ledger.system(), &run.clinics)?;
    let (report, replayed) = run.check(campaign)?;
    print_checks(out, &report, &replayed)?;
    writeln!(
        out,
        "\n{} reservations, {} events in {:.2} s ({:.0} events/s on the embedded log, fsync {:?})",
        report.reservations,
        report.events,
        elapsed.as_secs_f64(),
        report.events as f64 / elapsed.as_secs_f64().max(1e-9),
        config.fsync
    )?;
    Ok(report)
}

/// The demo's ledger on a new, empty log in the data directory.
fn open_empty(config: &DemoConfig, campaign: &Campaign) -> Result<Ledger<FileLog>, DemoError> {
    let mut log_config = FileLogConfig::new(&config.data_dir);
    log_config.fsync = config.fsync;
    let log = FileLog::open(log_config)?;
    let ledger = Ledger::open(log, campaign.clone(), Topology::default())?;
    if ledger.events_total() > 0 {
        return Err(DemoError::Config(format!(
            "{} already holds a log; give the demo an empty --data directory",
            config.data_dir.display()
        )));
    }
    Ok(ledger)
}

/// In the change window, whoever comes back arrives one a second over an hour.
const CHANGE_WINDOW_ARRIVAL: Arrival = Arrival::Paced {
    per_s: 1,
    window_s: 3600,
};

impl Run {
    /// The workload's people, their resident numbers pseudonymised at the edge like real ones.
    fn start(
        ledger: Ledger<FileLog>,
        workload: &Workload,
        pseudonymiser: &Pseudonymiser,
    ) -> Result<Run, DemoError> {
        let mut people = Vec::with_capacity(workload.people.len());
        for person in &workload.people {
            let (subject, birth) = pseudonymiser
                .subject_of(&person.resident_number)
                .map_err(|e| DemoError::Config(e.to_string()))?;
            people.push(Person {
                subject,
                birth,
                device: person.device.clone(),
                admission: None,
                reservation: None,
            });
        }
        Ok(Run {
            ledger,
            choices: workload.choices.clone(),
            seq: 0,
            report: DemoReport::default(),
            people,
            clinics: workload.clinics.iter().map(|c| c.id.clone()).collect(),
            dates: workload.dates.clone(),
        })
    }

    /// Every clinic's doses for every date, an hour before the first booking day opens.
    fn register_supply(
        &mut self,
        campaign: &Campaign,
        workload: &Workload,
    ) -> Result<(), DemoError> {
        let before = campaign.booking_days[0].window.opens_at_ms - 3_600_000;
        for clinic in &workload.clinics {
            for body in clinic.supply_commands() {
                self.submit(before, body)?;
            }
        }
        Ok(())
    }

    /// The ten booking days: each day's people arrive, are admitted and book; someone of
    /// another day tries too.
    fn booking_days(
        &mut self,
        campaign: &Campaign,
        workload: &Workload,
        out: &mut dyn Write,
    ) -> Result<(), DemoError> {
        for (day, booking_day) in campaign.booking_days.iter().enumerate() {
            let opens = booking_day.window.opens_at_ms;
            let cohort = workload.cohort(campaign, day);
            for (k, &person) in cohort.iter().enumerate() {
                self.arrive(person, opens + workload.arrival.offset_ms(k))?;
            }
            let admitted_by = self.admit_all(opens + 11 * 60_000)?;
            for &person in &cohort {
                self.book(person, admitted_by)?;
            }
            self.someone_early(booking_day.digit, admitted_by)?;
            writeln!(
                out,
                "  booking day {:>2} (digit {}, {}): {:>6} people arrived, {:>8} events so far",
                day + 1,
                booking_day.digit,
                campaign.local_time(opens),
                cohort.len(),
                self.ledger.events_total()
            )?;
        }
        Ok(())
    }

    /// The first person of another booking day tries on this one.
    fn someone_early(&mut self, digit: u8, admitted_by: i64) -> Result<(), DemoError> {
        let early = (0..self.people.len()).find(|&i| self.people[i].birth.cohort_digit != digit);
        if let Some(early) = early {
            self.arrive(early, admitted_by + 20 * 60_000)?;
            self.admit_all(admitted_by + 21 * 60_000)?;
            self.book(early, admitted_by + 22 * 60_000)?;
        }
        Ok(())
    }

    /// The last booking day closes: every clinic releases its leftovers to the pool.
    fn release(&mut self, campaign: &Campaign) -> Result<(), DemoError> {
        let release = campaign.release_at_ms();
        for clinic in self.clinics.clone() {
            self.submit(release, CommandBody::Tick { clinic })?;
        }
        Ok(())
    }

    /// The change window: the late book from the pool, some holders cancel, some change.
    fn change_window(&mut self, campaign: &Campaign, out: &mut dyn Write) -> Result<(), DemoError> {
        let window = campaign.change_window.opens_at_ms + 3_600_000;
        for person in 0..self.people.len() {
            // Admissions of the booking days have expired; only who comes back gets a new one.
            self.people[person].admission = None;
            let holds = self.people[person].reservation;
            if holds.is_some() && !self.choices.holder_returns() {
                continue;
            }
            self.arrive(person, window + CHANGE_WINDOW_ARRIVAL.offset_ms(person))?;
        }
        let admitted_by = self.admit_all(window + 3_601_000)?;
        let (mut changed, mut cancelled) = (0, 0);
        for person in 0..self.people.len() {
            let p = &self.people[person];
            match (p.reservation, p.admission) {
                (None, Some(_)) => self.book(person, admitted_by)?,
                (Some(reservation), Some(admission)) if self.choices.changes() => {
                    changed +=
                        u32::from(self.change(person, reservation, admission, admitted_by)?);
                }
                (Some(reservation), Some(_)) => {
                    cancelled += u32::from(self.cancel(person, reservation, admitted_by)?);
                }
                _ => {}
            }
        }
        writeln!(
            out,
            "  change window ({}): {changed} changed, {cancelled} cancelled",
            campaign.local_time(window)
        )?;
        Ok(())
    }

    /// A holder moves their reservation to a new choice; whether it changed.
    fn change(
        &mut self,
        person: usize,
        reservation: ReservationId,
        admission: AdmissionId,
        at_ms: i64,
    ) -> Result<bool, DemoError> {
        let (subject, device) = (
            self.people[person].subject,
            self.people[person].device.clone(),
        );
        let (clinic, date) = self.choose();
        let body = CommandBody::Rebook {
            subject,
            requested_for: subject,
            device,
            reservation,
            clinic,
            date,
            admission,
        };
        let outcome = self.submit(at_ms, body)?;
        self.learn(person, &outcome);
        Ok(outcome
            .events
            .iter()
            .any(|e| matches!(e.event, Event::ReservationChanged(_))))
    }

    /// A holder cancels; whether it was accepted.
    fn cancel(
        &mut self,
        person: usize,
        reservation: ReservationId,
        at_ms: i64,
    ) -> Result<bool, DemoError> {
        let (subject, device) = (
            self.people[person].subject,
            self.people[person].device.clone(),
        );
        let body = CommandBody::Cancel {
            subject,
            requested_for: subject,
            device,
            reservation,
        };
        let outcome = self.submit(at_ms, body)?;
        self.learn(person, &outcome);
        Ok(outcome.rejection.is_none())
    }

    /// Every invariant, then a replay of the log from disk into a fresh state.
    fn check(&mut self, campaign: &Campaign) -> Result<(DemoReport, Replayed), DemoError> {
        let system = self.ledger.system();
        let mut report = std::mem::take(&mut self.report);
        report.violations = system
            .violations()
            .iter()
            .map(ToString::to_string)
            .collect();
        report.events = self.ledger.events_total();
        report.reservations = system
            .subjects
            .values()
            .filter(|s| s.reservation_id().is_some())
            .count() as u64;
        let replay_started = Instant::now();
        let topology = self.ledger.topology();
        let (replayed, replayed_events) = replay(self.ledger.log(), campaign.clone(), &topology)?;
        report.replay_matches = replayed_events == report.events
            && replayed.subjects == system.subjects
            && replayed.clinics == system.clinics
            && replayed.waiting_room == system.waiting_room
            && replayed.totals == system.totals;
        let replay = Replayed {
            events: replayed_events,
            took: replay_started.elapsed(),
        };
        Ok((report, replay))
    }
}

/// The replay of the log from disk: how many events, and how long it took.
struct Replayed {
    events: u64,
    took: Duration,
}

fn print_checks(
    out: &mut dyn Write,
    report: &DemoReport,
    replayed: &Replayed,
) -> std::io::Result<()> {
    writeln!(out, "\nRejections by code")?;
    for (code, count) in &report.rejections {
        writeln!(out, "  {code:<22} {count:>8}")?;
    }
    writeln!(out, "\nChecks")?;
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let overbooked = report
        .violations
        .iter()
        .filter(|v| v.contains("booked of"))
        .count();
    writeln!(out, "  [{}] no share overbooked", mark(overbooked == 0))?;
    writeln!(
        out,
        "  [{}] every invariant (one reservation per person, doses conserved, ...)",
        mark(report.violations.is_empty())
    )?;
    for v in report.violations.iter().take(10) {
        writeln!(out, "         {v}")?;
    }
    writeln!(
        out,
        "  [{}] replay of {} events from disk rebuilds the live state ({:.2} s)",
        mark(report.replay_matches),
        replayed.events,
        replayed.took.as_secs_f64()
    )
}

fn print_summary(
    out: &mut dyn Write,
    campaign: &Campaign,
    system: &System,
    clinics: &[ClinicId],
) -> std::io::Result<()> {
    // Reservations held at the end, by the share they were drawn from and by clinic.
    let mut by_share: BTreeMap<(ClinicId, Share), u64> = BTreeMap::new();
    for (id, clinic) in &system.clinics {
        for held in clinic.held.values() {
            *by_share.entry((id.clone(), held.share)).or_default() += 1;
        }
    }
    writeln!(
        out,
        "\nReservations held, by booking day (digit) and clinic"
    )?;
    write!(out, "  {:<12}", "clinic")?;
    for day in &campaign.booking_days {
        write!(out, " {:>6}", format!("d{}", day.digit))?;
    }
    writeln!(out, " {:>6} {:>7} {:>9}  fill", "pool", "total", "capacity")?;
    for clinic in clinics {
        write!(out, "  {:<12}", clinic.as_str())?;
        let mut total = 0;
        for d in 0..campaign.share_count() {
            let n = by_share
                .get(&(clinic.clone(), Share::Day(d as u8)))
                .copied()
                .unwrap_or(0);
            total += n;
            write!(out, " {n:>6}")?;
        }
        let pool = by_share
            .get(&(clinic.clone(), Share::Pool))
            .copied()
            .unwrap_or(0);
        total += pool;
        let capacity: u64 = system
            .clinics
            .get(clinic)
            .map(yeyak_domain::clinic::doses_held)
            .unwrap_or(0);
        let fill = if capacity == 0 {
            0.0
        } else {
            total as f64 / capacity as f64
        };
        let bar = "#".repeat((fill * 20.0).round() as usize);
        writeln!(
            out,
            " {pool:>6} {total:>7} {capacity:>9}  {bar:<20} {:>3.0}%",
            fill * 100.0
        )?;
    }
    Ok(())
}
