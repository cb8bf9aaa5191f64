//! The HTTP API on the embedded log: every path and error code, the concurrency races, and the
//! token checks (shared bodies in `api_common/`), against a server started in-process.

mod api_common;

use std::sync::Arc;

use api_common::*;
use yeyak::front::backend::{Backend, Embedded};
use yeyak::log::FsyncPolicy;

async fn server() -> (yeyak::front::server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Embedded::open_dir(dir.path(), yeyak::domain::Campaign::default_2021(), FsyncPolicy::Never).unwrap();
    (start(Arc::new(backend) as Arc<dyn Backend>, config()).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_path_and_error_code() {
    let (running, _dir) = server().await;
    every_path_and_code(&Api::new(&running)).await;
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
