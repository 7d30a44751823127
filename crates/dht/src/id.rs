//! Node ids, XOR distance, BEP 42 secure ids and the seeded random generator the core uses.
//!
//! BEP 42 ties a node id to the node's external IP: the first 21 bits of the id are the CRC32-C of the
//! masked IP combined with three random bits that are repeated in the id's last byte. Addresses of local
//! networks are exempt (any id is accepted from them), as the BEP says.

use std::fmt;
use std::net::IpAddr;

/// A 160-bit DHT node id (BEP 5). Distances between ids, and between ids and info-hashes, are their XOR.
///
/// ```
/// use shoal_dht::NodeId;
///
/// let a = NodeId([0; 20]);
/// let mut b = NodeId([0; 20]);
/// b.0[19] = 1;
/// assert_eq!(a.distance(&b).leading_zeros(), 159);
/// assert_eq!(b.to_string(), "0000000000000000000000000000000000000001");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR of two ids; compares as a 160-bit big-endian number, so smaller is closer.
///
/// ```
/// use shoal_dht::NodeId;
///
/// let target = NodeId([0; 20]);
/// let near = NodeId([1; 20]);
/// let far = NodeId([0x80; 20]);
/// assert!(target.distance(&near) < target.distance(&far));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl Distance {
    /// How many leading bits are zero (160 for a distance of zero): the length of the common prefix.
    ///
    /// ```
    /// assert_eq!(shoal_dht::Distance([0xff; 20]).leading_zeros(), 0);
    /// ```
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for byte in self.0 {
            if byte != 0 {
                return zeros + byte.leading_zeros();
            }
            zeros += 8;
        }
        zeros
    }
}

impl NodeId {
    /// The XOR distance between two ids.
    ///
    /// ```
    /// let id = shoal_dht::NodeId([7; 20]);
    /// assert_eq!(id.distance(&id).leading_zeros(), 160);
    /// ```
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut out = [0; 20];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(out)
    }

    /// A uniformly random id from `rng`.
    ///
    /// ```
    /// let mut rng = shoal_dht::Rng::new(1);
    /// assert_ne!(shoal_dht::NodeId::random(&mut rng), shoal_dht::NodeId::random(&mut rng));
    /// ```
    pub fn random(rng: &mut Rng) -> NodeId {
        let mut id = [0; 20];
        rng.fill(&mut id);
        NodeId(id)
    }

    /// A random id that complies with BEP 42 for the external address `ip`.
    ///
    /// ```
    /// use shoal_dht::{NodeId, Rng};
    ///
    /// let ip = "124.31.75.21".parse()?;
    /// let id = NodeId::secure_for(ip, &mut Rng::new(7));
    /// assert!(id.is_secure_for(ip));
    /// assert!(!id.is_secure_for("21.75.31.124".parse()?));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn secure_for(ip: IpAddr, rng: &mut Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        let r = id.0[19] & 7;
        let crc = secure_prefix(ip, r);
        id.0[0] = (crc >> 24) as u8;
        id.0[1] = (crc >> 16) as u8;
        id.0[2] = ((crc >> 8) as u8 & 0xf8) | (id.0[2] & 7);
        id
    }

    /// Whether the id complies with BEP 42 for a node at `ip`. Ids from local-network and loopback
    /// addresses always comply (BEP 42 exempts them).
    ///
    /// ```
    /// let id = shoal_dht::NodeId([0; 20]);
    /// assert!(id.is_secure_for("127.0.0.1".parse()?));
    /// assert!(!id.is_secure_for("1.2.3.4".parse()?));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn is_secure_for(&self, ip: IpAddr) -> bool {
        if is_local(ip) {
            return true;
        }
        let crc = secure_prefix(ip, self.0[19] & 7);
        self.0[0] == (crc >> 24) as u8
            && self.0[1] == (crc >> 16) as u8
            && self.0[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
    }

    /// A random id whose distance to `self` has exactly `prefix_len` leading zero bits (for bucket
    /// refreshes: a target inside the bucket that covers that prefix length). `prefix_len` ≥ 160 gives
    /// `self`.
    pub(crate) fn random_at_prefix(&self, prefix_len: u32, rng: &mut Rng) -> NodeId {
        if prefix_len >= 160 {
            return *self;
        }
        let mut out = NodeId::random(rng);
        for bit in 0..=prefix_len as usize {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let ours = self.0[byte] & mask;
            // Equal for the first `prefix_len` bits, different at bit `prefix_len`.
            let want = if bit == prefix_len as usize {
                ours ^ mask
            } else {
                ours
            };
            out.0[byte] = (out.0[byte] & !mask) | want;
        }
        out
    }
}

impl From<shoal_metainfo::InfoHash> for NodeId {
    fn from(hash: shoal_metainfo::InfoHash) -> Self {
        NodeId(hash.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// Whether BEP 42 exempts `ip`: loopback, private, link-local and unique-local addresses.
pub(crate) fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// BEP 42: CRC32-C of the masked address with `r` in its top three bits.
fn secure_prefix(ip: IpAddr, r: u8) -> u32 {
    match ip {
        IpAddr::V4(v4) => {
            let mut bytes = (u32::from(v4) & 0x030f_3fff).to_be_bytes();
            bytes[0] |= r << 5;
            crc32c(&bytes)
        }
        IpAddr::V6(v6) => {
            let high = (u128::from(v6) >> 64) as u64;
            let mut bytes = (high & 0x0103_070f_1f3f_7fff).to_be_bytes();
            bytes[0] |= r << 5;
            crc32c(&bytes)
        }
    }
}

/// CRC32-C (Castagnoli), bit by bit: BEP 42 hashes at most eight bytes, so a table is not worth it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small seeded generator (xorshift64*, seeded through splitmix64): the core never touches a global
/// RNG, so a simulation with a fixed seed replays exactly.
///
/// ```
/// let mut a = shoal_dht::Rng::new(42);
/// let mut b = shoal_dht::Rng::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`; any seed works, zero included.
    pub fn new(seed: u64) -> Rng {
        // splitmix64 spreads similar seeds apart and never yields the all-zero state xorshift must avoid.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn bep42_test_vectors() {
        // The table in BEP 42: IP, the id's random last byte, and the first three bytes (21 bits fixed).
        let vectors = [
            ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
            ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
            ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
            ("84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
            ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
        ];
        for (ip, id) in vectors {
            let id = NodeId(hex(id).try_into().unwrap());
            assert!(id.is_secure_for(ip.parse().unwrap()), "{ip}");
            let mut other = id;
            other.0[0] ^= 1;
            assert!(!other.is_secure_for(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn secure_ids_for_ipv6() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            assert!(NodeId::secure_for(ip, &mut rng).is_secure_for(ip));
        }
    }

    #[test]
    fn random_at_prefix_lands_in_the_bucket() {
        let mut rng = Rng::new(9);
        let own = NodeId::random(&mut rng);
        for prefix in [0, 1, 7, 8, 9, 100, 159] {
            let target = own.random_at_prefix(prefix, &mut rng);
            assert_eq!(own.distance(&target).leading_zeros(), prefix);
        }
        assert_eq!(own.random_at_prefix(160, &mut rng), own);
    }

    #[test]
    fn below_is_in_range_and_spread() {
        let mut rng = Rng::new(0);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[rng.below(10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
    }
}
