//! Hostile peers, one test per attack: a fake peer (a raw socket speaking the wire protocol through
//! `shoal_wire`) misbehaves against a Shoal session while an honest Shoal seeder is available. Each test
//! asserts that the hostile peer is dropped or limited, that the download still completes with the right
//! bytes, and that nothing grows without bound.
//!
//! The fake peer, and how it knows that the engine has processed everything it sent (it asks for a piece
//! of the info dictionary and waits for the answer), are in `common/fake_peer.rs`.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use common::fake_peer::{
    ANSWER_WITHIN, DROPPED_WITHIN, FAKE_METADATA_ID, FakePeer as Fake, Payload, encoded, fake_id,
    forgets, is_block, stats_where,
};
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentHandle, TorrentStats};
use shoal_wire::{
    BLOCK_LEN, Bitfield, Block, BlockRef, DecoderConfig, Message, MetadataMessage, PexMessage,
    PieceIndex, Reserved,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// 1,000,000 bytes in 32 KiB pieces: 31 pieces (so a bitfield has one spare bit), two blocks each but
/// the last, whose second block is 576 bytes.
const PAYLOAD_LEN: u32 = 1_000_000;
const PIECE_LEN: u32 = 32 * 1024;
/// How long the download from the honest seeder may take.
const COMPLETES_WITHIN: Duration = Duration::from_secs(20);

/// The torrent, an honest seeder of it, and what a leecher should end up with.
struct Swarm {
    payload: Payload,
    seeder: Session,
    seed: TorrentHandle,
}

impl Swarm {
    /// A payload and its torrent, and a seeder (session seed `seed`) that seeds it.
    async fn new(seed: u64) -> Self {
        let payload = Payload::new(PAYLOAD_LEN, PIECE_LEN, seed);
        assert_eq!(payload.n_pieces, 31);
        let (seeder, seed) = payload.seed(common::loopback(seed)).await;
        Self {
            payload,
            seeder,
            seed,
        }
    }

    fn seeder_addr(&self) -> SocketAddr {
        self.seeder.local_addr()
    }

    /// The torrent's piece count.
    fn n_pieces(&self) -> u32 {
        self.payload.n_pieces
    }

    /// A leecher session with `config`, dialing `peers`.
    async fn leecher(&self, config: SessionConfig, peers: Vec<SocketAddr>) -> Leecher {
        let dir = tempfile::tempdir().unwrap();
        let (session, handle) =
            common::start(config, self.payload.torrent.clone(), dir.path(), peers).await;
        Leecher {
            session,
            handle,
            dir,
        }
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
        assert!(data == swarm.payload.data, "the downloaded file is intact");
        assert_eq!(stats.hash_failures, 0, "no bad data was ever written");
        assert_eq!(stats.error, None);
        stats
    }

    async fn shutdown(self) {
        self.session.shutdown().await;
    }

    /// The end of an attack: given the honest seeder, the download completes intact; then both stop.
    async fn finishes_from_the_seeder(self, swarm: Swarm) {
        self.handle.add_peers(vec![swarm.seeder_addr()]).await;
        self.completes(&swarm).await;
        self.shutdown().await;
        swarm.shutdown().await;
    }
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
        let mut fake = Fake::dial(leecher.addr(), swarm.payload.target(), fake_id(n)).await;
        assert_eq!(fake.greet().await, [Message::HaveNone]);
        let addr = fake.local_addr();
        // The engine may close before it has read everything: a failed write is fine.
        let _ = fake.send_raw(&bytes).await;
        fake.closed().await;
        forgets(&leecher.handle, addr, 0).await;
    }
    leecher.finishes_from_the_seeder(swarm).await;
}

/// 1. A bitfield one byte too long, and one byte too short: dropped (BEP 3: ⌈pieces/8⌉ bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bitfield_of_the_wrong_length_is_dropped() {
    dropped_for(101, |swarm| {
        let right = shoal_wire::bitfield_len(swarm.n_pieces()) as usize;
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
        let bytes = vec![0xff; shoal_wire::bitfield_len(swarm.n_pieces()) as usize];
        assert!(
            Bitfield::from_bytes(bytes.clone())
                .validate(swarm.n_pieces())
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
        [swarm.n_pieces(), u32::MAX]
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
            piece: PieceIndex(swarm.n_pieces()),
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
    let mut fake = Fake::dial(swarm.seeder_addr(), swarm.payload.target(), fake_id(1)).await;
    let first = fake.greet().await;
    assert_eq!(first, [Message::HaveAll]);
    fake.send([Message::Interested]).await.unwrap();
    fake.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");

    let refused = [
        BlockRef {
            piece: PieceIndex(swarm.n_pieces()),
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
    assert!(served[0].data == swarm.payload.block(1, BLOCK_LEN, BLOCK_LEN));

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
    let mut fake = Fake::accept(&listener, swarm.payload.target(), fake_id(1)).await;
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

    leecher.finishes_from_the_seeder(swarm).await;
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
    let mut fake = Fake::accept(&listener, swarm.payload.target(), fake_id(1)).await;
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

    leecher.finishes_from_the_seeder(swarm).await;
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

    let mut fast = Fake::dial(swarm.seeder_addr(), swarm.payload.target(), fake_id(1)).await;
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
    let mut plain = Fake::dial_with(
        swarm.seeder_addr(),
        swarm.payload.target(),
        fake_id(2),
        plain,
    )
    .await;
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
    let mut fake =
        Fake::handshake_first(stream, swarm.payload.target(), fake_id(1), Fake::reserved()).await;
    fake.greet().await;
    fake.send([Message::Interested]).await.unwrap();
    fake.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");

    // Every full-size block but the last piece's, over and over.
    let full_pieces = swarm.n_pieces() - 1;
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
    let mut answered = false;
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
                } => {
                    answered = true;
                    break;
                }
                _ => {}
            }
        }
    }
    assert!(
        served <= REQUEST_QUEUE_CAP + SOCKET_SLACK,
        "{served} of 10,000 flooded requests were queued and served ({rejected} rejected)"
    );
    // It kept asking with its queue full and read nothing: its refusals would pile up, so it is
    // dropped (after at most a queue's worth of them).
    assert!(!answered, "the flooder is still connected");
    assert!(
        rejected <= REQUEST_QUEUE_CAP + 1,
        "{rejected} refusals were queued for a peer that reads nothing"
    );

    leecher.completes(&swarm).await;
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// A fast peer that proves itself (its pieces verify), so it gets a deep pipeline, then goes silent
/// holding its requests: they must go to the honest seeder once it is snubbed, long before the
/// (here two-minute) request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_peer_that_goes_silent_is_snubbed() {
    let swarm = Swarm::new(205).await;
    // A slow honest seeder, so the fast fake gets most of the requests.
    swarm.seed.set_limits(None, Some(128 * 1024)).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SessionConfig {
        request_timeout: Duration::from_secs(120),
        ..common::loopback(206)
    };
    let leecher = swarm
        .leecher(
            config,
            vec![listener.local_addr().unwrap(), swarm.seeder_addr()],
        )
        .await;
    let mut fake = Fake::accept(&listener, swarm.payload.target(), fake_id(1)).await;
    fake.greet().await;
    fake.send([Message::HaveAll, Message::Unchoke])
        .await
        .unwrap();
    // Serve 24 blocks (a dozen pieces, which verify), then only take requests.
    let mut served = 0;
    let mut held = 0usize;
    let silent_since = loop {
        let Some(message) = fake.recv().await else {
            panic!("the engine dropped the fast, honest-looking peer");
        };
        let Message::Request(asked) = message else {
            continue;
        };
        if served < 24 {
            let data = swarm.payload.block(asked.piece.0, asked.offset, asked.len);
            let block = Block {
                piece: asked.piece,
                offset: asked.offset,
                data: data.to_vec().into(),
            };
            fake.send([Message::Piece(block)]).await.unwrap();
            served += 1;
            if served == 24 {
                break Instant::now();
            }
        }
    };
    // What it is asked for while silent: its pipeline, and one request at a time once snubbed.
    let Fake {
        mut stream,
        mut decoder,
        ..
    } = fake;
    let counting = tokio::spawn(async move {
        loop {
            while let Ok(Some(message)) = decoder.poll_message() {
                if matches!(message, Message::Request(_)) {
                    held += 1;
                }
            }
            if !matches!(stream.read_buf(decoder.buffer_mut()).await, Ok(1..)) {
                return held;
            }
        }
    });
    let stats = leecher.completes(&swarm).await;
    let took = silent_since.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "completed {took:?} after the peer went silent: its requests waited for the timeout"
    );
    assert_eq!(stats.pieces_have, swarm.n_pieces());
    leecher.shutdown().await;
    let held = counting.await.unwrap();
    assert!(held > 0, "the silent peer had requests outstanding");
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
    let mut fake = Fake::accept(&listener, swarm.payload.target(), fake_id(1)).await;
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
    let mut fake = Fake::dial(leecher.addr(), swarm.payload.target(), fake_id(1)).await;
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
            torrent: swarm.payload.torrent.clone(),
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
    assert!(std::fs::read(dir.path().join("data.bin")).unwrap() == swarm.payload.data);
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
    let mut first = Fake::dial(leecher.addr(), swarm.payload.target(), fake_id(7)).await;
    first.greet().await;
    // The engine sends its handshake before it looks at the peer id, then closes.
    let second = Fake::dial(leecher.addr(), swarm.payload.target(), fake_id(7)).await;
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

/// An address we dial that answers with the peer id of a peer already connected is closed, and waits
/// like a failed address before it is dialed again: not redialed every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_answering_with_a_known_peer_id_is_not_redialed_at_once() {
    let swarm = Swarm::new(241).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Not given the seeder: the download must not finish (and stop dialing) during the count.
    let leecher = swarm.leecher(common::loopback(242), vec![]).await;
    let mut first = Fake::dial(leecher.addr(), swarm.payload.target(), fake_id(8)).await;
    first.greet().await;
    leecher
        .handle
        .add_peers(vec![listener.local_addr().unwrap()])
        .await;
    let target = swarm.payload.target();
    let dials = Arc::new(AtomicUsize::new(0));
    let counted = dials.clone();
    let answering = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut twin = Fake::answer(stream, target, fake_id(8)).await;
                twin.closed_within(DROPPED_WITHIN).await;
            });
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let dialed = dials.load(Ordering::SeqCst);
    // Backoff after each refusal: 2 s, then 4 s. Without it, a dial every second.
    assert!(
        (1..=3).contains(&dialed),
        "the twin's address was dialed {dialed} times in 5 s"
    );
    assert!(first.ping().await.is_some(), "the first connection is kept");
    answering.abort();
    leecher.shutdown().await;
    swarm.shutdown().await;
}

/// Bytes that are neither a BitTorrent handshake nor MSE. With encryption on, the listener takes the
/// first 96 as a public key, answers with its own (and up to 512 bytes of padding), and hangs up once
/// no `HASH('req1', S)` came within the longest padding: after 628 bytes, long before the 30 s
/// handshake timeout. With encryption off it hangs up after the first 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_instead_of_a_handshake_is_dropped_before_the_timeout() {
    for encryption in [
        shoal_session::Encryption::Enabled,
        shoal_session::Encryption::Disabled,
    ] {
        let mut config = common::loopback(45);
        config.encryption = encryption;
        config.limits.handshake_timeout = Duration::from_secs(30);
        let session = Session::new(config).await.unwrap();
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(session.local_addr())
            .await
            .unwrap();
        // Exactly what an MSE responder reads before giving up, so it closes with nothing unread.
        let junk: Vec<u8> = (0..96 + 532u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let _ = stream.write_all(&junk).await; // refused early when encryption is off
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("the connection ends");
        assert!(started.elapsed() < Duration::from_secs(5));
        if encryption == shoal_session::Encryption::Enabled {
            read.expect("a clean close: everything sent was read");
            assert!(
                (96..=96 + 512).contains(&answer.len()),
                "an MSE answer is a key and padding, not {} bytes",
                answer.len()
            );
        } else {
            assert!(answer.is_empty(), "{answer:?}");
        }
        session.shutdown().await;
    }
}
