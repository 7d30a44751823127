//! `torrent-cli`: the Shoal BitTorrent client's command line and terminal UI.
//!
//! One module per subcommand under `cmd/`; each has an `Args` struct (clap derive) and a `run` function.
//! To add a command: a module, a variant of [`Command`], and an arm in `main`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or bad input (clap's own usage errors exit 2 too).
//! Errors print as one line: `error: {err:#}`.

mod cmd;
mod format;
mod progress;
mod tui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Shoal: a BitTorrent client for people who live in the terminal.
#[derive(Debug, Parser)]
#[command(name = "torrent-cli", version, about)]
struct Cli {
    /// What to do; without one, the terminal UI opens.
    #[command(subcommand)]
    command: Option<Command>,
    /// More log output (repeat for more); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// Logs through tracing: warnings by default, `-v` info, `-vv` debug, `RUST_LOG` wins. Logs go to
/// stderr, except under the terminal UI, which owns the screen: there they go to
/// `$TMPDIR/torrent-cli-tui.log` with `-v` or `RUST_LOG`, and nowhere otherwise (the UI shows errors).
fn init_logging(verbose: u8, quiet: bool, tui: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let writer = if !tui {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr)
    } else if let Some(file) = (verbose > 0 || std::env::var_os("RUST_LOG").is_some())
        .then(|| {
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(std::env::temp_dir().join("torrent-cli-tui.log"))
                .ok()
        })
        .flatten()
    {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(file))
    } else {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::sink)
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(!tui)
        .init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download a torrent: the terminal UI on a terminal, else progress lines and exit 0 when complete
    /// and verified (or seed on with --seed).
    Add(cmd::download::AddArgs),
    /// Verify existing data, then seed it until SIGINT or SIGTERM (or a --seed-* limit).
    Seed(cmd::download::SeedArgs),
    /// Ask every tracker of a torrent (all tiers) and print each answer: peers, interval, counts or error.
    Announce(cmd::announce::Args),
    /// Show what a .torrent file or magnet link holds: name, info-hashes, size, pieces, files, trackers.
    Info(cmd::info::Args),
    /// Create a .torrent from a file or directory.
    Create(cmd::create::Args),
    /// Recheck downloaded data against a torrent: prints `N good, N bad, N missing`; exit 1 unless all good.
    Verify(cmd::verify::Args),
    /// Open the terminal UI on a .torrent file (without a command: the UI alone).
    Open(cmd::open::Args),
    /// Watch Shoal work with no internet: a generated payload, local seeders on loopback, and the UI
    /// on a download from them.
    Demo(cmd::demo::Args),
}

/// Marks an error as the user's input being wrong (exit code 2) rather than a runtime failure (1).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tui = match &cli.command {
        None | Some(Command::Open(_)) => true,
        Some(Command::Demo(args)) => !args.headless,
        Some(_) => false,
    };
    init_logging(cli.verbose, cli.quiet, tui);
    let result = match cli.command {
        None => cmd::open::run_empty(),
        Some(Command::Add(args)) => cmd::download::add(&args),
        Some(Command::Seed(args)) => cmd::download::seed(&args),
        Some(Command::Announce(args)) => cmd::announce::run(&args),
        Some(Command::Info(args)) => cmd::info::run(&args),
        Some(Command::Create(args)) => cmd::create::run(&args),
        Some(Command::Verify(args)) => cmd::verify::run(&args),
        Some(Command::Open(args)) => cmd::open::run(&args),
        Some(Command::Demo(args)) => cmd::demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit_code(&err)
        }
    }
}

/// 2 when the input was at fault (a bad torrent, magnet or argument), else 1.
fn exit_code(err: &anyhow::Error) -> ExitCode {
    let bad_input = err.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<shoal_metainfo::MetainfoError>()
            || cause.is::<shoal_metainfo::MagnetError>()
    });
    ExitCode::from(if bad_input { 2 } else { 1 })
}
