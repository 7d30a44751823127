//! BitTorrent metainfo: `.torrent` files (v1, v2 and hybrid, BEP 3 and BEP 52), magnet URIs (BEP 9, BEP 53)
//! and torrent creation.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace so the crate graph is fixed
//! from the start. See the project's `ARCHITECTURE.md` and open issues for what it will hold.
#![warn(missing_docs)]
