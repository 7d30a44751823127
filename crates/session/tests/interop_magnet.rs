//! Magnet links against real clients on loopback (BEP 9 over BEP 10): Shoal fetching the metadata from
//! a python3-libtorrent seeder found through a tracker (`tr=`), a direct address (`x.pe=`) and the DHT,
//! and from a Transmission seeder found through a tracker; libtorrent fetching it from a Shoal seeder.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Script;
use shoal_metainfo::{InfoHash, InfoHashes, Magnet};
use shoal_session::{AddMagnet, Session, SessionConfig, TorrentHandle, TorrentState};

/// Starts `lt_magnet.py` with `args` and waits for its READY line.
fn lt(args: &[&str]) -> Script {
    Script::start("lt_magnet.py", args)
}

/// A libtorrent seeder of `torrent` (data in `dir`) on 127.0.0.1; returns it and its port.
fn lt_seed(torrent: &Path, dir: &Path) -> (Script, u16) {
    let port = common::free_port();
    let seeder = lt(&[
        "seed",
        torrent.to_str().unwrap(),
        dir.to_str().unwrap(),
        "127.0.0.1",
        &port.to_string(),
    ]);
    (seeder, port)
}

fn magnet(hash: InfoHash) -> Magnet {
    Magnet {
        display_name: Some("payload".into()),
        ..Magnet::new(InfoHashes {
            v1: Some(hash),
            v2: None,
        })
    }
}

/// Adds `magnet` and waits until the metadata is in; returns the handle and how long that took.
async fn fetch(
    session: &Session,
    magnet: Magnet,
    save: &Path,
    limit: Duration,
) -> (TorrentHandle, Duration) {
    let started = Instant::now();
    let handle = session
        .add_magnet(AddMagnet {
            magnet,
            save_path: save.into(),
            peers: vec![],
        })
        .unwrap();
    // Listed at once, in the metadata stage; on a loaded machine the fetch may even be over by the
    // time this thread runs again, but never without the metadata.
    let state = handle.stats().borrow().state;
    assert!(
        state == TorrentState::FetchingMetadata || handle.torrent_file().is_some(),
        "{state:?} without the metadata"
    );
    let mut stats = handle.stats();
    // The `Ref` that `wait_for` returns holds the channel's lock: drop it at once.
    let waited = tokio::time::timeout(limit, stats.wait_for(|s| s.metadata.is_none()))
        .await
        .is_ok_and(|r| r.is_ok());
    let elapsed = started.elapsed();
    assert!(
        waited,
        "no metadata in {limit:?}: {:?}",
        handle.stats().borrow()
    );
    assert!(handle.torrent_file().is_some());
    (handle, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_magnet_from_libtorrent_via_tracker() {
    let source = tempfile::tempdir().unwrap();
    let (_, hash) = common::lt_payload(source.path(), None);
    let tracker = common::Opentracker::start(hash).await;
    let (torrent, _) = common::lt_payload(source.path(), Some(&tracker.url()));
    let (_seeder, port) = lt_seed(&torrent, source.path());
    // Shoal's first announce must find the seeder listed (not only the tracker's readiness probe).
    tracker
        .wait_for_peer(hash, SocketAddr::from(([127, 0, 0, 1], port)))
        .await;

    let target = tempfile::tempdir().unwrap();
    let session = Session::new(common::loopback(81)).await.unwrap();
    let mut link = magnet(hash);
    link.trackers = vec![tracker.url()];
    let (handle, _) = fetch(&session, link, target.path(), Duration::from_secs(60)).await;
    common::seeding(&handle, Duration::from_secs(60)).await;
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    let stats = handle.stats().borrow().clone();
    assert!(stats.trackers.iter().any(|t| t.last.is_ok()), "{stats:?}");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_magnet_from_libtorrent_via_x_pe() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = common::lt_payload(source.path(), None);
    let (_seeder, port) = lt_seed(&torrent, source.path());

    let target = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let session = Session::new(SessionConfig {
        state_dir: Some(state.path().into()),
        ..common::loopback(82)
    })
    .await
    .unwrap();
    let mut link = magnet(hash);
    link.peers = vec![SocketAddr::from(([127, 0, 0, 1], port))];
    let (handle, elapsed) = fetch(&session, link, target.path(), Duration::from_secs(30)).await;
    println!("add to metadata over x.pe: {} ms", elapsed.as_millis());
    common::seeding(&handle, Duration::from_secs(60)).await;
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    // The fetched torrent is saved, byte for byte the seeder's info dictionary.
    let saved = std::fs::read(state.path().join("torrents/payload.torrent")).unwrap();
    let original = std::fs::read(&torrent).unwrap();
    let info = |bytes: &[u8]| {
        shoal_metainfo::Metainfo::from_bytes(bytes)
            .unwrap()
            .info
            .raw
            .to_vec()
    };
    assert_eq!(info(&saved), info(&original));
    assert!(state.path().join(format!("{hash}.torrent")).exists());
    assert!(!state.path().join(format!("{hash}.magnet")).exists());
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_magnet_select_only_downloads_the_files_chosen() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = common::lt_payload(source.path(), None);
    let (_seeder, port) = lt_seed(&torrent, source.path());

    let target = tempfile::tempdir().unwrap();
    let session = Session::new(common::loopback(83)).await.unwrap();
    // Files in torrent order: a.bin (0), sub/b.bin (1). BEP 53 `so=1`: only b.bin.
    let link: Magnet = format!("magnet:?xt=urn:btih:{hash}&so=1&x.pe=127.0.0.1:{port}")
        .parse()
        .unwrap();
    let (handle, _) = fetch(&session, link, target.path(), Duration::from_secs(30)).await;
    let stats = common::seeding(&handle, Duration::from_secs(60)).await;
    assert!(stats.is_complete());
    assert_eq!(stats.pieces_missing, 0);
    // b.bin touches 13 of the 58 pieces (the first shared with a.bin's tail): the rest was skipped.
    assert!(stats.pieces_have <= 13, "{} pieces", stats.pieces_have);
    assert!(stats.pieces_have < stats.pieces_total);
    let wanted = std::fs::read(source.path().join("payload/sub/b.bin")).unwrap();
    assert!(std::fs::read(target.path().join("payload/sub/b.bin")).unwrap() == wanted);
    let skipped = std::fs::read(target.path().join("payload/a.bin")).unwrap_or_default();
    let original = std::fs::read(source.path().join("payload/a.bin")).unwrap();
    assert!(skipped != original, "a.bin was downloaded although skipped");
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_magnet_from_libtorrent_via_dht() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = common::lt_payload(source.path(), None);
    // The seeder on 127.0.0.2 and two libtorrent DHT nodes on 127.0.0.3 and .4, all on one port.
    let port = loop {
        let port = common::free_port();
        let free = (2..=4).all(|last| {
            std::net::UdpSocket::bind(("127.0.0.".to_owned() + &last.to_string(), port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.".to_owned() + &last.to_string(), port))
                    .is_ok()
        });
        if free {
            break port;
        }
    };
    let src = source.path().to_str().unwrap();
    let _seeder = lt(&[
        "seed",
        torrent.to_str().unwrap(),
        src,
        "127.0.0.2",
        &port.to_string(),
        "dht",
    ]);

    let target = tempfile::tempdir().unwrap();
    let session = Session::new(SessionConfig {
        dht: Some(shoal_dht::NodeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap: vec![format!("127.0.0.3:{port}")],
            state_dir: None,
            dht: shoal_dht::Config {
                restrict_ips: false,
                rate_limit: None,
                ..shoal_dht::Config::default()
            },
        }),
        ..common::loopback(84)
    })
    .await
    .unwrap();
    // No trackers, no addresses: only the DHT can find the seeder.
    let (handle, elapsed) = fetch(
        &session,
        magnet(hash),
        target.path(),
        Duration::from_secs(90),
    )
    .await;
    println!("add to metadata over the DHT: {} ms", elapsed.as_millis());
    let stats = common::seeding(&handle, Duration::from_secs(60)).await;
    assert!(stats.dht_peers.is_some_and(|n| n >= 1), "{stats:?}");
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_libtorrent_fetches_metadata_from_shoal() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = common::lt_payload(source.path(), None);
    let (session, handle) = common::start(
        common::loopback(85),
        std::fs::read(&torrent).unwrap(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&handle, Duration::from_secs(30)).await;

    let target = tempfile::tempdir().unwrap();
    let link = format!("magnet:?xt=urn:btih:{hash}&dn=payload");
    let peer = session.local_addr().to_string();
    let port = common::free_port().to_string();
    let mut leecher = tokio::task::block_in_place(|| {
        lt(&[
            "leech",
            &link,
            target.path().to_str().unwrap(),
            "127.0.0.1",
            &port,
            &peer,
        ])
    });
    let lines = tokio::task::block_in_place(|| [leecher.next_line(), leecher.next_line()]);
    assert_eq!(lines, ["METADATA".to_owned(), "DONE".to_owned()]);
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    // The upload counter shows in the next snapshot (one a second).
    let mut stats = handle.stats();
    let uploaded = tokio::time::timeout(
        Duration::from_secs(5),
        stats.wait_for(|s| s.uploaded >= 3_777_778),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(uploaded, "{:?}", handle.stats().borrow().uploaded);
    session.shutdown().await;
}
