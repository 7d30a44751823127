//! The piece picker: which block to request from which peer, as a pure state machine with no IO.
//!
//! A BitTorrent download is split into pieces (hashed units, BEP 3) and pieces into 16 KiB blocks
//! ([`BLOCK_LEN`], the unit of a `request`). [`Picker`] tracks what every peer has (`bitfield`, `have`,
//! and the fast extension's `have all` / `have none`, BEP 6), which blocks are requested from whom, and
//! answers "what should I request from this peer now?":
//!
//! - rarest first, ties broken at random, with partly downloaded pieces finished before new ones start;
//! - per-piece or per-file [`Priority`] (skip / low / normal / high), and a sequential window for
//!   streaming;
//! - the fast extension's allowed-fast pieces (requested even while choked) and suggestions;
//! - requests given back when a peer chokes us, rejects them, times out or leaves;
//! - endgame: once every block is requested, outstanding requests are duplicated to other peers, and
//!   [`Picker::block_received`] says which duplicates to cancel.
//!
//! Hash checks happen elsewhere: the picker says when a piece is complete, and the caller reports the
//! result with [`Picker::piece_verified`] or [`Picker::piece_failed`].
//!
//! The picker reads no clock (time comes in as `now` arguments) and takes its randomness from the seed
//! given to [`Picker::new`], so a run is reproducible. Picks cost amortised O(1) per block, thanks to
//! availability buckets (the design notes are at the top of `src/picker.rs`).
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use shoal_picker::{Picker, PieceIndex, BLOCK_LEN};
//!
//! // Three pieces of 32 KiB (two blocks each), the last one 20 KiB.
//! let mut picker = Picker::new(3, 32 * 1024, 84 * 1024, 7)?;
//! let now = Instant::now();
//!
//! picker.add_peer("seed")?;
//! picker.peer_have_all("seed")?;
//! picker.add_peer("leech")?;
//! picker.peer_bitfield("leech", &[0b1000_0000])?; // piece 0 only
//! assert_eq!(picker.availability(PieceIndex(0)), Some(2));
//!
//! // Peers start choked: nothing to request until they unchoke us.
//! assert!(picker.pick_blocks("seed", 10, now)?.is_empty());
//! picker.peer_unchoked("seed")?;
//! let blocks = picker.pick_blocks("seed", 10, now)?;
//! assert_eq!(blocks.len(), 6);
//! assert_eq!(blocks.iter().map(|b| b.len).sum::<u32>(), 84 * 1024);
//! // Piece 0 is the most available one, so it comes last.
//! assert_eq!(blocks[4].piece, PieceIndex(0));
//!
//! for block in blocks {
//!     let received = picker.block_received("seed", block)?;
//!     assert!(received.is_new);
//!     if received.piece_complete {
//!         // Hash the piece here, then report the result.
//!         picker.piece_verified(block.piece)?;
//!     }
//! }
//! assert!(picker.is_finished());
//! assert_eq!(picker.timeout_requests(now + Duration::from_secs(60), Duration::from_secs(30)), []);
//! # Ok::<(), shoal_picker::PickerError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod bitset;
mod error;
mod picker;
mod rng;
mod types;

pub use error::PickerError;
pub use picker::Picker;
pub use types::{BLOCK_LEN, BlockRef, PieceIndex, PieceState, Priority, Received};
