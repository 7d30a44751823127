//! The tokio drivers: [`TrackerClient`] makes HTTP(S) requests with reqwest and runs the UDP core on a
//! socket; [`run_announcer`] runs an [`Announcer`] with it.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_metainfo::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use url::{Host, Url};

use crate::udp::{MAX_SCRAPE_HASHES, UdpRequest, UdpResponse, UdpTracker};
use crate::{
    AnnounceEvent, AnnounceJob, AnnounceRequest, AnnounceResponse, Announcer, ScrapeResponse,
    TrackerError, UdpConfig,
};

/// tokio's clock, so tests with paused time drive the cores too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Settings of a [`TrackerClient`].
///
/// ```
/// let config = shoal_tracker::ClientConfig::default();
/// assert_eq!(config.max_response_size, 2 << 20);
/// assert_eq!(config.max_redirects, 3);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The longest one announce or scrape may take, HTTP or UDP, redirects and retransmissions included.
    /// UDP retransmits per [`UdpConfig`] within it.
    pub timeout: Duration,
    /// The longest a TCP (and TLS) connection to an HTTP tracker may take to open.
    pub connect_timeout: Duration,
    /// Redirects followed (HOSTILE.md 37); only to `http` and `https`, never in a loop, and never from a
    /// public host to a loopback, private or link-local address.
    pub max_redirects: usize,
    /// The largest HTTP reply body accepted, after gzip decoding (HOSTILE.md 38).
    pub max_response_size: usize,
    /// UDP retransmission timing (BEP 15).
    pub udp: UdpConfig,
    /// Accept internationalised (IDNA) tracker hosts; off against homographs (HOSTILE.md 43).
    pub allow_idna: bool,
    /// The `User-Agent` of HTTP requests.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 3,
            max_response_size: 2 << 20,
            udp: UdpConfig::default(),
            allow_idna: false,
            user_agent: concat!("shoal/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientConfig {
    /// The default settings with another [`timeout`](Self::timeout).
    ///
    /// ```
    /// let config = shoal_tracker::ClientConfig::with_timeout(std::time::Duration::from_secs(5));
    /// assert_eq!(config.timeout.as_secs(), 5);
    /// ```
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }
}

/// The result of asking one tracker, from [`TrackerClient::announce_all`] and
/// [`TrackerClient::scrape_all`] (which has an example).
#[derive(Debug)]
pub struct TrackerResult<T> {
    /// The tracker's URL, as given.
    pub url: String,
    /// Its tier (0 first).
    pub tier: usize,
    /// The reply or why there is none.
    pub result: Result<T, TrackerError>,
}

/// Makes announces and scrapes over HTTP(S) and UDP. Cheap to clone (clones share the HTTP connection
/// pool and the UDP connection ids).
///
/// ```no_run
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_tracker::{AnnounceRequest, ClientConfig, TrackerClient};
///
/// # async fn example() -> Result<(), shoal_tracker::TrackerError> {
/// let client = TrackerClient::new(ClientConfig::default())?;
/// let request = AnnounceRequest::new(InfoHash([1; 20]), PeerId(*b"-SH0001-123456789012"), 6881);
/// let reply = client.announce("udp://127.0.0.1:6969/announce", &request).await?;
/// for peer in &reply.peers {
///     println!("{peer}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    /// UDP connection ids by tracker address, with the time each was received (BEP 15: reused for a
    /// minute).
    udp_connections: Arc<Mutex<HashMap<SocketAddr, (u64, Instant)>>>,
    seeds: Arc<AtomicU64>,
}

impl TrackerClient {
    /// A client with these settings. It never uses system proxies: trackers are contacted directly.
    ///
    /// # Errors
    /// [`TrackerError::Http`] if the TLS backend cannot be set up.
    pub fn new(config: ClientConfig) -> Result<Self, TrackerError> {
        let max_redirects = config.max_redirects;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            match redirect_refusal(attempt.url(), attempt.previous(), max_redirects) {
                Some(reason) => attempt.error(reason),
                None => attempt.follow(),
            }
        });
        let http = reqwest::Client::builder()
            .redirect(redirect)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .gzip(true)
            .no_proxy()
            .build()
            .map_err(TrackerError::Http)?;
        let seed = std::collections::hash_map::RandomState::new().hash_one(now());
        Ok(Self {
            http,
            config: Arc::new(config),
            udp_connections: Arc::default(),
            seeds: Arc::new(AtomicU64::new(seed)),
        })
    }

    /// The settings.
    ///
    /// ```
    /// let client = shoal_tracker::TrackerClient::new(Default::default())?;
    /// assert_eq!(client.config().max_redirects, 3);
    /// # Ok::<(), shoal_tracker::TrackerError>(())
    /// ```
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Announces to one tracker (`http`, `https` or `udp` URL).
    ///
    /// # Errors
    /// Any [`TrackerError`]: a bad URL, the tracker's `failure reason`, a malformed or oversized reply,
    /// an HTTP status, a redirect refused, a timeout or a socket error.
    pub async fn announce(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let url = crate::parse_tracker_url(url, self.config.allow_idna)?;
        let work = async {
            if url.scheme() == "udp" {
                let request = UdpRequest::Announce(request.clone());
                match self.udp(&url, vec![request]).await?.pop() {
                    Some(UdpResponse::Announce(reply)) => Ok(reply),
                    _ => Err(TrackerError::Malformed(
                        "udp reply does not match the request",
                    )),
                }
            } else {
                let body = self.http_get(crate::announce_url(&url, request)).await?;
                crate::decode_announce_response(&body)
            }
        };
        tokio::time::timeout(self.config.timeout, work)
            .await
            .unwrap_or(Err(TrackerError::Timeout))
    }

    /// Scrapes one tracker for any number of torrents: one HTTP request (BEP 48), or UDP requests of up to
    /// [`MAX_SCRAPE_HASHES`] each (BEP 15).
    ///
    /// ```no_run
    /// # async fn example(client: shoal_tracker::TrackerClient) -> Result<(), shoal_tracker::TrackerError> {
    /// let hash = shoal_metainfo::InfoHash([1; 20]);
    /// let scrape = client.scrape("http://127.0.0.1:6969/announce", &[hash]).await?;
    /// if let Some(stats) = scrape.get(&hash) {
    ///     println!("{} seeders, {} leechers", stats.complete, stats.incomplete);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`announce`](Self::announce), and [`TrackerError::ScrapeUnsupported`] for an HTTP URL that does
    /// not end in `announce…`.
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        let url = crate::parse_tracker_url(url, self.config.allow_idna)?;
        if info_hashes.is_empty() {
            return Err(TrackerError::ScrapeCount(0));
        }
        let work = async {
            if url.scheme() == "udp" {
                let requests = info_hashes
                    .chunks(MAX_SCRAPE_HASHES)
                    .map(|chunk| UdpRequest::Scrape(chunk.to_vec()))
                    .collect();
                let mut scrape = ScrapeResponse::default();
                for response in self.udp(&url, requests).await? {
                    if let UdpResponse::Scrape(part) = response {
                        scrape.files.extend(part.files);
                    }
                }
                Ok(scrape)
            } else {
                let body = self.http_get(crate::scrape_url(&url, info_hashes)?).await?;
                crate::decode_scrape_response(&body)
            }
        };
        tokio::time::timeout(self.config.timeout, work)
            .await
            .unwrap_or(Err(TrackerError::Timeout))
    }

    /// Announces to every tracker of every tier at once and returns one result per URL, in tier order.
    /// A debugging aid (`torrent-cli announce`): a session uses an [`Announcer`] instead, which asks one
    /// tracker at a time as BEP 12 says.
    ///
    /// ```no_run
    /// # async fn example(client: shoal_tracker::TrackerClient, request: shoal_tracker::AnnounceRequest) {
    /// let tiers = vec![vec!["http://127.0.0.1:6969/announce".to_owned(), "udp://127.0.0.1:6969".to_owned()]];
    /// for answer in client.announce_all(&tiers, &request).await {
    ///     match answer.result {
    ///         Ok(reply) => println!("{} (tier {}): {} peers", answer.url, answer.tier, reply.peers.len()),
    ///         Err(err) => println!("{}: {err}", answer.url),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn announce_all(
        &self,
        tiers: &[Vec<String>],
        request: &AnnounceRequest,
    ) -> Vec<TrackerResult<AnnounceResponse>> {
        let request = Arc::new(request.clone());
        self.ask_all(tiers, move |client, url| {
            let request = Arc::clone(&request);
            async move { client.announce(&url, &request).await }
        })
        .await
    }

    /// Scrapes every tracker of every tier at once for `info_hashes`; one result per URL, in tier order.
    ///
    /// ```no_run
    /// # async fn example(client: shoal_tracker::TrackerClient) {
    /// let tiers = vec![vec!["udp://127.0.0.1:6969".to_owned()]];
    /// let hash = shoal_metainfo::InfoHash([1; 20]);
    /// for answer in client.scrape_all(&tiers, &[hash]).await {
    ///     if let Ok(scrape) = &answer.result {
    ///         println!("{}: {:?}", answer.url, scrape.get(&hash));
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn scrape_all(
        &self,
        tiers: &[Vec<String>],
        info_hashes: &[InfoHash],
    ) -> Vec<TrackerResult<ScrapeResponse>> {
        let hashes: Arc<[InfoHash]> = info_hashes.into();
        self.ask_all(tiers, move |client, url| {
            let hashes = Arc::clone(&hashes);
            async move { client.scrape(&url, &hashes).await }
        })
        .await
    }

    async fn ask_all<T, F, Fut>(&self, tiers: &[Vec<String>], ask: F) -> Vec<TrackerResult<T>>
    where
        T: Send + 'static,
        F: Fn(TrackerClient, String) -> Fut,
        Fut: Future<Output = Result<T, TrackerError>> + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        let mut results = Vec::new();
        for (tier, urls) in tiers.iter().enumerate() {
            for url in urls {
                let index = results.len();
                results.push(TrackerResult {
                    url: url.clone(),
                    tier,
                    result: Err(TrackerError::Timeout),
                });
                let answer = ask(self.clone(), url.clone());
                tasks.spawn(async move { (index, answer.await) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, result)) = done {
                results[index].result = result;
            }
        }
        results
    }

    /// GETs `url` and returns the body, at most `max_response_size` bytes after decoding.
    async fn http_get(&self, url: Url) -> Result<Vec<u8>, TrackerError> {
        let mut response = self.http.get(url).send().await.map_err(http_error)?;
        let cap = self.config.max_response_size;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(TrackerError::TooLarge(cap));
        }
        let status = response.status();
        if status.is_redirection() {
            // reqwest hands back, unfollowed, a redirect whose target it cannot fetch (`file:`,
            // `gopher:`...); the policy above refuses the rest.
            let target = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| response.url().join(location).ok());
            return Err(TrackerError::Redirect(match target {
                Some(target) => format!("redirect to scheme {:?}", target.scheme()),
                None => format!("http status {} without a usable location", status.as_u16()),
            }));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if body.len() + chunk.len() > cap {
                return Err(TrackerError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Some trackers explain a refusal in bencode with a 4xx status: prefer their words.
            return Err(match crate::decode_announce_response(&body) {
                Err(TrackerError::Failure(reason)) => TrackerError::Failure(reason),
                _ => TrackerError::HttpStatus(status.as_u16()),
            });
        }
        Ok(body)
    }

    /// Runs `requests` in order against the UDP tracker at `url` and returns their replies.
    async fn udp(
        &self,
        url: &Url,
        requests: Vec<UdpRequest>,
    ) -> Result<Vec<UdpResponse>, TrackerError> {
        let addr = resolve(url).await?;
        let local: SocketAddr = if addr.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        // A connected socket drops datagrams from any other source (HOSTILE.md 42).
        socket.connect(addr).await?;
        let mut url_data = url.path().as_bytes().to_vec();
        if let Some(query) = url.query() {
            url_data.push(b'?');
            url_data.extend_from_slice(query.as_bytes());
        }
        let seed = self
            .seeds
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let mut core = UdpTracker::new(self.config.udp.clone(), addr.is_ipv6(), url_data, seed);
        let cached = self
            .udp_connections
            .lock()
            .ok()
            .and_then(|map| map.get(&addr).copied());
        if let Some((id, received)) = cached {
            core.set_connection(id, received);
        }
        let ids: Vec<_> = requests
            .into_iter()
            .map(|request| core.request(now(), request))
            .collect();
        let mut replies = Vec::with_capacity(ids.len());
        let mut buf = vec![0u8; 65_536];
        let result = loop {
            while let Some(packet) = core.poll_transmit() {
                socket.send(&packet).await?;
            }
            if let Some(event) = core.poll_event() {
                match event.result {
                    Ok(reply) => replies.push(reply),
                    Err(err) => break Err(err),
                }
                if replies.len() == ids.len() {
                    break Ok(replies);
                }
                continue;
            }
            let Some(deadline) = core.poll_timeout() else {
                break Err(TrackerError::Malformed(
                    "udp exchange ended without a reply",
                ));
            };
            tokio::select! {
                received = socket.recv(&mut buf) => {
                    let len = received?;
                    core.handle_datagram(now(), &buf[..len]);
                }
                () = tokio::time::sleep_until(deadline.into()) => core.handle_timeout(now()),
            }
        };
        if let (Some(connection), Ok(mut map)) = (core.connection(), self.udp_connections.lock()) {
            map.insert(addr, connection);
        }
        result
    }
}

/// The first address of the URL's host and port.
async fn resolve(url: &Url) -> Result<SocketAddr, TrackerError> {
    let port = url
        .port()
        .ok_or_else(|| TrackerError::InvalidUrl(url.to_string()))?;
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok((ip, port).into()),
        Some(Host::Ipv6(ip)) => Ok((ip, port).into()),
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await?
            .next()
            .ok_or_else(|| TrackerError::NoAddress(name.to_owned())),
        None => Err(TrackerError::InvalidUrl(url.to_string())),
    }
}

/// Why a redirect to `url` after the requests to `previous` is refused, if it is (HOSTILE.md 37).
fn redirect_refusal(url: &Url, previous: &[Url], max_redirects: usize) -> Option<String> {
    if previous.len() > max_redirects {
        return Some(format!("more than {max_redirects} redirects"));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("redirect to scheme {:?}", url.scheme()));
    }
    if previous.iter().any(|seen| seen == url) {
        return Some(format!("redirect loop at {url}"));
    }
    // SSRF: a public tracker may not send us to a service on this machine or its network.
    if previous.first().is_some_and(|first| !is_local(first)) && is_local(url) {
        return Some(format!("redirect from a public host to local {url}"));
    }
    None
}

/// Whether the URL names this machine or a private network by an IP literal or `localhost`.
fn is_local(url: &Url) -> bool {
    let ip: IpAddr = match url.host() {
        Some(Host::Ipv4(ip)) => ip.into(),
        Some(Host::Ipv6(ip)) => ip.into(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            return name == "localhost" || name.ends_with(".localhost");
        }
        None => return false,
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
        }
    }
}

/// Maps a reqwest error to the typed variants where one fits.
fn http_error(err: reqwest::Error) -> TrackerError {
    if err.is_timeout() {
        TrackerError::Timeout
    } else if err.is_redirect() {
        let reason =
            std::error::Error::source(&err).map_or_else(|| err.to_string(), ToString::to_string);
        TrackerError::Redirect(reason)
    } else {
        TrackerError::Http(err)
    }
}

/// What the application tells a running [`run_announcer`] (which has an example).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnnouncerCommand {
    /// The download finished: send `completed`.
    Completed,
    /// We want more peers: announce early, within `min interval`.
    WantPeers,
    /// Leave the swarm: send `stopped` and return.
    Stop,
}

/// One announce made by [`run_announcer`] (which has an example).
#[derive(Debug)]
#[non_exhaustive]
pub struct AnnounceOutcome {
    /// The tracker asked.
    pub url: String,
    /// The event reported.
    pub event: AnnounceEvent,
    /// The reply or why there is none.
    pub result: Result<AnnounceResponse, TrackerError>,
}

/// Runs `announcer` until it is finished: makes each announce it asks for with `client`, building the
/// request with `make_request` (current counters; the event and tracker id are filled in from the job),
/// reports every outcome on `outcomes` and applies `commands` as they come. A closed command channel
/// counts as [`AnnouncerCommand::Stop`]; a closed outcome channel does not stop it.
///
/// ```no_run
/// use std::time::Instant;
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_tracker::*;
///
/// # async fn example() -> Result<(), TrackerError> {
/// let client = TrackerClient::new(ClientConfig::default())?;
/// let tiers = vec![vec!["udp://127.0.0.1:6969".to_owned()]];
/// let announcer = Announcer::new(tiers, AnnouncerConfig::default(), 42, Instant::now());
/// let (commands, command_rx) = tokio::sync::mpsc::channel(4);
/// let (outcome_tx, mut outcomes) = tokio::sync::mpsc::channel(16);
/// let template = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
/// let task = tokio::spawn(async move {
///     run_announcer(&client, announcer, |_job| template.clone(), command_rx, outcome_tx).await
/// });
/// if let Some(outcome) = outcomes.recv().await {
///     println!("{}: {:?}", outcome.url, outcome.result.map(|reply| reply.peers));
/// }
/// commands.send(AnnouncerCommand::Stop).await.ok();
/// task.await.ok();
/// # Ok(())
/// # }
/// ```
pub async fn run_announcer(
    client: &TrackerClient,
    mut announcer: Announcer,
    mut make_request: impl FnMut(&AnnounceJob) -> AnnounceRequest,
    mut commands: mpsc::Receiver<AnnouncerCommand>,
    outcomes: mpsc::Sender<AnnounceOutcome>,
) -> Announcer {
    let mut commands_open = true;
    let apply = |announcer: &mut Announcer, command: Option<AnnouncerCommand>| match command {
        Some(AnnouncerCommand::Completed) => announcer.handle_completed(now()),
        Some(AnnouncerCommand::WantPeers) => announcer.request_peers(now()),
        Some(AnnouncerCommand::Stop) | None => announcer.handle_stop(now()),
    };
    while !announcer.is_finished() {
        if let Some(job) = announcer.poll_announce(now()) {
            let mut request = make_request(&job);
            request.event = job.event;
            request.tracker_id = job.tracker_id.clone();
            let result = {
                let announce = client.announce(&job.url, &request);
                tokio::pin!(announce);
                loop {
                    tokio::select! {
                        result = &mut announce => break result,
                        command = commands.recv(), if commands_open => {
                            commands_open = command.is_some();
                            apply(&mut announcer, command);
                        }
                    }
                }
            };
            announcer.handle_response(now(), result.as_ref());
            let outcome = AnnounceOutcome {
                url: job.url,
                event: job.event,
                result,
            };
            let _ = outcomes.send(outcome).await;
            continue;
        }
        let Some(deadline) = announcer.poll_timeout() else {
            break;
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {}
            command = commands.recv(), if commands_open => {
                commands_open = command.is_some();
                apply(&mut announcer, command);
            }
        }
    }
    announcer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for local in [
            "http://127.0.0.1/",
            "http://localhost:80/",
            "http://a.localhost/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(is_local(&Url::parse(local).unwrap()), "{local}");
        }
        for public in [
            "http://1.1.1.1/",
            "http://tracker.example/",
            "http://[2001:db8::1]/",
        ] {
            assert!(!is_local(&Url::parse(public).unwrap()), "{public}");
        }
    }

    #[test]
    fn redirect_rules() {
        let url = |text: &str| Url::parse(text).unwrap();
        let check = |to: &str, previous: &[&str], expected: Option<&str>| {
            let previous: Vec<Url> = previous.iter().map(|p| url(p)).collect();
            let refusal = redirect_refusal(&url(to), &previous, 3);
            assert_eq!(refusal.as_deref(), expected, "{to} after {previous:?}");
        };
        let public = "http://tracker.example/announce";
        check("http://other.example/a", &[public], None);
        check(
            "https://tracker.example/a",
            &[public, "http://b.example/"],
            None,
        );
        check(
            "http://169.254.169.254/latest/meta-data",
            &[public],
            Some("redirect from a public host to local http://169.254.169.254/latest/meta-data"),
        );
        check(
            "http://127.0.0.1:8080/admin",
            &[public],
            Some("redirect from a public host to local http://127.0.0.1:8080/admin"),
        );
        // A tracker on this machine may redirect to another local address (tests, LAN trackers).
        check(
            "http://127.0.0.1:2/announce",
            &["http://127.0.0.1:1/announce"],
            None,
        );
        check(
            "file:///etc/passwd",
            &[public],
            Some("redirect to scheme \"file\""),
        );
        check(
            public,
            &[public],
            Some("redirect loop at http://tracker.example/announce"),
        );
        check(
            "http://e.example/",
            &[
                public,
                "http://b.example/",
                "http://c.example/",
                "http://d.example/",
            ],
            Some("more than 3 redirects"),
        );
    }
}
