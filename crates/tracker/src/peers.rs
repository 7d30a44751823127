//! Compact peer lists: six bytes per IPv4 peer (BEP 23), eighteen per IPv6 peer (BEP 7).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::TrackerError;

/// The most peers kept from one tracker reply (HOSTILE.md limits table: peer list ≤ 3000, as libtorrent's
/// `max_peerlist_size`). Entries past it are not decoded at all.
///
/// ```
/// let many = [10, 0, 0, 1, 0x1A, 0xE1].repeat(shoal_tracker::MAX_PEERS + 1);
/// assert_eq!(shoal_tracker::decode_compact_peers(&many)?.len(), 3000);
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub const MAX_PEERS: usize = 3000;

/// Decodes a compact IPv4 peer list (BEP 23), six bytes per peer: address then port, big-endian.
///
/// Entries with port 0 cannot be dialled and are dropped; at most [`MAX_PEERS`] are kept.
///
/// # Errors
/// [`TrackerError::CompactLength`] if the length is not a multiple of 6.
///
/// ```
/// let peers = shoal_tracker::decode_compact_peers(&[127, 0, 0, 1, 0x1A, 0xE1])?;
/// assert_eq!(peers[0].to_string(), "127.0.0.1:6881");
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn decode_compact_peers(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(6) {
        return Err(TrackerError::CompactLength {
            len: bytes.len(),
            entry: 6,
        });
    }
    let mut peers = Vec::new();
    extend_compact_v4(&mut peers, bytes);
    Ok(peers)
}

/// Decodes a compact IPv6 peer list (BEP 7), eighteen bytes per peer: address then port, big-endian.
///
/// Entries with port 0 are dropped; at most [`MAX_PEERS`] are kept.
///
/// # Errors
/// [`TrackerError::CompactLength`] if the length is not a multiple of 18.
///
/// ```
/// let mut entry = [0u8; 18];
/// entry[15] = 1; // ::1
/// entry[16..].copy_from_slice(&6881u16.to_be_bytes());
/// let peers = shoal_tracker::decode_compact_peers6(&entry)?;
/// assert_eq!(peers[0].to_string(), "[::1]:6881");
/// # Ok::<(), shoal_tracker::TrackerError>(())
/// ```
pub fn decode_compact_peers6(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(18) {
        return Err(TrackerError::CompactLength {
            len: bytes.len(),
            entry: 18,
        });
    }
    let mut peers = Vec::new();
    extend_compact_v6(&mut peers, bytes);
    Ok(peers)
}

/// Appends the whole six-byte entries of `bytes` to `peers`, skipping port 0, until [`MAX_PEERS`]. A
/// trailing partial entry is ignored (HOSTILE.md 40: skip bad entries).
pub(crate) fn extend_compact_v4(peers: &mut Vec<SocketAddr>, bytes: &[u8]) {
    for entry in bytes.chunks_exact(6) {
        if peers.len() >= MAX_PEERS {
            break;
        }
        let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
        let port = u16::from_be_bytes([entry[4], entry[5]]);
        push_peer(peers, SocketAddr::V4(SocketAddrV4::new(ip, port)));
    }
}

/// As [`extend_compact_v4`] for eighteen-byte IPv6 entries.
pub(crate) fn extend_compact_v6(peers: &mut Vec<SocketAddr>, bytes: &[u8]) {
    for entry in bytes.chunks_exact(18) {
        if peers.len() >= MAX_PEERS {
            break;
        }
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&entry[..16]);
        let port = u16::from_be_bytes([entry[16], entry[17]]);
        push_peer(
            peers,
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0)),
        );
    }
}

/// Adds one peer unless its port is 0 or the list is full.
pub(crate) fn push_peer(peers: &mut Vec<SocketAddr>, addr: SocketAddr) {
    // A peer listening on port 0 cannot be dialled: trackers that send it have a bug or are hostile.
    if addr.port() != 0 && peers.len() < MAX_PEERS {
        peers.push(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_port_zero() {
        let peers = decode_compact_peers(&[1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 80]).unwrap();
        assert_eq!(peers, vec!["5.6.7.8:80".parse().unwrap()]);
    }

    #[test]
    fn rejects_partial_entries() {
        assert!(matches!(
            decode_compact_peers(&[1, 2, 3, 4, 5]),
            Err(TrackerError::CompactLength { len: 5, entry: 6 })
        ));
        assert!(matches!(
            decode_compact_peers6(&[0; 19]),
            Err(TrackerError::CompactLength { len: 19, entry: 18 })
        ));
    }

    #[test]
    fn caps_at_max_peers_boundary() {
        let entry = [10, 0, 0, 1, 0x1A, 0xE1];
        for n in [MAX_PEERS, MAX_PEERS + 1] {
            let bytes = entry.repeat(n);
            assert_eq!(decode_compact_peers(&bytes).unwrap().len(), MAX_PEERS);
        }
        let bytes = entry.repeat(MAX_PEERS - 1);
        assert_eq!(decode_compact_peers(&bytes).unwrap().len(), MAX_PEERS - 1);
    }
}
