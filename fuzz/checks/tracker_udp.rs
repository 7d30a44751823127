// The invariants the tracker_udp fuzz target checks on every input: UDP tracker packets (BEP 15), decoded
// alone and fed as a sequence of datagrams and timeouts to the sans-IO core. Shared, via
// `include!`/`#[path]`, by the fuzz target and by `crates/tracker/tests/fuzz_corpus.rs`.

use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, PeerId};
use shoal_tracker::{
    AnnounceRequest, MAX_PEERS, UdpConfig, UdpReply, UdpRequest, UdpTracker, decode_udp_reply,
};

/// Decodes `data` as one packet, then replays it as a script against a core with requests in flight.
pub fn check_tracker_udp(data: &[u8]) {
    for ipv6 in [false, true] {
        if let Ok(UdpReply::Announce { response, .. }) = decode_udp_reply(data, ipv6) {
            assert!(response.peers.len() <= MAX_PEERS);
            assert!(response.peers.iter().all(|peer| peer.port() != 0));
            assert_eq!(
                response.peers.iter().all(|peer| peer.is_ipv6()),
                ipv6 || response.peers.is_empty()
            );
        }
    }

    // The script: each step starts with a control byte. Its top bit patches the transaction id in flight
    // into the datagram (so the fuzzer gets past the id check), the next bit fires the timeout instead of
    // a datagram, and the low six bits times 8 are the datagram's length.
    let start = Instant::now();
    let mut now = start;
    let ipv6 = data.first().is_some_and(|byte| byte & 1 == 1);
    let config = UdpConfig {
        retransmit_base: Duration::from_secs(15),
        max_retransmits: 8,
    };
    let mut core = UdpTracker::new(config, ipv6, b"/announce".to_vec(), 1);
    let request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
    let mut requests: u64 = 0;
    for _ in 0..3 {
        core.request(now, UdpRequest::Announce(request.clone()));
        requests += 1;
    }
    core.request(now, UdpRequest::Scrape(vec![InfoHash([3; 20]); 2]));
    requests += 1;
    let mut last_sent: Vec<u8> = Vec::new();
    let mut events = 0;
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&control, tail)) = rest.split_first() {
        if control & 0x40 != 0 {
            if let Some(deadline) = core.poll_timeout() {
                assert!(deadline >= now);
                now = deadline;
            }
            core.handle_timeout(now);
            rest = tail;
        } else {
            let len = usize::from(control & 0x3F) * 8;
            let (packet, next) = tail.split_at(len.min(tail.len()));
            let mut packet = packet.to_vec();
            if control & 0x80 != 0 && packet.len() >= 8 && last_sent.len() >= 16 {
                packet[4..8].copy_from_slice(&last_sent[12..16]);
            }
            core.handle_datagram(now, &packet);
            rest = next;
        }
        while let Some(packet) = core.poll_transmit() {
            assert!(packet.len() >= 16);
            last_sent = packet;
        }
        while core.poll_event().is_some() {
            events += 1;
        }
        assert!(events <= requests);
        // Something is in flight exactly while requests are unanswered.
        assert_eq!(core.poll_timeout().is_some(), events < requests);
    }
    // Each request ends after at most 15·(2^0 + … + 2^8) s of timeouts (BEP 15), connects included.
    assert!(now - start <= Duration::from_secs(15 * 511 * requests));
}
