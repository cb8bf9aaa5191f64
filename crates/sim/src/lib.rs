//! A seeded, deterministic simulator of yeyak's writers under faults, in the spirit of
//! TigerBeetle's VOPR and FoundationDB's simulation testing.
//!
//! One seed draws a small world (people, clinics, an operator, three processors, a projector, a
//! gateway) and a fault schedule, runs it on an in-memory Kafka ([`cluster`]) with the code that
//! runs in production (the processor's [`yeyak_ledger::pipeline::writer::Writer`] and its loop
//! [`yeyak_ledger::pipeline::batch::step`], the gateway's
//! [`yeyak_ledger::pipeline::submission::Submission`] and [`yeyak_ledger::pipeline::client::Answers`],
//! the projector's [`yeyak_read::projection::plan_batch`]), stops the faults, waits for
//! everything to settle, and checks ([`checks`]): every accepted command answered exactly once,
//! every record that is not a command dead-lettered, every domain invariant, every processor's
//! state equal to the replay, the projection equal to the replay, and every client told what the
//! log says. A failure prints the seed and the end of the trace; the seed reproduces it exactly.

pub mod checks;
pub mod cli;
pub mod clients;
pub mod cluster;
pub mod faults;
pub mod gateway;
pub mod projector;
pub mod rng;
pub mod world;

pub use faults::{Fault, Injected};
pub use world::{Failure, Options, Report, run};
