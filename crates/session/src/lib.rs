//! The Shoal engine: a [`Session`] that listens for peers and runs torrents — peer connections (BEP 3
//! with the fast extension, BEP 6, and the extension protocol, BEP 10), the piece picker, storage with
//! hash checks, the tit-for-tat [`Choker`], and [`TorrentStats`] snapshots on a `watch` channel.
//!
//! Status: downloads from and uploads to peers whose addresses it is given; trackers, PEX, DHT, rate
//! limits and resume data are not wired in yet.
#![warn(missing_docs)]

mod choker;
mod config;
mod peer;
mod rate;
mod session;
mod stats;
mod torrent;

pub use choker::{Candidate, Choker};
pub use config::SessionConfig;
pub use rate::{RateMeter, TokenBucket};
pub use session::{AddTorrent, Session, SessionError, TorrentHandle};
pub use stats::{PeerStats, TorrentState, TorrentStats};
