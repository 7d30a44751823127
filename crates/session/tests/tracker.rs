//! Peers found through a real tracker: opentracker on loopback, a Shoal seeder and a Shoal leecher that
//! know nothing of each other but the torrent's announce URL.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shoal_metainfo::{InfoHash, PeerId, TorrentBuilder};
use shoal_session::{AddTorrent, Session, TorrentState};
use shoal_tracker::{AnnounceEvent, AnnounceRequest, ClientConfig, TrackerClient};

/// opentracker tracking `hash` only (Debian's build is whitelist-only), killed on drop.
struct Opentracker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Opentracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Opentracker {
    async fn start(hash: InfoHash) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let whitelist = dir.path().join("whitelist");
        std::fs::write(&whitelist, format!("{hash}\n")).unwrap();
        let port = loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let child = Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-A",
                "127.0.0.1",
            ])
            .arg("-w")
            .arg(&whitelist)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("opentracker is needed (cargo xtask ci installs it)");
        let tracker = Self {
            child,
            port,
            _dir: dir,
        };
        // It listens before its whitelist is loaded: wait until a probe peer is accepted, then remove it.
        let client =
            TrackerClient::new(ClientConfig::with_timeout(Duration::from_secs(2))).unwrap();
        let mut probe = AnnounceRequest::new(hash, PeerId(*b"-XX0000-readinessprb"), 1);
        for _ in 0..100 {
            probe.event = AnnounceEvent::Started;
            if client.announce(&tracker.url(), &probe).await.is_ok() {
                probe.event = AnnounceEvent::Stopped;
                let _ = client.announce(&tracker.url(), &probe).await;
                return tracker;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("opentracker never accepted the whitelisted hash");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }
}

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
    let tracker = Opentracker::start(hash).await;
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
