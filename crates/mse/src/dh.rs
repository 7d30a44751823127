//! The Diffie-Hellman key exchange of MSE: generator 2 over a fixed 768-bit prime, keys written as 96
//! big-endian bytes.

use std::sync::OnceLock;

use num_bigint::BigUint;

use crate::MseError;

/// Bytes in a public key or shared secret.
pub const KEY_LEN: usize = 96;

/// MSE's prime P, big-endian (the 768-bit MODP group of RFC 2409, Oakley group 1).
const PRIME: [u8; KEY_LEN] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc9, 0x0f, 0xda, 0xa2, 0x21, 0x68, 0xc2, 0x34,
    0xc4, 0xc6, 0x62, 0x8b, 0x80, 0xdc, 0x1c, 0xd1, 0x29, 0x02, 0x4e, 0x08, 0x8a, 0x67, 0xcc, 0x74,
    0x02, 0x0b, 0xbe, 0xa6, 0x3b, 0x13, 0x9b, 0x22, 0x51, 0x4a, 0x08, 0x79, 0x8e, 0x34, 0x04, 0xdd,
    0xef, 0x95, 0x19, 0xb3, 0xcd, 0x3a, 0x43, 0x1b, 0x30, 0x2b, 0x0a, 0x6d, 0xf2, 0x5f, 0x14, 0x37,
    0x4f, 0xe1, 0x35, 0x6d, 0x6d, 0x51, 0xc2, 0x45, 0xe4, 0x85, 0xb5, 0x76, 0x62, 0x5e, 0x7e, 0xc6,
    0xf4, 0x4c, 0x42, 0xe9, 0xa6, 0x3a, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// Private keys are 160 random bits, as the spec recommends.
const PRIVATE_LEN: usize = 20;

fn prime() -> &'static BigUint {
    static P: OnceLock<BigUint> = OnceLock::new();
    P.get_or_init(|| BigUint::from_bytes_be(&PRIME))
}

/// One side's key pair for one connection.
///
/// ```
/// use shoal_mse::KeyPair;
///
/// let a = KeyPair::generate()?;
/// let b = KeyPair::generate()?;
/// assert_eq!(a.shared_secret(b.public_key())?, b.shared_secret(a.public_key())?);
/// # Ok::<(), shoal_mse::MseError>(())
/// ```
pub struct KeyPair {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &"<96 bytes>")
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Result<Self, MseError> {
        let mut private = [0u8; PRIVATE_LEN];
        getrandom::fill(&mut private).map_err(|e| MseError::Random(e.to_string()))?;
        Ok(Self::from_private(&private))
    }

    /// The key pair of a given private key (big-endian): for tests and known-answer checks.
    pub fn from_private(private: &[u8]) -> Self {
        let private = BigUint::from_bytes_be(private);
        let public = to_key(&BigUint::from(2u32).modpow(&private, prime()));
        Self { private, public }
    }

    /// Our public key, `2^private mod P`, to send to the other side.
    pub fn public_key(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// The secret both sides share: `theirs^private mod P`. A public key that cannot come from an honest
    /// peer (0, 1, P - 1 or not below P) would make the secret guessable, and is refused.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let y = BigUint::from_bytes_be(theirs);
        let p = prime();
        let one = BigUint::from(1u32);
        if y <= one || y >= p - &one {
            return Err(MseError::BadPublicKey);
        }
        Ok(to_key(&y.modpow(&self.private, p)))
    }
}

/// `n` (below P) as 96 big-endian bytes.
fn to_key(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Both ranges are min(96, len) long; a number below P has at most 96 bytes anyway.
    out[KEY_LEN.saturating_sub(bytes.len())..]
        .copy_from_slice(&bytes[bytes.len().saturating_sub(KEY_LEN)..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_private_keys_give_known_public_keys() {
        // 2^1 and 2^10: small enough to check by hand, padded to 96 bytes.
        let two = KeyPair::from_private(&[1]);
        assert_eq!(two.public_key()[..95], [0; 95]);
        assert_eq!(two.public_key()[95], 2);
        let k = KeyPair::from_private(&[10]);
        assert_eq!(k.public_key()[94..], [0x04, 0x00]);
        // 2^800 mod P wraps around the prime: it is below P and not a plain power of two.
        let big = KeyPair::from_private(&[0x03, 0x20]);
        let value = BigUint::from_bytes_be(big.public_key());
        assert!(&value < prime());
        assert_ne!(value.count_ones(), 1);
    }

    #[test]
    fn both_sides_agree_and_strangers_do_not() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        let c = KeyPair::generate().unwrap();
        let ab = a.shared_secret(b.public_key()).unwrap();
        assert_eq!(ab, b.shared_secret(a.public_key()).unwrap());
        assert_ne!(ab, a.shared_secret(c.public_key()).unwrap());
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let a = KeyPair::generate().unwrap();
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        let mut p_minus_one = PRIME;
        p_minus_one[KEY_LEN - 1] -= 1;
        for bad in [[0u8; KEY_LEN], one, p_minus_one, PRIME, [0xff; KEY_LEN]] {
            assert!(matches!(a.shared_secret(&bad), Err(MseError::BadPublicKey)));
        }
        let mut two = [0u8; KEY_LEN];
        two[KEY_LEN - 1] = 2;
        assert!(a.shared_secret(&two).is_ok());
    }
}
