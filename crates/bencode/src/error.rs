//! Error types for decoding and encoding.

use std::fmt;

/// What went wrong while decoding; match on it to react to a particular problem.
///
/// Every kind comes with the byte offset where it was detected, in [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended in the middle of a value.
    UnexpectedEof,
    /// A byte that cannot start or continue a value here (the byte is given).
    UnexpectedByte(u8),
    /// An integer with no digits (`ie`, `i-e`) or a byte-string length with none (`:abc`).
    MissingDigits,
    /// An integer or byte-string length written with a leading zero (`i03e`, `03:abc`).
    LeadingZero,
    /// The integer `-0`, which bencode forbids.
    NegativeZero,
    /// An integer outside the range of `i64`.
    IntegerOverflow,
    /// A byte string whose declared length runs past the end of the input (the length is given).
    LengthPastEnd(u64),
    /// Lists and dictionaries nested deeper than the configured limit (the limit is given).
    DepthLimit(usize),
    /// More values than the configured limit (the limit is given).
    TokenLimit(usize),
    /// A dictionary key that is not a byte string.
    NonStringKey,
    /// Dictionary keys not in ascending byte order (rejected in strict mode only).
    UnsortedKeys,
    /// The same key twice in one dictionary (rejected in strict mode only).
    DuplicateKey,
    /// Bytes left over after the first complete value.
    TrailingBytes,
    /// A byte string that should be UTF-8 text is not.
    InvalidUtf8,
    /// A message from a serde `Deserialize` implementation, such as a missing field or a wrong type.
    Custom(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::UnexpectedByte(b) if b.is_ascii_graphic() => {
                write!(f, "unexpected byte {:?}", char::from(*b))
            }
            Self::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            Self::MissingDigits => f.write_str("number has no digits"),
            Self::LeadingZero => f.write_str("number has a leading zero"),
            Self::NegativeZero => f.write_str("integer is negative zero"),
            Self::IntegerOverflow => f.write_str("integer does not fit in 64 bits"),
            Self::LengthPastEnd(len) => {
                write!(
                    f,
                    "byte string of length {len} runs past the end of the input"
                )
            }
            Self::DepthLimit(limit) => write!(f, "nesting deeper than the limit of {limit}"),
            Self::TokenLimit(limit) => write!(f, "more than the limit of {limit} values"),
            Self::NonStringKey => f.write_str("dictionary key is not a byte string"),
            Self::UnsortedKeys => f.write_str("dictionary keys are not sorted"),
            Self::DuplicateKey => f.write_str("dictionary key appears twice"),
            Self::TrailingBytes => f.write_str("trailing bytes after the value"),
            Self::InvalidUtf8 => f.write_str("byte string is not valid UTF-8"),
            Self::Custom(msg) => f.write_str(msg),
        }
    }
}

/// A decoding failure: what went wrong ([`ErrorKind`]) and at which byte offset of the input.
///
/// Displays as one line, for example `invalid bencode at byte 3: number has a leading zero`.
///
/// ```
/// use shoal_bencode::{decode, ErrorKind};
///
/// let err = decode(b"li03ee").unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::LeadingZero);
/// assert_eq!(err.offset(), 2);
/// assert_eq!(err.to_string(), "invalid bencode at byte 2: number has a leading zero");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Boxed so that a `Result` carrying this error is barely larger than its success value: the
    /// decoder passes results up through every level of nesting, and a one-pointer error keeps them in
    /// registers.
    inner: Box<Inner>,
}

/// What a [`DecodeError`] holds, behind its box.
#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    offset: Option<usize>,
}

impl DecodeError {
    #[cold]
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                offset: Some(offset),
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The byte offset in the input where the problem was detected.
    pub fn offset(&self) -> usize {
        self.inner.offset.unwrap_or(0)
    }

    /// Fills in the offset of an error raised without one (serde's `custom` errors).
    #[inline]
    pub(crate) fn or_at(mut self, offset: usize) -> Self {
        self.fill_offset(offset);
        self
    }

    /// [`or_at`](Self::or_at) in place.
    #[cold]
    pub(crate) fn fill_offset(&mut self, offset: usize) {
        self.inner.offset.get_or_insert(offset);
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeError")
            .field("kind", &self.inner.kind)
            .field("offset", &self.inner.offset)
            .finish()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid bencode at byte {}: {}",
            self.offset(),
            self.inner.kind
        )
    }
}

impl std::error::Error for DecodeError {}

impl serde::de::Error for DecodeError {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: ErrorKind::Custom(msg.to_string()),
                offset: None,
            }),
        }
    }
}

/// An encoding failure from [`to_bytes`](crate::to_bytes): the value has no bencode form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value holds a type bencode cannot represent (floats, unit, `None` outside a struct field).
    #[error("bencode cannot represent {0}")]
    Unsupported(&'static str),
    /// A dictionary key that does not serialize to a byte string.
    #[error("dictionary key is not a byte string")]
    NonStringKey,
    /// The same key twice in one dictionary.
    #[error("dictionary key {0:?} appears twice")]
    DuplicateKey(String),
    /// A message from a serde `Serialize` implementation.
    #[error("{0}")]
    Custom(String),
}

impl serde::ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}
