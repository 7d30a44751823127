//! Shoal to Shoal on loopback: a seeder and leechers in one process, real TCP sockets.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{AddTorrent, Encryption, Session, SessionConfig};

/// Writes a multi-file payload (odd sizes, an empty file) and returns its torrent.
fn payload(dir: &Path) -> Vec<u8> {
    let content = dir.join("album");
    std::fs::create_dir_all(content.join("disc 2")).unwrap();
    let mut state = 0x1234_5678_u32;
    let mut bytes = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    };
    std::fs::write(content.join("01.flac"), bytes(1_000_003)).unwrap();
    std::fs::write(content.join("disc 2/02.flac"), bytes(333_333)).unwrap();
    std::fs::write(content.join("empty.txt"), b"").unwrap();
    std::fs::write(content.join("notes.txt"), bytes(77)).unwrap();
    TorrentBuilder::new(&content)
        .piece_length(32_768)
        .build()
        .unwrap()
        .bytes
}

fn same_tree(a: &Path, b: &Path) {
    for name in ["01.flac", "disc 2/02.flac", "empty.txt", "notes.txt"] {
        let left = std::fs::read(a.join(name)).unwrap();
        let right = std::fs::read(b.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left == right, "{name} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leecher_downloads_from_seeder_and_files_match() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let (seeder, seed) =
        common::start(common::loopback(1), torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;

    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(2)).await.unwrap();
    let leech = leecher
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    common::seeding(&leech, Duration::from_secs(30)).await;
    same_tree(&source.path().join("album"), &target.path().join("album"));

    let stats = leech.stats().borrow().clone();
    assert_eq!(stats.hash_failures, 0);
    assert_eq!(stats.bytes_have, stats.bytes_total);
    assert!(stats.downloaded >= stats.bytes_total);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_trade_pieces_with_each_other() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let (seeder, seed) =
        common::start(common::loopback(10), torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;

    let mut leechers = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let session = Session::new(common::loopback(20 + i)).await.unwrap();
        leechers.push((dir, session));
    }
    let addrs: Vec<SocketAddr> = leechers.iter().map(|(_, s)| s.local_addr()).collect();
    let mut handles = Vec::new();
    for (i, (dir, session)) in leechers.iter().enumerate() {
        // Every leecher knows the seeder and the leechers before it.
        let mut peers = vec![seeder.local_addr()];
        peers.extend(&addrs[..i]);
        handles.push(
            session
                .add_torrent(AddTorrent {
                    torrent: torrent.clone(),
                    save_path: dir.path().into(),
                    peers,
                })
                .unwrap(),
        );
    }
    for handle in &handles {
        common::seeding(handle, Duration::from_secs(60)).await;
    }
    for (dir, _) in &leechers {
        same_tree(&source.path().join("album"), &dir.path().join("album"));
    }
    // Upload counters take what the writers wrote once a second, so the last blocks show a tick later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let uploaded_by_leechers = loop {
        let uploaded: u64 = handles.iter().map(|h| h.stats().borrow().uploaded).sum();
        if uploaded > 0 || tokio::time::Instant::now() >= deadline {
            break uploaded;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        uploaded_by_leechers > 0,
        "the leechers uploaded to each other"
    );
    for (_, session) in leechers {
        session.shutdown().await;
    }
    seeder.shutdown().await;
}

/// Rate limits hold: a transfer under a limit cannot be faster than the limit allows (plus the
/// initial burst). Only a lower bound on time is asserted, never a speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_and_upload_limits_hold() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path()); // 1,333,413 bytes
    let limited = |seed, download_limit, upload_limit| SessionConfig {
        download_limit,
        upload_limit,
        ..common::loopback(seed)
    };
    for (name, seeder_config, leecher_config) in [
        (
            "upload",
            limited(30, None, Some(400_000)),
            limited(31, None, None),
        ),
        (
            "download",
            limited(32, None, None),
            limited(33, Some(400_000), None),
        ),
    ] {
        let seeder = Session::new(seeder_config).await.unwrap();
        let seed = seeder
            .add_torrent(AddTorrent {
                torrent: torrent.clone(),
                save_path: source.path().into(),
                peers: vec![],
            })
            .unwrap();
        common::seeding(&seed, Duration::from_secs(10)).await;
        let target = tempfile::tempdir().unwrap();
        let leecher = Session::new(leecher_config).await.unwrap();
        let started = std::time::Instant::now();
        let leech = leecher
            .add_torrent(AddTorrent {
                torrent: torrent.clone(),
                save_path: target.path().into(),
                peers: vec![seeder.local_addr()],
            })
            .unwrap();
        common::seeding(&leech, Duration::from_secs(30)).await;
        // 1.33 MB at 400 kB/s with a 100 kB burst: at least 3 s.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_secs(3),
            "{name} limit ignored: done in {elapsed:?}"
        );
        same_tree(&source.path().join("album"), &target.path().join("album"));
        leecher.shutdown().await;
        seeder.shutdown().await;
    }
}

/// PEX (BEP 11): a leecher that knows only another leecher learns the seeder's address from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_learn_addresses_through_pex() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let (seeder, seed) =
        common::start(common::loopback(40), torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, _leech_a) = common::start(
        common::loopback(41),
        torrent.clone(),
        dir_a.path(),
        vec![seeder.local_addr()],
    )
    .await;
    let b = Session::new(common::loopback(42)).await.unwrap();
    let leech_b = b
        .add_torrent(AddTorrent {
            torrent,
            save_path: dir_b.path().into(),
            peers: vec![a.local_addr()],
        })
        .unwrap();
    let seeder_addr = seeder.local_addr();
    let mut stats = leech_b.stats();
    // The first PEX message goes out about five seconds after connecting.
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.peers.iter().any(|p| p.addr == seeder_addr)),
    )
    .await
    .expect("B learned the seeder through A's PEX message and connected to it")
    .unwrap();
    for session in [b, a, seeder] {
        session.shutdown().await;
    }
}

/// Three slow seeders: blocks are requested from one peer at a time, so little arrives twice (endgame
/// duplicates only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn little_is_downloaded_twice_from_slow_seeders() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let mut seeders = Vec::new();
    for i in 0..3 {
        let config = SessionConfig {
            upload_limit: Some(200_000),
            ..common::loopback(50 + i)
        };
        let session = Session::new(config).await.unwrap();
        let handle = session
            .add_torrent(AddTorrent {
                torrent: torrent.clone(),
                save_path: source.path().into(),
                peers: vec![],
            })
            .unwrap();
        common::seeding(&handle, Duration::from_secs(10)).await;
        seeders.push(session);
    }
    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(60)).await.unwrap();
    let peers = seeders.iter().map(Session::local_addr).collect();
    let leech = leecher
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers,
        })
        .unwrap();
    common::seeding(&leech, Duration::from_secs(60)).await;
    let mut stats = leech.stats();
    let done = stats
        .wait_for(|s| s.downloaded >= s.bytes_total)
        .await
        .unwrap()
        .clone();
    assert!(
        done.downloaded <= done.bytes_total + done.bytes_total / 20,
        "{} for {}",
        done.downloaded,
        done.bytes_total
    );
    leecher.shutdown().await;
    for seeder in seeders {
        seeder.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_files_are_not_downloaded_until_wanted_again() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let (seeder, seed) =
        common::start(common::loopback(31), torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;

    let target = tempfile::tempdir().unwrap();
    let (leecher, leech) =
        common::start(common::loopback(32), torrent, target.path(), vec![]).await;
    // Files in torrent order: 01.flac, disc 2/02.flac, empty.txt, notes.txt. Skip the big one.
    use shoal_session::Priority::{Normal, Skip};
    leech
        .set_file_priorities(vec![Skip, Normal, Normal, Normal])
        .await;
    leech.add_peers(vec![seeder.local_addr()]).await;
    let done = common::seeding(&leech, Duration::from_secs(20)).await;
    assert!(done.is_complete());
    assert_eq!(done.pieces_missing, 0);
    // 01.flac fills pieces 0..=30; only its last piece is shared with a wanted file.
    assert!(done.pieces_have < done.pieces_total / 2, "{done:?}");
    let album = |dir: &Path, name: &str| std::fs::read(dir.join("album").join(name));
    for name in ["disc 2/02.flac", "notes.txt"] {
        assert!(album(source.path(), name).unwrap() == album(target.path(), name).unwrap());
    }
    assert!(
        album(source.path(), "01.flac").unwrap()
            != album(target.path(), "01.flac").unwrap_or_default()
    );

    // Wanted again: the torrent downloads the rest and completes.
    leech.set_file_priorities(vec![Normal; 4]).await;
    let mut stats = leech.stats();
    let complete = tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.pieces_have == s.pieces_total),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(complete, "{:?}", leech.stats().borrow().pieces_have);
    same_tree(&source.path().join("album"), &target.path().join("album"));
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_wide_connection_limit_holds_and_the_download_completes() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let mut seeders = Vec::new();
    for seed in 0..4 {
        let (session, handle) = common::start(
            common::loopback(40 + seed),
            torrent.clone(),
            source.path(),
            vec![],
        )
        .await;
        common::seeding(&handle, Duration::from_secs(10)).await;
        seeders.push(session);
    }
    let target = tempfile::tempdir().unwrap();
    let mut config = common::loopback(49);
    config.limits.max_connections = 2;
    let addrs: Vec<SocketAddr> = seeders.iter().map(Session::local_addr).collect();
    let (leecher, leech) = common::start(config, torrent, target.path(), addrs).await;
    let mut stats = leech.stats();
    let mut most = 0;
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (peers, complete) = {
                let now = stats.borrow_and_update();
                (now.peers.len(), now.is_complete())
            };
            most = most.max(peers);
            if complete {
                return;
            }
            stats.changed().await.unwrap();
        }
    })
    .await;
    assert!(done.is_ok(), "not complete");
    assert!((1..=2).contains(&most), "{most} peers at once");
    same_tree(&source.path().join("album"), &target.path().join("album"));
    leecher.shutdown().await;
    for seeder in seeders {
        seeder.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_connect_over_ipv6() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let config = SessionConfig {
        listen_v6: Some(std::net::Ipv6Addr::LOCALHOST),
        ..common::loopback(51)
    };
    let (seeder, seed) = common::start(config, torrent.clone(), source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(10)).await;
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, seeder.local_addr().port()));

    let target = tempfile::tempdir().unwrap();
    let (leecher, leech) = common::start(
        SessionConfig {
            listen: SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
            ..common::loopback(52)
        },
        torrent,
        target.path(),
        vec![v6],
    )
    .await;
    let done = common::seeding(&leech, Duration::from_secs(20)).await;
    assert!(!done.peers.is_empty());
    assert!(done.peers.iter().all(|p| p.addr == v6), "{:?}", done.peers);
    same_tree(&source.path().join("album"), &target.path().join("album"));
    // The seeder saw the leecher come in over IPv6.
    let mut stats = seed.stats();
    let incoming = tokio::time::timeout(
        Duration::from_secs(5),
        stats.wait_for(|s| !s.peers.is_empty() && s.peers.iter().all(|p| p.addr.is_ipv6())),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(incoming, "{:?}", seed.stats().borrow().peers);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn a_dht_that_cannot_start_leaves_the_session_running() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = SessionConfig {
        dht: Some(shoal_dht::NodeConfig {
            bind: taken.local_addr().unwrap(),
            bootstrap: vec![],
            ..shoal_dht::NodeConfig::default()
        }),
        ..common::loopback(55)
    };
    let session = Session::new(config).await.unwrap();
    assert!(session.dht().is_none());
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_that_requires_encryption_serves_every_leecher_that_can_speak_it() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    // Slow enough (1 MiB/s for all) that each connection shows in a few snapshots.
    let (seeder, seed) = common::start(
        SessionConfig {
            encryption: Encryption::Required,
            upload_limit: Some(1 << 20),
            ..common::loopback(20)
        },
        torrent.clone(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&seed, Duration::from_secs(10)).await;

    let mut leechers = Vec::new();
    for (i, encryption) in [
        Encryption::Required,
        Encryption::Preferred,
        Encryption::Enabled,
        Encryption::Disabled,
    ]
    .into_iter()
    .enumerate()
    {
        let target = tempfile::tempdir().unwrap();
        let (session, handle) = common::start(
            SessionConfig {
                encryption,
                ..common::loopback(21 + i as u64)
            },
            torrent.clone(),
            target.path(),
            vec![seeder.local_addr()],
        )
        .await;
        leechers.push((encryption, target, session, handle));
    }
    let (disabled, _, plain, plain_handle) = leechers.pop().unwrap();
    assert_eq!(disabled, Encryption::Disabled);
    // Required dials MSE with RC4 only; Preferred dials MSE offering both and gets RC4; Enabled dials
    // plaintext, is hung up on, and retries with MSE.
    for (encryption, target, session, handle) in leechers {
        assert!(
            common::seeding_saw_encryption(&handle, Duration::from_secs(60)).await,
            "{encryption:?}: no encrypted connection seen"
        );
        same_tree(&source.path().join("album"), &target.path().join("album"));
        session.shutdown().await;
    }
    // The plaintext-only leecher got nothing in all that time.
    let stats = plain_handle.stats().borrow().clone();
    assert_eq!(stats.pieces_have, 0, "{stats:?}");
    assert!(stats.peers.is_empty(), "{stats:?}");
    plain.shutdown().await;
    seeder.shutdown().await;
}
