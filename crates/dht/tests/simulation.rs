//! The sans-IO core at scale: a deterministic simulated network (virtual time, 10-100 ms latency, 1 %
//! loss, no sockets). Every `get_peers` lookup for an announced info-hash must find the announcer.
//!
//! The test runs 2,000 nodes, which the debug profile handles in seconds; the 10,000-node network runs in
//! `examples/dht_bench.rs` (release), which prints the same figures.

mod sim;

use std::time::Duration;

use sim::{Network, SimConfig, announce_and_find};

fn run(n_nodes: usize, n_torrents: usize, seed: u64) {
    let mut net = Network::new(SimConfig {
        n_nodes,
        seed,
        ..SimConfig::default()
    });
    net.join_all(Duration::from_secs(60));
    let tables: Vec<usize> = net.nodes.iter().map(|n| n.routing_table().len()).collect();
    let figures = announce_and_find(&mut net, n_torrents, seed + 1);
    println!(
        "{n_nodes} nodes: {:.1} nodes per table (min {}); {}/{} lookups found the announcer; \
         queries median {} p99 {}; rounds median {} p99 {}; {} datagrams, {} lost",
        tables.iter().sum::<usize>() as f64 / n_nodes as f64,
        tables.iter().min().unwrap(),
        figures.found,
        figures.lookups,
        figures.queries_median,
        figures.queries_p99,
        figures.rounds_median,
        figures.rounds_p99,
        net.datagrams,
        net.lost,
    );
    assert_eq!(
        figures.found,
        figures.lookups,
        "lookups missed their announcer:\n{}",
        figures.misses.join("\n")
    );
    assert!(figures.queries_p99 <= 40, "{figures:?}");
    // Bounded memory: no node kept more queries or lookups than the caps allow.
    for node in &net.nodes {
        let stats = node.stats();
        assert!(stats.pending <= shoal_dht::MAX_PENDING);
        assert!(stats.nodes <= 160 * 8);
    }
}

#[test]
fn every_lookup_finds_the_announcer_among_2000_nodes() {
    run(2000, 60, 11);
}

#[test]
fn simulation_is_deterministic() {
    let figures = |seed| {
        let mut net = Network::new(SimConfig {
            n_nodes: 200,
            seed,
            ..SimConfig::default()
        });
        net.join_all(Duration::from_secs(10));
        let figures = announce_and_find(&mut net, 5, 3);
        (
            net.datagrams,
            net.lost,
            figures.queries_median,
            figures.rounds_p99,
        )
    };
    assert_eq!(figures(5), figures(5));
}
