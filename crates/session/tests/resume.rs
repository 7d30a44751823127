//! Restarts: torrents come back from the state directory, and resume data spares rehashing files
//! that did not change (and only those).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{
    AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};

fn config(state_dir: &Path) -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        state_dir: Some(state_dir.to_path_buf()),
        ..SessionConfig::default()
    }
}

async fn settled(handle: &TorrentHandle) -> TorrentStats {
    let mut stats = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| matches!(s.state, TorrentState::Seeding | TorrentState::Downloading)),
    )
    .await
    .expect("checked in time")
    .unwrap()
    .clone()
}

/// Writes `len` bytes as `dir/name` and makes a torrent of it (16 KiB pieces).
fn one_file(dir: &Path, name: &str, len: u32) -> (std::path::PathBuf, Vec<u8>) {
    let file = dir.join(name);
    std::fs::write(&file, (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    let torrent = TorrentBuilder::new(&file)
        .piece_length(16_384)
        .build()
        .unwrap()
        .bytes;
    (file, torrent)
}

/// Flips one byte of `path` while keeping its size and modification time.
fn corrupt_keeping_mtime(path: &Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_trusts_unchanged_files_and_rechecks_changed_ones() {
    let data = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (file, torrent) = one_file(data.path(), "movie.mkv", 300_000);

    // First run: the data is checked in full and resume data is written on shutdown.
    let session = Session::new(config(state.path())).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent,
            save_path: data.path().into(),
            peers: vec![],
        })
        .unwrap();
    assert_eq!(settled(&handle).await.state, TorrentState::Seeding);
    let info_hash = handle.info_hash();
    session.shutdown().await;
    assert!(state.path().join(format!("{info_hash}.resume")).exists());

    // A process killed mid-write leaves `NAME.tmp.PID`: a dead writer's is removed on restore, a
    // live one's (pid 1 is always running) is left alone.
    let stale = state
        .path()
        .join(format!("{info_hash}.resume.tmp.4000000000"));
    let live = state.path().join(format!("{info_hash}.resume.tmp.1"));
    std::fs::write(&stale, b"torn").unwrap();
    std::fs::write(&live, b"in progress").unwrap();

    // Corrupt a byte but keep size and mtime: a restart trusts the resume data and does not rehash.
    corrupt_keeping_mtime(&file);
    let session = Session::new(config(state.path())).await.unwrap();
    let restored = session.restore().unwrap();
    assert!(!stale.exists() && live.exists());
    std::fs::remove_file(&live).unwrap();
    assert_eq!(
        restored.len(),
        1,
        "the torrent comes back from the state directory"
    );
    let handle = restored.into_iter().next().unwrap().unwrap();
    let stats = settled(&handle).await;
    assert_eq!(
        (stats.state, stats.pieces_have),
        (TorrentState::Seeding, stats.pieces_total)
    );
    session.shutdown().await;

    // Touch the file (new mtime): now its pieces are rehashed and the corruption is found.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let session = Session::new(config(state.path())).await.unwrap();
    let handle = session
        .restore()
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let stats = settled(&handle).await;
    assert_eq!(stats.state, TorrentState::Downloading);
    assert_eq!(
        stats.pieces_have,
        stats.pieces_total - 1,
        "exactly the corrupted piece is missing"
    );
    assert!(!stats.have[0], "byte 100 is in piece 0");

    // Removing the torrent forgets its state files; with delete_data, its file too.
    session.remove_torrent(info_hash, true).await.unwrap();
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());
    assert!(!file.exists());
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_closes_connections_and_resume_reconnects() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let torrent = TorrentBuilder::new(&file)
        .piece_length(16_384)
        .build()
        .unwrap()
        .bytes;
    let (seeder, seed) =
        common::start(common::loopback(1), torrent.clone(), data.path(), vec![]).await;
    settled(&seed).await;
    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(2)).await.unwrap();
    let leech = leecher
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    leech.pause().await;
    let mut stats = leech.stats();
    let paused = tokio::time::timeout(
        Duration::from_secs(10),
        stats.wait_for(|s| s.state == TorrentState::Paused),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert!(paused.peers.is_empty());
    leech.resume().await;
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.state == TorrentState::Seeding),
    )
    .await
    .expect("completes after resuming")
    .unwrap();
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A download that completes is recorded at once without waiting for the disk: its resume data names
/// this boot. It is trusted within the boot (a crashed process leaves its writes in the page cache) and
/// not after a reboot, when everything is checked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_download_is_recorded_unsynced_and_rechecked_after_a_reboot() {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let boot = boot.trim();
    let source = tempfile::tempdir().unwrap();
    let (_, torrent) = one_file(source.path(), "album.flac", 200_000);
    let (seeder, seed) =
        common::start(common::loopback(3), torrent.clone(), source.path(), vec![]).await;
    settled(&seed).await;

    // Download, and stop as soon as it completes (as `torrent-cli add` does).
    let target = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let session = Session::new(config(state.path())).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    common::seeding(&handle, Duration::from_secs(20)).await;
    let resume_path = state.path().join(format!("{}.resume", handle.info_hash()));
    session.shutdown().await;
    seeder.shutdown().await;
    let resume = std::fs::read(&resume_path).unwrap();
    let marker = format!("13:unsynced boot{}:{boot}", boot.len());
    assert!(
        resume.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the completion was recorded unsynced, naming this boot: {}",
        String::from_utf8_lossy(&resume)
    );

    // The same boot: trusted without reading (a corrupted byte with the same mtime goes unseen).
    let downloaded = target.path().join("album.flac");
    corrupt_keeping_mtime(&downloaded);
    let restart = |resume: Vec<u8>| {
        let state = state.path().to_path_buf();
        let resume_path = resume_path.clone();
        async move {
            std::fs::write(&resume_path, resume).unwrap();
            let session = Session::new(config(&state)).await.unwrap();
            let handle = session.restore().unwrap().pop().unwrap().unwrap();
            let stats = settled(&handle).await;
            session.shutdown().await;
            stats
        }
    };
    let stats = restart(resume.clone()).await;
    assert_eq!(
        (stats.state, stats.pieces_have),
        (TorrentState::Seeding, stats.pieces_total)
    );

    // Another boot (the same record, its boot id changed): everything is hashed, the corruption found.
    let other: String = boot
        .chars()
        .map(|c| {
            if c == '0' {
                '1'
            } else if c == '-' {
                c
            } else {
                '0'
            }
        })
        .collect();
    let at = resume
        .windows(boot.len())
        .position(|w| w == boot.as_bytes())
        .unwrap();
    let mut rebooted = resume.clone();
    rebooted[at..at + boot.len()].copy_from_slice(other.as_bytes());
    let stats = restart(rebooted).await;
    assert_eq!(stats.state, TorrentState::Downloading);
    assert_eq!(stats.pieces_have, stats.pieces_total - 1);
    assert!(!stats.have[0], "byte 100 is in piece 0");
}

/// The all-time counters (and so the share ratio) add up across restarts: a seeder with a state
/// directory serves one leecher, restarts, serves another, and counts both; the leecher's download
/// stays counted after its own restart, while the per-run counters trackers get start from zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_counters_add_up_across_restarts() {
    const LEN: u32 = 200_000;
    let source = tempfile::tempdir().unwrap();
    let seed_state = tempfile::tempdir().unwrap();
    let (_, torrent) = one_file(source.path(), "talk.ogg", LEN);
    let restart = |state: &Path| {
        let state = state.to_path_buf();
        async move {
            let session = Session::new(config(&state)).await.unwrap();
            let handle = session.restore().unwrap().pop().unwrap().unwrap();
            settled(&handle).await;
            (session, handle)
        }
    };
    // A leecher with its own state directory downloads everything from `seeder`, then stops.
    let leech_from = |seeder: SocketAddr, salt: u64| {
        let torrent = torrent.clone();
        async move {
            let target = tempfile::tempdir().unwrap();
            let state = tempfile::tempdir().unwrap();
            let config = SessionConfig {
                state_dir: Some(state.path().to_path_buf()),
                ..common::loopback(salt)
            };
            let (session, handle) =
                common::start(config, torrent, target.path(), vec![seeder]).await;
            let stats = common::seeding(&handle, Duration::from_secs(20)).await;
            assert!(stats.all_time_downloaded >= u64::from(LEN));
            session.shutdown().await;
            (target, state)
        }
    };

    let (seeder, seed) = common::start(
        config(seed_state.path()),
        torrent.clone(),
        source.path(),
        vec![],
    )
    .await;
    settled(&seed).await;
    let (_first_target, first_state) = leech_from(seeder.local_addr(), 11).await;
    // The writer's bytes reach the counters within a second.
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stats = seed.stats();
        stats
            .wait_for(|s| s.uploaded >= u64::from(LEN))
            .await
            .unwrap()
            .clone()
    })
    .await
    .expect("the seeder counts what it sent");
    assert_eq!(first.all_time_uploaded, first.uploaded);
    seeder.shutdown().await;

    let (seeder, seed) = restart(seed_state.path()).await;
    let stats = seed.stats().borrow().clone();
    assert_eq!(stats.uploaded, 0, "trackers hear of this run only");
    assert!(stats.all_time_uploaded >= first.uploaded);
    assert!(
        stats.ratio().unwrap() >= 1.0,
        "a full copy sent: {:?}",
        stats.ratio()
    );
    let (_second_target, _second_state) = leech_from(seeder.local_addr(), 12).await;
    let mut stats = seed.stats();
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        stats
            .wait_for(|s| s.all_time_uploaded >= 2 * u64::from(LEN))
            .await
            .unwrap()
            .clone()
    })
    .await
    .expect("the restarted seeder adds the second copy to the first");
    assert_eq!(both.all_time_uploaded, first.uploaded + both.uploaded);
    seeder.shutdown().await;
    let (seeder, seed) = restart(seed_state.path()).await;
    assert_eq!(
        seed.stats().borrow().all_time_uploaded,
        both.all_time_uploaded
    );
    seeder.shutdown().await;

    // The first leecher's download is still counted after its restart.
    let (leecher, leech) = restart(first_state.path()).await;
    let stats = leech.stats().borrow().clone();
    assert_eq!(stats.downloaded, 0);
    assert!(stats.all_time_downloaded >= u64::from(LEN));
    leecher.shutdown().await;
}

/// What the user chose comes back with a restored torrent: paused, in order, per-torrent limits and
/// file priorities. The skipped file shows it: with a seeder at hand, the restored torrent fetches
/// nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_torrent_comes_back_as_it_was_left() {
    let source = tempfile::tempdir().unwrap();
    let content = source.path().join("pair");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("a.bin"), vec![1u8; 100_000]).unwrap();
    std::fs::write(content.join("b.bin"), vec![2u8; 100_000]).unwrap();
    let torrent = TorrentBuilder::new(&content)
        .piece_length(16_384)
        .build()
        .unwrap()
        .bytes;
    let (seeder, seed) = common::start(
        common::loopback(120),
        torrent.clone(),
        source.path(),
        vec![],
    )
    .await;
    common::seeding(&seed, Duration::from_secs(20)).await;

    let state = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = common::start(
        config(state.path()),
        torrent,
        target.path(),
        vec![seeder.local_addr()],
    )
    .await;
    // b.bin skipped: the torrent seeds once a.bin is in.
    handle
        .set_file_priorities(vec![
            shoal_session::Priority::Normal,
            shoal_session::Priority::Skip,
        ])
        .await;
    let stats = common::seeding(&handle, Duration::from_secs(30)).await;
    let have = stats.pieces_have;
    assert!(have < stats.pieces_total);
    handle.set_sequential(true).await;
    handle.set_limits(Some(300_000), Some(200_000)).await;
    handle.pause().await;
    let mut watch = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(5),
        watch.wait_for(|s| s.state == TorrentState::Paused && s.download_limit.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    session.shutdown().await;

    let again = Session::new(config(state.path())).await.unwrap();
    let restored = again.restore().unwrap().pop().unwrap().unwrap();
    let mut watch = restored.stats();
    let stats = tokio::time::timeout(
        Duration::from_secs(20),
        watch.wait_for(|s| s.state == TorrentState::Paused),
    )
    .await
    .expect("restored paused")
    .unwrap()
    .clone();
    assert!(stats.sequential);
    assert_eq!(
        (stats.download_limit, stats.upload_limit),
        (Some(300_000), Some(200_000))
    );
    assert_eq!(stats.pieces_have, have);
    // Resumed with the seeder at hand, it still wants nothing of b.bin.
    restored.add_peers(vec![seeder.local_addr()]).await;
    restored.resume().await;
    let stats = common::seeding(&restored, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(restored.stats().borrow().pieces_have, have, "{stats:?}");
    again.shutdown().await;
    seeder.shutdown().await;
}
