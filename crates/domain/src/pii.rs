//! Text shaped like a resident registration number, in any form it is typed: `YYMMDD-NNNNNNN`,
//! thirteen digits in a row, or with spaces around or instead of the dash. The one detector of
//! the project: the identifiers (`ids`), every free text an operator types at the edge, and the
//! auditors' export guard refuse what it finds. It is a shape, not a validation: a number with
//! a wrong check digit is still someone's number mistyped, so it is refused all the same.
//!
//! Not here: parsing a number into a subject (`yeyak-identity`, the only place that may).

/// Separator bytes between the birth date and the rest, at most (`" - "`).
pub const SEPARATOR_BYTES_MAX: usize = 3;

/// Where in `bytes` text shaped like a resident number starts: six digits that read as a date
/// (`YYMMDD`, month 1-12, day 1-31), then at most [`SEPARATOR_BYTES_MAX`] spaces with at most
/// one dash, then seven digits, with no digit right before or after. Returns the byte position,
/// never the text.
pub fn resident_number_at(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&start| shaped_at(bytes, start))
}

/// Whether `text` holds anything shaped like a resident number.
pub fn holds_resident_number(text: &str) -> bool {
    resident_number_at(text.as_bytes()).is_some()
}

fn shaped_at(bytes: &[u8], start: usize) -> bool {
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    if start > 0 && digit(start - 1) || !(start..start + 6).all(digit) {
        return false;
    }
    let two = |i: usize| u32::from(bytes[i] - b'0') * 10 + u32::from(bytes[i + 1] - b'0');
    if !(1..=12).contains(&two(start + 2)) || !(1..=31).contains(&two(start + 4)) {
        return false;
    }
    let mut rest = start + 6;
    let mut dashes = 0;
    while rest - (start + 6) < SEPARATOR_BYTES_MAX {
        match bytes.get(rest) {
            Some(b' ') => {}
            Some(b'-') if dashes == 0 => dashes += 1,
            _ => break,
        }
        rest += 1;
    }
    (rest..rest + 7).all(digit) && !digit(rest + 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_form_is_found_and_only_its_position_is_told() {
        for (text, at) in [
            ("900509-1234567", 0),
            ("9005091234567", 0),
            ("900509 1234567", 0),
            ("900509 - 1234567", 0),
            ("900509- 1234567", 0),
            ("Clinic 900509-1234567 Seoul", 7),
            ("{\"name\":\"9005091234567\"}", 9),
            ("x900509-1234567", 1),
            ("000229-3234567", 0),
        ] {
            assert_eq!(resident_number_at(text.as_bytes()), Some(at), "{text}");
        }
    }

    #[test]
    fn dates_ids_and_other_numbers_are_not_resident_numbers() {
        for text in [
            "",
            "2021-08-30",
            "2021-08-09T20:00:00+09:00",
            "1900509-1234567",
            "900509-12345678",
            "90050912345678",
            "901309-1234567",
            "900500-1234567",
            "900532-1234567",
            "900509--1234567",
            "900509    1234567",
            "900509-123456",
            "018f3c2a-9b1e-7cde-8f00-123456789abc",
            "12345678-1234-7234-8234-123456789012",
            "010-1234-5678",
            "123-45-67890",
            "seoul-1",
        ] {
            assert_eq!(resident_number_at(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn no_identifier_holds_one() {
        for text in ["900509-1234567", "9005091234567", "c-900509-1234567"] {
            assert!(crate::DeviceId::new(text).is_none(), "{text}");
            assert!(crate::ClinicId::new(text).is_none(), "{text}");
            let json = format!("\"{text}\"");
            assert!(serde_json::from_str::<crate::DeviceId>(&json).is_err());
        }
        assert!(crate::DeviceId::new("pc-2021-08-30").is_some());
    }
}
