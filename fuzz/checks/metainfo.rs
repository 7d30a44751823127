// The invariants the metainfo fuzz target checks on every input. Shared, via `include!`/`#[path]`, by
// the fuzz target and by `crates/metainfo/tests/fuzz_corpus.rs`, which replays the committed corpus.

use shoal_metainfo::{Info, Metainfo, safe_join};

/// Parses `data` as a torrent; whatever is accepted must be internally consistent and path-safe.
pub fn check_metainfo(data: &[u8]) {
    let Ok(torrent) = Metainfo::from_bytes(data) else {
        return;
    };
    let info = &torrent.info;
    // The hashed bytes are the info dictionary's own span of the input, and parse again the same way.
    assert!(
        data.windows(torrent.info_bytes.len())
            .any(|w| w == torrent.info_bytes)
    );
    let again = Info::from_bytes(torrent.info_bytes).expect("the info dictionary parses alone");
    assert_eq!(&again, info);
    let hashes = torrent.info_hashes();
    assert_eq!(hashes.v1.is_some(), info.version.has_v1());
    assert_eq!(hashes.v2.is_some(), info.version.has_v2());
    assert!(info.piece_count() <= shoal_metainfo::MAX_PIECES);
    assert!(info.piece_count() > 0);
    // Every file's path stays inside any download directory (HOSTILE T1 `metainfo_parse`).
    let root = std::path::Path::new("/save");
    let mut end = 0u64;
    for file in &info.files {
        let relative = info.file_path(file);
        assert!(relative.is_relative(), "{relative:?}");
        assert!(
            relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{relative:?}"
        );
        assert!(root.join(&relative).starts_with(root));
        let mut components = Vec::new();
        if info.multi_file {
            components.push(info.name);
        }
        components.extend(file.path.iter().copied());
        assert_eq!(safe_join(root, components), Some(root.join(&relative)));
        if let Some(target) = &file.symlink_target {
            assert!(safe_join(root, target.iter().copied()).is_some());
        }
        assert!(file.offset >= end || file.length == 0 || info.version.has_v2());
        end = file.offset + file.length;
    }
    // The magnet link round-trips.
    let magnet = torrent.magnet();
    match magnet.to_string().parse::<shoal_metainfo::Magnet>() {
        Ok(parsed) => assert_eq!(parsed.info_hashes, magnet.info_hashes),
        // A torrent may list more trackers than a magnet may carry.
        Err(shoal_metainfo::MagnetError::TooLarge) => {}
        Err(err) => panic!("our own magnet does not parse: {err}"),
    }
}
