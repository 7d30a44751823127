//! Resume data: encoding, validation of hostile or foreign records, the trust plan, atomic writes, and
//! files changed under us between two runs (truncated, deleted, replaced), found on start and rechecked.

use std::fs;
use std::path::Path;

use shoal_storage::PieceCheck::{Bad, Good, Missing};
use shoal_storage::{
    FileEntry, FileStamp, Layout, PieceCheck, ResumeData, ResumePlan, Storage, StorageError,
    StorageOptions, write_atomic,
};

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
        unsynced_boot: None,
        uploaded: 0,
        downloaded: 0,
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

/// The transfer counters survive a round trip; resume data written before they existed reads as
/// nothing transferred; a negative or non-integer counter makes the whole record untrusted.
#[test]
fn transfer_counters_round_trip_and_default_to_zero() {
    let counted = ResumeData {
        uploaded: 5_000_000_000,
        downloaded: 1_234_567,
        ..sample()
    };
    let decoded = ResumeData::from_bytes(&counted.to_bytes(), &[0xab; 20], &layout()).unwrap();
    assert_eq!(
        (decoded.uploaded, decoded.downloaded),
        (5_000_000_000, 1_234_567)
    );

    let without = replace(
        &replace(&sample().to_bytes(), b"10:downloadedi0e", b""),
        b"8:uploadedi0e",
        b"",
    );
    let old = ResumeData::from_bytes(&without, &[0xab; 20], &layout()).unwrap();
    assert_eq!((old.uploaded, old.downloaded), (0, 0));

    for bad in [&b"8:uploadedi-1e"[..], b"8:uploaded3:one"] {
        let bytes = replace(&sample().to_bytes(), b"8:uploadedi0e", bad);
        let err = ResumeData::from_bytes(&bytes, &[0xab; 20], &layout()).unwrap_err();
        assert!(err.to_string().contains("uploaded"), "{err}");
    }
}

/// `bytes` with its one occurrence of `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("present once");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn unsynced_records_name_their_boot_and_are_worth_nothing_after_a_reboot() {
    let mut unsynced = sample();
    unsynced.unsynced_boot = Some("4f1c-boot".into());
    let decoded = ResumeData::from_bytes(&unsynced.to_bytes(), &[0xab; 20], &layout()).unwrap();
    assert_eq!(decoded, unsynced);
    assert!(decoded.trusted_after(Some("4f1c-boot")), "the same boot");
    assert!(!decoded.trusted_after(Some("9a0e-boot")), "after a reboot");
    assert!(!decoded.trusted_after(None), "boot unknown");
    // Synced records (and those written before the field existed) hold across reboots.
    assert!(sample().trusted_after(Some("9a0e-boot")));
    assert!(!sample().to_bytes().windows(7).any(|w| w == b"unsynce"));
    // A boot id that is not a string is refused like any other corruption.
    let mut bytes = unsynced.to_bytes();
    let at = bytes
        .windows(13)
        .position(|w| w == b"unsynced boot")
        .unwrap();
    bytes.splice(at + 13..at + 13 + 11, b"i7e".iter().copied());
    assert!(matches!(
        ResumeData::from_bytes(&bytes, &[0xab; 20], &layout()),
        Err(StorageError::Resume(_))
    ));
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

// --- Files changed under us between two runs (#11): detected on start and rechecked ------------------

const PIECE: usize = 16_384;
const ID: [u8; 20] = [0x5e; 20];

/// Three files over 7 pieces: `a` is bytes 0..40000 (pieces 0–2), `d/b` 40000..80000 (pieces 2–4),
/// `c` 80000..100000 (pieces 4–6).
fn disk_layout() -> Layout {
    Layout::new(
        vec![
            FileEntry::new("a", 40_000),
            FileEntry::new("d/b", 40_000),
            FileEntry::new("c", 20_000),
        ],
        PIECE as u64,
    )
    .unwrap()
}

fn content() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn hashes() -> Vec<[u8; 20]> {
    use sha1::{Digest, Sha1};
    content()
        .chunks(PIECE)
        .map(|piece| Sha1::digest(piece).into())
        .collect()
}

/// A first run: every piece written, synced and recorded as verified, as the session does on a clean
/// stop. Returns the resume data's bytes.
fn first_run(root: &Path) -> Vec<u8> {
    let storage = Storage::new(root, disk_layout(), StorageOptions::default()).unwrap();
    for (piece, bytes) in content().chunks(PIECE).enumerate() {
        storage.write_block(piece as u32, 0, bytes).unwrap();
    }
    storage.sync_all().unwrap();
    let hashes = hashes();
    assert!(
        storage
            .recheck_v1(&hashes, None, 2, &|_| {})
            .unwrap()
            .iter()
            .all(|v| *v == PieceCheck::Good)
    );
    ResumeData {
        id: ID.to_vec(),
        verified: vec![true; 7],
        files: storage.file_stamps(),
        unsynced_boot: None,
        uploaded: 0,
        downloaded: 0,
    }
    .to_bytes()
}

/// A second run, as the session starts a torrent: fresh storage, resume data decoded and planned against
/// the files as they are now, and every untrusted piece hashed. Returns the storage, the plan and the
/// final verdict of every piece.
fn second_run(root: &Path, resume: &[u8]) -> (Storage, ResumePlan, Vec<PieceCheck>) {
    let storage = Storage::new(root, disk_layout(), StorageOptions::default()).unwrap();
    let resume = ResumeData::from_bytes(resume, &ID, storage.layout()).unwrap();
    let plan = resume.plan(storage.layout(), &storage.file_stamps());
    let untrusted: Vec<u32> = (0..7).filter(|&p| !plan.trusted[p as usize]).collect();
    let mut verdicts = storage
        .recheck_v1(&hashes(), Some(&untrusted), 2, &|_| {})
        .unwrap();
    for (verdict, &trusted) in verdicts.iter_mut().zip(&plan.trusted) {
        if trusted {
            *verdict = PieceCheck::Good;
        }
    }
    (storage, plan, verdicts)
}

#[test]
fn unchanged_files_are_trusted_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    let (_, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.trusted, [true; 7]);
    assert!(plan.recheck.is_empty());
    assert_eq!(verdicts, [Good; 7]);
}

#[test]
fn a_truncated_file_is_rechecked_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    // `d/b` cut to 10000 bytes: it now ends at byte 50000, inside piece 3.
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("d/b"))
        .unwrap()
        .set_len(10_000)
        .unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(
        plan.trusted,
        [true, true, false, false, false, true, true],
        "pieces 2–4 touch `d/b`"
    );
    assert_eq!(plan.recheck, [2, 3, 4]);
    // Piece 2 (bytes 32768..49152) is still whole on disk; pieces 3 and 4 are not.
    assert_eq!(verdicts, [Good, Good, Good, Missing, Missing, Good, Good]);
    // Reading a block past the new end (file offset 10152) is an error, never a short block.
    let err = storage.read_block(3, 1_000, &mut [0; 100]).unwrap_err();
    assert!(
        matches!(&err, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err}"
    );

    // Truncated to nothing, then grown back to its old length (zeros): the length matches again, but the
    // modification time does not (set far back, so even a coarse clock cannot make it equal), so nothing
    // of `d/b` is trusted, and the hash finds the zeros.
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    let file = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("d/b"))
        .unwrap();
    file.set_len(0).unwrap();
    file.set_len(40_000).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    file.set_modified(old).unwrap();
    drop(file);
    let (_, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [2, 3, 4]);
    assert_eq!(verdicts, [Good, Good, Bad, Bad, Bad, Good, Good]);
}

#[test]
fn a_deleted_file_is_rechecked_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    fs::remove_file(dir.path().join("a")).unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [0, 1, 2]);
    assert_eq!(
        verdicts,
        [Missing, Missing, Missing, Good, Good, Good, Good]
    );
    // Downloading again recreates it.
    let data = content();
    storage.write_block(0, 0, &data[..PIECE]).unwrap();
    assert!(storage.verify_piece_v1(0, &hashes()[0]).unwrap());

    // The directory holding `d/b` deleted too.
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    fs::remove_dir_all(dir.path().join("d")).unwrap();
    let (_, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [2, 3, 4]);
    assert_eq!(
        verdicts,
        [Good, Good, Missing, Missing, Missing, Good, Good]
    );
}

#[test]
fn a_file_replaced_by_a_directory_is_rechecked_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    fs::remove_file(dir.path().join("c")).unwrap();
    fs::create_dir(dir.path().join("c")).unwrap();
    fs::write(dir.path().join("c/inside"), b"not ours").unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [4, 5, 6]);
    assert_eq!(
        verdicts,
        [Good, Good, Good, Good, Missing, Missing, Missing]
    );
    // Reading or writing it is a clear error naming the path, not a panic; the directory is left alone.
    let err = storage.read_block(5, 0, &mut [0; 16]).unwrap_err();
    assert!(
        matches!(&err, StorageError::NotAFile { path } if path.ends_with("c")),
        "{err}"
    );
    let err = storage.write_block(5, 0, &[1; 16]).unwrap_err();
    assert!(
        matches!(&err, StorageError::NotAFile { path } if path.ends_with("c")),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("not a regular file: {}", dir.path().join("c").display())
    );
    assert_eq!(fs::read(dir.path().join("c/inside")).unwrap(), b"not ours");

    // A directory of the torrent (`d`) replaced by a regular file.
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    fs::remove_dir_all(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d"), b"a file where a directory belongs").unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [2, 3, 4]);
    assert_eq!(
        verdicts,
        [Good, Good, Missing, Missing, Missing, Good, Good]
    );
    let err = storage.write_block(3, 0, &[1; 16]).unwrap_err();
    assert!(
        matches!(&err, StorageError::NotAFile { path } if path.ends_with("d")),
        "{err}"
    );
}

#[test]
fn a_file_replaced_by_a_symlink_is_rechecked_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    // The same bytes, elsewhere, behind a symlink: still not trusted, and never read through.
    let outside = tempfile::tempdir().unwrap();
    fs::rename(dir.path().join("c"), outside.path().join("c")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("c"), dir.path().join("c")).unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [4, 5, 6]);
    assert_eq!(
        verdicts,
        [Good, Good, Good, Good, Missing, Missing, Missing]
    );
    let err = storage.write_block(5, 0, &[1; 16]).unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
}

/// Regression (#11): the stamps used to be read through a symlinked directory, so the pieces of `d/b`
/// were trusted and then read from outside the download directory.
#[test]
fn a_directory_replaced_by_a_symlink_is_rechecked_and_never_read_through() {
    let dir = tempfile::tempdir().unwrap();
    let resume = first_run(dir.path());
    // `d` moved elsewhere, whole, and a symlink to it left in its place.
    let outside = tempfile::tempdir().unwrap();
    fs::rename(dir.path().join("d"), outside.path().join("d")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("d")).unwrap();
    let (storage, plan, verdicts) = second_run(dir.path(), &resume);
    assert_eq!(plan.recheck, [2, 3, 4]);
    assert_eq!(
        verdicts,
        [Good, Good, Missing, Missing, Missing, Good, Good]
    );
    let err = storage.read_block(3, 0, &mut [0; 16]).unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
    let err = storage.write_block(3, 0, &[1; 16]).unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
}
