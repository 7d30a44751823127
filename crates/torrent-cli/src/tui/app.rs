//! The TUI's state: what the screen shows and how keys change it. Nothing here awaits, touches the
//! terminal or talks to the engine: [`App::on_key`] returns an [`Action`] for the runtime to carry out,
//! and [`App::on_update`] takes the engine's snapshots in.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use shoal_metainfo::InfoHash;
use shoal_session::{PeerStats, TorrentState, TorrentStats};

use super::meta::TorrentMeta;
use super::text::sanitize;

/// A torrent's identity in the views: its v1 info-hash.
pub type TorrentId = InfoHash;

/// Seconds of rate history the speed chart keeps (the engine publishes once a second).
pub const HISTORY_LEN: usize = 300;

/// What the runtime must do for a key: everything that reaches beyond the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop the engine cleanly and restore the terminal.
    Quit,
    /// Add a torrent from a `.torrent` path or a magnet link, as typed.
    Add(String),
    /// Pause (`true`) or resume (`false`) a torrent.
    Pause(TorrentId, bool),
    /// Sequential (in-order) download on (`true`) or off.
    Sequential(TorrentId, bool),
    /// Remove a torrent, and its downloaded data when `delete_data`.
    Remove {
        /// Which torrent.
        id: TorrentId,
        /// Delete the files too.
        delete_data: bool,
    },
    /// Move a torrent's data to another directory, as typed.
    Move {
        /// Which torrent.
        id: TorrentId,
        /// The directory.
        to: String,
    },
    /// Change one file's priority.
    SetFilePriority {
        /// Which torrent.
        id: TorrentId,
        /// The file's index in torrent order.
        file: usize,
        /// The new priority.
        priority: FilePriority,
    },
}

/// Where a key leaves a line being typed.
enum Edit {
    /// Enter on something: the text, trimmed, is ready.
    Done,
    /// Esc, Ctrl-C, or Enter on nothing.
    Cancelled,
    /// Still typing.
    Typing,
}

/// Applies a key to a line being typed.
fn edit(text: &mut String, key: KeyEvent, ctrl_c: bool) -> Edit {
    match key.code {
        _ if ctrl_c => Edit::Cancelled,
        KeyCode::Enter => {
            *text = text.trim().to_owned();
            if text.is_empty() {
                Edit::Cancelled
            } else {
                Edit::Done
            }
        }
        KeyCode::Esc => Edit::Cancelled,
        KeyCode::Backspace => {
            text.pop();
            Edit::Typing
        }
        KeyCode::Char(c) if !c.is_control() => {
            text.push(c);
            Edit::Typing
        }
        _ => Edit::Typing,
    }
}

/// A file's download priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilePriority {
    /// Not downloaded.
    Skip,
    /// After everything else.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before everything else.
    High,
}

impl FilePriority {
    /// The next priority in the cycle skip → low → normal → high → skip.
    pub fn next(self) -> Self {
        match self {
            Self::Skip => Self::Low,
            Self::Low => Self::Normal,
            Self::Normal => Self::High,
            Self::High => Self::Skip,
        }
    }

    /// The engine's priority.
    pub fn to_engine(self) -> shoal_session::Priority {
        match self {
            Self::Skip => shoal_session::Priority::Skip,
            Self::Low => shoal_session::Priority::Low,
            Self::Normal => shoal_session::Priority::Normal,
            Self::High => shoal_session::Priority::High,
        }
    }

    /// The word the Files view shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// What a torrent is doing, in the words the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Hashing existing data.
    Checking,
    /// A magnet link waiting for the info dictionary (BEP 9).
    FetchingMetadata,
    /// Downloading.
    Downloading,
    /// Complete, uploading.
    Seeding,
    /// Stopped by the user.
    Paused,
    /// Downloading stopped by an error that may pass (a full disk); still seeding.
    Stalled,
    /// Its files are being moved to another directory.
    Moving,
    /// Stopped by an error.
    Error,
}

impl Status {
    /// The word the list shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::FetchingMetadata => "metadata",
            Self::Downloading => "downloading",
            Self::Seeding => "seeding",
            Self::Paused => "paused",
            Self::Stalled => "stalled",
            Self::Moving => "moving",
            Self::Error => "error",
        }
    }

    fn from_engine(state: TorrentState) -> Self {
        match state {
            TorrentState::FetchingMetadata => Self::FetchingMetadata,
            TorrentState::Checking => Self::Checking,
            TorrentState::Downloading => Self::Downloading,
            TorrentState::Seeding => Self::Seeding,
            TorrentState::Paused => Self::Paused,
            TorrentState::Stalled => Self::Stalled,
            TorrentState::Moving => Self::Moving,
            TorrentState::Error => Self::Error,
        }
    }
}

/// The last minutes of download and upload rates, one sample per snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHistory {
    /// Bytes per second received, oldest first.
    pub down: VecDeque<u64>,
    /// Bytes per second sent, oldest first.
    pub up: VecDeque<u64>,
}

impl RateHistory {
    fn push(&mut self, down: u64, up: u64) {
        if self.down.len() == HISTORY_LEN {
            self.down.pop_front();
            self.up.pop_front();
        }
        self.down.push_back(down);
        self.up.push_back(up);
    }
}

/// One torrent as the screen shows it: the latest snapshot (hostile text already sanitized) and what
/// the views derive over time.
#[derive(Debug, Clone, PartialEq)]
pub struct TorrentView {
    /// Its identity.
    pub id: TorrentId,
    /// Facts from the `.torrent` file.
    pub meta: TorrentMeta,
    /// The latest snapshot.
    pub stats: TorrentStats,
    /// Its status word.
    pub status: Status,
    /// Download rate smoothed over about ten seconds, for the ETA (the rate shown is the engine's
    /// current one, so it never lags behind reality).
    pub smoothed_down: f64,
    /// Rates for the speed chart.
    pub history: RateHistory,
    /// Per-file priorities as last set (the engine does not report them yet).
    pub priorities: Vec<FilePriority>,
}

impl TorrentView {
    /// Peers that have every piece.
    pub fn seeds(&self) -> usize {
        let total = self.stats.pieces_total;
        self.stats
            .peers
            .iter()
            .filter(|p| total > 0 && p.pieces >= total)
            .count()
    }

    /// Time left at the smoothed rate; `None` when complete or stalled.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.stats.bytes_total.saturating_sub(self.stats.bytes_have);
        if left == 0 || self.smoothed_down < 1.0 {
            return None;
        }
        Some(Duration::from_secs_f64(left as f64 / self.smoothed_down))
    }

    /// Whether data is moving or about to: quitting would interrupt it. A download with no peer
    /// connected is waiting, not transferring.
    pub fn is_active(&self) -> bool {
        self.status == Status::Checking
            || (self.status == Status::Downloading && !self.stats.peers.is_empty())
            || self.stats.download_rate > 0
            || self.stats.upload_rate > 0
    }

    /// Why the download is slow or stalled, in a sentence; `None` when nothing is wrong.
    pub fn diagnosis(&self) -> Option<String> {
        let stats = &self.stats;
        match self.status {
            Status::Error => {
                return Some(stats.error.clone().unwrap_or_else(|| "stopped".into()));
            }
            Status::Checking => return Some("checking the data already on disk".into()),
            Status::FetchingMetadata => {
                return Some(crate::format::metadata_status(stats));
            }
            Status::Paused => return Some("paused: press p to resume".into()),
            Status::Moving => {
                return Some(
                    "moving its data: connections resume when the files are in place".into(),
                );
            }
            Status::Stalled => {
                return Some(stats.error.clone().unwrap_or_else(|| "stalled".into()));
            }
            Status::Seeding => return None,
            Status::Downloading => {}
        }
        let peers = &stats.peers;
        if peers.is_empty() {
            return Some("no peers connected".into());
        }
        if peers.iter().all(|p| p.peer_choking) {
            return Some(format!("choked by all {} peers", peers.len()));
        }
        if self.seeds() == 0 && stats.pieces_total > 0 {
            let best = peers.iter().map(|p| p.pieces).max().unwrap_or(0);
            return Some(format!(
                "no seed: the best peer has {}",
                super::text::percent(u64::from(best), u64::from(stats.pieces_total))
            ));
        }
        if !peers.iter().any(|p| p.am_interested) {
            return Some("no peer has pieces we still need".into());
        }
        None
    }
}

/// Which pane keys go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    /// The torrent list: arrows pick a torrent.
    #[default]
    List,
    /// The detail tabs: arrows pick a peer or a file.
    Detail,
}

/// The detail tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Progress, rates, chart, pieces map, diagnosis.
    #[default]
    Overview,
    /// Connected peers.
    Peers,
    /// The file tree.
    Files,
    /// Trackers and DHT.
    Trackers,
}

impl Tab {
    /// Every tab in order.
    pub const ALL: [Self; 4] = [Self::Overview, Self::Peers, Self::Files, Self::Trackers];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Peers => "Peers",
            Self::Files => "Files",
            Self::Trackers => "Trackers",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

/// The Peers table's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerSort {
    /// By download rate (the default: who gives us most comes first).
    #[default]
    Down,
    /// By upload rate.
    Up,
    /// By how much of the torrent they have.
    Progress,
    /// By address.
    Address,
    /// By client name.
    Client,
}

impl PeerSort {
    fn next(self) -> Self {
        match self {
            Self::Down => Self::Up,
            Self::Up => Self::Progress,
            Self::Progress => Self::Address,
            Self::Address => Self::Client,
            Self::Client => Self::Down,
        }
    }
}

/// A dialog or overlay that takes the keys while it is open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Keys go to the list and tabs.
    #[default]
    Normal,
    /// The help overlay.
    Help,
    /// The add prompt, with what was typed so far.
    Add(String),
    /// The move prompt for a torrent's data, with what was typed so far.
    Move(TorrentId, String),
    /// "Transfers are running: quit?"
    ConfirmQuit,
    /// "Remove this torrent, and its data?"
    ConfirmRemove(TorrentId),
}

/// Everything the screen shows.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// Torrents in the order they were added.
    pub torrents: Vec<TorrentView>,
    /// The selected torrent's index.
    pub selected: usize,
    /// Which pane takes the arrows.
    pub focus: Focus,
    /// The open detail tab.
    pub tab: Tab,
    /// The highlighted row of the Peers or Files table.
    pub detail_row: usize,
    /// The Peers table's order.
    pub peer_sort: PeerSort,
    /// Ascending instead of the natural descending order.
    pub peer_sort_reversed: bool,
    /// Which dialog has the keys.
    pub mode: Mode,
    /// A one-line note for the footer (the result of the last action), cleared by the next key.
    pub message: Option<String>,
    /// Where the session accepts peers, for the header.
    pub listen: Option<SocketAddr>,
}

impl App {
    /// An empty app for a session listening on `listen`.
    pub fn new(listen: Option<SocketAddr>) -> Self {
        Self {
            listen,
            ..Self::default()
        }
    }

    /// Adds a torrent to the list with its first snapshot.
    pub fn add_torrent(&mut self, meta: TorrentMeta, stats: TorrentStats) {
        if self.torrents.iter().any(|t| t.id == meta.info_hash) {
            return;
        }
        let n_files = meta.files.len();
        let mut view = TorrentView {
            id: meta.info_hash,
            meta,
            stats: TorrentStats::default(),
            status: Status::Checking,
            smoothed_down: 0.0,
            history: RateHistory::default(),
            priorities: vec![FilePriority::Normal; n_files],
        };
        accept(&mut view, stats);
        self.torrents.push(view);
    }

    /// Drops a torrent the engine removed.
    pub fn remove_torrent(&mut self, id: TorrentId) {
        self.torrents.retain(|t| t.id != id);
        self.selected = self.selected.min(self.torrents.len().saturating_sub(1));
        if self.torrents.is_empty() {
            self.focus = Focus::List;
        }
    }

    /// Learns a torrent's files and trackers once its metadata arrived (a magnet link).
    pub fn set_meta(&mut self, id: TorrentId, meta: TorrentMeta) {
        if let Some(view) = self.torrents.iter_mut().find(|t| t.id == id) {
            view.priorities = vec![FilePriority::Normal; meta.files.len()];
            view.meta = meta;
        }
    }

    /// Records file `file`'s new priority and returns every file's priority as the engine numbers
    /// files (padding included), or `None` for an unknown torrent or file.
    pub fn set_file_priority(
        &mut self,
        id: TorrentId,
        file: usize,
        priority: FilePriority,
    ) -> Option<Vec<shoal_session::Priority>> {
        let view = self.torrents.iter_mut().find(|t| t.id == id)?;
        *view.priorities.get_mut(file)? = priority;
        let count = view
            .meta
            .files
            .iter()
            .map(|f| f.index + 1)
            .max()
            .unwrap_or(0);
        let mut engine = vec![shoal_session::Priority::Normal; count];
        for (meta, priority) in view.meta.files.iter().zip(&view.priorities) {
            engine[meta.index] = priority.to_engine();
        }
        Some(engine)
    }

    /// Takes a new snapshot of torrent `id`.
    pub fn on_update(&mut self, id: TorrentId, stats: TorrentStats) {
        if let Some(view) = self.torrents.iter_mut().find(|t| t.id == id) {
            accept(view, stats);
        }
        self.detail_row = self.detail_row.min(self.detail_len().saturating_sub(1));
    }

    /// Shows the outcome of an action in the footer.
    pub fn notify(&mut self, message: impl Into<String>) {
        self.message = Some(message.into());
    }

    /// The selected torrent.
    pub fn current(&self) -> Option<&TorrentView> {
        self.torrents.get(self.selected)
    }

    /// The name to show for `view`: two torrents with the same name are told apart by the start of
    /// their info-hashes (USERS.md).
    pub fn display_name(&self, view: &TorrentView) -> String {
        let twins = self
            .torrents
            .iter()
            .filter(|t| t.stats.name == view.stats.name)
            .count();
        if twins > 1 {
            format!("{} [{}]", view.stats.name, &view.id.to_string()[..8])
        } else {
            view.stats.name.clone()
        }
    }

    /// The selected torrent's peers in the chosen order.
    pub fn sorted_peers(&self) -> Vec<&PeerStats> {
        let Some(view) = self.current() else {
            return Vec::new();
        };
        let mut peers: Vec<&PeerStats> = view.stats.peers.iter().collect();
        // Rates and progress read best first; addresses and names alphabetically.
        match self.peer_sort {
            PeerSort::Down => peers.sort_by_key(|p| Reverse(p.download_rate)),
            PeerSort::Up => peers.sort_by_key(|p| Reverse(p.upload_rate)),
            PeerSort::Progress => peers.sort_by_key(|p| Reverse(p.pieces)),
            PeerSort::Address => peers.sort_by_key(|p| (p.addr.ip().to_canonical(), p.addr.port())),
            PeerSort::Client => peers.sort_by(|a, b| a.client.cmp(&b.client)),
        }
        if self.peer_sort_reversed {
            peers.reverse();
        }
        peers
    }

    /// Whether quitting now would interrupt a transfer.
    pub fn transfers_running(&self) -> bool {
        self.torrents.iter().any(TorrentView::is_active)
    }

    /// Rows in the open detail table (peers or files), for moving the highlight.
    fn detail_len(&self) -> usize {
        let Some(view) = self.current() else {
            return 0;
        };
        match self.tab {
            Tab::Peers => view.stats.peers.len(),
            Tab::Files => view.meta.files.len(),
            Tab::Overview | Tab::Trackers => 0,
        }
    }

    /// Handles a key; returns what the runtime must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.message = None;
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.on_normal_key(key, ctrl_c),
            Mode::Help => {
                // Any key closes the help; `q` and Ctrl-C go on to quit as usual.
                if matches!(key.code, KeyCode::Char('q')) || ctrl_c {
                    return self.on_normal_key(key, ctrl_c);
                }
                None
            }
            Mode::Add(mut text) => match edit(&mut text, key, ctrl_c) {
                Edit::Done => Some(Action::Add(text)),
                Edit::Cancelled => None,
                Edit::Typing => {
                    self.mode = Mode::Add(text);
                    None
                }
            },
            Mode::Move(id, mut text) => match edit(&mut text, key, ctrl_c) {
                Edit::Done => Some(Action::Move { id, to: text }),
                Edit::Cancelled => None,
                Edit::Typing => {
                    self.mode = Mode::Move(id, text);
                    None
                }
            },
            Mode::ConfirmQuit => match key.code {
                KeyCode::Char('y' | 'Y' | 'q') => Some(Action::Quit),
                _ if ctrl_c => Some(Action::Quit),
                _ => None,
            },
            Mode::ConfirmRemove(id) => match key.code {
                KeyCode::Char('r' | 'y') => Some(Action::Remove {
                    id,
                    delete_data: false,
                }),
                KeyCode::Char('D') => Some(Action::Remove {
                    id,
                    delete_data: true,
                }),
                _ => None,
            },
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent, ctrl_c: bool) -> Option<Action> {
        if ctrl_c || key.code == KeyCode::Char('q') {
            if self.transfers_running() {
                self.mode = Mode::ConfirmQuit;
                return None;
            }
            return Some(Action::Quit);
        }
        match key.code {
            KeyCode::Char('?') | KeyCode::F(1) => self.mode = Mode::Help,
            KeyCode::Up | KeyCode::Char('k') => self.step(-1),
            KeyCode::Down | KeyCode::Char('j') => self.step(1),
            KeyCode::PageUp => self.step(-10),
            KeyCode::PageDown => self.step(10),
            KeyCode::Home | KeyCode::Char('g') => self.step(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.step(isize::MAX / 2),
            KeyCode::Enter if !self.torrents.is_empty() => {
                self.focus = Focus::Detail;
                self.detail_row = 0;
            }
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h') => {
                self.focus = Focus::List;
            }
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => self.switch_tab(1),
            KeyCode::BackTab => self.switch_tab(Tab::ALL.len() - 1),
            KeyCode::Char(c @ '1'..='4') => {
                self.tab = Tab::ALL[c as usize - '1' as usize];
                self.detail_row = 0;
            }
            KeyCode::Char('a') => self.mode = Mode::Add(String::new()),
            KeyCode::Char('p') => {
                let view = self.current()?;
                return Some(Action::Pause(view.id, view.status != Status::Paused));
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                self.mode = Mode::ConfirmRemove(self.current()?.id);
            }
            KeyCode::Char('m') => {
                self.mode = Mode::Move(self.current()?.id, String::new());
            }
            KeyCode::Char('o') => {
                let view = self.current()?;
                return Some(Action::Sequential(view.id, !view.stats.sequential));
            }
            KeyCode::Char('s') if self.tab == Tab::Peers => {
                self.peer_sort = self.peer_sort.next();
                self.peer_sort_reversed = false;
            }
            KeyCode::Char('S') if self.tab == Tab::Peers => {
                self.peer_sort_reversed = !self.peer_sort_reversed;
            }
            KeyCode::Char(' ') if self.tab == Tab::Files && self.focus == Focus::Detail => {
                let view = self.current()?;
                let file = *view.meta.tree_order().get(self.detail_row)?;
                let priority = view.priorities.get(file)?.next();
                return Some(Action::SetFilePriority {
                    id: view.id,
                    file,
                    priority,
                });
            }
            _ => {}
        }
        None
    }

    fn switch_tab(&mut self, by: usize) {
        self.tab = Tab::ALL[(self.tab.index() + by) % Tab::ALL.len()];
        self.detail_row = 0;
    }

    /// Moves the highlight of the focused pane, clamped to its rows.
    fn step(&mut self, by: isize) {
        let (row, len) = match self.focus {
            Focus::List => (&mut self.selected, self.torrents.len()),
            Focus::Detail => {
                let len = self.detail_len();
                (&mut self.detail_row, len)
            }
        };
        let last = len.saturating_sub(1) as isize;
        *row = (*row as isize).saturating_add(by).clamp(0, last) as usize;
        if self.focus == Focus::List {
            self.detail_row = 0;
        }
    }
}

/// Takes a snapshot into a view: sanitizes what peers and the torrent chose, advances the history and
/// the smoothed rate.
fn accept(view: &mut TorrentView, mut stats: TorrentStats) {
    stats.name = sanitize(&stats.name);
    stats.error = stats.error.as_deref().map(sanitize);
    for peer in &mut stats.peers {
        peer.client = sanitize(&peer.client);
    }
    view.status = Status::from_engine(stats.state);
    view.history.push(stats.download_rate, stats.upload_rate);
    // An exponential average with a time constant of about ten one-second snapshots.
    const ALPHA: f64 = 0.2;
    let rate = stats.download_rate as f64;
    view.smoothed_down = if stats.is_complete() {
        0.0
    } else if view.smoothed_down == 0.0 {
        rate
    } else {
        ALPHA * rate + (1.0 - ALPHA) * view.smoothed_down
    };
    view.stats = stats;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tui::meta::FileMeta;

    pub(crate) fn meta(hash_byte: u8) -> TorrentMeta {
        TorrentMeta {
            info_hash: InfoHash([hash_byte; 20]),
            piece_length: 1 << 20,
            files: vec![
                FileMeta {
                    path: vec!["movie.mkv".into()],
                    length: 48 << 20,
                    offset: 0,
                    index: 0,
                },
                FileMeta {
                    path: vec!["extras".into(), "notes.txt".into()],
                    length: 16 << 20,
                    offset: 48 << 20,
                    index: 1,
                },
            ],
            trackers: vec![vec!["http://127.0.0.1:6969/announce".into()]],
            private: false,
        }
    }

    pub(crate) fn peer(last_octet: u8, pieces: u32, rate: u64) -> PeerStats {
        PeerStats {
            addr: SocketAddr::from(([127, 0, 0, last_octet], 6881)),
            client: "Shoal 0.1.0".into(),
            outgoing: true,
            encrypted: false,
            peer_choking: false,
            am_choking: true,
            peer_interested: false,
            am_interested: true,
            download_rate: rate,
            upload_rate: 0,
            pieces,
        }
    }

    /// A 64 MiB torrent of 64 pieces with `have` of them and two peers.
    pub(crate) fn stats(name: &str, have: u32) -> TorrentStats {
        let total = 64;
        TorrentStats {
            name: name.into(),
            state: if have == total {
                TorrentState::Seeding
            } else {
                TorrentState::Downloading
            },
            pieces_have: have,
            pieces_missing: total - have,
            downloading: (have..(have + 2).min(total)).collect(),
            pieces_total: total,
            have: (0..total).map(|i| i < have).collect(),
            bytes_have: u64::from(have) << 20,
            bytes_total: 64 << 20,
            downloaded: u64::from(have) << 20,
            all_time_downloaded: u64::from(have) << 20,
            download_rate: if have == total { 0 } else { 4 << 20 },
            peers: vec![peer(2, total, 3 << 20), peer(3, total, 1 << 20)],
            ..TorrentStats::default()
        }
    }

    pub(crate) fn app_with(name: &str, have: u32) -> App {
        let mut app = App::new(Some(SocketAddr::from(([127, 0, 0, 1], 6881))));
        app.add_torrent(meta(0xab), stats(name, have));
        app
    }

    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn quit_asks_while_downloading_and_not_when_idle() {
        let mut app = app_with("demo", 10);
        assert_eq!(press(&mut app, KeyCode::Char('q')), None);
        assert_eq!(app.mode, Mode::ConfirmQuit);
        assert_eq!(press(&mut app, KeyCode::Char('n')), None);
        assert_eq!(app.mode, Mode::Normal);
        press(&mut app, KeyCode::Char('q'));
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(Action::Quit));

        let mut idle = app_with("demo", 64);
        assert_eq!(press(&mut idle, KeyCode::Char('q')), Some(Action::Quit));
        let mut waiting = app_with("demo", 10);
        let mut alone = stats("demo", 10);
        alone.peers.clear();
        alone.download_rate = 0;
        waiting.on_update(waiting.torrents[0].id, alone);
        assert_eq!(press(&mut waiting, KeyCode::Char('q')), Some(Action::Quit));
        let mut empty = App::new(None);
        assert_eq!(press(&mut empty, KeyCode::Char('q')), Some(Action::Quit));
    }

    #[test]
    fn ctrl_c_twice_quits_even_while_downloading() {
        let mut app = app_with("demo", 10);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), None);
        assert_eq!(app.on_key(ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn tabs_cycle_both_ways_and_by_number() {
        let mut app = app_with("demo", 10);
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.tab, Tab::Peers);
        press(&mut app, KeyCode::BackTab);
        press(&mut app, KeyCode::BackTab);
        assert_eq!(app.tab, Tab::Trackers);
        press(&mut app, KeyCode::Char('3'));
        assert_eq!(app.tab, Tab::Files);
    }

    #[test]
    fn arrows_move_the_focused_pane_and_stay_in_bounds() {
        let mut app = app_with("one", 10);
        app.add_torrent(meta(0xcd), stats("two", 5));
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('j'));
        assert_eq!(app.selected, 1);
        press(&mut app, KeyCode::Home);
        assert_eq!(app.selected, 0);
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Char('2'));
        press(&mut app, KeyCode::End);
        assert_eq!((app.focus, app.detail_row), (Focus::Detail, 1));
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.focus, Focus::List);
    }

    #[test]
    fn add_prompt_collects_text_and_returns_it() {
        let mut app = App::new(None);
        press(&mut app, KeyCode::Char('a'));
        for c in "x.torrentt".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        press(&mut app, KeyCode::Backspace);
        assert_eq!(app.mode, Mode::Add("x.torrent".into()));
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::Add("x.torrent".into()))
        );
        assert_eq!(app.mode, Mode::Normal);
        press(&mut app, KeyCode::Char('a'));
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn move_prompt_names_the_selected_torrent_and_returns_the_directory() {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        press(&mut app, KeyCode::Char('m'));
        for c in " ~/done ".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        assert_eq!(app.mode, Mode::Move(id, " ~/done ".into()));
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::Move {
                id,
                to: "~/done".into()
            })
        );
        assert_eq!(app.mode, Mode::Normal);
        // Esc, and Enter on nothing, cancel; with no torrent there is nothing to move.
        press(&mut app, KeyCode::Char('m'));
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        press(&mut app, KeyCode::Char('m'));
        assert_eq!(press(&mut app, KeyCode::Enter), None);
        assert_eq!(app.mode, Mode::Normal);
        let mut empty = App::new(None);
        press(&mut empty, KeyCode::Char('m'));
        assert_eq!(empty.mode, Mode::Normal);
    }

    #[test]
    fn remove_asks_about_the_data() {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        press(&mut app, KeyCode::Char('d'));
        assert_eq!(app.mode, Mode::ConfirmRemove(id));
        assert_eq!(
            press(&mut app, KeyCode::Char('D')),
            Some(Action::Remove {
                id,
                delete_data: true
            })
        );
        press(&mut app, KeyCode::Char('d'));
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn pause_and_priority_become_actions() {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        assert_eq!(
            press(&mut app, KeyCode::Char('p')),
            Some(Action::Pause(id, true))
        );
        assert_eq!(
            press(&mut app, KeyCode::Char('o')),
            Some(Action::Sequential(id, true))
        );
        app.torrents[0].stats.sequential = true;
        assert_eq!(
            press(&mut app, KeyCode::Char('o')),
            Some(Action::Sequential(id, false))
        );
        press(&mut app, KeyCode::Char('3'));
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Down);
        // The tree lists `extras/notes.txt` before `movie.mkv`: the second row is file 0.
        assert_eq!(
            press(&mut app, KeyCode::Char(' ')),
            Some(Action::SetFilePriority {
                id,
                file: 0,
                priority: FilePriority::High
            })
        );
    }

    #[test]
    fn peers_sort_by_rate_then_by_other_keys() {
        let mut app = app_with("demo", 10);
        let order = |app: &App| -> Vec<u8> {
            app.sorted_peers()
                .iter()
                .map(|p| match p.addr.ip() {
                    std::net::IpAddr::V4(ip) => ip.octets()[3],
                    std::net::IpAddr::V6(_) => 0,
                })
                .collect()
        };
        assert_eq!(order(&app), [2, 3]);
        press(&mut app, KeyCode::Char('2'));
        press(&mut app, KeyCode::Char('S'));
        assert_eq!(order(&app), [3, 2]);
        press(&mut app, KeyCode::Char('s')); // Up: equal, stable.
        press(&mut app, KeyCode::Char('s')); // Progress: equal.
        press(&mut app, KeyCode::Char('s')); // Address.
        assert_eq!(app.peer_sort, PeerSort::Address);
        assert_eq!(order(&app), [2, 3]);
    }

    #[test]
    fn snapshots_are_sanitized_and_smoothed() {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        let mut next = stats("evil\x1b]0;pwned\x07name", 20);
        next.peers[0].client = "bad\x1b[31mclient".into();
        next.download_rate = 0;
        app.on_update(id, next);
        let view = &app.torrents[0];
        assert_eq!(view.stats.name, "evil]0;pwnedname");
        assert_eq!(view.stats.peers[0].client, "bad[31mclient");
        // 4 MiB/s then 0: the ETA follows a smoothed rate, not the last sample.
        assert!((view.smoothed_down - 0.8 * f64::from(4 << 20)).abs() < 1.0);
        assert_eq!(view.history.down.len(), 2);
        assert!(view.eta().is_some());
    }

    #[test]
    fn history_keeps_the_last_five_minutes() {
        let mut app = app_with("demo", 10);
        let id = app.torrents[0].id;
        for _ in 0..HISTORY_LEN + 10 {
            app.on_update(id, stats("demo", 10));
        }
        assert_eq!(app.torrents[0].history.down.len(), HISTORY_LEN);
    }

    #[test]
    fn twins_are_told_apart_by_info_hash() {
        let mut app = app_with("same", 10);
        assert_eq!(app.display_name(&app.torrents[0]), "same");
        app.add_torrent(meta(0xcd), stats("same", 5));
        assert_eq!(app.display_name(&app.torrents[0]), "same [abababab]");
        assert_eq!(app.display_name(&app.torrents[1]), "same [cdcdcdcd]");
    }

    #[test]
    fn diagnoses_a_slow_download() {
        let mut view = app_with("demo", 10).torrents[0].clone();
        assert_eq!(view.diagnosis(), None);
        for peer in &mut view.stats.peers {
            peer.peer_choking = true;
        }
        assert_eq!(view.diagnosis().as_deref(), Some("choked by all 2 peers"));
        for peer in &mut view.stats.peers {
            peer.peer_choking = false;
            peer.pieces = 53;
        }
        assert_eq!(
            view.diagnosis().as_deref(),
            Some("no seed: the best peer has 82.8%")
        );
        view.stats.peers.clear();
        assert_eq!(view.diagnosis().as_deref(), Some("no peers connected"));
    }
}
