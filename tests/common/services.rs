//! Where the tests find the services they need (a Kafka broker), so that a test needing one
//! can never pass silently without it.

/// The Kafka bootstrap address from `YEYAK_KAFKA`.
///
/// Without `YEYAK_KAFKA`: `None` if `YEYAK_SKIP_SERVICES=1` (the caller prints "skipped: no
/// broker" and returns), otherwise a panic, so CI cannot pass these tests without a broker.
pub fn kafka_bootstrap() -> Option<String> {
    match std::env::var("YEYAK_KAFKA") {
        Ok(bootstrap) if !bootstrap.trim().is_empty() => Some(bootstrap.trim().to_owned()),
        _ if std::env::var("YEYAK_SKIP_SERVICES").as_deref() == Ok("1") => None,
        _ => panic!(
            "the Kafka tests need a broker: run scripts/test, which starts one, or set YEYAK_KAFKA \
             (e.g. YEYAK_KAFKA=127.0.0.1:19092); YEYAK_SKIP_SERVICES=1 skips them explicitly"
        ),
    }
}

/// A topic prefix no other test run uses: `test.<uuid>.`.
pub fn unique_prefix(label: &str) -> String {
    format!("test.{label}.{}.", uuid::Uuid::now_v7().simple())
}
