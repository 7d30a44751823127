//! Interop with libtorrent's DHT (python3-libtorrent, Debian's `/usr/bin/python3`), all on loopback.
//!
//! Three libtorrent sessions on 127.0.0.2-4 bootstrap from each other (with the settings that let
//! loopback nodes into their routing tables); a Shoal node on 127.0.0.1 joins through one of them. Then
//! Shoal finds a libtorrent seeder of a real torrent, and libtorrent finds a peer Shoal announced. These
//! tests fail (never skip) when python3-libtorrent is missing; `cargo xtask interop` selects them by
//! the `interop_` prefix.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shoal_dht::{Config, DhtNode, NodeConfig};
use shoal_metainfo::InfoHash;

/// Runs the libtorrent sessions; commands on stdin, answers on stdout (one line each).
const LT_SCRIPT: &str = r#"
import sys, time, libtorrent as lt

ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
port = int(sys.argv[1])
sessions = []
for i, ip in enumerate(ips):
    other = ips[(i + 1) % len(ips)]
    settings = {
        "listen_interfaces": "%s:%d" % (ip, port),
        "enable_dht": True,
        "dht_bootstrap_nodes": "%s:%d" % (other, port),
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 1000,
        "allow_multiple_connections_per_ip": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.all_categories,
    }
    sessions.append(lt.session(settings))
# The bootstrap nodes were not all listening when the first sessions started: introduce them again.
for s in sessions:
    for ip in ips:
        s.add_dht_node((ip, port))
print("READY", flush=True)

def drain(ses, want_hash, deadline):
    peers = set()
    while time.time() < deadline:
        ses.wait_for_alert(200)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert) and str(alert.info_hash) == want_hash:
                for ip, p in alert.peers():
                    peers.add("%s:%d" % (ip, p))
    return peers

for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "seed":
        # A real torrent seeded by session i: libtorrent announces it to the DHT on its own.
        import os
        ses = sessions[int(words[1])]
        os.makedirs("data", exist_ok=True)
        with open("data/payload.bin", "wb") as f:
            f.write(os.urandom(256 * 1024))
        fs = lt.file_storage()
        lt.add_files(fs, "data/payload.bin")
        ct = lt.create_torrent(fs, 16 * 1024)
        lt.set_piece_hashes(ct, "data")
        info = lt.torrent_info(ct.generate())
        handle = ses.add_torrent({"ti": info, "save_path": "data"})
        handle.force_dht_announce()
        print("SEEDING " + str(info.info_hash()), flush=True)
    elif words[0] == "get_peers":
        ses = sessions[int(words[1])]
        ses.pop_alerts()
        ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(words[2])))
        print("PEERS " + " ".join(sorted(drain(ses, words[2], time.time() + float(words[3])))), flush=True)
    elif words[0] == "nodes":
        print("NODES " + " ".join(str(s.status().dht_nodes) for s in sessions), flush=True)
    elif words[0] == "add_node":
        for s in sessions:
            s.add_dht_node((words[1], int(words[2])))
        print("OK", flush=True)
    elif words[0] == "quit":
        break
"#;

/// The python process; killed on drop so a failing test leaves nothing behind.
struct Libtorrent {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Libtorrent {
    fn start() -> Libtorrent {
        let python = "/usr/bin/python3";
        let probe = Command::new(python)
            .args(["-c", "import libtorrent"])
            .output()
            .unwrap_or_else(|e| panic!("interop needs {python} with python3-libtorrent: {e}"));
        assert!(
            probe.status.success(),
            "interop needs python3-libtorrent (apt-get install python3-libtorrent): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lt_dht.py");
        std::fs::write(&script, LT_SCRIPT).unwrap();
        let port = free_port();
        let mut child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lt = Libtorrent {
            child,
            stdin,
            lines,
            port,
            _dir: dir,
        };
        assert_eq!(lt.read(Duration::from_secs(20)), "READY");
        lt
    }

    fn read(&mut self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("libtorrent script gave no answer in {timeout:?}: {e}"))
    }

    fn ask(&mut self, command: &str, timeout: Duration) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.read(timeout)
    }

    fn addr(&self, session: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 2 + session as u8], self.port))
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on every loopback address we use, TCP and UDP (libtorrent listens on both).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let free = (2..=4).all(|last| {
            std::net::UdpSocket::bind(("127.0.0.".to_owned() + &last.to_string(), port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.".to_owned() + &last.to_string(), port))
                    .is_ok()
        });
        if free {
            return port;
        }
    }
}

fn hex(hash: &InfoHash) -> String {
    hash.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until the libtorrent sessions know each other.
fn wait_for_lt_mesh(lt: &mut Libtorrent) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = lt.ask("nodes", Duration::from_secs(5));
        let counts: Vec<usize> = answer
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        if counts.len() == 3 && counts.iter().all(|&n| n >= 1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "libtorrent sessions did not find each other: {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

async fn shoal_node(lt: &Libtorrent) -> DhtNode {
    DhtNode::spawn(NodeConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        bootstrap: vec![lt.addr(0).to_string()],
        state_dir: None,
        dht: Config {
            restrict_ips: false,
            rate_limit: None,
            ..Config::default()
        },
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_shoal_finds_a_libtorrent_seeder() {
    let mut lt = tokio::task::block_in_place(Libtorrent::start);
    tokio::task::block_in_place(|| wait_for_lt_mesh(&mut lt));
    let node = shoal_node(&lt).await;
    let size = tokio::time::timeout(Duration::from_secs(30), node.bootstrap())
        .await
        .expect("bootstrap within 30 s")
        .unwrap();
    assert!(size >= 1, "no libtorrent node entered our table");

    let answer = tokio::task::block_in_place(|| lt.ask("seed 2", Duration::from_secs(20)));
    let info_hash: InfoHash = answer
        .strip_prefix("SEEDING ")
        .and_then(|hex| hex.parse().ok())
        .unwrap_or_else(|| panic!("libtorrent did not seed: {answer}"));
    let seeder = lt.addr(2); // the session's TCP listen port has the same number
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut peers = node.get_peers(info_hash).await.unwrap();
        let mut found = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(peer) = peers.recv().await {
                found.push(peer);
            }
        })
        .await;
        if found.contains(&seeder) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shoal did not find libtorrent's announce {seeder}: found {found:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_libtorrent_finds_a_shoal_announce() {
    let mut lt = tokio::task::block_in_place(Libtorrent::start);
    tokio::task::block_in_place(|| wait_for_lt_mesh(&mut lt));
    let node = shoal_node(&lt).await;
    let answer = tokio::task::block_in_place(|| {
        lt.ask(
            &format!("add_node 127.0.0.1 {}", node.local_addr().port()),
            Duration::from_secs(5),
        )
    });
    assert_eq!(answer, "OK");
    tokio::time::timeout(Duration::from_secs(30), node.bootstrap())
        .await
        .expect("bootstrap within 30 s")
        .unwrap();

    let info_hash = InfoHash([0x3c; 20]);
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        node.announce(info_hash, Some(7777)),
    )
    .await
    .expect("announce within 30 s")
    .unwrap();
    assert!(
        result.stats.announced >= 1,
        "no libtorrent node took our announce: {result:?}"
    );

    let ours = "127.0.0.1:7777";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = tokio::task::block_in_place(|| {
            lt.ask(
                &format!("get_peers 1 {} 8", hex(&info_hash)),
                Duration::from_secs(15),
            )
        });
        if answer.split_whitespace().any(|peer| peer == ours) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "libtorrent did not find shoal's announce {ours}: {answer}"
        );
    }
    node.shutdown().await.unwrap();
}
