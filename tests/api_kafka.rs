//! The HTTP API on Kafka + PostgreSQL: the same test bodies as `tests/api.rs` (every path and
//! error code, the races, the tokens), with the commands decided by a processor of the Kafka
//! pipeline and the view fed by the event tail; at the end the PostgreSQL projection of the
//! same topics must equal the gateway's read model row for row.

mod api_common;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api_common::*;
use yeyak_domain::Campaign;
use yeyak_front::backend::Backend;
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::admin::{delete_topics, ensure_topics};
use yeyak_ledger::pipeline::processor::{Processor, ProcessorConfig};
use yeyak_log::{KafkaConfig, KafkaLog};
use yeyak_read::projection::postgres::{PgProjector, READ_MODELS_PROJECTION, read_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_on_kafka_and_postgres() {
    let Some(bootstrap) = common::services::kafka_bootstrap() else {
        eprintln!("skipped: no broker");
        return;
    };
    let Some(postgres) = common::pg::postgres_url() else {
        eprintln!("skipped: no database");
        return;
    };
    let topology = Topology::default();
    let topics = Topics::new(&common::services::unique_prefix("api"), topology);
    ensure_topics(&bootstrap, &topics, yeyak_log::TopicSettings::default()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let processor = {
        let (stop, config) = (
            stop.clone(),
            ProcessorConfig::new(&bootstrap, topics.clone(), "api-test"),
        );
        std::thread::spawn(move || {
            let mut processor =
                Processor::start(config, Campaign::default_2021()).expect("start the processor");
            processor.run(stop).expect("the processor runs")
        })
    };
    let backend = Backend::kafka(
        &bootstrap,
        topics.clone(),
        Campaign::default_2021(),
        Duration::from_secs(30),
    )
    .unwrap();
    // Congestion reports on: when the light changes (and hourly, which this test never reaches,
    // so no report lands while the projection is compared at the end).
    let running = start(
        backend.clone(),
        yeyak_front::FrontConfig {
            congestion_report_ms: 3_600_000,
            ..config()
        },
    )
    .await;
    let api = Arc::new(Api::new(&running));

    eprintln!("every path and error code");
    every_path_and_code(&api).await;
    eprintln!("ten devices");
    ten_devices_one_person(api.clone()).await;
    eprintln!("tokens");
    tokens_are_checked(&api).await;
    eprintln!("the race of 1,000 people");
    race_for_the_last_doses(api.clone(), 1000).await;

    // A second gateway on the same topics: the 10-minute rules hold across gateways, because
    // the person's partition decides them.
    eprintln!("two gateways");
    let second = Backend::kafka(
        &bootstrap,
        topics.clone(),
        Campaign::default_2021(),
        Duration::from_secs(30),
    )
    .unwrap();
    let running_2 = start(second, config()).await;
    let api_2 = Api::new(&running_2);
    api.set_clock(BOOKING_DAY_9).await;
    api_2.set_clock(BOOKING_DAY_9).await;
    let person = rid("1979-09-29", 9_001);
    api.verify("pass", &person, "laptop").await.expect(200, "");
    api_2
        .verify("naver", &person, "tablet")
        .await
        .expect(409, "device_locked");
    api_2
        .verify("naver", &person, "laptop")
        .await
        .expect(429, "verify_rate_limited");
    // And the waiting room decides whether a request keeps its ticket or gets a new one.
    queue_again_after_booking(&api, &api_2).await;
    // A request whose answer was lost, asked again of the other gateway with its key.
    asked_again_with_its_key(&api, &api_2).await;
    running_2.stop().await;
    eprintln!("the change window's pool");
    the_pool_opens_when_the_booking_days_are_over(&api).await;
    eprintln!("congestion reports");
    congestion_is_recorded(&api).await;
    running.stop().await;

    // The PostgreSQL projection of the same topics equals the read model folded from them, and
    // the gateway's read model (which keeps no queue-ticket rows: only the projector does).
    let (prefix, bootstrap2) = (topics.prefix.clone(), bootstrap.clone());
    let (projected, folded) = tokio::task::spawn_blocking(move || {
        // The synchronous PostgreSQL client runs its own runtime: off the async threads.
        let schema = common::pg::TestSchema::create(&postgres);
        let log = KafkaLog::connect(KafkaConfig {
            topic_prefix: prefix,
            ..KafkaConfig::new(bootstrap2, "api-test-projector")
        })
        .unwrap();
        let mut projector =
            PgProjector::new(schema.client(), &log, topology, READ_MODELS_PROJECTION).unwrap();
        projector.run_until_caught_up().unwrap();
        let mut folded = yeyak_read::projection::ReadModel::new();
        yeyak_ledger::read_all(&log, &topology, |_, envelope| folded.apply(&envelope)).unwrap();
        (read_model(&mut schema.client()).unwrap(), folded)
    })
    .await
    .unwrap();
    let differences = yeyak_read::projection::diff_models(&folded, &projected);
    assert!(
        differences.is_empty(),
        "PostgreSQL and the log's read model differ: {:?}",
        &differences[..differences.len().min(5)]
    );
    assert!(
        !projected.queue_tickets.is_empty(),
        "the projector keeps the queue tickets"
    );
    let differences: Vec<_> =
        yeyak_read::projection::diff_models(&backend.view().read().unwrap().model, &projected)
            .into_iter()
            .filter(|d| d.table != yeyak_read::projection::Table::QueueTickets)
            .collect();
    assert!(
        differences.is_empty(),
        "PostgreSQL and the gateway's view differ: {:?}",
        &differences[..differences.len().min(5)]
    );
    assert!(projected.reservations.len() >= 10);
    // The congestion lights the gateway reported, as rows in PostgreSQL: every method.
    assert_eq!(projected.congestion.len(), 7, "{:?}", projected.congestion);
    assert!(projected.congestion.values().all(|r| r.provider_up));

    stop.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        processor.join().expect("the processor thread");
        delete_topics(&bootstrap, &topics).unwrap();
    })
    .await
    .unwrap();
}
