//! Parsing and validating `.torrent` files: every field, and every way a hostile file can be wrong.

mod common;

use common::*;
use shoal_metainfo::{
    InfoHash, InfoHashV2, MetaVersion, Metainfo, MetainfoError, MetainfoErrorKind as K, PathProblem,
};

fn parse(bytes: &[u8]) -> Result<Metainfo<'_>, MetainfoError> {
    Metainfo::from_bytes(bytes)
}

/// Parses `bytes` and checks the error's field and kind.
fn check_err(bytes: &[u8], field: &str, kind: impl Fn(&K) -> bool) {
    let err = parse(bytes).expect_err("should be refused");
    assert_eq!(err.field(), field, "{err}");
    assert!(kind(err.kind()), "unexpected kind: {err}");
    // One readable line naming the field and the offset.
    let text = err.to_string();
    assert!(!text.contains('\n'));
    if !field.is_empty() {
        assert!(
            text.contains(&format!("`{field}` at byte {}", err.offset())),
            "{text}"
        );
    }
}

#[test]
fn v1_single_file_with_every_optional_field() {
    let mut info = v1_single_info(b"plain", 40_000);
    set(&mut info, "name.utf-8", s("caf\u{e9}.txt"));
    set(&mut info, "private", i(1));
    set(&mut info, "x-unknown", s("kept in the hash"));
    let bytes = dict([
        ("announce", s("http://a/announce")),
        (
            "announce-list",
            list([
                list([s("http://a/announce"), s("http://b/announce")]),
                list([]),
                list([s("udp://c:80")]),
            ]),
        ),
        ("url-list", s("http://seed/file")),
        ("httpseeds", list([s("http://hs/seed")])),
        (
            "nodes",
            list([
                list([s("router.example"), i(6881)]),
                list([s("bad"), i(0)]),
                s("junk"),
            ]),
        ),
        ("creation date", i(1_700_000_000)),
        ("comment", s("plain comment")),
        ("comment.utf-8", s("utf-8 comment")),
        ("created by", s("hand")),
        ("info", info),
    ])
    .to_bytes();
    let torrent = parse(&bytes).unwrap();
    assert_eq!(torrent.announce, Some("http://a/announce"));
    assert_eq!(
        torrent.announce_list,
        [
            vec!["http://a/announce", "http://b/announce"],
            vec!["udp://c:80"]
        ]
    );
    assert_eq!(torrent.trackers(), torrent.announce_list);
    assert_eq!(torrent.url_list, ["http://seed/file"]);
    assert_eq!(torrent.httpseeds, ["http://hs/seed"]);
    assert_eq!(torrent.nodes, [("router.example", 6881)]);
    assert_eq!(torrent.creation_date, Some(1_700_000_000));
    assert_eq!(torrent.comment, Some(&b"utf-8 comment"[..]));
    assert_eq!(torrent.created_by, Some(&b"hand"[..]));
    let info = &torrent.info;
    assert_eq!(info.name, "café.txt".as_bytes());
    assert!(info.private);
    assert!(!info.multi_file);
    assert_eq!(info.version, MetaVersion::V1);
    assert_eq!(info.piece_length, 16384);
    assert_eq!(info.piece_count(), 3);
    assert_eq!(info.total_size(), 40_000);
    assert_eq!(info.piece_hash(2), Some(&[0xAB; 20]));
    assert_eq!(info.piece_hash(3), None);
    assert_eq!(
        info.file_path(&info.files[0]),
        std::path::Path::new("café.txt")
    );
    // The unknown key is part of the hashed bytes.
    assert!(torrent.info_bytes.windows(9).any(|w| w == b"x-unknown"));
    let hashes = torrent.info_hashes();
    assert_eq!(hashes.v1, Some(InfoHash::of_info(torrent.info_bytes)));
    assert_eq!(hashes.v2, None);
}

#[test]
fn info_hash_is_over_the_raw_bytes_even_when_unsorted() {
    // Keys out of order and a duplicate: a re-encoding would sort and dedupe, changing the hash (HOSTILE 5).
    let info =
        b"d12:piece lengthi16384e4:name1:a6:lengthi5e4:name1:b6:pieces20:AAAAAAAAAAAAAAAAAAAAe";
    let mut bytes = b"d4:info".to_vec();
    bytes.extend_from_slice(info);
    bytes.push(b'e');
    let torrent = parse(&bytes).unwrap();
    assert_eq!(torrent.info_bytes, info);
    assert_eq!(torrent.info_hashes().v1, Some(InfoHash::of_info(info)));
    assert_ne!(
        torrent.info_hashes().v1,
        Some(InfoHash::of_info(&shoal_bencode::encode(
            &shoal_bencode::decode_with(info, &shoal_bencode::DecodeOptions::lenient()).unwrap()
        )))
    );
    // The first of duplicate keys wins.
    assert_eq!(torrent.info.name, b"a");
}

#[test]
fn known_info_hash() {
    // Hash computed independently: `printf 'd6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:01234567890123456789e' | sha1sum`
    let info = b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:01234567890123456789e";
    let bytes = [&b"d4:info"[..], info, b"e"].concat();
    let torrent = parse(&bytes).unwrap();
    let expected = {
        use std::process::Command;
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("printf '%s' '{}' | sha1sum", String::from_utf8_lossy(info)),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..40].to_owned()
    };
    assert_eq!(torrent.info_hashes().v1.unwrap().to_string(), expected);
}

#[test]
fn v1_multi_file_with_padding_symlinks_and_attributes() {
    let files = V::List(vec![
        dict([
            ("length", i(10)),
            ("path", path(&[b"a.bin"])),
            ("attr", s("x")),
        ]),
        dict([
            ("length", i(16374)),
            ("path", path(&[b".pad", b"16374"])),
            ("attr", s("p")),
        ]),
        dict([
            ("length", i(100)),
            ("path", path(&[b"dir", b"b.bin"])),
            ("path.utf-8", path(&[b"dir", b"b\xc3\xa9.bin"])),
        ]),
        dict([
            ("length", i(16284)),
            ("path", path(&[b".pad", b"16374"])),
            ("attr", s("p")),
        ]),
        dict([
            ("length", i(0)),
            ("path", path(&[b"link"])),
            ("attr", s("lh")),
            ("symlink path", path(&[b"dir", b"b.bin"])),
        ]),
        dict([("length", i(1)), ("path", path(&[b"z"]))]),
    ]);
    let info = dict([
        ("files", files),
        ("name", s("root")),
        ("piece length", i(16384)),
        ("pieces", b(&[1; 60])),
    ]);
    let bytes = torrent(info);
    let torrent = parse(&bytes).unwrap();
    let info = &torrent.info;
    assert!(info.multi_file);
    assert_eq!(info.files.len(), 6);
    assert_eq!(info.total_size(), 111);
    assert_eq!(info.piece_count(), 3);
    assert!(info.files[0].attributes.executable);
    assert!(info.files[1].is_padding());
    assert_eq!(info.files[2].offset, 16384);
    assert_eq!(
        info.file_path(&info.files[2]),
        std::path::Path::new("root/dir/bé.bin")
    );
    let link = &info.files[4];
    assert!(link.attributes.symlink && link.attributes.hidden);
    assert_eq!(
        link.symlink_target.as_deref(),
        Some(&[&b"dir"[..], b"b.bin"][..])
    );
    assert_eq!(info.files[5].offset, 32768);
}

#[test]
fn piece_length_rules() {
    let with = |length: i64| {
        let mut info = v1_single_info(b"a", 100);
        set(&mut info, "piece length", i(length));
        torrent(info)
    };
    for bad in [0, -1, -16384, 1023, (1 << 31) + 1, i64::MAX] {
        check_err(
            &with(bad),
            "info.piece length",
            |k| matches!(k, K::PieceLength(n, _) if *n == bad),
        );
    }
    // v1 accepts a piece length that is not a power of two.
    assert!(parse(&with(20_000)).is_ok());
    check_err(
        &torrent(dict([
            ("length", i(1)),
            ("name", s("a")),
            ("pieces", b(&[0; 20])),
        ])),
        "info.piece length",
        |k| matches!(k, K::Missing),
    );
    check_err(
        &with_info_field("piece length", s("16384")),
        "info.piece length",
        |k| matches!(k, K::WrongType(_)),
    );
}

fn with_info_field(key: &str, value: V) -> Vec<u8> {
    let mut info = v1_single_info(b"a", 100);
    set(&mut info, key, value);
    torrent(info)
}

#[test]
fn pieces_must_match_the_length() {
    check_err(
        &with_info_field("pieces", b(&[0; 19])),
        "info.pieces",
        |k| matches!(k, K::PiecesNotMultipleOf20(19)),
    );
    check_err(
        &with_info_field("pieces", b(&[0; 40])),
        "info.pieces",
        |k| {
            matches!(
                k,
                K::PieceCount {
                    found: 2,
                    expected: 1
                }
            )
        },
    );
    let mut info = v1_single_info(b"a", 100_000);
    set(&mut info, "pieces", b(&[0; 20]));
    check_err(&torrent(info), "info.pieces", |k| {
        matches!(
            k,
            K::PieceCount {
                found: 1,
                expected: 7
            }
        )
    });
    check_err(&with_info_field("pieces", i(3)), "info.pieces", |k| {
        matches!(k, K::WrongType(_))
    });
    let mut info = v1_single_info(b"a", 100);
    remove(&mut info, "pieces");
    check_err(&torrent(info), "info.pieces", |k| matches!(k, K::Missing));
}

#[test]
fn absurd_lengths_and_counts() {
    check_err(&with_info_field("length", i(-5)), "info.length", |k| {
        matches!(k, K::OutOfRange(-5, _))
    });
    check_err(&with_info_field("length", i(0)), "info", |k| {
        matches!(k, K::NoData)
    });
    // 2^21 + 1 pieces at 1 KiB each.
    let mut info = v1_single_info(b"a", 100);
    set(&mut info, "piece length", i(1024));
    set(&mut info, "length", i((1 << 31) + 1));
    check_err(&torrent(info), "info.pieces", |k| {
        matches!(k, K::TooManyPieces(_))
    });
    // A total that overflows.
    let info = v1_multi_info(b"d", &[(&[b"a"], i64::MAX), (&[b"b"], i64::MAX)]);
    check_err(&torrent(info), "info.files[1].length", |k| {
        matches!(k, K::TotalLengthOverflow)
    });
    let info = v1_multi_info(b"d", &[(&[b"a"], 5), (&[b"b"], -1)]);
    check_err(&torrent(info), "info.files[1].length", |k| {
        matches!(k, K::OutOfRange(-1, _))
    });
    let info = v1_multi_info(b"d", &[]);
    check_err(&torrent(info), "info.files", |k| matches!(k, K::NoData));
    let mut info = v1_multi_info(b"d", &[(&[b"a"], 5)]);
    set(
        &mut info,
        "files",
        list([dict([("length", i(5)), ("path", list([]))])]),
    );
    check_err(&torrent(info), "info.files[0].path", |k| {
        matches!(
            k,
            K::UnsafePath {
                problem: PathProblem::Empty,
                ..
            }
        )
    });
}

#[test]
fn structural_errors() {
    check_err(b"i5e", "", |k| matches!(k, K::WrongType(_)));
    check_err(b"de", "info", |k| matches!(k, K::Missing));
    check_err(b"d4:infoi1ee", "info", |k| matches!(k, K::WrongType(_)));
    check_err(b"d4:infod4:name", "", |k| matches!(k, K::Bencode(_)));
    check_err(b"d4:infodee", "info.name", |k| matches!(k, K::Missing));
    check_err(&with_info_field("name", b(b"")), "info.name", |k| {
        matches!(
            k,
            K::UnsafePath {
                problem: PathProblem::Empty,
                ..
            }
        )
    });
    check_err(
        &with_info_field("meta version", i(3)),
        "info.meta version",
        |k| matches!(k, K::MetaVersion(3)),
    );
    check_err(
        &with_info_field("meta version", i(2)),
        "info.file tree",
        |k| matches!(k, K::Missing),
    );
    let bytes = dict([("announce", b(b"\xff")), ("info", v1_single_info(b"a", 5))]).to_bytes();
    check_err(&bytes, "announce", |k| matches!(k, K::NotUtf8));
    // Bencode errors carry the decoder's offset.
    let err = parse(b"d4:infod4:namei03eee").unwrap_err();
    assert_eq!(err.offset(), 15);
    assert_eq!(
        err.to_string(),
        "invalid torrent: invalid bencode at byte 15: number has a leading zero"
    );
}

#[test]
fn duplicate_paths_are_refused_but_padding_may_repeat() {
    let info = v1_multi_info(b"d", &[(&[b"a"], 5), (&[b"a"], 6)]);
    check_err(
        &torrent(info),
        "info.files",
        |k| matches!(k, K::DuplicatePath(p) if p == "a"),
    );
    // A file `a` and a file `a/b`: `a` would have to be both.
    let info = v1_multi_info(b"d", &[(&[b"a"], 5), (&[b"a", b"b"], 6)]);
    check_err(
        &torrent(info),
        "info.files",
        |k| matches!(k, K::DuplicatePath(p) if p == "a"),
    );
    // Two names that sanitize to the same thing.
    let info = v1_multi_info(b"d", &[(&[b"x\x01"], 5), (&[b"x\x02"], 6)]);
    check_err(
        &torrent(info),
        "info.files",
        |k| matches!(k, K::DuplicatePath(p) if p == "x_"),
    );
    // Case differences are distinct files on case-sensitive systems.
    assert!(parse(&torrent(v1_multi_info(b"d", &[(&[b"A"], 5), (&[b"a"], 6)]))).is_ok());
}

// --- v2 and hybrid -------------------------------------------------------------------------------------

fn created(
    version: MetaVersion,
    files: &[(&str, usize)],
    piece_length: u64,
) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    for (name, length) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            (0..*length)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap();
    }
    let built = shoal_metainfo::TorrentBuilder::new(&root)
        .version(version)
        .piece_length(piece_length)
        .tracker_tier(["http://127.0.0.1:1/announce"])
        .build()
        .unwrap();
    (dir, built.bytes)
}

#[test]
fn v2_torrent_with_piece_layers() {
    let (_dir, bytes) = created(
        MetaVersion::V2,
        &[("big", 100_000), ("small", 20_000), ("empty", 0)],
        32768,
    );
    let torrent = parse(&bytes).unwrap();
    let info = &torrent.info;
    assert_eq!(info.version, MetaVersion::V2);
    assert!(info.pieces.is_empty());
    assert_eq!(info.piece_count(), 4 + 1);
    assert_eq!(info.total_size(), 120_000);
    let names: Vec<_> = info.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(names, [vec![&b"big"[..]], vec![b"empty"], vec![b"small"]]);
    assert_eq!(info.files[0].offset, 0);
    assert_eq!(info.files[2].offset, 4 * 32768);
    assert!(info.files[1].pieces_root.is_none());
    // Only the file larger than a piece has a layer.
    assert_eq!(torrent.piece_layers.len(), 1);
    assert_eq!(
        torrent
            .piece_layer(info.files[0].pieces_root.unwrap())
            .unwrap()
            .len(),
        4 * 32
    );
    let hashes = torrent.info_hashes();
    assert_eq!(hashes.v1, None);
    assert_eq!(hashes.v2, Some(InfoHashV2::of_info(torrent.info_bytes)));
    assert_eq!(hashes.wire(), Some(hashes.v2.unwrap().truncated()));
}

#[test]
fn tampered_piece_layers_are_refused() {
    let (_dir, bytes) = created(MetaVersion::V2, &[("big", 100_000)], 16384);
    let torrent = parse(&bytes).unwrap();
    let layer = torrent.piece_layers[0].1;
    let at = layer.as_ptr().addr() - bytes.as_ptr().addr();
    let mut bad = bytes.clone();
    bad[at + 5] ^= 1;
    let err = parse(&bad).unwrap_err();
    assert!(
        matches!(err.kind(), K::PieceLayer(m) if m.contains("pieces root")),
        "{err}"
    );
    assert!(err.field().starts_with("piece layers."));
}

#[test]
fn v2_single_file_and_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.bin");
    std::fs::write(&file, vec![9u8; 70_000]).unwrap();
    for version in [MetaVersion::V2, MetaVersion::Hybrid] {
        let built = shoal_metainfo::TorrentBuilder::new(&file)
            .version(version)
            .build()
            .unwrap();
        let torrent = parse(&built.bytes).unwrap();
        assert!(!torrent.info.multi_file);
        assert_eq!(torrent.info.version, version);
        assert_eq!(torrent.info.files[0].path, [b"one.bin"]);
        assert_eq!(torrent.info_hashes(), built.info_hashes);
        assert!(torrent.info.files[0].pieces_root.is_some());
    }
}

#[test]
fn hybrid_multi_file_has_pad_files_and_matching_lists() {
    let (_dir, bytes) = created(
        MetaVersion::Hybrid,
        &[("a", 1000), ("b/c", 40_000), ("d", 5)],
        16384,
    );
    let torrent = parse(&bytes).unwrap();
    let info = &torrent.info;
    assert_eq!(info.version, MetaVersion::Hybrid);
    let layout: Vec<(bool, u64, u64)> = info
        .files
        .iter()
        .map(|f| (f.is_padding(), f.offset, f.length))
        .collect();
    assert_eq!(
        layout,
        [
            (false, 0, 1000),
            (true, 1000, 15384),
            (false, 16384, 40_000),
            (true, 56384, 9152),
            (false, 65536, 5),
            (true, 65541, 16379),
        ]
    );
    assert_eq!(info.piece_count(), 5);
    assert!(
        info.files
            .iter()
            .filter(|f| !f.is_padding())
            .all(|f| f.pieces_root.is_some())
    );
    let hashes = torrent.info_hashes();
    assert!(hashes.v1.is_some() && hashes.v2.is_some());
}

#[test]
fn hybrid_whose_lists_disagree_is_refused() {
    let (_dir, bytes) = created(MetaVersion::Hybrid, &[("a", 1000), ("b", 2000)], 16384);
    // Rename `b` in the v1 list only (same length, so the bencode stays valid).
    let text = bytes.clone();
    let at = text.windows(9).position(|w| w == b"pathl1:be").unwrap();
    let mut bad = bytes.clone();
    bad[at + 7] = b'x';
    let err = parse(&bad).unwrap_err();
    assert!(matches!(err.kind(), K::HybridMismatch(_)), "{err}");
}

#[test]
fn v2_piece_length_rules() {
    let tree = dict([(
        "f",
        dict([("", dict([("length", i(5)), ("pieces root", b(&[1; 32]))]))]),
    )]);
    let info = |piece_length: i64| {
        torrent(dict([
            ("file tree", tree.clone()),
            ("meta version", i(2)),
            ("name", s("f")),
            ("piece length", i(piece_length)),
        ]))
    };
    assert!(parse(&info(16384)).is_ok());
    for bad in [8192, 16385, 49152] {
        check_err(
            &info(bad),
            "info.piece length",
            |k| matches!(k, K::PieceLength(n, _) if *n == bad),
        );
    }
}

#[test]
fn v2_file_tree_errors() {
    let with_tree = |tree: V| {
        torrent(dict([
            ("file tree", tree),
            ("meta version", i(2)),
            ("name", s("n")),
            ("piece length", i(16384)),
        ]))
    };
    let leaf = |length: i64| {
        dict([(
            "",
            dict([("length", i(length)), ("pieces root", b(&[1; 32]))]),
        )])
    };
    check_err(&with_tree(dict([])), "info.file tree", |k| {
        matches!(k, K::FileTree(_))
    });
    check_err(
        &with_tree(dict([("d", dict([]))])),
        "info.file tree.d",
        |k| matches!(k, K::FileTree(_)),
    );
    check_err(&with_tree(dict([("", leaf(5))])), "info.file tree", |k| {
        matches!(k, K::FileTree(_))
    });
    let mut mixed = leaf(5);
    set(&mut mixed, "other", leaf(5));
    check_err(&with_tree(dict([("f", mixed)])), "info.file tree.f", |k| {
        matches!(k, K::FileTree(_))
    });
    check_err(
        &with_tree(dict([("f", leaf(-1))])),
        "info.file tree.f.\"\".length",
        |k| matches!(k, K::OutOfRange(-1, _)),
    );
    let short_root = dict([("", dict([("length", i(5)), ("pieces root", b(&[1; 31]))]))]);
    check_err(
        &with_tree(dict([("f", short_root)])),
        "info.file tree.f.\"\".pieces root",
        |k| matches!(k, K::HashLength(31, 32)),
    );
    let no_root = dict([("", dict([("length", i(5))]))]);
    check_err(
        &with_tree(dict([("f", no_root)])),
        "info.file tree.f.\"\".pieces root",
        |k| matches!(k, K::Missing),
    );
    check_err(&with_tree(dict([("..", leaf(5))])), "info.file tree", |k| {
        matches!(
            k,
            K::UnsafePath {
                problem: PathProblem::ParentDir,
                ..
            }
        )
    });
    check_err(&with_tree(dict([("f", leaf(0))])), "info.file tree", |k| {
        matches!(k, K::NoData)
    });
    // A file larger than a piece without its layer, when `piece layers` is present.
    let bytes = dict([
        (
            "info",
            dict([
                ("file tree", dict([("f", leaf(40_000))])),
                ("meta version", i(2)),
                ("name", s("f")),
                ("piece length", i(16384)),
            ]),
        ),
        ("piece layers", dict([])),
    ])
    .to_bytes();
    let err = parse(&bytes).unwrap_err();
    assert!(matches!(err.kind(), K::PieceLayer(_)), "{err}");
}
