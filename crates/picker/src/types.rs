//! The small value types of the picker's API.

// The shared identities live in shoal-metainfo, the lowest crate every layer depends on.
pub use shoal_metainfo::{BLOCK_LEN, BlockRef, PieceIndex};

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
