//! Figures for `cargo xtask bench dht`: lookups per second on a simulated network of sans-IO nodes, and
//! the memory a routing table takes per 1,000 nodes it holds.
//!
//! `cargo run --release -p shoal-dht --example dht_bench -- [N_NODES] [N_LOOKUPS] [SEED]` (defaults
//! 10000, 200, 1); lookups that miss their announcer are listed.

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let n_nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let n_lookups: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);

    let started = Instant::now();
    let mut net = sim::Network::new(sim::SimConfig {
        n_nodes,
        seed,
        ..sim::SimConfig::default()
    });
    net.join_all(Duration::from_secs(60));
    let join_wall = started.elapsed();
    let figures = sim::announce_and_find(&mut net, n_lookups, seed.wrapping_add(6));

    let table_nodes: usize = net.nodes.iter().map(|n| n.routing_table().len()).sum();
    let table_bytes: usize = net
        .nodes
        .iter()
        .map(|n| n.routing_table().heap_bytes() + size_of::<shoal_dht::RoutingTable>())
        .sum();
    let bytes_per_1000 = table_bytes as f64 / table_nodes.max(1) as f64 * 1000.0;

    println!("dht simulation: {n_nodes} nodes, 10-100 ms latency, 1% loss");
    println!(
        "join: {:.2} s wall, {} datagrams, {:.1} nodes per routing table",
        join_wall.as_secs_f64(),
        net.datagrams,
        table_nodes as f64 / n_nodes as f64
    );
    println!(
        "get_peers: {}/{} found the announcer; queries median {} p99 {}; rounds median {} p99 {}",
        figures.found,
        figures.lookups,
        figures.queries_median,
        figures.queries_p99,
        figures.rounds_median,
        figures.rounds_p99
    );
    for miss in &figures.misses {
        println!("  miss: {miss}");
    }
    println!(
        "lookups per second: {:.0} (wall clock, simulator included)",
        figures.lookups as f64 / figures.wall.as_secs_f64()
    );
    println!(
        "routing table memory: {:.1} KiB per 1,000 nodes held ({} bytes per entry)",
        bytes_per_1000 / 1024.0,
        size_of::<shoal_dht::Entry>()
    );
}
