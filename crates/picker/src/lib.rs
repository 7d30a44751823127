//! The piece picker: which block to request from which peer (rarest first, endgame, priorities), as a pure
//! state machine with no IO.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace so the crate graph is fixed
//! from the start. See the project's `ARCHITECTURE.md` and open issues for what it will hold.
#![warn(missing_docs)]
