//! What the session's integration tests share: loopback sessions and waiting for a torrent's state.

#![allow(dead_code)] // each test file uses its own part of this

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shoal_session::{
    AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};

/// A session on 127.0.0.1 with an ephemeral port and a fixed random seed.
pub fn loopback(seed: u64) -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed,
        ..SessionConfig::default()
    }
}

/// Starts a session with `config` and adds `torrent`, saved under `save_path`, with `peers` to dial.
pub async fn start(
    config: SessionConfig,
    torrent: Vec<u8>,
    save_path: impl Into<PathBuf>,
    peers: Vec<SocketAddr>,
) -> (Session, TorrentHandle) {
    let session = Session::new(config).await.unwrap();
    let handle = session
        .add_torrent(AddTorrent {
            torrent,
            save_path: save_path.into(),
            peers,
        })
        .unwrap();
    (session, handle)
}

/// Waits until the torrent seeds (complete and verified), failing on an error or after `limit`.
pub async fn seeding(handle: &TorrentHandle, limit: Duration) -> TorrentStats {
    let mut stats = handle.stats();
    let wait = stats.wait_for(|s| {
        assert_ne!(s.state, TorrentState::Error, "{:?}", s.error);
        s.state == TorrentState::Seeding
    });
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(stats)) => stats.clone(),
        Ok(Err(_)) => panic!("the torrent task ended"),
        Err(_) => panic!(
            "not complete in {limit:?}: {} pieces",
            handle.stats().borrow().pieces_have
        ),
    }
}
