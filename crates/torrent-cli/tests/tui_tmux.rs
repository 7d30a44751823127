//! The terminal UI end to end, as a person sees it: `torrent-cli demo` (and `add`) in a real terminal (a
//! detached tmux session of 100 × 30 on a private tmux server), keys sent, the screen read back.
//!
//! tmux is required: without it this test fails rather than skips, so a machine missing it is noticed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server running one command; killed on drop, also when an assertion fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a detached `width` × `height` session.
    fn start(command: &str, width: u16, height: u16) -> Self {
        // One server per test: tests of this file run side by side.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Self {
            socket: format!("shoal-test-{}-{n}", std::process::id()),
        };
        let output = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        assert!(
            output.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            // CI has no terminal of its own; the panes are tmux's.
            .env("TERM", "xterm-256color")
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run tmux ({e}): install it (`apt-get install tmux`) to test the UI")
            })
    }

    /// The screen as text.
    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", "main"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Sends keys in tmux's names (`Tab`, `q`, `Enter`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend(keys);
        let output = self.run(&args);
        assert!(output.status.success(), "send-keys {keys:?} failed");
    }

    /// Presses `q` (and `y` if asked to confirm) and asserts the program exits with status 0, as the
    /// wrapper command records it in `status_file`.
    fn quit_cleanly(&self, status_file: &Path) {
        self.keys(&["q"]);
        std::thread::sleep(Duration::from_millis(500));
        if self.screen().contains("Quit Shoal?") {
            self.keys(&["y"]);
        }
        let status = wait_for_exit(status_file, Duration::from_secs(30));
        assert_eq!(status.as_deref(), Some("0"), "{}", self.screen());
    }

    /// Polls the screen until `done` holds, failing with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "no {what} after {limit:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits for the file the wrapper writes the exit status into.
fn wait_for_exit(status_file: &Path, limit: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(status) = std::fs::read_to_string(status_file)
            && status.ends_with('\n')
        {
            return Some(status.trim().to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A directory holding `song.ogg` (300,000 bytes) and `song.torrent` made from it by `torrent-cli
/// create`, and the binary's path.
fn song() -> (tempfile::TempDir, &'static Path) {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_torrent-cli"));
    std::fs::write(dir.path().join("song.ogg"), vec![7u8; 300_000]).unwrap();
    let created = Command::new(binary)
        .args(["create", "song.ogg", "--no-date", "-o", "song.torrent"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    (dir, binary)
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn interop_tui_demo_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let status_file: PathBuf = dir.path().join("status");
    let binary = Path::new(env!("CARGO_BIN_EXE_torrent-cli"));
    // The demo's temporary data goes to our temp dir; the wrapper records the exit status.
    let command = format!(
        "TMPDIR={tmp} {binary} demo; echo $? > {status}",
        tmp = quote(dir.path()),
        binary = quote(binary),
        status = quote(&status_file),
    );
    let tmux = Tmux::start(&command, 100, 30);

    let screen = tmux.wait_for("download at 100 %", Duration::from_secs(90), |s| {
        s.contains(" 100% ") && s.contains("seeding")
    });
    assert!(screen.contains("shoal-demo"), "{screen}");
    assert!(screen.contains("Pieces 256/256"), "{screen}");
    assert!(!screen.contains("error"), "{screen}");

    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("Peers view", Duration::from_secs(10), |s| {
        s.contains("Address") && s.contains("Client")
    });
    let peer_rows: Vec<&str> = screen
        .lines()
        .filter(|line| line.contains("127.0.0.1:") && line.contains("Shoal 0.1.0"))
        .collect();
    assert_eq!(
        peer_rows.len(),
        3,
        "three loopback seeders, named from their peer ids:\n{screen}"
    );
    assert!(peer_rows.iter().all(|row| row.contains("100%")), "{screen}");
    // One demo seeder takes encrypted connections only: its row alone is flagged E.
    assert_eq!(
        peer_rows.iter().filter(|row| row.contains('E')).count(),
        1,
        "{screen}"
    );

    tmux.keys(&["?"]);
    tmux.wait_for("help overlay", Duration::from_secs(10), |s| {
        s.contains("any key closes")
    });
    tmux.keys(&["Escape"]);
    // Apart from the next key, so the terminal does not read the pair as Alt-q.
    std::thread::sleep(Duration::from_millis(300));

    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    if tmux.screen().contains("Quit Shoal?") {
        tmux.keys(&["y"]);
    }
    let status = wait_for_exit(&status_file, Duration::from_secs(30));
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "the demo did not exit cleanly; the screen:\n{}",
        tmux.screen()
    );
    // The demo removed its payload and download on the way out.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with("shoal-demo"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `add --seed-ratio 0` in the UI, on data that is already complete: the torrent seeds, reaches its
/// limit at once and is paused, and the screen says why.
#[test]
fn interop_tui_pauses_a_torrent_at_its_seeding_limit() {
    let (dir, binary) = song();
    let status_file = dir.path().join("status");
    let command = format!(
        "cd {dir} && {binary} add song.torrent -o . --seed-ratio 0 --no-dht --bind 127.0.0.1 \
         --port 0 --state-dir state; echo $? > {status}",
        dir = quote(dir.path()),
        binary = quote(binary),
        status = quote(&status_file),
    );
    let tmux = Tmux::start(&command, 100, 30);
    let screen = tmux.wait_for("the seeding limit", Duration::from_secs(30), |s| {
        s.contains("share ratio 0.00 reached the limit of 0; paused")
    });
    assert!(screen.contains("song.ogg"), "{screen}");
    tmux.wait_for("the paused state", Duration::from_secs(10), |s| {
        s.contains("Status paused: press p to resume")
    });
    tmux.quit_cleanly(&status_file);
}

/// `open --move-to` moves a complete torrent's data as soon as it is complete, and `m` moves it by hand:
/// the prompt takes a directory, the footer says where it went, and the files are there (and gone from
/// the old place) while the torrent seeds on.
#[test]
fn interop_tui_moves_a_torrents_data() {
    let (dir, binary) = song();
    let status_file = dir.path().join("status");
    let command = format!(
        "cd {dir} && {binary} open song.torrent -o . --move-to auto --no-dht --bind 127.0.0.1 \
         --port 0 --state-dir state; echo $? > {status}",
        dir = quote(dir.path()),
        binary = quote(binary),
        status = quote(&status_file),
    );
    let tmux = Tmux::start(&command, 100, 30);
    tmux.wait_for("the --move-to move", Duration::from_secs(30), |s| {
        s.contains("moved song.ogg to ") && s.contains("/auto")
    });
    assert!(dir.path().join("auto/song.ogg").exists());
    assert!(!dir.path().join("song.ogg").exists());
    tmux.keys(&["m"]);
    tmux.wait_for("the move prompt", Duration::from_secs(10), |s| {
        s.contains("Move “song.ogg” to the directory:")
    });
    tmux.keys(&["-l", "music/library"]);
    tmux.keys(&["Enter"]);
    let moved_to = dir.path().join("music/library");
    tmux.wait_for("the move's outcome", Duration::from_secs(30), |s| {
        s.contains("moved song.ogg to ") && s.contains("music/library")
    });
    assert_eq!(
        std::fs::read(moved_to.join("song.ogg")).unwrap(),
        vec![7u8; 300_000]
    );
    assert!(!dir.path().join("auto/song.ogg").exists());
    tmux.wait_for("seeding again", Duration::from_secs(10), |s| {
        s.contains("seeding")
    });
    tmux.quit_cleanly(&status_file);
}
