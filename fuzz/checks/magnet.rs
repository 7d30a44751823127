// The invariants the magnet fuzz target checks on every input. Shared, via `include!`/`#[path]`, by
// the fuzz target and by `crates/metainfo/tests/fuzz_corpus.rs`, which replays the committed corpus.

use shoal_metainfo::{MAX_MAGNET_LEN, Magnet};

/// Parses `data` as a magnet URI; whatever is accepted formats to a URI that parses to the same value.
pub fn check_magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(magnet) = Magnet::parse(text) else {
        return;
    };
    assert!(magnet.info_hashes.v1.is_some() || magnet.info_hashes.v2.is_some());
    let formatted = magnet.to_string();
    if formatted.len() > MAX_MAGNET_LEN {
        // Percent-encoding can triple a value: the canonical form of a large magnet may pass the limit.
        return;
    }
    let again = Magnet::parse(&formatted).unwrap_or_else(|err| panic!("{formatted:?}: {err}"));
    assert_eq!(again, magnet, "{formatted:?}");
    assert_eq!(again.to_string(), formatted);
}
