//! The terminal UI: a torrent list above detail tabs (Overview, Peers, Files, Trackers).
//!
//! State and rendering are apart (STYLE.md §8): [`app::App`] holds what the screen shows and turns keys
//! into [`app::Action`]s without awaiting; `view` draws an `&App` and nothing else. This module is the
//! runtime: one `tokio::select!` loop owns the terminal and waits on keys (crossterm's `EventStream`),
//! the torrents' stats (one forwarding task per `watch` channel), a redraw deadline and SIGTERM/SIGINT/
//! SIGHUP. It redraws only after something changed, at most ten times a second, so an idle screen costs
//! nothing; ratatui's panic hook puts the terminal back if anything panics.

pub mod app;
pub mod meta;
pub mod text;
mod view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use shoal_session::{Session, TorrentHandle, TorrentStats};

use crate::cmd::download::{SeedClock, SeedLimits, Source};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use app::{Action, App, TorrentId};
use meta::TorrentMeta;

/// The shortest time between two frames: at most ten redraws a second.
const FRAME: Duration = Duration::from_millis(100);

/// Where torrents added from the UI go.
#[derive(Debug, Clone)]
pub struct AddDefaults {
    /// The download directory.
    pub save_path: PathBuf,
    /// Peers every added torrent starts with (`--peer`).
    pub peers: Vec<SocketAddr>,
    /// Download every added torrent in order (`--sequential`).
    pub sequential: bool,
    /// When to pause a seeding torrent (`--seed-ratio`, `--seed-time`, `--seed-idle`).
    pub seed_limits: SeedLimits,
    /// Where to move each torrent's data once it is complete (`--move-to`).
    pub move_to: Option<PathBuf>,
}

/// Adds a torrent to the session and reads its facts for the views.
///
/// # Errors
/// The torrent does not parse or the engine refuses it.
pub fn add_source(
    session: &Session,
    source: Source,
    defaults: &AddDefaults,
) -> Result<(TorrentHandle, TorrentMeta)> {
    let meta = TorrentMeta::from_source(&source)?;
    let handle = source.add(session, &defaults.save_path, &defaults.peers)?;
    if defaults.sequential {
        let handle = handle.clone();
        tokio::spawn(async move { handle.set_sequential(true).await });
    }
    Ok((handle, meta))
}

/// Runs the UI over `session` until the user quits or a signal arrives; restores the terminal before
/// returning, also on error. The caller shuts the session down.
///
/// # Errors
/// The terminal cannot be set up or drawn to.
pub async fn run(
    session: &Session,
    torrents: Vec<(TorrentHandle, TorrentMeta)>,
    defaults: AddDefaults,
) -> Result<()> {
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = Runtime::new(session, defaults, torrents)
        .event_loop(&mut terminal)
        .await;
    ratatui::try_restore().context("restoring the terminal")?;
    result
}

type Update = (TorrentId, TorrentStats);

/// A move of a torrent's data under way: it may take minutes (a copy to another disk), so the loop
/// polls it beside everything else.
type PendingMove<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (TorrentId, Result<PathBuf, shoal_session::SessionError>)>
            + 'a,
    >,
>;

/// Moves torrent `id`'s data to `to`, as a future the loop polls.
fn pending_move(session: &Session, id: TorrentId, to: PathBuf) -> PendingMove<'_> {
    Box::pin(async move { (id, session.move_data(id, to).await) })
}

/// A directory as typed: a leading `~` is the home directory; a relative path is relative to the
/// directory Shoal was started in.
fn typed_dir(typed: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match (typed.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(typed),
    }
}

struct Runtime<'a> {
    session: &'a Session,
    defaults: AddDefaults,
    app: App,
    handles: HashMap<TorrentId, (TorrentHandle, JoinHandle<()>)>,
    updates_tx: mpsc::Sender<Update>,
    updates: mpsc::Receiver<Update>,
    /// Each torrent's seeding time and idle time, for the seeding limits.
    seed_clocks: HashMap<TorrentId, SeedClock>,
    /// Torrents paused for reaching a seeding limit (once each: resuming by hand is allowed).
    limit_reached: std::collections::HashSet<TorrentId>,
    /// Torrents whose data `--move-to` has moved (or tried to): once each.
    auto_moved: std::collections::HashSet<TorrentId>,
}

impl<'a> Runtime<'a> {
    fn new(
        session: &'a Session,
        defaults: AddDefaults,
        torrents: Vec<(TorrentHandle, TorrentMeta)>,
    ) -> Self {
        let (updates_tx, updates) = mpsc::channel(64);
        let mut runtime = Self {
            session,
            defaults,
            app: App::new(Some(session.local_addr())),
            handles: HashMap::new(),
            updates_tx,
            updates,
            seed_clocks: HashMap::new(),
            limit_reached: std::collections::HashSet::new(),
            auto_moved: std::collections::HashSet::new(),
        };
        for (handle, meta) in torrents {
            runtime.watch(handle, meta);
        }
        runtime
    }

    /// Shows a torrent and forwards its snapshots to the loop.
    fn watch(&mut self, handle: TorrentHandle, meta: TorrentMeta) {
        let id = handle.info_hash();
        let mut stats = handle.stats();
        self.app
            .add_torrent(meta, stats.borrow_and_update().clone());
        let tx = self.updates_tx.clone();
        let forward = tokio::spawn(async move {
            while stats.changed().await.is_ok() {
                let snapshot = stats.borrow_and_update().clone();
                if tx.send((id, snapshot)).await.is_err() {
                    break;
                }
            }
        });
        self.handles.insert(id, (handle, forward));
    }

    async fn event_loop(mut self, terminal: &mut ratatui::DefaultTerminal) -> Result<()> {
        let mut events = EventStream::new();
        let stop = stop_signal();
        tokio::pin!(stop);
        let mut dirty = true;
        let mut last_draw: Option<Instant> = None;
        let mut moving: Option<PendingMove<'a>> = None;
        loop {
            let next_frame = last_draw.map_or_else(Instant::now, |at| at + FRAME);
            tokio::select! {
                () = tokio::time::sleep_until(next_frame), if dirty => {
                    terminal
                        .draw(|frame| frame.render_widget(&self.app, frame.area()))
                        .context("drawing")?;
                    last_draw = Some(Instant::now());
                    dirty = false;
                }
                event = events.next() => match event {
                    Some(Ok(Event::Key(key))) => {
                        dirty = true;
                        let action = self.app.on_key(key);
                        if let Some(Action::Move { id, to }) = action {
                            if moving.is_some() {
                                self.app.notify("a move is already under way: one at a time");
                            } else {
                                let to = typed_dir(&to);
                                self.app.notify(format!("moving the data to {}…", to.display()));
                                moving = Some(pending_move(self.session, id, to));
                            }
                        } else if let Some(action) = action
                            && self.perform(action).await
                        {
                            break;
                        }
                    }
                    Some(Ok(Event::Resize(..))) => dirty = true,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e).context("reading the terminal"),
                    None => break,
                },
                Some((id, stats)) = self.updates.recv() => {
                    if stats.metadata.is_none() {
                        self.learn_metadata(id);
                    }
                    self.check_seed_limits(id, &stats).await;
                    // `--move-to`: a completed torrent's data goes there, one move at a time.
                    if stats.state == shoal_session::TorrentState::Seeding
                        && moving.is_none()
                        && let Some(to) = self.defaults.move_to.clone()
                        && self.auto_moved.insert(id)
                    {
                        self.app.notify(format!("complete: moving the data to {}…", to.display()));
                        moving = Some(pending_move(self.session, id, to));
                    }
                    self.app.on_update(id, stats);
                    dirty = true;
                }
                (id, moved) = async { moving.as_mut().expect("guarded").await }, if moving.is_some() => {
                    moving = None;
                    dirty = true;
                    let name = self
                        .app
                        .torrents
                        .iter()
                        .find(|t| t.id == id)
                        .map(|t| text::sanitize(&t.stats.name))
                        .unwrap_or_default();
                    self.app.notify(match moved {
                        Ok(to) => format!("moved {name} to {}", to.display()),
                        Err(e) => format!("{name}: {e}; the data stays where it was"),
                    });
                }
                () = &mut stop => break,
            }
        }
        for (_, forward) in self.handles.values() {
            forward.abort();
        }
        Ok(())
    }

    /// Pauses a seeding torrent the first time it reaches a seeding limit, and says why.
    async fn check_seed_limits(&mut self, id: TorrentId, stats: &TorrentStats) {
        let limits = &self.defaults.seed_limits;
        if !limits.any() || self.limit_reached.contains(&id) {
            return;
        }
        let clock = self.seed_clocks.entry(id).or_default();
        let Some((seeding, idle)) = clock.update(stats, std::time::Instant::now()) else {
            return;
        };
        let Some(why) = limits.reached(stats, seeding, idle) else {
            return;
        };
        self.limit_reached.insert(id);
        if let Some((handle, _)) = self.handles.get(&id) {
            handle.pause().await;
        }
        self.app.notify(format!(
            "{}: {why}; paused (p resumes)",
            text::sanitize(&stats.name)
        ));
    }

    /// A magnet link's torrent file arrived: the views learn its files and trackers.
    fn learn_metadata(&mut self, id: TorrentId) {
        let unknown = self
            .app
            .torrents
            .iter()
            .any(|t| t.id == id && t.meta.piece_length == 0);
        if !unknown {
            return;
        }
        let torrent = self.handles.get(&id).and_then(|(h, _)| h.torrent_file());
        if let Some(meta) = torrent.and_then(|bytes| TorrentMeta::from_torrent(&bytes).ok()) {
            self.app.set_meta(id, meta);
        }
    }

    /// Carries out an action; returns whether to quit.
    async fn perform(&mut self, action: Action) -> bool {
        match action {
            Action::Quit => return true,
            Action::Add(input) => self.add(&input),
            Action::Pause(id, pause) => {
                if let Some((handle, _)) = self.handles.get(&id) {
                    if pause {
                        handle.pause().await;
                        self.app
                            .notify("paused: connections closed until p resumes");
                    } else {
                        handle.resume().await;
                        self.app.notify("resumed");
                    }
                }
            }
            Action::Sequential(id, on) => {
                if let Some((handle, _)) = self.handles.get(&id) {
                    handle.set_sequential(on).await;
                    self.app.notify(if on {
                        "in order: the pieces after the first missing one come first"
                    } else {
                        "rarest first: pieces in any order"
                    });
                }
            }
            Action::Remove { id, delete_data } => {
                if let Some((_, forward)) = self.handles.remove(&id) {
                    forward.abort();
                }
                let name = self
                    .app
                    .torrents
                    .iter()
                    .find(|t| t.id == id)
                    .map(|t| t.stats.name.clone())
                    .unwrap_or_default();
                self.app.remove_torrent(id);
                match self.session.remove_torrent(id, delete_data).await {
                    Ok(()) if delete_data => {
                        self.app.notify(format!("removed {name} and its data"))
                    }
                    Ok(()) => self
                        .app
                        .notify(format!("removed {name}; its data stays on disk")),
                    Err(e) => self.app.notify(text::sanitize(&format!(
                        "removed {name}, but deleting its data failed: {:#}",
                        anyhow::Error::from(e)
                    ))),
                }
            }
            // Started by the loop itself, which polls the move beside the screen.
            Action::Move { .. } => {}
            Action::SetFilePriority { id, file, priority } => {
                if let Some((handle, _)) = self.handles.get(&id)
                    && let Some(priorities) = self.app.set_file_priority(id, file, priority)
                {
                    handle.set_file_priorities(priorities).await;
                }
            }
        }
        false
    }

    fn add(&mut self, input: &str) {
        let is_magnet = input
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"));
        let input = if is_magnet {
            input.to_owned()
        } else {
            expand_home(input).display().to_string()
        };
        let added = Source::read(&input)
            .and_then(|source| add_source(self.session, source, &self.defaults));
        match added {
            Ok((handle, meta)) => {
                self.watch(handle, meta);
                self.app.selected = self.app.torrents.len() - 1;
                self.app.notify(format!(
                    "added {} to {}",
                    self.app.torrents[self.app.selected].stats.name,
                    self.defaults.save_path.display()
                ));
            }
            Err(e) => self.app.notify(text::sanitize(&format!("{e:#}"))),
        }
    }
}

/// `~/x` as the shell would read it: a typed path in the add prompt gets no shell expansion.
fn expand_home(input: &str) -> PathBuf {
    match (input.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(input),
    }
}

/// Resolves on SIGTERM, SIGINT or SIGHUP (raw mode turns Ctrl-C into a key, so SIGINT only comes from
/// `kill`).
async fn stop_signal() {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn recv(signal: Option<&mut Signal>) {
        match signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        () = recv(term.as_mut()) => {}
        () = recv(int.as_mut()) => {}
        () = recv(hup.as_mut()) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_directory_expands_the_home_directory_only_at_its_start() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
        assert_eq!(typed_dir("~"), home);
        assert_eq!(typed_dir("~/done"), home.join("done"));
        assert_eq!(typed_dir("~user/x"), PathBuf::from("~user/x"));
        assert_eq!(typed_dir("/srv/~/x"), PathBuf::from("/srv/~/x"));
        assert_eq!(typed_dir("done"), PathBuf::from("done"));
    }
}
