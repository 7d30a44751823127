//! Path containment (HOSTILE 12–16, test plan T7): hostile names in single-file, multi-file and v2 torrents
//! are refused, or sanitized so that writing every file under a real temporary directory stays inside it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use shoal_metainfo::{Metainfo, MetainfoErrorKind, PathProblem, safe_join};

/// Components that must make the parser refuse the torrent, with the rule they break.
const REFUSED: &[(&[u8], PathProblem)] = &[
    (b"", PathProblem::Empty),
    (b".", PathProblem::CurrentDir),
    (b"..", PathProblem::ParentDir),
    (b"../../etc/passwd", PathProblem::Separator),
    (b"../", PathProblem::Separator),
    (b"..\\", PathProblem::Separator),
    (b"..\\..\\Windows\\win.ini", PathProblem::Separator),
    (b"/etc/passwd", PathProblem::Separator),
    (b"/", PathProblem::Separator),
    (b"//", PathProblem::Separator),
    (b"/..", PathProblem::Separator),
    (b"\\", PathProblem::Separator),
    (b"./a", PathProblem::Separator),
    (b"a/..", PathProblem::Separator),
    (b"a/b", PathProblem::Separator),
    (b"x /../../Startup/a.exe", PathProblem::Separator),
    (b"\\\\host\\share", PathProblem::Separator),
    (b"\\\\?\\C:\\x", PathProblem::Separator),
    (b"C:\\x", PathProblem::DriveLetter),
    (b"C:", PathProblem::DriveLetter),
    (b"c:", PathProblem::DriveLetter),
    (b"D:x.txt", PathProblem::DriveLetter),
    (b"z:stream", PathProblem::DriveLetter),
    (b"a\0b", PathProblem::Nul),
    (b"\0", PathProblem::Nul),
    (b"name\0.txt", PathProblem::Nul),
];

/// Components that are accepted and must land inside the directory, with the name they get (frozen).
fn accepted() -> Vec<(Vec<u8>, String)> {
    let mut cases: Vec<(Vec<u8>, String)> = [
        (&b"plain.txt"[..], "plain.txt"),
        (b"...", "..."),
        (b"..a", "..a"),
        (b".hidden", ".hidden"),
        (b" ", " "),
        (b"-rf", "-rf"),
        (b"~", "~"),
        (b"$HOME", "$HOME"),
        (b"%2e%2e", "%2e%2e"),
        (b"ab:c", if cfg!(windows) { "ab_c" } else { "ab:c" }),
        (b"CON", if cfg!(windows) { "_CON" } else { "CON" }),
        (
            b"nul.txt",
            if cfg!(windows) { "_nul.txt" } else { "nul.txt" },
        ),
        (b"COM1", if cfg!(windows) { "_COM1" } else { "COM1" }),
        (
            b"trailing.",
            if cfg!(windows) {
                "trailing_"
            } else {
                "trailing."
            },
        ),
        (b"esc\x1b[31mred", "esc_[31mred"),
        (b"new\nline", "new_line"),
        (b"cr\r", "cr_"),
        (b"\x7f", "_"),
        (b"\xff\xfe", "\u{FFFD}\u{FFFD}"),
        ("gpj\u{202E}exe.txt".as_bytes(), "gpj_exe.txt"),
        ("\u{2067}rtl".as_bytes(), "_rtl"),
        ("日本語.txt".as_bytes(), "日本語.txt"),
        ("emoji 🎉".as_bytes(), "emoji 🎉"),
    ]
    .into_iter()
    .map(|(raw, name)| (raw.to_vec(), name.to_owned()))
    .collect();
    cases.push((vec![b'a'; 300], "a".repeat(255)));
    cases.push((
        [&[b'b'; 300][..], b".mkv"].concat(),
        "b".repeat(251) + ".mkv",
    ));
    cases.push(("é".repeat(200).into_bytes(), "é".repeat(127)));
    cases
}

fn single(name: &[u8]) -> Vec<u8> {
    torrent(v1_single_info(name, 5))
}

fn multi(component: &[u8]) -> Vec<u8> {
    torrent(v1_multi_info(
        b"root",
        &[(&[b"ok", component], 5), (&[b"other"], 3)],
    ))
}

fn multi_name(name: &[u8]) -> Vec<u8> {
    torrent(v1_multi_info(name, &[(&[b"ok"], 5)]))
}

fn v2(component: &[u8]) -> Vec<u8> {
    let leaf = dict([("", dict([("length", i(5)), ("pieces root", b(&[1; 32]))]))]);
    let mut dir = dict([("other", leaf.clone())]);
    if let V::Dict(entries) = &mut dir {
        entries.insert(component.to_vec(), leaf);
    }
    torrent(dict([
        ("file tree", dict([("ok", dir)])),
        ("meta version", i(2)),
        ("name", s("root")),
        ("piece length", i(16384)),
    ]))
}

fn symlink(component: &[u8]) -> Vec<u8> {
    let files = list([
        dict([("length", i(5)), ("path", path(&[b"ok"]))]),
        dict([
            ("attr", s("l")),
            ("length", i(0)),
            ("path", path(&[b"link"])),
            ("symlink path", path(&[b"x", component])),
        ]),
    ]);
    torrent(dict([
        ("files", files),
        ("name", s("root")),
        ("piece length", i(16384)),
        ("pieces", b(&[0; 20])),
    ]))
}

type Shape = (&'static str, fn(&[u8]) -> Vec<u8>);
const SHAPES: &[Shape] = &[
    ("single", single),
    ("multi", multi),
    ("multi name", multi_name),
    ("v2", v2),
    ("symlink", symlink),
];

#[test]
fn hostile_components_are_refused_in_every_shape() {
    let mut checked = 0;
    for (raw, problem) in REFUSED {
        for (shape, make) in SHAPES {
            let bytes = make(raw);
            let err = Metainfo::from_bytes(&bytes)
                .expect_err(&format!("{shape}: {:?}", String::from_utf8_lossy(raw)));
            match err.kind() {
                MetainfoErrorKind::UnsafePath { problem: found, .. } => {
                    assert_eq!(
                        found,
                        problem,
                        "{shape}: {:?}",
                        String::from_utf8_lossy(raw)
                    );
                }
                // The v2 tree cannot hold an empty key as a name: it marks a file.
                MetainfoErrorKind::FileTree(_) if raw.is_empty() && *shape == "v2" => {}
                other => panic!("{shape}: {:?}: {other:?}", String::from_utf8_lossy(raw)),
            }
            assert!(err.to_string().starts_with("invalid torrent: `"), "{err}");
            checked += 1;
        }
    }
    assert!(checked >= 100);
}

/// Every file of every accepted torrent, written under a real directory, lands inside it; the directory's
/// parent is unchanged.
#[test]
fn accepted_names_stay_inside_the_download_directory() {
    let parent = tempfile::tempdir().unwrap();
    let save = parent.path().join("save");
    std::fs::create_dir(&save).unwrap();
    let before = listing(parent.path());
    let mut written = 0;
    for (raw, expected) in accepted() {
        for (shape, make) in SHAPES.iter().filter(|(shape, _)| *shape != "symlink") {
            let bytes = make(&raw);
            let torrent = Metainfo::from_bytes(&bytes).unwrap_or_else(|err| {
                panic!("{shape}: {:?}: {err}", String::from_utf8_lossy(&raw))
            });
            let info = &torrent.info;
            for file in &info.files {
                let relative = info.file_path(file);
                assert!(relative.is_relative());
                assert!(
                    relative
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
                );
                // The sanitized name appears as one component, exactly as frozen above.
                let has_name = relative
                    .components()
                    .any(|c| c.as_os_str() == expected.as_str());
                let is_other = file.path.last() == Some(&&b"other"[..])
                    || file.path.last() == Some(&&b"ok"[..]);
                assert!(
                    has_name || is_other,
                    "{shape}: {relative:?} lacks {expected:?}"
                );
                let target = save.join(&relative);
                let mut components = Vec::new();
                if info.multi_file {
                    components.push(info.name);
                }
                components.extend(file.path.iter().copied());
                assert_eq!(
                    safe_join(&save, components).as_deref(),
                    Some(target.as_path())
                );
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(&target, b"data").unwrap();
                let real = target.canonicalize().unwrap();
                assert!(real.starts_with(save.canonicalize().unwrap()), "{real:?}");
                written += 1;
            }
            std::fs::remove_dir_all(&save).unwrap();
            std::fs::create_dir(&save).unwrap();
        }
    }
    assert_eq!(listing(parent.path()), before);
    assert!(written > 100);
}

fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path);
        }
    }
    out
}
