//! serde serialization to canonical bencode.

use std::ops::Range;

use serde::ser::{self, Serialize};

use crate::encode::{write_bytes, write_int};
use crate::error::EncodeError;

/// Serializes `value` as canonical bencode: struct fields and map keys come out sorted as raw bytes.
///
/// `None` struct fields and map values are left out (bencode has no null); `bool` is `i0e`/`i1e`; unit
/// enum variants are their name, other variants a one-entry dictionary. `Vec<u8>` fields want
/// `#[serde(with = "serde_bytes")]` to become byte strings rather than lists of integers.
///
/// # Errors
/// [`EncodeError`] for values bencode cannot represent (floats, unit, `None` in a list) and for map keys
/// that are not strings or byte strings.
///
/// ```
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Announce<'a> {
///     port: u16,
///     #[serde(with = "serde_bytes")]
///     info_hash: &'a [u8],
///     event: Option<&'a str>,
/// }
///
/// let bytes = shoal_bencode::to_bytes(&Announce { port: 6881, info_hash: b"\x01\x02", event: None })?;
/// assert_eq!(bytes, b"d9:info_hash2:\x01\x024:porti6881ee");
/// # Ok::<(), shoal_bencode::EncodeError>(())
/// ```
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    value.serialize(Serializer { out: &mut out })?;
    if out.is_empty() {
        return Err(EncodeError::Unsupported("a lone None"));
    }
    Ok(out)
}

/// Writes one value into `out`. `None` writes nothing, which the containers check for.
struct Serializer<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> ser::Serializer for Serializer<'o> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = List<'o>;
    type SerializeTuple = List<'o>;
    type SerializeTupleStruct = List<'o>;
    type SerializeTupleVariant = Variant<List<'o>>;
    type SerializeMap = Dict<'o>;
    type SerializeStruct = Dict<'o>;
    type SerializeStructVariant = Variant<Dict<'o>>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        write_int(self.out, i64::from(v));
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        write_int(self.out, v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.serialize_i64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        let v =
            i64::try_from(v).map_err(|_| EncodeError::Unsupported("an integer above i64::MAX"))?;
        self.serialize_i64(v)
    }

    fn serialize_f32(self, _v: f32) -> Result<(), EncodeError> {
        Err(EncodeError::Unsupported("floating-point numbers"))
    }

    fn serialize_f64(self, _v: f64) -> Result<(), EncodeError> {
        Err(EncodeError::Unsupported("floating-point numbers"))
    }

    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        write_bytes(self.out, v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        write_bytes(self.out, v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), EncodeError> {
        Err(EncodeError::Unsupported("unit"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        Err(EncodeError::Unsupported("a unit struct"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.out.push(b'd');
        write_bytes(self.out, variant.as_bytes());
        let before = self.out.len();
        value.serialize(Serializer { out: self.out })?;
        if self.out.len() == before {
            return Err(EncodeError::Unsupported(
                "None as an enum variant's content",
            ));
        }
        self.out.push(b'e');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<List<'o>, EncodeError> {
        self.out.push(b'l');
        Ok(List { out: self.out })
    }

    fn serialize_tuple(self, len: usize) -> Result<List<'o>, EncodeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<List<'o>, EncodeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<List<'o>>, EncodeError> {
        self.out.push(b'd');
        write_bytes(self.out, variant.as_bytes());
        Ok(Variant(self.serialize_seq(Some(len))?))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Dict<'o>, EncodeError> {
        Ok(Dict {
            out: self.out,
            scratch: Vec::new(),
            entries: Vec::new(),
            key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Dict<'o>, EncodeError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Dict<'o>>, EncodeError> {
        self.out.push(b'd');
        write_bytes(self.out, variant.as_bytes());
        Ok(Variant(self.serialize_map(Some(len))?))
    }
}

/// A list being written straight into the output.
#[derive(Debug)]
struct List<'o> {
    out: &'o mut Vec<u8>,
}

impl List<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let before = self.out.len();
        value.serialize(Serializer { out: self.out })?;
        if self.out.len() == before {
            return Err(EncodeError::Unsupported("None in a list"));
        }
        Ok(())
    }

    fn finish(self) {
        self.out.push(b'e');
    }
}

impl ser::SerializeSeq for List<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTuple for List<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for List<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish();
        Ok(())
    }
}

/// A dictionary: entries are staged in a scratch buffer and written sorted by key when it ends.
#[derive(Debug)]
struct Dict<'o> {
    out: &'o mut Vec<u8>,
    scratch: Vec<u8>,
    /// Key and value ranges in `scratch`.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// The key whose value comes next (map serialization gives them separately).
    key: Option<Range<usize>>,
}

impl<'o> Dict<'o> {
    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        let start = self.scratch.len();
        key.serialize(KeySerializer {
            out: &mut self.scratch,
        })?;
        self.key = Some(start..self.scratch.len());
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| EncodeError::Custom("map value without a key".into()))?;
        let start = self.scratch.len();
        value.serialize(Serializer {
            out: &mut self.scratch,
        })?;
        // A `None` wrote nothing: leave the entry out.
        if self.scratch.len() > start {
            self.entries.push((key, start..self.scratch.len()));
        }
        Ok(())
    }

    fn finish(self) -> Result<(), EncodeError> {
        self.write_sorted().map(drop)
    }

    /// Writes the entries sorted by key and hands back the output.
    fn write_sorted(mut self) -> Result<&'o mut Vec<u8>, EncodeError> {
        let scratch = &self.scratch;
        self.entries
            .sort_unstable_by(|(a, _), (b, _)| scratch[a.clone()].cmp(&scratch[b.clone()]));
        if let Some(pair) = self
            .entries
            .windows(2)
            .find(|w| scratch[w[0].0.clone()] == scratch[w[1].0.clone()])
        {
            return Err(EncodeError::DuplicateKey(
                String::from_utf8_lossy(&scratch[pair[0].0.clone()]).into_owned(),
            ));
        }
        self.out.push(b'd');
        for (key, value) in &self.entries {
            write_bytes(self.out, &scratch[key.clone()]);
            self.out.extend_from_slice(&scratch[value.clone()]);
        }
        self.out.push(b'e');
        Ok(self.out)
    }
}

impl ser::SerializeMap for Dict<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.value(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Dict<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.key(key)?;
        self.value(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

/// An enum variant with content: the one-entry dictionary around a list or dictionary.
#[derive(Debug)]
struct Variant<T>(T);

impl ser::SerializeTupleVariant for Variant<List<'_>> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.0.element(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        let out = self.0.out;
        out.extend_from_slice(b"ee");
        Ok(())
    }
}

impl ser::SerializeStructVariant for Variant<Dict<'_>> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.0.key(key)?;
        self.0.value(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        let out = self.0.write_sorted()?;
        out.push(b'e');
        Ok(())
    }
}

/// Serializes a dictionary key: only strings and byte strings are allowed, written without a length prefix.
struct KeySerializer<'o> {
    out: &'o mut Vec<u8>,
}

macro_rules! reject_key {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), EncodeError> {
            Err(EncodeError::NonStringKey)
        })*
    };
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = ser::Impossible<(), EncodeError>;
    type SerializeTuple = ser::Impossible<(), EncodeError>;
    type SerializeTupleStruct = ser::Impossible<(), EncodeError>;
    type SerializeTupleVariant = ser::Impossible<(), EncodeError>;
    type SerializeMap = ser::Impossible<(), EncodeError>;
    type SerializeStruct = ser::Impossible<(), EncodeError>;
    type SerializeStructVariant = ser::Impossible<(), EncodeError>;

    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    reject_key! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64), serialize_f32(f32),
        serialize_f64(f64), serialize_none(), serialize_unit(), serialize_unit_struct(&'static str),
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, EncodeError> {
        Err(EncodeError::NonStringKey)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EncodeError> {
        Err(EncodeError::NonStringKey)
    }
}
