//! Replays the committed fuzz corpora (`fuzz/corpus/tracker_http` and `fuzz/corpus/tracker_udp`, seeds
//! and past findings) through the same checks the fuzz targets make, so CI catches regressions without a
//! fuzzer.

#[path = "../../../fuzz/checks/tracker_http.rs"]
mod tracker_http;
#[path = "../../../fuzz/checks/tracker_udp.rs"]
mod tracker_udp;

fn replay(name: &str, check: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        check(&data);
        replayed += 1;
    }
    replayed
}

#[test]
fn replay_tracker_http_corpus() {
    let replayed = replay("tracker_http", tracker_http::check_tracker_http);
    assert!(replayed >= 7, "only {replayed} corpus inputs");
}

#[test]
fn replay_tracker_udp_corpus() {
    let replayed = replay("tracker_udp", tracker_udp::check_tracker_udp);
    assert!(replayed >= 6, "only {replayed} corpus inputs");
}

/// Arbitrary bytes never panic the parsers (a quick property run besides the fuzzer).
mod properties {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn http_replies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::tracker_http::check_tracker_http(&data);
        }

        #[test]
        fn udp_packets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::tracker_udp::check_tracker_udp(&data);
        }
    }
}
