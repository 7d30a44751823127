//! `torrent-cli info FILE|MAGNET [--json]`.
//!
//! The `--json` output is one object with these fields, stable across versions (new fields may be added):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `source` | `"torrent"` or `"magnet"` | what was read |
//! | `name` | string or null | the torrent's name (a magnet's `dn`) |
//! | `info_hash_v1` | string or null | SHA-1 info-hash, 40 hex digits |
//! | `info_hash_v2` | string or null | SHA-256 info-hash, 64 hex digits |
//! | `version` | `"v1"`, `"v2"`, `"hybrid"` or null | null for a magnet |
//! | `total_size` | integer or null | bytes of content, padding excluded (a magnet's `xl`) |
//! | `piece_length` | integer or null | bytes per piece |
//! | `piece_count` | integer or null | number of pieces |
//! | `private` | bool | BEP 27 private flag |
//! | `multi_file` | bool | files live in a directory called `name` |
//! | `files` | array | `{ "path": string, "length": integer, "attr": string }` per file, padding files excluded; `path` is the sanitized relative path (with `/`), `attr` the BEP 47 flags (`x`, `h`, `l`) |
//! | `trackers` | array of arrays of strings | tracker tiers (BEP 12) |
//! | `web_seeds` | array of strings | BEP 19 `url-list` (a magnet's `ws`) |
//! | `http_seeds` | array of strings | BEP 17 `httpseeds` |
//! | `dht_nodes` | array of strings | `host:port` from `nodes` |
//! | `peers` | array of strings | a magnet's `x.pe` addresses |
//! | `creation_date` | integer or null | seconds since the Unix epoch |
//! | `created_by` | string or null | |
//! | `comment` | string or null | |
//! | `magnet` | string | a magnet link for the torrent |

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use shoal_metainfo::{Magnet, Metainfo, text};

use crate::format;

/// Arguments of `torrent-cli info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .torrent file, or a magnet URI (quote it: the shell treats `&` specially).
    #[arg(value_name = "FILE|MAGNET")]
    input: String,
    /// Print one JSON object with stable field names instead of text.
    #[arg(long)]
    json: bool,
}

/// What `info` shows; serialized as is for `--json`.
#[derive(Debug, Serialize)]
struct Report {
    source: &'static str,
    name: Option<String>,
    info_hash_v1: Option<String>,
    info_hash_v2: Option<String>,
    version: Option<&'static str>,
    total_size: Option<u64>,
    piece_length: Option<u64>,
    piece_count: Option<u64>,
    private: bool,
    multi_file: bool,
    files: Vec<FileReport>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    http_seeds: Vec<String>,
    dht_nodes: Vec<String>,
    peers: Vec<String>,
    creation_date: Option<i64>,
    created_by: Option<String>,
    comment: Option<String>,
    magnet: String,
}

#[derive(Debug, Serialize)]
struct FileReport {
    path: String,
    length: u64,
    attr: String,
}

pub fn run(args: &Args) -> Result<()> {
    let report = if args
        .input
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
    {
        let magnet: Magnet = args.input.parse().context("reading the magnet URI")?;
        from_magnet(&magnet)
    } else {
        let path = PathBuf::from(&args.input);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let torrent =
            Metainfo::from_bytes(&bytes).with_context(|| format!("reading {}", path.display()))?;
        from_torrent(&torrent)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(())
}

fn from_torrent(torrent: &Metainfo<'_>) -> Report {
    let info = &torrent.info;
    let hashes = torrent.info_hashes();
    let files = info
        .files
        .iter()
        .filter(|f| !f.is_padding())
        .map(|f| {
            let path = info.file_path(f);
            let path = path
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let attr = [
                (f.attributes.executable, 'x'),
                (f.attributes.hidden, 'h'),
                (f.attributes.symlink, 'l'),
            ]
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, c)| c)
            .collect();
            FileReport {
                path,
                length: f.length,
                attr,
            }
        })
        .collect();
    Report {
        source: "torrent",
        name: Some(text(info.name).into_owned()),
        info_hash_v1: hashes.v1.map(|h| h.to_string()),
        info_hash_v2: hashes.v2.map(|h| h.to_string()),
        version: Some(info.version.as_str()),
        total_size: Some(info.total_size()),
        piece_length: Some(info.piece_length),
        piece_count: Some(info.piece_count()),
        private: info.private,
        multi_file: info.multi_file,
        files,
        trackers: torrent
            .trackers()
            .iter()
            .map(|tier| tier.iter().map(|u| (*u).to_owned()).collect())
            .collect(),
        web_seeds: torrent.url_list.iter().map(|u| (*u).to_owned()).collect(),
        http_seeds: torrent.httpseeds.iter().map(|u| (*u).to_owned()).collect(),
        dht_nodes: torrent
            .nodes
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect(),
        peers: Vec::new(),
        creation_date: torrent.creation_date,
        created_by: torrent.created_by.map(|c| text(c).into_owned()),
        comment: torrent.comment.map(|c| text(c).into_owned()),
        magnet: torrent.magnet().to_string(),
    }
}

fn from_magnet(magnet: &Magnet) -> Report {
    Report {
        source: "magnet",
        name: magnet
            .display_name
            .as_deref()
            .map(|n| text(n.as_bytes()).into_owned()),
        info_hash_v1: magnet.info_hashes.v1.map(|h| h.to_string()),
        info_hash_v2: magnet.info_hashes.v2.map(|h| h.to_string()),
        version: None,
        total_size: magnet.exact_length,
        piece_length: None,
        piece_count: None,
        private: false,
        multi_file: false,
        files: Vec::new(),
        trackers: magnet.trackers.iter().map(|t| vec![t.clone()]).collect(),
        web_seeds: magnet.web_seeds.clone(),
        http_seeds: Vec::new(),
        dht_nodes: Vec::new(),
        peers: magnet.peers.iter().map(ToString::to_string).collect(),
        creation_date: None,
        created_by: None,
        comment: None,
        magnet: magnet.to_string(),
    }
}

/// The text form: aligned `label: value` lines, then the file tree.
fn human(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        let _ = writeln!(out, "{label:<14}{value}");
    };
    line("name", report.name.as_deref().unwrap_or("(none)"));
    if let Some(v1) = &report.info_hash_v1 {
        line("info-hash v1", v1);
    }
    if let Some(v2) = &report.info_hash_v2 {
        line("info-hash v2", v2);
    }
    if let Some(version) = report.version {
        line("version", version);
    }
    if let Some(size) = report.total_size {
        line("size", &format!("{} ({size} bytes)", format::size(size)));
    }
    if let (Some(length), Some(count)) = (report.piece_length, report.piece_count) {
        line(
            "pieces",
            &format!("{count} × {}", format::piece_size(length)),
        );
    }
    if report.source == "torrent" {
        line("private", if report.private { "yes" } else { "no" });
    }
    if let Some(date) = report.creation_date {
        line("created", &format::date(date));
    }
    if let Some(by) = &report.created_by {
        line("created by", by);
    }
    if let Some(comment) = &report.comment {
        line("comment", comment);
    }
    for (i, tier) in report.trackers.iter().enumerate() {
        line(
            if i == 0 { "trackers" } else { "" },
            &format!("tier {}: {}", i + 1, tier.join(" ")),
        );
    }
    for (i, seed) in report.web_seeds.iter().enumerate() {
        line(if i == 0 { "web seeds" } else { "" }, seed);
    }
    for (i, seed) in report.http_seeds.iter().enumerate() {
        line(if i == 0 { "http seeds" } else { "" }, seed);
    }
    for (i, node) in report.dht_nodes.iter().enumerate() {
        line(if i == 0 { "dht nodes" } else { "" }, node);
    }
    for (i, peer) in report.peers.iter().enumerate() {
        line(if i == 0 { "peers" } else { "" }, peer);
    }
    line("magnet", &report.magnet);
    if !report.files.is_empty() {
        let _ = writeln!(out, "files ({}):", report.files.len());
        out.push_str(&tree(report));
    }
    out
}

/// Files as an indented tree, directories first shown when entered.
fn tree(report: &Report) -> String {
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    for file in &report.files {
        let components: Vec<&str> = file.path.split('/').collect();
        let (name, dirs) = components.split_last().expect("paths have a component");
        let common = open.iter().zip(dirs).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for dir in &dirs[common..] {
            let _ = writeln!(out, "  {}{dir}/", "  ".repeat(open.len()));
            open.push(dir);
        }
        let flags = if file.attr.is_empty() {
            String::new()
        } else {
            format!(" [{}]", file.attr)
        };
        let _ = writeln!(
            out,
            "  {}{name}  {}{flags}",
            "  ".repeat(open.len()),
            format::size(file.length)
        );
    }
    out
}
