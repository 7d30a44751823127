//! What encryption costs a connection.
//!
//! Group `mse`, functions:
//! - `rc4_256k`: RC4 over a 256 KiB buffer (the peer writer's largest write), in place: the per-byte
//!   cost of an RC4 connection, each way.
//! - `keypair`: a fresh key pair (160-bit exponent, 768-bit modulus).
//! - `shared_secret`: the other side's key raised to ours.
//! - `handshake`: both sides of a whole handshake over an in-memory stream, RC4 chosen.
//!
//! `cargo xtask bench mse` runs this and prints MB/s and microseconds.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_metainfo::InfoHash;
use shoal_mse::{KeyPair, Method, Rc4, initiate, req2, respond};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mse");
    let mut data = vec![0x5au8; 256 * 1024];
    let mut rc4 = Rc4::new(&[7; 20]);
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("rc4_256k", |b| b.iter(|| rc4.apply(black_box(&mut data))));
    group.throughput(Throughput::Elements(1));
    group.bench_function("keypair", |b| b.iter(|| KeyPair::generate().unwrap()));
    let ours = KeyPair::generate().unwrap();
    let theirs = *KeyPair::generate().unwrap().public_key();
    group.bench_function("shared_secret", |b| {
        b.iter(|| ours.shared_secret(black_box(&theirs)).unwrap())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let torrent = InfoHash([3; 20]);
    group.bench_function("handshake", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (mut a, mut z) = tokio::io::duplex(64 * 1024);
                let (x, y) = tokio::join!(
                    initiate(&mut a, torrent, &[Method::Rc4], &[0; 68]),
                    respond(
                        &mut z,
                        &[],
                        |w| (*w == req2(&torrent)).then_some(torrent),
                        &[Method::Rc4]
                    ),
                );
                (x.unwrap(), y.unwrap())
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
