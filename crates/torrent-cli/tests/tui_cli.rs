//! `torrent-cli demo --headless`, and the UI commands refusing what they cannot do, as a user runs
//! them (no terminal here: standard output is a pipe).

use std::process::{Command, Output};

fn cli(args: &[&str], tmp: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torrent-cli"))
        .args(args)
        .env("TMPDIR", tmp)
        .env("XDG_DATA_HOME", tmp.join("data"))
        .current_dir(tmp)
        .output()
        .unwrap()
}

#[test]
fn headless_demo_downloads_from_local_seeders_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli(
        &[
            "demo",
            "--headless",
            "--size",
            "4M",
            "--seeders",
            "2",
            "--rate",
            "0",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("demo: seeding") && last.contains(" 100%  4.00 MiB / 4.00 MiB"),
        "{stdout}"
    );
    assert!(stdout.contains("peers 2"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with("shoal-demo"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn headless_demo_paces_the_download_to_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let output = cli(
        &["demo", "--headless", "--size", "2M", "--rate", "1M"],
        dir.path(),
    );
    assert!(output.status.success());
    // 2 MiB at 1 MiB/s: about two seconds, not the blink loopback alone would take.
    assert!(start.elapsed() >= std::time::Duration::from_millis(1500));
}

#[test]
fn demo_rejects_a_silly_size() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli(&["demo", "--headless", "--size", "10K"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "error: --size 10.0 KiB is outside 1M..=8G"
    );
}

#[test]
fn the_ui_needs_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let output = cli(&[], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the terminal UI needs a terminal"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn open_refuses_a_bad_torrent_before_touching_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.torrent"), b"d4:infoi1ee").unwrap();
    let output = cli(&["open", "bad.torrent"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: parsing bad.torrent"), "{stderr}");
}
