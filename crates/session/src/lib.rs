//! The Shoal engine: a session that owns torrents, peer connections, the choker, rate limits and stats.
//!
//! Status: the engine's pure parts are here — the tit-for-tat [`Choker`], [`RateMeter`] and
//! [`TokenBucket`]; the session itself (connections, trackers, storage) is being built.
#![warn(missing_docs)]

mod choker;
mod rate;

pub use choker::{Candidate, Choker};
pub use rate::{RateMeter, TokenBucket};
