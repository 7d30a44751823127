//! `torrent-cli demo`: Shoal working with no internet. It writes a generated payload to a temporary
//! directory, starts a few seeder sessions on loopback that hold it, and downloads it in another
//! session, watched in the terminal UI (or, with `--headless`, as progress lines that end at 100 %).
//!
//! Loopback moves a small payload in well under a second, too fast to watch, so the seeders' upload is
//! limited by the engine's own rate limits to `--rate` bytes per second in total (`--rate 0`: no
//! limit). The temporary data is removed on exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shoal_session::{AddTorrent, Encryption, Session, SessionConfig, TorrentHandle, TorrentState};

use crate::cmd::download::Source;
use crate::tui::{self, AddDefaults, text};
use crate::{BadInput, format};

/// Arguments of `torrent-cli demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the generated payload (K, M or G suffix).
    #[arg(long, default_value = "64M", value_parser = format::parse_size)]
    size: u64,
    /// How many seeders hold the payload.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    seeders: u16,
    /// The seeders' total upload rate in bytes per second, split evenly among them (K, M or G suffix;
    /// 0: as fast as loopback goes).
    #[arg(long, default_value = "4M", value_parser = format::parse_size)]
    rate: u64,
    /// Print progress lines instead of opening the UI, and exit 0 once the download is complete and
    /// verified.
    #[arg(long)]
    pub headless: bool,
}

/// The payload's files: a path and its share of `--size` in percent (the last takes the rest).
const FILES: [(&str, u64); 4] = [
    ("video.bin", 70),
    ("audio/track-01.flac", 12),
    ("audio/track-02.flac", 12),
    ("README.txt", 6),
];

/// `torrent-cli demo`.
pub fn run(args: &Args) -> Result<()> {
    if args.size < 1 << 20 || args.size > 8 << 30 {
        bail!(BadInput(format!(
            "--size {} is outside 1M..=8G",
            text::size(args.size)
        )));
    }
    let work = TempDir::new()?;
    let source = work.path.join("seed");
    let content = source.join("shoal-demo");
    if !args.headless {
        eprintln!(
            "demo: writing {} of generated data to {}",
            text::size(args.size),
            work.path.display()
        );
    }
    write_payload(&content, args.size)?;
    let torrent = shoal_metainfo::TorrentBuilder::new(&content)
        .piece_length(piece_length(args.size))
        .comment("torrent-cli demo payload")
        .build()
        .context("hashing the demo payload")?
        .bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(swarm(args, &work.path, &source, torrent));
    // Sockets and tasks go with the runtime before the data goes with `work`.
    drop(runtime);
    result
}

async fn swarm(args: &Args, work: &Path, source: &Path, torrent: Vec<u8>) -> Result<()> {
    let mut seeders = Vec::new();
    let mut seed_handles = Vec::new();
    let per_seeder = (args.rate > 0).then(|| (args.rate / u64::from(args.seeders)).max(16 * 1024));
    for i in 0..args.seeders {
        let config = SessionConfig {
            upload_limit: per_seeder,
            // The first seeder takes encrypted connections only: the download reaches it over MSE
            // (its row in the Peers view is flagged E).
            encryption: if i == 0 {
                Encryption::Required
            } else {
                Encryption::default()
            },
            ..loopback(u64::from(i) + 1)
        };
        let session = Session::new(config).await?;
        seed_handles.push(session.add_torrent(AddTorrent {
            torrent: torrent.clone(),
            save_path: source.to_path_buf(),
            peers: vec![],
        })?);
        seeders.push(session);
    }
    for handle in &seed_handles {
        wait_seeding(handle).await?;
    }
    let peers = seeders.iter().map(Session::local_addr).collect();
    let leecher = Session::new(loopback(100)).await?;
    let defaults = AddDefaults {
        save_path: work.join("download"),
        peers,
        sequential: false,
        seed_limits: Default::default(),
        move_to: None,
    };
    let (handle, meta) = tui::add_source(&leecher, Source::Torrent(torrent), &defaults)?;
    let result = if args.headless {
        headless(&handle).await
    } else {
        tui::run(&leecher, vec![(handle, meta)], defaults).await
    };
    if !args.headless {
        eprintln!("demo: stopping the swarm and removing {}", work.display());
    }
    leecher.shutdown().await;
    for seeder in seeders {
        seeder.shutdown().await;
    }
    result
}

fn loopback(seed: u64) -> SessionConfig {
    SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed,
        ..SessionConfig::default()
    }
}

async fn wait_seeding(handle: &TorrentHandle) -> Result<()> {
    let mut stats = handle.stats();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            {
                let now = stats.borrow_and_update();
                match now.state {
                    TorrentState::Seeding => return Ok(()),
                    TorrentState::Error => bail!(
                        "a demo seeder failed: {}",
                        now.error.as_deref().unwrap_or("unknown error")
                    ),
                    _ => {}
                }
            }
            stats.changed().await.context("a demo seeder stopped")?;
        }
    })
    .await
    .context("the demo seeders took too long to check their data")?
}

/// Progress lines until complete: exit 0 then, 1 on an error or a signal.
async fn headless(handle: &TorrentHandle) -> Result<()> {
    let mut stats = handle.stats();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::pin!(stop);
    loop {
        {
            let now = stats.borrow_and_update();
            // The first snapshot, before the check, knows only the name.
            if now.bytes_total == 0 {
                drop(now);
                stats.changed().await.context("the download stopped")?;
                continue;
            }
            println!(
                "demo: {:<11} {:>6}  {} / {}  down {}  peers {}",
                format!("{:?}", now.state).to_lowercase(),
                text::percent(now.bytes_have, now.bytes_total),
                text::size(now.bytes_have),
                text::size(now.bytes_total),
                text::rate(now.download_rate),
                now.peers.len(),
            );
            match now.state {
                TorrentState::Seeding if now.is_complete() => {
                    if now.hash_failures > 0 {
                        bail!("{} pieces failed their hash check", now.hash_failures);
                    }
                    return Ok(());
                }
                TorrentState::Error => bail!(
                    "the download failed: {}",
                    now.error.as_deref().unwrap_or("unknown error")
                ),
                _ => {}
            }
        }
        tokio::select! {
            changed = stats.changed() => changed.context("the download stopped")?,
            () = &mut stop => bail!("interrupted"),
        }
    }
}

/// A piece length that gives the pieces map a few hundred pieces: a power of two between 16 KiB and
/// 4 MiB.
fn piece_length(size: u64) -> u64 {
    let target = (size / 256).max(1);
    (1u64 << target.ilog2()).clamp(16 << 10, 4 << 20)
}

/// Writes the payload: pseudo-random bytes (incompressible, different in every piece).
fn write_payload(content: &Path, size: u64) -> Result<()> {
    use std::io::Write;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut left = size;
    for (i, (name, percent)) in FILES.iter().enumerate() {
        let length = if i == FILES.len() - 1 {
            left
        } else {
            size * percent / 100
        };
        left -= length;
        let path = content.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(content))
            .with_context(|| format!("creating {}", content.display()))?;
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut written = 0;
        while written < length {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            let n = (length - written).min(8) as usize;
            out.write_all(&bytes[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            written += n as u64;
        }
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A temporary directory removed on drop (also when unwinding from a panic).
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("shoal-demo-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("clearing {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_lengths_give_a_few_hundred_pieces() {
        assert_eq!(piece_length(64 << 20), 256 << 10);
        assert_eq!(piece_length(1 << 20), 16 << 10);
        assert_eq!(piece_length(100 << 20), 256 << 10);
        assert_eq!(piece_length(8 << 30), 4 << 20);
    }
}
