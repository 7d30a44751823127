//! Where peers come from besides incoming connections and PEX: the trackers' announce task and the
//! DHT's lookups. Both run as their own tasks and report to the torrent (or, for a magnet link, to the
//! metadata stage, which hands them on to the torrent once the info dictionary is in).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, PeerId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::torrent::Event;

/// Bytes uploaded, downloaded and left, shared with the announce task so every announce reports the
/// current figures.
pub(crate) type Counters = Arc<[AtomicU64; 3]>;

/// A running announce task (BEP 3 / BEP 12): its commands and what each announce brought.
#[derive(Debug)]
pub(crate) struct Announce {
    pub task: JoinHandle<()>,
    pub commands: mpsc::Sender<shoal_tracker::AnnouncerCommand>,
    pub outcomes: mpsc::Receiver<shoal_tracker::AnnounceOutcome>,
}

impl Announce {
    /// Starts announcing `info_hash` to `trackers`, reading the figures from `counters` each time.
    pub(crate) fn spawn(
        client: Arc<shoal_tracker::TrackerClient>,
        trackers: Vec<Vec<String>>,
        (info_hash, peer_id, port): (InfoHash, PeerId, u16),
        seed: u64,
        counters: Counters,
    ) -> Self {
        let announcer = shoal_tracker::Announcer::new(
            trackers,
            shoal_tracker::AnnouncerConfig::default(),
            seed,
            Instant::now(),
        );
        let (commands, commands_rx) = mpsc::channel(8);
        let (outcomes_tx, outcomes) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            let make_request = |_job: &shoal_tracker::AnnounceJob| {
                let mut request = shoal_tracker::AnnounceRequest::new(info_hash, peer_id, port);
                let [uploaded, downloaded, left] = &*counters;
                request.uploaded = uploaded.load(Ordering::Relaxed);
                request.downloaded = downloaded.load(Ordering::Relaxed);
                request.left = left.load(Ordering::Relaxed);
                request
            };
            shoal_tracker::run_announcer(
                &client,
                announcer,
                make_request,
                commands_rx,
                outcomes_tx,
            )
            .await;
        });
        Self {
            task,
            commands,
            outcomes,
        }
    }

    /// Sends `stopped` to the trackers, waiting a little for them.
    pub(crate) async fn stop(self) {
        let _ = self
            .commands
            .send(shoal_tracker::AnnouncerCommand::Stop)
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// The next announce outcome, or never when there is no announce task.
pub(crate) async fn next_outcome(
    announce: &mut Option<Announce>,
) -> Option<shoal_tracker::AnnounceOutcome> {
    match announce {
        Some(announce) => announce.outcomes.recv().await,
        None => std::future::pending().await,
    }
}

/// Records an announce outcome in `trackers` (one entry per URL, replaced by its latest outcome) and
/// returns the peers it brought, minus ourselves (our own announce comes back in the list).
pub(crate) fn record_announce(
    trackers: &mut Vec<crate::TrackerStats>,
    outcome: shoal_tracker::AnnounceOutcome,
    our_port: u16,
) -> Vec<SocketAddr> {
    let (entry, peers) = match outcome.result {
        Ok(reply) => {
            let peers: Vec<SocketAddr> = reply
                .peers
                .into_iter()
                .filter(|addr| {
                    let ip = addr.ip();
                    !(addr.port() == our_port && (ip.is_loopback() || ip.is_unspecified()))
                })
                .collect();
            let entry = crate::TrackerStats {
                url: outcome.url,
                last: Ok(peers.len()),
                seeders: reply.complete,
                leechers: reply.incomplete,
                warning: reply.warning,
            };
            (entry, peers)
        }
        Err(e) => (
            crate::TrackerStats {
                url: outcome.url,
                last: Err(e.to_string()),
                seeders: None,
                leechers: None,
                warning: None,
            },
            Vec::new(),
        ),
    };
    match trackers.iter_mut().find(|t| t.url == entry.url) {
        Some(slot) => *slot = entry,
        None => trackers.push(entry),
    }
    peers
}

/// How often a torrent looks itself up in the DHT and announces there (BEP 5 peers expire after 30
/// minutes; libtorrent and Transmission re-announce about every 15).
pub(crate) const DHT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The wait before trying again after a lookup that found nobody.
pub(crate) const DHT_RETRY: Duration = Duration::from_secs(60);

/// A torrent's DHT task: looks up peers for the info-hash and announces our port, every
/// [`DHT_INTERVAL`] (sooner after a lookup that found nobody). Found peers go to `events` as
/// [`Event::AddPeers`]; `found` counts them for the stats.
#[derive(Debug)]
pub(crate) struct DhtPeers {
    task: JoinHandle<()>,
    /// Distinct peers the DHT found so far.
    pub found: Arc<AtomicUsize>,
}

impl DhtPeers {
    pub(crate) fn spawn(
        dht: shoal_dht::DhtNode,
        info_hash: InfoHash,
        port: u16,
        events: mpsc::Sender<Event>,
    ) -> Self {
        let found = Arc::new(AtomicUsize::new(0));
        let counter = found.clone();
        let task = tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            loop {
                let mut new = 0usize;
                if let Ok(mut peers) = dht.get_peers(info_hash).await {
                    let mut batch = Vec::new();
                    loop {
                        // Peers go on in small batches, so the first ones are dialed at once.
                        let next = if batch.is_empty() {
                            peers.recv().await
                        } else {
                            match tokio::time::timeout(Duration::from_millis(50), peers.recv())
                                .await
                            {
                                Ok(next) => next,
                                Err(_) => {
                                    let _ = events
                                        .send(Event::AddPeers(std::mem::take(&mut batch)))
                                        .await;
                                    continue;
                                }
                            }
                        };
                        let Some(addr) = next else { break };
                        if seen.len() < 10_000 && seen.insert(addr) {
                            new += 1;
                            counter.fetch_add(1, Ordering::Relaxed);
                            batch.push(addr);
                        }
                    }
                    if !batch.is_empty() {
                        let _ = events.send(Event::AddPeers(batch)).await;
                    }
                }
                if events.is_closed() {
                    return;
                }
                let _ = dht.announce(info_hash, Some(port)).await;
                let wait = if new == 0 && seen.is_empty() {
                    DHT_RETRY
                } else {
                    DHT_INTERVAL
                };
                tokio::time::sleep(wait).await;
            }
        });
        Self { task, found }
    }
}

impl Drop for DhtPeers {
    fn drop(&mut self) {
        self.task.abort();
    }
}
