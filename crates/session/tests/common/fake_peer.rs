//! A fake peer for tests that make a Shoal session face a misbehaving or probing peer: a raw socket
//! speaking the wire protocol through `shoal_wire`, which sends exactly what a test tells it to.
//!
//! To know that the engine has processed everything a fake peer sent, the fake asks for a piece of the
//! info dictionary (`ut_metadata`, BEP 9) and waits for the answer ([`FakePeer::ping`]): the engine
//! handles a peer's messages in order, and its replies go out in order, so what came before the answer
//! was the engine's reaction to what the fake sent before its question. A magnet link still fetching its
//! metadata answers with a `reject`, which serves the same purpose.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use shoal_metainfo::{InfoHash, Metainfo, PeerId, TorrentBuilder};
use shoal_session::{Session, SessionConfig, TorrentHandle, TorrentStats};
use shoal_wire::{
    DecoderConfig, ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage,
    Reserved, UT_METADATA, UT_PEX,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How long a peer that broke a rule may stay connected before the engine must have closed it.
pub const DROPPED_WITHIN: Duration = Duration::from_secs(5);
/// How long a fake peer waits for a message the engine owes it.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How long a torrent may take to check its data and start seeding.
pub const SEEDS_WITHIN: Duration = Duration::from_secs(20);
/// The ids the fake peers want `ut_metadata` and `ut_pex` messages under.
pub const FAKE_METADATA_ID: u8 = 3;
pub const FAKE_PEX_ID: u8 = 5;

/// A distinct peer id for fake peer `n`.
pub fn fake_id(n: u8) -> PeerId {
    let mut id = *b"-XX0001-hostile-0000";
    id[19] = b'0' + n % 10;
    id[18] = b'0' + n / 10;
    PeerId(id)
}

/// One file, `data.bin`, of pseudo-random bytes and its torrent, in a temporary directory.
pub struct Payload {
    pub torrent: Vec<u8>,
    pub data: Vec<u8>,
    pub info_hash: InfoHash,
    pub n_pieces: u32,
    pub piece_len: u32,
    pub dir: TempDir,
}

impl Payload {
    /// `len` bytes, varied by `salt`, in pieces of `piece_len` bytes.
    pub fn new(len: u32, piece_len: u32, salt: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        let data: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(salt as u32) >> 13) as u8 | 1)
            .collect();
        std::fs::write(&file, &data).unwrap();
        let built = TorrentBuilder::new(&file)
            .piece_length(piece_len.into())
            .build()
            .unwrap();
        let info_hash = built.info_hashes.v1.unwrap();
        let torrent = built.bytes;
        let n_pieces = Metainfo::from_bytes(&torrent).unwrap().info.piece_count() as u32;
        Self {
            torrent,
            data,
            info_hash,
            n_pieces,
            piece_len,
            dir,
        }
    }

    /// The `len`-byte block at `offset` of piece `piece`, as it should be.
    pub fn block(&self, piece: u32, offset: u32, len: u32) -> &[u8] {
        let start = (piece * self.piece_len + offset) as usize;
        &self.data[start..start + len as usize]
    }

    /// The file's path.
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("data.bin")
    }

    /// What a fake peer handshakes for to talk about this torrent.
    pub fn target(&self) -> Target {
        Target {
            info_hash: self.info_hash,
            n_pieces: Some(self.n_pieces),
        }
    }

    /// The info dictionary (what a magnet link fetches).
    pub fn info(&self) -> Vec<u8> {
        Metainfo::from_bytes(&self.torrent)
            .unwrap()
            .info
            .raw
            .to_vec()
    }

    /// A session with `config` seeding the payload from where it lies, once it seeds.
    pub async fn seed(&self, config: SessionConfig) -> (Session, TorrentHandle) {
        let (session, handle) =
            super::start(config, self.torrent.clone(), self.dir.path(), vec![]).await;
        super::seeding(&handle, SEEDS_WITHIN).await;
        (session, handle)
    }

    /// Adds the payload to `session`, seeding from where it lies, and waits until it seeds.
    pub async fn seed_in(&self, session: &Session) -> TorrentHandle {
        let handle = session
            .add_torrent(shoal_session::AddTorrent {
                torrent: self.torrent.clone(),
                save_path: self.dir.path().into(),
                peers: vec![],
            })
            .unwrap();
        super::seeding(&handle, SEEDS_WITHIN).await;
        handle
    }
}

/// The torrent a fake peer handshakes for: its info-hash, and its piece count once known (`None` for a
/// magnet link whose metadata the engine has not fetched).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub info_hash: InfoHash,
    pub n_pieces: Option<u32>,
}

impl Target {
    /// A magnet link's torrent, its piece count unknown.
    pub fn magnet(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            n_pieces: None,
        }
    }
}

/// A fake peer: a socket, a decoder for what the engine sends, and what the engine's extended handshake
/// said (once [greeted](Self::greet)).
pub struct FakePeer {
    pub stream: TcpStream,
    pub decoder: MessageDecoder,
    /// The ids the engine wants `ut_metadata` and `ut_pex` messages under.
    pub their_metadata_id: Option<u8>,
    pub their_pex_id: Option<u8>,
    /// The engine's extended handshake.
    pub their_handshake: Option<ExtendedHandshake>,
}

impl FakePeer {
    /// Fast extension and extension protocol.
    pub fn reserved() -> Reserved {
        Reserved::default().with_fast().with_extensions()
    }

    /// A fake peer on `stream`, whose handshakes (ours with `reserved`) are done.
    pub fn new(stream: TcpStream, target: Target, reserved: Reserved) -> Self {
        let decoder = MessageDecoder::new(DecoderConfig {
            n_pieces: target.n_pieces,
            fast_extension: reserved.supports_fast(),
            ..DecoderConfig::default()
        });
        Self {
            stream,
            decoder,
            their_metadata_id: None,
            their_pex_id: None,
            their_handshake: None,
        }
    }

    /// Connects to a session at `addr` and handshakes for `target`.
    pub async fn dial(addr: SocketAddr, target: Target, peer_id: PeerId) -> Self {
        Self::dial_with(addr, target, peer_id, Self::reserved()).await
    }

    pub async fn dial_with(
        addr: SocketAddr,
        target: Target,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake_first(stream, target, peer_id, reserved).await
    }

    /// Connects and handshakes; `None` if the engine closes the connection instead of answering.
    pub async fn try_dial(addr: SocketAddr, target: Target, peer_id: PeerId) -> Option<Self> {
        let stream = TcpStream::connect(addr).await.ok()?;
        Self::try_handshake(stream, target, peer_id, Self::reserved()).await
    }

    /// Sends our handshake, then reads the engine's.
    pub async fn handshake_first(
        stream: TcpStream,
        target: Target,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Self {
        Self::try_handshake(stream, target, peer_id, reserved)
            .await
            .expect("the engine answers the handshake")
    }

    /// Sends our handshake, then reads the engine's; `None` if it closes the connection first.
    pub async fn try_handshake(
        mut stream: TcpStream,
        target: Target,
        peer_id: PeerId,
        reserved: Reserved,
    ) -> Option<Self> {
        let ours = Handshake::new(target.info_hash, peer_id).with_reserved(reserved);
        // The engine may close before reading it.
        stream.write_all(&ours.to_bytes()).await.ok()?;
        let mut theirs = [0u8; Handshake::LEN];
        tokio::time::timeout(ANSWER_WITHIN, stream.read_exact(&mut theirs))
            .await
            .expect("the engine answers the handshake or closes the connection")
            .ok()?;
        let theirs = Handshake::decode(&theirs).unwrap();
        assert_eq!(theirs.info_hash, target.info_hash);
        Some(Self::new(stream, target, reserved))
    }

    /// Accepts the engine's connection on `listener`: reads its handshake, answers with ours.
    pub async fn accept(listener: &TcpListener, target: Target, peer_id: PeerId) -> Self {
        let (stream, _) = tokio::time::timeout(ANSWER_WITHIN, listener.accept())
            .await
            .expect("the engine dials the fake peer")
            .unwrap();
        Self::answer(stream, target, peer_id).await
    }

    /// Reads the handshake of the engine, which dialed `stream`, and answers with ours.
    pub async fn answer(mut stream: TcpStream, target: Target, peer_id: PeerId) -> Self {
        let mut theirs = [0u8; Handshake::LEN];
        stream.read_exact(&mut theirs).await.unwrap();
        let theirs = Handshake::decode(&theirs).unwrap();
        assert_eq!(theirs.info_hash, target.info_hash);
        let ours = Handshake::new(target.info_hash, peer_id).with_reserved(Self::reserved());
        stream.write_all(&ours.to_bytes()).await.unwrap();
        Self::new(stream, target, Self::reserved())
    }

    /// Where the engine sees this peer connect from (when the fake dialed).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Sends messages; `Err` if the engine closed the connection.
    pub async fn send(
        &mut self,
        messages: impl IntoIterator<Item = Message>,
    ) -> std::io::Result<()> {
        self.stream.write_all(&encoded(messages)).await
    }

    /// Sends raw bytes; `Err` if the engine closed the connection.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The engine's next message (keep-alives skipped); `None` once it closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
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
    pub async fn recv_until(&mut self, stop: impl Fn(&Message) -> bool) -> Option<Vec<Message>> {
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

    /// Sends our extended handshake (`ut_metadata` and `ut_pex` offered) and waits for the engine's
    /// (which it sends once it registered the connection); returns what the engine sent before it.
    pub async fn greet(&mut self) -> Vec<Message> {
        self.greet_with(ExtendedHandshake::default()).await
    }

    /// [`greet`](Self::greet) with `ours` as the extended handshake, `ut_metadata` and `ut_pex` added.
    pub async fn greet_with(&mut self, ours: ExtendedHandshake) -> Vec<Message> {
        let ours = ours
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
        self.their_handshake = Some(theirs);
        messages
    }

    /// Asks for the first piece of the info dictionary and waits for the answer (the piece, or a
    /// `reject` from a magnet link without its metadata yet): returns everything the engine sent
    /// before it, or `None` if it closed the connection first.
    pub async fn ping(&mut self) -> Option<Vec<Message>> {
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
                Ok(MetadataMessage::Data { piece: 0, .. } | MetadataMessage::Reject { piece: 0 })
            ),
            _ => false,
        };
        let mut messages = self.recv_until(answer).await?;
        messages.pop();
        Some(messages)
    }

    /// Waits until the engine closes the connection (EOF or reset), discarding what it sends; panics
    /// if it is still open after `limit`.
    pub async fn closed_within(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => panic!("the peer is still connected after {limit:?}"),
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Everything the engine sends until it closes the connection, which it must within
    /// [`DROPPED_WITHIN`].
    pub async fn until_closed(&mut self) -> Vec<Message> {
        let deadline = Instant::now() + DROPPED_WITHIN;
        let mut messages = Vec::new();
        loop {
            match self.decoder.poll_message() {
                Ok(Some(message)) => {
                    messages.push(message);
                    continue;
                }
                Ok(None) => {}
                Err(e) => panic!("the engine broke the protocol: {e}"),
            }
            let read = self.stream.read_buf(self.decoder.buffer_mut());
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => panic!("the peer is still connected after {DROPPED_WITHIN:?}"),
                Ok(Ok(0) | Err(_)) => return messages,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Waits until the engine closes the connection, within [`DROPPED_WITHIN`].
    pub async fn closed(mut self) {
        self.closed_within(DROPPED_WITHIN).await;
    }
}

/// The messages' bytes on the wire.
pub fn encoded(messages: impl IntoIterator<Item = Message>) -> Vec<u8> {
    let mut out = BytesMut::new();
    for message in messages {
        message.encode_into(&mut out);
    }
    out.to_vec()
}

/// Whether a message is a block (`piece`).
pub fn is_block(message: &Message) -> bool {
    matches!(message, Message::Piece(_))
}

/// Waits (up to [`DROPPED_WITHIN`]) for a stats snapshot satisfying `condition`, and returns it.
pub async fn stats_where(
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
pub async fn forgets(handle: &TorrentHandle, addr: SocketAddr, max_peers: usize) -> TorrentStats {
    let stats = stats_where(handle, "the peer is forgotten", |s| {
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
