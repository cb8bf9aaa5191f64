//! `yeyak demo`: a scaled-down 2021 campaign on the embedded log, end to end: resident numbers
//! pseudonymised at the edge, verification with second devices and retries, the waiting room,
//! all ten booking days, the release to the pool, and the change window's bookings, cancels and
//! changes. It prints what a health agency would look at, and checks every invariant, including
//! that a replay of the log from disk rebuilds exactly the live state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;

use yeyak_domain::{
    AdmissionId, Campaign, ClinicId, Command, CommandBody, DeviceId, Event, Method, ReservationId,
    Share, SubjectId, System,
};
use yeyak_identity::{Pseudonymiser, ResidentNumber};
use yeyak_ledger::{Ledger, LedgerError, Topology, replay};
use yeyak_log::{FileLog, FileLogConfig, FsyncPolicy, LogError};

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

/// SplitMix64: a small, stable generator, so a seed gives the same campaign on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Person {
    subject: SubjectId,
    birth_date: NaiveDate,
    device: DeviceId,
    admission: Option<AdmissionId>,
    reservation: Option<ReservationId>,
}

const REGIONS: [&str; 4] = ["seoul", "busan", "daegu", "gwangju"];
/// Admissions per batch and how long one lasts.
const ADMIT_BATCH_TICKETS: u32 = 500;
const ADMISSION_TTL_MS: i64 = 20 * 60_000;

struct Run {
    ledger: Ledger<FileLog>,
    rng: Rng,
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
        let (subject, birth_date, device) = (p.subject, p.birth_date, p.device.clone());
        let method = Method::ALL[self.rng.below(7) as usize];
        self.submit(
            at_ms,
            CommandBody::Verify {
                subject,
                birth_date,
                method,
                device: device.clone(),
            },
        )?;
        if self.rng.chance(8) {
            // The same person on a phone at the same time: refused for 10 minutes.
            let phone = DeviceId::new("second-phone").unwrap_or(device.clone());
            self.submit(
                at_ms + 30_000,
                CommandBody::Verify {
                    subject,
                    birth_date,
                    method,
                    device: phone,
                },
            )?;
        }
        if self.rng.chance(4) {
            self.submit(
                at_ms + 60_000,
                CommandBody::Verify {
                    subject,
                    birth_date,
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
        let clinic = if self.rng.chance(40) {
            0
        } else {
            self.rng.below(self.clinics.len() as u64) as usize
        };
        let date = if self.rng.chance(50) {
            0
        } else {
            self.rng.below(self.dates.len() as u64) as usize
        };
        (self.clinics[clinic].clone(), self.dates[date])
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
    if config.people == 0 || config.clinics == 0 || config.clinics > 1000 {
        return Err(DemoError::Config(
            "people must be > 0 and clinics 1 to 1000".into(),
        ));
    }
    let started = Instant::now();
    let campaign = Campaign::default_2021();
    let mut log_config = FileLogConfig::new(&config.data_dir);
    log_config.fsync = config.fsync;
    let log = FileLog::open(log_config)?;
    let topology = Topology::default();
    let ledger = Ledger::open(log, campaign.clone(), topology)?;
    if ledger.events_total() > 0 {
        return Err(DemoError::Config(format!(
            "{} already holds a log; give the demo an empty --data directory",
            config.data_dir.display()
        )));
    }
    let mut rng = Rng(config.seed);

    // People: resident numbers made up, checked and pseudonymised at the edge like real ones.
    let mut people = Vec::with_capacity(config.people as usize);
    let first = NaiveDate::from_ymd_opt(1965, 1, 1).unwrap_or_default();
    for n in 0..config.people {
        let birth_date = first + chrono::Duration::days(rng.below(40 * 365) as i64);
        let text = ResidentNumber::synthesize(birth_date, rng.chance(50), n);
        let number = ResidentNumber::parse(&text).map_err(|e| DemoError::Config(e.to_string()))?;
        people.push(Person {
            subject: pseudonymiser.subject(&number),
            birth_date: number.birth_date(),
            device: DeviceId::new(&format!("device-{n}")).unwrap_or_else(|| unreachable!()),
            admission: None,
            reservation: None,
        });
    }
    let eligible = people
        .iter()
        .filter(|p| campaign.is_eligible(p.birth_date))
        .count() as u64;
    let clinics: Vec<ClinicId> = (0..config.clinics)
        .filter_map(|c| ClinicId::new(&format!("clinic-{:03}", c + 1)))
        .collect();
    let dates: Vec<NaiveDate> = (0..5)
        .map(|d| campaign.vaccination.first_date + chrono::Duration::days(d * 3))
        .collect();
    let mut run = Run {
        ledger,
        rng,
        seq: 0,
        report: DemoReport::default(),
        people,
        clinics,
        dates,
    };

    writeln!(
        out,
        "yeyak demo: {} ({} people, {} eligible, {} clinics)",
        campaign.name, config.people, eligible, config.clinics
    )?;
    writeln!(out, "log: {}", config.data_dir.display())?;

    // Supply: doses for about 90% of the eligible, spread over clinics and dates.
    let before = campaign.booking_days[0].window.opens_at_ms - 3_600_000;
    let slots = (run.clinics.len() * run.dates.len()) as u64;
    let per_slot = (eligible * 9 / 10 / slots).max(1) as u32;
    for (c, clinic) in run.clinics.clone().iter().enumerate() {
        for date in run.dates.clone() {
            let body = CommandBody::RegisterSupply {
                clinic: clinic.clone(),
                name: format!("Clinic {}", c + 1),
                region: REGIONS[c % REGIONS.len()].to_owned(),
                date,
                doses: per_slot,
            };
            run.submit(before, body)?;
        }
    }

    // The ten booking days.
    for (day, booking_day) in campaign.booking_days.iter().enumerate() {
        let opens = booking_day.window.opens_at_ms;
        let cohort: Vec<usize> = (0..run.people.len())
            .filter(|&i| Campaign::cohort_digit(run.people[i].birth_date) == booking_day.digit)
            .collect();
        for (k, &person) in cohort.iter().enumerate() {
            run.arrive(person, opens + (k as i64 % 600) * 1_000)?;
        }
        let admitted_by = run.admit_all(opens + 11 * 60_000)?;
        for &person in &cohort {
            run.book(person, admitted_by)?;
        }
        // Someone of the next digit tries a day early.
        if let Some(&early) = (0..run.people.len())
            .filter(|&i| Campaign::cohort_digit(run.people[i].birth_date) != booking_day.digit)
            .collect::<Vec<_>>()
            .first()
        {
            run.arrive(early, admitted_by + 20 * 60_000)?;
            run.admit_all(admitted_by + 21 * 60_000)?;
            run.book(early, admitted_by + 22 * 60_000)?;
        }
        writeln!(
            out,
            "  booking day {:>2} (digit {}, {}): {:>6} people arrived, {:>8} events so far",
            day + 1,
            booking_day.digit,
            campaign.local_time(opens),
            cohort.len(),
            run.ledger.events_total()
        )?;
    }

    // The last booking day closes: every clinic releases its leftovers to the pool.
    let release = campaign.release_at_ms();
    for clinic in run.clinics.clone() {
        run.submit(release, CommandBody::Tick { clinic })?;
    }

    // The change window: the late book from the pool, some cancel, some change.
    let window = campaign.change_window.opens_at_ms + 3_600_000;
    let mut changed = 0;
    let mut cancelled = 0;
    for person in 0..run.people.len() {
        // Admissions of the booking days have expired; only who comes back gets a new one.
        run.people[person].admission = None;
        let holds = run.people[person].reservation;
        if holds.is_some() && !run.rng.chance(15) {
            continue;
        }
        run.arrive(person, window + (person as i64 % 3600) * 1_000)?;
    }
    let admitted_by = run.admit_all(window + 3_601_000)?;
    for person in 0..run.people.len() {
        let p = &run.people[person];
        let (subject, device) = (p.subject, p.device.clone());
        match (p.reservation, p.admission) {
            (None, Some(_)) => run.book(person, admitted_by)?,
            (Some(reservation), Some(admission)) if run.rng.chance(50) => {
                let (clinic, date) = run.choose();
                let outcome = run.submit(
                    admitted_by,
                    CommandBody::Rebook {
                        subject,
                        requested_for: subject,
                        device,
                        reservation,
                        clinic,
                        date,
                        admission,
                    },
                )?;
                if outcome
                    .events
                    .iter()
                    .any(|e| matches!(e.event, Event::ReservationChanged(_)))
                {
                    changed += 1;
                }
                run.learn(person, &outcome);
            }
            (Some(reservation), Some(_)) => {
                let outcome = run.submit(
                    admitted_by,
                    CommandBody::Cancel {
                        subject,
                        requested_for: subject,
                        device,
                        reservation,
                    },
                )?;
                if outcome.rejection.is_none() {
                    cancelled += 1;
                }
                run.learn(person, &outcome);
            }
            _ => {}
        }
    }
    writeln!(
        out,
        "  change window ({}): {changed} changed, {cancelled} cancelled",
        campaign.local_time(window)
    )?;

    let elapsed = started.elapsed();
    let system = run.ledger.system();
    print_summary(out, &campaign, system, &run.clinics)?;

    // Checks: every invariant, then a replay of the log from disk into a fresh state.
    let mut report = std::mem::take(&mut run.report);
    report.violations = system
        .violations()
        .iter()
        .map(ToString::to_string)
        .collect();
    report.events = run.ledger.events_total();
    report.reservations = system
        .subjects
        .values()
        .filter(|s| s.reservation.is_some())
        .count() as u64;
    let replay_started = Instant::now();
    let (replayed, replayed_events) = replay(run.ledger.log(), campaign.clone(), &topology)?;
    report.replay_matches = replayed_events == report.events
        && replayed.subjects == system.subjects
        && replayed.clinics == system.clinics
        && replayed.waiting_room == system.waiting_room
        && replayed.totals == system.totals;
    let replay_elapsed = replay_started.elapsed();

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
        replayed_events,
        replay_elapsed.as_secs_f64()
    )?;
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
