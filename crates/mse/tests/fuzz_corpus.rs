//! Replays the committed `mse` fuzz corpus (`fuzz/corpus/mse`: seeds and past findings) through the
//! same checks the fuzz target makes, so CI catches regressions without a fuzzer.

#[path = "../../../fuzz/checks/mse.rs"]
mod mse;

#[test]
fn replay_mse_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mse");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let path = entry.unwrap().path();
        mse::check_mse(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 9, "only {replayed} mse corpus inputs found");
}
