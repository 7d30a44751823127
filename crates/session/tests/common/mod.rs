//! What the session's integration tests share: loopback sessions and waiting for a torrent's state.

#![allow(dead_code)] // each test file uses its own part of this

pub mod fake_peer;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use shoal_metainfo::{InfoHash, PeerId};
use shoal_session::{
    AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};
use shoal_tracker::{AnnounceEvent, AnnounceRequest, ClientConfig, TrackerClient};

/// A session on 127.0.0.1 with an ephemeral port and a fixed random seed.
pub fn loopback(seed: u64) -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed,
        ..SessionConfig::default()
    }
}

/// Starts a session with `config` and adds `torrent`, saved under `save_path`, with `peers` to dial.
pub async fn start(
    config: SessionConfig,
    torrent: Vec<u8>,
    save_path: impl Into<PathBuf>,
    peers: Vec<SocketAddr>,
) -> (Session, TorrentHandle) {
    let session = Session::new(config).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent,
            save_path: save_path.into(),
            peers,
        })
        .unwrap();
    (session, handle)
}

/// Waits until the torrent seeds (complete and verified), failing on an error or after `limit`.
pub async fn seeding(handle: &TorrentHandle, limit: Duration) -> TorrentStats {
    let mut stats = handle.stats();
    let wait = stats.wait_for(|s| {
        assert_ne!(s.state, TorrentState::Error, "{:?}", s.error);
        s.state == TorrentState::Seeding
    });
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(stats)) => stats.clone(),
        Ok(Err(_)) => panic!("the torrent task ended"),
        Err(_) => panic!(
            "not complete in {limit:?}: {} pieces",
            handle.stats().borrow().pieces_have
        ),
    }
}

/// opentracker tracking `hash` only (Debian's build is whitelist-only), killed on drop.
pub struct Opentracker {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Opentracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Opentracker {
    pub async fn start(hash: InfoHash) -> Self {
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

    /// Waits until the tracker counts at least one leecher for `hash` (someone announced).
    pub async fn wait_for_leecher(&self, hash: InfoHash) {
        let client =
            TrackerClient::new(ClientConfig::with_timeout(Duration::from_secs(2))).unwrap();
        for _ in 0..150 {
            // The client derives the scrape URL from the announce URL (BEP 48).
            if let Ok(reply) = client.scrape(&self.url(), &[hash]).await
                && reply
                    .files
                    .iter()
                    .any(|(h, stats)| *h == hash && stats.incomplete > 0)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no leecher announced to the tracker");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }
}

/// Waits until the torrent seeds, and says whether any snapshot on the way showed an RC4-encrypted
/// peer connection.
pub async fn seeding_saw_encryption(handle: &TorrentHandle, limit: Duration) -> bool {
    let mut stats = handle.stats();
    let mut encrypted = false;
    let done = tokio::time::timeout(
        limit,
        stats.wait_for(|s| {
            encrypted |= s.peers.iter().any(|p| p.encrypted);
            s.state == TorrentState::Seeding
        }),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(done, "not complete: {:?}", handle.stats().borrow());
    encrypted
}

/// A helper script from `tests/support` run by `/usr/bin/python3`, killed when dropped. Its output
/// is read through one buffer for the life of the process: a reader made per line would drop
/// whatever else the same read had taken (two lines printed together lose the second).
pub struct Script {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Script {
    /// Starts `tests/support/{name}` with `args` and waits for its `READY` line.
    pub fn start<S: AsRef<std::ffi::OsStr>>(name: &str, args: impl IntoIterator<Item = S>) -> Self {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(name);
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3-libtorrent is needed (cargo xtask ci installs it)");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut script = Self { child, stdout };
        assert_eq!(script.next_line(), "READY", "{name} did not start");
        script
    }

    /// The next line the script printed, trimmed; empty once it has exited.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    /// The next line, read on a blocking thread so the runtime goes on; panics after `limit`.
    pub async fn next_line_within(self, limit: Duration) -> (Self, String) {
        let read = tokio::task::spawn_blocking(move || {
            let mut script = self;
            let line = script.next_line();
            (script, line)
        });
        tokio::time::timeout(limit, read)
            .await
            .expect("the script printed its next line in time")
            .unwrap()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lt_peer.py`: a libtorrent peer of `torrent` saving to `save`, listening on `port` and dialing
/// `peers`, with `options` such as `enc=forced`; returned once it printed READY.
pub fn lt_peer(
    mode: &str,
    torrent: &std::path::Path,
    save: &std::path::Path,
    port: u16,
    peers: &[SocketAddr],
    options: &[&str],
) -> Script {
    let mut args: Vec<std::ffi::OsString> = vec![
        mode.into(),
        torrent.into(),
        save.into(),
        port.to_string().into(),
    ];
    args.extend(options.iter().map(Into::into));
    args.extend(peers.iter().map(|peer| peer.to_string().into()));
    Script::start("lt_peer.py", args)
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it (root only, as CI runs).
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount is needed");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Self {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A free port on 127.0.0.1 (for TCP) at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A two-file payload (`payload/a.bin`, `payload/sub/b.bin`, 64 KiB pieces, `a.bin`'s last piece
/// shared with `b.bin`) and its torrent file `payload.torrent` in `dir`, announcing to `tracker` if
/// given; returns the torrent file's path and the info-hash.
pub fn lt_payload(dir: &std::path::Path, tracker: Option<&str>) -> (PathBuf, InfoHash) {
    let content = dir.join("payload");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    let bytes = |len: usize, k: u32| -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(k) >> 3) as u8)
            .collect()
    };
    std::fs::write(content.join("a.bin"), bytes(3_000_001, 2654435761)).unwrap();
    std::fs::write(content.join("sub/b.bin"), bytes(777_777, 40503)).unwrap();
    let mut builder = shoal_metainfo::TorrentBuilder::new(&content).piece_length(65_536);
    if let Some(url) = tracker {
        builder = builder.tracker_tier([url.to_owned()]);
    }
    let torrent = builder.build().unwrap();
    let path = dir.join("payload.torrent");
    std::fs::write(&path, torrent.bytes).unwrap();
    (path, torrent.info_hashes.v1.unwrap())
}

/// Asserts that both copies of [`lt_payload`]'s files are identical.
pub fn same_payload(a: &std::path::Path, b: &std::path::Path) {
    for name in ["a.bin", "sub/b.bin"] {
        let left = std::fs::read(a.join(name)).unwrap();
        let right = std::fs::read(b.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left == right, "{name} differs");
    }
}

impl Opentracker {
    /// Waits until the tracker hands out `peer` for `hash`: what a client announcing now would learn.
    /// (A scrape's counts are not enough: the readiness probe of [`start`](Self::start) is a seeder
    /// on port 1, and its `stopped` does not always remove it.) The watcher announces on port 2, then
    /// stops; should it linger too, it is one more dead address.
    pub async fn wait_for_peer(&self, hash: InfoHash, peer: SocketAddr) {
        let client =
            TrackerClient::new(ClientConfig::with_timeout(Duration::from_secs(2))).unwrap();
        let mut watch = AnnounceRequest::new(hash, PeerId(*b"-XX0000-trackerwatch"), 2);
        watch.left = 1;
        for _ in 0..150 {
            watch.event = AnnounceEvent::Started;
            if let Ok(reply) = client.announce(&self.url(), &watch).await
                && reply.peers.contains(&peer)
            {
                watch.event = AnnounceEvent::Stopped;
                let _ = client.announce(&self.url(), &watch).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the tracker never handed out {peer}");
    }
}
