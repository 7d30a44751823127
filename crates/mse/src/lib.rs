//! BitTorrent's message stream encryption (MSE, also called protocol encryption or PE): a
//! Diffie-Hellman key exchange, then RC4 (or, if both sides agree, plaintext after an obfuscated
//! handshake). Peers that require encryption drop plaintext handshakes; this is how to reach them.
//!
//! - [`initiate`] and [`respond`] run the handshake on any tokio stream and return a [`Negotiated`]:
//!   the chosen [`Method`], the torrent, the ciphers for the rest of the connection and the payload
//!   bytes already read.
//! - [`Rc4`] and [`KeyPair`] are the primitives, usable on their own.
//!
//! Every input is hostile: paddings are capped at 512 bytes, the synchronisation scans stop at the
//! longest legal padding, degenerate public keys are refused, and nothing panics on what a peer sends.
//! The handshake has no timeout of its own; wrap it in one.
//!
//! ```
//! use shoal_metainfo::InfoHash;
//! use shoal_mse::{Method, initiate, req2, respond};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let torrent = InfoHash([7; 20]);
//! let (mut a, mut b) = tokio::io::duplex(4096);
//! let (ours, theirs) = tokio::join!(
//!     initiate(&mut a, torrent, &[Method::Rc4], b"hello"),
//!     respond(&mut b, &[], |wanted| (*wanted == req2(&torrent)).then_some(torrent), &[Method::Rc4]),
//! );
//! let (mut ours, mut theirs) = (ours?, theirs?);
//! assert_eq!(theirs.method, Method::Rc4);
//! assert_eq!(theirs.info_hash, torrent);
//! assert_eq!(theirs.received, b"hello"); // the initial payload, decrypted
//!
//! // From here on each side encrypts with its writer and decrypts with its reader.
//! let mut message = *b"piece data";
//! ours.writer.as_mut().unwrap().apply(&mut message);
//! assert_ne!(&message, b"piece data");
//! theirs.reader.as_mut().unwrap().apply(&mut message);
//! assert_eq!(&message, b"piece data");
//! # Ok::<(), shoal_mse::MseError>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod dh;
mod error;
mod handshake;
mod rc4;

pub use dh::{KEY_LEN, KeyPair};
pub use error::MseError;
pub use handshake::{MAX_PAD, Method, Negotiated, initiate, req2, respond};
pub use rc4::Rc4;
