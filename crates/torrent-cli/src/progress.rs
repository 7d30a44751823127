//! A one-line progress bar for long operations (hashing, rechecking).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::format;

/// A one-line progress bar on stderr, redrawn at most ten times a second; silent when stderr is not a
/// terminal.
pub struct ProgressBar {
    enabled: bool,
    last: Mutex<Option<Instant>>,
    started: Instant,
}

impl ProgressBar {
    /// A bar drawn only when `enabled` (stderr is a terminal).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            last: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Shows `done` of `total` bytes.
    pub fn update(&self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_some_and(|at| now - at < Duration::from_millis(100)) && done < total {
            return;
        }
        *last = Some(now);
        let fraction = done as f64 / total.max(1) as f64;
        let filled = (fraction * 30.0) as usize;
        let rate = done as f64 / (now - self.started).as_secs_f64().max(1e-9) / 1e6;
        eprint!(
            "\r[{}{}] {:>3.0}% {} / {} {rate:.0} MB/s ",
            "#".repeat(filled),
            ".".repeat(30 - filled.min(30)),
            fraction * 100.0,
            format::size(done),
            format::size(total)
        );
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
