// The invariants the resume_data fuzz target checks on every input (HOSTILE 55, T1 `resume_parse`).
// Shared, via `include!`/`#[path]`, by the fuzz target and by `crates/storage/tests/fuzz_corpus.rs`,
// which replays the committed corpus.

use shoal_storage::{FileEntry, FileStamp, Layout, ResumeData};

/// The info-hash the resume data must name to be accepted (the seeds use it).
pub const RESUME_ID: [u8; 20] = [0xab; 20];

/// The layouts each input is decoded against: files around padding and an empty file with pieces lying
/// wholly in padding (6 pieces), and one file of 1000 pieces.
pub fn resume_layouts() -> [Layout; 2] {
    let small = vec![
        FileEntry::new("a", 30),
        FileEntry::padding(34),
        FileEntry::new("dir/b", 20),
        FileEntry::new("c", 0),
    ];
    [
        Layout::new(small, 16).expect("a valid layout"),
        Layout::new(vec![FileEntry::new("big", 1_000_000)], 1000).expect("a valid layout"),
    ]
}

/// Decodes `data` as resume data for each layout; whatever is accepted has the layout's shape,
/// re-encodes to the same record, and plans no trust in a piece whose files changed.
pub fn check_resume_data(data: &[u8]) {
    for layout in resume_layouts() {
        let Ok(resume) = ResumeData::from_bytes(data, &RESUME_ID, &layout) else {
            continue;
        };
        assert_eq!(resume.id, RESUME_ID);
        assert_eq!(resume.verified.len(), layout.piece_count() as usize);
        assert_eq!(resume.files.len(), layout.files().len());
        let bytes = resume.to_bytes();
        let again = ResumeData::from_bytes(&bytes, &RESUME_ID, &layout)
            .unwrap_or_else(|err| panic!("our own encoding is refused: {err}"));
        assert_eq!(again, resume);
        assert_eq!(again.to_bytes(), bytes);

        // The files as they might be found on start: as recorded, all gone, each one changed in turn, and
        // stamp lists of the wrong length (which must not panic).
        let mut states = vec![
            resume.files.clone(),
            vec![None; resume.files.len()],
            Vec::new(),
            vec![None; resume.files.len() + 3],
        ];
        for i in 0..resume.files.len() {
            let mut changed = resume.files.clone();
            changed[i] = match changed[i] {
                Some(stamp) => Some(FileStamp {
                    length: stamp.length ^ 1,
                    ..stamp
                }),
                None => Some(FileStamp {
                    length: 0,
                    mtime_ns: 0,
                }),
            };
            states.push(changed);
        }
        for now in &states {
            check_plan(&resume, &layout, now);
        }
    }
}

/// A plan trusts only recorded pieces, trusts none touching a file whose stamp is not exactly the recorded
/// one, and lists every recorded but untrusted piece once, in order, for a recheck.
fn check_plan(resume: &ResumeData, layout: &Layout, now: &[Option<FileStamp>]) {
    let plan = resume.plan(layout, now);
    assert_eq!(plan.trusted.len(), resume.verified.len());
    for (piece, (&trusted, &verified)) in plan.trusted.iter().zip(&resume.verified).enumerate() {
        assert!(
            !trusted || verified,
            "piece {piece} trusted but never verified"
        );
        let listed = plan.recheck.binary_search(&(piece as u32)).is_ok();
        assert_eq!(listed, verified && !trusted, "piece {piece}");
    }
    assert!(
        plan.recheck.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        plan.recheck
    );
    for (file, span) in layout.files().iter().enumerate() {
        if span.is_padding() {
            continue;
        }
        let unchanged =
            now.get(file).copied().flatten().is_some() && now.get(file) == resume.files.get(file);
        if !unchanged {
            for piece in layout.file_pieces(file) {
                assert!(
                    !plan.trusted[piece as usize],
                    "piece {piece} of changed file {file}"
                );
            }
        }
    }
    let all_present = layout
        .files()
        .iter()
        .zip(now)
        .all(|(span, stamp)| span.is_padding() || stamp.is_some());
    if now == resume.files.as_slice() && all_present {
        assert_eq!(plan.trusted, resume.verified);
    }
}
