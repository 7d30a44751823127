//! The `tokio_util` codecs over an in-memory pipe: a handshake followed by messages in the same write
//! survives the switch from `HandshakeCodec` to `MessageCodec`, and a broken rule ends the stream with
//! the error that names it.

use futures_util::{SinkExt as _, StreamExt as _};
use shoal_metainfo::{InfoHash, PeerId};
use shoal_wire::{
    Bitfield, Block, CodecError, DecoderConfig, Handshake, HandshakeCodec, Message, MessageCodec,
    PieceIndex, Reserved, WireError,
};
use tokio::io::AsyncWriteExt as _;
use tokio_util::codec::Framed;

fn config() -> DecoderConfig {
    DecoderConfig {
        n_pieces: Some(4),
        fast_extension: true,
        ..DecoderConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn handshake_and_messages_in_one_write() {
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let handshake = Handshake::new(InfoHash([5; 20]), PeerId(*b"-LT2080-............"))
        .with_reserved(Reserved::default().with_fast());
    let block = Block {
        piece: PieceIndex(3),
        offset: 0,
        data: vec![1; 100].into(),
    };
    let messages = [
        Message::Bitfield(Bitfield::from_pieces(4, [PieceIndex(3)])),
        Message::Unchoke,
        Message::Piece(block),
        Message::KeepAlive,
    ];
    let mut wire = handshake.to_bytes().to_vec();
    for message in &messages {
        message.encode_into(&mut wire);
    }
    // A hostile peer then announces a 4 GiB message.
    wire.extend_from_slice(&[0xff; 4]);
    theirs.write_all(&wire).await.unwrap();

    let mut framed = Framed::new(ours, HandshakeCodec);
    assert_eq!(framed.next().await.unwrap().unwrap(), handshake);
    let mut framed = framed.map_codec(|_| MessageCodec::new(config()));
    for expected in messages {
        assert_eq!(framed.next().await.unwrap().unwrap(), expected);
    }
    match framed.next().await {
        Some(Err(CodecError::Wire(WireError::MessageTooLong { len, .. }))) => {
            assert_eq!(len, u32::MAX);
        }
        other => panic!("expected a length error, got {other:?}"),
    }
    // Nothing of the announced length was buffered.
    assert!(framed.read_buffer().capacity() < 1 << 20);
}

#[tokio::test(start_paused = true)]
async fn both_directions_through_the_sink() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut left = Framed::new(a, MessageCodec::new(config()));
    let mut right = Framed::new(b, MessageCodec::new(config()));
    left.send(Message::HaveAll).await.unwrap();
    left.send(&Message::Interested).await.unwrap();
    assert_eq!(right.next().await.unwrap().unwrap(), Message::HaveAll);
    assert_eq!(right.next().await.unwrap().unwrap(), Message::Interested);
    // A second have all breaks BEP 6's first-message rule.
    left.send(Message::HaveAll).await.unwrap();
    assert!(matches!(
        right.next().await,
        Some(Err(CodecError::Wire(WireError::NotFirst {
            message: "have all"
        })))
    ));
}
