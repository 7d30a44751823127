//! The canonical allowed-fast set (BEP 6).

use std::net::Ipv4Addr;

use sha1::{Digest as _, Sha1};
use shoal_metainfo::InfoHash;

use crate::PieceIndex;

/// The canonical allowed-fast set of BEP 6: the `count` pieces a peer at `ip` may request while choked.
///
/// The hash chain starts from the peer's /24 (its address with the last byte zeroed) followed by the
/// info-hash; each SHA-1 yields five big-endian 32-bit words, each taken modulo the piece count, skipping
/// duplicates. `count` is capped at the piece count, so the loop always ends.
///
/// ```
/// use std::net::Ipv4Addr;
/// use shoal_metainfo::InfoHash;
/// use shoal_wire::{allowed_fast_set, PieceIndex};
///
/// // The example from BEP 6.
/// let set = allowed_fast_set(Ipv4Addr::new(80, 4, 4, 200), &InfoHash([0xaa; 20]), 1313, 7);
/// assert_eq!(set, [1059, 431, 808, 1217, 287, 376, 1188].map(PieceIndex));
/// ```
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    n_pieces: u32,
    count: u32,
) -> Vec<PieceIndex> {
    let count = count.min(n_pieces) as usize;
    let mut set: Vec<PieceIndex> = Vec::with_capacity(count);
    // BEP 6: x = 0xFFFFFF00 & ip, then the info-hash appended.
    let masked = u32::from(ip) & 0xFFFF_FF00;
    let mut x = Sha1::new()
        .chain_update(masked.to_be_bytes())
        .chain_update(info_hash.0)
        .finalize();
    while set.len() < count {
        let (words, _) = x.as_chunks::<4>();
        for word in words {
            if set.len() >= count {
                break;
            }
            let Some(index) = u32::from_be_bytes(*word)
                .checked_rem(n_pieces)
                .map(PieceIndex)
            else {
                break; // no pieces: `count` is 0 and the loop does not run
            };
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = Sha1::digest(x);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(n_pieces: u32, count: u32, expected: &[u32]) {
        let set = allowed_fast_set(
            Ipv4Addr::new(80, 4, 4, 200),
            &InfoHash([0xaa; 20]),
            n_pieces,
            count,
        );
        assert_eq!(
            set,
            expected.iter().copied().map(PieceIndex).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bep_6_examples() {
        check(1313, 7, &[1059, 431, 808, 1217, 287, 376, 1188]);
        check(1313, 9, &[1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
    }

    #[test]
    fn the_last_octet_does_not_matter() {
        let hash = InfoHash([0xaa; 20]);
        assert_eq!(
            allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &hash, 1313, 9),
            allowed_fast_set(Ipv4Addr::new(80, 4, 4, 254), &hash, 1313, 9),
        );
    }

    #[test]
    fn small_torrents_terminate() {
        check(0, 10, &[]);
        let set = allowed_fast_set(Ipv4Addr::LOCALHOST, &InfoHash([1; 20]), 3, 10);
        let mut sorted = set.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2].map(PieceIndex));
    }
}
