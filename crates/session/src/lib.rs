//! The Shoal engine: a [`Session`] that listens for peers and runs torrents — peer connections (BEP 3
//! with the fast extension, BEP 6, and the extension protocol, BEP 10), the piece picker, storage with
//! hash checks, the tit-for-tat [`Choker`], and [`TorrentStats`] snapshots on a `watch` channel.
//!
//! Status: finds peers through the torrent's trackers (BEP 12 tiers) and from addresses it is given,
//! downloads and seeds, keeps resume data, bans peers that send bad data; PEX, DHT and rate limits are
//! not wired in yet.
#![warn(missing_docs)]

mod choker;
mod config;
mod magnet;
mod peer;
mod rate;
mod session;
mod sources;
mod stats;
mod torrent;

pub use choker::{Candidate, Choker};
pub use config::SessionConfig;
pub use rate::{Limiter, RateMeter, TokenBucket};
pub use session::{AddMagnet, AddTorrent, Session, SessionError, TorrentHandle};
pub use shoal_picker::Priority;
pub use stats::{MetadataProgress, PeerStats, TorrentState, TorrentStats, TrackerStats};
