//! A fixed-size bitset over `u64` words, so that "pieces this peer has" and "pieces we could start" can be
//! intersected a word at a time.

use crate::PickerError;

/// A bitset of `len` bits; bit `i` lives in word `i / 64` at position `i % 64`. Bits past `len` stay zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// Creates a bitset of `len` zero bits.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Decodes a wire bitfield (BEP 3: the high bit of the first byte is piece 0) of `len` pieces.
    pub(crate) fn from_wire(bytes: &[u8], len: usize) -> Result<Self, PickerError> {
        let expected = len.div_ceil(8);
        if bytes.len() != expected {
            return Err(PickerError::BitfieldLength {
                got: bytes.len(),
                expected,
            });
        }
        // BEP 3: spare bits at the end of a bitfield must be zero.
        if let Some(&last) = bytes.last()
            && !len.is_multiple_of(8)
            && last & (0xFF >> (len % 8)) != 0
        {
            return Err(PickerError::BitfieldSpareBits);
        }
        let mut set = Self::new(len);
        for (byte_idx, &byte) in bytes.iter().enumerate() {
            // Reversing the byte turns "high bit first" into "low bit first", our order within a word.
            set.words[byte_idx / 8] |= u64::from(byte.reverse_bits()) << ((byte_idx % 8) * 8);
        }
        Ok(set)
    }

    /// Returns bit `i`; `i` must be below `len`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets bit `i`.
    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Clears bit `i`.
    #[inline]
    pub(crate) fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    /// The number of bits.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The raw words, for word-at-a-time intersection.
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// The number of set bits.
    pub(crate) fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Calls `f` with the index of every set bit, in ascending order.
    pub(crate) fn for_each_one(&self, mut f: impl FnMut(usize)) {
        for (word_idx, &word) in self.words.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                f(word_idx * 64 + w.trailing_zeros() as usize);
                w &= w - 1;
            }
        }
    }

    /// Clears every bit, keeping the length.
    pub(crate) fn clear_all(&mut self) {
        self.words.fill(0);
    }
}

/// Sets bit `i` in a growable word vector.
pub(crate) fn words_set(words: &mut Vec<u64>, i: usize) {
    if words.len() <= i / 64 {
        words.resize(i / 64 + 1, 0);
    }
    words[i / 64] |= 1 << (i % 64);
}

/// Clears bit `i` in a growable word vector.
pub(crate) fn words_clear(words: &mut [u64], i: usize) {
    if let Some(word) = words.get_mut(i / 64) {
        *word &= !(1 << (i % 64));
    }
}

/// Returns the first set bit at or after `from`.
pub(crate) fn words_next_one(words: &[u64], from: usize) -> Option<usize> {
    let mut word_idx = from / 64;
    let mut w = *words.get(word_idx)? & (u64::MAX << (from % 64));
    loop {
        if w != 0 {
            return Some(word_idx * 64 + w.trailing_zeros() as usize);
        }
        word_idx += 1;
        w = *words.get(word_idx)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_is_high_bit_first() {
        let set = Bitset::from_wire(&[0b1000_0001, 0b0100_0000], 10).unwrap();
        let mut ones = Vec::new();
        set.for_each_one(|i| ones.push(i));
        assert_eq!(ones, [0, 7, 9]);
        assert_eq!(set.count_ones(), 3);
    }

    #[test]
    fn wire_spans_many_words() {
        let mut bytes = vec![0u8; 25];
        bytes[24] = 0x80; // piece 192
        bytes[8] = 0x01; // piece 71
        let set = Bitset::from_wire(&bytes, 200).unwrap();
        let mut ones = Vec::new();
        set.for_each_one(|i| ones.push(i));
        assert_eq!(ones, [71, 192]);
    }

    #[test]
    fn wire_rejects_bad_length_and_spare_bits() {
        assert_eq!(
            Bitset::from_wire(&[0], 10),
            Err(PickerError::BitfieldLength {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            Bitset::from_wire(&[0, 0b0010_0000], 10),
            Err(PickerError::BitfieldSpareBits)
        );
    }

    #[test]
    fn set_get_clear() {
        let mut set = Bitset::new(130);
        set.set(129);
        set.set(3);
        assert!(set.get(129) && set.get(3) && !set.get(4));
        set.clear(129);
        assert!(!set.get(129));
        set.clear_all();
        assert_eq!(set.count_ones(), 0);
    }

    #[test]
    fn growable_words() {
        let mut words = Vec::new();
        words_set(&mut words, 5);
        words_set(&mut words, 130);
        assert_eq!(words_next_one(&words, 0), Some(5));
        assert_eq!(words_next_one(&words, 6), Some(130));
        assert_eq!(words_next_one(&words, 131), None);
        words_clear(&mut words, 130);
        words_clear(&mut words, 1000);
        assert_eq!(words_next_one(&words, 6), None);
    }
}
