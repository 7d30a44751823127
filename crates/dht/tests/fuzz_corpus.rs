//! Replays the committed fuzz corpus (`fuzz/corpus/krpc`, seeds and past findings) through the same
//! checks the fuzz target makes, so CI catches regressions without a fuzzer.

#[path = "../../../fuzz/checks/krpc.rs"]
mod checks;

#[test]
fn replay_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/krpc");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        checks::check_krpc(&data);
        replayed += 1;
    }
    assert!(
        replayed >= 9,
        "only {replayed} corpus inputs found in {}",
        dir.display()
    );
}
