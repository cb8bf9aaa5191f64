//! yeyak: an event-sourced reservation ledger for mass vaccination booking.
//!
//! The pure domain lives in [`domain`]; [`log`] holds the log abstraction and the embedded
//! file-backed log; [`ledger`] runs the single-writer partitions on top of a log; [`identity`]
//! turns resident numbers into pseudonymous subjects at the edge.

pub mod bench;
pub mod demo;
pub mod domain;
pub mod front;
pub mod identity;
pub mod ledger;
pub mod log;
pub mod pipeline;
pub mod projection;
pub mod schema;
