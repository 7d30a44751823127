//! A full disk (a small tmpfs the test mounts; the test needs root, as CI has): downloading stalls with
//! a clear error, the torrent keeps seeding what it has, and it completes once space returns, with
//! nothing corrupted and no peer blamed.

mod common;

use common::Tmpfs;

use std::path::Path;
use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{TorrentHandle, TorrentState, TorrentStats};

/// Waits until `done` holds for the torrent's stats, or panics after `limit`.
async fn wait(
    handle: &TorrentHandle,
    limit: Duration,
    what: &str,
    done: impl Fn(&TorrentStats) -> bool,
) {
    let mut stats = handle.stats();
    let ok = tokio::time::timeout(limit, stats.wait_for(|s| done(s)))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(ok, "{what}: {:?}", {
        let s = handle.stats().borrow().clone();
        (s.state, s.error, s.pieces_have, s.pieces_total)
    });
}

fn payload(dir: &Path) -> Vec<u8> {
    let mut state = 0xdead_beef_u32;
    let data: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::write(dir.join("big.bin"), data).unwrap();
    TorrentBuilder::new(dir.join("big.bin"))
        .piece_length(65_536)
        .build()
        .unwrap()
        .bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stalls_the_download_until_space_returns() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let (seeder, seed) =
        common::start(common::loopback(91), torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;

    // 4 MiB of disk, 2 MiB of it taken: the 3 MiB download cannot fit.
    let disk = Tmpfs::mount("4m");
    let filler = disk.path.join("filler");
    std::fs::write(&filler, vec![1u8; 2 * 1024 * 1024]).unwrap();
    let save = disk.path.join("downloads");
    std::fs::create_dir(&save).unwrap();
    let (leecher, leech) = common::start(
        common::loopback(92),
        torrent.clone(),
        &save,
        vec![seeder.local_addr()],
    )
    .await;
    wait(&leech, Duration::from_secs(30), "stall", |s| {
        s.state == TorrentState::Stalled
    })
    .await;
    let stalled = leech.stats().borrow().clone();
    let error = stalled.error.clone().unwrap_or_default();
    assert!(error.contains("disk full"), "{error}");
    assert!(stalled.pieces_have > 0 && stalled.pieces_have < stalled.pieces_total);

    // Still seeding: a newcomer that knows only the stalled leecher gets pieces from it.
    let other = tempfile::tempdir().unwrap();
    let (third, newcomer) = common::start(
        common::loopback(93),
        torrent,
        other.path(),
        vec![leecher.local_addr()],
    )
    .await;
    wait(
        &newcomer,
        Duration::from_secs(30),
        "pieces from the stalled peer",
        |s| s.pieces_have > 0,
    )
    .await;

    // Space returns: the download goes on by itself and completes, uncorrupted.
    std::fs::remove_file(&filler).unwrap();
    let done = common::seeding(&leech, Duration::from_secs(60)).await;
    assert_eq!(done.hash_failures, 0);
    assert!(done.error.is_none());
    assert!(
        std::fs::read(source.path().join("big.bin")).unwrap()
            == std::fs::read(save.join("big.bin")).unwrap()
    );
    // The seeder was not blamed for the lost blocks: it is still connected.
    assert!(!done.peers.is_empty());
    third.shutdown().await;
    leecher.shutdown().await;
    seeder.shutdown().await;
}
