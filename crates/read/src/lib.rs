//! The read side: the projections that fold the log into the rows operators and the web page
//! query ([`projection`]), and the auditors' replay that proves from the log alone that every
//! reservation was fair and lawful ([`audit`]).
//!
//! Architecture invariant: nothing here can write to the log. This crate depends on no writer
//! (`yeyak-ledger`, `yeyak-ops`; held by `tests/architecture.rs`), and it opens a log on disk
//! read-only.

pub mod audit;
pub mod pg;
pub mod projection;
