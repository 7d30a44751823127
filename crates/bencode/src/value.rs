//! Borrowed and owned bencode values.

use std::collections::BTreeMap;

/// A decoded bencode value borrowing from the input, with the exact bytes it was decoded from.
///
/// The raw span ([`Value::raw`]) is what a torrent's info-hash is computed over: hash
/// `value.get(b"info")?.raw()`, never a re-encoding.
///
/// ```
/// let torrent = b"d8:announce9:udp://x:14:infod4:name3:isoee";
/// let value = shoal_bencode::decode(torrent)?;
/// let info = value.get(b"info").unwrap();
/// assert_eq!(info.raw(), b"d4:name3:isoe");
/// assert_eq!(info.get(b"name").and_then(|v| v.as_str()), Some("iso"));
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    pub(crate) kind: Kind<'a>,
    pub(crate) raw: &'a [u8],
}

/// The four kinds of bencode value, borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list (`l…e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d…e`): entries in the order of the input.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// Which kind of value this is, to match on.
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// Consumes the value and returns its kind.
    pub fn into_kind(self) -> Kind<'a> {
        self.kind
    }

    /// The exact input bytes this value was decoded from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(crate::reader::utf8)
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries in input order, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match &self.kind {
            Kind::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a dictionary that has it (the first such entry when keys repeat).
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Copies the value out of the input into an [`OwnedValue`].
    ///
    /// ```
    /// use shoal_bencode::OwnedValue;
    ///
    /// let owned = shoal_bencode::decode(b"li1e2:abe")?.to_owned_value();
    /// assert_eq!(owned, OwnedValue::List(vec![OwnedValue::Int(1), OwnedValue::from("ab")]));
    /// # Ok::<(), shoal_bencode::DecodeError>(())
    /// ```
    pub fn to_owned_value(&self) -> OwnedValue {
        match &self.kind {
            Kind::Int(i) => OwnedValue::Int(*i),
            Kind::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            Kind::List(items) => {
                OwnedValue::List(items.iter().map(Value::to_owned_value).collect())
            }
            Kind::Dict(entries) => OwnedValue::Dict(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

/// A bencode value that owns its data; dictionaries are kept sorted, so encoding it is canonical.
///
/// When a decoded dictionary repeats a key (lenient mode), the owned copy keeps the first entry.
///
/// ```
/// use shoal_bencode::OwnedValue;
///
/// let mut dict = std::collections::BTreeMap::new();
/// dict.insert(b"port".to_vec(), OwnedValue::Int(6881));
/// dict.insert(b"id".to_vec(), OwnedValue::from("abc"));
/// assert_eq!(OwnedValue::Dict(dict).to_bytes(), b"d2:id3:abc4:porti6881ee");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnedValue {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<OwnedValue>),
    /// A dictionary, sorted by key.
    Dict(BTreeMap<Vec<u8>, OwnedValue>),
}

impl OwnedValue {
    /// Encodes the value as canonical bencode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding of the value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => crate::encode::write_int(out, *i),
            Self::Bytes(b) => crate::encode::write_bytes(out, b),
            Self::List(items) => {
                out.push(b'l');
                items.iter().for_each(|item| item.encode_into(out));
                out.push(b'e');
            }
            Self::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    crate::encode::write_bytes(out, key);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The value under `key`, if this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<&OwnedValue> {
        match self {
            Self::Dict(entries) => entries.get(key),
            _ => None,
        }
    }
}

impl From<i64> for OwnedValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for OwnedValue {
    fn from(value: &str) -> Self {
        Self::Bytes(value.as_bytes().to_vec())
    }
}

impl From<&[u8]> for OwnedValue {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_vec())
    }
}

impl From<Vec<u8>> for OwnedValue {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

impl From<&Value<'_>> for OwnedValue {
    fn from(value: &Value<'_>) -> Self {
        value.to_owned_value()
    }
}

impl serde::Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match &self.kind {
            Kind::Int(i) => serializer.serialize_i64(*i),
            Kind::Bytes(b) => serializer.serialize_bytes(b),
            Kind::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                items
                    .iter()
                    .try_for_each(|item| seq.serialize_element(item))?;
                seq.end()
            }
            Kind::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(serde_bytes::Bytes::new(key), value)?;
                }
                map.end()
            }
        }
    }
}

impl serde::Serialize for OwnedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::Bytes(b) => serializer.serialize_bytes(b),
            Self::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                items
                    .iter()
                    .try_for_each(|item| seq.serialize_element(item))?;
                seq.end()
            }
            Self::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(serde_bytes::Bytes::new(key), value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for OwnedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OwnedValueVisitor)
    }
}

struct OwnedValueVisitor;

impl<'de> serde::de::Visitor<'de> for OwnedValueVisitor {
    type Value = OwnedValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a bencode value")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<OwnedValue, E> {
        i64::try_from(v)
            .map(OwnedValue::Int)
            .map_err(|_| E::custom("integer does not fit in 64 bits"))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Int(i64::from(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OwnedValue, E> {
        Ok(OwnedValue::from(v))
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<OwnedValue, E> {
        Ok(OwnedValue::from(v))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Bytes(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OwnedValue::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OwnedValue, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<serde_bytes::ByteBuf, OwnedValue>()? {
            entries.entry(key.into_vec()).or_insert(value);
        }
        Ok(OwnedValue::Dict(entries))
    }
}
