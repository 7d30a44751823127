//! The BitTorrent peer wire protocol (BEP 3) with the fast extension (BEP 6), the extension protocol (BEP 10),
//! `ut_metadata` (BEP 9) and `ut_pex` (BEP 11), as a sans-IO codec.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace so the crate graph is fixed
//! from the start. See the project's `ARCHITECTURE.md` and open issues for what it will hold.
#![warn(missing_docs)]
