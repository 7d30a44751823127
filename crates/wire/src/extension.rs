//! The extension protocol (BEP 10): the extended handshake and the dispatch of extension messages.
//!
//! Each side's extended handshake lists, in its `m` dictionary, the id under which *it* wants to receive
//! each extension. So a message we send uses the id from the peer's handshake, and a message we receive
//! carries the id from ours: [`decode_extension`] takes our handshake to tell them apart.
//!
//! Fields of a peer's handshake that have the wrong type or an absurd value are ignored one by one
//! (HOSTILE 32): a peer with a bad `reqq` is still a peer. Only a payload that is not a bencoded dictionary
//! is an error.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use shoal_bencode::{DecodeOptions, Kind, OwnedValue, Value};

use crate::{Message, MetadataMessage, PexMessage, WireError};

/// The extension id of the extended handshake itself (BEP 10).
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;
/// The name of the metadata exchange extension (BEP 9) in `m`.
pub const UT_METADATA: &str = "ut_metadata";
/// The name of the peer exchange extension (BEP 11) in `m`.
pub const UT_PEX: &str = "ut_pex";
/// The most `m` entries kept from a peer's handshake; the rest are ignored.
pub const MAX_EXTENSIONS: usize = 64;
/// The most bytes of a peer's `v` (client name) kept.
pub const MAX_CLIENT_NAME_LEN: usize = 64;
/// The largest `metadata_size` believed (HOSTILE 33); larger ones are ignored.
pub const MAX_METADATA_SIZE: u32 = 32 * 1024 * 1024;

/// The extended handshake (BEP 10), extension message 0, sent right after the BitTorrent handshake by
/// peers that set the extension bit.
///
/// ```
/// use shoal_wire::{ExtendedHandshake, UT_METADATA};
///
/// let ours = ExtendedHandshake {
///     client: Some("Shoal 0.1.0".into()),
///     request_queue: Some(250),
///     ..ExtendedHandshake::default()
/// }
/// .with_extension(UT_METADATA, 2);
/// let payload = ours.to_bytes();
/// assert_eq!(payload, b"d1:md11:ut_metadatai2ee4:reqqi250e1:v11:Shoal 0.1.0e");
/// let theirs = ExtendedHandshake::decode(&payload)?;
/// assert_eq!(theirs.extension_id(UT_METADATA), Some(2));
/// assert_eq!(theirs, ours);
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// `m`: each extension the sender supports, with the id it wants to receive it under; 0 means the
    /// sender disables the extension.
    pub extensions: BTreeMap<String, u8>,
    /// `p`: the sender's listening TCP port.
    pub port: Option<u16>,
    /// `v`: the sender's client name and version, with control characters removed (it may be shown in a
    /// terminal).
    pub client: Option<String>,
    /// `yourip`: the receiver's address as the sender sees it; one vote, not the truth.
    pub your_ip: Option<IpAddr>,
    /// `ipv4`: the sender's own IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's own IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `reqq`: how many outstanding requests the sender queues. Advice only: never size buffers by it.
    pub request_queue: Option<u32>,
    /// `metadata_size` (BEP 9): the size of the info dictionary, at most [`MAX_METADATA_SIZE`].
    pub metadata_size: Option<u32>,
    /// A `metadata_size` was sent but out of range (0, negative, over [`MAX_METADATA_SIZE`]), so
    /// `metadata_size` is `None`: the sender lies about the metadata (HOSTILE 33). Never encoded.
    pub metadata_size_refused: bool,
    /// `upload_only` (BEP 21): the sender only uploads (a seed, or not downloading).
    pub upload_only: bool,
}

impl ExtendedHandshake {
    /// The same handshake with one more extension in `m`.
    #[must_use]
    pub fn with_extension(mut self, name: &str, id: u8) -> Self {
        self.extensions.insert(name.to_owned(), id);
        self
    }

    /// The id under which the sender wants to receive an extension, if it supports and enables it.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions.get(name).copied().filter(|&id| id != 0)
    }

    /// Decodes the payload of extension message 0.
    ///
    /// # Errors
    /// [`WireError::Bencode`] for invalid bencode, [`WireError::Extension`] if it is not a dictionary.
    /// Bad fields are ignored, not errors.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        const NAME: &str = "extended handshake";
        let value = decode_dict(NAME, payload)?;
        let mut handshake = Self::default();
        if let Some(Kind::Dict(m)) = value.get(b"m").map(Value::kind) {
            for (name, id) in m.iter().take(MAX_EXTENSIONS) {
                let (Ok(name), Some(id)) = (std::str::from_utf8(name), id.as_int()) else {
                    continue;
                };
                if let Ok(id) = u8::try_from(id) {
                    handshake.extensions.insert(name.to_owned(), id);
                }
            }
        }
        handshake.port = int_field(&value, b"p").filter(|&port: &u16| port != 0);
        handshake.client = value.get(b"v").and_then(Value::as_bytes).map(|v| {
            String::from_utf8_lossy(v)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_CLIENT_NAME_LEN)
                .collect()
        });
        handshake.your_ip = value
            .get(b"yourip")
            .and_then(Value::as_bytes)
            .and_then(ip_from_bytes);
        handshake.ipv4 = value
            .get(b"ipv4")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from);
        handshake.ipv6 = value
            .get(b"ipv6")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Ipv6Addr::from);
        handshake.request_queue = int_field(&value, b"reqq").filter(|&n: &u32| n != 0);
        let sent_size = value.get(b"metadata_size").and_then(Value::as_int);
        handshake.metadata_size = sent_size
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_METADATA_SIZE).contains(n));
        handshake.metadata_size_refused = sent_size.is_some() && handshake.metadata_size.is_none();
        handshake.upload_only = value
            .get(b"upload_only")
            .and_then(Value::as_int)
            .is_some_and(|n| n != 0);
        Ok(handshake)
    }

    /// Appends the bencoded handshake (the payload of extension message 0) to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let mut dict = BTreeMap::new();
        let m = self
            .extensions
            .iter()
            .map(|(name, &id)| (name.clone().into_bytes(), OwnedValue::Int(id.into())))
            .collect();
        dict.insert(b"m".to_vec(), OwnedValue::Dict(m));
        if let Some(port) = self.port {
            dict.insert(b"p".to_vec(), OwnedValue::Int(port.into()));
        }
        if let Some(client) = &self.client {
            dict.insert(b"v".to_vec(), OwnedValue::from(client.as_str()));
        }
        if let Some(ip) = self.your_ip {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            dict.insert(b"yourip".to_vec(), OwnedValue::Bytes(bytes));
        }
        if let Some(ip) = self.ipv4 {
            dict.insert(b"ipv4".to_vec(), OwnedValue::Bytes(ip.octets().to_vec()));
        }
        if let Some(ip) = self.ipv6 {
            dict.insert(b"ipv6".to_vec(), OwnedValue::Bytes(ip.octets().to_vec()));
        }
        if let Some(reqq) = self.request_queue {
            dict.insert(b"reqq".to_vec(), OwnedValue::Int(reqq.into()));
        }
        if let Some(size) = self.metadata_size {
            dict.insert(b"metadata_size".to_vec(), OwnedValue::Int(size.into()));
        }
        if self.upload_only {
            dict.insert(b"upload_only".to_vec(), OwnedValue::Int(1));
        }
        OwnedValue::Dict(dict).encode_into(buf);
    }

    /// The bencoded handshake.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf);
        buf
    }

    /// The handshake as a peer-wire message, ready to encode.
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: self.to_bytes().into(),
        }
    }
}

/// An extension message, decoded according to the ids we announced; see [`decode_extension`].
///
/// ```
/// use shoal_wire::{decode_extension, ExtendedHandshake, ExtensionMessage};
///
/// let ours = ExtendedHandshake::default();
/// let message = decode_extension(9, bytes::Bytes::from_static(b"?"), &ours)?;
/// assert!(matches!(message, ExtensionMessage::Unknown { id: 9, .. }));
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionMessage {
    /// Extension message 0: the peer's extended handshake (it may send more than one, to update it).
    Handshake(ExtendedHandshake),
    /// A `ut_metadata` message (BEP 9).
    Metadata(MetadataMessage),
    /// A `ut_pex` message (BEP 11).
    Pex(PexMessage),
    /// An id we did not announce; the payload is left alone.
    Unknown {
        /// The extension message id.
        id: u8,
        /// The payload.
        payload: Bytes,
    },
}

/// Decodes the payload of an `extended` message the peer sent, given the handshake *we* sent (whose `m`
/// says which id means which extension).
///
/// # Errors
/// As the decoder of the extension the id names.
///
/// ```
/// use bytes::Bytes;
/// use shoal_wire::{decode_extension, ExtendedHandshake, ExtensionMessage, MetadataMessage, UT_METADATA};
///
/// let ours = ExtendedHandshake::default().with_extension(UT_METADATA, 2);
/// let payload = Bytes::from_static(b"d8:msg_typei0e5:piecei0ee");
/// assert_eq!(
///     decode_extension(2, payload, &ours)?,
///     ExtensionMessage::Metadata(MetadataMessage::Request { piece: 0 })
/// );
/// # Ok::<(), shoal_wire::WireError>(())
/// ```
pub fn decode_extension(
    id: u8,
    payload: Bytes,
    ours: &ExtendedHandshake,
) -> Result<ExtensionMessage, WireError> {
    if id == EXTENDED_HANDSHAKE_ID {
        return ExtendedHandshake::decode(&payload).map(ExtensionMessage::Handshake);
    }
    if ours.extension_id(UT_METADATA) == Some(id) {
        return MetadataMessage::decode(&payload).map(ExtensionMessage::Metadata);
    }
    if ours.extension_id(UT_PEX) == Some(id) {
        return PexMessage::decode(&payload).map(ExtensionMessage::Pex);
    }
    Ok(ExtensionMessage::Unknown { id, payload })
}

/// Decodes a whole payload as one bencoded dictionary (unsorted keys tolerated: they do no harm here).
pub(crate) fn decode_dict<'a>(
    message: &'static str,
    payload: &'a [u8],
) -> Result<Value<'a>, WireError> {
    let value = shoal_bencode::decode_with(payload, &DecodeOptions::lenient())
        .map_err(|source| WireError::Bencode { message, source })?;
    check_dict(message, value)
}

pub(crate) fn check_dict<'a>(
    message: &'static str,
    value: Value<'a>,
) -> Result<Value<'a>, WireError> {
    match value.kind() {
        Kind::Dict(_) => Ok(value),
        _ => Err(WireError::Extension {
            message,
            rule: "the payload is not a dictionary",
        }),
    }
}

/// An integer field that fits the target type; `None` if missing, mistyped or out of range.
pub(crate) fn int_field<T: TryFrom<i64>>(dict: &Value<'_>, key: &[u8]) -> Option<T> {
    dict.get(key)
        .and_then(Value::as_int)
        .and_then(|n| T::try_from(n).ok())
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_clients_handshakes() {
        // libtorrent 2.0 (shape of what it sends, keys sorted).
        let lt = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5678e4:reqqi500e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e";
        let hs = ExtendedHandshake::decode(lt).unwrap();
        assert_eq!(hs.extension_id(UT_METADATA), Some(2));
        assert_eq!(hs.extension_id(UT_PEX), Some(1));
        assert_eq!(hs.metadata_size, Some(5678));
        assert!(!hs.metadata_size_refused);
        assert_eq!(hs.request_queue, Some(500));
        assert!(hs.upload_only);
        assert_eq!(hs.client.as_deref(), Some("libtorrent/2.0.8.0"));
        assert_eq!(hs.your_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn bad_fields_are_ignored() {
        // HOSTILE 32/33: reqq 2^31 kept (it fits u32; callers cap it), metadata_size -1 and 2^40
        // ignored, a 16-byte junk yourip read as IPv6, a 5-byte one ignored, ids > 255 dropped.
        let hs = ExtendedHandshake::decode(
            b"d1:md1:ai256e1:bi-1e1:ci3e1:d1:xe13:metadata_sizei-1e1:pi70000e4:reqqi2147483648e1:v3:a\x1bbe",
        )
        .unwrap();
        assert_eq!(hs.extensions, BTreeMap::from([("c".to_owned(), 3)]));
        assert_eq!(hs.metadata_size, None);
        assert!(hs.metadata_size_refused);
        assert_eq!(hs.port, None);
        assert_eq!(hs.request_queue, Some(1 << 31));
        assert_eq!(hs.client.as_deref(), Some("ab"));
        for size in [b"i0e".as_slice(), b"i1099511627776e", b"i33554433e"] {
            let payload = [b"d13:metadata_size".as_slice(), size, b"e"].concat();
            assert_eq!(
                ExtendedHandshake::decode(&payload).unwrap().metadata_size,
                None
            );
        }
        assert_eq!(
            ExtendedHandshake::decode(b"d13:metadata_sizei33554432ee")
                .unwrap()
                .metadata_size,
            Some(MAX_METADATA_SIZE)
        );
        let hs = ExtendedHandshake::decode(b"d6:yourip5:abcdee").unwrap();
        assert_eq!(hs.your_ip, None);
        assert!(matches!(
            ExtendedHandshake::decode(b"li1ee"),
            Err(WireError::Extension { .. })
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:m"),
            Err(WireError::Bencode { .. })
        ));
    }

    #[test]
    fn m_is_capped() {
        let mut payload = b"d1:md".to_vec();
        for i in 0..1000 {
            let name = format!("x{i:04}");
            payload.extend_from_slice(format!("{}:{name}i1e", name.len()).as_bytes());
        }
        payload.extend_from_slice(b"ee");
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.extensions.len(), MAX_EXTENSIONS);
    }

    #[test]
    fn zero_disables() {
        let hs = ExtendedHandshake::decode(b"d1:md6:ut_pexi0eee").unwrap();
        assert_eq!(hs.extension_id(UT_PEX), None);
        assert_eq!(hs.extensions.get(UT_PEX), Some(&0));
    }
}
