//! `cargo xtask bench <name>`: runs a benchmark and prints the figures its issue asks for.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{cargo, step};

const BENCHES: &str = "bencode, picker";

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("bencode") => bencode(),
        Some("picker") => picker(),
        Some(other) => bail!("no benchmark named {other:?} yet; available: {BENCHES}"),
        None => bail!("usage: cargo xtask bench <name>; available: {BENCHES}"),
    }
}

/// shoal-bencode against bendy, librqbit-bencode and serde_bencode on a 10,000-file torrent.
fn bencode() -> Result<()> {
    step(
        "bencode benchmark",
        cargo(&["bench", "--package", "shoal-bencode", "--bench", "decode"]),
    )?;
    let contests = [
        (
            "generic",
            &["bendy", "librqbit-bencode", "serde_bencode"][..],
        ),
        ("typed", &["librqbit-bencode", "serde_bencode"][..]),
    ];
    println!();
    for (contest, rivals) in contests {
        let ours = estimate(contest, "shoal")?;
        for rival in rivals {
            let theirs = estimate(contest, rival)?;
            println!(
                "bencode decode ratio shoal/{rival} {contest}: {:.2}",
                ours / theirs
            );
        }
    }
    Ok(())
}

/// Block picks per second with 100,000 pieces and 200 peers.
fn picker() -> Result<()> {
    step(
        "picker benchmark",
        cargo(&["bench", "--package", "shoal-picker", "--bench", "picker"]),
    )?;
    println!();
    for entry in std::fs::read_dir("target/criterion").context("reading criterion's results")? {
        let group = entry?.path();
        let Some(name) = group
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        if !name.starts_with("picker") {
            continue;
        }
        for function in std::fs::read_dir(&group)? {
            let function = function?.path();
            let Ok(benchmark) = read_json(&function.join("new/benchmark.json")) else {
                continue;
            };
            let Some(blocks) = benchmark["throughput"]["Elements"].as_u64() else {
                continue;
            };
            let nanos = mean_nanos(&function)?;
            let id = benchmark["full_id"].as_str().unwrap_or(&name).to_owned();
            println!(
                "picker {id}: {:.0} block picks/s",
                blocks as f64 / (nanos * 1e-9)
            );
        }
    }
    Ok(())
}

/// The mean time of one criterion benchmark, in nanoseconds.
fn estimate(group: &str, function: &str) -> Result<f64> {
    mean_nanos(&Path::new("target/criterion").join(group).join(function))
}

fn mean_nanos(dir: &Path) -> Result<f64> {
    let estimates = read_json(&dir.join("new/estimates.json"))?;
    estimates["mean"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no mean in {}", dir.display()))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
