//! RC4, the stream cipher MSE uses. Weak as cryptography, but it is what every client speaks: MSE is
//! obfuscation against traffic shaping, not secrecy.

/// An RC4 keystream. Encrypting and decrypting are the same operation: [`apply`](Self::apply) XORs the
/// next bytes of the keystream into the data.
///
/// ```
/// use shoal_mse::Rc4;
///
/// let mut sender = Rc4::new(b"Key");
/// let mut data = *b"Plaintext";
/// sender.apply(&mut data);
/// assert_eq!(data, [0xbb, 0xf3, 0x16, 0xe8, 0xd9, 0x40, 0xaf, 0x0a, 0xd3]);
/// let mut receiver = Rc4::new(b"Key");
/// receiver.apply(&mut data);
/// assert_eq!(&data, b"Plaintext");
/// ```
#[derive(Clone)]
pub struct Rc4 {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl std::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4 { .. }") // the state is a key: never in logs
    }
}

impl Rc4 {
    /// A keystream for `key` (1 to 256 bytes; MSE's keys are 20).
    ///
    /// # Panics
    /// If `key` is empty.
    pub fn new(key: &[u8]) -> Self {
        assert!(!key.is_empty(), "an RC4 key has at least one byte");
        let mut state = [0u8; 256];
        for (slot, value) in state.iter_mut().zip(0u8..=255) {
            *slot = value;
        }
        let mut j = 0u8;
        for (i, &k) in (0..256).zip(key.iter().cycle()) {
            j = j.wrapping_add(state[i]).wrapping_add(k);
            state.swap(i, usize::from(j));
        }
        Self { state, i: 0, j: 0 }
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.state;
        for byte in data {
            i = i.wrapping_add(1);
            let si = s[usize::from(i)];
            j = j.wrapping_add(si);
            let sj = s[usize::from(j)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            *byte ^= s[usize::from(si.wrapping_add(sj))];
        }
        self.i = i;
        self.j = j;
    }

    /// Skips `n` keystream bytes (MSE drops the first 1024, which leak most about the key).
    pub fn discard(&mut self, n: usize) {
        let mut scratch = [0u8; 256];
        let mut left = n;
        while left > 0 {
            let chunk = left.min(scratch.len());
            self.apply(&mut scratch[..chunk]);
            left -= chunk;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keystream(key: &[u8], skip: usize, len: usize) -> Vec<u8> {
        let mut rc4 = Rc4::new(key);
        rc4.discard(skip);
        let mut out = vec![0; len];
        rc4.apply(&mut out);
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 6229's test vectors: keystream bytes at offsets 0 and 1024 for two of its keys.
    #[test]
    fn rfc_6229_keystreams() {
        let key40 = hex("0102030405");
        assert_eq!(
            keystream(&key40, 0, 16),
            hex("b2396305f03dc027ccc3524a0a1118a8")
        );
        assert_eq!(
            keystream(&key40, 1024, 16),
            hex("30abbcc7c20b01609f23ee2d5f6bb7df")
        );
        let key128 = hex("0102030405060708090a0b0c0d0e0f10");
        assert_eq!(
            keystream(&key128, 0, 16),
            hex("9ac7cc9a609d1ef7b2932899cde41b97")
        );
    }

    #[test]
    fn any_chunking_gives_the_same_stream() {
        let whole = keystream(b"chunks", 0, 1000);
        let mut rc4 = Rc4::new(b"chunks");
        let mut pieces = vec![0; 1000];
        for chunk in pieces.chunks_mut(7) {
            rc4.apply(chunk);
        }
        assert_eq!(pieces, whole);
        let mut skipped = Rc4::new(b"chunks");
        skipped.discard(300);
        let mut rest = vec![0; 700];
        skipped.apply(&mut rest);
        assert_eq!(rest, whole[300..]);
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", Rc4::new(b"secret")), "Rc4 { .. }");
    }
}
