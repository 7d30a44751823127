//! The BitTorrent peer wire protocol as a sans-IO codec: the handshake and messages of BEP 3, the fast
//! extension (BEP 6), the DHT `port` (BEP 5), the extension protocol (BEP 10) with `ut_metadata` (BEP 9)
//! and `ut_pex` (BEP 11).
//!
//! - [`Handshake`] with its [`Reserved`] extension bits; [`Client`] names the program behind a peer id.
//! - [`Message`], encoded with [`Message::encode_into`] into a buffer the caller reuses.
//! - [`MessageDecoder`] takes bytes as they arrive, in any chunking, and hands out messages; blocks are
//!   [`bytes::Bytes`] views of the read buffer, never copied. Lengths are checked against
//!   [`DecoderConfig`] on reading a length prefix, before anything is buffered; bitfields against the piece
//!   count. [`HandshakeCodec`] and [`MessageCodec`] adapt it to `tokio_util::codec`.
//! - [`allowed_fast_set`] computes BEP 6's canonical allowed-fast set.
//! - [`ExtendedHandshake`], [`MetadataMessage`] (with [`MetadataAssembler`]) and [`PexMessage`] decode and
//!   encode extension payloads; [`decode_extension`] dispatches on the ids we announced.
//!
//! Every input is treated as hostile: errors ([`WireError`]) name the message and the rule broken, and the
//! caller drops the peer; nothing a peer sends can panic or make us allocate past a configured limit.
//!
//! ```
//! use shoal_metainfo::{InfoHash, PeerId};
//! use shoal_wire::{
//!     Block, DecoderConfig, Handshake, Message, MessageDecoder, PieceIndex, Reserved,
//! };
//!
//! let info_hash = InfoHash([0xaa; 20]);
//! // What a seeder would send: its handshake, a bitfield, unchoke and a block.
//! let mut wire = Vec::new();
//! Handshake::new(info_hash, PeerId(*b"-TR3000-000000000000"))
//!     .with_reserved(Reserved::default().with_extensions())
//!     .encode_into(&mut wire);
//! let bitfield = shoal_wire::Bitfield::from_pieces(3, [PieceIndex(0), PieceIndex(1), PieceIndex(2)]);
//! Message::Bitfield(bitfield).encode_into(&mut wire);
//! Message::Unchoke.encode_into(&mut wire);
//! let block = Block { piece: PieceIndex(2), offset: 0, data: vec![9; 1000].into() };
//! Message::Piece(block.clone()).encode_into(&mut wire);
//!
//! let mut decoder = MessageDecoder::new(DecoderConfig { n_pieces: Some(3), ..Default::default() });
//! decoder.handle_bytes(&wire);
//! let theirs = decoder.poll_handshake()?.expect("68 bytes are in");
//! theirs.check(&info_hash, &PeerId([1; 20]))?;
//! assert!(theirs.reserved.supports_extensions());
//! assert_eq!(shoal_wire::Client::from_peer_id(&theirs.peer_id).unwrap().to_string(), "Transmission 3.00");
//! assert!(matches!(decoder.poll_message()?, Some(Message::Bitfield(b)) if b.count_ones() == 3));
//! assert_eq!(decoder.poll_message()?, Some(Message::Unchoke));
//! assert_eq!(decoder.poll_message()?, Some(Message::Piece(block)));
//! assert_eq!(decoder.poll_message()?, None);
//! # Ok::<(), shoal_wire::WireError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// HOSTILE.md (c): a parser of peer bytes neither indexes unchecked nor does arithmetic that can wrap.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod client;
mod codec;
mod decoder;
mod error;
mod extension;
mod fast;
mod handshake;
mod message;
mod metadata;
mod pex;

pub use client::Client;
pub use codec::{CodecError, HandshakeCodec, MessageCodec};
pub use decoder::{DecoderConfig, MessageDecoder};
pub use error::WireError;
pub use extension::{
    EXTENDED_HANDSHAKE_ID, ExtendedHandshake, ExtensionMessage, MAX_CLIENT_NAME_LEN,
    MAX_EXTENSIONS, MAX_METADATA_SIZE, UT_METADATA, UT_PEX, decode_extension,
};
pub use fast::allowed_fast_set;
pub use handshake::{Handshake, PROTOCOL, Reserved};
pub use message::{
    BLOCK_LEN, Bitfield, Block, BlockRef, Message, PieceIndex, bitfield_len, encode_piece_header,
    id,
};
pub use metadata::{METADATA_PIECE_LEN, MetadataAssembler, MetadataMessage, metadata_piece_count};
pub use pex::{MAX_PEX_PEERS, PexFlags, PexMessage, PexPeer};
