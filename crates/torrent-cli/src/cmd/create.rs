//! `torrent-cli create PATH -t URL... [-o OUT] [--piece-size N] [--private] [--web-seed URL] [--v2|--hybrid]`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use shoal_metainfo::{CreateError, MetaVersion, TorrentBuilder};

use crate::progress::ProgressBar;
use crate::{BadInput, format};

/// Arguments of `torrent-cli create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file or directory to share.
    path: PathBuf,
    /// A tracker URL; repeat for more tiers, or separate URLs of one tier with commas (BEP 12).
    #[arg(short = 't', long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Where to write the .torrent (default: NAME.torrent in the current directory; `-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Piece size: a power of two from 16K to 2G, like 262144, 256K or 4M (default: about 1,000–2,000
    /// pieces).
    #[arg(long, value_name = "N", value_parser = format::parse_size)]
    piece_size: Option<u64>,
    /// Mark the torrent private (BEP 27): peers from its trackers only.
    #[arg(long)]
    private: bool,
    /// A web seed URL (BEP 19); may be repeated.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Create a v2-only torrent (BEP 52).
    #[arg(long, conflicts_with = "hybrid")]
    v2: bool,
    /// Create a hybrid v1 + v2 torrent (BEP 52), loadable by v1-only and v2 clients.
    #[arg(long)]
    hybrid: bool,
    /// A comment to embed.
    #[arg(short = 'c', long)]
    comment: Option<String>,
    /// The torrent's name (default: the file or directory name).
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// Leave out the creation date, so the same input gives the same file.
    #[arg(long)]
    no_date: bool,
    /// Hashing threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Overwrite OUT if it exists.
    #[arg(short = 'f', long)]
    force: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let version = match (args.v2, args.hybrid) {
        (true, _) => MetaVersion::V2,
        (_, true) => MetaVersion::Hybrid,
        _ => MetaVersion::V1,
    };
    let mut builder = TorrentBuilder::new(&args.path)
        .version(version)
        .private(args.private)
        .threads(args.threads)
        .created_by(concat!(
            "torrent-cli/",
            env!("CARGO_PKG_VERSION"),
            " (Shoal)"
        ));
    for tier in &args.trackers {
        builder = builder.tracker_tier(tier.split(',').map(str::trim).filter(|u| !u.is_empty()));
    }
    for seed in &args.web_seeds {
        builder = builder.web_seed(seed);
    }
    if let Some(size) = args.piece_size {
        builder = builder.piece_length(size);
    }
    if let Some(comment) = &args.comment {
        builder = builder.comment(comment);
    }
    if let Some(name) = &args.name {
        builder = builder.name(name);
    }
    if !args.no_date {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        builder = builder.creation_date(Some(now as i64));
    }

    let started = Instant::now();
    let bar = ProgressBar::new(std::io::stderr().is_terminal());
    let created = builder
        .build_with_progress(|progress| bar.update(progress.hashed, progress.total))
        .map_err(|err| match err {
            CreateError::PieceLength(_)
            | CreateError::BadName { .. }
            | CreateError::NoData(_)
            | CreateError::TooLarge(_) => anyhow::Error::new(BadInput(err.to_string())),
            err => anyhow::Error::new(err),
        })?;
    bar.finish();
    let elapsed = started.elapsed();

    let output = match &args.output {
        Some(path) => path.clone(),
        None => {
            let torrent = shoal_metainfo::Metainfo::from_bytes(&created.bytes)
                .context("reading back the torrent")?;
            PathBuf::from(format!(
                "{}.torrent",
                shoal_metainfo::sanitize_component(torrent.info.name)
            ))
        }
    };
    if output.as_os_str() == "-" {
        std::io::stdout()
            .write_all(&created.bytes)
            .context("writing the torrent to stdout")?;
    } else {
        write_file(&output, &created.bytes, args.force)?;
    }
    let rate = created.total_size as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6;
    // Progress and summary go to stderr when the torrent itself goes to stdout.
    let mut summary: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    writeln!(summary, "created {}", output.display())?;
    if let Some(v1) = created.info_hashes.v1 {
        writeln!(summary, "info-hash v1: {v1}")?;
    }
    if let Some(v2) = created.info_hashes.v2 {
        writeln!(summary, "info-hash v2: {v2}")?;
    }
    writeln!(
        summary,
        "{} in {} files, {} pieces of {}",
        format::size(created.total_size),
        created.file_count,
        created.piece_count,
        format::piece_size(created.piece_length)
    )?;
    writeln!(
        summary,
        "hashed {:.1} MB in {:.2} s: {rate:.1} MB/s",
        created.total_size as f64 / 1e6,
        elapsed.as_secs_f64()
    )?;
    Ok(())
}

fn write_file(path: &std::path::Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::Error::new(BadInput(format!(
                "{} exists; use --force to overwrite it",
                path.display()
            )))
        } else {
            anyhow::Error::new(err).context(format!("creating {}", path.display()))
        }
    })?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
