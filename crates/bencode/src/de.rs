//! serde deserialization straight from the input bytes, borrowing strings and byte strings.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::decode::{self, DecodeOptions};
use crate::error::{DecodeError, ErrorKind};
use crate::reader::Reader;

/// Deserializes a `T` from canonical bencode (strict mode).
///
/// Byte strings borrow from `input`: `&'a [u8]` and `&'a str` fields cost no copy (`Vec<u8>` fields need
/// `#[serde(with = "serde_bytes")]`). Bencode has no booleans, floats or null: `bool` reads `i0e`/`i1e`,
/// and a missing dictionary entry reads as `None` for an `Option` field.
///
/// # Errors
/// Malformed input as for [`decode`](crate::decode), and any type mismatch reported by `T`, with the
/// byte offset where it was found.
///
/// ```
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct File<'a> {
///     length: u64,
///     #[serde(borrow)]
///     path: Vec<&'a str>,
/// }
///
/// let file: File<'_> = shoal_bencode::from_bytes(b"d6:lengthi42e4:pathl3:dir8:file.txtee")?;
/// assert_eq!(file.length, 42);
/// assert_eq!(file.path, ["dir", "file.txt"]);
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
pub fn from_bytes<'a, T: de::Deserialize<'a>>(input: &'a [u8]) -> Result<T, DecodeError> {
    from_bytes_with(input, &DecodeOptions::strict())
}

/// Deserializes a `T` with the given options (for example [`DecodeOptions::lenient`] for real-world
/// `.torrent` files with unsorted keys).
///
/// # Errors
/// As [`from_bytes`].
pub fn from_bytes_with<'a, T: de::Deserialize<'a>>(
    input: &'a [u8],
    options: &DecodeOptions,
) -> Result<T, DecodeError> {
    let mut deserializer = Deserializer {
        reader: Reader::new(input),
        options: options.clone(),
        depth: 0,
        tokens: 0,
        // Each value counted starts at a byte of its own, so an input no longer than the limit cannot
        // go past it: no need to count.
        count_tokens: input.len() > options.max_tokens,
        text: "",
        text_rest: 0,
    };
    let value =
        T::deserialize(&mut deserializer).map_err(|e| e.or_at(deserializer.reader.pos()))?;
    if deserializer.reader.pos() != input.len() {
        return Err(deserializer.reader.err(ErrorKind::TrailingBytes));
    }
    Ok(value)
}

/// The serde deserializer behind [`from_bytes`].
#[derive(Debug)]
struct Deserializer<'de> {
    reader: Reader<'de>,
    options: DecodeOptions,
    depth: usize,
    tokens: usize,
    /// Whether [`tokens`](Self::tokens) needs counting at all.
    count_tokens: bool,
    /// A stretch of the input already checked to be UTF-8: text values inside it are sliced out of it
    /// instead of being checked one by one (see [`Deserializer::text`]). It starts where the unread input
    /// was `text_rest` bytes long (the reader's own measure of position).
    text: &'de str,
    text_rest: usize,
}

/// How much input one UTF-8 check covers ahead of the text value that asked for it. Checking a long
/// stretch at once runs at SIMD speed, where tens of thousands of short strings checked one at a time
/// (a torrent's path components) cost a function call and a byte-wise loop each.
const TEXT_WINDOW: usize = 32 * 1024;

impl<'de> Deserializer<'de> {
    /// Counts one more value against the token limit.
    #[inline]
    fn count(&mut self) -> Result<(), DecodeError> {
        if !self.count_tokens {
            return Ok(());
        }
        self.tokens += 1;
        if self.tokens > self.options.max_tokens {
            return Err(self
                .reader
                .err(ErrorKind::TokenLimit(self.options.max_tokens)));
        }
        Ok(())
    }

    /// [`count`](Self::count) for the fast paths: `false`, counting nothing, when the value would go
    /// over the limit (the slow path then reports it).
    #[inline(always)]
    fn tick(&mut self) -> bool {
        if !self.count_tokens {
            return true;
        }
        if self.tokens >= self.options.max_tokens {
            return false;
        }
        self.tokens += 1;
        true
    }

    /// The next value as text, when it is the common case: a well-formed byte string within the window
    /// of input already checked to be UTF-8, and the token limit not reached. Moves past it; anything
    /// else is left untouched for the slow path, which reads it with every check (and error).
    #[inline(always)]
    fn try_text(&mut self) -> Option<&'de str> {
        let (bytes, after) = crate::reader::short_bytes_at(self.reader.rest())?;
        // Where `bytes` ends and starts within the window; a position before the window wraps around to
        // a huge number, which `get` refuses like one past its end.
        let end = self.text_rest.wrapping_sub(after.len());
        let text = self.text.get(end.wrapping_sub(bytes.len())..end)?;
        if !self.tick() {
            return None;
        }
        self.reader.skip_to(after);
        Some(text)
    }

    /// The next value as an integer, in the common case (see [`int_at`](crate::reader::int_at)); as
    /// [`try_text`](Self::try_text), anything else is left for the slow path.
    #[inline(always)]
    fn try_int(&mut self) -> Option<i64> {
        let (value, after) = crate::reader::int_at(self.reader.rest())?;
        if !self.tick() {
            return None;
        }
        self.reader.skip_to(after);
        Some(value)
    }

    /// [`deserialize_str`](de::Deserializer::deserialize_str) past the fast path: a byte string read
    /// with every check, or a value of another kind.
    #[cold]
    #[inline(never)]
    fn str_slow<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        if self.reader.peek()?.is_ascii_digit() {
            let text = self.str()?;
            return visitor
                .visit_borrowed_str(text)
                .map_err(|e: DecodeError| e.or_at(start));
        }
        self.other_value::<true, true, V>(visitor)
    }

    /// [`deserialize_i64`](de::Deserializer::deserialize_i64) past the fast path: an integer read with
    /// every check, or a value of another kind.
    #[cold]
    #[inline(never)]
    fn int_slow<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        if self.reader.peek()? == b'i' {
            self.count()?;
            let value = self.reader.int()?;
            return visitor
                .visit_i64(value)
                .map_err(|e: DecodeError| e.or_at(start));
        }
        self.other_value::<true, true, V>(visitor)
    }

    /// Steps into a list or dictionary.
    #[inline]
    fn enter(&mut self) -> Result<(), DecodeError> {
        if self.depth >= self.options.max_depth {
            return Err(self
                .reader
                .err(ErrorKind::DepthLimit(self.options.max_depth)));
        }
        self.count()?;
        self.depth += 1;
        self.reader.bump();
        Ok(())
    }

    /// Reads a byte string value.
    #[inline(always)]
    fn bytes(&mut self) -> Result<&'de [u8], DecodeError> {
        self.count()?;
        self.reader.bytes()
    }

    /// The byte string `bytes` just read (the cursor is right after it) as text; `None` if it is not
    /// UTF-8.
    #[inline]
    fn text(&mut self, bytes: &'de [u8]) -> Option<&'de str> {
        // Where `bytes` ends and starts within the window; a position before the window wraps around to
        // a huge number, which `get` refuses like one past its end.
        let end = self.text_rest.wrapping_sub(self.reader.rest().len());
        if let Some(text) = self.text.get(end.wrapping_sub(bytes.len())..end) {
            return Some(text);
        }
        self.check_text(self.reader.pos() - bytes.len(), bytes)
    }

    /// Checks the input from `start` on, at least through `bytes`, for UTF-8 and keeps the longest valid
    /// stretch as the new window; returns `bytes` as text if it is inside it and ends on a character
    /// boundary, that is, if `bytes` is UTF-8 on its own.
    #[inline(never)]
    fn check_text(&mut self, start: usize, bytes: &'de [u8]) -> Option<&'de str> {
        if bytes.is_empty() {
            return Some("");
        }
        let input = self.reader.input();
        let end = input
            .len()
            .min(start.saturating_add(bytes.len().max(TEXT_WINDOW)));
        let chunk = input.get(start..end)?;
        let text = match simdutf8::compat::from_utf8(chunk) {
            Ok(text) => text,
            // Valid up to a point: the window stops there, if `bytes` fits before it.
            Err(e) if e.valid_up_to() >= bytes.len() => {
                crate::reader::utf8(chunk.get(..e.valid_up_to())?)?
            }
            Err(_) => return None,
        };
        self.text = text;
        self.text_rest = input.len() - start;
        text.get(..bytes.len())
    }

    /// Reads a byte string value that should be text.
    #[inline]
    fn str(&mut self) -> Result<&'de str, DecodeError> {
        let start = self.reader.pos();
        let bytes = self.bytes()?;
        match self.text(bytes) {
            Some(text) => Ok(text),
            None => Err(DecodeError::new(ErrorKind::InvalidUtf8, start)),
        }
    }

    /// [`seq`](Self::seq), out of line: for [`deserialize_any`](de::Deserializer::deserialize_any), so
    /// that `seq`, and the visitor's `visit_seq` through it, are inlined where a list is expected.
    #[inline(never)]
    fn any_seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.seq(visitor)
    }

    /// [`map`](Self::map), out of line, as [`any_seq`](Self::any_seq).
    #[inline(never)]
    fn any_map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.map(visitor)
    }

    /// Reads a list through `visit_seq`; the cursor is on its `l`.
    #[inline(always)]
    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.container(
            |access| visitor.visit_seq(access),
            "list has more items than expected",
        )
    }

    /// Reads a dictionary through `visit_map`; the cursor is on its `d`.
    #[inline(always)]
    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DecodeError> {
        self.container(
            |access| visitor.visit_map(access),
            "dictionary has more entries than expected",
        )
    }

    /// A list or dictionary: `visit` reads its items; then the closing `e` must follow (`extra` says
    /// what is wrong when it does not).
    #[inline(always)]
    fn container<T>(
        &mut self,
        visit: impl FnOnce(&mut Access<'_, 'de>) -> Result<T, DecodeError>,
        extra: &'static str,
    ) -> Result<T, DecodeError> {
        let start = self.reader.pos();
        self.enter()?;
        let mut access = Access {
            de: self,
            done: false,
            last_key: None,
        };
        // The result is patched in place rather than mapped: a struct or vector coming back is then
        // not copied from one stack slot to the next on its way up.
        let mut result = visit(&mut access);
        match &mut result {
            Ok(_) => {
                if let Err(e) = access.finish(extra) {
                    result = Err(e);
                }
            }
            Err(e) => e.fill_offset(start),
        }
        result
    }
}

impl<'de> Deserializer<'de> {
    /// A value of another kind than the one asked for, read as whatever it is, for the visitor to take
    /// or (usually) refuse, exactly as [`deserialize_any`](de::Deserializer::deserialize_any) would.
    ///
    /// Kept out of line, away from the paths that parse what was expected, and shaped so it does not
    /// slow them down:
    /// - its value comes back through `out` rather than as the function's result, so that where a
    ///   struct or vector is expected it does not have to be merged in memory with the one the fast
    ///   path builds in registers (which cost a store-forwarding stall per struct);
    /// - `LIST` and `DICT` are false for the kind the caller handles itself, so that the visitor's
    ///   `visit_seq` or `visit_map` has that single caller and is inlined into it.
    #[inline(always)]
    fn other<const LIST: bool, const DICT: bool, V: Visitor<'de>>(
        &mut self,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let mut out = None;
        self.other_into::<LIST, DICT, V>(visitor, &mut out)?;
        // `other_into` fills `out` whenever it succeeds: the error cannot happen.
        out.ok_or_else(|| self.reader.err(ErrorKind::UnexpectedEof))
    }

    /// [`other`](Self::other)'s out-of-line part.
    #[cold]
    #[inline(never)]
    fn other_into<const LIST: bool, const DICT: bool, V: Visitor<'de>>(
        &mut self,
        visitor: V,
        out: &mut Option<V::Value>,
    ) -> Result<(), DecodeError> {
        *out = Some(self.other_value::<LIST, DICT, V>(visitor)?);
        Ok(())
    }

    /// Reads a value of any kind, except lists when `LIST` is false and dictionaries when `DICT` is
    /// (which the callers have ruled out), and hands it to the visitor.
    #[inline(always)]
    fn other_value<const LIST: bool, const DICT: bool, V: Visitor<'de>>(
        &mut self,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        match self.reader.peek()? {
            b'i' => {
                self.count()?;
                let value = self.reader.int()?;
                visitor
                    .visit_i64(value)
                    .map_err(|e: DecodeError| e.or_at(start))
            }
            b'0'..=b'9' => {
                let bytes = self.bytes()?;
                visitor
                    .visit_borrowed_bytes(bytes)
                    .map_err(|e: DecodeError| e.or_at(start))
            }
            b'l' if LIST => self.any_seq(visitor),
            b'd' if DICT => self.any_map(visitor),
            other => Err(self.reader.err(ErrorKind::UnexpectedByte(other))),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        match self.reader.peek()? {
            b'i' => {
                self.count()?;
                let value = self.reader.int()?;
                visitor
                    .visit_i64(value)
                    .map_err(|e: DecodeError| e.or_at(start))
            }
            b'0'..=b'9' => {
                let bytes = self.bytes()?;
                visitor
                    .visit_borrowed_bytes(bytes)
                    .map_err(|e: DecodeError| e.or_at(start))
            }
            b'l' => self.any_seq(visitor),
            b'd' => self.any_map(visitor),
            other => Err(self.reader.err(ErrorKind::UnexpectedByte(other))),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        if self.reader.peek()? == b'i' {
            self.count()?;
            return match self.reader.int()? {
                0 => visitor.visit_bool(false),
                1 => visitor.visit_bool(true),
                other => visitor.visit_i64(other),
            }
            .map_err(|e: DecodeError| e.or_at(start));
        }
        self.other::<true, true, V>(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        match self.try_text() {
            Some(text) => visitor
                .visit_borrowed_str(text)
                .map_err(|e: DecodeError| e.or_at(start)),
            None => self.str_slow(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Bencode has no null: a present value is `Some`; an absent struct field becomes `None` in serde.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        match self.reader.peek()? {
            // A unit variant is its name.
            b'0'..=b'9' => {
                let name = self.str()?;
                visitor
                    .visit_enum(name.into_deserializer())
                    .map_err(|e: DecodeError| e.or_at(start))
            }
            // Any other variant is a dictionary with one entry: name -> content.
            b'd' => {
                self.enter()?;
                let value = visitor
                    .visit_enum(Enum { de: self })
                    .map_err(|e: DecodeError| e.or_at(start))?;
                if self.reader.peek()? != b'e' {
                    return Err(DecodeError::new(
                        ErrorKind::Custom("enum dictionary has more than one entry".into()),
                        self.reader.pos(),
                    ));
                }
                self.reader.bump();
                self.depth -= 1;
                Ok(value)
            }
            other => Err(self.reader.err(ErrorKind::UnexpectedByte(other))),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Validate with the same rules, building nothing, within the depth left.
        let options = DecodeOptions {
            max_depth: self.options.max_depth - self.depth,
            ..self.options.clone()
        };
        decode::skip(&mut self.reader, &options)?;
        visitor.visit_unit()
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DecodeError> {
        Err(self.reader.err(ErrorKind::Custom(
            "bencode has no floating-point numbers".into(),
        )))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_f32(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // The expected kind first, without going through `deserialize_any`'s dispatch; anything else is
        // read as `deserialize_any` would.
        match self.reader.peek()? {
            b'l' => self.seq(visitor),
            _ => self.other::<false, true, V>(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.reader.peek()? {
            b'd' => self.map(visitor),
            _ => self.other::<true, false, V>(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.reader.peek()?.is_ascii_digit() {
            let bytes = self.bytes()?;
            return visitor.visit_borrowed_bytes(bytes);
        }
        self.other::<true, true, V>(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        match self.try_int() {
            Some(value) => visitor
                .visit_i64(value)
                .map_err(|e: DecodeError| e.or_at(start)),
            None => self.int_slow(visitor),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_i64(visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u128 unit unit_struct
    }
}

/// Sequence and map access over a list or dictionary being read.
struct Access<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    /// The closing `e` has been consumed.
    done: bool,
    last_key: Option<&'de [u8]>,
}

impl<'de> Access<'_, 'de> {
    /// The next key, in the common case: a well-formed byte string that comes after the previous key (in
    /// strict mode). Moves past it; anything else is left for [`key_slow`](Self::key_slow).
    #[inline(always)]
    fn try_key(&mut self) -> Option<&'de [u8]> {
        let (key, after) = crate::reader::short_bytes_at(self.de.reader.rest())?;
        if self.de.options.require_sorted_keys {
            if let Some(last) = self.last_key
                && !crate::reader::key_after(last, key)
            {
                return None;
            }
            self.last_key = Some(key);
        }
        self.de.reader.skip_to(after);
        Some(key)
    }

    /// The next key read with every check, and its errors: a key that is not a byte string, a malformed
    /// one, or one out of order.
    #[cold]
    #[inline(never)]
    fn key_slow(&mut self) -> Result<&'de [u8], DecodeError> {
        let start = self.de.reader.pos();
        if !self.de.reader.peek()?.is_ascii_digit() {
            return Err(self.de.reader.err(ErrorKind::NonStringKey));
        }
        let key = self.de.reader.bytes()?;
        if self.de.options.require_sorted_keys {
            if let Some(last) = self.last_key {
                match crate::reader::key_order(last, key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(DecodeError::new(ErrorKind::DuplicateKey, start));
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(DecodeError::new(ErrorKind::UnsortedKeys, start));
                    }
                }
            }
            self.last_key = Some(key);
        }
        Ok(key)
    }

    /// After the visitor is done: the container must end here (fixed-size visitors such as tuples stop
    /// without asking for the end); steps back out of it.
    #[inline]
    fn finish(&mut self, too_long: &'static str) -> Result<(), DecodeError> {
        if !self.at_end()? {
            return Err(DecodeError::new(
                ErrorKind::Custom(too_long.into()),
                self.de.reader.pos(),
            ));
        }
        self.de.depth -= 1;
        Ok(())
    }

    /// Consumes the closing `e` if it is next; `true` when the container has ended.
    #[inline]
    fn at_end(&mut self) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(true);
        }
        if self.de.reader.peek()? == b'e' {
            self.de.reader.bump();
            self.done = true;
        }
        Ok(self.done)
    }
}

impl<'de> de::SeqAccess<'de> for &mut Access<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        if self.at_end()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }

    /// Exact for a short list of short byte strings, such as a file's path, so that a `Vec` of them is
    /// allocated once at its final size (growing it from empty costs more than counting the items);
    /// unknown otherwise.
    fn size_hint(&self) -> Option<usize> {
        if self.done {
            return Some(0);
        }
        self.de.reader.short_list_len()
    }
}

impl<'de> de::MapAccess<'de> for &mut Access<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if self.at_end()? {
            return Ok(None);
        }
        let start = self.de.reader.pos();
        let key = match self.try_key() {
            Some(key) => key,
            None => self.key_slow()?,
        };
        seed.deserialize(Key(key))
            .map(Some)
            .map_err(|e: DecodeError| e.or_at(start))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }
}

/// A dictionary key: text when it is UTF-8 (for field names and `String` keys), bytes otherwise.
struct Key<'de>(&'de [u8]);

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match crate::reader::utf8(self.0) {
            Some(text) => visitor.visit_borrowed_str(text),
            None => visitor.visit_borrowed_bytes(self.0),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_bytes(self.0)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_bytes(self.0)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Field names are matched as bytes by serde's derive, which spares a UTF-8 check per key.
        visitor.visit_borrowed_bytes(self.0)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string option unit unit_struct seq
        tuple tuple_struct map struct enum ignored_any
    }
}

/// The variant and content of an enum written as a one-entry dictionary.
struct Enum<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for Enum<'_, 'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), DecodeError> {
        if !self.de.reader.peek()?.is_ascii_digit() {
            return Err(self.de.reader.err(ErrorKind::NonStringKey));
        }
        let name = self.de.reader.bytes()?;
        let variant = seed.deserialize(Key(name))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_, 'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        de::Deserialize::deserialize(&mut *self.de).map(|_: de::IgnoredAny| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_seq(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_map(&mut *self.de, visitor)
    }
}
