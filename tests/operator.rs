//! The operator page: `/operator` and its script are served without a token, and `GET
//! /admin/status`, the page's only data call, refuses a missing or wrong admin token and
//! answers every field the page reads, with figures that follow the queue and the bookings.
//! Embedded log, in-process server on 127.0.0.1:0.

mod api_common;

use std::time::{Duration, Instant};

use api_common::*;
use serde_json::Value;
use yeyak_front::FrontConfig;
use yeyak_front::backend::Backend;
use yeyak_log::FsyncPolicy;

async fn server(config: FrontConfig) -> (yeyak_front::server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded_dir(
        dir.path(),
        yeyak_domain::Campaign::default_2021(),
        FsyncPolicy::Never,
    )
    .unwrap();
    let running = start_at(backend, config, Some(instant(BOOKING_DAY_9))).await;
    (running, dir)
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
