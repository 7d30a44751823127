//! Replays the committed fuzz corpora (`fuzz/corpus/metainfo`, `fuzz/corpus/magnet`,
//! `fuzz/corpus/path_sanitize`: seeds and past findings) through the same checks the fuzz targets make,
//! so CI catches regressions without a fuzzer. The metainfo check also runs over every fixture in
//! `testdata/metainfo`.

#[path = "../../../fuzz/checks/metainfo.rs"]
mod metainfo_checks;

#[path = "../../../fuzz/checks/magnet.rs"]
mod magnet_checks;

#[path = "../../../fuzz/checks/path_sanitize.rs"]
mod path_checks;

use std::path::Path;

fn replay(dir: &Path, check: fn(&[u8])) -> usize {
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            check(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn replay_metainfo_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = replay(
        &root.join("fuzz/corpus/metainfo"),
        metainfo_checks::check_metainfo,
    );
    assert!(corpus >= 10, "only {corpus} metainfo corpus inputs");
    let fixtures = replay(
        &root.join("testdata/metainfo"),
        metainfo_checks::check_metainfo,
    );
    assert!(fixtures >= 9);
}

#[test]
fn replay_magnet_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = replay(
        &root.join("fuzz/corpus/magnet"),
        magnet_checks::check_magnet,
    );
    assert!(corpus >= 5, "only {corpus} magnet corpus inputs");
}

#[test]
fn replay_path_sanitize_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = replay(
        &root.join("fuzz/corpus/path_sanitize"),
        path_checks::check_path_sanitize,
    );
    assert!(corpus >= 20, "only {corpus} path_sanitize corpus inputs");
}
