//! `Session::move_data`: a torrent's files moved to another download directory while it runs (seeding,
//! mid-download, paused, or a magnet link still fetching its metadata), a move that cannot finish (a
//! full destination: a small tmpfs the test mounts, so it needs root, as CI has), and a restart that
//! finds the data at its new place.

mod common;

use std::path::Path;
use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{AddMagnet, Session, SessionConfig, SessionError, TorrentHandle, TorrentState};

/// A two-file payload (1.2 MB) in `dir/album` and its torrent.
fn payload(dir: &Path) -> (Vec<u8>, shoal_metainfo::InfoHash) {
    let content = dir.join("album");
    std::fs::create_dir_all(content.join("disc 2")).unwrap();
    let bytes = |len: u32, k: u32| -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(k) >> 9) as u8).collect()
    };
    std::fs::write(content.join("01.flac"), bytes(900_001, 2_654_435_761)).unwrap();
    std::fs::write(content.join("disc 2/02.flac"), bytes(333_333, 40_503)).unwrap();
    let torrent = TorrentBuilder::new(&content)
        .piece_length(32_768)
        .build()
        .unwrap();
    (torrent.bytes, torrent.info_hashes.v1.unwrap())
}

fn same_album(a: &Path, b: &Path) {
    for name in ["01.flac", "disc 2/02.flac"] {
        let left = std::fs::read(a.join(name)).unwrap();
        let right = std::fs::read(b.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left == right, "{name} differs");
    }
}

async fn wait_state(handle: &TorrentHandle, state: TorrentState, limit: Duration) {
    let mut stats = handle.stats();
    let reached = tokio::time::timeout(limit, stats.wait_for(|s| s.state == state))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(reached, "not {state:?}: {:?}", handle.stats().borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_moves_its_data_serves_from_there_and_finds_it_after_a_restart() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = payload(source.path());
    let original = tempfile::tempdir().unwrap();
    payload(original.path());
    let state = tempfile::tempdir().unwrap();
    let config = || SessionConfig {
        state_dir: Some(state.path().into()),
        ..common::loopback(110)
    };
    let (seeder, seed) = common::start(config(), torrent.clone(), original.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(20)).await;

    let destination = tempfile::tempdir().unwrap();
    let new_place = destination.path().join("library");
    let moved = seeder.move_data(hash, &new_place).await.unwrap();
    assert_eq!(moved, new_place);
    same_album(&source.path().join("album"), &new_place.join("album"));
    assert!(
        !original.path().join("album").exists(),
        "the old folder is gone"
    );
    wait_state(&seed, TorrentState::Seeding, Duration::from_secs(5)).await;

    // A leecher downloads it: every read comes from the new place.
    let target = tempfile::tempdir().unwrap();
    let (leecher, leech) = common::start(
        common::loopback(111),
        torrent,
        target.path(),
        vec![seeder.local_addr()],
    )
    .await;
    common::seeding(&leech, Duration::from_secs(30)).await;
    same_album(&source.path().join("album"), &target.path().join("album"));
    leecher.shutdown().await;
    seeder.shutdown().await;

    // Restarted, the session finds the torrent at its new place, all of it verified.
    let again = Session::new(config()).await.unwrap();
    let restored = again.restore().unwrap();
    let handle = restored.into_iter().next().unwrap().unwrap();
    let stats = common::seeding(&handle, Duration::from_secs(20)).await;
    assert_eq!(stats.pieces_have, stats.pieces_total);
    assert!(
        !original.path().join("album").exists(),
        "nothing written at the old place"
    );
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_moved_halfway_completes_at_the_new_place() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = payload(source.path());
    let (seeder, seed) = common::start(
        common::loopback(112),
        torrent.clone(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&seed, Duration::from_secs(20)).await;

    let first = tempfile::tempdir().unwrap();
    let (leecher, leech) = common::start(
        SessionConfig {
            download_limit: Some(256 * 1024),
            ..common::loopback(113)
        },
        torrent,
        first.path(),
        vec![seeder.local_addr()],
    )
    .await;
    let mut stats = leech.stats();
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.pieces_have >= 5),
    )
    .await
    .unwrap()
    .unwrap();
    let second = tempfile::tempdir().unwrap();
    leecher.move_data(hash, second.path()).await.unwrap();
    assert!(!first.path().join("album").exists());
    let stats = common::seeding(&leech, Duration::from_secs(60)).await;
    assert_eq!(stats.hash_failures, 0);
    same_album(&source.path().join("album"), &second.path().join("album"));
    assert!(
        !first.path().join("album").exists(),
        "nothing written at the old place"
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_destination_leaves_the_data_where_it_was() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = payload(source.path());
    let (seeder, seed) = common::start(common::loopback(114), torrent, source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(20)).await;
    let before = std::fs::read(source.path().join("album/01.flac")).unwrap();

    // 512 KiB cannot hold 01.flac (900 KB): the copy fails partway through.
    let disk = common::Tmpfs::mount("512k");
    let err = seeder.move_data(hash, &disk.path).await.unwrap_err();
    assert!(matches!(err, SessionError::Move(_)), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(std::fs::read(source.path().join("album/01.flac")).unwrap() == before);
    assert!(source.path().join("album/disc 2/02.flac").exists());
    assert_eq!(
        std::fs::read_dir(&disk.path).unwrap().count(),
        0,
        "nothing left at the destination"
    );
    wait_state(&seed, TorrentState::Seeding, Duration::from_secs(5)).await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_torrent_stays_paused_and_bad_requests_are_refused() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = payload(source.path());
    let (session, handle) =
        common::start(common::loopback(115), torrent, source.path(), vec![]).await;
    common::seeding(&handle, Duration::from_secs(20)).await;
    handle.pause().await;
    wait_state(&handle, TorrentState::Paused, Duration::from_secs(5)).await;
    let elsewhere = tempfile::tempdir().unwrap();
    session.move_data(hash, elsewhere.path()).await.unwrap();
    wait_state(&handle, TorrentState::Paused, Duration::from_secs(5)).await;
    assert!(elsewhere.path().join("album/01.flac").exists());
    // The same place again: nothing to do.
    assert_eq!(
        session.move_data(hash, elsewhere.path()).await.unwrap(),
        elsewhere.path()
    );
    let unknown = shoal_metainfo::InfoHash([9; 20]);
    assert!(matches!(
        session.move_data(unknown, elsewhere.path()).await,
        Err(SessionError::Move(_))
    ));
    handle.resume().await;
    wait_state(&handle, TorrentState::Seeding, Duration::from_secs(5)).await;
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_still_fetching_metadata_downloads_into_the_new_directory() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, hash) = payload(source.path());
    let (seeder, seed) = common::start(common::loopback(116), torrent, source.path(), vec![]).await;
    common::seeding(&seed, Duration::from_secs(20)).await;

    let first = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(117)).await.unwrap();
    // No peers yet: the metadata stage waits.
    let handle = leecher
        .add_magnet(AddMagnet {
            magnet: format!("magnet:?xt=urn:btih:{hash}").parse().unwrap(),
            save_path: first.path().into(),
            peers: vec![],
        })
        .unwrap();
    assert_eq!(
        handle.stats().borrow().state,
        TorrentState::FetchingMetadata
    );
    let second = tempfile::tempdir().unwrap();
    leecher.move_data(hash, second.path()).await.unwrap();
    handle.add_peers(vec![seeder.local_addr()]).await;
    common::seeding(&handle, Duration::from_secs(30)).await;
    same_album(&source.path().join("album"), &second.path().join("album"));
    assert!(!first.path().join("album").exists());
    leecher.shutdown().await;
    seeder.shutdown().await;
}
