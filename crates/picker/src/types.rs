//! The small value types of the picker's API.

use std::fmt;

/// The length of a block, the unit of a `request` message: 16 KiB. Only the last block of a piece may be
/// shorter.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// The index of a piece in the torrent, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// The block's byte offset in its piece, a multiple of [`BLOCK_LEN`].
    pub offset: u32,
    /// The block's length: [`BLOCK_LEN`], or less for the last block of a piece.
    pub len: u32,
}

/// How much we want a piece or a file.
///
/// Higher priorities are picked first; within one priority, partly downloaded pieces come first, then
/// suggested ones, then the rarest. Skipped pieces are never requested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Do not download.
    Skip,
    /// Download after everything of higher priority.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Download before everything else.
    High,
}

impl Priority {
    /// The index of this priority's candidate lists, `None` for [`Priority::Skip`].
    pub(crate) fn level(self) -> Option<usize> {
        match self {
            Self::Skip => None,
            Self::Low => Some(0),
            Self::Normal => Some(1),
            Self::High => Some(2),
        }
    }
}

/// Where a piece stands in its download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PieceState {
    /// No block of the piece has been requested or received.
    NotStarted,
    /// Some blocks are requested or received, not all received.
    Downloading,
    /// Every block is received; the piece waits for [`Picker::piece_verified`](crate::Picker::piece_verified)
    /// or [`Picker::piece_failed`](crate::Picker::piece_failed).
    AwaitingHash,
    /// The piece passed its hash check: we have it.
    Verified,
}

/// What [`Picker::block_received`](crate::Picker::block_received) made of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received<P> {
    /// The block was still missing: write it to storage. `false` means we already had it (a late
    /// duplicate from endgame, or a piece already complete), and the data can be dropped.
    pub is_new: bool,
    /// This block was the piece's last missing one: hash the piece, then report
    /// [`Picker::piece_verified`](crate::Picker::piece_verified) or
    /// [`Picker::piece_failed`](crate::Picker::piece_failed).
    pub piece_complete: bool,
    /// Requests for the same block still outstanding at other peers (endgame duplicates), now withdrawn
    /// from the picker: send each peer a `cancel` for its block.
    pub cancels: Vec<(P, BlockRef)>,
}
