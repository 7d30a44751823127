//! Replays the committed `peer_session` fuzz corpus (`fuzz/corpus/peer_session`: seeds and past
//! findings) through the same checks the fuzz target makes: each input is one peer connection to a
//! running engine, which must survive it.

#[path = "../../../fuzz/checks/peer_session.rs"]
mod peer_session;

#[test]
fn replay_peer_session_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/peer_session");
    let mut engine = peer_session::PeerSession::new();
    let mut replayed = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus is committed")
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        engine.run(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(
        replayed >= 8,
        "only {replayed} peer_session corpus inputs found"
    );
}
