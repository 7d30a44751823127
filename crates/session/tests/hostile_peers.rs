//! Hostile peers, one test per attack: a fake peer (a raw socket speaking the wire protocol through
//! `shoal_wire`) misbehaves against a Shoal session while an honest Shoal seeder is available. Each test
//! asserts that the hostile peer is dropped or limited, that the download still completes with the right
//! bytes, and that nothing grows without bound.
//!
//! To know that the engine has processed everything a fake peer sent, the fake asks for a piece of the
//! info dictionary (`ut_metadata`, BEP 9) and waits for the answer: the engine handles a peer's messages
//! in order, and its replies go out in order, so what came before the answer was the engine's reaction
//! to what the fake sent before its question.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use shoal_metainfo::{InfoHash, Metainfo, PeerId, TorrentBuilder};
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentHandle, TorrentStats};
use shoal_wire::{
    BLOCK_LEN, Bitfield, Block, BlockRef, DecoderConfig, ExtendedHandshake, Handshake, Message,
    MessageDecoder, MetadataMessage, PexMessage, PieceIndex, Reserved, UT_METADATA, UT_PEX,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// 1,000,000 bytes in 32 KiB pieces: 31 pieces (so a bitfield has one spare bit), two blocks each but
/// the last, whose second block is 576 bytes.
const PAYLOAD_LEN: u32 = 1_000_000;
const PIECE_LEN: u32 = 32 * 1024;
/// How long a hostile peer may stay connected after breaking a rule that gets it dropped.
const DROPPED_WITHIN: Duration = Duration::from_secs(5);
/// How long the download from the honest seeder may take.
const COMPLETES_WITHIN: Duration = Duration::from_secs(20);
/// How long a fake peer waits for a message the engine owes it.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The ids the fake peers want `ut_metadata` and `ut_pex` messages under.
const FAKE_METADATA_ID: u8 = 3;
const FAKE_PEX_ID: u8 = 5;

/// A distinct peer id for fake peer `n`.
fn fake_id(n: u8) -> PeerId {
    let mut id = *b"-XX0001-hostile-0000";
    id[19] = b'0' + n % 10;
    id[18] = b'0' + n / 10;
    PeerId(id)
}

/// The torrent, an honest seeder of it, and what a leecher should end up with.
struct Swarm {
    torrent: Vec<u8>,
    payload: Vec<u8>,
    info_hash: InfoHash,
    n_pieces: u32,
    seeder: Session,
    seed: TorrentHandle,
    _source: TempDir,
}

impl Swarm {
    /// A payload and its torrent, and a seeder (session seed `seed`) that seeds it.
    async fn new(seed: u64) -> Self {
        let source = tempfile::tempdir().unwrap();
        let file = source.path().join("data.bin");
        let payload: Vec<u8> = (0..PAYLOAD_LEN)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed as u32) >> 13) as u8 | 1)
            .collect();
        std::fs::write(&file, &payload).unwrap();
        let built = TorrentBuilder::new(&file)
            .piece_length(PIECE_LEN.into())
            .build()
            .unwrap();
        let info_hash = built.info_hashes.v1.unwrap();
        let torrent = built.bytes;
        let n_pieces = Metainfo::from_bytes(&torrent).unwrap().info.piece_count() as u32;
        assert_eq!(n_pieces, 31);
        let (seeder, seed) = common::start(
            common::loopback(seed),
            torrent.clone(),
            source.path(),
            vec![],
        )
        .await;
        common::seeding(&seed, COMPLETES_WITHIN).await;
        Self {
            torrent,
            payload,
            info_hash,
            n_pieces,
            seeder,
            seed,
            _source: source,
        }
    }

    fn seeder_addr(&self) -> SocketAddr {
        self.seeder.local_addr()
    }

    /// A leecher session with `config`, dialing `peers`.
    async fn leecher(&self, config: SessionConfig, peers: Vec<SocketAddr>) -> Leecher {
        let dir = tempfile::tempdir().unwrap();
        let (session, handle) =
            common::start(config, self.torrent.clone(), dir.path(), peers).await;
        Leecher {
            session,
            handle,
            dir,
        }
    }

    /// The `len`-byte block at `offset` of piece `piece`, as it should be.
    fn block(&self, piece: u32, offset: u32, len: u32) -> &[u8] {
        let start = (piece * PIECE_LEN + offset) as usize;
        &self.payload[start..start + len as usize]
    }

    async fn shutdown(self) {
        self.seeder.shutdown().await;
    }
}

/// A Shoal session downloading the swarm's torrent.
struct Leecher {
    session: Session,
    handle: TorrentHandle,
    dir: TempDir,
}

impl Leecher {
    fn addr(&self) -> SocketAddr {
        self.session.local_addr()
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("data.bin")
    }

    /// Waits until the download is complete and checks it: every byte right, no piece failed its
    /// hash check (nothing hostile was ever written).
    async fn completes(&self, swarm: &Swarm) -> TorrentStats {
        let stats = common::seeding(&self.handle, COMPLETES_WITHIN).await;
        let data = std::fs::read(self.file()).unwrap();
        assert!(data == swarm.payload, "the downloaded file is intact");
        assert_eq!(stats.hash_failures, 0, "no bad data was ever written");
        assert_eq!(stats.error, None);
        stats
    }

    async fn shutdown(self) {
        self.session.shutdown().await;
    }
}

/// Waits for a stats snapshot satisfying `condition`, and returns it.
async fn stats_where(
    handle: &TorrentHandle,
    what: &str,
    mut condition: impl FnMut(&TorrentStats) -> bool,
) -> TorrentStats {
    let mut stats = handle.stats();
    // The `Ref` is cloned at once: it holds the channel's lock.
    match tokio::time::timeout(DROPPED_WITHIN, stats.wait_for(|s| condition(s))).await {
        Ok(Ok(stats)) => stats.clone(),
        Ok(Err(_)) => panic!("the torrent task ended"),
        Err(_) => panic!(
            "{what}: not within {DROPPED_WITHIN:?}; peers: {:?}",
            handle.stats().borrow().peers
        ),
    }
}

/// Waits until `handle`'s torrent no longer lists a peer at `addr`; checks the peer list stays small
/// (at most `max_peers`).
async fn forgets(handle: &TorrentHandle, addr: SocketAddr, max_peers: usize) -> TorrentStats {
    let stats = stats_where(handle, "the hostile peer is forgotten", |s| {
        s.peers.iter().all(|p| p.addr != addr)
    })
    .await;
    assert!(
        stats.peers.len() <= max_peers,
        "{} peers listed",
        stats.peers.len()
    );
    stats
}

/// A fake peer: a socket, the info-hash it handshook for, and a decoder for what the engine sends.
struct Fake {
    stream: TcpStream,
    decoder: MessageDecoder,
    /// The ids the engine wants `ut_metadata` and `ut_pex` messages under (from its extended
    /// handshake, once seen).
    their_metadata_id: Option<u8>,
    their_pex_id: Option<u8>,
}

impl Fake {
    /// Fast extension and extension protocol.
    fn reserved() -> Reserved {
        Reserved::default().with_fast().with_extensions()
    }

    fn new(stream: TcpStream, swarm: &Swarm, reserved: Reserved) -> Self {
        let decoder = MessageDecoder::new(DecoderConfig {
            n_pieces: Some(swarm.n_pieces),
            fast_extension: reserved.supports_fast(),
            ..DecoderConfig::default()
        });
        Self {
            stream,
            decoder,
            their_metadata_id: None,
            their_pex_id: None,
        }
    }

    /// Connects to a session at `addr` and handshakes for the swarm's torrent.
    async fn dial(addr: SocketAddr, swarm: &Swarm, peer_id: PeerId) -> Self {
        Self::dial_with(addr, swarm, peer_id, Self::reserved()).await
    }

    async fn dial_with(
        addr: SocketAddr,
        swarm: &Swarm,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake_first(stream, swarm, peer_id, reserved).await
    }

    /// Sends our handshake, then reads the engine's.
    async fn handshake_first(
        mut stream: TcpStream,
        swarm: &Swarm,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Self {
        let ours = Handshake::new(swarm.info_hash, peer_id).with_reserved(reserved);
        stream.write_all(&ours.to_bytes()).await.unwrap();
        let mut theirs = [0u8; Handshake::LEN];
        tokio::time::timeout(ANSWER_WITHIN, stream.read_exact(&mut theirs))
            .await
            .expect("the engine answers the handshake")
            .expect("the engine answers the handshake");
        let theirs = Handshake::decode(&theirs).unwrap();
        assert_eq!(theirs.info_hash, swarm.info_hash);
        Self::new(stream, swarm, reserved)
    }

    /// Accepts the engine's connection on `listener`: reads its handshake, answers with ours.
    async fn accept(listener: &TcpListener, swarm: &Swarm, peer_id: PeerId) -> Self {
        let (mut stream, _) = tokio::time::timeout(ANSWER_WITHIN, listener.accept())
            .await
            .expect("the engine dials the fake peer")
            .unwrap();
        let mut theirs = [0u8; Handshake::LEN];
        stream.read_exact(&mut theirs).await.unwrap();
        let theirs = Handshake::decode(&theirs).unwrap();
        assert_eq!(theirs.info_hash, swarm.info_hash);
        let ours = Handshake::new(swarm.info_hash, peer_id).with_reserved(Self::reserved());
        stream.write_all(&ours.to_bytes()).await.unwrap();
        Self::new(stream, swarm, Self::reserved())
    }

    /// Where the engine sees this peer connect from (when the fake dialed).
    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Sends messages; `Err` if the engine closed the connection.
    async fn send(&mut self, messages: impl IntoIterator<Item = Message>) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        for message in messages {
            message.encode_into(&mut out);
        }
        self.stream.write_all(&out).await
    }

    /// The engine's next message (keep-alives skipped); `None` once it closed the connection.
    async fn recv(&mut self) -> Option<Message> {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            match self.decoder.poll_message() {
                Ok(Some(Message::KeepAlive)) => continue,
                Ok(Some(message)) => return Some(message),
                Ok(None) => {}
                Err(e) => panic!("the engine broke the protocol: {e}"),
            }
            let read = self.stream.read_buf(self.decoder.buffer_mut());
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => panic!("the engine sent nothing for {ANSWER_WITHIN:?}"),
                Ok(Ok(0) | Err(_)) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The engine's messages up to and including the first that satisfies `stop`; `None` if it
    /// closed the connection first.
    async fn recv_until(&mut self, stop: impl Fn(&Message) -> bool) -> Option<Vec<Message>> {
        let mut messages = Vec::new();
        loop {
            let message = self.recv().await?;
            let done = stop(&message);
            messages.push(message);
            if done {
                return Some(messages);
            }
        }
    }

    /// Sends our extended handshake and waits for the engine's (which it sends once it registered
    /// the connection); returns what the engine sent before it.
    async fn greet(&mut self) -> Vec<Message> {
        let ours = ExtendedHandshake::default()
            .with_extension(UT_METADATA, FAKE_METADATA_ID)
            .with_extension(UT_PEX, FAKE_PEX_ID);
        self.send([ours.to_message()]).await.unwrap();
        let mut messages = self
            .recv_until(|m| matches!(m, Message::Extended { id: 0, .. }))
            .await
            .expect("the engine keeps a well-behaved peer");
        let Some(Message::Extended { payload, .. }) = messages.pop() else {
            unreachable!()
        };
        let theirs = ExtendedHandshake::decode(&payload).unwrap();
        self.their_metadata_id = theirs.extension_id(UT_METADATA);
        self.their_pex_id = theirs.extension_id(UT_PEX);
        messages
    }

    /// Asks for the first piece of the info dictionary and waits for it: returns everything the
    /// engine sent before the answer, or `None` if it closed the connection first.
    async fn ping(&mut self) -> Option<Vec<Message>> {
        let id = self
            .their_metadata_id
            .expect("greeted, and ut_metadata offered");
        let request = MetadataMessage::Request { piece: 0 }.to_message(id);
        self.send([request]).await.ok()?;
        let answer = |message: &Message| match message {
            Message::Extended {
                id: FAKE_METADATA_ID,
                payload,
            } => matches!(
                MetadataMessage::decode(payload),
                Ok(MetadataMessage::Data { piece: 0, .. })
            ),
            _ => false,
        };
        let mut messages = self.recv_until(answer).await?;
        messages.pop();
        Some(messages)
    }

    /// Waits until the engine closes the connection (EOF or reset), discarding what it sends.
    async fn closed(mut self) {
        let deadline = Instant::now() + DROPPED_WITHIN;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => panic!("the hostile peer is still connected after {DROPPED_WITHIN:?}"),
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Whether a message is a block (`piece`).
fn is_block(message: &Message) -> bool {
    matches!(message, Message::Piece(_))
}

/// For each of `attack`'s byte strings, a fake peer connects to a session that is about to download
/// (it has nothing yet), greets it, then sends the bytes: the connection must be closed, and the
/// session forgets the peer. Then the session is given the honest seeder and completes from it.
///
/// The seeder comes second because a loopback download takes milliseconds: given at once, it would
/// often be over before the attack, and the attack would test a seeding session instead.
async fn dropped_for(seed: u64, attack: impl FnOnce(&Swarm) -> Vec<Vec<u8>>) {
    let swarm = Swarm::new(seed).await;
    let leecher = swarm.leecher(common::loopback(seed + 1), vec![]).await;
    for (n, bytes) in (1..).zip(attack(&swarm)) {
        let mut fake = Fake::dial(leecher.addr(), &swarm, fake_id(n)).await;
        assert_eq!(fake.greet().await, [Message::HaveNone]);
        let addr = fake.local_addr();
        // The engine may close before it has read everything: a failed write is fine.
        let _ = fake.stream.write_all(&bytes).await;
        fake.closed().await;
        forgets(&leecher.handle, addr, 0).await;
    }
    leecher.handle.add_peers(vec![swarm.seeder_addr()]).await;
    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

fn encoded(messages: impl IntoIterator<Item = Message>) -> Vec<u8> {
    let mut out = BytesMut::new();
    for message in messages {
        message.encode_into(&mut out);
    }
    out.to_vec()
}

/// 1. A bitfield one byte too long, and one byte too short: dropped (BEP 3: ⌈pieces/8⌉ bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bitfield_of_the_wrong_length_is_dropped() {
    dropped_for(101, |swarm| {
        let right = shoal_wire::bitfield_len(swarm.n_pieces) as usize;
        assert_eq!(right, 4);
        [right + 1, right - 1]
            .into_iter()
            .map(|len| encoded([Message::Bitfield(Bitfield::from_bytes(vec![0x80; len]))]))
            .collect()
    })
    .await;
}

/// 2. A bitfield of the right length with its spare bit set (31 pieces: the last bit is spare): dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bitfield_with_spare_bits_set_is_dropped() {
    dropped_for(111, |swarm| {
        let bytes = vec![0xff; shoal_wire::bitfield_len(swarm.n_pieces) as usize];
        assert!(
            Bitfield::from_bytes(bytes.clone())
                .validate(swarm.n_pieces)
                .is_err()
        );
        vec![encoded([Message::Bitfield(Bitfield::from_bytes(bytes))])]
    })
    .await;
}

/// 3. `have` for the first index past the end, and for the largest index: dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_have_out_of_range_is_dropped() {
    dropped_for(121, |swarm| {
        [swarm.n_pieces, u32::MAX]
            .into_iter()
            .map(|piece| encoded([Message::Have(PieceIndex(piece))]))
            .collect()
    })
    .await;
}

/// 5. A `piece` message for the first index past the end: dropped (never written anywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_for_a_piece_out_of_range_is_dropped() {
    dropped_for(131, |swarm| {
        vec![encoded([Message::Piece(Block {
            piece: PieceIndex(swarm.n_pieces),
            offset: 0,
            data: vec![0xee; BLOCK_LEN as usize].into(),
        })])]
    })
    .await;
}

/// 6. A length prefix of 4 GiB - 1, and one just over the 1 MiB cap: dropped on the prefix alone. The
/// fake sends the four bytes and nothing more, so an engine that reserved room for the message and
/// waited for its body would never close the connection (the idle timeout is two minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_gib_length_prefix_is_dropped_at_once() {
    dropped_for(141, |_| {
        let just_over = DecoderConfig::DEFAULT_MAX_MESSAGE_LEN + 1;
        vec![
            u32::MAX.to_be_bytes().to_vec(),
            [&just_over.to_be_bytes()[..], &[shoal_wire::id::PIECE]].concat(),
        ]
    })
    .await;
}

/// 4. Requests the engine must refuse without reading anything: a piece index past the end, a length
/// of 4 GiB - 1, a length of 0 (BEP 6 `reject`, the peer kept); then a block running past the end of
/// its piece, which gets the peer dropped. The seeder keeps serving an honest leecher meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_out_of_range_are_rejected_or_dropped() {
    let swarm = Swarm::new(151).await;
    let leecher = swarm
        .leecher(common::loopback(152), vec![swarm.seeder_addr()])
        .await;
    let mut fake = Fake::dial(swarm.seeder_addr(), &swarm, fake_id(1)).await;
    let first = fake.greet().await;
    assert_eq!(first, [Message::HaveAll]);
    fake.send([Message::Interested]).await.unwrap();
    fake.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");

    let refused = [
        BlockRef {
            piece: PieceIndex(swarm.n_pieces),
            offset: 0,
            len: BLOCK_LEN,
        },
        BlockRef {
            piece: PieceIndex(0),
            offset: 0,
            len: u32::MAX,
        },
        BlockRef {
            piece: PieceIndex(0),
            offset: 0,
            len: 0,
        },
    ];
    // A valid request after them shows the connection still serves.
    let valid = BlockRef {
        piece: PieceIndex(1),
        offset: BLOCK_LEN,
        len: BLOCK_LEN,
    };
    fake.send(refused.iter().chain([&valid]).map(|b| Message::Request(*b)))
        .await
        .unwrap();
    let answers = fake.ping().await.expect("still connected");
    let rejected: Vec<BlockRef> = answers
        .iter()
        .filter_map(|m| match m {
            Message::Reject(block) => Some(*block),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, refused, "each refused with BEP 6 `reject`");
    let served: Vec<&Block> = answers
        .iter()
        .filter_map(|m| match m {
            Message::Piece(block) => Some(block),
            _ => None,
        })
        .collect();
    assert_eq!(served.len(), 1, "only the valid request is served");
    assert_eq!(served[0].block_ref(), valid);
    assert!(served[0].data == swarm.block(1, BLOCK_LEN, BLOCK_LEN));

    // The second block of piece 0 starting 100 bytes early: it runs past the piece's end.
    let addr = fake.local_addr();
    let past_the_end = BlockRef {
        piece: PieceIndex(0),
        offset: PIECE_LEN - 100,
        len: BLOCK_LEN,
    };
    let _ = fake.send([Message::Request(past_the_end)]).await;
    fake.closed().await;
    forgets(&swarm.seed, addr, 1).await;

    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// 7a. A `piece` payload one byte longer than the block the engine asked for: dropped, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_longer_than_requested_is_dropped() {
    let swarm = Swarm::new(161).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = listener.local_addr().unwrap();
    let leecher = swarm.leecher(common::loopback(162), vec![fake_addr]).await;
    let mut fake = Fake::accept(&listener, &swarm, fake_id(1)).await;
    fake.greet().await;
    fake.send([Message::HaveAll, Message::Unchoke])
        .await
        .unwrap();
    let messages = fake
        .recv_until(|m| matches!(m, Message::Request(b) if b.len == BLOCK_LEN))
        .await
        .expect("the engine asks the fake for blocks");
    let Some(Message::Request(asked)) = messages.last() else {
        unreachable!()
    };
    let _ = fake
        .send([Message::Piece(Block {
            piece: asked.piece,
            offset: asked.offset,
            data: vec![0xa5; asked.len as usize + 1].into(),
        })])
        .await;
    fake.closed().await;
    forgets(&leecher.handle, fake_addr, 0).await;

    leecher.handle.add_peers(vec![swarm.seeder_addr()]).await;
    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// 7b. Blocks the engine never asked for (the fake keeps it choked, so it asks for none), filling a
/// whole piece with junk: they must not be written. Checked on disk right after the engine has
/// processed them, and by the download finishing without a single failed hash check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_never_requested_are_not_written() {
    let swarm = Swarm::new(171).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let leecher = swarm
        .leecher(common::loopback(172), vec![listener.local_addr().unwrap()])
        .await;
    let mut fake = Fake::accept(&listener, &swarm, fake_id(1)).await;
    fake.greet().await;
    // It has everything and never unchokes: the engine may not ask it for anything.
    fake.send([Message::HaveAll]).await.unwrap();
    let junk = [0xab; BLOCK_LEN as usize];
    let blocks = (0..PIECE_LEN / BLOCK_LEN).map(|n| {
        Message::Piece(Block {
            piece: PieceIndex(0),
            offset: n * BLOCK_LEN,
            data: junk.to_vec().into(),
        })
    });
    fake.send(blocks).await.unwrap();
    let answers = fake.ping().await;
    // Blocks are written as they are handled, before the answer to the ping.
    let on_disk = std::fs::read(leecher.file()).unwrap_or_default();
    let piece = on_disk.get(..PIECE_LEN as usize).unwrap_or_default();
    let junk_written = !piece.is_empty() && piece.iter().all(|b| *b == 0xab);
    assert!(!junk_written, "unrequested junk was written over piece 0");
    // Ignoring the junk is enough (the peer may stay); dropping the peer is fine too.
    if let Some(answers) = answers {
        assert!(
            !answers.iter().any(|m| matches!(m, Message::Request(_))),
            "a choking peer gets no requests"
        );
    }

    leecher.handle.add_peers(vec![swarm.seeder_addr()]).await;
    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// 8. Requests from a peer the seeder chokes (it never said it was interested): with the fast extension
/// each gets a `reject`; without it they are ignored; none is served, and both stay choked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_while_choked_are_never_served() {
    let swarm = Swarm::new(181).await;
    let leecher = swarm
        .leecher(common::loopback(182), vec![swarm.seeder_addr()])
        .await;
    let requests: Vec<BlockRef> = (0..8)
        .map(|piece| BlockRef {
            piece: PieceIndex(piece),
            offset: 0,
            len: BLOCK_LEN,
        })
        .collect();

    let mut fast = Fake::dial(swarm.seeder_addr(), &swarm, fake_id(1)).await;
    fast.greet().await;
    fast.send(requests.iter().map(|b| Message::Request(*b)))
        .await
        .unwrap();
    let answers = fast.ping().await.expect("still connected");
    assert!(!answers.iter().any(is_block), "nothing served while choked");
    let rejected: Vec<BlockRef> = answers
        .iter()
        .filter_map(|m| match m {
            Message::Reject(block) => Some(*block),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, requests, "each refused with BEP 6 `reject`");

    let plain = Reserved::default().with_extensions();
    let mut plain = Fake::dial_with(swarm.seeder_addr(), &swarm, fake_id(2), plain).await;
    plain.greet().await;
    plain
        .send(requests.iter().map(|b| Message::Request(*b)))
        .await
        .unwrap();
    let answers = plain.ping().await.expect("still connected");
    assert!(!answers.iter().any(is_block), "nothing served while choked");

    leecher.completes(&swarm).await;
    let fakes = [fast.local_addr(), plain.local_addr()];
    let seed = stats_where(&swarm.seed, "the seeder lists both fakes", |s| {
        fakes
            .iter()
            .all(|addr| s.peers.iter().any(|p| p.addr == *addr))
    })
    .await;
    for peer in seed.peers.iter().filter(|p| fakes.contains(&p.addr)) {
        assert!(peer.am_choking, "{} is still choked", peer.addr);
        assert_eq!(peer.upload_rate, 0);
    }
    assert!(seed.peers.len() <= 3, "{} peers", seed.peers.len());
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// The most requests the engine should queue for one peer (HOSTILE.md's table: an incoming request
/// queue of at most 2000; the engine itself advertises `reqq` 500).
const REQUEST_QUEUE_CAP: usize = 2000;
/// Blocks the socket buffers may hold on top of that: the engine's send buffer autotunes up to 4 MiB
/// (`tcp_wmem`); the fake's receive buffer is set small.
const SOCKET_SLACK: usize = 512;

/// 9. 10,000 requests at once from an unchoked peer that reads nothing until it sent them all: the
/// engine must not queue more than its request cap for it (each queued block is 16 KiB of memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_capped() {
    let swarm = Swarm::new(191).await;
    let leecher = swarm
        .leecher(common::loopback(192), vec![swarm.seeder_addr()])
        .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let stream = socket.connect(swarm.seeder_addr()).await.unwrap();
    let mut fake = Fake::handshake_first(stream, &swarm, fake_id(1), Fake::reserved()).await;
    fake.greet().await;
    fake.send([Message::Interested]).await.unwrap();
    fake.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");

    // Every full-size block but the last piece's, over and over.
    let full_pieces = swarm.n_pieces - 1;
    let flood = (0..10_000u32).map(|i| {
        Message::Request(BlockRef {
            piece: PieceIndex(i % full_pieces),
            offset: (i / full_pieces % 2) * BLOCK_LEN,
            len: BLOCK_LEN,
        })
    });
    // Sent whole before reading anything: the engine reads requests while its writes to us wait.
    let sent = fake.send(flood).await;
    let mut served = 0usize;
    let mut rejected = 0usize;
    if sent.is_ok() {
        // Until the answer to the ping (everything handled) or the engine hangs up.
        let id = fake.their_metadata_id.unwrap();
        let _ = fake
            .send([MetadataMessage::Request { piece: 0 }.to_message(id)])
            .await;
        while let Some(message) = fake.recv().await {
            match message {
                Message::Piece(_) => served += 1,
                Message::Reject(_) => rejected += 1,
                Message::Extended {
                    id: FAKE_METADATA_ID,
                    ..
                } => break,
                _ => {}
            }
        }
    }
    assert!(
        served <= REQUEST_QUEUE_CAP + SOCKET_SLACK,
        "{served} of 10,000 flooded requests were queued and served ({rejected} rejected)"
    );

    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// 10. Slowloris: the first peer the leecher finds has everything, unchokes, and answers its first
/// request one byte every 250 ms, forever. With a 1 s request timeout the blocks go back to the pool,
/// and the download completes from the honest seeder; the slow peer never delivers a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_peer_does_not_stall_the_download() {
    let swarm = Swarm::new(201).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = SessionConfig {
        request_timeout: Duration::from_secs(1),
        ..common::loopback(202)
    };
    config.limits.idle_timeout = Duration::from_secs(3);
    let leecher = swarm
        .leecher(config, vec![listener.local_addr().unwrap()])
        .await;
    let mut fake = Fake::accept(&listener, &swarm, fake_id(1)).await;
    fake.greet().await;
    fake.send([Message::HaveAll, Message::Unchoke])
        .await
        .unwrap();
    let messages = fake
        .recv_until(|m| matches!(m, Message::Request(_)))
        .await
        .expect("the engine asks the slow peer");
    let Some(Message::Request(asked)) = messages.last().cloned() else {
        unreachable!()
    };
    let mut answer = BytesMut::new();
    Message::Piece(Block {
        piece: asked.piece,
        offset: asked.offset,
        data: vec![0x5a; asked.len as usize].into(),
    })
    .encode_into(&mut answer);

    let Fake {
        stream,
        mut decoder,
        ..
    } = fake;
    let (mut reader, mut writer) = stream.into_split();
    let dribble = tokio::spawn(async move {
        for byte in answer {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    // Counts the requests the slow peer gets from now on (the engine's pipeline towards it).
    let requests = Arc::new(AtomicUsize::new(1));
    let counted = requests.clone();
    let listen = tokio::spawn(async move {
        loop {
            while let Ok(Some(message)) = decoder.poll_message() {
                if matches!(message, Message::Request(_)) {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }
            if !matches!(reader.read_buf(decoder.buffer_mut()).await, Ok(1..)) {
                return;
            }
        }
    });

    let started = Instant::now();
    leecher.handle.add_peers(vec![swarm.seeder_addr()]).await;
    leecher.completes(&swarm).await;
    let took = started.elapsed();
    let asked = requests.load(Ordering::SeqCst);
    // An unproven peer gets about one piece at a time; timeouts hand it a few more, not hundreds.
    assert!(asked <= 64, "the slow peer was sent {asked} requests");
    assert!(took < COMPLETES_WITHIN, "took {took:?}");
    dribble.abort();
    listen.abort();
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// 11. PEX abuse: one `ut_pex` message naming 10,000 peers makes the engine dial at most 50 of them
/// (BEP 11's convention); six messages within a minute are tolerated, the seventh gets the peer dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pex_flood_is_limited_and_dropped() {
    let swarm = Swarm::new(211).await;
    // 128 listeners on loopback that count which of them the engine dials; they hang up at once.
    let (dialed_tx, mut dialed) = tokio::sync::watch::channel(HashSet::<usize>::new());
    let dialed_tx = Arc::new(dialed_tx);
    let mut ports = Vec::new();
    let mut accepting = Vec::new();
    for index in 0..128 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        let dialed_tx = dialed_tx.clone();
        accepting.push(tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                dialed_tx.send_modify(|set| {
                    set.insert(index);
                });
            }
        }));
    }
    // Room for far more peers than PEX may add, so the PEX cap is what binds.
    let mut config = common::loopback(212);
    config.limits.max_peers_per_torrent = 1000;
    let leecher = swarm.leecher(config, vec![swarm.seeder_addr()]).await;
    let mut fake = Fake::dial(leecher.addr(), &swarm, fake_id(1)).await;
    fake.greet().await;
    let pex_id = fake.their_pex_id.expect("the engine speaks PEX");

    // Our 128 listeners first, then 127.1.x.y port 1 (nothing listens there); no flags, to stay under
    // the 64 KiB extension message cap.
    let mut compact = Vec::with_capacity(60_000);
    for i in 0..10_000u32 {
        match ports.get(i as usize) {
            Some(port) => {
                compact.extend_from_slice(&[127, 0, 0, 1]);
                compact.extend_from_slice(&port.to_be_bytes());
            }
            None => {
                compact.extend_from_slice(&[127, 1, (i >> 8) as u8, i as u8]);
                compact.extend_from_slice(&1u16.to_be_bytes());
            }
        }
    }
    let mut payload = format!("d5:added{}:", compact.len()).into_bytes();
    payload.extend_from_slice(&compact);
    payload.push(b'e');
    assert!(PexMessage::decode(&payload).is_ok());
    fake.send([Message::Extended {
        id: pex_id,
        payload: payload.into(),
    }])
    .await
    .unwrap();
    fake.ping().await.expect("one big PEX message is tolerated");
    // The dials start as the message is handled; wait for the 50 it may make, then a moment more for
    // any beyond them.
    let fifty = tokio::time::timeout(ANSWER_WITHIN, dialed.wait_for(|set| set.len() >= 50))
        .await
        .map(|seen| seen.map(|set| set.len()));
    assert!(
        matches!(fifty, Ok(Ok(50..))),
        "the engine dials the PEX peers"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n_dialed = dialed.borrow().len();
    assert_eq!(
        n_dialed, 50,
        "the engine dialed {n_dialed} of the 10,000 PEX peers"
    );

    // Five more (six in all) within the minute are tolerated...
    let empty = PexMessage::default().to_message(pex_id);
    fake.send(vec![empty.clone(); 5]).await.unwrap();
    fake.ping()
        .await
        .expect("six PEX messages in a minute are tolerated");
    // ...the seventh is a flood.
    let addr = fake.local_addr();
    let _ = fake.send([empty]).await;
    fake.closed().await;
    forgets(&leecher.handle, addr, 1).await;

    leecher.completes(&swarm).await;
    for task in accepting {
        task.abort();
    }
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// TCP sockets on 127.0.0.1 with `port` at either end, also written IPv4-mapped (from `/proc/net/tcp`
/// and `/proc/net/tcp6`), listening ones excepted: `(established, any state)`. Closed connections
/// linger in `TIME_WAIT` for a minute, on whichever side closed first.
fn connections_on(port: u16) -> (usize, usize) {
    let endpoints = [
        format!("0100007F:{port:04X}"),
        format!("0000000000000000FFFF00000100007F:{port:04X}"),
    ];
    let tables = ["/proc/net/tcp", "/proc/net/tcp6"]
        .map(|path| std::fs::read_to_string(path).unwrap_or_default());
    let states: Vec<String> = tables
        .iter()
        .flat_map(|table| table.lines().skip(1))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ours =
                fields.len() > 3 && (endpoints.iter().any(|e| fields[1] == e || fields[2] == e));
            // 0A: LISTEN.
            (ours && fields[3] != "0A").then(|| fields[3].to_owned())
        })
        .collect();
    let established = states.iter().filter(|state| *state == "01").count();
    (established, states.len())
}

/// 12. The session is given its own address as a peer: that one it skips, but the same address written
/// IPv4-mapped (`::ffff:127.0.0.1`) it dials, sees its own peer id, and keeps no connection (neither
/// end is registered), without an error; the download completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_connection_is_not_kept() {
    let swarm = Swarm::new(221).await;
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(common::loopback(222)).await.unwrap();
    let own = session.local_addr();
    let handle = session
        .add_torrent(AddTorrent {
            torrent: swarm.torrent.clone(),
            save_path: dir.path().into(),
            peers: vec![
                own,
                SocketAddr::new(
                    std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
                    own.port(),
                ),
                swarm.seeder_addr(),
            ],
        })
        .unwrap();
    let done = common::seeding(&handle, COMPLETES_WITHIN).await;
    assert!(std::fs::read(dir.path().join("data.bin")).unwrap() == swarm.payload);
    assert_eq!(done.error, None);
    let stats = stats_where(&handle, "only the seeder is listed", |s| {
        s.peers.len() == 1 && s.peers[0].addr == swarm.seeder_addr()
    })
    .await;
    assert_eq!(stats.error, None);
    // It did dial itself (the closed connection lingers), and no socket to or from its port stays open.
    assert!(
        connections_on(own.port()).1 > 0,
        "the session dialed itself"
    );
    let deadline = Instant::now() + DROPPED_WITHIN;
    while connections_on(own.port()).0 > 0 {
        assert!(
            Instant::now() < deadline,
            "a connection to ourselves is kept open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    session.shutdown().await;
    swarm.shutdown().await;
}

/// 13. Two connections with one peer id: the second is closed, the first kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_peer_id_is_closed() {
    let swarm = Swarm::new(231).await;
    let leecher = swarm
        .leecher(common::loopback(232), vec![swarm.seeder_addr()])
        .await;
    let mut first = Fake::dial(leecher.addr(), &swarm, fake_id(7)).await;
    first.greet().await;
    // The engine sends its handshake before it looks at the peer id, then closes.
    let second = Fake::dial(leecher.addr(), &swarm, fake_id(7)).await;
    let second_addr = second.local_addr();
    second.closed().await;
    first.ping().await.expect("the first connection is kept");

    leecher.completes(&swarm).await;
    let stats = stats_where(&leecher.handle, "the first is listed", |s| {
        s.peers.iter().any(|p| p.addr == first.local_addr())
    })
    .await;
    assert!(stats.peers.iter().all(|p| p.addr != second_addr));
    assert_eq!(stats.peers.len(), 2, "{:?}", stats.peers);
    leecher.shutdown().await;
    swarm.shutdown().await;
}
