//! Resume data: encoding, validation of hostile or foreign records, the trust plan, atomic writes.

use shoal_storage::{FileEntry, FileStamp, Layout, ResumeData, StorageError, write_atomic};

fn layout() -> Layout {
    Layout::new(
        vec![
            FileEntry::new("a", 30),
            FileEntry::padding(2),
            FileEntry::new("b", 20),
        ],
        16,
    )
    .unwrap()
}

fn sample() -> ResumeData {
    ResumeData {
        id: vec![0xab; 20],
        verified: vec![true, false, true, true],
        files: vec![
            Some(FileStamp {
                length: 30,
                mtime_ns: 5,
            }),
            None,
            Some(FileStamp {
                length: 20,
                mtime_ns: 6,
            }),
        ],
    }
}

#[test]
fn round_trip() {
    let bytes = sample().to_bytes();
    assert_eq!(
        ResumeData::from_bytes(&bytes, &[0xab; 20], &layout()).unwrap(),
        sample()
    );
}

#[test]
fn foreign_or_corrupt_records_are_refused() {
    let bytes = sample().to_bytes();
    let refused = |bytes: &[u8], id: &[u8], layout: &Layout| {
        matches!(
            ResumeData::from_bytes(bytes, id, layout),
            Err(StorageError::Resume(_))
        )
    };
    assert!(refused(&bytes, &[0xcd; 20], &layout()), "another torrent");
    let other = Layout::new(vec![FileEntry::new("a", 100)], 16).unwrap();
    assert!(refused(&bytes, &[0xab; 20], &other), "another shape");
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            refused(&bytes[..cut], &[0xab; 20], &layout()),
            "truncated at {cut}"
        );
    }
    // Spare bits set in the bitfield (4 pieces use the top 4 bits).
    let mut spare = sample().to_bytes();
    let at = spare.windows(10).position(|w| w == b"verified1:").unwrap() + 10;
    spare[at] |= 0x01;
    assert!(refused(&spare, &[0xab; 20], &layout()));
    // A hostile file list of the wrong size.
    let mut wrong = sample();
    wrong.files.push(None);
    assert!(refused(&wrong.to_bytes(), &[0xab; 20], &layout()));
}

#[test]
fn plan_trusts_only_pieces_of_unchanged_files() {
    let data = sample();
    let same = data.files.clone();
    let plan = data.plan(&layout(), &same);
    assert_eq!(plan.trusted, data.verified);
    assert!(plan.recheck.is_empty());

    // File `b` (bytes 32..52: pieces 2 and 3) changed: its verified pieces are rechecked.
    let mut changed = same.clone();
    changed[2] = Some(FileStamp {
        length: 20,
        mtime_ns: 99,
    });
    let plan = data.plan(&layout(), &changed);
    assert_eq!(plan.trusted, [true, false, false, false]);
    assert_eq!(plan.recheck, [2, 3]);

    // File `a` deleted: pieces 0 and 1 (piece 1 was not verified, so only 0 is rechecked).
    let mut gone = same;
    gone[0] = None;
    let plan = data.plan(&layout(), &gone);
    assert_eq!(plan.trusted, [false, false, true, true]);
    assert_eq!(plan.recheck, [0]);
}

#[test]
fn atomic_write_replaces_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.resume");
    write_atomic(&path, b"old").unwrap();
    write_atomic(&path, b"new contents").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["state.resume"], "no temporary file left behind");
    let err = write_atomic(&dir.path().join("missing/dir/x"), b"x").unwrap_err();
    assert!(matches!(err, StorageError::Missing { .. }), "{err}");
}
