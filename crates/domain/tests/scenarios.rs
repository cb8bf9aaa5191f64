//! The seed's scenarios, each a short script whose event stream is snapshotted (insta).
//! A changed decision shows up as a changed snapshot.

use yeyak_domain::System;
use yeyak_domain::script::run_script;

fn check(name: &str) {
    let mut system = System::new(yeyak_domain::script::campaign());
    let transcript = run_script(&mut system, yeyak_domain::script::scenarios::script(name));
    let violations = system.violations();
    assert!(violations.is_empty(), "{name}: {violations:?}");
    insta::assert_snapshot!(name, transcript);
}

#[test]
fn digit_nine_books_on_its_day_and_not_after_it() {
    check("digit_nine_books_on_its_day");
}

#[test]
fn digit_three_cannot_book_on_the_ninth() {
    check("digit_three_on_the_ninth");
}

#[test]
fn a_second_device_is_locked_out_for_ten_minutes() {
    check("second_device_lock");
}

#[test]
fn a_clinic_is_registered_with_its_address_and_a_later_supply_may_not_move_it() {
    // The second and third supply agree (none, the same); the fourth names another address.
    check("clinic_address");
}

#[test]
fn no_one_is_admitted_while_an_operator_has_paused_admissions() {
    // The rate set while paused stays paused (the control is recorded whole); the resume
    // keeps the rate.
    check("operators_pause_admissions");
}

#[test]
fn a_person_born_in_1960_is_not_eligible() {
    check("born_1960_not_eligible");
}

#[test]
fn the_last_dose_of_a_share_then_sold_out() {
    // 10 doses over 10 booking days: one dose in each day's share.
    check("last_dose_then_sold_out");
}

#[test]
fn cancel_and_change_in_the_change_window() {
    check("cancel_and_change");
}

#[test]
fn a_change_to_a_full_clinic_keeps_the_old_reservation() {
    check("change_to_full_clinic");
}

#[test]
fn no_proxy_booking_and_one_reservation_per_person() {
    check("proxy_and_one_reservation");
}

#[test]
fn the_last_booking_day_releases_every_leftover_share_to_the_pool() {
    check("release_to_pool");
}

#[test]
fn rebalance_moves_unbooked_doses_and_refuses_more_than_there_is() {
    check("rebalance");
}

#[test]
fn verification_is_rate_limited_on_the_same_device() {
    check("verify_rate_limit");
}

#[test]
fn the_pre_queue_is_drawn_at_opening_and_silent_tickets_are_skipped() {
    check("pre_queue_draw_and_skip");
}

#[test]
fn congestion_reports_are_recorded_by_the_waiting_room() {
    check("congestion_reports");
}

#[test]
fn asking_for_a_place_again_keeps_a_live_ticket_and_otherwise_queues_at_the_back() {
    check("leave_and_enqueue_again");
}

#[test]
fn operators_are_recorded_with_what_they_change() {
    check("operators_are_recorded");
}
