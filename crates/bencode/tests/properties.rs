//! Property tests: round trips, no panics on arbitrary bytes, and differential checks against `bendy`,
//! the reference implementation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bendy::decoding::FromBencode;
use proptest::prelude::*;
use shoal_bencode::{
    DecodeOptions, OwnedValue, decode, decode_prefix, decode_with, encode, from_bytes, to_bytes,
};

fn owned_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(OwnedValue::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(OwnedValue::Bytes),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(OwnedValue::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(OwnedValue::Dict),
        ]
    })
}

/// The same value in bendy's representation.
fn to_bendy(value: &OwnedValue) -> bendy::value::Value<'static> {
    match value {
        OwnedValue::Int(i) => bendy::value::Value::Integer(*i),
        OwnedValue::Bytes(b) => bendy::value::Value::Bytes(Cow::Owned(b.clone())),
        OwnedValue::List(items) => bendy::value::Value::List(items.iter().map(to_bendy).collect()),
        OwnedValue::Dict(entries) => bendy::value::Value::Dict(
            entries
                .iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), to_bendy(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// bendy's encoder, with room for our nesting (its `Value` defaults to a depth of 0).
fn bendy_encode(value: &bendy::value::Value<'_>) -> Vec<u8> {
    let mut encoder = bendy::encoding::Encoder::new().with_max_depth(64);
    encoder.emit(value).unwrap();
    encoder.get_output().unwrap()
}

/// bendy's decoder; like ours with `decode_prefix`, it reads the first value and ignores the rest.
fn bendy_decode(bytes: &[u8]) -> Result<bendy::value::Value<'static>, bendy::decoding::Error> {
    let mut decoder = bendy::decoding::Decoder::new(bytes).with_max_depth(64);
    let object = decoder
        .next_object()?
        .ok_or_else(|| bendy::decoding::Error::missing_field("value"))?;
    bendy::value::Value::decode_bencode_object(object).map(|v| v.into_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_encode_is_identity(value in owned_value()) {
        let bytes = value.to_bytes();
        let decoded = decode(&bytes).unwrap();
        prop_assert_eq!(decoded.raw(), &bytes[..]);
        prop_assert_eq!(&decoded.to_owned_value(), &value);
        prop_assert_eq!(encode(&decoded), bytes.clone());
        // serde agrees with the direct paths both ways.
        prop_assert_eq!(&from_bytes::<OwnedValue>(&bytes).unwrap(), &value);
        prop_assert_eq!(to_bytes(&decoded).unwrap(), bytes);
    }

    #[test]
    fn same_bytes_as_bendy(value in owned_value()) {
        let ours = value.to_bytes();
        let reference = bendy_encode(&to_bendy(&value));
        prop_assert_eq!(&ours, &reference);
        // bendy reads what we write, as the same value.
        let back = bendy_decode(&ours).unwrap();
        prop_assert_eq!(back, to_bendy(&value));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let strict = decode(&bytes);
        let _ = decode_with(&bytes, &DecodeOptions::lenient());
        let _ = from_bytes::<OwnedValue>(&bytes);
        // Strict decoding accepts canonical encodings only: whatever it accepts re-encodes to the input.
        if let Ok(value) = strict {
            prop_assert_eq!(encode(&value), bytes);
        }
    }

    #[test]
    fn mutated_encodings_agree_with_bendy(
        value in owned_value(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"0123456789ilde:-xa".to_vec()),
    ) {
        let mut bytes = value.to_bytes();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        let ours = decode_prefix(&bytes, &DecodeOptions::strict()).map(|(v, _)| v.to_owned_value());
        let reference = bendy_decode(&bytes);
        match (&ours, &reference) {
            (Ok(ours), Ok(reference)) => prop_assert_eq!(to_bendy(ours), reference.clone()),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "disagree on {:?}: ours {:?}, bendy {:?}", String::from_utf8_lossy(&bytes), ours, reference),
        }
    }
}
