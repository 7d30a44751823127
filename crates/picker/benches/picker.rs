//! Pick throughput for a large torrent: 100,000 pieces of 256 KiB (16 blocks each) and 200 peers, of
//! which 50 are seeds and 150 have a random 30 to 90 % of the pieces. Throughput is in blocks picked,
//! so criterion's "elem/s" is picks per second.
//!
//! - `pick_only`: peers take turns asking for 32 blocks until 1,500,000 blocks are requested (most of
//!   the torrent, stopping short of endgame).
//! - `pick_receive_verify`: the same turns, but every picked block is received at once and every
//!   completed piece verified, so the picker stays in its steady state; 1,000,000 blocks a run.
//! - `pick_only_sparse_peers`: no seeds, each of the 200 peers has a random 2 % of the pieces, so most
//!   picks miss in the availability buckets and fall back to intersecting bitfields; 1,000,000 blocks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shoal_picker::{BlockRef, Picker};

const PIECES: u32 = 100_000;
const PIECE_LEN: u64 = 256 * 1024;
const PEERS: u64 = 200;
const SEEDS: u64 = 50;
const BATCH: usize = 32;

/// SplitMix64, to make the bitfields without a `rand` dependency.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `seeds` seeds, and peers with a random `min_density` to `max_density` percent of the pieces.
fn swarm(seeds: u64, min_density: u64, max_density: u64) -> Picker<u64> {
    let mut picker = Picker::new(PIECES, PIECE_LEN, u64::from(PIECES) * PIECE_LEN, 1).unwrap();
    let mut state = 99;
    for peer in 0..PEERS {
        picker.add_peer(peer).unwrap();
        if peer < seeds {
            picker.peer_have_all(peer).unwrap();
        } else {
            let density = min_density + next(&mut state) % (max_density - min_density + 1);
            let mut bitfield = vec![0u8; PIECES.div_ceil(8) as usize];
            for piece in 0..PIECES as usize {
                if next(&mut state) % 100 < density {
                    bitfield[piece / 8] |= 0x80 >> (piece % 8);
                }
            }
            picker.peer_bitfield(peer, &bitfield).unwrap();
        }
        picker.peer_unchoked(peer).unwrap();
    }
    picker
}

fn pick_only(picker: &mut Picker<u64>, target: u64, now: Instant) -> u64 {
    let mut buf: Vec<BlockRef> = Vec::with_capacity(BATCH);
    let mut picked = 0;
    'turns: loop {
        for peer in 0..PEERS {
            buf.clear();
            picked += picker.pick_blocks_into(peer, BATCH, now, &mut buf).unwrap() as u64;
            black_box(&buf);
            if picked >= target {
                break 'turns;
            }
        }
    }
    picked
}

fn pick_receive_verify(picker: &mut Picker<u64>, target: u64, now: Instant) -> u64 {
    let mut buf: Vec<BlockRef> = Vec::with_capacity(BATCH);
    let mut picked = 0;
    'turns: loop {
        for peer in 0..PEERS {
            buf.clear();
            picked += picker.pick_blocks_into(peer, BATCH, now, &mut buf).unwrap() as u64;
            for &block in &buf {
                if picker.block_received(peer, block).unwrap().piece_complete {
                    picker.piece_verified(block.piece).unwrap();
                }
            }
            if picked >= target {
                break 'turns;
            }
        }
    }
    picked
}

fn bench(c: &mut Criterion) {
    let base = swarm(SEEDS, 30, 90);
    let now = Instant::now();
    let mut group = c.benchmark_group("picker_100k_pieces_200_peers");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let target = 1_500_000;
    // Check once that the loop really picks `target` blocks, so the throughput is honest.
    assert_eq!(pick_only(&mut base.clone(), target, now), target);
    group.throughput(Throughput::Elements(target));
    group.bench_function("pick_only", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |picker| pick_only(picker, target, now),
            BatchSize::LargeInput,
        );
    });

    let target = 1_000_000;
    assert_eq!(pick_receive_verify(&mut base.clone(), target, now), target);
    group.throughput(Throughput::Elements(target));
    group.bench_function("pick_receive_verify", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |picker| pick_receive_verify(picker, target, now),
            BatchSize::LargeInput,
        );
    });

    let sparse = swarm(0, 2, 2);
    let target = 1_000_000;
    assert_eq!(pick_only(&mut sparse.clone(), target, now), target);
    group.throughput(Throughput::Elements(target));
    group.bench_function("pick_only_sparse_peers", |b| {
        b.iter_batched_ref(
            || sparse.clone(),
            |picker| pick_only(picker, target, now),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
