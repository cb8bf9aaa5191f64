//! One module per role of the `yeyak` binary: its arguments and the function that runs it.

pub mod audit;
pub mod chaos_sim;
pub mod config;
pub mod demo;
pub mod keygen;
pub mod loadgen;
pub mod process;
pub mod project;
pub mod serve;
pub mod simulate;
pub mod stall_guard;
