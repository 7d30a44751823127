//! Transfer rates and rate limits, fed with `now` so tests control time.

use std::time::{Duration, Instant};

/// A transfer rate over a sliding window of one-second slots: `rate()` is what the last few seconds
/// averaged, so it follows a changing transfer within seconds and drops to zero when it stops (no stale
/// speeds on screen after a download ends).
///
/// ```
/// use std::time::{Duration, Instant};
/// use shoal_session::RateMeter;
///
/// let start = Instant::now();
/// let mut meter = RateMeter::new(start);
/// meter.record(start + Duration::from_millis(500), 1_000_000);
/// meter.record(start + Duration::from_millis(1500), 1_000_000);
/// assert_eq!(meter.rate(start + Duration::from_secs(2)), 1_000_000);
/// assert_eq!(meter.rate(start + Duration::from_secs(60)), 0);
/// ```
#[derive(Debug, Clone)]
pub struct RateMeter {
    slots: [u64; Self::SLOTS],
    /// Index of the second `slots[.. % SLOTS]` belongs to, counted from `epoch`.
    current: u64,
    epoch: Instant,
    total: u64,
}

impl RateMeter {
    const SLOTS: usize = 5;

    /// A meter starting at `now` with nothing transferred.
    pub fn new(now: Instant) -> Self {
        Self {
            slots: [0; Self::SLOTS],
            current: 0,
            epoch: now,
            total: 0,
        }
    }

    /// Records `bytes` transferred at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.slots[(self.current % Self::SLOTS as u64) as usize] += bytes;
        self.total += bytes;
    }

    /// Bytes per second over the last full seconds and the current partial one.
    pub fn rate(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let elapsed = now.saturating_duration_since(self.epoch);
        // The window: the full slots behind us plus the fraction of the current second.
        let partial = elapsed.as_secs_f64() - self.current as f64;
        let full = (Self::SLOTS - 1).min(self.current as usize) as f64;
        let window = full + partial.max(0.0);
        if window <= 0.0 {
            return 0;
        }
        (self.slots.iter().sum::<u64>() as f64 / window.max(1.0)) as u64
    }

    /// Everything ever recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn advance(&mut self, now: Instant) {
        let second = now.saturating_duration_since(self.epoch).as_secs();
        if second <= self.current {
            return;
        }
        let steps = (second - self.current).min(Self::SLOTS as u64);
        for step in 1..=steps {
            self.slots[((self.current + step) % Self::SLOTS as u64) as usize] = 0;
        }
        self.current = second;
    }
}

/// A token bucket: `rate` bytes per second with bursts up to `burst` bytes. `None` rate means unlimited.
///
/// ```
/// use std::time::{Duration, Instant};
/// use shoal_session::TokenBucket;
///
/// let now = Instant::now();
/// let mut limit = TokenBucket::new(Some(100_000), now); // 100 kB/s, bursts of 64 KiB
/// assert!(limit.take(now, 65_536).is_ok());
/// assert!(!limit.ready(now, 16_384));
/// let wait = limit.take(now, 16_384).unwrap_err();
/// assert_eq!(wait, Duration::from_secs_f64(0.16384));
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Option<u64>,
    burst: u64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket allowing `rate` bytes per second (unlimited with `None`), full at `now`.
    pub fn new(rate: Option<u64>, now: Instant) -> Self {
        // A quarter of a second of traffic, and at least a few blocks, smooths bursts without stalling.
        let burst = rate.map_or(0, |r| (r / 4).max(64 * 1024));
        Self {
            rate,
            burst,
            tokens: burst as f64,
            last: now,
        }
    }

    /// Changes the rate (bytes per second; `None` for unlimited).
    pub fn set_rate(&mut self, rate: Option<u64>, now: Instant) {
        *self = Self::new(rate, now);
    }

    /// The configured rate.
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// The tokens there are at `now` for a request of `bytes` (the bucket holds at least one request).
    fn refilled(&self, now: Instant, rate: u64, bytes: u64) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * rate.max(1) as f64).min(self.burst.max(bytes) as f64)
    }

    /// Whether `bytes` could be taken at `now`, without taking them.
    pub fn ready(&self, now: Instant, bytes: u64) -> bool {
        self.rate
            .is_none_or(|rate| self.refilled(now, rate, bytes) >= bytes as f64)
    }

    /// Takes `bytes` if available now. Returns `Ok(())` or `Err(wait)`: how long until they would be.
    pub fn take(&mut self, now: Instant, bytes: u64) -> Result<(), Duration> {
        let Some(rate) = self.rate else { return Ok(()) };
        self.tokens = self.refilled(now, rate, bytes);
        self.last = now;
        let rate = rate.max(1) as f64;
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((bytes as f64 - self.tokens) / rate))
        }
    }
}

/// A [`TokenBucket`] shared by many connections, waited on asynchronously. While it is unlimited
/// (the usual case) a block passes without taking the lock every connection shares.
#[derive(Debug)]
pub struct Limiter {
    bucket: std::sync::Mutex<TokenBucket>,
    limited: std::sync::atomic::AtomicBool,
}

impl Limiter {
    /// A limiter of `rate` bytes per second (`None`: unlimited).
    pub fn new(rate: Option<u64>) -> Self {
        Self {
            bucket: std::sync::Mutex::new(TokenBucket::new(rate, Instant::now())),
            limited: std::sync::atomic::AtomicBool::new(rate.is_some()),
        }
    }

    /// Changes the rate.
    pub fn set_rate(&self, rate: Option<u64>) {
        let mut bucket = self.bucket.lock().expect("no panics while held");
        bucket.set_rate(rate, Instant::now());
        self.limited
            .store(rate.is_some(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The current rate.
    pub fn rate(&self) -> Option<u64> {
        self.bucket.lock().expect("no panics while held").rate()
    }

    fn is_limited(&self) -> bool {
        self.limited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `bytes` could pass now without waiting (nothing is taken).
    pub fn ready(&self, bytes: u64) -> bool {
        if !self.is_limited() {
            return true;
        }
        let now = tokio::time::Instant::now().into_std();
        self.bucket
            .lock()
            .expect("no panics while held")
            .ready(now, bytes)
    }

    /// Waits until `bytes` may pass.
    pub async fn acquire(&self, bytes: u64) {
        if bytes == 0 || !self.is_limited() {
            return;
        }
        loop {
            let now = tokio::time::Instant::now().into_std();
            let wait = match self
                .bucket
                .lock()
                .expect("no panics while held")
                .take(now, bytes)
            {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_follows_and_decays() {
        let start = Instant::now();
        let mut meter = RateMeter::new(start);
        for tenth in 0..30 {
            meter.record(start + Duration::from_millis(tenth * 100), 100_000);
        }
        // A steady 1 MB/s for three seconds.
        let rate = meter.rate(start + Duration::from_secs(3));
        assert!((900_000..=1_100_000).contains(&rate), "{rate}");
        assert_eq!(meter.total(), 3_000_000);
        // Ten seconds of silence: back to zero, nothing stale.
        assert_eq!(meter.rate(start + Duration::from_secs(13)), 0);
    }

    #[test]
    fn bucket_limits_to_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Some(1_000_000), start);
        let mut sent = 0u64;
        let mut now = start;
        // Over ten simulated seconds, take 16 KiB blocks as fast as allowed.
        while now < start + Duration::from_secs(10) {
            match bucket.take(now, 16_384) {
                Ok(()) => sent += 16_384,
                Err(wait) => now += wait.max(Duration::from_millis(1)),
            }
        }
        let expected = 10_000_000 + 250_000; // ten seconds plus the initial burst (a quarter second)
        assert!(sent.abs_diff(expected) < 40_000, "sent {sent}");
        let mut open = TokenBucket::new(None, start);
        assert!(open.take(start, u64::MAX).is_ok());
    }
}
