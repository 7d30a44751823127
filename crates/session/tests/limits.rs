//! Every field of [`shoal_session::Limits`], pinned: one test per field drives a real session on
//! loopback with that limit set small, and shows the behaviour at the limit (allowed) and just past it
//! (what the field's documentation says happens).
//!
//! The fake peers are `common/fake_peer.rs`'s: to know the engine has handled what a fake sent, the fake
//! asks for a piece of the info dictionary and waits for the answer (a `reject` from a magnet link).
//! Where a test must show that something does *not* happen (no dial), it first makes sure the engine
//! has handled what would have caused it, then allows a short grace for an effect already under way.
//!
//! Timeouts cannot be pinned to the millisecond: those tests show that well inside the timeout is fine,
//! and that past it the connection ends no sooner than the timeout and within the timeout plus a
//! generous slack.
//!
//! The parsers' own caps (`Limits::BENCODE_MAX_DEPTH` and the other associated constants) are pinned in
//! their crates' tests.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::fake_peer::{
    ANSWER_WITHIN, FAKE_METADATA_ID, FAKE_PEX_ID, FakePeer, Payload, Target, fake_id, forgets,
    stats_where,
};
use shoal_metainfo::{InfoHash, InfoHashes, Magnet, TorrentBuilder};
use shoal_session::{
    AddMagnet, AddTorrent, Session, SessionConfig, SessionError, TorrentHandle, TorrentState,
};
use shoal_wire::{
    BLOCK_LEN, Bitfield, BlockRef, ExtendedHandshake, Handshake, METADATA_PIECE_LEN, Message,
    MetadataMessage, PexFlags, PexMessage, PexPeer, PieceIndex, Reserved,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The test torrents' piece length: one block per piece.
const PIECE_LEN: u32 = BLOCK_LEN;
/// On top of a timeout, how long its consequence may take to show (generous: the machine is shared).
const SLACK: Duration = Duration::from_secs(3);
/// After the engine has handled what would make it dial, how long a dial it started may take to
/// arrive.
const GRACE: Duration = Duration::from_millis(300);

/// A 16-piece payload and a session seeding it with `config`.
async fn seeder(config: SessionConfig, salt: u64) -> (Payload, Session, TorrentHandle) {
    let payload = Payload::new(16 * PIECE_LEN, PIECE_LEN, salt);
    let (session, handle) = payload.seed(config).await;
    (payload, session, handle)
}

/// Adds a magnet link for `info_hash` (no peers, no trackers) to `session`.
fn add_magnet(session: &Session, info_hash: InfoHash) -> (TorrentHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let handle = session
        .add_magnet(AddMagnet {
            magnet: Magnet::new(InfoHashes {
                v1: Some(info_hash),
                v2: None,
            }),
            save_path: dir.path().into(),
            peers: vec![],
        })
        .unwrap();
    (handle, dir)
}

/// A listener on 127.0.0.1 and its address.
async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Whether the engine leaves `listener` alone for [`GRACE`] (called once the engine has handled what
/// would make it dial).
async fn not_dialed(listener: &TcpListener) -> bool {
    tokio::time::timeout(GRACE, listener.accept())
        .await
        .is_err()
}

/// Accepts the engine's connection and reads its handshake (for `info_hash`), answering nothing.
async fn accept_unanswered(listener: &TcpListener, info_hash: InfoHash) -> TcpStream {
    let (mut stream, _) = tokio::time::timeout(ANSWER_WITHIN, listener.accept())
        .await
        .expect("the engine dials")
        .unwrap();
    let mut theirs = [0u8; Handshake::LEN];
    stream.read_exact(&mut theirs).await.unwrap();
    assert_eq!(Handshake::decode(&theirs).unwrap().info_hash, info_hash);
    stream
}

/// Answers the handshake the engine sent on `stream` ([`accept_unanswered`]) with ours.
async fn answer(mut stream: TcpStream, target: Target, peer_id: u8) -> FakePeer {
    let ours =
        Handshake::new(target.info_hash, fake_id(peer_id)).with_reserved(FakePeer::reserved());
    stream.write_all(&ours.to_bytes()).await.unwrap();
    FakePeer::new(stream, target, FakePeer::reserved())
}

/// Reads (and discards) until the other end closes; panics after `limit`.
async fn eof_within(reader: &mut (impl AsyncRead + Unpin), limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// Asserts that a connection ended `elapsed` after the timer could first have started: no sooner than
/// `timeout`, and within the slack after it.
fn ended_after(what: &str, elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout,
        "{what}: closed after {elapsed:?}, before the timeout"
    );
    assert!(
        elapsed <= timeout + SLACK,
        "{what}: closed only after {elapsed:?}"
    );
}

/// `max_connections` (3) counts connections of every torrent together, those still in their handshake
/// too. At the limit, a silent connection and one peer of each of two torrents are all kept; just past
/// it, an incoming connection is closed before its handshake is answered, and no torrent dials. Once the
/// silent connection goes away, its place goes to a dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections() {
    let mut config = common::loopback(11);
    config.limits.max_connections = 3;
    let (first, session, _) = seeder(config, 11).await;
    let second = Payload::new(4 * PIECE_LEN, PIECE_LEN, 12);
    let second_handle = second.seed_in(&session).await;
    let addr = session.local_addr();

    // At the limit: the silent connection is accepted first, so it holds its place by the time the
    // engine answers the others.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut a = FakePeer::dial(addr, first.target(), fake_id(1)).await;
    a.greet().await;
    let mut b = FakePeer::dial(addr, second.target(), fake_id(2)).await;
    b.greet().await;

    // Just past it: closed unanswered, whichever torrent it is for...
    for (target, id) in [(first.target(), 3), (second.target(), 4)] {
        assert!(
            FakePeer::try_dial(addr, target, fake_id(id))
                .await
                .is_none(),
            "a fourth connection is closed"
        );
    }
    // ...and no dial: the address is handled (before the ping) and left alone.
    let (waiting, waiting_addr) = listener().await;
    second_handle.add_peers(vec![waiting_addr]).await;
    b.ping().await.expect("the second torrent's peer stays");
    assert!(not_dialed(&waiting).await, "a dial over max_connections");

    // A place frees up: the second torrent takes it for its dial (on its next tick).
    drop(silent);
    let mut dialed = FakePeer::accept(&waiting, second.target(), fake_id(5)).await;
    dialed.greet().await;
    assert!(
        FakePeer::try_dial(addr, first.target(), fake_id(6))
            .await
            .is_none(),
        "full again"
    );
    a.ping().await.expect("the first torrent's peer stays");
    session.shutdown().await;
}

/// `max_peers_per_torrent` (2): of six peers handshaking with a torrent at once, two are taken and the
/// rest closed unanswered; the torrent dials no one while full, and does once a peer leaves. Another
/// torrent of the session still takes peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_peers_per_torrent() {
    let mut config = common::loopback(21);
    config.limits.max_peers_per_torrent = 2;
    let session = Session::new(config).await.unwrap();
    let addr = session.local_addr();
    // 8 MiB to check before the torrent handles any event: the six handshakes come in meanwhile and
    // are handled in a row, none registered before the next is looked at.
    let first = Payload::new(512 * PIECE_LEN, PIECE_LEN, 21);
    let first_handle = session
        .add_torrent(AddTorrent {
            torrent: first.torrent.clone(),
            save_path: first.dir.path().into(),
            peers: vec![],
        })
        .unwrap();
    let target = first.target();
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    for (stream, id) in streams.iter_mut().zip(1..) {
        let ours =
            Handshake::new(target.info_hash, fake_id(id)).with_reserved(FakePeer::reserved());
        stream.write_all(&ours.to_bytes()).await.unwrap();
    }
    let mut kept = Vec::new();
    for mut stream in streams {
        let mut theirs = [0u8; Handshake::LEN];
        let read = tokio::time::timeout(ANSWER_WITHIN, stream.read_exact(&mut theirs)).await;
        if read.expect("answered or closed").is_ok() {
            kept.push(FakePeer::new(stream, target, FakePeer::reserved()));
        }
    }
    assert_eq!(kept.len(), 2, "peers taken of six at once");
    for fake in &mut kept {
        fake.greet().await;
    }
    stats_where(&first_handle, "both peers listed", |s| s.peers.len() == 2).await;

    // The limit is per torrent.
    let second = Payload::new(4 * PIECE_LEN, PIECE_LEN, 22);
    second.seed_in(&session).await;
    let mut other = FakePeer::dial(addr, second.target(), fake_id(7)).await;
    other.greet().await;

    // Full: a new address waits...
    let (waiting, waiting_addr) = listener().await;
    first_handle.add_peers(vec![waiting_addr]).await;
    kept[0].ping().await.expect("kept");
    assert!(
        not_dialed(&waiting).await,
        "a dial over max_peers_per_torrent"
    );
    // ...until a peer leaves.
    drop(kept.pop());
    let mut dialed = FakePeer::accept(&waiting, target, fake_id(8)).await;
    dialed.greet().await;
    assert!(
        FakePeer::try_dial(addr, target, fake_id(9)).await.is_none(),
        "full again"
    );
    session.shutdown().await;
}

/// `max_half_open` (2), session-wide: two dials whose peers have not answered the handshake are under
/// way at once; a third, for another torrent, waits until one of them is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_half_open() {
    let mut config = common::loopback(31);
    config.limits.max_half_open = 2;
    // Only an answer frees a slot during the test, not the handshake timeout.
    config.limits.handshake_timeout = Duration::from_secs(60);
    let (first, session, first_handle) = seeder(config, 31).await;
    let second = Payload::new(4 * PIECE_LEN, PIECE_LEN, 32);
    let second_handle = second.seed_in(&session).await;

    // At the limit: both dials reach their peers, which keep them half open.
    let ((l1, a1), (l2, a2)) = (listener().await, listener().await);
    first_handle.add_peers(vec![a1, a2]).await;
    let (s1, _s2) = tokio::join!(
        accept_unanswered(&l1, first.info_hash),
        accept_unanswered(&l2, first.info_hash)
    );

    // Just past it: a dial of the second torrent waits for a slot.
    let mut b = FakePeer::dial(session.local_addr(), second.target(), fake_id(1)).await;
    b.greet().await;
    let (l3, a3) = listener().await;
    second_handle.add_peers(vec![a3]).await;
    b.ping().await.expect("kept");
    assert!(
        not_dialed(&l3).await,
        "a third dial while two are half open"
    );

    // Answering one handshake frees its slot for the waiting dial.
    let answered = Instant::now();
    let mut p1 = answer(s1, first.target(), 2).await;
    p1.greet().await;
    let mut p3 = FakePeer::accept(&l3, second.target(), fake_id(3)).await;
    p3.greet().await;
    assert!(
        answered.elapsed() < Duration::from_secs(10),
        "the waiting dial went out {:?} after a slot freed",
        answered.elapsed()
    );
    session.shutdown().await;
}

/// Sockets connecting from 127.0.0.1 to 127.0.0.1:`port` still waiting for the SYN to be answered
/// (`SYN_SENT` in `/proc/net/tcp`).
fn syn_sent_to(port: u16) -> usize {
    let remote = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[2] == remote && fields[3] == "02"
        })
        .count()
}

/// A listener on 127.0.0.1 whose accept queue is full (it never accepts): a connect to it gets no
/// answer to its SYN and hangs. Returns the listener, the connection filling its queue, and the port.
fn full_listener() -> (socket2::Socket, Vec<std::net::TcpStream>, u16) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => queued.push(stream),
            Err(_) => break,
        }
        assert!(queued.len() < 16, "the accept queue never fills");
    }
    (socket, queued, addr.port())
}

/// `connect_timeout` (1 s): a loopback connect completes well inside it and the peer is kept; a
/// connect whose SYN goes unanswered is abandoned after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout() {
    let timeout = Duration::from_secs(1);
    let mut config = common::loopback(41);
    config.limits.connect_timeout = timeout;
    let (payload, session, handle) = seeder(config, 41).await;

    let (good, good_addr) = listener().await;
    handle.add_peers(vec![good_addr]).await;
    let mut peer = FakePeer::accept(&good, payload.target(), fake_id(1)).await;
    peer.greet().await;

    let (_full, _queued, port) = tokio::task::spawn_blocking(full_listener).await.unwrap();
    assert_eq!(syn_sent_to(port), 0);
    let asked = Instant::now();
    handle
        .add_peers(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        .await;
    // The engine's connect shows as a socket in SYN_SENT until it gives up (closing it at once).
    while syn_sent_to(port) == 0 {
        assert!(
            asked.elapsed() < timeout + SLACK,
            "the engine never tried to connect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while syn_sent_to(port) > 0 {
        assert!(
            asked.elapsed() <= timeout + SLACK,
            "the connect still hangs after {:?}",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ended_after("the hanging connect", asked.elapsed(), timeout);
    peer.ping().await.expect("the good peer stays");
    session.shutdown().await;
}

/// `handshake_timeout` (1 s), both ways. A peer that dials us and handshakes after a quarter of it is
/// answered; one that dribbles its handshake a byte every 100 ms is closed after the timeout. A peer we
/// dial that answers after a quarter of it is kept; one that answers nothing is closed after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout() {
    let timeout = Duration::from_secs(1);
    let mut config = common::loopback(51);
    config.limits.handshake_timeout = timeout;
    let (payload, session, handle) = seeder(config, 51).await;
    let addr = session.local_addr();
    let target = payload.target();
    let ours = Handshake::new(payload.info_hash, fake_id(3))
        .with_reserved(FakePeer::reserved())
        .to_bytes();

    let incoming_in_time = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(timeout / 4).await;
        let mut fake = FakePeer::try_handshake(stream, target, fake_id(1), FakePeer::reserved())
            .await
            .expect("a handshake within the timeout is answered");
        fake.greet().await;
        fake
    };
    let incoming_dribbled = async {
        let started = Instant::now();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let dribble = tokio::spawn(async move {
            for byte in ours {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if writer.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
        });
        eof_within(&mut reader, timeout + SLACK).await;
        ended_after("a dribbled handshake", started.elapsed(), timeout);
        dribble.abort();
    };

    let ((l1, a1), (l2, a2)) = (listener().await, listener().await);
    let asked = Instant::now();
    handle.add_peers(vec![a1, a2]).await;
    let outgoing_in_time = async {
        let stream = accept_unanswered(&l1, payload.info_hash).await;
        tokio::time::sleep(timeout / 4).await;
        let mut fake = answer(stream, target, 2).await;
        fake.greet().await;
        fake
    };
    let outgoing_silent = async {
        let mut stream = accept_unanswered(&l2, payload.info_hash).await;
        eof_within(&mut stream, timeout + SLACK).await;
        ended_after("a peer that never answers", asked.elapsed(), timeout);
    };

    let (mut incoming, (), mut outgoing, ()) = tokio::join!(
        incoming_in_time,
        incoming_dribbled,
        outgoing_in_time,
        outgoing_silent
    );
    incoming.ping().await.expect("kept");
    outgoing.ping().await.expect("kept");
    session.shutdown().await;
}

/// `idle_timeout` (1 s): a peer that sends only keep-alives, every 300 ms for twice the timeout, is
/// kept; once it sends nothing at all, it is closed after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout() {
    let timeout = Duration::from_secs(1);
    let mut config = common::loopback(61);
    config.limits.idle_timeout = timeout;
    let (payload, session, handle) = seeder(config, 61).await;
    let mut fake = FakePeer::dial(session.local_addr(), payload.target(), fake_id(1)).await;
    fake.greet().await;

    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake.send([Message::KeepAlive]).await.unwrap();
    }
    // The engine last hears from the fake when it reads this question.
    let quiet = Instant::now();
    fake.ping().await.expect("keep-alives keep the connection");

    let addr = fake.local_addr();
    fake.closed_within(timeout + SLACK).await;
    ended_after("a silent peer", quiet.elapsed(), timeout);
    forgets(&handle, addr, 0).await;
    session.shutdown().await;
}

/// A message type no BEP defines: the engine skips it, whatever it carries.
const UNKNOWN_ID: u8 = 99;

/// `max_message_len` (20,000): a message whose length prefix is exactly the limit is read (and, of an
/// unknown type, ignored); a prefix one more drops the peer on its own, the body never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_message_len() {
    let max = 20_000u32;
    let mut config = common::loopback(71);
    config.limits.max_message_len = max;
    let (payload, session, handle) = seeder(config, 71).await;
    let mut fake = FakePeer::dial(session.local_addr(), payload.target(), fake_id(1)).await;
    fake.greet().await;

    let mut at = max.to_be_bytes().to_vec();
    at.push(UNKNOWN_ID);
    at.resize(4 + max as usize, 0x5a);
    fake.send_raw(&at).await.unwrap();
    fake.ping()
        .await
        .expect("a message of max_message_len is taken");

    let addr = fake.local_addr();
    let past = [&(max + 1).to_be_bytes()[..], &[UNKNOWN_ID]].concat();
    fake.send_raw(&past).await.unwrap();
    fake.closed().await;
    forgets(&handle, addr, 0).await;
    session.shutdown().await;
}

/// `max_extended_len` (1,000): an extension message (of an extension the engine does not know) whose
/// length prefix is exactly the limit is read and ignored; a prefix one more drops the peer on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_extended_len() {
    let max = 1_000u32;
    let mut config = common::loopback(81);
    config.limits.max_extended_len = max;
    let (payload, session, handle) = seeder(config, 81).await;
    let mut fake = FakePeer::dial(session.local_addr(), payload.target(), fake_id(1)).await;
    fake.greet().await;

    let at = Message::Extended {
        id: 77,
        payload: vec![b'x'; max as usize - 2].into(),
    };
    assert_eq!(at.encoded_len(), 4 + max as usize);
    fake.send([at]).await.unwrap();
    fake.ping()
        .await
        .expect("an extension message of max_extended_len is taken");

    let addr = fake.local_addr();
    let past = [&(max + 1).to_be_bytes()[..], &[shoal_wire::id::EXTENDED]].concat();
    fake.send_raw(&past).await.unwrap();
    fake.closed().await;
    forgets(&handle, addr, 0).await;
    session.shutdown().await;
}

/// The blocks among `messages`, and the requests refused.
fn served_and_rejected(messages: &[Message]) -> (Vec<BlockRef>, Vec<BlockRef>) {
    let served = messages
        .iter()
        .filter_map(|m| match m {
            Message::Piece(block) => Some(block.block_ref()),
            _ => None,
        })
        .collect();
    let rejected = messages
        .iter()
        .filter_map(|m| match m {
            Message::Reject(block) => Some(*block),
            _ => None,
        })
        .collect();
    (served, rejected)
}

/// `max_queued_requests` (2), advertised as `reqq`, by the metadata stage too. With an upload limit
/// holding each block back for half a second, two requests sent at once are both queued and served;
/// of three, the third is refused with `reject` (fast extension) or ignored (without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_queued_requests() {
    let mut config = common::loopback(91);
    config.limits.max_queued_requests = 2;
    // 32 KiB/s with bursts of 64 KiB: four blocks go at once, then one every half second.
    config.upload_limit = Some(32 * 1024);
    let (payload, session, _) = seeder(config, 91).await;
    let addr = session.local_addr();
    let block = |piece: u32| BlockRef {
        piece: PieceIndex(piece),
        offset: 0,
        len: BLOCK_LEN,
    };
    let requests = |pieces: std::ops::Range<u32>| pieces.map(|p| Message::Request(block(p)));
    let blocks = |pieces: std::ops::Range<u32>| pieces.map(block).collect::<Vec<_>>();

    let mut fast = FakePeer::dial(addr, payload.target(), fake_id(1)).await;
    fast.greet().await;
    let reqq = fast.their_handshake.as_ref().unwrap().request_queue;
    assert_eq!(reqq, Some(2), "the engine advertises its limit");
    fast.send([Message::Interested]).await.unwrap();
    fast.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");

    // The burst goes, two at a time (never over the limit).
    for pair in [0..2, 2..4] {
        fast.send(requests(pair.clone())).await.unwrap();
        let answers = fast.ping().await.expect("kept");
        assert_eq!(served_and_rejected(&answers), (blocks(pair), vec![]));
    }
    // At the limit: the first waits for the upload limit while the second is queued.
    fast.send(requests(4..6)).await.unwrap();
    let answers = fast.ping().await.expect("kept");
    assert_eq!(served_and_rejected(&answers), (blocks(4..6), vec![]));
    // Just past it.
    fast.send(requests(6..9)).await.unwrap();
    let answers = fast.ping().await.expect("kept");
    assert_eq!(served_and_rejected(&answers), (blocks(6..8), blocks(8..9)));
    let Some(Message::Piece(last)) = answers.iter().rfind(|m| matches!(m, Message::Piece(_)))
    else {
        unreachable!()
    };
    assert!(last.data == payload.block(7, 0, BLOCK_LEN));

    let without_fast = Reserved::default().with_extensions();
    let mut plain = FakePeer::dial_with(addr, payload.target(), fake_id(2), without_fast).await;
    plain.greet().await;
    plain.send([Message::Interested]).await.unwrap();
    plain
        .recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("unchoked");
    plain.send(requests(9..12)).await.unwrap();
    let answers = plain.ping().await.expect("kept");
    assert_eq!(served_and_rejected(&answers), (blocks(9..11), vec![]));

    let (_magnet, _dir) = add_magnet(&session, InfoHash([0x91; 20]));
    let mut fetching = FakePeer::dial(addr, Target::magnet(InfoHash([0x91; 20])), fake_id(3)).await;
    fetching.greet().await;
    let reqq = fetching.their_handshake.as_ref().unwrap().request_queue;
    assert_eq!(reqq, Some(2), "the metadata stage advertises the limit too");
    session.shutdown().await;
}

/// A ut_metadata request from the engine: its piece.
fn metadata_request(message: &Message) -> Option<u32> {
    match message {
        Message::Extended {
            id: FAKE_METADATA_ID,
            payload,
        } => match MetadataMessage::decode(payload) {
            Ok(MetadataMessage::Request { piece }) => Some(piece),
            _ => None,
        },
        _ => None,
    }
}

/// Plays a peer with the info dictionary `info` for a magnet link: announces its size, then answers
/// the engine's requests until it has every piece.
async fn serve_metadata(fake: &mut FakePeer, info: &[u8]) {
    let total_size = info.len() as u32;
    fake.greet_with(ExtendedHandshake {
        metadata_size: Some(total_size),
        ..ExtendedHandshake::default()
    })
    .await;
    let id = fake.their_metadata_id.expect("ut_metadata offered");
    for _ in 0..shoal_wire::metadata_piece_count(total_size) {
        let messages = fake
            .recv_until(|m| metadata_request(m).is_some())
            .await
            .expect("the engine asks for the metadata");
        let piece = metadata_request(messages.last().unwrap()).unwrap();
        let start = (piece * METADATA_PIECE_LEN) as usize;
        let end = (start + METADATA_PIECE_LEN as usize).min(info.len());
        let data = MetadataMessage::Data {
            piece,
            total_size,
            data: info[start..end].to_vec().into(),
        };
        fake.send([data.to_message(id)]).await.unwrap();
    }
}

/// `max_pieces` (64) on torrents: `add_torrent` takes a torrent of 64 pieces and refuses one of 65; a
/// magnet link whose fetched info dictionary has 64 pieces becomes a torrent, one with 65 stops in error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pieces_bounds_torrents_and_fetched_metadata() {
    let mut config = common::loopback(101);
    config.limits.max_pieces = 64;
    let at = Payload::new(64 * PIECE_LEN, PIECE_LEN, 101);
    let past = Payload::new(64 * PIECE_LEN + 1, PIECE_LEN, 102);
    assert_eq!((at.n_pieces, past.n_pieces), (64, 65));

    let session = Session::new(config.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let add = |payload: &Payload| {
        session.add_torrent(AddTorrent {
            torrent: payload.torrent.clone(),
            save_path: dir.path().into(),
            peers: vec![],
        })
    };
    let handle = add(&at).expect("a torrent of max_pieces pieces is taken");
    match add(&past) {
        Err(SessionError::Unsupported(reason)) => {
            assert!(
                reason.contains("65 pieces") && reason.contains("64"),
                "{reason}"
            );
        }
        other => panic!("a torrent of 65 pieces: {other:?}"),
    }
    let stats = stats_where(&handle, "the torrent runs", |s| {
        s.state == TorrentState::Downloading
    })
    .await;
    assert_eq!(stats.pieces_total, 64);
    session.shutdown().await;

    let session = Session::new(config).await.unwrap();
    for (payload, n) in [(&at, 1), (&past, 2)] {
        let (handle, _dir) = add_magnet(&session, payload.info_hash);
        let target = Target::magnet(payload.info_hash);
        let mut fake = FakePeer::dial(session.local_addr(), target, fake_id(n)).await;
        serve_metadata(&mut fake, &payload.info()).await;
        let stats = stats_where(&handle, "the metadata stage ends", |s| {
            s.state != TorrentState::FetchingMetadata
        })
        .await;
        if payload.n_pieces == 64 {
            assert_ne!(stats.state, TorrentState::Error, "{:?}", stats.error);
            assert_eq!(stats.pieces_total, 64);
        } else {
            assert_eq!(stats.state, TorrentState::Error);
            let error = stats.error.unwrap_or_default();
            assert!(error.contains("65 pieces"), "{error}");
        }
    }
    session.shutdown().await;
}

/// `max_pieces` (64) before the piece count is known: a magnet link's peer may send a bitfield of
/// 64 pieces (8 bytes), not one byte longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pieces_bounds_a_bitfield_before_the_metadata() {
    let mut config = common::loopback(111);
    config.limits.max_pieces = 64;
    let session = Session::new(config).await.unwrap();
    let info_hash = InfoHash([0x11; 20]);
    let (handle, _dir) = add_magnet(&session, info_hash);
    let addr = session.local_addr();

    let mut at = FakePeer::dial(addr, Target::magnet(info_hash), fake_id(1)).await;
    at.greet().await;
    at.send([Message::Bitfield(Bitfield::from_bytes(vec![0xff; 8]))])
        .await
        .unwrap();
    at.ping().await.expect("a bitfield of max_pieces is taken");

    let mut past = FakePeer::dial(addr, Target::magnet(info_hash), fake_id(2)).await;
    past.greet().await;
    let past_addr = past.local_addr();
    let _ = past
        .send([Message::Bitfield(Bitfield::from_bytes(vec![0xff; 9]))])
        .await;
    past.closed().await;
    forgets(&handle, past_addr, 1).await;
    at.ping().await.expect("the first stays");
    session.shutdown().await;
}

/// `max_metadata_size` (20,000): a magnet link's peer announcing an info dictionary of exactly the
/// limit is asked for its two pieces; one announcing a byte more is dropped without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_metadata_size() {
    let max = 20_000u32;
    let mut config = common::loopback(121);
    config.limits.max_metadata_size = max;
    let session = Session::new(config).await.unwrap();
    let info_hash = InfoHash([0x21; 20]);
    let (_handle, _dir) = add_magnet(&session, info_hash);
    let addr = session.local_addr();
    let announcing = |size: u32| {
        ExtendedHandshake {
            metadata_size: Some(size),
            ..ExtendedHandshake::default()
        }
        .with_extension(shoal_wire::UT_METADATA, FAKE_METADATA_ID)
        .to_message()
    };

    let mut past = FakePeer::dial(addr, Target::magnet(info_hash), fake_id(1)).await;
    past.send([announcing(max + 1)]).await.unwrap();
    let sent = past.until_closed().await;
    assert!(
        !sent.iter().any(|m| metadata_request(m).is_some()),
        "a peer announcing more than max_metadata_size is not asked: {sent:?}"
    );

    let mut at = FakePeer::dial(addr, Target::magnet(info_hash), fake_id(2)).await;
    at.send([announcing(max)]).await.unwrap();
    let mut asked = HashSet::new();
    while asked.len() < 2 {
        let messages = at
            .recv_until(|m| metadata_request(m).is_some())
            .await
            .expect("a peer announcing max_metadata_size is kept");
        asked.insert(metadata_request(messages.last().unwrap()).unwrap());
    }
    assert_eq!(asked, HashSet::from([0, 1]));
    session.shutdown().await;
}

/// Listeners on 127.0.0.1 that take the engine's connections for one torrent (handshake answered, then
/// held open), noting which of them were dialed.
struct Peers {
    addrs: Vec<SocketAddr>,
    dialed: watch::Receiver<HashSet<usize>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Peers {
    async fn start(n: usize, target: Target, first_id: u8) -> Self {
        let (dialed_tx, dialed) = watch::channel(HashSet::new());
        let dialed_tx = std::sync::Arc::new(dialed_tx);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..n {
            let (listener, addr) = listener().await;
            addrs.push(addr);
            let dialed_tx = dialed_tx.clone();
            let id = fake_id(first_id + index as u8);
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    dialed_tx.send_modify(|set| {
                        set.insert(index);
                    });
                    tokio::spawn(async move {
                        let mut fake = FakePeer::answer(stream, target, id).await;
                        let _ = fake.stream.read_to_end(&mut Vec::new()).await;
                    });
                }
            }));
        }
        Self {
            addrs,
            dialed,
            tasks,
        }
    }

    /// Waits until `n` of them were dialed, then a grace for more: which were.
    async fn dialed(&mut self, n: usize) -> HashSet<usize> {
        tokio::time::timeout(ANSWER_WITHIN, self.dialed.wait_for(|set| set.len() >= n))
            .await
            .expect("the engine dials the peers")
            .unwrap();
        tokio::time::sleep(GRACE).await;
        self.dialed.borrow().clone()
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn pex(addrs: &[SocketAddr], id: u8) -> Message {
    PexMessage {
        added: addrs
            .iter()
            .map(|&addr| PexPeer {
                addr,
                flags: PexFlags::default(),
            })
            .collect(),
        dropped: vec![],
    }
    .to_message(id)
}

/// `max_pex_peers` (2): a PEX message naming two peers gets both dialed; one naming three, two of
/// them; the same in a magnet link's metadata stage. And the PEX message we send names at most two of
/// the four peers we are connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pex_peers() {
    let mut config = common::loopback(131);
    config.limits.max_pex_peers = 2;
    let (payload, session, _) = seeder(config, 131).await;
    let addr = session.local_addr();
    let info_hash = InfoHash([0x31; 20]);
    let (_magnet, _dir) = add_magnet(&session, info_hash);

    let mut informer = FakePeer::dial(addr, payload.target(), fake_id(1)).await;
    let mut peers = Peers::start(5, payload.target(), 10).await;
    let mut fetching = FakePeer::dial(addr, Target::magnet(info_hash), fake_id(2)).await;
    let mut sources = Peers::start(5, Target::magnet(info_hash), 20).await;
    for (fake, peers) in [(&mut informer, &mut peers), (&mut fetching, &mut sources)] {
        fake.greet().await;
        let id = fake.their_pex_id.expect("the engine speaks PEX");
        fake.send([pex(&peers.addrs[..2], id)]).await.unwrap();
        fake.ping().await.expect("kept");
        assert_eq!(peers.dialed(2).await, HashSet::from([0, 1]));
        fake.send([pex(&peers.addrs[2..], id)]).await.unwrap();
        fake.ping().await.expect("kept");
        let dialed = peers.dialed(4).await;
        assert_eq!(dialed.len(), 4, "dialed {dialed:?} of the five peers");
    }

    // The first PEX message goes out a few seconds after connecting.
    let messages = informer
        .recv_until(|m| {
            matches!(
                m,
                Message::Extended {
                    id: FAKE_PEX_ID,
                    ..
                }
            )
        })
        .await
        .expect("kept");
    let Some(Message::Extended { payload: sent, .. }) = messages.last() else {
        unreachable!()
    };
    let sent = PexMessage::decode(sent).unwrap();
    assert_eq!(sent.added.len(), 2, "{sent:?}");
    assert!(sent.added.iter().all(|p| peers.addrs.contains(&p.addr)));
    session.shutdown().await;
}

/// `max_pex_per_minute` (2): two PEX messages at once are taken, a third drops the peer; in a
/// magnet link's metadata stage too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pex_per_minute() {
    let mut config = common::loopback(141);
    config.limits.max_pex_per_minute = 2;
    let (payload, session, handle) = seeder(config, 141).await;
    let info_hash = InfoHash([0x41; 20]);
    let (magnet, _dir) = add_magnet(&session, info_hash);
    for (target, handle, id) in [
        (payload.target(), &handle, 1),
        (Target::magnet(info_hash), &magnet, 2),
    ] {
        let mut fake = FakePeer::dial(session.local_addr(), target, fake_id(id)).await;
        fake.greet().await;
        let pex_id = fake.their_pex_id.expect("the engine speaks PEX");
        let empty = PexMessage::default().to_message(pex_id);
        fake.send(vec![empty.clone(); 2]).await.unwrap();
        fake.ping()
            .await
            .expect("max_pex_per_minute messages are taken");
        let addr = fake.local_addr();
        let _ = fake.send([empty]).await;
        fake.closed().await;
        forgets(handle, addr, 0).await;
    }
    session.shutdown().await;
}

/// A bencoded announce reply of exactly `len` bytes naming one peer, padded with an extra key.
fn announce_reply(len: usize) -> Vec<u8> {
    let mut reply = b"d8:intervali1800e5:peers6:".to_vec();
    reply.extend_from_slice(&[127, 0, 0, 1, 0, 9]);
    reply.extend_from_slice(b"5:x-pad");
    let pad = (0..len)
        .find(|&n| reply.len() + n.to_string().len() + 1 + n + 1 == len)
        .expect("a padding that fits");
    reply.extend_from_slice(format!("{pad}:").as_bytes());
    reply.resize(reply.len() + pad, b'.');
    reply.push(b'e');
    assert_eq!(reply.len(), len);
    reply
}

/// An HTTP tracker on 127.0.0.1 answering `/exact/...` with a reply of `limit` bytes sent in chunks,
/// `/over/...` with one of `limit + 1` bytes and its `Content-Length`, and `/over-chunked/...` with one
/// of `limit + 1` bytes in chunks (its size unknown until the end).
async fn http_tracker(limit: usize) -> (SocketAddr, JoinHandle<()>) {
    let (listener, addr) = listener().await;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let path = request.split(' ').nth(1).unwrap_or_default();
                let chunked = |body: Vec<u8>| {
                    let (a, b) = body.split_at(body.len() / 2);
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
                                    Connection: close\r\n\r\n"
                        .to_vec();
                    for part in [a, b] {
                        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                        out.extend_from_slice(part);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    out
                };
                let response = if path.starts_with("/exact/") {
                    chunked(announce_reply(limit))
                } else if path.starts_with("/over-chunked/") {
                    chunked(announce_reply(limit + 1))
                } else {
                    let body = announce_reply(limit + 1);
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&body);
                    out
                };
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// `max_tracker_reply` (300 bytes): a reply of exactly the limit is taken (its peer counted in the
/// torrent's tracker stats); one a byte longer fails that announce, whether its size is announced
/// (`Content-Length`) or only known at its end (chunked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tracker_reply() {
    let limit = 300;
    let (tracker, server) = http_tracker(limit).await;
    let url = |path: &str| format!("http://{tracker}/{path}/announce");
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("data.bin");
    std::fs::write(&file, vec![7u8; 40_000]).unwrap();
    // Tiers are tried in order, each after the one before failed.
    let torrent = TorrentBuilder::new(&file)
        .piece_length(PIECE_LEN.into())
        .tracker_tier([url("over")])
        .tracker_tier([url("over-chunked")])
        .tracker_tier([url("exact")])
        .build()
        .unwrap()
        .bytes;
    let mut config = common::loopback(151);
    config.limits.max_tracker_reply = limit;
    let (session, handle) = common::start(config, torrent, source.path(), vec![]).await;

    let stats = stats_where(&handle, "every tracker was asked", |s| {
        s.trackers.len() == 3
    })
    .await;
    let last = |path: &str| {
        let url = url(path);
        let tracker = stats.trackers.iter().find(|t| t.url == url).unwrap();
        tracker.last.clone()
    };
    assert_eq!(last("exact"), Ok(1), "a reply of max_tracker_reply bytes");
    for path in ["over", "over-chunked"] {
        let error = last(path).expect_err("a reply one byte longer fails");
        assert!(
            error.contains(&format!("larger than {limit} bytes")),
            "{path}: {error}"
        );
    }
    session.shutdown().await;
    server.abort();
}

/// A KRPC `ping` with transaction id `t`.
fn krpc_ping(t: u8) -> Vec<u8> {
    let query = shoal_dht::Query::new(shoal_dht::NodeId([0x77; 20]), shoal_dht::Method::Ping);
    shoal_dht::Message::query(vec![b't', t], query).encode()
}

/// Replies (`y = r`) that reach `socket` until `n` came: their transaction ids.
async fn krpc_replies(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    let mut buf = [0u8; 2048];
    while replies.len() < n {
        let (len, _) = tokio::time::timeout(ANSWER_WITHIN, socket.recv_from(&mut buf))
            .await
            .expect("the DHT node answers")
            .unwrap();
        let message = shoal_dht::Message::decode(&buf[..len]).unwrap();
        if matches!(message.body, shoal_dht::Body::Response(_)) {
            replies.push(message.transaction);
        }
    }
    replies
}

/// Whether a reply to transaction `t` is waiting on `socket`.
fn has_reply(socket: &UdpSocket, t: u8) -> bool {
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = socket.try_recv_from(&mut buf) {
        if let Ok(message) = shoal_dht::Message::decode(&buf[..len])
            && matches!(message.body, shoal_dht::Body::Response(_))
            && message.transaction == [b't', t]
        {
            return true;
        }
    }
    false
}

/// `dht_queries_per_ip` (bursts of 4, 1 a second, then blocked for a minute): five pings at once from
/// one address get four answers; the fifth, and any more for a while, none. Another IP is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_queries_per_ip() {
    let mut config = SessionConfig {
        dht: Some(shoal_dht::NodeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap: vec![],
            state_dir: None,
            dht: shoal_dht::Config {
                restrict_ips: false,
                ..shoal_dht::Config::default()
            },
        }),
        ..common::loopback(161)
    };
    config.limits.dht_queries_per_ip = Some(shoal_dht::RateLimit {
        per_second: 1,
        burst: 4,
        block_for: Duration::from_secs(60),
    });
    let session = Session::new(config).await.unwrap();
    let node = session.dht().expect("the DHT node runs");
    let node_addr = node.local_addr();
    // The refused queries, once the node has handled them.
    let refused = |n: u64| async move {
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let stats = node.stats().await.unwrap();
            if stats.rate_limited >= n {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the node never refused: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for t in 0..5 {
        socket.send_to(&krpc_ping(t), node_addr).await.unwrap();
    }
    let mut answered = krpc_replies(&socket, 4).await;
    answered.sort();
    assert_eq!(answered, (0..4).map(|t| vec![b't', t]).collect::<Vec<_>>());
    let stats = refused(1).await;
    assert_eq!((stats.answered, stats.rate_limited), (4, 1));
    assert!(!has_reply(&socket, 4), "the fifth query is answered");

    // Blocked now, even though a token came back since.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    socket.send_to(&krpc_ping(5), node_addr).await.unwrap();
    let stats = refused(2).await;
    assert_eq!(stats.answered, 4);
    assert!(!has_reply(&socket, 5), "a blocked IP is answered");

    let other = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    other.send_to(&krpc_ping(6), node_addr).await.unwrap();
    assert_eq!(krpc_replies(&other, 1).await, [vec![b't', 6]]);
    session.shutdown().await;
}
