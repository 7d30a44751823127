//! The one error type of the crate: which message broke which rule.

use shoal_metainfo::InfoHash;

/// A peer broke a rule of the wire protocol: the message (or handshake field) and the rule are named.
///
/// Every variant means the bytes came from a peer that does not follow the protocol (or that speaks a
/// different torrent); the caller should close the connection and may log the message. Nothing here is
/// ever a panic.
///
/// ```
/// use shoal_wire::{DecoderConfig, MessageDecoder, WireError};
///
/// let mut decoder = MessageDecoder::new(DecoderConfig::default());
/// decoder.handle_bytes(&[0xff, 0xff, 0xff, 0xff]); // a 4 GiB message announced
/// let err = decoder.poll_message().unwrap_err();
/// assert!(matches!(err, WireError::MessageTooLong { .. }));
/// assert_eq!(err.to_string(), "message of 4294967295 bytes is over the limit of 1048576 bytes");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake's first byte (the protocol string length) is not 19 (BEP 3).
    #[error("handshake: protocol string length is {0}, not 19")]
    HandshakeProtocolLength(u8),
    /// The handshake's protocol string is not `BitTorrent protocol` (BEP 3).
    #[error("handshake: protocol string is not \"BitTorrent protocol\"")]
    HandshakeProtocol,
    /// A handshake given to [`Handshake::decode`](crate::Handshake::decode) that is not 68 bytes long.
    #[error("handshake: {0} bytes, expected 68")]
    HandshakeLength(usize),
    /// The peer's handshake names a torrent other than the one this connection is for (BEP 3).
    #[error("handshake: info-hash {got} is not this torrent's {expected}")]
    InfoHashMismatch {
        /// The torrent we serve on this connection.
        expected: InfoHash,
        /// What the peer sent.
        got: InfoHash,
    },
    /// The peer's handshake carries our own peer id: we connected to ourselves.
    #[error("handshake: the peer id is our own, a connection to ourselves")]
    SelfConnection,
    /// A length prefix over the decoder's cap, refused before anything is buffered.
    #[error("message of {len} bytes is over the limit of {max} bytes")]
    MessageTooLong {
        /// The length prefix the peer sent.
        len: u32,
        /// The configured cap ([`DecoderConfig::max_message_len`](crate::DecoderConfig::max_message_len)).
        max: u32,
    },
    /// A message whose length is fixed by the protocol came with another length.
    #[error("{message} message: {len} bytes after the length prefix, expected {expected}")]
    WrongLength {
        /// The message's name, as in the BEP.
        message: &'static str,
        /// The length prefix the peer sent (the id byte and the payload).
        len: u32,
        /// The length the protocol fixes.
        expected: u32,
    },
    /// A message shorter than its fixed header (a `piece` needs 9 bytes after the length prefix).
    #[error(
        "{message} message: {len} bytes after the length prefix, fewer than the {min} it needs"
    )]
    TooShort {
        /// The message's name, as in the BEP.
        message: &'static str,
        /// The length prefix the peer sent.
        len: u32,
        /// The shortest length the message can have.
        min: u32,
    },
    /// A `piece` message carrying a block over the block-size cap (16 KiB by default).
    #[error("piece message: a block of {len} bytes is over the limit of {max} bytes")]
    BlockTooLong {
        /// The length of the block the peer sent.
        len: u32,
        /// The configured cap ([`DecoderConfig::max_block_len`](crate::DecoderConfig::max_block_len)).
        max: u32,
    },
    /// A `bitfield` whose length is not ⌈pieces / 8⌉ bytes (BEP 3).
    #[error("bitfield message: {len} bytes for {n_pieces} pieces, expected {expected}")]
    BitfieldLength {
        /// The length of the bitfield the peer sent, in bytes.
        len: u32,
        /// The torrent's piece count.
        n_pieces: u32,
        /// The length the piece count requires.
        expected: u32,
    },
    /// A `bitfield` longer than any torrent allows, while the piece count is still unknown (magnet links).
    #[error("bitfield message: {len} bytes is over the limit of {max} bytes")]
    BitfieldTooLong {
        /// The length of the bitfield the peer sent, in bytes.
        len: u32,
        /// The bound that follows from [`DecoderConfig::max_pieces`](crate::DecoderConfig::max_pieces).
        max: u32,
    },
    /// A `bitfield` with bits set past the last piece (BEP 3: spare bits must be zero).
    #[error("bitfield message: spare bits past piece {n_pieces} are set")]
    BitfieldSpareBits {
        /// The torrent's piece count.
        n_pieces: u32,
    },
    /// A `bitfield`, `have all` or `have none` that is not the first message (BEP 3, BEP 6).
    #[error("{message} message: allowed only as the first message after the handshake")]
    NotFirst {
        /// The message's name.
        message: &'static str,
    },
    /// A message naming a piece the torrent does not have.
    #[error("{message} message: piece index {index} is out of range for {n_pieces} pieces")]
    PieceOutOfRange {
        /// The message's name.
        message: &'static str,
        /// The index the peer sent.
        index: u32,
        /// The torrent's piece count.
        n_pieces: u32,
    },
    /// A fast-extension message on a connection that did not negotiate the fast extension (BEP 6).
    #[error("{message} message: the fast extension (BEP 6) was not negotiated")]
    FastNotNegotiated {
        /// The message's name.
        message: &'static str,
    },
    /// An `extended` message (BEP 10) with no extension id byte.
    #[error("extended message: no extension id byte")]
    ExtendedEmpty,
    /// An `extended` message (BEP 10) over the cap for extension messages.
    #[error("extended message: {len} bytes is over the limit of {max} bytes")]
    ExtendedTooLong {
        /// The length prefix the peer sent.
        len: u32,
        /// The configured cap ([`DecoderConfig::max_extended_len`](crate::DecoderConfig::max_extended_len)).
        max: u32,
    },
    /// An extension payload that is not valid bencode.
    #[error("{message} message: invalid bencode")]
    Bencode {
        /// The extension message's name.
        message: &'static str,
        /// What the bencode decoder found.
        #[source]
        source: shoal_bencode::DecodeError,
    },
    /// An extension payload that is bencode but breaks a rule of its BEP.
    #[error("{message} message: {rule}")]
    Extension {
        /// The extension message's name (`extended handshake`, `ut_metadata`, `ut_pex`).
        message: &'static str,
        /// The rule broken.
        rule: &'static str,
    },
    /// A `ut_metadata` message (BEP 9) naming or carrying a metadata piece that does not fit.
    #[error("ut_metadata message: {rule} (piece {piece})")]
    MetadataPiece {
        /// The metadata piece index the peer sent.
        piece: u32,
        /// The rule broken.
        rule: &'static str,
    },
    /// Metadata fetched through `ut_metadata` whose SHA-1 is not the torrent's info-hash (BEP 9).
    #[error("ut_metadata message: the metadata hashes to {got}, not the info-hash {expected}")]
    MetadataHash {
        /// The torrent's info-hash.
        expected: InfoHash,
        /// The SHA-1 of what the peers sent.
        got: InfoHash,
    },
}
