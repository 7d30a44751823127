//! Replays the committed fuzz corpus (`fuzz/corpus/resume_data`: seeds and past findings) through the
//! same checks the fuzz target makes, so CI catches regressions without a fuzzer; the check also runs
//! over resume data this crate writes for a real download.

#[path = "../../../fuzz/checks/resume_data.rs"]
mod resume_checks;

use std::path::Path;

use resume_checks::{RESUME_ID, check_resume_data, resume_layouts};
use shoal_storage::{ResumeData, Storage, StorageOptions};

#[test]
fn replay_resume_data_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/resume_data");
    let mut replayed = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            check_resume_data(&bytes);
            replayed += 1;
            accepted += resume_layouts()
                .iter()
                .filter(|layout| ResumeData::from_bytes(&bytes, &RESUME_ID, layout).is_ok())
                .count();
        }
    }
    assert!(replayed >= 15, "only {replayed} resume_data corpus inputs");
    // The seeds hold valid records for both layouts, so the checks past decoding run too.
    assert!(accepted >= 5, "only {accepted} accepted inputs");
    // The seeds with transfer counters: one valid, one with bad ones.
    let seed = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let small = &resume_layouts()[0];
    let counted = ResumeData::from_bytes(&seed("seed-small-counters"), &RESUME_ID, small).unwrap();
    assert_eq!(
        (counted.uploaded, counted.downloaded),
        (i64::MAX as u64, 123_456_789)
    );
    assert!(
        ResumeData::from_bytes(&seed("seed-hostile-negative-counter"), &RESUME_ID, small).is_err()
    );
}

/// Resume data recorded from files really written, partly verified.
#[test]
fn check_holds_for_recorded_resume_data() {
    for layout in resume_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), layout.clone(), StorageOptions::default()).unwrap();
        let len = layout.piece_len(0).unwrap() as usize;
        storage.write_block(0, 0, &vec![7; len]).unwrap();
        storage.create_empty_files().unwrap();
        storage.sync_all().unwrap();
        let mut verified = vec![false; layout.piece_count() as usize];
        verified[0] = true;
        let resume = ResumeData {
            id: RESUME_ID.to_vec(),
            verified,
            files: storage.file_stamps(),
            unsynced_boot: None,
            uploaded: 0,
            downloaded: 0,
        };
        check_resume_data(&resume.to_bytes());
        assert_eq!(
            ResumeData::from_bytes(&resume.to_bytes(), &RESUME_ID, &layout).unwrap(),
            resume
        );
    }
}
