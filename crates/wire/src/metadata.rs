//! Metadata exchange, `ut_metadata` (BEP 9): fetching the info dictionary from peers for magnet links.
//!
//! The metadata is cut into 16 KiB pieces (the last one shorter). A message is a bencoded dictionary;
//! a data message carries the piece's raw bytes right after the dictionary, which is why it is parsed
//! with `decode_prefix`. The bytes are kept as a [`Bytes`] view of the received message.

use bytes::Bytes;
use shoal_bencode::DecodeOptions;
use shoal_metainfo::InfoHash;

use crate::extension::{check_dict, int_field};
use crate::{MAX_METADATA_SIZE, Message, WireError};

/// The size of a metadata piece: 16 KiB; only the last one is shorter.
pub const METADATA_PIECE_LEN: u32 = 16 * 1024;

const NAME: &str = "ut_metadata";

/// The number of 16 KiB pieces metadata of `total_size` bytes is cut into.
///
/// ```
/// assert_eq!(shoal_wire::metadata_piece_count(16384), 1);
/// assert_eq!(shoal_wire::metadata_piece_count(16385), 2);
/// ```
pub const fn metadata_piece_count(total_size: u32) -> u32 {
    total_size.div_ceil(METADATA_PIECE_LEN)
}

/// The length of metadata piece `piece` of metadata `total_size` bytes long, or `None` past the end.
fn piece_len(total_size: u32, piece: u32) -> Option<u32> {
    let start = piece.checked_mul(METADATA_PIECE_LEN)?;
    let left = total_size.checked_sub(start).filter(|&left| left > 0)?;
    Some(left.min(METADATA_PIECE_LEN))
}

/// A `ut_metadata` message (BEP 9).
///
/// ```
/// use bytes::Bytes;
/// use shoal_wire::MetadataMessage;
///
/// let data = MetadataMessage::Data { piece: 0, total_size: 3, data: Bytes::from_static(b"d1e") };
/// let payload = data.to_bytes();
/// assert_eq!(payload, b"d8:msg_typei1e5:piecei0e10:total_sizei3eed1e"[..]);
/// assert_eq!(MetadataMessage::decode(&payload)?, data);
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for a metadata piece.
    Request {
        /// The metadata piece index.
        piece: u32,
    },
    /// `msg_type` 1: a metadata piece.
    Data {
        /// The metadata piece index.
        piece: u32,
        /// `total_size`: the size of the whole metadata, in bytes.
        total_size: u32,
        /// The piece's bytes: 16 KiB, or the rest of the metadata for the last piece.
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// The metadata piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// Decodes a `ut_metadata` payload (the bytes after the extension id).
    ///
    /// # Errors
    /// [`WireError::Bencode`] or [`WireError::Extension`] for a malformed dictionary, a missing or
    /// unknown `msg_type`, a missing `piece`, bytes after a request or reject;
    /// [`WireError::MetadataPiece`] for a data message whose `total_size` is 0 or over
    /// [`MAX_METADATA_SIZE`], whose piece is past the end, or whose data has the wrong length.
    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let (dict, used) = shoal_bencode::decode_prefix(payload, &DecodeOptions::lenient())
            .map_err(|source| WireError::Bencode {
                message: NAME,
                source,
            })?;
        let dict = check_dict(NAME, dict)?;
        let rule = |rule| WireError::Extension {
            message: NAME,
            rule,
        };
        let msg_type: i64 =
            int_field(&dict, b"msg_type").ok_or_else(|| rule("no integer `msg_type`"))?;
        let piece: u32 =
            int_field(&dict, b"piece").ok_or_else(|| rule("no valid `piece` index"))?;
        let trailing = payload.len().saturating_sub(used);
        match msg_type {
            0 | 2 if trailing != 0 => Err(rule("bytes after a request or reject")),
            0 => Ok(Self::Request { piece }),
            2 => Ok(Self::Reject { piece }),
            1 => {
                let total_size: u32 = int_field(&dict, b"total_size")
                    .ok_or_else(|| rule("a data message without a valid `total_size`"))?;
                // HOSTILE 33/34: a size of 0 or over the cap, a piece past the end, or data of the
                // wrong length are refused.
                if total_size == 0 || total_size > MAX_METADATA_SIZE {
                    return Err(WireError::MetadataPiece {
                        piece,
                        rule: "`total_size` is 0 or over 32 MiB",
                    });
                }
                let expected = piece_len(total_size, piece).ok_or(WireError::MetadataPiece {
                    piece,
                    rule: "the piece is past the end of the metadata",
                })?;
                if u32::try_from(trailing).ok() != Some(expected) {
                    return Err(WireError::MetadataPiece {
                        piece,
                        rule: "the data is not as long as the piece",
                    });
                }
                Ok(Self::Data {
                    piece,
                    total_size,
                    data: payload.slice(used..),
                })
            }
            _ => Err(rule("unknown `msg_type`")),
        }
    }

    /// Appends the payload (dictionary, then data for a data message) to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        use std::io::Write as _;
        // Keys in sorted order: msg_type, piece, total_size. Writing to a Vec cannot fail.
        let _ = match self {
            Self::Request { piece } => write!(buf, "d8:msg_typei0e5:piecei{piece}ee"),
            Self::Reject { piece } => write!(buf, "d8:msg_typei2e5:piecei{piece}ee"),
            Self::Data {
                piece,
                total_size,
                data,
            } => write!(
                buf,
                "d8:msg_typei1e5:piecei{piece}e10:total_sizei{total_size}ee"
            )
            .map(|()| buf.extend_from_slice(data)),
        };
    }

    /// The encoded payload.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode_into(&mut buf);
        buf.into()
    }

    /// The message to send to a peer that announced `ut_metadata` under `their_id`.
    pub fn to_message(&self, their_id: u8) -> Message {
        Message::Extended {
            id: their_id,
            payload: self.to_bytes(),
        }
    }
}

/// Collects metadata pieces from `ut_metadata` data messages and checks the result against the
/// info-hash.
///
/// It allocates `total_size` bytes when created, so create it only for a size you decided to believe (at
/// most [`MAX_METADATA_SIZE`]; HOSTILE 33 suggests waiting until peers agree on it).
///
/// ```
/// use shoal_metainfo::InfoHash;
/// use shoal_wire::MetadataAssembler;
///
/// let info = b"d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
/// let mut assembler = MetadataAssembler::new(info.len() as u32)?;
/// assert_eq!(assembler.missing().collect::<Vec<_>>(), [0]);
/// assembler.handle_data(0, info.len() as u32, info)?;
/// let metadata = assembler.finish(&InfoHash::of_info(info))?;
/// assert_eq!(metadata, info);
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    total_size: u32,
    buf: Vec<u8>,
    received: Vec<bool>,
}

impl MetadataAssembler {
    /// An assembler for metadata of `total_size` bytes.
    ///
    /// # Errors
    /// [`WireError::MetadataPiece`] if the size is 0 or over [`MAX_METADATA_SIZE`].
    pub fn new(total_size: u32) -> Result<Self, WireError> {
        if total_size == 0 || total_size > MAX_METADATA_SIZE {
            return Err(WireError::MetadataPiece {
                piece: 0,
                rule: "`total_size` is 0 or over 32 MiB",
            });
        }
        Ok(Self {
            total_size,
            buf: vec![0; total_size as usize],
            received: vec![false; metadata_piece_count(total_size) as usize],
        })
    }

    /// The metadata size.
    pub fn total_size(&self) -> u32 {
        self.total_size
    }

    /// The pieces still missing, in order: what to request next.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.received)
            .filter(|(_, done)| !**done)
            .map(|(piece, _)| piece)
    }

    /// Whether every piece is in.
    pub fn is_complete(&self) -> bool {
        self.received.iter().all(|&done| done)
    }

    /// Stores a piece from a data message.
    ///
    /// # Errors
    /// [`WireError::MetadataPiece`] if the message's `total_size` differs from ours, the piece is past
    /// the end, or the data has the wrong length.
    pub fn handle_data(
        &mut self,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<(), WireError> {
        if total_size != self.total_size {
            return Err(WireError::MetadataPiece {
                piece,
                rule: "`total_size` differs from the size announced before",
            });
        }
        let len = piece_len(total_size, piece).ok_or(WireError::MetadataPiece {
            piece,
            rule: "the piece is past the end of the metadata",
        })?;
        // `piece_len` checked that the piece starts and ends inside the metadata.
        let start = piece.saturating_mul(METADATA_PIECE_LEN) as usize;
        let target = self
            .buf
            .get_mut(start..start.saturating_add(len as usize))
            .filter(|target| target.len() == data.len())
            .ok_or(WireError::MetadataPiece {
                piece,
                rule: "the data is not as long as the piece",
            })?;
        target.copy_from_slice(data);
        if let Some(done) = self.received.get_mut(piece as usize) {
            *done = true;
        }
        Ok(())
    }

    /// The complete metadata, once its SHA-1 is checked against the info-hash (BEP 9).
    ///
    /// # Errors
    /// [`WireError::MetadataPiece`] if pieces are missing, [`WireError::MetadataHash`] if the hash
    /// differs (some peer sent bad data).
    pub fn finish(self, info_hash: &InfoHash) -> Result<Vec<u8>, WireError> {
        if let Some(piece) = self.missing().next() {
            return Err(WireError::MetadataPiece {
                piece,
                rule: "the piece is still missing",
            });
        }
        let got = InfoHash::of_info(&self.buf);
        if got != *info_hash {
            return Err(WireError::MetadataHash {
                expected: *info_hash,
                got,
            });
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(payload: &[u8]) -> Result<MetadataMessage, WireError> {
        MetadataMessage::decode(&Bytes::copy_from_slice(payload))
    }

    #[test]
    fn bep_9_examples() {
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei0ee"),
            Ok(MetadataMessage::Request { piece: 0 })
        );
        assert_eq!(
            decode(b"d8:msg_typei2e5:piecei0ee"),
            Ok(MetadataMessage::Reject { piece: 0 })
        );
        let mut data = b"d8:msg_typei1e5:piecei1e10:total_sizei34256ee".to_vec();
        data.extend_from_slice(&[7; 16384]);
        let Ok(MetadataMessage::Data {
            piece: 1,
            total_size: 34256,
            data,
        }) = decode(&data)
        else {
            panic!("not decoded");
        };
        assert_eq!(data.len(), 16384);
    }

    #[test]
    fn hostile_data_messages() {
        let data = |piece: u32, total: i64, len: usize| {
            let mut payload =
                format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total}ee").into_bytes();
            payload.extend(std::iter::repeat_n(0, len));
            decode(&payload)
        };
        assert!(data(0, 100, 100).is_ok());
        assert!(matches!(
            data(0, 100, 99),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(matches!(
            data(0, 100, 101),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(matches!(
            data(1, 100, 0),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(matches!(
            data(0, 0, 0),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(matches!(data(0, -1, 0), Err(WireError::Extension { .. })));
        assert!(matches!(
            data(0, 1 << 40, 16384),
            Err(WireError::Extension { .. })
        ));
        assert!(matches!(
            data(0, (32 << 20) + 1, 16384),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(data(2047, 32 << 20, 16384).is_ok());
        assert!(matches!(
            data(u32::MAX, 100, 0),
            Err(WireError::MetadataPiece { .. })
        ));
        assert!(matches!(
            decode(b"d8:msg_typei3e5:piecei0ee"),
            Err(WireError::Extension { .. })
        ));
        assert!(matches!(
            decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(WireError::Extension { .. })
        ));
        assert!(matches!(
            decode(b"d8:msg_typei0e5:piecei0eeXX"),
            Err(WireError::Extension { .. })
        ));
    }

    #[test]
    fn assembler_checks_everything() {
        let metadata: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let hash = InfoHash::of_info(&metadata);
        let mut assembler = MetadataAssembler::new(40_000).unwrap();
        assert_eq!(assembler.missing().collect::<Vec<_>>(), [0, 1, 2]);
        for piece in [2, 0, 1] {
            let start = piece as usize * 16384;
            let end = (start + 16384).min(40_000);
            assert!(
                assembler
                    .handle_data(piece, 40_001, &metadata[start..end])
                    .is_err()
            );
            assert!(
                assembler
                    .handle_data(piece, 40_000, &metadata[start..end - 1])
                    .is_err()
            );
            assembler
                .handle_data(piece, 40_000, &metadata[start..end])
                .unwrap();
        }
        assert!(assembler.handle_data(3, 40_000, &[]).is_err());
        assert!(assembler.is_complete());
        assert!(matches!(
            assembler.clone().finish(&InfoHash([0; 20])),
            Err(WireError::MetadataHash { .. })
        ));
        assert_eq!(assembler.finish(&hash).unwrap(), metadata);
        assert!(MetadataAssembler::new(0).is_err());
        assert!(MetadataAssembler::new(MAX_METADATA_SIZE + 1).is_err());
    }
}
