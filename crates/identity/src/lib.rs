//! The edge where a person's resident registration number enters and leaves as a pseudonym.
//!
//! Architecture invariant: the resident number is parsed here, turned into a [`SubjectId`] with
//! a keyed hash (HMAC-SHA256) and the two facts of its birth date the rules need
//! ([`BirthFacts`]: the year and the last digit of the day), and dropped. It never reaches the domain, the
//! log, a database, a log line or an error message: [`ResidentNumber`] does not implement
//! `Display`, its `Debug` is redacted, and [`IdentityError`] never quotes the input.

use chrono::NaiveDate;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use yeyak_domain::{BirthFacts, SubjectId};

/// Why a resident number was refused. The stable code is `invalid_resident_id` for all of them;
/// the variant says which rule failed, without repeating the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a resident number has the form YYMMDD-NNNNNNN")]
    Format,
    #[error("the resident number's birth date does not exist")]
    BirthDate,
    #[error("the resident number's 7th digit is not a known century/sex code")]
    CenturyDigit,
    #[error("the resident number's check digit does not match")]
    CheckDigit,
    #[error("the pseudonymisation key must be at least 32 bytes")]
    KeyTooShort,
    #[error("the operating system's random source failed")]
    NoRandomness,
}

impl IdentityError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::KeyTooShort | IdentityError::NoRandomness => "invalid_configuration",
            _ => "invalid_resident_id",
        }
    }
}

/// A validated resident registration number. Deliberately not `Display`, `Serialize` or
/// `Clone`: it is consumed by [`Pseudonymiser::subject`] and then gone.
pub struct ResidentNumber {
    digits: [u8; 13],
    birth_date: NaiveDate,
}

impl std::fmt::Debug for ResidentNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResidentNumber(<redacted>)")
    }
}

/// Numbers issued from October 2020 on have no check digit (their last six digits are random).
fn check_digit_applies(birth_date: NaiveDate, century: u8) -> bool {
    let new_scheme = NaiveDate::from_ymd_opt(2020, 10, 1).is_some_and(|start| birth_date >= start);
    // 1-4: citizens; 5-8: registered foreigners, whose check uses another rule; 9, 0: born 1800s.
    matches!(century, 1..=4 | 9 | 0) && !new_scheme
}

impl ResidentNumber {
    /// Parses `YYMMDD-NNNNNNN` (the dash may be left out) and checks its birth date, century
    /// digit and, where it applies, its check digit.
    pub fn parse(text: &str) -> Result<ResidentNumber, IdentityError> {
        let compact: Vec<u8> = match text.len() {
            14 if text.as_bytes()[6] == b'-' => text.bytes().filter(|&b| b != b'-').collect(),
            13 => text.bytes().collect(),
            _ => return Err(IdentityError::Format),
        };
        if compact.len() != 13 || !compact.iter().all(u8::is_ascii_digit) {
            return Err(IdentityError::Format);
        }
        let mut digits = [0u8; 13];
        for (d, b) in digits.iter_mut().zip(&compact) {
            *d = b - b'0';
        }
        let century = digits[6];
        let base = match century {
            1 | 2 | 5 | 6 => 1900,
            3 | 4 | 7 | 8 => 2000,
            9 | 0 => 1800,
            _ => return Err(IdentityError::CenturyDigit),
        };
        let year = base + i32::from(digits[0] * 10 + digits[1]);
        let month = u32::from(digits[2] * 10 + digits[3]);
        let day = u32::from(digits[4] * 10 + digits[5]);
        let birth_date =
            NaiveDate::from_ymd_opt(year, month, day).ok_or(IdentityError::BirthDate)?;
        if check_digit_applies(birth_date, century) {
            const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
            let sum: u32 = digits
                .iter()
                .zip(WEIGHTS)
                .map(|(&d, w)| u32::from(d) * w)
                .sum();
            let expected = ((11 - sum % 11) % 10) as u8;
            if digits[12] != expected {
                return Err(IdentityError::CheckDigit);
            }
        }
        Ok(ResidentNumber { digits, birth_date })
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Builds a valid number for a birth date and serial (for simulations and tests): the
    /// century digit from the year and sex, the check digit computed.
    pub fn synthesize(birth_date: NaiveDate, female: bool, serial: u32) -> String {
        use chrono::Datelike;
        let year = birth_date.year();
        let century: u8 = match (year / 100, female) {
            (19, false) => 1,
            (19, true) => 2,
            (20, false) => 3,
            (20, true) => 4,
            (18, false) => 9,
            _ => 0,
        };
        let head = format!(
            "{:02}{:02}{:02}{}{:05}",
            year % 100,
            birth_date.month(),
            birth_date.day(),
            century,
            serial % 100_000
        );
        const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
        let sum: u32 = head
            .bytes()
            .zip(WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let check = (11 - sum % 11) % 10;
        format!("{}-{}{check}", &head[..6], &head[6..])
    }
}

/// A valid made-up resident number (for simulations and load generators outside this module).
pub fn synthetic_number(birth_date: NaiveDate, female: bool, serial: u32) -> String {
    ResidentNumber::synthesize(birth_date, female, serial)
}

/// A secret key, never printed.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    pub fn new(bytes: Vec<u8>) -> Result<SecretKey, IdentityError> {
        if bytes.len() < 32 {
            return Err(IdentityError::KeyTooShort);
        }
        Ok(SecretKey(bytes))
    }

    /// 32 bytes from the operating system's random source, for one run whose subjects nobody
    /// needs to recognise afterwards (made-up people): nobody knows this key, not even a
    /// public document.
    pub fn random() -> Result<SecretKey, IdentityError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| IdentityError::NoRandomness)?;
        Ok(SecretKey(bytes))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Turns resident numbers into subject ids with HMAC-SHA256 under one key. The same number gives
/// the same subject under the same key; without the key, a subject id cannot be traced back
/// (the number space is small enough to enumerate, so the key is what protects it).
#[derive(Debug, Clone)]
pub struct Pseudonymiser {
    key: SecretKey,
}

impl Pseudonymiser {
    pub fn new(key: SecretKey) -> Pseudonymiser {
        Pseudonymiser { key }
    }

    /// Parses a resident number as typed at the edge and returns its subject id and the facts
    /// of its birth date the rules need (year, cohort digit); the number and the date go no
    /// further.
    pub fn subject_of(&self, text: &str) -> Result<(SubjectId, BirthFacts), IdentityError> {
        let number = ResidentNumber::parse(text)?;
        Ok((
            self.subject(&number),
            BirthFacts::of_date(number.birth_date()),
        ))
    }

    pub fn subject(&self, number: &ResidentNumber) -> SubjectId {
        // HMAC accepts keys of any length; SecretKey guarantees at least 32 bytes.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key.0)
            .expect("HMAC takes any key length");
        mac.update(b"yeyak/subject/v1\0");
        mac.update(&number.digits);
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&tag[..16]);
        SubjectId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Pseudonymiser {
        Pseudonymiser::new(SecretKey::new(vec![7; 32]).unwrap())
    }

    #[test]
    fn synthesized_numbers_parse_and_keep_their_birth_date() {
        for (date, female) in [
            ("1990-05-19", false),
            ("2001-12-31", true),
            ("1972-01-01", false),
            ("1960-03-03", true),
        ] {
            let date: NaiveDate = date.parse().unwrap();
            let text = ResidentNumber::synthesize(date, female, 12345);
            let number = ResidentNumber::parse(&text).unwrap();
            assert_eq!(number.birth_date(), date, "{text}");
            assert!(ResidentNumber::parse(&text.replace('-', "")).is_ok());
        }
    }

    #[test]
    fn the_edge_hands_on_the_birth_year_and_the_cohort_digit_only() {
        let text = ResidentNumber::synthesize("1990-05-19".parse().unwrap(), false, 1);
        let (subject, birth) = key().subject_of(&text).unwrap();
        assert_eq!(
            birth,
            BirthFacts {
                year: 1990,
                cohort_digit: 9
            }
        );
        assert_eq!(
            subject,
            key().subject(&ResidentNumber::parse(&text).unwrap())
        );
        let text = ResidentNumber::synthesize("2001-12-30".parse().unwrap(), true, 1);
        let (_, birth) = key().subject_of(&text).unwrap();
        assert_eq!(
            birth,
            BirthFacts {
                year: 2001,
                cohort_digit: 0
            }
        );
    }

    #[test]
    fn bad_numbers_are_refused_without_repeating_them() {
        let good = ResidentNumber::synthesize("1990-05-19".parse().unwrap(), false, 1);
        let mut wrong_check = good.clone().into_bytes();
        let last = wrong_check.len() - 1;
        wrong_check[last] = b'0' + (wrong_check[last] - b'0' + 1) % 10;
        let wrong_check = String::from_utf8(wrong_check).unwrap();
        assert_eq!(
            ResidentNumber::parse(&wrong_check).unwrap_err(),
            IdentityError::CheckDigit
        );
        assert_eq!(
            ResidentNumber::parse("900519-123456").unwrap_err(),
            IdentityError::Format
        );
        assert_eq!(
            ResidentNumber::parse("90O519-1234567").unwrap_err(),
            IdentityError::Format
        );
        assert_eq!(
            ResidentNumber::parse("901319-1234567").unwrap_err(),
            IdentityError::BirthDate
        );
        assert_eq!(
            ResidentNumber::parse("900230-1234567").unwrap_err(),
            IdentityError::BirthDate
        );
        assert_eq!(
            ResidentNumber::parse("").unwrap_err(),
            IdentityError::Format
        );
        assert_eq!(
            ResidentNumber::parse("９００５１９-1234567").unwrap_err(),
            IdentityError::Format
        );
        for e in [
            IdentityError::Format,
            IdentityError::CheckDigit,
            IdentityError::BirthDate,
        ] {
            assert_eq!(e.code(), "invalid_resident_id");
            assert!(!e.to_string().contains("900519"));
        }
        let number = ResidentNumber::parse(&good).unwrap();
        assert!(!format!("{number:?}").contains("900519"));
    }

    #[test]
    fn subjects_are_keyed_and_stable() {
        let text = ResidentNumber::synthesize("1990-05-19".parse().unwrap(), false, 1);
        let a = key().subject(&ResidentNumber::parse(&text).unwrap());
        assert_eq!(
            a,
            key().subject(&ResidentNumber::parse(&text.replace('-', "")).unwrap())
        );
        let other = Pseudonymiser::new(SecretKey::new(vec![8; 32]).unwrap());
        assert_ne!(a, other.subject(&ResidentNumber::parse(&text).unwrap()));
        assert!(!a.to_hex().contains("900519"));
        assert_eq!(
            SecretKey::new(vec![1; 31]).unwrap_err(),
            IdentityError::KeyTooShort
        );
    }
}
