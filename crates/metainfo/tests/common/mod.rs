//! Helpers shared by the integration tests: building bencoded torrents by hand.
#![allow(dead_code)]

use std::collections::BTreeMap;

pub use shoal_bencode::OwnedValue as V;

/// A dictionary from `(key, value)` pairs.
pub fn dict<const N: usize>(entries: [(&str, V); N]) -> V {
    V::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

pub fn s(text: &str) -> V {
    V::from(text)
}

pub fn b(bytes: &[u8]) -> V {
    V::Bytes(bytes.to_vec())
}

pub fn i(n: i64) -> V {
    V::Int(n)
}

pub fn list<const N: usize>(items: [V; N]) -> V {
    V::List(items.into())
}

pub fn path(components: &[&[u8]]) -> V {
    V::List(components.iter().map(|c| b(c)).collect())
}

/// Inserts or replaces `key` in a dictionary value.
pub fn set(value: &mut V, key: &str, new: V) {
    if let V::Dict(entries) = value {
        entries.insert(key.as_bytes().to_vec(), new);
    }
}

/// Removes `key` from a dictionary value.
pub fn remove(value: &mut V, key: &str) {
    if let V::Dict(entries) = value {
        entries.remove(key.as_bytes());
    }
}

/// A valid v1 single-file info dictionary: `length` bytes with 16 KiB pieces (hashes are dummies).
pub fn v1_single_info(name: &[u8], length: i64) -> V {
    let pieces = (length as u64).div_ceil(16384) as usize;
    dict([
        ("length", i(length)),
        ("name", b(name)),
        ("piece length", i(16384)),
        ("pieces", b(&vec![0xAB; pieces * 20])),
    ])
}

/// A valid v1 multi-file info dictionary with these (path, length) files and 16 KiB pieces.
pub fn v1_multi_info(name: &[u8], files: &[(&[&[u8]], i64)]) -> V {
    let total = files
        .iter()
        .fold(0i64, |sum, (_, l)| sum.saturating_add((*l).max(0)));
    let pieces = ((total as u64).div_ceil(16384) as usize).min(1000);
    let list = files
        .iter()
        .map(|(p, l)| dict([("length", i(*l)), ("path", path(p))]))
        .collect();
    dict([
        ("files", V::List(list)),
        ("name", b(name)),
        ("piece length", i(16384)),
        ("pieces", b(&vec![0xCD; pieces * 20])),
    ])
}

/// A torrent around an info dictionary.
pub fn torrent(info: V) -> Vec<u8> {
    dict([
        ("announce", s("http://127.0.0.1:6969/announce")),
        ("info", info),
    ])
    .to_bytes()
}
