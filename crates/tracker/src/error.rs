//! The one error type of the crate.

/// Why an announce or a scrape failed.
///
/// Every hostile or broken tracker reply ends up as one of these; none of them panics. The scheduler
/// ([`Announcer`](crate::Announcer)) treats them all alike: the next tracker is tried and the tier list backs
/// off.
///
/// ```
/// use shoal_tracker::{TrackerError, decode_announce_response};
///
/// let err = decode_announce_response(b"d14:failure reason9:forbiddene").unwrap_err();
/// assert!(matches!(&err, TrackerError::Failure(reason) if reason == "forbidden"));
/// assert_eq!(err.to_string(), "tracker failure: forbidden");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The tracker URL does not parse.
    #[error("invalid tracker url {0:?}")]
    InvalidUrl(String),
    /// The tracker URL has a scheme other than `http`, `https` and `udp` (the scheme is given).
    #[error("unsupported tracker url scheme {0:?}")]
    UnsupportedScheme(String),
    /// The host of the URL is an internationalised (IDNA) name, refused by default against homograph
    /// hosts ([`ClientConfig::allow_idna`](crate::ClientConfig::allow_idna)).
    #[error("internationalised tracker host {0:?} refused")]
    IdnaHost(String),
    /// The tracker has no announce URL from which a scrape URL can be made (BEP 48: the last path
    /// component must start with `announce`).
    #[error("no scrape url for tracker {0:?}")]
    ScrapeUnsupported(String),
    /// The body of the reply is not valid bencode.
    #[error("invalid bencode in tracker reply")]
    Bencode(#[from] shoal_bencode::DecodeError),
    /// The reply decodes but is not what BEP 3 / BEP 48 describe (what is wrong is given).
    #[error("malformed tracker reply: {0}")]
    Malformed(&'static str),
    /// A compact peer string whose length is not a multiple of the entry size (the length is given).
    #[error("compact peer list of {len} bytes is not a multiple of {entry}")]
    CompactLength {
        /// The length of the string.
        len: usize,
        /// The size of one entry: 6 for IPv4, 18 for IPv6.
        entry: usize,
    },
    /// The tracker refused the request with a `failure reason` (HTTP) or an error packet (UDP).
    #[error("tracker failure: {0}")]
    Failure(String),
    /// The tracker answered with an HTTP status that is not a success (the status is given).
    #[error("tracker answered http status {0}")]
    HttpStatus(u16),
    /// The HTTP reply body exceeded the size cap (the cap, in bytes, is given).
    #[error("tracker reply larger than {0} bytes")]
    TooLarge(usize),
    /// More redirects than allowed, a redirect loop, or a redirect to a refused target.
    #[error("tracker redirect refused: {0}")]
    Redirect(String),
    /// No reply within the configured time (UDP: after the last retransmission).
    #[error("tracker did not answer in time")]
    Timeout,
    /// A UDP packet that is too short for its action (the action and length are given).
    #[error("udp tracker packet of {len} bytes too short for action {action}")]
    Truncated {
        /// The action field of the packet (0 connect, 1 announce, 2 scrape, 3 error), or `u32::MAX` if the
        /// packet is too short to hold one.
        action: u32,
        /// The length of the packet.
        len: usize,
    },
    /// A UDP reply whose action is not the one expected (the action is given).
    #[error("udp tracker reply with unexpected action {0}")]
    UnexpectedAction(u32),
    /// A scrape asked for more info-hashes than one UDP packet may hold, or for none.
    #[error("scrape of {0} info-hashes; a request holds 1 to {max}", max = crate::udp::MAX_SCRAPE_HASHES)]
    ScrapeCount(usize),
    /// The tracker host name does not resolve to any address.
    #[error("tracker host {0:?} does not resolve")]
    NoAddress(String),
    /// An HTTP error from the transport (connection refused, TLS, broken body, ...).
    #[error("http transport error")]
    Http(#[source] reqwest::Error),
    /// A socket error (UDP, DNS).
    #[error("tracker socket error")]
    Io(#[from] std::io::Error),
    /// The announcer has no trackers at all.
    #[error("no trackers")]
    NoTrackers,
}
