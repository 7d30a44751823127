//! `torrent-cli open FILE.torrent [-o DIR] [--peer ADDR]…` and bare `torrent-cli`: the terminal UI on
//! the saved session (the torrents of earlier runs, from the state directory).

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use shoal_session::{Session, SessionConfig};

use crate::BadInput;
use crate::cmd::download::{DhtArgs, EncryptionArg, SeedLimits, Source, state_dir};
use crate::tui::{self, AddDefaults, meta::TorrentMeta};

/// Arguments of `torrent-cli open`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .torrent file (or magnet link) to download, or seed when its data is already in the output
    /// directory.
    source: String,
    /// The download directory; torrents added from the UI go there too.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// A peer to connect to, `HOST:PORT`; may be repeated (on top of those from trackers, the DHT and
    /// PEX).
    #[arg(long = "peer", value_name = "ADDR")]
    peers: Vec<SocketAddr>,
    /// Download in order, so a media player can play a file while it downloads (`o` in the UI).
    #[arg(long)]
    sequential: bool,
    /// The TCP port to accept peers on (0: any free port).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Where torrents and resume data are kept between runs (default: `$XDG_DATA_HOME/shoal`, else
    /// `~/.local/share/shoal`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Message stream encryption for peer connections.
    #[arg(long, value_enum, default_value_t = EncryptionArg::Enabled)]
    encryption: EncryptionArg,
    /// Once the download is complete and verified, move the data to this directory (`m` moves it by
    /// hand).
    #[arg(long, value_name = "DIR")]
    move_to: Option<PathBuf>,
    #[command(flatten)]
    limits: SeedLimits,
    #[command(flatten)]
    dht: DhtArgs,
}

/// `torrent-cli open`.
pub fn run(args: &Args) -> Result<()> {
    // Read before touching the terminal, so a bad file is a one-line usage error (exit 2).
    let source = Source::read(&args.source)?;
    let listen = SocketAddr::new(args.bind, args.port);
    let state_dir = state_dir(args.state_dir.as_deref());
    let config = SessionConfig {
        listen,
        listen_v6: (args.bind.is_unspecified() && args.bind.is_ipv4())
            .then_some(std::net::Ipv6Addr::UNSPECIFIED),
        dht: args.dht.node_config(listen, state_dir.as_deref()),
        state_dir,
        encryption: args.encryption.into(),
        ..SessionConfig::default()
    };
    let defaults = AddDefaults {
        save_path: args.output.clone(),
        peers: args.peers.clone(),
        sequential: args.sequential,
        seed_limits: args.limits.clone(),
        move_to: args.move_to.clone(),
    };
    ui(config, Some(source), defaults)
}

/// Bare `torrent-cli`: the UI on the saved session; with none, an empty list inviting the user to
/// press `a`.
pub fn run_empty() -> Result<()> {
    let listen = SocketAddr::from(([0, 0, 0, 0], 6881));
    let state_dir = state_dir(None);
    let config = SessionConfig {
        listen,
        listen_v6: Some(std::net::Ipv6Addr::UNSPECIFIED),
        dht: Some(shoal_dht::NodeConfig {
            bind: listen,
            state_dir: state_dir.clone(),
            ..shoal_dht::NodeConfig::default()
        }),
        state_dir,
        ..SessionConfig::default()
    };
    let defaults = AddDefaults {
        save_path: PathBuf::from("."),
        peers: Vec::new(),
        sequential: false,
        seed_limits: Default::default(),
        move_to: None,
    };
    ui(config, None, defaults)
}

/// Opens the UI on the saved session of `config.state_dir`, plus `source` if given; the entry point
/// for every command that shows the UI (`add` on a terminal calls it too).
pub(crate) fn ui(
    config: SessionConfig,
    source: Option<Source>,
    defaults: AddDefaults,
) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(BadInput(
            "the terminal UI needs a terminal: use `torrent-cli add FILE --headless` for progress lines"
                .into()
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let state = config.state_dir.clone();
        let session = Session::new(config).await?;
        let mut torrents = Vec::new();
        for restored in session.restore().context("restoring the saved session")? {
            // A saved torrent that no longer loads is skipped: the others are still worth showing.
            let Ok(handle) = restored else { continue };
            let id = handle.info_hash();
            let meta = saved_meta(state.as_deref(), &id.to_string())
                .unwrap_or_else(|| TorrentMeta::unknown(id));
            torrents.push((handle, meta));
        }
        if let Some(source) = source {
            let meta = TorrentMeta::from_source(&source)?;
            if !torrents
                .iter()
                .any(|(h, _)| h.info_hash() == meta.info_hash)
            {
                torrents.push(tui::add_source(&session, source, &defaults)?);
            }
        }
        let result = tui::run(&session, torrents, defaults).await;
        eprintln!("stopping: saving resume data and closing connections");
        session.shutdown().await;
        result
    })
}

/// A restored torrent's facts, from the `.torrent` copy the session keeps in its state directory.
fn saved_meta(state_dir: Option<&Path>, info_hash: &str) -> Option<TorrentMeta> {
    let bytes = std::fs::read(state_dir?.join(format!("{info_hash}.torrent"))).ok()?;
    TorrentMeta::from_torrent(&bytes).ok()
}
