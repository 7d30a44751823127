// The invariants the `peer_session` fuzz target checks: a whole peer session against a running engine,
// through a loopback connection, with correctly framed messages made from the fuzz input. Shared, via
// `include!`/`#[path]`, by the fuzz target and by `crates/session/tests/fuzz_corpus.rs`, which replays
// the committed corpus.
//
// One session runs for the whole fuzzing run, with torrents of five 32 KiB pieces: one seeding and one
// downloading. When the download completes it is removed in the background and a twin torrent (the
// same bytes under another name) starts empty in its place, so no input waits for a removal. Each
// input is one connection.
//
// Input layout: byte 0 picks the connection (bit 0: the fast extension in our handshake; bit 1: the
// downloading torrent instead of the seeding one). The rest is a list of operations, each an opcode
// byte and its arguments (missing bytes read as 0):
//
// | opcode % 12 | sends |
// |---|---|
// | 0 | any message: id, length (one byte), that many bytes |
// | 1 | keep-alive |
// | 2 | choke / unchoke / interested / not interested |
// | 3 | have (index) |
// | 4 | bitfield of 0, 1 or 2 bytes |
// | 5 | request (index, begin, length) |
// | 6 | piece (index, begin, length; the right bytes or input bytes) |
// | 7 | cancel (index, begin, length) |
// | 8 | have all / have none / reject / allowed fast / suggest |
// | 9 | extended: a handshake (with a `metadata_size`), `ut_pex` naming our own listeners, or raw bytes to |
// |   | `ut_metadata` or an unknown id |
// | 10 | waits for the engine, then answers its requests (the right bytes, or flipped ones) |
// | 11 | waits for the engine |
//
// Checked on every input: the engine answers our handshake; everything it sends decodes under the
// protocol; it either closes the connection or answers a `ut_metadata` request (it never hangs); and
// afterwards a fresh, well-behaved peer is still served, and neither torrent is in error.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use shoal_metainfo::{InfoHash, PeerId, TorrentBuilder};
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState};
use shoal_wire::{
    DecoderConfig, ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage,
    Reserved, UT_METADATA,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PIECE_LEN: u32 = 32 * 1024;
const N_PIECES: u32 = 5;
/// Five pieces, the last one short.
const PAYLOAD_LEN: u32 = N_PIECES * PIECE_LEN - 12_345;
const BLOCK_LEN: u32 = 16 * 1024;
/// The id our fake peer wants `ut_metadata` messages under.
const SYNC_ID: u8 = 7;
/// The id the engine wants `ut_metadata` under (its extended handshake says so; checked).
const ENGINE_METADATA_ID: u8 = 2;
/// The id the engine wants `ut_pex` under.
const ENGINE_PEX_ID: u8 = 1;
/// More peers than a second of inputs leaves behind: a leak.
const MAX_LINGERING: usize = 1000;
/// A healthy engine answers within milliseconds on loopback; this is a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// One torrent of the session.
struct Torrent {
    handle: TorrentHandle,
    info_hash: InfoHash,
    torrent: Vec<u8>,
    save_path: std::path::PathBuf,
}

/// The engine under test and what it knows.
pub struct PeerSession {
    runtime: tokio::runtime::Runtime,
    session: std::sync::Arc<Session>,
    seeding: Torrent,
    downloading: Torrent,
    /// The other download twin: its info-hash and torrent file, added when `downloading` completes.
    spare: (InfoHash, Vec<u8>),
    /// The only addresses PEX offers the engine: our own listeners, which close what they accept.
    /// Anything else could be another program's port on this machine.
    pex_targets: Vec<SocketAddr>,
    payload: Vec<u8>,
    next_peer: u32,
    _dir: tempfile::TempDir,
}

impl PeerSession {
    /// Starts the session and its two torrents; a panic anywhere (an engine task included) aborts.
    pub fn new() -> Self {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            std::process::abort();
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let payload: Vec<u8> = (0..PAYLOAD_LEN)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let build = |name: &str| {
            let file = dir.path().join(name);
            std::fs::write(&file, &payload).expect("write the payload");
            let built = TorrentBuilder::new(&file)
                .piece_length(PIECE_LEN.into())
                .build()
                .expect("a torrent");
            (built.info_hashes.v1.expect("a v1 torrent"), built.bytes)
        };
        let (seed_hash, seed_torrent) = build("seeding.bin");
        let (leech_hash, leech_torrent) = build("downloading.bin");
        let spare = build("downloading-twin.bin");
        let leech_dir = dir.path().join("downloads");
        std::fs::create_dir(&leech_dir).expect("a download directory");
        let (session, seeding, downloading) = runtime.block_on(async {
            // Each input's connections close as it ends, but the engine notices a moment later: with
            // the default per-torrent cap, a run of fast inputs would find the torrent full. A leak
            // is caught below instead, by the peer count.
            let mut config = SessionConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                seed: 1,
                ..SessionConfig::default()
            };
            config.limits.max_peers_per_torrent = 4096;
            config.limits.max_connections = 8192;
            let session = Session::new(config).await.expect("a session");
            let seeding = Torrent::add(&session, seed_hash, seed_torrent, dir.path().into());
            let downloading = Torrent::add(&session, leech_hash, leech_torrent, leech_dir);
            let mut stats = seeding.handle.stats();
            let seeds = stats.wait_for(|s| s.state == TorrentState::Seeding);
            tokio::time::timeout(ANSWER_WITHIN, seeds)
                .await
                .expect("the seeding torrent checks its data in time")
                .expect("the torrent task runs");
            (std::sync::Arc::new(session), seeding, downloading)
        });
        let pex_targets = (0..4)
            .map(|_| {
                let listener = runtime
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .expect("a listener for PEX to name");
                let addr = listener.local_addr().expect("its address");
                runtime.spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        drop(stream);
                    }
                });
                addr
            })
            .collect();
        PeerSession {
            runtime,
            session,
            seeding,
            downloading,
            spare,
            pex_targets,
            payload,
            next_peer: 0,
            _dir: dir,
        }
    }

    /// Plays one input against the engine and checks it survived.
    pub fn run(&mut self, data: &[u8]) {
        let Some((&mode, ops)) = data.split_first() else {
            return;
        };
        self.next_peer = self.next_peer.wrapping_add(1);
        let peer_id = fake_peer_id(b"-FZ0001-", self.next_peer);
        let addr = self.session.local_addr();
        let torrent = if mode & 2 == 0 {
            &self.seeding
        } else {
            &self.downloading
        };
        let info_hash = torrent.info_hash;
        let reserved = if mode & 1 == 1 {
            Reserved::default().with_fast().with_extensions()
        } else {
            Reserved::default().with_extensions()
        };
        let payload = &self.payload;
        let pex_targets = &self.pex_targets;
        self.runtime.block_on(async {
            let mut fake = Fake::dial(addr, info_hash, peer_id, reserved).await;
            fake.play(ops, payload, pex_targets).await;
            // A fresh, well-behaved peer is served afterwards.
            let healthy = fake_peer_id(b"-OK0001-", self.next_peer);
            let mut check = Fake::dial(addr, info_hash, healthy, reserved).await;
            assert!(
                check.sync().await,
                "the engine dropped a well-behaved peer after input {}",
                self.next_peer
            );
        });
        for torrent in [&self.seeding, &self.downloading] {
            let stats = torrent.handle.stats().borrow().clone();
            assert!(
                !matches!(stats.state, TorrentState::Error | TorrentState::Stalled),
                "{}: {:?} {:?}",
                stats.name,
                stats.state,
                stats.error
            );
            // Closed connections are forgotten within a second (the stats' age): a count that keeps
            // growing is a leak.
            assert!(
                stats.peers.len() <= MAX_LINGERING,
                "{}: {} peers listed after input {}",
                stats.name,
                stats.peers.len(),
                self.next_peer
            );
        }
        if self.downloading.handle.stats().borrow().state == TorrentState::Seeding {
            self.restart_download();
        }
    }

    /// Starts the twin of the completed download, empty, and removes the completed one with its
    /// data in the background. If the twin's own last removal is still going on, waits for the next
    /// input.
    fn restart_download(&mut self) {
        let (hash, torrent) = self.spare.clone();
        let save_path = self.downloading.save_path.clone();
        let _guard = self.runtime.enter();
        let Ok(handle) = self.session.add_torrent(AddTorrent {
            torrent: torrent.clone(),
            save_path: save_path.clone(),
            peers: Vec::new(),
        }) else {
            return;
        };
        let fresh = Torrent {
            handle,
            info_hash: hash,
            torrent,
            save_path,
        };
        let done = std::mem::replace(&mut self.downloading, fresh);
        self.spare = (done.info_hash, done.torrent);
        let session = self.session.clone();
        self.runtime.spawn(async move {
            session
                .remove_torrent(done.info_hash, true)
                .await
                .expect("remove the completed download");
        });
    }
}

impl Default for PeerSession {
    fn default() -> Self {
        Self::new()
    }
}

impl Torrent {
    fn add(
        session: &Session,
        info_hash: InfoHash,
        torrent: Vec<u8>,
        save_path: std::path::PathBuf,
    ) -> Self {
        let handle = session
            .add_torrent(AddTorrent {
                torrent: torrent.clone(),
                save_path: save_path.clone(),
                peers: Vec::new(),
            })
            .expect("add the torrent");
        Torrent {
            handle,
            info_hash,
            torrent,
            save_path,
        }
    }
}

/// A peer id ending in `n`.
fn fake_peer_id(prefix: &[u8; 8], n: u32) -> PeerId {
    let mut id = [b'0'; 20];
    id[..8].copy_from_slice(prefix);
    id[8..].copy_from_slice(format!("{n:012}").as_bytes());
    PeerId(id)
}

/// The fuzz input, read a byte at a time; past its end, zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        let mut bytes = taken.to_vec();
        bytes.resize(n, 0);
        bytes
    }

    /// A piece index: mostly valid ones, some just past the end, some anything.
    fn index(&mut self) -> u32 {
        match self.byte() {
            b @ 0..=199 => u32::from(b) % (N_PIECES + 2),
            b => u32::from(b) << 24 | u32::from(self.byte()),
        }
    }

    /// A block's offset and length: mostly whole or last blocks, some anything.
    fn span(&mut self) -> (u32, u32) {
        let b = self.byte();
        let begin = match b & 0x0f {
            0..=11 => u32::from(b & 1) * BLOCK_LEN,
            12 => u32::from(self.byte()) * 1024,
            _ => u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
        };
        let len = match b >> 4 {
            0..=11 => BLOCK_LEN,
            12 => u32::from(self.byte()) * 256,
            13 => 0,
            _ => u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
        };
        (begin, len)
    }
}

/// Appends one message: its length prefix, `id` and `body`.
fn frame(out: &mut BytesMut, id: u8, body: &[u8]) {
    out.put_u32(body.len() as u32 + 1);
    out.put_u8(id);
    out.put_slice(body);
}

fn block_ref(index: u32, (begin, len): (u32, u32)) -> Vec<u8> {
    [index, begin, len]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// Our end of one connection.
struct Fake {
    stream: TcpStream,
    decoder: MessageDecoder,
    /// The engine closed the connection (or broke it).
    closed: bool,
    /// Requests the engine sent us, not answered yet.
    requests: Vec<(u32, u32, u32)>,
}

impl Fake {
    /// Connects, handshakes, and checks the engine's handshake.
    async fn dial(
        addr: SocketAddr,
        info_hash: InfoHash,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Self {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the engine");
        stream.set_nodelay(true).ok();
        let ours = Handshake::new(info_hash, peer_id).with_reserved(reserved);
        stream
            .write_all(&ours.to_bytes())
            .await
            .expect("send our handshake");
        let mut theirs = [0u8; Handshake::LEN];
        tokio::time::timeout(ANSWER_WITHIN, stream.read_exact(&mut theirs))
            .await
            .expect("the engine answers a handshake in time")
            .expect("the engine answers a handshake");
        let theirs = Handshake::decode(&theirs).expect("the engine's handshake is valid");
        assert_eq!(theirs.info_hash, info_hash);
        let decoder = MessageDecoder::new(DecoderConfig {
            n_pieces: Some(N_PIECES),
            fast_extension: reserved.supports_fast() && theirs.reserved.supports_fast(),
            ..DecoderConfig::default()
        });
        Fake {
            stream,
            decoder,
            closed: false,
            requests: Vec::new(),
        }
    }

    /// Plays the operations of `input`, then waits for the engine.
    async fn play(&mut self, input: &[u8], payload: &[u8], pex_targets: &[SocketAddr]) {
        let mut input = Input(input);
        let mut out = BytesMut::new();
        while !input.0.is_empty() && !self.closed {
            match input.byte() % 12 {
                0 => {
                    let id = input.byte();
                    let len = usize::from(input.byte());
                    let mut body = input.bytes(len);
                    // PEX goes through opcode 9 only, which names only our own listeners.
                    if id == 20 && body.first() == Some(&ENGINE_PEX_ID) {
                        body[0] = 99;
                    }
                    frame(&mut out, id, &body);
                }
                1 => out.put_u32(0),
                2 => frame(&mut out, input.byte() % 4, &[]),
                3 => frame(&mut out, 4, &input.index().to_be_bytes()),
                4 => {
                    let len = usize::from(input.byte() % 3);
                    frame(&mut out, 5, &input.bytes(len));
                }
                5 => frame(&mut out, 6, &block_ref(input.index(), input.span())),
                6 => {
                    let index = input.index();
                    let (begin, len) = input.span();
                    let len = len.min(BLOCK_LEN * 2);
                    let mut body = block_ref(index, (begin, len));
                    body.truncate(8);
                    if input.byte() & 1 == 0 {
                        body.extend(piece_bytes(payload, index, begin, len));
                    } else {
                        body.extend(input.bytes(len as usize));
                    }
                    frame(&mut out, 7, &body);
                }
                7 => frame(&mut out, 8, &block_ref(input.index(), input.span())),
                8 => match input.byte() % 5 {
                    0 => frame(&mut out, 0x0E, &[]),
                    1 => frame(&mut out, 0x0F, &[]),
                    2 => frame(&mut out, 0x10, &block_ref(input.index(), input.span())),
                    3 => frame(&mut out, 0x11, &input.index().to_be_bytes()),
                    _ => frame(&mut out, 0x0D, &input.index().to_be_bytes()),
                },
                9 => {
                    let which = input.byte();
                    let body = match which % 4 {
                        0 => {
                            let size =
                                u32::from_be_bytes([0, input.byte(), input.byte(), input.byte()]);
                            let mut handshake = ExtendedHandshake {
                                metadata_size: Some(size),
                                request_queue: Some(u32::from(input.byte())),
                                ..ExtendedHandshake::default()
                            }
                            .with_extension(UT_METADATA, input.byte())
                            .with_extension(shoal_wire::UT_PEX, input.byte());
                            if which & 4 != 0 {
                                handshake.metadata_size = None;
                            }
                            handshake.to_bytes()
                        }
                        1 => {
                            // Peers to dial: only our own listeners, so the engine touches nothing else on the machine.
                            let n = usize::from(input.byte() % 64);
                            let added = (0..n)
                                .map(|_| shoal_wire::PexPeer {
                                    addr: pex_targets
                                        [usize::from(input.byte()) % pex_targets.len()],
                                    flags: shoal_wire::PexFlags(input.byte()),
                                })
                                .collect();
                            let mut body = Vec::new();
                            shoal_wire::PexMessage {
                                added,
                                dropped: Vec::new(),
                            }
                            .encode_into(&mut body);
                            body
                        }
                        _ => {
                            let len = usize::from(input.byte()) * 4;
                            input.bytes(len)
                        }
                    };
                    // 0: handshake; 1: the engine's ut_pex; 2: its ut_metadata; 3: an unknown id.
                    let ext = [0, ENGINE_PEX_ID, ENGINE_METADATA_ID, 99][usize::from(which % 4)];
                    let mut message = vec![ext];
                    message.extend(body);
                    frame(&mut out, 20, &message);
                }
                op @ (10 | 11) => {
                    let corrupt = input.byte() & 1 == 1;
                    self.flush(&mut out).await;
                    if !self.sync().await {
                        return;
                    }
                    if op == 10 {
                        for (index, begin, len) in std::mem::take(&mut self.requests) {
                            let mut body = index.to_be_bytes().to_vec();
                            body.extend(begin.to_be_bytes());
                            let mut data = piece_bytes(payload, index, begin, len);
                            if corrupt {
                                data.iter_mut().for_each(|b| *b ^= 0x5a);
                            }
                            body.extend(data);
                            frame(&mut out, 7, &body);
                        }
                    }
                }
                _ => unreachable!(),
            }
            if out.len() > 64 * 1024 {
                self.flush(&mut out).await;
            }
        }
        self.flush(&mut out).await;
        self.sync().await;
    }

    async fn flush(&mut self, out: &mut BytesMut) {
        if !self.closed && self.stream.write_all(out).await.is_err() {
            self.closed = true;
        }
        out.clear();
    }

    /// Waits until the engine handled everything sent so far: asks for metadata piece 0 and reads
    /// until the answer (the engine handles a peer's messages in order and answers in order). `false`
    /// if the engine closed the connection instead.
    async fn sync(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let mut out = BytesMut::new();
        let ours = ExtendedHandshake::default().with_extension(UT_METADATA, SYNC_ID);
        ours.to_message().encode_into(&mut out);
        MetadataMessage::Request { piece: 0 }
            .to_message(ENGINE_METADATA_ID)
            .encode_into(&mut out);
        self.flush(&mut out).await;
        let answered = tokio::time::timeout(ANSWER_WITHIN, async {
            loop {
                match self.decoder.poll_message() {
                    Ok(Some(Message::Extended { id: SYNC_ID, .. })) => return true,
                    Ok(Some(Message::Extended { id: 0, payload })) => {
                        let theirs = ExtendedHandshake::decode(&payload)
                            .expect("the engine's extended handshake decodes");
                        assert_eq!(theirs.extension_id(UT_METADATA), Some(ENGINE_METADATA_ID));
                    }
                    Ok(Some(Message::Request(r))) => {
                        self.requests.push((r.piece.0, r.offset, r.len));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => match self.stream.read_buf(self.decoder.buffer_mut()).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    },
                    Err(e) => panic!("the engine broke the protocol: {e}"),
                }
            }
        })
        .await
        .expect("the engine answers or closes the connection in time");
        self.closed |= !answered;
        answered
    }
}

/// The right bytes of a block (as many as exist, zeros past the end of the payload).
fn piece_bytes(payload: &[u8], index: u32, begin: u32, len: u32) -> Vec<u8> {
    let start = (u64::from(index) * u64::from(PIECE_LEN) + u64::from(begin)) as usize;
    let mut bytes: Vec<u8> = payload
        .get(start.min(payload.len())..)
        .unwrap_or_default()
        .iter()
        .take(len as usize)
        .copied()
        .collect();
    bytes.resize(len as usize, 0);
    bytes
}
