//! The metadata stage of a magnet link (BEP 9 over BEP 10): find peers (the magnet's `x.pe` addresses,
//! its `tr` trackers and the DHT, all at once), fetch the info dictionary from them in 16 KiB pieces,
//! check it against the info-hash, then become an ordinary torrent task — keeping the connections, the
//! announce task and the DHT lookups, so the download starts without redialing anyone.
//!
//! Hostile peers: a `metadata_size` of 0 or over the cap, data we did not ask for, data of the wrong
//! size, and requests that time out all end with the peer dropped; a copy of the metadata that fails
//! its hash bans its sender when one peer sent it all, and otherwise makes the next copy come from one
//! peer alone, so a liar is found within a copy or two.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, Magnet};
use shoal_picker::Priority;
use shoal_wire::{
    ExtendedHandshake, MAX_METADATA_SIZE, Message, MetadataAssembler, MetadataMessage,
};
use tokio::sync::{mpsc, watch};

use crate::peer::{self, Command, Hello};
use crate::session::Context;
use crate::sources::{Announce, Counters, DhtPeers, next_outcome};
use crate::stats::{MetadataProgress, TorrentState, TorrentStats};
use crate::torrent::{Backoff, Event, OUR_METADATA_ID, OUR_PEX_ID, PEX_INTERVAL, PeerKey, Torrent};

/// A metadata request not answered in this long goes to another peer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Metadata requests outstanding per peer.
const PER_PEER: usize = 2;
/// A peer whose requests time out this often is dropped.
const MAX_STRIKES: u32 = 3;
/// Messages kept per peer for the torrent task (its bitfield, `have`s, extended handshake): a peer
/// that sends more before the metadata is in is dropped.
const MAX_BUFFERED: usize = 4096;

/// What the torrent task takes over from the metadata stage.
#[derive(Debug)]
pub(crate) struct Handover {
    pub peers: Vec<AdoptedPeer>,
    pub known: Vec<(SocketAddr, Backoff)>,
    /// Peers caught sending bad metadata.
    pub banned: Vec<shoal_metainfo::PeerId>,
    pub next_key: PeerKey,
    pub announce: Option<Announce>,
    pub counters: Counters,
    pub dht: Option<DhtPeers>,
    pub paused: bool,
    pub limits: (Option<u64>, Option<u64>),
    pub file_priorities: Option<Vec<Priority>>,
    pub sequential: bool,
    /// What each tracker said so far.
    pub trackers: Vec<crate::TrackerStats>,
}

/// A connection opened during the metadata stage.
#[derive(Debug)]
pub(crate) struct AdoptedPeer {
    pub key: PeerKey,
    pub hello: Hello,
    pub commands: mpsc::UnboundedSender<Command>,
    /// What it sent besides metadata messages, in order, for the torrent task to apply.
    pub messages: Vec<Message>,
}

#[derive(Debug)]
struct MetaPeer {
    hello: Hello,
    commands: mpsc::UnboundedSender<Command>,
    /// Its id for our `ut_metadata` messages.
    metadata_id: Option<u8>,
    /// The metadata size it announced.
    metadata_size: Option<u32>,
    messages: Vec<Message>,
    requested: usize,
    strikes: u32,
    /// It rejected a request: it does not have the metadata (yet).
    refuses: bool,
    /// When its recent PEX messages came (flood control).
    pex_received: Vec<Instant>,
}

/// The metadata stage's state.
pub(crate) struct MetadataStage {
    ctx: Context,
    info_hash: InfoHash,
    magnet: Magnet,
    save_path: std::path::PathBuf,
    events_tx: mpsc::Sender<Event>,
    stats: watch::Sender<TorrentStats>,
    torrent_file: Arc<std::sync::OnceLock<Arc<[u8]>>>,
    name: String,
    peers: HashMap<PeerKey, MetaPeer>,
    connecting: HashMap<PeerKey, SocketAddr>,
    known: HashMap<SocketAddr, Backoff>,
    next_key: PeerKey,
    assembler: Option<MetadataAssembler>,
    /// Metadata pieces asked for: of whom, and when.
    in_flight: HashMap<u32, (PeerKey, Instant)>,
    /// Who sent each piece of the copy being assembled.
    contributors: HashMap<u32, PeerKey>,
    /// After a bad copy from several peers, the next comes from this one peer alone.
    single_source: Option<PeerKey>,
    single_source_needed: bool,
    hash_failures: u32,
    banned: HashSet<shoal_metainfo::PeerId>,
    banned_addrs: HashSet<SocketAddr>,
    announce: Option<Announce>,
    trackers: Vec<crate::TrackerStats>,
    counters: Counters,
    dht: Option<DhtPeers>,
    paused: bool,
    limits: [Arc<crate::Limiter>; 2],
    limit_rates: (Option<u64>, Option<u64>),
    file_priorities: Option<Vec<Priority>>,
    sequential: bool,
}

/// How the metadata stage ended.
enum Outcome {
    Metadata(Vec<u8>),
    Shutdown,
}

impl MetadataStage {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: Context,
        magnet: Magnet,
        info_hash: InfoHash,
        save_path: std::path::PathBuf,
        events_tx: mpsc::Sender<Event>,
        stats: watch::Sender<TorrentStats>,
        torrent_file: Arc<std::sync::OnceLock<Arc<[u8]>>>,
    ) -> Self {
        let name = magnet
            .display_name
            .clone()
            .unwrap_or_else(|| info_hash.to_string());
        let counters: Counters = Arc::default();
        // The size is unknown: `xl` if the magnet gives it, else a token amount, so trackers count us as
        // a leecher and hand out seeds.
        counters[2].store(
            magnet.exact_length.unwrap_or(1).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
        Self {
            ctx,
            info_hash,
            name,
            save_path,
            events_tx,
            stats,
            torrent_file,
            peers: HashMap::new(),
            connecting: HashMap::new(),
            known: HashMap::new(),
            next_key: 1,
            assembler: None,
            in_flight: HashMap::new(),
            contributors: HashMap::new(),
            single_source: None,
            single_source_needed: false,
            hash_failures: 0,
            banned: HashSet::new(),
            banned_addrs: HashSet::new(),
            announce: None,
            trackers: Vec::new(),
            counters,
            dht: None,
            paused: false,
            limits: [
                Arc::new(crate::Limiter::new(None)),
                Arc::new(crate::Limiter::new(None)),
            ],
            limit_rates: (None, None),
            file_priorities: None,
            sequential: false,
            magnet,
        }
    }

    /// Fetches the metadata, then runs the torrent until shutdown.
    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        match self.fetch(&mut events).await {
            Outcome::Shutdown => {
                for peer in self.peers.values() {
                    let _ = peer.commands.send(Command::Close);
                }
                self.dht = None;
                if let Some(announce) = self.announce.take() {
                    announce.stop().await;
                }
            }
            Outcome::Metadata(info) => self.become_torrent(info, events).await,
        }
    }

    async fn fetch(&mut self, events: &mut mpsc::Receiver<Event>) -> Outcome {
        self.start_sources();
        let peers = self.magnet.peers.clone();
        self.learn(peers);
        self.publish();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None | Some(Event::Shutdown) => return Outcome::Shutdown,
                    Some(event) => {
                        if let Some(info) = self.handle(event) {
                            return Outcome::Metadata(info);
                        }
                    }
                },
                Some(outcome) = next_outcome(&mut self.announce) => self.on_announce(outcome),
                _ = tick.tick() => {
                    self.handle_timeouts(Instant::now());
                    // Nobody to ask: the trackers are asked again as soon as they allow (their
                    // minimum interval), not at their regular one.
                    if self.peers.is_empty()
                        && self.connecting.is_empty()
                        && let Some(announce) = &self.announce
                    {
                        let _ = announce
                            .commands
                            .try_send(shoal_tracker::AnnouncerCommand::WantPeers);
                    }
                    self.connect_more();
                    self.request_more();
                    self.publish();
                }
            }
        }
    }

    /// Starts the trackers' announce task and the DHT lookups.
    fn start_sources(&mut self) {
        let port = self.ctx.port;
        if let Some(client) = self.ctx.tracker_client.clone()
            && !self.magnet.trackers.is_empty()
        {
            let tiers = self
                .magnet
                .trackers
                .iter()
                .map(|t| vec![t.clone()])
                .collect();
            self.announce = Some(Announce::spawn(
                client,
                tiers,
                (self.info_hash, self.ctx.config.peer_id, port),
                self.ctx.config.seed,
                self.counters.clone(),
            ));
        }
        if let Some(dht) = self.ctx.dht.clone() {
            self.dht = Some(DhtPeers::spawn(
                dht,
                self.info_hash,
                port,
                self.events_tx.clone(),
            ));
        }
    }

    fn on_announce(&mut self, outcome: shoal_tracker::AnnounceOutcome) {
        let peers = crate::sources::record_announce(&mut self.trackers, outcome, self.ctx.port);
        self.learn(peers);
    }

    /// Handles one event; `Some` with the verified info dictionary when it is complete.
    fn handle(&mut self, event: Event) -> Option<Vec<u8>> {
        if event.is_choice() {
            let info = self.apply(event);
            self.save_settings();
            return info;
        }
        self.apply(event)
    }

    /// Records the user's choices (paused, in order, priorities, limits) for the next start.
    fn save_settings(&self) {
        if let Some(dir) = &self.ctx.config.state_dir {
            crate::settings::Settings::new(
                self.paused,
                self.sequential,
                self.file_priorities.as_deref(),
                self.limit_rates,
            )
            .save(dir, &self.info_hash);
        }
    }

    /// Handles one event (see [`handle`](Self::handle)).
    fn apply(&mut self, event: Event) -> Option<Vec<u8>> {
        let now = Instant::now();
        match event {
            Event::PeerConnected {
                key,
                hello,
                commands,
            } => self.on_connected(key, hello, commands, now),
            Event::PeerMessages { key, messages } => {
                for message in messages {
                    match self.on_message(key, message) {
                        Ok(Some(info)) => return Some(info),
                        Ok(None) => {}
                        Err(reason) => {
                            self.drop_peer(key, &reason);
                            break;
                        }
                    }
                }
                self.request_more();
            }
            Event::PeerGone { key, reason } => {
                let addr = self
                    .connecting
                    .remove(&key)
                    .or_else(|| self.peers.get(&key).map(|p| p.hello.addr));
                if let Some(backoff) = addr.and_then(|addr| self.known.get_mut(&addr)) {
                    backoff.failed(now);
                }
                self.remove_peer(key, &reason);
                self.connect_more();
            }
            Event::Incoming {
                link,
                handshake,
                permit,
            } => {
                if !self.paused && self.has_room() {
                    let key = self.take_key();
                    // Counted like a dial until it registers or fails (see `Torrent::on_incoming`).
                    let addr = link
                        .stream
                        .peer_addr()
                        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                    self.connecting.insert(key, addr);
                    tokio::spawn(peer::accept(*link, handshake, self.peer_setup(key), permit));
                }
            }
            Event::AddPeers(addrs) => self.learn(addrs),
            Event::SetLimits(down, up) => {
                self.limit_rates = (down, up);
                self.limits[0].set_rate(down);
                self.limits[1].set_rate(up);
            }
            Event::SetFilePriorities(priorities) => self.file_priorities = Some(priorities),
            Event::SetSequential(on) => self.sequential = on,
            // No files yet: the download directory just changes (and is recorded for the next start).
            Event::Move { to, reply } => {
                let moved = std::path::absolute(&to)
                    .map_err(|e| format!("{}: {e}", to.display()))
                    .and_then(|to| {
                        if let Some(dir) = &self.ctx.config.state_dir {
                            crate::session::save_path_file(dir, &self.info_hash, &to)
                                .map_err(|e| format!("recording the new directory: {e}"))?;
                        }
                        let from = std::mem::replace(&mut self.save_path, to.clone());
                        Ok((from, to))
                    });
                let _ = reply.send(moved);
            }
            Event::Moved(_) => {} // only a torrent's storage moves
            Event::Pause => {
                self.paused = true;
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for key in keys {
                    self.drop_peer(key, "paused");
                }
                self.publish();
            }
            Event::Resume => {
                self.paused = false;
                for backoff in self.known.values_mut() {
                    *backoff = Backoff::ready(now);
                }
                self.connect_more();
                self.publish();
            }
            Event::PieceChecked { .. } | Event::SaveResume | Event::Shutdown => {}
        }
        None
    }

    fn has_room(&self) -> bool {
        self.peers.len() + self.connecting.len() < self.ctx.config.limits.max_peers_per_torrent
    }

    fn take_key(&mut self) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    /// Adds addresses to dial, minus unusable ones and ourselves.
    fn learn(&mut self, addrs: Vec<SocketAddr>) {
        let now = Instant::now();
        for addr in addrs {
            let ip = addr.ip();
            let is_us = addr.port() == self.ctx.port && (ip.is_loopback() || ip.is_unspecified());
            if addr.port() == 0 || ip.is_multicast() || ip.is_unspecified() || is_us {
                continue;
            }
            if self.known.len() < 10_000 {
                self.known.entry(addr).or_insert(Backoff::ready(now));
            }
        }
        self.connect_more();
    }

    fn connect_more(&mut self) {
        if self.paused {
            return;
        }
        let now = Instant::now();
        let busy: HashSet<SocketAddr> = self
            .peers
            .values()
            .map(|p| p.hello.addr)
            .chain(self.connecting.values().copied())
            .collect();
        let due: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(addr, backoff)| {
                backoff.is_due(now) && !busy.contains(addr) && !self.banned_addrs.contains(addr)
            })
            .map(|(addr, _)| *addr)
            .collect();
        for addr in due {
            if !self.has_room() {
                break;
            }
            let Ok(permit) = self.ctx.connections.clone().try_acquire_owned() else {
                break;
            };
            let key = self.take_key();
            self.connecting.insert(key, addr);
            // Not due again until this attempt ends (it resets on success, backs off on failure).
            if let Some(backoff) = self.known.get_mut(&addr) {
                *backoff = Backoff::ready(now + self.ctx.config.limits.connect_timeout);
            }
            tokio::spawn(peer::connect(addr, self.peer_setup(key), permit));
        }
    }

    fn peer_setup(&self, key: PeerKey) -> peer::Setup {
        let [global_down, global_up] = &self.ctx.limits;
        let [down, up] = &self.limits;
        let config = &self.ctx.config;
        peer::Setup {
            key,
            info_hash: self.info_hash,
            our_id: config.peer_id,
            piece_count: None,
            limits: config.limits.clone(),
            half_open: self.ctx.half_open.clone(),
            events: self.events_tx.clone(),
            download: [global_down.clone(), down.clone()],
            upload: [global_up.clone(), up.clone()],
            encryption: config.encryption,
        }
    }

    fn on_connected(
        &mut self,
        key: PeerKey,
        hello: Hello,
        commands: mpsc::UnboundedSender<Command>,
        now: Instant,
    ) {
        self.connecting.remove(&key);
        let duplicate = self
            .peers
            .values()
            .any(|p| p.hello.peer_id == hello.peer_id);
        if duplicate
            || self.paused
            || hello.peer_id == self.ctx.config.peer_id
            || self.banned.contains(&hello.peer_id)
            || !hello.reserved.supports_extensions()
        {
            // Without the extension protocol a peer cannot send metadata; it will be met again once
            // the torrent runs, through trackers, the DHT or its own dialing.
            let _ = commands.send(Command::Close);
            return;
        }
        if hello.outgoing {
            self.known.insert(hello.addr, Backoff::ready(now));
        }
        let mut first = Vec::new();
        if hello.reserved.supports_fast() {
            first.push(Message::HaveNone);
        }
        let ours = ExtendedHandshake {
            client: Some(format!("Shoal {}", env!("CARGO_PKG_VERSION"))),
            request_queue: u32::try_from(self.ctx.config.limits.max_queued_requests).ok(),
            ..ExtendedHandshake::default()
        }
        .with_extension(shoal_wire::UT_METADATA, OUR_METADATA_ID)
        // A magnet link cannot say whether the torrent is private; the info dictionary will, and the
        // torrent task then ignores PEX. Until then PEX is offered, as for any public torrent.
        .with_extension(shoal_wire::UT_PEX, OUR_PEX_ID);
        first.push(ours.to_message());
        let _ = commands.send(Command::Send(first));
        self.peers.insert(
            key,
            MetaPeer {
                hello,
                commands,
                metadata_id: None,
                metadata_size: None,
                messages: Vec::new(),
                requested: 0,
                strikes: 0,
                refuses: false,
                pex_received: Vec::new(),
            },
        );
    }

    /// Applies one message: metadata messages here, everything else kept for the torrent task.
    fn on_message(&mut self, key: PeerKey, message: Message) -> Result<Option<Vec<u8>>, String> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(None);
        };
        match message {
            Message::Extended {
                id: OUR_METADATA_ID,
                payload,
            } => {
                let message =
                    MetadataMessage::decode(&payload).map_err(|e| format!("ut_metadata: {e}"))?;
                return self.on_metadata(key, message);
            }
            Message::Extended { id: 0, payload } => {
                let handshake = ExtendedHandshake::decode(&payload)
                    .map_err(|e| format!("extended handshake: {e}"))?;
                peer.metadata_id = handshake.extension_id(shoal_wire::UT_METADATA);
                // A `metadata_size` out of range (0, negative, over the cap) is a lie (HOSTILE 33).
                if handshake.metadata_size_refused {
                    return Err(format!(
                        "metadata_size is not between 1 and {MAX_METADATA_SIZE}"
                    ));
                }
                if let Some(size) = handshake.metadata_size {
                    let max = self
                        .ctx
                        .config
                        .limits
                        .max_metadata_size
                        .min(MAX_METADATA_SIZE);
                    if size == 0 || size > max {
                        return Err(format!("metadata_size {size} is 0 or over {max}"));
                    }
                    peer.metadata_size = Some(size);
                }
                peer.messages.push(Message::Extended { id: 0, payload });
            }
            Message::Extended {
                id: OUR_PEX_ID,
                payload,
            } => {
                // The torrent task's flood rule (BEP 11 convention: about one message a minute).
                let now = Instant::now();
                peer.pex_received
                    .retain(|at| now.duration_since(*at) < PEX_INTERVAL);
                peer.pex_received.push(now);
                let limits = &self.ctx.config.limits;
                if peer.pex_received.len() > limits.max_pex_per_minute {
                    return Err(format!(
                        "PEX flood: more than {} messages in a minute",
                        limits.max_pex_per_minute
                    ));
                }
                // PEX addresses help find metadata sources now; the message itself is not replayed.
                if let Ok(pex) = shoal_wire::PexMessage::decode(&payload) {
                    let max = limits.max_pex_peers;
                    let addrs = pex.added.iter().take(max).map(|p| p.addr).collect();
                    self.learn(addrs);
                }
            }
            Message::KeepAlive => {}
            other => {
                if peer.messages.len() >= MAX_BUFFERED {
                    return Err("too many messages before the metadata arrived".into());
                }
                peer.messages.push(other);
            }
        }
        Ok(None)
    }

    fn on_metadata(
        &mut self,
        key: PeerKey,
        message: MetadataMessage,
    ) -> Result<Option<Vec<u8>>, String> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(None);
        };
        match message {
            // We have nothing to give yet (BEP 9: reject).
            MetadataMessage::Request { piece } => {
                if let Some(id) = peer.metadata_id {
                    let reject = MetadataMessage::Reject { piece };
                    let _ = peer
                        .commands
                        .send(Command::Send(vec![reject.to_message(id)]));
                }
                Ok(None)
            }
            MetadataMessage::Reject { piece } => {
                if self.in_flight.get(&piece).is_some_and(|(k, _)| *k == key) {
                    self.in_flight.remove(&piece);
                    peer.requested = peer.requested.saturating_sub(1);
                }
                peer.refuses = true;
                if self.single_source == Some(key) {
                    self.single_source = None;
                }
                Ok(None)
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                if self.in_flight.get(&piece).is_none_or(|(k, _)| *k != key) {
                    // Late data for a piece that timed out and went elsewhere is harmless; data never
                    // asked of anyone is not.
                    if self.contributors.contains_key(&piece) {
                        return Ok(None);
                    }
                    return Err(format!("metadata piece {piece} was not requested"));
                }
                self.in_flight.remove(&piece);
                peer.requested = peer.requested.saturating_sub(1);
                let Some(assembler) = self.assembler.as_mut() else {
                    return Ok(None);
                };
                assembler
                    .handle_data(piece, total_size, &data)
                    .map_err(|e| format!("ut_metadata: {e}"))?;
                self.contributors.insert(piece, key);
                if !assembler.is_complete() {
                    return Ok(None);
                }
                let assembler = self.assembler.take().expect("checked above");
                match assembler.finish(&self.info_hash) {
                    Ok(info) => Ok(Some(info)),
                    Err(e) => {
                        self.hash_failures += 1;
                        let senders: HashSet<PeerKey> =
                            self.contributors.drain().map(|(_, k)| k).collect();
                        tracing::warn!(error = %e, senders = senders.len(), "metadata failed its hash");
                        self.in_flight.clear();
                        for peer in self.peers.values_mut() {
                            peer.requested = 0;
                        }
                        if senders.len() == 1 {
                            // One sender: it lied.
                            for liar in senders {
                                self.ban(liar);
                            }
                        } else {
                            self.single_source_needed = true;
                        }
                        self.single_source = None;
                        Ok(None)
                    }
                }
            }
        }
    }

    fn ban(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get(&key) {
            self.banned.insert(peer.hello.peer_id);
            if peer.hello.outgoing {
                self.banned_addrs.insert(peer.hello.addr);
            }
        }
        self.drop_peer(key, "sent metadata that failed its hash");
    }

    /// Whether `peer` can be asked for pieces of metadata of `size` bytes.
    fn can_serve(peer: &MetaPeer, size: Option<u32>) -> bool {
        peer.metadata_id.is_some()
            && !peer.refuses
            && peer.metadata_size.is_some()
            && (size.is_none() || peer.metadata_size == size)
    }

    /// Asks peers for the metadata pieces nobody is sending yet.
    fn request_more(&mut self) {
        if self.paused {
            return;
        }
        if self.assembler.is_none() {
            // The first peer that offers the metadata sets its size; peers that claim another size
            // are not asked (one of them lies, and the hash will tell).
            let Some(size) = self
                .peers
                .values()
                .filter(|p| Self::can_serve(p, None))
                .find_map(|p| p.metadata_size)
            else {
                return;
            };
            match MetadataAssembler::new(size) {
                Ok(assembler) => self.assembler = Some(assembler),
                Err(_) => return,
            }
            self.contributors.clear();
        }
        let size = self.assembler.as_ref().map(MetadataAssembler::total_size);
        if self.single_source_needed && self.single_source.is_none() {
            let mut keys: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| Self::can_serve(p, size))
                .map(|(k, _)| *k)
                .collect();
            keys.sort_unstable();
            self.single_source = keys.first().copied();
        }
        let missing: Vec<u32> = self
            .assembler
            .as_ref()
            .map(|a| {
                a.missing()
                    .filter(|p| !self.in_flight.contains_key(p))
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        for piece in missing {
            let limit = if self.single_source.is_some() {
                usize::MAX
            } else {
                PER_PEER
            };
            let chosen = self
                .peers
                .iter()
                .filter(|(k, p)| {
                    Self::can_serve(p, size)
                        && p.requested < limit
                        && self.single_source.is_none_or(|s| s == **k)
                })
                // Peers whose requests timed out come last: a silent peer is not asked again while
                // another can serve.
                .min_by_key(|(k, p)| (p.strikes, p.requested, **k))
                .map(|(k, _)| *k);
            let Some(key) = chosen else { break };
            let peer = self.peers.get_mut(&key).expect("chosen from the map");
            let Some(id) = peer.metadata_id else { break };
            peer.requested += 1;
            let request = MetadataMessage::Request { piece };
            let _ = peer
                .commands
                .send(Command::Send(vec![request.to_message(id)]));
            self.in_flight.insert(piece, (key, now));
        }
    }

    fn handle_timeouts(&mut self, now: Instant) {
        let late: Vec<(u32, PeerKey)> = self
            .in_flight
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= REQUEST_TIMEOUT)
            .map(|(piece, (key, _))| (*piece, *key))
            .collect();
        for (piece, key) in late {
            self.in_flight.remove(&piece);
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.requested = peer.requested.saturating_sub(1);
            peer.strikes += 1;
            if peer.strikes >= MAX_STRIKES {
                self.drop_peer(key, "metadata requests time out");
            } else if self.single_source == Some(key) {
                self.single_source = None;
            }
        }
    }

    /// Closes a peer's connection; its address waits before it is dialed again.
    fn drop_peer(&mut self, key: PeerKey, reason: &str) {
        if let Some(peer) = self.peers.get(&key) {
            let _ = peer.commands.send(Command::Close);
            if let Some(backoff) = self.known.get_mut(&peer.hello.addr) {
                backoff.failed(Instant::now());
            }
        }
        self.remove_peer(key, reason);
    }

    fn remove_peer(&mut self, key: PeerKey, reason: &str) {
        if let Some(peer) = self.peers.remove(&key) {
            tracing::debug!(addr = %peer.hello.addr, reason, "peer gone");
            self.in_flight.retain(|_, (k, _)| *k != key);
            if self.single_source == Some(key) {
                self.single_source = None;
            }
        }
    }

    fn progress(&self) -> MetadataProgress {
        let (pieces_have, pieces_total) = self.assembler.as_ref().map_or((0, 0), |a| {
            let total = shoal_wire::metadata_piece_count(a.total_size());
            (total - a.missing().count() as u32, total)
        });
        MetadataProgress {
            peers: self.peers.len(),
            sources: self
                .peers
                .values()
                .filter(|p| Self::can_serve(p, None))
                .count(),
            pieces_have,
            pieces_total,
            known_addresses: self.known.len(),
            hash_failures: self.hash_failures,
        }
    }

    fn publish(&mut self) {
        let stats = TorrentStats {
            name: self.name.clone(),
            state: if self.paused {
                TorrentState::Paused
            } else {
                TorrentState::FetchingMetadata
            },
            peers: self
                .peers
                .values()
                .map(|p| crate::PeerStats {
                    addr: p.hello.addr,
                    client: crate::torrent::client_name(&p.hello.peer_id),
                    outgoing: p.hello.outgoing,
                    encrypted: p.hello.encrypted,
                    peer_choking: true,
                    am_choking: true,
                    peer_interested: false,
                    am_interested: false,
                    download_rate: 0,
                    upload_rate: 0,
                    pieces: 0,
                })
                .collect(),
            trackers: self.trackers.clone(),
            dht_peers: self
                .dht
                .as_ref()
                .map(|d| d.found.load(std::sync::atomic::Ordering::Relaxed)),
            metadata: Some(self.progress()),
            sequential: self.sequential,
            download_limit: self.limit_rates.0,
            upload_limit: self.limit_rates.1,
            ..TorrentStats::default()
        };
        self.stats.send_replace(stats);
    }

    /// Saves the torrent file, sets the torrent up and runs it with everything gathered so far.
    async fn become_torrent(mut self, info: Vec<u8>, events: mpsc::Receiver<Event>) {
        let torrent = torrent_file(&info, &self.magnet.trackers, &self.magnet.web_seeds);
        tracing::info!(
            torrent = %self.name,
            bytes = info.len(),
            peers = self.peers.len(),
            "metadata received"
        );
        let prepared = self
            .ctx
            .prepare(&torrent, &self.save_path)
            .and_then(|prepared| {
                if prepared.info.info_hash == self.info_hash {
                    Ok(prepared)
                } else {
                    Err(crate::SessionError::Unsupported(
                        "the metadata does not match the magnet's info-hash".into(),
                    ))
                }
            });
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let message = error_chain(&e);
                tracing::error!(torrent = %self.name, error = %message, "cannot start the torrent");
                for peer in self.peers.values() {
                    let _ = peer.commands.send(Command::Close);
                }
                let stats = TorrentStats {
                    name: self.name.clone(),
                    state: TorrentState::Error,
                    error: Some(message),
                    ..TorrentStats::default()
                };
                self.stats.send_replace(stats);
                wait_for_shutdown(events).await;
                return;
            }
        };
        self.ctx
            .metadata_fetched(&prepared.info.name, &self.info_hash, &torrent);
        let _ = self.torrent_file.set(Arc::from(torrent));
        let file_priorities = self
            .file_priorities
            .take()
            .or_else(|| select_only(&self.magnet, prepared.file_count));
        let mut torrent = match Torrent::new(
            prepared.info,
            self.ctx.config.clone(),
            prepared.storage,
            self.events_tx.clone(),
            self.stats.clone(),
        ) {
            Ok(torrent) => torrent,
            Err(e) => {
                self.stats.send_modify(|s| {
                    s.state = TorrentState::Error;
                    s.error = Some(e);
                    s.metadata = None;
                });
                wait_for_shutdown(events).await;
                return;
            }
        };
        let peers = self
            .peers
            .drain()
            .map(|(key, p)| AdoptedPeer {
                key,
                hello: p.hello,
                commands: p.commands,
                messages: p.messages,
            })
            .collect();
        let banned = std::mem::take(&mut self.banned_addrs);
        torrent.adopt(Handover {
            peers,
            known: self
                .known
                .drain()
                .filter(|(addr, _)| !banned.contains(addr))
                .collect(),
            banned: self.banned.drain().collect(),
            next_key: self.next_key,
            announce: self.announce.take(),
            counters: self.counters.clone(),
            dht: self.dht.take(),
            paused: self.paused,
            limits: self.limit_rates,
            file_priorities,
            sequential: self.sequential,
            trackers: std::mem::take(&mut self.trackers),
        });
        torrent.run(events).await;
    }
}

/// Waits until the session removes the torrent (a torrent in error stays listed until then).
async fn wait_for_shutdown(mut events: mpsc::Receiver<Event>) {
    while let Some(event) = events.recv().await {
        if matches!(event, Event::Shutdown) {
            return;
        }
    }
}

/// The error with its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// File priorities from the magnet's `so=` (BEP 53): the listed files normal, the rest skipped; `None`
/// when it lists none.
fn select_only(magnet: &Magnet, file_count: usize) -> Option<Vec<Priority>> {
    if magnet.select_only.is_empty() {
        return None;
    }
    Some(
        (0..file_count as u64)
            .map(|i| {
                if magnet.select_only.iter().any(|range| range.contains(&i)) {
                    Priority::Normal
                } else {
                    Priority::Skip
                }
            })
            .collect(),
    )
}

/// A `.torrent` file around fetched metadata: the info dictionary's exact bytes, the magnet's trackers
/// as `announce` and `announce-list` (one tier each, in order) and its web seeds (`ws=`) as `url-list`.
pub(crate) fn torrent_file(info: &[u8], trackers: &[String], web_seeds: &[String]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(info.len() + 64);
    out.push(b'd');
    // Keys in sorted order: announce, announce-list, info.
    if let Some(first) = trackers.first() {
        string(&mut out, b"announce");
        string(&mut out, first.as_bytes());
        string(&mut out, b"announce-list");
        out.push(b'l');
        for tracker in trackers {
            out.push(b'l');
            string(&mut out, tracker.as_bytes());
            out.push(b'e');
        }
        out.push(b'e');
    }
    string(&mut out, b"info");
    out.extend_from_slice(info);
    if !web_seeds.is_empty() {
        string(&mut out, b"url-list");
        out.push(b'l');
        for url in web_seeds {
            string(&mut out, url.as_bytes());
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrent_file_keeps_the_info_bytes_and_the_trackers() {
        let info = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let file = torrent_file(
            info,
            &["udp://t.example:1".into(), "http://u.example/a".into()],
            &["http://w.example/pub/".into()],
        );
        let metainfo = shoal_metainfo::Metainfo::from_bytes(&file).expect("valid torrent");
        assert_eq!(
            metainfo.info.info_hashes().v1,
            Some(InfoHash::of_info(info))
        );
        assert_eq!(
            metainfo.trackers(),
            vec![vec!["udp://t.example:1"], vec!["http://u.example/a"]]
        );
        assert_eq!(metainfo.url_list, ["http://w.example/pub/"]);
        let bare = torrent_file(info, &[], &[]);
        assert!(
            shoal_metainfo::Metainfo::from_bytes(&bare)
                .expect("valid torrent")
                .trackers()
                .is_empty()
        );
    }

    #[test]
    fn select_only_skips_the_files_not_listed() {
        let mut magnet = Magnet::default();
        assert_eq!(select_only(&magnet, 3), None);
        magnet.select_only = vec![0..=0, 2..=3];
        assert_eq!(
            select_only(&magnet, 5),
            Some(vec![
                Priority::Normal,
                Priority::Skip,
                Priority::Normal,
                Priority::Normal,
                Priority::Skip
            ])
        );
    }
}
