//! PostgreSQL for the tests: where it is, and a fresh schema per test so tests run concurrently
//! and repeatedly on one database.

use postgres::{Client, NoTls};

/// The database URL from `YEYAK_POSTGRES`. Unset: `None` when `YEYAK_SKIP_SERVICES=1` (the test
/// prints "skipped" and returns), a panic otherwise, so a missing database never passes silently.
pub fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var("YEYAK_POSTGRES") {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    if std::env::var("YEYAK_SKIP_SERVICES").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "the PostgreSQL tests need a database: run scripts/test, which starts one, or set YEYAK_POSTGRES \
         (e.g. postgres://yeyak:yeyak@127.0.0.1:15432/yeyak); YEYAK_SKIP_SERVICES=1 skips them"
    );
}

/// A schema of its own (`t_<uuid>`), dropped with everything in it when this value is dropped.
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    pub fn create(url: &str) -> TestSchema {
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let mut admin = Client::connect(url, NoTls).expect("connect to PostgreSQL");
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create the test schema");
        TestSchema {
            url: url.to_owned(),
            name,
        }
    }

    /// The database URL with this schema as the search_path, for a process (or a projector)
    /// that connects on its own.
    pub fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.url, self.name)
    }

    /// A new connection whose search_path is this schema only.
    pub fn client(&self) -> Client {
        let mut client = Client::connect(&self.url, NoTls).expect("connect to PostgreSQL");
        client
            .batch_execute(&format!("SET search_path TO {}", self.name))
            .expect("set search_path");
        client
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.url, NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
