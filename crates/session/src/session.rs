//! The session: one listening socket for all torrents, incoming handshakes routed by info-hash, and a
//! task per torrent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use shoal_metainfo::{InfoHash, Magnet, Metainfo};
use shoal_picker::Priority;
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
    /// The engine refused the torrent's shape (v2-only, or over a [`Limits`](crate::Limits) bound).
    #[error("{0}")]
    Unsupported(String),
    /// The state directory could not be read or written.
    #[error("state directory")]
    State(#[source] std::io::Error),
    /// The torrent's data could not be moved ([`Session::move_data`]); it stays where it was.
    #[error("cannot move the data: {0}")]
    Move(String),
}

/// Saves a torrent's source (`<hash>.torrent`, or `<hash>.magnet` until the metadata is in) and its
/// download directory in `dir`; returns the resume data path.
fn save_state(
    dir: &Path,
    info_hash: &InfoHash,
    (extension, source): (&str, &[u8]),
    save_path: &Path,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!("{info_hash}.{extension}"));
    if !file.exists() {
        shoal_storage::write_atomic(&file, source).map_err(std::io::Error::other)?;
    }
    save_path_file(dir, info_hash, save_path)?;
    Ok(dir.join(format!("{info_hash}.resume")))
}

/// Records a torrent's download directory (`<hash>.path`, absolute) in the state directory `dir`.
pub(crate) fn save_path_file(
    dir: &Path,
    info_hash: &InfoHash,
    save_path: &Path,
) -> std::io::Result<()> {
    let save_path = std::path::absolute(save_path)?;
    shoal_storage::write_atomic(
        &dir.join(format!("{info_hash}.path")),
        save_path.as_os_str().as_encoded_bytes(),
    )
    .map_err(std::io::Error::other)
}

/// Whether `path` is a temporary file of `shoal_storage::write_atomic` (`NAME.tmp.PID`) whose process
/// is gone.
fn is_stale_temporary(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some((_, pid)) = name.rsplit_once(".tmp.") else {
        return false;
    };
    pid.parse::<u32>().is_ok_and(|pid| {
        pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
    })
}

/// Removes the temporary files that processes killed mid-write left in `dir` (`write_atomic`; the real
/// files beside them are intact), whether or not the torrents are restored.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|entry| entry.path()) {
        if is_stale_temporary(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A user-readable copy of a torrent fetched through a magnet link: `torrents/<name>.torrent` in the
/// state directory (the name sanitized; a clash gets the info-hash added).
fn save_named_copy(dir: &Path, name: &str, info_hash: &InfoHash, torrent: &[u8]) {
    let dir = dir.join("torrents");
    let stem = shoal_metainfo::sanitize_component(name.as_bytes());
    let mut path = dir.join(format!("{stem}.torrent"));
    if std::fs::read(&path).is_ok_and(|old| old != torrent) {
        path = dir.join(format!("{stem}.{info_hash}.torrent"));
    }
    let saved = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| shoal_storage::write_atomic(&path, torrent).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        tracing::warn!(error = %e, path = %path.display(), "cannot save the torrent file");
    }
}

/// Binds a TCP listener on an IPv6 address that takes IPv6 peers only (IPv4 has its own listener on
/// the same port).
fn bind_v6_only(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

/// Accepts peers on `listener`: each connection takes a place in the connection budget (or is closed
/// when there is none), sends its handshake (plaintext or inside MSE, as `encryption` allows) within
/// `handshake_timeout`, and goes to the torrent it names; a connection naming no torrent of ours is
/// closed.
fn accept_peers(
    listener: TcpListener,
    routes: Routes,
    handshake_timeout: std::time::Duration,
    connections: Arc<tokio::sync::Semaphore>,
    encryption: crate::Encryption,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    // As for outgoing connections: small messages (requests, haves) go out at once
                    // instead of waiting for the previous segment's acknowledgement.
                    stream.set_nodelay(true).ok();
                    stream
                }
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a peer");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue; // over the budget: dropping the stream closes it
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                // MSE names the torrent by HASH('req2', info-hash): found among ours by trying each.
                let find = |wanted: &[u8; 20]| {
                    routes
                        .lock()
                        .expect("no panics while held")
                        .keys()
                        .find(|info_hash| shoal_mse::req2(info_hash) == *wanted)
                        .copied()
                };
                let opening = crate::peer::identify(stream, encryption, find);
                let Ok(Ok((link, handshake))) =
                    tokio::time::timeout(handshake_timeout, opening).await
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
                    let _ = events
                        .send(Event::Incoming {
                            link: Box::new(link),
                            handshake,
                            permit,
                        })
                        .await;
                }
            });
        }
    })
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

/// A magnet link to add (BEP 9): the torrent starts by fetching its info dictionary from peers.
#[derive(Debug, Clone)]
pub struct AddMagnet {
    /// The magnet link. Peers come from its `x.pe` addresses, its `tr` trackers and the session's DHT
    /// node, all at once; its `so` (BEP 53) selects the files to download.
    pub magnet: Magnet,
    /// The download directory (a multi-file torrent's folder is created inside it).
    pub save_path: PathBuf,
    /// More peers to connect to at once, besides the magnet's `x.pe`.
    pub peers: Vec<SocketAddr>,
}

/// A running torrent: its stats and a way to give it peers.
#[derive(Debug, Clone)]
pub struct TorrentHandle {
    info_hash: InfoHash,
    stats: watch::Receiver<TorrentStats>,
    events: mpsc::Sender<Event>,
    torrent_file: Arc<OnceLock<Arc<[u8]>>>,
}

impl TorrentHandle {
    /// The `.torrent` file: the one added, or for a magnet link the one built around the fetched info
    /// dictionary (`None` until then).
    pub fn torrent_file(&self) -> Option<Arc<[u8]>> {
        self.torrent_file.get().cloned()
    }

    /// Sets each file's priority: one per file of the info dictionary, padding files included, in
    /// order (missing ones are [`Priority::Normal`]). Skipped files are not downloaded, except the
    /// parts that share a piece with a wanted file; the torrent counts as complete when every wanted
    /// piece is in.
    pub async fn set_file_priorities(&self, priorities: Vec<Priority>) {
        let _ = self.events.send(Event::SetFilePriorities(priorities)).await;
    }

    /// Sequential mode on or off (off at first): with it on, the pieces of the next 32 MiB from the
    /// first one missing are downloaded in order before the rest, so a media player can play the
    /// files while they download. The rest still comes rarest first, which keeps every peer busy.
    pub async fn set_sequential(&self, on: bool) {
        let _ = self.events.send(Event::SetSequential(on)).await;
    }

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
    ctx: Context,
    local_addr: SocketAddr,
    torrents: Routes,
    listeners: Vec<JoinHandle<()>>,
}

/// What every torrent task needs from the session.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub config: SessionConfig,
    /// The port peers reach us on.
    pub port: u16,
    /// Shared by every torrent's announces.
    pub tracker_client: Option<Arc<shoal_tracker::TrackerClient>>,
    /// Session-wide download and upload limits.
    pub limits: [Arc<crate::Limiter>; 2],
    /// The DHT node, if the session runs one.
    pub dht: Option<shoal_dht::DhtNode>,
    /// The connection budget: one permit per connection, `max_connections` in all.
    pub connections: Arc<tokio::sync::Semaphore>,
    /// Outgoing connections from connect to handshake: `max_half_open` at once.
    pub half_open: Arc<tokio::sync::Semaphore>,
    /// Pieces hashed at once: one per core.
    pub hash_slots: Arc<tokio::sync::Semaphore>,
    /// Each torrent's files on disk, for removal with its data.
    pub data_paths: Arc<Mutex<HashMap<InfoHash, Vec<PathBuf>>>>,
}

/// A torrent file read and its storage opened, ready for a torrent task.
pub(crate) struct Prepared {
    pub info: TorrentInfo,
    pub storage: Arc<Storage>,
    /// Files in the info dictionary, padding included.
    pub file_count: usize,
}

/// The web seeds at `urls` for `info`: distinct ones, HTTP(S) only (BEP 19), at most
/// [`MAX_WEB_SEEDS`](crate::webseed::MAX_WEB_SEEDS) (the first ones listed).
pub(crate) fn web_seeds(
    urls: &[impl AsRef<str>],
    info: &shoal_metainfo::Info<'_>,
) -> Vec<crate::webseed::WebSeed> {
    let mut seeds: Vec<crate::webseed::WebSeed> = Vec::new();
    for url in urls {
        if seeds.len() == crate::webseed::MAX_WEB_SEEDS {
            break;
        }
        if let Some(seed) = crate::webseed::WebSeed::new(url.as_ref(), info)
            && seeds.iter().all(|s| s.url != seed.url)
        {
            seeds.push(seed);
        }
    }
    seeds
}

impl Context {
    /// Records a torrent fetched through a magnet link: its user-readable copy replaces the saved link.
    pub(crate) fn metadata_fetched(&self, name: &str, info_hash: &InfoHash, torrent: &[u8]) {
        if let Some(dir) = &self.config.state_dir {
            save_named_copy(dir, name, info_hash, torrent);
            let _ = std::fs::remove_file(dir.join(format!("{info_hash}.magnet")));
        }
    }

    /// Reads a torrent file and opens its storage in `save_path`; records its files for removal and,
    /// with a state directory, saves the torrent for [`Session::restore`].
    pub(crate) fn prepare(
        &self,
        torrent: &[u8],
        save_path: &Path,
    ) -> Result<Prepared, SessionError> {
        let metainfo = Metainfo::from_bytes(torrent)?;
        let info = &metainfo.info;
        let info_hash = info.info_hashes().v1.ok_or_else(|| {
            SessionError::Unsupported("v2-only torrents are not supported yet".into())
        })?;
        let max_pieces = self.config.limits.max_pieces;
        if info.piece_count() > u64::from(max_pieces) {
            return Err(SessionError::Unsupported(format!(
                "the torrent has {} pieces, over the limit of {max_pieces}",
                info.piece_count()
            )));
        }
        let piece_hashes: Vec<[u8; 20]> = (0..info.piece_count())
            .filter_map(|i| info.piece_hash(i).copied())
            .collect();
        let trackers: Vec<Vec<String>> = metainfo
            .trackers()
            .into_iter()
            .map(|tier| tier.into_iter().map(str::to_owned).collect())
            .collect();
        let layout = Layout::from_info(info)?;
        let storage = Arc::new(Storage::new(save_path, layout, StorageOptions::default())?);
        let layout = storage.layout();
        let files = (0..layout.files().len())
            .filter(|&i| !layout.files()[i].is_padding())
            .map(|i| storage.file_path(i))
            .collect();
        let name = shoal_metainfo::text(info.name).into_owned();
        let resume_path = match &self.config.state_dir {
            Some(dir) => Some(
                save_state(dir, &info_hash, ("torrent", torrent), save_path)
                    .map_err(SessionError::State)?,
            ),
            None => None,
        };
        self.data_paths
            .lock()
            .expect("no panics while held")
            .insert(info_hash, files);
        Ok(Prepared {
            file_count: layout.files().len(),
            info: TorrentInfo {
                name,
                info_hash,
                piece_hashes,
                resume_path,
                trackers,
                port: self.port,
                tracker_client: self.tracker_client.clone(),
                global_limits: self.limits.clone(),
                private: info.private,
                metadata: Arc::from(info.raw),
                dht: self.dht.clone(),
                connections: self.connections.clone(),
                half_open: self.half_open.clone(),
                hash_slots: self.hash_slots.clone(),
                web_seeds: web_seeds(&metainfo.url_list, info),
            },
            storage,
        })
    }
}

impl Session {
    /// Opens the listening socket and starts accepting peers.
    ///
    /// # Errors
    /// [`SessionError::Listen`] if the address cannot be bound.
    pub async fn new(config: SessionConfig) -> Result<Self, SessionError> {
        if let Some(dir) = &config.state_dir {
            remove_stale_temporaries(dir);
        }
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
        // A DHT that cannot start (its UDP port taken, say) leaves the session running on trackers,
        // PEX and given peers: a warning, not an error.
        let node = match &config.dht {
            Some(dht_config) => shoal_dht::DhtNode::spawn(shoal_dht::NodeConfig {
                dht: shoal_dht::Config {
                    rate_limit: config.limits.dht_queries_per_ip,
                    ..dht_config.dht.clone()
                },
                ..dht_config.clone()
            })
            .await
            .map_err(|e| tracing::warn!(error = %e, "no DHT"))
            .ok(),
            None => None,
        };
        let dht = match node {
            Some(node) => {
                let joining = node.clone();
                tokio::spawn(async move {
                    match joining.bootstrap().await {
                        Ok(n) => tracing::info!(nodes = n, "DHT bootstrapped"),
                        Err(e) => tracing::warn!(error = %e, "DHT bootstrap"),
                    }
                });
                Some(node)
            }
            None => None,
        };
        let limits = [
            Arc::new(crate::Limiter::new(config.download_limit)),
            Arc::new(crate::Limiter::new(config.upload_limit)),
        ];
        // Without a tracker client (TLS setup failed, say), torrents still run on other peer sources.
        let tracker_client = shoal_tracker::TrackerClient::new({
            let mut client = shoal_tracker::ClientConfig::with_timeout(config.tracker_timeout);
            client.max_response_size = config.limits.max_tracker_reply;
            client
        })
        .map_err(|e| tracing::warn!(error = %e, "no tracker client"))
        .ok()
        .map(Arc::new);
        let connections = Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
        let half_open = Arc::new(tokio::sync::Semaphore::new(
            config.limits.max_half_open.max(1),
        ));
        let mut listeners = vec![accept_peers(
            listener,
            torrents.clone(),
            config.limits.handshake_timeout,
            connections.clone(),
            config.encryption,
        )];
        if let Some(ip) = config.listen_v6 {
            let addr = SocketAddr::from((ip, local_addr.port()));
            match bind_v6_only(addr) {
                Ok(listener) => listeners.push(accept_peers(
                    listener,
                    torrents.clone(),
                    config.limits.handshake_timeout,
                    connections.clone(),
                    config.encryption,
                )),
                Err(e) => tracing::warn!(%addr, error = %e, "no IPv6 listener"),
            }
        }
        Ok(Self {
            ctx: Context {
                config,
                port: local_addr.port(),
                tracker_client,
                limits,
                dht,
                data_paths: Arc::default(),
                connections,
                half_open,
                hash_slots: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )),
            },
            local_addr,
            torrents,
            listeners,
        })
    }

    /// Changes the session-wide download and upload limits, in bytes per second (`None`: unlimited).
    pub fn set_limits(&self, download: Option<u64>, upload: Option<u64>) {
        self.ctx.limits[0].set_rate(download);
        self.ctx.limits[1].set_rate(upload);
    }

    /// The session's DHT node, if it runs one (see [`SessionConfig::dht`]).
    pub fn dht(&self) -> Option<&shoal_dht::DhtNode> {
        self.ctx.dht.as_ref()
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
        let info_hash = Metainfo::from_bytes(&add.torrent)?
            .info
            .info_hashes()
            .v1
            .ok_or_else(|| {
                SessionError::Unsupported("v2-only torrents are not supported yet".into())
            })?;
        let mut torrents = self.torrents.lock().expect("no panics while held");
        if torrents.contains_key(&info_hash) {
            return Err(SessionError::Duplicate(info_hash));
        }
        let prepared = self.ctx.prepare(&add.torrent, &add.save_path)?;
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (stats_tx, stats_rx) = watch::channel(TorrentStats {
            name: prepared.info.name.clone(),
            ..TorrentStats::default()
        });
        let torrent = Torrent::new(
            prepared.info,
            self.ctx.config.clone(),
            prepared.storage,
            events_tx.clone(),
            stats_tx,
        )
        .map_err(SessionError::Unsupported)?;
        let task = tokio::spawn(torrent.run(events_rx));
        if !add.peers.is_empty() {
            let _ = events_tx.try_send(Event::AddPeers(add.peers));
        }
        torrents.insert(info_hash, (events_tx.clone(), task));
        Ok(TorrentHandle {
            info_hash,
            stats: stats_rx,
            events: events_tx,
            torrent_file: Arc::new(OnceLock::from(Arc::<[u8]>::from(add.torrent))),
        })
    }

    /// Adds a magnet link: fetches the info dictionary from peers (BEP 9), then downloads like a
    /// torrent file. With a state directory, the link is saved at once (a restart resumes the search)
    /// and the fetched torrent is saved as `<info-hash>.torrent` and `torrents/<name>.torrent`.
    ///
    /// # Errors
    /// A magnet without a v1 info-hash (`btih`), an unusable state directory, or a torrent already
    /// added.
    pub fn add_magnet(&self, add: AddMagnet) -> Result<TorrentHandle, SessionError> {
        let info_hash = add.magnet.info_hashes.v1.ok_or_else(|| {
            SessionError::Unsupported("v2-only magnet links (btmh) are not supported yet".into())
        })?;
        // Metadata fetched before (an earlier run): no need to ask peers again.
        if let Some(dir) = &self.ctx.config.state_dir
            && let Ok(torrent) = std::fs::read(dir.join(format!("{info_hash}.torrent")))
        {
            let mut peers = add.peers.clone();
            peers.extend(&add.magnet.peers);
            return self.add_torrent(AddTorrent {
                torrent,
                save_path: add.save_path,
                peers,
            });
        }
        let mut torrents = self.torrents.lock().expect("no panics while held");
        if torrents.contains_key(&info_hash) {
            return Err(SessionError::Duplicate(info_hash));
        }
        if let Some(dir) = &self.ctx.config.state_dir {
            let link = add.magnet.to_string();
            save_state(dir, &info_hash, ("magnet", link.as_bytes()), &add.save_path)
                .map_err(SessionError::State)?;
        }
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (stats_tx, stats_rx) = watch::channel(TorrentStats {
            name: add
                .magnet
                .display_name
                .clone()
                .unwrap_or_else(|| info_hash.to_string()),
            state: crate::TorrentState::FetchingMetadata,
            metadata: Some(crate::MetadataProgress::default()),
            ..TorrentStats::default()
        });
        let torrent_file = Arc::new(OnceLock::new());
        let stage = crate::magnet::MetadataStage::new(
            self.ctx.clone(),
            add.magnet,
            info_hash,
            add.save_path,
            events_tx.clone(),
            stats_tx,
            torrent_file.clone(),
        );
        let task = tokio::spawn(stage.run(events_rx));
        if !add.peers.is_empty() {
            let _ = events_tx.try_send(Event::AddPeers(add.peers));
        }
        torrents.insert(info_hash, (events_tx.clone(), task));
        Ok(TorrentHandle {
            info_hash,
            stats: stats_rx,
            events: events_tx,
            torrent_file,
        })
    }

    /// Adds back every torrent saved in the state directory (see [`SessionConfig::state_dir`]); resume
    /// data spares rechecking pieces whose files did not change.
    ///
    /// # Errors
    /// Reading the state directory; torrents that fail to load are returned as errors in the list.
    pub fn restore(&self) -> Result<Vec<Result<TorrentHandle, SessionError>>, SessionError> {
        let Some(dir) = self.ctx.config.state_dir.clone() else {
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
            let Some(kind) = path.extension().and_then(|ext| ext.to_str()) else {
                continue;
            };
            // A magnet link whose metadata was fetched has a `.torrent` too: that one wins.
            if !(kind == "torrent" || kind == "magnet" && !path.with_extension("torrent").exists())
            {
                continue;
            }
            let save_path = match std::fs::read(path.with_extension("path")) {
                Ok(bytes) => PathBuf::from(std::ffi::OsString::from(
                    String::from_utf8_lossy(&bytes).into_owned(),
                )),
                Err(e) => {
                    restored.push(Err(SessionError::State(e)));
                    continue;
                }
            };
            let source = std::fs::read(&path).map_err(SessionError::State);
            let added = source.and_then(|source| {
                if kind == "torrent" {
                    self.add_torrent(AddTorrent {
                        torrent: source,
                        save_path,
                        peers: Vec::new(),
                    })
                } else {
                    let link = String::from_utf8_lossy(&source).into_owned();
                    let magnet = Magnet::parse(&link).map_err(|e| {
                        SessionError::Unsupported(format!("saved magnet link: {e}"))
                    })?;
                    self.add_magnet(AddMagnet {
                        magnet,
                        save_path,
                        peers: Vec::new(),
                    })
                }
            });
            // Back as it was left: paused, in order, its priorities and limits (the task's queue is
            // empty, so these fit).
            if let Ok(handle) = &added
                && let Some(settings) = crate::settings::Settings::load(&dir, &handle.info_hash)
            {
                for event in settings.events() {
                    let _ = handle.events.try_send(event);
                }
            }
            restored.push(added);
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
        if let Some(dir) = &self.ctx.config.state_dir {
            for ext in ["torrent", "magnet", "path", "resume", "settings"] {
                let _ = std::fs::remove_file(dir.join(format!("{info_hash}.{ext}")));
            }
        }
        if delete_data {
            let paths = self
                .ctx
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

    /// Moves a torrent's files to another download directory (`to`; a multi-file torrent's folder goes
    /// inside it, as when adding) and carries on from there; returns the new directory.
    ///
    /// The torrent closes its connections while the files move (state
    /// [`TorrentState::Moving`](crate::TorrentState::Moving)) and then resumes, unless it was paused.
    /// On one file system the files are renamed; onto another they are copied, keeping their times so
    /// resume data still trusts them, and the originals removed. A failure (a full destination, a file
    /// already there) puts back what had moved: the data is whole in one place either way. The new
    /// place is recorded in the state directory. A magnet link still fetching its metadata has no files
    /// yet: its download directory just changes.
    ///
    /// # Errors
    /// [`SessionError::Move`]: no such torrent, one checking its data or in error, a move already
    /// under way, or the filesystem's refusal.
    pub async fn move_data(
        &self,
        info_hash: InfoHash,
        to: impl Into<PathBuf>,
    ) -> Result<PathBuf, SessionError> {
        let events = self
            .torrents
            .lock()
            .expect("no panics while held")
            .get(&info_hash)
            .map(|(events, _)| events.clone())
            .ok_or_else(|| SessionError::Move(format!("no torrent {info_hash}")))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || SessionError::Move("the torrent stopped".into());
        events
            .send(Event::Move {
                to: to.into(),
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        let (from, to) = answer
            .await
            .map_err(|_| stopped())?
            .map_err(SessionError::Move)?;
        // What `remove_torrent` deletes now lives under the new directory.
        if let Some(paths) = self
            .ctx
            .data_paths
            .lock()
            .expect("no panics while held")
            .get_mut(&info_hash)
        {
            for path in paths.iter_mut() {
                if let Ok(relative) = path.strip_prefix(&from) {
                    *path = to.join(relative);
                }
            }
        }
        Ok(to)
    }

    /// Stops every torrent (closing their connections) and the listener.
    pub async fn shutdown(self) {
        for listener in &self.listeners {
            listener.abort();
        }
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
        if let Some(dht) = self.ctx.dht {
            let _ = dht.shutdown().await;
        }
    }
}
