//! `cargo xtask chaos`: the swarm chaos test alone, with its figures printed — honest seeders (two Shoal
//! sessions and libtorrent) with and without hostile peers (bad data, stallers, flooders), on loopback.
//! The same test runs in `cargo xtask interop` and CI (it is named `interop_chaos_swarm`).

use anyhow::Result;

use crate::{cargo, packages, step};

pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        anyhow::bail!("usage: cargo xtask chaos (no arguments)");
    }
    // libtorrent (a real other client among the seeders) and the rest of the interop packages.
    packages::ensure()?;
    step(
        "chaos test",
        cargo(&[
            "test",
            "-p",
            "shoal-session",
            "--test",
            "chaos",
            "--",
            "--nocapture",
            "interop_chaos_swarm",
        ]),
    )
}
