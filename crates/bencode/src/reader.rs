//! The byte-level scanner shared by the value decoder and the serde deserializer.
//!
//! It never allocates: integers are parsed in place and byte strings are returned as slices of the input,
//! after their declared length has been checked against what remains.

use crate::error::{DecodeError, ErrorKind};

/// A cursor over bencoded input: the unread rest of it, a slice that shrinks from the front.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, rest: input }
    }

    /// The unread rest of the input.
    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The offset of the next unread byte.
    pub(crate) fn pos(&self) -> usize {
        self.input.len() - self.rest.len()
    }

    pub(crate) fn input(&self) -> &'a [u8] {
        self.input
    }

    #[cold]
    pub(crate) fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(kind, self.pos())
    }

    /// The next byte without consuming it.
    #[inline]
    pub(crate) fn peek(&self) -> Result<u8, DecodeError> {
        match self.rest.first() {
            Some(&b) => Ok(b),
            None => Err(self.err(ErrorKind::UnexpectedEof)),
        }
    }

    /// Consumes the byte [`peek`](Self::peek) returned.
    #[inline]
    pub(crate) fn bump(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    /// Parses `i<digits>e` starting at the `i`.
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i64, DecodeError> {
        debug_assert_eq!(self.rest.first(), Some(&b'i'));
        // The common case (non-negative, canonical, up to 15 digits) moves the cursor once, the rest goes
        // the long way round with every check.
        if let Some((value, rest)) = int_at(self.rest) {
            self.rest = rest;
            return Ok(value);
        }
        self.int_slow()
    }

    /// [`int`](Self::int) for negative and long integers, and every error.
    #[inline(never)]
    fn int_slow(&mut self) -> Result<i64, DecodeError> {
        self.bump();
        let negative = self.rest.first() == Some(&b'-');
        if negative {
            self.bump();
        }
        let start = self.pos();
        let magnitude = self.digits_slow(b'e')?;
        if negative && magnitude == 0 {
            return Err(DecodeError::new(ErrorKind::NegativeZero, start));
        }
        let value = if negative {
            // i64::MIN has a magnitude one larger than i64::MAX.
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value.ok_or_else(|| DecodeError::new(ErrorKind::IntegerOverflow, start))
    }

    /// Parses `<len>:<bytes>` starting at the first digit and returns the bytes.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        if let Some((bytes, rest)) = bytes_at(self.rest) {
            self.rest = rest;
            return Ok(bytes);
        }
        self.bytes_slow()
    }

    /// Moves the cursor to `rest`, a suffix of the input after the cursor: past a value read with
    /// [`bytes_at`] or [`int_at`].
    #[inline]
    pub(crate) fn skip_to(&mut self, rest: &'a [u8]) {
        debug_assert!(rest.len() <= self.rest.len());
        self.rest = rest;
    }

    /// [`bytes`](Self::bytes) for long length prefixes and every error.
    #[inline(never)]
    fn bytes_slow(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos();
        let len = self.digits_slow(b':')?;
        // Checked before anything is touched: the length is the peer's claim, not a fact.
        match usize::try_from(len)
            .ok()
            .and_then(|len| self.rest.split_at_checked(len))
        {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(bytes)
            }
            None => Err(DecodeError::new(ErrorKind::LengthPastEnd(len), start)),
        }
    }

    /// How many values are left in the list being read, when that is cheap to tell: the rest of it is
    /// byte strings shorter than 100 bytes, such as the components of a file's path, and ends within the
    /// next [`SHORT_LIST_BYTES`]. Otherwise (other values, a long list, the end of the input near,
    /// malformed input) `None`.
    ///
    /// Only a hint for preallocation: it checks nothing, and reading the items reports any error.
    pub(crate) fn short_list_len(&self) -> Option<usize> {
        let window = self.rest.first_chunk::<SHORT_LIST_BYTES>()?;
        let mut at = 0;
        let mut count = 0;
        // Each step reads at most three bytes from `at`, so stopping two short of the end keeps every
        // read inside the window without a check of its own; each step moves on by two bytes or more.
        while at < SHORT_LIST_BYTES - 2 {
            let (b0, b1) = (window[at], window[at + 1]);
            if b0 == b'e' {
                return Some(count);
            }
            let d0 = usize::from(b0.wrapping_sub(b'0'));
            if d0 > 9 {
                return None;
            }
            at += if b1 == b':' {
                2 + d0
            } else {
                let d1 = usize::from(b1.wrapping_sub(b'0'));
                if d0 == 0 || d1 > 9 || window[at + 2] != b':' {
                    return None;
                }
                3 + d0 * 10 + d1
            };
            count += 1;
        }
        None
    }

    /// Parses decimal digits up to and including `terminator`, rejecting leading zeros and overflow, one
    /// byte at a time with every check: the path for what [`number`] leaves, long and malformed numbers.
    #[cold]
    #[inline(never)]
    fn digits_slow(&mut self, terminator: u8) -> Result<u64, DecodeError> {
        let rest = self.rest;
        // Up to 19 digits cannot overflow a u64, so the common case needs no overflow checks.
        let mut value: u64 = 0;
        let mut len = 0;
        while let Some(&b) = rest.get(len) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 || len == 19 {
                break;
            }
            value = value * 10 + u64::from(digit);
            len += 1;
        }
        let leading_zero = len > 1 && rest.first() == Some(&b'0');
        match rest.get(len) {
            Some(&b) if b == terminator && len > 0 && !leading_zero => {
                self.rest = rest.get(len + 1..).unwrap_or_default();
                Ok(value)
            }
            // BEP 3: no leading zeros (a lone `0` is fine).
            Some(_) if leading_zero => Err(self.err(ErrorKind::LeadingZero)),
            Some(b'0'..=b'9') => Err(self.err(ErrorKind::IntegerOverflow)),
            Some(&b) if b == terminator => Err(self.err(ErrorKind::MissingDigits)),
            Some(&b) => Err(DecodeError::new(
                ErrorKind::UnexpectedByte(b),
                self.pos() + len,
            )),
            None => Err(DecodeError::new(ErrorKind::UnexpectedEof, self.pos() + len)),
        }
    }
}

/// How far ahead [`Reader::short_list_len`] looks for the end of a list.
const SHORT_LIST_BYTES: usize = 128;

/// The byte string at the start of `rest` and the input after it, when it is one with a canonical length
/// that fits: what [`Reader::bytes`] reads there without error. `None` for anything else, valid or not,
/// which `Reader::bytes` reads (or rejects) the long way round.
#[inline(always)]
pub(crate) fn bytes_at(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, after) = number(rest, b':')?;
    after.split_at_checked(usize::try_from(len).ok()?)
}

/// [`bytes_at`] for byte strings shorter than 100 bytes only (one- and two-digit lengths), which keeps it
/// small enough to inline everywhere; `None` for longer ones too.
#[inline(always)]
pub(crate) fn short_bytes_at(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, after) = match *rest {
        [d @ b'0'..=b'9', b':', ref tail @ ..] => (usize::from(d - b'0'), tail),
        [d1 @ b'1'..=b'9', d2 @ b'0'..=b'9', b':', ref tail @ ..] => {
            (usize::from(d1 - b'0') * 10 + usize::from(d2 - b'0'), tail)
        }
        _ => return None,
    };
    after.split_at_checked(len)
}

/// The integer at the start of `rest` (from its `i`) and the input after it, in the common case: not
/// negative, canonical, up to 15 digits. `None` for anything else, which [`Reader::int`] reads (or
/// rejects) the long way round.
#[inline(always)]
pub(crate) fn int_at(rest: &[u8]) -> Option<(i64, &[u8])> {
    // Integers vary in length more than byte-string lengths do: straight to the branch-free parse.
    let digits = rest.strip_prefix(b"i")?;
    let (value, len) = long_number(digits, b'e');
    let rest = digits.get(len..).filter(|_| len > 0)?;
    Some((i64::try_from(value).ok()?, rest))
}

/// A canonical decimal number (no leading zero) of 1 to 15 digits at the start of `rest`, followed by
/// `terminator`: its value and what follows the terminator. `None` for anything else, valid or not;
/// the caller then takes the slow path, which has every check and error.
#[inline(always)]
fn number(rest: &[u8], terminator: u8) -> Option<(u64, &[u8])> {
    // Most numbers in bencode are byte-string lengths of one or two digits (keys, names, path
    // components): take those without entering the general code.
    match *rest {
        [d @ b'0'..=b'9', t, ref tail @ ..] if t == terminator => Some((u64::from(d - b'0'), tail)),
        [d1 @ b'1'..=b'9', d2 @ b'0'..=b'9', t, ref tail @ ..] if t == terminator => {
            Some((u64::from(d1 - b'0') * 10 + u64::from(d2 - b'0'), tail))
        }
        _ => {
            let (value, len) = long_number(rest, terminator);
            Some((value, rest.get(len..).filter(|_| len > 0)?))
        }
    }
}

/// [`number`] for three digits or more, and integers of any length: the value and how many bytes the
/// digits and the terminator take, or a length of 0 when it is not a canonical number of 1 to 15 digits
/// followed by `terminator`. (Two plain words come back in registers, where an `Option` of them would go
/// through memory.)
#[inline(never)]
pub(crate) fn long_number(rest: &[u8], terminator: u8) -> (u64, usize) {
    // Sixteen bytes at once, without a branch on the digit count: integers such as file sizes vary in
    // length from one to the next, and a loop whose exit is mispredicted costs more than these few
    // multiplications (measured: about 8% of a typed torrent decode).
    let Some((first, second)) = rest
        .first_chunk::<16>()
        .and_then(|w| w.split_first_chunk::<8>())
        .and_then(|(a, b)| Some((*a, *b.first_chunk::<8>()?)))
    else {
        return short_number(rest, terminator);
    };
    let (first, second) = (u64::from_le_bytes(first), u64::from_le_bytes(second));
    let (count, more) = (leading_digits(first), leading_digits(second));
    let len = if count == 8 { 8 + more } else { count };
    let leading_zero = len > 1 && rest.first() == Some(&b'0');
    // Sixteen digits or more go the slow way (their value may not fit).
    if len == 0 || len >= 16 || leading_zero || rest.get(len) != Some(&terminator) {
        return (0, 0);
    }
    let high = digits_value(first, count);
    let value = if count == 8 {
        let low = digits_value(second, more.max(1)) * u64::from(more > 0);
        high * POWERS_OF_TEN[more] + low
    } else {
        high
    };
    (value, len + 1)
}

/// [`long_number`] for the last bytes of the input, one byte at a time.
fn short_number(rest: &[u8], terminator: u8) -> (u64, usize) {
    let mut value: u64 = 0;
    let mut len = 0;
    while let Some(&b) = rest.get(len) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 || len == 15 {
            break;
        }
        value = value * 10 + u64::from(digit);
        len += 1;
    }
    let leading_zero = len > 1 && rest.first() == Some(&b'0');
    if len > 0 && !leading_zero && rest.get(len) == Some(&terminator) {
        return (value, len + 1);
    }
    (0, 0)
}

/// `10^n` for the digit counts one eight-byte word can hold.
const POWERS_OF_TEN: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Each byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// How many of the eight bytes in `word` (read little-endian: the first byte is the lowest) are ASCII
/// digits before the first that is not.
#[inline]
fn leading_digits(word: u64) -> usize {
    // A byte is a digit when its high nibble is 3 and adding 6 leaves it 3 (so the low nibble is at most
    // 9). A carry out of a byte of 0xfa or more disturbs only the bytes after it, and that byte is
    // already not a digit.
    let high = (word & splat(0xf0)) ^ splat(0x30);
    let plus_six = (word.wrapping_add(splat(0x06)) & splat(0xf0)) ^ splat(0x30);
    let not_digits = high | plus_six;
    (not_digits.trailing_zeros() / 8) as usize
}

/// The value of the first `count` (1 to 8) bytes of `word`, which are all ASCII digits, most
/// significant first.
#[inline]
fn digits_value(word: u64, count: usize) -> u64 {
    // Digits to their values (no byte borrows: the digits are each at least b'0', and what a non-digit
    // byte after them borrows is shifted out), then moved to the top so the missing ones read as
    // leading zeros.
    let mut v = word.wrapping_sub(splat(b'0')) << (8 * (8 - count));
    // Pairs of digits into bytes, pairs of those into 16-bit lanes, then the two halves.
    v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    v.wrapping_mul(10_000).wrapping_add(v >> 32) & 0xffff_ffff
}

/// Checks that `bytes` are UTF-8 text.
///
/// `simdutf8` rather than `std::str::from_utf8`: SIMD on long stretches (the serde deserializer checks
/// its text a window of input at a time), and a zero-sized error that lets the result come back in
/// registers.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Whether dictionary key `next` comes strictly after `last` in raw byte order (the strict-mode rule), as
/// [`key_order`] but cheaper to branch on.
#[inline]
pub(crate) fn key_after(last: &[u8], next: &[u8]) -> bool {
    match (last.first(), next.first()) {
        (Some(a), Some(b)) if a != b => a < b,
        _ => last < next,
    }
}

/// Orders two dictionary keys as raw bytes; most keys differ in their first byte, which spares a
/// `memcmp` call per key on the hot path.
#[inline]
pub(crate) fn key_order(last: &[u8], next: &[u8]) -> std::cmp::Ordering {
    match (last.first(), next.first()) {
        (Some(a), Some(b)) if a != b => a.cmp(b),
        _ => last.cmp(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What [`long_number`] must return, worked out digit by digit: a canonical number of 1 to 15
    /// digits followed by `terminator`, else `(0, 0)`.
    fn reference_number(rest: &[u8], terminator: u8) -> (u64, usize) {
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let canonical = len == 1 || (len > 1 && rest[0] != b'0');
        if !canonical || len > 15 || rest.get(len) != Some(&terminator) {
            return (0, 0);
        }
        let value = std::str::from_utf8(&rest[..len]).unwrap().parse().unwrap();
        (value, len + 1)
    }

    #[test]
    fn long_number_agrees_with_a_digit_by_digit_parse() {
        // Every length up to past the limit, with and without a leading zero, ended by either
        // terminator, another byte, more digits or the end of the input, with enough bytes after it or
        // too few for the sixteen-byte path.
        for len in 0..=20 {
            for first in [b'0', b'1', b'5', b'9'] {
                for end in [&b"e"[..], b":", b"x", b"7e", b""] {
                    for pad in 0..=17 {
                        let mut input: Vec<u8> = (0..len)
                            .map(|i| if i == 0 { first } else { b"8239014576"[i % 10] })
                            .collect();
                        input.extend_from_slice(end);
                        input.extend(std::iter::repeat_n(b'e', pad));
                        for terminator in [b'e', b':'] {
                            assert_eq!(
                                long_number(&input, terminator),
                                reference_number(&input, terminator),
                                "{:?} ending {:?}",
                                String::from_utf8_lossy(&input),
                                char::from(terminator)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn swar_helpers_on_every_byte() {
        // Each byte value in each position of a word of digits.
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"12345678";
                bytes[at] = b;
                let word = u64::from_le_bytes(bytes);
                let expected = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
                assert_eq!(leading_digits(word), expected, "byte {b:#x} at {at}");
                if expected > 0 {
                    let text = std::str::from_utf8(&bytes[..expected]).unwrap();
                    assert_eq!(digits_value(word, expected), text.parse::<u64>().unwrap());
                }
            }
        }
    }

    #[test]
    fn fast_paths_read_what_the_reader_reads() {
        for input in [
            &b"0:"[..],
            b"1:a",
            b"9:123456789",
            b"10:0123456789",
            b"99:",
            b"5:abc",
            b"03:abc",
            b"i0e",
            b"i42e",
            b"i123456789012345e",
            b"i1234567890123456e",
            b"i-5e",
            b"i03e",
            b"ie",
            b"i9",
        ] {
            let mut reader = Reader::new(input);
            let expected = if input[0] == b'i' {
                reader.int().ok().map(|v| (Some(v), None))
            } else {
                reader.bytes().ok().map(|b| (None, Some(b)))
            };
            let rest = reader.rest();
            if let Some((value, after)) = int_at(input) {
                assert_eq!(expected, Some((Some(value), None)), "{input:?}");
                assert_eq!(after, rest);
            }
            for (bytes, after) in [bytes_at(input), short_bytes_at(input)]
                .into_iter()
                .flatten()
            {
                assert_eq!(expected, Some((None, Some(bytes))), "{input:?}");
                assert_eq!(after, rest);
            }
        }
    }

    /// One item of a list, for the size-hint tests.
    #[derive(Debug, Clone)]
    enum Item {
        Bytes(usize),
        Int(i64),
        List,
    }

    fn encode_list(items: &[Item]) -> Vec<u8> {
        let mut out = b"l".to_vec();
        for item in items {
            match item {
                Item::Bytes(len) => {
                    out.extend_from_slice(format!("{len}:").as_bytes());
                    out.extend(std::iter::repeat_n(b'x', *len));
                }
                Item::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
                Item::List => out.extend_from_slice(b"le"),
            }
        }
        out.push(b'e');
        out
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            8 => (0..120usize).prop_map(Item::Bytes),
            1 => any::<i64>().prop_map(Item::Int),
            1 => Just(Item::List),
        ]
    }

    proptest! {
        #[test]
        fn short_list_len_is_exact_or_none(
            items in prop::collection::vec(item(), 0..12),
            trailing in 0..200usize,
        ) {
            let mut input = encode_list(&items);
            let list_len = input.len();
            input.extend(std::iter::repeat_n(b'e', trailing));
            let mut reader = Reader::new(&input);
            reader.bump();
            let expected = items.iter().all(|i| matches!(i, Item::Bytes(len) if *len < 100))
                && list_len - 2 < SHORT_LIST_BYTES - 2
                && input.len() > SHORT_LIST_BYTES;
            prop_assert_eq!(reader.short_list_len(), expected.then_some(items.len()));
        }

        #[test]
        fn short_list_len_never_miscounts(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // On arbitrary input a count, when there is one, is the number of byte strings before an
            // `e`, each well formed.
            let reader = Reader::new(&bytes);
            if let Some(count) = reader.short_list_len() {
                let mut rest = &bytes[..];
                for _ in 0..count {
                    rest = bytes_at(rest).expect("a counted item is a byte string").1;
                }
                prop_assert_eq!(rest.first(), Some(&b'e'));
            }
        }

        #[test]
        fn long_number_agrees_on_arbitrary_digits(
            bytes in prop::collection::vec(prop::sample::select(b"0123456789e:-x".to_vec()), 0..24),
        ) {
            for terminator in [b'e', b':'] {
                prop_assert_eq!(
                    long_number(&bytes, terminator),
                    reference_number(&bytes, terminator)
                );
            }
        }
    }
}
