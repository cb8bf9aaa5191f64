//! The tools around the ledger: the demo campaign (`yeyak demo`), the pipeline benchmark
//! (`yeyak-bench`), the HTTP load generator (`yeyak loadgen`), and the one workload generator
//! they share.
//!
//! Architecture invariant: the production roles (`process`, `project`, `serve`) use nothing of
//! this crate, and the counting allocator ([`heap`]) is installed by the benchmark's binary
//! (`yeyak-bench`) only, so no production allocation pays for counting.

pub mod bench;
pub mod demo;
pub mod heap;
pub mod loadgen;
pub mod workload;
