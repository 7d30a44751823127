//! Shoal against python3-libtorrent on loopback: downloading from it and seeding to it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shoal_metainfo::TorrentBuilder;
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentState};

/// A libtorrent process, killed when dropped.
struct LtPeer(Child);

impl Drop for LtPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl LtPeer {
    /// Starts `lt_peer.py` and waits for its READY line.
    fn start(mode: &str, torrent: &Path, save: &Path, port: u16, peers: &[SocketAddr]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lt_peer.py");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script)
            .arg(mode)
            .arg(torrent)
            .arg(save)
            .arg(port.to_string());
        command.args(peers.iter().map(ToString::to_string));
        let child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3-libtorrent is needed (cargo xtask ci installs it)");
        let mut peer = Self(child);
        assert_eq!(peer.next_line(), "READY", "libtorrent did not start");
        peer
    }

    fn next_line(&mut self) -> String {
        let stdout = self.0.stdout.as_mut().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config() -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SessionConfig::default()
    }
}

/// A multi-file payload and its torrent file.
fn payload(dir: &Path) -> std::path::PathBuf {
    let content = dir.join("payload");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    let bytes = |len: usize, k: u32| -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(k) >> 3) as u8)
            .collect()
    };
    std::fs::write(content.join("a.bin"), bytes(3_000_001, 2654435761)).unwrap();
    std::fs::write(content.join("sub/b.bin"), bytes(777_777, 40503)).unwrap();
    let torrent = TorrentBuilder::new(&content)
        .piece_length(65_536)
        .build()
        .unwrap();
    let path = dir.join("payload.torrent");
    std::fs::write(&path, torrent.bytes).unwrap();
    path
}

fn same_files(a: &Path, b: &Path) {
    for name in ["a.bin", "sub/b.bin"] {
        assert!(
            std::fs::read(a.join(name)).unwrap() == std::fs::read(b.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_download_from_libtorrent() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
    let port = free_port();
    let _seeder = LtPeer::start("seed", &torrent, source.path(), port, &[]);

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
    same_files(
        &source.path().join("payload"),
        &target.path().join("payload"),
    );
    assert_eq!(handle.stats().borrow().hash_failures, 0);
    session.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_libtorrent_downloads_from_shoal() {
    let source = tempfile::tempdir().unwrap();
    let torrent = payload(source.path());
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
    let port = free_port();
    let mut leecher = LtPeer::start(
        "leech",
        &torrent,
        target.path(),
        port,
        &[session.local_addr()],
    );
    let done = tokio::task::spawn_blocking(move || {
        let line = leecher.next_line();
        (leecher, line)
    });
    let (_leecher, line) = tokio::time::timeout(Duration::from_secs(60), done)
        .await
        .expect("libtorrent finished")
        .unwrap();
    assert_eq!(line, "DONE");
    same_files(
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
