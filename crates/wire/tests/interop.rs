//! Interop: shoal-wire alone, over a real TCP socket, against real BitTorrent clients seeding on loopback.
//!
//! Each test makes random files in a temp dir, has libtorrent's Python bindings create a v1 torrent of
//! 16 KiB pieces (so one block is one whole piece and can be checked against its SHA-1), starts a seeder,
//! then: handshake, extended handshake, bitfield (or have all), one request per piece for the first
//! pieces and the last one, SHA-1 of each against the torrent, and the metadata through `ut_metadata`,
//! checked against the info-hash.
//!
//! The clients must be installed (`cargo xtask interop` installs them): a missing one fails the test with
//! a message saying so. Children are killed when the test ends, whatever happens; every wait has a
//! timeout.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use sha1::{Digest as _, Sha1};
use shoal_metainfo::{InfoHash, PeerId};
use shoal_wire::{
    BlockRef, Client, DecoderConfig, ExtendedHandshake, ExtensionMessage, Handshake,
    HandshakeCodec, Message, MessageCodec, MetadataAssembler, MetadataMessage, PieceIndex,
    Reserved, UT_METADATA, UT_PEX, decode_extension, metadata_piece_count,
};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_util::codec::Framed;

const PYTHON: &str = "/usr/bin/python3";
const LT_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/lt_peer.py");
/// How long a whole exchange with a peer may take (Transmission unchokes on a 10 s timer).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many leading pieces to fetch, besides the last one.
const FIRST_PIECES: u32 = 6;

/// What the test needs from the `.torrent` libtorrent made, read with shoal-bencode alone.
struct Torrent {
    info_hash: InfoHash,
    piece_length: u32,
    total_len: u64,
    piece_hashes: Vec<[u8; 20]>,
}

impl Torrent {
    fn read(path: &Path) -> Self {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let torrent = shoal_bencode::decode_with(&bytes, &shoal_bencode::DecodeOptions::lenient())
            .expect("libtorrent wrote valid bencode");
        let info = torrent.get(b"info").expect("an info dictionary");
        let piece_length = info.get(b"piece length").and_then(|v| v.as_int()).unwrap();
        let total_len = match info.get(b"length").and_then(|v| v.as_int()) {
            Some(len) => len,
            None => info
                .get(b"files")
                .and_then(|v| v.as_list())
                .expect("a length or files")
                .iter()
                .map(|file| file.get(b"length").and_then(|v| v.as_int()).unwrap())
                .sum(),
        };
        let (hashes, rest) = info
            .get(b"pieces")
            .and_then(|v| v.as_bytes())
            .unwrap()
            .as_chunks::<20>();
        assert!(rest.is_empty());
        Self {
            info_hash: InfoHash::of_info(info.raw()),
            piece_length: piece_length.try_into().unwrap(),
            total_len: total_len.try_into().unwrap(),
            piece_hashes: hashes.to_vec(),
        }
    }

    fn n_pieces(&self) -> u32 {
        self.piece_hashes.len().try_into().unwrap()
    }

    fn piece_len(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_length);
        (self.total_len - start)
            .min(u64::from(self.piece_length))
            .try_into()
            .unwrap()
    }
}

/// A temp dir holding `data/` (two files of seeded pseudo-random bytes, 19 pieces in all) and, once a
/// client made it, `test.torrent`.
fn make_payload() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                // xorshift64: deterministic, no extra dependency.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    std::fs::write(data.join("a.bin"), random(300_000)).unwrap();
    std::fs::write(data.join("b.bin"), random(5_000)).unwrap();
    dir
}

/// Fails with a clear message if a program the test drives is missing.
fn require_program(path: &str, package: &str) {
    let found = if path.contains('/') {
        Path::new(path).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(path).exists()))
    };
    assert!(
        found,
        "{path} is missing: install the Debian package `{package}` (`cargo xtask interop` does)"
    );
}

fn require_libtorrent() {
    require_program(PYTHON, "python3");
    let status = std::process::Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running python3");
    assert!(
        status.success(),
        "`import libtorrent` fails in {PYTHON}: install the Debian package `python3-libtorrent`"
    );
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the libtorrent helper in `mode` and returns the child, killed on drop, and its first stdout line.
async fn run_lt_peer(mode: &str, dir: &Path) -> (Child, String) {
    let mut child = Command::new(PYTHON)
        .arg(LT_PEER)
        .arg(mode)
        .arg(dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting python3");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("the libtorrent helper ({mode}) did not answer within 60 s"))
        .unwrap()
        .unwrap_or_else(|| panic!("the libtorrent helper ({mode}) exited without answering"));
    (child, line)
}

/// What an exchange with a seeder found.
#[derive(Debug)]
struct Exchange {
    client: Option<Client>,
    their_extensions: ExtendedHandshake,
    pieces_checked: Vec<u32>,
    metadata_len: usize,
}

/// Connects to a seeder with shoal-wire alone and fetches and checks pieces and the metadata.
async fn exchange(addr: SocketAddr, torrent: &Torrent) -> Exchange {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the seeder");
    stream.set_nodelay(true).unwrap();
    let our_id = PeerId::with_prefix(b"-SH0010-", *b"wire-interop");
    let ours = Handshake::new(torrent.info_hash, our_id)
        .with_reserved(Reserved::default().with_fast().with_extensions());
    let mut framed = Framed::new(stream, HandshakeCodec);
    framed.send(ours).await.expect("sending our handshake");
    let theirs = framed
        .next()
        .await
        .expect("the seeder closed the connection before its handshake")
        .expect("a valid handshake");
    theirs.check(&torrent.info_hash, &our_id).unwrap();
    assert!(theirs.reserved.supports_extensions(), "{theirs:?}");
    let fast = theirs.reserved.supports_fast();

    let mut framed = framed.map_codec(|_| {
        MessageCodec::new(DecoderConfig {
            n_pieces: Some(torrent.n_pieces()),
            fast_extension: fast,
            ..DecoderConfig::default()
        })
    });
    let our_extensions = ExtendedHandshake {
        client: Some("Shoal wire interop".into()),
        request_queue: Some(64),
        ..ExtendedHandshake::default()
    }
    .with_extension(UT_METADATA, 3)
    .with_extension(UT_PEX, 1);
    framed.send(our_extensions.to_message()).await.unwrap();
    framed.send(Message::Interested).await.unwrap();

    let mut wanted: Vec<u32> = (0..FIRST_PIECES.min(torrent.n_pieces())).collect();
    wanted.push(torrent.n_pieces() - 1);
    let mut their_extensions = None;
    let mut metadata: Option<MetadataAssembler> = None;
    let mut metadata_done = None;
    let mut has_all = false;
    let mut unchoked = false;
    let mut requested = false;
    let mut blocks = BTreeMap::new();
    while blocks.len() < wanted.len() || metadata_done.is_none() {
        let message = framed
            .next()
            .await
            .expect("the seeder closed the connection")
            .expect("the seeder broke a rule");
        match message {
            Message::Extended { id, payload } => {
                match decode_extension(id, payload, &our_extensions)
                    .expect("a valid extension message")
                {
                    ExtensionMessage::Handshake(hs) => {
                        let size = hs
                            .metadata_size
                            .expect("the seeder announces metadata_size");
                        let their_id = hs
                            .extension_id(UT_METADATA)
                            .expect("the seeder has ut_metadata");
                        let assembler = MetadataAssembler::new(size).unwrap();
                        for piece in assembler.missing() {
                            let request = MetadataMessage::Request { piece };
                            framed.send(request.to_message(their_id)).await.unwrap();
                        }
                        metadata = Some(assembler);
                        their_extensions = Some(hs);
                    }
                    ExtensionMessage::Metadata(MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    }) => {
                        let assembler = metadata.as_mut().expect("metadata before the handshake");
                        assembler.handle_data(piece, total_size, &data).unwrap();
                        if assembler.is_complete() {
                            let done = metadata.take().unwrap();
                            metadata_done =
                                Some(done.finish(&torrent.info_hash).expect("metadata hash"));
                        }
                    }
                    ExtensionMessage::Metadata(other) => panic!("ut_metadata: {other:?}"),
                    _ => {}
                }
            }
            Message::Bitfield(bitfield) => {
                assert_eq!(
                    bitfield.count_ones(),
                    torrent.n_pieces(),
                    "a seeder has everything"
                );
                has_all = true;
            }
            Message::HaveAll => has_all = true,
            Message::Unchoke => {
                unchoked = true;
                requested = false;
            }
            Message::Choke => unchoked = false,
            Message::Piece(block) => {
                assert_eq!(block.offset, 0);
                assert_eq!(block.data.len() as u32, torrent.piece_len(block.piece.0));
                blocks.insert(block.piece.0, block.data);
            }
            Message::Reject(block) => {
                eprintln!("rejected {block:?}; will ask again after an unchoke")
            }
            _ => {}
        }
        if has_all && unchoked && !requested {
            for &piece in wanted.iter().filter(|p| !blocks.contains_key(p)) {
                let block = BlockRef {
                    piece: PieceIndex(piece),
                    offset: 0,
                    len: torrent.piece_len(piece),
                };
                framed.send(Message::Request(block)).await.unwrap();
            }
            requested = true;
        }
    }
    for (&piece, data) in &blocks {
        let hash: [u8; 20] = Sha1::digest(data).into();
        assert_eq!(
            hash, torrent.piece_hashes[piece as usize],
            "SHA-1 of piece {piece}"
        );
    }
    let metadata_len = metadata_done.unwrap().len();
    assert_eq!(metadata_piece_count(metadata_len as u32), 1);
    Exchange {
        client: Client::from_peer_id(&theirs.peer_id),
        their_extensions: their_extensions.unwrap(),
        pieces_checked: blocks.into_keys().collect(),
        metadata_len,
    }
}

#[tokio::test]
async fn interop_libtorrent_seeder() {
    require_libtorrent();
    let dir = make_payload();
    let (_seeder, ready) = run_lt_peer("seed", dir.path()).await;
    let port: u16 = ready
        .strip_prefix("READY ")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line from the libtorrent helper: {ready:?}"));
    let torrent = Torrent::read(&dir.path().join("test.torrent"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let report = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(addr, &torrent))
        .await
        .expect("the exchange with libtorrent took over 60 s");
    eprintln!("libtorrent: {report:?}");
    let client = report.client.expect("libtorrent's peer id is recognised");
    assert_eq!(client.name, "libtorrent");
    assert_eq!(report.pieces_checked, [0, 1, 2, 3, 4, 5, 18]);
    assert!(report.their_extensions.extension_id(UT_PEX).is_some());
    assert!(report.metadata_len > 0);
}

/// A transmission-daemon with its own config dir and ports, killed on drop.
struct Transmission {
    _daemon: Child,
    rpc: String,
    peer_port: u16,
    log: PathBuf,
}

impl Transmission {
    fn start(dir: &Path) -> Self {
        require_program("transmission-daemon", "transmission-daemon");
        require_program("transmission-remote", "transmission-cli");
        let config = dir.join("transmission");
        std::fs::create_dir(&config).unwrap();
        let log = dir.join("transmission.log");
        let peer_port = free_port();
        let rpc_port = free_port();
        let daemon = Command::new("transmission-daemon")
            .arg("--foreground")
            .arg("--config-dir")
            .arg(&config)
            .arg("--download-dir")
            .arg(dir)
            .args([
                "--no-dht",
                "--no-lpd",
                "--no-portmap",
                "--no-utp",
                "--no-auth",
            ])
            .args(["--encryption-tolerated", "--no-blocklist"])
            .args([
                "--bind-address-ipv4",
                "127.0.0.1",
                "--rpc-bind-address",
                "127.0.0.1",
            ])
            .args([
                "--peerport",
                &peer_port.to_string(),
                "--port",
                &rpc_port.to_string(),
            ])
            .arg("--logfile")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting transmission-daemon");
        Self {
            _daemon: daemon,
            rpc: format!("127.0.0.1:{rpc_port}"),
            peer_port,
            log,
        }
    }

    /// Runs `transmission-remote` against this daemon: its success and output.
    async fn remote(&self, args: &[&std::ffi::OsStr]) -> (bool, String) {
        let output = tokio::time::timeout(
            Duration::from_secs(10),
            Command::new("transmission-remote")
                .arg(&self.rpc)
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("transmission-remote hung")
        .expect("running transmission-remote");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    /// Adds the torrent (its data already in `dir`) and waits until Transmission has verified it and
    /// seeds.
    async fn seed(&self, torrent: &Path, dir: &Path) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let add = [
            torrent.as_os_str(),
            "--download-dir".as_ref(),
            dir.as_os_str(),
        ];
        loop {
            // The RPC server needs a moment to come up.
            let (ok, text) = self
                .remote(&["--add".as_ref(), add[0], add[1], add[2]])
                .await;
            if ok && text.contains("success") {
                break;
            }
            self.check_deadline(deadline, &text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loop {
            let (_, text) = self
                .remote(&["--torrent".as_ref(), "1".as_ref(), "--info".as_ref()])
                .await;
            // A verified seed with no peers yet shows as idle.
            let seeding = text.contains("State: Seeding") || text.contains("State: Idle");
            if text.contains("Percent Done: 100%") && seeding {
                return;
            }
            self.check_deadline(deadline, &text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn check_deadline(&self, deadline: tokio::time::Instant, last: &str) {
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("transmission did not seed within 60 s; last answer:\n{last}\nlog:\n{log}");
        }
    }
}

#[tokio::test]
async fn interop_transmission_seeder() {
    require_libtorrent(); // it makes the torrent
    let dir = make_payload();
    let (_, created) = run_lt_peer("create", dir.path()).await;
    assert_eq!(created, "CREATED");
    let torrent_path = dir.path().join("test.torrent");
    let torrent = Torrent::read(&torrent_path);
    let transmission = Transmission::start(dir.path());
    transmission.seed(&torrent_path, dir.path()).await;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, transmission.peer_port));
    let report = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(addr, &torrent))
        .await
        .expect("the exchange with Transmission took over 60 s");
    eprintln!("transmission: {report:?}");
    assert_eq!(
        report
            .client
            .expect("Transmission's peer id is recognised")
            .to_string(),
        "Transmission 3.00"
    );
    assert_eq!(report.pieces_checked, [0, 1, 2, 3, 4, 5, 18]);
    assert!(report.metadata_len > 0);
}
