//! The torrent task: owns the picker, the choker, the storage handle and every peer's protocol state,
//! and reacts to peer messages, hash results and timers. Peers' sockets live in their own tasks
//! (`peer.rs`); this task never blocks on a socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, PeerId};
use shoal_picker::Picker;
use shoal_storage::{PieceCheck, ResumeData, Storage};
use shoal_wire::{Bitfield, Block, BlockRef, ExtendedHandshake, Message, PieceIndex};
use tokio::sync::{mpsc, watch};

use crate::peer::{self, Command, Hello};
use crate::sources::{Announce, Counters, DhtPeers, next_outcome};
use crate::stats::{PeerStats, TorrentState, TorrentStats};
use crate::{Candidate, Choker, RateMeter, SessionConfig};

/// A peer connection's handle inside a torrent.
pub(crate) type PeerKey = u64;

/// Everything that reaches the torrent task.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection finished its handshake.
    PeerConnected {
        key: PeerKey,
        hello: Hello,
        commands: mpsc::UnboundedSender<Command>,
    },
    /// Messages from a peer, in order.
    PeerMessages {
        key: PeerKey,
        messages: Vec<Message>,
    },
    /// A connection ended (or never started).
    PeerGone { key: PeerKey, reason: String },
    /// A completed piece was hashed.
    PieceChecked { piece: u32, report: PieceReport },
    /// An incoming connection for this torrent, its handshake read, with its place in the session's
    /// connection budget.
    Incoming {
        link: Box<peer::Link>,
        handshake: shoal_wire::Handshake,
        permit: tokio::sync::OwnedSemaphorePermit,
    },
    /// Addresses to try.
    AddPeers(Vec<SocketAddr>),
    /// Write resume data now (after completing, say).
    SaveResume,
    /// New download and upload limits for this torrent, bytes per second (`None`: unlimited).
    SetLimits(Option<u64>, Option<u64>),
    /// Stop transferring: close every connection and make none until resumed.
    Pause,
    /// Start transferring again after a pause.
    Resume,
    /// New priorities for the torrent's files (padding files included), in torrent order.
    SetFilePriorities(Vec<shoal_picker::Priority>),
    /// Sequential mode on or off.
    SetSequential(bool),
    /// Move the data under another download directory; the reply gets the new directory or why not.
    Move { to: PathBuf, reply: MoveReply },
    /// A move's file work is done: the storage at the new place, or why not (the files are back).
    Moved(Result<Storage, String>),
    /// Stop: close every connection, save resume data and end the task.
    Shutdown,
}

impl Event {
    /// Whether it changes one of the user's choices kept in `<hash>.settings` (`settings.rs`).
    pub(crate) fn is_choice(&self) -> bool {
        matches!(
            self,
            Event::Pause
                | Event::Resume
                | Event::SetLimits(..)
                | Event::SetFilePriorities(_)
                | Event::SetSequential(_)
        )
    }
}

/// What the torrent needs from its metainfo.
#[derive(Debug, Clone)]
pub(crate) struct TorrentInfo {
    pub name: String,
    pub info_hash: InfoHash,
    pub piece_hashes: Vec<[u8; 20]>,
    /// Where resume data lives (`None`: no persistence).
    pub resume_path: Option<PathBuf>,
    /// Tracker tiers (BEP 12).
    pub trackers: Vec<Vec<String>>,
    /// The port we accept peers on, for announces.
    pub port: u16,
    /// The session's tracker client.
    pub tracker_client: Option<Arc<shoal_tracker::TrackerClient>>,
    /// The session-wide download and upload limits.
    pub global_limits: [Arc<crate::Limiter>; 2],
    /// A private torrent (BEP 27): peers from its trackers only, so no PEX and no DHT.
    pub private: bool,
    /// The info dictionary's bytes, served to peers that ask for them (BEP 9).
    pub metadata: Arc<[u8]>,
    /// The session's DHT node, if it runs one.
    pub dht: Option<shoal_dht::DhtNode>,
    /// Pieces hashed at once, session-wide (one per core).
    pub hash_slots: Arc<tokio::sync::Semaphore>,
    /// The session-wide connection budget (`max_connections`).
    pub connections: Arc<tokio::sync::Semaphore>,
    /// The session-wide half-open budget (`max_half_open`).
    pub half_open: Arc<tokio::sync::Semaphore>,
    /// BEP 19 web seeds (the torrent's `url-list`, a magnet link's `ws=`).
    pub web_seeds: Vec<crate::webseed::WebSeed>,
}

/// One connected peer's protocol state.
#[derive(Debug)]
struct Peer {
    hello: Hello,
    commands: mpsc::UnboundedSender<Command>,
    client: String,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    /// Which pieces the peer has.
    has: Vec<bool>,
    n_has: u32,
    /// Pieces the peer has that we lack: we are interested while this is above zero.
    wanted: u32,
    /// Requests sent and not yet answered.
    in_flight: usize,
    /// Requests withdrawn recently (timed out, cancelled, dropped by a choke): their blocks may still
    /// come, and are welcome.
    withdrawn: std::collections::VecDeque<BlockRef>,
    /// Blocks it sent that we never asked of it.
    unrequested: u32,
    /// The peer's advertised request queue (BEP 10 `reqq`).
    reqq: Option<u32>,
    /// It sent blocks of a piece that verified: until then its pipeline is kept to about one piece, so a
    /// peer sending bad data spoils at most a piece or two before it is caught.
    proven: bool,
    /// The id the peer wants our `ut_pex` messages under (BEP 11), if it speaks PEX.
    pex_id: Option<u8>,
    /// The id the peer wants our `ut_metadata` messages under (BEP 9).
    metadata_id: Option<u8>,
    /// The addresses we last told it about, and when.
    pex_sent: Vec<SocketAddr>,
    pex_last: Instant,
    /// When its recent PEX messages came (flood control).
    pex_received: Vec<Instant>,
    /// It sent blocks of a piece that failed and has not proven itself since: it gets no requests while
    /// other peers can serve us, until the re-downloaded piece shows whether its blocks were right.
    suspected: bool,
    /// When it last sent us a block (or, when it had nothing to send, when we started asking).
    last_block: Instant,
    /// It sent nothing for [`SNUB_AFTER`] with requests outstanding: they went to other peers and it
    /// gets one request at a time until it sends a block.
    snubbed: bool,
    /// Requests refused in a row because its queue on us was full.
    refused_floods: usize,
    download: RateMeter,
    upload: RateMeter,
    connected_at: Instant,
}

impl Peer {
    /// Remembers a withdrawn request, so its block is still welcome if it comes.
    fn withdraw(&mut self, block: BlockRef) {
        if self.withdrawn.len() == WITHDRAWN_MEMORY {
            self.withdrawn.pop_front();
        }
        self.withdrawn.push_back(block);
    }
}

/// BEP 11 conventions: one PEX message a minute (at most `Limits::max_pex_peers` added and as many
/// dropped peers each).
pub(crate) const PEX_INTERVAL: Duration = Duration::from_secs(60);
const PEX_FIRST: Duration = Duration::from_secs(5);
/// Our id for `ut_pex` messages sent to us.
pub(crate) const OUR_PEX_ID: u8 = 1;
/// Our id for `ut_metadata` messages sent to us.
pub(crate) const OUR_METADATA_ID: u8 = 2;

/// How long downloading waits after a write error (a full disk) before trying again.
const STALL_RETRY: Duration = Duration::from_secs(10);
/// How far ahead of the first missing piece sequential mode picks in order, in bytes (at least 4
/// pieces).
const SEQUENTIAL_WINDOW: u64 = 32 << 20;

/// How often (in seconds) changed transfer counters alone are written to resume data; a crash loses at
/// most this much of them.
const COUNTERS_SAVED_EVERY: u64 = 300;

/// Block bytes uploaded and downloaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Transferred {
    uploaded: u64,
    downloaded: u64,
}

/// The most bans a torrent remembers.
const MAX_BANS: usize = 4096;

/// A peer with requests outstanding that sends no block for this long is snubbed.
const SNUB_AFTER: Duration = Duration::from_secs(10);

/// Blocks a peer may send us that we never asked of it (nor withdrew recently) before it is dropped.
const MAX_UNREQUESTED: u32 = 16;
/// Requests withdrawn from a peer (timed out, cancelled in endgame, dropped by a choke) remembered so
/// that a block arriving late is still welcome.
const WITHDRAWN_MEMORY: usize = 512;

/// In endgame, the most requests a peer keeps outstanding.
const ENDGAME_PIPELINE: usize = 2;

/// Redial pacing for one address: failures double the wait (1 s up to 5 min), so a dead or hostile
/// address is not hammered (HOSTILE 50).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    failures: u32,
    next_attempt: Instant,
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(300);

    /// An address that may be dialed at once.
    pub(crate) fn ready(now: Instant) -> Self {
        Self {
            failures: 0,
            next_attempt: now,
        }
    }

    /// Whether the address may be dialed now.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_attempt <= now
    }

    /// Notes a failed attempt: the next one waits twice as long as the last.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_secs(1u64 << self.failures.min(9)).min(Self::MAX);
        self.next_attempt = now + wait;
    }
}

/// The torrent task's state.
pub(crate) struct Torrent {
    info: TorrentInfo,
    config: SessionConfig,
    storage: Arc<Storage>,
    picker: Picker<PeerKey>,
    choker: Choker<PeerKey>,
    have: Vec<bool>,
    peers: HashMap<PeerKey, Peer>,
    /// Connections being set up (dialed, or incoming and not yet registered), by address.
    connecting: HashMap<PeerKey, SocketAddr>,
    /// Every address we know, with when it may be dialed again.
    known: HashMap<SocketAddr, Backoff>,
    next_key: PeerKey,
    events_tx: mpsc::Sender<Event>,
    stats: watch::Sender<TorrentStats>,
    download: RateMeter,
    upload: RateMeter,
    hash_failures: u32,
    state: TorrentState,
    /// Paused by the user (the state to return to is derived from the picker).
    paused: bool,
    error: Option<String>,
    picks: Vec<BlockRef>,
    /// Pieces verified since resume data was last written.
    resume_dirty: bool,
    /// The last resume data saved was not synced (it holds until a reboot); the next periodic save
    /// syncs.
    resume_unsynced: bool,
    /// Block bytes uploaded and downloaded in earlier runs (from resume data).
    earlier: Transferred,
    /// The all-time counters the last saved resume data holds.
    saved: Transferred,
    /// Pieces with a block that could not be written: refetched whole, blaming nobody.
    write_lost: std::collections::HashSet<u32>,
    /// When downloading stalled on a write error (state [`TorrentState::Stalled`]).
    stalled_since: Option<Instant>,
    /// Who sent each block of the pieces not yet verified (offset, sender), for blame when a hash fails.
    senders: HashMap<u32, Vec<(u32, BanKey)>>,
    /// Pieces that failed their hash: each block's sender and the SHA-1 of what it sent. When the piece
    /// later verifies, a block that differs from the good one proves its sender lied.
    suspects: HashMap<u32, Vec<(u32, BanKey, [u8; 20])>>,
    banned: std::collections::HashSet<BanKey>,
    /// Senders of the pieces being hashed right now.
    checking: HashMap<u32, Vec<BanKey>>,
    /// The announce task, its commands and its outcomes.
    announce: Option<Announce>,
    trackers: Vec<crate::TrackerStats>,
    /// Transfer counters shared with the announce task (uploaded, downloaded, left).
    counters: Counters,
    /// The DHT lookup and announce task (public torrents, when the session runs a DHT node).
    dht: Option<DhtPeers>,
    /// File priorities as last set (padding files included), `None` while all are normal.
    file_priorities: Option<Vec<shoal_picker::Priority>>,
    /// Sequential mode: the pieces just past what is in, in order, first.
    sequential: bool,
    /// This torrent's download and upload limits.
    limits: [Arc<crate::Limiter>; 2],
    /// BEP 19 web seeds, each with its connection (a task) when it runs and its retry pacing.
    web_seeds: Vec<WebSeedSlot>,
    /// A move of the data under way.
    moving: Option<Moving>,
}

/// Where a move's outcome goes: the old and the new download directory, or why it did not happen.
pub(crate) type MoveReply = tokio::sync::oneshot::Sender<Result<(PathBuf, PathBuf), String>>;

/// A move of the data under way ([`Event::Move`]).
#[derive(Debug)]
struct Moving {
    to: PathBuf,
    reply: MoveReply,
    /// Paused by the user before the move: stays paused after it.
    was_paused: bool,
    /// The file work has been handed to a blocking thread.
    started: bool,
}

/// A web seed of the torrent and how it fares.
#[derive(Debug)]
struct WebSeedSlot {
    seed: crate::webseed::WebSeed,
    /// Its task's key while it runs.
    key: Option<PeerKey>,
    backoff: Backoff,
    /// Banned for bad data: never used again.
    dead: bool,
}

/// Whom a ban applies to: the IP address, except on loopback, where every test peer shares 127.0.0.1 and
/// the peer's listening address (or, for incoming peers, its peer id) is used instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BanKey {
    Ip(std::net::IpAddr),
    Addr(SocketAddr),
    PeerId(PeerId),
}

impl BanKey {
    fn of(hello: &Hello) -> Self {
        if hello.web_seed.is_some() {
            // Its id stands for its URL; its address may be shared with honest peers.
            return Self::PeerId(hello.peer_id);
        }
        match hello.addr.ip() {
            ip if !ip.is_loopback() => Self::Ip(ip),
            _ if hello.outgoing => Self::Addr(hello.addr),
            _ => Self::PeerId(hello.peer_id),
        }
    }

    fn matches_addr(&self, addr: SocketAddr) -> bool {
        match self {
            Self::Ip(ip) => addr.ip() == *ip,
            Self::Addr(banned) => addr == *banned,
            Self::PeerId(_) => false,
        }
    }
}

impl Torrent {
    /// Sets the torrent up; call [`Torrent::run`] to start it.
    pub(crate) fn new(
        info: TorrentInfo,
        config: SessionConfig,
        storage: Arc<Storage>,
        events_tx: mpsc::Sender<Event>,
        stats: watch::Sender<TorrentStats>,
    ) -> Result<Self, String> {
        let layout = storage.layout();
        let picker = Picker::new(
            layout.piece_count(),
            layout.piece_length(),
            layout.total_length(),
            config.seed,
        )
        .map_err(|e| e.to_string())?;
        let now = Instant::now();
        let web_seeds = info
            .web_seeds
            .iter()
            .filter(|_| config.web_seeds)
            .map(|seed| WebSeedSlot {
                seed: seed.clone(),
                key: None,
                backoff: Backoff::ready(now),
                dead: false,
            })
            .collect();
        Ok(Self {
            have: vec![false; layout.piece_count() as usize],
            choker: Choker::new(4, config.seed.rotate_left(17)),
            info,
            config,
            storage,
            picker,
            peers: HashMap::new(),
            connecting: HashMap::new(),
            known: HashMap::new(),
            next_key: 1,
            events_tx,
            stats,
            download: RateMeter::new(now),
            upload: RateMeter::new(now),
            hash_failures: 0,
            state: TorrentState::Checking,
            paused: false,
            error: None,
            picks: Vec::new(),
            resume_dirty: false,
            resume_unsynced: false,
            earlier: Transferred::default(),
            saved: Transferred::default(),
            write_lost: std::collections::HashSet::new(),
            stalled_since: None,
            senders: HashMap::new(),
            suspects: HashMap::new(),
            banned: std::collections::HashSet::new(),
            checking: HashMap::new(),
            announce: None,
            trackers: Vec::new(),
            counters: Arc::default(),
            dht: None,
            file_priorities: None,
            sequential: false,
            web_seeds,
            moving: None,
            limits: [
                Arc::new(crate::Limiter::new(None)),
                Arc::new(crate::Limiter::new(None)),
            ],
        })
    }

    /// Runs the torrent until [`Event::Shutdown`].
    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        self.check_existing().await;
        // Record what the check found at once: a crash before the next periodic save would otherwise
        // make the next start hash it all again.
        if self.resume_dirty && self.state != TorrentState::Error {
            self.save_resume(true).await;
        }
        self.start_announcer();
        self.start_dht();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut seconds = 0u64;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None | Some(Event::Shutdown) => {
                        // Files half moved: let the move finish (or roll back) before the last save.
                        if self.moving.as_ref().is_some_and(|m| m.started) {
                            while let Some(event) = events.recv().await {
                                if let Event::Moved(moved) = event {
                                    self.finish_move(moved, false, Instant::now());
                                    break;
                                }
                            }
                        }
                        break;
                    }
                    // The download just completed: recorded at once, without waiting for the disk.
                    Some(Event::SaveResume) if self.moving.is_none() => {
                        self.save_resume(false).await;
                    }
                    Some(event) => self.handle(event),
                },
                Some(outcome) = next_outcome(&mut self.announce) => self.on_announce(outcome),
                _ = tick.tick() => {
                    seconds += 1;
                    let now = Instant::now();
                    self.count_sent(now);
                    if seconds.is_multiple_of(10) {
                        self.rechoke(now);
                    }
                    let pieces_due =
                        seconds.is_multiple_of(30) && (self.resume_dirty || self.resume_unsynced);
                    let counters_due = seconds.is_multiple_of(COUNTERS_SAVED_EVERY)
                        && self.transferred() != self.saved;
                    // While a move runs, the files are neither here nor there: nothing is recorded.
                    if (pieces_due || counters_due) && self.moving.is_none() {
                        self.save_resume(true).await;
                    }
                    self.try_move();
                    self.handle_timeouts(now);
                    self.retry_stalled(now);
                    self.send_pex(now);
                    self.connect_more();
                    self.run_web_seeds(now);
                    self.update_counters();
                    self.publish(now);
                }
            }
        }
        for peer in self.peers.values() {
            let _ = peer.commands.send(Command::Close);
        }
        // Pieces verified since the last save are synced and recorded. Resume data that is only unsynced
        // (a download that just completed) stays unsynced: it holds until a reboot, and a process that
        // exits on completion does not wait for the disk. Changed counters alone are written as well.
        self.count_sent(Instant::now());
        if self.resume_dirty {
            self.save_resume(true).await;
        } else if self.transferred() != self.saved && self.state != TorrentState::Error {
            self.save_resume(!self.resume_unsynced).await;
        }
        self.dht = None;
        // The `stopped` announce reports what was uploaded up to now.
        self.update_counters();
        // Tell the trackers we leave (`stopped`), waiting a little for them.
        if let Some(announce) = self.announce.take() {
            announce.stop().await;
        }
        self.publish(Instant::now());
    }

    /// Starts announcing to the torrent's trackers, if it has any (and no task was handed over from the
    /// metadata stage).
    fn start_announcer(&mut self) {
        let Some(client) = self.info.tracker_client.clone() else {
            return;
        };
        if self.announce.is_some()
            || self.info.trackers.is_empty()
            || self.state == TorrentState::Error
        {
            return;
        }
        self.update_counters();
        self.announce = Some(Announce::spawn(
            client,
            self.info.trackers.clone(),
            (self.info.info_hash, self.config.peer_id, self.info.port),
            self.config.seed,
            self.counters.clone(),
        ));
    }

    /// Starts looking the torrent up in the DHT, unless it is private or the session runs no DHT.
    fn start_dht(&mut self) {
        if self.dht.is_some() || self.info.private || self.state == TorrentState::Error {
            return;
        }
        if let Some(dht) = self.info.dht.clone() {
            self.dht = Some(DhtPeers::spawn(
                dht,
                self.info.info_hash,
                self.info.port,
                self.events_tx.clone(),
            ));
        }
    }

    /// Updates the counters announces report.
    fn update_counters(&self) {
        let [uploaded, downloaded, left] = &*self.counters;
        let have: u64 = self
            .have
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(i, _)| u64::from(self.storage.layout().piece_len(i as u32).unwrap_or(0)))
            .sum();
        uploaded.store(self.upload.total(), std::sync::atomic::Ordering::Relaxed);
        downloaded.store(self.download.total(), std::sync::atomic::Ordering::Relaxed);
        left.store(
            self.storage.layout().total_length() - have,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// A tracker answered (or failed): note it and try the peers it gave.
    fn on_announce(&mut self, outcome: shoal_tracker::AnnounceOutcome) {
        let peers = crate::sources::record_announce(&mut self.trackers, outcome, self.info.port);
        self.learn_peers(peers.into_iter());
    }

    /// Records the verified pieces with the files' stamps, atomically. With `sync`, the files are
    /// synced first and the record holds across a power loss; without, it names this boot and is
    /// trusted only until a reboot (a crashed process leaves its writes in the page cache). Either way
    /// a crash never makes an unverified piece look done.
    async fn save_resume(&mut self, sync: bool) {
        let Some(path) = self.info.resume_path.clone() else {
            return;
        };
        let storage = self.storage.clone();
        let verified = self.have.clone();
        let id = self.info.info_hash.as_bytes().to_vec();
        let transferred = self.transferred();
        let saved = tokio::task::spawn_blocking(move || {
            let unsynced_boot = if sync {
                storage.sync_all()?;
                None
            } else {
                // Unknown boot: trusted never, so the next start rechecks.
                Some(shoal_storage::boot_id().unwrap_or_default())
            };
            let resume = ResumeData {
                id,
                verified,
                files: storage.file_stamps(),
                unsynced_boot,
                uploaded: transferred.uploaded,
                downloaded: transferred.downloaded,
            };
            shoal_storage::write_atomic(&path, &resume.to_bytes())
        })
        .await;
        match saved {
            Ok(Ok(())) => {
                self.resume_dirty = false;
                self.resume_unsynced = !sync;
                self.saved = transferred;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot save resume data"),
            Err(e) => tracing::warn!(error = %e, "cannot save resume data"),
        }
    }

    /// Finds what is already on disk, so a restart does not download it again: pieces that resume data
    /// records as verified, in files unchanged since, are trusted; every other piece is hashed.
    async fn check_existing(&mut self) {
        let storage = self.storage.clone();
        let hashes = self.info.piece_hashes.clone();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let resume_path = self.info.resume_path.clone();
        let id = self.info.info_hash.as_bytes().to_vec();
        let checked = tokio::task::spawn_blocking(move || {
            let boot = shoal_storage::boot_id();
            let resume = resume_path
                .and_then(|path| std::fs::read(path).ok())
                .and_then(
                    |bytes| match ResumeData::from_bytes(&bytes, &id, storage.layout()) {
                        Ok(resume) => Some(resume),
                        Err(e) => {
                            tracing::warn!(error = %e, "ignoring resume data; checking everything");
                            None
                        }
                    },
                );
            // The counters hold whatever the data's fate: they count transfers, not pieces.
            let earlier = resume
                .as_ref()
                .map_or_else(Transferred::default, |r| Transferred {
                    uploaded: r.uploaded,
                    downloaded: r.downloaded,
                });
            let trusted = resume.and_then(|resume| {
                if resume.trusted_after(boot.as_deref()) {
                    Some(
                        resume
                            .plan(storage.layout(), &storage.file_stamps())
                            .trusted,
                    )
                } else {
                    tracing::info!(
                        "resume data was not synced before a reboot; checking everything"
                    );
                    None
                }
            });
            let trusted = trusted.unwrap_or_else(|| vec![false; hashes.len()]);
            let rest: Vec<u32> = (0..hashes.len() as u32)
                .filter(|&p| !trusted[p as usize])
                .collect();
            let mut verdicts = storage.recheck_v1(&hashes, Some(&rest), threads, &|_| {})?;
            for (verdict, trusted) in verdicts.iter_mut().zip(&trusted) {
                if *trusted {
                    *verdict = PieceCheck::Good;
                }
            }
            Ok::<_, shoal_storage::StorageError>((verdicts, earlier))
        })
        .await;
        match checked {
            Ok(Ok((verdicts, earlier))) => {
                self.earlier = earlier;
                self.saved = earlier;
                for (piece, verdict) in verdicts.iter().enumerate() {
                    if *verdict == PieceCheck::Good {
                        self.have[piece] = true;
                        let _ = self.picker.piece_verified(PieceIndex(piece as u32));
                    }
                }
                self.state = self.active_state();
                // Record what the check found, so the next start trusts it.
                self.resume_dirty = self.info.resume_path.is_some();
            }
            Ok(Err(e)) => self.fail(format!("checking existing data: {e}")),
            Err(e) => self.fail(format!("checking existing data: {e}")),
        }
        self.publish(Instant::now());
    }

    /// Stops downloading after a write error that may pass (a full disk): keeps seeding, and tries
    /// again in [`STALL_RETRY`].
    fn stall(&mut self, error: String, now: Instant) {
        if self.state != TorrentState::Downloading {
            return;
        }
        tracing::warn!(torrent = %self.info.name, %error, "downloading stalled");
        self.state = TorrentState::Stalled;
        self.stalled_since = Some(now);
        self.error = Some(format!(
            "{error}; still seeding, trying again every {} s",
            STALL_RETRY.as_secs()
        ));
        self.publish(now);
    }

    /// After [`STALL_RETRY`], downloading starts again (and stalls again if the disk is still full).
    fn retry_stalled(&mut self, now: Instant) {
        if self.state != TorrentState::Stalled
            || self
                .stalled_since
                .is_some_and(|since| now.duration_since(since) < STALL_RETRY)
        {
            return;
        }
        self.stalled_since = None;
        self.error = None;
        self.state = self.active_state();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.request_blocks(key, now);
        }
    }

    fn fail(&mut self, error: String) {
        tracing::error!(torrent = %self.info.name, %error, "torrent stopped");
        self.state = TorrentState::Error;
        self.error = Some(error);
    }

    fn handle(&mut self, event: Event) {
        let now = Instant::now();
        let choice = event.is_choice();
        match event {
            Event::PeerConnected {
                key,
                hello,
                commands,
            } => self.on_connected(key, hello, commands, now),
            Event::PeerMessages { key, messages } => {
                for message in messages {
                    if let Err(reason) = self.on_message(key, message, now) {
                        self.drop_peer(key, &reason);
                        break;
                    }
                }
                self.request_blocks(key, now);
            }
            Event::PeerGone { key, reason } => {
                let addr = self.connecting.remove(&key).or_else(|| {
                    self.peers
                        .get(&key)
                        .filter(|p| p.hello.web_seed.is_none())
                        .map(|p| p.hello.addr)
                });
                if let Some(backoff) = addr.and_then(|addr| self.known.get_mut(&addr)) {
                    backoff.failed(now);
                }
                self.remove_peer(key, &reason);
            }
            Event::PieceChecked { piece, report } => {
                self.on_piece_checked(piece, report, now);
                self.try_move();
            }
            Event::Incoming {
                link,
                handshake,
                permit,
            } => self.on_incoming(link, handshake, permit),
            // Minus unusable addresses and ourselves, like addresses from PEX.
            Event::AddPeers(addrs) => self.learn_peers(addrs.into_iter()),
            // During a move, a pause or resume says what to do once it is done.
            Event::Pause | Event::Resume if self.moving.is_some() => {
                if let Some(moving) = self.moving.as_mut() {
                    moving.was_paused = matches!(event, Event::Pause);
                }
            }
            Event::Pause => {
                self.pause_all();
                if self.state != TorrentState::Error && self.state != TorrentState::Checking {
                    self.state = TorrentState::Paused;
                }
                self.publish(now);
            }
            Event::Resume => {
                self.resume_all(now);
                self.publish(now);
            }
            Event::Move { to, reply } => self.start_move(to, reply, now),
            Event::Moved(moved) => self.finish_move(moved, true, now),
            Event::SetLimits(down, up) => {
                self.limits[0].set_rate(down);
                self.limits[1].set_rate(up);
            }
            Event::SetFilePriorities(priorities) => {
                self.set_file_priorities(priorities);
                self.publish(now);
            }
            Event::SetSequential(on) => {
                self.set_sequential(on);
                self.publish(now);
            }
            Event::Shutdown | Event::SaveResume => {} // handled in `run`, where they can await
        }
        if choice {
            self.save_settings();
        }
    }

    /// Records the user's choices (paused, in order, priorities, limits) for the next start.
    fn save_settings(&self) {
        let Some(dir) = &self.config.state_dir else {
            return;
        };
        // During a move the pause that counts is the one to come back to.
        let paused = self.moving.as_ref().map_or(self.paused, |m| m.was_paused);
        crate::settings::Settings::new(
            paused,
            self.sequential,
            self.file_priorities.as_deref(),
            (self.limits[0].rate(), self.limits[1].rate()),
        )
        .save(dir, &self.info.info_hash);
    }

    /// Closes every connection and makes none until resumed.
    fn pause_all(&mut self) {
        self.paused = true;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(key, "paused");
        }
    }

    /// Undoes [`pause_all`](Self::pause_all): dials every known address again at once.
    fn resume_all(&mut self, now: Instant) {
        self.paused = false;
        if self.state == TorrentState::Paused {
            self.state = self.active_state();
            for backoff in self.known.values_mut() {
                backoff.next_attempt = now;
            }
            self.connect_more();
        }
    }

    /// Starts moving the data under `to`: every connection closes, as in a pause, and once no piece is
    /// being hashed a blocking thread moves the files ([`Storage::relocate`]). Refused while checking,
    /// after an error, and while another move runs.
    fn start_move(&mut self, to: PathBuf, reply: MoveReply, now: Instant) {
        let from = self.storage.root().to_path_buf();
        let refused = if self.moving.is_some() {
            Some("a move is already under way".to_string())
        } else if matches!(self.state, TorrentState::Checking | TorrentState::Error) {
            Some(format!("not while the torrent is {:?}", self.state).to_lowercase())
        } else {
            None
        };
        if let Some(why) = refused {
            let _ = reply.send(Err(why));
            return;
        }
        let to = match std::path::absolute(&to) {
            Ok(to) => to,
            Err(e) => {
                let _ = reply.send(Err(format!("{}: {e}", to.display())));
                return;
            }
        };
        if to == from {
            let _ = reply.send(Ok((from, to)));
            return;
        }
        let was_paused = self.paused;
        self.pause_all();
        self.state = TorrentState::Moving;
        self.moving = Some(Moving {
            to,
            reply,
            was_paused,
            started: false,
        });
        self.try_move();
        self.publish(now);
    }

    /// Hands the file work of a move to a blocking thread once nothing else uses the storage: no piece
    /// being hashed (their tasks hold it).
    fn try_move(&mut self) {
        let idle = self.checking.is_empty() && Arc::strong_count(&self.storage) == 1;
        let Some(moving) = self.moving.as_mut().filter(|m| !m.started && idle) else {
            return;
        };
        moving.started = true;
        let storage = self.storage.clone();
        let to = moving.to.clone();
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let moved = tokio::task::spawn_blocking(move || {
                storage.relocate(to).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("the move stopped: {e}")));
            let _ = events.send(Event::Moved(moved)).await;
        });
    }

    /// A move's file work is done: goes on with the storage at the new place (recorded in the state
    /// directory for the next start), or at the old one if the move failed; transfers resume unless
    /// the torrent was paused (or `resume` is false: the session is stopping).
    fn finish_move(&mut self, moved: Result<Storage, String>, resume: bool, now: Instant) {
        let Some(moving) = self.moving.take() else {
            return;
        };
        let from = self.storage.root().to_path_buf();
        let result = moved.map(|storage| {
            self.storage = Arc::new(storage);
            let to = self.storage.root().to_path_buf();
            if let Some(dir) = &self.config.state_dir
                && let Err(e) = crate::session::save_path_file(dir, &self.info.info_hash, &to)
            {
                tracing::warn!(error = %e, "cannot record the new download directory");
            }
            (from, to)
        });
        if let Err(e) = &result {
            tracing::warn!(error = %e, "moving the data failed; it stays where it was");
        }
        let _ = moving.reply.send(result);
        self.state = TorrentState::Paused;
        if resume && !moving.was_paused {
            self.resume_all(now);
        }
        self.publish(now);
    }

    /// Downloading or seeding, by what the picker still misses (or paused).
    fn active_state(&self) -> TorrentState {
        if self.paused {
            TorrentState::Paused
        } else if self.picker.is_finished() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        }
    }

    /// Dials known addresses until the peer limit, skipping those connected or being connected to.
    fn connect_more(&mut self) {
        if matches!(
            self.state,
            TorrentState::Error
                | TorrentState::Checking
                | TorrentState::Paused
                | TorrentState::Moving
        ) {
            return;
        }
        let busy: Vec<SocketAddr> = self
            .peers
            .values()
            .map(|p| p.hello.addr)
            .chain(self.connecting.values().copied())
            .collect();
        let now = Instant::now();
        let candidates: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(addr, backoff)| {
                backoff.next_attempt <= now
                    && !busy.contains(addr)
                    && !self.banned.iter().any(|ban| ban.matches_addr(**addr))
            })
            .map(|(addr, _)| *addr)
            .collect();
        let room = self
            .config
            .limits
            .max_peers_per_torrent
            .saturating_sub(self.connections());
        for addr in candidates.into_iter().take(room) {
            // The session-wide budget (`max_connections`), shared with every torrent.
            let Ok(permit) = self.info.connections.clone().try_acquire_owned() else {
                break;
            };
            // Seeds only dial peers that may want something; while seeding we still dial, as
            // Transmission never dials loopback peers itself.
            let key = self.next_key;
            self.next_key += 1;
            self.connecting.insert(key, addr);
            tokio::spawn(peer::connect(addr, self.peer_setup(key), permit));
        }
    }

    fn on_incoming(
        &mut self,
        link: Box<peer::Link>,
        handshake: shoal_wire::Handshake,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        if self.paused || self.connections() >= self.config.limits.max_peers_per_torrent {
            return; // dropping the stream closes it
        }
        let key = self.next_key;
        self.next_key += 1;
        // Counted like a dial until it registers or fails, so a burst of incoming handshakes cannot
        // all pass the check above before the first is registered.
        let addr = link
            .stream
            .peer_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        self.connecting.insert(key, addr);
        tokio::spawn(peer::accept(*link, handshake, self.peer_setup(key), permit));
    }

    /// Peer connections, open or being set up, as `max_peers_per_torrent` counts them: web seeds (a
    /// handful of HTTP servers the torrent names, [`MAX_WEB_SEEDS`](crate::webseed::MAX_WEB_SEEDS) at
    /// most) do not take a peer's place.
    fn connections(&self) -> usize {
        let web_seeds = self
            .peers
            .values()
            .filter(|p| p.hello.web_seed.is_some())
            .count();
        self.peers.len() - web_seeds + self.connecting.len()
    }

    /// Adds addresses learned from other peers (PEX), minus unusable ones and ourselves.
    fn learn_peers(&mut self, addrs: impl Iterator<Item = SocketAddr>) {
        let now = Instant::now();
        let ours = self.info.port;
        for addr in addrs {
            let ip = addr.ip();
            let is_us = addr.port() == ours && (ip.is_loopback() || ip.is_unspecified());
            if addr.port() == 0 || ip.is_multicast() || ip.is_unspecified() || is_us {
                continue;
            }
            self.known.entry(addr).or_insert(Backoff {
                failures: 0,
                next_attempt: now,
            });
        }
        self.connect_more();
    }

    /// Tells PEX-speaking peers which peers we are connected to now, once a minute (BEP 11).
    fn send_pex(&mut self, now: Instant) {
        if self.info.private {
            return;
        }
        // Only addresses peers can dial: those we connected to (an incoming peer's port is ephemeral).
        let max_pex = self.config.limits.max_pex_peers;
        let connected: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.hello.outgoing)
            .map(|p| p.hello.addr)
            .collect();
        for peer in self.peers.values_mut() {
            let Some(id) = peer.pex_id else { continue };
            if now.duration_since(peer.pex_last) < PEX_INTERVAL {
                continue;
            }
            peer.pex_last = now;
            let current: Vec<SocketAddr> = connected
                .iter()
                .copied()
                .filter(|addr| *addr != peer.hello.addr)
                .collect();
            let added: Vec<shoal_wire::PexPeer> = current
                .iter()
                .filter(|addr| !peer.pex_sent.contains(addr))
                .take(max_pex)
                .map(|addr| shoal_wire::PexPeer {
                    addr: *addr,
                    flags: shoal_wire::PexFlags::default(),
                })
                .collect();
            let dropped: Vec<SocketAddr> = peer
                .pex_sent
                .iter()
                .copied()
                .filter(|addr| !current.contains(addr))
                .take(max_pex)
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            peer.pex_sent.retain(|addr| !dropped.contains(addr));
            peer.pex_sent.extend(added.iter().map(|p| p.addr));
            let message = shoal_wire::PexMessage { added, dropped };
            let _ = peer
                .commands
                .send(Command::Send(vec![message.to_message(id)]));
        }
    }

    /// What a new connection needs.
    fn peer_setup(&self, key: PeerKey) -> peer::Setup {
        let [global_down, global_up] = &self.info.global_limits;
        let [down, up] = &self.limits;
        peer::Setup {
            key,
            info_hash: self.info.info_hash,
            our_id: self.config.peer_id,
            piece_count: Some(self.have.len() as u32),
            limits: self.config.limits.clone(),
            half_open: self.info.half_open.clone(),
            events: self.events_tx.clone(),
            download: [global_down.clone(), down.clone()],
            upload: [global_up.clone(), up.clone()],
            encryption: self.config.encryption,
        }
    }

    fn on_connected(
        &mut self,
        key: PeerKey,
        hello: Hello,
        commands: mpsc::UnboundedSender<Command>,
        now: Instant,
    ) {
        self.register(key, hello, commands, false, now);
    }

    /// Takes over a connection the metadata stage opened: it already sent `have none` (or nothing) and
    /// its extended handshake, so the peer now hears of our pieces by `have`, and gets our extended
    /// handshake again with the metadata size. Messages it sent meanwhile are applied in order.
    pub(crate) fn adopt(&mut self, handover: crate::magnet::Handover) {
        let now = Instant::now();
        for (addr, backoff) in handover.known {
            self.known.entry(addr).or_insert(backoff);
        }
        self.next_key = self.next_key.max(handover.next_key);
        self.banned
            .extend(handover.banned.into_iter().map(BanKey::PeerId));
        self.announce = handover.announce;
        self.counters = handover.counters;
        self.trackers = handover.trackers;
        // A private torrent (BEP 27) found through a magnet link leaves the DHT at once.
        self.dht = handover.dht.filter(|_| !self.info.private);
        self.paused = handover.paused;
        self.limits[0].set_rate(handover.limits.0);
        self.limits[1].set_rate(handover.limits.1);
        if let Some(priorities) = handover.file_priorities {
            self.set_file_priorities(priorities);
        }
        self.set_sequential(handover.sequential);
        for peer in handover.peers {
            let key = peer.key;
            if !self.register(key, peer.hello, peer.commands, true, now) {
                continue;
            }
            for message in peer.messages {
                if let Err(reason) = self.on_message(key, message, now) {
                    self.drop_peer(key, &reason);
                    break;
                }
            }
        }
    }

    /// Turns sequential mode on or off: with it on, the pieces of the next [`SEQUENTIAL_WINDOW`] bytes
    /// from the first one missing are picked in order before anything else (a media player can start
    /// before the download ends); the rest still goes rarest first, so peers stay busy.
    fn set_sequential(&mut self, on: bool) {
        let piece_length = self.storage.layout().piece_length().max(1);
        let window = (SEQUENTIAL_WINDOW / piece_length).clamp(4, u64::from(u32::MAX)) as u32;
        self.sequential = on;
        self.picker.set_sequential(on.then_some(window));
    }

    /// Applies new file priorities (padding files included, in torrent order) to the picker.
    fn set_file_priorities(&mut self, priorities: Vec<shoal_picker::Priority>) {
        let ranges: Vec<(std::ops::Range<u64>, shoal_picker::Priority)> = self
            .storage
            .layout()
            .files()
            .iter()
            .zip(
                priorities
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(shoal_picker::Priority::Normal)),
            )
            .map(|(file, priority)| {
                // Padding files (BEP 47) never make a piece wanted.
                let priority = if file.is_padding() {
                    shoal_picker::Priority::Skip
                } else {
                    priority
                };
                (file.offset()..file.offset() + file.length(), priority)
            })
            .collect();
        if let Err(e) = self.picker.set_file_priorities(&ranges) {
            tracing::warn!(error = %e, "file priorities refused");
            return;
        }
        self.file_priorities = Some(priorities);
        // Skipping the rest can finish the download; un-skipping can restart it.
        if self.state == TorrentState::Downloading && self.picker.is_finished() {
            tracing::info!(torrent = %self.info.name, "selected files complete");
            self.state = TorrentState::Seeding;
            let _ = self.events_tx.try_send(Event::SaveResume);
        } else if self.state == TorrentState::Seeding && !self.picker.is_finished() {
            self.state = TorrentState::Downloading;
        }
        let now = Instant::now();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.request_blocks(key, now);
        }
    }

    /// Registers a connected peer and greets it; `false` if it was refused (and closed).
    fn register(
        &mut self,
        key: PeerKey,
        hello: Hello,
        commands: mpsc::UnboundedSender<Command>,
        adopted: bool,
        now: Instant,
    ) -> bool {
        self.connecting.remove(&key);
        // One connection per peer id: a second one (or ourselves) is closed.
        let duplicate = self
            .peers
            .values()
            .any(|p| p.hello.peer_id == hello.peer_id);
        // Banned peers (incoming ones included), and any connection finishing while we are paused.
        let banned = self.banned.contains(&BanKey::of(&hello))
            || self.banned.contains(&BanKey::PeerId(hello.peer_id))
            || self.banned.iter().any(|ban| ban.matches_addr(hello.addr));
        if duplicate
            || banned
            || self.paused
            || hello.peer_id == self.config.peer_id
            || self.picker.add_peer(key).is_err()
        {
            let _ = commands.send(Command::Close);
            // An address we dialed that turned out a duplicate, ourselves or banned waits like a
            // failed one; otherwise it would be redialed at once, over and over.
            if hello.outgoing
                && !self.paused
                && let Some(backoff) = self.known.get_mut(&hello.addr)
            {
                backoff.failed(now);
            }
            return false;
        }
        if hello.outgoing {
            self.known.insert(
                hello.addr,
                Backoff {
                    failures: 0,
                    next_attempt: now,
                },
            );
        }
        let mut first = Vec::new();
        let n_have = self.picker.have_count();
        // BEP 3 and BEP 6: the bitfield (or have all / have none) comes first; a peer adopted from the
        // metadata stage had its `have none` then, and hears of pieces found on disk by `have`.
        if adopted {
            first.extend(
                (0..self.have.len() as u32)
                    .filter(|&piece| self.have[piece as usize])
                    .map(|piece| Message::Have(PieceIndex(piece))),
            );
        } else if hello.reserved.supports_fast() && n_have == self.have.len() as u32 {
            first.push(Message::HaveAll);
        } else if hello.reserved.supports_fast() && n_have == 0 {
            first.push(Message::HaveNone);
        } else if n_have > 0 {
            let pieces = self
                .have
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(i, _)| PieceIndex(i as u32));
            first.push(Message::Bitfield(Bitfield::from_pieces(
                self.have.len() as u32,
                pieces,
            )));
        }
        if hello.reserved.supports_extensions() {
            let mut ours = ExtendedHandshake {
                client: Some(format!("Shoal {}", env!("CARGO_PKG_VERSION"))),
                request_queue: u32::try_from(self.config.limits.max_queued_requests).ok(),
                port: None,
                metadata_size: u32::try_from(self.info.metadata.len()).ok(),
                ..ExtendedHandshake::default()
            }
            .with_extension(shoal_wire::UT_METADATA, OUR_METADATA_ID);
            if !self.info.private {
                ours = ours.with_extension(shoal_wire::UT_PEX, OUR_PEX_ID);
            }
            first.push(ours.to_message());
        }
        let _ = commands.send(Command::Send(first));
        let client = match &hello.web_seed {
            Some(url) => format!("web seed {url}"),
            None => client_name(&hello.peer_id),
        };
        let pieces = self.have.len();
        self.peers.insert(
            key,
            Peer {
                hello,
                commands,
                client,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                has: vec![false; pieces],
                n_has: 0,
                wanted: 0,
                in_flight: 0,
                withdrawn: std::collections::VecDeque::new(),
                unrequested: 0,
                reqq: None,
                proven: false,
                suspected: false,
                last_block: now,
                snubbed: false,
                refused_floods: 0,
                pex_id: None,
                metadata_id: None,
                pex_sent: Vec::new(),
                // The first PEX message goes out a few seconds after connecting, then every minute.
                pex_last: now.checked_sub(PEX_INTERVAL - PEX_FIRST).unwrap_or(now),
                pex_received: Vec::new(),
                download: RateMeter::new(now),
                upload: RateMeter::new(now),
                connected_at: now,
            },
        );
        true
    }

    /// Applies one message; `Err` names the rule the peer broke.
    fn on_message(&mut self, key: PeerKey, message: Message, now: Instant) -> Result<(), String> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        match message {
            Message::Choke => {
                peer.peer_choking = true;
                let returned = self.picker.peer_choked(key).map_err(|e| e.to_string())?;
                peer.in_flight = peer.in_flight.saturating_sub(returned.len());
                for block in returned {
                    peer.withdraw(block);
                }
            }
            Message::Unchoke => {
                peer.peer_choking = false;
                self.picker.peer_unchoked(key).map_err(|e| e.to_string())?;
            }
            Message::Interested => {
                peer.peer_interested = true;
                self.maybe_unchoke(key, now);
            }
            Message::NotInterested => peer.peer_interested = false,
            Message::Have(PieceIndex(piece)) => {
                self.picker
                    .peer_have(key, PieceIndex(piece))
                    .map_err(|e| e.to_string())?;
                self.mark_has(key, piece);
            }
            Message::Bitfield(bitfield) => {
                let first = peer.n_has == 0;
                if first {
                    self.picker
                        .peer_bitfield(key, bitfield.as_bytes())
                        .map_err(|e| e.to_string())?;
                }
                for piece in 0..self.have.len() as u32 {
                    if bitfield.has(PieceIndex(piece)) {
                        // A late bitfield (aria2 sends them) only adds pieces, like `have`s.
                        if !first && !self.peers.get(&key).is_some_and(|p| p.has[piece as usize]) {
                            self.picker
                                .peer_have(key, PieceIndex(piece))
                                .map_err(|e| e.to_string())?;
                        }
                        self.mark_has(key, piece);
                    }
                }
            }
            Message::HaveAll => {
                self.picker.peer_have_all(key).map_err(|e| e.to_string())?;
                for piece in 0..self.have.len() as u32 {
                    self.mark_has(key, piece);
                }
            }
            Message::HaveNone => self.picker.peer_have_none(key).map_err(|e| e.to_string())?,
            Message::Request(block) => self.on_request(key, block)?,
            Message::Piece(block) => self.on_block(key, block, now)?,
            Message::Cancel(block) => {
                // The block may still wait in the writer's queue (behind the upload limit, say).
                let _ = peer.commands.send(Command::Cancel(block));
            }
            Message::Reject(block) => {
                if self
                    .picker
                    .request_rejected(key, block)
                    .map_err(|e| e.to_string())?
                {
                    peer.in_flight = peer.in_flight.saturating_sub(1);
                }
            }
            Message::AllowedFast(PieceIndex(piece)) => {
                let _ = self.picker.peer_allowed_fast(key, PieceIndex(piece));
            }
            Message::Suggest(PieceIndex(piece)) => {
                let _ = self.picker.peer_suggest(key, PieceIndex(piece));
            }
            Message::Extended { id: 0, payload } => {
                if let Ok(handshake) = ExtendedHandshake::decode(&payload) {
                    peer.reqq = handshake.request_queue;
                    peer.pex_id = handshake
                        .extension_id(shoal_wire::UT_PEX)
                        .filter(|_| !self.info.private);
                    peer.metadata_id = handshake.extension_id(shoal_wire::UT_METADATA);
                    if let Some(client) = handshake.client.filter(|c| !c.is_empty()) {
                        peer.client = client;
                    }
                }
            }
            Message::Extended {
                id: OUR_PEX_ID,
                payload,
            } if !self.info.private => {
                // BEP 11 convention: about one message a minute; more than 6 in 60 s is a flood.
                peer.pex_received
                    .retain(|at| now.duration_since(*at) < PEX_INTERVAL);
                peer.pex_received.push(now);
                let max = self.config.limits.max_pex_per_minute;
                if peer.pex_received.len() > max {
                    return Err(format!("PEX flood: more than {max} messages in a minute"));
                }
                let message =
                    shoal_wire::PexMessage::decode(&payload).map_err(|e| e.to_string())?;
                let max = self.config.limits.max_pex_peers;
                self.learn_peers(message.added.iter().take(max).map(|p| p.addr));
            }
            Message::Extended {
                id: OUR_METADATA_ID,
                payload,
            } => {
                let reply = serve_metadata(&self.info.metadata, &payload)?;
                if let (Some(reply), Some(id)) = (reply, peer.metadata_id) {
                    let _ = peer
                        .commands
                        .send(Command::Send(vec![reply.to_message(id)]));
                }
            }
            Message::Extended { .. }
            | Message::Unknown { .. }
            | Message::Port(_)
            | Message::KeepAlive => {}
        }
        Ok(())
    }

    /// Records that `key` has `piece`, updating our interest in it.
    fn mark_has(&mut self, key: PeerKey, piece: u32) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(slot) = peer.has.get_mut(piece as usize) else {
            return;
        };
        if std::mem::replace(slot, true) {
            return;
        }
        peer.n_has += 1;
        if !self.have[piece as usize] {
            peer.wanted += 1;
            if !peer.am_interested {
                peer.am_interested = true;
                let _ = peer.commands.send(Command::Send(vec![Message::Interested]));
            }
        }
    }

    /// Serves a request from storage, or refuses it (BEP 6 `reject`) if the peer is choked or asks for
    /// something we do not have.
    fn on_request(&mut self, key: PeerKey, block: BlockRef) -> Result<(), String> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let piece = block.piece.0 as usize;
        let valid = block.len > 0
            && block.len <= shoal_wire::BLOCK_LEN
            && self.have.get(piece).copied() == Some(true);
        let fast = peer.hello.reserved.supports_fast();
        // More than the `reqq` we advertise is a flood: refused, not queued.
        let flooded = peer.hello.queued.load(std::sync::atomic::Ordering::Relaxed)
            >= self.config.limits.max_queued_requests;
        if flooded {
            // Refusals queue up too: a peer that keeps asking while its queue is full (and does not
            // read what we send) is dropped before they grow without bound.
            peer.refused_floods += 1;
            if peer.refused_floods > self.config.limits.max_queued_requests {
                return Err(format!(
                    "request flood: {} requests past a full queue",
                    peer.refused_floods
                ));
            }
        } else {
            peer.refused_floods = 0;
        }
        if peer.am_choking || !valid || flooded {
            if fast {
                let _ = peer
                    .commands
                    .send(Command::Send(vec![Message::Reject(block)]));
            }
            return Ok(());
        }
        let mut data = vec![0u8; block.len as usize];
        // A page-cache read of one block; the rare disk wait is acceptable here for now.
        match self
            .storage
            .read_block(block.piece.0, block.offset, &mut data)
        {
            Ok(()) => {
                // Counted as uploaded once the writer has written it (`count_sent`), not here.
                let message = Message::Piece(Block {
                    piece: block.piece,
                    offset: block.offset,
                    data: data.into(),
                });
                peer.hello
                    .queued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = peer.commands.send(Command::Send(vec![message]));
            }
            Err(shoal_storage::StorageError::OutOfRange { .. }) => {
                return Err("request past the end of a piece".into());
            }
            Err(e) => {
                // Never send a block we could not read in full.
                tracing::warn!(error = %e, "cannot serve a block");
                if fast {
                    let _ = peer
                        .commands
                        .send(Command::Send(vec![Message::Reject(block)]));
                }
            }
        }
        Ok(())
    }

    fn on_block(&mut self, key: PeerKey, block: Block, now: Instant) -> Result<(), String> {
        let len = block.data.len() as u32;
        let reference = BlockRef {
            piece: block.piece,
            offset: block.offset,
            len,
        };
        // Only blocks we asked this peer for (or withdrew lately) are taken: anything else could
        // overwrite a piece with data nobody requested.
        if !self.picker.is_requested(key, reference) {
            let Some(peer) = self.peers.get_mut(&key) else {
                return Ok(());
            };
            if let Some(at) = peer.withdrawn.iter().position(|b| *b == reference) {
                peer.withdrawn.remove(at);
            } else {
                peer.unrequested += 1;
                if peer.unrequested > MAX_UNREQUESTED {
                    return Err(format!(
                        "sent more than {MAX_UNREQUESTED} blocks never requested"
                    ));
                }
                return Ok(());
            }
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.last_block = now;
            peer.snubbed = false;
        }
        let received = match self.picker.block_received(key, reference) {
            Ok(received) => received,
            // A block we never asked for (or of a wrong size) is discarded, never written.
            Err(_) => return Ok(()),
        };
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.in_flight = peer.in_flight.saturating_sub(1);
            peer.download.record(now, u64::from(len));
        }
        self.download.record(now, u64::from(len));
        for (other, cancel) in received.cancels {
            if let Some(peer) = self.peers.get_mut(&other) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
                peer.withdraw(cancel);
                let _ = peer
                    .commands
                    .send(Command::Send(vec![Message::Cancel(cancel)]));
            }
        }
        if !received.is_new {
            return Ok(());
        }
        let piece = block.piece.0;
        if let Err(e) = self.storage.write_block(piece, block.offset, &block.data) {
            // A full disk, say: the piece is refetched whole later, and its senders are not to blame.
            self.write_lost.insert(piece);
            self.senders.remove(&piece);
            self.stall(format!("cannot write piece {piece}: {e}"), now);
        }
        if self.write_lost.contains(&piece) {
            if received.piece_complete {
                self.write_lost.remove(&piece);
                let _ = self.picker.piece_failed(PieceIndex(piece));
            }
            return Ok(());
        }
        if let Some(peer) = self.peers.get(&key) {
            let who = BanKey::of(&peer.hello);
            let senders = self.senders.entry(block.piece.0).or_default();
            senders.retain(|(offset, _)| *offset != block.offset);
            senders.push((block.offset, who));
        }
        if received.piece_complete {
            let storage = self.storage.clone();
            let piece = block.piece.0;
            let expected = self.info.piece_hashes[piece as usize];
            let events = self.events_tx.clone();
            let senders = self.senders.remove(&piece).unwrap_or_default();
            self.checking
                .insert(piece, senders.iter().map(|(_, who)| *who).collect());
            let suspects = self.suspects.remove(&piece);
            let slots = self.info.hash_slots.clone();
            // At most one hash per core at a time: more threads would only hold more piece buffers.
            tokio::spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                let checked = tokio::task::spawn_blocking(move || {
                    check_piece(&storage, piece, &expected, senders, suspects)
                })
                .await;
                if let Ok(report) = checked {
                    let _ = events.send(Event::PieceChecked { piece, report }).await;
                }
            });
        }
        Ok(())
    }

    fn on_piece_checked(&mut self, piece: u32, report: PieceReport, now: Instant) {
        self.checking.remove(&piece);
        for liar in report.liars {
            self.ban(liar);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for peer in self.peers.values_mut() {
            let who = BanKey::of(&peer.hello);
            if report.honest.contains(&who) {
                peer.proven = true;
                peer.suspected = false;
            }
            if report
                .suspects
                .as_ref()
                .is_some_and(|s| s.iter().any(|(_, w, _)| *w == who))
                && !peer.proven
            {
                peer.suspected = true;
            }
        }
        if let Some(suspects) = report.suspects {
            self.hash_failures += 1;
            tracing::warn!(piece, "piece failed its hash check; fetching it again");
            let _ = self.picker.piece_failed(PieceIndex(piece));
            self.suspects.insert(piece, suspects);
            for key in keys {
                self.request_blocks(key, now);
            }
            return;
        }
        let cancels = self
            .picker
            .piece_verified(PieceIndex(piece))
            .unwrap_or_default();
        for (key, block) in cancels {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
                peer.withdraw(block);
                let _ = peer
                    .commands
                    .send(Command::Send(vec![Message::Cancel(block)]));
            }
        }
        self.have[piece as usize] = true;
        self.resume_dirty = true;
        for peer in self.peers.values_mut() {
            let _ = peer
                .commands
                .send(Command::Send(vec![Message::Have(PieceIndex(piece))]));
            if peer.has[piece as usize] {
                peer.wanted -= 1;
                if peer.wanted == 0 && peer.am_interested {
                    peer.am_interested = false;
                    let _ = peer
                        .commands
                        .send(Command::Send(vec![Message::NotInterested]));
                }
            }
        }
        if self.picker.is_finished() && self.state == TorrentState::Downloading {
            // No sync here: the completion is recorded unsynced at once and synced by the next
            // periodic save, so finishing never waits for the disk.
            if let Err(e) = self.storage.create_empty_files() {
                self.fail(format!("finishing: {e}"));
                return;
            }
            tracing::info!(torrent = %self.info.name, "download complete");
            self.state = TorrentState::Seeding;
            // Queued before anyone can see the new state (and, say, shut the session down on it).
            let _ = self.events_tx.try_send(Event::SaveResume);
            self.publish(now);
            self.update_counters();
            // `completed` means every piece, not just the files selected.
            if let Some(announce) = &self.announce
                && self.have.iter().all(|&h| h)
            {
                let _ = announce
                    .commands
                    .try_send(shoal_tracker::AnnouncerCommand::Completed);
            }
            return;
        }
        // Peers that waited for this verdict may ask for more.
        for key in keys {
            self.request_blocks(key, now);
        }
    }

    /// Adds a ban; `false` if it was there. The list is bounded: past [`MAX_BANS`], an old ban makes
    /// room (an attacker with that many addresses gains one more try each).
    fn remember_ban(&mut self, who: BanKey) -> bool {
        if self.banned.contains(&who) {
            return false;
        }
        if self.banned.len() >= MAX_BANS
            && let Some(old) = self.banned.iter().next().copied()
        {
            self.banned.remove(&old);
        }
        self.banned.insert(who)
    }

    /// Bans a sender of bad data: closes its connections and refuses it from now on.
    fn ban(&mut self, who: BanKey) {
        if !self.remember_ban(who) {
            return;
        }
        tracing::warn!(peer = ?who, "banned for sending data that fails hash checks");
        let liars: Vec<(PeerKey, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| BanKey::of(&p.hello) == who)
            .map(|(k, p)| (*k, p.hello.peer_id))
            .collect();
        for (key, peer_id) in liars {
            // On loopback the key is the address we dialed (or a peer id): the same peer dialing in
            // from another port is known by its peer id.
            if !matches!(who, BanKey::Ip(_)) {
                self.remember_ban(BanKey::PeerId(peer_id));
            }
            self.drop_peer(key, "banned: bad data");
        }
    }

    /// Keeps the peer's request pipeline full: deeper for faster peers, within what it said it queues.
    fn request_blocks(&mut self, key: PeerKey, now: Instant) {
        if self.state == TorrentState::Stalled {
            return;
        }
        let n_peers = self.peers.len();
        // A suspect waits while anyone else unsuspected could serve us.
        let others = self
            .peers
            .iter()
            .any(|(k, p)| *k != key && !p.suspected && !p.peer_choking && p.wanted > 0);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.am_interested
            || self.state != TorrentState::Downloading
            || (peer.suspected && others)
        {
            return;
        }
        // An unproven peer waits for the verdict on the piece it just sent before it gets another.
        let who = BanKey::of(&peer.hello);
        if !peer.proven && self.checking.values().any(|senders| senders.contains(&who)) {
            return;
        }
        // About a second of data at the peer's current rate (several round trips on any real link),
        // between 16 and 250 blocks: deeper queues only hold more received data waiting to be written.
        let rate = peer.download.rate(now);
        let depth = (rate / u64::from(shoal_wire::BLOCK_LEN)).clamp(16, 250) as usize;
        let mut depth = depth.min(peer.reqq.map_or(500, |q| q.max(1) as usize));
        if !peer.proven {
            let piece_blocks = self
                .storage
                .layout()
                .piece_length()
                .div_ceil(u64::from(shoal_wire::BLOCK_LEN));
            // About one piece of blocks at a time, counting those it sent that still wait for the
            // rest of their pieces (its blocks often finish others' pieces or share new ones, so no
            // piece is its alone and none is checked yet): not just those in flight.
            let unverified = self
                .senders
                .values()
                .flatten()
                .filter(|(_, sender)| *sender == who)
                .count();
            depth = depth.min((piece_blocks.max(2) as usize).saturating_sub(unverified));
        }
        if peer.snubbed {
            depth = depth.min(1);
        }
        if peer.in_flight >= depth {
            return;
        }
        self.picks.clear();
        let mut wanted = depth - peer.in_flight;
        // In endgame every request duplicates another peer's: only a nearly idle peer makes them,
        // two at a time, so a small torrent is not fetched twice.
        if self.picker.in_endgame() {
            // Deep pipelines cover a small torrent's every block long before its end: duplicate only
            // for the last few pieces.
            let few = self.picker.missing_count() as usize <= n_peers.max(2);
            if peer.in_flight >= ENDGAME_PIPELINE || !few {
                return;
            }
            wanted = wanted.min(ENDGAME_PIPELINE - peer.in_flight);
        }
        if self
            .picker
            .pick_blocks_into(key, wanted, now, &mut self.picks)
            .is_err()
            || self.picks.is_empty()
        {
            return;
        }
        if peer.in_flight == 0 {
            // Its clock for snubbing starts with its first outstanding request.
            peer.last_block = now;
        }
        peer.in_flight += self.picks.len();
        let requests = self.picks.iter().map(|b| Message::Request(*b)).collect();
        let _ = peer.commands.send(Command::Send(requests));
    }

    /// Unchokes an interested peer at once while a regular slot is free, rather than waiting for the
    /// next rechoke.
    fn maybe_unchoke(&mut self, key: PeerKey, now: Instant) {
        let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
        if unchoked < self.choker.slots() + 1 {
            self.set_choke(key, false);
        }
        let _ = now;
    }

    fn rechoke(&mut self, now: Instant) {
        let candidates: Vec<Candidate<PeerKey>> = self
            .peers
            .iter_mut()
            .map(|(key, p)| Candidate {
                key: *key,
                interested: p.peer_interested,
                download_rate: p.download.rate(now),
                upload_rate: p.upload.rate(now),
                connected_at: p.connected_at,
            })
            .collect();
        let unchoked = self
            .choker
            .run(now, self.state == TorrentState::Seeding, &candidates);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.set_choke(key, !unchoked.contains(&key));
        }
    }

    fn set_choke(&mut self, key: PeerKey, choke: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking != choke {
            peer.am_choking = choke;
            let message = if choke {
                Message::Choke
            } else {
                Message::Unchoke
            };
            let _ = peer.commands.send(Command::Send(vec![message]));
        }
    }

    fn handle_timeouts(&mut self, now: Instant) {
        for (key, block) in self
            .picker
            .timeout_requests(now, self.config.request_timeout)
        {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
                peer.withdraw(block);
            }
        }
        // A peer that stopped sending (a staller, or one whose link died) would hold its requests
        // until they time out; once it is silent for SNUB_AFTER they go to other peers now.
        // Under a download limit blocks come slower for everyone: allow each asking peer twice its
        // even share's time for a block on top.
        let limit = [&self.limits[0], &self.info.global_limits[0]]
            .iter()
            .filter_map(|l| l.rate())
            .min();
        let asking = self.peers.values().filter(|p| p.in_flight > 0).count() as u64;
        let snub_after = SNUB_AFTER
            + limit.map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(
                    2.0 * (u64::from(shoal_wire::BLOCK_LEN) * asking) as f64 / rate.max(1) as f64,
                )
            });
        let silent: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.in_flight > 0 && !p.snubbed && now.duration_since(p.last_block) >= snub_after
            })
            .map(|(key, _)| *key)
            .collect();
        for key in silent {
            let Ok(returned) = self.picker.withdraw_requests(key) else {
                continue;
            };
            if let Some(peer) = self.peers.get_mut(&key) {
                tracing::debug!(addr = %peer.hello.addr, blocks = returned.len(), "peer snubbed");
                peer.snubbed = true;
                peer.in_flight = peer.in_flight.saturating_sub(returned.len());
                for block in returned {
                    peer.withdraw(block);
                }
            }
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.request_blocks(key, now);
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

    /// Block bytes transferred in all runs together.
    fn transferred(&self) -> Transferred {
        Transferred {
            uploaded: self.earlier.uploaded + self.upload.total(),
            downloaded: self.earlier.downloaded + self.download.total(),
        }
    }

    /// Starts the web seeds that are due while downloading, and closes them once there is nothing
    /// left to fetch.
    fn run_web_seeds(&mut self, now: Instant) {
        let downloading = self.state == TorrentState::Downloading;
        for i in 0..self.web_seeds.len() {
            let slot = &self.web_seeds[i];
            match slot.key {
                Some(key) if !downloading => {
                    if let Some(peer) = self.peers.get(&key) {
                        let _ = peer.commands.send(Command::Close);
                    }
                }
                None if downloading && !slot.dead && slot.backoff.is_due(now) => {
                    let key = self.next_key;
                    self.next_key += 1;
                    let seed = slot.seed.clone();
                    // Not started again while the key is set; `web_seed_gone` sets the next try.
                    self.web_seeds[i].key = Some(key);
                    let piece_length = self.storage.layout().piece_length();
                    tokio::spawn(crate::webseed::run(
                        seed,
                        piece_length,
                        self.peer_setup(key),
                    ));
                }
                _ => {}
            }
        }
    }

    /// A web seed's task ended (or it was dropped): it is retried later, sooner when it had delivered,
    /// never when banned.
    fn web_seed_gone(&mut self, key: PeerKey, reason: &str) {
        let Some(slot) = self.web_seeds.iter_mut().find(|s| s.key == Some(key)) else {
            return;
        };
        slot.key = None;
        let now = Instant::now();
        let delivered = self.peers.get(&key).is_some_and(|p| p.download.total() > 0);
        if delivered {
            slot.backoff = Backoff::ready(now);
        }
        slot.backoff.failed(now);
        slot.dead = self.banned.contains(&BanKey::PeerId(slot.seed.peer_id));
        tracing::debug!(url = %slot.seed.url, reason, dead = slot.dead, "web seed stopped");
    }

    /// Moves what the peers' writers have written since the last call into the upload counters.
    fn count_sent(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            let sent = peer
                .hello
                .sent
                .swap(0, std::sync::atomic::Ordering::Relaxed);
            if sent > 0 {
                peer.upload.record(now, sent);
                self.upload.record(now, sent);
            }
        }
    }

    fn remove_peer(&mut self, key: PeerKey, reason: &str) {
        self.web_seed_gone(key, reason);
        if let Some(peer) = self.peers.remove(&key) {
            tracing::debug!(addr = %peer.hello.addr, reason, "peer gone");
            // What its writer wrote before the connection ended still counts.
            let sent = peer
                .hello
                .sent
                .swap(0, std::sync::atomic::Ordering::Relaxed);
            self.upload.record(Instant::now(), sent);
            let _ = self.picker.remove_peer(key);
        }
    }

    fn publish(&mut self, now: Instant) {
        let transferred = self.transferred();
        let layout = self.storage.layout();
        let bytes_have = self
            .have
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(i, _)| u64::from(layout.piece_len(i as u32).unwrap_or(0)))
            .sum();
        let peers = self
            .peers
            .values_mut()
            .map(|p| PeerStats {
                addr: p.hello.addr,
                client: p.client.clone(),
                outgoing: p.hello.outgoing,
                encrypted: p.hello.encrypted,
                peer_choking: p.peer_choking,
                am_choking: p.am_choking,
                peer_interested: p.peer_interested,
                am_interested: p.am_interested,
                download_rate: p.download.rate(now),
                upload_rate: p.upload.rate(now),
                pieces: p.n_has,
            })
            .collect();
        let stats = TorrentStats {
            name: self.info.name.clone(),
            state: self.state,
            error: self.error.clone(),
            pieces_have: self.picker.have_count(),
            pieces_total: self.have.len() as u32,
            have: self.have.clone(),
            bytes_have,
            bytes_total: layout.total_length(),
            downloaded: self.download.total(),
            uploaded: self.upload.total(),
            all_time_uploaded: transferred.uploaded,
            all_time_downloaded: transferred.downloaded,
            sequential: self.sequential,
            download_limit: self.limits[0].rate(),
            upload_limit: self.limits[1].rate(),
            download_rate: self.download.rate(now),
            upload_rate: self.upload.rate(now),
            hash_failures: self.hash_failures,
            pieces_missing: self.picker.missing_count(),
            downloading: (0..self.have.len() as u32)
                .filter(|&piece| {
                    matches!(
                        self.picker.piece_state(PieceIndex(piece)),
                        Some(
                            shoal_picker::PieceState::Downloading
                                | shoal_picker::PieceState::AwaitingHash
                        )
                    )
                })
                .collect(),
            peers,
            trackers: self.trackers.clone(),
            dht_peers: self
                .dht
                .as_ref()
                .map(|d| d.found.load(std::sync::atomic::Ordering::Relaxed)),
            metadata: None,
        };
        self.stats.send_replace(stats);
    }
}

/// Answers a `ut_metadata` message (BEP 9): a request for a piece of the info dictionary gets the
/// piece, one past the end a `reject`; data and rejects are ignored (we have the metadata). `Err` for a
/// malformed message.
pub(crate) fn serve_metadata(
    metadata: &[u8],
    payload: &bytes::Bytes,
) -> Result<Option<shoal_wire::MetadataMessage>, String> {
    use shoal_wire::{METADATA_PIECE_LEN, MetadataMessage};
    let message = MetadataMessage::decode(payload).map_err(|e| format!("ut_metadata: {e}"))?;
    let MetadataMessage::Request { piece } = message else {
        return Ok(None);
    };
    let start = piece as usize * METADATA_PIECE_LEN as usize;
    let total_size = u32::try_from(metadata.len()).map_err(|_| "metadata too large".to_string())?;
    Ok(Some(match metadata.get(start..) {
        Some(rest) if !rest.is_empty() => MetadataMessage::Data {
            piece,
            total_size,
            data: bytes::Bytes::copy_from_slice(
                &rest[..rest.len().min(METADATA_PIECE_LEN as usize)],
            ),
        },
        _ => MetadataMessage::Reject { piece },
    }))
}

/// The outcome of hashing a completed piece.
#[derive(Debug)]
pub(crate) struct PieceReport {
    /// `None` if the piece is good; else each block's sender and the hash of what it sent, kept until
    /// the piece is downloaded again.
    suspects: Option<Vec<(u32, BanKey, [u8; 20])>>,
    /// Senders proven to have lied: the sole sender of a bad piece, or, once a piece that failed before
    /// verifies, those whose earlier blocks differ from the good ones.
    liars: Vec<BanKey>,
    /// Senders of a piece that verified.
    honest: Vec<BanKey>,
}

/// Hashes piece `piece` (blocking IO) and works out who, if anyone, sent bad data.
fn check_piece(
    storage: &Storage,
    piece: u32,
    expected: &[u8; 20],
    senders: Vec<(u32, BanKey)>,
    suspects: Option<Vec<(u32, BanKey, [u8; 20])>>,
) -> PieceReport {
    thread_local! {
        /// The piece buffer, kept per blocking thread so each hash does not allocate a fresh one.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut data = BUFFER.take();
    let good = storage
        .hash_piece_v1(piece, &mut data)
        .is_ok_and(|hash| hash == *expected);
    let report = judge(good, &data, senders, suspects);
    BUFFER.set(data);
    report
}

/// Who, if anyone, sent bad data for a piece whose bytes are `data` and whose hash was `good` or not.
fn judge(
    good: bool,
    data: &[u8],
    senders: Vec<(u32, BanKey)>,
    suspects: Option<Vec<(u32, BanKey, [u8; 20])>>,
) -> PieceReport {
    use sha1::{Digest, Sha1};
    let block_hash = |offset: u32| -> [u8; 20] {
        let start = (offset as usize).min(data.len());
        let end = (start + shoal_wire::BLOCK_LEN as usize).min(data.len());
        Sha1::digest(&data[start..end]).into()
    };
    if good {
        // Compare what each earlier sender sent with the good data: a difference is proof.
        let earlier = suspects.unwrap_or_default();
        let mut liars: Vec<BanKey> = earlier
            .iter()
            .copied()
            .filter(|(offset, _, sent)| block_hash(*offset) != *sent)
            .map(|(_, who, _)| who)
            .collect();
        liars.dedup();
        // The new senders, and the earlier ones whose blocks turned out right, are honest.
        let honest = senders
            .into_iter()
            .map(|(_, who)| who)
            .chain(earlier.into_iter().map(|(_, who, _)| who))
            .filter(|who| !liars.contains(who))
            .collect();
        return PieceReport {
            suspects: None,
            liars,
            honest,
        };
    }
    let mut distinct: Vec<BanKey> = senders.iter().map(|(_, who)| *who).collect();
    distinct.sort_unstable_by_key(|who| format!("{who:?}"));
    distinct.dedup();
    // A piece sent entirely by one peer that fails is that peer's doing.
    let liars = if distinct.len() == 1 {
        distinct
    } else {
        Vec::new()
    };
    let suspects = senders
        .into_iter()
        .map(|(offset, who)| (offset, who, block_hash(offset)))
        .collect();
    PieceReport {
        suspects: Some(suspects),
        liars,
        honest: Vec::new(),
    }
}

/// A readable client name from a peer id: Azureus-style `-XX1234-` ids, else "unknown".
pub(crate) fn client_name(peer_id: &PeerId) -> String {
    shoal_wire::Client::from_peer_id(peer_id)
        .map_or_else(|| "unknown".into(), |client| client.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redial_backoff_doubles_up_to_five_minutes() {
        let now = Instant::now();
        let mut backoff = Backoff {
            failures: 0,
            next_attempt: now,
        };
        let waits: Vec<u64> = (0..12)
            .map(|_| {
                backoff.failed(now);
                (backoff.next_attempt - now).as_secs()
            })
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300, 300]);
    }
}
