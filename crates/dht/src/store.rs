//! Server-side state: the announce tokens, the peer store and the per-IP query rate limit.
//!
//! - Tokens (BEP 5) are the first 8 bytes of SHA-1(secret ‖ querier IP). The secret rotates every
//!   [`TOKEN_ROTATION`] and the previous one is still accepted, so a token is valid for 5 to 10 minutes.
//! - The peer store keeps announced peers for [`PEER_TTL`], at most `max_torrents` info-hashes with at
//!   most `max_peers` each (HOSTILE 48).
//! - The rate limiter is a token bucket per IP; an IP that empties it is blocked for a while (HOSTILE 49).
//!   Its map is capped, so a flood from spoofed sources cannot grow it without bound.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use shoal_metainfo::InfoHash;

use crate::id::Rng;

/// How often the token secret rotates; a token stays valid for one to two rotations.
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);
/// How long an announced peer is kept (BEP 5 suggests 30 minutes).
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// How many IPs the rate limiter tracks at most.
pub const MAX_TRACKED_IPS: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    pub(crate) fn new(rng: &mut Rng, now: Instant) -> Tokens {
        let mut current = [0; 16];
        rng.fill(&mut current);
        Tokens {
            current,
            previous: current,
            rotated_at: now,
        }
    }

    pub(crate) fn rotate_if_due(&mut self, rng: &mut Rng, now: Instant) {
        if now.saturating_duration_since(self.rotated_at) >= TOKEN_ROTATION {
            self.previous = self.current;
            rng.fill(&mut self.current);
            self.rotated_at = now;
        }
    }

    fn make(secret: &[u8; 16], ip: IpAddr) -> [u8; 8] {
        let mut hasher = Sha1::new();
        hasher.update(secret);
        match ip {
            IpAddr::V4(v4) => hasher.update(v4.octets()),
            IpAddr::V6(v6) => hasher.update(v6.octets()),
        }
        let digest = hasher.finalize();
        let mut token = [0; 8];
        token.copy_from_slice(&digest[..8]);
        token
    }

    pub(crate) fn token_for(&self, ip: IpAddr) -> [u8; 8] {
        Self::make(&self.current, ip)
    }

    pub(crate) fn is_valid(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == Self::make(&self.current, ip) || token == Self::make(&self.previous, ip)
    }
}

/// Peers announced to us, by info-hash, with expiry and caps.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerStore {
    torrents: HashMap<InfoHash, Vec<(SocketAddr, Instant)>>,
    max_torrents: usize,
    max_peers: usize,
}

impl PeerStore {
    pub(crate) fn new(max_torrents: usize, max_peers: usize) -> PeerStore {
        PeerStore {
            torrents: HashMap::new(),
            max_torrents,
            max_peers,
        }
    }

    /// Stores or refreshes `peer` for `info_hash`; `false` when the store is full of other torrents.
    pub(crate) fn announce(&mut self, now: Instant, info_hash: InfoHash, peer: SocketAddr) -> bool {
        let expires = now + PEER_TTL;
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= self.max_torrents {
            self.expire(now);
            if self.torrents.len() >= self.max_torrents {
                return false;
            }
        }
        let peers = self.torrents.entry(info_hash).or_default();
        if let Some(slot) = peers.iter_mut().find(|(addr, _)| *addr == peer) {
            slot.1 = expires;
        } else if peers.len() < self.max_peers {
            peers.push((peer, expires));
        } else if let Some(oldest) = peers.iter_mut().min_by_key(|(_, expiry)| *expiry) {
            // Full: the peer heard from longest ago makes room.
            *oldest = (peer, expires);
        }
        true
    }

    /// Up to `max` live peers for `info_hash`, starting at a random place so every peer gets handed out.
    pub(crate) fn peers(
        &self,
        now: Instant,
        info_hash: &InfoHash,
        max: usize,
        rng: &mut Rng,
    ) -> Vec<SocketAddr> {
        let Some(peers) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let start = rng.below(peers.len() as u64) as usize;
        peers[start..]
            .iter()
            .chain(&peers[..start])
            .filter(|(_, expiry)| *expiry > now)
            .map(|(addr, _)| *addr)
            .take(max)
            .collect()
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.torrents.retain(|_, peers| {
            peers.retain(|(_, expiry)| *expiry > now);
            !peers.is_empty()
        });
    }

    pub(crate) fn n_torrents(&self) -> usize {
        self.torrents.len()
    }

    pub(crate) fn n_peers(&self) -> usize {
        self.torrents.values().map(Vec::len).sum()
    }
}

/// Per-IP limit on queries we answer (HOSTILE 49).
///
/// ```
/// use std::time::Duration;
/// let limit = shoal_dht::RateLimit { per_second: 5, burst: 50, block_for: Duration::from_secs(300) };
/// assert_eq!(limit, shoal_dht::RateLimit::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Queries per second an IP may keep sending.
    pub per_second: u32,
    /// How many it may send at once after being quiet.
    pub burst: u32,
    /// How long an IP that went over the limit is ignored.
    pub block_for: Duration,
}

impl Default for RateLimit {
    /// libtorrent's figures: 5 per second (`dht_block_ratelimit`) averaged over 10 seconds, so a burst
    /// of 50, then blocked for 300 s (`dht_block_timeout`). A node that just joined sends bursts: its
    /// bootstrap and bucket refreshes run at once and meet the same few nodes.
    fn default() -> Self {
        RateLimit {
            per_second: 5,
            burst: 50,
            block_for: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct IpState {
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    ips: HashMap<IpAddr, IpState>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            ips: HashMap::new(),
        }
    }

    /// Whether a query from `ip` at `now` may be answered; counts it.
    pub(crate) fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.ips.len() >= MAX_TRACKED_IPS && !self.ips.contains_key(&ip) {
            self.forget_idle(now);
            if self.ips.len() >= MAX_TRACKED_IPS {
                // Still full: a flood from many sources. Forgetting everyone keeps memory bounded; the
                // worst case is that a blocked IP gets a fresh bucket early.
                self.ips.clear();
            }
        }
        let limit = self.limit;
        let state = self.ips.entry(ip).or_insert(IpState {
            tokens: f64::from(limit.burst),
            last: now,
            blocked_until: None,
        });
        if let Some(until) = state.blocked_until {
            if now < until {
                return false;
            }
            state.blocked_until = None;
            state.tokens = f64::from(limit.burst);
        }
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.tokens =
            (state.tokens + elapsed * f64::from(limit.per_second)).min(f64::from(limit.burst));
        state.last = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            state.blocked_until = Some(now + limit.block_for);
            false
        }
    }

    fn forget_idle(&mut self, now: Instant) {
        let limit = self.limit;
        self.ips.retain(|_, state| match state.blocked_until {
            Some(until) => until > now,
            None => {
                let refill = now.saturating_duration_since(state.last).as_secs_f64()
                    * f64::from(limit.per_second);
                state.tokens + refill < f64::from(limit.burst)
            }
        });
    }

    pub(crate) fn n_tracked(&self) -> usize {
        self.ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_valid_for_one_to_two_rotations() {
        let start = Instant::now();
        let mut rng = Rng::new(1);
        let mut tokens = Tokens::new(&mut rng, start);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let token = tokens.token_for(ip);
        assert!(tokens.is_valid(ip, &token));
        assert!(!tokens.is_valid("10.0.0.2".parse().unwrap(), &token));
        tokens.rotate_if_due(&mut rng, start + TOKEN_ROTATION);
        assert!(tokens.is_valid(ip, &token), "the previous secret is kept");
        tokens.rotate_if_due(&mut rng, start + TOKEN_ROTATION * 2);
        assert!(!tokens.is_valid(ip, &token), "stale after two rotations");
    }

    #[test]
    fn peer_store_caps_at_and_past_the_limit() {
        let now = Instant::now();
        let mut store = PeerStore::new(2, 3);
        let mut rng = Rng::new(1);
        let peer = |n: u8| SocketAddr::from(([10, 0, 0, n], 6881));
        assert!(store.announce(now, InfoHash([1; 20]), peer(1)));
        assert!(store.announce(now, InfoHash([2; 20]), peer(1)));
        assert!(
            !store.announce(now, InfoHash([3; 20]), peer(1)),
            "third torrent over the cap"
        );
        for n in 1..=3 {
            store.announce(now, InfoHash([1; 20]), peer(n));
        }
        assert_eq!(store.peers(now, &InfoHash([1; 20]), 100, &mut rng).len(), 3);
        store.announce(now + Duration::from_secs(1), InfoHash([1; 20]), peer(4));
        let peers = store.peers(now, &InfoHash([1; 20]), 100, &mut rng);
        assert_eq!(peers.len(), 3, "a fourth peer replaces the oldest");
        assert!(peers.contains(&peer(4)));
        assert_eq!(store.peers(now, &InfoHash([1; 20]), 2, &mut rng).len(), 2);
        // Expiry after 30 minutes frees a torrent slot.
        let later = now + PEER_TTL + Duration::from_secs(1);
        assert!(
            store
                .peers(later, &InfoHash([2; 20]), 100, &mut rng)
                .is_empty()
        );
        assert!(store.announce(later, InfoHash([3; 20]), peer(1)));
        assert_eq!(store.n_torrents(), 1);
    }

    #[test]
    fn rate_limit_blocks_then_forgives() {
        let start = Instant::now();
        let limit = RateLimit::default();
        let mut limiter = RateLimiter::new(limit);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..limit.burst {
            assert!(limiter.allow(start, ip));
        }
        assert!(!limiter.allow(start, ip), "burst + 1 is refused");
        assert!(
            !limiter.allow(start + Duration::from_secs(10), ip),
            "still blocked"
        );
        assert!(limiter.allow(start + limit.block_for, ip));
        assert!(
            limiter.allow(start, "10.0.0.2".parse().unwrap()),
            "other IPs unaffected"
        );
    }

    #[test]
    fn rate_limiter_memory_is_bounded() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(RateLimit::default());
        for n in 0..(MAX_TRACKED_IPS as u32 + 500) {
            limiter.allow(now, IpAddr::from(n.to_be_bytes()));
        }
        assert!(limiter.n_tracked() <= MAX_TRACKED_IPS);
    }
}
