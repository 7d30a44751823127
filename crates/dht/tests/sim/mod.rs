//! A deterministic simulated network of sans-IO DHT nodes: one process, virtual time, random latency and
//! loss, no sockets. Shared by `tests/simulation.rs` and `examples/dht_bench.rs` (through `#[path]`).
#![allow(dead_code)] // each user needs a different part

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use shoal_dht::{Config, Dht, Event, LookupId, LookupResult, Rng};
use shoal_metainfo::InfoHash;

/// Shape of the simulated network.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub n_nodes: usize,
    pub seed: u64,
    /// One-way latency, uniform in `min..max`.
    pub latency: (Duration, Duration),
    /// Datagrams lost, per thousand.
    pub loss_per_mille: u64,
    /// Time between two nodes joining.
    pub join_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            n_nodes: 1000,
            seed: 1,
            latency: (Duration::from_millis(10), Duration::from_millis(100)),
            loss_per_mille: 10,
            join_interval: Duration::from_millis(10),
        }
    }
}

struct Delivery {
    to: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

pub struct Network {
    pub config: SimConfig,
    pub nodes: Vec<Dht>,
    pub addrs: Vec<SocketAddr>,
    by_addr: HashMap<SocketAddr, usize>,
    deliveries: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    payloads: HashMap<u64, Delivery>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    scheduled: Vec<Option<Instant>>,
    pub now: Instant,
    pub start: Instant,
    rng: Rng,
    seq: u64,
    /// Events not yet taken, by node.
    pub events: Vec<(usize, Event)>,
    pub datagrams: u64,
    pub lost: u64,
    /// Prints every datagram to or from this node (debugging).
    pub trace: Option<usize>,
    /// Datagrams sent to addresses no node has.
    pub outside: u64,
}

impl Network {
    /// Builds the nodes (not joined yet); each gets a distinct random public IPv4 address.
    pub fn new(config: SimConfig) -> Network {
        let mut rng = Rng::new(config.seed);
        let start = Instant::now();
        let mut taken = HashSet::new();
        let mut addrs = Vec::with_capacity(config.n_nodes);
        while addrs.len() < config.n_nodes {
            let ip = Ipv4Addr::from(rng.next_u64() as u32);
            if ip.is_private()
                || ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || ip.is_broadcast()
                || !taken.insert(ip)
            {
                continue;
            }
            addrs.push(SocketAddr::new(ip.into(), 6881));
        }
        let mut nodes = Vec::with_capacity(config.n_nodes);
        for (i, _) in addrs.iter().enumerate() {
            let dht_config = Config {
                seed: config.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
                ..Config::default()
            };
            nodes.push(Dht::new(dht_config, start));
        }
        let by_addr = addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        Network {
            scheduled: vec![None; config.n_nodes],
            config,
            nodes,
            addrs,
            by_addr,
            deliveries: BinaryHeap::new(),
            payloads: HashMap::new(),
            timers: BinaryHeap::new(),
            now: start,
            start,
            rng,
            seq: 0,
            events: Vec::new(),
            datagrams: 0,
            lost: 0,
            trace: None,
            outside: 0,
        }
    }

    /// Replaces node `i` (before it joins) with one built from `config`.
    pub fn reconfigure(&mut self, i: usize, config: Config) {
        self.nodes[i] = Dht::new(config, self.now);
    }

    /// Drains node `i`'s outputs into the network and reschedules its timer.
    fn flush(&mut self, i: usize) {
        while let Some(transmit) = self.nodes[i].poll_transmit() {
            self.datagrams += 1;
            if self.trace.is_some()
                && (self.trace == Some(i) || self.by_addr.get(&transmit.to) == self.trace.as_ref())
            {
                let to = self.by_addr.get(&transmit.to);
                let message = shoal_dht::Message::decode(&transmit.bytes);
                println!("{:?} {i} -> {to:?}: {message:?}", self.now - self.start);
            }
            if self.rng.below(1000) < self.config.loss_per_mille {
                self.lost += 1;
                continue;
            }
            let Some(&to) = self.by_addr.get(&transmit.to) else {
                self.outside += 1;
                continue;
            };
            let (min, max) = self.config.latency;
            let spread = (max - min).as_micros() as u64;
            let at = self.now + min + Duration::from_micros(self.rng.below(spread.max(1)));
            self.seq += 1;
            self.payloads.insert(
                self.seq,
                Delivery {
                    to,
                    from: self.addrs[i],
                    bytes: transmit.bytes,
                },
            );
            self.deliveries.push(Reverse((at, self.seq, to)));
        }
        while let Some(event) = self.nodes[i].poll_event() {
            self.events.push((i, event));
        }
        let wake = self.nodes[i].poll_timeout();
        if wake != self.scheduled[i] {
            self.scheduled[i] = wake;
            if let Some(wake) = wake {
                self.timers.push(Reverse((wake, i)));
            }
        }
    }

    /// Runs node `i`'s part of a call on it, then flushes.
    pub fn with_node<T>(&mut self, i: usize, f: impl FnOnce(&mut Dht, Instant) -> T) -> T {
        let out = f(&mut self.nodes[i], self.now);
        self.flush(i);
        out
    }

    /// Processes the next delivery or timer; `false` when nothing is left before `until`.
    fn step(&mut self, until: Instant) -> bool {
        let next_delivery = self.deliveries.peek().map(|Reverse((t, _, _))| *t);
        let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
        match (next_delivery, next_timer) {
            (Some(d), t) if d <= until && t.is_none_or(|t| d <= t) => {
                let Reverse((at, seq, to)) = self.deliveries.pop().unwrap();
                self.now = self.now.max(at);
                let delivery = self.payloads.remove(&seq).unwrap();
                debug_assert_eq!(delivery.to, to);
                self.nodes[to].handle_datagram(self.now, delivery.from, &delivery.bytes);
                self.flush(to);
                true
            }
            (_, Some(t)) if t <= until => {
                let Reverse((at, i)) = self.timers.pop().unwrap();
                if self.scheduled[i] == Some(at) {
                    self.scheduled[i] = None;
                    self.now = self.now.max(at);
                    self.nodes[i].handle_timeout(self.now);
                    self.flush(i);
                }
                true
            }
            _ => false,
        }
    }

    /// Runs the network until `until` (virtual time).
    pub fn run_until(&mut self, until: Instant) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds for the events so far, or `limit` of virtual time passes.
    pub fn run_while(
        &mut self,
        limit: Duration,
        mut pending: impl FnMut(&[(usize, Event)]) -> bool,
    ) {
        let until = self.now + limit;
        while pending(&self.events) && self.step(until) {}
    }

    /// Joins every node: node 0 alone, then each next one bootstraps from a random node already in,
    /// one every `join_interval`; then lets the network settle for `settle`.
    pub fn join_all(&mut self, settle: Duration) {
        for i in 0..self.nodes.len() {
            let target = self.now + self.config.join_interval;
            self.run_until(target);
            if i > 0 {
                let via = self.addrs[self.rng.below(i as u64) as usize];
                let mut config = Config {
                    seed: self
                        .config
                        .seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add(i as u64),
                    bootstrap: vec![via],
                    ..Config::default()
                };
                config.node_id = Some(self.nodes[i].id());
                self.nodes[i] = Dht::new(config, self.now);
                self.with_node(i, |dht, now| dht.bootstrap(now));
            }
        }
        let until = self.now + settle;
        self.run_until(until);
        self.events.clear();
    }

    /// Runs a lookup started by `start` on node `i` to its end; returns its result and the peers found.
    pub fn lookup(
        &mut self,
        i: usize,
        start: impl FnOnce(&mut Dht, Instant) -> LookupId,
    ) -> (LookupResult, Vec<SocketAddr>) {
        let id = self.with_node(i, start);
        let mut peers = Vec::new();
        let limit = self.now + Duration::from_secs(120);
        loop {
            let mut done = None;
            self.events.retain(|(node, event)| {
                if *node != i {
                    return false;
                }
                match event {
                    Event::Peers {
                        lookup,
                        peers: found,
                        ..
                    } if *lookup == id => {
                        peers.extend(found);
                        false
                    }
                    Event::LookupDone(result) if result.id == id => {
                        done = Some(result.clone());
                        false
                    }
                    _ => true,
                }
            });
            if let Some(result) = done {
                return (result, peers);
            }
            assert!(self.step(limit), "lookup {id:?} on node {i} did not finish");
        }
    }

    /// Runs an announce for `info_hash` from node `i` to its end.
    pub fn announce(&mut self, i: usize, info_hash: InfoHash, port: u16) -> LookupResult {
        self.lookup(i, |dht, now| dht.announce(now, info_hash, Some(port)))
            .0
    }
}

/// The value at quantile `q` (0..=1) of sorted `values`.
pub fn quantile(values: &mut [u32], q: f64) -> u32 {
    values.sort_unstable();
    if values.is_empty() {
        return 0;
    }
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index]
}

/// Figures from a run of announces then lookups.
#[derive(Debug, Clone)]
pub struct LookupFigures {
    pub lookups: usize,
    pub found: usize,
    pub queries_median: u32,
    pub queries_p99: u32,
    pub rounds_median: u32,
    pub rounds_p99: u32,
    pub wall: Duration,
    /// For each lookup that missed: where the announce and the lookup ended, as ranks of true closeness.
    pub misses: Vec<String>,
}

/// The rank of each node of `nodes` among all nodes of `net` by distance to `target` (0 = closest).
fn ranks(net: &Network, target: &shoal_dht::NodeId, nodes: &[shoal_dht::NodeInfo]) -> Vec<usize> {
    let mut all: Vec<_> = net.nodes.iter().map(|n| n.id().distance(target)).collect();
    all.sort_unstable();
    nodes
        .iter()
        .map(|n| all.partition_point(|d| *d < n.id.distance(target)))
        .collect()
}

/// Announces `n_torrents` random info-hashes from random nodes, then looks each up from another random
/// node; the announcer's address must be among the peers found.
pub fn announce_and_find(net: &mut Network, n_torrents: usize, seed: u64) -> LookupFigures {
    let mut rng = Rng::new(seed);
    let n = net.nodes.len() as u64;
    let mut torrents = Vec::new();
    for t in 0..n_torrents {
        let mut hash = [0; 20];
        rng.fill(&mut hash);
        let announcer = rng.below(n) as usize;
        let port = 10_000 + t as u16;
        let result = net.announce(announcer, InfoHash(hash), port);
        torrents.push((
            InfoHash(hash),
            SocketAddr::new(net.addrs[announcer].ip(), port),
            result,
        ));
    }
    let started = std::time::Instant::now();
    let (mut queries, mut rounds) = (Vec::new(), Vec::new());
    let mut found = 0;
    let mut misses = Vec::new();
    for (info_hash, announcer, announced) in &torrents {
        let asker = rng.below(n) as usize;
        let (result, peers) = net.lookup(asker, |dht, now| dht.get_peers(now, *info_hash));
        queries.push(result.stats.queries);
        rounds.push(result.stats.rounds);
        if peers.contains(announcer) {
            found += 1;
        } else {
            let target = shoal_dht::NodeId(info_hash.0);
            misses.push(format!(
                "announce reached ranks {:?} ({:?}); lookup from node {asker} ended at ranks {:?} ({:?})",
                ranks(net, &target, &announced.closest),
                announced.stats,
                ranks(net, &target, &result.closest),
                result.stats
            ));
        }
    }
    LookupFigures {
        lookups: torrents.len(),
        found,
        queries_median: quantile(&mut queries, 0.5),
        queries_p99: quantile(&mut queries, 0.99),
        rounds_median: quantile(&mut rounds, 0.5),
        rounds_p99: quantile(&mut rounds, 0.99),
        wall: started.elapsed(),
        misses,
    }
}
