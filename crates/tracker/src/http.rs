//! The sans-IO half of HTTP trackers: announce and scrape URLs (BEP 3, BEP 48) and reply parsing (BEP 3,
//! BEP 7, BEP 23, BEP 48). The requests themselves are made by [`TrackerClient`](crate::TrackerClient).
//!
//! Replies are decoded leniently (unsorted dictionary keys are common among trackers) within the bencode
//! crate's depth and token limits; the driver caps the body size before it gets here.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use shoal_bencode::{DecodeOptions, Value};
use shoal_metainfo::{InfoHash, PeerId};
use url::Url;

use crate::TrackerError;
use crate::peers::{MAX_PEERS, extend_compact_v4, extend_compact_v6, push_peer};

/// Longest `failure reason` or `warning message` kept, in bytes; the rest is cut (a tracker decides
/// what we print).
///
/// ```
/// let body = format!("d14:failure reason2000:{}e", "x".repeat(2000));
/// let err = shoal_tracker::decode_announce_response(body.as_bytes()).unwrap_err();
/// assert!(matches!(err, shoal_tracker::TrackerError::Failure(text) if text.len() == 1024));
/// ```
pub const MAX_MESSAGE_LEN: usize = 1024;

/// The `event` of an announce (BEP 3; BEP 15 numbers them 0 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AnnounceEvent {
    /// A regular announce: no `event` parameter.
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download has just finished (sent once, not when starting as a seed).
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The value of the HTTP `event` parameter, or `None` for a regular announce.
    ///
    /// ```
    /// use shoal_tracker::AnnounceEvent;
    /// assert_eq!(AnnounceEvent::Started.as_str(), Some("started"));
    /// assert_eq!(AnnounceEvent::None.as_str(), None);
    /// ```
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Started => Some("started"),
            Self::Completed => Some("completed"),
            Self::Stopped => Some("stopped"),
        }
    }

    /// The number BEP 15 uses: 0 none, 1 completed, 2 started, 3 stopped.
    ///
    /// ```
    /// assert_eq!(shoal_tracker::AnnounceEvent::Stopped.udp_code(), 3);
    /// ```
    pub fn udp_code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Completed => 1,
            Self::Started => 2,
            Self::Stopped => 3,
        }
    }
}

/// What an announce tells the tracker (BEP 3), for HTTP and UDP alike.
///
/// ```
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_tracker::{AnnounceEvent, AnnounceRequest};
///
/// let mut request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
/// request.left = 1 << 20;
/// request.event = AnnounceEvent::Started;
/// assert!(request.compact);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peer connections on.
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still missing (0 for a seed).
    pub left: u64,
    /// Which event this announce reports.
    pub event: AnnounceEvent,
    /// How many peers we want; `None` lets the tracker choose (UDP sends -1).
    pub num_want: Option<u32>,
    /// A number that stays the same for the whole session, so the tracker can recognise us when our IP
    /// address changes.
    pub key: u32,
    /// The `tracker id` a tracker gave us earlier (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
    /// Ask for the compact peer list (BEP 23; HTTP only). On by default.
    pub compact: bool,
    /// Ask the tracker to leave out peer ids in a dictionary-model list (HTTP only). On by default.
    pub no_peer_id: bool,
}

impl AnnounceRequest {
    /// A regular announce for `info_hash` with zero counters, no event, `compact=1` and `no_peer_id=1`.
    ///
    /// ```
    /// let request = shoal_tracker::AnnounceRequest::new(
    ///     shoal_metainfo::InfoHash([1; 20]),
    ///     shoal_metainfo::PeerId([2; 20]),
    ///     6881,
    /// );
    /// assert_eq!(request.left, 0);
    /// ```
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            num_want: None,
            key: 0,
            tracker_id: None,
            compact: true,
            no_peer_id: true,
        }
    }
}

/// A successful announce reply, from HTTP or UDP.
///
/// Intervals are as the tracker sent them; [`Announcer`](crate::Announcer) clamps them to sane bounds.
///
/// ```
/// let reply = shoal_tracker::decode_announce_response(b"d8:intervali0e5:peers0:e")?;
/// assert_eq!(reply.interval, Some(std::time::Duration::ZERO)); // as sent
/// assert_eq!(reply.min_interval, None);
/// assert!(reply.peers.is_empty());
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AnnounceResponse {
    /// How long to wait before the next regular announce.
    pub interval: Option<Duration>,
    /// The shortest wait the tracker accepts between announces (HTTP only).
    pub min_interval: Option<Duration>,
    /// A `tracker id` to send back in later announces (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
    /// Seeders, if the tracker says.
    pub complete: Option<u32>,
    /// Leechers, if the tracker says.
    pub incomplete: Option<u32>,
    /// A `warning message`: the announce worked but the tracker wants us to know something.
    pub warning: Option<String>,
    /// Peers, IPv4 and IPv6, without port-0 entries, at most [`MAX_PEERS`].
    pub peers: Vec<SocketAddr>,
}

/// What a tracker says about one torrent in a scrape (BEP 48, BEP 15).
///
/// ```
/// let stats = shoal_tracker::ScrapeStats { complete: 3, downloaded: 10, incomplete: 2 };
/// assert_eq!(stats.complete + stats.incomplete, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// A successful scrape reply: the torrents the tracker knows, in the order it sent them.
///
/// ```
/// let reply = shoal_tracker::decode_scrape_response(
///     b"d5:filesd20:AAAAAAAAAAAAAAAAAAAAd8:completei1e10:downloadedi0e10:incompletei0eeee",
/// )?;
/// assert_eq!(reply.files.len(), 1);
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScrapeResponse {
    /// One entry per torrent the tracker reported.
    pub files: Vec<(InfoHash, ScrapeStats)>,
}

impl ScrapeResponse {
    /// The stats of one torrent, if the reply holds it.
    ///
    /// ```
    /// let reply = shoal_tracker::decode_scrape_response(
    ///     b"d5:filesd20:AAAAAAAAAAAAAAAAAAAAd8:completei3e10:downloadedi9e10:incompletei2eeee",
    /// )?;
    /// let stats = reply.get(&shoal_metainfo::InfoHash([b'A'; 20])).unwrap();
    /// assert_eq!((stats.complete, stats.incomplete), (3, 2));
    /// # Ok::<(), shoal_tracker::TrackerError>(())
    /// ```
    pub fn get(&self, info_hash: &InfoHash) -> Option<&ScrapeStats> {
        self.files
            .iter()
            .find(|(hash, _)| hash == info_hash)
            .map(|(_, stats)| stats)
    }
}

/// Parses a tracker URL and checks it: the scheme must be `http`, `https` or `udp`, and the host must not
/// be an internationalised name unless `allow_idna` (HOSTILE.md 43: homograph hosts).
///
/// # Errors
/// [`TrackerError::InvalidUrl`], [`TrackerError::UnsupportedScheme`] or [`TrackerError::IdnaHost`].
///
/// ```
/// let url = shoal_tracker::parse_tracker_url("udp://127.0.0.1:6969/announce", false)?;
/// assert_eq!(url.port(), Some(6969));
/// assert!(shoal_tracker::parse_tracker_url("file:///etc/passwd", false).is_err());
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn parse_tracker_url(url: &str, allow_idna: bool) -> Result<Url, TrackerError> {
    let parsed = Url::parse(url.trim()).map_err(|_| TrackerError::InvalidUrl(url.to_owned()))?;
    match parsed.scheme() {
        "http" | "https" | "udp" => {}
        other => return Err(TrackerError::UnsupportedScheme(other.to_owned())),
    }
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| TrackerError::InvalidUrl(url.to_owned()))?;
    // The url crate maps Unicode hosts to ASCII for http(s), sometimes silently (a full-width `ｅ`
    // becomes `e`), so the authority as written is checked too; udp hosts are kept as written.
    let written = url.trim().split_once("://").map_or("", |(_, rest)| rest);
    let authority = written.split(['/', '?', '#']).next().unwrap_or_default();
    let idna = !authority.is_ascii()
        || !host.is_ascii()
        || host
            .split('.')
            .any(|label| label.len() >= 4 && label[..4].eq_ignore_ascii_case("xn--"));
    if idna && !allow_idna {
        return Err(TrackerError::IdnaHost(host.to_owned()));
    }
    Ok(parsed)
}

/// Builds the URL of an HTTP announce: the tracker URL with every BEP 3 parameter appended to its query
/// (a passkey already there is kept). `info_hash` and `peer_id` are percent-encoded as raw bytes.
///
/// ```
/// use shoal_metainfo::{InfoHash, PeerId};
/// use shoal_tracker::{AnnounceEvent, AnnounceRequest, announce_url};
///
/// let tracker = url::Url::parse("http://127.0.0.1:6969/announce?pk=1").unwrap();
/// let mut request = AnnounceRequest::new(InfoHash([0xAB; 20]), PeerId(*b"-SH0001-abcdefghijkl"), 6881);
/// request.event = AnnounceEvent::Started;
/// let url = announce_url(&tracker, &request);
/// assert!(url.as_str().starts_with("http://127.0.0.1:6969/announce?pk=1&info_hash=%AB%AB"));
/// assert!(url.as_str().contains("&peer_id=-SH0001-abcdefghijkl&port=6881&"));
/// assert!(url.as_str().contains("&event=started"));
/// ```
pub fn announce_url(tracker: &Url, request: &AnnounceRequest) -> Url {
    let mut query = String::with_capacity(256);
    push_param(&mut query, "info_hash", &request.info_hash.0);
    push_param(&mut query, "peer_id", &request.peer_id.0);
    let _ = write!(
        query,
        "&port={}&uploaded={}&downloaded={}&left={}",
        request.port, request.uploaded, request.downloaded, request.left
    );
    if request.compact {
        query.push_str("&compact=1");
    }
    if request.no_peer_id {
        query.push_str("&no_peer_id=1");
    }
    if let Some(event) = request.event.as_str() {
        let _ = write!(query, "&event={event}");
    }
    if let Some(n) = request.num_want {
        let _ = write!(query, "&numwant={n}");
    }
    let _ = write!(query, "&key={:08X}", request.key);
    if let Some(id) = &request.tracker_id {
        push_param(&mut query, "trackerid", id);
    }
    with_query(tracker, &query)
}

/// Builds the scrape URL for an HTTP announce URL (BEP 48): the last path component must start with
/// `announce`, which becomes `scrape`; one `info_hash` parameter per torrent.
///
/// # Errors
/// [`TrackerError::ScrapeUnsupported`] if the URL does not follow the convention.
///
/// ```
/// use shoal_metainfo::InfoHash;
///
/// let tracker = url::Url::parse("http://127.0.0.1:6969/announce").unwrap();
/// let url = shoal_tracker::scrape_url(&tracker, &[InfoHash([b'a'; 20]), InfoHash([b'b'; 20])])?;
/// assert_eq!(
///     url.as_str(),
///     "http://127.0.0.1:6969/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=bbbbbbbbbbbbbbbbbbbb",
/// );
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn scrape_url(tracker: &Url, info_hashes: &[InfoHash]) -> Result<Url, TrackerError> {
    let path = tracker.path();
    let slash = path.rfind('/').unwrap_or(0);
    let last = &path[slash..];
    let Some(rest) = last.strip_prefix("/announce") else {
        return Err(TrackerError::ScrapeUnsupported(tracker.to_string()));
    };
    let mut scrape = tracker.clone();
    scrape.set_path(&format!("{}/scrape{rest}", &path[..slash]));
    let mut query = String::with_capacity(info_hashes.len() * 70);
    for hash in info_hashes {
        push_param(&mut query, "info_hash", &hash.0);
    }
    Ok(with_query(&scrape, &query))
}

/// Appends `&name=value`, the value percent-encoded byte by byte.
fn push_param(query: &mut String, name: &str, value: &[u8]) {
    query.push('&');
    query.push_str(name);
    query.push('=');
    for byte in value {
        // RFC 3986 unreserved characters stay as they are; every other byte becomes `%XX`.
        if byte.is_ascii_alphanumeric() || b"-._~".contains(byte) {
            query.push(char::from(*byte));
        } else {
            let _ = write!(query, "%{byte:02X}");
        }
    }
}

/// The tracker URL without its fragment, with `params` (each starting with `&`) after its query.
fn with_query(tracker: &Url, params: &str) -> Url {
    let mut url = tracker.clone();
    url.set_fragment(None);
    let query = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}{params}"),
        _ => params.trim_start_matches('&').to_owned(),
    };
    // Already percent-encoded: the url crate keeps `%XX` escapes as they are.
    url.set_query(Some(&query));
    url
}

/// Decodes the body of an HTTP announce reply (BEP 3): peers in the compact (BEP 23), IPv6 (BEP 7) or
/// dictionary model, intervals, counts, `tracker id` and `warning message`.
///
/// Port-0 peers and dictionary peers whose `ip` is a host name are skipped, and a compact string's
/// trailing partial entry is ignored; at most [`MAX_PEERS`] peers are kept.
///
/// # Errors
/// [`TrackerError::Failure`] for a `failure reason`; [`TrackerError::Bencode`] or
/// [`TrackerError::Malformed`] for anything else that is not a reply.
///
/// ```
/// let reply = shoal_tracker::decode_announce_response(
///     b"d8:completei1e10:incompletei0e8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
/// )?;
/// assert_eq!(reply.interval, Some(std::time::Duration::from_secs(1800)));
/// assert_eq!(reply.peers[0].to_string(), "127.0.0.1:6881");
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn decode_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let root = decode_dict(body)?;
    if let Some(reason) = root.get(b"failure reason") {
        return Err(TrackerError::Failure(message(reason)));
    }
    let mut reply = AnnounceResponse {
        interval: root.get(b"interval").and_then(seconds),
        min_interval: root.get(b"min interval").and_then(seconds),
        tracker_id: root
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
        complete: root.get(b"complete").and_then(count),
        incomplete: root.get(b"incomplete").and_then(count),
        warning: root.get(b"warning message").map(message),
        peers: Vec::new(),
    };
    match root.get(b"peers") {
        Some(peers) => {
            if let Some(compact) = peers.as_bytes() {
                extend_compact_v4(&mut reply.peers, compact);
            } else if let Some(list) = peers.as_list() {
                for entry in list.iter().take(MAX_PEERS) {
                    if let Some(addr) = dictionary_peer(entry) {
                        push_peer(&mut reply.peers, addr);
                    }
                }
            } else {
                return Err(TrackerError::Malformed(
                    "`peers` is neither a string nor a list",
                ));
            }
        }
        // BEP 3 requires `peers`, but an IPv6-only reply may carry `peers6` alone.
        None if root.get(b"peers6").is_some() => {}
        None => return Err(TrackerError::Malformed("no `peers` in the reply")),
    }
    if let Some(peers6) = root.get(b"peers6") {
        let compact = peers6
            .as_bytes()
            .ok_or(TrackerError::Malformed("`peers6` is not a string"))?;
        extend_compact_v6(&mut reply.peers, compact);
    }
    Ok(reply)
}

/// Decodes the body of an HTTP scrape reply (BEP 48): `files`, a dictionary from 20-byte info-hash to
/// `complete` / `downloaded` / `incomplete`. Entries whose key is not 20 bytes long are skipped; a
/// missing count reads as 0.
///
/// # Errors
/// [`TrackerError::Failure`] for a `failure reason`; [`TrackerError::Bencode`] or
/// [`TrackerError::Malformed`] for anything else that is not a reply.
///
/// ```
/// let reply = shoal_tracker::decode_scrape_response(b"d5:filesdee")?;
/// assert!(reply.files.is_empty());
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn decode_scrape_response(body: &[u8]) -> Result<ScrapeResponse, TrackerError> {
    let root = decode_dict(body)?;
    if let Some(reason) = root.get(b"failure reason") {
        return Err(TrackerError::Failure(message(reason)));
    }
    let files = root
        .get(b"files")
        .and_then(Value::as_dict)
        .ok_or(TrackerError::Malformed(
            "no `files` dictionary in the scrape reply",
        ))?;
    let mut reply = ScrapeResponse::default();
    for (key, stats) in files {
        let Ok(hash) = <[u8; 20]>::try_from(*key) else {
            continue;
        };
        let field = |name: &[u8]| stats.get(name).and_then(count).unwrap_or(0);
        reply.files.push((
            InfoHash(hash),
            ScrapeStats {
                complete: field(b"complete"),
                downloaded: field(b"downloaded"),
                incomplete: field(b"incomplete"),
            },
        ));
    }
    Ok(reply)
}

/// Decodes `body` leniently and checks that it is a dictionary.
fn decode_dict(body: &[u8]) -> Result<Value<'_>, TrackerError> {
    let root = shoal_bencode::decode_with(body, &DecodeOptions::lenient())?;
    if root.as_dict().is_none() {
        return Err(TrackerError::Malformed("the reply is not a dictionary"));
    }
    Ok(root)
}

/// A dictionary-model peer: `ip` (an IPv4 or IPv6 literal; host names are skipped) and `port`.
fn dictionary_peer(entry: &Value<'_>) -> Option<SocketAddr> {
    let ip: IpAddr = entry.get(b"ip")?.as_str()?.trim().parse().ok()?;
    let port = u16::try_from(entry.get(b"port")?.as_int()?).ok()?;
    Some(SocketAddr::new(ip, port))
}

/// A non-negative integer of seconds (negative values read as 0; the announcer clamps them).
fn seconds(value: &Value<'_>) -> Option<Duration> {
    let secs = value.as_int()?;
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// A count, saturated to `u32`; negative counts are dropped.
fn count(value: &Value<'_>) -> Option<u32> {
    let n = u64::try_from(value.as_int()?).ok()?;
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A tracker's text, lossily decoded and cut to [`MAX_MESSAGE_LEN`] bytes.
fn message(value: &Value<'_>) -> String {
    let bytes = value.as_bytes().unwrap_or(b"(not a string)");
    let bytes = &bytes[..bytes.len().min(MAX_MESSAGE_LEN)];
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn announce_url_has_every_parameter() {
        let mut request =
            AnnounceRequest::new(InfoHash([0; 20]), PeerId(*b"-SH0001-\x00\xff/?&= +~._-"), 1);
        request.uploaded = 2;
        request.downloaded = 3;
        request.left = 4;
        request.event = AnnounceEvent::Completed;
        request.num_want = Some(50);
        request.key = 0xDEAD_BEEF;
        request.tracker_id = Some(b"t id".to_vec());
        let url = announce_url(&tracker("http://t.example/a/announce#frag"), &request);
        assert_eq!(
            url.as_str(),
            "http://t.example/a/announce?info_hash=%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00\
             &peer_id=-SH0001-%00%FF%2F%3F%26%3D%20%2B~._-&port=1&uploaded=2&downloaded=3&left=4\
             &compact=1&no_peer_id=1&event=completed&numwant=50&key=DEADBEEF&trackerid=t%20id"
        );
    }

    #[test]
    fn announce_url_without_optional_parameters() {
        let mut request = AnnounceRequest::new(InfoHash([b'x'; 20]), PeerId([b'y'; 20]), 80);
        request.compact = false;
        request.no_peer_id = false;
        let url = announce_url(&tracker("https://t.example/announce?"), &request);
        assert!(!url.as_str().contains("compact"));
        assert!(!url.as_str().contains("event"));
        assert!(
            url.as_str()
                .starts_with("https://t.example/announce?info_hash=xxxx")
        );
    }

    #[test]
    fn scrape_url_convention() {
        let hash = [InfoHash([b'h'; 20])];
        let check = |announce: &str, expected: Option<&str>| {
            let got = scrape_url(&tracker(announce), &hash)
                .ok()
                .map(|u| u.to_string());
            assert_eq!(got.as_deref(), expected, "{announce}");
        };
        let q = "info_hash=hhhhhhhhhhhhhhhhhhhh";
        check("http://e/announce", Some(&format!("http://e/scrape?{q}")));
        check(
            "http://e/x/announce.php?pk=1",
            Some(&format!("http://e/x/scrape.php?pk=1&{q}")),
        );
        check("http://e/a", None);
        check("http://e/announce/x", None);
        check("http://e/x/notannounce", None);
    }

    #[test]
    fn tracker_url_checks() {
        assert!(parse_tracker_url("http://e/announce", false).is_ok());
        assert!(parse_tracker_url(" udp://e:1 ", false).is_ok());
        assert!(matches!(
            parse_tracker_url("gopher://e/", false),
            Err(TrackerError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse_tracker_url("not a url", false),
            Err(TrackerError::InvalidUrl(_))
        ));
        for host in [
            "http://bt1.archiv\u{ff45}.org/announce",
            "udp://b\u{e4}r.example:1",
        ] {
            assert!(
                matches!(
                    parse_tracker_url(host, false),
                    Err(TrackerError::IdnaHost(_))
                ),
                "{host}"
            );
        }
        assert!(parse_tracker_url("http://xn--br-via.example/announce", true).is_ok());
    }

    #[test]
    fn decodes_every_field() {
        let body = b"d8:completei5e10:incompletei7e8:intervali900e12:min intervali60e\
            5:peers12:\x01\x02\x03\x04\x00\x50\x05\x06\x07\x08\x00\x00\
            6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1\
            10:tracker id3:abc15:warning message4:hey!e";
        let reply = decode_announce_response(body).unwrap();
        assert_eq!(reply.interval, Some(Duration::from_secs(900)));
        assert_eq!(reply.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((reply.complete, reply.incomplete), (Some(5), Some(7)));
        assert_eq!(reply.tracker_id.as_deref(), Some(&b"abc"[..]));
        assert_eq!(reply.warning.as_deref(), Some("hey!"));
        let peers: Vec<String> = reply.peers.iter().map(ToString::to_string).collect();
        assert_eq!(peers, ["1.2.3.4:80", "[::1]:6881"]);
    }

    #[test]
    fn decodes_dictionary_peers() {
        let body =
            b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti1ee\
            |d2:ip3:::14:porti2ee|d2:ip11:example.org4:porti3ee|d2:ip3:::14:porti0eed4:porti9ee\
            |d2:ip3:::14:porti70000eeee"
                .iter()
                .copied()
                .filter(|b| *b != b'|')
                .collect::<Vec<u8>>();
        let reply = decode_announce_response(&body).unwrap();
        let peers: Vec<String> = reply.peers.iter().map(ToString::to_string).collect();
        assert_eq!(peers, ["127.0.0.1:1", "[::1]:2"]);
    }

    #[test]
    fn failure_and_malformed_replies() {
        let check = |body: &[u8], expected: &str| {
            let err = decode_announce_response(body).unwrap_err();
            assert_eq!(
                err.to_string(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        };
        check(
            b"d14:failure reason9:forbiddene",
            "tracker failure: forbidden",
        );
        check(b"d8:intervali1e", "invalid bencode in tracker reply");
        check(
            b"le",
            "malformed tracker reply: the reply is not a dictionary",
        );
        check(
            b"d8:intervali1ee",
            "malformed tracker reply: no `peers` in the reply",
        );
        check(
            b"d5:peersi1ee",
            "malformed tracker reply: `peers` is neither a string nor a list",
        );
        check(
            b"d6:peers6i1ee",
            "malformed tracker reply: `peers6` is not a string",
        );
        // Unsorted keys are common among trackers and accepted.
        assert!(decode_announce_response(b"d5:peers0:8:intervali5ee").is_ok());
        // Peers6 alone is accepted, and so are negative or huge intervals (clamped later).
        let reply = decode_announce_response(b"d8:intervali-5e6:peers60:e").unwrap();
        assert_eq!(reply.interval, Some(Duration::ZERO));
    }

    #[test]
    fn long_failure_reasons_are_cut() {
        let reason = "x".repeat(5000);
        let body = format!("d14:failure reason{}:{reason}e", reason.len());
        match decode_announce_response(body.as_bytes()) {
            Err(TrackerError::Failure(text)) => assert_eq!(text.len(), MAX_MESSAGE_LEN),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_scrape() {
        let body =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi2e10:incompletei3ee\
            3:bad d8:completei1ee 20:bbbbbbbbbbbbbbbbbbbbdeee"
                .iter()
                .copied()
                .filter(|b| *b != b' ')
                .collect::<Vec<u8>>();
        let reply = decode_scrape_response(&body).unwrap();
        assert_eq!(reply.files.len(), 2);
        let a = reply.get(&InfoHash([b'a'; 20])).unwrap();
        assert_eq!((a.complete, a.downloaded, a.incomplete), (1, 2, 3));
        assert_eq!(
            reply.get(&InfoHash([b'b'; 20])),
            Some(&ScrapeStats::default())
        );
        assert!(matches!(
            decode_scrape_response(b"de"),
            Err(TrackerError::Malformed(_))
        ));
        assert!(matches!(
            decode_scrape_response(b"d14:failure reason1:xe"),
            Err(TrackerError::Failure(_))
        ));
    }
}
