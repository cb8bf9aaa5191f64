//! The reservation code people read out over the phone: 10 characters of Crockford's base32
//! alphabet (digits and capitals without I, L, O and U), nine derived from the reservation id
//! and one check character, shown as `XXXXX-XXXXX`. Derived, not drawn: every gateway, the
//! replay and an auditor compute the same code from the id alone, and nothing new is recorded.
//!
//! The check character is Damm's algorithm over the quasigroup `x * y = 2x + y` of GF(32) (the
//! field modulo `x^5 + x^2 + 1`): totally anti-symmetric, so every single changed character and
//! every swap of two neighbours (the check character included) is caught.
//!
//! Not unique: 45 bits of hash. Among the 16.21 million reservations of 2021 a few pairs would
//! share a code (about n^2 / 2^46, 3.7 expected), so the code finds a reservation together with
//! the person's name or the date, and the id stays the key.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ReservationId;

/// Crockford's base32 alphabet: no I, L, O or U, which are read as 1, 1, 0 or not at all.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters derived from the id.
pub const DATA_LEN: usize = 9;
/// Characters of a code, the check character included.
pub const CODE_LEN: usize = DATA_LEN + 1;

/// A reservation's code: `CODE_LEN` characters of [`ALPHABET`], the last one the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationCode([u8; CODE_LEN]);

impl ReservationCode {
    // Do not change: people hold these codes; a change here gives every reservation another.
    /// The code of `reservation`: SHA-256 of the id's bytes, its first 45 bits in base32, then
    /// the check character.
    pub fn of(reservation: ReservationId) -> ReservationCode {
        let digest = Sha256::new()
            .chain_update(b"yeyak reservation code v1")
            .chain_update(reservation.0.as_bytes())
            .finalize();
        let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut values = [0u8; CODE_LEN];
        for (i, v) in values[..DATA_LEN].iter_mut().enumerate() {
            *v = ((bits >> (59 - 5 * i)) & 31) as u8;
        }
        values[DATA_LEN] = check_value(&values[..DATA_LEN]);
        ReservationCode(values.map(|v| ALPHABET[v as usize]))
    }

    /// Reads a code as a person typed it: case, dashes and spaces do not matter, and I, L and
    /// O are read as 1, 1 and 0 (Crockford's rule). `None` if it is not a code (wrong length,
    /// a character outside the alphabet, or a check that fails).
    pub fn parse(text: &str) -> Option<ReservationCode> {
        let mut values = Vec::with_capacity(CODE_LEN);
        for c in text.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
            values.push(value_of(c)?);
        }
        let values: [u8; CODE_LEN] = values.try_into().ok()?;
        let valid = values.iter().fold(0, |interim, v| damm(interim, *v)) == 0;
        valid.then(|| ReservationCode(values.map(|v| ALPHABET[v as usize])))
    }

    /// The 10 characters, without the dash.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

/// `XXXXX-XXXXX`: two groups of five, as it is read out.
impl fmt::Display for ReservationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.as_str();
        write!(f, "{}-{}", &text[..5], &text[5..])
    }
}

/// The value of a character of the alphabet, read as Crockford reads it.
fn value_of(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|a| *a as char == c)
        .map(|p| p as u8)
}

/// Multiplication by 2 (`x`) in GF(32), modulo `x^5 + x^2 + 1`.
fn times_two(v: u8) -> u8 {
    let shifted = v << 1;
    if shifted & 0b10_0000 != 0 {
        (shifted ^ 0b10_0101) & 31
    } else {
        shifted
    }
}

/// Damm's step: the quasigroup `interim * v = 2 * interim + v` (addition in GF(32) is XOR).
fn damm(interim: u8, v: u8) -> u8 {
    times_two(interim) ^ v
}

/// The check value that brings Damm's interim to 0 after `data`.
fn check_value(data: &[u8]) -> u8 {
    times_two(data.iter().fold(0, |interim, v| damm(interim, *v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_code_reads_back_and_is_shown_in_two_groups() {
        let code = ReservationCode::of(ReservationId(Uuid::from_u128(42)));
        assert_eq!(code.as_str().len(), CODE_LEN);
        assert_eq!(ReservationCode::parse(code.as_str()), Some(code));
        let shown = code.to_string();
        assert_eq!(shown.len(), CODE_LEN + 1);
        assert_eq!(ReservationCode::parse(&shown.to_lowercase()), Some(code));
    }

    #[test]
    fn ambiguous_letters_read_as_crockford_reads_them() {
        assert_eq!(value_of('o'), Some(0));
        assert_eq!(value_of('I'), Some(1));
        assert_eq!(value_of('l'), Some(1));
        assert_eq!(value_of('U'), None);
    }

    #[test]
    fn the_quasigroup_is_totally_anti_symmetric() {
        for c in 0..32u8 {
            for x in 0..32u8 {
                for y in 0..32u8 {
                    if x != y {
                        assert_ne!(damm(damm(c, x), y), damm(damm(c, y), x));
                    }
                }
            }
        }
    }
}
