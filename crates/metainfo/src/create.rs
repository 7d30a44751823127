//! Torrent creation: walk a file or directory, hash it on every core, write the metainfo.
//!
//! Files are listed in a deterministic order: at each directory level, entries sorted by the bytes of their
//! names, which is also the order of a BEP 52 `file tree` (a bencode dictionary), so the v1 and v2 views of
//! a hybrid torrent agree. Symbolic links, special files and empty directories are skipped.
//!
//! Hashing reads each piece once with positional reads and feeds SHA-1 (v1) and/or SHA-256 (v2 blocks)
//! from the same buffer; threads claim pieces from a shared counter, so all cores stay busy whatever the
//! file sizes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha1::{Digest, Sha1};
use shoal_bencode::OwnedValue;

use crate::hash::{InfoHash, InfoHashV2, InfoHashes};
use crate::merkle::{self, BLOCK_SIZE, Hash256};
use crate::path::check_component;
use crate::torrent::{MAX_FILES, MAX_PIECE_LENGTH, MAX_PIECES, MetaVersion};

/// Why a torrent could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// Reading the input failed.
    #[error("reading {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input holds no data (only empty files, or none).
    #[error("{} holds no data to share", .0.display())]
    NoData(PathBuf),
    /// A file or directory name that a torrent cannot carry safely (not UTF-8, or see
    /// [`PathProblem`](crate::PathProblem)).
    #[error("cannot put {} in a torrent: {reason}", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A piece length that is not a power of two between 16 KiB and 2 GiB (the value is given).
    #[error("piece length {0} is not a power of two between 16 KiB and 2 GiB")]
    PieceLength(u64),
    /// More pieces or files than a torrent may hold; use a larger piece length.
    #[error("{0} pieces or files is more than a torrent may hold; use a larger piece length")]
    TooLarge(u64),
    /// A file changed size while it was being hashed.
    #[error("{} changed while it was being hashed", .0.display())]
    Changed(PathBuf),
}

/// How far hashing has got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes hashed so far.
    pub hashed: u64,
    /// Bytes to hash in all.
    pub total: u64,
}

/// A torrent made by [`TorrentBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTorrent {
    /// The `.torrent` file's bytes.
    pub bytes: Vec<u8>,
    /// Its info-hashes.
    pub info_hashes: InfoHashes,
    /// The piece length used.
    pub piece_length: u64,
    /// Bytes of content (padding excluded).
    pub total_size: u64,
    /// Number of pieces.
    pub piece_count: u64,
    /// Number of files (padding excluded).
    pub file_count: usize,
}

/// Builds a `.torrent` from a file or directory.
///
/// ```
/// use shoal_metainfo::{Metainfo, MetaVersion, TorrentBuilder};
///
/// let dir = std::env::temp_dir().join(format!("shoal-doc-create-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("sub"))?;
/// std::fs::write(dir.join("a.txt"), vec![1u8; 40_000])?;
/// std::fs::write(dir.join("sub/b.bin"), vec![2u8; 1000])?;
///
/// let created = TorrentBuilder::new(&dir)
///     .tracker_tier(["http://127.0.0.1:6969/announce"])
///     .version(MetaVersion::Hybrid)
///     .build()?;
/// let torrent = Metainfo::from_bytes(&created.bytes)?;
/// assert_eq!(torrent.info_hashes(), created.info_hashes);
/// assert_eq!(torrent.info.total_size(), 41_000);
/// assert_eq!(torrent.info.files.len(), 4); // a.txt, a pad file, sub/b.bin, a pad file
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TorrentBuilder {
    path: PathBuf,
    name: Option<String>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    private: bool,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    piece_length: Option<u64>,
    version: MetaVersion,
    threads: usize,
}

/// One file to put in the torrent.
#[derive(Debug)]
struct InputFile {
    components: Vec<String>,
    disk_path: PathBuf,
    length: u64,
    /// Offset in the piece stream (v1 view; padded for v2 and hybrid).
    offset: u64,
}

impl TorrentBuilder {
    /// A builder for the file or directory at `path`, v1, no trackers, automatic piece length.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            piece_length: None,
            version: MetaVersion::V1,
            threads: 0,
        }
    }

    /// Adds a tier of trackers (BEP 12); the first URL of the first tier is also `announce`.
    pub fn tracker_tier<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        let tier: Vec<String> = urls.into_iter().map(Into::into).collect();
        if !tier.is_empty() {
            self.trackers.push(tier);
        }
        self
    }

    /// Adds a BEP 19 web seed URL.
    pub fn web_seed(mut self, url: impl Into<String>) -> Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Sets the BEP 27 private flag.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Sets the comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`.
    pub fn created_by(mut self, created_by: impl Into<String>) -> Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// Sets `creation date` (seconds since the Unix epoch); none by default, so output is reproducible.
    pub fn creation_date(mut self, date: Option<i64>) -> Self {
        self.creation_date = date;
        self
    }

    /// Overrides the torrent's name (default: the input's file or directory name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the piece length: a power of two from 16 KiB to 2 GiB. Default: [`auto_piece_length`].
    pub fn piece_length(mut self, piece_length: u64) -> Self {
        self.piece_length = Some(piece_length);
        self
    }

    /// v1 (default), v2 or hybrid.
    pub fn version(mut self, version: MetaVersion) -> Self {
        self.version = version;
        self
    }

    /// How many hashing threads to use; 0 (the default) means one per core.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Hashes the input and returns the torrent.
    ///
    /// # Errors
    /// See [`CreateError`].
    pub fn build(&self) -> Result<CreatedTorrent, CreateError> {
        self.build_with_progress(|_| {})
    }

    /// As [`build`](Self::build), calling `progress` (from the hashing threads) as pieces are hashed.
    ///
    /// # Errors
    /// See [`CreateError`].
    pub fn build_with_progress(
        &self,
        progress: impl Fn(Progress) + Sync,
    ) -> Result<CreatedTorrent, CreateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CreateError::Io { path, source }
        };
        let metadata = std::fs::metadata(&self.path).map_err(io(&self.path))?;
        let name = match &self.name {
            Some(name) => name.clone(),
            None => file_name(&self.path)?,
        };
        check_name(&self.path, &name)?;
        let multi_file = metadata.is_dir();
        let mut files = if multi_file {
            let mut files = Vec::new();
            walk(&self.path, &mut Vec::new(), &mut files)?;
            files
        } else {
            vec![InputFile {
                components: vec![name.clone()],
                disk_path: self.path.clone(),
                length: metadata.len(),
                offset: 0,
            }]
        };
        let total_size: u64 = files.iter().map(|f| f.length).sum();
        if total_size == 0 {
            return Err(CreateError::NoData(self.path.clone()));
        }
        if files.len() > MAX_FILES {
            return Err(CreateError::TooLarge(files.len() as u64));
        }
        let piece_length = match self.piece_length {
            Some(n) if n.is_power_of_two() && (BLOCK_SIZE..=MAX_PIECE_LENGTH).contains(&n) => n,
            Some(n) => return Err(CreateError::PieceLength(n)),
            None => auto_piece_length(total_size),
        };

        // Lay the files out in the piece stream; v2 and hybrid start every file on a piece boundary.
        let aligned = self.version.has_v2();
        let mut offset = 0u64;
        for file in &mut files {
            if aligned {
                offset = offset.next_multiple_of(piece_length);
            }
            file.offset = offset;
            offset += file.length;
        }
        // Hybrid multi-file torrents pad the last file too, as libtorrent does (BEP 47 allows either), so
        // the same content gives libtorrent's info-hashes.
        let stream_length = if aligned && multi_file {
            offset.next_multiple_of(piece_length)
        } else {
            offset
        };
        let piece_count = stream_length.div_ceil(piece_length);
        if piece_count > MAX_PIECES {
            return Err(CreateError::TooLarge(piece_count));
        }

        let hashes = hash_pieces(
            &files,
            piece_length,
            stream_length,
            self.version,
            self.threads,
            &progress,
            total_size,
        )?;
        let bytes_and_info = self.encode(
            &name,
            multi_file,
            &files,
            piece_length,
            stream_length,
            &hashes,
        );
        let (bytes, info_bytes) = bytes_and_info;
        let info_hashes = InfoHashes {
            v1: self
                .version
                .has_v1()
                .then(|| InfoHash::of_info(&info_bytes)),
            v2: self
                .version
                .has_v2()
                .then(|| InfoHashV2::of_info(&info_bytes)),
        };
        Ok(CreatedTorrent {
            bytes,
            info_hashes,
            piece_length,
            total_size,
            piece_count,
            file_count: files.len(),
        })
    }

    /// Writes the metainfo; returns the whole file and the info dictionary's bytes.
    fn encode(
        &self,
        name: &str,
        multi_file: bool,
        files: &[InputFile],
        piece_length: u64,
        stream_length: u64,
        hashes: &PieceHashes,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut info = BTreeMap::new();
        info.insert(key("name"), OwnedValue::from(name));
        info.insert(key("piece length"), int(piece_length));
        if self.private {
            info.insert(key("private"), OwnedValue::Int(1));
        }
        let mut piece_layers = BTreeMap::new();
        if self.version.has_v2() {
            info.insert(key("meta version"), OwnedValue::Int(2));
            let mut tree = BTreeMap::new();
            for file in files {
                let mut leaf = BTreeMap::new();
                leaf.insert(key("length"), int(file.length));
                if file.length > 0 {
                    let first = (file.offset / piece_length) as usize;
                    let count = file.length.div_ceil(piece_length) as usize;
                    let layer = &hashes.v2[first..first + count];
                    let root = if count == 1 {
                        layer[0]
                    } else {
                        piece_layers.insert(
                            merkle::layer_root(layer, piece_length).to_vec(),
                            OwnedValue::Bytes(layer.concat()),
                        );
                        merkle::layer_root(layer, piece_length)
                    };
                    leaf.insert(key("pieces root"), OwnedValue::Bytes(root.to_vec()));
                }
                let mut node = BTreeMap::new();
                node.insert(Vec::new(), OwnedValue::Dict(leaf));
                insert_tree(&mut tree, &file.components, OwnedValue::Dict(node));
            }
            info.insert(key("file tree"), OwnedValue::Dict(tree));
        }
        if self.version.has_v1() {
            info.insert(key("pieces"), OwnedValue::Bytes(hashes.v1.concat()));
            if multi_file {
                let mut list = Vec::new();
                for (i, file) in files.iter().enumerate() {
                    let mut entry = BTreeMap::new();
                    entry.insert(key("length"), int(file.length));
                    entry.insert(
                        key("path"),
                        OwnedValue::List(
                            file.components
                                .iter()
                                .map(|c| OwnedValue::from(c.as_str()))
                                .collect(),
                        ),
                    );
                    list.push(OwnedValue::Dict(entry));
                    // BEP 47: pad to the next file's piece boundary (hybrid), and the last to the end.
                    let next = files.get(i + 1).map_or(stream_length, |next| next.offset);
                    let pad = next - (file.offset + file.length);
                    {
                        if pad > 0 {
                            let mut entry = BTreeMap::new();
                            entry.insert(key("attr"), OwnedValue::from("p"));
                            entry.insert(key("length"), int(pad));
                            entry.insert(
                                key("path"),
                                OwnedValue::List(vec![
                                    OwnedValue::from(".pad"),
                                    OwnedValue::from(pad.to_string().as_str()),
                                ]),
                            );
                            list.push(OwnedValue::Dict(entry));
                        }
                    }
                }
                info.insert(key("files"), OwnedValue::List(list));
            } else {
                info.insert(key("length"), int(files[0].length));
            }
        }
        let info = OwnedValue::Dict(info);
        let info_bytes = info.to_bytes();

        let mut root = BTreeMap::new();
        let urls: Vec<&String> = self.trackers.iter().flatten().collect();
        if let Some(first) = urls.first() {
            root.insert(key("announce"), OwnedValue::from(first.as_str()));
        }
        if urls.len() > 1 {
            let tiers = self
                .trackers
                .iter()
                .map(|tier| {
                    OwnedValue::List(tier.iter().map(|u| OwnedValue::from(u.as_str())).collect())
                })
                .collect();
            root.insert(key("announce-list"), OwnedValue::List(tiers));
        }
        if let Some(comment) = &self.comment {
            root.insert(key("comment"), OwnedValue::from(comment.as_str()));
        }
        if let Some(created_by) = &self.created_by {
            root.insert(key("created by"), OwnedValue::from(created_by.as_str()));
        }
        if let Some(date) = self.creation_date {
            root.insert(key("creation date"), OwnedValue::Int(date));
        }
        if !self.web_seeds.is_empty() {
            let seeds = self
                .web_seeds
                .iter()
                .map(|u| OwnedValue::from(u.as_str()))
                .collect();
            root.insert(key("url-list"), OwnedValue::List(seeds));
        }
        if self.version.has_v2() {
            root.insert(key("piece layers"), OwnedValue::Dict(piece_layers));
        }
        root.insert(key("info"), info);
        (OwnedValue::Dict(root).to_bytes(), info_bytes)
    }
}

/// The automatic piece length, as common clients choose it: the smallest power of two from 16 KiB to
/// 16 MiB that gives at most 2,000 pieces (so 1,000 to 2,000 pieces for anything over 32 MiB).
///
/// ```
/// use shoal_metainfo::auto_piece_length;
///
/// assert_eq!(auto_piece_length(1_000), 16 * 1024);
/// assert_eq!(auto_piece_length(2 << 30), 2 << 20); // 2 GiB: 1,024 pieces of 2 MiB
/// assert_eq!(auto_piece_length(1 << 50), 16 << 20);
/// ```
pub fn auto_piece_length(total_size: u64) -> u64 {
    let mut piece_length = BLOCK_SIZE;
    while total_size.div_ceil(piece_length) > 2000 && piece_length < 16 << 20 {
        piece_length *= 2;
    }
    piece_length
}

fn key(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

fn int(value: u64) -> OwnedValue {
    OwnedValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

fn insert_tree(tree: &mut BTreeMap<Vec<u8>, OwnedValue>, components: &[String], leaf: OwnedValue) {
    let Some((first, rest)) = components.split_first() else {
        return;
    };
    if rest.is_empty() {
        tree.insert(key(first), leaf);
        return;
    }
    let node = tree
        .entry(key(first))
        .or_insert_with(|| OwnedValue::Dict(BTreeMap::new()));
    if let OwnedValue::Dict(children) = node {
        insert_tree(children, rest, leaf);
    }
}

fn file_name(path: &Path) -> Result<String, CreateError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| CreateError::Io {
        path: path.into(),
        source,
    })?;
    let name = canonical.file_name().ok_or_else(|| CreateError::BadName {
        path: path.into(),
        reason: "it has no name (give one)".into(),
    })?;
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| CreateError::BadName {
            path: path.into(),
            reason: "not UTF-8".into(),
        })
}

fn check_name(path: &Path, name: &str) -> Result<(), CreateError> {
    check_component(name.as_bytes()).map_err(|problem| CreateError::BadName {
        path: path.into(),
        reason: problem.to_string(),
    })
}

/// Collects regular files under `dir`, sorted by name bytes at each level.
fn walk(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<InputFile>) -> Result<(), CreateError> {
    let io = |source| CreateError::Io {
        path: dir.into(),
        source,
    };
    let mut entries: Vec<(String, PathBuf, std::fs::FileType)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::BadName {
                path: path.clone(),
                reason: "not UTF-8".into(),
            })?;
        let file_type = entry.file_type().map_err(io)?;
        entries.push((name, path, file_type));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, path, file_type) in entries {
        if file_type.is_dir() {
            check_name(&path, &name)?;
            prefix.push(name);
            walk(&path, prefix, out)?;
            prefix.pop();
        } else if file_type.is_file() {
            check_name(&path, &name)?;
            let length = std::fs::metadata(&path)
                .map_err(|source| CreateError::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            let mut components = prefix.clone();
            components.push(name);
            out.push(InputFile {
                components,
                disk_path: path,
                length,
                offset: 0,
            });
            if out.len() > MAX_FILES {
                return Err(CreateError::TooLarge(out.len() as u64));
            }
        }
        // Symbolic links and special files are skipped: a torrent shares data, not the local layout.
    }
    Ok(())
}

/// Piece hashes by stream piece index.
struct PieceHashes {
    v1: Vec<[u8; 20]>,
    /// For a piece of a file larger than one piece: the piece's subtree root. For a file of one piece:
    /// the file's pieces root.
    v2: Vec<Hash256>,
}

fn hash_pieces(
    files: &[InputFile],
    piece_length: u64,
    stream_length: u64,
    version: MetaVersion,
    threads: usize,
    progress: &(impl Fn(Progress) + Sync),
    total_size: u64,
) -> Result<PieceHashes, CreateError> {
    let piece_count = stream_length.div_ceil(piece_length);
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(piece_count.max(1) as usize);
    let next = AtomicU64::new(0);
    let hashed = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results = Mutex::new(PieceHashes {
        v1: vec![
            [0; 20];
            if version.has_v1() {
                piece_count as usize
            } else {
                0
            }
        ],
        v2: vec![
            [0; 32];
            if version.has_v2() {
                piece_count as usize
            } else {
                0
            }
        ],
    });
    // Claim several small pieces at once, so the counter is not contended.
    let batch = (4 << 20) / piece_length.min(4 << 20);
    let error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut worker = Worker {
                    files,
                    piece_length,
                    stream_length,
                    version,
                    buf: Vec::new(),
                    open: None,
                };
                let mut local: Vec<(u64, Option<[u8; 20]>, Option<Hash256>)> = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let start = next.fetch_add(batch, Ordering::Relaxed);
                    if start >= piece_count {
                        break;
                    }
                    for piece in start..(start + batch).min(piece_count) {
                        match worker.hash_piece(piece) {
                            Ok((v1, v2, data_bytes)) => {
                                local.push((piece, v1, v2));
                                let done =
                                    hashed.fetch_add(data_bytes, Ordering::Relaxed) + data_bytes;
                                progress(Progress {
                                    hashed: done,
                                    total: total_size,
                                });
                            }
                            Err(err) => {
                                failed.store(true, Ordering::Relaxed);
                                error
                                    .lock()
                                    .expect("no panics while locked")
                                    .get_or_insert(err);
                                return;
                            }
                        }
                    }
                }
                let mut results = results.lock().expect("no panics while locked");
                for (piece, v1, v2) in local {
                    if let Some(hash) = v1 {
                        results.v1[piece as usize] = hash;
                    }
                    if let Some(hash) = v2 {
                        results.v2[piece as usize] = hash;
                    }
                }
            });
        }
    });
    if let Some(err) = error.into_inner().expect("no panics while locked") {
        return Err(err);
    }
    Ok(results.into_inner().expect("no panics while locked"))
}

/// One piece's v1 hash, v2 hash, and how many bytes of file data it covered.
type PieceResult = (Option<[u8; 20]>, Option<Hash256>, u64);

struct Worker<'f> {
    files: &'f [InputFile],
    piece_length: u64,
    stream_length: u64,
    version: MetaVersion,
    buf: Vec<u8>,
    open: Option<(usize, File)>,
}

impl Worker<'_> {
    /// Hashes one piece of the stream; returns its hashes and the number of file bytes it covered.
    fn hash_piece(&mut self, piece: u64) -> Result<PieceResult, CreateError> {
        let start = piece * self.piece_length;
        let end = (start + self.piece_length).min(self.stream_length);
        self.buf.clear();
        self.buf.resize((end - start) as usize, 0);
        // The first file that ends after `start`.
        let mut index = self.files.partition_point(|f| f.offset + f.length <= start);
        let mut data_bytes = 0;
        while let Some(file) = self.files.get(index) {
            if file.offset >= end {
                break;
            }
            let from = start.max(file.offset);
            let to = end.min(file.offset + file.length);
            if to > from {
                let slice = &mut self.buf[(from - start) as usize..(to - start) as usize];
                read_at(&mut self.open, index, file, slice, from - file.offset)?;
                data_bytes += to - from;
            }
            index += 1;
        }
        let v1 = self
            .version
            .has_v1()
            .then(|| Sha1::digest(&self.buf).into());
        let v2 = if self.version.has_v2() {
            // The piece lies in one file (files start on piece boundaries); hash the file's bytes only.
            let file = &self.files[self.files.partition_point(|f| f.offset + f.length <= start)];
            let data_end = ((file.offset + file.length).min(end) - start) as usize;
            let blocks: Vec<Hash256> = self.buf[..data_end]
                .chunks(BLOCK_SIZE as usize)
                .map(merkle::hash_block)
                .collect();
            Some(if file.length > self.piece_length {
                merkle::piece_root(&blocks, self.piece_length)
            } else {
                merkle::small_file_root(&blocks)
            })
        } else {
            None
        };
        Ok((v1, v2, data_bytes))
    }
}

fn read_at(
    open: &mut Option<(usize, File)>,
    index: usize,
    file: &InputFile,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), CreateError> {
    let io = |source| CreateError::Io {
        path: file.disk_path.clone(),
        source,
    };
    if open.as_ref().is_none_or(|(i, _)| *i != index) {
        *open = Some((index, File::open(&file.disk_path).map_err(io)?));
    }
    let (_, handle) = open.as_ref().expect("just opened");
    match positional_read(handle, buf, offset) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(CreateError::Changed(file.disk_path.clone()))
        }
        Err(err) => Err(io(err)),
    }
}

#[cfg(unix)]
fn positional_read(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn positional_read(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}
