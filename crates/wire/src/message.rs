//! Peer messages (BEP 3, BEP 6, BEP 10 framing) and their encoding.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::WireError;

pub use shoal_metainfo::BLOCK_LEN;

/// Message ids (the byte after the length prefix).
pub mod id {
    /// `choke` (BEP 3).
    pub const CHOKE: u8 = 0;
    /// `unchoke` (BEP 3).
    pub const UNCHOKE: u8 = 1;
    /// `interested` (BEP 3).
    pub const INTERESTED: u8 = 2;
    /// `not interested` (BEP 3).
    pub const NOT_INTERESTED: u8 = 3;
    /// `have` (BEP 3).
    pub const HAVE: u8 = 4;
    /// `bitfield` (BEP 3).
    pub const BITFIELD: u8 = 5;
    /// `request` (BEP 3).
    pub const REQUEST: u8 = 6;
    /// `piece` (BEP 3).
    pub const PIECE: u8 = 7;
    /// `cancel` (BEP 3).
    pub const CANCEL: u8 = 8;
    /// `port` (BEP 5): the sender's DHT port.
    pub const PORT: u8 = 9;
    /// `suggest piece` (BEP 6).
    pub const SUGGEST: u8 = 0x0D;
    /// `have all` (BEP 6).
    pub const HAVE_ALL: u8 = 0x0E;
    /// `have none` (BEP 6).
    pub const HAVE_NONE: u8 = 0x0F;
    /// `reject request` (BEP 6).
    pub const REJECT: u8 = 0x10;
    /// `allowed fast` (BEP 6).
    pub const ALLOWED_FAST: u8 = 0x11;
    /// `extended` (BEP 10): an extension message, whose first payload byte is the extension id.
    pub const EXTENDED: u8 = 20;
}

pub use shoal_metainfo::{BlockRef, PieceIndex};

/// The data of a `piece` message: a block, lent from the read buffer without copying.
///
/// ```
/// use bytes::Bytes;
/// use shoal_wire::{Block, PieceIndex};
///
/// let block = Block { piece: PieceIndex(0), offset: 0, data: Bytes::from_static(b"abc") };
/// assert_eq!(block.block_ref().len, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// The block's byte offset in its piece (BEP 3 `begin`).
    pub offset: u32,
    /// The block's bytes.
    pub data: Bytes,
}

impl Block {
    /// Which block this is: piece, offset and length.
    ///
    /// # Panics
    /// If the data is longer than `u32::MAX` bytes, which the decoder never produces.
    pub fn block_ref(&self) -> BlockRef {
        BlockRef {
            piece: self.piece,
            offset: self.offset,
            len: u32::try_from(self.data.len()).expect("a block fits in a u32"),
        }
    }
}

/// The pieces a peer has, one bit per piece, high bit first (BEP 3), as received.
///
/// The decoder checks a bitfield against the piece count when it knows it; one received before the
/// metadata (a magnet link) can be checked later with [`Bitfield::validate`].
///
/// ```
/// use shoal_wire::{Bitfield, PieceIndex};
///
/// let bitfield = Bitfield::from_pieces(10, [PieceIndex(0), PieceIndex(9)]);
/// assert_eq!(bitfield.as_bytes(), &[0b1000_0000, 0b0100_0000]);
/// assert!(bitfield.has(PieceIndex(9)) && !bitfield.has(PieceIndex(8)) && !bitfield.has(PieceIndex(99)));
/// assert_eq!(bitfield.count_ones(), 2);
/// assert!(bitfield.validate(10).is_ok());
/// assert!(bitfield.validate(9).is_err()); // the bit of piece 9 is a spare bit for 9 pieces
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitfield(Bytes);

impl Bitfield {
    /// A bitfield over these bytes, unchecked.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// A bitfield for `n_pieces` pieces with the given pieces set; indices past the end are ignored.
    pub fn from_pieces(n_pieces: u32, pieces: impl IntoIterator<Item = PieceIndex>) -> Self {
        let mut bytes = vec![0u8; bitfield_len(n_pieces) as usize];
        for PieceIndex(index) in pieces {
            if index < n_pieces
                && let Some(byte) = bytes.get_mut((index / 8) as usize)
            {
                *byte |= 0x80 >> (index % 8);
            }
        }
        Self(bytes.into())
    }

    /// The bitfield's bytes as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bitfield's bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Whether the peer has a piece; `false` for indices past the end.
    pub fn has(&self, PieceIndex(index): PieceIndex) -> bool {
        self.0
            .get((index / 8) as usize)
            .is_some_and(|byte| byte & (0x80 >> (index % 8)) != 0)
    }

    /// How many pieces the peer has.
    pub fn count_ones(&self) -> u32 {
        self.0.iter().map(|byte| byte.count_ones()).sum()
    }

    /// The pieces the peer has, in order.
    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        (0u32..).zip(self.0.iter()).flat_map(|(byte_idx, &byte)| {
            (0..8u32)
                .filter(move |bit| byte & (0x80 >> bit) != 0)
                .map(move |bit| PieceIndex(byte_idx.saturating_mul(8).saturating_add(bit)))
        })
    }

    /// Checks the bitfield against the torrent's piece count (BEP 3): exactly ⌈n/8⌉ bytes, spare bits
    /// zero.
    ///
    /// # Errors
    /// [`WireError::BitfieldLength`] or [`WireError::BitfieldSpareBits`].
    pub fn validate(&self, n_pieces: u32) -> Result<(), WireError> {
        let expected = bitfield_len(n_pieces);
        let len = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        if len != expected {
            return Err(WireError::BitfieldLength {
                len,
                n_pieces,
                expected,
            });
        }
        // BEP 3: spare bits at the end of a bitfield must be zero.
        let spare = (n_pieces.wrapping_neg() & 7) as u8;
        let spare_mask = (1u8 << spare).wrapping_sub(1);
        if self.0.last().is_some_and(|last| last & spare_mask != 0) {
            return Err(WireError::BitfieldSpareBits { n_pieces });
        }
        Ok(())
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bitfield({} bytes, {} set)",
            self.0.len(),
            self.count_ones()
        )
    }
}

/// The length in bytes of a bitfield for `n_pieces` pieces: ⌈n/8⌉.
///
/// ```
/// assert_eq!(shoal_wire::bitfield_len(0), 0);
/// assert_eq!(shoal_wire::bitfield_len(9), 2);
/// assert_eq!(shoal_wire::bitfield_len(u32::MAX), 1 << 29);
/// ```
pub const fn bitfield_len(n_pieces: u32) -> u32 {
    n_pieces.div_ceil(8)
}

/// One peer-wire message.
///
/// Encode with [`Message::encode_into`]; decode from a byte stream with
/// [`MessageDecoder`](crate::MessageDecoder).
///
/// ```
/// use shoal_wire::{BlockRef, Message, PieceIndex};
///
/// let mut buf = Vec::new();
/// Message::Interested.encode_into(&mut buf);
/// Message::Request(BlockRef { piece: PieceIndex(1), offset: 0, len: 16384 }).encode_into(&mut buf);
/// assert_eq!(&buf[..5], &[0, 0, 0, 1, 2]);
/// assert_eq!(buf.len(), 5 + 17);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A length prefix of zero: keeps an idle connection open.
    KeepAlive,
    /// The sender will not answer requests.
    Choke,
    /// The sender will answer requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing the receiver has.
    NotInterested,
    /// The sender has completed and verified a piece.
    Have(PieceIndex),
    /// The pieces the sender has; only as the first message.
    Bitfield(Bitfield),
    /// Asks for a block.
    Request(BlockRef),
    /// A block of data.
    Piece(Block),
    /// Withdraws a request.
    Cancel(BlockRef),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// Suggests a piece to download (BEP 6).
    Suggest(PieceIndex),
    /// The sender has every piece; replaces the bitfield (BEP 6).
    HaveAll,
    /// The sender has no piece; replaces the bitfield (BEP 6).
    HaveNone,
    /// The sender will not answer this request (BEP 6).
    Reject(BlockRef),
    /// The receiver may request this piece even while choked (BEP 6).
    AllowedFast(PieceIndex),
    /// An extension message (BEP 10): `id` 0 is the extended handshake, other ids are the ones the
    /// receiver announced in its handshake's `m` dictionary. Decode the payload with
    /// [`ExtendedHandshake`](crate::ExtendedHandshake), [`MetadataMessage`](crate::MetadataMessage) or
    /// [`PexMessage`](crate::PexMessage).
    Extended {
        /// The extension message id.
        id: u8,
        /// The payload after the id byte.
        payload: Bytes,
    },
    /// A message id this crate does not know; BEP 3 says to ignore it. Never one of the ids above.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload after the id byte.
        payload: Bytes,
    },
}

impl Message {
    /// The message's name, as the BEPs write it, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::KeepAlive => "keep-alive",
            Self::Choke => "choke",
            Self::Unchoke => "unchoke",
            Self::Interested => "interested",
            Self::NotInterested => "not interested",
            Self::Have(_) => "have",
            Self::Bitfield(_) => "bitfield",
            Self::Request(_) => "request",
            Self::Piece(_) => "piece",
            Self::Cancel(_) => "cancel",
            Self::Port(_) => "port",
            Self::Suggest(_) => "suggest piece",
            Self::HaveAll => "have all",
            Self::HaveNone => "have none",
            Self::Reject(_) => "reject request",
            Self::AllowedFast(_) => "allowed fast",
            Self::Extended { .. } => "extended",
            Self::Unknown { .. } => "unknown",
        }
    }

    /// The length the message takes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        self.body_len().saturating_add(4)
    }

    /// The value of the length prefix: the id byte and the payload.
    fn body_len(&self) -> usize {
        match self {
            Self::KeepAlive => 0,
            Self::Choke | Self::Unchoke | Self::Interested | Self::NotInterested => 1,
            Self::HaveAll | Self::HaveNone => 1,
            Self::Have(_) | Self::Suggest(_) | Self::AllowedFast(_) => 5,
            Self::Port(_) => 3,
            Self::Request(_) | Self::Cancel(_) | Self::Reject(_) => 13,
            Self::Bitfield(bitfield) => bitfield.as_bytes().len().saturating_add(1),
            Self::Piece(block) => block.data.len().saturating_add(9),
            Self::Extended { payload, .. } => payload.len().saturating_add(2),
            Self::Unknown { payload, .. } => payload.len().saturating_add(1),
        }
    }

    /// Appends the message, length prefix included, to `buf` (a `Vec<u8>` or `BytesMut` that the caller
    /// reuses across messages).
    ///
    /// To send a block without copying it, write only its header with [`encode_piece_header`] and the
    /// data with a vectored write.
    ///
    /// # Panics
    /// If the message is longer than `u32::MAX` bytes.
    pub fn encode_into<B: BufMut>(&self, buf: &mut B) {
        let len = u32::try_from(self.body_len()).expect("a message fits in a u32 length");
        buf.put_u32(len);
        match self {
            Self::KeepAlive => {}
            Self::Choke => buf.put_u8(id::CHOKE),
            Self::Unchoke => buf.put_u8(id::UNCHOKE),
            Self::Interested => buf.put_u8(id::INTERESTED),
            Self::NotInterested => buf.put_u8(id::NOT_INTERESTED),
            Self::HaveAll => buf.put_u8(id::HAVE_ALL),
            Self::HaveNone => buf.put_u8(id::HAVE_NONE),
            Self::Have(piece) => put_piece(buf, id::HAVE, *piece),
            Self::Suggest(piece) => put_piece(buf, id::SUGGEST, *piece),
            Self::AllowedFast(piece) => put_piece(buf, id::ALLOWED_FAST, *piece),
            Self::Port(port) => {
                buf.put_u8(id::PORT);
                buf.put_u16(*port);
            }
            Self::Request(block) => put_block_ref(buf, id::REQUEST, block),
            Self::Cancel(block) => put_block_ref(buf, id::CANCEL, block),
            Self::Reject(block) => put_block_ref(buf, id::REJECT, block),
            Self::Bitfield(bitfield) => {
                buf.put_u8(id::BITFIELD);
                buf.put_slice(bitfield.as_bytes());
            }
            Self::Piece(block) => {
                buf.put_u8(id::PIECE);
                buf.put_u32(block.piece.0);
                buf.put_u32(block.offset);
                buf.put_slice(&block.data);
            }
            Self::Extended { id: ext, payload } => {
                buf.put_u8(id::EXTENDED);
                buf.put_u8(*ext);
                buf.put_slice(payload);
            }
            Self::Unknown { id, payload } => {
                buf.put_u8(*id);
                buf.put_slice(payload);
            }
        }
    }

    /// The encoded message in a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf.freeze()
    }
}

fn put_piece<B: BufMut>(buf: &mut B, id: u8, piece: PieceIndex) {
    buf.put_u8(id);
    buf.put_u32(piece.0);
}

fn put_block_ref<B: BufMut>(buf: &mut B, id: u8, block: &BlockRef) {
    buf.put_u8(id);
    buf.put_u32(block.piece.0);
    buf.put_u32(block.offset);
    buf.put_u32(block.len);
}

/// Appends the 13-byte header of a `piece` message whose block of `len` bytes the caller sends next,
/// so a block can go from storage to the socket without being copied into the write buffer.
///
/// # Panics
/// If `len` is over `u32::MAX - 9`.
///
/// ```
/// use shoal_wire::{encode_piece_header, Block, Message, PieceIndex};
///
/// let data = bytes::Bytes::from_static(b"hello");
/// let mut vectored = Vec::new();
/// encode_piece_header(PieceIndex(2), 16384, 5, &mut vectored);
/// vectored.extend_from_slice(&data);
/// let whole = Message::Piece(Block { piece: PieceIndex(2), offset: 16384, data });
/// assert_eq!(vectored, whole.to_bytes());
/// ```
pub fn encode_piece_header<B: BufMut>(piece: PieceIndex, offset: u32, len: u32, buf: &mut B) {
    buf.put_u32(len.checked_add(9).expect("a block fits in a message"));
    buf.put_u8(id::PIECE);
    buf.put_u32(piece.0);
    buf.put_u32(offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_validation() {
        // 12 pieces: two bytes, the last four bits spare.
        assert!(Bitfield::from_bytes(&[0xff, 0xf0][..]).validate(12).is_ok());
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xf8][..]).validate(12),
            Err(WireError::BitfieldSpareBits { n_pieces: 12 })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff][..]).validate(12),
            Err(WireError::BitfieldLength {
                len: 1,
                n_pieces: 12,
                expected: 2
            })
        );
        assert!(Bitfield::from_bytes(&[0xff][..]).validate(8).is_ok());
        assert!(Bitfield::default().validate(0).is_ok());
    }

    #[test]
    fn bitfield_pieces_round_trip() {
        let pieces = [0, 3, 8, 15, 16].map(PieceIndex);
        let bitfield = Bitfield::from_pieces(17, pieces);
        assert_eq!(bitfield.pieces().collect::<Vec<_>>(), pieces);
        assert_eq!(bitfield.as_bytes().len(), 3);
    }

    #[test]
    fn encodings_match_bep_3() {
        let check = |message: Message, expected: &[u8]| {
            let mut buf = Vec::new();
            message.encode_into(&mut buf);
            assert_eq!(buf, expected, "{message:?}");
            assert_eq!(message.encoded_len(), expected.len());
        };
        check(Message::KeepAlive, &[0, 0, 0, 0]);
        check(Message::Choke, &[0, 0, 0, 1, 0]);
        check(
            Message::Have(PieceIndex(0x0102_0304)),
            &[0, 0, 0, 5, 4, 1, 2, 3, 4],
        );
        check(Message::Port(6881), &[0, 0, 0, 3, 9, 0x1a, 0xe1]);
        check(Message::HaveAll, &[0, 0, 0, 1, 0x0e]);
        check(
            Message::Reject(BlockRef {
                piece: PieceIndex(1),
                offset: 2,
                len: 3,
            }),
            &[0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
        );
        check(
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
            &[0, 0, 0, 4, 20, 0, b'd', b'e'],
        );
    }
}
