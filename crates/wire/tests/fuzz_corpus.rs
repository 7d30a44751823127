//! Replays the committed fuzz corpora (`fuzz/corpus/wire` and `fuzz/corpus/wire_extension`: seeds and
//! past findings) through the same checks the fuzz targets make, so CI catches regressions without a
//! fuzzer.

#[path = "../../../fuzz/checks/wire.rs"]
mod wire;
#[path = "../../../fuzz/checks/wire_extension.rs"]
mod wire_extension;

/// Runs `check` over every file of `fuzz/corpus/<name>` and returns how many there were.
fn replay(name: &str, check: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        replayed += 1;
    }
    replayed
}

#[test]
fn replay_wire_corpus() {
    let replayed = replay("wire", wire::check_wire);
    assert!(replayed >= 8, "only {replayed} wire corpus inputs found");
}

#[test]
fn replay_wire_extension_corpus() {
    let replayed = replay("wire_extension", wire_extension::check_wire_extension);
    assert!(
        replayed >= 6,
        "only {replayed} wire_extension corpus inputs found"
    );
}
