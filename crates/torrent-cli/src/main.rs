//! `torrent-cli`: the Shoal BitTorrent client's command line and terminal UI.

use clap::Parser;

/// Shoal: a BitTorrent client for people who live in the terminal.
#[derive(Debug, Parser)]
#[command(name = "torrent-cli", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!("no commands are implemented yet; see README.md for the status of each feature")
}
