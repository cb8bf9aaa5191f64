//! The seed's scenarios, shared by the test files that run them.

/// The seed's scenarios as scripts, by name. `tests/scenarios.rs` snapshots their events;
/// `tests/schemas.rs` validates every event they emit; `tests/ledger.rs` runs them on the file log.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
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
    ),
    (
        "verify_rate_limit",
        r"
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        at 2021-08-09T20:09:59+09:00
        verify a born=1990-05-09 device=pc
        at 2021-08-09T20:10+09:00
        verify a born=1990-05-09 device=pc
        ",
    ),
    // Not in the seed: the only way to a `TicketLeft`.
    (
        "leave_the_queue",
        r"
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        enqueue a
        leave a
        leave a
        ",
    ),
    // Asking for a place again: the waiting room's own state decides. A live ticket is kept
    // (a refresh); a ticket left, used to book, skipped or expired gives way to a new one at
    // the back.
    (
        "leave_and_enqueue_again",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10
        at 2021-08-09T20:00+09:00
        verify a born=1990-05-09 device=pc
        verify b born=1991-06-19 device=pc
        enqueue a
        enqueue a
        enqueue b
        leave a
        enqueue a
        admit 1
        enqueue b
        book b clinic=c1 date=2021-08-30
        enqueue b
        skip a
        enqueue a
        admit 1 ttl_min=1
        at 2021-08-09T20:02+09:00
        enqueue b
        enqueue a
        ",
    ),
    (
        "congestion_reports",
        r"
        at 2021-08-09T19:50+09:00
        congest kakao level=green wait_ms=800 in_flight=10 capacity=100
        congest pass level=yellow wait_ms=2500 in_flight=85 capacity=100 failure=20 gateway=gw-2
        verify a born=1990-05-09 device=pc
        enqueue a
        at 2021-08-09T20:00+09:00
        congest kakao level=red wait_ms=7500 in_flight=120 capacity=100 failure=25
        admit 5
        congest ipin level=grey wait_ms=0 in_flight=0 capacity=50 failure=1000 up=false
        ",
    ),
    // Not in the seed: what an operator changes is recorded with the operator's name (and
    // without one when a tool registers supply).
    (
        "clinic_address",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10 address=서울_종로구_세종대로_110
        supply c1 clinic=c1 date=2021-08-31 doses=10
        supply c1 clinic=c1 date=2021-09-01 doses=10 address=서울_종로구_세종대로_110
        supply c1 clinic=c1 date=2021-09-02 doses=10 address=부산_중구_중앙대로_1
        ",
    ),
    (
        "operators_pause_admissions",
        r"
        at 2021-08-09T20:00+09:00
        verify s9 born=1990-05-19 device=pc
        enqueue s9
        control admissions paused=true by=alice
        admit 10
        control admissions per_min=120 by=bob
        admit 10
        control admissions paused=false by=alice
        admit 10
        ",
    ),
    (
        "operators_are_recorded",
        r"
        at 2021-08-01T09:00+09:00
        supply c1 clinic=c1 date=2021-08-30 doses=10 by=alice
        supply c2 clinic=c2 date=2021-08-30 doses=10 name=Other
        at 2021-08-20T09:00+09:00
        rebalance c1 from=c1/2021-08-30/pool to=c1/2021-08-31/pool doses=1 by=bob
        rebalance c1 from=c1/2021-08-30/pool to=c2/2021-08-30/pool doses=1 by=bob
        switch kakao outage=true by=alice
        switch kakao outage=false by=bob
        ",
    ),
    (
        "pre_queue_draw_and_skip",
        r"
        at 2021-08-09T19:50+09:00
        verify a born=1990-05-09 device=pc
        verify b born=1991-06-19 device=phone
        verify c born=1992-07-29 device=pc
        prequeue a
        prequeue b
        prequeue c
        prequeue a
        at 2021-08-09T20:00+09:00
        draw seed=published-seed-1
        enqueue a
        skip b
        skip b
        admit 5
        enqueue c
        leave c
        enqueue c
        ",
    ),
];

/// The script of a scenario by name.
pub fn script(name: &str) -> &'static str {
    SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}
