//! One peer connection: the handshake, then a reader that decodes messages for the torrent and a writer
//! that sends what the torrent asks. The torrent task owns all protocol decisions; this only moves bytes.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use shoal_metainfo::{InfoHash, PeerId};
use shoal_wire::{DecoderConfig, Handshake, Message, MessageDecoder, Reserved, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::torrent::{Event, PeerKey};

/// What the torrent task tells a peer's writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send these messages, in order.
    Send(Vec<Message>),
    /// Close the connection.
    Close,
}

/// What a connection learned in its handshake.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub reserved: Reserved,
    pub outgoing: bool,
}

/// Our handshake's extension bits: fast extension (BEP 6) and extension protocol (BEP 10).
pub(crate) fn our_reserved() -> Reserved {
    Reserved::default().with_fast().with_extensions()
}

/// Connects to `addr` and runs the connection until it ends.
pub(crate) async fn connect(
    addr: SocketAddr,
    key: PeerKey,
    info_hash: InfoHash,
    our_id: PeerId,
    piece_count: u32,
    timeouts: (Duration, Duration, Duration),
    events: mpsc::Sender<Event>,
) {
    let (connect_timeout, handshake_timeout, idle) = timeouts;
    let result = async {
        let mut stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        let ours = Handshake::new(info_hash, our_id).with_reserved(our_reserved());
        stream
            .write_all(&ours.to_bytes())
            .await
            .map_err(|e| format!("send handshake: {e}"))?;
        let theirs = tokio::time::timeout(handshake_timeout, read_handshake(&mut stream))
            .await
            .map_err(|_| "handshake timed out".to_string())??;
        theirs
            .check(&info_hash, &our_id)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((stream, theirs))
    }
    .await;
    match result {
        Ok((stream, theirs)) => {
            let hello = Hello {
                addr,
                peer_id: theirs.peer_id,
                reserved: theirs.reserved,
                outgoing: true,
            };
            run(stream, key, hello, piece_count, idle, events).await;
        }
        Err(reason) => {
            let _ = events.send(Event::PeerGone { key, reason }).await;
        }
    }
}

/// Serves an incoming connection whose handshake the listener already read and routed here.
pub(crate) async fn accept(
    mut stream: TcpStream,
    theirs: Handshake,
    key: PeerKey,
    our_id: PeerId,
    piece_count: u32,
    idle: Duration,
    events: mpsc::Sender<Event>,
) {
    let addr = match stream.peer_addr() {
        Ok(addr) => addr,
        Err(e) => {
            let _ = events
                .send(Event::PeerGone {
                    key,
                    reason: format!("peer address: {e}"),
                })
                .await;
            return;
        }
    };
    let ours = Handshake::new(theirs.info_hash, our_id).with_reserved(our_reserved());
    if let Err(e) = stream.write_all(&ours.to_bytes()).await {
        let _ = events
            .send(Event::PeerGone {
                key,
                reason: format!("send handshake: {e}"),
            })
            .await;
        return;
    }
    let hello = Hello {
        addr,
        peer_id: theirs.peer_id,
        reserved: theirs.reserved,
        outgoing: false,
    };
    run(stream, key, hello, piece_count, idle, events).await;
}

/// Reads exactly one handshake.
pub(crate) async fn read_handshake(stream: &mut TcpStream) -> Result<Handshake, String> {
    let mut buf = [0u8; Handshake::LEN];
    // The first byte and protocol string are checked as soon as they arrive, so junk is refused early.
    stream
        .read_exact(&mut buf[..20])
        .await
        .map_err(|e| format!("read handshake: {e}"))?;
    if buf[0] != 19 || &buf[1..20] != b"BitTorrent protocol" {
        return Err("not a BitTorrent handshake".into());
    }
    stream
        .read_exact(&mut buf[20..])
        .await
        .map_err(|e| format!("read handshake: {e}"))?;
    Handshake::decode(&buf).map_err(|e| e.to_string())
}

/// The connection after the handshake: registers with the torrent, then reads and writes until either
/// side ends it.
async fn run(
    stream: TcpStream,
    key: PeerKey,
    hello: Hello,
    piece_count: u32,
    idle: Duration,
    events: mpsc::Sender<Event>,
) {
    let (commands_tx, mut commands) = mpsc::unbounded_channel();
    let fast = hello.reserved.supports_fast();
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
    let (mut reader, mut writer) = stream.into_split();

    let write = async {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let keep_alive = idle / 2;
        loop {
            let command = match tokio::time::timeout(keep_alive, commands.recv()).await {
                Ok(Some(command)) => command,
                Ok(None) => return Ok(()),
                Err(_) => Command::Send(vec![Message::KeepAlive]),
            };
            let Command::Send(messages) = command else {
                return Ok(());
            };
            for message in &messages {
                message.encode_into(&mut buf);
            }
            // Coalesce whatever else is already queued into the same write.
            while let Ok(Command::Send(more)) = commands.try_recv() {
                for message in &more {
                    message.encode_into(&mut buf);
                }
            }
            writer
                .write_all(&buf)
                .await
                .map_err(|e| format!("write: {e}"))?;
            buf.clear();
        }
    };

    let read = async {
        let config = DecoderConfig {
            n_pieces: Some(piece_count),
            fast_extension: fast,
            ..DecoderConfig::default()
        };
        let mut decoder = MessageDecoder::new(config);
        loop {
            let read = tokio::time::timeout(idle, reader.read_buf(decoder.buffer_mut())).await;
            match read {
                Err(_) => return Err::<(), String>("idle timeout".into()),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Ok(Ok(0)) => return Err("connection closed".into()),
                Ok(Ok(_)) => {}
            }
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
