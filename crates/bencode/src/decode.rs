//! The iterative decoder: one loop with an explicit stack, so hostile nesting cannot overflow the call stack.

use crate::error::{DecodeError, ErrorKind};
use crate::reader::Reader;
use crate::value::{Kind, Value};

/// Limits and strictness for decoding.
///
/// The default is strict: it accepts only canonical bencode, which is what data from the network should be.
/// Real-world `.torrent` files sometimes have unsorted dictionary keys; decode those with
/// [`DecodeOptions::lenient`].
///
/// ```
/// use shoal_bencode::{decode_with, DecodeOptions, ErrorKind};
///
/// let unsorted = b"d1:bi1e1:ai2ee";
/// assert_eq!(
///     decode_with(unsorted, &DecodeOptions::strict()).unwrap_err().kind(),
///     &ErrorKind::UnsortedKeys
/// );
/// let value = decode_with(unsorted, &DecodeOptions::lenient())?;
/// assert_eq!(value.get(b"a").and_then(|v| v.as_int()), Some(2));
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Reject dictionaries whose keys are not in strictly ascending byte order (unsorted or duplicate keys).
    pub require_sorted_keys: bool,
    /// The deepest nesting of lists and dictionaries accepted.
    pub max_depth: usize,
    /// The most values (integers, byte strings, lists and dictionaries, keys excluded) in one input.
    pub max_tokens: usize,
}

impl DecodeOptions {
    /// Default nesting limit: deep enough for any real torrent, far too shallow to hurt.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// Default value-count limit (as libtorrent's): bounds memory for inputs of millions of tiny values.
    pub const DEFAULT_MAX_TOKENS: usize = 2_000_000;

    /// Canonical bencode only: keys sorted and unique. Leading zeros, `-0` and trailing bytes are
    /// rejected in every mode.
    pub const fn strict() -> Self {
        Self {
            require_sorted_keys: true,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
        }
    }

    /// Like [`strict`](Self::strict) but accepts unsorted and duplicate dictionary keys, as real-world
    /// torrents need. Lookups return the first entry with a key.
    pub const fn lenient() -> Self {
        Self {
            require_sorted_keys: false,
            ..Self::strict()
        }
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::strict()
    }
}

/// Decodes one complete value (strict mode), borrowing from `input`.
///
/// # Errors
/// Any malformed or non-canonical input, or bytes after the value; see [`ErrorKind`].
///
/// ```
/// let value = shoal_bencode::decode(b"d4:spaml1:a1:bee")?;
/// let spam = value.get(b"spam").and_then(|v| v.as_list()).unwrap();
/// assert_eq!(spam[1].as_bytes(), Some(&b"b"[..]));
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, &DecodeOptions::strict())
}

/// Decodes one complete value with the given options.
///
/// # Errors
/// As [`decode`], within the limits of `options`.
pub fn decode_with<'a>(input: &'a [u8], options: &DecodeOptions) -> Result<Value<'a>, DecodeError> {
    let (value, used) = decode_prefix(input, options)?;
    if used != input.len() {
        return Err(DecodeError::new(ErrorKind::TrailingBytes, used));
    }
    Ok(value)
}

/// Decodes the value at the start of `input` and returns it with the number of bytes it used.
///
/// Some messages put raw data after a bencoded dictionary (a BEP 9 `ut_metadata` data message, for one):
/// this finds where the dictionary ends.
///
/// # Errors
/// As [`decode`], except that trailing bytes are allowed.
///
/// ```
/// use shoal_bencode::{decode_prefix, DecodeOptions};
///
/// let message = b"d8:msg_typei1e5:piecei0eeRAW-PIECE-DATA";
/// let (header, used) = decode_prefix(message, &DecodeOptions::strict())?;
/// assert_eq!(header.get(b"msg_type").and_then(|v| v.as_int()), Some(1));
/// assert_eq!(&message[used..], b"RAW-PIECE-DATA");
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
pub fn decode_prefix<'a>(
    input: &'a [u8],
    options: &DecodeOptions,
) -> Result<(Value<'a>, usize), DecodeError> {
    let mut builder = Builder::default();
    let used = walk(&mut Reader::new(input), options, &mut builder)?;
    let value = builder
        .values
        .pop()
        .expect("a successful walk leaves exactly one value");
    Ok((value, used))
}

/// Checks that `reader` starts with one valid value and moves past it, building nothing.
pub(crate) fn skip(reader: &mut Reader<'_>, options: &DecodeOptions) -> Result<(), DecodeError> {
    walk(reader, options, &mut Skip).map(|_| ())
}

/// Receives the values found by [`walk`], innermost first.
trait Sink<'a> {
    fn scalar(&mut self, kind: Kind<'a>, raw: &'a [u8]);
    fn key(&mut self, key: &'a [u8]);
    fn open(&mut self);
    fn close_list(&mut self, raw: &'a [u8]);
    fn close_dict(&mut self, raw: &'a [u8]);
}

/// A sink that keeps nothing: validation only.
struct Skip;

impl<'a> Sink<'a> for Skip {
    fn scalar(&mut self, _: Kind<'a>, _: &'a [u8]) {}
    fn key(&mut self, _: &'a [u8]) {}
    fn open(&mut self) {}
    fn close_list(&mut self, _: &'a [u8]) {}
    fn close_dict(&mut self, _: &'a [u8]) {}
}

/// Builds a [`Value`] tree. Finished children wait on one shared stack; when their container closes they
/// move into a vector of exactly the right size, so each container costs one allocation.
#[derive(Default)]
struct Builder<'a> {
    values: Vec<Value<'a>>,
    keys: Vec<&'a [u8]>,
    /// For each open container, where its children start in `values` and `keys`.
    bases: Vec<(usize, usize)>,
}

impl<'a> Sink<'a> for Builder<'a> {
    #[inline]
    fn scalar(&mut self, kind: Kind<'a>, raw: &'a [u8]) {
        self.values.push(Value { kind, raw });
    }

    #[inline]
    fn key(&mut self, key: &'a [u8]) {
        self.keys.push(key);
    }

    #[inline]
    fn open(&mut self) {
        self.bases.push((self.values.len(), self.keys.len()));
    }

    fn close_list(&mut self, raw: &'a [u8]) {
        let (value_base, _) = self.bases.pop().expect("balanced by walk");
        let items: Vec<Value<'a>> = self.values.drain(value_base..).collect();
        self.values.push(Value {
            kind: Kind::List(items),
            raw,
        });
    }

    fn close_dict(&mut self, raw: &'a [u8]) {
        let (value_base, key_base) = self.bases.pop().expect("balanced by walk");
        let entries: Vec<(&'a [u8], Value<'a>)> = self
            .keys
            .drain(key_base..)
            .zip(self.values.drain(value_base..))
            .collect();
        self.values.push(Value {
            kind: Kind::Dict(entries),
            raw,
        });
    }
}

/// An open container while walking.
struct Frame<'a> {
    start: usize,
    /// `Some` for a dictionary: the last key seen (for the order check) once there is one.
    dict: Option<Option<&'a [u8]>>,
    /// In a dictionary: whether the next token is a key.
    expect_key: bool,
}

/// Walks one value from `reader`, reporting it to `sink`; returns the offset just past it.
fn walk<'a, S: Sink<'a>>(
    reader: &mut Reader<'a>,
    options: &DecodeOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let input = reader.input();
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut tokens = 0usize;
    loop {
        let start = reader.pos();
        let byte = reader.peek()?;
        if let Some(frame) = stack.last_mut() {
            if frame.expect_key && byte != b'e' {
                if !byte.is_ascii_digit() {
                    return Err(reader.err(ErrorKind::NonStringKey));
                }
                let key = reader.bytes()?;
                if options.require_sorted_keys {
                    if let Some(Some(last)) = frame.dict {
                        match last.cmp(key) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(DecodeError::new(ErrorKind::DuplicateKey, start));
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(DecodeError::new(ErrorKind::UnsortedKeys, start));
                            }
                        }
                    }
                    frame.dict = Some(Some(key));
                }
                frame.expect_key = false;
                sink.key(key);
                continue;
            }
        }
        match byte {
            b'e' => {
                // An `e` ends a container, unless it stands where the root or a dictionary value belongs.
                let Some(frame) = stack.pop_if(|frame| frame.dict.is_none() || frame.expect_key)
                else {
                    return Err(reader.err(ErrorKind::UnexpectedByte(b'e')));
                };
                reader.bump();
                let raw = &input[frame.start..reader.pos()];
                if frame.dict.is_some() {
                    sink.close_dict(raw);
                } else {
                    sink.close_list(raw);
                }
            }
            b'l' | b'd' => {
                if stack.len() >= options.max_depth {
                    return Err(reader.err(ErrorKind::DepthLimit(options.max_depth)));
                }
                count(&mut tokens, options, start)?;
                reader.bump();
                let is_dict = byte == b'd';
                stack.push(Frame {
                    start,
                    dict: is_dict.then_some(None),
                    expect_key: is_dict,
                });
                sink.open();
                continue;
            }
            b'i' => {
                count(&mut tokens, options, start)?;
                let value = reader.int()?;
                sink.scalar(Kind::Int(value), &input[start..reader.pos()]);
            }
            b'0'..=b'9' => {
                count(&mut tokens, options, start)?;
                let bytes = reader.bytes()?;
                sink.scalar(Kind::Bytes(bytes), &input[start..reader.pos()]);
            }
            other => return Err(reader.err(ErrorKind::UnexpectedByte(other))),
        }
        // A value just finished: it is either the root or the value of a dictionary entry or list item.
        match stack.last_mut() {
            None => return Ok(reader.pos()),
            Some(frame) => frame.expect_key = frame.dict.is_some(),
        }
    }
}

#[inline]
fn count(tokens: &mut usize, options: &DecodeOptions, at: usize) -> Result<(), DecodeError> {
    *tokens += 1;
    if *tokens > options.max_tokens {
        return Err(DecodeError::new(
            ErrorKind::TokenLimit(options.max_tokens),
            at,
        ));
    }
    Ok(())
}
