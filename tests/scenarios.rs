//! The seed's scenarios, each a short script whose event stream is snapshotted (insta).
//! A changed decision shows up as a changed snapshot.

mod common;

use common::run_script;
use yeyak::domain::System;

fn check(name: &str, script: &str) {
    let mut system = System::new(common::campaign());
    let transcript = run_script(&mut system, script);
    let violations = system.violations();
    assert!(violations.is_empty(), "{name}: {violations:?}");
    insta::assert_snapshot!(name, transcript);
}

#[test]
fn digit_nine_books_on_its_day_and_not_after_it() {
    check(
        "digit_nine_books_on_its_day",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify s9 born=1990-05-19 device=pc
        enqueue s9
        admit 10
        book s9 clinic=c1 date=2021-08-30
        at 2021-08-10T18:01+09:00
        verify late born=1995-07-29 device=phone
        enqueue late
        admit 10
        book late clinic=c1 date=2021-08-30
        ",
    );
}

#[test]
fn digit_three_cannot_book_on_the_ninth() {
    check(
        "digit_three_on_the_ninth",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:30+09:00
        verify s3 born=1988-11-13 device=pc
        enqueue s3
        admit 10
        book s3 clinic=c1 date=2021-08-30
        ",
    );
}

#[test]
fn a_second_device_is_locked_out_for_ten_minutes() {
    check(
        "second_device_lock",
        r"
        at 2021-08-09T20:00+09:00
        verify s9 born=1990-05-19 device=pc
        at 2021-08-09T20:03+09:00
        verify s9 born=1990-05-19 device=phone
        verify s9 born=1990-05-19 device=pc
        at 2021-08-09T20:10+09:00
        verify s9 born=1990-05-19 device=phone method=naver
        ",
    );
}

#[test]
fn a_person_born_in_1960_is_not_eligible() {
    check(
        "born_1960_not_eligible",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T21:00+09:00
        verify s60 born=1960-03-09 device=pc
        enqueue s60
        admit 10
        book s60 clinic=c1 date=2021-08-30
        ",
    );
}

#[test]
fn the_last_dose_of_a_share_then_sold_out() {
    // 10 doses over 10 booking days: one dose in each day's share.
    check(
        "last_dose_then_sold_out",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        verify b born=1991-06-19 device=pc
        enqueue a
        enqueue b
        admit 10
        book a clinic=c1 date=2021-08-30
        book b clinic=c1 date=2021-08-30
        book a clinic=c1 date=2021-08-30
        ",
    );
}

#[test]
fn cancel_and_change_in_the_change_window() {
    check(
        "cancel_and_change",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=20
        supply c2 clinic=c2 date=2021-09-02 doses=20 name=Other region=busan
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        verify b born=1985-02-19 device=pc
        enqueue a
        enqueue b
        admit 10
        book a clinic=c1 date=2021-08-30
        book b clinic=c1 date=2021-08-30
        cancel a
        at 2021-08-20T10:00+09:00
        tick c1
        verify a born=1990-05-09 device=pc
        verify b born=1985-02-19 device=pc
        enqueue b
        admit 10
        cancel a
        rebook b clinic=c2 date=2021-09-02
        ",
    );
}

#[test]
fn a_change_to_a_full_clinic_keeps_the_old_reservation() {
    check(
        "change_to_full_clinic",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
        book a clinic=c1 date=2021-08-30
        at 2021-08-20T10:00+09:00
        supply c2 clinic=c2 date=2021-09-02 doses=1 name=Small region=busan
        verify b born=1999-01-01 device=pc
        verify a born=1990-05-09 device=pc
        enqueue b
        enqueue a
        admit 10
        book b clinic=c2 date=2021-09-02
        rebook a clinic=c2 date=2021-09-02
        ",
    );
}

#[test]
fn no_proxy_booking_and_one_reservation_per_person() {
    check(
        "proxy_and_one_reservation",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=30
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
        book a clinic=c1 date=2021-08-30 for=b
        book a clinic=c1 date=2021-08-30 device=phone
        book a clinic=c1 date=2021-08-30 admission=none
        book a clinic=c1 date=2021-08-30
        book a clinic=c1 date=2021-08-30
        enqueue a
        ",
    );
}

#[test]
fn the_last_booking_day_releases_every_leftover_share_to_the_pool() {
    check(
        "release_to_pool",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=23
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        admit 10
        book a clinic=c1 date=2021-08-30
        at 2021-08-19T18:00+09:00
        tick c1
        tick c1
        at 2021-08-19T20:00+09:00
        verify s3 born=1988-11-13 device=pc
        enqueue s3
        admit 10
        book s3 clinic=c1 date=2021-08-30
        ",
    );
}

#[test]
fn rebalance_moves_unbooked_doses_and_refuses_more_than_there_is() {
    check(
        "rebalance",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        supply c2 clinic=c2 date=2021-08-30 doses=10 name=Other region=seoul
        at 2021-08-20T09:00+09:00
        tick c1
        rebalance c1 from=c1/2021-08-30/pool to=c2/2021-08-30/pool doses=4
        rebalance c1 from=c1/2021-08-30/pool to=c1/2021-08-31/pool doses=6
        rebalance c1 from=c1/2021-08-30/pool to=c2/2021-08-30/pool doses=1
        rebalance c1 from=c1/2021-08-31/pool to=nowhere/2021-08-30/pool doses=2
        ",
    );
}

#[test]
fn verification_is_rate_limited_on_the_same_device() {
    check(
        "verify_rate_limit",
        r"
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        at 2021-08-09T20:09:59+09:00
        verify a born=1990-05-09 device=pc
        at 2021-08-09T20:10+09:00
        verify a born=1990-05-09 device=pc
        ",
    );
}
