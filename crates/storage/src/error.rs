//! Storage errors: what the session shows when the disk says no.

use std::io;
use std::path::{Path, PathBuf};

/// A storage failure, typed so the session can react (pause on a full disk, recheck on a changed file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No space left on the device (`ENOSPC`) or quota exceeded.
    #[error("disk full writing {}", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The file or directory may not be read or written (`EACCES`, `EPERM`, read-only file system).
    #[error("permission denied: {}", path.display())]
    PermissionDenied {
        /// The file or directory refused.
        path: PathBuf,
    },
    /// Something other than a regular file (a directory, say) stands where a file of the torrent belongs.
    #[error("not a regular file: {}", path.display())]
    NotAFile {
        /// What stands in the way.
        path: PathBuf,
    },
    /// A path that could lead outside the download directory: `..`, absolute, or through a symlink.
    #[error("unsafe path {}: {reason}", path.display())]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A file of the torrent does not exist (yet).
    #[error("missing file: {}", path.display())]
    Missing {
        /// The absent file.
        path: PathBuf,
    },
    /// Any other IO failure.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`"write"`, `"read"`, `"open"`, …).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file list or piece size that cannot describe a torrent.
    #[error("invalid layout: {0}")]
    InvalidLayout(String),
    /// A block that does not lie inside its piece.
    #[error("block at offset {offset} with length {len} is outside piece {piece}")]
    OutOfRange {
        /// The piece index.
        piece: u32,
        /// The offset in the piece.
        offset: u32,
        /// The block length.
        len: usize,
    },
    /// A move of the data ([`Storage::relocate`](crate::Storage::relocate)) failed, and putting a file
    /// back failed too: that file stays at the destination.
    #[error("{cause}; then moving {} back failed, so it stays there", stranded.display())]
    Stranded {
        /// Why the move failed.
        cause: Box<StorageError>,
        /// The file left at the destination.
        stranded: PathBuf,
    },
    /// Resume data that is corrupt or belongs to another torrent; recheck instead of trusting it.
    #[error("unusable resume data: {0}")]
    Resume(String),
}

impl StorageError {
    /// Classifies an IO error on `path`.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Self::DiskFull { path },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                Self::PermissionDenied { path }
            }
            io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory => Self::NotAFile { path },
            io::ErrorKind::NotFound => Self::Missing { path },
            // O_NOFOLLOW on a symlink.
            _ if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                Self::UnsafePath {
                    path,
                    reason: "is a symbolic link",
                }
            }
            _ => Self::Io { op, path, source },
        }
    }
}
