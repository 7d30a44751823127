//! What the `.torrent` file tells the views and the engine's snapshots do not repeat: the files and
//! their places in the piece space, the trackers, the info-hash.

use shoal_metainfo::{InfoHash, Metainfo};

use super::text::sanitize;

/// A torrent's fixed facts, read once when it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentMeta {
    /// The v1 info-hash: the torrent's identity in the views.
    pub info_hash: InfoHash,
    /// Bytes per piece.
    pub piece_length: u64,
    /// Files in torrent order, padding excluded.
    pub files: Vec<FileMeta>,
    /// Tracker URLs by tier (BEP 12), sanitized.
    pub trackers: Vec<Vec<String>>,
    /// BEP 27: no DHT or PEX.
    pub private: bool,
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Path components below the torrent's folder, sanitized; a single-file torrent's one component is
    /// its name.
    pub path: Vec<String>,
    /// Bytes.
    pub length: u64,
    /// Where the file starts in the torrent's byte stream.
    pub offset: u64,
    /// Its index among the info dictionary's files, padding files included: how the engine and BEP 53
    /// `so=` number files.
    pub index: usize,
}

impl TorrentMeta {
    /// Reads the facts from a `.torrent` file.
    ///
    /// # Errors
    /// The torrent does not parse, or has no v1 info-hash (the engine handles v1 and hybrid torrents).
    pub fn from_torrent(bytes: &[u8]) -> anyhow::Result<Self> {
        let metainfo = Metainfo::from_bytes(bytes)?;
        let info = &metainfo.info;
        let info_hash = info
            .info_hashes()
            .v1
            .ok_or_else(|| anyhow::anyhow!("v2-only torrents are not supported yet"))?;
        let files = info
            .files
            .iter()
            .enumerate()
            .filter(|(_, file)| !file.is_padding())
            .map(|(index, file)| FileMeta {
                path: if info.multi_file {
                    file.path
                        .iter()
                        .map(|part| sanitize(&shoal_metainfo::sanitize_component(part)))
                        .collect()
                } else {
                    vec![sanitize(&shoal_metainfo::text(info.name))]
                },
                length: file.length,
                offset: file.offset,
                index,
            })
            .collect();
        let mut trackers: Vec<Vec<String>> = metainfo
            .announce_list
            .iter()
            .map(|tier| tier.iter().map(|url| sanitize(url)).collect())
            .collect();
        // BEP 12: `announce-list` wins over `announce` when both are present.
        if trackers.is_empty()
            && let Some(url) = metainfo.announce
        {
            trackers.push(vec![sanitize(url)]);
        }
        Ok(Self {
            info_hash,
            piece_length: info.piece_length,
            files,
            trackers,
            private: info.private,
        })
    }

    /// The facts a `.torrent` file or magnet link gives before the engine starts.
    ///
    /// # Errors
    /// As [`TorrentMeta::from_torrent`]; a magnet link without a v1 info-hash.
    pub fn from_source(source: &crate::cmd::download::Source) -> anyhow::Result<Self> {
        use crate::cmd::download::Source;
        match source {
            Source::Torrent(bytes) => Self::from_torrent(bytes),
            Source::Magnet(magnet) => {
                let info_hash = magnet.info_hashes.v1.ok_or_else(|| {
                    anyhow::anyhow!("v2-only magnet links (btmh) are not supported yet")
                })?;
                Ok(Self {
                    trackers: magnet.trackers.iter().map(|t| vec![sanitize(t)]).collect(),
                    ..Self::unknown(info_hash)
                })
            }
        }
    }

    /// A torrent whose files are not known (yet): a magnet link before its metadata, or a saved
    /// torrent whose `.torrent` file could not be read back.
    pub fn unknown(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            piece_length: 0,
            files: Vec::new(),
            trackers: Vec::new(),
            private: false,
        }
    }

    /// File indices in the order the Files tree lists them: by path, so each folder's files are together.
    pub fn tree_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        order.sort_by(|&a, &b| self.files[a].path.cmp(&self.files[b].path));
        order
    }

    /// Verified bytes of `file`, from the verified-pieces map.
    pub fn file_have(&self, file: &FileMeta, have: &[bool]) -> u64 {
        if file.length == 0 || self.piece_length == 0 {
            return 0;
        }
        let end = file.offset + file.length;
        let first = file.offset / self.piece_length;
        let last = (end - 1) / self.piece_length;
        (first..=last)
            .filter(|&piece| have.get(piece as usize).copied().unwrap_or(false))
            .map(|piece| {
                let start = (piece * self.piece_length).max(file.offset);
                let stop = ((piece + 1) * self.piece_length).min(end);
                stop - start
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_and_their_progress() {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("album");
        std::fs::create_dir_all(content.join("disc 2")).unwrap();
        std::fs::write(content.join("01.flac"), vec![1; 40_000]).unwrap();
        std::fs::write(content.join("disc 2/02.flac"), vec![2; 10_000]).unwrap();
        let torrent = shoal_metainfo::TorrentBuilder::new(&content)
            .piece_length(16_384)
            .tracker_tier(["http://127.0.0.1:1/announce\x1b[2J"])
            .build()
            .unwrap();
        let meta = TorrentMeta::from_torrent(&torrent.bytes).unwrap();
        assert_eq!(meta.files.len(), 2);
        assert_eq!(meta.files[0].path, ["01.flac"]);
        assert_eq!(meta.files[1].path, ["disc 2", "02.flac"]);
        assert_eq!(meta.trackers, [["http://127.0.0.1:1/announce[2J"]]);
        // 50,000 bytes in 4 pieces; the first file spans pieces 0..=2, the second 2..=3.
        let have = [true, false, true, false];
        assert_eq!(
            meta.file_have(&meta.files[0], &have),
            16_384 + (40_000 - 32_768)
        );
        assert_eq!(meta.file_have(&meta.files[1], &have), 49_152 - 40_000);
    }
}
