//! One module per subcommand: an `Args` struct and a `run` function.

pub mod announce;
pub mod create;
pub mod demo;
pub mod download;
pub mod info;
pub mod open;
pub mod verify;
