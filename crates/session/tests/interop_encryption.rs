//! Message stream encryption (MSE/PE) against python3-libtorrent on loopback: Shoal reaching a
//! libtorrent that refuses plaintext, both as the one dialing and the one dialed, and the settings
//! that must keep the two apart. Each negative case is the control of a positive one: the same
//! libtorrent peer, the same torrent, only Shoal's `Encryption` changed.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::lt_peer;
use shoal_session::{Encryption, SessionConfig, TorrentHandle};

fn config(seed: u64, encryption: Encryption) -> SessionConfig {
    SessionConfig {
        encryption,
        ..common::loopback(seed)
    }
}

/// Downloads the payload in `source` (torrent `bytes`) with `encryption` from the libtorrent peer on
/// `port`, at 1 MiB/s so its connection shows in a few snapshots; checks the files and that no piece
/// failed, and returns whether an RC4-encrypted connection showed on the way.
async fn download_from_lt(
    bytes: Vec<u8>,
    source: &Path,
    port: u16,
    seed: u64,
    encryption: Encryption,
) -> bool {
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = common::start(
        SessionConfig {
            download_limit: Some(1 << 20),
            ..config(seed, encryption)
        },
        bytes,
        target.path(),
        vec![SocketAddr::from(([127, 0, 0, 1], port))],
    )
    .await;
    let encrypted = common::seeding_saw_encryption(&handle, Duration::from_secs(60)).await;
    common::same_payload(&source.join("payload"), &target.path().join("payload"));
    assert_eq!(handle.stats().borrow().hash_failures, 0);
    session.shutdown().await;
    encrypted
}

/// Watches for `limit`: true if the torrent got any piece or any peer connection.
async fn met_anyone(handle: &TorrentHandle, limit: Duration) -> bool {
    let mut stats = handle.stats();
    tokio::time::timeout(
        limit,
        stats.wait_for(|s| s.pieces_have > 0 || !s.peers.is_empty()),
    )
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_download_from_libtorrent_that_requires_it() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let bytes = std::fs::read(&torrent).unwrap();
    let port = common::free_port();
    let _seeder = lt_peer("seed", &torrent, source.path(), port, &[], &["enc=forced"]);
    let peer = SocketAddr::from(([127, 0, 0, 1], port));

    // Control: plaintext only. libtorrent hangs up on every handshake.
    let target = tempfile::tempdir().unwrap();
    let (plain, handle) = common::start(
        config(90, Encryption::Disabled),
        bytes.clone(),
        target.path(),
        vec![peer],
    )
    .await;
    assert!(!met_anyone(&handle, Duration::from_secs(4)).await);
    plain.shutdown().await;

    // The default: plaintext first, then MSE once the peer hangs up.
    assert!(download_from_lt(bytes, source.path(), port, 91, Encryption::Enabled).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_libtorrent_that_requires_it_downloads_from_shoal() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let bytes = std::fs::read(&torrent).unwrap();

    // Control: a plaintext-only Shoal drops the MSE handshake libtorrent opens with.
    let (plain, handle) = common::start(
        config(92, Encryption::Disabled),
        bytes.clone(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&handle, Duration::from_secs(30)).await;
    let target = tempfile::tempdir().unwrap();
    let _refused = lt_peer(
        "leech",
        &torrent,
        target.path(),
        common::free_port(),
        &[plain.local_addr()],
        &["enc=forced"],
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = handle.stats().borrow().clone();
    assert!(stats.peers.is_empty() && stats.uploaded == 0, "{stats:?}");
    plain.shutdown().await;

    // The default accepts it, and serves the download over RC4.
    let (session, handle) = common::start(
        SessionConfig {
            upload_limit: Some(1 << 20),
            ..config(93, Encryption::Enabled)
        },
        bytes,
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&handle, Duration::from_secs(30)).await;
    let target = tempfile::tempdir().unwrap();
    let leecher = lt_peer(
        "leech",
        &torrent,
        target.path(),
        common::free_port(),
        &[session.local_addr()],
        &["enc=forced"],
    );
    let watch = {
        let mut stats = handle.stats();
        tokio::spawn(async move {
            stats
                .wait_for(|s| s.peers.iter().any(|p| p.encrypted && !p.outgoing))
                .await
                .is_ok()
        })
    };
    let (_leecher, line) = leecher.next_line_within(Duration::from_secs(60)).await;
    assert_eq!(line, "DONE");
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), watch)
            .await
            .is_ok_and(|seen| seen.unwrap()),
        "no snapshot showed the encrypted incoming connection"
    );
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_required_reaches_only_peers_that_speak_it() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let bytes = std::fs::read(&torrent).unwrap();

    // libtorrent with encryption off: a Shoal that requires it never connects.
    let off_port = common::free_port();
    let _off = lt_peer(
        "seed",
        &torrent,
        source.path(),
        off_port,
        &[],
        &["enc=disabled"],
    );
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = common::start(
        config(94, Encryption::Required),
        bytes.clone(),
        target.path(),
        vec![SocketAddr::from(([127, 0, 0, 1], off_port))],
    )
    .await;
    assert!(!met_anyone(&handle, Duration::from_secs(4)).await);
    session.shutdown().await;

    // libtorrent as it ships (either way, plaintext preferred): offered only RC4, it takes it.
    let port = common::free_port();
    let _seeder = lt_peer("seed", &torrent, source.path(), port, &[], &[]);
    assert!(download_from_lt(bytes, source.path(), port, 95, Encryption::Required).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_magnet_from_libtorrent_that_requires_it() {
    // The metadata stage dials like a torrent does, and its connections (with their RC4 state) carry
    // on into the download.
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = common::lt_payload(source.path(), None);
    let port = common::free_port();
    let _seeder = lt_peer("seed", &torrent, source.path(), port, &[], &["enc=forced"]);
    let session = shoal_session::Session::new(SessionConfig {
        download_limit: Some(1 << 20),
        ..config(96, Encryption::Enabled)
    })
    .await
    .unwrap();
    let target = tempfile::tempdir().unwrap();
    let handle = session
        .add_magnet(shoal_session::AddMagnet {
            magnet: format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{port}")
                .parse()
                .unwrap(),
            save_path: target.path().into(),
            peers: vec![],
        })
        .unwrap();
    assert!(common::seeding_saw_encryption(&handle, Duration::from_secs(60)).await);
    common::same_payload(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_preferred_falls_back_to_plaintext_for_peers_without_it() {
    // Preferred dials MSE first; libtorrent with encryption off hangs up on it, and the second
    // attempt, plaintext, downloads everything.
    let source = tempfile::tempdir().unwrap();
    let (torrent, _) = common::lt_payload(source.path(), None);
    let port = common::free_port();
    let _seeder = lt_peer(
        "seed",
        &torrent,
        source.path(),
        port,
        &[],
        &["enc=disabled"],
    );
    let bytes = std::fs::read(&torrent).unwrap();
    assert!(
        !download_from_lt(bytes, source.path(), port, 97, Encryption::Preferred).await,
        "a peer without encryption cannot have had an encrypted connection"
    );
}
