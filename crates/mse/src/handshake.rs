//! The MSE handshake, both sides, over any tokio stream.
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload stream)
//! 5 A->B: ENCRYPT2(payload stream)
//! ```
//!
//! S is the Diffie-Hellman secret, SKEY the torrent's info-hash, VC eight zero bytes; pads are 0 to 512
//! random bytes. ENCRYPT is RC4 keyed with `HASH('keyA', S, SKEY)` from A and `HASH('keyB', S, SKEY)`
//! from B, the first 1024 keystream bytes discarded. ENCRYPT2 is what `crypto_select` chose: the same
//! RC4 streams, or none. Each side finds where the other's encrypted part starts by scanning for a
//! pattern (B for `HASH('req1', S)`, A for the encrypted VC) within the longest padding allowed.

use sha1::{Digest, Sha1};
use shoal_metainfo::InfoHash;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::dh::{KEY_LEN, KeyPair};
use crate::{MseError, Rc4};

/// The longest padding either side may send (PadA, PadB, PadC, PadD).
pub const MAX_PAD: usize = 512;

/// The verification constant: eight zero bytes, encrypted so each side can check the other's keys.
const VC: [u8; 8] = [0; 8];

/// Keystream bytes thrown away before use.
const DISCARD: usize = 1024;

/// How the payload stream travels once the handshake is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Unencrypted: only the handshake was obfuscated (`crypto_provide` bit 0x01).
    Plaintext,
    /// RC4 for the whole connection (bit 0x02).
    Rc4,
}

impl Method {
    /// The method's bit in `crypto_provide` and `crypto_select`.
    pub fn bit(self) -> u32 {
        match self {
            Method::Plaintext => 0x01,
            Method::Rc4 => 0x02,
        }
    }
}

fn bits(methods: &[Method]) -> u32 {
    methods.iter().fold(0, |all, m| all | m.bit())
}

/// What a finished handshake leaves: the method, the torrent, the ciphers for the rest of the
/// connection (none for plaintext), and payload bytes that were already read.
#[derive(Debug)]
pub struct Negotiated {
    /// The method the responder selected.
    pub method: Method,
    /// The torrent the connection is for (SKEY).
    pub info_hash: InfoHash,
    /// Decrypts what the other side sends from here on; `None` for plaintext.
    pub reader: Option<Rc4>,
    /// Encrypts what we send from here on; `None` for plaintext.
    pub writer: Option<Rc4>,
    /// Payload-stream bytes already received, decrypted: the responder gets the initiator's initial
    /// payload (IA) here, followed by anything read past it; the initiator gets what was read past
    /// the handshake.
    pub received: Vec<u8>,
}

/// `HASH('req2', SKEY)`: what a responder compares against to learn which torrent an initiator wants.
/// Computing it once per torrent lets [`respond`]'s lookup be a map access.
///
/// ```
/// use shoal_metainfo::InfoHash;
///
/// let a = shoal_mse::req2(&InfoHash([1; 20]));
/// assert_ne!(a, shoal_mse::req2(&InfoHash([2; 20])));
/// assert_eq!(a, shoal_mse::req2(&InfoHash([1; 20])));
/// ```
pub fn req2(info_hash: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &info_hash.0])
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

/// The two RC4 streams of a connection: (ours to send with, theirs to read with).
fn ciphers(secret: &[u8; KEY_LEN], skey: &InfoHash, initiator: bool) -> (Rc4, Rc4) {
    let keyed = |label: &[u8]| {
        let mut rc4 = Rc4::new(&hash(&[label, secret, &skey.0]));
        rc4.discard(DISCARD);
        rc4
    };
    let (a, b) = (keyed(b"keyA"), keyed(b"keyB"));
    if initiator { (a, b) } else { (b, a) }
}

/// 0 to 512 random bytes.
fn padding() -> Result<Vec<u8>, MseError> {
    let mut len = [0u8; 2];
    getrandom::fill(&mut len).map_err(|e| MseError::Random(e.to_string()))?;
    let mut pad = vec![0u8; usize::from(u16::from_be_bytes(len)) % (MAX_PAD + 1)];
    getrandom::fill(&mut pad).map_err(|e| MseError::Random(e.to_string()))?;
    Ok(pad)
}

/// Bytes read from the other side and not yet consumed. Reads go in chunks, so it may hold bytes past
/// the handshake; [`Input::rest`] hands them on.
struct Input {
    buf: Vec<u8>,
    pos: usize,
}

impl Input {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads until at least `n` unconsumed bytes are in.
    async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        n: usize,
    ) -> Result<(), MseError> {
        let mut chunk = [0u8; 1024];
        while self.available().len() < n {
            let got = stream.read(&mut chunk).await?;
            if got == 0 {
                return Err(MseError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(())
    }

    /// The next `n` bytes, consumed.
    async fn take<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        n: usize,
    ) -> Result<Vec<u8>, MseError> {
        self.fill(stream, n).await?;
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// Consumes everything up to and including `pattern`, which must end within `window` bytes.
    async fn sync<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        pattern: &[u8],
        window: usize,
    ) -> Result<(), MseError> {
        loop {
            let seen = self.available();
            let scan = &seen[..seen.len().min(window)];
            if let Some(at) = scan.windows(pattern.len()).position(|w| w == pattern) {
                self.pos += at + pattern.len();
                return Ok(());
            }
            if seen.len() >= window {
                return Err(MseError::NoSync(window));
            }
            let more = seen.len() + 1;
            self.fill(stream, more).await?;
        }
    }

    fn rest(self) -> Vec<u8> {
        self.buf[self.pos..].to_vec()
    }
}

fn key(bytes: &[u8]) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(bytes);
    key
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn be_u16(bytes: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// The side that opened the connection (A): negotiates for `info_hash`, offering `offer` (most
/// preferred first; the responder chooses), and sends `initial_payload` (usually our BitTorrent
/// handshake; at most 65,535 bytes) inside the handshake, encrypted.
///
/// Reads at most a few kilobytes and never waits on anything but the other side: wrap it in a timeout.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    info_hash: InfoHash,
    offer: &[Method],
    initial_payload: &[u8],
) -> Result<Negotiated, MseError> {
    let offered = bits(offer);
    let ia_len = u16::try_from(initial_payload.len())
        .map_err(|_| MseError::InitialPayloadTooLong(initial_payload.len()))?;
    if offered == 0 {
        return Err(MseError::NoCommonMethod { theirs: 0 });
    }
    let keys = KeyPair::generate()?;
    let mut hello = keys.public_key().to_vec();
    hello.extend(padding()?);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    let mut input = Input {
        buf: Vec::new(),
        pos: 0,
    };
    let theirs = key(&input.take(stream, KEY_LEN).await?);
    let secret = keys.shared_secret(&theirs)?;
    let (mut send, mut recv) = ciphers(&secret, &info_hash, true);

    let mut step3 = hash(&[b"req1", &secret]).to_vec();
    let req3 = hash(&[b"req3", &secret]);
    step3.extend(req2(&info_hash).iter().zip(req3).map(|(a, b)| a ^ b));
    let mut encrypted = VC.to_vec();
    encrypted.extend(offered.to_be_bytes());
    encrypted.extend(0u16.to_be_bytes()); // no PadC
    encrypted.extend(ia_len.to_be_bytes());
    encrypted.extend_from_slice(initial_payload);
    send.apply(&mut encrypted);
    step3.extend(encrypted);
    stream.write_all(&step3).await?;
    stream.flush().await?;

    // B's reply starts after PadB with the encrypted VC: the first 8 bytes of its keystream.
    let mut expected_vc = VC;
    recv.apply(&mut expected_vc);
    input.sync(stream, &expected_vc, MAX_PAD + VC.len()).await?;
    let mut head = input.take(stream, 6).await?;
    recv.apply(&mut head);
    let select = be_u32(&head[..4]);
    let pad_len = be_u16(&head[4..]);
    if pad_len > MAX_PAD {
        return Err(MseError::PadTooLong(pad_len));
    }
    let mut pad = input.take(stream, pad_len).await?;
    recv.apply(&mut pad);
    let method = [Method::Plaintext, Method::Rc4]
        .into_iter()
        .find(|m| m.bit() == select && offered & select != 0)
        .ok_or(MseError::BadSelect(select))?;
    Ok(finish(
        method,
        info_hash,
        (send, recv),
        Vec::new(),
        input.rest(),
    ))
}

/// The side that accepted the connection (B). `already_read` is what was read before deciding this was
/// not a plaintext handshake (at most 96 bytes); `find` maps `HASH('req2', SKEY)` (see [`req2`]) to one
/// of our torrents; `accept` lists the methods we take, most preferred first.
///
/// Reads at most a few kilobytes plus the initial payload (≤ 64 KiB), and fails with
/// [`MseError::NoSync`] on bytes that are not an MSE handshake: wrap it in a timeout.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    already_read: &[u8],
    find: impl Fn(&[u8; 20]) -> Option<InfoHash>,
    accept: &[Method],
) -> Result<Negotiated, MseError> {
    let mut input = Input {
        buf: already_read.to_vec(),
        pos: 0,
    };
    let theirs = key(&input.take(stream, KEY_LEN).await?);
    let keys = KeyPair::generate()?;
    let secret = keys.shared_secret(&theirs)?;
    let mut hello = keys.public_key().to_vec();
    hello.extend(padding()?);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    input
        .sync(stream, &hash(&[b"req1", &secret]), MAX_PAD + 20)
        .await?;
    let masked = input.take(stream, 20).await?;
    let req3 = hash(&[b"req3", &secret]);
    let mut wanted = [0u8; 20];
    for ((out, a), b) in wanted.iter_mut().zip(masked).zip(req3) {
        *out = a ^ b;
    }
    let info_hash = find(&wanted).ok_or(MseError::UnknownTorrent)?;
    let (mut send, mut recv) = ciphers(&secret, &info_hash, false);

    let mut head = input.take(stream, VC.len() + 6).await?;
    recv.apply(&mut head);
    if head[..VC.len()] != VC {
        return Err(MseError::BadVc);
    }
    let provide = be_u32(&head[8..12]);
    let pad_len = be_u16(&head[12..14]);
    if pad_len > MAX_PAD {
        return Err(MseError::PadTooLong(pad_len));
    }
    let mut pad = input.take(stream, pad_len).await?;
    recv.apply(&mut pad);
    let mut ia_len = input.take(stream, 2).await?;
    recv.apply(&mut ia_len);
    let mut received = input.take(stream, be_u16(&ia_len)).await?;
    recv.apply(&mut received);

    let method = accept
        .iter()
        .copied()
        .find(|m| provide & m.bit() != 0)
        .ok_or(MseError::NoCommonMethod { theirs: provide })?;
    let mut reply = VC.to_vec();
    reply.extend(method.bit().to_be_bytes());
    reply.extend(0u16.to_be_bytes()); // no PadD
    send.apply(&mut reply);
    stream.write_all(&reply).await?;
    stream.flush().await?;

    Ok(finish(
        method,
        info_hash,
        (send, recv),
        received,
        input.rest(),
    ))
}

/// The handshake's outcome: `received` (already decrypted) followed by `rest`, the bytes read past the
/// handshake, decrypted if the method is RC4; the ciphers are kept only for RC4.
fn finish(
    method: Method,
    info_hash: InfoHash,
    (send, mut recv): (Rc4, Rc4),
    mut received: Vec<u8>,
    mut rest: Vec<u8>,
) -> Negotiated {
    let (reader, writer) = match method {
        Method::Rc4 => {
            recv.apply(&mut rest);
            (Some(recv), Some(send))
        }
        Method::Plaintext => (None, None),
    };
    received.append(&mut rest);
    Negotiated {
        method,
        info_hash,
        reader,
        writer,
        received,
    }
}
