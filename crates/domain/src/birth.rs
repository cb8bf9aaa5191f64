//! What the campaign's rules know of a person's birth. The 2021 rules need two facts, not the
//! date: the birth year (the age group went by birth year) and the cohort digit (the last digit
//! of the day of month, which sets the booking day). Since `SubjectVerified` v2 and the `Verify`
//! command that carries them, nothing else of the birth date leaves the identity edge.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// The two facts the rules need, derived at the edge from the resident number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BirthFacts {
    pub year: u16,
    /// The last digit of the day of month (0 to 9).
    pub cohort_digit: u8,
}

impl BirthFacts {
    /// The facts of a birth date (at the edge, and where a v1 record carried the date).
    pub fn of_date(date: NaiveDate) -> BirthFacts {
        BirthFacts {
            year: u16::try_from(date.year()).unwrap_or(0),
            cohort_digit: (date.day() % 10) as u8,
        }
    }
}

/// Reads a cohort digit off the wire: 0 to 9, anything else is refused (a `Verify` command
/// or a v2 record with another value is not one this system wrote).
pub fn deserialize_cohort_digit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let digit = <u8 as serde::Deserialize>::deserialize(d)?;
    if digit <= 9 {
        Ok(digit)
    } else {
        Err(serde::de::Error::custom("a cohort digit is 0 to 9"))
    }
}

/// What a verification recorded of a person's birth date.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BirthDate {
    /// Recorded by `SubjectVerified` v1, before data minimisation: the whole date. Read from
    /// old logs only (so they replay as they were written); never recorded again.
    Whole(NaiveDate),
    /// Recorded by `SubjectVerified` v2: only what the rules need.
    Minimal(BirthFacts),
}

impl BirthDate {
    pub fn facts(self) -> BirthFacts {
        match self {
            BirthDate::Whole(date) => BirthFacts::of_date(date),
            BirthDate::Minimal(facts) => facts,
        }
    }

    /// The schema version of `SubjectVerified` that records a birth date this way.
    pub fn schema_version(self) -> u16 {
        match self {
            BirthDate::Whole(_) => 1,
            BirthDate::Minimal(_) => 2,
        }
    }
}

/// A whole date prints as the date (as the state's digest always printed it, so a v1 log's
/// digest is unchanged); a minimal one as the date with what is not known masked:
/// `1990-??-?9`.
impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BirthDate::Whole(date) => fmt::Debug::fmt(date, f),
            BirthDate::Minimal(b) => write!(f, "{:04}-??-?{}", b.year, b.cohort_digit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_gives_its_year_and_the_last_digit_of_its_day() {
        let date: NaiveDate = "1990-05-19".parse().unwrap();
        let facts = BirthFacts::of_date(date);
        assert_eq!((facts.year, facts.cohort_digit), (1990, 9));
        assert_eq!(BirthDate::Whole(date).facts(), facts);
        assert_eq!(format!("{:?}", BirthDate::Whole(date)), "1990-05-19");
        assert_eq!(format!("{:?}", BirthDate::Minimal(facts)), "1990-??-?9");
    }
}
