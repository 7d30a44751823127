//! Where each byte of a torrent lives: the files in torrent order, laid end to end and cut into pieces.

use std::path::{Component, Path, PathBuf};

use crate::StorageError;

/// One file of a torrent, as the caller (the session, from the metainfo) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The file's path relative to the download directory, already sanitized by the metainfo parser.
    /// Storage checks it again: only plain components are accepted.
    pub path: PathBuf,
    /// The file's length in bytes.
    pub length: u64,
    /// A BEP 47 padding file: counted in piece offsets (its bytes are zeros) but never written to disk.
    pub padding: bool,
}

impl FileEntry {
    /// A regular file.
    pub fn new(path: impl Into<PathBuf>, length: u64) -> Self {
        Self {
            path: path.into(),
            length,
            padding: false,
        }
    }

    /// A BEP 47 padding file.
    pub fn padding(length: u64) -> Self {
        Self {
            path: PathBuf::from(".pad").join(length.to_string()),
            length,
            padding: true,
        }
    }
}

/// A file placed in the torrent's byte space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpan {
    entry: FileEntry,
    offset: u64,
}

impl FileSpan {
    /// The file's relative path.
    pub fn path(&self) -> &Path {
        &self.entry.path
    }

    /// Its length in bytes.
    pub fn length(&self) -> u64 {
        self.entry.length
    }

    /// Where it starts in the torrent's byte space.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether it is a padding file (never on disk).
    pub fn is_padding(&self) -> bool {
        self.entry.padding
    }
}

/// A run of bytes inside one file: part of a piece or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Index of the file in [`Layout::files`].
    pub file: usize,
    /// Offset inside the file.
    pub file_offset: u64,
    /// Offset inside the requested range (the piece or block).
    pub range_offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// The files of a torrent and its piece size: maps piece offsets to file offsets.
///
/// ```
/// use shoal_storage::{FileEntry, Layout};
///
/// let layout = Layout::new(vec![FileEntry::new("a", 10), FileEntry::new("b", 30)], 16)?;
/// assert_eq!(layout.piece_count(), 3);
/// assert_eq!(layout.piece_len(2), Some(8));
/// // Piece 0 is the 10 bytes of `a` and the first 6 of `b`.
/// let slices: Vec<_> = layout.slices(0, 0, 16).map(|s| (s.file, s.file_offset, s.len)).collect();
/// assert_eq!(slices, [(0, 0, 10), (1, 0, 6)]);
/// # Ok::<(), shoal_storage::StorageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    files: Vec<FileSpan>,
    piece_length: u64,
    total_length: u64,
    piece_count: u32,
}

impl Layout {
    /// Lays out `files` in order with pieces of `piece_length` bytes.
    ///
    /// # Errors
    /// [`StorageError::InvalidLayout`] for a zero piece length or total, more than `u32::MAX` pieces,
    /// an overflowing total, or two files on one path (the same path, or one file's path a directory of
    /// another's: one would overwrite the other); [`StorageError::UnsafePath`] for a path that is empty,
    /// absolute, or has a component other than a plain name.
    pub fn new(files: Vec<FileEntry>, piece_length: u64) -> Result<Self, StorageError> {
        if piece_length == 0 || piece_length > u64::from(u32::MAX) {
            return Err(StorageError::InvalidLayout(format!(
                "piece length {piece_length}"
            )));
        }
        let mut offset = 0u64;
        let mut spans = Vec::with_capacity(files.len());
        for entry in files {
            if !entry.padding {
                check_relative(&entry.path)?;
            }
            let next = offset.checked_add(entry.length);
            let next =
                next.ok_or_else(|| StorageError::InvalidLayout("total length overflows".into()))?;
            spans.push(FileSpan { entry, offset });
            offset = next;
        }
        if offset == 0 {
            return Err(StorageError::InvalidLayout(
                "the torrent holds no bytes".into(),
            ));
        }
        check_distinct(&spans)?;
        let piece_count = u32::try_from(offset.div_ceil(piece_length)).map_err(|_| {
            StorageError::InvalidLayout(format!("{offset} bytes make too many pieces"))
        })?;
        Ok(Self {
            files: spans,
            piece_length,
            total_length: offset,
            piece_count,
        })
    }

    /// The layout of a parsed torrent: its files in order (sanitized paths from
    /// [`Info::file_path`](shoal_metainfo::Info::file_path), BEP 47 padding kept as padding) and its
    /// piece length.
    ///
    /// # Errors
    /// [`StorageError::InvalidLayout`] for a v2-only torrent (its files each start on a piece boundary, a
    /// layout this crate does not model yet); otherwise as [`Layout::new`], though the metainfo parser
    /// has already refused what would fail there.
    ///
    /// ```
    /// let torrent = shoal_metainfo::Metainfo::from_bytes(
    ///     b"d4:infod6:lengthi40000e4:name8:file.bin12:piece lengthi32768e6:pieces40:\
    ///       AAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBee",
    /// )?;
    /// let layout = shoal_storage::Layout::from_info(&torrent.info)?;
    /// assert_eq!(layout.piece_count(), 2);
    /// assert_eq!(layout.files()[0].path(), std::path::Path::new("file.bin"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_info(info: &shoal_metainfo::Info<'_>) -> Result<Self, StorageError> {
        if !info.version.has_v1() {
            return Err(StorageError::InvalidLayout(
                "v2-only torrents are not supported yet".into(),
            ));
        }
        let files = info
            .files
            .iter()
            .map(|file| {
                if file.is_padding() {
                    FileEntry::padding(file.length)
                } else {
                    FileEntry::new(info.file_path(file), file.length)
                }
            })
            .collect();
        Self::new(files, info.piece_length)
    }

    /// The files in torrent order.
    pub fn files(&self) -> &[FileSpan] {
        &self.files
    }

    /// The number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The nominal piece length (every piece but the last).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// The sum of all file lengths, padding included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The length of piece `piece`, or `None` past the end.
    pub fn piece_len(&self, piece: u32) -> Option<u32> {
        if piece >= self.piece_count {
            return None;
        }
        let start = u64::from(piece) * self.piece_length;
        let len = self.piece_length.min(self.total_length - start);
        u32::try_from(len).ok()
    }

    /// The pieces that hold bytes of file `file` (empty for an empty file).
    pub fn file_pieces(&self, file: usize) -> std::ops::Range<u32> {
        let Some(span) = self.files.get(file) else {
            return 0..0;
        };
        if span.length() == 0 {
            return 0..0;
        }
        let first = span.offset / self.piece_length;
        let last = (span.offset + span.length() - 1) / self.piece_length;
        // Both fit: they are below piece_count, a u32.
        first as u32..last as u32 + 1
    }

    /// The file slices that make up `len` bytes at `offset` inside piece `piece`, in order. The caller
    /// checks bounds first ([`Layout::check_block`]); slices past the end are simply not produced.
    pub fn slices(&self, piece: u32, offset: u32, len: usize) -> impl Iterator<Item = Slice> + '_ {
        let start = u64::from(piece) * self.piece_length + u64::from(offset);
        let end = start.saturating_add(len as u64).min(self.total_length);
        // The first file that ends after `start`; empty files are skipped by the same test.
        let first = self
            .files
            .partition_point(|f| f.offset + f.length() <= start);
        let files = self.files[first..].iter().enumerate();
        files
            .take_while(move |(_, span)| span.offset < end)
            .filter_map(move |(i, span)| {
                let from = start.max(span.offset);
                let to = end.min(span.offset + span.length());
                // Empty files hold no bytes.
                (from < to).then(|| Slice {
                    file: first + i,
                    file_offset: from - span.offset,
                    range_offset: (from - start) as usize,
                    len: (to - from) as usize,
                })
            })
    }

    /// Checks that `len` bytes at `offset` lie inside piece `piece`.
    ///
    /// # Errors
    /// [`StorageError::OutOfRange`] otherwise.
    pub fn check_block(&self, piece: u32, offset: u32, len: usize) -> Result<(), StorageError> {
        let fits = self
            .piece_len(piece)
            .is_some_and(|piece_len| u64::from(offset) + len as u64 <= u64::from(piece_len));
        if fits {
            Ok(())
        } else {
            Err(StorageError::OutOfRange { piece, offset, len })
        }
    }
}

/// Refuses two files on one path (HOSTILE 16). The metainfo parser already refuses such torrents; this
/// re-checks for layouts built by hand. Padding files are never on disk and may share names.
fn check_distinct(spans: &[FileSpan]) -> Result<(), StorageError> {
    let mut paths: Vec<&Path> = spans
        .iter()
        .filter(|span| !span.is_padding())
        .map(FileSpan::path)
        .collect();
    // Sorted by components, a path that starts with another comes right after it (or after paths that
    // also start with it).
    paths.sort_unstable();
    match paths.windows(2).find(|pair| pair[1].starts_with(pair[0])) {
        Some(pair) => Err(StorageError::InvalidLayout(format!(
            "{} is used by two files",
            pair[0].display()
        ))),
        None => Ok(()),
    }
}

/// Refuses any path that could leave the download directory.
fn check_relative(path: &Path) -> Result<(), StorageError> {
    let unsafe_path = |reason| {
        Err(StorageError::UnsafePath {
            path: path.to_path_buf(),
            reason,
        })
    };
    if path.as_os_str().is_empty() {
        return unsafe_path("is empty");
    }
    // `Path::components` hides `.` and empty components in the middle of a path; look at the raw parts.
    for part in path.as_os_str().as_encoded_bytes().split(|&b| b == b'/') {
        match part {
            b"" => return unsafe_path("has an empty component"),
            b"." => return unsafe_path("contains `.`"),
            _ => {}
        }
    }
    for component in path.components() {
        match component {
            Component::Normal(name) if !name.as_encoded_bytes().contains(&0) => {}
            Component::Normal(_) => return unsafe_path("contains a NUL byte"),
            Component::ParentDir => return unsafe_path("contains `..`"),
            Component::CurDir => return unsafe_path("contains `.`"),
            Component::RootDir | Component::Prefix(_) => return unsafe_path("is absolute"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lengths: &[u64], piece_length: u64) -> Layout {
        let files = lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| FileEntry::new(format!("f{i}"), len))
            .collect();
        Layout::new(files, piece_length).unwrap()
    }

    #[test]
    fn slices_cross_file_boundaries_and_skip_empty_files() {
        let layout = layout(&[5, 0, 3, 8], 4);
        assert_eq!(layout.piece_count(), 4);
        let piece1: Vec<_> = layout
            .slices(1, 0, 4)
            .map(|s| (s.file, s.file_offset, s.range_offset, s.len))
            .collect();
        assert_eq!(piece1, [(0, 4, 0, 1), (2, 0, 1, 3)]);
        let last: Vec<_> = layout
            .slices(3, 0, 4)
            .map(|s| (s.file, s.file_offset, s.len))
            .collect();
        assert_eq!(last, [(3, 4, 4)]);
        assert_eq!(layout.file_pieces(0), 0..2);
        assert_eq!(layout.file_pieces(1), 0..0);
        assert_eq!(layout.file_pieces(3), 2..4);
    }

    #[test]
    fn block_bounds() {
        let layout = layout(&[10], 4);
        assert!(layout.check_block(2, 0, 2).is_ok());
        assert!(
            layout.check_block(2, 0, 3).is_err(),
            "last piece is 2 bytes"
        );
        assert!(layout.check_block(3, 0, 1).is_err(), "no piece 3");
        assert!(layout.check_block(0, u32::MAX, 1).is_err());
        assert_eq!(layout.piece_len(3), None);
    }

    #[test]
    fn rejects_bad_layouts_and_paths() {
        assert!(
            Layout::new(vec![FileEntry::new("a", 0)], 4).is_err(),
            "no bytes"
        );
        assert!(
            Layout::new(vec![FileEntry::new("a", 1)], 0).is_err(),
            "zero piece length"
        );
        assert!(
            Layout::new(
                vec![FileEntry::new("a", u64::MAX), FileEntry::new("b", 1)],
                4
            )
            .is_err()
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
        ] {
            let err = Layout::new(vec![FileEntry::new(bad, 1)], 4).unwrap_err();
            assert!(
                matches!(err, StorageError::UnsafePath { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(
            Layout::new(
                vec![FileEntry::padding(3), FileEntry::new("dir/file", 1)],
                4
            )
            .is_ok()
        );
    }

    #[test]
    fn rejects_two_files_on_one_path() {
        for (one, two) in [("a", "a"), ("d/x", "d/x"), ("a", "a/b"), ("a/b/c", "a/b")] {
            let files = vec![
                FileEntry::new(one, 1),
                FileEntry::new("between", 1),
                FileEntry::new(two, 1),
            ];
            let err = Layout::new(files, 4).unwrap_err();
            assert!(
                matches!(&err, StorageError::InvalidLayout(why) if why.ends_with("is used by two files")),
                "{one} and {two}: {err}"
            );
        }
        // Names that only share a prefix of characters, and repeated padding, are fine.
        let files = vec![
            FileEntry::new("a", 1),
            FileEntry::new("ab", 1),
            FileEntry::new("a.b/c", 1),
            FileEntry::padding(3),
            FileEntry::padding(3),
        ];
        assert!(Layout::new(files, 4).is_ok());
    }
}
