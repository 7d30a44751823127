//! A Mainline DHT node (BEP 5): KRPC, routing table and iterative lookups as a sans-IO core with a thin tokio
//! UDP driver.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace so the crate graph is fixed
//! from the start. See the project's `ARCHITECTURE.md` and open issues for what it will hold.
#![warn(missing_docs)]
