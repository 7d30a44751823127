//! The sans-IO DHT node: datagrams and time in, datagrams, events and a wake-up time out.
//!
//! # Order of calls
//! Feed [`Dht::handle_datagram`] with every datagram received and [`Dht::handle_timeout`] when the time
//! from [`Dht::poll_timeout`] has come; start work with [`Dht::bootstrap`], [`Dht::get_peers`],
//! [`Dht::announce`] and [`Dht::find_node`]. After each call drain [`Dht::poll_transmit`] (datagrams to
//! send, in order) and [`Dht::poll_event`] (peers found, lookups finished) until they return `None`, then
//! ask [`Dht::poll_timeout`] again.
//!
//! # Hostile traffic
//! - Undecodable datagrams are dropped and counted (HOSTILE 44).
//! - A reply counts only if its transaction id is one we have in flight *to the address it came from*; a
//!   reply carrying our own id or a different id than the node we asked is a failure (HOSTILE 45).
//! - Only nodes that answered our queries enter the routing table; a node that queries us is pinged
//!   first, and only if its bucket could take it, with few such pings in flight (HOSTILE 46).
//! - Queries are rate-limited per IP ([`RateLimit`]); `announce_peer` needs a valid token and the peer
//!   store is capped (HOSTILE 48, 49).
//! - No amplification: a reply to an address we have not verified is at most
//!   [`UNVERIFIED_REPLY_FACTOR`] times the size of the query (values, then nodes, are cut to fit).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use shoal_metainfo::InfoHash;

use crate::id::{NodeId, Rng};
use crate::krpc::{Body, MAX_VALUES_SENT, Message, Method, NodeInfo, Query, Response};
use crate::lookup::{Ask, Lookup, LookupId, LookupKind, LookupResult};
use crate::routing::{Insert, RoutingTable};
use crate::state::SavedState;
use crate::store::{PeerStore, RateLimit, RateLimiter, Tokens};

/// A reply to an unverified address is at most this many times the size of the query.
pub const UNVERIFIED_REPLY_FACTOR: usize = 8;
/// How often routine upkeep runs: token rotation, peer expiry, bucket refresh, pings of questionable nodes.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);
/// The most queries in flight at once; more are refused (a lookup treats them as failed).
pub const MAX_PENDING: usize = 4096;
/// The most pings in flight to verify nodes that queried us.
pub const MAX_VERIFYING: usize = 16;
/// Questionable nodes pinged per maintenance round.
const PINGS_PER_ROUND: usize = 4;
/// How often, on average, a node looks itself up again once it has joined: newer nodes near our id learn
/// of us, and we of them, even when no lookup happened to pass between us (jittered to 0.5–1.5 times).
pub const SELF_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Longest wait between bootstrap attempts while the table stays empty (HOSTILE 51).
pub const MAX_BOOTSTRAP_BACKOFF: Duration = Duration::from_secs(300);

/// Settings of a DHT node.
///
/// ```
/// let config = shoal_dht::Config {
///     bootstrap: vec!["127.0.0.1:6881".parse()?],
///     restrict_ips: false, // loopback: every node shares one IP
///     ..shoal_dht::Config::default()
/// };
/// assert_eq!(config.k, 8);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Our node id; `None` picks a random one from `seed`. For BEP 42, pass
    /// [`NodeId::secure_for`] our external IP.
    pub node_id: Option<NodeId>,
    /// Seed of the node's random generator (ids, tokens, transaction ids).
    pub seed: u64,
    /// Addresses to bootstrap from (ids unknown). The tokio driver resolves the default public routers
    /// into this; tests pass loopback nodes.
    pub bootstrap: Vec<SocketAddr>,
    /// Nodes known from a saved state: used as lookup candidates until the table has enough.
    pub known_nodes: Vec<NodeInfo>,
    /// Bucket size and lookup width (BEP 5: 8).
    pub k: usize,
    /// Queries in flight per lookup (Kademlia α: 3).
    pub alpha: usize,
    /// After this, an unanswered lookup query stops holding a slot.
    pub soft_timeout: Duration,
    /// After this, an unanswered query has failed.
    pub query_timeout: Duration,
    /// One node per IP in the routing table and in each lookup (HOSTILE 46, 47). Turn off on loopback.
    pub restrict_ips: bool,
    /// Let nodes whose id complies with BEP 42 take the place of non-compliant ones in full buckets.
    pub prefer_secure_node_ids: bool,
    /// BEP 43: send `ro = 1`, answer no query.
    pub read_only: bool,
    /// Per-IP limit on answered queries; `None` answers all.
    pub rate_limit: Option<RateLimit>,
    /// Most info-hashes in the peer store (HOSTILE 48).
    pub max_torrents: usize,
    /// Most peers per info-hash in the peer store (HOSTILE 48).
    pub max_peers_per_torrent: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: None,
            seed: 0,
            bootstrap: Vec::new(),
            known_nodes: Vec::new(),
            k: 8,
            alpha: 3,
            soft_timeout: Duration::from_secs(1),
            query_timeout: Duration::from_secs(4),
            restrict_ips: true,
            prefer_secure_node_ids: false,
            read_only: false,
            rate_limit: Some(RateLimit::default()),
            max_torrents: 2000,
            max_peers_per_torrent: 500,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The KRPC message.
    pub bytes: Vec<u8>,
}

/// Something the node reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `get_peers` (or announce) lookup found peers it had not reported before.
    Peers {
        /// Which lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: InfoHash,
        /// New peers (TCP addresses).
        peers: Vec<SocketAddr>,
    },
    /// A lookup finished; for an announce, after the announces were answered or timed out.
    LookupDone(LookupResult),
    /// Nodes agree on a new external IP for us (BEP 42 `ip` field); a BEP 42 id would derive from it.
    ExternalAddress(IpAddr),
}

/// Counters and sizes, for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Nodes in the routing table.
    pub nodes: usize,
    /// Buckets in the routing table.
    pub buckets: usize,
    /// Queries in flight.
    pub pending: usize,
    /// Lookups running.
    pub lookups: usize,
    /// Info-hashes in the peer store.
    pub torrents: usize,
    /// Peers in the peer store.
    pub stored_peers: usize,
    /// IPs the rate limiter tracks.
    pub tracked_ips: usize,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams dropped as malformed.
    pub malformed: u64,
    /// Replies dropped: unknown transaction, wrong source, or our own id.
    pub unmatched: u64,
    /// Queries dropped by the rate limit.
    pub rate_limited: u64,
    /// Queries answered.
    pub answered: u64,
    /// Datagrams sent.
    pub sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Lookup(LookupId),
    Announce(LookupId),
    Ping { verify: bool },
}

#[derive(Debug, Clone)]
struct Pending {
    to: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    seq: u64,
}

/// A DHT node's sans-IO core.
///
/// ```
/// use std::time::Instant;
/// use shoal_dht::{Config, Dht, Event};
/// use shoal_metainfo::InfoHash;
///
/// // Two nodes wired back to back, a clock advanced by hand.
/// let now = Instant::now();
/// let a_addr = "10.0.0.1:6881".parse()?;
/// let b_addr = "10.0.0.2:6881".parse()?;
/// let mut a = Dht::new(Config { seed: 1, bootstrap: vec![b_addr], ..Config::default() }, now);
/// let mut b = Dht::new(Config { seed: 2, ..Config::default() }, now);
/// a.bootstrap(now);
/// let info_hash = InfoHash([7; 20]);
/// let announce = a.announce(now, info_hash, Some(6881));
/// let mut done = false;
/// for _ in 0..10 {
///     while let Some(t) = a.poll_transmit() {
///         b.handle_datagram(now, a_addr, &t.bytes);
///     }
///     while let Some(t) = b.poll_transmit() {
///         a.handle_datagram(now, b_addr, &t.bytes);
///     }
///     while let Some(event) = a.poll_event() {
///         if let Event::LookupDone(result) = event {
///             done |= result.id == announce && result.stats.announced == 1;
///         }
///     }
/// }
/// assert!(done);
/// assert_eq!(b.stats().stored_peers, 1);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug)]
pub struct Dht {
    config: Config,
    id: NodeId,
    rng: Rng,
    table: RoutingTable,
    pending: HashMap<u16, Pending>,
    soft_deadlines: VecDeque<(Instant, u16, u64)>,
    hard_deadlines: VecDeque<(Instant, u16, u64)>,
    next_tid: u16,
    next_seq: u64,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    store: PeerStore,
    tokens: Tokens,
    limiter: Option<RateLimiter>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_maintenance: Instant,
    bootstrap_lookup: Option<LookupId>,
    wants_bootstrap: bool,
    /// Whether one of our contacts (a bootstrap address or a saved node) has answered a lookup: only then
    /// have we reached the DHT, rather than merely been reached by nodes that joined through us.
    joined: bool,
    bootstrap_backoff: Duration,
    next_bootstrap: Instant,
    next_self_refresh: Instant,
    verifying: usize,
    votes: VecDeque<(IpAddr, IpAddr)>,
    external_ip: Option<IpAddr>,
    stats: Stats,
}

impl Dht {
    /// A node with `config`, its clock starting at `now`. It sends nothing until asked or queried.
    pub fn new(config: Config, now: Instant) -> Dht {
        let mut rng = Rng::new(config.seed);
        let id = config.node_id.unwrap_or_else(|| NodeId::random(&mut rng));
        let tokens = Tokens::new(&mut rng, now);
        let next_tid = rng.next_u64() as u16;
        // With no contact to reach, there is no DHT to join but the one that comes to us.
        let joined = config.bootstrap.is_empty() && config.known_nodes.is_empty();
        Dht {
            table: RoutingTable::new(id, config.k, config.restrict_ips, now),
            store: PeerStore::new(config.max_torrents, config.max_peers_per_torrent),
            limiter: config.rate_limit.map(RateLimiter::new),
            config,
            id,
            rng,
            pending: HashMap::new(),
            soft_deadlines: VecDeque::new(),
            hard_deadlines: VecDeque::new(),
            next_tid,
            next_seq: 0,
            lookups: BTreeMap::new(),
            next_lookup: 0,
            tokens,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance: now + MAINTENANCE_INTERVAL,
            bootstrap_lookup: None,
            wants_bootstrap: false,
            joined,
            bootstrap_backoff: MAINTENANCE_INTERVAL,
            next_bootstrap: now,
            next_self_refresh: now + SELF_REFRESH_INTERVAL,
            verifying: 0,
            votes: VecDeque::new(),
            external_ip: None,
            stats: Stats::default(),
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The routing table, read-only.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            nodes: self.table.len(),
            buckets: self.table.n_buckets(),
            pending: self.pending.len(),
            lookups: self.lookups.len(),
            torrents: self.store.n_torrents(),
            stored_peers: self.store.n_peers(),
            tracked_ips: self.limiter.as_ref().map_or(0, RateLimiter::n_tracked),
            ..self.stats
        }
    }

    /// Our external IP, once nodes agree on it.
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.external_ip
    }

    /// What to save to bootstrap from next time: our id, external IP and table nodes.
    pub fn saved_state(&self) -> SavedState {
        SavedState {
            id: self.id,
            external_ip: self.external_ip,
            nodes: self.table.closest(&self.id, usize::MAX),
        }
    }

    /// Joins the DHT: a `find_node` lookup for our own id, from the table, the known nodes and the
    /// bootstrap addresses (each asked twice if the first query goes unanswered). While the table holds
    /// fewer than k nodes, or no bootstrap address or known node has answered yet, bootstrap is retried
    /// with backoff (5 s doubling to [`MAX_BOOTSTRAP_BACKOFF`]).
    pub fn bootstrap(&mut self, now: Instant) -> LookupId {
        self.wants_bootstrap = true;
        let id = self.start_lookup(now, LookupKind::FindNode, self.id, true);
        self.bootstrap_lookup = Some(id);
        self.drive_lookups(now);
        id
    }

    /// Starts a `get_peers` lookup; peers arrive as [`Event::Peers`], then [`Event::LookupDone`].
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash) -> LookupId {
        let id = self.start_lookup(now, LookupKind::GetPeers, info_hash.into(), false);
        self.drive_lookups(now);
        id
    }

    /// Starts a `get_peers` lookup, then announces us as a peer on TCP `port` (`None`: our UDP port,
    /// `implied_port`) to the closest nodes that gave a token. Peers found are reported as for
    /// [`get_peers`](Self::get_peers).
    pub fn announce(&mut self, now: Instant, info_hash: InfoHash, port: Option<u16>) -> LookupId {
        let id = self.start_lookup(now, LookupKind::Announce { port }, info_hash.into(), false);
        self.drive_lookups(now);
        id
    }

    /// Starts a `find_node` lookup for `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> LookupId {
        let id = self.start_lookup(now, LookupKind::FindNode, target, false);
        self.drive_lookups(now);
        id
    }

    /// Stops a lookup; no more events come for it.
    pub fn cancel(&mut self, lookup: LookupId) {
        self.lookups.remove(&lookup);
    }

    /// Pings `addr`; if it answers, it enters the routing table (like libtorrent's `add_dht_node`).
    pub fn ping(&mut self, now: Instant, addr: SocketAddr) {
        self.send_query(
            now,
            addr,
            None,
            Method::Ping,
            Purpose::Ping { verify: false },
        );
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            Some(self.next_maintenance),
            self.soft_deadlines.front().map(|d| d.0),
            self.hard_deadlines.front().map(|d| d.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles one datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.stats.received += 1;
        let Ok(message) = Message::decode(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        match message.body {
            Body::Query(query) => self.handle_query(
                now,
                from,
                bytes.len(),
                message.transaction,
                message.read_only,
                query,
            ),
            Body::Response(response) => self.handle_reply(
                now,
                from,
                &message.transaction,
                Ok(response),
                message.read_only,
                message.ip,
            ),
            Body::Error { code, .. } => {
                self.handle_reply(now, from, &message.transaction, Err(code), false, None);
            }
        }
        self.drive_lookups(now);
        self.prune_deadlines();
    }

    /// Drops deadlines of queries already answered from the front of the queues, so that
    /// [`poll_timeout`](Self::poll_timeout) does not ask for wake-ups with nothing to do.
    fn prune_deadlines(&mut self) {
        let pending = &self.pending;
        let live =
            |&(_, tid, seq): &(Instant, u16, u64)| pending.get(&tid).is_some_and(|p| p.seq == seq);
        while self.soft_deadlines.front().is_some_and(|d| !live(d)) {
            self.soft_deadlines.pop_front();
        }
        while self.hard_deadlines.front().is_some_and(|d| !live(d)) {
            self.hard_deadlines.pop_front();
        }
    }

    /// Handles the passing of time: query timeouts and upkeep.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, tid, seq)) = self.soft_deadlines.front() {
            if deadline > now {
                break;
            }
            self.soft_deadlines.pop_front();
            if let Some(pending) = self.pending.get(&tid).filter(|p| p.seq == seq)
                && let Purpose::Lookup(lookup) = pending.purpose
                && let Some(lookup) = self.lookups.get_mut(&lookup)
            {
                lookup.on_slow(tid);
            }
        }
        while let Some(&(deadline, tid, seq)) = self.hard_deadlines.front() {
            if deadline > now {
                break;
            }
            self.hard_deadlines.pop_front();
            if self.pending.get(&tid).is_some_and(|p| p.seq == seq)
                && let Some(pending) = self.pending.remove(&tid)
            {
                self.fail(now, tid, &pending);
            }
        }
        if now >= self.next_maintenance {
            self.maintain(now);
            self.next_maintenance = now + MAINTENANCE_INTERVAL;
        }
        self.drive_lookups(now);
        self.prune_deadlines();
    }

    fn start_lookup(
        &mut self,
        now: Instant,
        kind: LookupKind,
        target: NodeId,
        bootstrap: bool,
    ) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let mut lookup = Lookup::new(
            id,
            kind,
            target,
            self.id,
            self.config.k,
            self.config.alpha,
            self.config.restrict_ips,
            now,
        );
        for node in self.table.closest(&target, self.config.k) {
            lookup.add_candidate(node, 1);
        }
        if bootstrap || self.table.len() < self.config.k {
            for node in &self.config.known_nodes {
                lookup.add_candidate(*node, 1);
            }
            for addr in &self.config.bootstrap {
                lookup.add_seed(*addr);
            }
            lookup.drop_seeds_known_as_candidates();
        }
        self.lookups.insert(id, lookup);
        id
    }

    /// Whether `addr` is one of the contacts we were given to join through: a bootstrap address or a
    /// saved node.
    fn is_contact(&self, addr: &SocketAddr) -> bool {
        self.config.bootstrap.contains(addr)
            || self.config.known_nodes.iter().any(|n| n.addr == *addr)
    }

    fn send_query(
        &mut self,
        now: Instant,
        to: SocketAddr,
        id: Option<NodeId>,
        method: Method,
        purpose: Purpose,
    ) -> Option<u16> {
        if self.pending.len() >= MAX_PENDING {
            return None;
        }
        let mut tid = self.next_tid;
        while self.pending.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut message = Message::query(tid.to_be_bytes().to_vec(), Query::new(self.id, method));
        message.read_only = self.config.read_only;
        self.transmits.push_back(Transmit {
            to,
            bytes: message.encode(),
        });
        self.stats.sent += 1;
        self.pending.insert(
            tid,
            Pending {
                to,
                id,
                purpose,
                seq,
            },
        );
        self.soft_deadlines
            .push_back((now + self.config.soft_timeout, tid, seq));
        self.hard_deadlines
            .push_back((now + self.config.query_timeout, tid, seq));
        Some(tid)
    }

    fn handle_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        query_len: usize,
        transaction: Vec<u8>,
        sender_read_only: bool,
        query: Query,
    ) {
        // BEP 43: a read-only node answers nothing. A query with our own id is a reflection or a
        // spoof, and port 0 cannot be answered.
        if self.config.read_only || query.id == self.id || from.port() == 0 {
            return;
        }
        if let Some(limiter) = &mut self.limiter
            && !limiter.allow(now, from.ip())
        {
            self.stats.rate_limited += 1;
            return;
        }
        let node = NodeInfo {
            id: query.id,
            addr: from,
        };
        let verified = self.table.heard_from(now, &node);
        if !verified && !sender_read_only && self.table.would_accept(now, &node) {
            self.verify(now, node);
        }
        let mut response = Response::new(self.id);
        let mut error = None;
        match &query.method {
            Method::Ping => {}
            Method::FindNode { target } => {
                response.nodes = self.table.closest(target, self.config.k);
            }
            Method::GetPeers { info_hash } => {
                response.token = Some(self.tokens.token_for(from.ip()).to_vec());
                response.values = self
                    .store
                    .peers(now, info_hash, MAX_VALUES_SENT, &mut self.rng);
                response.nodes = self.table.closest(&(*info_hash).into(), self.config.k);
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                let port = if *implied_port { from.port() } else { *port };
                if !self.tokens.is_valid(from.ip(), token) {
                    error = Some((203, "bad token"));
                } else if port == 0 {
                    error = Some((203, "bad port"));
                } else if !self
                    .store
                    .announce(now, *info_hash, SocketAddr::new(from.ip(), port))
                {
                    error = Some((202, "peer store full"));
                }
            }
            Method::Other(_) => error = Some((204, "method unknown")),
        }
        let bytes = match error {
            Some((code, text)) => {
                let mut message = Message::error(transaction, code, text);
                message.ip = Some(from);
                message.encode()
            }
            None => {
                // BEP 32: IPv6 nodes go in `nodes6`; honour `want` when given.
                let (v4, v6): (Vec<NodeInfo>, Vec<NodeInfo>) =
                    response.nodes.iter().partition(|n| n.addr.is_ipv4());
                let want = query.want.unwrap_or(crate::krpc::Want {
                    v4: from.is_ipv4(),
                    v6: from.is_ipv6(),
                });
                response.nodes = if want.v4 { v4 } else { Vec::new() };
                response.nodes6 = if want.v6 { v6 } else { Vec::new() };
                let mut message = Message::response(transaction, response);
                message.ip = Some(from);
                let budget = if verified {
                    usize::MAX
                } else {
                    query_len.saturating_mul(UNVERIFIED_REPLY_FACTOR)
                };
                encode_within(&mut message, budget)
            }
        };
        self.stats.answered += 1;
        self.stats.sent += 1;
        self.transmits.push_back(Transmit { to: from, bytes });
    }

    fn verify(&mut self, now: Instant, node: NodeInfo) {
        if self.verifying >= MAX_VERIFYING || self.pending.values().any(|p| p.to == node.addr) {
            return;
        }
        if self
            .send_query(
                now,
                node.addr,
                Some(node.id),
                Method::Ping,
                Purpose::Ping { verify: true },
            )
            .is_some()
        {
            self.verifying += 1;
        }
    }

    fn handle_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transaction: &[u8],
        reply: Result<Response, i64>,
        sender_read_only: bool,
        ip: Option<SocketAddr>,
    ) {
        let Ok(tid) = <[u8; 2]>::try_from(transaction).map(u16::from_be_bytes) else {
            self.stats.unmatched += 1;
            return;
        };
        // HOSTILE 45: the reply must come from the address we asked.
        if self.pending.get(&tid).is_none_or(|p| p.to != from) {
            self.stats.unmatched += 1;
            return;
        }
        let Some(pending) = self.pending.remove(&tid) else {
            return;
        };
        if pending.purpose == (Purpose::Ping { verify: true }) {
            self.verifying -= 1;
        }
        let response = match reply {
            Ok(response)
                if response.id != self.id && pending.id.is_none_or(|id| id == response.id) =>
            {
                response
            }
            Ok(_) => {
                // Our own id (reflection), or not the node we asked.
                self.stats.unmatched += 1;
                self.fail(now, tid, &pending);
                return;
            }
            Err(_) => {
                // An error reply: the node is alive but the query failed.
                self.fail_lookup(tid, &pending);
                return;
            }
        };
        let node = NodeInfo {
            id: response.id,
            addr: from,
        };
        if !sender_read_only
            && let Insert::Replacement(questionable) =
                self.table
                    .insert(now, node, self.config.prefer_secure_node_ids)
        {
            for stale in questionable.into_iter().take(2) {
                if !self.pending.values().any(|p| p.to == stale.addr) {
                    self.send_query(
                        now,
                        stale.addr,
                        Some(stale.id),
                        Method::Ping,
                        Purpose::Ping { verify: false },
                    );
                }
            }
        }
        if let Some(ip) = ip {
            self.vote(from.ip(), ip.ip());
        }
        match pending.purpose {
            Purpose::Lookup(lookup_id) => {
                if !self.joined && self.is_contact(&from) {
                    self.joined = true;
                }
                let Some(lookup) = self.lookups.get_mut(&lookup_id) else {
                    return;
                };
                // Only nodes of our socket's address family can be asked.
                let nodes: Vec<NodeInfo> = response
                    .nodes
                    .iter()
                    .chain(&response.nodes6)
                    .filter(|n| n.addr.is_ipv4() == from.is_ipv4() && is_routable(&n.addr))
                    .copied()
                    .collect();
                let moot = lookup.on_reply(tid, node, &nodes, response.token);
                if lookup.kind != LookupKind::FindNode && !response.values.is_empty() {
                    let peers = lookup.new_peers(&response.values);
                    if !peers.is_empty() {
                        let info_hash = lookup.info_hash();
                        self.events.push_back(Event::Peers {
                            lookup: lookup_id,
                            info_hash,
                            peers,
                        });
                    }
                }
                for tid in moot {
                    // Another try to the same bootstrap address, which has answered: forget it, so
                    // that its timeout does not count against the node.
                    self.pending.remove(&tid);
                }
            }
            Purpose::Announce(lookup_id) => {
                if let Some(lookup) = self.lookups.get_mut(&lookup_id) {
                    lookup.stats.announced += 1;
                    lookup.stats.replies += 1;
                    if let Some(left) = &mut lookup.announcing {
                        *left = left.saturating_sub(1);
                    }
                }
            }
            Purpose::Ping { .. } => {}
        }
    }

    fn fail(&mut self, now: Instant, tid: u16, pending: &Pending) {
        if pending.purpose == (Purpose::Ping { verify: true }) {
            self.verifying = self.verifying.saturating_sub(1);
        }
        self.table.failed(now, &pending.to, pending.id.as_ref());
        self.fail_lookup(tid, pending);
    }

    fn fail_lookup(&mut self, tid: u16, pending: &Pending) {
        match pending.purpose {
            Purpose::Lookup(lookup) => {
                if let Some(lookup) = self.lookups.get_mut(&lookup) {
                    lookup.on_failure(tid);
                }
            }
            Purpose::Announce(lookup) => {
                if let Some(lookup) = self.lookups.get_mut(&lookup) {
                    lookup.stats.failures += 1;
                    if let Some(left) = &mut lookup.announcing {
                        *left = left.saturating_sub(1);
                    }
                }
            }
            Purpose::Ping { .. } => {}
        }
    }

    /// Records that `voter` saw us as `seen`; a majority of the last 32 voters (at least 2) sets our
    /// external IP.
    fn vote(&mut self, voter: IpAddr, seen: IpAddr) {
        self.votes.retain(|(v, _)| *v != voter);
        if self.votes.len() >= 32 {
            self.votes.pop_front();
        }
        self.votes.push_back((voter, seen));
        let count = self.votes.iter().filter(|(_, s)| *s == seen).count();
        if count >= 2 && count * 2 > self.votes.len() && self.external_ip != Some(seen) {
            self.external_ip = Some(seen);
            self.events.push_back(Event::ExternalAddress(seen));
        }
    }

    fn maintain(&mut self, now: Instant) {
        self.tokens.rotate_if_due(&mut self.rng, now);
        self.store.expire(now);
        if !self.table.is_empty() {
            for prefix in self.table.take_stale_buckets(now) {
                let target = self.id.random_at_prefix(prefix, &mut self.rng);
                self.start_lookup(now, LookupKind::FindNode, target, false);
            }
        }
        let questionable: Vec<NodeInfo> = self
            .table
            .questionable(now)
            .filter(|n| !self.pending.values().any(|p| p.to == n.addr))
            .take(PINGS_PER_ROUND)
            .collect();
        for node in questionable {
            self.send_query(
                now,
                node.addr,
                Some(node.id),
                Method::Ping,
                Purpose::Ping { verify: false },
            );
        }
        if self.wants_bootstrap && now >= self.next_self_refresh {
            let jitter = SELF_REFRESH_INTERVAL.as_millis() as u64;
            self.next_self_refresh =
                now + Duration::from_millis(jitter / 2 + self.rng.below(jitter));
            if !self.table.is_empty() && self.bootstrap_lookup.is_none() {
                self.start_lookup(now, LookupKind::FindNode, self.id, false);
            }
        }
        // HOSTILE 51: while nobody answers, retry with backoff instead of spinning. A table of fewer
        // than k nodes also retries: it may be an island of nodes that only know each other. So does
        // a node none of whose contacts has answered, however full its table (#8): every node in it
        // came to us, and they may all be newcomers that joined through us alone, an island the rest
        // of the DHT never hears of.
        if self.wants_bootstrap
            && (self.table.len() < self.config.k || !self.joined)
            && self.bootstrap_lookup.is_none()
            && now >= self.next_bootstrap
        {
            self.next_bootstrap = now + self.bootstrap_backoff;
            self.bootstrap_backoff = (self.bootstrap_backoff * 2).min(MAX_BOOTSTRAP_BACKOFF);
            let id = self.start_lookup(now, LookupKind::FindNode, self.id, true);
            self.bootstrap_lookup = Some(id);
        }
    }

    fn drive_lookups(&mut self, now: Instant) {
        let ids: Vec<LookupId> = self.lookups.keys().copied().collect();
        for id in ids {
            self.drive_lookup(now, id);
        }
    }

    fn drive_lookup(&mut self, now: Instant, id: LookupId) {
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        let asks: Vec<Ask> = lookup.next_asks();
        let (kind, target) = (lookup.kind, lookup.target);
        for ask in asks {
            let method = match kind {
                LookupKind::FindNode => Method::FindNode { target },
                LookupKind::GetPeers | LookupKind::Announce { .. } => Method::GetPeers {
                    info_hash: InfoHash(target.0),
                },
            };
            let tid = self.send_query(now, ask.to, ask.id, method, Purpose::Lookup(id));
            let Some(lookup) = self.lookups.get_mut(&id) else {
                return;
            };
            match tid {
                Some(tid) => lookup.sent(&ask, tid),
                None => {
                    // Too many queries in flight: count this one as failed rather than stall.
                    lookup.sent(&ask, u16::MAX);
                    lookup.on_failure(u16::MAX);
                }
            }
        }
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        if lookup.announcing.is_none() && lookup.search_done() {
            if let LookupKind::Announce { port } = lookup.kind {
                let targets = lookup.announce_targets();
                let info_hash = lookup.info_hash();
                lookup.announcing = Some(0);
                let mut sent = 0;
                for (node, token) in targets {
                    let method = Method::AnnouncePeer {
                        info_hash,
                        port: port.unwrap_or(0),
                        implied_port: port.is_none(),
                        token,
                    };
                    if self
                        .send_query(now, node.addr, Some(node.id), method, Purpose::Announce(id))
                        .is_some()
                    {
                        sent += 1;
                    }
                }
                if let Some(lookup) = self.lookups.get_mut(&id) {
                    lookup.stats.queries += sent as u32;
                    lookup.announcing = Some(sent);
                }
            } else {
                lookup.announcing = Some(0);
            }
        }
        if let Some(lookup) = self.lookups.get(&id)
            && lookup.announcing == Some(0)
        {
            let result = lookup.result(now);
            self.lookups.remove(&id);
            if self.bootstrap_lookup == Some(id) {
                self.bootstrap_lookup = None;
                if self.joined && self.table.len() >= self.config.k {
                    self.bootstrap_backoff = MAINTENANCE_INTERVAL;
                }
                if !self.table.is_empty() {
                    // Fill the far buckets too (as libtorrent does after bootstrap): a lookup ending in
                    // a node whose table lacks the target's region stops short of the closest nodes.
                    for prefix in self.table.sparse_prefixes() {
                        let target = self.id.random_at_prefix(prefix, &mut self.rng);
                        self.start_lookup(now, LookupKind::FindNode, target, false);
                    }
                }
            }
            self.events.push_back(Event::LookupDone(result));
        }
    }
}

/// Whether a node address from a reply is worth asking: not port 0, not unspecified or multicast.
fn is_routable(addr: &SocketAddr) -> bool {
    addr.port() != 0 && !addr.ip().is_unspecified() && !addr.ip().is_multicast()
}

/// Encodes `message`, cutting `values` and then `nodes` until it fits in `budget` bytes.
fn encode_within(message: &mut Message, budget: usize) -> Vec<u8> {
    loop {
        let bytes = message.encode();
        if bytes.len() <= budget {
            return bytes;
        }
        let Body::Response(response) = &mut message.body else {
            return bytes;
        };
        if !response.values.is_empty() {
            // Peers matter more than nodes in a get_peers reply: drop the nodes first.
            if !response.nodes.is_empty() || !response.nodes6.is_empty() {
                response.nodes.clear();
                response.nodes6.clear();
            } else {
                let excess = bytes.len() - budget;
                let per_value = if response.values[0].is_ipv4() { 8 } else { 20 };
                let cut = excess.div_ceil(per_value).min(response.values.len());
                response.values.truncate(response.values.len() - cut);
            }
        } else if !response.nodes6.is_empty() {
            response.nodes6.pop();
        } else if !response.nodes.is_empty() {
            response.nodes.pop();
        } else {
            // Nothing left to cut: the bare reply is never larger than a few times the query.
            return bytes;
        }
    }
}
