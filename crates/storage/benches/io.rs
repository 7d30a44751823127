//! Writing and reading 16 KiB blocks of a 256 MiB file: positional IO (`pwrite`/`pread`) against a memory
//! map (memmap2), to choose the storage path. Writes go into a fresh sparse file each time, as a download
//! does (each block written once; a map pays a page fault per page). Reads are of a file in the page
//! cache, as seeding is. Rerun this when the machine class changes.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FILE_LEN: u64 = 256 << 20;
const BLOCK: usize = 16 << 10;

fn io(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("blocks");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(FILE_LEN).unwrap();
    let block = vec![0x5au8; BLOCK];
    let blocks = (FILE_LEN / BLOCK as u64) as usize;

    let mut group = c.benchmark_group("storage_io");
    group
        .throughput(Throughput::Bytes(FILE_LEN))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let fresh = || {
        let path = dir.path().join("fresh");
        let _ = std::fs::remove_file(&path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(FILE_LEN).unwrap();
        file
    };
    group.bench_function("pwrite", |b| {
        b.iter_batched(
            fresh,
            |file| {
                for i in 0..blocks {
                    file.write_all_at(&block, (i * BLOCK) as u64).unwrap();
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("mmap_write", |b| {
        b.iter_batched(
            fresh,
            |file| {
                // SAFETY: the file is private to this benchmark and not resized while mapped.
                #[allow(unsafe_code)]
                let mut map = unsafe { memmap2::MmapMut::map_mut(&file).unwrap() };
                for chunk in map.chunks_mut(BLOCK) {
                    chunk.copy_from_slice(&block);
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    let mut buf = vec![0u8; BLOCK];
    group.bench_function("pread", |b| {
        b.iter(|| {
            for i in 0..blocks {
                file.read_exact_at(&mut buf, (i * BLOCK) as u64).unwrap();
                black_box(&buf);
            }
        })
    });
    group.bench_function("mmap_read", |b| {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        b.iter(|| {
            for chunk in map.chunks(BLOCK) {
                buf.copy_from_slice(chunk);
                black_box(&buf);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, io);
criterion_main!(benches);
