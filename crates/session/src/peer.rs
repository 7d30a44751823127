//! One peer connection: the handshake, then a reader that decodes messages for the torrent and a writer
//! that sends what the torrent asks. The torrent task owns all protocol decisions; this only moves bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::BytesMut;
use shoal_metainfo::{InfoHash, PeerId};
use shoal_mse::{Method, MseError, Negotiated, Rc4};
use shoal_wire::{DecoderConfig, Handshake, Message, MessageDecoder, Reserved, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::rate::Limiter;
use crate::torrent::{Event, PeerKey};
use crate::{Encryption, Limits};

/// What the torrent task tells a peer's writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send these messages, in order.
    Send(Vec<Message>),
    /// Withdraw a queued `piece` message the peer no longer wants (it sent `cancel`).
    Cancel(shoal_wire::BlockRef),
    /// Close the connection (after what is queued).
    Close,
}

/// Applies a command to the writer's queue; `true` when it asks to close (after what is queued).
/// Blocks withdrawn by a `cancel` are counted off `queued`.
fn apply(queue: &mut VecDeque<Message>, command: Command, queued: &AtomicUsize) -> bool {
    match command {
        Command::Send(messages) => queue.extend(messages),
        // BEP 3: a cancelled request is not answered, if its block has not gone out yet.
        Command::Cancel(cancelled) => queue.retain(|message| {
            let withdrawn = matches!(message, Message::Piece(block)
                if block.piece == cancelled.piece && block.offset == cancelled.offset);
            if withdrawn {
                queued.fetch_sub(1, Ordering::Relaxed);
            }
            !withdrawn
        }),
        Command::Close => return true,
    }
    false
}

/// What a connection learned in its handshake.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub reserved: Reserved,
    pub outgoing: bool,
    /// Whether the connection's payload is RC4-encrypted (MSE).
    pub encrypted: bool,
    /// Blocks queued for this peer and not yet written: the torrent counts them up as it queues
    /// them, the writer down as they go out (a request flood cannot fill memory).
    pub queued: Arc<AtomicUsize>,
    /// Block payload bytes written to this peer's socket, added by the writer once a write completes and
    /// taken by the torrent for its upload counters (cancelled or unsent blocks never count).
    pub sent: Arc<AtomicU64>,
    /// For a BEP 19 web seed (an HTTP server, not a connection): its URL.
    pub web_seed: Option<Arc<str>>,
}

/// A connection with its MSE state: payload bytes an MSE handshake read ahead, and the RC4 streams
/// when the connection is encrypted. A plaintext connection is the bare stream.
#[derive(Debug)]
pub(crate) struct Link {
    pub stream: TcpStream,
    /// Bytes already read (and decrypted), to be consumed before the stream.
    received: Vec<u8>,
    decrypt: Option<Rc4>,
    encrypt: Option<Rc4>,
}

impl Link {
    /// A plaintext connection, `received` being bytes already read from it.
    pub fn plain(stream: TcpStream, received: Vec<u8>) -> Self {
        Self {
            stream,
            received,
            decrypt: None,
            encrypt: None,
        }
    }

    /// The connection after an MSE handshake.
    pub fn negotiated(stream: TcpStream, mse: Negotiated) -> Self {
        Self {
            stream,
            received: mse.received,
            decrypt: mse.reader,
            encrypt: mse.writer,
        }
    }

    /// Whether the payload is RC4-encrypted.
    pub fn encrypted(&self) -> bool {
        self.encrypt.is_some()
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let buffered = self.received.len().min(buf.len());
        let (from_buffer, from_stream) = buf.split_at_mut(buffered);
        from_buffer.copy_from_slice(&self.received[..buffered]);
        self.received.drain(..buffered);
        self.stream.read_exact(from_stream).await?;
        if let Some(rc4) = self.decrypt.as_mut() {
            rc4.apply(from_stream);
        }
        Ok(())
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.encrypt.as_mut() {
            Some(rc4) => {
                let mut encrypted = bytes.to_vec();
                rc4.apply(&mut encrypted);
                self.stream.write_all(&encrypted).await
            }
            None => self.stream.write_all(bytes).await,
        }
    }
}

/// Our handshake's extension bits: fast extension (BEP 6) and extension protocol (BEP 10).
pub(crate) fn our_reserved() -> Reserved {
    Reserved::default().with_fast().with_extensions()
}

/// What every connection of a torrent needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub key: PeerKey,
    pub info_hash: InfoHash,
    pub our_id: PeerId,
    /// `None` while a magnet link's metadata is unknown.
    pub piece_count: Option<u32>,
    /// Timeouts and message-size caps.
    pub limits: Limits,
    /// The session's half-open budget: held from the TCP connect until the peer's handshake is in.
    pub half_open: Arc<Semaphore>,
    pub events: mpsc::Sender<Event>,
    /// Download limits to respect (session-wide, then the torrent's).
    pub download: [Arc<Limiter>; 2],
    /// Upload limits to respect.
    pub upload: [Arc<Limiter>; 2],
    /// Whether and how to use message stream encryption.
    pub encryption: Encryption,
}

/// Connects to `addr` and runs the connection until it ends, holding `permit` (its place in the
/// session's connection budget) until then. The encryption setting says whether the first attempt is
/// plaintext or MSE; a peer that hangs up on it gets one more attempt the other way, if allowed.
pub(crate) async fn connect(addr: SocketAddr, setup: Setup, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    let result = async {
        let Ok(_half_open) = setup.half_open.clone().acquire_owned().await else {
            return Err("session closed".to_string());
        };
        let attempts = setup.encryption.attempts();
        let mut failure = String::new();
        for (n, mse) in attempts.iter().enumerate() {
            match dial(addr, &setup, *mse).await {
                Ok(done) => return Ok(done),
                Err(Failed { reason, hung_up }) => {
                    failure = if n == 0 {
                        reason
                    } else {
                        format!("{failure}; then {reason}")
                    };
                    if !hung_up {
                        break;
                    }
                }
            }
        }
        Err(failure)
    }
    .await;
    match result {
        Ok((link, theirs)) => {
            let hello = Hello {
                addr,
                peer_id: theirs.peer_id,
                reserved: theirs.reserved,
                outgoing: true,
                encrypted: link.encrypted(),
                queued: Arc::default(),
                sent: Arc::default(),
                web_seed: None,
            };
            run(link, hello, setup).await;
        }
        Err(reason) => {
            let _ = setup
                .events
                .send(Event::PeerGone {
                    key: setup.key,
                    reason,
                })
                .await;
        }
    }
}

/// Why a dial failed, and whether the peer hung up on our handshake (worth trying the other way).
struct Failed {
    reason: String,
    hung_up: bool,
}

impl Failed {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            hung_up: false,
        }
    }

    /// An I/O error of the handshake: a closed or reset connection counts as hanging up.
    fn io(what: &str, error: &std::io::Error) -> Self {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        Self {
            reason: format!("{what}: {error}"),
            hung_up: matches!(
                error.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
            ),
        }
    }
}

/// One connection attempt: TCP, then MSE offering `mse` (or nothing, for plaintext), then the
/// BitTorrent handshakes, checked.
async fn dial(
    addr: SocketAddr,
    setup: &Setup,
    mse: Option<&[Method]>,
) -> Result<(Link, Handshake), Failed> {
    let limits = &setup.limits;
    let mut stream = tokio::time::timeout(limits.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Failed::new("connect timed out"))?
        .map_err(|e| Failed::new(format!("connect: {e}")))?;
    stream.set_nodelay(true).ok();
    let ours = Handshake::new(setup.info_hash, setup.our_id)
        .with_reserved(our_reserved())
        .to_bytes();
    let handshakes = async {
        let mut link = match mse {
            // Our handshake goes inside MSE's, as its initial payload: one round trip less.
            Some(offer) => {
                match shoal_mse::initiate(&mut stream, setup.info_hash, offer, &ours).await {
                    Ok(negotiated) => Link::negotiated(stream, negotiated),
                    Err(MseError::Closed) => {
                        return Err(Failed {
                            reason: "the peer hung up on the MSE handshake".into(),
                            hung_up: true,
                        });
                    }
                    Err(MseError::Io(e)) => return Err(Failed::io("mse", &e)),
                    Err(e) => return Err(Failed::new(e.to_string())),
                }
            }
            None => {
                let mut link = Link::plain(stream, Vec::new());
                link.write_all(&ours)
                    .await
                    .map_err(|e| Failed::io("send handshake", &e))?;
                link
            }
        };
        let theirs = read_handshake(&mut link).await?;
        Ok((link, theirs))
    };
    let (link, theirs) = tokio::time::timeout(limits.handshake_timeout, handshakes)
        .await
        .map_err(|_| Failed::new("handshake timed out"))??;
    theirs
        .check(&setup.info_hash, &setup.our_id)
        .map_err(|e| Failed::new(e.to_string()))?;
    Ok((link, theirs))
}

/// Reads an incoming connection's opening: a plaintext BitTorrent handshake (if `encryption` allows
/// it) or an MSE handshake for one of our torrents (`find` maps `HASH('req2', info-hash)` to it) and the
/// BitTorrent handshake inside. The caller bounds it with the handshake timeout.
pub(crate) async fn identify(
    mut stream: TcpStream,
    encryption: Encryption,
    find: impl Fn(&[u8; 20]) -> Option<InfoHash>,
) -> Result<(Link, Handshake), String> {
    let mut first = [0u8; 20];
    stream
        .read_exact(&mut first)
        .await
        .map_err(|e| format!("read handshake: {e}"))?;
    // A plaintext handshake names its torrent itself; an MSE one names it in the key exchange, and the
    // handshake inside must agree.
    let (mut link, named) = if first[0] == 19 && &first[1..] == shoal_wire::PROTOCOL {
        if !encryption.allows_plaintext() {
            return Err("plaintext handshake refused: encryption is required".into());
        }
        (Link::plain(stream, first.to_vec()), None)
    } else {
        let accept = encryption.accept();
        if accept.is_empty() {
            return Err("not a BitTorrent handshake (and encryption is off)".into());
        }
        let negotiated = shoal_mse::respond(&mut stream, &first, find, accept)
            .await
            .map_err(|e| e.to_string())?;
        let named = negotiated.info_hash;
        (Link::negotiated(stream, negotiated), Some(named))
    };
    let theirs = read_handshake(&mut link).await.map_err(|f| f.reason)?;
    if named.is_some_and(|named| named != theirs.info_hash) {
        return Err("the handshake inside MSE names another torrent".into());
    }
    Ok((link, theirs))
}

/// Serves an incoming connection whose handshake the listener already read and routed here, holding
/// `permit` until it ends.
pub(crate) async fn accept(
    mut link: Link,
    theirs: Handshake,
    setup: Setup,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let gone = |reason: String| Event::PeerGone {
        key: setup.key,
        reason,
    };
    let addr = match link.stream.peer_addr() {
        Ok(addr) => addr,
        Err(e) => {
            let _ = setup.events.send(gone(format!("peer address: {e}"))).await;
            return;
        }
    };
    let ours = Handshake::new(theirs.info_hash, setup.our_id).with_reserved(our_reserved());
    if let Err(e) = link.write_all(&ours.to_bytes()).await {
        let _ = setup
            .events
            .send(gone(format!("send handshake: {e}")))
            .await;
        return;
    }
    let hello = Hello {
        addr,
        peer_id: theirs.peer_id,
        reserved: theirs.reserved,
        outgoing: false,
        encrypted: link.encrypted(),
        queued: Arc::default(),
        sent: Arc::default(),
        web_seed: None,
    };
    run(link, hello, setup).await;
}

/// Reads exactly one handshake.
async fn read_handshake(link: &mut Link) -> Result<Handshake, Failed> {
    let mut buf = [0u8; Handshake::LEN];
    // The first byte and protocol string are checked as soon as they arrive, so junk is refused early.
    link.read_exact(&mut buf[..20])
        .await
        .map_err(|e| Failed::io("read handshake", &e))?;
    if buf[0] != 19 || &buf[1..20] != shoal_wire::PROTOCOL {
        return Err(Failed::new("not a BitTorrent handshake"));
    }
    link.read_exact(&mut buf[20..])
        .await
        .map_err(|e| Failed::io("read handshake", &e))?;
    Handshake::decode(&buf).map_err(|e| Failed::new(e.to_string()))
}

/// The connection after the handshake: registers with the torrent, then reads and writes until either
/// side ends it.
async fn run(link: Link, hello: Hello, setup: Setup) {
    let Setup {
        key,
        piece_count,
        limits,
        events,
        download,
        upload,
        ..
    } = setup;
    let idle = limits.idle_timeout;
    let (commands_tx, mut commands) = mpsc::unbounded_channel();
    let fast = hello.reserved.supports_fast();
    let queued = hello.queued.clone();
    let sent = hello.sent.clone();
    if events
        .send(Event::PeerConnected {
            key,
            hello,
            commands: commands_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    let Link {
        stream,
        received,
        mut decrypt,
        mut encrypt,
    } = link;
    let (mut reader, mut writer) = stream.into_split();

    let write = async {
        // Messages wait here until written, so a `cancel` from the peer can still withdraw a block.
        let mut queue: VecDeque<Message> = VecDeque::new();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let keep_alive = idle / 2;
        let mut closing = false;
        loop {
            if queue.is_empty() {
                if closing {
                    return Ok(());
                }
                match tokio::time::timeout(keep_alive, commands.recv()).await {
                    Ok(Some(command)) => closing |= apply(&mut queue, command, &queued),
                    Ok(None) => return Ok(()),
                    Err(_) => queue.push_back(Message::KeepAlive),
                }
            }
            while let Ok(command) = commands.try_recv() {
                closing |= apply(&mut queue, command, &queued);
            }
            // Up to about 256 KiB per write; block payloads wait for the rate limits first. A block that
            // has to wait does not hold back what is already encoded: that goes out first, so a limited
            // upload flows block by block instead of in bursts seconds apart.
            let mut payload = 0u64;
            while buf.len() < 256 * 1024 {
                let Some(message) = queue.pop_front() else {
                    break;
                };
                if let Message::Piece(block) = &message {
                    let len = block.data.len() as u64;
                    if !buf.is_empty() && !upload.iter().all(|limit| limit.ready(len)) {
                        queue.push_front(message);
                        break;
                    }
                    for limit in &upload {
                        limit.acquire(len).await;
                    }
                    queued.fetch_sub(1, Ordering::Relaxed);
                    payload += len;
                }
                message.encode_into(&mut buf);
            }
            if let Some(rc4) = encrypt.as_mut() {
                rc4.apply(&mut buf);
            }
            writer
                .write_all(&buf)
                .await
                .map_err(|e| format!("write: {e}"))?;
            sent.fetch_add(payload, Ordering::Relaxed);
            buf.clear();
        }
    };

    let read = async {
        let config = DecoderConfig {
            n_pieces: piece_count,
            fast_extension: fast,
            max_message_len: limits.max_message_len,
            max_extended_len: limits.max_extended_len,
            max_pieces: limits.max_pieces,
            ..DecoderConfig::default()
        };
        let mut decoder = MessageDecoder::new(config);
        // What the MSE handshake read past its end comes first.
        decoder.handle_bytes(&received);
        loop {
            let mut batch = Vec::new();
            loop {
                match decoder.poll_message() {
                    Ok(Some(Message::KeepAlive)) => {}
                    Ok(Some(message)) => batch.push(message),
                    Ok(None) => break,
                    Err(e) => return Err(protocol_error(&e)),
                }
            }
            if !batch.is_empty()
                && events
                    .send(Event::PeerMessages {
                        key,
                        messages: batch,
                    })
                    .await
                    .is_err()
            {
                return Ok(());
            }
            let before = decoder.buffered_len();
            let read = tokio::time::timeout(idle, reader.read_buf(decoder.buffer_mut())).await;
            match read {
                Err(_) => return Err::<(), String>("idle timeout".into()),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Ok(Ok(0)) => return Err("connection closed".into()),
                Ok(Ok(n)) => {
                    if let (Some(rc4), Some(fresh)) =
                        (decrypt.as_mut(), decoder.buffer_mut().get_mut(before..))
                    {
                        rc4.apply(fresh);
                    }
                    // Reading slower is how a download limit pushes back on the sender (TCP flow control).
                    for limit in &download {
                        limit.acquire(n as u64).await;
                    }
                }
            }
        }
    };

    let reason = tokio::select! {
        result = write => result.err().unwrap_or_else(|| "closed by us".into()),
        result = read => result.err().unwrap_or_else(|| "session ended".into()),
    };
    let _ = events.send(Event::PeerGone { key, reason }).await;
}

fn protocol_error(error: &WireError) -> String {
    format!("protocol violation: {error}")
}
