//! Shoal's project chores, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `ci`: everything CI checks, from a fresh machine: system packages for interop, format, clippy, tests
//!   (unit, integration, doc, fuzz-corpus replay, interop against real clients), docs, and every fuzz
//!   target for 10 s.
//! - `test`: the workspace tests only.
//! - `interop`: the tests against real BitTorrent programs (installs them first).
//! - `chaos`: the swarm chaos test alone (honest seeders with and without hostile peers), its figures
//!   printed.
//! - `bench <name>`: end-to-end and micro benchmarks that print the ratios the issues ask for.
//! - `fuzz <target> | --all [--seconds N]`: runs cargo-fuzz targets on the installed nightly.

mod bench;
mod chaos;
mod fuzz;
mod packages;
mod swarm;
mod testdata;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <ci | test | interop | chaos | bench <name> | fuzz <target>|--all [--seconds N]>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    std::env::set_current_dir(root()).context("entering the workspace root")?;
    match command.as_str() {
        "ci" => ci(),
        "test" => test(),
        "interop" => interop(),
        "chaos" => chaos::run(rest),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "testdata" => testdata::run(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// How long CI runs each fuzz target.
const CI_FUZZ_SECONDS: u32 = 10;

/// Everything CI checks. Stops at the first failure.
fn ci() -> Result<()> {
    packages::ensure()?;
    step("format", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // Unit, integration and doc tests, including the interop tests (named `interop_*`) and the replay of
    // every committed fuzz corpus, which are ordinary tests.
    step("tests", cargo(&["test", "--workspace", "--all-targets"]))?;
    step("doctests", cargo(&["test", "--workspace", "--doc"]))?;
    let mut docs = cargo(&["doc", "--workspace", "--no-deps"]);
    docs.env("RUSTDOCFLAGS", "-D warnings");
    step("docs", docs)?;
    // Every fuzz target for a short while, on top of the corpus replay: a regression in a parser or
    // the peer session that the committed corpora miss still has a chance to show.
    fuzz::run(&[
        "--all".into(),
        "--seconds".into(),
        CI_FUZZ_SECONDS.to_string(),
    ])?;
    println!("xtask ci: all checks passed");
    Ok(())
}

fn test() -> Result<()> {
    step("tests", cargo(&["test", "--workspace"]))
}

/// The tests that run real BitTorrent programs (libtorrent, Transmission, aria2, opentracker) on loopback.
fn interop() -> Result<()> {
    packages::ensure()?;
    step(
        "interop tests",
        cargo(&["test", "--workspace", "--all-targets", "--", "interop_"]),
    )
}

/// The workspace root (this crate's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args);
    command
}

/// Runs one named step, echoing it, and fails with its name if it fails.
fn step(name: &str, mut command: Command) -> Result<()> {
    println!("\n=== xtask: {name}: {command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
