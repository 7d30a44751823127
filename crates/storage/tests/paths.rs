//! Path containment on a real file system (HOSTILE 12–17, test plan T7): the files of torrents with hostile
//! names are created under a temporary download directory, and a walk of its parent shows that nothing
//! was written anywhere else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use shoal_bencode::OwnedValue as V;
use shoal_metainfo::Metainfo;
use shoal_storage::{FileEntry, Layout, Storage, StorageError, StorageOptions};

/// Names the metainfo parser accepts (sanitizing some): escapes spelled as ordinary characters, Windows
/// device names and characters, control characters, bidi controls, invalid UTF-8 and overlong names.
/// Distinct after sanitizing, so they can share one torrent. Their sanitized forms are frozen in
/// `crates/metainfo/tests/paths.rs`.
fn hostile_names() -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = [
        &b"..."[..],
        b"..a",
        b".hidden",
        b" ",
        b"-rf",
        b"~",
        b"$HOME",
        b"%2e%2e",
        b"..%2f..%2fetc",
        b"ab:c",
        b"file.txt:stream",
        b"CON",
        b"CON.txt",
        b"nul.txt",
        b"COM1",
        b"LPT9",
        b"trailing.",
        b"name ",
        b"a*b?c",
        b"<>|\"",
        b"esc\x1b[31mred",
        b"\x1b]0;title\x07",
        b"new\nline",
        b"cr\r",
        b"del\x7f",
        b"\x01",
        b"\xff\xfe",
        b"\xc0\xae\xc0\xae",
        b"\xed\xa0\x80",
        "gpj\u{202E}exe.txt".as_bytes(),
        "\u{2067}rtl".as_bytes(),
        "\u{200E}lrm".as_bytes(),
        "\u{202A}\u{202B}\u{202C}\u{202D}".as_bytes(),
        "alm\u{061C}x".as_bytes(),
        "nel\u{85}".as_bytes(),
        "..\u{FF0F}..\u{FF0F}etc".as_bytes(),
        "a\u{2215}b".as_bytes(),
        "日本語.txt".as_bytes(),
    ]
    .into_iter()
    .map(<[u8]>::to_vec)
    .collect();
    names.push(vec![b'a'; 300]);
    names.push([&[b'b'; 300][..], b".mkv"].concat());
    names.push("日".repeat(100).into_bytes());
    names.push(vec![b'.'; 300]);
    names.push(vec![1; 300]);
    names
}

/// Components the parser must refuse: each would name something other than one entry of the directory.
const REFUSED: &[&[u8]] = &[
    b"",
    b".",
    b"..",
    b"../../etc/passwd",
    b"..\\..\\Windows\\win.ini",
    b"/etc/passwd",
    b"x /../../Startup/a.exe",
    b"\\\\host\\share",
    b"C:\\x",
    b"c:",
    b"a:b",
    b"a\0b",
];

fn bytes(raw: &[u8]) -> V {
    V::Bytes(raw.to_vec())
}

fn dict(entries: Vec<(&str, V)>) -> V {
    V::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// A v1 torrent with 16 KiB pieces; `files` empty makes it single-file (`name`, 10 bytes).
fn torrent(name: &[u8], files: &[(Vec<Vec<u8>>, u64)]) -> Vec<u8> {
    let total: u64 = if files.is_empty() {
        10
    } else {
        files.iter().map(|(_, len)| len).sum()
    };
    let mut info = vec![
        ("name", bytes(name)),
        ("piece length", V::Int(16_384)),
        (
            "pieces",
            bytes(&vec![0; total.div_ceil(16_384) as usize * 20]),
        ),
    ];
    if files.is_empty() {
        info.push(("length", V::Int(10)));
    } else {
        let list = files
            .iter()
            .map(|(path, len)| {
                dict(vec![
                    ("length", V::Int(*len as i64)),
                    ("path", V::List(path.iter().map(|c| bytes(c)).collect())),
                ])
            })
            .collect();
        info.push(("files", V::List(list)));
    }
    dict(vec![("info", dict(info))]).to_bytes()
}

/// Every file and directory under `dir` (not following symlinks).
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}

/// A temporary parent holding the download directory `save`, a sibling directory with a file, and a
/// file beside `save`: anything written outside `save` shows up in [`listing`] of the parent.
struct Sandbox {
    parent: tempfile::TempDir,
    before: BTreeSet<PathBuf>,
}

impl Sandbox {
    fn new() -> Self {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("save")).unwrap();
        std::fs::create_dir(parent.path().join("outside")).unwrap();
        std::fs::write(parent.path().join("outside/keep"), b"keep").unwrap();
        std::fs::write(parent.path().join("beside"), b"beside").unwrap();
        let before = listing(parent.path());
        Self { parent, before }
    }

    fn save(&self) -> PathBuf {
        self.parent.path().join("save")
    }

    /// Asserts that everything new under the parent lies inside `save` and that exactly `expected` (paths
    /// relative to `save`) exist there as regular files, with their directories; returns how many.
    fn assert_contained(&self, expected: &BTreeSet<PathBuf>) -> usize {
        let save = self.save();
        let after = listing(self.parent.path());
        let outside: BTreeSet<_> = after.iter().filter(|p| !p.starts_with(&save)).collect();
        let before: BTreeSet<_> = self
            .before
            .iter()
            .filter(|p| !p.starts_with(&save))
            .collect();
        assert_eq!(outside, before, "written outside the download directory");
        assert_eq!(
            std::fs::read(self.parent.path().join("outside/keep")).unwrap(),
            b"keep"
        );
        assert_eq!(
            std::fs::read(self.parent.path().join("beside")).unwrap(),
            b"beside"
        );
        let real_save = save.canonicalize().unwrap();
        let mut files = BTreeSet::new();
        for path in after.iter().filter(|p| p.starts_with(&save) && **p != save) {
            let meta = std::fs::symlink_metadata(path).unwrap();
            assert!(meta.is_dir() || meta.is_file(), "{path:?} is {meta:?}");
            assert!(path.canonicalize().unwrap().starts_with(&real_save));
            if meta.is_file() {
                files.insert(path.strip_prefix(&save).unwrap().to_path_buf());
            }
        }
        assert_eq!(&files, expected);
        files.len()
    }
}

/// Creates and writes every file of `torrent` under `save`; returns the files' relative paths.
fn download(torrent: &[u8], save: &Path) -> BTreeSet<PathBuf> {
    let parsed = Metainfo::from_bytes(torrent).unwrap();
    let layout = Layout::from_info(&parsed.info).unwrap();
    let storage = Storage::new(save, layout, StorageOptions::default()).unwrap();
    let layout = storage.layout();
    for piece in 0..layout.piece_count() {
        let len = layout.piece_len(piece).unwrap() as usize;
        storage
            .write_block(piece, 0, &vec![piece as u8 + 1; len])
            .unwrap();
    }
    storage.create_empty_files().unwrap();
    storage.sync_all().unwrap();
    for (i, span) in layout.files().iter().enumerate() {
        let on_disk = std::fs::read(storage.file_path(i)).unwrap();
        assert_eq!(on_disk.len() as u64, span.length(), "{:?}", span.path());
    }
    layout
        .files()
        .iter()
        .map(|span| span.path().to_path_buf())
        .collect()
}

/// One multi-file torrent holding every hostile name as a file at the top, as a directory with a file
/// in it, and as an empty file two levels down: all files land inside the download directory.
#[test]
fn hostile_names_in_one_torrent_stay_inside_the_download_directory() {
    let names = hostile_names();
    assert!(names.len() >= 40, "{} names", names.len());
    let mut files = Vec::new();
    for (i, name) in names.iter().enumerate() {
        files.push((vec![name.clone()], 1000 + i as u64));
        files.push((vec![b"nested".to_vec(), name.clone(), b"f".to_vec()], 7));
        files.push((vec![b"empty".to_vec(), b"x".to_vec(), name.clone()], 0));
    }
    let sandbox = Sandbox::new();
    let torrent = torrent("root\u{202E}".as_bytes(), &files);
    let expected = download(&torrent, &sandbox.save());
    assert_eq!(expected.len(), names.len() * 3);
    assert!(expected.iter().all(|p| p.starts_with("root_")));
    assert_eq!(sandbox.assert_contained(&expected), names.len() * 3);
}

/// Each hostile name as the name of a single-file torrent, and of a multi-file torrent's directory.
#[test]
fn hostile_torrent_names_stay_inside_the_download_directory() {
    let mut written = 0;
    for name in hostile_names() {
        let sandbox = Sandbox::new();
        let expected = download(&torrent(&name, &[]), &sandbox.save());
        assert_eq!(expected.len(), 1);
        written += sandbox.assert_contained(&expected);

        let sandbox = Sandbox::new();
        let files = [(vec![b"a".to_vec()], 5), (vec![name.clone()], 3)];
        let expected = download(&torrent(&name, &files), &sandbox.save());
        written += sandbox.assert_contained(&expected);
    }
    assert!(written >= 120);
}

/// Refused names never reach storage: the torrent does not parse, and storage refuses such paths itself
/// when handed them directly; either way nothing is created.
#[test]
fn refused_names_create_nothing() {
    let sandbox = Sandbox::new();
    for raw in REFUSED {
        assert!(Metainfo::from_bytes(&torrent(raw, &[])).is_err(), "{raw:?}");
        let files = [(vec![b"ok".to_vec()], 5), (vec![raw.to_vec()], 3)];
        assert!(
            Metainfo::from_bytes(&torrent(b"root", &files)).is_err(),
            "{raw:?}"
        );
    }
    for path in [
        "",
        ".",
        "..",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "./a",
        "a//b",
        "a/",
        "a\0b",
    ] {
        let err = Layout::new(vec![FileEntry::new(path, 3)], 4).unwrap_err();
        assert!(
            matches!(err, StorageError::UnsafePath { .. }),
            "{path:?}: {err}"
        );
    }
    // Two files on one path, which the parser refuses too, are refused by storage.
    for (one, two) in [("a", "a"), ("a", "a/b")] {
        let files = vec![FileEntry::new(one, 3), FileEntry::new(two, 3)];
        let err = Layout::new(files, 4).unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidLayout(_)),
            "{one} and {two}: {err}"
        );
    }
    assert_eq!(sandbox.assert_contained(&BTreeSet::new()), 0);
}

/// A symlink planted under the download directory, at the name a hostile component sanitizes to, is never
/// followed: the files behind it fail with `UnsafePath`, the others are written, and the link's target
/// is untouched.
#[test]
fn planted_symlinks_at_sanitized_names_are_not_followed() {
    let sandbox = Sandbox::new();
    let root = sandbox.save().join("root");
    std::fs::create_dir(&root).unwrap();
    let outside = sandbox.parent.path().join("outside");
    // `esc\x1b` sanitizes to `esc_` (a directory), `gpj\u{202E}` to `gpj_` (a file).
    std::os::unix::fs::symlink(&outside, root.join("esc_")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep"), root.join("gpj_")).unwrap();
    let files = [
        (vec![b"esc\x1b".to_vec(), b"keep".to_vec()], 4),
        (vec!["gpj\u{202E}".as_bytes().to_vec()], 4),
        (vec![b"fine".to_vec()], 4),
    ];
    let bytes = torrent(b"root", &files);
    let parsed = Metainfo::from_bytes(&bytes).unwrap();
    let layout = Layout::from_info(&parsed.info).unwrap();
    let storage = Storage::new(sandbox.save(), layout, StorageOptions::default()).unwrap();
    for piece_offset in [0, 4] {
        let err = storage.write_block(0, piece_offset, b"evil").unwrap_err();
        assert!(matches!(err, StorageError::UnsafePath { .. }), "{err}");
    }
    storage.write_block(0, 8, b"good").unwrap();
    assert_eq!(std::fs::read(root.join("fine")).unwrap(), b"good");
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
    let links: Vec<_> = ["esc_", "gpj_"]
        .iter()
        .map(|name| std::fs::symlink_metadata(root.join(name)).unwrap())
        .collect();
    assert!(links.iter().all(|meta| meta.file_type().is_symlink()));
}
