//! UDP trackers (BEP 15): packet codecs and a sans-IO core for one tracker.
//!
//! The exchange: a `connect` request gets a connection id, which is good for one minute; announces and
//! scrapes carry it. Every request has a random transaction id, and a reply counts only if it echoes it.
//! Lost packets are retransmitted after 15·2^n seconds (n = 0..=8), then the request fails with
//! [`TrackerError::Timeout`]. The path and query of the tracker URL go along with each announce as BEP 41
//! "URL data".
//!
//! [`UdpTracker`] is the core: feed it requests, datagrams and timeouts with the current time, drain
//! packets to send ([`UdpTracker::poll_transmit`]) and results ([`UdpTracker::poll_event`]), and sleep until
//! [`UdpTracker::poll_timeout`]. It handles one request at a time, in the order they were made. The socket
//! belongs to the driver, which should `connect` it to the tracker's address so that datagrams from other
//! sources never reach the core (HOSTILE.md 42).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_metainfo::InfoHash;

use crate::http::{AnnounceRequest, AnnounceResponse, MAX_MESSAGE_LEN, ScrapeStats};
use crate::peers::MAX_PEERS;
use crate::{Rng, ScrapeResponse, TrackerError};

/// The magic constant that opens every connect request (BEP 15).
///
/// ```
/// assert_eq!(shoal_tracker::PROTOCOL_ID, 0x41727101980);
/// ```
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// How long a connection id may be used after it was received (BEP 15: one minute).
///
/// ```
/// assert_eq!(shoal_tracker::CONNECTION_ID_LIFETIME.as_secs(), 60);
/// ```
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// The most info-hashes in one scrape request (BEP 15: about 74 fit in a packet).
/// [`TrackerClient::scrape`](crate::TrackerClient::scrape) splits longer lists.
///
/// ```
/// assert_eq!(16 + 20 * shoal_tracker::MAX_SCRAPE_HASHES, 1496);
/// ```
pub const MAX_SCRAPE_HASHES: usize = 74;
/// The largest datagram a driver needs to receive: a reply holding [`MAX_PEERS`] IPv6 peers fits.
///
/// ```
/// assert!(shoal_tracker::MAX_PACKET_LEN < 65_507); // the largest UDP payload
/// ```
pub const MAX_PACKET_LEN: usize = 20 + 18 * MAX_PEERS;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;
/// BEP 41 option types.
const OPTION_URL_DATA: u8 = 2;

/// Timing of a UDP tracker exchange.
///
/// ```
/// let config = shoal_tracker::UdpConfig::default();
/// assert_eq!(config.retransmit_base, std::time::Duration::from_secs(15));
/// assert_eq!(config.max_retransmits, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// The first wait for a reply; attempt n waits `retransmit_base · 2^n` (BEP 15: 15 s).
    pub retransmit_base: Duration,
    /// Retransmissions before giving up (BEP 15: 8, so the last wait is 15·2^8 s).
    pub max_retransmits: u32,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            retransmit_base: Duration::from_secs(15),
            max_retransmits: 8,
        }
    }
}

/// A UDP tracker packet sent by a tracker, decoded (BEP 15).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpReply {
    /// The reply to a connect request.
    Connect {
        /// The transaction id echoed.
        transaction_id: u32,
        /// The connection id to use for the next minute.
        connection_id: u64,
    },
    /// The reply to an announce.
    Announce {
        /// The transaction id echoed.
        transaction_id: u32,
        /// Interval, leechers (`incomplete`), seeders (`complete`) and peers.
        response: AnnounceResponse,
    },
    /// The reply to a scrape: one entry per requested info-hash, in request order.
    Scrape {
        /// The transaction id echoed.
        transaction_id: u32,
        /// The stats; the tracker may send fewer entries than requested.
        stats: Vec<ScrapeStats>,
    },
    /// An error: the tracker refused the request.
    Error {
        /// The transaction id echoed.
        transaction_id: u32,
        /// The tracker's message, lossily decoded and cut to 1024 bytes.
        message: String,
    },
}

impl UdpReply {
    /// The transaction id the reply echoes.
    ///
    /// ```
    /// let reply = shoal_tracker::decode_udp_reply(&[0, 0, 0, 2, 0, 0, 0, 9], false)?;
    /// assert_eq!(reply.transaction_id(), 9);
    /// # Ok::<(), shoal_tracker::TrackerError>(())
    /// ```
    pub fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id, .. }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. }
            | Self::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

/// Encodes a connect request: protocol id, action 0, transaction id (16 bytes).
///
/// ```
/// let packet = shoal_tracker::encode_connect(7);
/// assert_eq!(packet[..8], 0x41727101980u64.to_be_bytes());
/// assert_eq!(packet[12..], 7u32.to_be_bytes());
/// ```
pub fn encode_connect(transaction_id: u32) -> [u8; 16] {
    let mut packet = [0; 16];
    packet[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
    packet[8..12].copy_from_slice(&ACTION_CONNECT.to_be_bytes());
    packet[12..].copy_from_slice(&transaction_id.to_be_bytes());
    packet
}

/// Encodes an announce request: 98 bytes, then the BEP 41 URL data option (type 2) holding `url_data`
/// (the tracker URL's path and query) in chunks of at most 255 bytes. Empty `url_data` adds nothing.
///
/// ```
/// use shoal_metainfo::{InfoHash, PeerId};
///
/// let request = shoal_tracker::AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
/// let packet = shoal_tracker::encode_announce(9, 10, &request, b"/announce");
/// assert_eq!(packet.len(), 98 + 2 + 9);
/// assert_eq!(packet[96..98], 6881u16.to_be_bytes());
/// assert_eq!(packet[98..100], [2, 9]);
/// ```
pub fn encode_announce(
    connection_id: u64,
    transaction_id: u32,
    request: &AnnounceRequest,
    url_data: &[u8],
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(98 + url_data.len() + url_data.len() / 255 * 2 + 2);
    packet.extend_from_slice(&connection_id.to_be_bytes());
    packet.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    packet.extend_from_slice(&request.info_hash.0);
    packet.extend_from_slice(&request.peer_id.0);
    packet.extend_from_slice(&request.downloaded.to_be_bytes());
    packet.extend_from_slice(&request.left.to_be_bytes());
    packet.extend_from_slice(&request.uploaded.to_be_bytes());
    packet.extend_from_slice(&request.event.udp_code().to_be_bytes());
    packet.extend_from_slice(&0u32.to_be_bytes()); // IP address: 0, the tracker uses the source address.
    packet.extend_from_slice(&request.key.to_be_bytes());
    let num_want = request
        .num_want
        .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
    packet.extend_from_slice(&num_want.to_be_bytes());
    packet.extend_from_slice(&request.port.to_be_bytes());
    // BEP 41: one URL-data option per 255-byte chunk; the receiver concatenates them. No end-of-options
    // byte: the packet simply stops.
    for chunk in url_data.chunks(255) {
        packet.push(OPTION_URL_DATA);
        packet.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        packet.extend_from_slice(chunk);
    }
    packet
}

/// Encodes a scrape request: 16 bytes, then 20 per info-hash.
///
/// # Errors
/// [`TrackerError::ScrapeCount`] for no info-hash or more than [`MAX_SCRAPE_HASHES`].
///
/// ```
/// let hashes = [shoal_metainfo::InfoHash([3; 20]); 2];
/// assert_eq!(shoal_tracker::encode_scrape(1, 2, &hashes)?.len(), 56);
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn encode_scrape(
    connection_id: u64,
    transaction_id: u32,
    info_hashes: &[InfoHash],
) -> Result<Vec<u8>, TrackerError> {
    if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
        return Err(TrackerError::ScrapeCount(info_hashes.len()));
    }
    let mut packet = Vec::with_capacity(16 + 20 * info_hashes.len());
    packet.extend_from_slice(&connection_id.to_be_bytes());
    packet.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    for hash in info_hashes {
        packet.extend_from_slice(&hash.0);
    }
    Ok(packet)
}

/// Decodes a packet from a UDP tracker. `ipv6` says whether it came over IPv6, which decides whether an
/// announce reply holds 6- or 18-byte peers (BEP 15). Peers past [`MAX_PEERS`], port-0 peers and a
/// trailing partial entry are dropped; so is a trailing partial scrape entry.
///
/// # Errors
/// [`TrackerError::Truncated`] for a packet too short for its action, and
/// [`TrackerError::UnexpectedAction`] for an unknown action.
///
/// ```
/// use shoal_tracker::UdpReply;
///
/// let mut packet = vec![0, 0, 0, 0, 0, 0, 0, 5]; // action 0 (connect), transaction 5
/// packet.extend_from_slice(&42u64.to_be_bytes());
/// assert_eq!(
///     shoal_tracker::decode_udp_reply(&packet, false)?,
///     UdpReply::Connect { transaction_id: 5, connection_id: 42 },
/// );
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn decode_udp_reply(packet: &[u8], ipv6: bool) -> Result<UdpReply, TrackerError> {
    let (Some(action), Some(transaction_id)) = (be_u32(packet, 0), be_u32(packet, 4)) else {
        return Err(TrackerError::Truncated {
            action: be_u32(packet, 0).unwrap_or(u32::MAX),
            len: packet.len(),
        });
    };
    let truncated = TrackerError::Truncated {
        action,
        len: packet.len(),
    };
    match action {
        ACTION_CONNECT => {
            let connection_id = be_u64(packet, 8).ok_or(truncated)?;
            Ok(UdpReply::Connect {
                transaction_id,
                connection_id,
            })
        }
        ACTION_ANNOUNCE => {
            let (Some(interval), Some(leechers), Some(seeders)) =
                (be_u32(packet, 8), be_u32(packet, 12), be_u32(packet, 16))
            else {
                return Err(truncated);
            };
            let mut peers = Vec::new();
            let rest = packet.get(20..).unwrap_or_default();
            if ipv6 {
                crate::peers::extend_compact_v6(&mut peers, rest);
            } else {
                crate::peers::extend_compact_v4(&mut peers, rest);
            }
            Ok(UdpReply::Announce {
                transaction_id,
                response: AnnounceResponse {
                    interval: Some(Duration::from_secs(interval.into())),
                    complete: Some(seeders),
                    incomplete: Some(leechers),
                    peers,
                    ..AnnounceResponse::default()
                },
            })
        }
        ACTION_SCRAPE => {
            let stats = packet
                .get(8..)
                .unwrap_or_default()
                .chunks_exact(12)
                .map(|entry| ScrapeStats {
                    complete: be_u32(entry, 0).unwrap_or(0),
                    downloaded: be_u32(entry, 4).unwrap_or(0),
                    incomplete: be_u32(entry, 8).unwrap_or(0),
                })
                .collect();
            Ok(UdpReply::Scrape {
                transaction_id,
                stats,
            })
        }
        ACTION_ERROR => {
            let text = packet.get(8..).unwrap_or_default();
            let text = &text[..text.len().min(MAX_MESSAGE_LEN)];
            Ok(UdpReply::Error {
                transaction_id,
                message: String::from_utf8_lossy(text).into_owned(),
            })
        }
        other => Err(TrackerError::UnexpectedAction(other)),
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Identifies a request made to a [`UdpTracker`]; its [`UdpEvent`] carries the same id.
///
/// ```
/// use shoal_tracker::{UdpConfig, UdpRequest, UdpTracker};
///
/// let now = std::time::Instant::now();
/// let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
/// let hashes = vec![shoal_metainfo::InfoHash([1; 20])];
/// let first = core.request(now, UdpRequest::Scrape(hashes.clone()));
/// let second = core.request(now, UdpRequest::Scrape(hashes));
/// assert!(first < second);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What to ask a UDP tracker.
///
/// ```
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_tracker::{AnnounceRequest, UdpRequest};
///
/// let announce = UdpRequest::Announce(AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881));
/// let scrape = UdpRequest::Scrape(vec![InfoHash([1; 20])]);
/// assert_ne!(announce, scrape);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpRequest {
    /// An announce (the `tracker_id`, `compact` and `no_peer_id` fields are HTTP-only and ignored).
    Announce(AnnounceRequest),
    /// A scrape of 1 to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape(Vec<InfoHash>),
}

/// The answer to one request; see [`UdpTracker`] for one being received.
///
/// ```
/// let response = shoal_tracker::UdpResponse::Scrape(Default::default());
/// assert!(matches!(response, shoal_tracker::UdpResponse::Scrape(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpResponse {
    /// The tracker's announce reply.
    Announce(AnnounceResponse),
    /// The tracker's scrape reply, matched to the requested info-hashes.
    Scrape(ScrapeResponse),
}

/// A request finished, well or badly; see [`UdpTracker`] for one being received.
///
/// ```
/// use shoal_tracker::{RequestId, TrackerError, UdpEvent};
///
/// let event = UdpEvent { id: RequestId(0), result: Err(TrackerError::Timeout) };
/// assert!(event.result.is_err());
/// ```
#[derive(Debug)]
pub struct UdpEvent {
    /// Which request.
    pub id: RequestId,
    /// Its answer or why there is none.
    pub result: Result<UdpResponse, TrackerError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connecting,
    Requesting,
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    request: UdpRequest,
    stage: Stage,
    transaction_id: u32,
    /// Retransmissions made for this request so far, connects included.
    attempt: u32,
    packet: Vec<u8>,
    deadline: Instant,
}

/// The sans-IO core of a UDP tracker client for one tracker (BEP 15).
///
/// Inputs: [`request`](Self::request), [`handle_datagram`](Self::handle_datagram),
/// [`handle_timeout`](Self::handle_timeout). Outputs, drained after each input until `None`:
/// [`poll_transmit`](Self::poll_transmit) (packets, in order), then [`poll_event`](Self::poll_event)
/// (finished requests), then [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout`).
///
/// ```
/// use std::time::Instant;
/// use shoal_metainfo::InfoHash;
/// use shoal_tracker::{UdpConfig, UdpRequest, UdpResponse, UdpTracker};
///
/// let now = Instant::now();
/// let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
/// let id = core.request(now, UdpRequest::Scrape(vec![InfoHash([1; 20])]));
///
/// // The core first connects; play the tracker's part.
/// let connect = core.poll_transmit().unwrap();
/// let mut reply = vec![0, 0, 0, 0];
/// reply.extend_from_slice(&connect[12..16]); // echo the transaction id
/// reply.extend_from_slice(&77u64.to_be_bytes());
/// core.handle_datagram(now, &reply);
///
/// // Then it scrapes with connection id 77.
/// let scrape = core.poll_transmit().unwrap();
/// assert_eq!(scrape[..8], 77u64.to_be_bytes());
/// let mut reply = vec![0, 0, 0, 2];
/// reply.extend_from_slice(&scrape[12..16]);
/// reply.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6]);
/// core.handle_datagram(now, &reply);
///
/// let event = core.poll_event().unwrap();
/// assert_eq!(event.id, id);
/// let Ok(UdpResponse::Scrape(scrape)) = event.result else { panic!() };
/// assert_eq!(scrape.files[0].1.complete, 4);
/// ```
#[derive(Debug)]
pub struct UdpTracker {
    config: UdpConfig,
    ipv6: bool,
    url_data: Vec<u8>,
    rng: Rng,
    connection: Option<(u64, Instant)>,
    queue: VecDeque<(RequestId, UdpRequest)>,
    current: Option<InFlight>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<UdpEvent>,
    next_id: u64,
    ignored: u64,
}

impl UdpTracker {
    /// A core for a tracker reached over IPv6 (`ipv6`) or IPv4, sending `url_data` (the path and query of
    /// its URL, BEP 41) with announces, drawing transaction ids from a generator seeded with `seed`.
    pub fn new(config: UdpConfig, ipv6: bool, url_data: Vec<u8>, seed: u64) -> Self {
        Self {
            config,
            ipv6,
            url_data,
            rng: Rng::new(seed),
            connection: None,
            queue: VecDeque::new(),
            current: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 0,
            ignored: 0,
        }
    }

    /// Reuses a connection id received at `received` (from an earlier core for the same tracker), as long
    /// as it is younger than [`CONNECTION_ID_LIFETIME`].
    ///
    /// ```
    /// use shoal_tracker::{UdpConfig, UdpRequest, UdpTracker};
    ///
    /// let now = std::time::Instant::now();
    /// let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
    /// core.set_connection(77, now);
    /// assert_eq!(core.connection(), Some((77, now)));
    /// core.request(now, UdpRequest::Scrape(vec![shoal_metainfo::InfoHash([1; 20])]));
    /// let packet = core.poll_transmit().unwrap();
    /// assert_eq!(packet[..8], 77u64.to_be_bytes()); // no connect needed
    /// ```
    pub fn set_connection(&mut self, connection_id: u64, received: Instant) {
        self.connection = Some((connection_id, received));
    }

    /// The current connection id and when it was received, to hand to the next core for this tracker.
    pub fn connection(&self) -> Option<(u64, Instant)> {
        self.connection
    }

    /// How many datagrams were ignored: too short to match, or with a transaction id not in flight.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Queues a request; it starts at once if no other is in flight.
    pub fn request(&mut self, now: Instant, request: UdpRequest) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.queue.push_back((id, request));
        if self.current.is_none() {
            self.start_next(now);
        }
        id
    }

    /// Feeds a datagram received from the tracker.
    ///
    /// Datagrams that do not carry the transaction id in flight are ignored (HOSTILE.md 42: never trust
    /// unmatched replies). A matching one that is malformed, an error packet or the wrong action ends the
    /// request with an error.
    pub fn handle_datagram(&mut self, now: Instant, packet: &[u8]) {
        let Some(current) = &self.current else {
            self.ignored += 1;
            return;
        };
        if be_u32(packet, 4) != Some(current.transaction_id) {
            self.ignored += 1;
            return;
        }
        let current = self.current.take().expect("checked above");
        let result = match (decode_udp_reply(packet, self.ipv6), current.stage) {
            (
                Ok(UdpReply::Connect {
                    connection_id,
                    transaction_id: _,
                }),
                Stage::Connecting,
            ) => {
                self.connection = Some((connection_id, now));
                // The retransmission count runs over the whole request, so a tracker that answers
                // connects but never the request itself still ends it after the last attempt.
                self.send_request(now, current.id, current.request, current.attempt);
                return;
            }
            (Ok(UdpReply::Announce { response, .. }), Stage::Requesting)
                if matches!(current.request, UdpRequest::Announce(_)) =>
            {
                Ok(UdpResponse::Announce(response))
            }
            (Ok(UdpReply::Scrape { stats, .. }), Stage::Requesting) => match &current.request {
                UdpRequest::Scrape(hashes) => Ok(UdpResponse::Scrape(ScrapeResponse {
                    files: hashes.iter().copied().zip(stats).collect(),
                })),
                UdpRequest::Announce(_) => Err(TrackerError::UnexpectedAction(ACTION_SCRAPE)),
            },
            (Ok(UdpReply::Error { message, .. }), _) => {
                // The usual cause is an expired or unknown connection id: get a new one next time.
                self.connection = None;
                Err(TrackerError::Failure(message))
            }
            (Ok(reply), _) => Err(TrackerError::UnexpectedAction(action_of(&reply))),
            (Err(err), _) => Err(err),
        };
        self.finish(now, current.id, result);
    }

    /// Retransmits or gives up on the request in flight if its deadline has passed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shoal_tracker::{UdpConfig, UdpRequest, UdpTracker};
    ///
    /// let start = Instant::now();
    /// let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
    /// core.request(start, UdpRequest::Scrape(vec![shoal_metainfo::InfoHash([1; 20])]));
    /// let connect = core.poll_transmit().unwrap();
    /// assert_eq!(core.poll_timeout(), Some(start + Duration::from_secs(15)));
    /// core.handle_timeout(start + Duration::from_secs(15));
    /// assert_eq!(core.poll_transmit(), Some(connect)); // sent again
    /// assert_eq!(core.poll_timeout(), Some(start + Duration::from_secs(45)));
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(current) = &mut self.current else {
            return;
        };
        if now < current.deadline {
            return;
        }
        if current.attempt >= self.config.max_retransmits {
            let id = current.id;
            self.current = None;
            self.finish(now, id, Err(TrackerError::Timeout));
            return;
        }
        current.attempt += 1;
        let expired =
            !matches!(self.connection, Some((_, at)) if now < at + CONNECTION_ID_LIFETIME);
        if current.stage == Stage::Requesting && expired {
            // BEP 15: a connection id older than a minute must not be used; connect again, keeping the
            // retransmission count so a silent tracker still ends after the last attempt.
            let attempt = current.attempt;
            let current = self.current.take().expect("checked above");
            self.send_connect(now, current.id, current.request, attempt);
            return;
        }
        current.deadline = now + retransmit_wait(&self.config, current.attempt);
        self.transmit.push_back(current.packet.clone());
    }

    /// The next packet to send to the tracker.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next finished request.
    pub fn poll_event(&mut self) -> Option<UdpEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due, or `None` when nothing is in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(|current| current.deadline)
    }

    fn wait(&self, attempt: u32) -> Duration {
        retransmit_wait(&self.config, attempt)
    }

    fn finish(&mut self, now: Instant, id: RequestId, result: Result<UdpResponse, TrackerError>) {
        self.events.push_back(UdpEvent { id, result });
        self.start_next(now);
    }

    fn start_next(&mut self, now: Instant) {
        let Some((id, request)) = self.queue.pop_front() else {
            return;
        };
        match self.connection {
            Some((_, at)) if now < at + CONNECTION_ID_LIFETIME => {
                self.send_request(now, id, request, 0);
            }
            _ => self.send_connect(now, id, request, 0),
        }
    }

    fn send_connect(&mut self, now: Instant, id: RequestId, request: UdpRequest, attempt: u32) {
        let transaction_id = self.rng.next_u32();
        let packet = encode_connect(transaction_id).to_vec();
        let sent = (Stage::Connecting, transaction_id, attempt);
        self.send(now, id, request, sent, packet);
    }

    fn send_request(&mut self, now: Instant, id: RequestId, request: UdpRequest, attempt: u32) {
        let connection_id = self.connection.map_or(0, |(id, _)| id);
        let transaction_id = self.rng.next_u32();
        let packet = match &request {
            UdpRequest::Announce(announce) => {
                encode_announce(connection_id, transaction_id, announce, &self.url_data)
            }
            UdpRequest::Scrape(hashes) => {
                match encode_scrape(connection_id, transaction_id, hashes) {
                    Ok(packet) => packet,
                    Err(err) => {
                        self.finish(now, id, Err(err));
                        return;
                    }
                }
            }
        };
        let sent = (Stage::Requesting, transaction_id, attempt);
        self.send(now, id, request, sent, packet);
    }

    fn send(
        &mut self,
        now: Instant,
        id: RequestId,
        request: UdpRequest,
        (stage, transaction_id, attempt): (Stage, u32, u32),
        packet: Vec<u8>,
    ) {
        self.transmit.push_back(packet.clone());
        self.current = Some(InFlight {
            id,
            request,
            stage,
            transaction_id,
            attempt,
            packet,
            deadline: now + self.wait(attempt),
        });
    }
}

/// `base · 2^attempt`, at most a day, so no configuration can overflow the clock.
fn retransmit_wait(config: &UdpConfig, attempt: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(24 * 60 * 60);
    config
        .retransmit_base
        .checked_mul(2u32.saturating_pow(attempt.min(31)))
        .map_or(CAP, |wait| wait.min(CAP))
}

fn action_of(reply: &UdpReply) -> u32 {
    match reply {
        UdpReply::Connect { .. } => ACTION_CONNECT,
        UdpReply::Announce { .. } => ACTION_ANNOUNCE,
        UdpReply::Scrape { .. } => ACTION_SCRAPE,
        UdpReply::Error { .. } => ACTION_ERROR,
    }
}

/// Encodes an announce reply as a UDP tracker would (BEP 15), for test trackers and fuzz seeds: the
/// header, then 6 or 18 bytes per peer by its address family (send peers of one family only).
///
/// ```
/// let peers = ["10.0.0.1:6881".parse().unwrap()];
/// let packet = shoal_tracker::encode_announce_reply(5, 1800, 1, 2, &peers);
/// assert_eq!(packet.len(), 26);
/// let reply = shoal_tracker::decode_udp_reply(&packet, false)?;
/// assert_eq!(reply.transaction_id(), 5);
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn encode_announce_reply(
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
    peers: &[SocketAddr],
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(20 + 18 * peers.len());
    packet.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    packet.extend_from_slice(&transaction_id.to_be_bytes());
    packet.extend_from_slice(&interval.to_be_bytes());
    packet.extend_from_slice(&leechers.to_be_bytes());
    packet.extend_from_slice(&seeders.to_be_bytes());
    for peer in peers {
        match peer {
            SocketAddr::V4(v4) => packet.extend_from_slice(&v4.ip().octets()),
            SocketAddr::V6(v6) => packet.extend_from_slice(&v6.ip().octets()),
        }
        packet.extend_from_slice(&peer.port().to_be_bytes());
    }
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_metainfo::PeerId;

    fn announce_request() -> AnnounceRequest {
        let mut request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
        request.downloaded = 3;
        request.left = 4;
        request.uploaded = 5;
        request.event = crate::AnnounceEvent::Started;
        request.key = 6;
        request
    }

    fn connect_reply(transaction_id: u32, connection_id: u64) -> Vec<u8> {
        let mut packet = ACTION_CONNECT.to_be_bytes().to_vec();
        packet.extend_from_slice(&transaction_id.to_be_bytes());
        packet.extend_from_slice(&connection_id.to_be_bytes());
        packet
    }

    fn tid(packet: &[u8]) -> u32 {
        be_u32(packet, 12).unwrap()
    }

    #[test]
    fn announce_packet_layout() {
        let packet = encode_announce(0x0102_0304_0506_0708, 0xAABB_CCDD, &announce_request(), &[]);
        assert_eq!(packet.len(), 98);
        assert_eq!(packet[..8], 0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(packet[8..12], [0, 0, 0, 1]);
        assert_eq!(packet[12..16], [0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(packet[16..36], [1; 20]);
        assert_eq!(packet[36..56], [2; 20]);
        assert_eq!(packet[56..64], 3u64.to_be_bytes());
        assert_eq!(packet[64..72], 4u64.to_be_bytes());
        assert_eq!(packet[72..80], 5u64.to_be_bytes());
        assert_eq!(packet[80..84], 2u32.to_be_bytes());
        assert_eq!(packet[84..88], [0; 4]);
        assert_eq!(packet[88..92], 6u32.to_be_bytes());
        assert_eq!(packet[92..96], (-1i32).to_be_bytes());
        assert_eq!(packet[96..98], 6881u16.to_be_bytes());
    }

    #[test]
    fn url_data_is_split_in_255_byte_options() {
        let url_data = vec![b'a'; 600];
        let packet = encode_announce(0, 0, &announce_request(), &url_data);
        let options = &packet[98..];
        assert_eq!(options.len(), 600 + 3 * 2);
        assert_eq!(options[..2], [2, 255]);
        assert_eq!(options[257..259], [2, 255]);
        assert_eq!(options[514..516], [2, 90]);
    }

    #[test]
    fn decodes_replies_and_rejects_short_ones() {
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let reply = encode_announce_reply(9, 1800, 2, 3, &[v4, "1.2.3.4:0".parse().unwrap()]);
        match decode_udp_reply(&reply, false).unwrap() {
            UdpReply::Announce {
                transaction_id: 9,
                response,
            } => {
                assert_eq!(response.peers, [v4]);
                assert_eq!((response.complete, response.incomplete), (Some(3), Some(2)));
            }
            other => panic!("{other:?}"),
        }
        let v6: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        let reply = encode_announce_reply(9, 1800, 2, 3, &[v6]);
        match decode_udp_reply(&reply, true).unwrap() {
            UdpReply::Announce { response, .. } => assert_eq!(response.peers, [v6]),
            other => panic!("{other:?}"),
        }
        for (packet, action) in [
            (&[0u8, 0, 0][..], u32::MAX),
            (&[0, 0, 0, 0, 0, 0, 0][..], 0),
            (&[0, 0, 0, 0, 0, 0, 0, 1, 0][..], 0),
            (
                &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
                1,
            ),
        ] {
            match decode_udp_reply(packet, false) {
                Err(TrackerError::Truncated { action: got, len }) => {
                    assert_eq!((got, len), (action, packet.len()));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            decode_udp_reply(&[0, 0, 0, 9, 0, 0, 0, 0], false),
            Err(TrackerError::UnexpectedAction(9))
        ));
        let mut error = vec![0, 0, 0, 3, 0, 0, 0, 1];
        error.extend_from_slice(b"nope");
        assert_eq!(
            decode_udp_reply(&error, false).unwrap(),
            UdpReply::Error {
                transaction_id: 1,
                message: "nope".into()
            }
        );
    }

    #[test]
    fn announce_then_reuse_connection_for_a_minute() {
        let start = Instant::now();
        let mut core = UdpTracker::new(UdpConfig::default(), false, b"/announce".to_vec(), 7);
        let id = core.request(start, UdpRequest::Announce(announce_request()));
        let connect = core.poll_transmit().unwrap();
        assert_eq!(connect.len(), 16);
        assert!(core.poll_transmit().is_none());
        core.handle_datagram(start, &connect_reply(tid(&connect), 99));
        let announce = core.poll_transmit().unwrap();
        assert_eq!(announce.len(), 98 + 2 + 9);
        assert_eq!(announce[..8], 99u64.to_be_bytes());
        let peer: SocketAddr = "10.0.0.1:80".parse().unwrap();
        core.handle_datagram(
            start,
            &encode_announce_reply(tid(&announce), 60, 0, 1, &[peer]),
        );
        let event = core.poll_event().unwrap();
        assert_eq!(event.id, id);
        match event.result.unwrap() {
            UdpResponse::Announce(reply) => assert_eq!(reply.peers, [peer]),
            other => panic!("{other:?}"),
        }
        assert!(core.poll_timeout().is_none());

        // 59 s later the id is still good: no connect.
        let later = start + Duration::from_secs(59);
        core.request(later, UdpRequest::Scrape(vec![InfoHash([1; 20])]));
        let scrape = core.poll_transmit().unwrap();
        assert_eq!(scrape.len(), 36);
        assert_eq!(scrape[..8], 99u64.to_be_bytes());
        let mut reply = vec![0, 0, 0, 2];
        reply.extend_from_slice(&scrape[12..16]);
        core.handle_datagram(later, &reply);
        assert!(core.poll_event().unwrap().result.is_ok());

        // At 60 s it has expired: connect again.
        let expired = start + CONNECTION_ID_LIFETIME;
        core.request(expired, UdpRequest::Announce(announce_request()));
        assert_eq!(core.poll_transmit().unwrap().len(), 16);
    }

    #[test]
    fn ignores_wrong_transaction_ids_and_short_packets() {
        let now = Instant::now();
        let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
        core.request(now, UdpRequest::Announce(announce_request()));
        let connect = core.poll_transmit().unwrap();
        core.handle_datagram(now, &connect_reply(tid(&connect).wrapping_add(1), 5));
        core.handle_datagram(now, &[0, 0, 0]);
        assert_eq!(core.ignored(), 2);
        assert!(core.poll_transmit().is_none());
        assert!(core.poll_event().is_none());
        assert!(core.poll_timeout().is_some());
    }

    #[test]
    fn retransmits_15_times_2_to_the_n_then_times_out() {
        let start = Instant::now();
        let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 1);
        core.request(start, UdpRequest::Announce(announce_request()));
        let first = core.poll_transmit().unwrap();
        let mut now = start;
        let mut waits = Vec::new();
        while let Some(deadline) = core.poll_timeout() {
            waits.push((deadline - now).as_secs());
            now = deadline;
            core.handle_timeout(now);
            if let Some(again) = core.poll_transmit() {
                assert_eq!(again, first, "a retransmission repeats the packet");
            }
        }
        assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
        assert!(matches!(
            core.poll_event().unwrap().result,
            Err(TrackerError::Timeout)
        ));
    }

    #[test]
    fn answering_only_connects_still_times_out() {
        // Found by the tracker_udp fuzz target: the retransmission count must span the reconnects, or
        // a tracker that answers connects but never the announce keeps the request alive forever.
        let start = Instant::now();
        let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 5);
        core.request(start, UdpRequest::Announce(announce_request()));
        let mut now = start;
        let mut rounds = 0;
        while core.poll_event().is_none() {
            rounds += 1;
            assert!(rounds < 100, "the request never ends");
            if let Some(packet) = core.poll_transmit()
                && packet.len() == 16
            {
                core.handle_datagram(now, &connect_reply(tid(&packet), 1));
                continue;
            }
            now = core.poll_timeout().unwrap();
            core.handle_timeout(now);
        }
        assert!(now - start <= Duration::from_secs(15 * 511));
    }

    #[test]
    fn error_packets_and_wrong_actions_fail_the_request() {
        let now = Instant::now();
        let mut core = UdpTracker::new(UdpConfig::default(), false, Vec::new(), 3);
        core.request(now, UdpRequest::Announce(announce_request()));
        let connect = core.poll_transmit().unwrap();
        let mut error = vec![0, 0, 0, 3];
        error.extend_from_slice(&connect[12..16]);
        error.extend_from_slice(b"not authorized");
        core.handle_datagram(now, &error);
        match core.poll_event().unwrap().result {
            Err(TrackerError::Failure(text)) => assert_eq!(text, "not authorized"),
            other => panic!("{other:?}"),
        }
        core.request(now, UdpRequest::Announce(announce_request()));
        let connect = core.poll_transmit().unwrap();
        let mut scrape = vec![0, 0, 0, 2];
        scrape.extend_from_slice(&connect[12..16]);
        core.handle_datagram(now, &scrape);
        assert!(matches!(
            core.poll_event().unwrap().result,
            Err(TrackerError::UnexpectedAction(2))
        ));
    }

    #[test]
    fn scrape_count_limits() {
        assert!(matches!(
            encode_scrape(0, 0, &[]),
            Err(TrackerError::ScrapeCount(0))
        ));
        let hashes = vec![InfoHash([0; 20]); MAX_SCRAPE_HASHES + 1];
        assert!(encode_scrape(0, 0, &hashes[..MAX_SCRAPE_HASHES]).is_ok());
        assert!(matches!(
            encode_scrape(0, 0, &hashes),
            Err(TrackerError::ScrapeCount(75))
        ));
    }
}
