//! `Storage::relocate`: moving a torrent's files to another download directory, on the same file
//! system (renames) and onto another (copies that keep the modification time), and putting everything
//! back when the move cannot finish.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use shoal_storage::{FileEntry, Layout, Storage, StorageError, StorageOptions};

/// Three files in two folders, 16-byte pieces; `c.bin` is never written.
fn storage(root: &Path) -> Storage {
    let layout = Layout::new(
        vec![
            FileEntry::new("album/a.bin", 20),
            FileEntry::new("album/disc 2/b.bin", 12),
            FileEntry::new("album/c.bin", 16),
        ],
        16,
    )
    .unwrap();
    let storage = Storage::new(root, layout, StorageOptions::default()).unwrap();
    storage.write_block(0, 0, &[1; 16]).unwrap();
    storage.write_block(1, 0, &[2; 16]).unwrap();
    storage
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// Moves the storage from `old` to `new` and checks everything a move promises.
fn moves_whole(old: &Path, new: &Path) {
    let storage = storage(old);
    let stamps = storage.file_stamps();
    let before = [
        std::fs::read(old.join("album/a.bin")).unwrap(),
        std::fs::read(old.join("album/disc 2/b.bin")).unwrap(),
    ];
    let a_time = mtime(&old.join("album/a.bin"));
    let moved = storage.relocate(new).unwrap();
    assert_eq!(moved.root(), new);
    assert_eq!(std::fs::read(new.join("album/a.bin")).unwrap(), before[0]);
    assert_eq!(
        std::fs::read(new.join("album/disc 2/b.bin")).unwrap(),
        before[1]
    );
    assert!(
        !new.join("album/c.bin").exists(),
        "a file never written is not created"
    );
    assert!(!old.join("album").exists(), "the emptied folders are gone");
    assert!(old.exists(), "the download directory itself stays");
    assert_eq!(mtime(&new.join("album/a.bin")), a_time);
    // Same sizes and times: resume data recorded before the move still trusts the files.
    assert_eq!(moved.file_stamps(), stamps);
    let mut buf = [0; 16];
    moved.read_block(0, 0, &mut buf).unwrap();
    assert_eq!(buf, [1; 16]);
    moved.read_block(1, 0, &mut buf).unwrap();
    assert_eq!(buf, [2; 16], "a.bin's tail and b.bin");
}

#[test]
fn a_move_on_one_file_system_renames() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let inode = {
        let s = storage(old.path());
        std::fs::metadata(s.file_path(0)).unwrap().ino()
    };
    // `moves_whole` opens the same files again: the inode is the one the move must keep.
    moves_whole(old.path(), new.path());
    assert_eq!(
        std::fs::metadata(new.path().join("album/a.bin"))
            .unwrap()
            .ino(),
        inode,
        "renamed, not copied"
    );
}

#[test]
fn a_move_to_another_file_system_copies_and_keeps_the_times() {
    // /dev/shm is a tmpfs; the temporary directory is on the disk.
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir_in("/dev/shm").expect("/dev/shm exists on Linux");
    assert_ne!(
        std::fs::metadata(old.path()).unwrap().dev(),
        std::fs::metadata(new.path()).unwrap().dev(),
        "the test needs two file systems"
    );
    moves_whole(old.path(), new.path());
}

#[test]
fn a_file_in_the_way_undoes_the_whole_move() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let storage = storage(old.path());
    // a.bin moves first; b.bin's place is taken, so a.bin must come back.
    std::fs::create_dir_all(new.path().join("album/disc 2")).unwrap();
    std::fs::write(new.path().join("album/disc 2/b.bin"), b"mine").unwrap();
    let err = storage.relocate(new.path()).unwrap_err();
    assert!(err.to_string().contains("b.bin"), "{err}");
    assert_eq!(
        std::fs::read(old.path().join("album/a.bin")).unwrap()[..16],
        [1; 16]
    );
    assert_eq!(
        std::fs::read(old.path().join("album/disc 2/b.bin")).unwrap(),
        [2; 12]
    );
    assert!(!new.path().join("album/a.bin").exists());
    assert_eq!(
        std::fs::read(new.path().join("album/disc 2/b.bin")).unwrap(),
        b"mine",
        "never overwritten"
    );
    // The old storage still serves.
    let mut buf = [0; 16];
    storage.read_block(0, 0, &mut buf).unwrap();
    assert_eq!(buf, [1; 16]);
}

#[test]
fn a_symlink_at_the_destination_is_refused() {
    let (old, new, elsewhere) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let storage = storage(old.path());
    std::os::unix::fs::symlink(elsewhere.path(), new.path().join("album")).unwrap();
    let err = storage.relocate(new.path()).unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    assert!(old.path().join("album/a.bin").exists());
}

#[test]
fn the_same_place_is_no_move() {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage(dir.path());
    let same = storage.relocate(dir.path()).unwrap();
    assert_eq!(std::fs::read(same.file_path(1)).unwrap(), [2; 12]);
    // The same directory written another way.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let again = storage.relocate(dir.path().join("sub/..")).unwrap();
    assert_eq!(std::fs::read(again.file_path(1)).unwrap(), [2; 12]);
    assert!(dir.path().join("album/disc 2/b.bin").exists());
}

#[test]
fn a_sparse_file_stays_sparse_on_another_file_system() {
    // 64 MiB with 16 KiB written in its middle: a download barely begun.
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir_in("/dev/shm").expect("/dev/shm exists on Linux");
    let len = 64 << 20;
    let layout = Layout::new(vec![FileEntry::new("big.iso", len)], 16 << 10).unwrap();
    let storage = Storage::new(old.path(), layout, StorageOptions::default()).unwrap();
    storage.write_block(2000, 0, &[9; 16 << 10]).unwrap();
    let moved = storage.relocate(new.path()).unwrap();
    let path = new.path().join("big.iso");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), len);
    // 512-byte blocks: far less than the 64 MiB a full copy would allocate.
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    let mut block = [0; 16 << 10];
    moved.read_block(2000, 0, &mut block).unwrap();
    assert_eq!(block, [9; 16 << 10]);
    moved.read_block(1999, 0, &mut block).unwrap();
    assert_eq!(block, [0; 16 << 10]);
    moved.read_block(4095, 0, &mut block).unwrap();
    assert_eq!(block, [0; 16 << 10]);
}
