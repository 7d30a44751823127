//! The swarm chaos test (hardening): a 64 MiB download on loopback from honest seeders — two Shoal
//! sessions and a python3-libtorrent process, each upload-limited — first alone, then with hostile
//! peers among them, each on its own 127.0.0.x address:
//!
//! - two bad-data peers: they have everything, unchoke, and answer every request at once with wrong
//!   bytes;
//! - two stallers: they have everything, unchoke and take requests; one never answers, the other
//!   answers its first request one byte a second (slowloris);
//! - two flooders: one floods requests (for pieces the downloader announced), `have`s and keep-alives
//!   and reads slowly; the other floods PEX messages (dead addresses and the bad peers' addresses),
//!   `have`s, keep-alives and blocks nobody asked for, and dials back in whenever it is dropped.
//!
//! The download with them must take at most 3× as long as without, write no corrupt piece, ban each
//! bad-data peer after at most two failed pieces (closed, never dialed again, refused when it dials in),
//! and the test process (downloader, Shoal seeders and fake peers together) must peak under 256 MiB.
//! The figures are printed (`--nocapture`); `cargo xtask chaos` runs this test alone.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use shoal_metainfo::{InfoHash, PeerId, TorrentBuilder};
use shoal_session::{
    AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};
use shoal_wire::{
    BLOCK_LEN, Block, BlockRef, DecoderConfig, ExtendedHandshake, Handshake, Message,
    MessageDecoder, PexFlags, PexMessage, PexPeer, PieceIndex, Reserved, UT_PEX,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// 256 KiB pieces (16 blocks each).
const PIECE_LEN: u32 = 256 * 1024;
/// 64 MiB less 100,000 bytes: 256 pieces, the last one short.
const PAYLOAD_LEN: u64 = 64 * 1024 * 1024 - 100_000;
/// Each honest seeder's upload limit: three of them make the honest-only download take about 7 s.
const SEEDER_RATE: u64 = 3 * 1024 * 1024;
/// The download with hostile peers may take at most this many times as long as without.
const MAX_RATIO: f64 = 3.0;
/// A bad-data peer must be banned after spoiling at most this many pieces.
const MAX_FAILED_PER_BAD_PEER: usize = 2;
/// The test process's peak resident memory must stay under this.
const MAX_PEAK_RSS: u64 = 256 * 1024 * 1024;
/// How long the honest-only download may take before the test gives up (not an assertion on speed:
/// only the ratio is asserted).
const HONEST_GIVE_UP: Duration = Duration::from_secs(45);
/// The downloader's peer id: the fake peers serve this one only (the seeders learn their addresses
/// through PEX and dial them too; those connections are closed at once).
const DOWNLOADER_ID: PeerId = PeerId(*b"-SH0100-chaosleecher");
/// The id the fake peers want `ut_pex` messages under.
const FAKE_PEX_ID: u8 = 7;

/// The payload's 64-bit word number `index` (splitmix64): any byte can be computed on its own, so the
/// fake peers can make wrong bytes without holding the file.
fn word(index: u64) -> u64 {
    let mut z = index
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the payload's bytes from `offset` on.
fn payload_at(offset: u64, buf: &mut [u8]) {
    let mut at = offset;
    let mut filled = 0;
    while filled < buf.len() {
        let bytes = word(at / 8).to_le_bytes();
        let skip = (at % 8) as usize;
        let n = (8 - skip).min(buf.len() - filled);
        buf[filled..filled + n].copy_from_slice(&bytes[skip..skip + n]);
        filled += n;
        at += n as u64;
    }
}

fn piece_count() -> u32 {
    PAYLOAD_LEN.div_ceil(u64::from(PIECE_LEN)) as u32
}

fn piece_len(piece: u32) -> u32 {
    let start = u64::from(piece) * u64::from(PIECE_LEN);
    (PAYLOAD_LEN - start).min(u64::from(PIECE_LEN)) as u32
}

/// Writes the payload as `chaos.bin` in `dir`, and its torrent as `chaos.torrent`; returns the
/// torrent's bytes and info-hash.
fn make_payload(dir: &Path) -> (Vec<u8>, InfoHash) {
    use std::io::Write;
    let file = dir.join("chaos.bin");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < PAYLOAD_LEN {
        let n = (PAYLOAD_LEN - offset).min(chunk.len() as u64) as usize;
        payload_at(offset, &mut chunk[..n]);
        out.write_all(&chunk[..n]).unwrap();
        offset += n as u64;
    }
    out.into_inner().unwrap().sync_all().unwrap();
    let built = TorrentBuilder::new(&file)
        .piece_length(PIECE_LEN.into())
        .build()
        .unwrap();
    std::fs::write(dir.join("chaos.torrent"), &built.bytes).unwrap();
    (built.bytes, built.info_hashes.v1.unwrap())
}

/// Pieces of `downloaded` that differ from `source` (a missing or short file counts every piece
/// missing).
fn corrupt_pieces(source: &Path, downloaded: &Path) -> usize {
    let mut a = std::fs::File::open(source).unwrap();
    let Ok(mut b) = std::fs::File::open(downloaded) else {
        return piece_count() as usize;
    };
    let (mut left, mut right) = (vec![0u8; PIECE_LEN as usize], vec![0u8; PIECE_LEN as usize]);
    (0..piece_count())
        .filter(|&piece| {
            let len = piece_len(piece) as usize;
            a.read_exact(&mut left[..len]).unwrap();
            b.read_exact(&mut right[..len]).is_err() || left[..len] != right[..len]
        })
        .count()
}

/// The process's peak resident set size (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A python3-libtorrent seeder with an upload limit that holds for loopback peers too (libtorrent
/// exempts local networks from rate limits unless their addresses are put in the global peer class).
const LT_SEEDER: &str = r#"
import sys, time
import libtorrent as lt
torrent, save_path, port, rate = sys.argv[1:5]
session = lt.session({
    "listen_interfaces": f"127.0.0.1:{port}",
    "outgoing_interfaces": "127.0.0.1",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "upload_rate_limit": int(rate),
})
classes = lt.ip_filter()
classes.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
session.set_peer_class_filter(classes)
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save_path})
deadline = time.time() + 300
while not handle.status().is_seeding:
    if time.time() > deadline:
        sys.exit(f"never finished checking: {handle.status().state}")
    time.sleep(0.05)
print("READY", flush=True)
while time.time() < deadline:
    time.sleep(0.5)
"#;

/// The libtorrent seeder's process, killed when dropped.
struct LtSeeder(Child);

impl LtSeeder {
    fn start(dir: &Path, port: u16) -> Self {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(LT_SEEDER)
            .arg(dir.join("chaos.torrent"))
            .arg(dir)
            .arg(port.to_string())
            .arg(SEEDER_RATE.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3-libtorrent is needed (cargo xtask chaos installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the libtorrent seeder did not start");
        Self(child)
    }
}

impl Drop for LtSeeder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a hostile peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Has everything, unchokes, answers every request at once with wrong bytes.
    BadData,
    /// Has everything, unchokes, takes requests and never answers.
    Silent,
    /// Has everything, unchokes, answers its first request one byte a second.
    Slowloris,
    /// Floods requests, `have`s and keep-alives; reads slowly.
    RequestFlood,
    /// Floods PEX messages, `have`s, keep-alives and unrequested blocks; dials back in when dropped.
    PexFlood,
}

/// What a hostile peer saw and did.
#[derive(Debug, Default)]
struct Record {
    /// Connections from the downloader (handshake done).
    dialed: AtomicUsize,
    /// Connections made to the downloader by the peer itself, and of those the ones it accepted (it
    /// greeted us rather than closing after its handshake).
    dialed_in: AtomicUsize,
    dial_ins_accepted: AtomicUsize,
    /// Connections the downloader closed while downloading.
    closed: AtomicUsize,
    /// Requests received.
    requests: AtomicUsize,
    /// Blocks sent (for a bad-data peer: wrong ones).
    blocks: AtomicUsize,
    /// Pieces a bad-data peer sent wrong blocks of: an upper bound on the failed pieces it caused.
    spoiled: Mutex<BTreeSet<u32>>,
    /// Messages of the flood kind sent.
    flooded: AtomicU64,
    /// A flooder's connections on which the downloader greeted it (registered it), and the blocks and
    /// rejects it got.
    registered: AtomicUsize,
    served: AtomicUsize,
    rejected: AtomicUsize,
}

/// What the fake peers know of the swarm.
#[derive(Debug)]
struct World {
    info_hash: InfoHash,
    n_pieces: u32,
    downloader: SocketAddr,
    /// Addresses the PEX flooder advertises (besides dead ones).
    advertised: Vec<SocketAddr>,
    /// Pieces the downloader announced (`have`), as the request flooder saw them.
    downloader_has: Mutex<Vec<u32>>,
    /// Set when the download completed: later closes are the shutdown's.
    done: AtomicBool,
}

/// One hostile peer: its listener's task and its record.
struct Hostile {
    role: Role,
    name: String,
    addr: SocketAddr,
    record: Arc<Record>,
    task: JoinHandle<()>,
}

impl Hostile {
    /// Serves the downloader on `listener` as `role` wants.
    fn start(role: Role, listener: TcpListener, world: Arc<World>) -> Self {
        let addr = listener.local_addr().unwrap();
        let peer_id = hostile_id(addr.ip());
        let record = Arc::new(Record::default());
        let recorded = record.clone();
        // Its connections and dial-ins live in a set owned by the task: aborting the task ends them.
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            if role == Role::PexFlood {
                connections.spawn(dial_in_loop(
                    addr.ip(),
                    peer_id,
                    world.clone(),
                    recorded.clone(),
                ));
            }
            while let Ok((stream, _)) = listener.accept().await {
                let (world, record) = (world.clone(), recorded.clone());
                connections.spawn(async move {
                    let Some(conn) = Conn::accept(stream, &world, peer_id).await else {
                        return;
                    };
                    record.dialed.fetch_add(1, Ordering::SeqCst);
                    serve(role, conn, &world, &record).await;
                    if world.done.load(Ordering::SeqCst) {
                        return;
                    }
                    record.closed.fetch_add(1, Ordering::SeqCst);
                    // A banned peer dials back in at once, from its own address: it must be refused.
                    if role == Role::BadData {
                        let accepted = dial_in_accepted(addr.ip(), &world).await;
                        record.dialed_in.fetch_add(1, Ordering::SeqCst);
                        if accepted {
                            record.dial_ins_accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
                // Reap the finished ones.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            role,
            name: format!("{role:?} {addr}"),
            addr,
            record,
            task,
        }
    }
}

/// A hostile peer's id, from the last byte of its address.
fn hostile_id(ip: IpAddr) -> PeerId {
    let IpAddr::V4(ip) = ip else {
        unreachable!("the hostile peers listen on 127.0.0.x")
    };
    let n = ip.octets()[3];
    let mut id = *b"-XX0001-chaos-peer00";
    id[17] = b'0' + n / 100;
    id[18] = b'0' + n / 10 % 10;
    id[19] = b'0' + n % 10;
    PeerId(id)
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hostile peer dials the downloader from `ip` with its id: whether it was let in (greeted) rather
/// than refused (closed after the handshake).
async fn dial_in_accepted(ip: IpAddr, world: &World) -> bool {
    match Conn::dial(ip, hostile_id(ip), world).await {
        Some(conn) => conn.greeted_within(Duration::from_secs(5)).await,
        None => false,
    }
}

/// The PEX flooder dials the downloader itself whenever it is not connected, every 300 ms at most.
async fn dial_in_loop(ip: IpAddr, peer_id: PeerId, world: Arc<World>, record: Arc<Record>) {
    while !world.done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(conn) = Conn::dial(ip, peer_id, &world).await else {
            continue;
        };
        record.dialed_in.fetch_add(1, Ordering::SeqCst);
        record.dial_ins_accepted.fetch_add(1, Ordering::SeqCst);
        serve(Role::PexFlood, conn, &world, &record).await;
    }
}

/// A fake peer's connection after the handshakes.
struct Conn {
    stream: TcpStream,
    decoder: MessageDecoder,
}

impl Conn {
    fn reserved() -> Reserved {
        Reserved::default().with_fast().with_extensions()
    }

    fn new(stream: TcpStream, world: &World) -> Self {
        let decoder = MessageDecoder::new(DecoderConfig {
            n_pieces: Some(world.n_pieces),
            fast_extension: true,
            ..DecoderConfig::default()
        });
        Self { stream, decoder }
    }

    /// Reads the handshake of a connection the downloader made and answers it; `None` for anyone else
    /// (a seeder that learned our address through PEX).
    async fn accept(mut stream: TcpStream, world: &World, peer_id: PeerId) -> Option<Self> {
        let mut theirs = [0u8; Handshake::LEN];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut theirs))
            .await
            .ok()?
            .ok()?;
        let theirs = Handshake::decode(&theirs).ok()?;
        if theirs.info_hash != world.info_hash || theirs.peer_id != DOWNLOADER_ID {
            return None;
        }
        let ours = Handshake::new(world.info_hash, peer_id).with_reserved(Self::reserved());
        stream.write_all(&ours.to_bytes()).await.ok()?;
        Some(Self::new(stream, world))
    }

    /// Dials the downloader from `ip` and handshakes; `None` if it closed before its handshake.
    async fn dial(ip: IpAddr, peer_id: PeerId, world: &World) -> Option<Self> {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::new(ip, 0)).ok()?;
        let mut stream = socket.connect(world.downloader).await.ok()?;
        let ours = Handshake::new(world.info_hash, peer_id).with_reserved(Self::reserved());
        stream.write_all(&ours.to_bytes()).await.ok()?;
        let mut theirs = [0u8; Handshake::LEN];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut theirs))
            .await
            .ok()?
            .ok()?;
        Some(Self::new(stream, world))
    }

    /// Whether the downloader sends a message (it registered us) before closing the connection or
    /// `within` passes; a refused peer sees the connection closed after the handshake.
    async fn greeted_within(mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.decoder.poll_message() {
                Ok(Some(Message::KeepAlive)) => continue,
                Ok(Some(_)) => return true,
                Ok(None) => {}
                Err(_) => return false,
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(self.decoder.buffer_mut()))
                .await
            {
                Err(_) => return true, // kept open: not refused
                Ok(Ok(0) | Err(_)) => return false,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Our extended handshake (BEP 10): PEX under [`FAKE_PEX_ID`].
fn extended_handshake() -> Message {
    ExtendedHandshake::default()
        .with_extension(UT_PEX, FAKE_PEX_ID)
        .to_message()
}

/// Runs `role` on a connection until the downloader closes it.
async fn serve(role: Role, conn: Conn, world: &World, record: &Record) {
    match role {
        Role::BadData => bad_data(conn, record).await,
        Role::Silent | Role::Slowloris => stall(role, conn, record).await,
        Role::RequestFlood | Role::PexFlood => flood(role, conn, world, record).await,
    }
}

fn encode(messages: impl IntoIterator<Item = Message>) -> BytesMut {
    let mut out = BytesMut::new();
    for message in messages {
        message.encode_into(&mut out);
    }
    out
}

/// Answers every request at once with the right length of wrong bytes (each byte of the real block
/// inverted).
async fn bad_data(mut conn: Conn, record: &Record) {
    let greeting = encode([extended_handshake(), Message::HaveAll, Message::Unchoke]);
    if conn.stream.write_all(&greeting).await.is_err() {
        return;
    }
    loop {
        match conn.stream.read_buf(conn.decoder.buffer_mut()).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut out = BytesMut::new();
        loop {
            match conn.decoder.poll_message() {
                Ok(Some(Message::Request(block))) => {
                    record.requests.fetch_add(1, Ordering::SeqCst);
                    let mut data = vec![0u8; block.len as usize];
                    let start = u64::from(block.piece.0) * u64::from(PIECE_LEN);
                    payload_at(start + u64::from(block.offset), &mut data);
                    for byte in &mut data {
                        *byte = !*byte;
                    }
                    Message::Piece(Block {
                        piece: block.piece,
                        offset: block.offset,
                        data: data.into(),
                    })
                    .encode_into(&mut out);
                    record.blocks.fetch_add(1, Ordering::SeqCst);
                    record.spoiled.lock().unwrap().insert(block.piece.0);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !out.is_empty() && conn.stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Takes requests and never answers them; the slowloris answers its first one a byte a second.
async fn stall(role: Role, conn: Conn, record: &Record) {
    let Conn {
        stream,
        mut decoder,
    } = conn;
    let (mut reader, mut writer) = stream.into_split();
    let greeting = encode([extended_handshake(), Message::HaveAll, Message::Unchoke]);
    if writer.write_all(&greeting).await.is_err() {
        return;
    }
    let mut writer = Some(writer);
    let mut dribble: Option<JoinHandle<()>> = None;
    loop {
        match reader.read_buf(decoder.buffer_mut()).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Ok(Some(message)) = decoder.poll_message() {
            let Message::Request(block) = message else {
                continue;
            };
            record.requests.fetch_add(1, Ordering::SeqCst);
            if role != Role::Slowloris {
                continue;
            }
            if let Some(mut writer) = writer.take() {
                let mut data = vec![0u8; block.len as usize];
                let start = u64::from(block.piece.0) * u64::from(PIECE_LEN);
                payload_at(start + u64::from(block.offset), &mut data);
                let answer = encode([Message::Piece(Block {
                    piece: block.piece,
                    offset: block.offset,
                    data: data.into(),
                })]);
                dribble = Some(tokio::spawn(async move {
                    for byte in answer {
                        if writer.write_all(&[byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }));
            }
        }
    }
    if let Some(dribble) = dribble {
        dribble.abort();
    }
}

/// How often a flooder sends a burst.
const FLOOD_EVERY: Duration = Duration::from_millis(100);

/// One burst of the request flooder: requests for blocks of pieces the downloader has (or any piece
/// before it has some), `have`s of every piece round and round, keep-alives.
fn request_burst(round: u64, world: &World) -> (BytesMut, u64) {
    let mut messages = Vec::new();
    if round == 0 {
        messages.push(Message::Interested);
    }
    let has = world.downloader_has.lock().unwrap().clone();
    // Full pieces only: a request past the end of the short last piece is a protocol error, not a
    // flood.
    let pieces: Vec<u32> = if has.is_empty() {
        (0..world.n_pieces - 1).collect()
    } else {
        has.into_iter()
            .filter(|&p| p < world.n_pieces - 1)
            .collect()
    };
    let blocks = PIECE_LEN / BLOCK_LEN;
    for i in 0..1000u64 {
        let n = round * 1000 + i;
        if pieces.is_empty() {
            break;
        }
        messages.push(Message::Request(BlockRef {
            piece: PieceIndex(pieces[(n % pieces.len() as u64) as usize]),
            offset: (word(n) % u64::from(blocks)) as u32 * BLOCK_LEN,
            len: BLOCK_LEN,
        }));
    }
    noise(round, world, messages)
}

/// One burst of the PEX flooder: a PEX message of 200 addresses (dead ones on 127.77.x.y:1, and those
/// of the bad peers, the stallers and the honest seeders), an unrequested block of garbage, `have`s,
/// keep-alives.
fn pex_burst(round: u64, pex_id: Option<u8>, world: &World) -> (BytesMut, u64) {
    let mut messages = Vec::new();
    if let Some(id) = pex_id {
        let mut added: Vec<PexPeer> = world
            .advertised
            .iter()
            .map(|&addr| PexPeer {
                addr,
                flags: PexFlags::default(),
            })
            .collect();
        for i in 0..200u64 - added.len() as u64 {
            let n = round * 200 + i;
            added.push(PexPeer {
                addr: SocketAddr::from((Ipv4Addr::new(127, 77, (n >> 8) as u8, n as u8), 1)),
                flags: PexFlags::default(),
            });
        }
        messages.push(
            PexMessage {
                added,
                dropped: Vec::new(),
            }
            .to_message(id),
        );
    }
    messages.push(Message::Piece(Block {
        piece: PieceIndex((word(round) % u64::from(world.n_pieces - 1)) as u32),
        offset: 0,
        data: vec![0xee; BLOCK_LEN as usize].into(),
    }));
    noise(round, world, messages)
}

/// Floods the downloader until it closes the connection. The request flooder reads at most 64 KiB
/// every 20 ms (the downloader's answers pile up on its side).
async fn flood(role: Role, conn: Conn, world: &World, record: &Record) {
    let Conn {
        stream,
        mut decoder,
    } = conn;
    let (mut reader, mut writer) = stream.into_split();
    if writer
        .write_all(&encode([extended_handshake()]))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(FLOOD_EVERY);
    let mut round = 0u64;
    let mut pex_id = None;
    let mut next_read = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut greeted = false;
    loop {
        tokio::select! {
            read = async {
                tokio::time::sleep_until(next_read).await;
                reader.read(&mut buf).await
            } => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if role == Role::RequestFlood {
                    next_read = Instant::now() + Duration::from_millis(20);
                }
                decoder.handle_bytes(&buf[..n]);
                if !greeted {
                    greeted = true;
                    record.registered.fetch_add(1, Ordering::SeqCst);
                }
                loop {
                    match decoder.poll_message() {
                        Ok(Some(Message::Piece(_))) => {
                            record.served.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Some(Message::Reject(_))) => {
                            record.rejected.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Some(Message::Have(PieceIndex(piece)))) => {
                            world.downloader_has.lock().unwrap().push(piece);
                        }
                        Ok(Some(Message::Extended { id: 0, payload })) => {
                            pex_id = ExtendedHandshake::decode(&payload)
                                .ok()
                                .and_then(|h| h.extension_id(UT_PEX));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
            _ = tick.tick() => {
                let (burst, n) = match role {
                    Role::RequestFlood => request_burst(round, world),
                    _ => pex_burst(round, pex_id, world),
                };
                round += 1;
                if writer.write_all(&burst).await.is_err() {
                    return;
                }
                record.flooded.fetch_add(n, Ordering::SeqCst);
            }
        }
    }
}

/// Waits until the torrent seeds; `None` after `limit`.
async fn completes(handle: &TorrentHandle, limit: Duration) -> Option<TorrentStats> {
    let mut stats = handle.stats();
    let wait = stats.wait_for(|s| {
        assert_ne!(s.state, TorrentState::Error, "{:?}", s.error);
        s.state == TorrentState::Seeding
    });
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(stats)) => Some(stats.clone()),
        Ok(Err(_)) => panic!("the torrent task ended"),
        Err(_) => None,
    }
}

/// A download's outcome.
struct Run {
    took: Duration,
    stats: TorrentStats,
    corrupt: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_chaos_swarm() {
    let source = tempfile::tempdir().unwrap();
    let (torrent, info_hash) = make_payload(source.path());
    let source_file = source.path().join("chaos.bin");

    // The honest seeders: two Shoal sessions and libtorrent, each uploading at SEEDER_RATE.
    let mut seeders = Vec::new();
    for seed in 0..2 {
        let config = SessionConfig {
            upload_limit: Some(SEEDER_RATE),
            ..common::loopback(9100 + seed)
        };
        let (session, handle) = common::start(config, torrent.clone(), source.path(), vec![]).await;
        common::seeding(&handle, Duration::from_secs(60)).await;
        seeders.push(session);
    }
    let lt_port = common::free_port();
    let lt = LtSeeder::start(source.path(), lt_port);
    let mut honest: Vec<SocketAddr> = seeders.iter().map(Session::local_addr).collect();
    honest.push(SocketAddr::from(([127, 0, 0, 1], lt_port)));

    // Honest only.
    let config = || SessionConfig {
        peer_id: DOWNLOADER_ID,
        ..common::loopback(9200)
    };
    let target = tempfile::tempdir().unwrap();
    let downloader = Session::new(config()).await.unwrap();
    let started = Instant::now();
    let handle = downloader
        .add_torrent(AddTorrent {
            torrent: torrent.clone(),
            save_path: target.path().into(),
            peers: honest.clone(),
        })
        .unwrap();
    let stats = completes(&handle, HONEST_GIVE_UP)
        .await
        .unwrap_or_else(|| panic!("the honest-only download took over {HONEST_GIVE_UP:?}"));
    let calm = Run {
        took: started.elapsed(),
        corrupt: corrupt_pieces(&source_file, &target.path().join("chaos.bin")),
        stats,
    };
    downloader.shutdown().await;
    drop(target);
    let rss_after_honest = peak_rss();

    // With the hostile peers: each listens on its own loopback address.
    let roles = [
        (Role::BadData, 11),
        (Role::BadData, 12),
        (Role::Silent, 21),
        (Role::Slowloris, 22),
        (Role::RequestFlood, 31),
        (Role::PexFlood, 32),
    ];
    let mut listeners = Vec::new();
    for (role, n) in roles {
        let ip = Ipv4Addr::new(127, 0, 0, n);
        listeners.push((role, TcpListener::bind((ip, 0)).await.unwrap()));
    }
    let target = tempfile::tempdir().unwrap();
    let downloader = Session::new(SessionConfig {
        seed: 9201,
        ..config()
    })
    .await
    .unwrap();
    let mut advertised: Vec<SocketAddr> = listeners
        .iter()
        .filter(|(role, _)| matches!(role, Role::BadData | Role::Silent | Role::Slowloris))
        .map(|(_, listener)| listener.local_addr().unwrap())
        .collect();
    advertised.extend(&honest);
    let world = Arc::new(World {
        info_hash,
        n_pieces: piece_count(),
        downloader: downloader.local_addr(),
        advertised,
        downloader_has: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let hostiles: Vec<Hostile> = listeners
        .into_iter()
        .map(|(role, listener)| Hostile::start(role, listener, world.clone()))
        .collect();
    // Hostile and honest addresses interleaved, so neither kind is dialed first.
    let mut peers = Vec::new();
    for i in 0..hostiles.len().max(honest.len()) {
        peers.extend(hostiles.get(i).map(|h| h.addr));
        peers.extend(honest.get(i));
    }
    let started = Instant::now();
    let handle = downloader
        .add_torrent(AddTorrent {
            torrent: torrent.clone(),
            save_path: target.path().into(),
            peers,
        })
        .unwrap();
    // Up to a little past the ratio allowed, to report how far off a failing run is.
    let limit = calm.took.mul_f64(MAX_RATIO) + Duration::from_secs(10);
    let finished = completes(&handle, limit).await;
    let took = started.elapsed();
    world.done.store(true, Ordering::SeqCst);
    let last = handle.stats().borrow().clone();
    let chaos = Run {
        took,
        corrupt: corrupt_pieces(&source_file, &target.path().join("chaos.bin")),
        stats: finished.clone().unwrap_or_else(|| last.clone()),
    };

    // Each bad-data peer dials in once more after the download: it must be refused too.
    for hostile in hostiles.iter().filter(|h| h.role == Role::BadData) {
        let ip = hostile.addr.ip();
        let accepted = dial_in_accepted(ip, &world).await;
        hostile.record.dialed_in.fetch_add(1, Ordering::SeqCst);
        if accepted {
            hostile
                .record
                .dial_ins_accepted
                .fetch_add(1, Ordering::SeqCst);
        }
    }
    let peak = peak_rss();

    // The figures.
    let ratio = chaos.took.as_secs_f64() / calm.took.as_secs_f64();
    println!(
        "chaos: payload {:.1} MiB in {} pieces of {} KiB; 3 honest seeders at {:.1} MiB/s each (2 Shoal, 1 libtorrent)",
        mib(PAYLOAD_LEN),
        piece_count(),
        PIECE_LEN / 1024,
        mib(SEEDER_RATE)
    );
    println!(
        "chaos: honest-only run: {:.2} s, {} hash failures, {} corrupt pieces; peak RSS so far {:.0} MiB",
        calm.took.as_secs_f64(),
        calm.stats.hash_failures,
        calm.corrupt,
        mib(rss_after_honest)
    );
    let bad: Vec<&Hostile> = hostiles
        .iter()
        .filter(|h| h.role == Role::BadData)
        .collect();
    let banned = |h: &Hostile| {
        let r = &h.record;
        r.dialed.load(Ordering::SeqCst) == 1
            && r.closed.load(Ordering::SeqCst) == 1
            && r.dial_ins_accepted.load(Ordering::SeqCst) == 0
            && !last.peers.iter().any(|p| p.addr == h.addr)
    };
    for hostile in &hostiles {
        let r = &hostile.record;
        println!(
            "chaos:   {:<28} dialed by the downloader {}x, closed {}x, dialed in {}x ({} let in), \
             {} requests, {} blocks sent, {} flood messages{}",
            hostile.name,
            r.dialed.load(Ordering::SeqCst),
            r.closed.load(Ordering::SeqCst),
            r.dialed_in.load(Ordering::SeqCst),
            r.dial_ins_accepted.load(Ordering::SeqCst),
            r.requests.load(Ordering::SeqCst),
            r.blocks.load(Ordering::SeqCst),
            r.flooded.load(Ordering::SeqCst),
            match hostile.role {
                Role::BadData => format!(
                    ", pieces spoiled {:?}, banned: {}",
                    r.spoiled.lock().unwrap(),
                    banned(hostile)
                ),
                Role::RequestFlood | Role::PexFlood => format!(
                    ", registered {}x, got {} blocks and {} rejects",
                    r.registered.load(Ordering::SeqCst),
                    r.served.load(Ordering::SeqCst),
                    r.rejected.load(Ordering::SeqCst)
                ),
                Role::Silent | Role::Slowloris => String::new(),
            }
        );
    }
    let n_banned = bad.iter().filter(|h| banned(h)).count();
    let most_spoiled = bad
        .iter()
        .map(|h| h.record.spoiled.lock().unwrap().len())
        .max()
        .unwrap_or(0);
    println!(
        "chaos: honest {:.1} s, chaos {:.1} s ({ratio:.2}x), hash failures {}, corrupt pieces {}, \
         bad peers banned {n_banned}/{} after ≤{most_spoiled} failed pieces, peak RSS {:.0} MiB{}",
        calm.took.as_secs_f64(),
        chaos.took.as_secs_f64(),
        chaos.stats.hash_failures,
        chaos.corrupt,
        bad.len(),
        mib(peak),
        if finished.is_some() {
            String::new()
        } else {
            format!(
                " — NOT COMPLETE: {} of {} pieces",
                last.pieces_have, last.pieces_total
            )
        }
    );

    // The assertions.
    assert_eq!(calm.stats.hash_failures, 0, "honest seeders send good data");
    assert_eq!(calm.corrupt, 0, "the honest-only download is intact");
    assert!(
        finished.is_some(),
        "the download with hostile peers completed"
    );
    assert!(
        ratio <= MAX_RATIO,
        "the download with hostile peers took {ratio:.2}x as long as without (at most {MAX_RATIO}x)"
    );
    assert_eq!(chaos.corrupt, 0, "no corrupt piece written");
    for hostile in &bad {
        let spoiled = hostile.record.spoiled.lock().unwrap().len();
        assert!(spoiled >= 1, "{} was asked for blocks", hostile.name);
        assert!(
            spoiled <= MAX_FAILED_PER_BAD_PEER,
            "{} spoiled {spoiled} pieces before it was banned",
            hostile.name
        );
        assert!(banned(hostile), "{} is banned", hostile.name);
    }
    assert!(
        chaos.stats.hash_failures as usize <= MAX_FAILED_PER_BAD_PEER * bad.len(),
        "{} hash failures from {} bad-data peers",
        chaos.stats.hash_failures,
        bad.len()
    );
    assert!(
        chaos.stats.hash_failures >= 1,
        "the bad data reached the hash check"
    );
    assert!(
        peak < MAX_PEAK_RSS,
        "peak RSS {:.0} MiB (at most {:.0})",
        mib(peak),
        mib(MAX_PEAK_RSS)
    );

    downloader.shutdown().await;
    drop(hostiles);
    for seeder in seeders {
        seeder.shutdown().await;
    }
    drop(lt);
}

/// Ends a flooder's burst: 64 `have`s and 500 keep-alives after `messages`; the bytes and the message
/// count.
fn noise(round: u64, world: &World, mut messages: Vec<Message>) -> (BytesMut, u64) {
    for i in 0..64u64 {
        let piece = ((round * 64 + i) % u64::from(world.n_pieces)) as u32;
        messages.push(Message::Have(PieceIndex(piece)));
    }
    messages.extend(std::iter::repeat_n(Message::KeepAlive, 500));
    let n = messages.len() as u64;
    (encode(messages), n)
}
