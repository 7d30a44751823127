//! [`Limits`]: every bound the engine puts on what peers, trackers and DHT nodes can make it do.

use std::time::Duration;

/// Every bound the engine puts on what other programs can make it do, in one place
/// ([`SessionConfig::limits`](crate::SessionConfig::limits)).
///
/// The defaults suit a desktop or a seedbox; each field says what happens at its limit. Most are
/// settings; the caps that the parsers apply whatever the session says are the associated constants
/// below (they keep a hostile input's cost bounded before any session setting could be consulted).
///
/// ```
/// use std::time::Duration;
/// use shoal_session::{Limits, SessionConfig};
///
/// let config = SessionConfig {
///     limits: Limits { max_connections: 100, idle_timeout: Duration::from_secs(60), ..Limits::default() },
///     ..SessionConfig::default()
/// };
/// assert_eq!(config.limits.max_message_len, 1 << 20);
/// assert_eq!(config.limits.max_queued_requests, 500);
/// assert!(Limits::BENCODE_MAX_DEPTH >= 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections in all, torrents together, counting those being set up (connects and
    /// handshakes in progress). Beyond it no connection is made and incoming ones are closed at once.
    pub max_connections: usize,
    /// Most peers connected (or being connected) per torrent; beyond it no peer is dialed and incoming
    /// connections for that torrent are closed.
    pub max_peers_per_torrent: usize,
    /// Most outgoing connections half open at once, session-wide: from the TCP connect until the
    /// peer's handshake is in. Further dials wait their turn, so a list of dead addresses cannot tie up
    /// the connection budget or flood the network with SYNs.
    pub max_half_open: usize,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long a peer may take to send its handshake (incoming: before we know its torrent).
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed (keep-alives count).
    pub idle_timeout: Duration,
    /// The longest peer message accepted, by its length prefix. A longer prefix drops the peer before
    /// any of the message is buffered. Must be at least a `piece` message of one 16 KiB block and the
    /// bitfield of the largest torrent taken (`max_pieces / 8` bytes).
    pub max_message_len: u32,
    /// The longest extension message (BEP 10) accepted; a `ut_metadata` data message is 16 KiB plus a
    /// short dictionary.
    pub max_extended_len: u32,
    /// Most block requests one peer may have queued on us; requests beyond are refused (`reject` with
    /// the fast extension, ignored without).
    pub max_queued_requests: usize,
    /// The most pieces a torrent may have: a torrent or fetched info dictionary with more is refused,
    /// and a bitfield received before the piece count is known may not be longer.
    pub max_pieces: u32,
    /// The largest info dictionary a magnet link's metadata stage fetches (BEP 9); a peer announcing a
    /// larger `metadata_size` is dropped. At most [`Limits::MAX_METADATA_SIZE`].
    pub max_metadata_size: u32,
    /// Most peers taken from one PEX message (BEP 11); the rest are ignored, and we send no more.
    pub max_pex_peers: usize,
    /// Most PEX messages one peer may send per minute; one more drops the peer.
    pub max_pex_per_minute: usize,
    /// The largest tracker reply accepted (an HTTP body after decompression); a larger one fails that
    /// announce.
    pub max_tracker_reply: usize,
    /// How many DHT queries one IP may send (BEP 5); an IP over it is ignored for a while. `None`: no
    /// limit. Replaces the rate limit in [`SessionConfig::dht`](crate::SessionConfig::dht).
    pub dht_queries_per_ip: Option<shoal_dht::RateLimit>,
}

impl Limits {
    /// The deepest nesting of lists and dictionaries in any bencode the engine decodes: tracker
    /// replies, extension messages, KRPC, resume data, torrents.
    pub const BENCODE_MAX_DEPTH: usize = shoal_bencode::DecodeOptions::DEFAULT_MAX_DEPTH;
    /// The most values in one bencoded document the engine decodes.
    pub const BENCODE_MAX_TOKENS: usize = shoal_bencode::DecodeOptions::DEFAULT_MAX_TOKENS;
    /// The hard cap on a magnet's info dictionary, whatever [`Limits::max_metadata_size`] says.
    pub const MAX_METADATA_SIZE: u32 = shoal_wire::MAX_METADATA_SIZE;
    /// The hard cap on a torrent's piece count when parsing a `.torrent`, whatever
    /// [`Limits::max_pieces`] says.
    pub const MAX_PIECES: u64 = shoal_metainfo::MAX_PIECES;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 400,
            max_peers_per_torrent: 50,
            max_half_open: 32,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_message_len: shoal_wire::DecoderConfig::DEFAULT_MAX_MESSAGE_LEN,
            max_extended_len: shoal_wire::DecoderConfig::DEFAULT_MAX_EXTENDED_LEN,
            max_queued_requests: 500,
            max_pieces: shoal_wire::DecoderConfig::DEFAULT_MAX_PIECES,
            max_metadata_size: shoal_wire::MAX_METADATA_SIZE,
            max_pex_peers: shoal_wire::MAX_PEX_PEERS,
            max_pex_per_minute: 6,
            max_tracker_reply: shoal_tracker::ClientConfig::default().max_response_size,
            dht_queries_per_ip: Some(shoal_dht::RateLimit::default()),
        }
    }
}
