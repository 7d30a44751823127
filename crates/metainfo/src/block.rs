//! The piece and block identities every layer shares: the picker picks them, the wire carries them,
//! storage and the session act on them.

use std::fmt;

/// The length of a block, the unit of a `request` message (BEP 3): 16 KiB. Only the last block of a
/// piece may be shorter.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// The index of a piece in the torrent, from 0.
///
/// ```
/// let piece = shoal_metainfo::PieceIndex(7);
/// assert_eq!(piece.to_string(), "7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PieceIndex(pub u32);

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for PieceIndex {
    fn from(index: u32) -> Self {
        Self(index)
    }
}

/// A block of a piece: what a `request`, `piece`, `reject` or `cancel` message names.
///
/// ```
/// use shoal_metainfo::{BlockRef, PieceIndex, BLOCK_LEN};
///
/// let block = BlockRef { piece: PieceIndex(3), offset: BLOCK_LEN, len: BLOCK_LEN };
/// assert_eq!(block.piece.0, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// The block's byte offset in its piece (BEP 3 `begin`), a multiple of [`BLOCK_LEN`].
    pub offset: u32,
    /// The block's length: [`BLOCK_LEN`], or less for the last block of a piece.
    pub len: u32,
}
