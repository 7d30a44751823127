// The invariants the `wire_extension` fuzz target checks on every input. Shared, via `include!`/`#[path]`,
// by the fuzz target and by `crates/wire/tests/fuzz_corpus.rs`, which replays the committed corpus.
//
// Input layout: byte 0 picks the extension (0 handshake, 1 ut_metadata, 2 ut_pex, others all three), the
// rest is the payload a peer sent.

use bytes::Bytes;
use shoal_wire::{ExtendedHandshake, MetadataMessage, PexMessage};

/// Decodes the payload as extension messages; whatever decodes must re-encode to something that decodes
/// to the same value.
pub fn check_wire_extension(data: &[u8]) {
    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    let all = which > 2;
    if (which == 0 || all)
        && let Ok(hs) = ExtendedHandshake::decode(payload)
    {
        // A refused `metadata_size` is not encoded, so the copy has none to refuse.
        let expected = ExtendedHandshake {
            metadata_size_refused: false,
            ..hs.clone()
        };
        assert_eq!(ExtendedHandshake::decode(&hs.to_bytes()), Ok(expected));
    }
    if (which == 1 || all)
        && let Ok(message) = MetadataMessage::decode(&Bytes::copy_from_slice(payload))
    {
        assert_eq!(MetadataMessage::decode(&message.to_bytes()), Ok(message));
    }
    if (which == 2 || all)
        && let Ok(message) = PexMessage::decode(payload)
    {
        assert!(message.added.len() <= shoal_wire::MAX_PEX_PEERS);
        assert!(message.dropped.len() <= shoal_wire::MAX_PEX_PEERS);
        assert_eq!(PexMessage::decode(&message.to_bytes()), Ok(message));
    }
}
