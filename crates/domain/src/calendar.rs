//! The campaign calendar: booking days, the change window, the age group and the rules'
//! durations. Configuration, not code: another campaign is another TOML file.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use serde::Deserialize;

use super::{BirthFacts, Rejection, RejectionCode, Share, TimestampMs};

/// The 2021 18-49 campaign of the seed, shipped as the default.
pub const DEFAULT_CAMPAIGN_TOML: &str = include_str!("../../../campaigns/2021-18-49.toml");

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign file is not valid TOML for a campaign: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("campaign time `{value}` of {field} is not RFC 3339: {reason}")]
    Time {
        field: String,
        value: String,
        reason: String,
    },
    #[error("campaign is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    id: String,
    name: String,
    utc_offset: String,
    eligibility: Eligibility,
    vaccination: VaccinationPeriod,
    rules: Rules,
    booking_days: Vec<BookingDayFile>,
    change_window: WindowFile,
}

/// The age group, by birth year (as Korea counted it in 2021): the rules need no more of a
/// birth date than its year (`BirthFacts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    pub born_from_year: u16,
    pub born_to_year: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccinationPeriod {
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub verify_interval_ms: i64,
    pub device_lock_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookingDayFile {
    digit: u8,
    opens_at: String,
    closes_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    opens_at: String,
    closes_at: String,
}

/// A half-open interval of time: `[opens_at_ms, closes_at_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub opens_at_ms: TimestampMs,
    pub closes_at_ms: TimestampMs,
}

impl Window {
    pub fn contains(&self, at_ms: TimestampMs) -> bool {
        self.opens_at_ms <= at_ms && at_ms < self.closes_at_ms
    }
}

/// One booking day: who may book (birth day-of-month ending in `digit`) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingDay {
    pub digit: u8,
    pub window: Window,
}

/// Where in the campaign an instant falls, for one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// This person's booking day (0-based index in calendar order) is open.
    BookingDay(u8),
    /// The change window is open: booking from the pool, cancel and change.
    ChangeWindow,
}

/// Who may book at an instant, whatever their birth date: one booking day (people whose birth
/// day ends in its digit) or the change window (everyone in the age group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    BookingDay(BookingDay),
    ChangeWindow(Window),
}

impl Opening {
    pub fn window(&self) -> Window {
        match self {
            Opening::BookingDay(day) => day.window,
            Opening::ChangeWindow(window) => *window,
        }
    }
}

/// A validated campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// A short name that stays the same for the life of the campaign (`2021-18-49`): recorded
    /// on every event with the campaign's content hash ([`Campaign::stamp`]).
    pub id: String,
    pub name: String,
    pub utc_offset: FixedOffset,
    pub eligibility: Eligibility,
    pub vaccination: VaccinationPeriod,
    pub rules: Rules,
    /// In calendar order, non-overlapping, one per digit.
    pub booking_days: Vec<BookingDay>,
    pub change_window: Window,
}

fn parse_time(field: &str, value: &str) -> Result<TimestampMs, CampaignError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| CampaignError::Time {
            field: field.to_owned(),
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

fn parse_window(field: &str, opens: &str, closes: &str) -> Result<Window, CampaignError> {
    let window = Window {
        opens_at_ms: parse_time(&format!("{field}.opens_at"), opens)?,
        closes_at_ms: parse_time(&format!("{field}.closes_at"), closes)?,
    };
    if window.opens_at_ms >= window.closes_at_ms {
        return Err(CampaignError::Inconsistent(format!(
            "{field} closes before it opens"
        )));
    }
    Ok(window)
}

/// The most characters of a campaign id.
pub const CAMPAIGN_ID_CHARS_MAX: usize = 64;

/// A campaign id is 1 to 64 of `a-z 0-9 - _ .`, nothing shaped like a resident number: it goes
/// into every event record's headers and into exports.
fn check_id(id: &str) -> Result<(), CampaignError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let fits = !id.is_empty() && id.len() <= CAMPAIGN_ID_CHARS_MAX && id.chars().all(allowed);
    if !fits || crate::pii::holds_resident_number(id) {
        return Err(CampaignError::Inconsistent(format!(
            "id `{id}` is not 1 to {CAMPAIGN_ID_CHARS_MAX} of a-z, 0-9, '-', '_', '.'"
        )));
    }
    Ok(())
}

impl Campaign {
    /// The 2021 18-49 campaign of the seed.
    pub fn default_2021() -> Campaign {
        // The shipped file is checked by a test; failing here would be a build defect.
        Campaign::from_toml(DEFAULT_CAMPAIGN_TOML).expect("the shipped campaign file is valid")
    }

    pub fn from_toml(text: &str) -> Result<Campaign, CampaignError> {
        let file: CampaignFile = toml::from_str(text)?;
        check_id(&file.id)?;
        let utc_offset: FixedOffset = file.utc_offset.parse().map_err(|_| CampaignError::Time {
            field: "utc_offset".into(),
            value: file.utc_offset.clone(),
            reason: "expected an offset such as +09:00".into(),
        })?;
        let mut booking_days = Vec::with_capacity(file.booking_days.len());
        for (index, day) in file.booking_days.iter().enumerate() {
            if day.digit > 9 {
                return Err(CampaignError::Inconsistent(format!(
                    "booking day {index}: digit {} is not 0-9",
                    day.digit
                )));
            }
            let window = parse_window(
                &format!("booking_days[{index}]"),
                &day.opens_at,
                &day.closes_at,
            )?;
            booking_days.push(BookingDay {
                digit: day.digit,
                window,
            });
        }
        if booking_days.is_empty() || booking_days.len() > 10 {
            return Err(CampaignError::Inconsistent(
                "a campaign has 1 to 10 booking days".into(),
            ));
        }
        for (index, pair) in booking_days.windows(2).enumerate() {
            if pair[0].window.closes_at_ms > pair[1].window.opens_at_ms {
                return Err(CampaignError::Inconsistent(format!(
                    "booking_days[{index}] closes after booking_days[{}] opens: booking days \
                     overlap or are out of order",
                    index + 1
                )));
            }
        }
        let mut digits: Vec<u8> = booking_days.iter().map(|d| d.digit).collect();
        digits.sort_unstable();
        digits.dedup();
        if digits.len() != booking_days.len() {
            return Err(CampaignError::Inconsistent(
                "two booking days share a digit".into(),
            ));
        }
        let change_window = parse_window(
            "change_window",
            &file.change_window.opens_at,
            &file.change_window.closes_at,
        )?;
        let last_close = booking_days
            .last()
            .map(|d| d.window.closes_at_ms)
            .unwrap_or(i64::MIN);
        if change_window.opens_at_ms < last_close {
            return Err(CampaignError::Inconsistent(
                "the change window opens before the last booking day closes".into(),
            ));
        }
        if file.eligibility.born_from_year > file.eligibility.born_to_year {
            return Err(CampaignError::Inconsistent(
                "eligibility born_from_year is after born_to_year".into(),
            ));
        }
        if file.vaccination.first_date > file.vaccination.last_date {
            return Err(CampaignError::Inconsistent(
                "vaccination first_date is after last_date".into(),
            ));
        }
        if file.rules.verify_interval_ms <= 0 || file.rules.device_lock_ms <= 0 {
            return Err(CampaignError::Inconsistent(
                "rule durations must be positive".into(),
            ));
        }
        Ok(Campaign {
            id: file.id,
            name: file.name,
            utc_offset,
            eligibility: file.eligibility,
            vaccination: file.vaccination,
            rules: file.rules,
            booking_days,
            change_window,
        })
    }

    /// How many shares (one per booking day) each clinic-date's doses are split into.
    pub fn share_count(&self) -> usize {
        self.booking_days.len()
    }

    /// When the last booking day closes: the instant the ledger releases every day share left
    /// over into the change window's pool.
    pub fn release_at_ms(&self) -> TimestampMs {
        self.booking_days
            .last()
            .map(|d| d.window.closes_at_ms)
            .unwrap_or(self.change_window.opens_at_ms)
    }

    /// The booking day (index) of a person, by their cohort digit.
    pub fn booking_day_of(&self, birth: BirthFacts) -> Option<u8> {
        self.booking_days
            .iter()
            .position(|d| d.digit == birth.cohort_digit)
            .map(|i| i as u8)
    }

    /// Whether a person is in the age group: by birth year only.
    pub fn is_eligible(&self, birth: BirthFacts) -> bool {
        (self.eligibility.born_from_year..=self.eligibility.born_to_year).contains(&birth.year)
    }

    pub fn is_vaccination_date(&self, date: NaiveDate) -> bool {
        self.vaccination.first_date <= date && date <= self.vaccination.last_date
    }

    /// May a person of `birth`'s cohort book at `at_ms`, and from which share?
    pub fn booking_phase(&self, birth: BirthFacts, at_ms: TimestampMs) -> Result<Phase, Rejection> {
        if at_ms >= self.change_window.closes_at_ms {
            return Err(Rejection::new(RejectionCode::CampaignClosed));
        }
        if self.change_window.contains(at_ms) {
            return Ok(Phase::ChangeWindow);
        }
        let own = self.booking_day_of(birth);
        if let Some(index) = own {
            let window = self.booking_days[usize::from(index)].window;
            if window.contains(at_ms) {
                return Ok(Phase::BookingDay(index));
            }
            if at_ms < window.opens_at_ms {
                return Err(Rejection::retry_at(
                    RejectionCode::NotYourBookingDay,
                    window.opens_at_ms,
                ));
            }
        }
        Err(Rejection::retry_at(
            RejectionCode::NotYourBookingDay,
            self.change_window.opens_at_ms,
        ))
    }

    /// May a person of `birth` book at `at_ms`: in the age group, then [`Campaign::booking_phase`];
    /// the two rules `decide` applies to a booking, in its order. The front tier asks this
    /// before it lets a person queue, so nobody spends an admission on a booking the ledger
    /// would refuse.
    pub fn may_book(&self, birth: BirthFacts, at_ms: TimestampMs) -> Result<Phase, Rejection> {
        if !self.is_eligible(birth) {
            return Err(Rejection::new(RejectionCode::NotEligible));
        }
        self.booking_phase(birth, at_ms)
    }

    /// The window a booking in `phase` is made in (until when it may be made).
    pub fn window_of(&self, phase: Phase) -> Window {
        match phase {
            Phase::BookingDay(index) => self.booking_days[usize::from(index)].window,
            Phase::ChangeWindow => self.change_window,
        }
    }

    /// The booking days in calendar order, then the change window.
    pub fn openings(&self) -> impl Iterator<Item = Opening> + '_ {
        let days = self.booking_days.iter().map(|d| Opening::BookingDay(*d));
        days.chain(std::iter::once(Opening::ChangeWindow(self.change_window)))
    }

    /// What is open at `at_ms`, if anything (from 18:00 to 20:00 between two booking days,
    /// nothing is).
    pub fn open_at(&self, at_ms: TimestampMs) -> Option<Opening> {
        self.openings().find(|o| o.window().contains(at_ms))
    }

    /// The first opening that opens after `at_ms`.
    pub fn next_opening(&self, at_ms: TimestampMs) -> Option<Opening> {
        self.openings().find(|o| at_ms < o.window().opens_at_ms)
    }

    /// Cancel and change: only in the change window.
    pub fn change_allowed(&self, at_ms: TimestampMs) -> Result<(), Rejection> {
        if at_ms >= self.change_window.closes_at_ms {
            return Err(Rejection::new(RejectionCode::CampaignClosed));
        }
        if self.change_window.contains(at_ms) {
            return Ok(());
        }
        Err(Rejection::retry_at(
            RejectionCode::NotInChangeWindow,
            self.change_window.opens_at_ms,
        ))
    }

    /// The share a booking in `phase` draws on.
    pub fn share_of(phase: Phase) -> Share {
        match phase {
            Phase::BookingDay(index) => Share::Day(index),
            Phase::ChangeWindow => Share::Pool,
        }
    }

    /// Splits `doses` evenly over the booking days still open or to come at `at_ms`. The
    /// remainder goes one dose each to consecutive days starting at a position that rotates with
    /// the vaccination date, so no booking day is favoured across dates. Returns one count per
    /// booking day (closed days get 0) and what goes straight to the pool (all of it once the
    /// last booking day has closed).
    pub fn split_doses(&self, doses: u32, date: NaiveDate, at_ms: TimestampMs) -> (Vec<u32>, u32) {
        let days = self.share_count();
        let open: Vec<usize> = (0..days)
            .filter(|&i| at_ms < self.booking_days[i].window.closes_at_ms)
            .collect();
        let mut shares = vec![0u32; days];
        if open.is_empty() {
            return (shares, doses);
        }
        let n = open.len() as u32;
        let base = doses / n;
        let remainder = (doses % n) as usize;
        let start = (date.num_days_from_ce().rem_euclid(open.len() as i32)) as usize;
        for (k, &day) in open.iter().enumerate() {
            shares[day] = base;
            let rotated = (k + open.len() - start) % open.len();
            if rotated < remainder {
                shares[day] += 1;
            }
        }
        (shares, 0)
    }

    /// An instant as RFC 3339 in the campaign's local time (`2021-08-13T20:00:00+09:00`), so
    /// that a page shows the campaign's date and hour without converting anything.
    pub fn local_rfc3339(&self, at_ms: TimestampMs) -> String {
        match DateTime::from_timestamp_millis(at_ms) {
            Some(t) => t
                .with_timezone(&self.utc_offset)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            None => format!("{at_ms}ms"),
        }
    }

    /// Formats an instant in the campaign's local time, for people.
    pub fn local_time(&self, at_ms: TimestampMs) -> String {
        match DateTime::from_timestamp_millis(at_ms) {
            Some(t) => t
                .with_timezone(&self.utc_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            None => format!("{at_ms}ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> TimestampMs {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_shipped_campaign_is_the_seed() {
        let c = Campaign::default_2021();
        assert_eq!(c.booking_days.len(), 10);
        assert_eq!(c.booking_days[0].digit, 9);
        assert_eq!(c.booking_days[1].digit, 0);
        assert_eq!(c.booking_days[9].digit, 8);
        assert_eq!(c.release_at_ms(), at("2021-08-19T18:00:00+09:00"));
        let born = |text| BirthFacts::of_date(date(text));
        assert!(c.is_eligible(born("1972-01-01")) && c.is_eligible(born("2003-12-31")));
        assert!(!c.is_eligible(born("1971-12-31")) && !c.is_eligible(born("2004-01-01")));
    }

    #[test]
    fn digit_nine_books_on_the_ninth_until_six_the_next_evening() {
        let c = Campaign::default_2021();
        let born = BirthFacts::of_date(date("1990-05-19"));
        assert_eq!(
            c.booking_phase(born, at("2021-08-09T20:00:00+09:00")),
            Ok(Phase::BookingDay(0))
        );
        assert_eq!(
            c.booking_phase(born, at("2021-08-10T17:59:59+09:00")),
            Ok(Phase::BookingDay(0))
        );
        let late = c
            .booking_phase(born, at("2021-08-10T18:01:00+09:00"))
            .unwrap_err();
        assert_eq!(late.code, RejectionCode::NotYourBookingDay);
        assert_eq!(late.retry_at_ms, Some(at("2021-08-19T20:00:00+09:00")));
        let early = c
            .booking_phase(born, at("2021-08-09T19:59:00+09:00"))
            .unwrap_err();
        assert_eq!(early.retry_at_ms, Some(at("2021-08-09T20:00:00+09:00")));
        assert_eq!(
            c.booking_phase(born, at("2021-08-20T09:00:00+09:00")),
            Ok(Phase::ChangeWindow)
        );
        assert_eq!(
            c.booking_phase(born, at("2021-09-18T18:00:00+09:00"))
                .unwrap_err()
                .code,
            RejectionCode::CampaignClosed
        );
    }

    #[test]
    fn who_may_book_now_and_when_the_others_may() {
        let c = Campaign::default_2021();
        let day9 = at("2021-08-09T21:00:00+09:00");
        let born = |text| BirthFacts::of_date(date(text));
        assert_eq!(
            c.may_book(born("1990-05-19"), day9),
            Ok(Phase::BookingDay(0))
        );
        assert_eq!(
            c.local_rfc3339(c.window_of(Phase::BookingDay(0)).closes_at_ms),
            "2021-08-10T18:00:00+09:00"
        );
        let digit3 = c.may_book(born("1990-05-13"), day9).unwrap_err();
        assert_eq!(digit3.code, RejectionCode::NotYourBookingDay);
        assert_eq!(
            c.local_rfc3339(digit3.retry_at_ms.unwrap()),
            "2021-08-13T20:00:00+09:00"
        );
        // Outside the age group comes first, even on the person's booking day.
        let old = c.may_book(born("1960-05-19"), day9).unwrap_err();
        assert_eq!(old.code, RejectionCode::NotEligible);

        let digit9 = |o: Option<Opening>| match o {
            Some(Opening::BookingDay(d)) => Some(d.digit),
            _ => None,
        };
        assert_eq!(digit9(c.open_at(day9)), Some(9));
        assert_eq!(digit9(c.open_at(at("2021-08-10T10:00:00+09:00"))), Some(9));
        let between = at("2021-08-10T19:00:00+09:00");
        assert_eq!(c.open_at(between), None);
        assert_eq!(digit9(c.next_opening(between)), Some(0));
        let pool = at("2021-08-20T10:00:00+09:00");
        assert!(matches!(c.open_at(pool), Some(Opening::ChangeWindow(_))));
        assert_eq!(c.next_opening(pool), None);
    }

    #[test]
    fn doses_split_evenly_and_remainders_rotate() {
        let c = Campaign::default_2021();
        let before = at("2021-08-01T00:00:00+09:00");
        let (shares, pool) = c.split_doses(103, date("2021-08-30"), before);
        assert_eq!(shares.iter().sum::<u32>(), 103);
        assert_eq!(pool, 0);
        assert!(shares.iter().all(|&s| s == 10 || s == 11));
        let (next, _) = c.split_doses(103, date("2021-08-31"), before);
        assert_ne!(shares, next, "the remainder moves with the date");
        // After day 0 closed, only days 1..9 share.
        let (later, _) = c.split_doses(90, date("2021-08-30"), at("2021-08-10T19:00:00+09:00"));
        assert_eq!(later[0], 0);
        assert!(later[1..].iter().all(|&s| s == 10));
        // After the last booking day: straight to the pool.
        let (none, pool) = c.split_doses(7, date("2021-08-30"), at("2021-08-20T00:00:00+09:00"));
        assert_eq!((none.iter().sum::<u32>(), pool), (0, 7));
    }

    #[test]
    fn broken_campaigns_are_errors_not_panics() {
        assert!(matches!(
            Campaign::from_toml("name = 1"),
            Err(CampaignError::Syntax(_))
        ));
        let overlapping =
            DEFAULT_CAMPAIGN_TOML.replace("2021-08-10T18:00:00+09:00", "2021-08-11T19:00:00+09:00");
        assert!(matches!(
            Campaign::from_toml(&overlapping),
            Err(CampaignError::Inconsistent(_))
        ));
        for id in ["", "2021 18-49", "900509-1234567"] {
            let text =
                DEFAULT_CAMPAIGN_TOML.replace("id = \"2021-18-49\"", &format!("id = {id:?}"));
            let error = Campaign::from_toml(&text).unwrap_err().to_string();
            assert!(error.contains(&format!("id `{id}`")), "{error}");
        }
        let error = Campaign::from_toml(&overlapping).unwrap_err().to_string();
        assert!(
            error.contains("booking_days[0] closes after booking_days[1] opens"),
            "{error}"
        );
        let empty_ages =
            DEFAULT_CAMPAIGN_TOML.replace("born_from_year = 1972", "born_from_year = 2004");
        let error = Campaign::from_toml(&empty_ages).unwrap_err().to_string();
        assert!(
            error.contains("born_from_year is after born_to_year"),
            "{error}"
        );
        let change_early = DEFAULT_CAMPAIGN_TOML.replace(
            "[change_window]\nopens_at = \"2021-08-19T20:00:00+09:00\"",
            "[change_window]\nopens_at = \"2021-08-18T20:00:00+09:00\"",
        );
        assert_ne!(change_early, DEFAULT_CAMPAIGN_TOML);
        let error = Campaign::from_toml(&change_early).unwrap_err().to_string();
        assert!(error.contains("change window opens before"), "{error}");
        let bad_time = DEFAULT_CAMPAIGN_TOML.replace("2021-08-09T20:00:00+09:00", "9 Aug 8pm");
        assert!(matches!(
            Campaign::from_toml(&bad_time),
            Err(CampaignError::Time { .. })
        ));
    }
}
