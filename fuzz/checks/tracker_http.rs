// The invariants the tracker_http fuzz target checks on every input: an HTTP tracker reply body, parsed
// as an announce and as a scrape reply. Shared, via `include!`/`#[path]`, by the fuzz target and by
// `crates/tracker/tests/fuzz_corpus.rs`, which replays the committed corpus.

use shoal_tracker::{
    MAX_MESSAGE_LEN, MAX_PEERS, TrackerError, decode_announce_response, decode_compact_peers,
    decode_compact_peers6, decode_scrape_response,
};

/// Parses `data` as every kind of HTTP tracker reply and checks the limits hold.
pub fn check_tracker_http(data: &[u8]) {
    // A lossy decode turns each bad byte into U+FFFD (3 bytes of UTF-8).
    let message_cap = MAX_MESSAGE_LEN * 3;
    match decode_announce_response(data) {
        Ok(reply) => {
            assert!(
                reply.peers.len() <= MAX_PEERS,
                "{} peers",
                reply.peers.len()
            );
            assert!(reply.peers.iter().all(|peer| peer.port() != 0));
            if let Some(warning) = &reply.warning {
                assert!(warning.len() <= message_cap);
            }
        }
        Err(TrackerError::Failure(reason)) => assert!(reason.len() <= message_cap),
        Err(_) => {}
    }
    if let Ok(scrape) = decode_scrape_response(data) {
        // Each entry needs at least a 20-byte key in the input.
        assert!(scrape.files.len() <= data.len() / 20);
    }
    for (decoded, entry) in [
        (decode_compact_peers(data), 6),
        (decode_compact_peers6(data), 18),
    ] {
        match decoded {
            Ok(peers) => {
                assert!(data.len().is_multiple_of(entry));
                assert!(peers.len() <= MAX_PEERS.min(data.len() / entry));
            }
            Err(_) => assert!(!data.len().is_multiple_of(entry)),
        }
    }
}
