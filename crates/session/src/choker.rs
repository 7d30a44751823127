//! The choker: who may download from us (BEP 3's tit-for-tat).
//!
//! Every [`Choker::RECOMPUTE`] the interested peers are ranked and the best [`Choker::slots`] unchoked:
//! while downloading, by what they give us; while seeding, by how fast we upload to them. One more
//! peer, chosen at random among the rest, gets an optimistic unchoke that rotates every
//! [`Choker::OPTIMISTIC_ROTATION`], so newcomers get a chance to prove themselves (new connections are
//! three times as likely to be picked).

use std::time::{Duration, Instant};

/// What the choker knows of one connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<K> {
    /// The caller's handle for the peer.
    pub key: K,
    /// The peer is interested in what we have.
    pub interested: bool,
    /// Bytes per second the peer sends us.
    pub download_rate: u64,
    /// Bytes per second we send the peer.
    pub upload_rate: u64,
    /// When the connection was made.
    pub connected_at: Instant,
}

/// Tit-for-tat with an optimistic unchoke; pure and deterministic given its seed.
///
/// ```
/// use std::time::Instant;
/// use shoal_session::{Candidate, Choker};
///
/// let now = Instant::now();
/// let peer = |key, rate| Candidate { key, interested: true, download_rate: rate, upload_rate: 0, connected_at: now };
/// let peers = [peer("a", 50), peer("b", 900), peer("c", 10)];
/// let mut choker = Choker::new(1, 42);
/// let unchoked = choker.run(now, false, &peers);
/// assert_eq!(unchoked[0], "b"); // the best giver gets the one regular slot
/// assert_eq!(unchoked.len(), 2); // and one of the others an optimistic unchoke
/// ```
#[derive(Debug, Clone)]
pub struct Choker<K> {
    slots: usize,
    optimistic: Option<K>,
    next_rotation: Option<Instant>,
    rng: u64,
}

impl<K: Clone + PartialEq> Choker<K> {
    /// How often the unchoked set is recomputed.
    pub const RECOMPUTE: Duration = Duration::from_secs(10);
    /// How long an optimistic unchoke lasts.
    pub const OPTIMISTIC_ROTATION: Duration = Duration::from_secs(30);
    /// A connection younger than this counts as new for the optimistic pick.
    const NEW_PEER: Duration = Duration::from_secs(60);

    /// A choker with `slots` regular unchoke slots (4 is the classic value), seeded for its random picks.
    pub fn new(slots: usize, seed: u64) -> Self {
        Self {
            slots,
            optimistic: None,
            next_rotation: None,
            rng: seed | 1,
        }
    }

    /// The number of regular slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The peer currently unchoked optimistically.
    pub fn optimistic(&self) -> Option<&K> {
        self.optimistic.as_ref()
    }

    /// Decides who is unchoked now: the best `slots` interested peers and the optimistic one.
    pub fn run(&mut self, now: Instant, seeding: bool, peers: &[Candidate<K>]) -> Vec<K> {
        let mut ranked: Vec<&Candidate<K>> = peers.iter().filter(|p| p.interested).collect();
        if seeding {
            ranked.sort_by_key(|p| std::cmp::Reverse(p.upload_rate));
        } else {
            ranked.sort_by_key(|p| std::cmp::Reverse(p.download_rate));
        }
        let mut unchoked: Vec<K> = ranked
            .iter()
            .take(self.slots)
            .map(|p| p.key.clone())
            .collect();
        let rest: Vec<&Candidate<K>> = ranked.into_iter().skip(self.slots).collect();

        let still_there = |key: &K| rest.iter().any(|p| &p.key == key);
        let due = self.next_rotation.is_none_or(|at| now >= at);
        if due || !self.optimistic.as_ref().is_some_and(still_there) {
            self.optimistic = self.pick(now, &rest);
            self.next_rotation = Some(now + Self::OPTIMISTIC_ROTATION);
        }
        unchoked.extend(self.optimistic.clone());
        unchoked
    }

    /// A random peer among `rest`, new connections weighted three to one.
    fn pick(&mut self, now: Instant, rest: &[&Candidate<K>]) -> Option<K> {
        let weight = |p: &Candidate<K>| {
            if now.saturating_duration_since(p.connected_at) < Self::NEW_PEER {
                3
            } else {
                1
            }
        };
        let total: u64 = rest.iter().map(|p| weight(p)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.next_random() % total;
        for peer in rest {
            let w = weight(peer);
            if ticket < w {
                return Some(peer.key.clone());
            }
            ticket -= w;
        }
        None
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(
        key: u32,
        interested: bool,
        download_rate: u64,
        upload_rate: u64,
        at: Instant,
    ) -> Candidate<u32> {
        Candidate {
            key,
            interested,
            download_rate,
            upload_rate,
            connected_at: at,
        }
    }

    #[test]
    fn best_givers_get_the_regular_slots() {
        let t = Instant::now();
        let peers: Vec<_> = (0..10)
            .map(|i| peer(i, i != 9, u64::from(i) * 100, 0, t))
            .collect();
        let mut choker = Choker::new(4, 1);
        let unchoked = choker.run(t, false, &peers);
        // Peer 9 gives the most but is not interested: it gets no slot.
        assert_eq!(&unchoked[..4], [8, 7, 6, 5]);
        assert_eq!(unchoked.len(), 5, "plus one optimistic");
        let optimistic = *choker.optimistic().unwrap();
        assert!(
            optimistic < 5,
            "the optimistic slot goes to someone outside the top four"
        );
    }

    #[test]
    fn seeding_ranks_by_upload_rate() {
        let t = Instant::now();
        let peers: Vec<_> = (0..6)
            .map(|i| peer(i, true, 1000 - u64::from(i), u64::from(i) * 10, t))
            .collect();
        let unchoked = Choker::new(4, 1).run(t, true, &peers);
        assert_eq!(&unchoked[..4], [5, 4, 3, 2]);
    }

    #[test]
    fn optimistic_rotates_every_thirty_seconds_and_visits_everyone() {
        let t = Instant::now() - Duration::from_secs(3600);
        let peers: Vec<_> = (0..8)
            .map(|i| peer(i, true, if i < 4 { 1000 } else { 0 }, 0, t))
            .collect();
        let mut choker = Choker::new(4, 7);
        let mut seen = std::collections::BTreeSet::new();
        let mut last = None;
        let mut changes = 0;
        for step in 0..120 {
            let now = t + Duration::from_secs(step * 10);
            choker.run(now, false, &peers);
            let current = *choker.optimistic().unwrap();
            assert!(current >= 4, "never one of the regulars");
            if step % 3 != 0 {
                assert_eq!(Some(current), last, "kept between rotations");
            } else if last != Some(current) {
                changes += 1;
            }
            seen.insert(current);
            last = Some(current);
        }
        assert_eq!(seen.len(), 4, "every other peer got a turn");
        assert!(changes > 10);
    }

    #[test]
    fn optimistic_peer_leaving_is_replaced_at_once() {
        let t = Instant::now();
        let peers: Vec<_> = (0..6).map(|i| peer(i, true, 0, 0, t)).collect();
        let mut choker = Choker::new(4, 3);
        choker.run(t, false, &peers);
        let gone = *choker.optimistic().unwrap();
        let remaining: Vec<_> = peers.into_iter().filter(|p| p.key != gone).collect();
        let unchoked = choker.run(t + Duration::from_secs(1), false, &remaining);
        assert_eq!(unchoked.len(), 5);
        assert!(!unchoked.contains(&gone));
    }
}
