//! `torrent-cli info` and `create` as a user runs them: output, `--json` fields, errors and exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn cli(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_torrent-cli"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/metainfo")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn info_shows_a_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let text = stdout(&cli(
        &["info", &fixture("mktorrent-multi.torrent")],
        dir.path(),
    ));
    for expected in [
        "name:         fixture-content",
        "info-hash v1: 32da5ae560d2bade4398e6aca9635cb5940e7535",
        "version:      v1",
        "pieces:       4 × 64 KiB",
        "private:      yes",
        "comment:      made by mktorrent",
        "trackers:     tier 1: http://127.0.0.1:6969/announce udp://127.0.0.1:6969",
        "              tier 2: http://127.0.0.2:6969/announce",
        "web seeds:    http://127.0.0.1:8000/ws/",
        "files (5):",
        "    nested/",
        "      deeper/",
        "        small.txt  1.21 KiB",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn info_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let json = stdout(&cli(
        &["info", "--json", &fixture("libtorrent-hybrid.torrent")],
        dir.path(),
    ));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["source"], "torrent");
    assert_eq!(
        value["info_hash_v1"],
        "f2eea40f63492d445842c35df06fb5a9af3d5569"
    );
    assert_eq!(
        value["info_hash_v2"],
        "9083684a399521259d3579a97735f25398ab9a3375e6308583bb97254e1a0f9f"
    );
    assert_eq!(value["version"], "hybrid");
    assert_eq!(value["total_size"], 211_237);
    assert_eq!(value["piece_length"], 16384);
    assert_eq!(value["piece_count"], 16);
    assert_eq!(value["private"], false);
    assert_eq!(value["multi_file"], true);
    assert_eq!(value["files"].as_array().unwrap().len(), 5);
    assert_eq!(value["files"][0]["path"], "fixture-content/a.bin");
    assert_eq!(value["files"][0]["length"], 100_003);
    assert_eq!(value["trackers"][0][0], "http://127.0.0.1:6969/announce");
    assert_eq!(value["creation_date"], 1_700_000_000);
    for key in [
        "web_seeds",
        "http_seeds",
        "dht_nodes",
        "peers",
        "created_by",
        "comment",
        "magnet",
    ] {
        assert!(value.get(key).is_some(), "no {key}");
    }
}

#[test]
fn info_reads_a_magnet() {
    let dir = tempfile::tempdir().unwrap();
    let uri =
        "magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW&dn=Cosmos&tr=udp%3A%2F%2Ft%3A1&xl=42";
    let value: serde_json::Value =
        serde_json::from_str(&stdout(&cli(&["info", uri, "--json"], dir.path()))).unwrap();
    assert_eq!(value["source"], "magnet");
    assert_eq!(
        value["info_hash_v1"],
        "c9e15763f722f23e98a29decdfae341b98d53056"
    );
    assert_eq!(value["name"], "Cosmos");
    assert_eq!(value["total_size"], 42);
    assert_eq!(value["trackers"][0][0], "udp://t:1");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_field_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(
        &bad,
        b"d4:infod6:lengthi5e4:name1:a12:piece lengthi0e6:pieces20:AAAAAAAAAAAAAAAAAAAAee",
    )
    .unwrap();
    let output = cli(&["info", bad.to_str().unwrap()], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.starts_with("error: reading "), "{message}");
    assert!(
        message.contains("`info.piece length` at byte 43: 0 is not a valid piece length"),
        "{message}"
    );

    let output = cli(&["info", "magnet:?dn=cut-by-the-shell"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("quote the whole URI"),
        "{}",
        stderr(&output)
    );

    let output = cli(&["info", "truncated.torrent"], dir.path());
    assert_eq!(
        output.status.code(),
        Some(1),
        "a missing file is a runtime failure"
    );

    let output = cli(&["frobnicate"], dir.path());
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    let output = cli(&["create", "x", "--piece-size", "12Q"], dir.path());
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn create_writes_a_torrent_that_info_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("My Album");
    std::fs::create_dir_all(content.join("cd1")).unwrap();
    std::fs::write(content.join("cd1/01.flac"), vec![1u8; 300_000]).unwrap();
    std::fs::write(content.join("cover.jpg"), vec![2u8; 5_000]).unwrap();
    let created = stdout(&cli(
        &[
            "create",
            "My Album",
            "-t",
            "http://127.0.0.1:6969/announce,http://127.0.0.2:6969/announce",
            "-t",
            "udp://127.0.0.1:6969",
            "--web-seed",
            "http://127.0.0.1:8080/",
            "--private",
            "--piece-size",
            "32K",
            "-c",
            "a comment",
            "--hybrid",
        ],
        dir.path(),
    ));
    assert!(
        created.starts_with("created My Album.torrent\n"),
        "{created}"
    );
    assert!(
        created.contains("info-hash v1: ") && created.contains("info-hash v2: "),
        "{created}"
    );
    assert!(created.contains(" MB/s"), "{created}");
    let value: serde_json::Value = serde_json::from_str(&stdout(&cli(
        &["info", "My Album.torrent", "--json"],
        dir.path(),
    )))
    .unwrap();
    assert_eq!(value["name"], "My Album");
    assert_eq!(value["version"], "hybrid");
    assert_eq!(value["private"], true);
    assert_eq!(value["piece_length"], 32768);
    assert_eq!(value["comment"], "a comment");
    assert_eq!(value["web_seeds"][0], "http://127.0.0.1:8080/");
    assert_eq!(value["trackers"].as_array().unwrap().len(), 2);
    assert_eq!(value["trackers"][0].as_array().unwrap().len(), 2);
    assert_eq!(value["files"][0]["path"], "My Album/cd1/01.flac");
    assert!(value["creation_date"].as_i64().unwrap() > 1_700_000_000);
    assert!(created.contains(value["info_hash_v1"].as_str().unwrap()));

    // An existing output is not overwritten without --force.
    let again = cli(&["create", "My Album", "--no-date"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"));
    // Reproducible without a date.
    let first = stdout(&cli(
        &["create", "My Album", "--no-date", "-f", "-o", "a.torrent"],
        dir.path(),
    ));
    let second = stdout(&cli(
        &["create", "My Album", "--no-date", "-f", "-o", "b.torrent"],
        dir.path(),
    ));
    assert_eq!(first.lines().nth(1), second.lines().nth(1));
    assert_eq!(
        std::fs::read(dir.path().join("a.torrent")).unwrap(),
        std::fs::read(dir.path().join("b.torrent")).unwrap()
    );
    // Bad piece sizes and empty inputs are the user's mistake.
    assert_eq!(
        cli(
            &[
                "create",
                "My Album",
                "--piece-size",
                "1000",
                "-o",
                "c.torrent"
            ],
            dir.path()
        )
        .status
        .code(),
        Some(2)
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let empty = cli(&["create", "empty"], dir.path());
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        stderr(&empty).contains("holds no data"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn verify_reports_good_bad_and_missing_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let b: Vec<u8> = (0..50_000u32).map(|i| (i * 13) as u8).collect();
    std::fs::write(content.join("a.bin"), &a).unwrap();
    std::fs::write(content.join("sub/b.bin"), &b).unwrap();
    let torrent = dir.path().join("content.torrent");
    stdout(&cli(
        &[
            "create",
            "content",
            "--piece-size",
            "16K",
            "--no-date",
            "-o",
            "content.torrent",
        ],
        dir.path(),
    ));
    let torrent = torrent.to_str().unwrap();
    let data = dir.path().to_str().unwrap();

    let good = cli(&["verify", torrent, "--data", data], dir.path());
    assert_eq!(stdout(&good).trim(), "10 good, 0 bad, 0 missing");

    // One flipped byte in piece 3, and the second file gone (pieces 6..=9, 6 shared with a.bin).
    let mut corrupt = a.clone();
    corrupt[3 * 16_384 + 5] ^= 0xff;
    std::fs::write(content.join("a.bin"), &corrupt).unwrap();
    std::fs::remove_file(content.join("sub/b.bin")).unwrap();
    let bad = cli(&["verify", torrent, "--data", data], dir.path());
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let text = String::from_utf8(bad.stdout).unwrap();
    assert_eq!(text, "5 good, 1 bad, 4 missing\nbad pieces: 3\n");
    assert!(
        !content.join("sub/b.bin").exists(),
        "verify never creates files"
    );

    let usage = cli(
        &["verify", torrent, "--data", "/nonexistent/dir"],
        dir.path(),
    );
    assert_eq!(usage.status.code(), Some(2));
}

/// `dir/share` (`big.bin`, 2,000,000 pseudo-random bytes, and `small.txt`) and its torrent
/// `dir/share.torrent`; returns `big.bin`'s bytes.
fn make_share(dir: &Path) -> Vec<u8> {
    let content = dir.join("share");
    std::fs::create_dir_all(&content).unwrap();
    let data: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(content.join("big.bin"), &data).unwrap();
    std::fs::write(content.join("small.txt"), b"hello").unwrap();
    stdout(&cli(
        &["create", "share", "--no-date", "-o", "share.torrent"],
        dir,
    ));
    data
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `torrent-cli seed share.torrent` in `dir` on loopback port `port`, state in `dir/state-seed`, with
/// `extra` arguments.
fn spawn_seeder(dir: &Path, port: u16, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_torrent-cli"))
        .args([
            "seed",
            "share.torrent",
            "--no-dht",
            "--data",
            ".",
            "--state-dir",
            "state-seed",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `torrent-cli add share.torrent --headless` into `dir/out` from the peer at `port`, state in
/// `dir/state`; returns its progress lines.
fn download_from(dir: &Path, port: u16, out: &str, state: &str) -> String {
    let leecher = leecher(dir, port, out, state, &[])
        .wait_with_output()
        .unwrap();
    stdout(&leecher)
}

/// Starts `torrent-cli add share.torrent --headless` into `dir/out` from the peer at `port`, state in
/// `dir/state`, with `extra` flags; its stdout is piped.
fn leecher(dir: &Path, port: u16, out: &str, state: &str, extra: &[&str]) -> std::process::Child {
    std::fs::create_dir(dir.join(out)).unwrap();
    let peer = format!("127.0.0.1:{port}");
    // The seeder needs a moment to check its data and listen; the leecher retries its peer each second.
    Command::new(env!("CARGO_BIN_EXE_torrent-cli"))
        .args(["add", "share.torrent", "--no-dht", "-o", out, "--headless"])
        .args(["--state-dir", state, "--bind", "127.0.0.1", "--port", "0"])
        .args(["--peer", &peer])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn encryption_flags_reach_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let data = make_share(dir.path());
    let port = free_port();
    let mut seeder = spawn_seeder(dir.path(), port, &["--encryption", "required"]);
    // Plaintext only, against a seeder that requires encryption: nothing in 6 s.
    let mut plain = leecher(
        dir.path(),
        port,
        "plain",
        "state-plain",
        &["--encryption", "disabled"],
    );
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(
        plain.try_wait().unwrap().is_none(),
        "the plaintext leecher ended"
    );
    plain.kill().unwrap();
    plain.wait().unwrap();
    let got = std::fs::read(dir.path().join("plain/share/big.bin")).unwrap_or_default();
    assert!(got != data, "the plaintext leecher got the data");
    // RC4 both ways: the download completes.
    let rc4 = leecher(
        dir.path(),
        port,
        "rc4",
        "state-rc4",
        &["--encryption", "required"],
    )
    .wait_with_output()
    .unwrap();
    assert!(rc4.status.success(), "{}", stderr(&rc4));
    assert!(std::fs::read(dir.path().join("rc4/share/big.bin")).unwrap() == data);
    seeder.kill().unwrap();
    seeder.wait().unwrap();
}

#[test]
fn headless_seed_and_add_transfer_a_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let data = make_share(dir.path());
    let port = free_port();
    let mut seeder = spawn_seeder(dir.path(), port, &[]);
    let peer = format!("127.0.0.1:{port}");
    let download = dir.path().join("download");
    let progress = download_from(dir.path(), port, "download", "state-leech");
    assert!(
        progress.lines().last().unwrap().starts_with("seeding"),
        "{progress}"
    );
    assert!(std::fs::read(download.join("share/big.bin")).unwrap() == data);
    assert_eq!(
        std::fs::read(download.join("share/small.txt")).unwrap(),
        b"hello"
    );

    // The same torrent from a magnet link with only `x.pe`: the metadata comes from the seeder (BEP 9).
    let info = stdout(&cli(&["info", "share.torrent"], dir.path()));
    let hash = info
        .lines()
        .find_map(|line| line.strip_prefix("info-hash v1: "))
        .unwrap()
        .trim()
        .to_owned();
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=share&x.pe={peer}");
    std::fs::create_dir(dir.path().join("from-magnet")).unwrap();
    let leecher = cli(
        &[
            "add",
            &magnet,
            "--no-dht",
            "-o",
            "from-magnet",
            "--headless",
            "--timeout",
            "60",
            "--state-dir",
            "state-magnet",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        dir.path(),
    );
    let progress = stdout(&leecher);
    assert!(progress.starts_with("metadata"), "{progress}");
    assert!(
        progress.lines().last().unwrap().starts_with("seeding"),
        "{progress}"
    );
    assert!(std::fs::read(dir.path().join("from-magnet/share/big.bin")).unwrap() == data);
    // The fetched torrent is kept under its name, byte for byte the info dictionary we created.
    let saved = std::fs::read(dir.path().join("state-magnet/torrents/share.torrent")).unwrap();
    let again = stdout(&cli(
        &["info", "state-magnet/torrents/share.torrent"],
        dir.path(),
    ));
    assert!(again.contains(&hash), "{again}");
    assert!(!saved.is_empty());

    // SIGTERM: the seeder stops cleanly with status 0.
    Command::new("kill")
        .args(["-TERM", &seeder.id().to_string()])
        .status()
        .unwrap();
    let status = seeder.wait().unwrap();
    assert!(status.success(), "{status}");
    // Both runs saved their torrent and resume data for the next start.
    for state in ["state-seed", "state-leech"] {
        let saved: Vec<_> = std::fs::read_dir(dir.path().join(state))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            saved
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "resume")),
            "{state}: {saved:?}"
        );
    }
}

/// Waits (up to 30 s) for `child` to exit by itself; returns its status and its stdout.
fn exits_by_itself(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
            return (status, out);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `--seed-ratio`, `--seed-time` and `--seed-idle` each end a headless seed with status 0 and say why;
/// the ratio counts over runs, so a seeder that reached it stops again at once after a restart.
#[test]
fn seeding_limits_end_a_headless_seed() {
    let dir = tempfile::tempdir().unwrap();
    let data = make_share(dir.path());
    let port = free_port();
    let seeder = spawn_seeder(dir.path(), port, &["--seed-ratio", "1"]);
    download_from(dir.path(), port, "download", "state-leech");
    assert!(std::fs::read(dir.path().join("download/share/big.bin")).unwrap() == data);
    // The one copy the leecher got came from this seeder: ratio 1.
    let (status, out) = exits_by_itself(seeder);
    assert!(status.success(), "{status}: {out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("done seeding: share ratio 1.0") && last.ends_with("the limit of 1"),
        "{out}"
    );

    // Restarted with the same state directory: the ratio is still 1, so it stops once checked.
    let (status, out) = exits_by_itself(spawn_seeder(dir.path(), port, &["--seed-ratio", "1"]));
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("done seeding: share ratio 1.0"), "{out}");
    // With the ratio out of reach, the time and idle limits end the run.
    for (limits, why) in [
        (
            ["--seed-ratio", "2", "--seed-time", "2s"],
            "done seeding: seeded for 2s",
        ),
        (
            ["--seed-ratio", "2", "--seed-idle", "3s"],
            "done seeding: nothing uploaded for 3s",
        ),
    ] {
        let (status, out) = exits_by_itself(spawn_seeder(dir.path(), port, &limits));
        assert!(status.success(), "{limits:?}: {status}: {out}");
        assert_eq!(out.lines().last(), Some(why), "{limits:?}: {out}");
    }
}

#[test]
fn a_magnet_that_finds_nothing_says_why_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // An address that refuses connections: a port bound and closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&x.pe=127.0.0.1:{port}",
        "ab".repeat(20)
    );
    let started = std::time::Instant::now();
    let output = cli(
        &[
            "add",
            &magnet,
            "--no-dht",
            "--headless",
            "--timeout",
            "2",
            "--state-dir",
            "state",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let error = stderr(&output);
    assert!(error.contains("no metadata after 2 s"), "{error}");
    assert!(
        error.contains("none of 1 known addresses answered"),
        "{error}"
    );
    assert!(error.contains("DHT off"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn add_moves_a_completed_download_where_move_to_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = make_share(dir.path());
    let port = free_port();
    let mut seeder = spawn_seeder(dir.path(), port, &[]);
    let done = leecher(
        dir.path(),
        port,
        "incoming",
        "state-leech",
        &["--move-to", "library"],
    )
    .wait_with_output()
    .unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    let out = stdout(&done);
    assert!(out.contains("moved the data to "), "{out}");
    assert!(out.trim_end().ends_with("library"), "{out}");
    assert!(std::fs::read(dir.path().join("library/share/big.bin")).unwrap() == data);
    assert_eq!(
        std::fs::read(dir.path().join("library/share/small.txt")).unwrap(),
        b"hello"
    );
    assert!(!dir.path().join("incoming/share").exists(), "{out}");
    seeder.kill().unwrap();
    seeder.wait().unwrap();
}
