//! Storage against a real file system: layout across files, padding, path safety, handle cache,
//! recheck verdicts and typed errors.

use std::fs;
use std::path::Path;

use sha1::{Digest, Sha1};
use shoal_storage::{FileEntry, Layout, PieceCheck, Storage, StorageError, StorageOptions};

/// Deterministic payload bytes.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn piece_hashes(data: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
    data.chunks(piece_length)
        .map(|piece| Sha1::digest(piece).into())
        .collect()
}

/// Writes `data` through storage in 16 KiB blocks (the last block of each piece shorter).
fn write_all(storage: &Storage, data: &[u8]) {
    let piece_length = storage.layout().piece_length() as usize;
    for (piece, chunk) in data.chunks(piece_length).enumerate() {
        for (block, bytes) in chunk.chunks(16_384).enumerate() {
            storage
                .write_block(piece as u32, (block * 16_384) as u32, bytes)
                .unwrap();
        }
    }
}

#[test]
fn multi_file_round_trip_across_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = [1, 40_000, 0, 70_001, 5];
    let files = lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| FileEntry::new(format!("d{}/f{i}", i % 2), len))
        .collect();
    let layout = Layout::new(files, 32_768).unwrap();
    let data = payload(lengths.iter().sum::<u64>() as usize, 3);
    let storage = Storage::new(dir.path(), layout, StorageOptions::default()).unwrap();
    write_all(&storage, &data);
    storage.create_empty_files().unwrap();

    let mut offset = 0;
    for (i, &len) in lengths.iter().enumerate() {
        let on_disk = fs::read(dir.path().join(format!("d{}/f{i}", i % 2))).unwrap();
        assert_eq!(on_disk, data[offset..offset + len as usize], "file {i}");
        offset += len as usize;
    }
    // A block read back across two files.
    let mut block = vec![0; 100];
    storage
        .read_block(1, 40_001 - 32_768 - 50, &mut block)
        .unwrap();
    assert_eq!(block, data[40_001 - 50..40_001 + 50]);
    let hashes = piece_hashes(&data, 32_768);
    let verdicts = storage.recheck_v1(&hashes, None, 2, &|_| {}).unwrap();
    assert!(
        verdicts.iter().all(|v| *v == PieceCheck::Good),
        "{verdicts:?}"
    );
}

#[test]
fn padding_is_never_written_and_reads_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        FileEntry::new("a", 10),
        FileEntry::padding(6),
        FileEntry::new("b", 16),
    ];
    let storage = Storage::new(
        dir.path(),
        Layout::new(files, 16).unwrap(),
        StorageOptions::default(),
    )
    .unwrap();
    let mut data = payload(32, 9);
    data[10..16].fill(0);
    storage.write_block(0, 0, &data[..16]).unwrap();
    storage.write_block(1, 0, &data[16..]).unwrap();
    let mut listing: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    listing.sort();
    assert_eq!(listing, ["a", "b"], "no padding file on disk");
    let mut piece = vec![0xff; 16];
    storage.read_block(0, 0, &mut piece).unwrap();
    assert_eq!(piece, data[..16]);
    assert!(
        storage
            .verify_piece_v1(0, &Sha1::digest(&data[..16]).into())
            .unwrap()
    );
}

#[test]
fn recheck_reports_good_bad_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![FileEntry::new("one", 48_000), FileEntry::new("two", 48_000)];
    let layout = Layout::new(files, 16_384).unwrap();
    let data = payload(96_000, 1);
    let hashes = piece_hashes(&data, 16_384);
    let storage = Storage::new(dir.path(), layout, StorageOptions::default()).unwrap();
    write_all(&storage, &data);
    storage.sync_all().unwrap();
    storage.close_all();
    // Corrupt one byte of piece 1, and remove the second file.
    let mut one = fs::read(dir.path().join("one")).unwrap();
    one[20_000] ^= 1;
    fs::write(dir.path().join("one"), one).unwrap();
    fs::remove_file(dir.path().join("two")).unwrap();

    let seen = std::sync::atomic::AtomicU32::new(0);
    let verdicts = storage
        .recheck_v1(&hashes, None, 3, &|p| {
            assert!(p.checked <= p.total);
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(seen.into_inner(), 6, "one progress call per piece");
    use PieceCheck::*;
    // Piece 2 straddles both files: missing with the second file gone.
    assert_eq!(verdicts, [Good, Bad, Missing, Missing, Missing, Missing]);
    // Only some pieces, on request.
    let verdicts = storage
        .recheck_v1(&hashes, Some(&[0, 1]), 1, &|_| {})
        .unwrap();
    assert_eq!(&verdicts[..2], [Good, Bad]);
}

#[test]
fn handle_cache_stays_within_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..50)
        .map(|i| FileEntry::new(format!("many/{i:02}"), 100))
        .collect();
    let options = StorageOptions {
        max_open_files: 3,
        ..StorageOptions::default()
    };
    let storage = Storage::new(dir.path(), Layout::new(files, 1000).unwrap(), options).unwrap();
    let data = payload(5000, 4);
    write_all(&storage, &data);
    let open = fs::read_dir("/proc/self/fd").unwrap().count();
    for piece in 0..5 {
        let mut buf = vec![0; 1000];
        storage.read_block(piece, 0, &mut buf).unwrap();
        assert_eq!(buf, data[piece as usize * 1000..][..1000]);
    }
    let after = fs::read_dir("/proc/self/fd").unwrap().count();
    assert!(after <= open + 3, "descriptors grew from {open} to {after}");
}

#[test]
fn symlinks_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().join("download");
    fs::create_dir(&root).unwrap();
    // A planted directory symlink pointing outside, and a planted file symlink.
    std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), root.join("file")).unwrap();
    let files = vec![FileEntry::new("evil/x", 4), FileEntry::new("file", 4)];
    let storage = Storage::new(
        &root,
        Layout::new(files, 4).unwrap(),
        StorageOptions::default(),
    )
    .unwrap();
    let err = storage.write_block(0, 0, b"abcd").unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
    let err = storage.write_block(1, 0, b"abcd").unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
}

#[test]
fn a_directory_where_a_file_belongs_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("f")).unwrap();
    let storage = Storage::new(
        dir.path(),
        Layout::new(vec![FileEntry::new("f", 4)], 4).unwrap(),
        Default::default(),
    )
    .unwrap();
    let err = storage.write_block(0, 0, b"abcd").unwrap_err();
    assert!(matches!(err, StorageError::NotAFile { .. }), "{err}");
    let err = storage.read_block(0, 0, &mut [0; 4]).unwrap_err();
    assert!(matches!(err, StorageError::NotAFile { .. }), "{err}");
}

#[test]
fn short_and_missing_files_are_errors_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        Layout::new(vec![FileEntry::new("f", 8)], 8).unwrap(),
        Default::default(),
    )
    .unwrap();
    assert!(matches!(
        storage.read_block(0, 0, &mut [0; 8]),
        Err(StorageError::Missing { .. })
    ));
    storage.write_block(0, 0, &[1; 8]).unwrap();
    storage.close_all();
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("f"))
        .unwrap()
        .set_len(4)
        .unwrap();
    let err = storage.read_block(0, 0, &mut [0; 8]).unwrap_err();
    assert!(
        matches!(&err, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err}"
    );
    assert!(matches!(
        storage.write_block(0, 4, &[0; 5]),
        Err(StorageError::OutOfRange { .. })
    ));
}

/// A 64 KiB tmpfs: writing past it must give `DiskFull`, sparse or preallocated. Needs root (as CI is).
#[test]
fn disk_full_is_a_typed_error() {
    let mount = tempfile::tempdir().unwrap();
    mount_tmpfs(mount.path(), "64k");
    let result = std::panic::catch_unwind(|| {
        for preallocate in [false, true] {
            let root = mount.path().join(format!("p{preallocate}"));
            let options = StorageOptions {
                preallocate,
                ..Default::default()
            };
            let layout = Layout::new(vec![FileEntry::new("big", 1 << 20)], 16_384).unwrap();
            let storage = Storage::new(&root, layout, options).unwrap();
            let block = vec![7; 16_384];
            let err = (0..64)
                .find_map(|piece| storage.write_block(piece, 0, &block).err())
                .expect("the disk fills up");
            assert!(
                matches!(err, StorageError::DiskFull { .. }),
                "preallocate {preallocate}: {err}"
            );
            drop(storage);
            fs::remove_dir_all(&root).unwrap();
        }
    });
    let _ = std::process::Command::new("umount")
        .arg(mount.path())
        .status();
    result.unwrap();
}

fn mount_tmpfs(path: &Path, size: &str) {
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(path)
        .status()
        .expect("running mount");
    assert!(
        status.success(),
        "mounting a tmpfs needs root (cargo xtask ci runs as root)"
    );
}

/// A read-only file system: writing is refused with `PermissionDenied` (root bypasses mode bits, so the
/// test uses a read-only tmpfs mount instead of `chmod`).
#[test]
fn read_only_file_system_is_permission_denied() {
    let mount = tempfile::tempdir().unwrap();
    mount_tmpfs(mount.path(), "64k");
    fs::create_dir(mount.path().join("data")).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(mount.path())
        .status()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        assert!(status.success(), "remounting read-only");
        let layout = Layout::new(vec![FileEntry::new("f", 16)], 16).unwrap();
        let storage =
            Storage::new(mount.path().join("data"), layout, StorageOptions::default()).unwrap();
        let err = storage.write_block(0, 0, &[1; 16]).unwrap_err();
        assert!(
            matches!(err, StorageError::PermissionDenied { .. }),
            "{err}"
        );
    });
    let _ = std::process::Command::new("umount")
        .arg(mount.path())
        .status();
    result.unwrap();
}

/// A file replaced by a FIFO under us: opening it to read must not wait for a writer that never comes
/// (a plain `open(O_RDONLY)` on a FIFO blocks), but fail as "not a regular file".
#[test]
fn a_fifo_where_a_file_belongs_is_a_typed_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        Layout::new(vec![FileEntry::new("f", 4)], 4).unwrap(),
        Default::default(),
    )
    .unwrap();
    storage.write_block(0, 0, b"abcd").unwrap();
    storage.close_all();
    let path = dir.path().join("f");
    fs::remove_file(&path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let storage = std::sync::Arc::new(storage);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = storage.clone();
    // On a thread, so that a regression fails this test instead of hanging the suite.
    std::thread::spawn(move || {
        let read = reader.read_block(0, 0, &mut [0; 4]);
        let write = reader.write_block(0, 0, b"abcd");
        let _ = tx.send((read, write));
    });
    let (read, write) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("opening a FIFO blocked");
    assert!(
        matches!(read, Err(StorageError::NotAFile { .. })),
        "{read:?}"
    );
    assert!(
        matches!(write, Err(StorageError::NotAFile { .. })),
        "{write:?}"
    );
    assert_eq!(storage.file_stamps(), [None], "a FIFO has no stamp");
}
