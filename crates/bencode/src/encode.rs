//! The canonical encoder.

use crate::value::{Kind, Value};

/// Encodes a value as canonical bencode: dictionary keys sorted as raw bytes and unique.
///
/// A value decoded leniently may hold unsorted or repeated keys; its encoding sorts them and keeps the
/// first entry of each key, so the output is always canonical. (To hash what was received, use
/// [`Value::raw`] instead.)
///
/// ```
/// let value = shoal_bencode::decode_with(b"d1:bi2e1:ai1ee", &shoal_bencode::DecodeOptions::lenient())?;
/// assert_eq!(shoal_bencode::encode(&value), b"d1:ai1e1:bi2ee");
/// # Ok::<(), shoal_bencode::DecodeError>(())
/// ```
pub fn encode(value: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.raw().len());
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value<'_>, out: &mut Vec<u8>) {
    match value.kind() {
        Kind::Int(i) => write_int(out, *i),
        Kind::Bytes(b) => write_bytes(out, b),
        Kind::List(items) => {
            out.push(b'l');
            items.iter().for_each(|item| encode_into(item, out));
            out.push(b'e');
        }
        Kind::Dict(entries) => {
            out.push(b'd');
            if entries.is_sorted_by(|(a, _), (b, _)| a < b) {
                for (key, value) in entries {
                    write_bytes(out, key);
                    encode_into(value, out);
                }
            } else {
                let mut sorted: Vec<&(&[u8], Value<'_>)> = entries.iter().collect();
                sorted.sort_by_key(|(key, _)| *key); // stable: the first of equal keys stays first
                sorted.dedup_by(|(a, _), (b, _)| a == b);
                for (key, value) in sorted {
                    write_bytes(out, key);
                    encode_into(value, out);
                }
            }
            out.push(b'e');
        }
    }
}

/// Appends `i<value>e`.
pub(crate) fn write_int(out: &mut Vec<u8>, value: i64) {
    out.push(b'i');
    write_decimal(out, value);
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_decimal(out, bytes.len() as i64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn write_decimal(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut magnitude = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_extremes() {
        for (value, text) in [
            (0, "i0e"),
            (-1, "i-1e"),
            (i64::MAX, "i9223372036854775807e"),
            (i64::MIN, "i-9223372036854775808e"),
        ] {
            let mut out = Vec::new();
            write_int(&mut out, value);
            assert_eq!(out, text.as_bytes());
        }
    }
}
