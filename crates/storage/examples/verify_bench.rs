//! Recheck throughput against the machine's SHA-1 limit: hashes a 2 GiB file in the page cache with
//! [`Storage::recheck_v1`] on every core, and compares with (cores × single-core SHA-1) measured in the
//! same run. `cargo xtask bench verify` runs it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use sha1::{Digest, Sha1};
use shoal_storage::{FileEntry, Layout, PieceCheck, Storage, StorageOptions};

const SIZE: u64 = 2 << 30;
const PIECE: u64 = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::var("VERIFY_BENCH_DIR").unwrap_or_else(|_| "target/verify-bench".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("payload.bin");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(SIZE) {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..SIZE / chunk.len() as u64 {
            for word in chunk.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            file.write_all(&chunk)?;
        }
        file.flush()?;
    }
    let cores = std::thread::available_parallelism()?.get();
    let layout = Layout::new(vec![FileEntry::new("payload.bin", SIZE)], PIECE)?;
    let storage = Storage::new(&dir, layout, StorageOptions::default())?;

    // Expected hashes (and a first pass that puts the file in the page cache).
    let pieces = storage.layout().piece_count();
    let mut hashes = vec![[0u8; 20]; pieces as usize];
    let mut buf = Vec::new();
    for (piece, hash) in hashes.iter_mut().enumerate() {
        *hash = storage.hash_piece_v1(piece as u32, &mut buf)?;
    }

    // Single-core SHA-1 on an in-memory buffer.
    let block = vec![0xa5u8; 64 << 20];
    let rounds = 8;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(Sha1::digest(&block));
    }
    let single = (block.len() * rounds) as f64 / start.elapsed().as_secs_f64() / 1e6;

    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let start = Instant::now();
        let verdicts = storage.recheck_v1(&hashes, None, cores, &|_| {})?;
        let rate = SIZE as f64 / start.elapsed().as_secs_f64() / 1e6;
        assert!(verdicts.iter().all(|v| *v == PieceCheck::Good));
        best = best.max(rate);
    }
    let limit = single * cores as f64;
    println!("verify single-core SHA-1: {single:.0} MB/s");
    println!("verify recheck of 2 GiB on {cores} cores: {best:.0} MB/s");
    println!(
        "verify ratio recheck/(cores x single-core): {:.2} (target >= 0.85)",
        best / limit
    );
    Ok(())
}
