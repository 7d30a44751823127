//! One module per subcommand: an `Args` struct and a `run` function.

pub mod create;
pub mod download;
pub mod info;
pub mod verify;
