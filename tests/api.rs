//! The HTTP API on the embedded log: every path and error code, the concurrency races, and the
//! token checks (shared bodies in `api_common/`), against a server started in-process.

mod api_common;

use std::sync::Arc;

use api_common::*;
use yeyak_front::FrontConfig;
use yeyak_front::backend::Backend;
use yeyak_log::FsyncPolicy;

async fn server() -> (yeyak_front::server::Running, tempfile::TempDir) {
    server_with(config(), None).await
}

async fn server_with(
    config: FrontConfig,
    now: Option<&str>,
) -> (yeyak_front::server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded_dir(
        dir.path(),
        yeyak_domain::Campaign::default_2021(),
        FsyncPolicy::Never,
    )
    .unwrap();
    (start_at(backend, config, now.map(instant)).await, dir)
}

/// Verifies `n` people born on digit-9 days and queues them: their session tokens.
async fn queue_people(api: &Api, n: u32, first_serial: u32) -> Vec<(String, Answer)> {
    let mut out = Vec::new();
    for i in 0..n {
        let session = api
            .session(&rid("1990-06-19", first_serial + i), "pc")
            .await;
        let queued = api
            .call(reqwest::Method::POST, "/v1/queue", Some(&session), None)
            .await;
        out.push((session, queued));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_path_and_error_code() {
    let (running, _dir) = server().await;
    every_path_and_code(&Api::new(&running)).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_asked_again_with_its_idempotency_key_is_answered_once() {
    let (running, _dir) = server().await;
    let api = Api::new(&running);
    asked_again_with_its_key(&api, &api).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_devices_of_one_person_verify_at_once() {
    let (running, _dir) = server().await;
    ten_devices_one_person(Arc::new(Api::new(&running))).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_people_race_for_the_last_ten_doses() {
    let (running, _dir) = server().await;
    race_for_the_last_doses(Arc::new(Api::new(&running)), 1000).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_expired_replayed_and_other_device_tokens_are_refused() {
    let (running, _dir) = server().await;
    tokens_are_checked(&Api::new(&running)).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asking_for_a_place_again_keeps_the_ticket_until_its_admission_is_used() {
    let (running, _dir) = server().await;
    let api = Api::new(&running);
    queue_again_after_booking(&api, &api).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pre_queue_is_ordered_by_a_published_recorded_draw_at_opening() {
    let opens = instant(BOOKING_DAY_9) + 1_500;
    let config = FrontConfig {
        opens_at_ms: Some(opens),
        ..config()
    };
    let (running, _dir) = server_with(config, Some(BOOKING_DAY_9)).await;
    let api = Api::new(&running);
    let people = queue_people(&api, 6, 500).await;
    for (session, queued) in &people {
        let body = queued.expect(201, "");
        assert_eq!(
            (body["pre_queue"].as_bool(), body["ticket"].as_u64()),
            (Some(true), None),
            "{body}"
        );
        assert!(
            body["eta_s"].as_i64().unwrap() >= 1,
            "the ETA counts the time until opening: {body}"
        );
        let again = api
            .call(reqwest::Method::POST, "/v1/queue", Some(session), None)
            .await;
        assert_eq!(
            again.expect(200, "")["pre_queue"],
            true,
            "a second call keeps the place"
        );
        assert_eq!(
            api.get("/v1/queue/me", Some(session)).await.expect(200, "")["pre_queue"],
            true
        );
    }
    // After opening: one draw, its seed published, the tickets in the draw's order.
    let mut admitted = Vec::new();
    for (session, _) in &people {
        admitted.push(api.admitted(session).await);
    }
    let draws = api.get("/v1/queue/draws", None).await;
    let draws = draws.expect(200, "")["draws"].as_array().unwrap().clone();
    assert_eq!(draws.len(), 1, "{draws:?}");
    assert_eq!(draws[0]["drawn"], 6);
    let seed = draws[0]["seed"].as_str().unwrap().to_owned();
    let by_ticket: Vec<_> = api
        .front
        .backend
        .view()
        .read()
        .unwrap()
        .tickets
        .values()
        .map(|t| t.subject)
        .collect();
    let subjects = (0..6).map(|i| {
        pseudonymiser()
            .subject_of(&rid("1990-06-19", 500 + i))
            .unwrap()
            .0
    });
    assert_eq!(
        by_ticket,
        yeyak_domain::waiting_room::draw_order(&seed, subjects),
        "tickets follow the recorded draw"
    );
    running.stop().await;
}

/// Before the 20:00 opening, the pre-queue takes whoever may book once it opens (digit 9 on
/// 9 August), and nobody else: their day is judged at opening, not now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pre_queue_takes_only_those_whose_day_opens_with_it() {
    let config = FrontConfig {
        opens_at_ms: Some(instant("2021-08-09T20:00:00+09:00")),
        ..config()
    };
    let (running, _dir) = server_with(config, Some("2021-08-09T19:58:00+09:00")).await;
    let api = Api::new(&running);
    let today = api.session(&rid("1990-06-19", 600), "pc").await;
    let queued = api.enqueue(&today).await;
    assert_eq!(queued.expect(201, "")["pre_queue"], true, "{queued:?}");
    let tomorrow = api.session(&rid("1990-06-20", 601), "pc").await;
    api.enqueue(&tomorrow)
        .await
        .expect(403, "not_your_booking_day");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_only_gives_tickets_at_once_and_silent_tickets_are_skipped() {
    let opens = instant(BOOKING_DAY_9) + 60_000;
    let config = FrontConfig {
        opens_at_ms: Some(opens),
        pre_queue_draw: false,
        heartbeat_timeout_ms: 400,
        ..config()
    };
    let (running, _dir) = server_with(config, Some(BOOKING_DAY_9)).await;
    let api = Api::new(&running);
    let people = queue_people(&api, 3, 600).await;
    let tickets: Vec<u64> = people
        .iter()
        .map(|(_, q)| q.expect(201, "")["ticket"].as_u64().unwrap())
        .collect();
    assert_eq!(tickets, vec![0, 1, 2], "first come, first served");
    let last = people[2].1.body.clone();
    assert_eq!(last["position"], 2);
    let eta = last["eta_s"].as_i64().unwrap();
    let range = last["eta_range_s"].as_array().unwrap();
    assert!(
        (59..=61).contains(&eta),
        "the ETA waits for the opening, honestly: {last}"
    );
    assert!(
        range[0].as_i64().unwrap() <= eta && eta <= range[1].as_i64().unwrap(),
        "{last}"
    );
    // The first two keep polling; the third's page went away.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1_500);
    while std::time::Instant::now() < until {
        for (session, _) in &people[..2] {
            api.get("/v1/queue/me", Some(session)).await.expect(200, "");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let silent = api.get(&format!("/v1/queue/{}", tickets[2]), None).await;
    assert_eq!(
        (
            silent.body["state"].as_str(),
            silent.body["reason"].as_str()
        ),
        (Some("expired"), Some("skipped")),
        "{silent:?}"
    );
    for ticket in &tickets[..2] {
        assert_eq!(
            api.get(&format!("/v1/queue/{ticket}"), None).await.body["state"],
            "waiting"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unused_admission_expires_and_the_next_ticket_moves_up() {
    let config = FrontConfig {
        admission_ttl_ms: 500,
        admitted_live_max: 1,
        ..config()
    };
    let (running, _dir) = server_with(config, Some(BOOKING_DAY_9)).await;
    let api = Api::new(&running);
    api.supply("c1", "2021-08-30", 100).await.expect(201, "");
    let people = queue_people(&api, 2, 700).await;
    let (first, second) = (&people[0].0, &people[1].0);
    let (ticket, admission) = api.admitted(first).await;
    let waiting = api.get("/v1/queue/me", Some(second)).await;
    assert_eq!(
        waiting.expect(200, "")["state"],
        "waiting",
        "one live admission at most"
    );
    // The first person never books: their admission expires, the second is admitted.
    let (_, admission_2) = api.admitted(second).await;
    let expired = api.get(&format!("/v1/queue/{ticket}"), Some(first)).await;
    assert_eq!(expired.expect(200, "")["state"], "expired");
    assert!(expired.body["admission_token"].is_null());
    let late = api.book(&admission, "c1", "2021-08-30").await;
    assert_eq!(late.expect(401, "invalid_token")["reason"], "expired");
    api.book(&admission_2, "c1", "2021-08-30")
        .await
        .expect(201, "");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_endpoints_are_off_without_a_token() {
    let (running, _dir) = server_with(
        FrontConfig {
            admin_token: None,
            ..config()
        },
        None,
    )
    .await;
    let api = Api::new(&running);
    api.post(
        "/admin/clock",
        Some(ADMIN),
        serde_json::json!({"now": BOOKING_DAY_9}),
    )
    .await
    .expect(404, "admin_disabled");
    api.get("/admin/status", Some(ADMIN))
        .await
        .expect(404, "admin_disabled");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_clock_cannot_be_moved_on_real_time_and_no_header_opens_admin() {
    let (running, _dir) = server_with(
        FrontConfig {
            simulated_clock: false,
            ..config()
        },
        None,
    )
    .await;
    let api = Api::new(&running);
    let before = running.front.clock.now_ms();
    api.post(
        "/admin/clock",
        Some(ADMIN),
        serde_json::json!({"now": BOOKING_DAY_9}),
    )
    .await
    .expect(404, "not_found");
    assert!(
        running.front.clock.now_ms() - before < 60_000,
        "the clock moved"
    );
    let supply = serde_json::json!({"clinic_id": "c9", "name": "Nine", "region": "seoul",
        "date": "2021-08-30", "doses": 99_999});
    for token in [None, Some(""), Some(&ADMIN[..31])] {
        let answer = api.post("/admin/supply", token, supply.clone()).await;
        answer.expect(401, "invalid_token");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resident_number_planted_in_any_field_that_reaches_the_log_is_refused() {
    let (running, _dir) = server_with(config(), Some(BOOKING_DAY_9)).await;
    let api = Api::new(&running);
    let supply = || {
        serde_json::json!({"clinic_id": "c1", "name": "Clinic", "region": "seoul",
            "date": "2021-08-30", "doses": 10})
    };
    for planted in ["900509-1234567", "9005091234567", "900509 1234567"] {
        for field in ["clinic_id", "name", "region", "address"] {
            let mut body = supply();
            body[field] = format!("x {planted} y").into();
            if field == "clinic_id" {
                body[field] = planted.into();
            }
            let answer = api.post("/admin/supply", Some(ADMIN), body).await;
            answer.expect(400, "resident_number_in_text");
            assert!(
                !answer.body.to_string().contains(&planted[..6]),
                "{answer:?}"
            );
        }
        let answer = api.verify("kakao", &rid("1990-05-19", 1), planted).await;
        answer.expect(400, "resident_number_in_text");
    }
    let status = api.get("/admin/status", Some(ADMIN)).await;
    assert_eq!(
        status.expect(200, "")["fill"],
        serde_json::json!([]),
        "nothing changed"
    );
    api.post("/admin/supply", Some(ADMIN), supply())
        .await
        .expect(201, "");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_actions_are_recorded_in_the_log_with_their_names() {
    let alice = "alice-token-0123456789abcdef01234";
    let bob = "bob-token-0123456789abcdef0123456";
    let tokens = format!("alice:{alice},bob:{bob}");
    let (running, dir) = server_with(
        FrontConfig {
            admin_token: Some(yeyak_front::api::auth::AdminToken::new(&tokens).unwrap()),
            ..config()
        },
        Some(BOOKING_DAY_9),
    )
    .await;
    let api = Api::new(&running);
    let supply = serde_json::json!({"clinic_id": "c1", "name": "Clinic", "region": "seoul",
        "date": "2021-08-30", "doses": 10});
    api.post("/admin/supply", Some(alice), supply)
        .await
        .expect(201, "");
    let switched = api
        .post(
            "/admin/providers",
            Some(bob),
            serde_json::json!({"method": "kakao", "outage": true}),
        )
        .await;
    assert_eq!(switched.expect(200, "")["operator"], "bob");
    api.get("/admin/status", Some(ADMIN))
        .await
        .expect(401, "invalid_token");
    running.stop().await;

    let log =
        yeyak_log::FileLog::open_read_only(yeyak_log::FileLogConfig::new(dir.path())).unwrap();
    let mut operators = Vec::new();
    yeyak_ledger::read_all(&log, &yeyak_ledger::Topology::default(), |_, e| {
        match e.event {
            yeyak_domain::Event::SupplyRegistered(s) => operators.push(("supply", s.operator)),
            yeyak_domain::Event::ProviderSwitched(p) => {
                assert!(p.outage);
                operators.push(("switch", Some(p.operator)))
            }
            _ => {}
        }
    })
    .unwrap();
    let named = |name: &str| Some(yeyak_domain::OperatorId::new(name).unwrap());
    assert_eq!(
        operators,
        vec![("supply", named("alice")), ("switch", named("bob"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_windows_pool_opens_by_itself() {
    let (running, _dir) = server().await;
    the_pool_opens_when_the_booking_days_are_over(&Api::new(&running)).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_records_its_congestion_lights_in_the_log() {
    let (running, _dir) = server_with(
        FrontConfig {
            congestion_report_ms: 100,
            ..config()
        },
        None,
    )
    .await;
    let api = Api::new(&running);
    congestion_is_recorded(&api).await;
    // Unchanged lights are reported again every period: a later report of the same method.
    let method = yeyak_domain::Method::Kakao;
    let first = api.front.backend.view().read().unwrap().model.congestion[&method].clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = api.front.backend.view().read().unwrap().model.congestion[&method].clone();
        if now.reported_at_ms > first.reported_at_ms {
            assert_eq!(now.level, first.level);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no periodic report");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running.stop().await;
}
