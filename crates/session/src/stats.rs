//! Snapshots of a torrent's state, published on a `watch` channel for the TUI and headless progress.

use std::net::SocketAddr;

/// What a torrent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TorrentState {
    /// A magnet link waiting for the info dictionary from peers (BEP 9).
    FetchingMetadata,
    /// Hashing existing data on start.
    #[default]
    Checking,
    /// Downloading.
    Downloading,
    /// Complete and verified; uploading to others.
    Seeding,
    /// Stopped by the user: no connections until resumed.
    Paused,
    /// Downloading stopped by an error that may pass, such as a full disk (see
    /// [`TorrentStats::error`]): the torrent keeps seeding what it has and tries again every 10 s.
    Stalled,
    /// Stopped by an error (see [`TorrentStats::error`]).
    Error,
    /// Its files are being moved to another directory ([`Session::move_data`](crate::Session::move_data)):
    /// no connections until the move is done.
    Moving,
}

/// One connected peer, as the views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The client name from its peer id or extended handshake, control characters removed.
    pub client: String,
    /// We connected to it (else it connected to us).
    pub outgoing: bool,
    /// The connection is RC4-encrypted (message stream encryption).
    pub encrypted: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// We choke it.
    pub am_choking: bool,
    /// It is interested in what we have.
    pub peer_interested: bool,
    /// We are interested in what it has.
    pub am_interested: bool,
    /// Bytes per second it sends us.
    pub download_rate: u64,
    /// Bytes per second we send it.
    pub upload_rate: u64,
    /// How many pieces it has.
    pub pieces: u32,
}

/// What one tracker said last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerStats {
    /// The tracker's URL.
    pub url: String,
    /// The last announce's outcome: `Ok(peers returned)` or the error, as text.
    pub last: Result<usize, String>,
    /// Seeders and leechers the tracker reported.
    pub seeders: Option<u32>,
    /// Leechers the tracker reported.
    pub leechers: Option<u32>,
    /// A warning the tracker sent.
    pub warning: Option<String>,
}

/// A torrent's state, refreshed every second.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TorrentStats {
    /// The torrent's name.
    pub name: String,
    /// What it is doing.
    pub state: TorrentState,
    /// Why it stopped, when it did.
    pub error: Option<String>,
    /// Verified pieces.
    pub pieces_have: u32,
    /// All pieces.
    pub pieces_total: u32,
    /// Which pieces are verified, one flag per piece.
    pub have: Vec<bool>,
    /// Verified bytes.
    pub bytes_have: u64,
    /// Total size.
    pub bytes_total: u64,
    /// Block bytes received since the torrent started in this session (what trackers are told).
    pub downloaded: u64,
    /// Block bytes written to peers since the torrent started in this session (what trackers are
    /// told).
    pub uploaded: u64,
    /// Block bytes written to peers in all runs together, kept in resume data (a crash loses at most
    /// the last five minutes of it). A share ratio is counted from this.
    pub all_time_uploaded: u64,
    /// Block bytes received in all runs together, kept in resume data.
    pub all_time_downloaded: u64,
    /// Sequential mode ([`TorrentHandle::set_sequential`](crate::TorrentHandle::set_sequential)).
    pub sequential: bool,
    /// This torrent's download limit, bytes per second (`None`: unlimited).
    pub download_limit: Option<u64>,
    /// This torrent's upload limit, bytes per second (`None`: unlimited).
    pub upload_limit: Option<u64>,
    /// Bytes per second received.
    pub download_rate: u64,
    /// Bytes per second sent.
    pub upload_rate: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Connected peers.
    pub peers: Vec<PeerStats>,
    /// Each tracker that answered or failed, by URL.
    pub trackers: Vec<TrackerStats>,
    /// Wanted pieces (those of files not skipped) still missing.
    pub pieces_missing: u32,
    /// Pieces being downloaded now (some blocks requested or in, or waiting for their hash check), in
    /// order.
    pub downloading: Vec<u32>,
    /// Peers the DHT found so far; `None` when the torrent does not use the DHT (the session runs no
    /// DHT node, or the torrent is private).
    pub dht_peers: Option<usize>,
    /// While a magnet link waits for its info dictionary: how that goes.
    pub metadata: Option<MetadataProgress>,
}

/// The metadata stage of a magnet link (BEP 9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataProgress {
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that offer the metadata (`ut_metadata` with a size).
    pub sources: usize,
    /// Metadata pieces (16 KiB each) received, of the total; both 0 until a peer tells the size.
    pub pieces_have: u32,
    /// Metadata pieces in all.
    pub pieces_total: u32,
    /// Addresses known so far (from `x.pe`, trackers, the DHT and incoming connections).
    pub known_addresses: usize,
    /// Copies of the metadata that failed their hash check (some peer sent bad data).
    pub hash_failures: u32,
}

impl TorrentStats {
    /// Progress from 0.0 to 1.0.
    pub fn progress(&self) -> f64 {
        if self.pieces_total == 0 {
            0.0
        } else {
            f64::from(self.pieces_have) / f64::from(self.pieces_total)
        }
    }

    /// The share ratio: bytes uploaded in all runs over bytes downloaded in all runs, where data the
    /// torrent started with counts as downloaded (so a seeder of its own data has a meaningful ratio);
    /// `None` before there is any data.
    ///
    /// ```
    /// use shoal_session::TorrentStats;
    ///
    /// // Seeding 1,000 bytes it had from the start, after uploading 2,500 of them.
    /// let stats = TorrentStats {
    ///     bytes_have: 1_000,
    ///     all_time_uploaded: 2_500,
    ///     ..TorrentStats::default()
    /// };
    /// assert_eq!(stats.ratio(), Some(2.5));
    /// assert_eq!(TorrentStats::default().ratio(), None);
    /// ```
    pub fn ratio(&self) -> Option<f64> {
        let base = self.all_time_downloaded.max(self.bytes_have);
        (base > 0).then(|| self.all_time_uploaded as f64 / base as f64)
    }

    /// Whether every wanted piece is verified: every piece, unless some files are skipped.
    pub fn is_complete(&self) -> bool {
        self.pieces_total > 0 && self.pieces_missing == 0 && self.metadata.is_none()
    }
}
