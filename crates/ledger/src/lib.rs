//! The writers: the single writer of every partition, on the embedded log ([`embedded`]) or on
//! Apache Kafka ([`pipeline`]), and the one way for everyone else to have a command decided and
//! wait for its outcome ([`submit`]).
//!
//! Architecture invariant: only this crate appends events to the log; the front tier, the
//! operators' jobs and the tools reach the log through [`submit::Submit`].

pub mod embedded;
pub mod pipeline;
pub mod submit;

pub use embedded::{Ledger, LedgerError, replay};
pub use yeyak_log::codec::{
    HEADER_COMMAND_ID, HEADER_SCHEMA_VERSION, HEADER_TYPE, TOPIC_CLINIC, TOPIC_SUBJECT,
    TOPIC_WAITING_ROOM, Topology, decode, encode, read_all,
};
