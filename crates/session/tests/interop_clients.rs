//! Shoal seeding to Transmission 3.00 and aria2c on loopback (also when they require encryption), and
//! downloading from a Transmission seeder (from a torrent file and from a magnet link), peers found
//! through opentracker. Transmission never dials 127.x peers (INTEROP.md), so the Shoal seeder must
//! connect out to the leecher the tracker tells it about; as a seeder it accepts Shoal's connections.
//! aria2c too, which sends messages before its bitfield.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHashes, Magnet, TorrentBuilder};
use shoal_session::{AddMagnet, Session, TorrentState};

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A payload, its torrent file (announcing to `tracker`) and the info-hash.
fn payload(dir: &Path, tracker: Option<&str>) -> (PathBuf, Vec<u8>, shoal_metainfo::InfoHash) {
    let content = dir.join("share");
    std::fs::create_dir_all(content.join("docs")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
        .collect();
    std::fs::write(content.join("big.bin"), big).unwrap();
    std::fs::write(content.join("docs/readme.txt"), b"hello from shoal\n").unwrap();
    let mut builder = TorrentBuilder::new(&content).piece_length(65_536);
    if let Some(url) = tracker {
        builder = builder.tracker_tier([url.to_owned()]);
    }
    let torrent = builder.build().unwrap();
    (content, torrent.bytes, torrent.info_hashes.v1.unwrap())
}

/// A tracker, and a payload with its torrent (bytes and file) announcing to it.
struct Setup {
    tracker: common::Opentracker,
    hash: shoal_metainfo::InfoHash,
    content: PathBuf,
    torrent: Vec<u8>,
    torrent_file: PathBuf,
}

async fn setup(work: &Path) -> Setup {
    // The info-hash does not depend on the tracker URL, which is outside the info dictionary.
    let (_, _, hash) = payload(work, None);
    let tracker = common::Opentracker::start(hash).await;
    let (content, torrent, _) = payload(work, Some(&tracker.url()));
    let torrent_file = work.join("share.torrent");
    std::fs::write(&torrent_file, &torrent).unwrap();
    Setup {
        tracker,
        hash,
        content,
        torrent,
        torrent_file,
    }
}

fn same_files(a: &Path, b: &Path) {
    for name in ["big.bin", "docs/readme.txt"] {
        let left = std::fs::read(a.join(name)).unwrap();
        let right = std::fs::read(b.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left == right, "{name} differs");
    }
}

/// Polls `done` every 200 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A transmission-daemon on loopback, killed on drop.
struct Transmission {
    _daemon: Guard,
    rpc_port: u16,
    /// Where it accepts peers, on every address.
    peer_port: u16,
}

impl Transmission {
    /// Starts the daemon (no DHT, LSD, port mapping or uTP) with its state in `work/transmission`,
    /// downloading into (and seeding from) `download`, and waits until its RPC answers.
    async fn start(work: &Path, download: &Path) -> Self {
        Self::start_with(work, download, "-et").await
    }

    /// As [`start`](Self::start), with an encryption flag: `-et` tolerates it (the default here),
    /// `-er` requires it, `-ep` prefers it.
    async fn start_with(work: &Path, download: &Path, encryption: &str) -> Self {
        std::fs::create_dir_all(download).unwrap();
        let (rpc_port, peer_port) = (common::free_port(), common::free_port());
        let daemon = Command::new("transmission-daemon")
            .args(["-f", "-O", "-Y", "-M", encryption, "--no-utp"])
            .arg("-g")
            .arg(work.join("transmission"))
            .arg("-w")
            .arg(download)
            .args([
                "-p",
                &rpc_port.to_string(),
                "-P",
                &peer_port.to_string(),
                "-r",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("transmission-daemon is needed (cargo xtask ci installs it)");
        let transmission = Self {
            _daemon: Guard(daemon),
            rpc_port,
            peer_port,
        };
        eventually(Duration::from_secs(20), "transmission's RPC", || {
            transmission.remote(&["-l"]).status.success()
        })
        .await;
        transmission
    }

    fn remote(&self, args: &[&str]) -> std::process::Output {
        Command::new("transmission-remote")
            .arg(format!("127.0.0.1:{}", self.rpc_port))
            .args(args)
            .output()
            .expect("transmission-remote is needed (cargo xtask ci installs it)")
    }

    /// Adds a torrent file; it becomes torrent 1.
    fn add(&self, torrent_file: &Path) {
        let added = self.remote(&["-a", torrent_file.to_str().unwrap()]);
        let out = String::from_utf8_lossy(&added.stdout);
        assert!(added.status.success() && out.contains("success"), "{out}");
    }

    /// Torrent 1 as `transmission-remote -t 1 -i` describes it.
    fn info(&self) -> String {
        String::from_utf8_lossy(&self.remote(&["-t", "1", "-i"]).stdout).into_owned()
    }

    /// Waits until torrent 1 is complete and verified and seeding: 100 % done, state `Idle` or
    /// `Seeding` (what Transmission 3.00 shows for a seed without or with uploads), not verifying.
    async fn wait_seeding(&self) {
        eventually(Duration::from_secs(20), "Transmission to seed", || {
            let info = self.info();
            info.contains("Percent Done: 100%")
                && (info.contains("State: Idle") || info.contains("State: Seeding"))
        })
        .await;
    }
}

/// Watches `handle`'s snapshots in the background: resolves to true once one shows an RC4-encrypted
/// connection that Shoal dialed.
fn saw_encrypted_dial(handle: &shoal_session::TorrentHandle) -> tokio::task::JoinHandle<bool> {
    let mut stats = handle.stats();
    tokio::spawn(async move {
        stats
            .wait_for(|s| s.peers.iter().any(|p| p.encrypted && p.outgoing))
            .await
            .is_ok()
    })
}

/// Waits until the Shoal torrent seeds; on a timeout, fails with what both sides say.
async fn downloaded_from(
    transmission: &Transmission,
    handle: &shoal_session::TorrentHandle,
    limit: Duration,
) -> shoal_session::TorrentStats {
    let mut stats = handle.stats();
    // The `Ref` that `wait_for` returns holds the channel's lock: turn it into a bool at once.
    let done = tokio::time::timeout(
        limit,
        stats.wait_for(|s| {
            assert_ne!(s.state, TorrentState::Error, "{:?}", s.error);
            s.state == TorrentState::Seeding
        }),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let stats = handle.stats().borrow().clone();
    assert!(
        done,
        "not complete in {limit:?}: {stats:?}\nTransmission:\n{}\n{}",
        transmission.info(),
        String::from_utf8_lossy(&transmission.remote(&["-t", "1", "-ip"]).stdout)
    );
    stats
}

/// A Transmission seeder of the payload (its data in `work/share`, where `setup` put it), which the
/// tracker hands out.
async fn transmission_seeder(work: &Path, setup: &Setup) -> Transmission {
    let transmission = Transmission::start(work, work).await;
    transmission.add(&setup.torrent_file);
    transmission.wait_seeding().await;
    let address = SocketAddr::from(([127, 0, 0, 1], transmission.peer_port));
    setup.tracker.wait_for_peer(setup.hash, address).await;
    transmission
}

/// Transmission, started with `encryption` (`-et`, `-er`, …), downloads from a Shoal seeder with
/// `config`, which dials it: the tracker tells the seeder about Transmission. Once the download is
/// complete and its files checked, returns whether a snapshot showed an encrypted connection that the
/// seeder dialed.
async fn transmission_leeches_from_shoal(
    encryption: &str,
    config: shoal_session::SessionConfig,
) -> bool {
    let work = tempfile::tempdir().unwrap();
    let Setup {
        tracker,
        hash,
        content,
        torrent,
        torrent_file,
    } = setup(work.path()).await;
    // Transmission first: it announces, so the tracker can hand its address to the Shoal seeder.
    let download = work.path().join("download");
    let transmission = Transmission::start_with(work.path(), &download, encryption).await;
    transmission.add(&torrent_file);
    tracker.wait_for_leecher(hash).await;
    let (seeder, seed) = common::start(config, torrent, work.path(), vec![]).await;
    let encrypted = saw_encrypted_dial(&seed);
    eventually(Duration::from_secs(90), "Transmission to finish", || {
        transmission.info().contains("Percent Done: 100%")
    })
    .await;
    same_files(&content, &download.join("share"));
    seeder.shutdown().await;
    tokio::time::timeout(Duration::from_secs(2), encrypted)
        .await
        .is_ok_and(|seen| seen.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_transmission_downloads_from_shoal() {
    transmission_leeches_from_shoal("-et", common::loopback(70)).await;
}

/// aria2c (no DHT, LPD or PEX; `extra` flags on top) downloads from a Shoal seeder with `config`,
/// which dials it: aria2c announces first, and the tracker tells the seeder about it. Once aria2c has
/// exited 0 (with `--seed-time=0`: the download complete and verified) and the files are checked,
/// returns whether a snapshot showed an encrypted connection that the seeder dialed.
async fn aria2_leeches_from_shoal(extra: &[&str], config: shoal_session::SessionConfig) -> bool {
    let work = tempfile::tempdir().unwrap();
    let Setup {
        tracker,
        hash,
        content,
        torrent,
        torrent_file,
    } = setup(work.path()).await;
    let download = work.path().join("download");
    let aria2 = Command::new("aria2c")
        .arg(&torrent_file)
        .arg("--dir")
        .arg(&download)
        .args([
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
        ])
        .args(extra)
        .args(["--seed-time=0", "--file-allocation=none"])
        .args([
            &format!("--listen-port={}", common::free_port()),
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aria2c is needed (cargo xtask ci installs it)");
    let mut aria2 = Guard(aria2);
    tracker.wait_for_leecher(hash).await;
    let (seeder, seed) = common::start(config, torrent, work.path(), vec![]).await;
    let encrypted = saw_encrypted_dial(&seed);
    eventually(Duration::from_secs(60), "aria2c to finish", || {
        matches!(aria2.0.try_wait(), Ok(Some(_)))
    })
    .await;
    let status = aria2.0.wait().unwrap();
    assert!(status.success(), "aria2c: {status}");
    same_files(&content, &download.join("share"));
    seeder.shutdown().await;
    tokio::time::timeout(Duration::from_secs(2), encrypted)
        .await
        .is_ok_and(|seen| seen.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_aria2_downloads_from_shoal() {
    aria2_leeches_from_shoal(&[], common::loopback(71)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_download_from_transmission() {
    let work = tempfile::tempdir().unwrap();
    let setup = setup(work.path()).await;
    let transmission = transmission_seeder(work.path(), &setup).await;

    // No peers given: the torrent names the tracker, which knows Transmission's address. Transmission
    // unchokes new peers at its next rechoke (every 10 s), so this takes about that long.
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = common::start(
        common::loopback(72),
        setup.torrent.clone(),
        target.path(),
        vec![],
    )
    .await;
    let stats = downloaded_from(&transmission, &handle, Duration::from_secs(45)).await;
    assert_eq!(stats.hash_failures, 0);
    assert!(
        stats.trackers.iter().any(|t| t.last.is_ok()),
        "{:?}",
        stats.trackers
    );
    same_files(&setup.content, &target.path().join("share"));
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_magnet_from_transmission_via_tracker() {
    let work = tempfile::tempdir().unwrap();
    let setup = setup(work.path()).await;
    let transmission = transmission_seeder(work.path(), &setup).await;

    // Only the info-hash and the tracker (`tr=`): the metadata must come from Transmission.
    let target = tempfile::tempdir().unwrap();
    let session = Session::new(common::loopback(73)).await.unwrap();
    let magnet = Magnet {
        trackers: vec![setup.tracker.url()],
        ..Magnet::new(InfoHashes {
            v1: Some(setup.hash),
            v2: None,
        })
    };
    let handle = session
        .add_magnet(AddMagnet {
            magnet,
            save_path: target.path().into(),
            peers: vec![],
        })
        .unwrap();
    assert_eq!(
        handle.stats().borrow().state,
        TorrentState::FetchingMetadata
    );
    let mut stats = handle.stats();
    // The `Ref` that `wait_for` returns holds the channel's lock: turn it into a bool at once.
    let fetched = tokio::time::timeout(
        Duration::from_secs(30),
        stats.wait_for(|s| s.metadata.is_none()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let stats = handle.stats().borrow().clone();
    assert!(
        fetched,
        "no metadata: {stats:?}\nTransmission:\n{}\n{}",
        transmission.info(),
        String::from_utf8_lossy(&transmission.remote(&["-t", "1", "-ip"]).stdout)
    );
    // The info dictionary fetched is the one in the torrent file, byte for byte.
    let info = |bytes: &[u8]| {
        shoal_metainfo::Metainfo::from_bytes(bytes)
            .unwrap()
            .info
            .raw
            .to_vec()
    };
    let fetched = handle
        .torrent_file()
        .expect("the torrent file, once fetched");
    assert!(info(&fetched) == info(&setup.torrent));
    let done = downloaded_from(&transmission, &handle, Duration::from_secs(45)).await;
    assert_eq!(done.hash_failures, 0);
    same_files(&setup.content, &target.path().join("share"));
    session.shutdown().await;
}

/// A seeder whose upload is slow enough (1 MiB/s) for the connection to show in a few snapshots.
fn slow_seeder(seed: u64) -> shoal_session::SessionConfig {
    shoal_session::SessionConfig {
        upload_limit: Some(1 << 20),
        ..common::loopback(seed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_transmission_that_requires_it_downloads_from_shoal() {
    // Transmission refuses plaintext (`-er`). Shoal dials it (Transmission never dials 127.x peers):
    // plaintext first, then MSE when Transmission hangs up.
    assert!(
        transmission_leeches_from_shoal("-er", slow_seeder(73)).await,
        "no snapshot showed an encrypted connection to Transmission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_encryption_aria2_that_requires_it_downloads_from_shoal() {
    // MSE with RC4 only: aria2c refuses plaintext handshakes.
    assert!(
        aria2_leeches_from_shoal(
            &["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"],
            slow_seeder(74)
        )
        .await,
        "no snapshot showed an encrypted connection to aria2"
    );
}
