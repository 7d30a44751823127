//! Shoal against python3-libtorrent on loopback: downloading from it and seeding to it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::lt_peer;
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentState};

fn config() -> SessionConfig {
    common::loopback(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_download_from_libtorrent() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let port = common::free_port();
    let _seeder = lt_peer("seed", &torrent, source.path(), port, &[], &[]);

    let target = tempfile::tempdir().unwrap();
    let session = Session::new(config()).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent: std::fs::read(&torrent).unwrap(),
            save_path: target.path().into(),
            peers: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        })
        .unwrap();
    let mut stats = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(60),
        stats.wait_for(|s| s.state == TorrentState::Seeding),
    )
    .await
    .expect("download from libtorrent finished in time")
    .unwrap();
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    assert_eq!(handle.stats().borrow().hash_failures, 0);
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_libtorrent_downloads_from_shoal() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let session = Session::new(config()).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent: std::fs::read(&torrent).unwrap(),
            save_path: source.path().into(),
            peers: vec![],
        })
        .unwrap();
    let mut stats = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.state == TorrentState::Seeding),
    )
    .await
    .expect("Shoal checked its data")
    .unwrap();

    let target = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let leecher = lt_peer(
        "leech",
        &torrent,
        target.path(),
        port,
        &[session.local_addr()],
        &[],
    );
    let (_leecher, line) = leecher.next_line_within(Duration::from_secs(60)).await;
    assert_eq!(line, "DONE");
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    // Stats are published every second: wait for the snapshot that counts the upload.
    let mut stats = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(3),
        stats.wait_for(|s| s.uploaded >= 3_777_778),
    )
    .await
    .expect("the upload shows in the stats")
    .unwrap();
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_mixed_swarm_leechers_trade_with_each_other() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let bytes = std::fs::read(&torrent).unwrap();
    // The Shoal seeder has everything but uploads slowly, so the leechers must share what they get.
    let (seeder, seed) = common::start(
        SessionConfig {
            upload_limit: Some(512 * 1024),
            ..common::loopback(60)
        },
        bytes.clone(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&seed, Duration::from_secs(30)).await;
    // libtorrent holds the first half: a.bin cut after 28 of its 46 pieces, no b.bin.
    let half = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(half.path().join("payload")).unwrap();
    let a = std::fs::read(source.path().join("payload/a.bin")).unwrap();
    std::fs::write(half.path().join("payload/a.bin"), &a[..28 * 65_536]).unwrap();
    let lt_port = common::free_port();
    let _lt = lt_peer("partial", &torrent, half.path(), lt_port, &[], &[]);
    let lt_addr = SocketAddr::from(([127, 0, 0, 1], lt_port));

    let mut sessions = Vec::new();
    for seed in 0..3 {
        sessions.push(Session::new(common::loopback(61 + seed)).await.unwrap());
    }
    let targets: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut handles = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let mut peers = vec![seeder.local_addr(), lt_addr];
        peers.extend(
            sessions
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| s.local_addr()),
        );
        handles.push(
            session
                .add_torrent(AddTorrent {
                    torrent: bytes.clone(),
                    save_path: targets[i].path().into(),
                    peers,
                })
                .unwrap(),
        );
    }
    for handle in &handles {
        common::seeding(handle, Duration::from_secs(60)).await;
    }
    for target in &targets {
        common::same_payload(
            &source.path().join("payload"),
            &target.path().join("payload"),
        );
    }
    // Counters show in the next snapshot (one a second).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let uploaded: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().borrow().uploaded)
        .collect();
    let from_seeder = seed.stats().borrow().uploaded;
    println!("leechers uploaded {uploaded:?}; the Shoal seeder uploaded {from_seeder}");
    let total = 3_777_778u64;
    // Three copies came in; the slow seeder sent only part of them, so the leechers traded the rest.
    assert!(
        uploaded.iter().filter(|&&u| u > 0).count() >= 2,
        "{uploaded:?}"
    );
    assert!(uploaded.iter().sum::<u64>() >= total / 2, "{uploaded:?}");
    for session in sessions {
        session.shutdown().await;
    }
    seeder.shutdown().await;
}
