//! BitTorrent metainfo: `.torrent` files (v1, v2 and hybrid), magnet URIs and torrent creation.
//!
//! - [`Metainfo::from_bytes`] parses and validates a `.torrent` file into a view that borrows from the
//!   input (BEP 3 v1 single- and multi-file, BEP 52 v2 and hybrid, BEP 12 `announce-list`, BEP 17
//!   `httpseeds`, BEP 19 `url-list`, BEP 27 `private`, BEP 47 padding files and attributes, DHT `nodes`).
//!   [`Info::from_bytes`] does the same for a bare `info` dictionary (BEP 9 metadata).
//! - [`InfoHash`] (v1, SHA-1) and [`InfoHashV2`] (SHA-256) are computed over the `info` dictionary's bytes
//!   exactly as received, never re-encoded; both print as hex and parse from hex or base32. [`PeerId`] is
//!   the 20-byte peer identity.
//! - [`Magnet`] parses and formats magnet URIs (BEP 9, BEP 52 `urn:btmh:`, BEP 53 `so`).
//! - [`TorrentBuilder`] creates v1, v2 and hybrid torrents from a file or directory, hashing on all cores.
//!
//! Torrents are hostile input. Every limit is a named constant ([`MAX_PIECES`], [`MAX_FILES`],
//! [`MAX_PIECE_LENGTH`]); every error names the field and byte offset ([`MetainfoError`]); and no path
//! that could leave the download directory gets through: names and path components are checked with
//! [`check_component`] when parsing (the torrent is refused otherwise) and shown or written through
//! [`sanitize_component`] / [`Info::file_path`].
//!
//! ```
//! use shoal_metainfo::{Metainfo, MetaVersion};
//!
//! let bytes = b"d8:announce30:http://127.0.0.1:6969/announce4:infod5:filesld6:lengthi3e4:pathl5:a.txteed\
//! 6:lengthi4e4:pathl3:sub5:b.txteee4:name3:dir12:piece lengthi16384e\
//! 6:pieces20:AAAAAAAAAAAAAAAAAAAAee";
//! let torrent = Metainfo::from_bytes(bytes)?;
//! assert_eq!(torrent.info.version, MetaVersion::V1);
//! assert!(torrent.info.multi_file);
//! let paths: Vec<_> = torrent.info.files.iter().map(|f| torrent.info.file_path(f)).collect();
//! assert_eq!(paths, [std::path::Path::new("dir/a.txt"), std::path::Path::new("dir/sub/b.txt")]);
//! println!("{}", torrent.info_hashes().v1.unwrap());
//!
//! // A path that climbs out of the download directory is refused, naming the field:
//! let evil = b"d4:infod5:filesld6:lengthi3e4:pathl2:..6:passwdeee4:name3:dir\
//! 12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAee";
//! let err = Metainfo::from_bytes(evil).unwrap_err();
//! assert_eq!(err.field(), "info.files[0].path[0]");
//! # Ok::<(), shoal_metainfo::MetainfoError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod block;
mod create;
mod error;
mod hash;
mod magnet;
mod merkle;
mod path;
mod torrent;

pub use block::{BLOCK_LEN, BlockRef, PieceIndex};
pub use create::{CreateError, CreatedTorrent, Progress, TorrentBuilder, auto_piece_length};
pub use error::{MetainfoError, MetainfoErrorKind, PathProblem};
pub use hash::{HashParseError, InfoHash, InfoHashV2, InfoHashes, PeerId};
pub use magnet::{MAX_MAGNET_LEN, MAX_MAGNET_PARAMS, Magnet, MagnetError};
pub use merkle::BLOCK_SIZE;
pub use path::{MAX_COMPONENT_BYTES, check_component, safe_join, sanitize_component};
pub use torrent::{
    FileAttributes, FileEntry, Info, MAX_FILES, MAX_PIECE_LENGTH, MAX_PIECES, MIN_V1_PIECE_LENGTH,
    MetaVersion, Metainfo, text,
};
