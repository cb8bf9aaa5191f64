//! `yeyak.toml`: one configuration file for every role, layered under clap. Not a second
//! declaration of the options: clap stays the one place every option is declared, and the file
//! only supplies an argument's *default*, so clap's own precedence gives
//! flag > environment variable > file > built-in default.
//!
//! The file is read before the arguments are parsed (its path from `--config PATH` or
//! `YEYAK_CONFIG`, [`locate`]); [`Plan::new`] maps each key onto the argument ids of every role
//! that has it, checks its type and the argument's own value parser, and refuses a key that
//! maps to nothing ([`ConfigError`], naming the key and never quoting a value);
//! [`Plan::inject`] sets the defaults on a role's `clap::Command`. [`effective`] and [`render`]
//! are `yeyak config`: every value of a role with its source, secrets masked.

mod error;
mod file;
mod keys;
mod plan;
mod show;

pub use error::ConfigError;
pub use file::{CONFIG_ENV, ConfigFile, locate};
pub use keys::{ROLES, SHARED, section_of};
pub use plan::{Plan, Source};
pub use show::{MASK, Shown, effective, mask_password, render, source_name};
