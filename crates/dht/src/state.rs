//! What a node saves between runs: its id, the external IP it learned, and the nodes of its routing table,
//! to bootstrap from next time.

use std::net::IpAddr;

use shoal_bencode::{DecodeOptions, Value};

use crate::id::NodeId;
use crate::krpc::NodeInfo;

/// The most nodes read back from a state file.
pub const MAX_SAVED_NODES: usize = 1000;

/// Why a saved state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes are not bencode.
    #[error("invalid bencode")]
    Bencode(#[from] shoal_bencode::DecodeError),
    /// `id` is missing or not 20 bytes.
    #[error("missing or malformed node id")]
    BadId,
    /// `nodes`/`nodes6` is not a byte string of whole entries.
    #[error("malformed `{0}`")]
    BadNodes(&'static str),
}

/// A node's saved state (`dht.dat` in the state directory).
///
/// ```
/// use shoal_dht::{NodeId, NodeInfo, SavedState};
///
/// let state = SavedState {
///     id: NodeId([1; 20]),
///     external_ip: Some("203.0.113.9".parse()?),
///     nodes: vec![NodeInfo { id: NodeId([2; 20]), addr: "127.0.0.1:6881".parse()? }],
/// };
/// assert_eq!(SavedState::decode(&state.encode()).unwrap(), state);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// Our node id.
    pub id: NodeId,
    /// Our external IP as other nodes reported it (BEP 42), if learned.
    pub external_ip: Option<IpAddr>,
    /// Nodes of the routing table, closest to us first.
    pub nodes: Vec<NodeInfo>,
}

impl SavedState {
    /// Encodes the state as bencode: `id`, `ip` (4 or 16 bytes), `nodes` and `nodes6` (compact).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"d2:id20:".to_vec();
        out.extend_from_slice(&self.id.0);
        if let Some(ip) = self.external_ip {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            out.extend_from_slice(format!("2:ip{}:", bytes.len()).as_bytes());
            out.extend_from_slice(&bytes);
        }
        for (key, v4) in [("nodes", true), ("nodes6", false)] {
            let mut compact = Vec::new();
            self.nodes
                .iter()
                .filter(|n| n.addr.is_ipv4() == v4)
                .for_each(|n| n.encode_compact(&mut compact));
            out.extend_from_slice(format!("{}:{key}{}:", key.len(), compact.len()).as_bytes());
            out.extend_from_slice(&compact);
        }
        out.push(b'e');
        out
    }

    /// Decodes a saved state; keeps at most [`MAX_SAVED_NODES`] nodes.
    ///
    /// # Errors
    /// Not bencode, no valid `id`, or node lists that are not whole compact entries.
    pub fn decode(bytes: &[u8]) -> Result<SavedState, StateError> {
        let root = shoal_bencode::decode_with(bytes, &DecodeOptions::lenient())?;
        let id = root
            .get(b"id")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or(StateError::BadId)?;
        let external_ip = root
            .get(b"ip")
            .and_then(Value::as_bytes)
            .and_then(|b| match b.len() {
                4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
                _ => None,
            });
        let mut nodes = Vec::new();
        for (key, len) in [("nodes", 26), ("nodes6", 38)] {
            let Some(value) = root.get(key.as_bytes()) else {
                continue;
            };
            let compact = value.as_bytes().ok_or(StateError::BadNodes(key))?;
            if compact.len() % len != 0 {
                return Err(StateError::BadNodes(key));
            }
            nodes.extend(
                compact
                    .chunks_exact(len)
                    .filter_map(NodeInfo::decode_compact),
            );
        }
        nodes.truncate(MAX_SAVED_NODES);
        Ok(SavedState {
            id: NodeId(id),
            external_ip,
            nodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_broken_states() {
        assert!(matches!(
            SavedState::decode(b"x"),
            Err(StateError::Bencode(_))
        ));
        assert_eq!(SavedState::decode(b"de"), Err(StateError::BadId));
        let mut bad = b"d2:id20:".to_vec();
        bad.extend_from_slice(&[0; 20]);
        bad.extend_from_slice(b"5:nodes3:abce");
        assert_eq!(SavedState::decode(&bad), Err(StateError::BadNodes("nodes")));
    }
}
