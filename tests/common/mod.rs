//! What the integration tests share: the domain's script language (re-exported), the real
//! services, and PostgreSQL schemas of their own.
#![allow(dead_code)]

pub mod lines;
pub mod pg;
pub mod services;

#[allow(unused_imports)]
pub use yeyak_domain::script::*;

/// Runs `yeyak ARGS` to its end with none of the caller's environment (scripts/test exports
/// YEYAK_KAFKA, which would make `serve` a deployment on Kafka instead of a rehearsal).
pub fn yeyak(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_yeyak"))
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run yeyak")
}

/// The end offset of every partition of the ledger's topics (default topology), in order: equal
/// before and after an operation means it appended nothing.
pub fn end_offsets(log: &dyn yeyak_log::EventLog) -> Vec<u64> {
    let mut ends = Vec::new();
    for (topic, partitions) in yeyak_ledger::Topology::default().topics() {
        for p in 0..partitions {
            ends.push(log.end_offset(topic, p).unwrap());
        }
    }
    ends
}
