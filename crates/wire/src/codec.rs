//! `tokio_util::codec` adapters over the sans-IO decoder and the encoder.
//!
//! A connection starts framed with [`HandshakeCodec`] and, once the handshakes are exchanged, switches to
//! [`MessageCodec`] with `Framed::map_codec`, which keeps the bytes already read (a peer may send its
//! first messages in the same segment as its handshake).

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{DecoderConfig, Handshake, Message, MessageDecoder, WireError};

/// What can go wrong on a framed connection: the peer broke a rule, or the socket failed.
///
/// ```
/// use bytes::BytesMut;
/// use shoal_wire::{CodecError, MessageCodec, WireError};
/// use tokio_util::codec::Decoder;
///
/// let mut hostile = BytesMut::from(&[0, 0, 0, 2, 1, 0][..]); // an unchoke one byte too long
/// let err = MessageCodec::default().decode(&mut hostile).unwrap_err();
/// assert!(matches!(err, CodecError::Wire(WireError::WrongLength { message: "unchoke", .. })));
/// assert_eq!(err.to_string(), "unchoke message: 2 bytes after the length prefix, expected 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer broke a rule of the protocol.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Reading or writing the socket failed.
    #[error("peer connection i/o")]
    Io(#[from] std::io::Error),
}

/// Frames the 68-byte handshake.
///
/// ```
/// use bytes::BytesMut;
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_wire::{Handshake, HandshakeCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let handshake = Handshake::new(InfoHash([1; 20]), PeerId([2; 20]));
/// let mut buf = BytesMut::new();
/// HandshakeCodec.encode(handshake, &mut buf)?;
/// assert_eq!(HandshakeCodec.decode(&mut buf)?, Some(handshake));
/// # Ok::<(), shoal_wire::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HandshakeCodec;

impl Decoder for HandshakeCodec {
    type Item = Handshake;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Handshake>, CodecError> {
        Ok(MessageDecoder::decode_handshake(src)?)
    }
}

impl Encoder<Handshake> for HandshakeCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Handshake, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(Handshake::LEN);
        item.encode_into(dst);
        Ok(())
    }
}

/// Frames peer messages, with the limits and checks of [`MessageDecoder`].
///
/// ```
/// use bytes::BytesMut;
/// use shoal_wire::{DecoderConfig, Message, MessageCodec, PieceIndex};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = MessageCodec::new(DecoderConfig { n_pieces: Some(4), ..Default::default() });
/// let mut buf = BytesMut::new();
/// codec.encode(&Message::Have(PieceIndex(3)), &mut buf)?;
/// assert_eq!(codec.decode(&mut buf)?, Some(Message::Have(PieceIndex(3))));
/// # Ok::<(), shoal_wire::CodecError>(())
/// ```
#[derive(Debug, Default)]
pub struct MessageCodec {
    decoder: MessageDecoder,
}

impl MessageCodec {
    /// A codec with these limits.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            decoder: MessageDecoder::new(config),
        }
    }

    /// The decoder, to update its piece count or fast-extension state mid-connection.
    pub fn decoder_mut(&mut self) -> &mut MessageDecoder {
        &mut self.decoder
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        Ok(self.decoder.decode_from(src)?)
    }
}

impl Encoder<&Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.reserve(item.encoded_len());
        item.encode_into(dst);
        Ok(())
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}
