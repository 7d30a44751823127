//! BEP 19 web seeds: an HTTP server holding the torrent's files, used like a peer that has every piece.
//!
//! A web seed runs as a task that speaks to the torrent task exactly as a peer connection does: it
//! registers with a [`Hello`], says it has everything and unchokes, takes `request`s and `cancel`s as
//! [`Command`]s, and answers with `piece` messages. So the picker, the pipeline, the hash checks and the
//! bans for bad data treat it like any other peer. Runs of contiguous requested blocks become one HTTP
//! `Range` request per file they touch (up to [`MAX_RANGE`] bytes).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shoal_metainfo::{Info, PeerId};
use shoal_wire::{Block, BlockRef, Message, Reserved};
use tokio::sync::mpsc;

use crate::peer::{Command, Hello, Setup};
use crate::torrent::Event;

/// The most bytes asked for in one HTTP request.
const MAX_RANGE: u64 = 4 << 20;
/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may stay silent in the middle of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where one file of the torrent lies in its byte stream, and the URL it is served at (`None` for a
/// BEP 47 padding file, which is all zeros and never fetched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebFile {
    pub url: Option<String>,
    pub offset: u64,
    pub length: u64,
}

/// The most web seeds a torrent uses (the first distinct ones of its `url-list`): a hostile torrent
/// naming thousands of servers gets no more HTTP tasks than this.
pub(crate) const MAX_WEB_SEEDS: usize = 16;

/// A web seed of a torrent: its URL as the torrent gives it, and each file's URL on it.
#[derive(Debug, Clone)]
pub(crate) struct WebSeed {
    pub url: String,
    pub files: Arc<[WebFile]>,
    /// A peer id made from the URL, so the torrent can tell web seeds apart (and ban one).
    pub peer_id: PeerId,
}

impl WebSeed {
    /// The web seed at `base` for `info` (BEP 19): a URL ending in `/` is a directory holding the
    /// torrent's name (and, for several files, the paths under it); one that does not is the file itself
    /// for a single-file torrent, and is taken as the directory for several files. `None` for anything
    /// but `http` and `https` URLs.
    pub fn new(base: &str, info: &Info<'_>) -> Option<Self> {
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || base.contains('#') {
            return None;
        }
        let directory = if base.ends_with('/') {
            base.to_owned()
        } else if info.multi_file {
            format!("{base}/")
        } else {
            String::new()
        };
        let files = info
            .files
            .iter()
            .map(|file| WebFile {
                url: (!file.is_padding()).then(|| {
                    if directory.is_empty() {
                        return base.to_owned();
                    }
                    let mut url = directory.clone();
                    url.push_str(&encode(info.name));
                    if info.multi_file {
                        for component in &file.path {
                            url.push('/');
                            url.push_str(&encode(component));
                        }
                    }
                    url
                }),
                offset: file.offset,
                length: file.length,
            })
            .collect();
        let digest = <sha1::Sha1 as sha1::Digest>::digest(base.as_bytes());
        let mut peer_id = *b"-WS0000-000000000000";
        peer_id[8..].copy_from_slice(&digest[..12]);
        Some(Self {
            url: base.to_owned(),
            files,
            peer_id: PeerId(peer_id),
        })
    }

    /// The HTTP requests that fetch the torrent's bytes `start..end`: (URL, first byte, last byte, file
    /// length) in each file, in order; padding is `None` (zeros).
    fn ranges(&self, start: u64, end: u64) -> Vec<(Option<&str>, u64, u64, u64)> {
        self.files
            .iter()
            .filter(|f| f.length > 0 && f.offset < end && f.offset + f.length > start)
            .map(|f| {
                let from = start.max(f.offset) - f.offset;
                let to = end.min(f.offset + f.length) - f.offset;
                (f.url.as_deref(), from, to - 1, f.length)
            })
            .collect()
    }
}

/// Percent-encodes a path component: everything but RFC 3986's unreserved characters.
fn encode(component: &[u8]) -> String {
    let mut out = String::with_capacity(component.len());
    for &b in component {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs web seed `seed` as a peer of the torrent until the torrent closes it or the server fails;
/// `piece_length` places block requests in the byte stream.
pub(crate) async fn run(seed: WebSeed, piece_length: u64, setup: Setup) {
    let key = setup.key;
    let events = setup.events.clone();
    let reason = match serve(&seed, piece_length, setup).await {
        Ok(()) => "closed by us".to_owned(),
        Err(e) => e,
    };
    let _ = events.send(Event::PeerGone { key, reason }).await;
}

async fn serve(seed: &WebSeed, piece_length: u64, setup: Setup) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .no_gzip()
        .user_agent(concat!("Shoal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("web seed client: {e}"))?;
    let addr = resolve(&seed.url).await?;
    let (commands_tx, mut commands) = mpsc::unbounded_channel();
    let hello = Hello {
        addr,
        peer_id: seed.peer_id,
        reserved: Reserved::default().with_fast(),
        outgoing: false,
        encrypted: false,
        queued: Arc::default(),
        sent: Arc::default(),
        web_seed: Some(seed.url.clone().into()),
    };
    let registered = setup
        .events
        .send(Event::PeerConnected {
            key: setup.key,
            hello,
            commands: commands_tx,
        })
        .await;
    if registered.is_err() {
        return Ok(());
    }
    send(&setup, vec![Message::HaveAll, Message::Unchoke]).await?;
    let mut pending: VecDeque<BlockRef> = VecDeque::new();
    loop {
        // Take every command waiting; wait for one when there is nothing to fetch.
        let mut closed = false;
        if pending.is_empty() {
            match commands.recv().await {
                Some(command) => closed |= apply(&mut pending, command),
                None => return Ok(()),
            }
        }
        while let Ok(command) = commands.try_recv() {
            closed |= apply(&mut pending, command);
        }
        if closed {
            return Ok(());
        }
        let run = take_run(&mut pending, piece_length);
        if run.is_empty() {
            continue;
        }
        let start = block_start(&run[0], piece_length);
        let last = run.last().expect("not empty");
        let end = block_start(last, piece_length) + u64::from(last.len);
        let mut delivery = Delivery {
            blocks: run.into(),
            buffer: BytesMut::new(),
        };
        if let Err(e) = fetch(&client, seed, start, end, &mut delivery, &setup).await {
            // What did not arrive goes back to the picker; the torrent retries the server later.
            let rejects = delivery
                .blocks
                .iter()
                .map(|b| Message::Reject(*b))
                .collect();
            let _ = send(&setup, rejects).await;
            return Err(e);
        }
    }
}

/// The blocks of one run still to deliver, and the bytes received towards the first of them: each block
/// goes to the torrent as soon as its bytes are in.
struct Delivery {
    blocks: VecDeque<BlockRef>,
    buffer: BytesMut,
}

impl Delivery {
    /// Adds the next received bytes; returns the blocks they completed. A block that lies whole in
    /// `bytes` is a slice of it, not a copy.
    fn push(&mut self, mut bytes: Bytes) -> Vec<Message> {
        let mut done = Vec::new();
        while let Some(block) = self.blocks.front().copied() {
            let len = block.len as usize;
            let data = if self.buffer.is_empty() && bytes.len() >= len {
                bytes.split_to(len)
            } else {
                let take = (len - self.buffer.len()).min(bytes.len());
                self.buffer.extend_from_slice(&bytes.split_to(take));
                if self.buffer.len() < len {
                    break;
                }
                self.buffer.split().freeze()
            };
            self.blocks.pop_front();
            done.push(Message::Piece(Block {
                piece: block.piece,
                offset: block.offset,
                data,
            }));
        }
        done
    }
}

/// Applies a command from the torrent; `true` when it asks to close.
fn apply(pending: &mut VecDeque<BlockRef>, command: Command) -> bool {
    match command {
        Command::Send(messages) => {
            for message in messages {
                match message {
                    Message::Request(block) => pending.push_back(block),
                    Message::Cancel(block) => pending.retain(|b| *b != block),
                    // Our bitfield, interest, extended handshake: nothing for a web server.
                    _ => {}
                }
            }
            false
        }
        Command::Cancel(_) => false,
        Command::Close => true,
    }
}

/// Takes the longest run of requests from the front of `pending` that are contiguous in the byte
/// stream, up to [`MAX_RANGE`] bytes.
fn take_run(pending: &mut VecDeque<BlockRef>, piece_length: u64) -> Vec<BlockRef> {
    let mut run: Vec<BlockRef> = Vec::new();
    let mut end = 0;
    let mut total = 0u64;
    while let Some(next) = pending.front().copied() {
        let start = block_start(&next, piece_length);
        if !run.is_empty() && (start != end || total + u64::from(next.len) > MAX_RANGE) {
            break;
        }
        pending.pop_front();
        end = start + u64::from(next.len);
        total += u64::from(next.len);
        run.push(next);
    }
    run
}

fn block_start(block: &BlockRef, piece_length: u64) -> u64 {
    u64::from(block.piece.0) * piece_length + u64::from(block.offset)
}

async fn send(setup: &Setup, messages: Vec<Message>) -> Result<(), String> {
    setup
        .events
        .send(Event::PeerMessages {
            key: setup.key,
            messages,
        })
        .await
        .map_err(|_| "torrent ended".to_owned())
}

/// Fetches the torrent's bytes `start..end` from the server, file by file, respecting the download
/// limits as the bytes arrive.
async fn fetch(
    client: &reqwest::Client,
    seed: &WebSeed,
    start: u64,
    end: u64,
    delivery: &mut Delivery,
    setup: &Setup,
) -> Result<(), String> {
    for (url, first, last, length) in seed.ranges(start, end) {
        let want = last - first + 1;
        let Some(url) = url else {
            let zeros = vec![0u8; want as usize];
            send(setup, delivery.push(Bytes::from(zeros))).await?;
            continue;
        };
        let mut response = client
            .get(url)
            .header(reqwest::header::RANGE, format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(|e| format!("web seed {url}: {e}"))?;
        let status = response.status();
        // A `200` is right only for a request of the whole file.
        let whole = status == reqwest::StatusCode::OK && first == 0 && last + 1 == length;
        if status != reqwest::StatusCode::PARTIAL_CONTENT && !whole {
            return Err(if status.is_success() {
                format!("web seed {url}: the server ignores Range requests (HTTP {status})")
            } else {
                format!("web seed {url}: HTTP {status}")
            });
        }
        if status == reqwest::StatusCode::PARTIAL_CONTENT {
            let range = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            if content_range(range) != Some((first, last)) {
                return Err(format!(
                    "web seed {url}: asked for bytes {first}-{last}, got {}",
                    range.unwrap_or("no Content-Range")
                ));
            }
        }
        let mut received = 0u64;
        while received < want {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| format!("web seed {url}: {e}"))?;
            let Some(chunk) = chunk else {
                return Err(format!(
                    "web seed {url}: the answer ended after {received} of {want} bytes"
                ));
            };
            for limit in &setup.download {
                limit.acquire(chunk.len() as u64).await;
            }
            let take = (chunk.len() as u64).min(want - received);
            received += take;
            let blocks = delivery.push(chunk.slice(..take as usize));
            if !blocks.is_empty() {
                send(setup, blocks).await?;
            }
        }
        // More than asked for is a broken server (or a file longer than the torrent says); fewer ended
        // above.
        if response.chunk().await.ok().flatten().is_some() {
            return Err(format!(
                "web seed {url}: more bytes than the range asked for"
            ));
        }
    }
    Ok(())
}

/// The first and last byte of a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range(header: Option<&str>) -> Option<(u64, u64)> {
    let range = header?.trim().strip_prefix("bytes ")?;
    let (span, _total) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// The server's address (for the peer list and bans), from the URL's host and port.
async fn resolve(url: &str) -> Result<SocketAddr, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("web seed {url}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("web seed {url}: no host"))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("web seed {url}: no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("web seed {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("web seed {url}: the host has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_metainfo::{Metainfo, PieceIndex};

    fn torrent(info: &str) -> Vec<u8> {
        format!("d4:info{info}e").into_bytes()
    }

    #[test]
    fn urls_follow_bep_19_for_one_file_and_several() {
        let one = torrent(
            "d6:lengthi100e4:name9:movie.mkv12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae",
        );
        let one = Metainfo::from_bytes(&one).unwrap();
        let file_url = |base: &str| WebSeed::new(base, &one.info).unwrap().files[0].url.clone();
        assert_eq!(
            file_url("http://h/pub/movie.mkv").as_deref(),
            Some("http://h/pub/movie.mkv")
        );
        assert_eq!(
            file_url("http://h/pub/").as_deref(),
            Some("http://h/pub/movie.mkv")
        );
        assert!(WebSeed::new("ftp://h/pub/", &one.info).is_none());
        assert!(WebSeed::new("udp://h:80", &one.info).is_none());

        let several = torrent(
            "d5:filesld6:lengthi10e4:pathl3:a b5:c#?.de\
             ed4:attr1:p6:lengthi6e4:pathl4:.pade\
             ed6:lengthi20e4:pathl5:e.txteee\
             4:name4:shar12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae",
        );
        let several = Metainfo::from_bytes(&several).unwrap();
        for base in ["https://h/x/", "https://h/x"] {
            let seed = WebSeed::new(base, &several.info).unwrap();
            let urls: Vec<Option<&str>> = seed.files.iter().map(|f| f.url.as_deref()).collect();
            assert_eq!(
                urls,
                [
                    Some("https://h/x/shar/a%20b/c%23%3F.d"),
                    None,
                    Some("https://h/x/shar/e.txt")
                ]
            );
        }
        // Bytes 5..30 touch all three: the end of the first file, the padding, the start of the last.
        let seed = WebSeed::new("https://h/x/", &several.info).unwrap();
        assert_eq!(
            seed.ranges(5, 30),
            [
                (Some("https://h/x/shar/a%20b/c%23%3F.d"), 5, 9, 10),
                (None, 0, 5, 6),
                (Some("https://h/x/shar/e.txt"), 0, 13, 20)
            ]
        );
    }

    #[test]
    fn contiguous_requests_make_one_range_up_to_the_cap() {
        let block = |piece, offset| BlockRef {
            piece: PieceIndex(piece),
            offset,
            len: 16_384,
        };
        // 32 KiB pieces: piece 0's two blocks and piece 1's first are contiguous; piece 3 is not.
        let mut pending: VecDeque<BlockRef> =
            [block(0, 0), block(0, 16_384), block(1, 0), block(3, 0)].into();
        assert_eq!(take_run(&mut pending, 32_768).len(), 3);
        assert_eq!(take_run(&mut pending, 32_768), [block(3, 0)]);
        assert!(take_run(&mut pending, 32_768).is_empty());
        let mut many: VecDeque<BlockRef> =
            (0..1000).map(|i| block(i / 2, i % 2 * 16_384)).collect();
        assert_eq!(take_run(&mut many, 32_768).len() as u64 * 16_384, MAX_RANGE);
    }

    #[test]
    fn blocks_are_delivered_as_their_bytes_arrive() {
        let block = |offset| BlockRef {
            piece: PieceIndex(0),
            offset,
            len: 4,
        };
        let mut delivery = Delivery {
            blocks: [block(0), block(4), block(8)].into(),
            buffer: BytesMut::new(),
        };
        assert!(delivery.push(Bytes::from_static(b"abc")).is_empty());
        let done = delivery.push(Bytes::from_static(b"defghij"));
        let data: Vec<&[u8]> = done
            .iter()
            .map(|m| match m {
                Message::Piece(b) => &b.data[..],
                _ => panic!("{m:?}"),
            })
            .collect();
        assert_eq!(data, [&b"abcd"[..], b"efgh"]);
        assert_eq!(
            delivery.blocks,
            [block(8)],
            "the last waits for one more byte"
        );
        assert_eq!(delivery.push(Bytes::from_static(b"kl")).len(), 1);
        assert!(delivery.blocks.is_empty());
    }

    #[test]
    fn content_ranges_parse_or_are_refused() {
        assert_eq!(
            content_range(Some("bytes 0-16383/100000")),
            Some((0, 16_383))
        );
        assert_eq!(content_range(Some("bytes 5-9/*")), Some((5, 9)));
        for bad in [
            None,
            Some(""),
            Some("bytes */100"),
            Some("items 0-1/2"),
            Some("bytes 1-x/2"),
        ] {
            assert_eq!(content_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cancels_withdraw_pending_requests() {
        let block = BlockRef {
            piece: PieceIndex(2),
            offset: 0,
            len: 16_384,
        };
        let mut pending = VecDeque::new();
        assert!(!apply(
            &mut pending,
            Command::Send(vec![Message::Interested, Message::Request(block)])
        ));
        assert_eq!(pending.len(), 1);
        assert!(!apply(
            &mut pending,
            Command::Send(vec![Message::Cancel(block)])
        ));
        assert!(pending.is_empty());
        assert!(apply(&mut pending, Command::Close));
    }
}
