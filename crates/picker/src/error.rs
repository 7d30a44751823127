//! The picker's error type.

/// Why the picker refused an input.
///
/// Every input that can come from a peer or a `.torrent` file (bitfields, piece indices, block offsets)
/// is checked and answered with one of these, never with a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickerError {
    /// The piece length must be between 1 byte and `u32::MAX` bytes.
    #[error("piece length {0} is not between 1 and 4294967295 bytes")]
    BadPieceLength(u64),
    /// `piece_count` pieces of `piece_len` bytes must hold exactly `total_len` bytes, the last piece
    /// being the only short one.
    #[error("{piece_count} pieces of {piece_len} bytes cannot hold {total_len} bytes")]
    BadGeometry {
        /// The number of pieces given.
        piece_count: u32,
        /// The piece length given.
        piece_len: u64,
        /// The total length given.
        total_len: u64,
    },
    /// A piece index is not below the number of pieces.
    #[error("piece index {0} is out of range")]
    PieceOutOfRange(u32),
    /// A bitfield does not have one bit per piece, rounded up to whole bytes (BEP 3).
    #[error("bitfield is {got} bytes long, expected {expected}")]
    BitfieldLength {
        /// The bitfield's length in bytes.
        got: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A bitfield has bits set past the last piece (BEP 3 wants them zero).
    #[error("bitfield has spare bits set past the last piece")]
    BitfieldSpareBits,
    /// The peer was never added, or was removed.
    #[error("unknown peer")]
    UnknownPeer,
    /// The peer was already added.
    #[error("peer already added")]
    DuplicatePeer,
    /// A block does not start on a 16 KiB boundary of its piece or does not have the length of the block
    /// there.
    #[error("block at offset {offset} with length {len} is not a block of piece {piece}")]
    InvalidBlock {
        /// The block's piece.
        piece: u32,
        /// The block's offset in its piece.
        offset: u32,
        /// The block's length.
        len: u32,
    },
    /// A hash result was reported for a piece that is not waiting for one.
    #[error("piece {0} is not waiting for its hash check")]
    PieceNotComplete(u32),
    /// A list of per-piece priorities does not have one entry per piece.
    #[error("{got} piece priorities given for {expected} pieces")]
    PriorityCount {
        /// The number of priorities given.
        got: usize,
        /// The number of pieces.
        expected: usize,
    },
    /// A file's byte range is reversed or reaches past the end of the torrent.
    #[error("file range {start}..{end} is not inside the torrent's {total_len} bytes")]
    BadFileRange {
        /// The range's start.
        start: u64,
        /// The range's end.
        end: u64,
        /// The torrent's length.
        total_len: u64,
    },
}
