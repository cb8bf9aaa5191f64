//! The reservation code's check character, as people mistype codes: every single changed
//! character and every swap of two different neighbours is caught, for any reservation id.

use proptest::prelude::*;
use uuid::Uuid;
use yeyak_domain::reservation_code::{ALPHABET, CODE_LEN};
use yeyak_domain::{ReservationCode, ReservationId};

fn code_of(id: u128) -> String {
    ReservationCode::of(ReservationId(Uuid::from_u128(id)))
        .as_str()
        .to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_code_is_valid_and_of_the_alphabet(id in any::<u128>()) {
        let code = code_of(id);
        prop_assert_eq!(code.len(), CODE_LEN);
        prop_assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
        prop_assert!(ReservationCode::parse(&code).is_some());
    }

    #[test]
    fn a_single_changed_character_is_caught(id in any::<u128>(), at in 0..CODE_LEN, by in 1..32usize) {
        let mut code = code_of(id).into_bytes();
        let value = ALPHABET.iter().position(|a| *a == code[at]).unwrap();
        code[at] = ALPHABET[(value + by) % 32];
        let typed = String::from_utf8(code).unwrap();
        prop_assert_eq!(ReservationCode::parse(&typed), None, "{}", typed);
    }

    #[test]
    fn swapped_neighbours_are_caught(id in any::<u128>(), at in 0..CODE_LEN - 1) {
        let mut code = code_of(id).into_bytes();
        prop_assume!(code[at] != code[at + 1]);
        code.swap(at, at + 1);
        let typed = String::from_utf8(code).unwrap();
        prop_assert_eq!(ReservationCode::parse(&typed), None, "{}", typed);
    }
}
