//! Property tests: messages and extension payloads round-trip, chunking never changes what is decoded,
//! and arbitrary bytes never panic.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;
use shoal_metainfo::{InfoHash, PeerId};
use shoal_wire::{
    Bitfield, Block, BlockRef, DecoderConfig, ExtendedHandshake, Handshake, Message,
    MessageDecoder, MetadataMessage, PexFlags, PexMessage, PexPeer, PieceIndex, Reserved,
    WireError, id,
};

#[path = "../../../fuzz/checks/wire.rs"]
mod wire_check;
#[path = "../../../fuzz/checks/wire_extension.rs"]
mod wire_extension_check;

const N_PIECES: u32 = 1000;

fn piece() -> impl Strategy<Value = PieceIndex> {
    (0..N_PIECES).prop_map(PieceIndex)
}

fn block_ref() -> impl Strategy<Value = BlockRef> {
    (piece(), any::<u32>(), any::<u32>()).prop_map(|(piece, offset, len)| BlockRef {
        piece,
        offset,
        len,
    })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Any message that may follow other messages (everything but bitfield, have all and have none).
fn later_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        piece().prop_map(Message::Have),
        block_ref().prop_map(Message::Request),
        (piece(), any::<u32>(), bytes(16 * 1024 + 1)).prop_map(|(piece, offset, data)| {
            Message::Piece(Block {
                piece,
                offset,
                data,
            })
        }),
        block_ref().prop_map(Message::Cancel),
        any::<u16>().prop_map(Message::Port),
        piece().prop_map(Message::Suggest),
        block_ref().prop_map(Message::Reject),
        piece().prop_map(Message::AllowedFast),
        (any::<u8>(), bytes(600)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (21u8..=255, bytes(100)).prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

/// A message allowed first: a bitfield of the right size with its spare bits clear, have all, have none.
fn first_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        prop::collection::vec(piece(), 0..50)
            .prop_map(|pieces| Message::Bitfield(Bitfield::from_pieces(N_PIECES, pieces))),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
    ]
}

fn config() -> DecoderConfig {
    DecoderConfig {
        n_pieces: Some(N_PIECES),
        fast_extension: true,
        ..DecoderConfig::default()
    }
}

/// Decodes a stream fed in reads that end at the given cut points.
fn decode_in_reads(stream: &[u8], cuts: &[usize]) -> Result<(Handshake, Vec<Message>), WireError> {
    let mut decoder = MessageDecoder::new(config());
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut handshake = None;
    let mut messages = Vec::new();
    for pair in cuts.windows(2) {
        decoder.handle_bytes(&stream[pair[0]..pair[1]]);
        if handshake.is_none() {
            handshake = decoder.poll_handshake()?;
            if handshake.is_none() {
                continue;
            }
        }
        while let Some(message) = decoder.poll_message()? {
            messages.push(message);
        }
    }
    assert_eq!(decoder.buffered_len(), 0, "bytes left over");
    Ok((handshake.expect("the handshake was decoded"), messages))
}

fn handshake() -> impl Strategy<Value = Handshake> {
    (any::<[u8; 8]>(), any::<[u8; 20]>(), any::<[u8; 20]>()).prop_map(|(reserved, hash, id)| {
        Handshake::new(InfoHash(hash), PeerId(id)).with_reserved(Reserved(reserved))
    })
}

proptest! {
    #[test]
    fn any_message_round_trips(first in first_message(), later in later_message()) {
        for message in [first, later] {
            let mut decoder = MessageDecoder::new(config());
            let mut buf = Vec::new();
            message.encode_into(&mut buf);
            prop_assert_eq!(buf.len(), message.encoded_len());
            decoder.handle_bytes(&buf);
            prop_assert_eq!(decoder.poll_message(), Ok(Some(message)));
            prop_assert_eq!(decoder.poll_message(), Ok(None));
        }
    }

    #[test]
    fn any_chunking_decodes_the_same(
        handshake in handshake(),
        first in first_message(),
        later in prop::collection::vec(later_message(), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        handshake.encode_into(&mut stream);
        let mut expected = vec![first];
        expected.extend(later);
        for message in &expected {
            message.encode_into(&mut stream);
        }
        prop_assert_eq!(decode_in_reads(&stream, &cuts), Ok((handshake, expected)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        wire_check::check_wire(&data);
        wire_extension_check::check_wire_extension(&data);
    }

    #[test]
    fn mutated_streams_never_panic(
        later in prop::collection::vec(later_message(), 1..10),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        mode in any::<u8>(),
        read_len in any::<u8>(),
    ) {
        // Valid streams with a few bytes changed reach deeper than random bytes do.
        let mut data = vec![mode & !4, read_len];
        for message in &later {
            message.encode_into(&mut data);
        }
        for (at, byte) in flips {
            let len = data.len();
            data[2 + at % (len - 2)] ^= byte;
        }
        wire_check::check_wire(&data);
    }

    #[test]
    fn extended_handshake_round_trips(
        extensions in prop::collection::btree_map("[a-z_]{1,12}", 1u8.., 0..10),
        port in prop::option::of(1u16..),
        client in prop::option::of("[ -~]{0,40}"),
        your_ip in prop::option::of(any::<IpAddr>()),
        ipv4 in prop::option::of(any::<std::net::Ipv4Addr>()),
        ipv6 in prop::option::of(any::<std::net::Ipv6Addr>()),
        request_queue in prop::option::of(1u32..),
        metadata_size in prop::option::of(1..=shoal_wire::MAX_METADATA_SIZE),
        upload_only in any::<bool>(),
    ) {
        let hs = ExtendedHandshake {
            extensions, port, client, your_ip, ipv4, ipv6, request_queue, metadata_size, upload_only,
            metadata_size_refused: false,
        };
        prop_assert_eq!(ExtendedHandshake::decode(&hs.to_bytes()), Ok(hs));
    }

    #[test]
    fn metadata_messages_round_trip(piece in 0u32..2048, total_size in 1..=shoal_wire::MAX_METADATA_SIZE, kind in 0..3) {
        let message = match kind {
            0 => MetadataMessage::Request { piece },
            1 => MetadataMessage::Reject { piece },
            _ => {
                let n = shoal_wire::metadata_piece_count(total_size);
                let piece = piece % n;
                let len = (total_size - piece * 16384).min(16384);
                MetadataMessage::Data { piece, total_size, data: vec![0x5a; len as usize].into() }
            }
        };
        prop_assert_eq!(MetadataMessage::decode(&message.to_bytes()), Ok(message));
    }

    #[test]
    fn pex_messages_round_trip(
        added4 in prop::collection::vec((any::<std::net::SocketAddrV4>(), any::<u8>()), 0..25),
        added6 in prop::collection::vec((any::<std::net::SocketAddrV6>(), any::<u8>()), 0..25),
        dropped in prop::collection::vec(any::<SocketAddr>(), 0..50),
    ) {
        // The encoding groups peers by family, IPv4 first; flow info and scope ids do not travel.
        let added: Vec<PexPeer> = added4
            .into_iter()
            .map(|(addr, f)| (SocketAddr::V4(addr), f))
            .chain(added6.into_iter().map(|(addr, f)| (SocketAddr::new(IpAddr::V6(*addr.ip()), addr.port()), f)))
            .map(|(addr, f)| PexPeer { addr, flags: PexFlags(f) })
            .collect();
        let mut dropped: Vec<SocketAddr> = dropped
            .into_iter()
            .map(|addr| SocketAddr::new(addr.ip(), addr.port()))
            .collect();
        dropped.sort_by_key(|addr| addr.is_ipv6());
        let message = PexMessage { added, dropped };
        prop_assert_eq!(PexMessage::decode(&message.to_bytes()), Ok(message));
    }
}

#[test]
fn extended_ids_do_not_collide_with_unknown() {
    // Message ids from 21 up decode as unknown and round-trip; 0x12..=0x13 too.
    for message_id in [0x12, 0x13, 21, 255] {
        let message = Message::Unknown {
            id: message_id,
            payload: Bytes::from_static(b"x"),
        };
        let mut decoder = MessageDecoder::new(config());
        decoder.handle_bytes(&message.to_bytes());
        assert_eq!(decoder.poll_message(), Ok(Some(message)));
    }
    assert_eq!(id::EXTENDED, 20);
}
