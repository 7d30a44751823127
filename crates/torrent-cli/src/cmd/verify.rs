//! `torrent-cli verify FILE --data DIR`: rechecks downloaded data against the torrent's piece hashes.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use shoal_metainfo::Metainfo;
use shoal_storage::{Layout, PieceCheck, Storage, StorageOptions};

use crate::BadInput;
use crate::progress::ProgressBar;

/// Arguments of `torrent-cli verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .torrent file.
    file: PathBuf,
    /// The download directory holding the torrent's files (for a multi-file torrent, the directory that
    /// contains the torrent's own folder).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Hashing threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

/// Rechecks every piece and prints `N good, N bad, N missing` and the bad pieces. Fails (exit 1) unless
/// every piece is good.
pub fn run(args: &Args) -> Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let torrent =
        Metainfo::from_bytes(&bytes).with_context(|| format!("parsing {}", args.file.display()))?;
    let info = &torrent.info;
    if !info.version.has_v1() {
        bail!(BadInput(
            "verify needs v1 piece hashes; v2-only torrents are not supported yet".into()
        ));
    }
    let hashes: Vec<[u8; 20]> = (0..info.piece_count())
        .map(|i| {
            *info
                .piece_hash(i)
                .expect("the parser checked the piece count")
        })
        .collect();
    let layout = Layout::from_info(info)?;
    if !args.data.is_dir() {
        bail!(BadInput(format!(
            "{} is not a directory",
            args.data.display()
        )));
    }
    // Never create anything while verifying: Storage only creates files on write.
    let storage = Storage::new(&args.data, layout, StorageOptions::default())?;
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let total = storage.layout().total_length();
    let bar = ProgressBar::new(std::io::stderr().is_terminal());
    let verdicts = storage.recheck_v1(&hashes, None, threads, &|progress| {
        bar.update(progress.bytes, total)
    })?;
    bar.finish();

    let count = |wanted: PieceCheck| verdicts.iter().filter(|v| **v == wanted).count();
    let (good, bad, missing) = (
        count(PieceCheck::Good),
        count(PieceCheck::Bad),
        count(PieceCheck::Missing),
    );
    println!("{good} good, {bad} bad, {missing} missing");
    if bad > 0 {
        let indexes: Vec<String> = verdicts
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == PieceCheck::Bad)
            .map(|(i, _)| i.to_string())
            .collect();
        println!("bad pieces: {}", indexes.join(" "));
    }
    if bad > 0 || missing > 0 {
        bail!(Incomplete { bad, missing });
    }
    Ok(())
}

/// The data does not match the torrent (exit 1: a fact about the data, not a usage error).
#[derive(Debug)]
struct Incomplete {
    bad: usize,
    missing: usize,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bad and {} missing pieces", self.bad, self.missing)
    }
}

impl std::error::Error for Incomplete {}
