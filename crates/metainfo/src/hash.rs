//! Identities: info-hashes (v1 SHA-1, v2 SHA-256) and peer ids, with their hex and base32 text forms.
//!
//! BEP 9 writes a v1 info-hash in a magnet link as 40 hex digits or 32 base32 characters (RFC 4648
//! alphabet, upper case, no padding); BEP 52 writes a v2 one as a multihash (`1220` + 64 hex digits).

use std::fmt;
use std::str::FromStr;

use sha1::Digest as _;

/// Why a text form of a hash or peer id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// The text has a length that is none of the accepted forms (the length is given).
    #[error("a hash of {0} characters; expected {1}")]
    Length(usize, &'static str),
    /// A character outside the alphabet of the form (hex or base32).
    #[error("invalid character {0:?} in a {1} hash")]
    Character(char, &'static str),
}

/// A BitTorrent v1 info-hash: the SHA-1 of the bencoded `info` dictionary (BEP 3).
///
/// This is also the 20-byte identity used on the wire, by trackers and by the DHT for v2 torrents, where
/// it is the v2 hash truncated ([`InfoHashV2::truncated`], BEP 52).
///
/// Displays as 40 lower-case hex digits; parses from 40 hex digits or 32 base32 characters.
///
/// ```
/// use shoal_metainfo::InfoHash;
///
/// let hash: InfoHash = "c9e15763f722f23e98a29decdfae341b98d53056".parse()?;
/// assert_eq!(hash.to_string(), "c9e15763f722f23e98a29decdfae341b98d53056");
/// assert_eq!(hash.to_base32(), "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW");
/// assert_eq!("ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW".parse::<InfoHash>()?, hash);
/// # Ok::<(), shoal_metainfo::HashParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A BitTorrent v2 info-hash: the SHA-256 of the bencoded `info` dictionary (BEP 52).
///
/// Displays as 64 lower-case hex digits; parses from 64 hex digits, or from the 68-digit multihash form
/// (`1220…`) used in `urn:btmh:` magnet links.
///
/// ```
/// use shoal_metainfo::InfoHashV2;
///
/// let hex = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
/// let hash: InfoHashV2 = hex.parse()?;
/// assert_eq!(hash.to_multihash(), format!("1220{hex}"));
/// assert_eq!(hash.truncated().to_string(), &hex[..40]);
/// # Ok::<(), shoal_metainfo::HashParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHashV2(pub [u8; 32]);

impl InfoHash {
    /// The SHA-1 of `info_bytes`, which must be the `info` dictionary exactly as it appears in the torrent.
    ///
    /// ```
    /// let hash = shoal_metainfo::InfoHash::of_info(b"d4:name1:ae");
    /// assert_eq!(hash.as_bytes().len(), 20);
    /// ```
    pub fn of_info(info_bytes: &[u8]) -> Self {
        Self(sha1::Sha1::digest(info_bytes).into())
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The hash as 32 base32 characters (RFC 4648, upper case), the other form BEP 9 allows in magnets.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }
}

impl InfoHashV2 {
    /// The SHA-256 of `info_bytes`, which must be the `info` dictionary exactly as it appears in the torrent.
    ///
    /// ```
    /// let hash = shoal_metainfo::InfoHashV2::of_info(b"d4:name1:ae");
    /// assert_eq!(hash.as_bytes().len(), 32);
    /// ```
    pub fn of_info(info_bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(info_bytes).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 20 bytes: what identifies a v2 torrent in handshakes, tracker announces and the DHT
    /// (BEP 52).
    pub fn truncated(&self) -> InfoHash {
        let mut short = [0; 20];
        short.copy_from_slice(&self.0[..20]);
        InfoHash(short)
    }

    /// The multihash form used in `urn:btmh:` magnet links: `1220` (SHA-256, 32 bytes) and 64 hex digits.
    pub fn to_multihash(&self) -> String {
        format!("1220{self}")
    }
}

/// The info-hashes of one torrent: v1, v2 or both (a hybrid torrent).
///
/// ```
/// use shoal_metainfo::{InfoHash, InfoHashes};
///
/// let hashes = InfoHashes { v1: Some(InfoHash([1; 20])), v2: None };
/// assert_eq!(hashes.wire(), Some(InfoHash([1; 20])));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InfoHashes {
    /// The SHA-1 info-hash, for v1 and hybrid torrents.
    pub v1: Option<InfoHash>,
    /// The SHA-256 info-hash, for v2 and hybrid torrents.
    pub v2: Option<InfoHashV2>,
}

impl InfoHashes {
    /// The 20-byte hash to use on the wire: the v1 hash if there is one, else the truncated v2 hash.
    pub fn wire(&self) -> Option<InfoHash> {
        self.v1.or_else(|| self.v2.map(|v2| v2.truncated()))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}

impl FromStr for InfoHash {
    type Err = HashParseError;

    /// Parses 40 hex digits (either case) or 32 base32 characters (either case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut out = [0; 20];
        match text.len() {
            40 => decode_hex(text, &mut out)?,
            32 => base32_decode(text, &mut out)?,
            n => return Err(HashParseError::Length(n, "40 hex or 32 base32 characters")),
        }
        Ok(Self(out))
    }
}

impl FromStr for InfoHashV2 {
    type Err = HashParseError;

    /// Parses 64 hex digits, or a 68-digit SHA-256 multihash (`1220` + 64 hex digits).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = match text.len() {
            64 => text,
            68 if text
                .get(..4)
                .is_some_and(|tag| tag.eq_ignore_ascii_case("1220")) =>
            {
                &text[4..]
            }
            n => {
                return Err(HashParseError::Length(
                    n,
                    "64 hex digits or a 1220… multihash",
                ));
            }
        };
        let mut out = [0; 32];
        decode_hex(digits, &mut out)?;
        Ok(Self(out))
    }
}

/// A peer id: the 20 bytes a client names itself with in handshakes and announces (BEP 3, BEP 20).
///
/// Displays printable ASCII as is and other bytes as `\xNN`, so a client prefix such as `-SH0010-` reads
/// well.
///
/// ```
/// use shoal_metainfo::PeerId;
///
/// let id = PeerId::with_prefix(b"-SH0010-", [7; 12]);
/// assert_eq!(&id.as_bytes()[..8], b"-SH0010-");
/// assert!(id.to_string().starts_with("-SH0010-\\x07"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

impl PeerId {
    /// Shoal's client prefix in the Azureus style (BEP 20): `-SH` and a four-digit version.
    pub const SHOAL_PREFIX: &'static [u8; 8] = b"-SH0010-";

    /// A peer id made of an 8-byte client prefix and 12 bytes the caller chose (random, usually).
    pub fn with_prefix(prefix: &[u8; 8], random: [u8; 12]) -> Self {
        let mut id = [0; 20];
        id[..8].copy_from_slice(prefix);
        id[8..].copy_from_slice(&random);
        Self(id)
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in &self.0 {
            if byte.is_ascii_graphic() && byte != b'\\' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

pub(crate) fn write_hex(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        f.write_char(char::from(DIGITS[usize::from(byte >> 4)]))?;
        f.write_char(char::from(DIGITS[usize::from(byte & 15)]))?;
    }
    Ok(())
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    write_hex(&mut out, bytes).expect("writing to a String cannot fail");
    out
}

fn decode_hex(text: &str, out: &mut [u8]) -> Result<(), HashParseError> {
    if text.len() != out.len() * 2 {
        return Err(HashParseError::Length(
            text.len(),
            "hex digits for the hash size",
        ));
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| HashParseError::Character(bad_char(text, c), "hex"))
    };
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(())
}

/// The character of `text` that starts with byte `c` (for error messages, which should show a whole
/// character even when it is not ASCII).
fn bad_char(text: &str, c: u8) -> char {
    if c.is_ascii() {
        return char::from(c);
    }
    text.chars()
        .find(|ch| !ch.is_ascii())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding.
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = buffer << 8 | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[(buffer >> bits & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[(buffer << (5 - bits) & 31) as usize]));
    }
    out
}

fn base32_decode(text: &str, out: &mut [u8]) -> Result<(), HashParseError> {
    if text.len() * 5 / 8 != out.len() {
        return Err(HashParseError::Length(
            text.len(),
            "base32 characters for the hash size",
        ));
    }
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            upper @ b'A'..=b'Z' => upper - b'A',
            digit @ b'2'..=b'7' => digit - b'2' + 26,
            _ => return Err(HashParseError::Character(bad_char(text, c), "base32")),
        };
        buffer = buffer << 5 | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = out.get_mut(at) {
                *slot = (buffer >> bits) as u8;
            }
            at += 1;
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(input), expected);
        }
    }

    #[test]
    fn hash_text_round_trips() {
        let hash = InfoHash(std::array::from_fn(|i| (i * 13) as u8));
        assert_eq!(hash.to_string().parse::<InfoHash>(), Ok(hash));
        assert_eq!(hash.to_base32().parse::<InfoHash>(), Ok(hash));
        assert_eq!(
            hash.to_base32().to_lowercase().parse::<InfoHash>(),
            Ok(hash)
        );
        assert_eq!(
            hash.to_string().to_uppercase().parse::<InfoHash>(),
            Ok(hash)
        );
        let v2 = InfoHashV2(std::array::from_fn(|i| (i * 7) as u8));
        assert_eq!(v2.to_string().parse::<InfoHashV2>(), Ok(v2));
        assert_eq!(v2.to_multihash().parse::<InfoHashV2>(), Ok(v2));
    }

    #[test]
    fn bad_hash_text_is_refused() {
        assert!(matches!(
            "abc".parse::<InfoHash>(),
            Err(HashParseError::Length(3, _))
        ));
        assert!(matches!(
            "g9e15763f722f23e98a29decdfae341b98d53056".parse::<InfoHash>(),
            Err(HashParseError::Character('g', "hex"))
        ));
        assert!(matches!(
            "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMC1".parse::<InfoHash>(),
            Err(HashParseError::Character('1', "base32"))
        ));
        // A multi-byte character must not split a hex pair or panic.
        assert!(
            "é9e15763f722f23e98a29decdfae341b98d5305"
                .parse::<InfoHash>()
                .is_err()
        );
        assert!(
            format!("1221{}", "0".repeat(64))
                .parse::<InfoHashV2>()
                .is_err()
        );
    }
}
