//! The routing table: k-buckets over the id space, the one holding our own id split as it fills (BEP 5).
//!
//! Bucket `i` (for `i` below the last) holds nodes whose id shares exactly `i` leading bits with ours; the
//! last bucket holds every node sharing at least as many, so it is the one that contains our own id and the
//! only one that splits. Only nodes that answered one of our queries enter the table (HOSTILE 46): nodes
//! that merely query us are pinged first by the node core. Each bucket keeps up to k replacement nodes,
//! which take the place of nodes that go bad.
//!
//! Node states follow BEP 5: *good* if heard from within 15 minutes (every node in the table has answered
//! us at least once), *questionable* after 15 minutes of silence, *bad* after failing to answer
//! [`MAX_FAILURES`] queries in a row.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::id::{Distance, NodeId};
use crate::krpc::NodeInfo;

/// How long a node stays good after we last heard from it (BEP 5).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row after which a node is bad.
pub const MAX_FAILURES: u8 = 2;
/// How long a bucket may go unchanged before it is refreshed (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

/// The state of a node in the table (BEP 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Heard from within [`GOOD_FOR`].
    Good,
    /// Silent for longer than [`GOOD_FOR`]: ping before relying on it.
    Questionable,
    /// Failed [`MAX_FAILURES`] queries in a row: first to be replaced.
    Bad,
}

/// One node in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Id and address.
    pub info: NodeInfo,
    /// When we last heard from it (a reply, or a query after it had replied once).
    pub last_seen: Instant,
    /// Queries in a row it failed to answer.
    pub failures: u8,
}

impl Entry {
    /// The node's BEP 5 state at `now`.
    pub fn state(&self, now: Instant) -> NodeState {
        if self.failures >= MAX_FAILURES {
            NodeState::Bad
        } else if now.saturating_duration_since(self.last_seen) < GOOD_FOR {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::new(),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}

/// What [`RoutingTable::insert`] did with a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// The node was already in the table; its liveness was refreshed.
    Refreshed,
    /// The node was added to its bucket (maybe in place of a bad one).
    Added,
    /// The bucket is full of nodes that are not bad: the node waits among the replacements. The
    /// questionable nodes of that bucket are listed, to be pinged; one that fails makes room.
    Replacement(Vec<NodeInfo>),
    /// The node was refused: our own id, an id already known at another address, or (with IP
    /// restriction) an IP already in the table.
    Refused,
}

/// The routing table of a DHT node.
///
/// ```
/// use std::time::Instant;
/// use shoal_dht::{NodeId, NodeInfo, RoutingTable};
///
/// let now = Instant::now();
/// let mut table = RoutingTable::new(NodeId([0; 20]), 8, false, now);
/// for i in 1..=20u8 {
///     let node = NodeInfo { id: NodeId([i; 20]), addr: ([10, 0, 0, i], 6881).into() };
///     table.insert(now, node, false);
/// }
/// assert!(table.len() <= 20);
/// let closest = table.closest(&NodeId([1; 20]), 8);
/// assert_eq!(closest[0].id, NodeId([1; 20]));
/// ```
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own: NodeId,
    k: usize,
    restrict_ips: bool,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table for a node with id `own`, `k` nodes per bucket. With `restrict_ips`, at most one
    /// node per IP address enters it (HOSTILE 46; turn it off on loopback, where every node shares an IP).
    pub fn new(own: NodeId, k: usize, restrict_ips: bool, now: Instant) -> RoutingTable {
        RoutingTable {
            own,
            k: k.max(1),
            restrict_ips,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our own id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// How many nodes the buckets hold (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the buckets hold no node.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.nodes.is_empty())
    }

    /// How many buckets there are (one more after each split).
    pub fn n_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Every node in the buckets.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// Bytes of heap held by the table: buckets, nodes and replacements (for memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<Bucket>()
            + self
                .buckets
                .iter()
                .map(|b| (b.nodes.capacity() + b.replacements.capacity()) * size_of::<Entry>())
                .sum::<usize>()
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        let prefix = self.own.distance(id).leading_zeros() as usize;
        prefix.min(self.buckets.len() - 1)
    }

    /// The entry for `id`, if the table holds it.
    pub fn get(&self, id: &NodeId) -> Option<&Entry> {
        let bucket = &self.buckets[self.bucket_index(id)];
        bucket.nodes.iter().find(|e| e.info.id == *id)
    }

    /// Whether a node at `addr` is in the table (it answered us from there: the address is verified).
    pub fn contains_addr(&self, addr: &SocketAddr) -> bool {
        self.iter().any(|e| e.info.addr == *addr)
    }

    fn ip_taken(&self, ip: IpAddr, except: &NodeId) -> bool {
        self.iter()
            .any(|e| e.info.addr.ip() == ip && e.info.id != *except)
    }

    /// Whether `node`, which queried us, could enter the table if it answered a ping: its bucket has room,
    /// can split, or holds a bad node. Used to decide whether verifying it is worth a packet.
    pub fn would_accept(&self, now: Instant, node: &NodeInfo) -> bool {
        if node.id == self.own
            || self.get(&node.id).is_some()
            || (self.restrict_ips && self.ip_taken(node.addr.ip(), &node.id))
        {
            return false;
        }
        let index = self.bucket_index(&node.id);
        let bucket = &self.buckets[index];
        bucket.nodes.len() < self.k
            || (index == self.buckets.len() - 1 && self.buckets.len() < 160)
            || bucket.nodes.iter().any(|e| e.state(now) == NodeState::Bad)
    }

    /// Adds or refreshes a node that has just answered one of our queries. With `prefer_secure`, a node
    /// whose id complies with BEP 42 for its address may take the place of a non-compliant one in a full
    /// bucket.
    pub fn insert(&mut self, now: Instant, node: NodeInfo, prefer_secure: bool) -> Insert {
        if node.id == self.own {
            return Insert::Refused;
        }
        let index = self.bucket_index(&node.id);
        if let Some(entry) = self.buckets[index]
            .nodes
            .iter_mut()
            .find(|e| e.info.id == node.id)
        {
            if entry.info.addr != node.addr {
                // The same id from another address: a spoof or a moved node; keep what we verified.
                return Insert::Refused;
            }
            entry.last_seen = now;
            entry.failures = 0;
            self.buckets[index].last_changed = now;
            return Insert::Refreshed;
        }
        if self.restrict_ips && self.ip_taken(node.addr.ip(), &node.id) {
            return Insert::Refused;
        }
        let entry = Entry {
            info: node,
            last_seen: now,
            failures: 0,
        };
        loop {
            let index = self.bucket_index(&node.id);
            let n_buckets = self.buckets.len();
            let k = self.k;
            let bucket = &mut self.buckets[index];
            if bucket.nodes.len() < k {
                bucket.replacements.retain(|e| e.info.id != node.id);
                bucket.nodes.push(entry);
                bucket.last_changed = now;
                return Insert::Added;
            }
            if index == n_buckets - 1 && n_buckets < 160 {
                self.split(now);
                continue;
            }
            if let Some(bad) = bucket
                .nodes
                .iter()
                .position(|e| e.state(now) == NodeState::Bad)
            {
                bucket.nodes[bad] = entry;
                bucket.last_changed = now;
                return Insert::Added;
            }
            if prefer_secure && node.id.is_secure_for(node.addr.ip()) {
                // BEP 42 option: a compliant node takes the place of the least recently seen
                // non-compliant one.
                if let Some(weak) = bucket
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.info.id.is_secure_for(e.info.addr.ip()))
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(i, _)| i)
                {
                    bucket.nodes[weak] = entry;
                    bucket.last_changed = now;
                    return Insert::Added;
                }
            }
            let questionable = bucket
                .nodes
                .iter()
                .filter(|e| e.state(now) == NodeState::Questionable)
                .map(|e| e.info)
                .collect();
            bucket.replacements.retain(|e| e.info.id != node.id);
            if bucket.replacements.len() >= k {
                bucket.replacements.remove(0); // the oldest
            }
            bucket.replacements.push(entry);
            return Insert::Replacement(questionable);
        }
    }

    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len(); // the new last bucket holds prefixes >= depth
        let own = self.own;
        let old = self.buckets.last_mut().expect("at least one bucket");
        let deeper = |e: &Entry| own.distance(&e.info.id).leading_zeros() as usize >= depth;
        let mut new = Bucket::new(now);
        let (moved, kept): (Vec<Entry>, Vec<Entry>) = old.nodes.drain(..).partition(deeper);
        old.nodes = kept;
        new.nodes = moved;
        let (moved, kept): (Vec<Entry>, Vec<Entry>) = old.replacements.drain(..).partition(deeper);
        old.replacements = kept;
        new.replacements = moved;
        self.buckets.push(new);
    }

    /// Records that a node in the table sent us a query from its verified address (keeps it good).
    pub fn heard_from(&mut self, now: Instant, node: &NodeInfo) -> bool {
        let index = self.bucket_index(&node.id);
        match self.buckets[index]
            .nodes
            .iter_mut()
            .find(|e| e.info.id == node.id && e.info.addr == node.addr)
        {
            Some(entry) => {
                entry.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Records that the node at `addr` (with `id`, when known) failed to answer a query. A node that
    /// turns bad is replaced by the most recently seen replacement, if its bucket has one.
    pub fn failed(&mut self, now: Instant, addr: &SocketAddr, id: Option<&NodeId>) {
        let Some((index, position)) = self.find(addr, id) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        let entry = &mut bucket.nodes[position];
        entry.failures = entry.failures.saturating_add(1);
        if entry.state(now) == NodeState::Bad
            && let Some(replacement) = bucket.replacements.pop()
        {
            bucket.nodes[position] = replacement;
            bucket.last_changed = now;
        }
    }

    fn find(&self, addr: &SocketAddr, id: Option<&NodeId>) -> Option<(usize, usize)> {
        if let Some(id) = id {
            let index = self.bucket_index(id);
            let position = self.buckets[index]
                .nodes
                .iter()
                .position(|e| e.info.id == *id && e.info.addr == *addr)?;
            return Some((index, position));
        }
        self.buckets.iter().enumerate().find_map(|(index, b)| {
            b.nodes
                .iter()
                .position(|e| e.info.addr == *addr)
                .map(|position| (index, position))
        })
    }

    /// Up to `n` nodes that are not bad, closest to `target` first.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut all: Vec<(Distance, NodeInfo)> = self
            .iter()
            .filter(|e| e.failures < MAX_FAILURES)
            .map(|e| (e.info.id.distance(target), e.info))
            .collect();
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by_key(n - 1, |(d, _)| *d);
            all.truncate(n);
        }
        all.sort_unstable_by_key(|(d, _)| *d);
        all.truncate(n);
        all.into_iter().map(|(_, info)| info).collect()
    }

    /// The prefix lengths of buckets unchanged for [`REFRESH_AFTER`], to refresh with a lookup of a random
    /// id in each; their clocks restart so a refresh is not asked for again at once.
    pub fn take_stale_buckets(&mut self, now: Instant) -> Vec<u32> {
        let mut stale = Vec::new();
        for (index, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(bucket.last_changed) >= REFRESH_AFTER {
                bucket.last_changed = now;
                stale.push(index as u32);
            }
        }
        stale
    }

    /// Prefix lengths, from 0 to the longest one shared with a node in the table, at which the table holds
    /// fewer than k nodes. After bootstrap these ranges are refreshed: the lookup for our own id finds
    /// the nodes nearest us, but says little about the ranges in between, and a lookup passing through a
    /// node that lacks the target's range stops short of the closest nodes.
    pub(crate) fn sparse_prefixes(&self) -> Vec<u32> {
        let mut counts = [0usize; 161];
        for entry in self.iter() {
            counts[self.own.distance(&entry.info.id).leading_zeros() as usize] += 1;
        }
        let deepest = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        (0..deepest)
            .filter(|&p| counts[p] < self.k)
            .map(|p| p as u32)
            .collect()
    }

    /// Nodes that are questionable at `now`, to ping.
    pub fn questionable(&self, now: Instant) -> impl Iterator<Item = NodeInfo> + '_ {
        self.iter()
            .filter(move |e| e.state(now) == NodeState::Questionable)
            .map(|e| e.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(first: u8, n: u8) -> NodeInfo {
        let mut id = [n; 20];
        id[0] = first;
        NodeInfo {
            id: NodeId(id),
            addr: SocketAddr::from(([10, first, 0, n], 6881)),
        }
    }

    #[test]
    fn splits_only_the_bucket_holding_our_id() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 20]), 8, true, now);
        // Far nodes (first bit set): bucket 0. Sixteen of them: only 8 fit after the split.
        for n in 0..16 {
            table.insert(now, node(0x80, n), false);
        }
        // Near nodes (first bit clear).
        for n in 1..=8 {
            assert_eq!(table.insert(now, node(0x01, n), false), Insert::Added);
        }
        assert!(table.n_buckets() >= 2);
        let far = table.iter().filter(|e| e.info.id.0[0] == 0x80).count();
        assert_eq!(far, 8);
        assert_eq!(table.len(), 16);
        assert!(matches!(
            table.insert(now, node(0x80, 99), false),
            Insert::Replacement(q) if q.is_empty()
        ));
    }

    #[test]
    fn refuses_own_id_moved_ids_and_shared_ips() {
        let now = Instant::now();
        let own = NodeId([7; 20]);
        let mut table = RoutingTable::new(own, 8, true, now);
        let me = NodeInfo {
            id: own,
            addr: SocketAddr::from(([1, 1, 1, 1], 1)),
        };
        assert_eq!(table.insert(now, me, false), Insert::Refused);
        let a = node(0x80, 1);
        assert_eq!(table.insert(now, a, false), Insert::Added);
        let moved = NodeInfo {
            addr: SocketAddr::from(([9, 9, 9, 9], 1)),
            ..a
        };
        assert_eq!(table.insert(now, moved, false), Insert::Refused);
        let same_ip = NodeInfo {
            id: NodeId([0x81; 20]),
            addr: SocketAddr::new(a.addr.ip(), 2),
        };
        assert_eq!(table.insert(now, same_ip, false), Insert::Refused);
        assert_eq!(table.insert(now, a, false), Insert::Refreshed);
    }

    #[test]
    fn bad_nodes_are_replaced_by_pending_ones() {
        let start = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 20]), 2, true, start);
        // Two buckets after a split: fill the far one (k = 2).
        table.insert(start, node(0x01, 1), false);
        table.insert(start, node(0x80, 1), false);
        table.insert(start, node(0x80, 2), false);
        table.insert(start, node(0x02, 1), false);
        let waiting = node(0x80, 3);
        let later = start + GOOD_FOR + Duration::from_secs(1);
        match table.insert(later, waiting, false) {
            Insert::Replacement(questionable) => assert_eq!(questionable.len(), 2),
            other => panic!("{other:?}"),
        }
        let victim = node(0x80, 1);
        assert_eq!(
            table.get(&victim.id).unwrap().state(later),
            NodeState::Questionable
        );
        table.failed(later, &victim.addr, Some(&victim.id));
        assert!(
            table.get(&victim.id).is_some(),
            "one failure is not bad yet"
        );
        table.failed(later, &victim.addr, None);
        assert!(table.get(&victim.id).is_none());
        assert!(table.get(&waiting.id).is_some());
    }

    #[test]
    fn states_follow_bep5_timings() {
        let start = Instant::now();
        let mut entry = Entry {
            info: node(1, 1),
            last_seen: start,
            failures: 0,
        };
        assert_eq!(
            entry.state(start + GOOD_FOR - Duration::from_secs(1)),
            NodeState::Good
        );
        assert_eq!(entry.state(start + GOOD_FOR), NodeState::Questionable);
        entry.failures = MAX_FAILURES;
        assert_eq!(entry.state(start), NodeState::Bad);
    }

    #[test]
    fn stale_buckets_are_reported_once() {
        let start = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 20]), 8, true, start);
        table.insert(start, node(0x80, 1), false);
        assert!(table.take_stale_buckets(start).is_empty());
        let later = start + REFRESH_AFTER;
        assert_eq!(table.take_stale_buckets(later), vec![0]);
        assert!(table.take_stale_buckets(later).is_empty());
    }

    #[test]
    fn closest_sorts_by_distance() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId([0; 20]), 8, false, now);
        for n in 1..=40u8 {
            let info = NodeInfo {
                id: NodeId([n; 20]),
                addr: SocketAddr::from(([10, 0, 0, n], 1)),
            };
            table.insert(now, info, false);
        }
        let target = NodeId([3; 20]);
        let closest = table.closest(&target, 5);
        assert_eq!(closest.len(), 5);
        assert!(
            closest
                .windows(2)
                .all(|w| target.distance(&w[0].id) < target.distance(&w[1].id))
        );
    }
}
