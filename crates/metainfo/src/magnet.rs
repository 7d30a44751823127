//! Magnet URIs (BEP 9, BEP 52 `urn:btmh:`, BEP 53 `so`): parsing with helpful errors, and formatting.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::hash::{HashParseError, InfoHash, InfoHashV2, InfoHashes};
use crate::torrent::Metainfo;

/// The longest magnet URI accepted, in bytes (HOSTILE 11: parsing stays bounded).
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// The most `&`-separated parameters accepted in one magnet URI.
pub const MAX_MAGNET_PARAMS: usize = 1000;

/// Why a magnet URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    #[error("not a magnet URI: it must start with `magnet:?`")]
    NotMagnet,
    /// No BitTorrent `xt` (`urn:btih:` or `urn:btmh:`). The hint explains likely causes.
    #[error("no `xt=urn:btih:` or `xt=urn:btmh:` parameter{0}")]
    MissingXt(&'static str),
    /// An info-hash in `xt` that does not parse.
    #[error("bad info-hash in `xt={value}`: {source}")]
    BadHash {
        /// The `xt` value.
        value: String,
        /// What was wrong with it.
        source: HashParseError,
    },
    /// Two `xt` parameters give different hashes of the same version.
    #[error("two different {0} info-hashes")]
    ConflictingHashes(&'static str),
    /// A `%` not followed by two hex digits, or decoded bytes that are not UTF-8.
    #[error("bad percent-encoding in `{0}`")]
    BadEncoding(String),
    /// A parameter value that does not parse (the parameter, its value, and what was expected).
    #[error("bad `{key}={value}`: expected {expected}")]
    BadValue {
        /// The parameter name.
        key: &'static str,
        /// Its value, decoded.
        value: String,
        /// What the parameter should hold.
        expected: &'static str,
    },
    /// Longer than [`MAX_MAGNET_LEN`] or more parameters than [`MAX_MAGNET_PARAMS`].
    #[error("magnet URI too large (over {MAX_MAGNET_LEN} bytes or {MAX_MAGNET_PARAMS} parameters)")]
    TooLarge,
    /// The text looks damaged by a shell or by HTML escaping (the hint says how).
    #[error("{0}")]
    Mangled(&'static str),
}

/// A parsed magnet URI.
///
/// ```
/// use shoal_metainfo::Magnet;
///
/// let magnet: Magnet = "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056\
///     &dn=Cosmos%20Laundromat&tr=udp%3A%2F%2Ftracker.example%3A1337&x.pe=[::1]:6881&so=0,2-4"
///     .parse()?;
/// assert_eq!(magnet.display_name.as_deref(), Some("Cosmos Laundromat"));
/// assert_eq!(magnet.trackers, ["udp://tracker.example:1337"]);
/// assert_eq!(magnet.peers[0].to_string(), "[::1]:6881");
/// assert_eq!(magnet.select_only, [0..=0, 2..=4]);
/// assert_eq!(magnet.to_string().parse::<Magnet>()?, magnet);
/// # Ok::<(), shoal_metainfo::MagnetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Magnet {
    /// The info-hashes from `xt` (at least one is present).
    pub info_hashes: InfoHashes,
    /// `dn`: the display name.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in order.
    pub trackers: Vec<String>,
    /// `ws`: web seed URLs (BEP 19).
    pub web_seeds: Vec<String>,
    /// `x.pe`: peer addresses to connect to directly.
    pub peers: Vec<SocketAddr>,
    /// `so` (BEP 53): the file indices to download, as inclusive ranges.
    pub select_only: Vec<RangeInclusive<u64>>,
    /// `xl`: the exact total length in bytes.
    pub exact_length: Option<u64>,
}

impl Magnet {
    /// A magnet with just these info-hashes.
    pub fn new(info_hashes: InfoHashes) -> Self {
        Self {
            info_hashes,
            ..Self::default()
        }
    }

    /// Parses a magnet URI.
    ///
    /// Parameter names may carry a `.N` suffix (`tr.1`), as BEP 9 allows; unknown parameters are ignored.
    /// `+` in `dn` means a space.
    ///
    /// # Errors
    /// A [`MagnetError`] saying what is wrong, with a hint for common mistakes (a URI cut at `&` by a
    /// shell, `\&`, HTML-escaped `&amp;`).
    pub fn parse(text: &str) -> Result<Self, MagnetError> {
        let text = text.trim();
        if text.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLarge);
        }
        let query = match text.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("magnet:?") => &text[8..],
            _ => return Err(MagnetError::NotMagnet),
        };
        if query.contains("\\&") {
            return Err(MagnetError::Mangled(
                "the URI holds `\\&`: remove the backslashes, and quote the whole URI instead",
            ));
        }
        let mut magnet = Self::default();
        let mut saw_xt = false;
        for (n, param) in query.split('&').enumerate() {
            if n >= MAX_MAGNET_PARAMS {
                return Err(MagnetError::TooLarge);
            }
            if param.is_empty() {
                continue;
            }
            let (raw_key, raw_value) = param.split_once('=').unwrap_or((param, ""));
            if raw_key.starts_with("amp;") {
                return Err(MagnetError::Mangled(
                    "the URI holds `&amp;`: it was copied from HTML; replace each `&amp;` with `&`",
                ));
            }
            let key = base_key(raw_key);
            match key {
                "xt" => {
                    saw_xt = true;
                    magnet.add_xt(&decode(raw_value, raw_key, false)?)?;
                }
                "dn" => magnet.display_name = Some(decode(raw_value, raw_key, true)?),
                "tr" => push_nonempty(&mut magnet.trackers, decode(raw_value, raw_key, false)?),
                "ws" => push_nonempty(&mut magnet.web_seeds, decode(raw_value, raw_key, false)?),
                "x.pe" => {
                    let value = decode(raw_value, raw_key, false)?;
                    let addr = value.parse().map_err(|_| MagnetError::BadValue {
                        key: "x.pe",
                        value: value.clone(),
                        expected: "an IP address and port, like 1.2.3.4:6881 or [::1]:6881",
                    })?;
                    magnet.peers.push(addr);
                }
                "so" => {
                    let value = decode(raw_value, raw_key, false)?;
                    magnet.select_only.extend(parse_select_only(&value)?);
                }
                "xl" => {
                    let value = decode(raw_value, raw_key, false)?;
                    magnet.exact_length =
                        Some(value.parse().map_err(|_| MagnetError::BadValue {
                            key: "xl",
                            value,
                            expected: "a length in bytes",
                        })?);
                }
                _ => {}
            }
        }
        if magnet.info_hashes.v1.is_none() && magnet.info_hashes.v2.is_none() {
            let hint = if saw_xt {
                " (the `xt` given is not a BitTorrent info-hash)"
            } else if query.contains("dn=") || query.contains("tr=") {
                " (if you typed it in a shell, quote the whole URI: an unquoted `&` ends the command)"
            } else {
                ""
            };
            return Err(MagnetError::MissingXt(hint));
        }
        Ok(magnet)
    }

    fn add_xt(&mut self, value: &str) -> Result<(), MagnetError> {
        let bad = |source| MagnetError::BadHash {
            value: value.to_owned(),
            source,
        };
        let lower_prefix = |prefix: &str| {
            value
                .get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .map(|_| &value[prefix.len()..])
        };
        if let Some(hash) = lower_prefix("urn:btih:") {
            let hash: InfoHash = hash.parse().map_err(bad)?;
            if self.info_hashes.v1.is_some_and(|old| old != hash) {
                return Err(MagnetError::ConflictingHashes("v1"));
            }
            self.info_hashes.v1 = Some(hash);
        } else if let Some(hash) = lower_prefix("urn:btmh:") {
            let hash: InfoHashV2 = hash.parse().map_err(bad)?;
            if self.info_hashes.v2.is_some_and(|old| old != hash) {
                return Err(MagnetError::ConflictingHashes("v2"));
            }
            self.info_hashes.v2 = Some(hash);
        }
        // Other URNs (ed2k, sha1, …) belong to other networks and are ignored.
        Ok(())
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Magnet {
    /// The canonical form: `xt` (v1, then v2), `dn`, `xl`, `tr`…, `ws`…, `x.pe`…, `so`; values
    /// percent-encoded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut sep = "";
        if let Some(v1) = self.info_hashes.v1 {
            write!(f, "{sep}xt=urn:btih:{v1}")?;
            sep = "&";
        }
        if let Some(v2) = self.info_hashes.v2 {
            write!(f, "{sep}xt=urn:btmh:{}", v2.to_multihash())?;
            sep = "&";
        }
        let mut param = |f: &mut fmt::Formatter<'_>, key: &str, value: &str| {
            let result = write!(f, "{sep}{key}={}", encode(value));
            sep = "&";
            result
        };
        if let Some(name) = &self.display_name {
            param(f, "dn", name)?;
        }
        if let Some(length) = self.exact_length {
            param(f, "xl", &length.to_string())?;
        }
        for tracker in &self.trackers {
            param(f, "tr", tracker)?;
        }
        for seed in &self.web_seeds {
            param(f, "ws", seed)?;
        }
        for peer in &self.peers {
            param(f, "x.pe", &peer.to_string())?;
        }
        if !self.select_only.is_empty() {
            let ranges: Vec<String> = self
                .select_only
                .iter()
                .map(|r| {
                    if r.start() == r.end() {
                        r.start().to_string()
                    } else {
                        format!("{}-{}", r.start(), r.end())
                    }
                })
                .collect();
            // Commas separate ranges (BEP 53); keep them readable.
            write!(f, "{sep}so={}", ranges.join(","))?;
        }
        Ok(())
    }
}

impl Metainfo<'_> {
    /// A magnet link for this torrent: its info-hashes, name, trackers (all tiers) and web seeds.
    ///
    /// ```
    /// let bytes = b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:01234567890123456789ee";
    /// let torrent = shoal_metainfo::Metainfo::from_bytes(bytes)?;
    /// assert!(torrent.magnet().to_string().starts_with("magnet:?xt=urn:btih:"));
    /// # Ok::<(), shoal_metainfo::MetainfoError>(())
    /// ```
    pub fn magnet(&self) -> Magnet {
        Magnet {
            info_hashes: self.info_hashes(),
            display_name: Some(crate::text(self.info.name).into_owned()),
            trackers: self
                .trackers()
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            web_seeds: self.url_list.iter().map(|s| (*s).to_owned()).collect(),
            peers: Vec::new(),
            select_only: Vec::new(),
            exact_length: None,
        }
    }
}

/// `tr.1` → `tr`: BEP 9 allows numbered parameters. `x.pe` keeps its dot.
fn base_key(key: &str) -> &str {
    match key.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

fn push_nonempty(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
}

/// Percent-decodes `value` (and `+` as a space when `plus_is_space`), requiring UTF-8.
fn decode(value: &str, key: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let bad = || MagnetError::BadEncoding(key.to_owned());
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let digit = |b: u8| char::from(b).to_digit(16).ok_or_else(bad);
                out.push((digit(hex[0])? << 4 | digit(hex[1])?) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// BEP 53: `0,2,4,6-8`.
fn parse_select_only(value: &str) -> Result<Vec<RangeInclusive<u64>>, MagnetError> {
    let bad = || MagnetError::BadValue {
        key: "so",
        value: value.to_owned(),
        expected: "file indices and ranges, like 0,2,4-6",
    };
    value
        .split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            let start: u64 = start.parse().map_err(|_| bad())?;
            let end: u64 = end.parse().map_err(|_| bad())?;
            if start > end {
                return Err(bad());
            }
            Ok(start..=end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";

    fn check(uri: &str, expected: Result<Magnet, MagnetError>) {
        assert_eq!(Magnet::parse(uri), expected, "{uri}");
    }

    fn v1() -> InfoHashes {
        InfoHashes {
            v1: Some(HEX.parse().unwrap()),
            v2: None,
        }
    }

    #[test]
    fn parses_hash_forms() {
        check(&format!("magnet:?xt=urn:btih:{HEX}"), Ok(Magnet::new(v1())));
        check(
            "magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW",
            Ok(Magnet::new(v1())),
        );
        check(
            &format!("MAGNET:?XT=URN:BTIH:{}", HEX.to_uppercase()),
            Err(MagnetError::MissingXt("")),
        );
        check(
            &format!("MAGNET:?xt=URN:BTIH:{}", HEX.to_uppercase()),
            Ok(Magnet::new(v1())),
        );
        let v2 = format!("1220{}", "ab".repeat(32));
        let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:{v2}")).unwrap();
        assert_eq!(magnet.info_hashes.v2.unwrap().to_multihash(), v2);
        assert!(magnet.info_hashes.v1.is_some());
    }

    #[test]
    fn parses_every_parameter() {
        let uri = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=a+b%20c&tr=http%3A%2F%2Ft1%2Fann&tr.1=udp://t2:80&ws=http://w/\
             &x.pe=10.0.0.1:6881&x.pe=[2001:db8::1]:51413&so=0,2,4-6&xl=12345&foo=bar"
        );
        let magnet = Magnet::parse(&uri).unwrap();
        assert_eq!(magnet.display_name.as_deref(), Some("a b c"));
        assert_eq!(magnet.trackers, ["http://t1/ann", "udp://t2:80"]);
        assert_eq!(magnet.web_seeds, ["http://w/"]);
        assert_eq!(magnet.peers.len(), 2);
        assert_eq!(magnet.peers[1].to_string(), "[2001:db8::1]:51413");
        assert_eq!(magnet.select_only, [0..=0, 2..=2, 4..=6]);
        assert_eq!(magnet.exact_length, Some(12345));
        assert_eq!(Magnet::parse(&magnet.to_string()).unwrap(), magnet);
    }

    #[test]
    fn helpful_errors() {
        check("http://x", Err(MagnetError::NotMagnet));
        check(
            "magnet:?dn=foo",
            Err(MagnetError::MissingXt(
                " (if you typed it in a shell, quote the whole URI: an unquoted `&` ends the command)",
            )),
        );
        check(
            "magnet:?xt=urn:sha1:ABC",
            Err(MagnetError::MissingXt(
                " (the `xt` given is not a BitTorrent info-hash)",
            )),
        );
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}\\&dn=x")),
            Err(MagnetError::Mangled(_))
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&amp;dn=x")),
            Err(MagnetError::Mangled(_))
        ));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:123"),
            Err(MagnetError::BadHash { .. })
        ));
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%zz")),
            Err(MagnetError::BadEncoding("dn".into()))
        );
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%4")),
            Err(MagnetError::BadEncoding("dn".into()))
        );
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%ff")),
            Err(MagnetError::BadEncoding("dn".into()))
        );
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=3-1")),
            Err(MagnetError::BadValue { key: "so", .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=host")),
            Err(MagnetError::BadValue { key: "x.pe", .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!(
                "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}",
                "0".repeat(40)
            )),
            Err(MagnetError::ConflictingHashes("v1"))
        ));
    }

    #[test]
    fn bounded() {
        let many = format!(
            "magnet:?xt=urn:btih:{HEX}{}",
            "&tr=x".repeat(MAX_MAGNET_PARAMS)
        );
        assert_eq!(Magnet::parse(&many), Err(MagnetError::TooLarge));
        let long = format!(
            "magnet:?xt=urn:btih:{HEX}&dn={}",
            "a".repeat(MAX_MAGNET_LEN)
        );
        assert_eq!(Magnet::parse(&long), Err(MagnetError::TooLarge));
    }
}
