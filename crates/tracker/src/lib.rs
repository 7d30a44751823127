//! Tracker client: HTTP(S) announce and scrape (BEP 3, BEP 23 compact peers, BEP 7 IPv6 peers, BEP 48
//! scrape), UDP trackers (BEP 15, with BEP 41 URL data) and multitracker tiers (BEP 12).
//!
//! - [`TrackerClient`] asks one tracker: [`announce`](TrackerClient::announce) and
//!   [`scrape`](TrackerClient::scrape) take an `http://`, `https://` or `udp://` URL.
//!   [`announce_all`](TrackerClient::announce_all) and [`scrape_all`](TrackerClient::scrape_all) ask every
//!   tracker of a tier list at once and return one [`TrackerResult`] per URL.
//! - [`Announcer`] is the BEP 12 scheduler of one torrent (shuffled tiers, fall-through, backoff,
//!   intervals, `started` / `completed` / `stopped`); [`run_announcer`] drives it with a client.
//! - Sans-IO cores, usable with any runtime: [`announce_url`], [`scrape_url`],
//!   [`decode_announce_response`], [`decode_scrape_response`] for HTTP; [`UdpTracker`] and the packet
//!   codecs ([`encode_connect`], [`encode_announce`], [`encode_scrape`], [`decode_udp_reply`]) for UDP.
//!   They take time as `Instant` arguments and randomness as a seed.
//!
//! Tracker replies are hostile input. HTTP bodies are capped (2 MiB by default, after gzip), redirects are
//! limited (3, `http`/`https` only, no loops, never from a public host to a local one), peer lists are
//! capped at [`MAX_PEERS`] with port-0 entries dropped, UDP replies must echo the transaction id in
//! flight, and every request has a timeout. Each failure is a [`TrackerError`], never a panic.
//! Filtering peers by address scope (private, loopback, our own address) is left to the caller.
//!
//! Announce to a tracker and print the peers:
//!
//! ```no_run
//! use shoal_metainfo::{InfoHash, PeerId};
//! use shoal_tracker::{AnnounceEvent, AnnounceRequest, ClientConfig, TrackerClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TrackerClient::new(ClientConfig::default())?;
//! let info_hash: InfoHash = "c9e15763f722f23e98a29decdfae341b98d53056".parse()?;
//! let mut request = AnnounceRequest::new(info_hash, PeerId(*b"-SH0001-123456789012"), 6881);
//! request.left = 1 << 30;
//! request.event = AnnounceEvent::Started;
//! let reply = client.announce("http://127.0.0.1:6969/announce", &request).await?;
//! println!("next announce in {:?}", reply.interval);
//! for peer in &reply.peers {
//!     println!("{peer}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The parsing alone, without a network:
//!
//! ```
//! let reply = shoal_tracker::decode_announce_response(
//!     b"d8:intervali1800e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2e",
//! )?;
//! let peers: Vec<String> = reply.peers.iter().map(|peer| peer.to_string()).collect();
//! assert_eq!(peers, ["127.0.0.1:6881", "10.0.0.2:6882"]);
//! # Ok::<(), shoal_tracker::TrackerError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod announcer;
mod client;
mod error;
mod http;
mod peers;
mod udp;

pub use announcer::{AnnounceJob, Announcer, AnnouncerConfig};
pub use client::{
    AnnounceOutcome, AnnouncerCommand, ClientConfig, TrackerClient, TrackerResult, run_announcer,
};
pub use error::TrackerError;
pub use http::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, MAX_MESSAGE_LEN, ScrapeResponse, ScrapeStats,
    announce_url, decode_announce_response, decode_scrape_response, parse_tracker_url, scrape_url,
};
pub use peers::{MAX_PEERS, decode_compact_peers, decode_compact_peers6};
pub use udp::{
    CONNECTION_ID_LIFETIME, MAX_PACKET_LEN, MAX_SCRAPE_HASHES, PROTOCOL_ID, RequestId, UdpConfig,
    UdpEvent, UdpReply, UdpRequest, UdpResponse, UdpTracker, decode_udp_reply, encode_announce,
    encode_announce_reply, encode_connect, encode_scrape,
};

/// A small seeded generator (SplitMix64) for transaction ids and tier shuffles: the cores take a seed
/// instead of reading global randomness, so tests are reproducible.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Fisher–Yates.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
