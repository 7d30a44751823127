//! The BEP 3 handshake: protocol string, reserved bits, info-hash and peer id.

use bytes::BufMut;
use shoal_metainfo::{InfoHash, PeerId};

use crate::WireError;

/// The protocol string every BitTorrent handshake starts with, after its length byte (19).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The eight reserved bytes of a handshake, where peers advertise protocol extensions.
///
/// Bits are numbered as the BEPs do: byte 5 bit `0x10` is the extension protocol (BEP 10), byte 7 bit
/// `0x04` the fast extension (BEP 6), byte 7 bit `0x01` the DHT (BEP 5). Bits this crate does not know are
/// kept as received and otherwise ignored.
///
/// ```
/// use shoal_wire::Reserved;
///
/// let ours = Reserved::default().with_fast().with_extensions();
/// assert_eq!(ours.0, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
/// assert!(ours.supports_fast() && ours.supports_extensions() && !ours.supports_dht());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// Byte 7, bit `0x01`: the peer runs a DHT node (BEP 5) and may send `port`.
    pub const DHT: (usize, u8) = (7, 0x01);
    /// Byte 7, bit `0x04`: the fast extension (BEP 6).
    pub const FAST: (usize, u8) = (7, 0x04);
    /// Byte 5, bit `0x10`: the extension protocol (BEP 10).
    pub const EXTENSIONS: (usize, u8) = (5, 0x10);

    /// Whether a bit, given as `(byte, mask)`, is set.
    pub fn has(&self, (byte, mask): (usize, u8)) -> bool {
        self.0.get(byte).is_some_and(|b| b & mask != 0)
    }

    /// The same bits with one more set, given as `(byte, mask)`.
    #[must_use]
    pub fn with(mut self, (byte, mask): (usize, u8)) -> Self {
        if let Some(b) = self.0.get_mut(byte) {
            *b |= mask;
        }
        self
    }

    /// Whether the fast extension (BEP 6) is advertised.
    pub fn supports_fast(&self) -> bool {
        self.has(Self::FAST)
    }

    /// Whether the extension protocol (BEP 10) is advertised.
    pub fn supports_extensions(&self) -> bool {
        self.has(Self::EXTENSIONS)
    }

    /// Whether a DHT node (BEP 5) is advertised.
    pub fn supports_dht(&self) -> bool {
        self.has(Self::DHT)
    }

    /// These bits with the fast extension set.
    #[must_use]
    pub fn with_fast(self) -> Self {
        self.with(Self::FAST)
    }

    /// These bits with the extension protocol set.
    #[must_use]
    pub fn with_extensions(self) -> Self {
        self.with(Self::EXTENSIONS)
    }

    /// These bits with the DHT set.
    #[must_use]
    pub fn with_dht(self) -> Self {
        self.with(Self::DHT)
    }
}

/// The handshake each side sends first (BEP 3): 68 bytes.
///
/// ```
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_wire::{Handshake, Reserved};
///
/// let ours = Handshake::new(InfoHash([0xaa; 20]), PeerId(*b"-SH0010-abcdefghijkl"))
///     .with_reserved(Reserved::default().with_fast().with_extensions());
/// let mut buf = Vec::new();
/// ours.encode_into(&mut buf);
/// assert_eq!(buf.len(), Handshake::LEN);
/// assert_eq!(&buf[..20], b"\x13BitTorrent protocol");
/// assert_eq!(Handshake::decode(&buf)?, ours);
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The extension bits.
    pub reserved: Reserved,
    /// The torrent the connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// The length of a handshake on the wire.
    pub const LEN: usize = 68;

    /// A handshake with no reserved bits set.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self {
            reserved: Reserved::default(),
            info_hash,
            peer_id,
        }
    }

    /// The same handshake with these reserved bits.
    #[must_use]
    pub fn with_reserved(self, reserved: Reserved) -> Self {
        Self { reserved, ..self }
    }

    /// Appends the 68 bytes of the handshake to `buf`.
    pub fn encode_into<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(19);
        buf.put_slice(PROTOCOL);
        buf.put_slice(&self.reserved.0);
        buf.put_slice(&self.info_hash.0);
        buf.put_slice(&self.peer_id.0);
    }

    /// The 68 bytes of the handshake.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        self.encode_into(&mut &mut out[..]);
        out
    }

    /// Decodes a complete handshake of exactly 68 bytes.
    ///
    /// To read a handshake from a stream, where it may arrive in pieces and be followed by messages, use
    /// [`MessageDecoder::poll_handshake`](crate::MessageDecoder::poll_handshake).
    ///
    /// # Errors
    /// [`WireError::HandshakeLength`] for any other length, [`WireError::HandshakeProtocolLength`] or
    /// [`WireError::HandshakeProtocol`] for a wrong protocol string.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        check_prefix(bytes)?;
        let wrong_length = || WireError::HandshakeLength(bytes.len());
        if bytes.len() != Self::LEN {
            return Err(wrong_length());
        }
        let (_, rest) = bytes.split_first_chunk::<20>().ok_or_else(wrong_length)?;
        let (reserved, rest) = rest.split_first_chunk::<8>().ok_or_else(wrong_length)?;
        let (info_hash, rest) = rest.split_first_chunk::<20>().ok_or_else(wrong_length)?;
        let peer_id = rest.first_chunk::<20>().ok_or_else(wrong_length)?;
        Ok(Self {
            reserved: Reserved(*reserved),
            info_hash: InfoHash(*info_hash),
            peer_id: PeerId(*peer_id),
        })
    }

    /// Checks the peer's handshake against the torrent we expect and our own peer id (BEP 3: drop a peer
    /// that names another torrent; drop a connection to ourselves).
    ///
    /// # Errors
    /// [`WireError::InfoHashMismatch`] or [`WireError::SelfConnection`].
    ///
    /// ```
    /// use shoal_metainfo::{InfoHash, PeerId};
    /// use shoal_wire::{Handshake, WireError};
    ///
    /// let us = PeerId([1; 20]);
    /// let theirs = Handshake::new(InfoHash([2; 20]), PeerId([3; 20]));
    /// assert!(theirs.check(&InfoHash([2; 20]), &us).is_ok());
    /// assert!(matches!(theirs.check(&InfoHash([9; 20]), &us), Err(WireError::InfoHashMismatch { .. })));
    /// ```
    pub fn check(&self, info_hash: &InfoHash, our_peer_id: &PeerId) -> Result<(), WireError> {
        if self.info_hash != *info_hash {
            return Err(WireError::InfoHashMismatch {
                expected: *info_hash,
                got: self.info_hash,
            });
        }
        if self.peer_id == *our_peer_id {
            return Err(WireError::SelfConnection);
        }
        Ok(())
    }
}

/// Checks as much of the protocol string as `bytes` holds, so a stream that is not BitTorrent is refused
/// after its first byte rather than after 68.
pub(crate) fn check_prefix(bytes: &[u8]) -> Result<(), WireError> {
    let Some((&len, rest)) = bytes.split_first() else {
        return Ok(());
    };
    if len != 19 {
        return Err(WireError::HandshakeProtocolLength(len));
    }
    let n = rest.len().min(PROTOCOL.len());
    if rest.get(..n) != PROTOCOL.get(..n) {
        return Err(WireError::HandshakeProtocol);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bits_match_the_beps() {
        let all = Reserved::default().with_dht().with_fast().with_extensions();
        assert_eq!(all.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert!(all.supports_dht());
        // libtorrent 2.0 sets byte 7 bit 0x10 (v2 upgrade) too; unknown bits are kept and ignored.
        let lt = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x15]);
        assert!(lt.supports_fast() && lt.supports_extensions() && lt.supports_dht());
    }

    #[test]
    fn wrong_protocol_is_refused_early() {
        assert_eq!(check_prefix(b"\x13Bit"), Ok(()));
        assert_eq!(check_prefix(b""), Ok(()));
        assert_eq!(
            check_prefix(b"GET / HTTP/1.1"),
            Err(WireError::HandshakeProtocolLength(b'G'))
        );
        assert_eq!(
            check_prefix(b"\x13BitTorrent protocoX"),
            Err(WireError::HandshakeProtocol)
        );
        assert_eq!(Handshake::decode(&[19]), Err(WireError::HandshakeLength(1)));
    }

    #[test]
    fn check_refuses_ourselves() {
        let hash = InfoHash([7; 20]);
        let us = PeerId([1; 20]);
        let hs = Handshake::new(hash, us);
        assert_eq!(hs.check(&hash, &us), Err(WireError::SelfConnection));
    }
}
