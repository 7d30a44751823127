//! The `.torrent` parser: a borrowed, validated view of a metainfo file (BEP 3, 12, 17, 19, 27, 47, 52).

use std::borrow::Cow;
use std::path::PathBuf;

use shoal_bencode::{DecodeOptions, Kind, Value, decode_with};

use crate::error::{MetainfoError, MetainfoErrorKind as K};
use crate::hash::{InfoHash, InfoHashV2, InfoHashes};
use crate::merkle::{self, BLOCK_SIZE, Hash256};
use crate::path::{check_component, sanitize_component};

/// The most pieces a torrent may have (as libtorrent): a bitfield for this many is 256 KiB.
pub const MAX_PIECES: u64 = 1 << 21;
/// The most files a torrent may list.
pub const MAX_FILES: usize = 1 << 20;
/// The largest piece length accepted: 2 GiB.
pub const MAX_PIECE_LENGTH: u64 = 1 << 31;
/// The smallest piece length accepted for v1 torrents; v2 needs at least [`BLOCK_SIZE`](crate::BLOCK_SIZE).
pub const MIN_V1_PIECE_LENGTH: u64 = 1024;

/// Which BitTorrent versions a torrent supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaVersion {
    /// BEP 3 only: SHA-1 piece hashes, a v1 info-hash.
    V1,
    /// BEP 52 only: per-file merkle trees, a v2 info-hash.
    V2,
    /// Both (BEP 52 "hybrid"): a v1 `pieces` string and a v2 `file tree`, both info-hashes.
    Hybrid,
}

impl MetaVersion {
    /// Whether the torrent has the v1 (SHA-1) part.
    pub fn has_v1(self) -> bool {
        matches!(self, Self::V1 | Self::Hybrid)
    }

    /// Whether the torrent has the v2 (SHA-256 merkle) part.
    pub fn has_v2(self) -> bool {
        matches!(self, Self::V2 | Self::Hybrid)
    }

    /// `"v1"`, `"v2"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::Hybrid => "hybrid",
        }
    }
}

/// BEP 47 file attributes (the `attr` string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileAttributes {
    /// `p`: a padding file: zeros that only align the next file to a piece boundary; never written.
    pub padding: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link; the target is in [`FileEntry::symlink_target`].
    pub symlink: bool,
}

impl FileAttributes {
    fn parse(attr: &[u8]) -> Self {
        Self {
            padding: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }
}

/// One file of a torrent, borrowed from the metainfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry<'a> {
    /// Path components as in the torrent (the `.utf-8` variant when present), each checked by
    /// [`check_component`]: relative to the torrent's directory for a multi-file torrent, or `[name]` for a
    /// single file. Use [`Info::file_path`] for a path to write to.
    pub path: Vec<&'a [u8]>,
    /// Length in bytes.
    pub length: u64,
    /// Where the file starts in the torrent's byte stream (v1 pieces; for v2 every file starts on a piece
    /// boundary).
    pub offset: u64,
    /// BEP 47 attributes.
    pub attributes: FileAttributes,
    /// For a symbolic link (BEP 47), the target's components relative to the torrent's directory, each
    /// checked like a path.
    pub symlink_target: Option<Vec<&'a [u8]>>,
    /// The v2 merkle root of the file (absent for v1-only torrents and for empty files).
    pub pieces_root: Option<&'a [u8; 32]>,
}

impl FileEntry<'_> {
    /// Whether this is a BEP 47 padding file.
    pub fn is_padding(&self) -> bool {
        self.attributes.padding
    }
}

/// The `info` dictionary of a torrent, borrowed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info<'a> {
    /// The suggested name: the single file's name, or the top directory of a multi-file torrent (the
    /// `name.utf-8` variant when present). Checked by [`check_component`].
    pub name: &'a [u8],
    /// Bytes per piece (the last piece of the torrent, or of each file in v2, may be shorter).
    pub piece_length: u64,
    /// The v1 SHA-1 piece hashes, 20 bytes each (empty for a v2-only torrent).
    pub pieces: &'a [u8],
    /// BEP 27: peers come from the torrent's trackers only (no DHT, PEX or LSD).
    pub private: bool,
    /// v1, v2 or hybrid.
    pub version: MetaVersion,
    /// Whether the files live in a directory called [`name`](Self::name) (else it is one file).
    pub multi_file: bool,
    /// The files in torrent order, including BEP 47 padding files.
    pub files: Vec<FileEntry<'a>>,
    /// The whole `info` dictionary exactly as it appears in the input (unknown keys included): the bytes
    /// the info-hashes are computed over.
    pub raw: &'a [u8],
}

/// A parsed and validated `.torrent` file, borrowing from the input bytes.
///
/// ```
/// use shoal_metainfo::{Metainfo, MetaVersion};
///
/// let bytes = b"d8:announce23:http://tracker/announce4:infod6:lengthi20000e4:name5:a.txt\
/// 12:piece lengthi16384e6:pieces40:0123456789012345678901234567890123456789ee";
/// let torrent = Metainfo::from_bytes(bytes)?;
/// assert_eq!(torrent.announce, Some("http://tracker/announce"));
/// assert_eq!(torrent.info.version, MetaVersion::V1);
/// assert_eq!(torrent.info.total_size(), 20_000);
/// assert_eq!(torrent.info.piece_count(), 2);
/// assert_eq!(torrent.info_hashes().v1.unwrap().to_string().len(), 40);
/// # Ok::<(), shoal_metainfo::MetainfoError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo<'a> {
    /// The `announce` URL.
    pub announce: Option<&'a str>,
    /// BEP 12 tiers of tracker URLs (empty tiers and non-UTF-8 URLs dropped).
    pub announce_list: Vec<Vec<&'a str>>,
    /// BEP 19 web seeds (`url-list`).
    pub url_list: Vec<&'a str>,
    /// BEP 17 HTTP seeds (`httpseeds`).
    pub httpseeds: Vec<&'a str>,
    /// DHT bootstrap nodes (BEP 5 `nodes`): host and port.
    pub nodes: Vec<(&'a str, u16)>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `comment` (the `comment.utf-8` variant when present), as bytes: use [`text`] to show it.
    pub comment: Option<&'a [u8]>,
    /// `created by`, as bytes.
    pub created_by: Option<&'a [u8]>,
    /// The `info` dictionary.
    pub info: Info<'a>,
    /// The `info` dictionary exactly as it appears in the input: hash these bytes, never a re-encoding.
    pub info_bytes: &'a [u8],
    /// BEP 52 `piece layers`, checked against each file's pieces root: pieces root → concatenated 32-byte
    /// piece hashes. Empty when the torrent has none.
    pub piece_layers: Vec<(&'a [u8; 32], &'a [u8])>,
}

/// Shows bytes from a torrent (a comment, a name) as text: invalid UTF-8 replaced, control characters kept
/// out (so a name cannot drive the terminal).
///
/// ```
/// assert_eq!(shoal_metainfo::text(b"hi\x1b[2J"), "hi\u{FFFD}[2J");
/// ```
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    let lossy = String::from_utf8_lossy(bytes);
    if lossy.chars().any(|c| c.is_control() && c != '\n') {
        Cow::Owned(
            lossy
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\n' {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect(),
        )
    } else {
        lossy
    }
}

impl<'a> Metainfo<'a> {
    /// Parses and validates a `.torrent` file.
    ///
    /// Unknown keys are ignored (they stay in [`info_bytes`](Self::info_bytes), so the info-hash covers
    /// them). Unsorted keys are accepted, as in real-world files.
    ///
    /// # Errors
    /// A [`MetainfoError`] naming the field and byte offset: invalid bencode, a missing or mistyped field,
    /// a bad piece length or piece count, an unsafe path, and so on (see
    /// [`MetainfoErrorKind`](crate::MetainfoErrorKind)).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, MetainfoError> {
        let root = decode_with(bytes, &DecodeOptions::lenient())?;
        let ctx = Ctx {
            base: bytes.as_ptr().addr(),
        };
        let Kind::Dict(_) = root.kind() else {
            return Err(ctx.fail("", &root, K::WrongType("a dictionary")));
        };
        let info_value = root
            .get(b"info")
            .ok_or_else(|| ctx.fail("info", &root, K::Missing))?;
        let info = parse_info(&ctx, info_value)?;

        let announce = match root.get(b"announce") {
            Some(value) => Some(ctx.str(value, "announce")?),
            None => None,
        };
        let announce_list = root.get(b"announce-list").map(tiers).unwrap_or_default();
        let web_seeds = root
            .get(b"url-list")
            .map(self::url_list)
            .unwrap_or_default();
        let httpseeds = root
            .get(b"httpseeds")
            .map(self::url_list)
            .unwrap_or_default();
        let nodes = root.get(b"nodes").map(nodes).unwrap_or_default();
        let creation_date = root.get(b"creation date").and_then(Value::as_int);
        let comment = utf8_variant(&root, b"comment.utf-8", b"comment");
        let created_by = root.get(b"created by").and_then(Value::as_bytes);
        let piece_layers = match root.get(b"piece layers") {
            Some(layers) if info.version.has_v2() => parse_piece_layers(&ctx, layers, &info)?,
            _ => Vec::new(),
        };
        Ok(Self {
            announce,
            announce_list,
            url_list: web_seeds,
            httpseeds,
            nodes,
            creation_date,
            comment,
            created_by,
            info_bytes: info.raw,
            info,
            piece_layers,
        })
    }

    /// The info-hashes: SHA-1 (v1, hybrid) and SHA-256 (v2, hybrid) of [`info_bytes`](Self::info_bytes).
    ///
    /// Computed on each call; keep the result.
    pub fn info_hashes(&self) -> InfoHashes {
        self.info.info_hashes()
    }

    /// The trackers by tier: `announce-list` when present (BEP 12 says to ignore `announce` then), else
    /// `announce` as the only tier.
    pub fn trackers(&self) -> Vec<Vec<&'a str>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.map(|url| vec![vec![url]]).unwrap_or_default()
    }

    /// The piece layer of the v2 file with this pieces root, if the torrent carries it.
    pub fn piece_layer(&self, pieces_root: &[u8; 32]) -> Option<&'a [u8]> {
        self.piece_layers
            .iter()
            .find(|(root, _)| *root == pieces_root)
            .map(|(_, layer)| *layer)
    }
}

impl<'a> Info<'a> {
    /// Parses and validates a bare `info` dictionary, as received from peers with BEP 9 `ut_metadata`.
    ///
    /// ```
    /// let info = shoal_metainfo::Info::from_bytes(
    ///     b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:01234567890123456789e",
    /// )?;
    /// assert_eq!(info.files[0].length, 5);
    /// # Ok::<(), shoal_metainfo::MetainfoError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Metainfo::from_bytes`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, MetainfoError> {
        let value = decode_with(bytes, &DecodeOptions::lenient())?;
        parse_info(
            &Ctx {
                base: bytes.as_ptr().addr(),
            },
            &value,
        )
    }

    /// The info-hashes of this dictionary (see [`Metainfo::info_hashes`]).
    pub fn info_hashes(&self) -> InfoHashes {
        InfoHashes {
            v1: self.version.has_v1().then(|| InfoHash::of_info(self.raw)),
            v2: self.version.has_v2().then(|| InfoHashV2::of_info(self.raw)),
        }
    }

    /// The size of the content: the sum of the file lengths, padding files excluded.
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.is_padding())
            .map(|f| f.length)
            .sum()
    }

    /// The number of pieces: v1 piece hashes, or for v2 the sum of each file's pieces.
    pub fn piece_count(&self) -> u64 {
        if self.version.has_v1() {
            (self.pieces.len() / 20) as u64
        } else {
            self.files
                .iter()
                .map(|f| f.length.div_ceil(self.piece_length))
                .sum()
        }
    }

    /// The SHA-1 hash of v1 piece `index`.
    pub fn piece_hash(&self, index: u64) -> Option<&'a [u8; 20]> {
        let start = usize::try_from(index).ok()?.checked_mul(20)?;
        self.pieces.get(start..start + 20)?.try_into().ok()
    }

    /// The relative path to write `file` to: sanitized components (see
    /// [`sanitize_component`]), under [`name`](Self::name) for a multi-file torrent.
    ///
    /// Every component was checked when parsing, so the result is relative and contains no `.`, `..` or
    /// separator inside a component: joined under any directory it stays there.
    pub fn file_path(&self, file: &FileEntry<'_>) -> PathBuf {
        let mut path = PathBuf::new();
        if self.multi_file {
            path.push(sanitize_component(self.name).as_ref());
        }
        for component in &file.path {
            path.push(sanitize_component(component).as_ref());
        }
        path
    }
}

/// A pieces root and its piece layer.
type PieceLayer<'a> = (&'a [u8; 32], &'a [u8]);

/// Turns byte offsets and field names into errors.
struct Ctx {
    base: usize,
}

impl Ctx {
    fn offset(&self, value: &Value<'_>) -> usize {
        value.raw().as_ptr().addr().saturating_sub(self.base)
    }

    fn fail(&self, field: impl Into<String>, at: &Value<'_>, kind: K) -> MetainfoError {
        MetainfoError::new(field, self.offset(at), kind)
    }

    fn str<'a>(&self, value: &Value<'a>, field: &str) -> Result<&'a str, MetainfoError> {
        let bytes = value
            .as_bytes()
            .ok_or_else(|| self.fail(field, value, K::WrongType("a string")))?;
        std::str::from_utf8(bytes).map_err(|_| self.fail(field, value, K::NotUtf8))
    }

    fn bytes<'a>(&self, value: &Value<'a>, field: &str) -> Result<&'a [u8], MetainfoError> {
        value
            .as_bytes()
            .ok_or_else(|| self.fail(field, value, K::WrongType("a string")))
    }

    fn int(&self, value: &Value<'_>, field: &str) -> Result<i64, MetainfoError> {
        value
            .as_int()
            .ok_or_else(|| self.fail(field, value, K::WrongType("an integer")))
    }

    /// A file length: a non-negative integer.
    fn length(
        &self,
        value: &Value<'_>,
        field: impl FnOnce() -> String,
    ) -> Result<u64, MetainfoError> {
        match value.as_int() {
            Some(n) => u64::try_from(n)
                .map_err(|_| self.fail(field(), value, K::OutOfRange(n, "negative length"))),
            None => Err(self.fail(field(), value, K::WrongType("an integer"))),
        }
    }

    /// A path list: non-empty, every component a safe string.
    fn path<'a>(
        &self,
        value: &Value<'a>,
        field: impl Fn() -> String,
    ) -> Result<Vec<&'a [u8]>, MetainfoError> {
        let items = value
            .as_list()
            .ok_or_else(|| self.fail(field(), value, K::WrongType("a list")))?;
        if items.is_empty() {
            return Err(self.fail(
                field(),
                value,
                K::UnsafePath {
                    component: String::new(),
                    problem: crate::PathProblem::Empty,
                },
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let raw = item.as_bytes().ok_or_else(|| {
                    self.fail(format!("{}[{i}]", field()), item, K::WrongType("a string"))
                })?;
                self.component(raw, item, || format!("{}[{i}]", field()))?;
                Ok(raw)
            })
            .collect()
    }

    fn component(
        &self,
        raw: &[u8],
        at: &Value<'_>,
        field: impl FnOnce() -> String,
    ) -> Result<(), MetainfoError> {
        check_component(raw).map_err(|problem| {
            self.fail(
                field(),
                at,
                K::UnsafePath {
                    component: String::from_utf8_lossy(raw).into_owned(),
                    problem,
                },
            )
        })
    }
}

/// The value under `preferred` (the `.utf-8` variant) if it is a string, else under `plain`.
fn utf8_variant<'a>(dict: &Value<'a>, preferred: &[u8], plain: &[u8]) -> Option<&'a [u8]> {
    dict.get(preferred)
        .and_then(Value::as_bytes)
        .or_else(|| dict.get(plain).and_then(Value::as_bytes))
}

/// The value under `preferred` if present, else under `plain`, with the key used.
fn utf8_variant_value<'v, 'a>(
    dict: &'v Value<'a>,
    preferred: &'static str,
    plain: &'static str,
) -> Option<(&'v Value<'a>, &'static str)> {
    match dict.get(preferred.as_bytes()) {
        Some(value) if value.as_bytes().is_some() || value.as_list().is_some() => {
            Some((value, preferred))
        }
        _ => dict.get(plain.as_bytes()).map(|value| (value, plain)),
    }
}

/// BEP 12 tiers, leniently: a bare string counts as a tier of one; empty tiers and non-UTF-8 URLs go.
fn tiers<'a>(value: &Value<'a>) -> Vec<Vec<&'a str>> {
    let Some(list) = value.as_list() else {
        return Vec::new();
    };
    list.iter()
        .map(|tier| match tier.kind() {
            Kind::List(urls) => urls
                .iter()
                .filter_map(Value::as_str)
                .filter(|u| !u.is_empty())
                .collect(),
            Kind::Bytes(_) => tier
                .as_str()
                .filter(|u| !u.is_empty())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        })
        .filter(|tier: &Vec<&str>| !tier.is_empty())
        .collect()
}

/// BEP 19 `url-list` (a string or a list of strings) and BEP 17 `httpseeds`.
fn url_list<'a>(value: &Value<'a>) -> Vec<&'a str> {
    match value.kind() {
        Kind::Bytes(_) => value
            .as_str()
            .filter(|u| !u.is_empty())
            .into_iter()
            .collect(),
        Kind::List(urls) => urls
            .iter()
            .filter_map(Value::as_str)
            .filter(|u| !u.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// DHT `nodes`: a list of `[host, port]` pairs; malformed entries are skipped.
fn nodes<'a>(value: &Value<'a>) -> Vec<(&'a str, u16)> {
    let Some(list) = value.as_list() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|node| match node.as_list()? {
            [host, port] => {
                let port = u16::try_from(port.as_int()?).ok().filter(|&p| p != 0)?;
                Some((host.as_str().filter(|h| !h.is_empty())?, port))
            }
            _ => None,
        })
        .collect()
}

fn parse_info<'a>(ctx: &Ctx, info: &Value<'a>) -> Result<Info<'a>, MetainfoError> {
    if info.as_dict().is_none() {
        return Err(ctx.fail("info", info, K::WrongType("a dictionary")));
    }
    let (name_value, name_key) = utf8_variant_value(info, "name.utf-8", "name")
        .ok_or_else(|| ctx.fail("info.name", info, K::Missing))?;
    let name_field = || format!("info.{name_key}");
    let name = ctx.bytes(name_value, &name_field())?;
    ctx.component(name, name_value, name_field)?;

    let length_value = info
        .get(b"piece length")
        .ok_or_else(|| ctx.fail("info.piece length", info, K::Missing))?;
    let raw_piece_length = ctx.int(length_value, "info.piece length")?;
    let bad_length = |rule| {
        ctx.fail(
            "info.piece length",
            length_value,
            K::PieceLength(raw_piece_length, rule),
        )
    };

    let meta_version = match info.get(b"meta version") {
        Some(value) => match ctx.int(value, "info.meta version")? {
            2 => true,
            other => return Err(ctx.fail("info.meta version", value, K::MetaVersion(other))),
        },
        None => false,
    };
    let pieces_value = info.get(b"pieces");
    let version = match (pieces_value.is_some(), meta_version) {
        (true, false) => MetaVersion::V1,
        (false, true) => MetaVersion::V2,
        (true, true) => MetaVersion::Hybrid,
        (false, false) => return Err(ctx.fail("info.pieces", info, K::Missing)),
    };

    let piece_length = u64::try_from(raw_piece_length).map_err(|_| bad_length("negative"))?;
    if piece_length > MAX_PIECE_LENGTH {
        return Err(bad_length("more than 2 GiB"));
    }
    if version.has_v2() {
        // BEP 52: a power of two, at least 16 KiB.
        if piece_length < BLOCK_SIZE {
            return Err(bad_length("less than 16 KiB, the v2 minimum"));
        }
        if !piece_length.is_power_of_two() {
            return Err(bad_length("not a power of two, as v2 requires"));
        }
    } else if piece_length < MIN_V1_PIECE_LENGTH {
        return Err(bad_length("less than 1 KiB"));
    }

    let private = info
        .get(b"private")
        .and_then(Value::as_int)
        .is_some_and(|p| p != 0);

    let v2_files = if version.has_v2() {
        let tree = info
            .get(b"file tree")
            .ok_or_else(|| ctx.fail("info.file tree", info, K::Missing))?;
        Some(parse_file_tree(ctx, tree, piece_length)?)
    } else {
        None
    };

    let (pieces, multi_file, files) = if version.has_v1() {
        let pieces_value = pieces_value.expect("v1 has pieces");
        let pieces = ctx.bytes(pieces_value, "info.pieces")?;
        if pieces.len() % 20 != 0 {
            return Err(ctx.fail(
                "info.pieces",
                pieces_value,
                K::PiecesNotMultipleOf20(pieces.len()),
            ));
        }
        let (multi_file, mut files) = parse_v1_files(ctx, info, name)?;
        let total = files.last().map_or(0, |f| f.offset + f.length);
        if total == 0 {
            return Err(ctx.fail("info", info, K::NoData));
        }
        let expected = total.div_ceil(piece_length);
        if expected > MAX_PIECES {
            return Err(ctx.fail("info.pieces", pieces_value, K::TooManyPieces(expected)));
        }
        let found = (pieces.len() / 20) as u64;
        if found != expected {
            return Err(ctx.fail(
                "info.pieces",
                pieces_value,
                K::PieceCount { found, expected },
            ));
        }
        if let Some((_, v2)) = &v2_files {
            match_hybrid(ctx, info, &mut files, v2, piece_length)?;
        }
        (pieces, multi_file, files)
    } else {
        let (multi_file, files) = v2_files.expect("v2 has a file tree");
        let pieces: u64 = files.iter().map(|f| f.length.div_ceil(piece_length)).sum();
        if pieces == 0 {
            return Err(ctx.fail("info.file tree", info, K::NoData));
        }
        if pieces > MAX_PIECES {
            return Err(ctx.fail("info.file tree", info, K::TooManyPieces(pieces)));
        }
        (&b""[..], multi_file, files)
    };

    check_duplicates(ctx, info, multi_file, &files)?;
    Ok(Info {
        name,
        piece_length,
        pieces,
        private,
        version,
        multi_file,
        files,
        raw: info.raw(),
    })
}

/// The v1 file list: `length` for a single file, `files` for several. Offsets include padding files.
fn parse_v1_files<'a>(
    ctx: &Ctx,
    info: &Value<'a>,
    name: &'a [u8],
) -> Result<(bool, Vec<FileEntry<'a>>), MetainfoError> {
    let Some(files_value) = info.get(b"files") else {
        let length_value = info
            .get(b"length")
            .ok_or_else(|| ctx.fail("info.length", info, K::Missing))?;
        let length = ctx.length(length_value, || "info.length".into())?;
        let attributes = FileAttributes::parse(
            info.get(b"attr")
                .and_then(Value::as_bytes)
                .unwrap_or_default(),
        );
        let file = FileEntry {
            path: vec![name],
            length,
            offset: 0,
            attributes,
            symlink_target: None,
            pieces_root: None,
        };
        return Ok((false, vec![file]));
    };
    let list = files_value
        .as_list()
        .ok_or_else(|| ctx.fail("info.files", files_value, K::WrongType("a list")))?;
    if list.is_empty() {
        return Err(ctx.fail("info.files", files_value, K::NoData));
    }
    if list.len() > MAX_FILES {
        return Err(ctx.fail("info.files", files_value, K::TooManyFiles(list.len())));
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset = 0u64;
    for (i, entry) in list.iter().enumerate() {
        if entry.as_dict().is_none() {
            return Err(ctx.fail(
                format!("info.files[{i}]"),
                entry,
                K::WrongType("a dictionary"),
            ));
        }
        let length_value = entry
            .get(b"length")
            .ok_or_else(|| ctx.fail(format!("info.files[{i}].length"), entry, K::Missing))?;
        let length = ctx.length(length_value, || format!("info.files[{i}].length"))?;
        let (path_value, path_key) = utf8_variant_value(entry, "path.utf-8", "path")
            .ok_or_else(|| ctx.fail(format!("info.files[{i}].path"), entry, K::Missing))?;
        let path = ctx.path(path_value, || format!("info.files[{i}].{path_key}"))?;
        let attributes = FileAttributes::parse(
            entry
                .get(b"attr")
                .and_then(Value::as_bytes)
                .unwrap_or_default(),
        );
        let symlink_target =
            symlink_target(ctx, entry, &attributes, || format!("info.files[{i}]"))?;
        files.push(FileEntry {
            path,
            length,
            offset,
            attributes,
            symlink_target,
            pieces_root: None,
        });
        offset = offset
            .checked_add(length)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or_else(|| {
                ctx.fail(
                    format!("info.files[{i}].length"),
                    length_value,
                    K::TotalLengthOverflow,
                )
            })?;
    }
    Ok((true, files))
}

fn symlink_target<'a>(
    ctx: &Ctx,
    entry: &Value<'a>,
    attributes: &FileAttributes,
    field: impl Fn() -> String,
) -> Result<Option<Vec<&'a [u8]>>, MetainfoError> {
    if !attributes.symlink {
        return Ok(None);
    }
    // BEP 47: the target is relative to the torrent's root directory; its components obey the same rules as
    // paths, so it can never point outside.
    let value = entry
        .get(b"symlink path")
        .ok_or_else(|| ctx.fail(format!("{}.symlink path", field()), entry, K::Missing))?;
    ctx.path(value, || format!("{}.symlink path", field()))
        .map(Some)
}

/// Walks a BEP 52 `file tree`: returns whether it is a multi-file tree, and the files in tree order with
/// piece-aligned offsets.
fn parse_file_tree<'a>(
    ctx: &Ctx,
    tree: &Value<'a>,
    piece_length: u64,
) -> Result<(bool, Vec<FileEntry<'a>>), MetainfoError> {
    let entries = tree
        .as_dict()
        .ok_or_else(|| ctx.fail("info.file tree", tree, K::WrongType("a dictionary")))?;
    let single = matches!(entries, [(_, node)] if node.get(b"").is_some());
    let mut files = Vec::new();
    let mut path = Vec::new();
    let mut offset = 0;
    walk_tree(ctx, tree, &mut path, &mut files, &mut offset, piece_length)?;
    if files.is_empty() {
        return Err(ctx.fail("info.file tree", tree, K::NoData));
    }
    Ok((!single, files))
}

fn tree_field(path: &[&[u8]]) -> String {
    let mut field = String::from("info.file tree");
    for component in path {
        field.push('.');
        field.push_str(&String::from_utf8_lossy(component));
    }
    field
}

fn walk_tree<'a>(
    ctx: &Ctx,
    node: &Value<'a>,
    path: &mut Vec<&'a [u8]>,
    files: &mut Vec<FileEntry<'a>>,
    offset: &mut u64,
    piece_length: u64,
) -> Result<(), MetainfoError> {
    let entries = node
        .as_dict()
        .ok_or_else(|| ctx.fail(tree_field(path), node, K::WrongType("a dictionary")))?;
    if entries.is_empty() {
        return Err(ctx.fail(tree_field(path), node, K::FileTree("an empty directory")));
    }
    for (name, child) in entries {
        if name.is_empty() {
            return Err(ctx.fail(
                tree_field(path),
                node,
                K::FileTree("a file entry `\"\"` beside other names"),
            ));
        }
        ctx.component(name, child, || tree_field(path))?;
        path.push(name);
        match child.get(b"") {
            Some(file) => {
                if child.as_dict().is_some_and(|d| d.len() != 1) {
                    return Err(ctx.fail(
                        tree_field(path),
                        child,
                        K::FileTree("a file entry `\"\"` beside other names"),
                    ));
                }
                if files.len() >= MAX_FILES {
                    return Err(ctx.fail(
                        tree_field(path),
                        child,
                        K::TooManyFiles(files.len() + 1),
                    ));
                }
                files.push(parse_tree_file(ctx, file, path, *offset)?);
                let length = files.last().map_or(0, |f| f.length);
                // BEP 52: each file starts on a piece boundary.
                *offset = offset
                    .checked_add(length.div_ceil(piece_length).saturating_mul(piece_length))
                    .filter(|&t| t <= i64::MAX as u64)
                    .ok_or_else(|| ctx.fail(tree_field(path), file, K::TotalLengthOverflow))?;
            }
            None => walk_tree(ctx, child, path, files, offset, piece_length)?,
        }
        path.pop();
    }
    Ok(())
}

fn parse_tree_file<'a>(
    ctx: &Ctx,
    file: &Value<'a>,
    path: &[&'a [u8]],
    offset: u64,
) -> Result<FileEntry<'a>, MetainfoError> {
    let field = |key: &str| format!("{}.\"\".{key}", tree_field(path));
    if file.as_dict().is_none() {
        return Err(ctx.fail(tree_field(path), file, K::WrongType("a dictionary")));
    }
    let length_value = file
        .get(b"length")
        .ok_or_else(|| ctx.fail(field("length"), file, K::Missing))?;
    let length = ctx.length(length_value, || field("length"))?;
    let attributes = FileAttributes::parse(
        file.get(b"attr")
            .and_then(Value::as_bytes)
            .unwrap_or_default(),
    );
    let pieces_root = match file.get(b"pieces root") {
        Some(root) => {
            let bytes = ctx.bytes(root, &field("pieces root"))?;
            let root_hash: &[u8; 32] = bytes.try_into().map_err(|_| {
                ctx.fail(field("pieces root"), root, K::HashLength(bytes.len(), 32))
            })?;
            (length > 0).then_some(root_hash)
        }
        None if length > 0 && !attributes.symlink => {
            return Err(ctx.fail(field("pieces root"), file, K::Missing));
        }
        None => None,
    };
    let symlink_target = symlink_target(ctx, file, &attributes, || {
        format!("{}.\"\"", tree_field(path))
    })?;
    Ok(FileEntry {
        path: path.to_vec(),
        length,
        offset,
        attributes,
        symlink_target,
        pieces_root,
    })
}

/// BEP 52: the v1 files of a hybrid torrent, padding left out, must be the v2 files in the same order,
/// each starting on a piece boundary. Copies each pieces root into the v1 entry.
fn match_hybrid<'a>(
    ctx: &Ctx,
    info: &Value<'a>,
    v1: &mut [FileEntry<'a>],
    v2: &[FileEntry<'a>],
    piece_length: u64,
) -> Result<(), MetainfoError> {
    let mismatch = |what: String| ctx.fail("info", info, K::HybridMismatch(what));
    let mut v2_files = v2.iter();
    for file in v1.iter_mut().filter(|f| !f.is_padding()) {
        let Some(other) = v2_files.next() else {
            return Err(mismatch(format!(
                "{} has no v2 counterpart",
                String::from_utf8_lossy(&file.path.join(&b'/'))
            )));
        };
        if file.path != other.path || file.length != other.length {
            return Err(mismatch(format!(
                "{} ({} bytes) against {} ({} bytes)",
                String::from_utf8_lossy(&file.path.join(&b'/')),
                file.length,
                String::from_utf8_lossy(&other.path.join(&b'/')),
                other.length
            )));
        }
        if file.length > 0 && file.offset % piece_length != 0 {
            return Err(mismatch(format!(
                "{} does not start on a piece boundary",
                String::from_utf8_lossy(&file.path.join(&b'/'))
            )));
        }
        file.pieces_root = other.pieces_root;
    }
    if let Some(extra) = v2_files.next() {
        return Err(mismatch(format!(
            "{} has no v1 counterpart",
            String::from_utf8_lossy(&extra.path.join(&b'/'))
        )));
    }
    Ok(())
}

/// HOSTILE 16: two files that would land on the same path (after sanitizing), or a file whose path is
/// another file's directory. Padding files are never written and may share their conventional names.
fn check_duplicates(
    ctx: &Ctx,
    info: &Value<'_>,
    multi_file: bool,
    files: &[FileEntry<'_>],
) -> Result<(), MetainfoError> {
    if !multi_file {
        return Ok(());
    }
    let mut paths: Vec<Vec<Cow<'_, str>>> = files
        .iter()
        .filter(|f| !f.is_padding())
        .map(|f| f.path.iter().map(|c| sanitize_component(c)).collect())
        .collect();
    paths.sort_unstable();
    for pair in paths.windows(2) {
        if pair[1].starts_with(&pair[0]) {
            return Err(ctx.fail("info.files", info, K::DuplicatePath(pair[0].join("/"))));
        }
    }
    Ok(())
}

/// BEP 52 `piece layers`: each file larger than a piece needs a layer of `ceil(length / piece length)`
/// hashes whose merkle root is the file's pieces root.
fn parse_piece_layers<'a>(
    ctx: &Ctx,
    layers: &Value<'a>,
    info: &Info<'a>,
) -> Result<Vec<PieceLayer<'a>>, MetainfoError> {
    let entries = layers
        .as_dict()
        .ok_or_else(|| ctx.fail("piece layers", layers, K::WrongType("a dictionary")))?;
    let mut out = Vec::new();
    for file in &info.files {
        let Some(root) = file.pieces_root else {
            continue;
        };
        if file.length <= info.piece_length {
            continue;
        }
        let field = || format!("piece layers.{}", crate::hash::to_hex(root));
        let Some((_, value)) = entries.iter().find(|(key, _)| *key == root.as_slice()) else {
            return Err(ctx.fail(
                field(),
                layers,
                K::PieceLayer("missing for a file larger than one piece"),
            ));
        };
        let layer = ctx.bytes(value, &field())?;
        let pieces = file.length.div_ceil(info.piece_length);
        if layer.len() as u64 != pieces * 32 {
            return Err(ctx.fail(
                field(),
                value,
                K::PieceLayer("has the wrong number of hashes for its file"),
            ));
        }
        let hashes: Vec<Hash256> = layer
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect();
        if merkle::layer_root(&hashes, info.piece_length) != *root {
            return Err(ctx.fail(
                field(),
                value,
                K::PieceLayer("does not hash to the file's pieces root"),
            ));
        }
        if !out.iter().any(|(r, _)| r == &root) {
            out.push((root, layer));
        }
    }
    Ok(out)
}
