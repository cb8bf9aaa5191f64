//! The waiting room's ETA against the wait that followed: the first ETA of a burst after a
//! quiet spell holds the real wait (it was computed from the last minute's admissions, which
//! counted the quiet spell: 99 s shown for a wait of about 15 s).

mod common;

use std::time::{Duration, Instant};

use common::{call, config, queued, server};
use yeyak_front::FrontConfig;

/// Polls the ticket until it is admitted: how long that took.
async fn wait_for_admission(
    running: &yeyak_front::server::Running,
    session: &str,
    ticket: u64,
) -> Duration {
    let started = Instant::now();
    loop {
        let (_, body) = call(
            running,
            "GET",
            &format!("/v1/queue/{ticket}"),
            Some(session),
        )
        .await;
        if body["state"] == "admitted" {
            return started.elapsed();
        }
        assert_eq!(body["state"], "waiting", "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not admitted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_eta_of_a_burst_holds_the_real_wait() {
    let rate = 10.0;
    let config = FrontConfig {
        admit_per_s: rate,
        ..config()
    };
    let (running, _dir) = server(config).await;
    // A quiet spell: one person, admitted at once, then eight seconds with nobody.
    let (session, ticket) = queued(&running, 200).await;
    wait_for_admission(&running, &session, ticket).await;
    tokio::time::sleep(Duration::from_secs(8)).await;

    // The burst: 40 people at once, then the one whose first ETA is checked.
    let running = std::sync::Arc::new(running);
    let crowd: Vec<_> = (0..40)
        .map(|i| {
            let running = running.clone();
            tokio::spawn(async move { queued(&running, 300 + i).await })
        })
        .collect();
    for person in crowd {
        person.await.unwrap();
    }
    let (session, ticket) = queued(&running, 400).await;
    let (_, first) = call(
        &running,
        "GET",
        &format!("/v1/queue/{ticket}"),
        Some(&session),
    )
    .await;
    let waited = wait_for_admission(&running, &session, ticket)
        .await
        .as_secs_f64();
    let range = &first["eta_range_s"];
    let (low, high) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    println!("first answer {first}; admitted after {waited:.2} s");
    // A second either way for the controller's ticks and this busy machine.
    assert!(
        low - 1.0 <= waited && waited <= high + 1.0,
        "ETA range {low}-{high} s, waited {waited:.2} s: {first}"
    );
    assert!(
        high <= 2.0 * (first["position"].as_f64().unwrap() + 1.0) / rate + 2.0,
        "a range this wide says nothing: {first}"
    );
    // The ETA itself: within a quarter of the wait, or a second.
    let eta = first["eta_s"].as_f64().unwrap();
    assert!(
        (eta - waited).abs() <= (0.25 * waited).max(1.0),
        "ETA {eta} s, waited {waited:.2} s: {first}"
    );
}
