//! The tools around the ledger: the demo campaign (`yeyak demo`), the pipeline benchmark
//! (`yeyak-bench`), the HTTP load generator (`yeyak loadgen`), and the one workload generator
//! they share.
//!
//! Architecture invariant: no production role depends on this crate; the counting allocator
//! ([`heap`]) is installed by the benchmark's binary only.

pub mod bench;
pub mod demo;
pub mod heap;
pub mod loadgen;
pub mod workload;
