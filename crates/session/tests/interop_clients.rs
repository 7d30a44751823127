//! Shoal seeding to Transmission 3.00 and aria2c on loopback, peers found through opentracker. Transmission never
//! dials 127.x peers (INTEROP.md), so the Shoal seeder must connect out to the leecher the tracker tells
//! it about. aria2c too, which sends messages before its bitfield.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_metainfo::TorrentBuilder;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_transmission_downloads_from_shoal() {
    let work = tempfile::tempdir().unwrap();
    let Setup {
        tracker,
        hash,
        content,
        torrent,
        torrent_file,
    } = setup(work.path()).await;

    // Transmission first: it announces, so the tracker can hand its address to the Shoal seeder.
    let config_dir = work.path().join("transmission");
    let download = work.path().join("download");
    std::fs::create_dir_all(&download).unwrap();
    let (rpc_port, peer_port) = (common::free_port(), common::free_port());
    let daemon = Command::new("transmission-daemon")
        .args(["-f", "-O", "-Y", "-M", "-et", "--no-utp"])
        .arg("-g")
        .arg(&config_dir)
        .arg("-w")
        .arg(&download)
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
    let _daemon = Guard(daemon);
    let remote = |args: &[&str]| {
        Command::new("transmission-remote")
            .arg(format!("127.0.0.1:{rpc_port}"))
            .args(args)
            .output()
            .expect("transmission-remote is needed")
    };
    let torrent_arg = torrent_file.to_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "transmission's RPC", || {
        remote(&["-a", &torrent_arg]).status.success()
    })
    .await;
    tracker.wait_for_leecher(hash).await;
    let (seeder, _seed) = common::start(common::loopback(70), torrent, work.path(), vec![]).await;
    eventually(Duration::from_secs(90), "Transmission to finish", || {
        let info = remote(&["-t", "1", "-i"]);
        String::from_utf8_lossy(&info.stdout).contains("Percent Done: 100%")
    })
    .await;
    same_files(&content, &download.join("share"));
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_aria2_downloads_from_shoal() {
    let work = tempfile::tempdir().unwrap();
    let Setup {
        tracker,
        hash,
        content,
        torrent,
        torrent_file,
    } = setup(work.path()).await;
    let download = work.path().join("download");
    let listen = common::free_port();
    let aria2 = Command::new("aria2c")
        .arg(&torrent_file)
        .arg("--dir")
        .arg(&download)
        .args([
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
        ])
        .args(["--seed-time=0", "--file-allocation=none"])
        .args([
            &format!("--listen-port={listen}"),
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aria2c is needed (cargo xtask ci installs it)");
    let mut aria2 = Guard(aria2);
    // aria2 announces first; then the Shoal seeder learns its address and connects to it.
    tracker.wait_for_leecher(hash).await;
    let (seeder, _seed) = common::start(common::loopback(71), torrent, work.path(), vec![]).await;
    // With --seed-time=0 aria2c exits 0 once the download is complete and verified.
    eventually(Duration::from_secs(60), "aria2c to finish", || {
        matches!(aria2.0.try_wait(), Ok(Some(_)))
    })
    .await;
    let status = aria2.0.wait().unwrap();
    assert!(status.success(), "aria2c: {status}");
    same_files(&content, &download.join("share"));
    seeder.shutdown().await;
}
