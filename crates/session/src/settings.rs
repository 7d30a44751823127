//! What the user chose for a torrent (paused, in order, file priorities, rate limits), kept in the
//! state directory as `<info-hash>.settings` so [`Session::restore`](crate::Session::restore) brings a
//! torrent back as it was left. Written whenever one of them changes; a missing or unreadable file
//! means the defaults.

use std::path::{Path, PathBuf};

use shoal_metainfo::InfoHash;
use shoal_picker::Priority;

use crate::torrent::Event;

/// A torrent's settings. Bencoded with integers only (0/1 for flags; priorities 0 skip, 1 low,
/// 2 normal, 3 high), every field optional, so older and newer files read alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Settings {
    #[serde(default)]
    pub paused: u8,
    #[serde(default)]
    pub sequential: u8,
    /// One per file in torrent order (padding files included); absent: all normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<u64>,
}

fn path(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(format!("{info_hash}.settings"))
}

fn priority_code(priority: Priority) -> u8 {
    match priority {
        Priority::Skip => 0,
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
    }
}

fn priority_of(code: u8) -> Priority {
    match code {
        0 => Priority::Skip,
        1 => Priority::Low,
        3 => Priority::High,
        _ => Priority::Normal,
    }
}

impl Settings {
    /// The settings of a torrent in this state.
    pub fn new(
        paused: bool,
        sequential: bool,
        priorities: Option<&[Priority]>,
        limits: (Option<u64>, Option<u64>),
    ) -> Self {
        Self {
            paused: u8::from(paused),
            sequential: u8::from(sequential),
            priorities: priorities.map(|p| p.iter().copied().map(priority_code).collect()),
            download_limit: limits.0,
            upload_limit: limits.1,
        }
    }

    /// Records them for `info_hash` in `dir`; a failure is logged (the torrent runs on regardless).
    pub fn save(&self, dir: &Path, info_hash: &InfoHash) {
        let written = shoal_bencode::to_bytes(self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                shoal_storage::write_atomic(&path(dir, info_hash), &bytes)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot save the torrent's settings");
        }
    }

    /// The settings recorded for `info_hash` in `dir`, if any can be read.
    pub fn load(dir: &Path, info_hash: &InfoHash) -> Option<Self> {
        let bytes = std::fs::read(path(dir, info_hash)).ok()?;
        match shoal_bencode::from_bytes(&bytes) {
            Ok(settings) => Some(settings),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable torrent settings");
                None
            }
        }
    }

    /// The events that apply them to a torrent task that has just started.
    pub fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(priorities) = &self.priorities {
            events.push(Event::SetFilePriorities(
                priorities.iter().copied().map(priority_of).collect(),
            ));
        }
        if self.sequential != 0 {
            events.push(Event::SetSequential(true));
        }
        if self.download_limit.is_some() || self.upload_limit.is_some() {
            events.push(Event::SetLimits(self.download_limit, self.upload_limit));
        }
        if self.paused != 0 {
            events.push(Event::Pause);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_become_events() {
        let dir = tempfile::tempdir().unwrap();
        let hash = InfoHash([4; 20]);
        assert_eq!(Settings::load(dir.path(), &hash), None);
        let settings = Settings::new(
            true,
            true,
            Some(&[
                Priority::Skip,
                Priority::High,
                Priority::Normal,
                Priority::Low,
            ]),
            (Some(1000), None),
        );
        settings.save(dir.path(), &hash);
        let loaded = Settings::load(dir.path(), &hash).unwrap();
        assert_eq!(loaded, settings);
        let events = loaded.events();
        assert!(matches!(&events[0], Event::SetFilePriorities(p)
            if p == &[Priority::Skip, Priority::High, Priority::Normal, Priority::Low]));
        assert!(matches!(events[1], Event::SetSequential(true)));
        assert!(matches!(events[2], Event::SetLimits(Some(1000), None)));
        assert!(matches!(events[3], Event::Pause));
        // The defaults need no events; junk reads as nothing.
        assert!(Settings::default().events().is_empty());
        std::fs::write(dir.path().join(format!("{hash}.settings")), b"junk").unwrap();
        assert_eq!(Settings::load(dir.path(), &hash), None);
    }
}
