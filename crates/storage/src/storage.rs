//! Positional reads and writes of blocks, piece hashing and rechecks over a [`Layout`] on disk.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha1::{Digest, Sha1};

use crate::{Layout, StorageError};

/// How files are created and how many stay open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// Reserve every file's full size on disk when it is created (`fallocate`), so a full disk shows up at
    /// once rather than mid-download. Off by default: files are sparse.
    pub preallocate: bool,
    /// The most files kept open at once; the least recently used is closed beyond it, so a 10,000-file
    /// torrent does not exhaust file descriptors.
    pub max_open_files: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            preallocate: false,
            max_open_files: 128,
        }
    }
}

/// The verdict of a recheck on one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PieceCheck {
    /// The data on disk matches the piece hash.
    Good,
    /// The data is there but does not match.
    Bad,
    /// A file holding part of the piece is missing or too short.
    Missing,
}

impl PieceCheck {
    fn from_u8(value: u8) -> Self {
        match value {
            v if v == Self::Good as u8 => Self::Good,
            v if v == Self::Bad as u8 => Self::Bad,
            _ => Self::Missing,
        }
    }
}

/// Progress of a recheck, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecheckProgress {
    /// Pieces checked so far.
    pub checked: u32,
    /// Pieces to check in all.
    pub total: u32,
    /// Bytes read so far.
    pub bytes: u64,
}

/// A torrent's files under a download directory.
///
/// All methods take `&self` and may be called from several threads: file handles are shared, and IO
/// happens outside the handle cache's lock.
///
/// ```
/// use shoal_storage::{FileEntry, Layout, Storage, StorageOptions};
///
/// let dir = tempfile::tempdir()?;
/// let layout = Layout::new(vec![FileEntry::new("album/a.flac", 20), FileEntry::new("album/b.flac", 12)], 16)?;
/// let storage = Storage::new(dir.path(), layout, StorageOptions::default())?;
/// storage.write_block(0, 0, &[7; 16])?;
/// storage.write_block(1, 0, &[9; 16])?;
/// let mut buf = [0; 8];
/// storage.read_block(1, 0, &mut buf)?;
/// assert_eq!(buf, [9; 8]);
/// assert_eq!(std::fs::read(dir.path().join("album/b.flac"))?, [9; 12]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    layout: Layout,
    options: StorageOptions,
    handles: Mutex<Handles>,
}

/// The open files, with a use counter for least-recently-used eviction.
#[derive(Debug, Default)]
struct Handles {
    open: HashMap<usize, (Arc<File>, u64, bool)>,
    clock: u64,
}

impl Storage {
    /// Storage for `layout` under `root`, which is created if missing. Files are created on first write.
    ///
    /// # Errors
    /// If `root` cannot be created.
    pub fn new(
        root: impl Into<PathBuf>,
        layout: Layout,
        options: StorageOptions,
    ) -> Result<Self, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| StorageError::io("create directory", &root, e))?;
        Ok(Self {
            root,
            layout,
            options,
            handles: Mutex::default(),
        })
    }

    /// The layout this storage serves.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The download directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of file `file`.
    pub fn file_path(&self, file: usize) -> PathBuf {
        self.root.join(self.layout.files()[file].path())
    }

    /// Writes `data` at `offset` in piece `piece`. Bytes that fall in padding files are dropped.
    ///
    /// # Errors
    /// [`StorageError::OutOfRange`] if the block is not inside the piece, otherwise the IO failure
    /// ([`StorageError::DiskFull`], [`StorageError::PermissionDenied`], …).
    pub fn write_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        self.layout.check_block(piece, offset, data.len())?;
        for slice in self.layout.slices(piece, offset, data.len()) {
            if self.layout.files()[slice.file].is_padding() {
                continue;
            }
            let file = self.handle(slice.file, true)?;
            let bytes = &data[slice.range_offset..slice.range_offset + slice.len];
            file.write_all_at(bytes, slice.file_offset)
                .map_err(|e| StorageError::io("write", &self.file_path(slice.file), e))?;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` in piece `piece`. Padding reads as zeros.
    ///
    /// # Errors
    /// [`StorageError::OutOfRange`], [`StorageError::Missing`] for a file not yet created, or the IO
    /// failure; a file shorter than the layout says is an `Io` error of kind `UnexpectedEof`, so a block
    /// that could not be fully read is never handed out.
    pub fn read_block(&self, piece: u32, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        self.layout.check_block(piece, offset, buf.len())?;
        for slice in self.layout.slices(piece, offset, buf.len()) {
            let out = &mut buf[slice.range_offset..slice.range_offset + slice.len];
            if self.layout.files()[slice.file].is_padding() {
                out.fill(0);
                continue;
            }
            let file = self.handle(slice.file, false)?;
            file.read_exact_at(out, slice.file_offset)
                .map_err(|e| StorageError::io("read", &self.file_path(slice.file), e))?;
        }
        Ok(())
    }

    /// The SHA-1 of piece `piece` as it is on disk (BEP 3 piece hash), read into `buf`.
    ///
    /// # Errors
    /// As [`Storage::read_block`].
    pub fn hash_piece_v1(&self, piece: u32, buf: &mut Vec<u8>) -> Result<[u8; 20], StorageError> {
        let len = self
            .layout
            .piece_len(piece)
            .ok_or(StorageError::OutOfRange {
                piece,
                offset: 0,
                len: 0,
            })?;
        buf.resize(len as usize, 0);
        self.read_block(piece, 0, buf)?;
        Ok(Sha1::digest(buf.as_slice()).into())
    }

    /// Checks piece `piece` against its expected SHA-1 (BEP 3).
    ///
    /// # Errors
    /// As [`Storage::read_block`].
    pub fn verify_piece_v1(&self, piece: u32, expected: &[u8; 20]) -> Result<bool, StorageError> {
        Ok(self.hash_piece_v1(piece, &mut Vec::new())? == *expected)
    }

    /// Rechecks `pieces` (all pieces when `None`) against their SHA-1 hashes on `threads` threads, calling
    /// `progress` as it goes. Returns one verdict per piece of the torrent; pieces not checked are
    /// [`PieceCheck::Missing`].
    ///
    /// # Errors
    /// An IO failure other than a missing or short file (which makes a piece `Missing`), or hashes of the
    /// wrong count.
    pub fn recheck_v1(
        &self,
        hashes: &[[u8; 20]],
        pieces: Option<&[u32]>,
        threads: usize,
        progress: &(dyn Fn(RecheckProgress) + Sync),
    ) -> Result<Vec<PieceCheck>, StorageError> {
        let count = self.layout.piece_count();
        if hashes.len() != count as usize {
            return Err(StorageError::InvalidLayout(format!(
                "{} piece hashes for {count} pieces",
                hashes.len()
            )));
        }
        let all: Vec<u32>;
        let pieces = match pieces {
            Some(pieces) => pieces,
            None => {
                all = (0..count).collect();
                &all
            }
        };
        let sizes = self.file_sizes();
        let next = AtomicU32::new(0);
        let checked = AtomicU32::new(0);
        let bytes = AtomicU64::new(0);
        let total = pieces.len() as u32;
        let verdicts: Vec<AtomicU8> = (0..count)
            .map(|_| AtomicU8::new(PieceCheck::Missing as u8))
            .collect();
        let worker = || -> Result<(), StorageError> {
            let mut buf = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&piece) = pieces.get(i as usize) else {
                    return Ok(());
                };
                let Some(&expected) = hashes.get(piece as usize) else {
                    continue;
                };
                let verdict = if self.piece_on_disk(piece, &sizes) {
                    match self.hash_piece_v1(piece, &mut buf) {
                        Ok(hash) if hash == expected => PieceCheck::Good,
                        Ok(_) => PieceCheck::Bad,
                        // Changed under us between the size check and the read.
                        Err(StorageError::Missing { .. }) => PieceCheck::Missing,
                        Err(StorageError::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                        {
                            PieceCheck::Missing
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    PieceCheck::Missing
                };
                verdicts[piece as usize].store(verdict as u8, Ordering::Relaxed);
                let piece_bytes = u64::from(self.layout.piece_len(piece).unwrap_or(0));
                let bytes = bytes.fetch_add(piece_bytes, Ordering::Relaxed) + piece_bytes;
                let checked = checked.fetch_add(1, Ordering::Relaxed) + 1;
                progress(RecheckProgress {
                    checked,
                    total,
                    bytes,
                });
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1)).map(|_| scope.spawn(worker)).collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("recheck worker panicked"))
        })?;
        Ok(verdicts
            .into_iter()
            .map(|v| PieceCheck::from_u8(v.into_inner()))
            .collect())
    }

    /// Creates the torrent's empty files, which no block ever touches (the others appear on first write).
    ///
    /// # Errors
    /// The first failure to create one.
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        for (index, span) in self.layout.files().iter().enumerate() {
            if span.length() == 0 && !span.is_padding() {
                self.open(index, true)?;
            }
        }
        Ok(())
    }

    /// Flushes every open file to disk (`fsync`). Call before recording pieces as verified in resume data.
    ///
    /// # Errors
    /// The first sync failure.
    pub fn sync_all(&self) -> Result<(), StorageError> {
        let open: Vec<(usize, Arc<File>)> = {
            let handles = self.handles.lock().expect("no panics while held");
            handles
                .open
                .iter()
                .filter(|(_, (_, _, write))| *write)
                .map(|(&i, (f, _, _))| (i, f.clone()))
                .collect()
        };
        for (index, file) in open {
            file.sync_all()
                .map_err(|e| StorageError::io("sync", &self.file_path(index), e))?;
        }
        Ok(())
    }

    /// Closes every open file (they reopen on demand).
    pub fn close_all(&self) {
        self.handles
            .lock()
            .expect("no panics while held")
            .open
            .clear();
    }

    /// Moves the torrent's files to the same relative places under `root` and returns the storage
    /// there; this one is left pointing at the old place (drop it).
    ///
    /// Each file is renamed, or, when `root` is on another file system, copied, synced and then
    /// removed; a copy keeps the modification time, so resume data still trusts it. Files that do not
    /// exist yet (skipped, not yet written) are left alone; directories the move emptied are removed.
    /// Destination paths are checked like every write (no symlinks on the way), and a file already at
    /// a destination is never overwritten. On any failure the files already moved are put back and the
    /// error returned: the data is always whole in one place.
    ///
    /// Nothing else may use this storage while it runs: the caller stops its IO first.
    ///
    /// ```
    /// use shoal_storage::{FileEntry, Layout, Storage, StorageOptions};
    ///
    /// let (old, new) = (tempfile::tempdir()?, tempfile::tempdir()?);
    /// let layout = Layout::new(vec![FileEntry::new("album/a.flac", 16)], 16)?;
    /// let storage = Storage::new(old.path(), layout, StorageOptions::default())?;
    /// storage.write_block(0, 0, &[7; 16])?;
    /// let moved = storage.relocate(new.path())?;
    /// assert_eq!(std::fs::read(new.path().join("album/a.flac"))?, [7; 16]);
    /// assert!(!old.path().join("album").exists());
    /// let mut buf = [0; 16];
    /// moved.read_block(0, 0, &mut buf)?;
    /// assert_eq!(buf, [7; 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first failure (a full destination is [`StorageError::DiskFull`]), after the rollback.
    pub fn relocate(&self, root: impl Into<PathBuf>) -> Result<Storage, StorageError> {
        let target = Storage::new(root, self.layout.clone(), self.options.clone())?;
        let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if same(&target.root, &self.root) {
            return Ok(target);
        }
        self.close_all();
        let mut moved = Vec::new();
        if let Err(cause) = self.move_files_to(&target, &mut moved) {
            // Back where they were, newest first.
            let mut stranded = None;
            for &index in moved.iter().rev() {
                if move_file(&target.file_path(index), &self.file_path(index)).is_err() {
                    stranded.get_or_insert(target.file_path(index));
                }
            }
            // The folders made for them, the failed file's included.
            target.remove_empty_dirs(0..self.layout.files().len());
            return Err(match stranded {
                None => cause,
                Some(stranded) => StorageError::Stranded {
                    cause: Box::new(cause),
                    stranded,
                },
            });
        }
        self.remove_empty_dirs(moved);
        Ok(target)
    }

    /// Moves every existing file to `target`'s place for it, recording each index moved.
    fn move_files_to(&self, target: &Storage, moved: &mut Vec<usize>) -> Result<(), StorageError> {
        for (index, span) in self.layout.files().iter().enumerate() {
            if span.is_padding() {
                continue;
            }
            match self.check_parents(span.path(), false) {
                Ok(()) => {}
                Err(StorageError::Missing { .. }) => continue,
                Err(e) => return Err(e),
            }
            let from = self.file_path(index);
            match std::fs::symlink_metadata(&from) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => return Err(StorageError::NotAFile { path: from }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("stat", &from, e)),
            }
            target.check_parents(span.path(), true)?;
            let to = target.file_path(index);
            if std::fs::symlink_metadata(&to).is_ok() {
                return Err(StorageError::io(
                    "move",
                    &to,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a file is already there",
                    ),
                ));
            }
            move_file(&from, &to)?;
            moved.push(index);
        }
        Ok(())
    }

    /// Removes the directories above the given files, under the root, that are now empty.
    fn remove_empty_dirs(&self, files: impl IntoIterator<Item = usize>) {
        for index in files {
            let mut dir = self.file_path(index);
            while dir.pop() && dir.starts_with(&self.root) && dir != self.root {
                // Fails (and stops) at the first directory that still holds something.
                if std::fs::remove_dir(&dir).is_err() {
                    break;
                }
            }
        }
    }

    /// Each file's current size and modification time, `None` where it does not exist or is not a
    /// regular file reached without symlinks (padding: `None`).
    pub fn file_stamps(&self) -> Vec<Option<crate::FileStamp>> {
        self.layout
            .files()
            .iter()
            .enumerate()
            .map(|(i, span)| {
                if span.is_padding() {
                    return None;
                }
                // A directory swapped for a symlink would show the stamps of whatever it points to.
                self.check_parents(span.path(), false).ok()?;
                let meta = std::fs::symlink_metadata(self.file_path(i))
                    .ok()
                    .filter(|m| m.is_file())?;
                let mtime = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some(crate::FileStamp {
                    length: meta.len(),
                    mtime_ns: mtime.as_nanos() as u64,
                })
            })
            .collect()
    }

    /// Current size of each file (`None`: missing, or padding).
    fn file_sizes(&self) -> Vec<Option<u64>> {
        self.file_stamps()
            .into_iter()
            .map(|stamp| stamp.map(|s| s.length))
            .collect()
    }

    /// Whether every non-padding byte of `piece` lies inside files that exist and are long enough.
    fn piece_on_disk(&self, piece: u32, sizes: &[Option<u64>]) -> bool {
        let len = self.layout.piece_len(piece).unwrap_or(0) as usize;
        self.layout.slices(piece, 0, len).all(|slice| {
            self.layout.files()[slice.file].is_padding()
                || sizes[slice.file]
                    .is_some_and(|size| size >= slice.file_offset + slice.len as u64)
        })
    }

    /// The open handle of file `index`, opening it (and creating it for writes) if needed.
    fn handle(&self, index: usize, write: bool) -> Result<Arc<File>, StorageError> {
        let mut handles = self.handles.lock().expect("no panics while held");
        handles.clock += 1;
        let now = handles.clock;
        if let Some((file, last_use, writable)) = handles.open.get_mut(&index)
            && (*writable || !write)
        {
            *last_use = now;
            return Ok(file.clone());
        }
        let file = Arc::new(self.open(index, write)?);
        if handles.open.len() >= self.options.max_open_files.max(1)
            && !handles.open.contains_key(&index)
        {
            let oldest = handles
                .open
                .iter()
                .min_by_key(|(_, (_, last_use, _))| *last_use)
                .map(|(&i, _)| i);
            if let Some(oldest) = oldest {
                handles.open.remove(&oldest);
            }
        }
        handles.open.insert(index, (file.clone(), now, write));
        Ok(file)
    }

    /// Opens file `index` without following symlinks, checking its directories inside the root first (for
    /// writes, creating them), refusing any symlink on the way. Anything but a regular file is
    /// [`StorageError::NotAFile`].
    fn open(&self, index: usize, write: bool) -> Result<File, StorageError> {
        let span = &self.layout.files()[index];
        let path = self.file_path(index);
        self.check_parents(span.path(), write)?;
        let mut options = OpenOptions::new();
        // NOFOLLOW: never through a symlink planted at the file's own name (the parents were checked).
        // NONBLOCK: a FIFO put where a file belongs would otherwise block the open until a writer came;
        // with it the open returns and the regular-file check below refuses it. Regular files ignore it.
        options.read(true).custom_flags(
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
        );
        if write {
            options.write(true).create(true);
        }
        let file = options
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile { path });
        }
        if write && meta.len() < span.length() {
            if self.options.preallocate {
                rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, span.length())
                    .map_err(|e| StorageError::io("preallocate", &path, e.into()))?;
            } else {
                // Sparse: the full size without the blocks.
                file.set_len(span.length())
                    .map_err(|e| StorageError::io("resize", &path, e))?;
            }
        }
        Ok(file)
    }

    /// Checks the directories above `relative` under the root, one by one, refusing symlinks and files;
    /// missing ones are created when `create` is set, and are [`StorageError::Missing`] otherwise. A
    /// directory of the torrent replaced by a symlink is thus never read or written through.
    fn check_parents(&self, relative: &Path, create: bool) -> Result<(), StorageError> {
        let mut dir = self.root.clone();
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        for component in parent.components() {
            dir.push(component);
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StorageError::UnsafePath {
                        path: dir,
                        reason: "is a symbolic link",
                    });
                }
                Ok(_) => return Err(StorageError::NotAFile { path: dir }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => {
                    return Err(StorageError::Missing { path: dir });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(StorageError::io("create directory", &dir, e)),
                    }
                }
                Err(e) => return Err(StorageError::io("stat", &dir, e)),
            }
        }
        Ok(())
    }
}

/// Moves one file: a rename, or across file systems a copy (synced, with the original's modification
/// time) and then removal of the original. A partial copy is removed.
fn move_file(from: &Path, to: &Path) -> Result<(), StorageError> {
    match std::fs::rename(from, to) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {}
        Err(e) => return Err(StorageError::io("move", from, e)),
    }
    let copied = (|| {
        let source = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(from)
            .map_err(|e| StorageError::io("open", from, e))?;
        let meta = source
            .metadata()
            .map_err(|e| StorageError::io("stat", from, e))?;
        let modified = meta
            .modified()
            .map_err(|e| StorageError::io("stat", from, e))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(to)
            .map_err(|e| StorageError::io("create", to, e))?;
        copy_sparse(&source, &file, meta.len()).map_err(|e| StorageError::io("copy", to, e))?;
        file.set_modified(modified)
            .map_err(|e| StorageError::io("set the time of", to, e))?;
        file.sync_all().map_err(|e| StorageError::io("sync", to, e))
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    std::fs::remove_file(from).map_err(|e| StorageError::io("remove", from, e))
}

/// Copies the `len` bytes of `source` into the empty `target`, keeping holes: only the ranges the file
/// system reports as data (`SEEK_DATA`/`SEEK_HOLE`) are read and written, so a half-downloaded sparse
/// file stays sparse. Where the file system cannot say, everything is data.
fn copy_sparse(source: &File, target: &File, len: u64) -> std::io::Result<()> {
    use rustix::fs::{SeekFrom, seek};
    target.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let start = match seek(source, SeekFrom::Data(at)) {
            Ok(start) => start,
            // Nothing but a hole from `at` to the end.
            Err(rustix::io::Errno::NXIO) => break,
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => at,
            Err(e) => return Err(e.into()),
        };
        let end = match seek(source, SeekFrom::Hole(start)) {
            Ok(end) => end.min(len),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => len,
            Err(e) => return Err(e.into()),
        };
        let mut pos = start;
        while pos < end {
            let want = usize::try_from(end - pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let got = source.read_at(&mut buf[..want], pos)?;
            if got == 0 {
                // The file shrank under us: what is left stays a hole.
                return Ok(());
            }
            target.write_all_at(&buf[..got], pos)?;
            pos += got as u64;
        }
        at = end.max(start + 1);
    }
    Ok(())
}
