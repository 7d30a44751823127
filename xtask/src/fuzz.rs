//! `cargo xtask fuzz <target> | --all [--seconds N]`: cargo-fuzz on the installed nightly toolchain.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::step;

pub fn run(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut all = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value:?}"))?;
            }
            "--all" => all = true,
            target => targets.push(target.to_owned()),
        }
    }
    ensure_cargo_fuzz()?;
    let known = list()?;
    if all {
        targets = known.clone();
    }
    if targets.is_empty() {
        bail!(
            "usage: cargo xtask fuzz <target>|--all [--seconds N]; targets: {}",
            known.join(", ")
        );
    }
    for target in &targets {
        if !known.contains(target) {
            bail!("no fuzz target {target:?}; targets: {}", known.join(", "));
        }
        let corpus = format!("fuzz/corpus/{target}");
        std::fs::create_dir_all(&corpus)?;
        let mut fuzz = nightly();
        fuzz.args(["fuzz", "run", "--fuzz-dir", "fuzz", target, &corpus, "--"])
            .args([
                format!("-max_total_time={seconds}"),
                "-rss_limit_mb=512".into(),
                "-malloc_limit_mb=64".into(),
                "-timeout=1".into(),
            ]);
        // AddressSanitizer's quarantine of freed memory alone would approach the 512 MiB RSS limit.
        fuzz.env("ASAN_OPTIONS", "quarantine_size_mb=32");
        step(&format!("fuzz {target} for {seconds} s"), fuzz)?;
    }
    Ok(())
}

/// The fuzz targets, from `cargo fuzz list`.
fn list() -> Result<Vec<String>> {
    let out = nightly()
        .args(["fuzz", "list", "--fuzz-dir", "fuzz"])
        .output()
        .context("running cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

fn nightly() -> Command {
    let mut command = Command::new("cargo");
    command.arg("+nightly");
    // The pinned stable toolchain would otherwise win over `+nightly` in some rustup setups.
    command.env_remove("RUSTUP_TOOLCHAIN");
    command
}

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = nightly()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        step("install cargo-fuzz", {
            let mut install = Command::new("cargo");
            install.args(["install", "cargo-fuzz", "--locked"]);
            install
        })?;
    }
    Ok(())
}
