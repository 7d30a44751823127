//! Tracker client: HTTP(S) (BEP 3, BEP 23, BEP 48) and UDP (BEP 15) announce and scrape, multitracker tiers
//! (BEP 12).
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace so the crate graph is fixed
//! from the start. See the project's `ARCHITECTURE.md` and open issues for what it will hold.
#![warn(missing_docs)]
