//! Against a real tracker: Debian's opentracker on loopback, HTTP and UDP on one port, started here with a
//! whitelist of the info-hashes each test uses (INTEROP.md). Selected by `cargo xtask interop` (names
//! start with `interop_`); they fail, never skip, when opentracker is missing.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, PeerId};
use shoal_tracker::{
    AnnounceEvent, AnnounceRequest, Announcer, AnnouncerCommand, AnnouncerConfig, ClientConfig,
    TrackerClient, TrackerError, run_announcer,
};

/// Debian's opentracker (`apt-get install opentracker`; `cargo xtask interop` installs it).
fn opentracker() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("opentracker"))
            .find(|candidate| candidate.is_file())
    });
    let program = on_path.unwrap_or_else(|| "/usr/bin/opentracker".into());
    assert!(
        program.is_file(),
        "opentracker is missing: install Debian's `opentracker` package (cargo xtask interop does)"
    );
    program
}
/// Every test finishes well within this, or fails.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A running opentracker, killed (and its whitelist removed) on drop.
struct Opentracker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Opentracker {
    /// Starts opentracker on a free loopback port for HTTP and UDP, tracking only `hashes`.
    fn start(hashes: &[InfoHash]) -> Self {
        let program = opentracker();
        let dir = tempfile::tempdir().expect("temp dir");
        let whitelist = dir.path().join("whitelist");
        let lines: String = hashes.iter().map(|hash| format!("{hash}\n")).collect();
        std::fs::write(&whitelist, lines).expect("write whitelist");
        for _ in 0..10 {
            let port = free_port();
            let mut child = Command::new(&program)
                .args([
                    "-i",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-P",
                    &port.to_string(),
                ])
                .arg("-w")
                .arg(&whitelist)
                .args(["-A", "127.0.0.1"])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.display()));
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost a race for the port: try another
                }
                // opentracker listens before its whitelist is loaded: wait until it accepts a hash.
                if whitelist_loaded(port, hashes[0]) {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("opentracker did not start listening after 10 tries");
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    fn udp(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }
}

impl Drop for Opentracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether opentracker on `port` has loaded its whitelist (a thread does it after the sockets are
/// open): an announce for `hash` is accepted. The probe peer then leaves again with `stopped`, which
/// opentracker answers without looking at the whitelist, so it cannot serve as the probe itself.
fn whitelist_loaded(port: u16, hash: InfoHash) -> bool {
    let accepted = probe(port, hash, "started");
    let _ = probe(port, hash, "stopped");
    accepted
}

/// One blocking HTTP announce of a probe peer; whether the reply is not a failure.
fn probe(port: u16, hash: InfoHash, event: &str) -> bool {
    use std::io::{Read as _, Write as _};

    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let encoded: String = hash.0.iter().map(|byte| format!("%{byte:02X}")).collect();
    let request = format!(
        "GET /announce?info_hash={encoded}&peer_id=-SH0001-readinessprb&port=1&uploaded=0\
         &downloaded=0&left=0&compact=1&event={event} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    );
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut reply).is_err() {
        return false;
    }
    let reply = String::from_utf8_lossy(&reply);
    reply.contains("interval") && !reply.contains("failure reason")
}

/// A port free for both TCP and UDP on 127.0.0.1 at the time of the call, and never handed out before
/// in this process: opentracker binds with `SO_REUSEPORT`, so two trackers started by parallel tests on
/// one port would both run and share its connections.
fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind tcp");
        let port = tcp.local_addr().unwrap().port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}

fn client() -> TrackerClient {
    let mut config = ClientConfig::with_timeout(Duration::from_secs(10));
    config.udp.retransmit_base = Duration::from_millis(500);
    TrackerClient::new(config).expect("client")
}

fn request(info_hash: InfoHash, client_no: u8, port: u16) -> AnnounceRequest {
    let mut peer_id = *b"-SH0001-000000000000";
    peer_id[19] = b'0' + client_no;
    let mut request = AnnounceRequest::new(info_hash, PeerId(peer_id), port);
    request.left = 1000;
    request.event = AnnounceEvent::Started;
    request.key = u32::from(client_no);
    request
}

fn peer(port: u16) -> SocketAddr {
    (Ipv4Addr::LOCALHOST, port).into()
}

async fn with_timeout(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out");
}

/// Two clients announce to one tracker URL; each sees the other, and a scrape counts both.
async fn two_clients_see_each_other(url_of: fn(&Opentracker) -> String) {
    let hash = InfoHash([0x11; 20]);
    let other = InfoHash([0x22; 20]);
    let tracker = Opentracker::start(&[hash, other]);
    let url = url_of(&tracker);
    let (a, b) = (client(), client());

    let first = a.announce(&url, &request(hash, 1, 7001)).await.unwrap();
    assert!(first.interval.is_some());
    let mut seeder = request(hash, 2, 7002);
    seeder.left = 0;
    let second = b.announce(&url, &seeder).await.unwrap();
    assert!(second.peers.contains(&peer(7001)), "{:?}", second.peers);
    let mut again = request(hash, 1, 7001);
    again.event = AnnounceEvent::None;
    let third = a.announce(&url, &again).await.unwrap();
    assert!(third.peers.contains(&peer(7002)), "{:?}", third.peers);
    assert_eq!((third.complete, third.incomplete), (Some(1), Some(1)));

    // Many info-hashes in one scrape, one of which the tracker has no peers for.
    let scrape = a.scrape(&url, &[hash, other]).await.unwrap();
    let stats = scrape.get(&hash).expect("scraped hash");
    assert_eq!((stats.complete, stats.incomplete), (1, 1));
    if let Some(stats) = scrape.get(&other) {
        assert_eq!((stats.complete, stats.incomplete), (0, 0));
    }

    // `stopped` removes a peer.
    let mut stop = request(hash, 2, 7002);
    stop.event = AnnounceEvent::Stopped;
    b.announce(&url, &stop).await.unwrap();
    let scrape = a.scrape(&url, &[hash]).await.unwrap();
    let stats = scrape.get(&hash).unwrap();
    assert_eq!((stats.complete, stats.incomplete), (0, 1));
}

#[tokio::test]
async fn interop_opentracker_http_two_clients_and_scrape() {
    with_timeout(two_clients_see_each_other(Opentracker::http)).await;
}

#[tokio::test]
async fn interop_opentracker_udp_two_clients_and_scrape() {
    with_timeout(two_clients_see_each_other(Opentracker::udp)).await;
}

#[tokio::test]
async fn interop_opentracker_http_and_udp_share_one_swarm() {
    with_timeout(async {
        let hash = InfoHash([0x33; 20]);
        let tracker = Opentracker::start(&[hash]);
        let client = client();
        client
            .announce(&tracker.http(), &request(hash, 1, 7101))
            .await
            .unwrap();
        let reply = client
            .announce(&tracker.udp(), &request(hash, 2, 7102))
            .await
            .unwrap();
        assert!(reply.peers.contains(&peer(7101)), "{:?}", reply.peers);
    })
    .await;
}

#[tokio::test]
async fn interop_opentracker_refuses_hash_not_on_whitelist() {
    with_timeout(async {
        let tracker = Opentracker::start(&[InfoHash([0x44; 20])]);
        let client = client();
        let stranger = request(InfoHash([0x45; 20]), 1, 7201);
        match client.announce(&tracker.http(), &stranger).await {
            Err(TrackerError::Failure(reason)) => {
                assert!(reason.contains("not authorized"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Over UDP opentracker answers with an announce reply cut to its 8-byte header, not an error
        // packet: a truncated reply with the right transaction id, hence a typed error at once.
        match client.announce(&tracker.udp(), &stranger).await {
            Err(TrackerError::Truncated { action: 1, len: 8 }) => {}
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn interop_opentracker_announce_all_over_tiers() {
    with_timeout(async {
        let hash = InfoHash([0x55; 20]);
        let tracker = Opentracker::start(&[hash]);
        let dead = format!("udp://127.0.0.1:{}/announce", free_port());
        let tiers = vec![vec![tracker.http(), dead.clone()], vec![tracker.udp()]];
        let results = client().announce_all(&tiers, &request(hash, 1, 7301)).await;
        let summary: Vec<(&str, usize, bool)> = results
            .iter()
            .map(|r| (r.url.as_str(), r.tier, r.result.is_ok()))
            .collect();
        assert_eq!(
            summary,
            [
                (tracker.http().as_str(), 0, true),
                (dead.as_str(), 0, false),
                (tracker.udp().as_str(), 1, true),
            ]
        );
        let scrapes = client().scrape_all(&tiers, &[hash]).await;
        let stats = scrapes[2].result.as_ref().unwrap().get(&hash).unwrap();
        assert_eq!(stats.incomplete, 1);
    })
    .await;
}

#[tokio::test]
async fn interop_opentracker_announcer_falls_through_and_stops() {
    with_timeout(async {
        let hash = InfoHash([0x66; 20]);
        let tracker = Opentracker::start(&[hash]);
        // The first tier is dead (nothing listens: the UDP socket gets "connection refused").
        let dead = format!("udp://127.0.0.1:{}", free_port());
        let tiers = vec![vec![dead.clone()], vec![tracker.udp()]];
        let announcer = Announcer::new(tiers, AnnouncerConfig::default(), 7, Instant::now());
        let (commands, command_rx) = tokio::sync::mpsc::channel(4);
        let (outcome_tx, mut outcomes) = tokio::sync::mpsc::channel(16);
        let client = client();
        let template = request(hash, 1, 7401);
        let task = tokio::spawn(async move {
            run_announcer(
                &client,
                announcer,
                |_| template.clone(),
                command_rx,
                outcome_tx,
            )
            .await
        });
        let first = outcomes.recv().await.unwrap();
        assert_eq!(
            (first.url.as_str(), first.event),
            (dead.as_str(), AnnounceEvent::Started)
        );
        assert!(first.result.is_err());
        let second = outcomes.recv().await.unwrap();
        assert_eq!(second.url, tracker.udp());
        assert_eq!(second.event, AnnounceEvent::Started);
        assert!(second.result.is_ok(), "{:?}", second.result);

        let scrape = client_scrape(&tracker, hash).await;
        assert_eq!(scrape, 1, "registered");
        commands.send(AnnouncerCommand::Stop).await.unwrap();
        // Stopped walks the tiers from the top again: the dead one fails, opentracker answers.
        let mut stopped_ok = false;
        while let Some(outcome) = outcomes.recv().await {
            assert_eq!(outcome.event, AnnounceEvent::Stopped);
            stopped_ok |= outcome.result.is_ok();
        }
        assert!(stopped_ok);
        let announcer = task.await.unwrap();
        assert!(announcer.is_finished());
        assert_eq!(client_scrape(&tracker, hash).await, 0, "unregistered");
    })
    .await;
}

async fn client_scrape(tracker: &Opentracker, hash: InfoHash) -> u32 {
    let scrape = client().scrape(&tracker.http(), &[hash]).await.unwrap();
    scrape
        .get(&hash)
        .map_or(0, |stats| stats.incomplete + stats.complete)
}
