//! `cargo xtask bench swarm [--size MIB] [--runs N]`: end to end on loopback. A python3-libtorrent
//! seeder serves a single-file torrent (1 MiB pieces); Shoal, rqbit and python3-libtorrent download it
//! in turn, `runs` times each, alternating; then Shoal downloads from a Shoal seeder. Each download runs
//! under `/usr/bin/time -v` for its CPU time and peak RSS, and its file is compared with the original.
//! Prints a table of medians and the ratios Shoal/rqbit and Shoal/libtorrent.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, step};

/// The libtorrent side: `seed TORRENT DIR PORT` serves until killed (READY once checked); `leech
/// TORRENT DIR PORT PEER` downloads from PEER and exits after printing DONE.
const LT_SCRIPT: &str = r#"
import sys, time, libtorrent as lt
mode, torrent, save, port = sys.argv[1:5]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:" + port,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "out_enc_policy": 2, "in_enc_policy": 1,
})
h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
if mode == "seed":
    while not h.status().is_seeding:
        time.sleep(0.05)
    print("READY", flush=True)
    while True:
        time.sleep(1)
host, peer_port = sys.argv[5].rsplit(":", 1)
h.connect_peer((host, int(peer_port)))
while not h.status().is_seeding:
    time.sleep(0.02)
print("DONE", flush=True)
"#;

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One download's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut size_mib = 1024u64;
    let mut runs = 3usize;
    for pair in args.chunks(2) {
        let value = || -> Result<u64> { Ok(pair.get(1).context("a number is missing")?.parse()?) };
        match pair[0].as_str() {
            "--size" => size_mib = value()?,
            "--runs" => runs = value()?.max(1) as usize,
            other => bail!("unknown option {other:?}: use --size MIB, --runs N"),
        }
    }
    if !Path::new("/usr/bin/time").exists() {
        bail!("GNU time is needed: apt-get install time");
    }
    step(
        "building torrent-cli (release)",
        cargo(&["build", "--release", "--package", "torrent-cli"]),
    )?;
    let shoal = std::fs::canonicalize("target/release/torrent-cli")?;
    let rqbit = rqbit()?;

    let work = std::env::temp_dir().join("shoal-bench-swarm");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("seed"))?;
    let data = work.join("seed/payload.bin");
    write_payload(&data, size_mib << 20)?;
    let torrent = work.join("payload.torrent");
    let created = Command::new(&shoal)
        .arg("create")
        .arg(&data)
        .args(["--piece-size", "1M", "--no-date", "-q", "-o"])
        .arg(&torrent)
        .status()?;
    if !created.success() {
        bail!("torrent-cli create failed");
    }
    let script = work.join("lt.py");
    std::fs::write(&script, LT_SCRIPT)?;

    let lt_port = free_port()?;
    let _lt_seeder = start_ready(
        Command::new("/usr/bin/python3")
            .arg(&script)
            .args(["seed"])
            .arg(&torrent)
            .arg(work.join("seed"))
            .arg(lt_port.to_string()),
    )?;
    let lt_peer = format!("127.0.0.1:{lt_port}");

    let clients = ["shoal", "rqbit", "libtorrent"];
    let mut results: Vec<(&str, Vec<Figures>)> = clients.iter().map(|c| (*c, vec![])).collect();
    for run in 0..runs {
        for i in 0..clients.len() {
            // Alternate who goes first, so warm caches favour nobody.
            let client = clients[(i + run) % clients.len()];
            let figures = download(client, &work, &torrent, &lt_peer, &shoal, &rqbit, &script)?;
            eprintln!(
                "run {} {client}: {:.2} s, {:.2} CPU-s, {} MiB RSS",
                run + 1,
                figures.wall,
                figures.cpu,
                figures.rss_kib / 1024
            );
            results
                .iter_mut()
                .find(|(c, _)| *c == client)
                .expect("listed")
                .1
                .push(figures);
        }
    }

    // Shoal to Shoal.
    let shoal_port = free_port()?;
    let mut seeder = Guard(
        Command::new(&shoal)
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(work.join("seed"))
            .args(["--no-dht", "--no-ipv6", "--bind", "127.0.0.1", "--port"])
            .arg(shoal_port.to_string())
            .arg("--state-dir")
            .arg(work.join("state-seeder"))
            .stdout(Stdio::piped())
            .spawn()?,
    );
    wait_for_line(&mut seeder.0, "seeding")?;
    let shoal_peer = format!("127.0.0.1:{shoal_port}");
    let mut shoal_to_shoal = Vec::new();
    for _ in 0..runs {
        shoal_to_shoal.push(download(
            "shoal",
            &work,
            &torrent,
            &shoal_peer,
            &shoal,
            &rqbit,
            &script,
        )?);
    }
    drop(seeder);

    let gib = size_mib as f64 / 1024.0;
    println!();
    println!(
        "{} MiB file, 1 MiB pieces, loopback, median of {runs}:",
        size_mib
    );
    println!(
        "{:<28} {:>8} {:>8} {:>12} {:>10}",
        "downloader", "wall s", "MiB/s", "CPU-s/GiB", "RSS MiB"
    );
    let mut medians = Vec::new();
    for (name, figures) in results
        .iter()
        .map(|(n, f)| (format!("{n} (from libtorrent)"), f))
        .chain(std::iter::once((
            "shoal (from shoal)".to_owned(),
            &shoal_to_shoal,
        )))
    {
        let wall = median(figures.iter().map(|f| f.wall));
        let cpu = median(figures.iter().map(|f| f.cpu)) / gib;
        let rss = median(figures.iter().map(|f| f.rss_kib as f64)) / 1024.0;
        println!(
            "{name:<28} {wall:>8.2} {:>8.0} {cpu:>12.2} {rss:>10.1}",
            size_mib as f64 / wall
        );
        medians.push((wall, cpu, rss));
    }
    println!();
    for (rival, index) in [("rqbit", 1), ("libtorrent", 2)] {
        let (ours, theirs) = (medians[0], medians[index]);
        println!("swarm ratio shoal/{rival} wall: {:.2}", ours.0 / theirs.0);
        println!("swarm ratio shoal/{rival} cpu: {:.2}", ours.1 / theirs.1);
        println!("swarm ratio shoal/{rival} rss: {:.2}", ours.2 / theirs.2);
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// rqbit's path, installing it with `cargo install rqbit --locked` when it is missing.
fn rqbit() -> Result<PathBuf> {
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/rqbit"))
        .filter(|p| p.exists());
    if let Some(path) = installed {
        return Ok(path);
    }
    if let Ok(output) = Command::new("which").arg("rqbit").output()
        && output.status.success()
    {
        return Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    step(
        "installing rqbit (about 9 minutes on 2 cores)",
        cargo(&["install", "rqbit", "--locked"]),
    )?;
    rqbit_after_install()
}

fn rqbit_after_install() -> Result<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
        .join(".cargo/bin/rqbit");
    if path.exists() {
        Ok(path)
    } else {
        bail!("rqbit was not installed at {}", path.display())
    }
}

/// One download by `client` from `peer` into a fresh directory, timed by `/usr/bin/time -v`; the file
/// must match the original.
fn download(
    client: &str,
    work: &Path,
    torrent: &Path,
    peer: &str,
    shoal: &Path,
    rqbit: &Path,
    script: &Path,
) -> Result<Figures> {
    let target = work.join(format!("dl-{client}"));
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target)?;
    // The previous download's dirty pages are written back now, untimed, so that no client pays for
    // another's writeback.
    Command::new("sync").status()?;
    let times = work.join("time.txt");
    let mut command = Command::new("/usr/bin/time");
    command.arg("-v").arg("-o").arg(&times);
    match client {
        "shoal" => {
            let state = work.join("state-leecher");
            let _ = std::fs::remove_dir_all(&state);
            command
                .arg(shoal)
                .arg("add")
                .arg(torrent)
                .args(["--headless", "--no-dht", "--no-ipv6", "-q", "--bind"])
                .args(["127.0.0.1", "--port", "0", "--peer", peer, "-o"])
                .arg(&target)
                .arg("--state-dir")
                .arg(&state);
        }
        "rqbit" => {
            command
                .arg(rqbit)
                .args([
                    "--disable-dht",
                    "--disable-dht-persistence",
                    "--disable-lsd",
                ])
                .args(["--disable-upnp-port-forward", "--listen-ip", "127.0.0.1"])
                .args(["download", "--exit-on-finish", "--disable-http-api"])
                .args(["--initial-peers", peer, "--output-folder"])
                .arg(&target)
                .arg(torrent);
        }
        _ => {
            command
                .arg("/usr/bin/python3")
                .arg(script)
                .arg("leech")
                .arg(torrent)
                .arg(&target)
                .arg(free_port()?.to_string())
                .arg(peer);
        }
    }
    let started = Instant::now();
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {client}"))?;
    let wall = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{client} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let got = target.join("payload.bin");
    if !same_file(&work.join("seed/payload.bin"), &got)? {
        bail!("{client}: {} differs from the original", got.display());
    }
    let report = std::fs::read_to_string(&times)?;
    let field = |name: &str| -> Result<f64> {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {name:?} in time's report"))
    };
    let figures = Figures {
        wall,
        cpu: field("User time (seconds):")? + field("System time (seconds):")?,
        rss_kib: field("Maximum resident set size (kbytes):")? as u64,
    };
    let _ = std::fs::remove_dir_all(&target);
    Ok(figures)
}

/// Writes `len` pseudo-random bytes (xorshift, so the data does not compress or dedupe).
fn write_payload(path: &Path, len: u64) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let (mut a, mut b) = (
        BufReader::new(std::fs::File::open(a)?),
        BufReader::new(std::fs::File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x)?;
        let mut m = 0;
        while m < n {
            let k = b.read(&mut y[m..n])?;
            if k == 0 {
                return Ok(false);
            }
            m += k;
        }
        if x[..n] != y[..n] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(b.read(&mut y)? == 0);
        }
    }
}

/// Starts `command` and waits for its READY line.
fn start_ready(command: &mut Command) -> Result<Guard> {
    let mut child = Guard(command.stdout(Stdio::piped()).spawn()?);
    wait_for_line(&mut child.0, "READY")?;
    Ok(child)
}

/// Reads `child`'s stdout until a line starts with `prefix` (60 s at most).
fn wait_for_line(child: &mut Child, prefix: &str) -> Result<()> {
    let stdout = child.stdout.take().context("stdout is piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(&prefix) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .context("the seeder never became ready")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
