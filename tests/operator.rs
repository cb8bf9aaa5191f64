//! The operator page: `/operator` and its script are served without a token, and `GET
//! /admin/status`, the page's only data call, refuses a missing or wrong admin token and
//! answers every field the page reads, with figures that follow the queue and the bookings.
//! The launch-night controls (`POST /admin/admissions`: paused, resumed, the rate, kept by a
//! restart), today's share, the refusals by code and the last hour's samples. Embedded log,
//! in-process server on 127.0.0.1:0.

mod api_common;

use std::time::{Duration, Instant};

use api_common::*;
use serde_json::{Value, json};
use yeyak_front::FrontConfig;
use yeyak_front::backend::Backend;
use yeyak_log::FsyncPolicy;

async fn server(config: FrontConfig) -> (yeyak_front::server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let running = start_at(
        embedded_on(dir.path()),
        config,
        Some(instant(BOOKING_DAY_9)),
    )
    .await;
    (running, dir)
}

/// The embedded ledger on a log in `dir` (created, or reopened: a restarted gateway).
fn embedded_on(dir: &std::path::Path) -> Backend {
    Backend::embedded_dir(
        dir,
        yeyak_domain::Campaign::default_2021(),
        FsyncPolicy::Never,
    )
    .unwrap()
}

async fn status(api: &Api) -> Value {
    api.get("/admin/status", Some(ADMIN))
        .await
        .expect(200, "")
        .clone()
}

/// Polls the status until `until` holds (at most 20 s).
async fn status_until(api: &Api, what: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(api).await;
        if until(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} within 20 s: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one clinic row of `fill`.
fn clinic<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["fill"]
        .as_array()
        .expect("fill is a list")
        .iter()
        .find(|c| c["clinic_id"] == id)
        .unwrap_or_else(|| panic!("no clinic {id} in {status:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_page_is_served_without_a_token() {
    let (running, _dir) = server(config()).await;
    let api = Api::new(&running);
    for (path, file, kind) in [
        (
            "/operator",
            include_str!("../web/operator.html"),
            "text/html",
        ),
        (
            "/static/operator.js",
            include_str!("../web/operator.js"),
            "text/javascript",
        ),
        (
            "/static/style.css",
            include_str!("../web/style.css"),
            "text/css",
        ),
    ] {
        let response = api
            .client
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert_eq!(response.text().await.unwrap(), file, "{path}");
    }
    // The page reads the admin status and nothing else that needs the token.
    let page = include_str!("../web/operator.js");
    assert!(page.contains("\"/admin/status\""));
    assert!(page.contains("sessionStorage"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_status_refuses_a_missing_or_wrong_token() {
    let (running, _dir) = server(config()).await;
    let api = Api::new(&running);
    for token in [
        None,
        Some(""),
        Some("wrong"),
        Some(&format!("{ADMIN}x")[..]),
        Some(&ADMIN[1..]),
    ] {
        let answer = api.get("/admin/status", token).await;
        let body = answer.expect(401, "invalid_token");
        assert!(body.get("queue_depth").is_none(), "{body}");
    }
    // Another scheme than Bearer is no token either.
    let basic = api
        .client
        .get(format!("{}/admin/status", api.base))
        .header("authorization", format!("Basic {ADMIN}"));
    api.send(basic).await.expect(401, "invalid_token");
    status(&api).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_status_shows_queue_rate_lights_and_fill_per_booking_day_and_clinic() {
    // One live admission at a time: whoever queues after the first person waits, visibly.
    let config = FrontConfig {
        admitted_live_max: 1,
        admit_per_s: 50.0,
        ..config()
    };
    let (running, _dir) = server(config).await;
    let api = Api::new(&running);

    let empty = status(&api).await;
    for field in [
        "queue_depth",
        "pre_queue",
        "admitted_live",
        "admitted_live_max",
        "admitted_total",
    ] {
        assert!(empty[field].is_u64(), "{field}: {empty:#}");
    }
    for field in ["admission_rate_per_s", "outflow_rate_per_s", "admit_per_s"] {
        assert!(empty[field].is_number(), "{field}: {empty:#}");
    }
    assert_eq!(empty["admit_per_s"], 50.0);
    assert_eq!(empty["admitted_live_max"], 1);
    assert_eq!(empty["backend"], "embedded");
    assert!(
        empty["now"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-09T11:05")
    );
    assert_eq!(empty["fill"], Value::Array(vec![]));
    // The lights: one per method, each with its level and measured wait.
    let lights = empty["lights"].as_array().unwrap();
    assert_eq!(lights.len(), yeyak_domain::Method::ALL.len());
    for light in lights {
        assert!(light["method"].is_string(), "{light}");
        assert!(
            ["green", "yellow", "red", "grey"].contains(&light["level"].as_str().unwrap()),
            "{light}"
        );
        assert!(light["wait_s"].is_number(), "{light}");
    }
    // Booking days in calendar order (digit 9 first, on 9 August), then the pool.
    let days = empty["booking_days"].as_array().unwrap();
    assert_eq!(days.len(), 11, "{days:?}");
    assert_eq!(
        (&days[0]["share"], &days[0]["digit"], &days[0]["open"]),
        (&Value::from("day0"), &Value::from(9), &Value::from(true))
    );
    assert_eq!(days[1]["open"], false);
    assert_eq!(
        (&days[10]["share"], &days[10]["digit"]),
        (&Value::from("pool"), &Value::Null)
    );
    assert!(days[0]["opens_at"].as_str().unwrap() < days[1]["opens_at"].as_str().unwrap());

    // Supply: 100 doses at c1 on 30 August, 50 on 31 August: split over the ten booking days.
    api.supply("c1", "2021-08-30", 100).await.expect(201, "");
    api.supply("c1", "2021-08-31", 50).await.expect(201, "");
    api.supply("c2", "2021-08-30", 20).await.expect(201, "");
    let supplied = status(&api).await;
    let c1 = clinic(&supplied, "c1");
    assert_eq!((&c1["capacity"], &c1["booked"]), (&150.into(), &0.into()));
    assert_eq!(c1["name"], "Clinic c1");
    assert_eq!(c1["region"], "seoul");
    let dates: Vec<&str> = c1["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2021-08-30", "2021-08-31"]);
    assert_eq!(c1["dates"][0]["capacity"], 100);
    assert_eq!(c1["dates"][0]["shares"]["day0"]["capacity"], 10);
    assert_eq!(c1["shares"]["day0"]["capacity"], 15);
    let day_total: i64 = supplied["booking_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["capacity"].as_i64().unwrap())
        .sum();
    assert_eq!(
        day_total, 170,
        "every dose is in one booking day or the pool"
    );
    assert_eq!(supplied["booking_days"][0]["capacity"], 17);

    // The queue: the first person is admitted, the two after wait behind the live admission.
    let first = api.session(&rid("1990-06-19", 1), "pc").await;
    let (_, admission) = api.admitted(&first).await;
    let mut waiting = Vec::new();
    for serial in [2, 3] {
        let session = api.session(&rid("1990-06-29", serial), "pc").await;
        api.call(reqwest::Method::POST, "/v1/queue", Some(&session), None)
            .await
            .expect(201, "");
        waiting.push(session);
    }
    let queued = status(&api).await;
    assert_eq!(
        (
            &queued["queue_depth"],
            &queued["pre_queue"],
            &queued["admitted_live"],
            &queued["admitted_total"]
        ),
        (&2.into(), &0.into(), &1.into(), &1.into()),
        "{queued:#}"
    );
    assert!(
        queued["admission_rate_per_s"].as_f64().unwrap() > 0.0,
        "{queued:#}"
    );

    // A booking fills c1's day-0 share on 30 August, and frees the admission for the next.
    api.book(&admission, "c1", "2021-08-30")
        .await
        .expect(201, "");
    let booked = status_until(&api, "the next person admitted", |s| {
        s["queue_depth"] == 1 && s["admitted_total"] == 2
    })
    .await;
    let c1 = clinic(&booked, "c1");
    assert_eq!((&c1["capacity"], &c1["booked"]), (&150.into(), &1.into()));
    assert_eq!(c1["dates"][0]["booked"], 1);
    assert_eq!(c1["dates"][0]["shares"]["day0"]["booked"], 1);
    assert_eq!(c1["dates"][1]["booked"], 0);
    assert_eq!(c1["shares"]["day0"]["booked"], 1);
    assert_eq!(clinic(&booked, "c2")["booked"], 0);
    assert_eq!(booked["booking_days"][0]["booked"], 1);
    assert_eq!(booked["booking_days"][1]["booked"], 0);
    running.stop().await;
}

/// `POST /admin/admissions` with the admin token.
async fn control(api: &Api, body: Value) -> Answer {
    api.post("/admin/admissions", Some(ADMIN), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admissions_are_paused_and_resumed_by_a_recorded_control_that_a_restart_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let open = || embedded_on(dir.path());
    let running = start_at(open(), config(), Some(instant(BOOKING_DAY_9))).await;
    let api = Api::new(&running);
    api.post("/admin/admissions", None, json!({"paused": true}))
        .await
        .expect(401, "invalid_token");

    // Bad input has a stable code and changes nothing.
    for bad in [
        json!(-1),
        json!(0),
        json!(1.5),
        json!(600_001),
        json!(u64::MAX),
    ] {
        control(&api, json!({"admit_per_min": bad}))
            .await
            .expect(400, "invalid_rate");
    }
    control(&api, json!({})).await.expect(400, "missing_field");
    control(&api, json!({"paused": "yes"}))
        .await
        .expect(400, "invalid_field");
    let untouched = status(&api).await;
    assert_eq!(
        untouched["admissions"],
        json!({"paused": false, "admit_per_min": null, "admit_per_s": config().admit_per_s,
            "operator": null, "at": null}),
        "{untouched:#}"
    );

    // Paused: a person queues and is not admitted.
    let paused = control(&api, json!({"paused": true})).await;
    assert_eq!(paused.expect(200, "")["paused"], true);
    let operator = paused.body["operator"].as_str().unwrap().to_owned();
    let set = control(&api, json!({"admit_per_min": 120})).await;
    assert_eq!(
        (
            &set.expect(200, "")["paused"],
            &set.body["admit_per_min"],
            &set.body["admit_per_s"]
        ),
        (&json!(true), &json!(120), &json!(2.0)),
        "a rate set while paused keeps the pause"
    );
    let session = api.session(&rid("1990-06-19", 1), "pc").await;
    api.enqueue(&session).await.expect(201, "");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The person is told admissions are paused, with no ETA the controller would not keep.
    let mine = api.get("/v1/queue/me", Some(&session)).await;
    let mine = mine.expect(200, "");
    assert_eq!(
        (&mine["state"], &mine["admissions_paused"], &mine["eta_s"]),
        (&json!("waiting"), &json!(true), &Value::Null),
        "{mine:#}"
    );
    assert!(mine.get("eta_range_s").is_none(), "{mine:#}");
    let waiting = status(&api).await;
    assert_eq!(
        (&waiting["queue_depth"], &waiting["admitted_total"]),
        (&json!(1), &json!(0)),
        "{waiting:#}"
    );
    assert_eq!(waiting["admissions"]["operator"], operator.as_str());
    // The controller aims at the rate set (120 a minute), not at the configured one.
    status_until(&api, "the controller at the rate set", |s| {
        s["outflow_rate_per_s"] == 2.0
    })
    .await;
    running.stop().await;

    // A restarted gateway replays the log: still paused, at the rate set.
    let running = start_at(open(), config(), Some(instant(BOOKING_DAY_9))).await;
    let api = Api::new(&running);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = status(&api).await;
    assert_eq!(
        (
            &restarted["admissions"]["paused"],
            &restarted["admissions"]["admit_per_min"]
        ),
        (&json!(true), &json!(120)),
        "{restarted:#}"
    );
    assert_eq!(restarted["admitted_total"], 0, "{restarted:#}");
    status_until(&api, "the restarted controller at the rate set", |s| {
        s["outflow_rate_per_s"] == 2.0
    })
    .await;

    // Resumed: the person is admitted.
    control(&api, json!({"paused": false}))
        .await
        .expect(200, "");
    // No longer said to be paused (waiting at the rate set, or admitted already).
    let mine = api.get("/v1/queue/me", Some(&session)).await;
    assert_ne!(
        mine.expect(200, "")["admissions_paused"],
        json!(true),
        "{:#}",
        mine.body
    );
    status_until(&api, "the waiting person admitted", |s| {
        s["admitted_total"] == 1
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_status_shows_todays_share_as_citizens_see_it_refusals_by_code_and_the_last_hour() {
    let (running, _dir) = server(config()).await;
    let api = Api::new(&running);
    // 10 doses over ten booking days: today's share (digit 9's, day0) holds one.
    api.supply("c1", "2021-08-30", 10).await.expect(201, "");
    let before = status(&api).await;
    let today = &before["today"];
    assert_eq!(
        (&today["share"], &today["digit"]),
        (&json!("day0"), &json!(9)),
        "{today:#}"
    );
    let c1 = &today["clinics"][0];
    assert_eq!(
        (
            &c1["clinic_id"],
            &c1["remaining"],
            &c1["sold_out"],
            &c1["address"]
        ),
        (
            &json!("c1"),
            &json!(1),
            &json!(false),
            &json!(address_of("c1"))
        ),
        "{today:#}"
    );
    assert_eq!(today["regions"][0]["region"], "seoul");

    // The one dose booked: 마감 for today's share, while the campaign's fill shows 10%.
    let first = api.session(&rid("1990-06-19", 1), "pc").await;
    let (_, admission) = api.admitted(&first).await;
    api.book(&admission, "c1", "2021-08-30")
        .await
        .expect(201, "");
    let second = api.session(&rid("1990-06-29", 2), "pc").await;
    let (_, admission) = api.admitted(&second).await;
    api.book(&admission, "c1", "2021-08-30")
        .await
        .expect(409, "sold_out");
    // Not on their booking day: refused before the queue.
    let other_day = api.session(&rid("1990-06-13", 3), "pc").await;
    api.enqueue(&other_day)
        .await
        .expect(403, "not_your_booking_day");

    let after = status_until(&api, "today's share sold out", |s| {
        s["today"]["clinics"][0]["sold_out"] == true
    })
    .await;
    assert_eq!(after["today"]["clinics"][0]["remaining"], 0);
    assert_eq!(after["today"]["regions"][0]["sold_out"], true);
    assert_eq!(clinic(&after, "c1")["booked"], 1);
    assert_eq!(clinic(&after, "c1")["capacity"], 10);
    // The same figure citizens get: the slots of today's share say 0 remain.
    let third = api.session(&rid("1990-06-09", 4), "pc").await;
    let (_, admission) = api.admitted(&third).await;
    let slots = api.get("/v1/slots", Some(&admission)).await;
    assert_eq!(slots.expect(200, "")["slots"][0]["remaining"], 0);

    let count = |list: &Value, code: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .map_or(0, |r| r["count"].as_i64().unwrap())
    };
    let refusals = &after["refusals"];
    assert_eq!(count(&refusals["answered"], "sold_out"), 1, "{refusals:#}");
    assert_eq!(
        count(&refusals["answered"], "not_your_booking_day"),
        1,
        "{refusals:#}"
    );
    assert_eq!(count(&refusals["recorded"], "sold_out"), 1, "{refusals:#}");

    // The graph: this minute's sample, with the admissions seen.
    let graph = status_until(&api, "a sample with admissions", |s| {
        s["samples"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["admitted"].as_u64() > Some(0)))
    })
    .await;
    let samples = graph["samples"].as_array().unwrap();
    assert!(
        samples.len() <= yeyak_front::samples::SAMPLES_MAX,
        "{samples:?}"
    );
    assert!(
        samples[0]["minute"]
            .as_str()
            .unwrap()
            .starts_with("2021-08-09T"),
        "{samples:?}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_marked_down_stays_down_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || embedded_on(dir.path());
    let outage = |s: &Value, method: &str| {
        s["providers"]
            .as_array()
            .expect("providers is a list")
            .iter()
            .find(|p| p["method"] == method)
            .unwrap_or_else(|| panic!("no provider {method} in {s:#}"))["outage"]
            .clone()
    };
    let running = start_at(open(), config(), Some(instant(BOOKING_DAY_9))).await;
    let api = Api::new(&running);
    api.switch_provider("kakao", true).await;
    assert_eq!(outage(&status(&api).await, "kakao"), true);
    running.stop().await;

    // A restarted gateway replays the switch from the log: kakao is still down, the others up.
    let running = start_at(open(), config(), Some(instant(BOOKING_DAY_9))).await;
    let api = Api::new(&running);
    let restarted = status_until(&api, "kakao down after the restart", |s| {
        outage(s, "kakao") == true
    })
    .await;
    assert_eq!(outage(&restarted, "naver"), false, "{restarted:#}");
    api.switch_provider("kakao", false).await;
    running.stop().await;

    let running = start_at(open(), config(), Some(instant(BOOKING_DAY_9))).await;
    let api = Api::new(&running);
    // Up again, and it stays up (the controller has ticked many times in 500 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outage(&status(&api).await, "kakao"), false);
    running.stop().await;
}
