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

/// Receives the values found by [`walk`], innermost first. `in_dict` says whether the finished value is
/// a dictionary entry's value (its key came just before through [`Sink::key`]) or a list item / the root.
trait Sink<'a> {
    fn scalar(&mut self, kind: Kind<'a>, raw: &'a [u8], in_dict: bool);
    fn key(&mut self, key: &'a [u8]);
    fn open(&mut self, is_dict: bool);
    fn close(&mut self, is_dict: bool, raw: &'a [u8], in_dict: bool);
}

/// A sink that keeps nothing: validation only.
struct Skip;

impl<'a> Sink<'a> for Skip {
    fn scalar(&mut self, _: Kind<'a>, _: &'a [u8], _: bool) {}
    fn key(&mut self, _: &'a [u8]) {}
    fn open(&mut self, _: bool) {}
    fn close(&mut self, _: bool, _: &'a [u8], _: bool) {}
}

/// Builds a [`Value`] tree. Finished list items and dictionary entries wait on two shared stacks; when
/// their container closes they move, in one copy, into a vector of exactly the right size.
#[derive(Default)]
struct Builder<'a> {
    values: Vec<Value<'a>>,
    entries: Vec<(&'a [u8], Value<'a>)>,
    /// Keys whose values are still being built (containers).
    keys: Vec<&'a [u8]>,
    /// For each open container, where its children start in `values` or `entries`.
    bases: Vec<usize>,
}

impl<'a> Builder<'a> {
    #[inline]
    fn push(&mut self, value: Value<'a>, in_dict: bool) {
        if in_dict {
            let key = self
                .keys
                .pop()
                .expect("walk reports a key before each entry's value");
            self.entries.push((key, value));
        } else {
            self.values.push(value);
        }
    }
}

/// Moves `stack[base..]` into a vector of its own.
#[inline]
fn split_tail<T>(stack: &mut Vec<T>, base: usize) -> Vec<T> {
    if base == 0 {
        // `split_off(0)` would allocate a new stack as large as the old one; handing over the buffer is cheaper.
        std::mem::take(stack)
    } else {
        stack.split_off(base)
    }
}

impl<'a> Sink<'a> for Builder<'a> {
    #[inline]
    fn scalar(&mut self, kind: Kind<'a>, raw: &'a [u8], in_dict: bool) {
        self.push(Value { kind, raw }, in_dict);
    }

    #[inline]
    fn key(&mut self, key: &'a [u8]) {
        self.keys.push(key);
    }

    #[inline]
    fn open(&mut self, is_dict: bool) {
        self.bases.push(if is_dict {
            self.entries.len()
        } else {
            self.values.len()
        });
    }

    #[inline]
    fn close(&mut self, is_dict: bool, raw: &'a [u8], in_dict: bool) {
        let base = self.bases.pop().expect("walk balances open and close");
        let kind = if is_dict {
            Kind::Dict(split_tail(&mut self.entries, base))
        } else {
            Kind::List(split_tail(&mut self.values, base))
        };
        self.push(Value { kind, raw }, in_dict);
    }
}

/// An open container while walking.
#[derive(Clone, Copy)]
struct Frame<'a> {
    start: usize,
    is_dict: bool,
    /// The dictionary's last key, for the order check.
    last_key: Option<&'a [u8]>,
}

/// Walks one value from `reader`, reporting it to `sink`; returns the offset just past it.
fn walk<'a, S: Sink<'a>>(
    reader: &mut Reader<'a>,
    options: &DecodeOptions,
    sink: &mut S,
) -> Result<usize, DecodeError> {
    let input = reader.input();
    let mut stack = FrameStack::new();
    let mut tokens = 0usize;
    // Whether the value being read is a dictionary entry's (else a list item or the root).
    let mut in_dict = false;
    loop {
        // Read one value; a container is only opened here, its items come round the loop again.
        let start = reader.pos();
        tokens += 1;
        if tokens > options.max_tokens {
            return Err(DecodeError::new(
                ErrorKind::TokenLimit(options.max_tokens),
                start,
            ));
        }
        match reader.peek()? {
            b'i' => {
                let value = reader.int()?;
                sink.scalar(Kind::Int(value), &input[start..reader.pos()], in_dict);
            }
            b'0'..=b'9' => {
                let bytes = reader.bytes()?;
                sink.scalar(Kind::Bytes(bytes), &input[start..reader.pos()], in_dict);
            }
            byte @ (b'l' | b'd') => {
                if stack.len() >= options.max_depth {
                    return Err(reader.err(ErrorKind::DepthLimit(options.max_depth)));
                }
                reader.bump();
                let is_dict = byte == b'd';
                stack.push(Frame {
                    start,
                    is_dict,
                    last_key: None,
                });
                sink.open(is_dict);
            }
            other => return Err(reader.err(ErrorKind::UnexpectedByte(other))),
        }
        // Close every container that ends here, then read the next key if the next value needs one.
        loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(reader.pos());
            };
            let next = reader.peek()?;
            if next == b'e' {
                reader.bump();
                let frame = stack.pop().expect("just looked at it");
                in_dict = stack.last_mut().is_some_and(|parent| parent.is_dict);
                sink.close(frame.is_dict, &input[frame.start..reader.pos()], in_dict);
                continue;
            }
            in_dict = frame.is_dict;
            if frame.is_dict {
                let key_start = reader.pos();
                if !next.is_ascii_digit() {
                    return Err(reader.err(ErrorKind::NonStringKey));
                }
                let key = reader.bytes()?;
                if options.require_sorted_keys {
                    if let Some(last) = frame.last_key {
                        match crate::reader::key_order(last, key) {
                            std::cmp::Ordering::Less => {}
                            std::cmp::Ordering::Equal => {
                                return Err(DecodeError::new(ErrorKind::DuplicateKey, key_start));
                            }
                            std::cmp::Ordering::Greater => {
                                return Err(DecodeError::new(ErrorKind::UnsortedKeys, key_start));
                            }
                        }
                    }
                    frame.last_key = Some(key);
                }
                sink.key(key);
            }
            break;
        }
    }
}

/// Nesting levels kept inline by [`FrameStack`].
const INLINE_FRAMES: usize = 16;

/// The stack of open containers: the first levels live inline, so skipping a small value (serde's
/// ignored fields) does not allocate; deeper levels spill to the heap.
struct FrameStack<'a> {
    inline: [Frame<'a>; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame<'a>>,
}

impl<'a> FrameStack<'a> {
    fn new() -> Self {
        let empty = Frame {
            start: 0,
            is_dict: false,
            last_key: None,
        };
        Self {
            inline: [empty; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn push(&mut self, frame: Frame<'a>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = frame,
            None => self.spill.push(frame),
        }
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<Frame<'a>> {
        let top = self.len.checked_sub(1)?;
        self.len = top;
        match self.inline.get(top) {
            Some(frame) => Some(*frame),
            None => self.spill.pop(),
        }
    }

    #[inline]
    fn last_mut(&mut self) -> Option<&mut Frame<'a>> {
        let top = self.len.checked_sub(1)?;
        if top < INLINE_FRAMES {
            self.inline.get_mut(top)
        } else {
            self.spill.last_mut()
        }
    }
}
