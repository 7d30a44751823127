// The invariants the `wire` fuzz target checks on every input. Shared, via `include!`/`#[path]`, by the
// fuzz target and by `crates/wire/tests/fuzz_corpus.rs`, which replays the committed corpus.
//
// Input layout: byte 0 picks the decoder's configuration, byte 1 the read size, the rest is what a peer
// sends (with a handshake first when bit 2 of byte 0 is set).

use shoal_wire::{
    DecoderConfig, ExtendedHandshake, Handshake, Message, MessageDecoder, UT_METADATA, UT_PEX,
    WireError, decode_extension,
};

/// What decoding a stream produced: the handshake, the messages, the error that stopped it, and the bytes
/// left over.
type Outcome = (Option<Handshake>, Vec<Message>, Option<WireError>, usize);

/// Decodes the stream in reads of `read_len` bytes, as a connection would.
fn decode_stream(
    config: &DecoderConfig,
    handshake: bool,
    input: &[u8],
    read_len: usize,
) -> Outcome {
    let mut decoder = MessageDecoder::new(config.clone());
    let mut theirs = None;
    let mut messages = Vec::new();
    for read in input.chunks(read_len) {
        decoder.handle_bytes(read);
        if handshake && theirs.is_none() {
            match decoder.poll_handshake() {
                Ok(Some(hs)) => theirs = Some(hs),
                Ok(None) => continue,
                Err(err) => return (theirs, messages, Some(err), decoder.buffered_len()),
            }
        }
        loop {
            match decoder.poll_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(err) => return (theirs, messages, Some(err), decoder.buffered_len()),
            }
        }
    }
    (theirs, messages, None, decoder.buffered_len())
}

/// Decodes `data` whole and in small reads and checks that both agree and that every message decoded
/// re-encodes to exactly the bytes it came from.
pub fn check_wire(data: &[u8]) {
    let [mode, read_len, input @ ..] = data else {
        return;
    };
    let config = DecoderConfig {
        fast_extension: mode & 1 != 0,
        n_pieces: (mode & 2 != 0).then_some(u32::from(mode >> 3) * 7),
        ..DecoderConfig::default()
    };
    let handshake = mode & 4 != 0;
    let whole = decode_stream(&config, handshake, input, input.len().max(1));
    let chunked = decode_stream(&config, handshake, input, usize::from(*read_len).max(1));
    let (theirs, messages, err, left) = whole;
    // After an error the reads not yet made differ; before it, everything must agree.
    assert_eq!(
        (&theirs, &messages, &err),
        (&chunked.0, &chunked.1, &chunked.2),
        "the chunking changed what was decoded"
    );
    if err.is_none() {
        assert_eq!(left, chunked.3);
    }

    let mut encoded = Vec::new();
    if let Some(hs) = theirs {
        hs.encode_into(&mut encoded);
    }
    let ours = ExtendedHandshake::default()
        .with_extension(UT_METADATA, 1)
        .with_extension(UT_PEX, 2);
    for message in &messages {
        message.encode_into(&mut encoded);
        assert_eq!(message.encoded_len(), {
            let mut one = Vec::new();
            message.encode_into(&mut one);
            one.len()
        });
        if let Message::Extended { id, payload } = message {
            let _ = decode_extension(*id, payload.clone(), &ours);
        }
    }
    // Everything up to the first message not decoded was consumed, and it re-encodes byte for byte.
    assert_eq!(
        &input[..encoded.len()],
        &encoded[..],
        "a message did not re-encode to its bytes"
    );
    if err.is_none() {
        assert_eq!(encoded.len() + left, input.len());
    }
}
