//! The system packages the interop tests need, installed when missing.
//!
//! A suite is never skipped silently: when a program is missing and we are not root, this stops with
//! the exact command to run.

use std::process::Command;

use anyhow::{Result, bail};

/// Debian package, and the check that tells whether it is installed.
const PACKAGES: &[(&str, Check)] = &[
    ("python3-libtorrent", Check::PythonModule("libtorrent")),
    ("opentracker", Check::Program("opentracker")),
    ("transmission-daemon", Check::Program("transmission-daemon")),
    ("transmission-cli", Check::Program("transmission-create")),
    ("aria2", Check::Program("aria2c")),
    ("mktorrent", Check::Program("mktorrent")),
    ("tmux", Check::Program("tmux")),
    // The HTTP server of the web seed tests (BEP 19).
    ("nginx", Check::Program("nginx")),
];

#[derive(Debug, Clone, Copy)]
enum Check {
    Program(&'static str),
    /// A module importable by Debian's own Python (`/usr/bin/python3`); python3-libtorrent is not visible
    /// to other Pythons that may come first on `PATH`.
    PythonModule(&'static str),
}

impl Check {
    fn passes(self) -> bool {
        match self {
            Self::Program(name) => Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .is_ok_and(|out| out.status.success()),
            Self::PythonModule(module) => Command::new("/usr/bin/python3")
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|out| out.status.success()),
        }
    }
}

/// Installs what is missing (as root), or stops with the command to run.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, check)| !check.passes())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "the interop tests need Debian packages that are missing: {list}\n\
             install them with: sudo apt-get update && sudo apt-get install -y {list}"
        );
    }
    println!("=== xtask: installing {list}");
    crate::step("apt-get update", apt(&["update"]))?;
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(&missing);
    crate::step("apt-get install", install)?;
    let still: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, check)| !check.passes())
        .map(|(package, _)| *package)
        .collect();
    if !still.is_empty() {
        bail!("installed, but still not usable: {}", still.join(" "));
    }
    // Debian starts transmission-daemon and nginx as services on install (where it may); the tests run
    // their own instances.
    let _ = Command::new("sh")
        .args([
            "-c",
            "service transmission-daemon stop >/dev/null 2>&1; service nginx stop >/dev/null 2>&1",
        ])
        .status();
    Ok(())
}

fn apt(args: &[&str]) -> Command {
    let mut command = Command::new("apt-get");
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
