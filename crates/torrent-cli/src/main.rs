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

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Shoal: a BitTorrent client for people who live in the terminal.
#[derive(Debug, Parser)]
#[command(name = "torrent-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (repeat for more); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// Logs to stderr through tracing: warnings by default, `-v` info, `-vv` debug, `RUST_LOG` wins.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download a torrent (headless for now): progress lines, exit 0 when complete and verified.
    Add(cmd::download::AddArgs),
    /// Verify existing data, then seed it until SIGINT or SIGTERM.
    Seed(cmd::download::SeedArgs),
    /// Show what a .torrent file or magnet link holds: name, info-hashes, size, pieces, files, trackers.
    Info(cmd::info::Args),
    /// Create a .torrent from a file or directory.
    Create(cmd::create::Args),
    /// Recheck downloaded data against a torrent: prints `N good, N bad, N missing`; exit 1 unless all good.
    Verify(cmd::verify::Args),
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
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Add(args) => cmd::download::add(&args),
        Command::Seed(args) => cmd::download::seed(&args),
        Command::Info(args) => cmd::info::run(&args),
        Command::Create(args) => cmd::create::run(&args),
        Command::Verify(args) => cmd::verify::run(&args),
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
