//! `torrent-cli add FILE|MAGNET --headless` and `torrent-cli seed FILE --data DIR`: the engine without
//! the terminal UI, printing progress lines (a progress bar on a terminal).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shoal_metainfo::Magnet;
use shoal_session::{
    AddMagnet, AddTorrent, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};

use crate::{BadInput, format};

/// Arguments of `torrent-cli add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A .torrent file or a magnet link (`magnet:?xt=urn:btih:…`; quote it for the shell).
    source: String,
    /// The download directory.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Print progress lines instead of opening the terminal UI (the default when stdout is not a
    /// terminal).
    #[arg(long)]
    headless: bool,
    /// Keep seeding after the download completes, until SIGINT or SIGTERM (or a `--seed-*` limit).
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    limits: SeedLimits,
    /// Headless: give up on a magnet link whose metadata has not arrived after this many seconds,
    /// saying why (no tracker answered, the DHT found nobody, …).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Download in order, so a media player can play a file while it downloads (`o` in the UI).
    #[arg(long)]
    sequential: bool,
    /// Once the download is complete and verified, move the data to this directory (and seed from
    /// there with `--seed`); `m` in the UI moves it by hand.
    #[arg(long, value_name = "DIR")]
    move_to: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// What `add` was given.
#[derive(Debug, Clone)]
pub enum Source {
    /// A `.torrent` file's bytes.
    Torrent(Vec<u8>),
    /// A magnet link.
    Magnet(Magnet),
}

impl Source {
    /// Reads a `.torrent` path or parses a magnet link; a bad one is a usage error (exit 2).
    pub fn read(input: &str) -> Result<Self> {
        if input
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
        {
            return Ok(Self::Magnet(Magnet::parse(input)?));
        }
        let torrent = std::fs::read(input).with_context(|| format!("reading {input}"))?;
        // Parse once here so a bad file is a usage error (exit 2) with the field and offset.
        shoal_metainfo::Metainfo::from_bytes(&torrent)
            .with_context(|| format!("parsing {input}"))?;
        Ok(Self::Torrent(torrent))
    }

    /// Adds it to `session`.
    pub fn add(
        self,
        session: &Session,
        save_path: &Path,
        peers: &[SocketAddr],
    ) -> Result<TorrentHandle, shoal_session::SessionError> {
        match self {
            Self::Torrent(torrent) => session.add_torrent(AddTorrent {
                torrent,
                save_path: save_path.to_path_buf(),
                peers: peers.to_vec(),
            }),
            Self::Magnet(magnet) => session.add_magnet(AddMagnet {
                magnet,
                save_path: save_path.to_path_buf(),
                peers: peers.to_vec(),
            }),
        }
    }
}

/// The DHT flags, shared by every command that runs a session.
#[derive(Debug, Clone, clap::Args)]
pub struct DhtArgs {
    /// Run no DHT node: peers come from trackers, PEX and `--peer` only.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to join through, `HOST:PORT`; may be repeated (default: the public routers
    /// router.bittorrent.com, dht.transmissionbt.com and router.utorrent.com, on port 6881).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
}

impl DhtArgs {
    /// The DHT node's settings: UDP on the peer port, its routing table kept in the state directory.
    pub fn node_config(
        &self,
        listen: SocketAddr,
        state_dir: Option<&Path>,
    ) -> Option<shoal_dht::NodeConfig> {
        if self.no_dht {
            return None;
        }
        let mut config = shoal_dht::NodeConfig {
            bind: listen,
            state_dir: state_dir.map(Path::to_path_buf),
            ..shoal_dht::NodeConfig::default()
        };
        if !self.bootstrap.is_empty() {
            config.bootstrap = self.bootstrap.clone();
            // Nodes given by hand may be on a private network or this machine: allow their addresses.
            config.dht.restrict_ips = false;
        }
        Some(config)
    }
}

/// Arguments of `torrent-cli seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The .torrent file.
    file: PathBuf,
    /// The directory holding the data.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    #[command(flatten)]
    limits: SeedLimits,
    #[command(flatten)]
    common: Common,
}

/// When to stop seeding. The first limit reached ends a headless run with status 0 (each implies
/// `--seed`), and pauses the torrent in the terminal UI.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SeedLimits {
    /// Stop seeding once the share ratio reaches RATIO: bytes uploaded over bytes downloaded, data
    /// that was already there counting as downloaded, over all runs (kept in the state directory).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    seed_ratio: Option<f64>,
    /// Stop after seeding this long in this run, like 90m, 12h or 3d.
    #[arg(long, value_name = "DURATION", value_parser = format::parse_duration)]
    seed_time: Option<Duration>,
    /// Stop after seeding this long without uploading anything, like 30m.
    #[arg(long, value_name = "DURATION", value_parser = format::parse_duration)]
    seed_idle: Option<Duration>,
}

impl SeedLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.seed_ratio.is_some() || self.seed_time.is_some() || self.seed_idle.is_some()
    }

    /// Why to stop, if a limit is reached: `stats` now, seeding for `seeding` and without an upload
    /// for `idle`.
    pub fn reached(
        &self,
        stats: &TorrentStats,
        seeding: Duration,
        idle: Duration,
    ) -> Option<String> {
        if let (Some(limit), Some(ratio)) = (self.seed_ratio, stats.ratio())
            && ratio >= limit
        {
            return Some(format!(
                "share ratio {ratio:.2} reached the limit of {limit}"
            ));
        }
        if let Some(limit) = self.seed_time
            && seeding >= limit
        {
            return Some(format!("seeded for {}", format_duration(limit)));
        }
        if let Some(limit) = self.seed_idle
            && idle >= limit
        {
            return Some(format!("nothing uploaded for {}", format_duration(limit)));
        }
        None
    }
}

/// Seeding time so far, and time since something was last uploaded (both counted while seeding).
#[derive(Debug, Default)]
pub struct SeedClock {
    since: Option<std::time::Instant>,
    last_upload: Option<(u64, std::time::Instant)>,
}

impl SeedClock {
    /// Notes `stats` at `now`; returns (seeding for, idle for) once seeding.
    pub fn update(
        &mut self,
        stats: &TorrentStats,
        now: std::time::Instant,
    ) -> Option<(Duration, Duration)> {
        if stats.state != TorrentState::Seeding {
            return None;
        }
        let since = *self.since.get_or_insert(now);
        let uploaded = stats.all_time_uploaded;
        let last = match self.last_upload {
            Some((before, at)) if before == uploaded => at,
            _ => {
                self.last_upload = Some((uploaded, now));
                now
            }
        };
        Some((now - since, now - last))
    }
}

/// A ratio: a finite number, 0 or more.
fn parse_ratio(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a ratio like 1, 1.5 or 2.0"))
}

/// `1h30m`, `45m`, `20s`.
fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Flags shared by `add` and `seed`.
#[derive(Debug, clap::Args)]
struct Common {
    /// A peer to connect to, `HOST:PORT`; may be repeated (on top of those from trackers, the DHT and
    /// PEX).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// The TCP port to accept peers on (0: any free port).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// An IPv6 address to accept peers on too, same port (default: all of them, `::`, when `--bind`
    /// is `0.0.0.0`).
    #[arg(long, value_name = "ADDR")]
    bind6: Option<std::net::Ipv6Addr>,
    /// Accept no IPv6 peers.
    #[arg(long, conflicts_with = "bind6")]
    no_ipv6: bool,
    /// Most connections in all, every torrent together.
    #[arg(long, default_value_t = 400)]
    max_connections: usize,
    /// Most peers per torrent.
    #[arg(long, default_value_t = 50)]
    max_peers: usize,
    /// Download limit in bytes per second, like 500K or 2M (default: unlimited).
    #[arg(long, value_name = "RATE", value_parser = format::parse_size)]
    download_limit: Option<u64>,
    /// Upload limit in bytes per second, like 500K or 2M (default: unlimited).
    #[arg(long, value_name = "RATE", value_parser = format::parse_size)]
    upload_limit: Option<u64>,
    /// Where torrents and resume data are kept between runs (default: `$XDG_DATA_HOME/shoal`, else
    /// `~/.local/share/shoal`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Download nothing from web seeds (HTTP servers a torrent or magnet link names, BEP 19).
    #[arg(long)]
    no_web_seeds: bool,
    /// Message stream encryption for peer connections.
    #[arg(long, value_enum, default_value_t = EncryptionArg::Enabled)]
    encryption: EncryptionArg,
    #[command(flatten)]
    dht: DhtArgs,
}

/// `--encryption`: message stream encryption (MSE/PE) for peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EncryptionArg {
    /// Plaintext only: peers that require encryption are out of reach.
    Disabled,
    /// Plaintext or encrypted, whichever a peer wants: dial plaintext first, retry encrypted when a
    /// peer hangs up.
    Enabled,
    /// Encrypted first (RC4 when the peer agrees), plaintext as the fallback.
    Preferred,
    /// RC4 for every connection; peers that cannot are dropped.
    Required,
}

impl From<EncryptionArg> for shoal_session::Encryption {
    fn from(arg: EncryptionArg) -> Self {
        match arg {
            EncryptionArg::Disabled => Self::Disabled,
            EncryptionArg::Enabled => Self::Enabled,
            EncryptionArg::Preferred => Self::Preferred,
            EncryptionArg::Required => Self::Required,
        }
    }
}

impl Common {
    /// The session settings these flags ask for.
    fn config(&self) -> SessionConfig {
        let listen = SocketAddr::new(self.bind, self.port);
        let state_dir = state_dir(self.state_dir.as_deref());
        let default_v6 = self.bind.is_unspecified() && self.bind.is_ipv4();
        SessionConfig {
            listen,
            listen_v6: self
                .bind6
                .or(default_v6.then_some(std::net::Ipv6Addr::UNSPECIFIED))
                .filter(|_| !self.no_ipv6),
            limits: shoal_session::Limits {
                max_connections: self.max_connections,
                max_peers_per_torrent: self.max_peers,
                ..shoal_session::Limits::default()
            },
            dht: self.dht.node_config(listen, state_dir.as_deref()),
            state_dir,
            download_limit: self.download_limit,
            upload_limit: self.upload_limit,
            web_seeds: !self.no_web_seeds,
            encryption: self.encryption.into(),
            ..SessionConfig::default()
        }
    }
}

/// The state directory: the flag, else the XDG data directory.
pub fn state_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data.join("shoal"))
}

pub fn add(args: &AddArgs) -> Result<()> {
    let source = Source::read(&args.source)?;
    if !args.headless && std::io::stdout().is_terminal() {
        let defaults = crate::tui::AddDefaults {
            save_path: args.output.clone(),
            peers: args.common.peers.clone(),
            sequential: args.sequential,
            seed_limits: args.limits.clone(),
            move_to: args.move_to.clone(),
        };
        return crate::cmd::open::ui(args.common.config(), Some(source), defaults);
    }
    let mode = if args.seed || args.limits.any() {
        Mode::DownloadThenSeed
    } else {
        Mode::Download
    };
    run(
        source,
        &args.output,
        &args.common,
        Run {
            mode,
            limits: &args.limits,
            metadata_timeout: args.timeout.map(Duration::from_secs),
            sequential: args.sequential,
            move_to: args.move_to.clone(),
        },
    )
}

pub fn seed(args: &SeedArgs) -> Result<()> {
    if !args.data.is_dir() {
        bail!(BadInput(format!(
            "{} is not a directory",
            args.data.display()
        )));
    }
    let file = args.file.display().to_string();
    run(
        Source::read(&file)?,
        &args.data,
        &args.common,
        Run {
            mode: Mode::Seed,
            limits: &args.limits,
            metadata_timeout: None,
            sequential: false,
            move_to: None,
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Exit 0 once complete and verified.
    Download,
    /// Download, then seed until a signal or a seeding limit.
    DownloadThenSeed,
    /// Verify existing data, then seed until a signal or a seeding limit.
    Seed,
}

/// How a headless run goes.
struct Run<'a> {
    mode: Mode,
    limits: &'a SeedLimits,
    /// Give up on a magnet link's metadata after this long.
    metadata_timeout: Option<Duration>,
    /// Download in order.
    sequential: bool,
    /// Where to move the data once it is complete.
    move_to: Option<PathBuf>,
}

fn run(source: Source, dir: &Path, common: &Common, how: Run<'_>) -> Result<()> {
    let Run {
        mode,
        limits,
        metadata_timeout,
        sequential,
        mut move_to,
    } = how;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let session = Session::new(common.config()).await?;
        tracing::info!(listen = %session.local_addr(), "listening for peers");
        let handle = source.add(&session, dir, &common.peers)?;
        if sequential {
            handle.set_sequential(true).await;
        }
        let mut stats = handle.stats();
        let mut printer = Printer::new();
        let mut clock = SeedClock::default();
        let mut done_seeding = None;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let give_up = async {
            match metadata_timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(give_up);
        let outcome = loop {
            tokio::select! {
                () = &mut give_up => {
                    let now = stats.borrow().clone();
                    if now.metadata.is_some() {
                        break Err(anyhow::anyhow!(
                            "no metadata after {} s: {}",
                            metadata_timeout.unwrap_or_default().as_secs(),
                            format::metadata_status(&now)
                        ));
                    }
                }
                changed = stats.changed() => {
                    if changed.is_err() {
                        break Err(anyhow::anyhow!("the torrent stopped unexpectedly"));
                    }
                    let now = stats.borrow_and_update().clone();
                    printer.show(&now);
                    if now.state == TorrentState::Error {
                        break Err(anyhow::anyhow!(now.error.unwrap_or_default()));
                    }
                    if mode == Mode::Seed && now.state == TorrentState::Downloading {
                        break Err(BadInput(format!(
                            "the data in {} is incomplete ({} of {} pieces): use `add` to download the rest",
                            dir.display(), now.pieces_have, now.pieces_total
                        )).into());
                    }
                    if now.state == TorrentState::Seeding
                        && let Some(to) = move_to.take()
                    {
                        printer.finish();
                        match session.move_data(handle.info_hash(), &to).await {
                            Ok(to) => println!("moved the data to {}", to.display()),
                            Err(e) => break Err(anyhow::anyhow!(e)),
                        }
                    }
                    if mode == Mode::Download && now.state == TorrentState::Seeding {
                        break Ok(());
                    }
                    if let Some((seeding, idle)) = clock.update(&now, std::time::Instant::now())
                        && let Some(why) = limits.reached(&now, seeding, idle)
                    {
                        done_seeding = Some(why);
                        break Ok(());
                    }
                }
                () = &mut stop => break Ok(()),
            }
        };
        printer.finish();
        if let Some(why) = done_seeding {
            println!("done seeding: {why}");
        }
        session.shutdown().await;
        outcome
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
    tracing::info!("stopping");
}

/// Progress output: a redrawn line on a terminal, a line every few seconds (and on each state change)
/// otherwise.
struct Printer {
    terminal: bool,
    last_line: Option<std::time::Instant>,
    last_state: Option<TorrentState>,
}

impl Printer {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last_line: None,
            last_state: None,
        }
    }

    fn show(&mut self, stats: &TorrentStats) {
        let line = if stats.metadata.is_some() {
            format!(
                "{} {}",
                state_name(stats.state),
                format::metadata_status(stats)
            )
        } else {
            self.progress_line(stats)
        };
        if self.terminal {
            eprint!("\r{line:<90}");
            return;
        }
        let state_changed = self.last_state != Some(stats.state);
        let due = self
            .last_line
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
        if state_changed || due {
            println!("{line}");
            self.last_line = Some(std::time::Instant::now());
            self.last_state = Some(stats.state);
        }
    }

    fn progress_line(&self, stats: &TorrentStats) -> String {
        format!(
            "{} {:>5.1}% {} / {}  down {}/s  up {}/s  peers {}",
            state_name(stats.state),
            stats.progress() * 100.0,
            format::size(stats.bytes_have),
            format::size(stats.bytes_total),
            format::size(stats.download_rate),
            format::size(stats.upload_rate),
            stats.peers.len(),
        )
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn state_name(state: TorrentState) -> &'static str {
    match state {
        TorrentState::FetchingMetadata => "metadata   ",
        TorrentState::Checking => "checking   ",
        TorrentState::Downloading => "downloading",
        TorrentState::Seeding => "seeding    ",
        TorrentState::Paused => "paused     ",
        TorrentState::Stalled => "stalled    ",
        TorrentState::Moving => "moving     ",
        TorrentState::Error => "error      ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeding(bytes_have: u64, all_time_uploaded: u64) -> TorrentStats {
        TorrentStats {
            state: TorrentState::Seeding,
            bytes_have,
            all_time_uploaded,
            ..TorrentStats::default()
        }
    }

    #[test]
    fn each_seeding_limit_stops_at_its_value_and_not_before() {
        let ratio = SeedLimits {
            seed_ratio: Some(1.5),
            ..SeedLimits::default()
        };
        let zero = Duration::ZERO;
        assert_eq!(ratio.reached(&seeding(1000, 1499), zero, zero), None);
        assert_eq!(
            ratio.reached(&seeding(1000, 1500), zero, zero).as_deref(),
            Some("share ratio 1.50 reached the limit of 1.5")
        );
        let time = SeedLimits {
            seed_time: Some(Duration::from_secs(5400)),
            ..SeedLimits::default()
        };
        assert_eq!(
            time.reached(&seeding(1000, 0), Duration::from_secs(5399), zero),
            None
        );
        assert_eq!(
            time.reached(&seeding(1000, 0), Duration::from_secs(5400), zero)
                .as_deref(),
            Some("seeded for 1h30m")
        );
        let idle = SeedLimits {
            seed_idle: Some(Duration::from_secs(60)),
            ..SeedLimits::default()
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(
            idle.reached(&seeding(1000, 0), hour, Duration::from_secs(59)),
            None
        );
        assert_eq!(
            idle.reached(&seeding(1000, 0), hour, Duration::from_secs(60))
                .as_deref(),
            Some("nothing uploaded for 1m")
        );
        // No limit, no stop; no data, no ratio.
        assert_eq!(
            SeedLimits::default().reached(&seeding(1000, 9999), hour, hour),
            None
        );
        assert_eq!(ratio.reached(&seeding(0, 0), zero, zero), None);
    }

    #[test]
    fn the_seed_clock_starts_when_seeding_and_restarts_idle_on_each_upload() {
        let start = std::time::Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let mut clock = SeedClock::default();
        let downloading = TorrentStats {
            state: TorrentState::Downloading,
            ..TorrentStats::default()
        };
        assert_eq!(clock.update(&downloading, at(0)), None);
        let secs = |a, b| Some((Duration::from_secs(a), Duration::from_secs(b)));
        assert_eq!(clock.update(&seeding(10, 0), at(10)), secs(0, 0));
        assert_eq!(clock.update(&seeding(10, 0), at(15)), secs(5, 5));
        assert_eq!(clock.update(&seeding(10, 7), at(20)), secs(10, 0));
        assert_eq!(clock.update(&seeding(10, 7), at(50)), secs(40, 30));
    }

    #[test]
    fn ratios_parse_as_finite_numbers_of_zero_or_more() {
        assert_eq!(parse_ratio("1"), Ok(1.0));
        assert_eq!(parse_ratio(" 2.5 "), Ok(2.5));
        for bad in ["", "-1", "NaN", "inf", "one"] {
            assert!(parse_ratio(bad).is_err(), "{bad:?}");
        }
    }
}
