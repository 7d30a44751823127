//! Resume data: which pieces were verified, and the state of the files when that was recorded.
//!
//! The rules that make it crash-safe: the file is replaced atomically ([`write_atomic`]), so after a
//! crash the old record or the new one survives, never a torn one; and a piece goes into resume data
//! only once its bytes are at least in the page cache. Resume data written after
//! [`Storage::sync_all`](crate::Storage::sync_all) holds across a power loss. Resume data written
//! without syncing names the boot it was written in ([`ResumeData::unsynced_boot`]): a process crash
//! keeps the page cache, so it holds within that boot, but after a reboot it is not trusted at all
//! ([`ResumeData::trusted_after`]). On start, a piece is trusted only if every file it touches still
//! has the size and modification time recorded; the rest are rechecked ([`ResumeData::plan`]).

use std::io::Write;
use std::path::Path;

use shoal_bencode::{DecodeOptions, OwnedValue};

use crate::{Layout, StorageError};

/// A file's size and modification time, as recorded in resume data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub length: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
}

/// What a restart may trust: the verified pieces and the file stamps they were verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeData {
    /// The torrent this belongs to (its info-hash bytes).
    pub id: Vec<u8>,
    /// One flag per piece: verified and synced.
    pub verified: Vec<bool>,
    /// One stamp per file of the layout (`None` for padding and missing files).
    pub files: Vec<Option<FileStamp>>,
    /// `None`: the files were synced before this was written. `Some(boot)`: they were not, and this
    /// was written during boot `boot` ([`boot_id`]); it is worth nothing after a reboot.
    pub unsynced_boot: Option<String>,
    /// Block bytes uploaded to peers, in all runs together (what a share ratio is counted from).
    pub uploaded: u64,
    /// Block bytes downloaded from peers, in all runs together.
    pub downloaded: u64,
}

/// This boot of the machine (Linux: `/proc/sys/kernel/random/boot_id`); `None` where unknown, in which
/// case unsynced resume data is never trusted.
///
/// ```
/// // The same answer every time within one boot.
/// assert_eq!(shoal_storage::boot_id(), shoal_storage::boot_id());
/// ```
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// What to do on start, from [`ResumeData::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePlan {
    /// Pieces known good without reading them.
    pub trusted: Vec<bool>,
    /// Pieces recorded as verified whose files changed since: hash them again.
    pub recheck: Vec<u32>,
}

const VERSION: i64 = 1;

impl ResumeData {
    /// Encodes as bencode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bitfield = vec![0u8; self.verified.len().div_ceil(8)];
        for (i, _) in self.verified.iter().enumerate().filter(|(_, v)| **v) {
            bitfield[i / 8] |= 0x80 >> (i % 8);
        }
        let files = self
            .files
            .iter()
            .map(|stamp| match stamp {
                Some(s) => OwnedValue::List(vec![
                    OwnedValue::Int(s.length as i64),
                    OwnedValue::Int(s.mtime_ns as i64),
                ]),
                None => OwnedValue::List(vec![]),
            })
            .collect();
        let mut dict = vec![
            ("downloaded", OwnedValue::Int(clamp(self.downloaded))),
            ("files", OwnedValue::List(files)),
            ("id", OwnedValue::Bytes(self.id.clone())),
            ("piece count", OwnedValue::Int(self.verified.len() as i64)),
        ];
        if let Some(boot) = &self.unsynced_boot {
            dict.push(("unsynced boot", OwnedValue::Bytes(boot.as_bytes().to_vec())));
        }
        dict.push(("uploaded", OwnedValue::Int(clamp(self.uploaded))));
        dict.push(("verified", OwnedValue::Bytes(bitfield)));
        dict.push(("version", OwnedValue::Int(VERSION)));
        OwnedValue::Dict(
            dict.into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
        .to_bytes()
    }

    /// Decodes resume data and checks that it belongs to torrent `id` with `layout`.
    ///
    /// # Errors
    /// [`StorageError::Resume`] for anything corrupt, from another torrent, or of another shape: the
    /// caller rechecks in full instead.
    pub fn from_bytes(bytes: &[u8], id: &[u8], layout: &Layout) -> Result<Self, StorageError> {
        let bad = |why: String| StorageError::Resume(why);
        let value = shoal_bencode::decode_with(bytes, &DecodeOptions::strict())
            .map_err(|e| bad(e.to_string()))?;
        let int = |key: &str| value.get(key.as_bytes()).and_then(|v| v.as_int());
        if int("version") != Some(VERSION) {
            return Err(bad("unknown version".into()));
        }
        if value.get(b"id").and_then(|v| v.as_bytes()) != Some(id) {
            return Err(bad("it belongs to another torrent".into()));
        }
        let count = layout.piece_count() as usize;
        if int("piece count") != Some(count as i64) {
            return Err(bad("piece count differs".into()));
        }
        let bitfield = value
            .get(b"verified")
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| bad("no bitfield".into()))?;
        if bitfield.len() != count.div_ceil(8) {
            return Err(bad("bitfield has the wrong length".into()));
        }
        let verified: Vec<bool> = (0..count)
            .map(|i| bitfield[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect();
        let spare = bitfield.len() * 8 - count;
        if spare > 0 && bitfield[bitfield.len() - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(bad("spare bits set in the bitfield".into()));
        }
        let files = value
            .get(b"files")
            .and_then(|v| v.as_list())
            .ok_or_else(|| bad("no file list".into()))?;
        if files.len() != layout.files().len() {
            return Err(bad("file count differs".into()));
        }
        let files = files
            .iter()
            .map(|entry| match entry.as_list() {
                Some([]) => Ok(None),
                Some([length, mtime]) => match (length.as_int(), mtime.as_int()) {
                    (Some(length), Some(mtime)) if length >= 0 && mtime >= 0 => {
                        Ok(Some(FileStamp {
                            length: length as u64,
                            mtime_ns: mtime as u64,
                        }))
                    }
                    _ => Err(bad("bad file stamp".into())),
                },
                _ => Err(bad("bad file stamp".into())),
            })
            .collect::<Result<_, _>>()?;
        let unsynced_boot = match value.get(b"unsynced boot") {
            None => None,
            Some(boot) => Some(
                boot.as_bytes()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(|| bad("bad boot id".into()))?
                    .to_owned(),
            ),
        };
        // Counters came later than the rest: absent means nothing counted yet.
        let counter = |key: &str| match value.get(key.as_bytes()) {
            None => Ok(0),
            Some(v) => v
                .as_int()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad(format!("bad {key} counter"))),
        };
        Ok(Self {
            id: id.to_vec(),
            verified,
            files,
            unsynced_boot,
            uploaded: counter("uploaded")?,
            downloaded: counter("downloaded")?,
        })
    }

    /// Whether this resume data may be trusted during boot `now` ([`boot_id`]): always if it was
    /// written after a sync; otherwise only within the boot it was written in, since a reboot may have
    /// lost what was still in the page cache.
    ///
    /// ```
    /// use shoal_storage::ResumeData;
    /// let mut resume = ResumeData {
    ///     id: vec![1; 20],
    ///     verified: vec![true],
    ///     files: vec![None],
    ///     unsynced_boot: None,
    ///     uploaded: 0,
    ///     downloaded: 0,
    /// };
    /// assert!(resume.trusted_after(None));
    /// resume.unsynced_boot = Some("boot-a".into());
    /// assert!(resume.trusted_after(Some("boot-a")));
    /// assert!(!resume.trusted_after(Some("boot-b")));
    /// assert!(!resume.trusted_after(None));
    /// ```
    pub fn trusted_after(&self, now: Option<&str>) -> bool {
        match &self.unsynced_boot {
            None => true,
            Some(boot) => now == Some(boot.as_str()),
        }
    }

    /// Splits the recorded pieces into those still trusted and those to hash again, given the files'
    /// stamps now ([`Storage::file_stamps`](crate::Storage::file_stamps)). A piece is trusted only if
    /// every file it touches is unchanged.
    pub fn plan(&self, layout: &Layout, now: &[Option<FileStamp>]) -> ResumePlan {
        let changed: Vec<bool> = layout
            .files()
            .iter()
            .enumerate()
            .map(|(i, span)| {
                !span.is_padding() && (self.files.get(i) != now.get(i) || now.get(i) == Some(&None))
            })
            .collect();
        let mut trusted = self.verified.clone();
        let mut recheck = Vec::new();
        for (file, _) in changed.iter().enumerate().filter(|(_, changed)| **changed) {
            for piece in layout.file_pieces(file) {
                if std::mem::take(&mut trusted[piece as usize]) {
                    recheck.push(piece);
                }
            }
        }
        recheck.sort_unstable();
        recheck.dedup();
        ResumePlan { trusted, recheck }
    }
}

/// A counter as a bencode integer (which is signed); beyond `i64::MAX` (8 EiB) it saturates.
fn clamp(counter: u64) -> i64 {
    i64::try_from(counter).unwrap_or(i64::MAX)
}

/// Replaces `path` with `bytes` atomically: write a temporary file beside it, sync it, rename it over
/// `path`, sync the directory. A crash at any point leaves the old file or the new one.
///
/// # Errors
/// The IO failure, with the file it concerned.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StorageError::io("write resume data", path, e)
    })
}
