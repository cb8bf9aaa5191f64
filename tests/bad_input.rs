//! Bad input gets a stable code and changes nothing; nothing panics.

mod common;

use yeyak_domain::{Campaign, Command, Method, RejectionCode, System};
use yeyak_identity::ResidentNumber;

#[test]
fn malformed_resident_numbers_are_invalid_resident_id() {
    for text in [
        "",
        "900519",
        "900519-12345678",
        "9005191234567x",
        "901332-1234567",
        "900519-9234567",
        "abcdef-ghijklm",
    ] {
        let error = ResidentNumber::parse(text).expect_err(text);
        assert_eq!(error.code(), "invalid_resident_id", "{text}");
        assert!(
            !error.to_string().contains(text) || text.is_empty(),
            "the error repeats the input: {error}"
        );
    }
}

#[test]
fn unknown_methods_are_not_methods() {
    assert_eq!(Method::parse("fax"), None);
    assert_eq!(Method::parse("KAKAO"), None);
    for m in Method::ALL {
        assert_eq!(Method::parse(m.as_str()), Some(m));
    }
}

#[test]
fn unknown_clinics_and_dates_out_of_range_get_their_codes_and_change_nothing() {
    let mut system = System::new(Campaign::default_2021());
    let transcript = common::run_script(
        &mut system,
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        supply c1 clinic=c1 date=2021-12-25 doses=10
        supply c1 clinic=c1 date=2021-08-30 doses=0
        supply c1 clinic=c1 date=2021-08-30 doses=10 name=Renamed
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
        book a clinic=nowhere date=2021-08-30
        book a clinic=c1 date=2021-12-25
        book a clinic=c1 date=2021-09-01
        ",
    );
    for code in [
        "date_out_of_range",
        "invalid_doses",
        "clinic_conflict",
        "unknown_clinic",
        "no_supply",
    ] {
        assert!(transcript.contains(code), "no {code} in\n{transcript}");
    }
    assert!(!transcript.contains("ReservationRecorded"), "{transcript}");
    assert!(system.violations().is_empty());
    assert_eq!(
        system.totals.registered_doses, 10,
        "only the valid supply counts"
    );
}

#[test]
fn malformed_commands_do_not_deserialize() {
    for json in [
        r#"{}"#,
        r#"{"command_id":"not-a-uuid","at_ms":0,"body":{"type":"tick","clinic":"c1"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"tick","clinic":"c 1"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"fly"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":"soon","body":{"type":"tick","clinic":"c1"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"verify","subject":"zz","birth_year":1990,"cohort_digit":9,"method":"kakao","device":"pc"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"verify","subject":"00000000000000000000000000000000","birth_year":1990,"cohort_digit":9,"method":"fax","device":"pc"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"verify","subject":"00000000000000000000000000000000","birth_year":1990,"cohort_digit":10,"method":"kakao","device":"pc"}}"#,
        r#"{"command_id":"00000000-0000-0000-0000-000000000000","at_ms":0,"body":{"type":"verify","subject":"00000000000000000000000000000000","birth_date":"1990-05-09","method":"kakao","device":"pc"}}"#,
    ] {
        assert!(serde_json::from_str::<Command>(json).is_err(), "{json}");
    }
}

#[test]
fn every_rejection_code_is_stable_text() {
    // The codes are a public contract; this list only ever grows.
    let codes: Vec<&str> = RejectionCode::ALL.iter().map(|c| c.as_str()).collect();
    insta::assert_snapshot!("rejection_codes", codes.join("\n"));
}
