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
}

impl<'de> Deserializer<'de> {
    /// Counts one more value against the token limit.
    #[inline]
    fn count(&mut self) -> Result<(), DecodeError> {
        self.tokens += 1;
        if self.tokens > self.options.max_tokens {
            return Err(self
                .reader
                .err(ErrorKind::TokenLimit(self.options.max_tokens)));
        }
        Ok(())
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
    #[inline]
    fn bytes(&mut self) -> Result<&'de [u8], DecodeError> {
        self.count()?;
        self.reader.bytes()
    }

    /// Calls `visit_seq` or `visit_map` and checks that the visitor read the container to its end.
    #[inline]
    fn container<V: Visitor<'de>>(
        &mut self,
        visitor: V,
        dict: bool,
    ) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        self.enter()?;
        let mut access = Access {
            de: self,
            done: false,
            last_key: None,
        };
        let value = if dict {
            visitor.visit_map(&mut access)
        } else {
            visitor.visit_seq(&mut access)
        };
        let value = value.map_err(|e: DecodeError| e.or_at(start))?;
        // Fixed-size visitors (tuples) stop without asking for the end: it must come next.
        if !access.at_end()? {
            let what = if dict {
                "dictionary has more entries than expected"
            } else {
                "list has more items than expected"
            };
            return Err(DecodeError::new(
                ErrorKind::Custom(what.into()),
                self.reader.pos(),
            ));
        }
        self.depth -= 1;
        Ok(value)
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
            b'l' => self.container(visitor, false),
            b'd' => self.container(visitor, true),
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
        self.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        if self.reader.peek()?.is_ascii_digit() {
            let bytes = self.bytes()?;
            let text = crate::reader::utf8(bytes)
                .ok_or_else(|| DecodeError::new(ErrorKind::InvalidUtf8, start))?;
            return visitor
                .visit_borrowed_str(text)
                .map_err(|e: DecodeError| e.or_at(start));
        }
        self.deserialize_any(visitor)
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
                let bytes = self.bytes()?;
                let name = crate::reader::utf8(bytes)
                    .ok_or_else(|| DecodeError::new(ErrorKind::InvalidUtf8, start))?;
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
        // The expected kind first, without going through `deserialize_any`'s dispatch; anything else gets
        // `deserialize_any`'s type error.
        match self.reader.peek()? {
            b'l' => self.container(visitor, false),
            _ => self.deserialize_any(visitor),
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
            b'd' => self.container(visitor, true),
            _ => self.deserialize_any(visitor),
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
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let start = self.reader.pos();
        if self.reader.peek()? == b'i' {
            self.count()?;
            let value = self.reader.int()?;
            return visitor
                .visit_i64(value)
                .map_err(|e: DecodeError| e.or_at(start));
        }
        self.deserialize_any(visitor)
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

impl Access<'_, '_> {
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
