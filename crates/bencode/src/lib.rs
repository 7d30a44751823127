//! Bencode (BEP 3) for BitTorrent: a zero-copy decoder, a canonical encoder and serde support.
//!
//! - [`decode`] turns bytes into a borrowed [`Value`] tree. Byte strings are slices of the input, and every
//!   value knows the exact bytes it came from ([`Value::raw`]), so a torrent's info-hash can be computed
//!   over the `info` dictionary as received.
//! - [`from_bytes`] deserializes your own `#[derive(Deserialize)]` types straight from the input, borrowing
//!   `&[u8]` and `&str` fields; [`to_bytes`] serializes them canonically (keys sorted as raw bytes).
//! - [`encode`] writes a [`Value`] canonically; [`OwnedValue`] owns its data and is always canonical.
//! - Strict by default (sorted, unique keys; no leading zeros, `-0` or trailing bytes);
//!   [`DecodeOptions::lenient`] accepts the unsorted keys found in real-world `.torrent` files.
//!
//! Hostile input is expected: nesting depth and value count are limited ([`DecodeOptions`]), a claimed
//! length is checked against the remaining input before it is used, the decoder keeps its own stack
//! instead of recursing, and errors carry a [`ErrorKind`] and a byte offset instead of panicking.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Deserialize, Serialize)]
//! struct Peer<'a> {
//!     ip: &'a str,
//!     port: u16,
//! }
//!
//! let bytes = shoal_bencode::to_bytes(&Peer { ip: "127.0.0.1", port: 6881 })?;
//! assert_eq!(bytes, b"d2:ip9:127.0.0.14:porti6881ee");
//!
//! let peer: Peer<'_> = shoal_bencode::from_bytes(&bytes)?;
//! assert_eq!(peer, Peer { ip: "127.0.0.1", port: 6881 });
//!
//! let value = shoal_bencode::decode(&bytes)?;
//! assert_eq!(value.get(b"port").and_then(|v| v.as_int()), Some(6881));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod de;
mod decode;
mod encode;
mod error;
mod reader;
mod ser;
mod value;

pub use de::{from_bytes, from_bytes_with};
pub use decode::{DecodeOptions, decode, decode_prefix, decode_with};
pub use encode::{encode, encode_into};
pub use error::{DecodeError, EncodeError, ErrorKind};
pub use ser::to_bytes;
pub use value::{Kind, OwnedValue, Value};
