//! The API tests' shared body: every path and error code of the front tier's contract, the
//! concurrency races and the token checks, run against a server started in-process on
//! 127.0.0.1:0 — on the embedded log (`tests/api.rs`) and on Kafka + PostgreSQL
//! (`tests/api_kafka.rs`).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method as HttpMethod, StatusCode};
use serde_json::{Value, json};

use yeyak_domain::{DeviceId, SubjectId};
use yeyak_front::api::Front;
use yeyak_front::api::auth::AdminToken;
use yeyak_front::server::Running;
use yeyak_front::tokens::{Claims, TokenKey, TokenKind};
use yeyak_front::{FrontConfig, backend::Backend};
use yeyak_identity::{Pseudonymiser, ResidentNumber, SecretKey};

/// The operators' token of the tests (32 bytes, the least a server accepts).
pub const ADMIN: &str = "test-admin-token-0123456789abcde";
pub const BOOKING_DAY_9: &str = "2021-08-09T20:05:00+09:00";
pub const CHANGE_WINDOW: &str = "2021-08-19T20:05:00+09:00";

pub fn pseudonymiser() -> Pseudonymiser {
    Pseudonymiser::new(SecretKey::new(b"yeyak api tests key, not secret!".to_vec()).unwrap())
}

pub fn config() -> FrontConfig {
    FrontConfig {
        admin_token: Some(AdminToken::new(ADMIN).unwrap()),
        simulated_clock: true,
        ..FrontConfig::fast()
    }
}

/// Starts the API on `backend`, on a free loopback port.
pub async fn start(backend: Backend, config: FrontConfig) -> Running {
    start_at(backend, config, None).await
}

/// Starts the API with its clock at `now_ms`.
pub async fn start_at(backend: Backend, config: FrontConfig, now_ms: Option<i64>) -> Running {
    let front = Front::new(config, backend, TokenKey::new(vec![9; 32]), pseudonymiser());
    if let Some(now) = now_ms {
        front.clock.set(now);
    }
    yeyak_front::server::start(front, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start the server")
}

pub fn instant(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

/// A valid resident number for a birth date (`YYYY-MM-DD`), distinct per serial.
pub fn rid(born: &str, serial: u32) -> String {
    ResidentNumber::synthesize(born.parse().unwrap(), serial % 2 == 1, serial)
}

pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub front: Arc<Front>,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts the status and, for errors, the code and the error body's shape.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.body);
        if status >= 400 {
            assert_eq!(self.code(), code, "{:?}", self.body);
            assert!(
                self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{:?}",
                self.body
            );
        }
        &self.body
    }
}

impl Api {
    pub fn new(running: &Running) -> Api {
        Api {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap(),
            front: running.front.clone(),
        }
    }

    pub async fn call(
        &self,
        method: HttpMethod,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        self.send(request).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        assert_ne!(status.as_u16(), 500, "a 500: {body:?}");
        Answer { status, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(HttpMethod::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(HttpMethod::POST, path, token, Some(body)).await
    }

    pub async fn raw_post(&self, path: &str, body: &'static [u8]) -> Answer {
        self.send(self.client.post(format!("{}{path}", self.base)).body(body))
            .await
    }

    pub async fn set_clock(&self, now: &str) {
        self.post("/admin/clock", Some(ADMIN), json!({"now": now}))
            .await
            .expect(200, "");
    }

    pub async fn supply(&self, clinic: &str, date: &str, doses: u32) -> Answer {
        let body = json!({"clinic_id": clinic, "name": format!("Clinic {clinic}"), "region": "seoul",
            "address": address_of(clinic), "date": date, "doses": doses});
        self.post("/admin/supply", Some(ADMIN), body).await
    }

    /// Marks the provider of `method` down (`outage`) or up, with the admin token.
    pub async fn switch_provider(&self, method: &str, outage: bool) {
        let body = json!({"method": method, "outage": outage});
        self.post("/admin/providers", Some(ADMIN), body)
            .await
            .expect(200, "");
    }

    pub async fn verify(&self, method: &str, resident_id: &str, device: &str) -> Answer {
        let body = json!({"method": method, "resident_id": resident_id, "name": "홍길동", "device_id": device});
        self.post("/v1/verify", None, body).await
    }

    /// A session token (asserts the verification succeeds).
    pub async fn session(&self, resident_id: &str, device: &str) -> String {
        let answer = self.verify("kakao", resident_id, device).await;
        answer.expect(200, "");
        answer.body["session_token"].as_str().unwrap().to_owned()
    }

    /// Queues and polls until admitted: `(ticket, admission token)`.
    pub async fn admitted(&self, session: &str) -> (u64, String) {
        let queued = self
            .call(HttpMethod::POST, "/v1/queue", Some(session), None)
            .await;
        assert!(matches!(queued.status.as_u16(), 200 | 201), "{queued:?}");
        let until = Instant::now() + Duration::from_secs(60);
        let mut ticket = queued.body["ticket"].as_u64();
        // In the pre-queue: no ticket until the draw at opening.
        while ticket.is_none() {
            assert_eq!(queued.body["pre_queue"], true, "{queued:?}");
            assert!(Instant::now() < until, "no ticket within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
            ticket = self.get("/v1/queue/me", Some(session)).await.body["ticket"].as_u64();
        }
        let ticket = ticket.unwrap();
        loop {
            let status = self
                .get(&format!("/v1/queue/{ticket}"), Some(session))
                .await;
            status.expect(200, "");
            if let Some(token) = status.body["admission_token"].as_str() {
                assert_eq!(status.body["state"], "admitted");
                return (ticket, token.to_owned());
            }
            assert_eq!(status.body["state"], "waiting", "{:?}", status.body);
            assert!(Instant::now() < until, "not admitted within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/queue` with a session token.
    pub async fn enqueue(&self, session: &str) -> Answer {
        self.call(HttpMethod::POST, "/v1/queue", Some(session), None)
            .await
    }

    pub async fn book(&self, admission: &str, clinic: &str, date: &str) -> Answer {
        self.post(
            "/v1/reservations",
            Some(admission),
            json!({"clinic_id": clinic, "date": date}),
        )
        .await
    }
}

// ---- every path and every error code -----------------------------------------------------------

pub async fn every_path_and_code(api: &Api) {
    api.set_clock(BOOKING_DAY_9).await;

    // The document, the page, unknown paths.
    let doc = api.get("/openapi.json", None).await;
    doc.expect(200, "");
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{ticket}", "0")
                .replace("{id}", "00000000-0000-0000-0000-000000000000");
            let answer = api
                .call(
                    HttpMethod::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &concrete,
                    None,
                    None,
                )
                .await;
            assert!(
                !["not_found", "method_not_allowed"].contains(&answer.code()),
                "{method} {path}: {answer:?}"
            );
        }
    }
    let page = api
        .client
        .get(format!("{}/", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for file in ["index.html", "app.js", "style.css"] {
        assert_eq!(
            api.client
                .get(format!("{}/static/{file}", api.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    api.get("/static/nope.js", None)
        .await
        .expect(404, "not_found");
    api.get("/v2/nothing", None).await.expect(404, "not_found");
    api.call(HttpMethod::PATCH, "/v1/verify", None, None)
        .await
        .expect(405, "method_not_allowed");

    // Operators.
    api.post("/admin/supply", None, json!({}))
        .await
        .expect(401, "invalid_token");
    api.post("/admin/supply", Some("wrong"), json!({}))
        .await
        .expect(401, "invalid_token");
    api.supply("c1", "2021-08-30", 100).await.expect(201, "");
    let c2 = api.supply("c2", "2021-08-30", 10).await;
    assert_eq!(
        c2.expect(201, "")["day_shares"],
        json!([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    );
    api.supply("c3", "2021-08-30", 0)
        .await
        .expect(400, "invalid_doses");
    api.supply("c4", "2019-01-01", 5)
        .await
        .expect(400, "date_out_of_range");
    api.post(
        "/admin/supply",
        Some(ADMIN),
        json!({"clinic_id": "c1", "name": "x", "region": "seoul", "date": "2021-08-30", "doses": 1}),
    )
    .await
    .expect(409, "clinic_conflict");
    api.post("/admin/supply", Some(ADMIN), json!({"clinic_id": "c1"}))
        .await
        .expect(400, "missing_field");
    api.post("/admin/clock", Some(ADMIN), json!({"now": "yesterday"}))
        .await
        .expect(400, "invalid_time");
    api.get("/admin/status", None)
        .await
        .expect(401, "invalid_token");
    let big = api
        .client
        .post(format!("{}/admin/supply", api.base))
        .bearer_auth(ADMIN)
        .body(vec![b' '; 64 * 1024]);
    api.send(big).await.expect(413, "body_too_large");
    api.get("/v1/queue/%FF%FE", None)
        .await
        .expect(400, "invalid_path");

    // Verification and its codes.
    let a = rid("1990-05-19", 1);
    let session_a = api.session(&a, "pc").await;
    let verified = api.verify("naver", &rid("1991-01-09", 2), "pc").await;
    assert!(verified.expect(200, "")["expires_at"].as_str().is_some());
    api.verify("kakao", "900519-0000000", "pc")
        .await
        .expect(400, "invalid_resident_id");
    api.verify("kakao", "not a number", "pc")
        .await
        .expect(400, "invalid_resident_id");
    api.verify("carrier-pigeon", &a, "pc")
        .await
        .expect(400, "unknown_method");
    let locked = api.verify("kakao", &a, "phone").await;
    assert!(
        locked.expect(409, "device_locked")["retry_after_s"]
            .as_i64()
            .unwrap()
            > 0
    );
    let limited = api.verify("kakao", &a, "pc").await;
    assert!(
        limited.expect(429, "verify_rate_limited")["retry_after_s"]
            .as_i64()
            .unwrap()
            > 0
    );
    api.post(
        "/v1/verify",
        None,
        json!({"method": "kakao", "resident_id": a, "name": "x", "device_id": "pc", "admin": true}),
    )
    .await
    .expect(400, "unknown_field");
    let typed = api
        .post(
            "/v1/verify",
            None,
            json!({"method": "kakao", "resident_id": 9005191234563u64, "name": "x", "device_id": "pc"}),
        )
        .await;
    typed.expect(400, "invalid_field");
    assert!(
        !typed.body.to_string().contains("9005191234563"),
        "an error echoes the resident number: {typed:?}"
    );
    api.post("/v1/verify", None, json!({"method": "kakao"}))
        .await
        .expect(400, "missing_field");
    api.raw_post("/v1/verify", b"{not json")
        .await
        .expect(400, "invalid_json");
    api.raw_post("/v1/verify", &[b' '; 64 * 1024])
        .await
        .expect(413, "body_too_large");
    api.post(
        "/v1/verify",
        None,
        json!({"method": "kakao", "resident_id": a, "name": "", "device_id": "pc"}),
    )
    .await
    .expect(400, "invalid_name");
    api.post(
        "/v1/verify",
        None,
        json!({"method": "kakao", "resident_id": a, "name": "x", "device_id": "bad device"}),
    )
    .await
    .expect(400, "invalid_device_id");

    // An outage turns a method grey and refuses it.
    api.switch_provider("naver", true).await;
    api.verify("naver", &rid("1992-02-19", 3), "pc")
        .await
        .expect(503, "method_unavailable");
    let lights = api.get("/v1/congestion", None).await;
    let lights = lights.expect(200, "").as_array().unwrap().clone();
    assert_eq!(lights.len(), 7);
    for light in &lights {
        assert!(
            ["green", "yellow", "red", "grey"].contains(&light["level"].as_str().unwrap()),
            "{light}"
        );
        assert!(light["wait_s"].as_f64().is_some());
    }
    let naver = lights.iter().find(|l| l["method"] == "naver").unwrap();
    assert_eq!(naver["level"], "grey");
    assert_ne!(naver["recommended"], true);
    api.switch_provider("naver", false).await;

    // The waiting room.
    api.call(HttpMethod::POST, "/v1/queue", None, None)
        .await
        .expect(401, "invalid_token");
    let queued = api
        .call(HttpMethod::POST, "/v1/queue", Some(&session_a), None)
        .await;
    let body = queued.expect(201, "").clone();
    let ticket = body["ticket"].as_u64().unwrap();
    assert!(
        body["position"].as_u64().is_some() && body["eta_s"].as_i64().is_some(),
        "{body}"
    );
    let again = api
        .call(HttpMethod::POST, "/v1/queue", Some(&session_a), None)
        .await;
    assert_eq!(
        again.expect(200, "")["ticket"],
        ticket,
        "a refresh keeps the same ticket"
    );
    let (_, admission_a) = api.admitted(&session_a).await;
    // What is left of the admission, by the server's clock, for a page's countdown.
    let mine = api
        .get(&format!("/v1/queue/{ticket}"), Some(&session_a))
        .await;
    let left_s = mine.expect(200, "")["expires_in_s"].as_i64().unwrap();
    let ttl_s = api.front.config.admission_ttl_ms / 1000;
    assert!(0 < left_s && left_s <= ttl_s, "{left_s} s of {ttl_s}");
    let public = api.get(&format!("/v1/queue/{ticket}"), None).await;
    assert!(
        public.expect(200, "")["admission_token"].is_null(),
        "only the owner gets the admission token"
    );
    api.get("/v1/queue/abc", None)
        .await
        .expect(400, "invalid_ticket");
    api.get("/v1/queue/99999999", None)
        .await
        .expect(404, "unknown_ticket");
    api.get("/v1/queue/me", None)
        .await
        .expect(401, "invalid_token");
    api.get("/v1/queue/draws", None).await.expect(200, "");

    // Slots for the caller's booking day.
    let slots = api.get("/v1/slots", Some(&admission_a)).await;
    let slots = slots.expect(200, "").clone();
    assert_eq!(slots["share"], "day0");
    let c1 = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["clinic_id"] == "c1")
        .unwrap()
        .clone();
    assert_eq!(
        (c1["capacity"].as_i64(), c1["remaining"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(c1["address"], address_of("c1").as_str(), "{c1}");
    // The address is the registration's: a later supply may not move the clinic.
    let moved = json!({"clinic_id": "c1", "name": "Clinic c1", "region": "seoul",
        "address": "부산 중구 중앙대로 1", "date": "2021-08-31", "doses": 1});
    api.post("/admin/supply", Some(ADMIN), moved)
        .await
        .expect(409, "clinic_conflict");
    api.get("/v1/slots", None)
        .await
        .expect(401, "invalid_token");
    api.get("/v1/slots", Some(&session_a))
        .await
        .expect(401, "invalid_token");
    api.get("/v1/slots?date=2021-02-30", Some(&admission_a))
        .await
        .expect(400, "invalid_date");
    api.get("/v1/slots?bogus=1", Some(&admission_a))
        .await
        .expect(400, "invalid_query");
    let busan = api
        .get("/v1/slots?region=busan&date=2021-08-30", Some(&admission_a))
        .await;
    assert_eq!(busan.expect(200, "")["slots"], json!([]));

    // Booking and its codes.
    api.book(&session_a, "c2", "2021-08-30")
        .await
        .expect(401, "invalid_token");
    api.post(
        "/v1/reservations",
        Some(&admission_a),
        json!({"clinic_id": "c2"}),
    )
    .await
    .expect(400, "missing_field");
    api.book(&admission_a, "c 2", "2021-08-30")
        .await
        .expect(400, "invalid_clinic_id");
    api.book(&admission_a, "c2", "2021-13-01")
        .await
        .expect(400, "invalid_date");
    api.book(&admission_a, "nowhere", "2021-08-30")
        .await
        .expect(404, "unknown_clinic");
    api.book(&admission_a, "c1", "2021-08-31")
        .await
        .expect(409, "no_supply");
    api.book(&admission_a, "c1", "2022-08-31")
        .await
        .expect(400, "date_out_of_range");
    let booked = api.book(&admission_a, "c2", "2021-08-30").await;
    let reservation_a = booked.expect(201, "")["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        (
            booked.body["clinic_id"].as_str(),
            booked.body["date"].as_str()
        ),
        (Some("c2"), Some("2021-08-30"))
    );
    let mine = api.get("/v1/reservations/me", Some(&session_a)).await;
    assert_eq!(
        mine.expect(200, "")["reservation_id"],
        reservation_a.as_str()
    );
    assert_eq!(mine.body["clinic_address"], address_of("c2").as_str());
    // The code people read out: the reservation's own, the same in every answer.
    let code_a = code_of(&reservation_a);
    assert_eq!(booked.body["reservation_code"], code_a.as_str());
    assert_eq!(mine.body["reservation_code"], code_a.as_str());
    // Cancel and change open with the change window, and the reservation says when.
    let change = &mine.body["change"];
    assert_eq!(change["open"], false, "{change}");
    assert_eq!(change["reason"], "not_in_change_window");
    assert_eq!(change["opens_at"], "2021-08-19T20:00:00+09:00");
    api.get("/v1/reservations/me", None)
        .await
        .expect(401, "invalid_token");
    api.book(&admission_a, "c1", "2021-08-30")
        .await
        .expect(409, "already_reserved");

    let b = rid("1988-11-29", 4);
    let session_b = api.session(&b, "phone").await;
    let (_, admission_b) = api.admitted(&session_b).await;
    api.book(&admission_b, "c2", "2021-08-30")
        .await
        .expect(409, "sold_out");
    api.post(
        "/v1/reservations",
        Some(&admission_b),
        json!({"clinic_id": "c1", "date": "2021-08-30", "resident_id": a}),
    )
    .await
    .expect(403, "proxy_forbidden");
    api.get("/v1/reservations/me", Some(&session_b))
        .await
        .expect(404, "no_such_reservation");

    // Whose day it is, for everyone: digit 9's booking day until 18:00 tomorrow, then 0's.
    let schedule = api.get("/v1/schedule", None).await;
    let schedule = schedule.expect(200, "").clone();
    assert_eq!(schedule["open"]["kind"], "booking_day", "{schedule}");
    assert_eq!(schedule["open"]["digit"], 9, "{schedule}");
    assert_eq!(schedule["open"]["closes_at"], "2021-08-10T18:00:00+09:00");
    assert_eq!(schedule["next"]["digit"], 0, "{schedule}");
    assert_eq!(schedule["next"]["opens_at"], "2021-08-10T20:00:00+09:00");
    assert_eq!(schedule["age_group"]["born_from_year"], 1972);

    // Someone whose day it is learns until when it lasts.
    let verified_b9 = api.verify("kakao", &rid("1991-01-29", 7), "pc").await;
    let booking_b9 = verified_b9.expect(200, "")["booking"].clone();
    assert_eq!(booking_b9["open"], true, "{booking_b9}");
    assert!(booking_b9["reason"].is_null(), "{booking_b9}");
    assert_eq!(booking_b9["closes_at"], "2021-08-10T18:00:00+09:00");

    // Someone whose day is not today learns it from the verification, with the day and hour,
    // and gets no place in the queue (the ledger would refuse their booking).
    let c = rid("1990-05-13", 5); // digit 3: books from 13 August 20:00 (Korea time)
    let verified_c = api.verify("kakao", &c, "pc").await;
    let booking_c = verified_c.expect(200, "")["booking"].clone();
    assert_eq!(booking_c["open"], false, "{booking_c}");
    assert_eq!(booking_c["reason"], "not_your_booking_day");
    assert_eq!(booking_c["opens_at"], "2021-08-13T20:00:00+09:00");
    let session_c = verified_c.body["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let not_today = api.enqueue(&session_c).await;
    let wait_s = not_today.expect(403, "not_your_booking_day")["retry_after_s"]
        .as_i64()
        .unwrap();
    assert!(wait_s > 3 * 86_400, "until 13 August: {wait_s} s");
    api.get("/v1/queue/me", Some(&session_c))
        .await
        .expect(404, "unknown_ticket");

    // Outside the age group: told why, never queued.
    let d = rid("1960-05-19", 6);
    let verified_d = api.verify("kakao", &d, "pc").await;
    let booking_d = verified_d.expect(200, "")["booking"].clone();
    assert_eq!(booking_d["open"], false, "{booking_d}");
    assert_eq!(booking_d["reason"], "not_eligible");
    assert!(booking_d["opens_at"].is_null(), "{booking_d}");
    let session_d = verified_d.body["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.enqueue(&session_d).await.expect(403, "not_eligible");

    // Cancel and change: only in the change window.
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/reservations/{reservation_a}"),
        Some(&session_a),
        None,
    )
    .await
    .expect(403, "not_in_change_window");
    api.call(
        HttpMethod::DELETE,
        "/v1/reservations/not-a-uuid",
        Some(&session_a),
        None,
    )
    .await
    .expect(400, "invalid_reservation_id");

    api.set_clock(CHANGE_WINDOW).await;
    api.supply("c5", "2021-09-01", 20).await.expect(201, "");
    // The session from ten days ago has expired: verify again.
    api.get("/v1/reservations/me", Some(&session_a))
        .await
        .expect(401, "invalid_token");
    let session_a = api.session(&a, "pc").await;
    let (_, admission_a2) = api.admitted(&session_a).await;
    let changed = api
        .call(
            HttpMethod::PUT,
            &format!("/v1/reservations/{reservation_a}"),
            Some(&admission_a2),
            Some(json!({"clinic_id": "c5", "date": "2021-09-01"})),
        )
        .await;
    let new_reservation = changed.expect(200, "")["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(changed.body["replaces"], reservation_a.as_str());
    // A change is a new reservation, with a new code; the old one is named too.
    assert_eq!(
        changed.body["reservation_code"],
        code_of(&new_reservation).as_str()
    );
    assert_eq!(changed.body["replaces_code"], code_a.as_str());
    assert_ne!(code_of(&new_reservation), code_a);
    let mine = api.get("/v1/reservations/me", Some(&session_a)).await;
    assert_eq!(mine.expect(200, "")["clinic_id"], "c5");
    assert_eq!(mine.body["change"]["open"], true, "{:?}", mine.body);
    assert_eq!(
        mine.body["change"]["closes_at"],
        "2021-09-18T18:00:00+09:00"
    );
    // The admission was used by the change: a second use is refused by the ledger.
    let replay = api
        .call(
            HttpMethod::PUT,
            &format!("/v1/reservations/{new_reservation}"),
            Some(&admission_a2),
            Some(json!({"clinic_id": "c1", "date": "2021-08-30"})),
        )
        .await;
    assert_eq!(
        replay.expect(401, "invalid_token")["reason"],
        "admission_used"
    );
    api.call(
        HttpMethod::PUT,
        &format!("/v1/reservations/{reservation_a}"),
        Some(&admission_a2),
        Some(json!({"clinic_id": "c1", "date": "2021-08-30"})),
    )
    .await
    .expect(404, "no_such_reservation");
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/reservations/{new_reservation}"),
        Some(&session_a),
        None,
    )
    .await
    .expect(200, "");
    api.get("/v1/reservations/me", Some(&session_a))
        .await
        .expect(404, "no_such_reservation");
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/reservations/{new_reservation}"),
        Some(&session_a),
        None,
    )
    .await
    .expect(404, "no_such_reservation");

    // Leaving the queue.
    let e = rid("1993-03-09", 7);
    let session_e = api.session(&e, "pc").await;
    let queued = api
        .call(HttpMethod::POST, "/v1/queue", Some(&session_e), None)
        .await;
    let ticket_e = queued.body["ticket"].as_u64().unwrap();
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/queue/{ticket_e}"),
        Some(&session_e),
        None,
    )
    .await
    .expect(200, "");
    let left = api.get(&format!("/v1/queue/{ticket_e}"), None).await;
    assert_eq!(left.expect(200, "")["state"], "expired");
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/queue/{ticket_e}"),
        Some(&session_e),
        None,
    )
    .await
    .expect(404, "not_queued");
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/queue/{ticket_e}"),
        None,
        None,
    )
    .await
    .expect(401, "invalid_token");

    // Operators' views.
    let status = api.get("/admin/status", Some(ADMIN)).await;
    let status = status.expect(200, "").clone();
    assert!(
        status["fill"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["clinic_id"] == "c2"),
        "{status}"
    );
    // a, b and a again were admitted (c and d, who may not book today, never queued).
    assert!(status["admitted_total"].as_u64().unwrap() >= 3, "{status}");
    // The ledger's health: decisions were seen; on Kafka, the processors' lag is measured
    // (every 5 s, the first at once), and nothing is left undecided once the flows answered.
    let ledger = &status["ledger"];
    assert!(ledger["last_decision_at"].is_string(), "{status}");
    assert!(ledger["requests_waiting"].is_u64(), "{status}");
    let on_kafka = status["backend"] == "kafka";
    assert_eq!(ledger["decides_at_once"], !on_kafka, "{status}");
    if on_kafka {
        let mut ledger = ledger.clone();
        for _ in 0..40 {
            if ledger["undecided"].is_u64() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let again = api.get("/admin/status", Some(ADMIN)).await;
            ledger = again.expect(200, "").clone()["ledger"].clone();
        }
        assert!(
            ledger["undecided"].is_u64(),
            "the processors' lag is measured: {ledger}"
        );
    }
    let metrics = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "yeyak_http_requests_total{",
        "yeyak_queue_depth ",
        "yeyak_admission_rate ",
        "yeyak_verification_wait_seconds{",
        "yeyak_decision_seconds_bucket{",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(
        metrics.contains("route=\"/v1/verify\",code=\"409\""),
        "{metrics}"
    );
    // OpenMetrics, encoded by prometheus-client: typed families and the end marker.
    assert!(
        metrics.contains("# TYPE yeyak_decision_seconds histogram"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
}

// ---- concurrency ------------------------------------------------------------------------------

/// 10 devices of one person verify at once: exactly one gets through, nine are locked out.
pub async fn ten_devices_one_person(api: Arc<Api>) {
    api.set_clock(BOOKING_DAY_9).await;
    let person = rid("1985-07-09", 11);
    let mut tasks = tokio::task::JoinSet::new();
    for device in 0..10 {
        let (api, person) = (api.clone(), person.clone());
        tasks.spawn(async move {
            api.verify("kakao", &person, &format!("device-{device}"))
                .await
        });
    }
    let mut ok = 0;
    let mut locked = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        match answer.status.as_u16() {
            200 => ok += 1,
            409 => {
                answer.expect(409, "device_locked");
                locked += 1;
            }
            other => panic!("unexpected {other}: {:?}", answer.body),
        }
    }
    assert_eq!((ok, locked), (1, 9));
}

/// `people` people race for the last 10 doses of a share: exactly 10 reservations.
pub async fn race_for_the_last_doses(api: Arc<Api>, people: u32) {
    api.set_clock(BOOKING_DAY_9).await;
    // 100 doses over 10 booking days: 10 in the share of digit 9 (today).
    api.supply("race", "2021-08-31", 100).await.expect(201, "");
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..people {
        let (api, gate) = (api.clone(), gate.clone());
        tasks.spawn(async move {
            let _place = gate.acquire().await.unwrap();
            let person = rid(
                ["1980-01-09", "1991-10-19", "2000-12-29"][n as usize % 3],
                1000 + n,
            );
            let session = api.session(&person, "phone").await;
            let (_, admission) = api.admitted(&session).await;
            api.book(&admission, "race", "2021-08-31").await
        });
    }
    let (mut booked, mut sold_out) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        match answer.status.as_u16() {
            201 => booked += 1,
            _ => {
                answer.expect(409, "sold_out");
                sold_out += 1;
            }
        }
    }
    assert_eq!((booked, sold_out), (10, people - 10));
    let view = api.front.backend.view().read().unwrap();
    let day0 = view
        .model
        .slot_quota
        .iter()
        .find(|((c, _, s), _)| c.as_str() == "race" && s.to_string() == "day0")
        .unwrap();
    assert_eq!((day0.1.capacity, day0.1.booked), (10, 10));
}

// ---- asking for a place again ------------------------------------------------------------------

/// Asking for a place again is the waiting room's decision, the same on every gateway (`api`
/// and `other` may be two gateways of one ledger): the ticket held is kept, and once its
/// admission was used to book, a new ticket is issued at once (to queue for a change).
pub async fn queue_again_after_booking(api: &Api, other: &Api) {
    api.set_clock(CHANGE_WINDOW).await;
    other.set_clock(CHANGE_WINDOW).await;
    api.supply("again", "2021-09-03", 20).await.expect(201, "");
    let session = api.session(&rid("1994-02-14", 31), "pc").await;
    let (ticket, admission) = api.admitted(&session).await;
    for (gateway, api) in [("first", api), ("other", other)] {
        let kept = api.enqueue(&session).await;
        let body = kept.expect(200, "");
        assert_eq!(body["ticket"], ticket, "{gateway}: the ticket held is kept");
        assert_eq!(body["state"], "admitted", "{gateway}: {body}");
    }
    api.book(&admission, "again", "2021-09-03")
        .await
        .expect(201, "");
    let again = api.enqueue(&session).await;
    let new_ticket = again.expect(201, "")["ticket"].as_u64().unwrap();
    assert!(new_ticket > ticket, "a new ticket, at the back: {again:?}");
    for (gateway, api) in [("first", api), ("other", other)] {
        let kept = api.enqueue(&session).await;
        assert_eq!(kept.expect(200, "")["ticket"], new_ticket, "{gateway}");
    }
}

// ---- a request asked again with its Idempotency-Key ---------------------------------------------

impl Api {
    /// `POST path` with an `Idempotency-Key` header.
    pub async fn post_keyed(
        &self,
        path: &str,
        token: Option<&str>,
        key: &str,
        body: Value,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        self.send(request).await
    }
}

/// A verification and a booking asked again with the same `Idempotency-Key` (their first answer
/// lost: a 503, a gateway gone), on `other` (another gateway, or the same): answered with the
/// first decision, not decided again. Another key is a new request, refused by the rules.
pub async fn asked_again_with_its_key(api: &Api, other: &Api) {
    api.set_clock(CHANGE_WINDOW).await;
    other.set_clock(CHANGE_WINDOW).await;
    api.supply("keyed", "2021-09-03", 20).await.expect(201, "");
    let person = json!({"method": "kakao", "resident_id": rid("1994-02-14", 77), "name": "홍길동", "device_id": "pc"});
    let first = api
        .post_keyed("/v1/verify", None, "verify-1", person.clone())
        .await;
    first.expect(200, "");
    let again = other
        .post_keyed("/v1/verify", None, "verify-1", person.clone())
        .await;
    let session = again.expect(200, "")["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    other
        .post_keyed("/v1/verify", None, "verify-2", person.clone())
        .await
        .expect(429, "verify_rate_limited");
    // The same key from another phone: no session for it.
    let mut phone = person.clone();
    phone["device_id"] = json!("phone");
    other
        .post_keyed("/v1/verify", None, "verify-1", phone)
        .await
        .expect(409, "device_locked");
    api.post("/v1/verify", None, person.clone())
        .await
        .expect(429, "verify_rate_limited");
    api.post_keyed("/v1/verify", None, "not a key!", person.clone())
        .await
        .expect(400, "invalid_idempotency_key");
    api.post_keyed("/v1/verify", None, &"k".repeat(65), person)
        .await
        .expect(400, "invalid_idempotency_key");

    let (_, admission) = api.admitted(&session).await;
    let pick = json!({"clinic_id": "keyed", "date": "2021-09-03"});
    let booked = api
        .post_keyed("/v1/reservations", Some(&admission), "book-1", pick.clone())
        .await;
    let reservation = booked.expect(201, "")["reservation_id"].clone();
    let again = other
        .post_keyed("/v1/reservations", Some(&admission), "book-1", pick.clone())
        .await;
    assert_eq!(
        again.expect(201, "")["reservation_id"],
        reservation,
        "{again:?}"
    );
    other
        .post_keyed("/v1/reservations", Some(&admission), "book-2", pick)
        .await
        .expect(409, "already_reserved");
}

// ---- tokens -----------------------------------------------------------------------------------

pub async fn tokens_are_checked(api: &Api) {
    api.set_clock(CHANGE_WINDOW).await;
    api.supply("t1", "2021-09-02", 50).await.expect(201, "");
    let person = rid("1995-04-04", 21);
    let session = api.session(&person, "pc").await;
    let now = api.front.clock.now_ms();
    let (subject, _) = pseudonymiser().subject_of(&person).unwrap();
    let claims = |exp, kind| Claims {
        kind,
        sub: subject,
        dev: DeviceId::new("pc").unwrap(),
        exp,
        adm: None,
        tkt: None,
    };

    // Forged: signed with another key, or changed after signing.
    let forged = TokenKey::new(vec![1; 32]).sign(&claims(now + 60_000, TokenKind::Session));
    let answer = api
        .call(HttpMethod::POST, "/v1/queue", Some(&forged), None)
        .await;
    assert_eq!(
        answer.expect(401, "invalid_token")["reason"],
        "bad_signature"
    );
    let other_subject = Claims {
        sub: SubjectId([7; 16]),
        ..claims(now + 60_000, TokenKind::Session)
    };
    let payload = api.front.keys.sign(&other_subject);
    let tampered = format!(
        "{}.{}",
        payload.split('.').next().unwrap(),
        session.split('.').nth(1).unwrap()
    );
    api.call(HttpMethod::POST, "/v1/queue", Some(&tampered), None)
        .await
        .expect(401, "invalid_token");
    api.call(HttpMethod::POST, "/v1/queue", Some("garbage"), None)
        .await
        .expect(401, "invalid_token");

    // Expired, with the server's own key.
    let expired = api.front.keys.sign(&claims(now - 1, TokenKind::Session));
    let answer = api
        .call(HttpMethod::POST, "/v1/queue", Some(&expired), None)
        .await;
    assert_eq!(answer.expect(401, "invalid_token")["reason"], "expired");

    // Another device: the header names it, or the ledger knows another device verified since.
    let answer = api
        .send(
            api.client
                .post(format!("{}/v1/queue", api.base))
                .bearer_auth(&session)
                .header("x-device-id", "phone"),
        )
        .await;
    assert_eq!(
        answer.expect(401, "invalid_token")["reason"],
        "other_device"
    );

    // An admission used once cannot be used again.
    let (_, admission) = api.admitted(&session).await;
    // Whoever holds a token reads its claims: nothing personal in them.
    for token in [&session, &admission] {
        use base64::Engine;
        let payload = token.split('.').next().unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        let claims: Value = serde_json::from_slice(&claims).unwrap();
        let fields: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for field in &fields {
            assert!(
                ["kind", "sub", "dev", "exp", "adm", "tkt"].contains(field),
                "{claims}"
            );
        }
        let text = claims.to_string();
        for birth in ["1995-04-04", "950404"] {
            assert!(!text.contains(birth), "{text}");
        }
    }
    let booked = api.book(&admission, "t1", "2021-09-02").await;
    let reservation = booked.expect(201, "")["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        HttpMethod::DELETE,
        &format!("/v1/reservations/{reservation}"),
        Some(&session),
        None,
    )
    .await
    .expect(200, "");
    let replayed = api.book(&admission, "t1", "2021-09-02").await;
    assert_eq!(
        replayed.expect(401, "invalid_token")["reason"],
        "admission_used"
    );

    // A session whose device is no longer the verified one (another device verified after the
    // lock ran out) is refused by the ledger, whatever the token says.
    api.set_clock("2021-08-19T20:20:00+09:00").await;
    let phone = api.session(&person, "phone").await;
    let (_, phone_admission) = api.admitted(&phone).await;
    let pc_admission = api.front.keys.sign(&Claims {
        adm: Some(
            api.front
                .backend
                .view()
                .read()
                .unwrap()
                .admissions
                .get(&subject)
                .map(|a| a.admission)
                .unwrap(),
        ),
        ..claims(api.front.clock.now_ms() + 60_000, TokenKind::Admission)
    });
    let answer = api.book(&pc_admission, "t1", "2021-09-02").await;
    assert_eq!(
        answer.expect(401, "invalid_token")["reason"],
        "not_verified"
    );
    api.book(&phone_admission, "t1", "2021-09-02")
        .await
        .expect(201, "");
}

// ---- the change window's pool --------------------------------------------------------------------

/// Once the clock passes the last booking day's close, the controller ticks every clinic that
/// still shows day shares left over, so the pool is bookable without waiting for some other
/// command to reach the clinic.
pub async fn the_pool_opens_when_the_booking_days_are_over(api: &Api) {
    api.set_clock(BOOKING_DAY_9).await;
    api.supply("pool-clinic", "2021-08-30", 100)
        .await
        .expect(201, "");
    let pool = |api: &Api| -> i64 {
        let view = api.front.backend.view().read().unwrap();
        view.model
            .slot_quota
            .iter()
            .filter(|((clinic, _, share), _)| {
                clinic.as_str() == "pool-clinic" && *share == yeyak_domain::Share::Pool
            })
            .map(|(_, row)| row.remaining())
            .sum()
    };
    assert_eq!(
        pool(api),
        0,
        "before the booking days are over the pool is empty"
    );
    api.set_clock(CHANGE_WINDOW).await;
    let until = Instant::now() + Duration::from_secs(20);
    while pool(api) == 0 {
        assert!(
            Instant::now() < until,
            "the pool stayed empty 20 s into the change window"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything not booked on the day shares moved, once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool(api), 100);
}

/// The `congestion` row of `method` in the gateway's read model (the fold of the log it reads).
fn congestion_row(
    api: &Api,
    method: yeyak_domain::Method,
) -> Option<yeyak_read::projection::CongestionRow> {
    let view = api.front.backend.view().read().unwrap();
    view.model.congestion.get(&method).cloned()
}

/// Waits (at most 30 s, polling) until `method`'s recorded light satisfies `ok`.
async fn wait_for_congestion(
    api: &Api,
    method: yeyak_domain::Method,
    what: &str,
    ok: impl Fn(&yeyak_read::projection::CongestionRow) -> bool,
) -> yeyak_read::projection::CongestionRow {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(row) = congestion_row(api, method).filter(|r| ok(r)) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no such congestion report was recorded; the row is {:?}",
            congestion_row(api, method)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway that reports (`congestion_report_ms` > 0) records every method's light in the
/// log, and an outage at once as a grey report, then green again when it ends.
pub async fn congestion_is_recorded(api: &Api) {
    use yeyak_domain::{CongestionLevel, Method};
    let gateway = api.front.config.gateway.clone();
    for method in Method::ALL {
        wait_for_congestion(api, method, method.as_str(), |r| r.gateway == gateway).await;
    }
    api.switch_provider("ipin", true).await;
    let grey = wait_for_congestion(api, Method::Ipin, "the outage", |r| {
        r.level == CongestionLevel::Grey
    })
    .await;
    assert!(!grey.provider_up, "{grey:?}");
    api.switch_provider("ipin", false).await;
    let back = wait_for_congestion(api, Method::Ipin, "the end of the outage", |r| {
        r.level != CongestionLevel::Grey
    })
    .await;
    assert!(back.provider_up, "{back:?}");
    assert!(
        back.reported_at_ms >= grey.reported_at_ms,
        "{back:?} {grey:?}"
    );
}

/// The code of a reservation id as the API writes it (10 characters, the check included).
/// The road address `Api::supply` registers a clinic with.
pub fn address_of(clinic: &str) -> String {
    format!("서울 종로구 세종대로 {clinic}")
}

pub fn code_of(reservation_id: &str) -> String {
    let id = yeyak_domain::ReservationId(reservation_id.parse().unwrap());
    let code = yeyak_domain::ReservationCode::of(id);
    assert_eq!(
        yeyak_domain::ReservationCode::parse(code.as_str()),
        Some(code)
    );
    code.as_str().to_owned()
}
