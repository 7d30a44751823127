//! The Shoal engine: a [`Session`] that listens for peers and runs torrents — peer connections (BEP 3
//! with the fast extension, BEP 6, and the extension protocol, BEP 10), the piece picker, storage with
//! hash checks, the tit-for-tat [`Choker`], and [`TorrentStats`] snapshots on a `watch` channel.
//!
//! Peers come from the torrent's trackers (BEP 12 tiers), the DHT (BEP 5, when the session runs a node),
//! PEX (BEP 11), incoming connections and addresses given. Magnet links ([`Session::add_magnet`]) fetch
//! the info dictionary from peers first (BEP 9); the engine serves it to others too. Downloads and seeds
//! with global and per-torrent rate limits, a session-wide connection budget, file priorities, resume
//! data, bans for peers that send bad data, and message stream encryption ([`Encryption`]).
#![warn(missing_docs)]

mod choker;
mod config;
mod limits;
mod magnet;
mod peer;
mod rate;
mod session;
mod settings;
mod sources;
mod stats;
mod torrent;
mod webseed;

pub use choker::{Candidate, Choker};
pub use config::{Encryption, SessionConfig};
pub use limits::Limits;
pub use rate::{Limiter, RateMeter, TokenBucket};
pub use session::{AddMagnet, AddTorrent, Session, SessionError, TorrentHandle};
pub use shoal_picker::Priority;
pub use stats::{MetadataProgress, PeerStats, TorrentState, TorrentStats, TrackerStats};
