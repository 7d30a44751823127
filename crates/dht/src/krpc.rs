//! KRPC messages (BEP 5): bencoded queries, responses and errors, with BEP 32 (`nodes6`, `want`), BEP 42
//! (`ip`) and BEP 43 (`ro`) fields.
//!
//! Decoding is tolerant where the BEPs ask for it (unknown keys are ignored, dictionaries may be
//! unsorted) and strict where hostile input would hurt: ids are exactly 20 bytes, compact node lists a
//! whole number of entries, each `values` item a whole address, and every list and string has a cap,
//! so a decoded message is small whatever arrived. Encoding is canonical bencode (sorted keys).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use shoal_bencode::{DecodeOptions, Value};
use shoal_metainfo::InfoHash;

use crate::id::NodeId;

/// The longest transaction id accepted: we echo it back, so it must stay small (libtorrent sends 2 bytes).
pub const MAX_TRANSACTION_LEN: usize = 32;
/// The longest `announce_peer` token accepted (ours are 8 bytes, libtorrent's 4, others up to 20).
pub const MAX_TOKEN_LEN: usize = 64;
/// The most entries accepted in one reply's `nodes` (or `nodes6`): BEP 5 sends k = 8, we allow four times.
pub const MAX_NODES_PER_REPLY: usize = 32;
/// The most peers accepted in one reply's `values`: twice what we (and libtorrent) send at most.
pub const MAX_VALUES_PER_REPLY: usize = 200;
/// The most peers we put in one reply's `values` (HOSTILE 49, libtorrent's `dht_max_peers_reply`).
pub const MAX_VALUES_SENT: usize = 100;
/// The longest error message text kept from a KRPC error.
pub const MAX_ERROR_TEXT: usize = 256;
/// Our client version, the `v` key of every message we send.
pub const VERSION: &[u8; 4] = b"SH01";

/// Why bytes were refused as a KRPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KrpcError {
    /// The bytes are not bencode.
    #[error("invalid bencode")]
    Bencode(#[from] shoal_bencode::DecodeError),
    /// The message (or its `a`/`r` part) is not a dictionary.
    #[error("`{0}` is not a dictionary")]
    NotADict(&'static str),
    /// A required key is absent.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// A key holds the wrong kind of value.
    #[error("`{0}` has the wrong type")]
    WrongType(&'static str),
    /// `y` is none of `q`, `r` and `e`.
    #[error("unknown message type {0:?}")]
    UnknownType(Vec<u8>),
    /// A byte string has a length the field does not allow (an id not of 20 bytes, `nodes` not a
    /// multiple of 26, a `values` item not of 6 bytes, an over-long transaction id or token).
    #[error("`{field}` is {len} bytes long")]
    BadLength {
        /// The key.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A list holds more entries than accepted ([`MAX_NODES_PER_REPLY`], [`MAX_VALUES_PER_REPLY`]).
    #[error("`{field}` holds {count} entries, over the limit")]
    TooMany {
        /// The key.
        field: &'static str,
        /// How many entries it holds.
        count: usize,
    },
    /// `port` is outside 0..=65535.
    #[error("port {0} out of range")]
    BadPort(i64),
}

/// A node as found in compact node info: id and UDP address.
///
/// ```
/// use shoal_dht::{NodeId, NodeInfo};
///
/// let node = NodeInfo { id: NodeId([1; 20]), addr: "127.0.0.1:6881".parse()? };
/// let mut compact = Vec::new();
/// node.encode_compact(&mut compact);
/// assert_eq!(compact.len(), 26);
/// assert_eq!(NodeInfo::decode_compact(&compact).unwrap(), node);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl NodeInfo {
    /// Appends the compact form: 20-byte id, then 6 (IPv4) or 18 (IPv6) address bytes.
    pub fn encode_compact(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        encode_compact_addr(&self.addr, out);
    }

    /// Reads one compact node of 26 (IPv4) or 38 (IPv6) bytes; `None` for any other length.
    pub fn decode_compact(bytes: &[u8]) -> Option<NodeInfo> {
        if bytes.len() != 26 && bytes.len() != 38 {
            return None;
        }
        let id = NodeId(bytes[..20].try_into().ok()?);
        Some(NodeInfo {
            id,
            addr: decode_compact_addr(&bytes[20..])?,
        })
    }
}

/// Appends the compact form of an address: 4 or 16 IP bytes, then the port, big-endian.
///
/// ```
/// let mut out = Vec::new();
/// shoal_dht::encode_compact_addr(&"127.0.0.1:6881".parse()?, &mut out);
/// assert_eq!(out, [127, 0, 0, 1, 0x1a, 0xe1]);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn encode_compact_addr(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Reads a compact address of 6 (IPv4) or 18 (IPv6) bytes; `None` for any other length.
///
/// ```
/// let addr = shoal_dht::decode_compact_addr(&[127, 0, 0, 1, 0x1a, 0xe1]).unwrap();
/// assert_eq!(addr.to_string(), "127.0.0.1:6881");
/// assert!(shoal_dht::decode_compact_addr(&[1, 2, 3]).is_none());
/// ```
pub fn decode_compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        6 => {
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([bytes[4], bytes[5]]),
            ))
        }
        18 => {
            let octets: [u8; 16] = bytes[..16].try_into().ok()?;
            let port = u16::from_be_bytes([bytes[16], bytes[17]]);
            Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
        }
        _ => None,
    }
}

/// One KRPC message: a transaction id, the body, and the optional fields every kind may carry.
///
/// ```
/// use shoal_dht::{Body, Message, Method, NodeId, Query};
///
/// let ping = Message::query(b"aa".to_vec(), Query::new(NodeId([b'a'; 20]), Method::Ping));
/// let bytes = ping.encode();
/// assert_eq!(
///     bytes,
///     b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:v4:SH011:y1:qe"
/// );
/// let back = Message::decode(&bytes)?;
/// assert!(matches!(back.body, Body::Query(Query { method: Method::Ping, .. })));
/// # Ok::<(), shoal_dht::KrpcError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `t`: chosen by the querying node and echoed in the reply.
    pub transaction: Vec<u8>,
    /// The query, response or error.
    pub body: Body,
    /// `v`: the sender's client version, if given (at most 16 bytes kept).
    pub version: Option<Vec<u8>>,
    /// `ro` (BEP 43): the sender is read-only and will not answer queries.
    pub read_only: bool,
    /// `ip` (BEP 42): in a reply, the address the replier saw the query come from.
    pub ip: Option<SocketAddr>,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`: a code (201 generic, 202 server, 203 protocol, 204 method unknown) and a text.
    Error {
        /// The error code.
        code: i64,
        /// The text, lossily decoded and capped at 256 bytes.
        message: String,
    },
}

/// A query: the sender's id, the method with its arguments and the BEP 32 `want` list.
///
/// ```
/// use shoal_dht::{Method, NodeId, Query};
///
/// let query = Query::new(NodeId([1; 20]), Method::FindNode { target: NodeId([2; 20]) });
/// assert_eq!(query.method.name(), "find_node");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The querying node's id.
    pub id: NodeId,
    /// `q` and its arguments.
    pub method: Method,
    /// `want` (BEP 32), if given.
    pub want: Option<Want>,
}

impl Query {
    /// A query with no `want` list.
    pub fn new(id: NodeId, method: Method) -> Query {
        Query {
            id,
            method,
            want: None,
        }
    }
}

/// Which address families a querier wants nodes for (BEP 32 `want`: `n4`, `n6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`: IPv4 nodes in `nodes`.
    pub v4: bool,
    /// `n6`: IPv6 nodes in `nodes6`.
    pub v6: bool,
}

/// The four BEP 5 methods, and any other name (answered with error 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `ping`.
    Ping,
    /// `find_node`: the k closest nodes to `target`.
    FindNode {
        /// The id looked for.
        target: NodeId,
    },
    /// `get_peers`: peers for `info_hash`, or else the closest nodes, with a token.
    GetPeers {
        /// The torrent.
        info_hash: InfoHash,
    },
    /// `announce_peer`: the sender is a peer for `info_hash`.
    AnnouncePeer {
        /// The torrent.
        info_hash: InfoHash,
        /// The peer's TCP port (ignored when `implied_port` is set).
        port: u16,
        /// Use the UDP source port instead of `port` (for peers behind NAT).
        implied_port: bool,
        /// The token from an earlier `get_peers` reply of ours.
        token: Vec<u8>,
    },
    /// Any other method name (at most 32 bytes kept).
    Other(Vec<u8>),
}

impl Method {
    /// The method's name as sent in `q`, lossily decoded for `Other`.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Method::Ping => "ping".into(),
            Method::FindNode { .. } => "find_node".into(),
            Method::GetPeers { .. } => "get_peers".into(),
            Method::AnnouncePeer { .. } => "announce_peer".into(),
            Method::Other(name) => String::from_utf8_lossy(name),
        }
    }
}

/// A response's `r` dictionary. The same shape answers every method, so one type holds every field any
/// of them may carry.
///
/// ```
/// use shoal_dht::{NodeId, Response};
///
/// let response = Response::new(NodeId([3; 20]));
/// assert!(response.nodes.is_empty() && response.values.is_empty() && response.token.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The responding node's id.
    pub id: NodeId,
    /// `nodes`: IPv4 nodes close to the target.
    pub nodes: Vec<NodeInfo>,
    /// `nodes6` (BEP 32): IPv6 nodes close to the target.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers for the info-hash of a `get_peers`.
    pub values: Vec<SocketAddr>,
    /// `token`: to present in a later `announce_peer`.
    pub token: Option<Vec<u8>>,
}

impl Response {
    /// A response carrying only the responder's id (a `ping` or `announce_peer` reply).
    pub fn new(id: NodeId) -> Response {
        Response {
            id,
            ..Response::default()
        }
    }
}

impl Message {
    /// A query message with no optional fields.
    pub fn query(transaction: Vec<u8>, query: Query) -> Message {
        Message {
            transaction,
            body: Body::Query(query),
            version: Some(VERSION.to_vec()),
            read_only: false,
            ip: None,
        }
    }

    /// A response message with no optional fields.
    pub fn response(transaction: Vec<u8>, response: Response) -> Message {
        Message {
            transaction,
            body: Body::Response(response),
            version: Some(VERSION.to_vec()),
            read_only: false,
            ip: None,
        }
    }

    /// An error message.
    pub fn error(transaction: Vec<u8>, code: i64, message: &str) -> Message {
        Message {
            transaction,
            body: Body::Error {
                code,
                message: message.to_owned(),
            },
            version: Some(VERSION.to_vec()),
            read_only: false,
            ip: None,
        }
    }

    /// Decodes one datagram. Unknown keys are ignored; dictionaries may be unsorted.
    ///
    /// # Errors
    /// Not bencode, a missing or mistyped required key, a field of a wrong length, or a list over its
    /// cap; see [`KrpcError`].
    ///
    /// ```
    /// use shoal_dht::{KrpcError, Message};
    ///
    /// let err = Message::decode(b"d1:t2:aa1:y1:qe").unwrap_err();
    /// assert_eq!(err, KrpcError::Missing("q"));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
        const OPTIONS: DecodeOptions = DecodeOptions {
            require_sorted_keys: false,
            max_depth: 8,
            max_tokens: 4096,
        };
        let root = shoal_bencode::decode_with(bytes, &OPTIONS)?;
        if root.as_dict().is_none() {
            return Err(KrpcError::NotADict("message"));
        }
        let transaction = bytes_field(&root, "t")?.to_vec();
        if transaction.len() > MAX_TRANSACTION_LEN {
            return Err(KrpcError::BadLength {
                field: "t",
                len: transaction.len(),
            });
        }
        let version = root
            .get(b"v")
            .and_then(Value::as_bytes)
            .map(|v| v[..v.len().min(16)].to_vec());
        let read_only = root.get(b"ro").and_then(Value::as_int).unwrap_or(0) != 0;
        let ip = root
            .get(b"ip")
            .and_then(Value::as_bytes)
            .and_then(decode_compact_addr);
        let body = match bytes_field(&root, "y")? {
            b"q" => Body::Query(decode_query(&root)?),
            b"r" => Body::Response(decode_response(&root)?),
            b"e" => decode_error(&root)?,
            other => {
                return Err(KrpcError::UnknownType(
                    other[..other.len().min(16)].to_vec(),
                ));
            }
        };
        Ok(Message {
            transaction,
            body,
            version,
            read_only,
            ip,
        })
    }

    /// Encodes the message as canonical bencode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(&mut out);
        out
    }

    /// Appends the message as canonical bencode to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Keys in byte order: a, e, ip, q, r, ro, t, v, y.
        out.push(b'd');
        match &self.body {
            Body::Query(query) => {
                write_str(out, b"a");
                encode_arguments(query, out);
            }
            Body::Error { code, message } => {
                write_str(out, b"e");
                out.push(b'l');
                write_int(out, *code);
                write_str(out, message.as_bytes());
                out.push(b'e');
            }
            Body::Response(_) => {}
        }
        if let Some(ip) = &self.ip {
            write_str(out, b"ip");
            let mut compact = Vec::with_capacity(18);
            encode_compact_addr(ip, &mut compact);
            write_str(out, &compact);
        }
        match &self.body {
            Body::Query(query) => {
                write_str(out, b"q");
                // Raw bytes: an unknown method name need not be UTF-8 (found by fuzzing).
                match &query.method {
                    Method::Other(name) => write_str(out, name),
                    method => write_str(out, method.name().as_bytes()),
                }
            }
            Body::Response(response) => {
                write_str(out, b"r");
                encode_response(response, out);
            }
            Body::Error { .. } => {}
        }
        if self.read_only {
            write_str(out, b"ro");
            write_int(out, 1);
        }
        write_str(out, b"t");
        write_str(out, &self.transaction);
        if let Some(version) = &self.version {
            write_str(out, b"v");
            write_str(out, version);
        }
        write_str(out, b"y");
        write_str(
            out,
            match self.body {
                Body::Query(_) => b"q",
                Body::Response(_) => b"r",
                Body::Error { .. } => b"e",
            },
        );
        out.push(b'e');
    }
}

fn encode_arguments(query: &Query, out: &mut Vec<u8>) {
    // Keys in byte order: id, implied_port, info_hash, port, target, token, want.
    out.push(b'd');
    write_str(out, b"id");
    write_str(out, &query.id.0);
    match &query.method {
        Method::Ping | Method::Other(_) => {}
        Method::FindNode { target } => {
            write_str(out, b"target");
            write_str(out, &target.0);
        }
        Method::GetPeers { info_hash } => {
            write_str(out, b"info_hash");
            write_str(out, &info_hash.0);
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            if *implied_port {
                write_str(out, b"implied_port");
                write_int(out, 1);
            }
            write_str(out, b"info_hash");
            write_str(out, &info_hash.0);
            write_str(out, b"port");
            write_int(out, i64::from(*port));
            write_str(out, b"token");
            write_str(out, token);
        }
    }
    if let Some(want) = query.want {
        write_str(out, b"want");
        out.push(b'l');
        if want.v4 {
            write_str(out, b"n4");
        }
        if want.v6 {
            write_str(out, b"n6");
        }
        out.push(b'e');
    }
    out.push(b'e');
}

fn encode_response(response: &Response, out: &mut Vec<u8>) {
    // Keys in byte order: id, nodes, nodes6, token, values.
    out.push(b'd');
    write_str(out, b"id");
    write_str(out, &response.id.0);
    for (key, nodes) in [
        (&b"nodes"[..], &response.nodes),
        (&b"nodes6"[..], &response.nodes6),
    ] {
        if !nodes.is_empty() {
            let mut compact = Vec::with_capacity(nodes.len() * 38);
            nodes
                .iter()
                .for_each(|node| node.encode_compact(&mut compact));
            write_str(out, key);
            write_str(out, &compact);
        }
    }
    if let Some(token) = &response.token {
        write_str(out, b"token");
        write_str(out, token);
    }
    if !response.values.is_empty() {
        write_str(out, b"values");
        out.push(b'l');
        let mut compact = Vec::with_capacity(18);
        for value in &response.values {
            compact.clear();
            encode_compact_addr(value, &mut compact);
            write_str(out, &compact);
        }
        out.push(b'e');
    }
    out.push(b'e');
}

fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn write_int(out: &mut Vec<u8>, value: i64) {
    out.push(b'i');
    out.extend_from_slice(value.to_string().as_bytes());
    out.push(b'e');
}

fn bytes_field<'a>(dict: &Value<'a>, key: &'static str) -> Result<&'a [u8], KrpcError> {
    dict.get(key.as_bytes())
        .ok_or(KrpcError::Missing(key))?
        .as_bytes()
        .ok_or(KrpcError::WrongType(key))
}

fn id_field(dict: &Value<'_>, key: &'static str) -> Result<[u8; 20], KrpcError> {
    let bytes = bytes_field(dict, key)?;
    bytes.try_into().map_err(|_| KrpcError::BadLength {
        field: key,
        len: bytes.len(),
    })
}

fn decode_query(root: &Value<'_>) -> Result<Query, KrpcError> {
    let name = bytes_field(root, "q")?;
    let args = root.get(b"a").ok_or(KrpcError::Missing("a"))?;
    if args.as_dict().is_none() {
        return Err(KrpcError::NotADict("a"));
    }
    let id = NodeId(id_field(args, "id")?);
    let method = match name {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: NodeId(id_field(args, "target")?),
        },
        b"get_peers" => Method::GetPeers {
            info_hash: InfoHash(id_field(args, "info_hash")?),
        },
        b"announce_peer" => {
            let port = args
                .get(b"port")
                .ok_or(KrpcError::Missing("port"))?
                .as_int()
                .ok_or(KrpcError::WrongType("port"))?;
            let port = u16::try_from(port).map_err(|_| KrpcError::BadPort(port))?;
            let token = bytes_field(args, "token")?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(KrpcError::BadLength {
                    field: "token",
                    len: token.len(),
                });
            }
            Method::AnnouncePeer {
                info_hash: InfoHash(id_field(args, "info_hash")?),
                port,
                implied_port: args
                    .get(b"implied_port")
                    .and_then(Value::as_int)
                    .unwrap_or(0)
                    != 0,
                token: token.to_vec(),
            }
        }
        other => Method::Other(other[..other.len().min(32)].to_vec()),
    };
    let want = args.get(b"want").and_then(Value::as_list).map(|items| {
        let mut want = Want::default();
        for item in items {
            match item.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
        want
    });
    Ok(Query { id, method, want })
}

fn decode_nodes(
    reply: &Value<'_>,
    key: &'static str,
    entry_len: usize,
) -> Result<Vec<NodeInfo>, KrpcError> {
    let Some(value) = reply.get(key.as_bytes()) else {
        return Ok(Vec::new());
    };
    let bytes = value.as_bytes().ok_or(KrpcError::WrongType(key))?;
    if bytes.len() % entry_len != 0 {
        return Err(KrpcError::BadLength {
            field: key,
            len: bytes.len(),
        });
    }
    let count = bytes.len() / entry_len;
    if count > MAX_NODES_PER_REPLY {
        return Err(KrpcError::TooMany { field: key, count });
    }
    Ok(bytes
        .chunks_exact(entry_len)
        .filter_map(NodeInfo::decode_compact)
        .collect())
}

fn decode_response(root: &Value<'_>) -> Result<Response, KrpcError> {
    let reply = root.get(b"r").ok_or(KrpcError::Missing("r"))?;
    if reply.as_dict().is_none() {
        return Err(KrpcError::NotADict("r"));
    }
    let id = NodeId(id_field(reply, "id")?);
    let nodes = decode_nodes(reply, "nodes", 26)?;
    let nodes6 = decode_nodes(reply, "nodes6", 38)?;
    let token = match reply.get(b"token") {
        None => None,
        Some(token) => {
            let token = token.as_bytes().ok_or(KrpcError::WrongType("token"))?;
            if token.len() > MAX_TOKEN_LEN {
                return Err(KrpcError::BadLength {
                    field: "token",
                    len: token.len(),
                });
            }
            Some(token.to_vec())
        }
    };
    let values = match reply.get(b"values") {
        None => Vec::new(),
        Some(values) => {
            let items = values.as_list().ok_or(KrpcError::WrongType("values"))?;
            if items.len() > MAX_VALUES_PER_REPLY {
                return Err(KrpcError::TooMany {
                    field: "values",
                    count: items.len(),
                });
            }
            items
                .iter()
                .map(|item| {
                    let bytes = item.as_bytes().ok_or(KrpcError::WrongType("values"))?;
                    decode_compact_addr(bytes).ok_or(KrpcError::BadLength {
                        field: "values",
                        len: bytes.len(),
                    })
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
    })
}

fn decode_error(root: &Value<'_>) -> Result<Body, KrpcError> {
    let list = root
        .get(b"e")
        .ok_or(KrpcError::Missing("e"))?
        .as_list()
        .ok_or(KrpcError::WrongType("e"))?;
    let code = list
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::WrongType("e"))?;
    let text = list.get(1).and_then(Value::as_bytes).unwrap_or_default();
    let message = String::from_utf8_lossy(&text[..text.len().min(MAX_ERROR_TEXT)]).into_owned();
    Ok(Body::Error { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(bytes: &[u8], expected: Result<Message, KrpcError>) {
        assert_eq!(Message::decode(bytes), expected);
    }

    #[test]
    fn bep5_examples_decode() {
        // The example messages of BEP 5, byte for byte.
        let ping =
            Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(ping.transaction, b"aa");
        assert_eq!(
            ping.body,
            Body::Query(Query::new(NodeId(*b"abcdefghij0123456789"), Method::Ping))
        );
        let announce = Message::decode(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        )
        .unwrap();
        assert_eq!(
            announce.body,
            Body::Query(Query::new(
                NodeId(*b"abcdefghij0123456789"),
                Method::AnnouncePeer {
                    info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
                    port: 6881,
                    implied_port: false,
                    token: b"aoeusnth".to_vec(),
                }
            ))
        );
        let values = Message::decode(
            b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        )
        .unwrap();
        let Body::Response(response) = values.body else {
            panic!("not a response")
        };
        assert_eq!(response.values.len(), 2);
        assert_eq!(response.values[0].to_string(), "97.120.106.101:11893");
        check(
            b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
            Ok(Message {
                transaction: b"aa".to_vec(),
                body: Body::Error {
                    code: 201,
                    message: "A Generic Error Ocurred".into(),
                },
                version: None,
                read_only: false,
                ip: None,
            }),
        );
    }

    #[test]
    fn unknown_keys_and_unsorted_dicts_are_tolerated() {
        let message = Message::decode(
            b"d1:y1:q1:q4:ping1:t1:x3:zzzi5e1:ad2:id20:abcdefghij01234567893:fooi1eee",
        )
        .unwrap();
        assert!(matches!(message.body, Body::Query(_)));
    }

    #[test]
    fn hostile_fields_are_refused() {
        // HOSTILE 44: missing keys, wrong types, odd lengths.
        check(b"le", Err(KrpcError::NotADict("message")));
        check(b"d1:y1:qe", Err(KrpcError::Missing("t")));
        check(b"d1:t2:aa1:y1:qe", Err(KrpcError::Missing("q")));
        check(b"d1:q4:ping1:t2:aa1:y1:qe", Err(KrpcError::Missing("a")));
        check(
            b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            Err(KrpcError::BadLength {
                field: "id",
                len: 3,
            }),
        );
        check(
            b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
            Err(KrpcError::BadLength {
                field: "nodes",
                len: 3,
            }),
        );
        check(
            b"d1:rd2:id20:abcdefghij01234567896:valuesl5:abcdeee1:t2:aa1:y1:re",
            Err(KrpcError::BadLength {
                field: "values",
                len: 5,
            }),
        );
        check(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            Err(KrpcError::BadPort(65536)),
        );
        check(
            b"d1:t2:aa1:y1:xe",
            Err(KrpcError::UnknownType(b"x".to_vec())),
        );
        check(b"d1:ti1e1:y1:qe", Err(KrpcError::WrongType("t")));
    }

    #[test]
    fn caps_at_and_past_the_limit() {
        let reply = |n_nodes: usize, n_values: usize| {
            let mut response = Response::new(NodeId([1; 20]));
            response.nodes = (0..n_nodes)
                .map(|i| NodeInfo {
                    id: NodeId([i as u8; 20]),
                    addr: SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16)),
                })
                .collect();
            response.values = (0..n_values)
                .map(|i| SocketAddr::from(([10, 0, 1, 1], i as u16)))
                .collect();
            Message::response(b"xy".to_vec(), response).encode()
        };
        assert!(Message::decode(&reply(MAX_NODES_PER_REPLY, MAX_VALUES_PER_REPLY)).is_ok());
        assert_eq!(
            Message::decode(&reply(MAX_NODES_PER_REPLY + 1, 0)),
            Err(KrpcError::TooMany {
                field: "nodes",
                count: MAX_NODES_PER_REPLY + 1
            })
        );
        assert_eq!(
            Message::decode(&reply(0, MAX_VALUES_PER_REPLY + 1)),
            Err(KrpcError::TooMany {
                field: "values",
                count: MAX_VALUES_PER_REPLY + 1
            })
        );
        let long_t = |len: usize| {
            Message::query(vec![b'x'; len], Query::new(NodeId([0; 20]), Method::Ping)).encode()
        };
        assert!(Message::decode(&long_t(MAX_TRANSACTION_LEN)).is_ok());
        assert_eq!(
            Message::decode(&long_t(MAX_TRANSACTION_LEN + 1)),
            Err(KrpcError::BadLength {
                field: "t",
                len: MAX_TRANSACTION_LEN + 1
            })
        );
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            any::<([u8; 4], u16)>().prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            any::<([u8; 16], u16)>().prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ]
    }

    fn arb_id() -> impl Strategy<Value = NodeId> {
        any::<[u8; 20]>().prop_map(NodeId)
    }

    fn arb_v4_node() -> impl Strategy<Value = NodeInfo> {
        (arb_id(), any::<([u8; 4], u16)>()).prop_map(|(id, (ip, port))| NodeInfo {
            id,
            addr: SocketAddr::from((ip, port)),
        })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let method = prop_oneof![
            Just(Method::Ping),
            arb_id().prop_map(|target| Method::FindNode { target }),
            any::<[u8; 20]>().prop_map(|h| Method::GetPeers {
                info_hash: InfoHash(h)
            }),
            (
                any::<[u8; 20]>(),
                any::<u16>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(h, port, implied_port, token)| Method::AnnouncePeer {
                    info_hash: InfoHash(h),
                    port,
                    implied_port,
                    token
                }),
            "[a-z_]{1,12}"
                .prop_filter("not a known method", |s| ![
                    "ping",
                    "find_node",
                    "get_peers",
                    "announce_peer"
                ]
                .contains(&s.as_str()))
                .prop_map(|s| Method::Other(s.into_bytes())),
        ];
        let want = proptest::option::of(any::<(bool, bool)>().prop_map(|(v4, v6)| Want { v4, v6 }));
        let query = (arb_id(), method, want)
            .prop_map(|(id, method, want)| Body::Query(Query { id, method, want }));
        let response = (
            arb_id(),
            proptest::collection::vec(arb_v4_node(), 0..10),
            proptest::collection::vec(arb_addr(), 0..10),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        )
            .prop_map(|(id, nodes, values, token)| {
                Body::Response(Response {
                    id,
                    nodes,
                    nodes6: Vec::new(),
                    values,
                    token,
                })
            });
        let error =
            (any::<i64>(), "[ -~]{0,40}").prop_map(|(code, message)| Body::Error { code, message });
        (
            proptest::collection::vec(any::<u8>(), 0..8),
            prop_oneof![query, response, error],
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            any::<bool>(),
            proptest::option::of(arb_addr()),
        )
            .prop_map(|(transaction, body, version, read_only, ip)| Message {
                transaction,
                body,
                version,
                read_only,
                ip,
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(message in arb_message()) {
            let bytes = message.encode();
            // Canonical: the strict bencode decoder accepts it.
            prop_assert!(shoal_bencode::decode(&bytes).is_ok());
            prop_assert_eq!(Message::decode(&bytes), Ok(message));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode(&bytes);
        }
    }
}
