//! Properties: magnets format and parse back to the same value; arbitrary bytes never panic the parsers;
//! torrents built from generated files parse back with the builder's hashes and sizes.

use proptest::prelude::*;
use shoal_metainfo::{InfoHash, InfoHashV2, InfoHashes, Magnet, Metainfo};

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including `&`, `=`, `%`, `+` and spaces, which must survive percent-encoding.
    proptest::collection::vec(any::<char>(), 0..20).prop_map(|chars| chars.into_iter().collect())
}

fn magnet() -> impl Strategy<Value = Magnet> {
    (
        any::<Option<[u8; 20]>>(),
        any::<Option<[u8; 32]>>(),
        any::<bool>(),
        proptest::option::of(text()),
        proptest::collection::vec(
            text().prop_filter("empty values are dropped", |t| !t.is_empty()),
            0..4,
        ),
        proptest::collection::vec(any::<std::net::SocketAddr>(), 0..3),
        proptest::collection::vec((0u64..1000, 0u64..10), 0..4),
        any::<Option<u64>>(),
    )
        .prop_map(
            |(v1, v2, force_v1, display_name, trackers, peers, ranges, exact_length)| {
                let v1 = if v2.is_none() || force_v1 {
                    Some(v1.unwrap_or([7; 20]))
                } else {
                    v1
                };
                let mut deduped = Vec::new();
                for tracker in trackers {
                    if !deduped.contains(&tracker) {
                        deduped.push(tracker);
                    }
                }
                Magnet {
                    info_hashes: InfoHashes {
                        v1: v1.map(InfoHash),
                        v2: v2.map(InfoHashV2),
                    },
                    display_name,
                    web_seeds: deduped.iter().rev().cloned().collect(),
                    trackers: deduped,
                    // Flow info and scope ids have no place in `x.pe`.
                    peers: peers
                        .into_iter()
                        .map(|peer| match peer {
                            std::net::SocketAddr::V6(v6) => {
                                std::net::SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0).into()
                            }
                            v4 => v4,
                        })
                        .collect(),
                    select_only: ranges
                        .into_iter()
                        .map(|(start, len)| start..=start + len)
                        .collect(),
                    exact_length,
                }
            },
        )
}

proptest! {
    #[test]
    fn magnets_round_trip(magnet in magnet()) {
        let uri = magnet.to_string();
        prop_assert_eq!(Magnet::parse(&uri), Ok(magnet));
    }

    #[test]
    fn arbitrary_magnet_text_never_panics(text in "magnet:\\?[a-z.=&%0-9A-F:]{0,200}") {
        let _ = Magnet::parse(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::from_bytes(&bytes);
    }

    #[test]
    fn mutated_torrents_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/metainfo/libtorrent-hybrid.torrent")).unwrap();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        if let Ok(torrent) = Metainfo::from_bytes(&bytes) {
            for file in &torrent.info.files {
                prop_assert!(torrent.info.file_path(file).is_relative());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn created_torrents_parse_back(
        sizes in proptest::collection::vec(0usize..70_000, 1..5),
        version in prop_oneof![
            Just(shoal_metainfo::MetaVersion::V1),
            Just(shoal_metainfo::MetaVersion::V2),
            Just(shoal_metainfo::MetaVersion::Hybrid),
        ],
    ) {
        prop_assume!(sizes.iter().any(|&s| s > 0));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        for (i, size) in sizes.iter().enumerate() {
            let path = root.join(format!("d{}", i % 2)).join(format!("f{i}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![i as u8; *size]).unwrap();
        }
        let created = shoal_metainfo::TorrentBuilder::new(&root).version(version).piece_length(16384).build().unwrap();
        let torrent = Metainfo::from_bytes(&created.bytes).unwrap();
        prop_assert_eq!(torrent.info_hashes(), created.info_hashes);
        prop_assert_eq!(torrent.info.total_size(), sizes.iter().sum::<usize>() as u64);
        prop_assert_eq!(torrent.info.piece_count(), created.piece_count);
        prop_assert_eq!(torrent.info.version, version);
    }
}
