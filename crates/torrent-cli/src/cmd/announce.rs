//! `torrent-cli announce FILE|MAGNET [--scrape]`: asks every tracker of a torrent, all tiers at once,
//! and prints what each one answered — the first thing to check when a download "finds no peers".

use std::time::Duration;

use anyhow::{Context, Result, bail};
use shoal_metainfo::{InfoHash, Magnet, Metainfo, PeerId};
use shoal_tracker::{AnnounceEvent, AnnounceRequest, ClientConfig, TrackerClient};

use crate::BadInput;

/// Arguments of `torrent-cli announce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .torrent file or a magnet link with `tr=` trackers.
    torrent: String,
    /// Ask for swarm counts (scrape) instead of announcing.
    #[arg(long)]
    scrape: bool,
    /// The port to announce (where peers would reach us).
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// How long each tracker may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    tracker_timeout: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let (info_hash, tiers, left) = target(&args.torrent)?;
    if tiers.is_empty() {
        bail!(BadInput("the torrent lists no trackers".into()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let client = TrackerClient::new(ClientConfig::with_timeout(Duration::from_secs(
        args.tracker_timeout,
    )))
    .context("starting the tracker client")?;
    let mut any_ok = false;
    if args.scrape {
        let results = runtime.block_on(client.scrape_all(&tiers, &[info_hash]));
        for result in results {
            println!("tier {} {}", result.tier + 1, result.url);
            match result.result {
                Ok(reply) => {
                    any_ok = true;
                    match reply.files.iter().find(|(hash, _)| *hash == info_hash) {
                        Some((_, stats)) => println!(
                            "  seeders {}  leechers {}  completed {}",
                            stats.complete, stats.incomplete, stats.downloaded
                        ),
                        None => println!("  the tracker does not know this torrent"),
                    }
                }
                Err(e) => println!("  error: {e:#}"),
            }
        }
    } else {
        let mut request = AnnounceRequest::new(
            info_hash,
            PeerId::with_prefix(b"-SH0100-", *b"announcetest"),
            args.port,
        );
        request.left = left;
        request.event = AnnounceEvent::None;
        let results = runtime.block_on(client.announce_all(&tiers, &request));
        for result in results {
            println!("tier {} {}", result.tier + 1, result.url);
            match result.result {
                Ok(reply) => {
                    any_ok = true;
                    let interval = reply
                        .interval
                        .map_or_else(|| "-".into(), |i| format!("{} s", i.as_secs()));
                    let count = |n: Option<u32>| n.map_or_else(|| "-".into(), |n| n.to_string());
                    println!(
                        "  interval {interval}  seeders {}  leechers {}  peers {}",
                        count(reply.complete),
                        count(reply.incomplete),
                        reply.peers.len()
                    );
                    if let Some(warning) = reply.warning {
                        println!("  warning: {}", shoal_metainfo::text(warning.as_bytes()));
                    }
                    for peer in reply.peers {
                        println!("  {peer}");
                    }
                }
                Err(e) => println!("  error: {e:#}"),
            }
        }
    }
    if !any_ok {
        bail!("no tracker answered");
    }
    Ok(())
}

/// The info-hash, tracker tiers and bytes left (the whole size when known) of a file or magnet.
fn target(arg: &str) -> Result<(InfoHash, Vec<Vec<String>>, u64)> {
    if arg.starts_with("magnet:") {
        let magnet: Magnet = arg.parse()?;
        let hash = magnet
            .info_hashes
            .wire()
            .ok_or_else(|| BadInput("the magnet has no v1 (btih) info-hash".into()))?;
        // BEP 12 does not apply to magnets: each `tr` is its own tier.
        let tiers = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
        return Ok((hash, tiers, magnet.exact_length.unwrap_or(0)));
    }
    let bytes = std::fs::read(arg).with_context(|| format!("reading {arg}"))?;
    let torrent = Metainfo::from_bytes(&bytes).with_context(|| format!("parsing {arg}"))?;
    let hash = torrent
        .info_hashes()
        .wire()
        .ok_or_else(|| BadInput("the torrent has no info-hash to announce".into()))?;
    let tiers = torrent
        .trackers()
        .into_iter()
        .map(|tier| tier.into_iter().map(str::to_owned).collect())
        .collect();
    Ok((hash, tiers, torrent.info.total_size()))
}
