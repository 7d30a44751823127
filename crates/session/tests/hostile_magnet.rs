//! The metadata stage of a magnet link (BEP 9) against hostile peers (HOSTILE 33/34): a fake peer on
//! loopback, written here with tokio and shoal_wire, misbehaves in one way each; an honest Shoal seeder
//! is there too, and the magnet must still complete from it with every file intact.
//!
//! The info dictionary carries 40 000 bytes under an extra key, so the metadata is three 16 KiB pieces:
//! a peer asked for some pieces can answer with one it was not asked for. The hostile peer is always
//! given alone first, so what it does happens while it is the only source; the honest seeder is added
//! with `TorrentHandle::add_peers` once the hostile peer has done its worst.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_metainfo::{InfoHash, InfoHashes, Magnet, Metainfo, PeerId, TorrentBuilder};
use shoal_session::{AddMagnet, Session, TorrentHandle, TorrentState, TorrentStats};
use shoal_wire::{
    DecoderConfig, ExtendedHandshake, Handshake, MAX_METADATA_SIZE, METADATA_PIECE_LEN, Message,
    MessageDecoder, MetadataMessage, Reserved, UT_METADATA,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The engine's metadata request timeout (`REQUEST_TIMEOUT` in `magnet.rs`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The id the fake peer gives `ut_metadata` in its extended handshake.
const FAKE_METADATA_ID: u8 = 7;

/// A two-file payload, its torrent and its metadata (the info dictionary, 3 metadata pieces).
struct Payload {
    dir: tempfile::TempDir,
    torrent: Vec<u8>,
    info: Arc<[u8]>,
    hash: InfoHash,
}

impl Payload {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("payload");
        std::fs::create_dir_all(content.join("sub")).unwrap();
        let bytes = |len: u32, k: u32| -> Vec<u8> {
            (0..len).map(|i| (i.wrapping_mul(k) >> 5) as u8).collect()
        };
        std::fs::write(content.join("a.bin"), bytes(300_001, 2_654_435_761)).unwrap();
        std::fs::write(content.join("sub/b.bin"), bytes(77_777, 40_503)).unwrap();
        let built = TorrentBuilder::new(&content)
            .piece_length(16_384)
            .build()
            .unwrap();
        let raw = Metainfo::from_bytes(&built.bytes)
            .unwrap()
            .info
            .raw
            .to_vec();
        // An extra key sorted after every standard one ("x-pad" > "pieces"): the dictionary stays
        // canonical and grows past two metadata pieces.
        let mut info = raw[..raw.len() - 1].to_vec();
        info.extend_from_slice(b"5:x-pad40000:");
        info.extend(std::iter::repeat_n(b'p', 40_000));
        info.push(b'e');
        assert_eq!(shoal_wire::metadata_piece_count(info.len() as u32), 3);
        let torrent = [&b"d4:info"[..], &info, b"e"].concat();
        let hash = InfoHash::of_info(&info);
        Self {
            dir,
            torrent,
            info: info.into(),
            hash,
        }
    }

    /// A magnet link for the payload with `peers` as its `x.pe`.
    fn magnet(&self, peers: Vec<SocketAddr>) -> Magnet {
        Magnet {
            display_name: Some("payload".into()),
            peers,
            ..Magnet::new(InfoHashes {
                v1: Some(self.hash),
                v2: None,
            })
        }
    }

    /// Starts an honest Shoal seeder and waits until it seeds.
    async fn seeder(&self, seed: u64) -> Session {
        let (session, handle) = common::start(
            common::loopback(seed),
            self.torrent.clone(),
            self.dir.path(),
            vec![],
        )
        .await;
        common::seeding(&handle, Duration::from_secs(20)).await;
        session
    }

    fn content(&self) -> PathBuf {
        self.dir.path().join("payload")
    }
}

/// How the fake peer misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Announces this `metadata_size`, asks for metadata piece 0 (the engine, having none, rejects
    /// the request once it has read the extended handshake) and answers nothing.
    AnnouncesSize(u32),
    /// Announces the right size and answers every request with the piece, one byte changed.
    WrongBytes,
    /// Announces the right size and answers its first request with a piece it was not asked for
    /// (with the right bytes).
    Unrequested,
    /// Announces the right size and answers every request with the piece one byte short.
    WrongLength,
    /// Announces the right size and never answers a request.
    Silent,
}

/// What the fake peer saw, per connection (numbered from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A connection was accepted.
    Connected(u32),
    /// Handshakes done: the engine's extended handshake arrived (ours went out before).
    Greeted(u32),
    /// The engine asked for a metadata piece.
    Request { conn: u32, piece: u32 },
    /// The engine rejected our request for a metadata piece.
    Rejected(u32),
    /// The engine closed the connection (end of file or reset).
    Closed(u32),
    /// The engine sent something the fake could not decode; the fake hung up.
    Garbled(u32),
}

/// A hostile peer listening on loopback. It misbehaves on its first connection and hangs up on later
/// ones at once (so that however the engine redials, the honest seeder meets no competition), unless
/// started with [`persistent`](Self::persistent), which serves every connection the same.
struct FakePeer {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    /// Everything seen so far, in order.
    log: Vec<Seen>,
    connections: Arc<AtomicU32>,
}

impl FakePeer {
    async fn start(behaviour: Behaviour, payload: &Payload, tag: u8) -> Self {
        Self::listen(behaviour, payload, tag, false).await
    }

    async fn persistent(behaviour: Behaviour, payload: &Payload, tag: u8) -> Self {
        Self::listen(behaviour, payload, tag, true).await
    }

    async fn listen(behaviour: Behaviour, payload: &Payload, tag: u8, persistent: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicU32::new(0));
        let mut peer_id = *b"-XX0001-hostile-peer";
        peer_id[19] = tag;
        let (info, hash, count) = (payload.info.clone(), payload.hash, connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = count.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = tx.send(Seen::Connected(conn));
                if conn > 1 && !persistent {
                    continue;
                }
                let (tx, info) = (tx.clone(), info.clone());
                tokio::spawn(async move {
                    let end = serve(stream, conn, behaviour, &info, hash, PeerId(peer_id), &tx);
                    let _ = tx.send(end.await);
                });
            }
        });
        Self {
            addr,
            seen,
            log: Vec::new(),
            connections,
        }
    }

    /// Waits up to `limit` for something matching `want` (or finds it in the log); `false` on timeout.
    async fn saw(&mut self, limit: Duration, want: impl Fn(&Seen) -> bool) -> bool {
        if self.log.iter().any(&want) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) => {
                    let hit = want(&seen);
                    self.log.push(seen);
                    if hit {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Like [`saw`](Self::saw), failing the test on a timeout.
    async fn expect(&mut self, limit: Duration, what: &str, want: impl Fn(&Seen) -> bool) {
        if !self.saw(limit, want).await {
            self.drain();
            panic!(
                "{what}: not seen in {limit:?}; the fake peer saw {:?}",
                self.log
            );
        }
    }

    /// Moves what arrived meanwhile into the log.
    fn drain(&mut self) {
        while let Ok(seen) = self.seen.try_recv() {
            self.log.push(seen);
        }
    }

    fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&mut self) -> Vec<u32> {
        self.drain();
        self.log
            .iter()
            .filter_map(|s| match s {
                Seen::Request { piece, .. } => Some(*piece),
                _ => None,
            })
            .collect()
    }
}

/// The bytes of metadata piece `piece`.
fn metadata_piece(info: &[u8], piece: u32) -> Bytes {
    let start = (piece * METADATA_PIECE_LEN) as usize;
    let end = (start + METADATA_PIECE_LEN as usize).min(info.len());
    Bytes::copy_from_slice(&info[start..end])
}

/// One connection: handshakes, then answers metadata requests as `behaviour` says. Returns how it
/// ended.
async fn serve(
    mut stream: TcpStream,
    conn: u32,
    behaviour: Behaviour,
    info: &[u8],
    hash: InfoHash,
    peer_id: PeerId,
    seen: &mpsc::UnboundedSender<Seen>,
) -> Seen {
    let mut theirs = [0u8; Handshake::LEN];
    if stream.read_exact(&mut theirs).await.is_err() {
        return Seen::Closed(conn);
    }
    let total_size = info.len() as u32;
    let announced = match behaviour {
        Behaviour::AnnouncesSize(size) => size,
        _ => total_size,
    };
    let mut out = Vec::new();
    Handshake::new(hash, peer_id)
        .with_reserved(Reserved::default().with_extensions())
        .encode_into(&mut out);
    ExtendedHandshake {
        client: Some("hostile".into()),
        metadata_size: Some(announced),
        ..ExtendedHandshake::default()
    }
    .with_extension(UT_METADATA, FAKE_METADATA_ID)
    .to_message()
    .encode_into(&mut out);
    if stream.write_all(&out).await.is_err() {
        return Seen::Closed(conn);
    }
    let mut decoder = MessageDecoder::new(DecoderConfig::default());
    let mut their_id = None;
    let mut asked = Vec::new();
    let mut answered = false;
    loop {
        match stream.read_buf(decoder.buffer_mut()).await {
            Ok(0) | Err(_) => return Seen::Closed(conn),
            Ok(_) => {}
        }
        let mut out = Vec::new();
        loop {
            let message = match decoder.poll_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => return Seen::Garbled(conn),
            };
            let Message::Extended { id, payload } = message else {
                continue;
            };
            if id == 0 {
                their_id = ExtendedHandshake::decode(&payload)
                    .ok()
                    .and_then(|h| h.extension_id(UT_METADATA));
                let _ = seen.send(Seen::Greeted(conn));
                if let (Behaviour::AnnouncesSize(_), Some(id)) = (behaviour, their_id) {
                    // Sent after our extended handshake, so its answer shows the engine read that.
                    MetadataMessage::Request { piece: 0 }
                        .to_message(id)
                        .encode_into(&mut out);
                }
                continue;
            }
            if id != FAKE_METADATA_ID {
                continue;
            }
            let message = MetadataMessage::decode(&payload);
            if let Ok(MetadataMessage::Reject { .. }) = message {
                let _ = seen.send(Seen::Rejected(conn));
            }
            let (Ok(MetadataMessage::Request { piece }), Some(their_id)) = (message, their_id)
            else {
                continue;
            };
            let _ = seen.send(Seen::Request { conn, piece });
            asked.push(piece);
            let data = |piece, data| MetadataMessage::Data {
                piece,
                total_size,
                data,
            };
            let reply = match behaviour {
                Behaviour::AnnouncesSize(_) | Behaviour::Silent => None,
                Behaviour::WrongBytes => {
                    let mut bytes = metadata_piece(info, piece).to_vec();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x20;
                    Some(data(piece, bytes.into()))
                }
                Behaviour::WrongLength => {
                    let bytes = metadata_piece(info, piece);
                    Some(data(piece, bytes.slice(..bytes.len() - 1)))
                }
                Behaviour::Unrequested if !answered => {
                    answered = true;
                    // The last piece it was not asked for, with the right bytes.
                    let count = shoal_wire::metadata_piece_count(total_size);
                    let other = (0..count).rev().find(|p| !asked.contains(p)).unwrap();
                    Some(data(other, metadata_piece(info, other)))
                }
                Behaviour::Unrequested => None,
            };
            if let Some(reply) = reply {
                reply.to_message(their_id).encode_into(&mut out);
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return Seen::Closed(conn);
        }
    }
}

/// A leecher session and the magnet added to it.
async fn leech(seed: u64, link: Magnet, save: &std::path::Path) -> (Session, TorrentHandle) {
    let session = Session::new(common::loopback(seed)).await.unwrap();
    let handle = session
        .add_magnet(AddMagnet {
            magnet: link,
            save_path: save.into(),
            peers: vec![],
        })
        .unwrap();
    (session, handle)
}

/// Waits up to `limit` for stats matching `want`; the latest stats on a timeout.
async fn stats_where(
    handle: &TorrentHandle,
    limit: Duration,
    want: impl FnMut(&TorrentStats) -> bool,
) -> Result<TorrentStats, TorrentStats> {
    let mut stats = handle.stats();
    // The `Ref` that `wait_for` returns holds the channel's lock: turn it into a bool at once.
    let met = tokio::time::timeout(limit, stats.wait_for(want))
        .await
        .is_ok_and(|r| r.is_ok());
    let latest = handle.stats().borrow().clone();
    if met { Ok(latest) } else { Err(latest) }
}

/// Adds the honest seeder, waits until the magnet seeds and checks the files.
async fn complete_from(
    handle: &TorrentHandle,
    honest: &Session,
    payload: &Payload,
    target: &std::path::Path,
    fake: &mut FakePeer,
) {
    handle.add_peers(vec![honest.local_addr()]).await;
    let limit = Duration::from_secs(20);
    let done = stats_where(handle, limit, |s| {
        assert_ne!(s.state, TorrentState::Error, "{:?}", s.error);
        s.state == TorrentState::Seeding
    })
    .await;
    if let Err(stats) = done {
        fake.drain();
        panic!(
            "not complete in {limit:?}: {stats:?}; the fake peer had {} connections: {:?}",
            fake.connections(),
            fake.log
        );
    }
    common::same_payload(&payload.content(), &target.join("payload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_size_zero_or_over_32_mib_is_dropped() {
    let payload = Payload::new();
    let honest = payload.seeder(201).await;
    let mut zero = FakePeer::start(Behaviour::AnnouncesSize(0), &payload, b'0').await;
    let mut huge = FakePeer::start(
        Behaviour::AnnouncesSize(MAX_METADATA_SIZE + 1),
        &payload,
        b'H',
    )
    .await;
    let target = tempfile::tempdir().unwrap();
    let link = payload.magnet(vec![zero.addr, huge.addr]);
    let (session, handle) = leech(202, link, target.path()).await;

    // Each fake asks for a metadata piece after its extended handshake: once that request is
    // answered (or the fake dropped), the engine has read the size.
    let mut stats = handle.stats();
    for fake in [&mut zero, &mut huge] {
        fake.expect(
            Duration::from_secs(10),
            "the extended handshake read",
            |s| matches!(s, Seen::Rejected(1) | Seen::Closed(1)),
        )
        .await;
    }
    // Neither size is believed: no buffer for it, no requests, no source (in the next snapshot).
    stats.borrow_and_update();
    let changed = tokio::time::timeout(Duration::from_secs(5), stats.changed()).await;
    assert!(changed.is_ok_and(|r| r.is_ok()), "no stats");
    let alone = handle.stats().borrow().clone();
    let progress = alone.metadata.clone().expect("still fetching the metadata");
    assert_eq!(
        (progress.sources, progress.pieces_total),
        (0, 0),
        "{alone:?}"
    );
    // HOSTILE 33: such a peer is dropped, whatever else it offers.
    let closed = |s: &Seen| *s == Seen::Closed(1);
    let limit = Duration::from_secs(5);
    let (zero_dropped, huge_dropped) =
        tokio::join!(zero.saw(limit, closed), huge.saw(limit, closed));
    let dropped = [zero_dropped, huge_dropped];

    complete_from(&handle, &honest, &payload, target.path(), &mut zero).await;
    assert!(zero.requests().is_empty() && huge.requests().is_empty());
    assert_eq!(
        dropped,
        [true, true],
        "peers announcing metadata_size 0 / over 32 MiB were not dropped; they saw {:?} / {:?}",
        zero.log,
        huge.log
    );
    session.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_that_fails_its_hash_bans_its_only_sender() {
    let payload = Payload::new();
    let honest = payload.seeder(203).await;
    let mut liar = FakePeer::start(Behaviour::WrongBytes, &payload, b'L').await;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = leech(204, payload.magnet(vec![liar.addr]), target.path()).await;

    // The liar is the only source: it is asked for every piece, the copy fails its hash, and it is
    // banned (disconnected).
    liar.expect(Duration::from_secs(10), "the liar banned", |s| {
        *s == Seen::Closed(1)
    })
    .await;
    let mut asked = liar.requests();
    asked.sort_unstable();
    assert_eq!(asked, [0, 1, 2], "the liar was asked for every piece");
    let failed = stats_where(&handle, Duration::from_secs(5), |s| {
        s.metadata.as_ref().is_some_and(|m| m.hash_failures >= 1)
    })
    .await;
    let failed = failed.unwrap_or_else(|s| panic!("no metadata hash failure counted: {s:?}"));
    assert_eq!(failed.state, TorrentState::FetchingMetadata);

    complete_from(&handle, &honest, &payload, target.path(), &mut liar).await;
    // Banned: never dialed again, neither by the metadata stage nor by the torrent it became.
    assert!(
        !liar
            .saw(Duration::from_secs(3), |s| matches!(
                s,
                Seen::Connected(2..)
            ))
            .await,
        "the banned liar was dialed again: {:?}",
        liar.log
    );
    assert_eq!(liar.connections(), 1);
    session.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_piece_never_requested_is_dropped() {
    let payload = Payload::new();
    let honest = payload.seeder(205).await;
    let mut fake = FakePeer::start(Behaviour::Unrequested, &payload, b'U').await;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = leech(206, payload.magnet(vec![fake.addr]), target.path()).await;

    fake.expect(Duration::from_secs(10), "the peer dropped", |s| {
        *s == Seen::Closed(1)
    })
    .await;
    // It answered a request with piece 2, which nobody asked it for: dropped before the data counted.
    let stats = handle.stats().borrow().clone();
    assert_eq!(stats.state, TorrentState::FetchingMetadata, "{stats:?}");
    assert!(!fake.requests().contains(&2), "{:?}", fake.log);
    complete_from(&handle, &honest, &payload, target.path(), &mut fake).await;
    session.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_piece_of_the_wrong_length_is_dropped() {
    let payload = Payload::new();
    let honest = payload.seeder(207).await;
    let mut fake = FakePeer::start(Behaviour::WrongLength, &payload, b'W').await;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = leech(208, payload.magnet(vec![fake.addr]), target.path()).await;

    fake.expect(Duration::from_secs(10), "the peer dropped", |s| {
        *s == Seen::Closed(1)
    })
    .await;
    assert!(!fake.requests().is_empty(), "{:?}", fake.log);
    let stats = handle.stats().borrow().clone();
    let progress = stats.metadata.clone().expect("still fetching the metadata");
    assert_eq!(progress.pieces_have, 0, "{stats:?}");
    complete_from(&handle, &honest, &payload, target.path(), &mut fake).await;
    session.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_request_timeout_moves_the_piece_to_another_peer() {
    let payload = Payload::new();
    let honest = payload.seeder(209).await;
    let mut silent = FakePeer::start(Behaviour::Silent, &payload, b'S').await;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = leech(210, payload.magnet(vec![silent.addr]), target.path()).await;

    // Alone, the silent peer is asked for two pieces (the engine's per-peer limit); then the honest
    // seeder joins and gets the third.
    silent
        .expect(Duration::from_secs(10), "a request", |s| {
            matches!(s, Seen::Request { .. })
        })
        .await;
    let asked_at = Instant::now();
    let took = {
        handle.add_peers(vec![honest.local_addr()]).await;
        let limit = REQUEST_TIMEOUT * 2;
        if let Err(stats) = stats_where(&handle, limit, |s| s.metadata.is_none()).await {
            panic!(
                "no metadata {limit:?} after the silent peer's first request: {:?}; it was asked \
                 for pieces {:?}",
                stats.metadata,
                silent.requests()
            );
        }
        asked_at.elapsed()
    };
    // The silent peer's pieces went to the honest seeder once their requests timed out: one timeout
    // (10 s, checked every second), not one per peer tried again.
    let requests = silent.requests();
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_secs(4),
        "metadata took {took:?} after the silent peer's first request; it was asked for {requests:?}"
    );
    let mut unique = requests.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        requests.len(),
        "a piece that timed out was asked of the silent peer again: {requests:?}"
    );
    common::seeding(&handle, Duration::from_secs(20)).await;
    common::same_payload(&payload.content(), &target.path().join("payload"));
    session.shutdown().await;
    // Its connection ends with the session at the latest.
    silent
        .expect(Duration::from_secs(5), "the connection closed", |s| {
            *s == Seen::Closed(1)
        })
        .await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_metadata_peer_is_not_redialed_at_once() {
    let payload = Payload::new();
    let honest = payload.seeder(211).await;
    // Misbehaves on every connection: each one ends with it dropped.
    let mut fake = FakePeer::persistent(Behaviour::WrongLength, &payload, b'R').await;
    let target = tempfile::tempdir().unwrap();
    let (session, handle) = leech(212, payload.magnet(vec![fake.addr]), target.path()).await;

    fake.expect(Duration::from_secs(10), "the peer dropped", |s| {
        *s == Seen::Closed(1)
    })
    .await;
    // HOSTILE 50: an address whose peer was just dropped is not dialed again at once, over and over;
    // the engine's redial backoff waits 2 s after a first failure, then doubles. Counted over a window.
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let redials = fake.connections() - 1;
    assert!(
        redials <= 2,
        "the dropped peer was dialed {redials} times in the {window:?} after it was dropped"
    );
    complete_from(&handle, &honest, &payload, target.path(), &mut fake).await;
    session.shutdown().await;
    honest.shutdown().await;
}
