//! Property tests: round trips, no panics on arbitrary bytes, and differential checks against `bendy`,
//! the reference implementation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bendy::decoding::FromBencode;
use proptest::prelude::*;
use serde::Deserialize;
use shoal_bencode::{
    DecodeOptions, ErrorKind, OwnedValue, Value, decode, decode_prefix, decode_with, encode,
    from_bytes, from_bytes_with, to_bytes,
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

/// A struct that goes through every typed fast path: text, integers, lists of text (read with a size
/// hint), lists of structs, bytes, and unknown fields skipped.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Typed<'a> {
    #[serde(borrow)]
    a: Option<&'a str>,
    b: Option<i64>,
    #[serde(borrow)]
    c: Vec<&'a str>,
    #[serde(borrow)]
    d: Vec<Inner<'a>>,
    #[serde(borrow)]
    e: Option<&'a serde_bytes::Bytes>,
    f: Option<u64>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Inner<'a> {
    length: u64,
    #[serde(borrow)]
    path: Vec<&'a str>,
}

/// What decoding a [`Typed`] must give, worked out from the tree decoder's value: `None` where the value
/// does not have the struct's shape (a wrong kind, text that is not UTF-8, a field twice). A struct can
/// also be written as the list of its fields in order (serde's rule, which the decoder keeps): missing
/// ones take their defaults, and more than the struct has is an error.
fn typed_from_tree<'a>(value: &Value<'a>) -> Option<Typed<'a>> {
    fn texts<'a>(value: &Value<'a>) -> Option<Vec<&'a str>> {
        value.as_list()?.iter().map(Value::as_str).collect()
    }
    fn inner<'a>(value: &Value<'a>) -> Option<Inner<'a>> {
        if let Some([length, path]) = value.as_list() {
            return Some(Inner {
                length: u64::try_from(length.as_int()?).ok()?,
                path: texts(path)?,
            });
        }
        let (mut length, mut path) = (None, None);
        for (key, value) in value.as_dict()? {
            match *key {
                b"length" if length.is_none() => {
                    length = Some(u64::try_from(value.as_int()?).ok()?)
                }
                b"path" if path.is_none() => path = Some(texts(value)?),
                b"length" | b"path" => return None,
                _ => {}
            }
        }
        Some(Inner {
            length: length?,
            path: path?,
        })
    }
    /// Sets field `key` of `typed` from `value`; `None` if the value has the wrong shape.
    fn set<'a>(typed: &mut Typed<'a>, key: &[u8], value: &Value<'a>) -> Option<()> {
        match key {
            b"a" => typed.a = Some(value.as_str()?),
            b"b" => typed.b = Some(value.as_int()?),
            b"c" => typed.c = texts(value)?,
            b"d" => typed.d = value.as_list()?.iter().map(inner).collect::<Option<_>>()?,
            b"e" => typed.e = Some(serde_bytes::Bytes::new(value.as_bytes()?)),
            b"f" => typed.f = Some(u64::try_from(value.as_int()?).ok()?),
            _ => {}
        }
        Some(())
    }
    const FIELDS: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];
    let mut typed = Typed::default();
    if let Some(items) = value.as_list() {
        if items.len() > FIELDS.len() {
            return None;
        }
        for (key, value) in FIELDS.iter().zip(items) {
            set(&mut typed, key, value)?;
        }
        return Some(typed);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in value.as_dict()? {
        if FIELDS.contains(key) && !seen.insert(*key) {
            return None;
        }
        set(&mut typed, key, value)?;
    }
    Some(typed)
}

/// Text, sometimes with multi-byte characters, sometimes not UTF-8 at all.
fn text() -> impl Strategy<Value = OwnedValue> {
    prop_oneof![
        4 => "[a-z é€😀]{0,12}".prop_map(|s| OwnedValue::Bytes(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..6).prop_map(OwnedValue::Bytes),
    ]
}

/// A dictionary shaped like [`Typed`] most of the time, with the odd field of the wrong kind.
fn typed_value() -> impl Strategy<Value = OwnedValue> {
    let texts = prop::collection::vec(text(), 0..5)
        .prop_map(OwnedValue::List)
        .boxed();
    let int = prop_oneof![any::<i64>(), 0..1_000_000_000_000i64]
        .prop_map(OwnedValue::Int)
        .boxed();
    let inner = (int.clone(), texts.clone(), prop::option::of(owned_value())).prop_map(
        |(length, path, extra)| {
            let mut entries = vec![(b"length".to_vec(), length), (b"path".to_vec(), path)];
            entries.extend(extra.map(|extra| (b"z".to_vec(), extra)));
            OwnedValue::Dict(entries.into_iter().collect())
        },
    );
    let field = |right: BoxedStrategy<OwnedValue>| {
        prop::option::of(prop_oneof![8 => right, 1 => owned_value()])
    };
    (
        field(text().boxed()),
        field(int.clone()),
        field(texts),
        field(
            prop::collection::vec(inner, 0..4)
                .prop_map(OwnedValue::List)
                .boxed(),
        ),
        field(
            prop::collection::vec(any::<u8>(), 0..30)
                .prop_map(OwnedValue::Bytes)
                .boxed(),
        ),
        field(int),
        prop::option::of(owned_value()),
    )
        .prop_map(|(a, b, c, d, e, f, g)| {
            let entries = [
                ("a", a),
                ("b", b),
                ("c", c),
                ("d", d),
                ("e", e),
                ("f", f),
                ("g", g),
            ];
            OwnedValue::Dict(
                entries
                    .into_iter()
                    .filter_map(|(key, value)| Some((key.as_bytes().to_vec(), value?)))
                    .collect(),
            )
        })
}

/// Decodes `bytes` as a [`Typed`] and checks the answer against the tree decoder's.
fn check_typed(bytes: &[u8], options: &DecodeOptions) -> Result<(), TestCaseError> {
    let typed = from_bytes_with::<Typed<'_>>(bytes, options);
    match decode_with(bytes, options) {
        Ok(tree) => match typed_from_tree(&tree) {
            Some(expected) => prop_assert_eq!(typed.unwrap(), expected),
            None => prop_assert!(typed.is_err(), "accepted {:?}", typed),
        },
        Err(tree_err) => {
            let typed_err = typed.expect_err("malformed input accepted");
            // A type error can come first; a malformed input error is the tree decoder's, exactly.
            if !matches!(
                typed_err.kind(),
                ErrorKind::Custom(_) | ErrorKind::InvalidUtf8
            ) {
                prop_assert_eq!(typed_err, tree_err);
            }
        }
    }
    Ok(())
}

/// Structs written as lists (serde's positional form), which the property test reaches only when a
/// mutation turns the leading `d` into `l`; `le` is the case it found.
#[test]
fn typed_decoding_of_lists_agrees_with_the_tree() {
    for input in [
        &b"le"[..],
        b"l1:xe",
        b"l1:xi5ee",
        b"l1:xi5el1:yee",
        b"l1:xi5el1:yeli7el1:zeeee",
        b"li5ee",
        b"l1:xi5el1:yeleleeli1eee",
        b"l1:xi-1el1:yele3:abci2ei9ee",
    ] {
        for options in [DecodeOptions::strict(), DecodeOptions::lenient()] {
            check_typed(input, &options)
                .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(input)));
        }
    }
    assert_eq!(
        from_bytes::<Typed<'_>>(b"l1:xi5ee").unwrap(),
        Typed {
            a: Some("x"),
            b: Some(5),
            ..Typed::default()
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn typed_decoding_agrees_with_the_tree(
        value in typed_value(),
        mutation in prop::option::of((
            any::<prop::sample::Index>(),
            prop::sample::select(b"0123456789ilde:-x\xff".to_vec()),
        )),
    ) {
        let mut bytes = value.to_bytes();
        if let Some((at, byte)) = mutation {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        check_typed(&bytes, &DecodeOptions::strict())?;
        check_typed(&bytes, &DecodeOptions::lenient())?;
    }

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
