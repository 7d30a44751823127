// The invariants the bencode fuzz target checks on every input. Shared, via `include!`/`#[path]`, by
// the fuzz target and by `crates/bencode/tests/fuzz_corpus.rs`, which replays the committed corpus.

use shoal_bencode::{
    DecodeOptions, OwnedValue, decode, decode_prefix, decode_with, encode, from_bytes,
};

/// Decodes `data` every way the crate offers and checks that the answers agree.
pub fn check_bencode(data: &[u8]) {
    let strict = decode(data);
    let lenient = decode_with(data, &DecodeOptions::lenient());
    // Strict accepts canonical bencode only: exactly what re-encodes to the input.
    if let Ok(value) = &strict {
        assert_eq!(
            encode(value),
            data,
            "strict decode accepted a non-canonical input"
        );
        assert_eq!(value.raw(), data);
        assert!(lenient.is_ok(), "lenient rejected what strict accepted");
    }
    // Whatever lenient accepts re-encodes canonically, and strict reads that back as the same value.
    if let Ok(value) = &lenient {
        let canonical = encode(value);
        let again = decode(&canonical).expect("canonical output decodes strictly");
        assert_eq!(encode(&again), canonical);
    }
    // serde's view agrees with the tree decoder.
    match (from_bytes::<OwnedValue>(data), &strict) {
        (Ok(owned), Ok(value)) => assert_eq!(owned, value.to_owned_value()),
        (Err(_), Err(_)) => {}
        (serde, tree) => panic!("serde {:?} but tree {:?}", serde.is_ok(), tree.is_ok()),
    }
    // A prefix decode uses no more than the input and agrees with the full decode when it used all of it.
    if let Ok((value, used)) = decode_prefix(data, &DecodeOptions::strict()) {
        assert!(used <= data.len());
        assert_eq!(value.raw(), &data[..used]);
        assert_eq!(used == data.len(), strict.is_ok());
    }
}
