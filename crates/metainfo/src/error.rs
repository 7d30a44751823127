//! Why a `.torrent` file was refused: [`MetainfoError`] names the field and the byte offset, and its
//! [`MetainfoErrorKind`] says what was wrong.

use std::fmt;

/// A `.torrent` file that cannot be used, with the field and the byte offset where the problem is.
///
/// Displays as one line, for example
/// ``invalid torrent: `info.piece length` at byte 42: 1000 is not a power of two (required for v2)``.
///
/// ```
/// use shoal_metainfo::{Metainfo, MetainfoErrorKind};
///
/// let err = Metainfo::from_bytes(b"d4:infod4:name1:a12:piece lengthi-1e6:pieces0:6:lengthi1eee")
///     .unwrap_err();
/// assert_eq!(err.field(), "info.piece length");
/// assert_eq!(err.offset(), 32);
/// assert!(matches!(err.kind(), MetainfoErrorKind::PieceLength(-1, _)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetainfoError {
    field: String,
    offset: usize,
    kind: MetainfoErrorKind,
}

impl MetainfoError {
    pub(crate) fn new(field: impl Into<String>, offset: usize, kind: MetainfoErrorKind) -> Self {
        Self {
            field: field.into(),
            offset,
            kind,
        }
    }

    /// The field at fault, as a dotted path from the root: `info.files[3].path[1]`; empty for bencode errors.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The byte offset in the input where the faulty value (or its enclosing dictionary) starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    pub fn kind(&self) -> &MetainfoErrorKind {
        &self.kind
    }
}

impl From<shoal_bencode::DecodeError> for MetainfoError {
    fn from(err: shoal_bencode::DecodeError) -> Self {
        Self {
            field: String::new(),
            offset: err.offset(),
            kind: MetainfoErrorKind::Bencode(err),
        }
    }
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            MetainfoErrorKind::Bencode(err) => write!(f, "invalid torrent: {err}"),
            kind => write!(
                f,
                "invalid torrent: `{}` at byte {}: {kind}",
                self.field, self.offset
            ),
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            MetainfoErrorKind::Bencode(err) => Some(err),
            _ => None,
        }
    }
}

/// What was wrong with a `.torrent` file; [`MetainfoError`] adds where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoErrorKind {
    /// The file is not valid bencode (the decoder's error has its own offset).
    #[error("{0}")]
    Bencode(shoal_bencode::DecodeError),
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// A field has the wrong bencode type (the expected one is given).
    #[error("expected {0}")]
    WrongType(&'static str),
    /// Text that must be UTF-8 (URLs, hosts) is not.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// A length or count that is negative or absurd.
    #[error("{0} is out of range ({1})")]
    OutOfRange(i64, &'static str),
    /// `piece length` breaks a rule (the value and the rule are given).
    #[error("{0} is not a valid piece length ({1})")]
    PieceLength(i64, &'static str),
    /// `pieces` does not hold whole 20-byte SHA-1 hashes (BEP 3).
    #[error("{0} bytes long, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of piece hashes disagrees with the total length and piece length.
    #[error("{found} piece hashes, but the files need {expected}")]
    PieceCount {
        /// Hashes present.
        found: u64,
        /// Hashes the total length calls for.
        expected: u64,
    },
    /// More pieces than [`MAX_PIECES`](crate::MAX_PIECES).
    #[error("{0} pieces, more than the limit of {limit}", limit = crate::MAX_PIECES)]
    TooManyPieces(u64),
    /// More files than [`MAX_FILES`](crate::MAX_FILES).
    #[error("{0} files, more than the limit of {limit}", limit = crate::MAX_FILES)]
    TooManyFiles(usize),
    /// The file lengths add up to more than 2^63 bytes.
    #[error("the file lengths add up to more than 2^63 bytes")]
    TotalLengthOverflow,
    /// The torrent holds no data (no files, or only empty ones).
    #[error("the torrent holds no data")]
    NoData,
    /// A name or path component that could write outside the download directory, or that no file
    /// system can hold (see [`PathProblem`]).
    #[error("unsafe path component {component:?}: {problem}")]
    UnsafePath {
        /// The component, lossily decoded.
        component: String,
        /// The rule it breaks.
        problem: PathProblem,
    },
    /// Two files of the torrent map to the same path, or one file's path is another's directory.
    #[error("{0:?} is used by two files")]
    DuplicatePath(String),
    /// A hash of the wrong size (the length found and the length expected).
    #[error("{0} bytes long, expected {1}")]
    HashLength(usize, usize),
    /// `meta version` is neither absent (v1) nor 2 (BEP 52).
    #[error("unsupported meta version {0}")]
    MetaVersion(i64),
    /// A v2 `file tree` node that is neither a directory nor a file (`""` must be the only key of a file).
    #[error("{0}")]
    FileTree(&'static str),
    /// A `piece layers` entry that is missing, has the wrong size, or does not hash to its pieces root.
    #[error("{0}")]
    PieceLayer(&'static str),
    /// The v1 and v2 parts of a hybrid torrent describe different files (BEP 52).
    #[error("the v1 and v2 file lists differ: {0}")]
    HybridMismatch(String),
}

/// A path component that is refused because of what it could do on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathProblem {
    /// An empty component (`a//b`) or an empty name.
    #[error("empty")]
    Empty,
    /// `.`, which names the directory itself.
    #[error("`.` names the directory itself")]
    CurrentDir,
    /// `..`, which climbs out of the download directory.
    #[error("`..` climbs out of the download directory")]
    ParentDir,
    /// A `/` or `\` inside one component, which would split it into several (or make it absolute).
    #[error("holds a path separator")]
    Separator,
    /// A NUL byte, which ends a path early in every OS interface.
    #[error("holds a NUL byte")]
    Nul,
    /// A Windows drive prefix (`C:`), which makes a path absolute on Windows.
    #[error("starts with a drive letter")]
    DriveLetter,
}
