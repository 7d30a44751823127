//! Iterative lookups (BEP 5, Kademlia): α queries in flight, converging on the k closest nodes that
//! answered.
//!
//! Candidates are kept sorted by distance to the target (at most [`MAX_CANDIDATES`]). The lookup queries
//! the closest fresh candidates, at most α at a time, within a window of the k closest candidates that
//! have neither failed nor gone slow. A query unanswered after the soft timeout stops counting against α
//! (the window slides past it) but can still answer until the hard timeout. The lookup is done when the k
//! closest live candidates have all answered, or nothing is left to ask.
//!
//! Bootstrap addresses (ids unknown) are *seeds*: all asked at once, outside the window, and only their
//! answers feed the candidates. A seed silent past the soft timeout is asked again (up to
//! [`SEED_TRIES`] queries in all): a joining node that loses its one query to the DHT, or the reply,
//! would otherwise sit outside the DHT until the next bootstrap attempt, while nodes joining through
//! it grow an island around it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use shoal_metainfo::InfoHash;

use crate::id::{Distance, NodeId};
use crate::krpc::NodeInfo;

/// The most candidates a lookup keeps.
pub const MAX_CANDIDATES: usize = 64;
/// Queries a lookup sends to a silent bootstrap address (ids unknown) before giving up on it: the next
/// one goes out when the previous one passes the soft timeout.
pub(crate) const SEED_TRIES: u8 = 2;

/// Identifies one lookup started on a [`Dht`](crate::Dht); events about it carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node` for the target (bootstrap and bucket refresh).
    FindNode,
    /// `get_peers` for the info-hash.
    GetPeers,
    /// `get_peers`, then `announce_peer` to the closest nodes that gave a token. `port: None` asks them
    /// to use our UDP source port (`implied_port`).
    Announce {
        /// Our TCP port, or `None` for `implied_port`.
        port: Option<u16>,
    },
}

/// Figures about one finished lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LookupStats {
    /// Queries sent (seeds and announces included).
    pub queries: u32,
    /// Replies received in time.
    pub replies: u32,
    /// Queries that timed out or got an error.
    pub failures: u32,
    /// Rounds: the longest chain of nodes each learned from the previous one's reply.
    pub rounds: u32,
    /// Distinct peers found (`get_peers`).
    pub peers: u32,
    /// Nodes that accepted our `announce_peer`.
    pub announced: u32,
}

/// The outcome of a finished lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// Which lookup.
    pub id: LookupId,
    /// What it was for.
    pub kind: LookupKind,
    /// The target id (the info-hash, for `get_peers`).
    pub target: NodeId,
    /// The closest nodes that answered, closest first (at most k).
    pub closest: Vec<NodeInfo>,
    /// Figures.
    pub stats: LookupStats,
    /// How long it took.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight(u16),
    Slow(u16),
    Replied(Option<Vec<u8>>),
    Failed,
}

/// A bootstrap address (id unknown) asked by the lookup.
#[derive(Debug, Clone)]
struct Seed {
    addr: SocketAddr,
    /// A query is due (first try, or the previous one went slow).
    ask: bool,
    /// Transactions sent to it and not yet answered or failed.
    in_flight: Vec<u16>,
    tries: u8,
    /// It answered, or every try failed.
    done: bool,
}

impl Seed {
    fn busy(&self) -> bool {
        !self.done && (self.ask || !self.in_flight.is_empty())
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    info: NodeInfo,
    distance: Distance,
    hop: u32,
    state: State,
}

/// A query the lookup wants sent: to whom, and the hop count to credit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    pub(crate) to: SocketAddr,
    pub(crate) id: Option<NodeId>,
}

#[derive(Debug)]
pub(crate) struct Lookup {
    pub(crate) id: LookupId,
    pub(crate) kind: LookupKind,
    pub(crate) target: NodeId,
    k: usize,
    alpha: usize,
    restrict_ips: bool,
    candidates: Vec<Candidate>,
    seen_ids: HashSet<NodeId>,
    seen_ips: HashSet<IpAddr>,
    seeds: Vec<Seed>,
    pub(crate) peers: HashSet<SocketAddr>,
    pub(crate) stats: LookupStats,
    started: Instant,
    own: NodeId,
    /// Announces sent and not yet answered, once the search is over.
    pub(crate) announcing: Option<usize>,
}

impl Lookup {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: LookupId,
        kind: LookupKind,
        target: NodeId,
        own: NodeId,
        k: usize,
        alpha: usize,
        restrict_ips: bool,
        now: Instant,
    ) -> Lookup {
        Lookup {
            id,
            kind,
            target,
            k,
            alpha,
            restrict_ips,
            candidates: Vec::new(),
            seen_ids: HashSet::new(),
            seen_ips: HashSet::new(),
            seeds: Vec::new(),
            peers: HashSet::new(),
            stats: LookupStats::default(),
            started: now,
            own,
            announcing: None,
        }
    }

    pub(crate) fn info_hash(&self) -> InfoHash {
        InfoHash(self.target.0)
    }

    pub(crate) fn add_seed(&mut self, addr: SocketAddr) {
        if !self.seeds.iter().any(|s| s.addr == addr) {
            self.seeds.push(Seed {
                addr,
                ask: true,
                in_flight: Vec::new(),
                tries: 0,
                done: false,
            });
        }
    }

    /// Forgets seeds whose address is already a candidate, so no node is asked twice.
    pub(crate) fn drop_seeds_known_as_candidates(&mut self) {
        let candidates = &self.candidates;
        self.seeds
            .retain(|s| !candidates.iter().any(|c| c.info.addr == s.addr));
    }

    /// Adds a node learned at `hop`; ignores our own id, known ids and (with IP restriction) known IPs.
    pub(crate) fn add_candidate(&mut self, info: NodeInfo, hop: u32) {
        if info.id == self.own
            || info.addr.port() == 0
            || self.seen_ids.contains(&info.id)
            || (self.restrict_ips && self.seen_ips.contains(&info.addr.ip()))
        {
            return;
        }
        let distance = info.id.distance(&self.target);
        let position = self.candidates.partition_point(|c| c.distance < distance);
        if position >= MAX_CANDIDATES {
            return;
        }
        self.seen_ids.insert(info.id);
        self.seen_ips.insert(info.addr.ip());
        self.candidates.insert(
            position,
            Candidate {
                info,
                distance,
                hop,
                state: State::Fresh,
            },
        );
        self.candidates.truncate(MAX_CANDIDATES);
    }

    /// The next queries to send now; the caller sends each and reports its transaction id with
    /// [`Lookup::sent`].
    pub(crate) fn next_asks(&mut self) -> Vec<Ask> {
        if self.announcing.is_some() {
            return Vec::new();
        }
        let mut asks = Vec::new();
        for seed in &mut self.seeds {
            if seed.ask && !seed.done {
                seed.ask = false; // `sent` records the transaction
                asks.push(Ask {
                    to: seed.addr,
                    id: None,
                });
            }
        }
        let mut in_flight = self
            .candidates
            .iter()
            .filter(|c| matches!(c.state, State::InFlight(_)))
            .count();
        let mut window = 0;
        for candidate in &mut self.candidates {
            if in_flight >= self.alpha || window >= self.k {
                break;
            }
            match candidate.state {
                State::Failed | State::Slow(_) => continue,
                State::Fresh => {
                    candidate.state = State::InFlight(0);
                    in_flight += 1;
                    asks.push(Ask {
                        to: candidate.info.addr,
                        id: Some(candidate.info.id),
                    });
                }
                State::InFlight(_) | State::Replied(_) => {}
            }
            window += 1;
        }
        asks
    }

    /// Records the transaction id of a query sent for `ask`.
    pub(crate) fn sent(&mut self, ask: &Ask, tid: u16) {
        self.stats.queries += 1;
        match ask.id {
            None => {
                if let Some(seed) = self.seeds.iter_mut().find(|s| s.addr == ask.to) {
                    seed.in_flight.push(tid);
                    seed.tries += 1;
                }
            }
            Some(id) => {
                if let Some(c) = self.candidates.iter_mut().find(|c| c.info.id == id) {
                    c.state = State::InFlight(tid);
                    self.stats.rounds = self.stats.rounds.max(c.hop);
                }
            }
        }
    }

    fn seed_of(&mut self, tid: u16) -> Option<&mut Seed> {
        self.seeds.iter_mut().find(|s| s.in_flight.contains(&tid))
    }

    fn hop_of(&self, tid: u16) -> Option<u32> {
        self.candidates
            .iter()
            .find(|c| matches!(c.state, State::InFlight(t) | State::Slow(t) if t == tid))
            .map(|c| c.hop)
    }

    fn set_state(&mut self, tid: u16, state: State) {
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| matches!(c.state, State::InFlight(t) | State::Slow(t) if t == tid))
        {
            c.state = state;
        }
    }

    /// A reply to transaction `tid`: the nodes it named become candidates one hop further.
    /// A seed that answers becomes a candidate that has replied, now that its id is known; its other
    /// queries still in flight are returned, for the caller to forget (they no longer matter).
    pub(crate) fn on_reply(
        &mut self,
        tid: u16,
        from: NodeInfo,
        nodes: &[NodeInfo],
        token: Option<Vec<u8>>,
    ) -> Vec<u16> {
        let mut moot = Vec::new();
        let hop = if let Some(seed) = self.seed_of(tid) {
            seed.done = true;
            seed.ask = false;
            moot = std::mem::take(&mut seed.in_flight);
            moot.retain(|t| *t != tid);
            self.add_candidate(from, 0);
            if let Some(c) = self
                .candidates
                .iter_mut()
                .find(|c| c.info.id == from.id && c.state == State::Fresh)
            {
                c.state = State::Replied(token.clone());
            }
            0
        } else if let Some(hop) = self.hop_of(tid) {
            self.set_state(tid, State::Replied(token));
            hop
        } else {
            return moot;
        };
        self.stats.replies += 1;
        for node in nodes {
            self.add_candidate(*node, hop + 1);
        }
        moot
    }

    /// Peers from a reply: those not seen before in this lookup.
    pub(crate) fn new_peers(&mut self, values: &[SocketAddr]) -> Vec<SocketAddr> {
        let fresh: Vec<SocketAddr> = values
            .iter()
            .filter(|peer| peer.port() != 0 && self.peers.insert(**peer))
            .copied()
            .collect();
        self.stats.peers += fresh.len() as u32;
        fresh
    }

    pub(crate) fn on_failure(&mut self, tid: u16) {
        if let Some(seed) = self.seed_of(tid) {
            seed.in_flight.retain(|t| *t != tid);
            // Out of tries, or failed outright (an error reply) before a retry was due.
            seed.done = seed.in_flight.is_empty() && !seed.ask;
            self.stats.failures += 1;
        } else if self.hop_of(tid).is_some() {
            self.stats.failures += 1;
            self.set_state(tid, State::Failed);
        }
    }

    pub(crate) fn on_slow(&mut self, tid: u16) {
        if let Some(seed) = self.seed_of(tid) {
            seed.ask |= seed.tries < SEED_TRIES;
            return;
        }
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.state == State::InFlight(tid))
        {
            c.state = State::Slow(tid);
        }
    }

    /// Whether the search phase is over: the k closest live candidates answered, or nothing is left.
    pub(crate) fn search_done(&self) -> bool {
        if self.seeds.iter().any(Seed::busy) {
            return false;
        }
        let mut window = 0;
        let mut slow = false;
        for c in &self.candidates {
            if window >= self.k {
                break;
            }
            match c.state {
                State::Failed => {}
                State::Slow(_) => slow = true,
                State::Fresh | State::InFlight(_) => return false,
                State::Replied(_) => window += 1,
            }
        }
        // The k closest live candidates answered; with fewer than k, wait for the slow ones too.
        window >= self.k || !slow
    }

    fn closest_replied(&self) -> impl Iterator<Item = (&NodeInfo, Option<&Vec<u8>>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                State::Replied(token) => Some((&c.info, token.as_ref())),
                _ => None,
            })
            .take(self.k)
    }

    /// The k closest nodes that answered, with the token each gave.
    pub(crate) fn announce_targets(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.closest_replied()
            .filter_map(|(info, token)| token.map(|t| (*info, t.clone())))
            .collect()
    }

    pub(crate) fn result(&self, now: Instant) -> LookupResult {
        LookupResult {
            id: self.id,
            kind: self.kind,
            target: self.target,
            closest: self.closest_replied().map(|(info, _)| *info).collect(),
            stats: self.stats,
            elapsed: now.saturating_duration_since(self.started),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeInfo {
        NodeInfo {
            id: NodeId([n; 20]),
            addr: SocketAddr::from(([10, 0, 0, n], 6881)),
        }
    }

    fn lookup() -> Lookup {
        Lookup::new(
            LookupId(1),
            LookupKind::FindNode,
            NodeId([0; 20]),
            NodeId([0xff; 20]),
            2,
            3,
            true,
            Instant::now(),
        )
    }

    #[test]
    fn asks_alpha_at_a_time_within_the_window() {
        let mut l = lookup();
        for n in 1..=6 {
            l.add_candidate(node(n), 1);
        }
        let asks = l.next_asks();
        // k = 2 bounds the window before α = 3 does.
        assert_eq!(asks.len(), 2);
        assert_eq!(asks[0].id, Some(node(1).id));
        for (tid, ask) in asks.iter().enumerate() {
            l.sent(ask, tid as u16);
        }
        assert!(l.next_asks().is_empty());
        l.on_slow(0);
        let more = l.next_asks();
        assert_eq!(
            more.len(),
            1,
            "a slow query frees its slot and slides the window"
        );
        assert_eq!(more[0].id, Some(node(3).id));
    }

    #[test]
    fn converges_when_the_k_closest_replied() {
        let mut l = lookup();
        l.add_candidate(node(4), 1);
        l.add_candidate(node(5), 1);
        let asks = l.next_asks();
        l.sent(&asks[0], 1);
        l.sent(&asks[1], 2);
        l.on_reply(1, node(4), &[node(1), node(2)], Some(b"tok".to_vec()));
        assert!(!l.search_done());
        let asks = l.next_asks();
        assert_eq!(asks.len(), 2);
        l.sent(&asks[0], 3);
        l.sent(&asks[1], 4);
        l.on_reply(3, node(1), &[], None);
        l.on_failure(4);
        // Node 2 failed, so 1 and 4 are the two closest live ones, and both answered; node 5, still
        // in flight, is outside the window.
        assert!(l.search_done());
        let result = l.result(Instant::now());
        assert_eq!(result.closest, vec![node(1), node(4)]);
        assert_eq!(result.stats.rounds, 2);
        assert_eq!(l.announce_targets().len(), 1, "node 1 gave no token");
    }

    #[test]
    fn ignores_own_id_duplicates_and_shared_ips() {
        let mut l = lookup();
        l.add_candidate(
            NodeInfo {
                id: NodeId([0xff; 20]),
                ..node(1)
            },
            1,
        );
        l.add_candidate(node(2), 1);
        l.add_candidate(node(2), 1);
        l.add_candidate(
            NodeInfo {
                id: NodeId([9; 20]),
                ..node(2)
            },
            1,
        );
        assert_eq!(l.candidates.len(), 1);
    }

    #[test]
    fn candidates_are_capped() {
        let mut l = lookup();
        for n in 0..=255u8 {
            let mut id = [n; 20];
            id[19] = 1;
            l.add_candidate(
                NodeInfo {
                    id: NodeId(id),
                    addr: SocketAddr::from(([10, 1, n, 1], 1)),
                },
                1,
            );
        }
        assert_eq!(l.candidates.len(), MAX_CANDIDATES);
        assert_eq!(l.candidates[0].info.id.0[0], 0);
    }

    #[test]
    fn silent_seeds_are_asked_again_once() {
        // #8: a lost bootstrap query must not leave a joining node outside the DHT.
        let seed: SocketAddr = "10.9.9.9:6881".parse().unwrap();
        let mut l = lookup();
        l.add_seed(seed);
        let asks = l.next_asks();
        assert_eq!((asks.len(), asks[0].to, asks[0].id), (1, seed, None));
        l.sent(&asks[0], 1);
        assert!(l.next_asks().is_empty());
        l.on_slow(1);
        let again = l.next_asks();
        assert_eq!(again.len(), 1, "asked again after the soft timeout");
        l.sent(&again[0], 2);
        l.on_slow(2);
        assert!(l.next_asks().is_empty(), "{SEED_TRIES} tries at most");
        l.on_failure(1);
        assert!(!l.search_done(), "the second try is still in flight");
        l.on_failure(2);
        assert!(l.search_done());
        assert_eq!(l.stats.queries, 2);
    }

    #[test]
    fn a_seed_answering_either_try_ends_both() {
        let seed: SocketAddr = "10.9.9.9:6881".parse().unwrap();
        let mut l = lookup();
        l.add_seed(seed);
        let ask = l.next_asks()[0];
        l.sent(&ask, 1);
        l.on_slow(1);
        let ask = l.next_asks()[0];
        l.sent(&ask, 2);
        // The first query's reply arrives late: the second one is moot.
        let from = NodeInfo {
            id: NodeId([9; 20]),
            addr: seed,
        };
        assert_eq!(l.on_reply(1, from, &[node(1)], None), vec![2]);
        assert_eq!(l.stats.replies, 1);
        let asks = l.next_asks();
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].id, Some(node(1).id));
        l.on_reply(2, from, &[], None);
        assert_eq!(l.stats.replies, 1, "a moot reply counts for nothing");
    }

    #[test]
    fn empty_lookup_is_done_at_once() {
        let l = lookup();
        assert!(l.search_done());
    }
}
