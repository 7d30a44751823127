//! `torrent-cli add FILE --headless` and `torrent-cli seed FILE --data DIR`: the engine without the
//! terminal UI, printing progress lines (a progress bar on a terminal).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shoal_session::{AddTorrent, Session, SessionConfig, TorrentState, TorrentStats};

use crate::{BadInput, format};

/// Arguments of `torrent-cli add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The .torrent file (magnet links come with their own issue).
    file: PathBuf,
    /// The download directory.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Print progress lines instead of opening the terminal UI (the default when stdout is not a
    /// terminal).
    #[arg(long)]
    headless: bool,
    /// Keep seeding after the download completes, until SIGINT or SIGTERM.
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    common: Common,
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
    common: Common,
}

/// Flags shared by `add` and `seed`.
#[derive(Debug, clap::Args)]
struct Common {
    /// A peer to connect to, `HOST:PORT`; may be repeated (trackers and DHT come in later versions).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// The TCP port to accept peers on (0: any free port).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
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
}

impl Common {
    /// The session settings these flags ask for.
    fn config(&self) -> SessionConfig {
        SessionConfig {
            listen: SocketAddr::new(self.bind, self.port),
            max_peers_per_torrent: self.max_peers,
            state_dir: state_dir(self.state_dir.as_deref()),
            download_limit: self.download_limit,
            upload_limit: self.upload_limit,
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
    if !args.headless && std::io::stdout().is_terminal() {
        let torrent = std::fs::read(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        shoal_metainfo::Metainfo::from_bytes(&torrent)
            .with_context(|| format!("parsing {}", args.file.display()))?;
        let defaults = crate::tui::AddDefaults {
            save_path: args.output.clone(),
            peers: args.common.peers.clone(),
        };
        return crate::cmd::open::ui(args.common.config(), Some(torrent), defaults);
    }
    run(
        &args.file,
        &args.output,
        &args.common,
        if args.seed {
            Mode::DownloadThenSeed
        } else {
            Mode::Download
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
    run(&args.file, &args.data, &args.common, Mode::Seed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Exit 0 once complete and verified.
    Download,
    /// Download, then seed until a signal.
    DownloadThenSeed,
    /// Verify existing data, then seed until a signal.
    Seed,
}

fn run(file: &Path, dir: &Path, common: &Common, mode: Mode) -> Result<()> {
    let torrent = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // Parse once here so a bad file is a usage error (exit 2) with the field and offset.
    shoal_metainfo::Metainfo::from_bytes(&torrent)
        .with_context(|| format!("parsing {}", file.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let session = Session::new(common.config()).await?;
        tracing::info!(listen = %session.local_addr(), "listening for peers");
        let handle = session.add_torrent(AddTorrent {
            torrent,
            save_path: dir.to_path_buf(),
            peers: common.peers.clone(),
        })?;
        let mut stats = handle.stats();
        let mut printer = Printer::new();
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let outcome = loop {
            tokio::select! {
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
                    if mode == Mode::Download && now.state == TorrentState::Seeding {
                        break Ok(());
                    }
                }
                () = &mut stop => break Ok(()),
            }
        };
        printer.finish();
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
        let line = format!(
            "{} {:>5.1}% {} / {}  down {}/s  up {}/s  peers {}",
            state_name(stats.state),
            stats.progress() * 100.0,
            format::size(stats.bytes_have),
            format::size(stats.bytes_total),
            format::size(stats.download_rate),
            format::size(stats.upload_rate),
            stats.peers.len(),
        );
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

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn state_name(state: TorrentState) -> &'static str {
    match state {
        TorrentState::Checking => "checking   ",
        TorrentState::Downloading => "downloading",
        TorrentState::Seeding => "seeding    ",
        TorrentState::Paused => "paused     ",
        TorrentState::Error => "error      ",
    }
}
