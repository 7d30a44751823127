// The invariants the KRPC fuzz target checks on every input. Shared, via `include!`/`#[path]`, by the
// fuzz target and by `crates/dht/tests/fuzz_corpus.rs`, which replays the committed corpus.

use shoal_dht::{Config, Dht, Message, UNVERIFIED_REPLY_FACTOR};

/// Decodes `data` as a KRPC message, re-encodes what decoded, and feeds it to a node core.
pub fn check_krpc(data: &[u8]) {
    if let Ok(message) = Message::decode(data) {
        // What we decode, we encode canonically, and it decodes back to the same message.
        let bytes = message.encode();
        assert!(
            shoal_bencode::decode(&bytes).is_ok(),
            "encoding is not canonical bencode"
        );
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message));
    }
    // A node fed the datagram never panics and never answers with more than the amplification bound.
    let now = std::time::Instant::now();
    let from = std::net::SocketAddr::from(([192, 0, 2, 1], 6881));
    let mut node = Dht::new(
        Config {
            seed: 1,
            ..Config::default()
        },
        now,
    );
    node.handle_datagram(now, from, data);
    while let Some(transmit) = node.poll_transmit() {
        if transmit.to == from {
            // The bare reply (id, `ip`, echoed `t`) may exceed a tiny query's budget; it is bounded.
            assert!(
                transmit.bytes.len() <= (data.len() * UNVERIFIED_REPLY_FACTOR).max(160),
                "{} bytes answered {} bytes",
                transmit.bytes.len(),
                data.len()
            );
        }
    }
    let stats = node.stats();
    assert_eq!(stats.nodes, 0, "an unverified node entered the table");
}
