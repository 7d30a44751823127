//! Multitracker announcing (BEP 12) as a sans-IO scheduler.
//!
//! Policy, in one place:
//! - Each tier is shuffled once, when the [`Announcer`] is made. Announces walk the tiers in order and
//!   each tier front to back; a tracker that answers moves to the front of its tier and the next announce
//!   starts again from the first tier. A failure falls through to the next tracker at once.
//! - When every tracker of every tier has failed in one round, the round is retried after a backoff of
//!   15 s × 2.5^(k−1) for the k-th failed round in a row, at most one hour (HOSTILE.md: backoff ×2.5; about
//!   seven rounds in the first 30 minutes).
//! - A success schedules the next regular announce after the tracker's `interval`, clamped to between
//!   5 minutes and 1 day (HOSTILE.md 39: `interval` 0 or 10^9); an absent interval counts as 30 minutes.
//!   `min interval` is clamped to between 60 s and the interval; it bounds early announces asked for with
//!   [`Announcer::request_peers`].
//! - `started` is sent until a tracker accepts it; `completed` once, after [`Announcer::handle_completed`]
//!   (never for a torrent that was complete from the start: do not call it then); `stopped` after
//!   [`Announcer::handle_stop`], only if `started` was accepted, with one round of tries and no backoff.
//!   Event announces go out at once, without waiting for the interval.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{AnnounceEvent, AnnounceResponse, Rng, TrackerError};

/// Bounds and backoff of an [`Announcer`]; the defaults are those of the module documentation.
///
/// ```
/// let config = shoal_tracker::AnnouncerConfig::default();
/// assert_eq!(config.min_announce_interval.as_secs(), 300);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncerConfig {
    /// The shortest regular interval accepted from a tracker.
    pub min_announce_interval: Duration,
    /// The longest regular interval accepted from a tracker.
    pub max_announce_interval: Duration,
    /// The interval used when a tracker gives none.
    pub default_interval: Duration,
    /// The shortest `min interval` accepted from a tracker (and the one used when it gives none).
    pub min_min_interval: Duration,
    /// The wait after the first round in which every tracker failed.
    pub backoff_base: Duration,
    /// Each further failed round multiplies the wait by this.
    pub backoff_factor: f64,
    /// The longest wait between failed rounds.
    pub max_backoff: Duration,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        Self {
            min_announce_interval: Duration::from_secs(300),
            max_announce_interval: Duration::from_secs(24 * 60 * 60),
            default_interval: Duration::from_secs(30 * 60),
            min_min_interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(15),
            backoff_factor: 2.5,
            max_backoff: Duration::from_secs(60 * 60),
        }
    }
}

/// One announce the [`Announcer`] wants made now; see [`Announcer`] for one being made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnounceJob {
    /// The tracker to ask.
    pub url: String,
    /// The event to report.
    pub event: AnnounceEvent,
    /// The `tracker id` this tracker gave earlier, to send back.
    pub tracker_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    NotYet,
    Pending,
    Sent,
}

/// The announce scheduler of one torrent over its tiers of trackers (BEP 12); sans-IO.
///
/// Inputs: [`handle_response`](Self::handle_response) after each announce,
/// [`handle_completed`](Self::handle_completed), [`handle_stop`](Self::handle_stop),
/// [`request_peers`](Self::request_peers). Outputs: [`poll_announce`](Self::poll_announce) (at most one
/// announce in flight) and [`poll_timeout`](Self::poll_timeout) (when to poll again). See the module
/// documentation for the policy; [`run_announcer`](crate::run_announcer) is a tokio driver.
///
/// ```
/// use std::time::{Duration, Instant};
/// use shoal_tracker::{AnnounceEvent, AnnounceResponse, Announcer, AnnouncerConfig, TrackerError};
///
/// let now = Instant::now();
/// let tiers = vec![vec!["udp://a.example:1".to_owned()], vec!["http://b.example/announce".to_owned()]];
/// let mut announcer = Announcer::new(tiers, AnnouncerConfig::default(), 1, now);
///
/// let job = announcer.poll_announce(now).unwrap();
/// assert_eq!((job.url.as_str(), job.event), ("udp://a.example:1", AnnounceEvent::Started));
/// announcer.handle_response(now, Err(&TrackerError::Timeout));
///
/// let job = announcer.poll_announce(now).unwrap(); // falls through to the next tier
/// assert_eq!(job.url, "http://b.example/announce");
/// announcer.handle_response(now, Ok(&AnnounceResponse::default()));
/// assert_eq!(announcer.poll_timeout(), Some(now + Duration::from_secs(30 * 60)));
/// ```
#[derive(Debug)]
pub struct Announcer {
    config: AnnouncerConfig,
    tiers: Vec<Vec<String>>,
    /// The tier and position the next announce of this round goes to.
    cursor: (usize, usize),
    next_at: Instant,
    in_flight: Option<(usize, usize, AnnounceEvent)>,
    started_sent: bool,
    completion: Completion,
    stop_requested: bool,
    finished: bool,
    failed_rounds: u32,
    last_success: Option<Instant>,
    min_interval: Duration,
    tracker_ids: HashMap<String, Vec<u8>>,
}

impl Announcer {
    /// A scheduler for `tiers` (empty tiers are dropped), each shuffled with a generator seeded by `seed`;
    /// the first announce (`started`) is due at `now`.
    pub fn new(tiers: Vec<Vec<String>>, config: AnnouncerConfig, seed: u64, now: Instant) -> Self {
        let mut rng = Rng::new(seed);
        let tiers: Vec<Vec<String>> = tiers
            .into_iter()
            .filter(|tier| !tier.is_empty())
            .map(|mut tier| {
                rng.shuffle(&mut tier);
                tier
            })
            .collect();
        let min_interval = config.min_min_interval;
        Self {
            config,
            finished: tiers.is_empty(),
            tiers,
            cursor: (0, 0),
            next_at: now,
            in_flight: None,
            started_sent: false,
            completion: Completion::NotYet,
            stop_requested: false,
            failed_rounds: 0,
            last_success: None,
            min_interval,
            tracker_ids: HashMap::new(),
        }
    }

    /// The tiers in their current order (shuffled, answering trackers first).
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Whether there is nothing more to do: the `stopped` announce is done (or was not needed, or failed
    /// on every tracker), or there are no trackers.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Failed rounds in a row (every tracker failed), reset by a success.
    pub fn failed_rounds(&self) -> u32 {
        self.failed_rounds
    }

    /// The announce to make now, if one is due and none is in flight. Call
    /// [`handle_response`](Self::handle_response) with its outcome.
    pub fn poll_announce(&mut self, now: Instant) -> Option<AnnounceJob> {
        if self.finished || self.in_flight.is_some() || now < self.next_at {
            return None;
        }
        let (tier, position) = self.cursor;
        let url = self.tiers.get(tier)?.get(position)?.clone();
        let event = self.next_event();
        self.in_flight = Some((tier, position, event));
        Some(AnnounceJob {
            tracker_id: self.tracker_ids.get(&url).cloned(),
            url,
            event,
        })
    }

    /// When [`poll_announce`](Self::poll_announce) will next have work, or `None` while an announce is in
    /// flight or when finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.finished && self.in_flight.is_none()).then_some(self.next_at)
    }

    /// Records the outcome of the announce in flight; ignored when none is.
    pub fn handle_response(
        &mut self,
        now: Instant,
        result: Result<&AnnounceResponse, &TrackerError>,
    ) {
        let Some((tier, position, event)) = self.in_flight.take() else {
            return;
        };
        match result {
            Ok(reply) => {
                // BEP 12: a tracker that answers moves to the front of its tier.
                let url = self.tiers[tier].remove(position);
                if let Some(id) = &reply.tracker_id {
                    self.tracker_ids.insert(url.clone(), id.clone());
                }
                self.tiers[tier].insert(0, url);
                self.cursor = (0, 0);
                self.failed_rounds = 0;
                self.last_success = Some(now);
                // `max` then `min` rather than `clamp`, which panics on a misconfigured range.
                let interval = reply
                    .interval
                    .unwrap_or(self.config.default_interval)
                    .max(self.config.min_announce_interval)
                    .min(self.config.max_announce_interval);
                self.min_interval = reply
                    .min_interval
                    .unwrap_or(self.config.min_min_interval)
                    .min(interval)
                    .max(self.config.min_min_interval);
                match event {
                    AnnounceEvent::Started => self.started_sent = true,
                    AnnounceEvent::Completed => self.completion = Completion::Sent,
                    AnnounceEvent::Stopped => self.finished = true,
                    AnnounceEvent::None => {}
                }
                // An event that became due while this announce was in flight goes out at once.
                let urgent = self.next_event() != AnnounceEvent::None;
                self.next_at = if urgent { now } else { now + interval };
            }
            Err(_) if self.stop_requested && !self.started_sent => {
                // Leaving before any tracker knew of us: nothing to undo.
                self.finished = true;
            }
            Err(_) => {
                let next = if position + 1 < self.tiers[tier].len() {
                    Some((tier, position + 1))
                } else if tier + 1 < self.tiers.len() {
                    Some((tier + 1, 0))
                } else {
                    None
                };
                match next {
                    Some(cursor) => {
                        self.cursor = cursor;
                        self.next_at = now;
                    }
                    None => {
                        self.cursor = (0, 0);
                        self.failed_rounds = self.failed_rounds.saturating_add(1);
                        if self.stop_requested {
                            // Leaving: one round of tries is enough; the tracker forgets us anyway.
                            self.finished = true;
                        }
                        self.next_at = now + self.backoff();
                    }
                }
            }
        }
    }

    /// The download has just finished: a `completed` announce goes out at once (after `started`, if that
    /// is still pending). Call it once, and not for a torrent that was complete when it was added.
    ///
    /// ```
    /// use std::time::Instant;
    /// use shoal_tracker::*;
    ///
    /// let now = Instant::now();
    /// let mut announcer = Announcer::new(vec![vec!["udp://t.example:1".into()]], AnnouncerConfig::default(), 1, now);
    /// announcer.poll_announce(now).unwrap();
    /// announcer.handle_response(now, Ok(&AnnounceResponse::default()));
    /// announcer.handle_completed(now);
    /// assert_eq!(announcer.poll_announce(now).unwrap().event, AnnounceEvent::Completed);
    /// ```
    pub fn handle_completed(&mut self, now: Instant) {
        if self.completion != Completion::NotYet || self.stop_requested {
            return;
        }
        self.completion = Completion::Pending;
        if self.started_sent {
            self.next_at = self.next_at.min(now);
        }
    }

    /// We are leaving the swarm: a `stopped` announce goes out at once if a tracker ever accepted
    /// `started`; otherwise the announcer finishes as soon as nothing is in flight.
    ///
    /// ```
    /// use std::time::Instant;
    /// use shoal_tracker::*;
    ///
    /// let now = Instant::now();
    /// let mut announcer = Announcer::new(vec![vec!["udp://t.example:1".into()]], AnnouncerConfig::default(), 1, now);
    /// announcer.poll_announce(now).unwrap();
    /// announcer.handle_response(now, Ok(&AnnounceResponse::default()));
    /// announcer.handle_stop(now);
    /// assert_eq!(announcer.poll_announce(now).unwrap().event, AnnounceEvent::Stopped);
    /// announcer.handle_response(now, Ok(&AnnounceResponse::default()));
    /// assert!(announcer.is_finished());
    /// ```
    pub fn handle_stop(&mut self, now: Instant) {
        if self.stop_requested || self.finished {
            return;
        }
        self.stop_requested = true;
        if !self.started_sent && self.in_flight.is_none() {
            self.finished = true;
            return;
        }
        self.cursor = (0, 0);
        self.next_at = now;
    }

    /// We want more peers: announce as soon as the tracker's `min interval` since the last success allows,
    /// if that is sooner than the regular schedule. No effect before `started` was accepted.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shoal_tracker::*;
    ///
    /// let now = Instant::now();
    /// let mut announcer = Announcer::new(vec![vec!["udp://t.example:1".into()]], AnnouncerConfig::default(), 1, now);
    /// announcer.poll_announce(now).unwrap();
    /// announcer.handle_response(now, Ok(&AnnounceResponse::default()));
    /// announcer.request_peers(now);
    /// assert_eq!(announcer.poll_timeout(), Some(now + Duration::from_secs(60))); // the min interval floor
    /// ```
    pub fn request_peers(&mut self, now: Instant) {
        let Some(last) = self.last_success else {
            return;
        };
        if self.failed_rounds > 0 || self.stop_requested {
            return;
        }
        let earliest = (last + self.min_interval).max(now);
        self.next_at = self.next_at.min(earliest);
    }

    fn next_event(&self) -> AnnounceEvent {
        if self.stop_requested {
            if self.started_sent {
                AnnounceEvent::Stopped
            } else {
                AnnounceEvent::None
            }
        } else if !self.started_sent {
            AnnounceEvent::Started
        } else if self.completion == Completion::Pending {
            AnnounceEvent::Completed
        } else {
            AnnounceEvent::None
        }
    }

    fn backoff(&self) -> Duration {
        let exponent = i32::try_from(self.failed_rounds.saturating_sub(1).min(64)).unwrap_or(64);
        let secs =
            self.config.backoff_base.as_secs_f64() * self.config.backoff_factor.powi(exponent);
        let max = self.config.max_backoff.as_secs_f64();
        Duration::from_secs_f64(if secs.is_finite() { secs.min(max) } else { max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(spec: &[&[&str]]) -> Vec<Vec<String>> {
        spec.iter()
            .map(|tier| tier.iter().map(|url| (*url).to_owned()).collect())
            .collect()
    }

    fn ok(interval: u64) -> AnnounceResponse {
        AnnounceResponse {
            interval: Some(Duration::from_secs(interval)),
            ..AnnounceResponse::default()
        }
    }

    fn fail() -> TrackerError {
        TrackerError::Timeout
    }

    #[test]
    fn tiers_are_shuffled_once_and_deterministically() {
        let urls: Vec<&str> = vec!["a", "b", "c", "d", "e", "f", "g", "h"];
        let now = Instant::now();
        let one = Announcer::new(tiers(&[&urls]), AnnouncerConfig::default(), 1, now);
        let again = Announcer::new(tiers(&[&urls]), AnnouncerConfig::default(), 1, now);
        assert_eq!(one.tiers(), again.tiers());
        let other = Announcer::new(tiers(&[&urls]), AnnouncerConfig::default(), 2, now);
        assert_ne!(one.tiers(), other.tiers(), "seeds 1 and 2 happen to agree");
        let mut sorted = one.tiers()[0].clone();
        sorted.sort();
        assert_eq!(sorted, urls);
    }

    #[test]
    fn answering_tracker_moves_to_front_and_failures_fall_through() {
        let now = Instant::now();
        let mut announcer = Announcer::new(
            tiers(&[&["a1", "a2"], &["b1"]]),
            AnnouncerConfig::default(),
            0,
            now,
        );
        let order = announcer.tiers()[0].clone();
        let job = announcer.poll_announce(now).unwrap();
        assert_eq!(job.url, order[0]);
        assert!(
            announcer.poll_announce(now).is_none(),
            "one announce in flight"
        );
        announcer.handle_response(now, Err(&fail()));
        let job = announcer.poll_announce(now).unwrap();
        assert_eq!(job.url, order[1]);
        assert_eq!(job.event, AnnounceEvent::Started);
        announcer.handle_response(now, Ok(&ok(1800)));
        assert_eq!(announcer.tiers()[0], [order[1].clone(), order[0].clone()]);
        let next = now + Duration::from_secs(1800);
        assert_eq!(announcer.poll_timeout(), Some(next));
        assert!(
            announcer
                .poll_announce(next - Duration::from_secs(1))
                .is_none()
        );
        let job = announcer.poll_announce(next).unwrap();
        assert_eq!(
            (job.url.as_str(), job.event),
            (order[1].as_str(), AnnounceEvent::None)
        );
    }

    #[test]
    fn all_tiers_failing_backs_off_by_two_and_a_half() {
        let start = Instant::now();
        let mut announcer = Announcer::new(
            tiers(&[&["a"], &["b"]]),
            AnnouncerConfig::default(),
            0,
            start,
        );
        let mut now = start;
        let mut waits = Vec::new();
        let mut attempts_in_30_min = 0;
        for _ in 0..10 {
            for _ in 0..2 {
                let job = announcer.poll_announce(now).unwrap();
                assert_eq!(job.event, AnnounceEvent::Started);
                if job.url == "a" && now - start <= Duration::from_secs(1800) {
                    attempts_in_30_min += 1;
                }
                announcer.handle_response(now, Err(&fail()));
            }
            let next = announcer.poll_timeout().unwrap();
            waits.push((next - now).as_secs_f64());
            now = next;
        }
        assert_eq!(waits[..5], [15.0, 37.5, 93.75, 234.375, 585.9375]);
        assert_eq!(waits[9], 3600.0);
        // HOSTILE.md T6 (b): at most 8 attempts per tracker in the first 30 minutes.
        assert!(attempts_in_30_min <= 8, "{attempts_in_30_min}");
        // A success resets the backoff.
        announcer.poll_announce(now).unwrap();
        announcer.handle_response(now, Ok(&ok(600)));
        assert_eq!(announcer.failed_rounds(), 0);
        assert_eq!(
            announcer.poll_timeout(),
            Some(now + Duration::from_secs(600))
        );
    }

    #[test]
    fn intervals_are_clamped() {
        let check = |interval: Option<u64>, expected: u64| {
            let now = Instant::now();
            let mut announcer =
                Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, now);
            announcer.poll_announce(now).unwrap();
            let reply = AnnounceResponse {
                interval: interval.map(Duration::from_secs),
                ..AnnounceResponse::default()
            };
            announcer.handle_response(now, Ok(&reply));
            assert_eq!(
                announcer.poll_timeout(),
                Some(now + Duration::from_secs(expected)),
                "{interval:?}"
            );
        };
        check(Some(0), 300);
        check(Some(299), 300);
        check(Some(300), 300);
        check(Some(301), 301);
        check(Some(86_400), 86_400);
        check(Some(86_401), 86_400);
        check(Some(1_000_000_000), 86_400);
        check(None, 1800);
    }

    #[test]
    fn events_are_sent_exactly_when_they_should_be() {
        let t0 = Instant::now();
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        // `started` is retried until accepted.
        assert_eq!(
            announcer.poll_announce(t0).unwrap().event,
            AnnounceEvent::Started
        );
        announcer.handle_response(t0, Err(&fail()));
        let t1 = announcer.poll_timeout().unwrap();
        assert_eq!(
            announcer.poll_announce(t1).unwrap().event,
            AnnounceEvent::Started
        );
        announcer.handle_response(t1, Ok(&ok(1800)));
        // Regular announces carry no event.
        let t2 = announcer.poll_timeout().unwrap();
        assert_eq!(
            announcer.poll_announce(t2).unwrap().event,
            AnnounceEvent::None
        );
        announcer.handle_response(t2, Ok(&ok(1800)));
        // `completed` goes out at once, once, and is retried if it fails.
        let t3 = t2 + Duration::from_secs(10);
        announcer.handle_completed(t3);
        assert_eq!(announcer.poll_timeout(), Some(t3));
        assert_eq!(
            announcer.poll_announce(t3).unwrap().event,
            AnnounceEvent::Completed
        );
        announcer.handle_response(t3, Err(&fail()));
        let t4 = announcer.poll_timeout().unwrap();
        assert_eq!(
            announcer.poll_announce(t4).unwrap().event,
            AnnounceEvent::Completed
        );
        announcer.handle_response(t4, Ok(&ok(1800)));
        announcer.handle_completed(t4);
        let t5 = announcer.poll_timeout().unwrap();
        assert_eq!(t5, t4 + Duration::from_secs(1800));
        assert_eq!(
            announcer.poll_announce(t5).unwrap().event,
            AnnounceEvent::None
        );
        announcer.handle_response(t5, Ok(&ok(1800)));
        // `stopped` goes out at once, then the announcer is finished.
        let t6 = t5 + Duration::from_secs(1);
        announcer.handle_stop(t6);
        assert_eq!(
            announcer.poll_announce(t6).unwrap().event,
            AnnounceEvent::Stopped
        );
        assert!(!announcer.is_finished());
        announcer.handle_response(t6, Ok(&ok(1800)));
        assert!(announcer.is_finished());
        assert_eq!(announcer.poll_timeout(), None);
        assert!(
            announcer
                .poll_announce(t6 + Duration::from_secs(99_999))
                .is_none()
        );
    }

    #[test]
    fn completed_during_started_goes_right_after_it() {
        let t0 = Instant::now();
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        assert_eq!(
            announcer.poll_announce(t0).unwrap().event,
            AnnounceEvent::Started
        );
        announcer.handle_completed(t0);
        announcer.handle_response(t0, Ok(&ok(1800)));
        assert_eq!(
            announcer.poll_announce(t0).unwrap().event,
            AnnounceEvent::Completed
        );
    }

    #[test]
    fn stop_before_started_sends_nothing() {
        let t0 = Instant::now();
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        announcer.handle_stop(t0);
        assert!(announcer.is_finished());
        assert!(announcer.poll_announce(t0).is_none());

        // Stop while `started` is in flight and then fails: nothing to undo.
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        announcer.poll_announce(t0).unwrap();
        announcer.handle_stop(t0);
        assert!(!announcer.is_finished());
        announcer.handle_response(t0, Err(&fail()));
        assert!(announcer.is_finished());

        // Stop while `started` is in flight and then succeeds: `stopped` follows.
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        announcer.poll_announce(t0).unwrap();
        announcer.handle_stop(t0);
        announcer.handle_response(t0, Ok(&ok(1800)));
        assert_eq!(
            announcer.poll_announce(t0).unwrap().event,
            AnnounceEvent::Stopped
        );
    }

    #[test]
    fn stopped_gives_up_after_one_round() {
        let t0 = Instant::now();
        let mut announcer =
            Announcer::new(tiers(&[&["a"], &["b"]]), AnnouncerConfig::default(), 0, t0);
        announcer.poll_announce(t0).unwrap();
        announcer.handle_response(t0, Ok(&ok(1800)));
        announcer.handle_stop(t0);
        for url in ["a", "b"] {
            let job = announcer.poll_announce(t0).unwrap();
            assert_eq!((job.url.as_str(), job.event), (url, AnnounceEvent::Stopped));
            announcer.handle_response(t0, Err(&fail()));
        }
        assert!(announcer.is_finished());
    }

    #[test]
    fn request_peers_honours_min_interval_and_tracker_id_is_sent_back() {
        let t0 = Instant::now();
        let mut announcer = Announcer::new(tiers(&[&["a"]]), AnnouncerConfig::default(), 0, t0);
        announcer.request_peers(t0);
        assert_eq!(
            announcer.poll_timeout(),
            Some(t0),
            "no effect before started"
        );
        announcer.poll_announce(t0).unwrap();
        let reply = AnnounceResponse {
            interval: Some(Duration::from_secs(1800)),
            min_interval: Some(Duration::from_secs(120)),
            tracker_id: Some(b"id-1".to_vec()),
            ..AnnounceResponse::default()
        };
        announcer.handle_response(t0, Ok(&reply));
        announcer.request_peers(t0 + Duration::from_secs(5));
        assert_eq!(
            announcer.poll_timeout(),
            Some(t0 + Duration::from_secs(120))
        );
        let job = announcer
            .poll_announce(t0 + Duration::from_secs(120))
            .unwrap();
        assert_eq!(job.tracker_id.as_deref(), Some(&b"id-1"[..]));
        // A `min interval` of 0 is raised to 60 s.
        let reply = AnnounceResponse {
            min_interval: Some(Duration::ZERO),
            ..ok(1800)
        };
        let t1 = t0 + Duration::from_secs(120);
        announcer.handle_response(t1, Ok(&reply));
        announcer.request_peers(t1);
        assert_eq!(announcer.poll_timeout(), Some(t1 + Duration::from_secs(60)));
    }

    #[test]
    fn no_trackers_is_finished() {
        let announcer = Announcer::new(vec![vec![]], AnnouncerConfig::default(), 0, Instant::now());
        assert!(announcer.is_finished());
    }
}
