//! The tokio driver: one task owns the UDP socket and the [`Dht`] core; [`DhtNode`] handles talk to it
//! over a channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shoal_metainfo::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::id::{NodeId, Rng, is_local};
use crate::lookup::{LookupId, LookupResult};
use crate::node::{Config, Dht, Event, Stats};
use crate::state::SavedState;

/// The public routers a node bootstraps from by default (real use only: tests pass loopback nodes).
pub const DEFAULT_BOOTSTRAP: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// How often the routing table is saved while running (and once more at shutdown).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Why the DHT node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// Binding or using the UDP socket failed.
    #[error("dht socket")]
    Io(#[from] std::io::Error),
    /// The node's task has stopped (shut down, or panicked).
    #[error("the dht node has stopped")]
    Stopped,
}

/// Settings of a running node: the socket, the bootstrap routers, the state directory and the core's
/// [`Config`].
///
/// ```
/// let config = shoal_dht::NodeConfig {
///     bind: "127.0.0.1:0".parse()?,
///     bootstrap: vec!["127.0.0.1:6881".into()],
///     ..shoal_dht::NodeConfig::default()
/// };
/// assert!(config.state_dir.is_none());
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The UDP address to bind (default `0.0.0.0:6881`). An IPv6 address runs a BEP 32 IPv6 node.
    pub bind: SocketAddr,
    /// `host:port` routers to bootstrap from, resolved at start ([`DEFAULT_BOOTSTRAP`] by default).
    /// Names that do not resolve are skipped.
    pub bootstrap: Vec<String>,
    /// Where to keep `dht.dat` (or `dht6.dat`): our id and routing table, to bootstrap from next time.
    pub state_dir: Option<PathBuf>,
    /// The core's settings. Its `bootstrap` list is extended with the resolved routers; its `node_id`
    /// defaults to the saved one.
    pub dht: Config,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 6881)),
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect(),
            state_dir: None,
            dht: Config::default(),
        }
    }
}

enum Command {
    Bootstrap(oneshot::Sender<usize>),
    GetPeers(InfoHash, mpsc::UnboundedSender<SocketAddr>),
    Announce(InfoHash, Option<u16>, oneshot::Sender<LookupResult>),
    AddNode(SocketAddr),
    Stats(oneshot::Sender<Stats>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle on a running DHT node. Cheap to clone; the node stops when every handle is dropped or on
/// [`shutdown`](Self::shutdown).
///
/// ```no_run
/// # async fn demo() -> Result<(), shoal_dht::DhtError> {
/// use shoal_dht::{DhtNode, NodeConfig};
/// use shoal_metainfo::InfoHash;
///
/// let node = DhtNode::spawn(NodeConfig::default()).await?;
/// node.bootstrap().await?;
/// let mut peers = node.get_peers(InfoHash([0xab; 20])).await?;
/// while let Some(peer) = peers.recv().await {
///     println!("{peer}");
/// }
/// node.announce(InfoHash([0xab; 20]), Some(6881)).await?;
/// node.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DhtNode {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    id: NodeId,
}

impl DhtNode {
    /// Binds the socket, loads the saved state, resolves the routers and starts the node's task on the
    /// current tokio runtime. It does not bootstrap until asked.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub async fn spawn(config: NodeConfig) -> Result<DhtNode, DhtError> {
        let socket = UdpSocket::bind(config.bind).await?;
        let local_addr = socket.local_addr()?;
        let state_path = config.state_dir.as_ref().map(|dir| {
            dir.join(if local_addr.is_ipv4() {
                "dht.dat"
            } else {
                "dht6.dat"
            })
        });
        let mut dht_config = config.dht;
        if let Some(path) = &state_path
            && let Ok(bytes) = tokio::fs::read(path).await
            // A corrupt state file is ignored: the node starts afresh.
            && let Ok(saved) = SavedState::decode(&bytes)
        {
            let mut id = saved.id;
            // BEP 42: an id that does not fit our known external IP is replaced by one that does.
            if let Some(ip) = saved.external_ip
                && !is_local(ip)
                && !id.is_secure_for(ip)
            {
                id = NodeId::secure_for(ip, &mut Rng::new(dht_config.seed ^ 0x42));
            }
            dht_config.node_id.get_or_insert(id);
            dht_config.known_nodes.extend(
                saved
                    .nodes
                    .into_iter()
                    .filter(|n| n.addr.is_ipv4() == local_addr.is_ipv4()),
            );
        }
        for router in &config.bootstrap {
            if let Ok(addrs) = tokio::net::lookup_host(router.as_str()).await {
                dht_config
                    .bootstrap
                    .extend(addrs.filter(|a| a.is_ipv4() == local_addr.is_ipv4()));
            }
        }
        let dht = Dht::new(dht_config, now());
        let id = dht.id();
        let (commands, receiver) = mpsc::channel(64);
        tokio::spawn(run(dht, socket, receiver, state_path));
        Ok(DhtNode {
            commands,
            local_addr,
            id,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    async fn send(&self, command: Command) -> Result<(), DhtError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| DhtError::Stopped)
    }

    /// Joins the DHT and waits until the bootstrap lookup ends; returns the routing table's size (0 when
    /// nobody answered: the node keeps retrying with backoff).
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node has stopped.
    pub async fn bootstrap(&self) -> Result<usize, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Bootstrap(tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Looks up peers for `info_hash`. Peers arrive on the channel as they are found; it closes when the
    /// lookup ends. Dropping the receiver cancels the lookup.
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node has stopped.
    pub async fn get_peers(
        &self,
        info_hash: InfoHash,
    ) -> Result<mpsc::UnboundedReceiver<SocketAddr>, DhtError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Command::GetPeers(info_hash, tx)).await?;
        Ok(rx)
    }

    /// Announces us as a peer for `info_hash` on TCP `port` (`None`: `implied_port`, our UDP port as the
    /// other nodes see it) to the closest nodes; returns the lookup's outcome (`stats.announced` nodes
    /// accepted).
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node has stopped.
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<LookupResult, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Announce(info_hash, port, tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Pings `addr`, which enters the routing table if it answers.
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node has stopped.
    pub async fn add_node(&self, addr: SocketAddr) -> Result<(), DhtError> {
        self.send(Command::AddNode(addr)).await
    }

    /// The core's counters.
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node has stopped.
    pub async fn stats(&self) -> Result<Stats, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Saves the state (if a state directory is set) and stops the node.
    ///
    /// # Errors
    /// [`DhtError::Stopped`] if the node had already stopped.
    pub async fn shutdown(self) -> Result<(), DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Shutdown(tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }
}

/// tokio's clock, so paused-time tests work.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Default)]
struct Waiters {
    peers: HashMap<LookupId, mpsc::UnboundedSender<SocketAddr>>,
    announces: HashMap<LookupId, oneshot::Sender<LookupResult>>,
    bootstraps: Vec<(LookupId, oneshot::Sender<usize>)>,
}

async fn run(
    mut dht: Dht,
    socket: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    state_path: Option<PathBuf>,
) {
    let mut waiters = Waiters::default();
    let mut buf = vec![0u8; 65_536];
    let mut next_save = tokio::time::Instant::now() + SAVE_INTERVAL;
    let mut shutdown = None;
    loop {
        while let Some(transmit) = dht.poll_transmit() {
            // A failed send is a lost datagram, which the core's timeouts already handle.
            let _ = socket.send_to(&transmit.bytes, transmit.to).await;
        }
        while let Some(event) = dht.poll_event() {
            dispatch(&mut dht, &mut waiters, event);
        }
        if shutdown.is_some() {
            break;
        }
        let deadline = dht.poll_timeout().map_or(next_save, |t| {
            tokio::time::Instant::from_std(t).min(next_save)
        });
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                // Errors (an ICMP unreachable reported on some platforms) concern one datagram only.
                if let Ok((n, from)) = received {
                    dht.handle_datagram(now(), from, &buf[..n]);
                }
            }
            command = commands.recv() => match command {
                None => break,
                Some(Command::Shutdown(done)) => shutdown = Some(done),
                Some(command) => handle_command(&mut dht, &mut waiters, command),
            },
            () = tokio::time::sleep_until(deadline) => {
                dht.handle_timeout(now());
                if tokio::time::Instant::now() >= next_save {
                    next_save = tokio::time::Instant::now() + SAVE_INTERVAL;
                    save(&dht, state_path.as_ref()).await;
                }
            }
        }
    }
    save(&dht, state_path.as_ref()).await;
    if let Some(done) = shutdown {
        let _ = done.send(());
    }
}

fn handle_command(dht: &mut Dht, waiters: &mut Waiters, command: Command) {
    match command {
        Command::Bootstrap(done) => {
            let id = dht.bootstrap(now());
            waiters.bootstraps.push((id, done));
        }
        Command::GetPeers(info_hash, peers) => {
            let id = dht.get_peers(now(), info_hash);
            waiters.peers.insert(id, peers);
        }
        Command::Announce(info_hash, port, done) => {
            let id = dht.announce(now(), info_hash, port);
            waiters.announces.insert(id, done);
        }
        Command::AddNode(addr) => dht.ping(now(), addr),
        Command::Stats(reply) => {
            let _ = reply.send(dht.stats());
        }
        Command::Shutdown(_) => {}
    }
}

fn dispatch(dht: &mut Dht, waiters: &mut Waiters, event: Event) {
    match event {
        Event::Peers { lookup, peers, .. } => {
            if let Some(sink) = waiters.peers.get(&lookup) {
                let gone = peers.into_iter().any(|peer| sink.send(peer).is_err());
                if gone {
                    // The receiver was dropped: nobody wants this lookup any more.
                    waiters.peers.remove(&lookup);
                    dht.cancel(lookup);
                }
            }
        }
        Event::LookupDone(result) => {
            waiters.peers.remove(&result.id);
            if let Some(done) = waiters.announces.remove(&result.id) {
                let _ = done.send(result.clone());
            }
            if let Some(i) = waiters
                .bootstraps
                .iter()
                .position(|(id, _)| *id == result.id)
            {
                let (_, done) = waiters.bootstraps.swap_remove(i);
                let _ = done.send(dht.stats().nodes);
            }
        }
        Event::ExternalAddress(_) => {}
    }
}

async fn save(dht: &Dht, path: Option<&PathBuf>) {
    let Some(path) = path else {
        return;
    };
    let bytes = dht.saved_state().encode();
    // Write a temporary file and rename it over the old one, so a crash leaves the old or the new file.
    let temp = path.with_extension("dat.tmp");
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    if tokio::fs::write(&temp, &bytes).await.is_ok() {
        let _ = tokio::fs::rename(&temp, path).await;
    }
}
