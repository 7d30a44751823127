//! The session: one listening socket for all torrents, incoming handshakes routed by info-hash, and a
//! task per torrent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use shoal_metainfo::{InfoHash, Metainfo};
use shoal_storage::{Layout, Storage, StorageOptions};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::SessionConfig;
use crate::stats::TorrentStats;
use crate::torrent::{Event, Torrent, TorrentInfo};

/// Why the session refused something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The torrent file is not valid.
    #[error("invalid torrent")]
    Metainfo(#[from] shoal_metainfo::MetainfoError),
    /// The torrent cannot be stored (a v2-only torrent, or the download directory is unusable).
    #[error("storage")]
    Storage(#[from] shoal_storage::StorageError),
    /// The torrent is already in the session.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// The engine refused the torrent's shape.
    #[error("{0}")]
    Unsupported(String),
    /// The state directory could not be read or written.
    #[error("state directory")]
    State(#[source] std::io::Error),
}

/// Saves the torrent file and its download directory in `dir`; returns the resume data path.
fn save_state(
    dir: &std::path::Path,
    info_hash: &InfoHash,
    add: &AddTorrent,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let torrent = dir.join(format!("{info_hash}.torrent"));
    if !torrent.exists() {
        shoal_storage::write_atomic(&torrent, &add.torrent).map_err(std::io::Error::other)?;
    }
    let save_path = std::path::absolute(&add.save_path)?;
    shoal_storage::write_atomic(
        &dir.join(format!("{info_hash}.path")),
        save_path.as_os_str().as_encoded_bytes(),
    )
    .map_err(std::io::Error::other)?;
    Ok(dir.join(format!("{info_hash}.resume")))
}

/// The running torrents by info-hash: where to send their events, and their tasks.
type Routes = Arc<Mutex<HashMap<InfoHash, (mpsc::Sender<Event>, JoinHandle<()>)>>>;

/// A torrent to add.
#[derive(Debug, Clone)]
pub struct AddTorrent {
    /// The `.torrent` file's bytes.
    pub torrent: Vec<u8>,
    /// The download directory (a multi-file torrent's folder is created inside it).
    pub save_path: PathBuf,
    /// Peers to connect to at once (more can come later with [`TorrentHandle::add_peers`]).
    pub peers: Vec<SocketAddr>,
}

/// A running torrent: its stats and a way to give it peers.
#[derive(Debug, Clone)]
pub struct TorrentHandle {
    info_hash: InfoHash,
    stats: watch::Receiver<TorrentStats>,
    events: mpsc::Sender<Event>,
}

impl TorrentHandle {
    /// The torrent's v1 info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The stats snapshots, refreshed every second and on state changes.
    pub fn stats(&self) -> watch::Receiver<TorrentStats> {
        self.stats.clone()
    }

    /// Gives the torrent more peer addresses to try.
    pub async fn add_peers(&self, peers: Vec<SocketAddr>) {
        let _ = self.events.send(Event::AddPeers(peers)).await;
    }

    /// Limits this torrent's download and upload rates, in bytes per second (`None`: unlimited).
    pub async fn set_limits(&self, download: Option<u64>, upload: Option<u64>) {
        let _ = self.events.send(Event::SetLimits(download, upload)).await;
    }

    /// Stops transferring: closes every connection until [`resume`](Self::resume).
    pub async fn pause(&self) {
        let _ = self.events.send(Event::Pause).await;
    }

    /// Starts transferring again after [`pause`](Self::pause).
    pub async fn resume(&self) {
        let _ = self.events.send(Event::Resume).await;
    }
}

/// The engine: listens for peers and runs torrents.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use shoal_session::{AddTorrent, Session, SessionConfig};
///
/// let session = Session::new(SessionConfig::default()).await?;
/// let torrent = session.add_torrent(AddTorrent {
///     torrent: std::fs::read("debian.iso.torrent")?,
///     save_path: "downloads".into(),
///     peers: vec!["192.0.2.1:6881".parse()?],
/// })?;
/// let mut stats = torrent.stats();
/// while !stats.borrow().is_complete() {
///     stats.changed().await?;
/// }
/// session.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    local_addr: SocketAddr,
    torrents: Routes,
    /// Shared by every torrent's announces.
    tracker_client: Option<Arc<shoal_tracker::TrackerClient>>,
    /// Session-wide download and upload limits.
    limits: [Arc<crate::Limiter>; 2],
    /// Each torrent's files on disk, for removal with its data.
    data_paths: Mutex<HashMap<InfoHash, Vec<PathBuf>>>,
    listener: JoinHandle<()>,
}

impl Session {
    /// Opens the listening socket and starts accepting peers.
    ///
    /// # Errors
    /// [`SessionError::Listen`] if the address cannot be bound.
    pub async fn new(config: SessionConfig) -> Result<Self, SessionError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?;
        let torrents = Routes::default();
        let limits = [
            Arc::new(crate::Limiter::new(config.download_limit)),
            Arc::new(crate::Limiter::new(config.upload_limit)),
        ];
        // Without a tracker client (TLS setup failed, say), torrents still run on other peer sources.
        let tracker_client = shoal_tracker::TrackerClient::new(
            shoal_tracker::ClientConfig::with_timeout(config.tracker_timeout),
        )
        .map_err(|e| tracing::warn!(error = %e, "no tracker client"))
        .ok()
        .map(Arc::new);
        let routes = torrents.clone();
        let handshake_timeout = config.handshake_timeout;
        let listener = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let Ok(Ok(handshake)) = tokio::time::timeout(
                        handshake_timeout,
                        crate::peer::read_handshake(&mut stream),
                    )
                    .await
                    else {
                        return;
                    };
                    let route = routes
                        .lock()
                        .expect("no panics while held")
                        .get(&handshake.info_hash)
                        .map(|t| t.0.clone());
                    // An unknown info-hash: drop the connection, keep no state (HOSTILE 27).
                    if let Some(events) = route {
                        let _ = events.send(Event::Incoming { stream, handshake }).await;
                    }
                });
            }
        });
        Ok(Self {
            config,
            local_addr,
            torrents,
            data_paths: Mutex::default(),
            tracker_client,
            limits,
            listener,
        })
    }

    /// Changes the session-wide download and upload limits, in bytes per second (`None`: unlimited).
    pub fn set_limits(&self, download: Option<u64>, upload: Option<u64>) {
        self.limits[0].set_rate(download);
        self.limits[1].set_rate(upload);
    }

    /// The address peers can connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Adds a torrent: checks what is already on disk, then downloads the rest (or seeds).
    ///
    /// # Errors
    /// An invalid or unsupported torrent, an unusable download directory, or a torrent already added.
    pub fn add_torrent(&self, add: AddTorrent) -> Result<TorrentHandle, SessionError> {
        let metainfo = Metainfo::from_bytes(&add.torrent)?;
        let info = &metainfo.info;
        let info_hash = info.info_hashes().v1.ok_or_else(|| {
            SessionError::Unsupported("v2-only torrents are not supported yet".into())
        })?;
        let piece_hashes: Vec<[u8; 20]> = (0..info.piece_count())
            .filter_map(|i| info.piece_hash(i).copied())
            .collect();
        let trackers: Vec<Vec<String>> = metainfo
            .trackers()
            .into_iter()
            .map(|tier| tier.into_iter().map(str::to_owned).collect())
            .collect();
        let layout = Layout::from_info(info)?;
        let storage = Arc::new(Storage::new(
            &add.save_path,
            layout,
            StorageOptions::default(),
        )?);
        let files = (0..storage.layout().files().len())
            .filter(|&i| !storage.layout().files()[i].is_padding())
            .map(|i| storage.file_path(i))
            .collect();
        let name = shoal_metainfo::text(info.name).into_owned();
        let mut torrents = self.torrents.lock().expect("no panics while held");
        if torrents.contains_key(&info_hash) {
            return Err(SessionError::Duplicate(info_hash));
        }
        let resume_path = match &self.config.state_dir {
            Some(dir) => Some(save_state(dir, &info_hash, &add).map_err(SessionError::State)?),
            None => None,
        };
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (stats_tx, stats_rx) = watch::channel(TorrentStats {
            name: name.clone(),
            ..TorrentStats::default()
        });
        let torrent_info = TorrentInfo {
            name,
            info_hash,
            piece_hashes,
            resume_path,
            trackers,
            port: self.local_addr.port(),
            tracker_client: self.tracker_client.clone(),
            global_limits: self.limits.clone(),
            private: info.private,
        };
        let torrent = Torrent::new(
            torrent_info,
            self.config.clone(),
            storage,
            events_tx.clone(),
            stats_tx,
        )
        .map_err(SessionError::Unsupported)?;
        let task = tokio::spawn(torrent.run(events_rx));
        if !add.peers.is_empty() {
            let _ = events_tx.try_send(Event::AddPeers(add.peers));
        }
        torrents.insert(info_hash, (events_tx.clone(), task));
        self.data_paths
            .lock()
            .expect("no panics while held")
            .insert(info_hash, files);
        Ok(TorrentHandle {
            info_hash,
            stats: stats_rx,
            events: events_tx,
        })
    }

    /// Adds back every torrent saved in the state directory (see [`SessionConfig::state_dir`]); resume
    /// data spares rechecking pieces whose files did not change.
    ///
    /// # Errors
    /// Reading the state directory; torrents that fail to load are returned as errors in the list.
    pub fn restore(&self) -> Result<Vec<Result<TorrentHandle, SessionError>>, SessionError> {
        let Some(dir) = self.config.state_dir.clone() else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SessionError::State(e)),
        };
        let mut restored = Vec::new();
        for entry in entries {
            let path = entry.map_err(SessionError::State)?.path();
            if path.extension().is_none_or(|ext| ext != "torrent") {
                continue;
            }
            let load = || -> std::io::Result<AddTorrent> {
                let torrent = std::fs::read(&path)?;
                let save_path = std::fs::read(path.with_extension("path"))?;
                let save_path = PathBuf::from(std::ffi::OsString::from(
                    String::from_utf8_lossy(&save_path).into_owned(),
                ));
                Ok(AddTorrent {
                    torrent,
                    save_path,
                    peers: Vec::new(),
                })
            };
            restored.push(
                load()
                    .map_err(SessionError::State)
                    .and_then(|add| self.add_torrent(add)),
            );
        }
        Ok(restored)
    }

    /// Removes a torrent: stops it and forgets it (its state files too); with `delete_data`, deletes its
    /// downloaded files as well.
    ///
    /// # Errors
    /// Deleting the data failed (the torrent is removed all the same).
    pub async fn remove_torrent(
        &self,
        info_hash: InfoHash,
        delete_data: bool,
    ) -> Result<(), SessionError> {
        let removed = self
            .torrents
            .lock()
            .expect("no panics while held")
            .remove(&info_hash);
        let Some((events, task)) = removed else {
            return Ok(());
        };
        let _ = events.send(Event::Shutdown).await;
        let _ = task.await;
        if let Some(dir) = &self.config.state_dir {
            for ext in ["torrent", "path", "resume"] {
                let _ = std::fs::remove_file(dir.join(format!("{info_hash}.{ext}")));
            }
        }
        if delete_data {
            let paths = self
                .data_paths
                .lock()
                .expect("no panics while held")
                .remove(&info_hash)
                .unwrap_or_default();
            for path in paths {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SessionError::State(e)),
                }
            }
        }
        Ok(())
    }

    /// Stops every torrent (closing their connections) and the listener.
    pub async fn shutdown(self) {
        self.listener.abort();
        let torrents: Vec<_> = self
            .torrents
            .lock()
            .expect("no panics while held")
            .drain()
            .collect();
        for (_, (events, task)) in torrents {
            let _ = events.send(Event::Shutdown).await;
            let _ = task.await;
        }
    }
}
