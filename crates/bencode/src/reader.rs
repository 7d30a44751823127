//! The byte-level scanner shared by the value decoder and the serde deserializer.
//!
//! It never allocates: integers are parsed in place and byte strings are returned as slices of the input,
//! after their declared length has been checked against what remains.

use crate::error::{DecodeError, ErrorKind};

/// A cursor over bencoded input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn input(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(kind, self.pos)
    }

    /// The next byte without consuming it.
    #[inline]
    pub(crate) fn peek(&self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.err(ErrorKind::UnexpectedEof)),
        }
    }

    #[inline]
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Parses `i<digits>e` starting at the `i`.
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i64, DecodeError> {
        debug_assert_eq!(self.buf.get(self.pos), Some(&b'i'));
        self.pos += 1;
        let negative = self.buf.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        let magnitude = self.digits(b'e')?;
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
        let start = self.pos;
        let len = self.digits(b':')?;
        let remaining = self.buf.len() - self.pos;
        // Checked before anything is touched: the length is the peer's claim, not a fact.
        if len > remaining as u64 {
            return Err(DecodeError::new(ErrorKind::LengthPastEnd(len), start));
        }
        let end = self.pos + len as usize;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Parses decimal digits up to and including `terminator`, rejecting leading zeros and overflow.
    #[inline]
    fn digits(&mut self, terminator: u8) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err(ErrorKind::UnexpectedEof));
            };
            match b {
                b'0'..=b'9' => {
                    if value == 0 && self.pos > start {
                        return Err(DecodeError::new(ErrorKind::LeadingZero, start));
                    }
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| DecodeError::new(ErrorKind::IntegerOverflow, start))?;
                    self.pos += 1;
                }
                _ if b == terminator && self.pos > start => {
                    self.pos += 1;
                    return Ok(value);
                }
                _ if b == terminator => return Err(self.err(ErrorKind::MissingDigits)),
                _ => return Err(self.err(ErrorKind::UnexpectedByte(b))),
            }
        }
    }
}
