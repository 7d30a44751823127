//! Sequential mode: with it on, a download's pieces come in order (a media player can start on the
//! first ones), while without it they come rarest first, in no particular order.

mod common;

use std::time::Duration;

use common::fake_peer::Payload;
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentStats};

/// 4 MiB in 64 KiB pieces, served at 512 KiB/s: about 8 s, so the once-a-second stats see it
/// half-done several times.
const LEN: u32 = 4 << 20;
const PIECE_LEN: u32 = 64 * 1024;
const UPLOAD_LIMIT: u64 = 512 * 1024;

/// Downloads the payload from a rate-limited seeder, sequential mode `sequential`; returns, for each
/// stats snapshot taken while the download was between a tenth and nine tenths done, how many
/// verified pieces lie past the first missing one (0 when what is in is exactly a prefix).
async fn out_of_order_counts(salt: u64, sequential: bool) -> Vec<usize> {
    let payload = Payload::new(LEN, PIECE_LEN, salt);
    let (seeder, _seed) = payload
        .seed(SessionConfig {
            upload_limit: Some(UPLOAD_LIMIT),
            ..common::loopback(salt)
        })
        .await;
    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(salt + 1)).await.unwrap();
    let handle = leecher
        .add_torrent(AddTorrent {
            torrent: payload.torrent.clone(),
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    handle.set_sequential(sequential).await;
    let mut stats = handle.stats();
    let mut counts = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            stats.changed().await.unwrap();
            let now: TorrentStats = stats.borrow_and_update().clone();
            if now.is_complete() {
                return now;
            }
            let progress = now.progress();
            if (0.1..0.9).contains(&progress) {
                // (The first snapshots, from the data check, come before the mode is applied.)
                assert_eq!(now.sequential, sequential);
                let first_missing = now.have.iter().position(|h| !h).unwrap();
                counts.push(now.have[first_missing..].iter().filter(|h| **h).count());
            }
        }
    })
    .await
    .expect("the download completes");
    assert_eq!(done.pieces_have, payload.n_pieces);
    assert_eq!(
        std::fs::read(target.path().join("data.bin")).unwrap(),
        payload.data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_mode_downloads_in_order() {
    let sequential = out_of_order_counts(181, true).await;
    let rarest_first = out_of_order_counts(183, false).await;
    println!("out of order, sequential: {sequential:?}; rarest first: {rarest_first:?}");
    assert!(sequential.len() >= 3, "{sequential:?}");
    // A few pieces may finish out of order: blocks of the next pieces are requested while the
    // first missing one still waits for its last block.
    assert!(sequential.iter().all(|&n| n <= 4), "{sequential:?}");
    // The control: without sequential mode most of what is in lies past a gap.
    assert!(rarest_first.iter().any(|&n| n > 8), "{rarest_first:?}");
}

/// Set while a magnet link still fetches its metadata, sequential mode carries over to the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_mode_set_during_the_metadata_stage_carries_over() {
    let payload = Payload::new(1 << 20, PIECE_LEN, 185);
    let (seeder, _seed) = payload.seed(common::loopback(185)).await;
    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(186)).await.unwrap();
    let magnet =
        shoal_metainfo::Magnet::parse(&format!("magnet:?xt=urn:btih:{}", payload.info_hash))
            .unwrap();
    let handle = leecher
        .add_magnet(shoal_session::AddMagnet {
            magnet,
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    handle.set_sequential(true).await;
    let done = common::seeding(&handle, Duration::from_secs(30)).await;
    assert!(done.sequential, "sequential after the handover");
    assert_eq!(
        std::fs::read(target.path().join("data.bin")).unwrap(),
        payload.data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}
