//! BEP 19 web seeds against real HTTP servers on loopback: nginx (ranges, the normal case) and Python's
//! `http.server` (which ignores `Range` and answers every request with the whole file).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shoal_metainfo::{MetaVersion, TorrentBuilder};
use shoal_session::{AddTorrent, Session, TorrentHandle, TorrentStats};

/// An nginx serving `root` on a loopback port, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    fn start(root: &Path) -> Self {
        let prefix = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = prefix.path().display();
        // One process (no master), so killing the child stops it all; as root it must be told to stay
        // root to read the test's private directories.
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            "{user}
            master_process off;
            worker_processes 1;
            error_log stderr warn;
            pid {p}/nginx.pid;
            events {{ worker_connections 64; }}
            http {{
                access_log {p}/access.log;
                client_body_temp_path {p}/body;
                proxy_temp_path {p}/proxy;
                fastcgi_temp_path {p}/fastcgi;
                uwsgi_temp_path {p}/uwsgi;
                scgi_temp_path {p}/scgi;
                server {{
                    listen 127.0.0.1:{port};
                    root {root};
                }}
            }}",
            root = root.display()
        );
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx is installed (cargo xtask ci installs it)");
        wait_for_port(port);
        Self {
            child,
            port,
            _prefix: prefix,
        }
    }
}

impl Nginx {
    /// The requests served so far.
    fn requests(&self) -> usize {
        std::fs::read_to_string(self._prefix.path().join("access.log"))
            .map_or(0, |log| log.lines().count())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// Pseudo-random bytes, varied by `salt`.
fn bytes(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 13) as u8)
        .collect()
}

/// Writes a directory `album` (three files, one name needing percent-encoding) under `root`.
fn album(root: &Path) -> PathBuf {
    let dir = root.join("album");
    std::fs::create_dir_all(dir.join("disc 2")).unwrap();
    std::fs::write(dir.join("01 intro.flac"), bytes(700_000, 1)).unwrap();
    std::fs::write(dir.join("disc 2/02 #two.flac"), bytes(1_300_001, 2)).unwrap();
    std::fs::write(dir.join("notes.txt"), b"liner notes\n").unwrap();
    dir
}

/// What a download saw.
struct Downloaded {
    stats: TorrentStats,
    target: tempfile::TempDir,
    /// A web seed was listed among the peers on the way.
    web_seed_seen: bool,
    /// Within 5 s of completing, no web seed was listed any more.
    web_seed_released: bool,
}

/// Downloads `torrent` into a fresh directory with no peers but the web seeds (and `peers`).
async fn download(torrent: Vec<u8>, peers: Vec<SocketAddr>, salt: u64) -> Downloaded {
    download_with(common::loopback(salt), torrent, peers).await
}

/// [`download`] by a session with `config`.
async fn download_with(
    config: shoal_session::SessionConfig,
    torrent: Vec<u8>,
    peers: Vec<SocketAddr>,
) -> Downloaded {
    let target = tempfile::tempdir().unwrap();
    let session = Session::new(config).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers,
        })
        .unwrap();
    let (stats, web_seed_seen) = watch_until_complete(&handle).await;
    let web_seed_released = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stats = handle.stats();
        let _ = stats
            .wait_for(|s| s.peers.iter().all(|p| !p.client.starts_with("web seed")))
            .await;
    })
    .await
    .is_ok();
    session.shutdown().await;
    Downloaded {
        stats,
        target,
        web_seed_seen,
        web_seed_released,
    }
}

/// Waits (up to 60 s) for `handle` to complete; also says whether a web seed was listed on the way.
async fn watch_until_complete(handle: &TorrentHandle) -> (TorrentStats, bool) {
    let mut stats = handle.stats();
    let mut seen = false;
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            stats.changed().await.unwrap();
            let now = stats.borrow_and_update().clone();
            seen |= now.peers.iter().any(|p| p.client.starts_with("web seed"));
            if now.is_complete() {
                return now;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not complete: {:?}", handle.stats().borrow()));
    (done, seen)
}

/// The v1 torrent of `path` in pieces of `piece_length`, naming the web seed `url`.
fn web_seeded(path: &Path, piece_length: u64, url: String) -> Vec<u8> {
    TorrentBuilder::new(path)
        .piece_length(piece_length)
        .web_seed(url)
        .build()
        .unwrap()
        .bytes
}

/// A Shoal seeder of `torrent` with its data in `dir`, uploading at most `limit` bytes a second, once
/// it seeds.
async fn limited_seeder(torrent: Vec<u8>, dir: &Path, limit: u64, salt: u64) -> Session {
    let config = shoal_session::SessionConfig {
        upload_limit: Some(limit),
        ..common::loopback(salt)
    };
    let (seeder, seed) = common::start(config, torrent, dir, vec![]).await;
    common::seeding(&seed, Duration::from_secs(20)).await;
    seeder
}

fn same_files(a: &Path, b: &Path) {
    for name in ["01 intro.flac", "disc 2/02 #two.flac", "notes.txt"] {
        let left = std::fs::read(a.join(name)).unwrap();
        let right = std::fs::read(b.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left == right, "{name} differs");
    }
}

/// Several files (a hybrid torrent, so with BEP 47 padding files that no server holds), served by
/// nginx from a directory URL: the download comes from the web seed alone, right to the byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_nginx_web_seed_serves_a_multi_file_torrent() {
    let www = tempfile::tempdir().unwrap();
    let dir = album(www.path());
    let nginx = Nginx::start(www.path());
    for version in [MetaVersion::V1, MetaVersion::Hybrid] {
        let torrent = TorrentBuilder::new(&dir)
            .piece_length(65_536)
            .version(version)
            .web_seed(format!("http://127.0.0.1:{}/", nginx.port))
            .build()
            .unwrap()
            .bytes;
        let got = download(torrent, vec![], 41).await;
        assert!(
            got.web_seed_seen,
            "{version:?}: the web seed was listed as a peer"
        );
        assert_eq!(got.stats.hash_failures, 0);
        assert!(got.stats.downloaded >= got.stats.bytes_total);
        same_files(&dir, &got.target.path().join("album"));
        assert!(
            got.web_seed_released,
            "{version:?}: once complete, the web seed is let go"
        );
    }
}

/// One file, the URL naming the file itself (no trailing slash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_nginx_web_seed_serves_a_single_file_by_its_own_url() {
    let www = tempfile::tempdir().unwrap();
    let file = www.path().join("talk.ogg");
    std::fs::write(&file, bytes(1_000_003, 7)).unwrap();
    let nginx = Nginx::start(www.path());
    let torrent = web_seeded(
        &file,
        32_768,
        format!("http://127.0.0.1:{}/talk.ogg", nginx.port),
    );
    let got = download(torrent, vec![], 43).await;
    assert!(got.web_seed_seen && got.web_seed_released);
    assert_eq!(got.stats.hash_failures, 0);
    assert!(
        std::fs::read(got.target.path().join("talk.ogg")).unwrap() == std::fs::read(&file).unwrap()
    );
}

/// A web seed whose files are not what the torrent says (bad data) fails its pieces, is banned and not
/// asked again; an honest peer completes the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_a_web_seed_with_wrong_data_is_banned_and_a_peer_completes() {
    let source = tempfile::tempdir().unwrap();
    let dir = album(source.path());
    let www = tempfile::tempdir().unwrap();
    let wrong = album(www.path());
    std::fs::write(wrong.join("01 intro.flac"), bytes(700_000, 99)).unwrap();
    std::fs::write(wrong.join("disc 2/02 #two.flac"), bytes(1_300_001, 98)).unwrap();
    let nginx = Nginx::start(www.path());
    let torrent = web_seeded(&dir, 65_536, format!("http://127.0.0.1:{}/", nginx.port));
    // The honest seeder uploads at 1 MiB/s, the web seed at loopback speed: the web seed gets its
    // share of the pieces.
    let seeder = limited_seeder(torrent.clone(), source.path(), 1 << 20, 45).await;
    let got = download(torrent, vec![seeder.local_addr()], 46).await;
    // Only the web seed had wrong data.
    assert!(got.stats.hash_failures >= 1, "the web seed's data failed");
    // As an unproven source it was given about one piece before it was banned, and never asked again.
    let requests = nginx.requests();
    assert!((1..=3).contains(&requests), "{requests} requests");
    same_files(&dir, &got.target.path().join("album"));
    seeder.shutdown().await;
}

/// Python's `http.server` answers a range request with the whole file (`200`): the web seed stops with
/// a clear reason and is retried with growing pauses, never delivering a wrong byte; a peer completes
/// the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_a_server_that_ignores_ranges_is_left_alone() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("big.iso");
    std::fs::write(&file, bytes(3_000_000, 5)).unwrap();
    let port = free_port();
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(source.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let torrent = web_seeded(&file, 65_536, format!("http://127.0.0.1:{port}/big.iso"));
    let seeder = limited_seeder(torrent.clone(), source.path(), 512 << 10, 47).await;
    let got = download(torrent, vec![seeder.local_addr()], 48).await;
    assert_eq!(
        got.stats.hash_failures, 0,
        "nothing from the web seed was taken"
    );
    assert!(
        std::fs::read(got.target.path().join("big.iso")).unwrap() == std::fs::read(&file).unwrap()
    );
    seeder.shutdown().await;
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let gets = log.matches("\"GET /big.iso").count();
    // About 6 s of downloading: tries at 0, 2, 4 s and so on, not one per request.
    assert!((1..=5).contains(&gets), "{gets} GETs:\n{log}");
}

/// A magnet link's `ws=` web seed: the metadata comes from a peer (BEP 9), the data from nginx (the
/// peer uploads at a trickle), and the torrent kept for the next start names the web seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_a_magnet_links_web_seed_is_used_after_the_metadata_arrives() {
    let www = tempfile::tempdir().unwrap();
    let dir = album(www.path());
    let nginx = Nginx::start(www.path());
    let torrent = TorrentBuilder::new(&dir)
        .piece_length(65_536)
        .build()
        .unwrap();
    let seeder = limited_seeder(torrent.bytes.clone(), www.path(), 64 << 10, 49).await;
    let web_seed = format!("http://127.0.0.1:{}/", nginx.port);
    let link = format!(
        "magnet:?xt=urn:btih:{}&ws={}",
        torrent.info_hashes.v1.unwrap(),
        web_seed.replace(':', "%3A").replace('/', "%2F")
    );
    let target = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let session = Session::new(shoal_session::SessionConfig {
        state_dir: Some(state.path().to_path_buf()),
        ..common::loopback(50)
    })
    .await
    .unwrap();
    let handle = session
        .add_magnet(shoal_session::AddMagnet {
            magnet: shoal_metainfo::Magnet::parse(&link).unwrap(),
            save_path: target.path().into(),
            peers: vec![seeder.local_addr()],
        })
        .unwrap();
    // 2 MB at 64 KiB/s would take half a minute from the peer alone.
    let (stats, _) = watch_until_complete(&handle).await;
    assert_eq!(stats.hash_failures, 0);
    same_files(&dir, &target.path().join("album"));
    assert!(nginx.requests() > 0, "the web seed was used");
    let kept = handle.torrent_file().expect("metadata fetched");
    let kept = shoal_metainfo::Metainfo::from_bytes(&kept).unwrap();
    assert_eq!(kept.url_list, [web_seed.as_str()]);
    session.shutdown().await;
    seeder.shutdown().await;
}

/// A web server on loopback that answers every request with a `206` header for the range asked and
/// three bytes of it, then goes silent, holding the connection open. Returns its port, its task and
/// how many connections it has taken.
async fn stalling_server() -> (u16, tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::Relaxed);
            let mut request = vec![0u8; 4096];
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut request)
                .await
                .unwrap_or(0);
            // A proper answer to the range asked for, but only its first three bytes.
            let request = String::from_utf8_lossy(&request[..n]).to_ascii_lowercase();
            let range = request
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .unwrap_or("0-0")
                .trim()
                .to_owned();
            let (first, last) = range.split_once('-').unwrap();
            let len = last.parse::<u64>().unwrap() - first.parse::<u64>().unwrap() + 1;
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {range}/1000000\r\n\
                 Content-Length: {len}\r\n\r\nabc"
            );
            let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await;
            // Never another byte, and never closed.
            held.push(stream);
        }
    });
    (port, server, requests)
}

/// A web server that answers every request with a `206` header and a few bytes, then goes silent:
/// the engine stops waiting on it (snubbing, then the read timeout) and an honest peer completes the
/// download, with nothing wrong written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_that_stalls_mid_answer_does_not_stall_the_download() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("slow.bin");
    std::fs::write(&file, bytes(1_000_000, 9)).unwrap();
    let (port, server, _) = stalling_server().await;
    let torrent = web_seeded(&file, 32_768, format!("http://127.0.0.1:{port}/slow.bin"));
    let seeder = limited_seeder(torrent.clone(), source.path(), 256 << 10, 51).await;
    let got = download(torrent, vec![seeder.local_addr()], 52).await;
    assert!(
        got.web_seed_seen,
        "the web seed was connected (and silent) meanwhile"
    );
    assert_eq!(got.stats.hash_failures, 0);
    assert!(
        std::fs::read(got.target.path().join("slow.bin")).unwrap() == std::fs::read(&file).unwrap()
    );
    server.abort();
    seeder.shutdown().await;
}

/// With web seeds turned off (`SessionConfig::web_seeds`, `--no-web-seeds`), the server is never asked
/// and the peer serves everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_web_seeds_turned_off_are_never_asked() {
    let www = tempfile::tempdir().unwrap();
    let dir = album(www.path());
    let nginx = Nginx::start(www.path());
    let torrent = web_seeded(&dir, 65_536, format!("http://127.0.0.1:{}/", nginx.port));
    let seeder = limited_seeder(torrent.clone(), www.path(), 512 << 10, 53).await;
    let config = shoal_session::SessionConfig {
        web_seeds: false,
        ..common::loopback(54)
    };
    let got = download_with(config, torrent, vec![seeder.local_addr()]).await;
    assert!(!got.web_seed_seen);
    assert_eq!(got.stats.hash_failures, 0);
    same_files(&dir, &got.target.path().join("album"));
    assert_eq!(nginx.requests(), 0);
    seeder.shutdown().await;
}

/// A web seed does not take a peer's place: with room for one peer and a stalled web seed running,
/// a seeder given afterwards is dialed at once and completes the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_web_seed_leaves_the_peer_slots_to_peers() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("slow.bin");
    std::fs::write(&file, bytes(1_000_000, 11)).unwrap();
    let (port, server, _) = stalling_server().await;
    let torrent = web_seeded(&file, 32_768, format!("http://127.0.0.1:{port}/slow.bin"));
    let seeder = limited_seeder(torrent.clone(), source.path(), 1 << 20, 55).await;
    let mut config = common::loopback(56);
    config.limits.max_peers_per_torrent = 1;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = common::start(config, torrent, target.path(), vec![]).await;
    let mut stats = handle.stats();
    tokio::time::timeout(
        Duration::from_secs(10),
        stats.wait_for(|s| s.peers.iter().any(|p| p.client.starts_with("web seed"))),
    )
    .await
    .expect("the web seed runs")
    .unwrap();
    handle.add_peers(vec![seeder.local_addr()]).await;
    // Well inside the web seed's 30 s read timeout, which would otherwise free the slot.
    let done = tokio::time::timeout(
        Duration::from_secs(15),
        stats.wait_for(|s| s.state == shoal_session::TorrentState::Seeding),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(done, "{:?}", handle.stats().borrow());
    assert!(
        std::fs::read(target.path().join("slow.bin")).unwrap() == std::fs::read(&file).unwrap()
    );
    session.shutdown().await;
    server.abort();
    seeder.shutdown().await;
}

/// A torrent naming 40 web seeds gets 16 of them running, no more: a hostile `url-list` cannot make
/// the engine open thousands of HTTP connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_sixteen_web_seeds_run() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("slow.bin");
    std::fs::write(&file, bytes(1_000_000, 12)).unwrap();
    let (port, server, requests) = stalling_server().await;
    let mut builder = TorrentBuilder::new(&file).piece_length(32_768);
    for n in 0..40 {
        builder = builder.web_seed(format!("http://127.0.0.1:{port}/{n}/slow.bin"));
    }
    let torrent = builder.build().unwrap().bytes;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) =
        common::start(common::loopback(57), torrent, target.path(), vec![]).await;
    let mut stats = handle.stats();
    // The `Ref` that `wait_for` returns holds the channel's lock: turn it into a bool at once.
    let sixteen = tokio::time::timeout(
        Duration::from_secs(10),
        stats.wait_for(|s| s.peers.len() >= 16),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(sixteen, "{:?}", handle.stats().borrow().peers.len());
    // Time for any more to start (they all start on the same tick).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(handle.stats().borrow().peers.len(), 16);
    assert_eq!(requests.load(Ordering::Relaxed), 16);
    session.shutdown().await;
    server.abort();
}
