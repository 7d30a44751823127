//! Peers found through a real tracker: opentracker on loopback, a Shoal seeder and a Shoal leecher that
//! know nothing of each other but the torrent's announce URL.

mod common;

use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{AddTorrent, Session, TorrentState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_peers_meet_through_opentracker() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("release.iso");
    std::fs::write(
        &file,
        (0..600_000u32)
            .map(|i| (i.wrapping_mul(97) >> 3) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    // The hash does not depend on the tracker URL (it is outside the info dictionary): build twice.
    let hash = TorrentBuilder::new(&file)
        .build()
        .unwrap()
        .info_hashes
        .v1
        .unwrap();
    let tracker = common::Opentracker::start(hash).await;
    let torrent = TorrentBuilder::new(&file)
        .tracker_tier([tracker.url()])
        .build()
        .unwrap()
        .bytes;

    let (seeder, seed) =
        common::start(common::loopback(5), torrent.clone(), source.path(), vec![]).await;
    let mut seed_stats = seed.stats();
    // The seeder's announce is accepted before the leecher asks.
    tokio::time::timeout(
        Duration::from_secs(20),
        seed_stats.wait_for(|s| s.trackers.iter().any(|t| t.last.is_ok())),
    )
    .await
    .expect("the seeder announced")
    .unwrap();

    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(6)).await.unwrap();
    let leech = leecher
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers: vec![],
        })
        .unwrap();
    let mut stats = leech.stats();
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        stats.wait_for(|s| s.state == TorrentState::Seeding),
    )
    .await
    .expect("found the seeder through the tracker and completed")
    .unwrap()
    .clone();
    assert_eq!(done.trackers.len(), 1);
    assert_eq!(
        done.trackers[0].last,
        Ok(1),
        "the tracker returned the seeder"
    );
    assert!(
        std::fs::read(target.path().join("release.iso")).unwrap() == std::fs::read(&file).unwrap()
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}
