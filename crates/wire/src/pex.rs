//! Peer exchange, `ut_pex` (BEP 11): peers tell each other about peers they connected to or dropped.
//!
//! Addresses travel in compact form (6 bytes for IPv4, 18 for IPv6: address then big-endian port),
//! with one flags byte per added peer in `added.f` / `added6.f`. Decoding keeps at most [`MAX_PEX_PEERS`]
//! added and as many dropped peers, and skips a trailing partial entry (HOSTILE 36); filtering addresses
//! (loopback, port 0, our own) is the caller's policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use shoal_bencode::Value;

use crate::extension::decode_dict;
use crate::{Message, WireError};

/// The most added (and the most dropped) peers kept from one `ut_pex` message.
pub const MAX_PEX_PEERS: usize = 50;

const NAME: &str = "ut_pex";

/// The flags BEP 11 gives each added peer (`added.f`).
///
/// ```
/// use shoal_wire::PexFlags;
///
/// let flags = PexFlags(PexFlags::SEED.0 | PexFlags::UTP.0);
/// assert!(flags.contains(PexFlags::SEED) && !flags.contains(PexFlags::ENCRYPTION));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// `0x01`: the peer prefers encrypted connections.
    pub const ENCRYPTION: Self = Self(0x01);
    /// `0x02`: the peer is a seed or upload-only.
    pub const SEED: Self = Self(0x02);
    /// `0x04`: the peer supports uTP.
    pub const UTP: Self = Self(0x04);
    /// `0x08`: the peer supports `ut_holepunch`.
    pub const HOLEPUNCH: Self = Self(0x08);
    /// `0x10`: the sender reached the peer with an outgoing connection, so it is connectable.
    pub const REACHABLE: Self = Self(0x10);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A peer in a `ut_pex` message's added list.
///
/// ```
/// use shoal_wire::{PexFlags, PexPeer};
///
/// let peer = PexPeer { addr: "192.0.2.7:6881".parse()?, flags: PexFlags::REACHABLE };
/// assert!(peer.flags.contains(PexFlags::REACHABLE));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PexPeer {
    /// The peer's address.
    pub addr: SocketAddr,
    /// What the sender knows about the peer.
    pub flags: PexFlags,
}

/// A `ut_pex` message (BEP 11): peers connected to and dropped since the last message, IPv4 and IPv6.
///
/// ```
/// use shoal_wire::{PexFlags, PexMessage, PexPeer};
///
/// let message = PexMessage {
///     added: vec![PexPeer { addr: "10.0.0.1:6881".parse()?, flags: PexFlags::SEED }],
///     dropped: vec!["[2001:db8::1]:51413".parse()?],
/// };
/// let payload = message.to_bytes();
/// assert!(payload.starts_with(b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x02"));
/// assert_eq!(PexMessage::decode(&payload)?, message);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PexMessage {
    /// `added` and `added6`, with their flags from `added.f` and `added6.f` (zero when missing).
    pub added: Vec<PexPeer>,
    /// `dropped` and `dropped6`.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// Decodes a `ut_pex` payload.
    ///
    /// # Errors
    /// [`WireError::Bencode`] for invalid bencode, [`WireError::Extension`] if it is not a dictionary.
    /// Missing or mistyped keys read as empty lists.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let dict = decode_dict(NAME, payload)?;
        let bytes = |key: &[u8]| dict.get(key).and_then(Value::as_bytes).unwrap_or_default();
        let mut added: Vec<PexPeer> = Vec::new();
        for (compact, flags, v6) in [
            (bytes(b"added"), bytes(b"added.f"), false),
            (bytes(b"added6"), bytes(b"added6.f"), true),
        ] {
            let room = MAX_PEX_PEERS.saturating_sub(added.len());
            let flags = flags
                .iter()
                .map(|&f| PexFlags(f))
                .chain(std::iter::repeat(PexFlags(0)));
            added.extend(
                compact_addrs(compact, v6)
                    .zip(flags)
                    .map(|(addr, flags)| PexPeer { addr, flags })
                    .take(room),
            );
        }
        let mut dropped: Vec<SocketAddr> = compact_addrs(bytes(b"dropped"), false)
            .take(MAX_PEX_PEERS)
            .collect();
        let room = MAX_PEX_PEERS.saturating_sub(dropped.len());
        dropped.extend(compact_addrs(bytes(b"dropped6"), true).take(room));
        Ok(Self { added, dropped })
    }

    /// Appends the bencoded payload to `buf`. All six keys are written, empty ones too, as libtorrent
    /// does.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let mut added = Vec::new();
        let mut added_f = Vec::new();
        let mut added6 = Vec::new();
        let mut added6_f = Vec::new();
        for peer in &self.added {
            let (compact, flags) = match peer.addr {
                SocketAddr::V4(_) => (&mut added, &mut added_f),
                SocketAddr::V6(_) => (&mut added6, &mut added6_f),
            };
            put_compact(compact, peer.addr);
            flags.push(peer.flags.0);
        }
        let mut dropped = Vec::new();
        let mut dropped6 = Vec::new();
        for &addr in &self.dropped {
            put_compact(
                if addr.is_ipv4() {
                    &mut dropped
                } else {
                    &mut dropped6
                },
                addr,
            );
        }
        buf.push(b'd');
        // Keys in sorted byte order ('.' sorts before '6').
        for (key, value) in [
            (&b"added"[..], &added),
            (b"added.f", &added_f),
            (b"added6", &added6),
            (b"added6.f", &added6_f),
            (b"dropped", &dropped),
            (b"dropped6", &dropped6),
        ] {
            put_string(buf, key);
            put_string(buf, value);
        }
        buf.push(b'e');
    }

    /// The encoded payload.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::new();
        self.encode_into(&mut buf);
        buf.into()
    }

    /// The message to send to a peer that announced `ut_pex` under `their_id`.
    pub fn to_message(&self, their_id: u8) -> Message {
        Message::Extended {
            id: their_id,
            payload: self.to_bytes(),
        }
    }
}

/// The addresses in a compact string, skipping a partial entry at the end.
fn compact_addrs(bytes: &[u8], v6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let size = if v6 { 18 } else { 6 };
    bytes.chunks_exact(size).filter_map(move |entry| {
        let (ip, port) = entry.split_last_chunk::<2>()?;
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?))
        };
        Some(SocketAddr::new(ip, u16::from_be_bytes(*port)))
    })
}

fn put_compact(buf: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => buf.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => buf.extend_from_slice(&ip.octets()),
    }
    buf.extend_from_slice(&addr.port().to_be_bytes());
}

fn put_string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes.len().to_string().as_bytes());
    buf.push(b':');
    buf.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pair_with_their_peers() {
        let payload =
            b"d5:added12:\x01\x02\x03\x04\x00\x50\x05\x06\x07\x08\x00\x517:added.f1:\x12e";
        let message = PexMessage::decode(payload).unwrap();
        assert_eq!(
            message.added,
            [
                PexPeer {
                    addr: "1.2.3.4:80".parse().unwrap(),
                    flags: PexFlags(0x12)
                },
                PexPeer {
                    addr: "5.6.7.8:81".parse().unwrap(),
                    flags: PexFlags(0)
                },
            ]
        );
        assert!(message.dropped.is_empty());
    }

    #[test]
    fn hostile_lists_are_truncated() {
        // 100 v4 peers plus a partial entry, 10 v6 peers: only 50 kept, the partial one skipped.
        let mut added = vec![1u8; 6 * 100 + 5];
        added[4] = 0;
        let added6 = vec![2u8; 18 * 10];
        let mut payload = b"d5:added".to_vec();
        put_string(&mut payload, &added);
        payload.extend_from_slice(b"6:added6");
        put_string(&mut payload, &added6);
        payload.extend_from_slice(b"7:dropped3:abce");
        let message = PexMessage::decode(&payload).unwrap();
        assert_eq!(message.added.len(), MAX_PEX_PEERS);
        assert!(message.added.iter().all(|p| p.addr.is_ipv4()));
        assert!(message.dropped.is_empty());
        assert!(PexMessage::decode(b"le").is_err());
        assert_eq!(PexMessage::decode(b"de"), Ok(PexMessage::default()));
        // Mistyped keys read as empty.
        assert_eq!(
            PexMessage::decode(b"d5:addedi1ee"),
            Ok(PexMessage::default())
        );
    }
}
