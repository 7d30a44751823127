//! SHA-1 throughput with the `sha1` crate (SHA-NI when the CPU has it), the yardstick for
//! `torrent-cli create`'s hashing rate in `cargo xtask bench metainfo`. Prints
//! `sha1 single-core: X MB/s` and `sha1 all-cores in memory: Y MB/s` (one thread per core, no I/O: what
//! the machine can hash right now, which is less than cores × single-core when other work shares it).

use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// Hashes whole 1 MiB pieces of `data`, as creation does, for about 0.7 s; returns MB/s.
fn rate(data: &[u8]) -> f64 {
    let started = Instant::now();
    let mut bytes = 0u64;
    while started.elapsed() < Duration::from_millis(700) {
        for piece in data.chunks(1 << 20) {
            std::hint::black_box(Sha1::digest(piece));
        }
        bytes += data.len() as u64;
    }
    bytes as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let single = (0..3).map(|_| rate(&data)).fold(0f64, f64::max);
    println!("sha1 single-core: {single:.1} MB/s");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = (0..3)
        .map(|_| {
            std::thread::scope(|scope| {
                let threads: Vec<_> = (0..cores).map(|_| scope.spawn(|| rate(&data))).collect();
                threads.into_iter().map(|t| t.join().unwrap()).sum::<f64>()
            })
        })
        .fold(0f64, f64::max);
    println!("sha1 all-cores in memory: {all:.1} MB/s");
}
