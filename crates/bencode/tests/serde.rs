//! serde: derive round trips, borrowing, canonical output, and typed errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shoal_bencode::{
    DecodeOptions, EncodeError, ErrorKind, OwnedValue, from_bytes, from_bytes_with, to_bytes,
};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Torrent<'a> {
    announce: &'a str,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    #[serde(borrow)]
    info: Info<'a>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Info<'a> {
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u32,
    #[serde(with = "serde_bytes")]
    pieces: &'a [u8],
    private: Option<bool>,
    #[serde(default)]
    files: Vec<File<'a>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct File<'a> {
    length: u64,
    #[serde(borrow)]
    path: Vec<&'a str>,
}

fn sample() -> Torrent<'static> {
    Torrent {
        announce: "http://127.0.0.1:6969/announce",
        creation_date: None,
        info: Info {
            name: "dir".into(),
            piece_length: 16384,
            pieces: &[7; 20],
            private: Some(true),
            files: vec![File {
                length: 3,
                path: vec!["a", "b.txt"],
            }],
        },
    }
}

#[test]
fn struct_round_trip_is_canonical_and_borrows() {
    let bytes = to_bytes(&sample()).unwrap();
    // Keys sorted as raw bytes ("piece length" < "pieces" < "private"); the None field left out.
    let expected = [
        &b"d8:announce30:http://127.0.0.1:6969/announce4:infod5:filesld6:lengthi3e4:pathl1:a5:b.txteee"[..],
        b"4:name3:dir12:piece lengthi16384e6:pieces20:",
        &[7; 20],
        b"7:privatei1eee",
    ]
    .concat();
    assert_eq!(bytes, expected);
    let back: Torrent<'_> = from_bytes(&bytes).unwrap();
    assert_eq!(back, sample());
    // Zero-copy: the borrowed fields point into the input.
    let range = bytes.as_ptr_range();
    assert!(range.contains(&back.info.pieces.as_ptr()));
    assert!(range.contains(&back.announce.as_ptr()));
    // And the generic decoder agrees it is canonical.
    assert!(shoal_bencode::decode(&bytes).is_ok());
}

#[test]
fn unknown_fields_are_skipped_but_validated() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Small {
        b: i64,
    }
    let small: Small = from_bytes(b"d1:ali1ed1:xi2eee1:bi3e1:ci4ee").unwrap();
    assert_eq!(small, Small { b: 3 });
    // A skipped value is still checked: unsorted keys inside it are an error in strict mode.
    let err = from_bytes::<Small>(b"d1:ad1:yi1e1:xi2ee1:bi3ee").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::UnsortedKeys);
}

#[test]
fn strict_and_lenient_key_order() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair {
        a: i64,
        b: i64,
    }
    let unsorted = b"d1:bi2e1:ai1ee";
    let err = from_bytes::<Pair>(unsorted).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::UnsortedKeys, 7));
    let pair: Pair = from_bytes_with(unsorted, &DecodeOptions::lenient()).unwrap();
    assert_eq!(pair, Pair { a: 1, b: 2 });
}

#[test]
fn type_errors_name_the_problem_and_the_offset() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Port {
        port: u16,
    }
    let err = from_bytes::<Port>(b"d4:porti70000ee").unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Custom(m) if m.contains("70000")),
        "{err}"
    );
    assert_eq!(err.offset(), 7, "the offset of the integer");
    let err = from_bytes::<Port>(b"de").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bencode at byte 0: missing field `port`"
    );
    let err = from_bytes::<String>(b"2:\xff\xfe").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidUtf8);
    let err = from_bytes::<f64>(b"i1e").unwrap_err();
    assert!(err.to_string().contains("floating-point"));
    let err = from_bytes::<(i64,)>(b"li1ei2ee").unwrap_err();
    assert!(err.to_string().contains("more items"), "{err}");
}

#[test]
fn enums_options_and_maps() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Event {
        Started,
        Progress(u32),
        Peer { port: u16 },
        Pair(i64, i64),
    }
    for event in [
        Event::Started,
        Event::Progress(5),
        Event::Peer { port: 1 },
        Event::Pair(1, 2),
    ] {
        let bytes = to_bytes(&event).unwrap();
        assert_eq!(from_bytes::<Event>(&bytes).unwrap(), event);
    }
    assert_eq!(to_bytes(&Event::Started).unwrap(), b"7:Started");
    assert_eq!(to_bytes(&Event::Progress(5)).unwrap(), b"d8:Progressi5ee");
    assert_eq!(to_bytes(&Event::Pair(1, 2)).unwrap(), b"d4:Pairli1ei2eee");

    let mut map = BTreeMap::new();
    map.insert("zeta".to_string(), 1);
    map.insert("alpha".to_string(), 2);
    let bytes = to_bytes(&map).unwrap();
    assert_eq!(bytes, b"d5:alphai2e4:zetai1ee");
    assert_eq!(from_bytes::<BTreeMap<String, i64>>(&bytes).unwrap(), map);
    assert!(from_bytes::<bool>(b"i1e").unwrap());
}

#[test]
fn unrepresentable_values_are_encode_errors() {
    assert_eq!(
        to_bytes(&1.5f64),
        Err(EncodeError::Unsupported("floating-point numbers"))
    );
    assert_eq!(to_bytes(&()), Err(EncodeError::Unsupported("unit")));
    assert_eq!(
        to_bytes(&vec![Some(1), None]),
        Err(EncodeError::Unsupported("None in a list"))
    );
    assert_eq!(
        to_bytes(&None::<i64>),
        Err(EncodeError::Unsupported("a lone None"))
    );
    assert_eq!(
        to_bytes(&u64::MAX),
        Err(EncodeError::Unsupported("an integer above i64::MAX"))
    );
    let mut map = BTreeMap::new();
    map.insert(1, 2);
    assert_eq!(to_bytes(&map), Err(EncodeError::NonStringKey));
}

#[test]
fn owned_value_through_serde() {
    let bytes = b"d1:ali1e2:xye1:bi-5ee";
    let owned: OwnedValue = from_bytes(bytes).unwrap();
    assert_eq!(
        owned,
        shoal_bencode::decode(bytes).unwrap().to_owned_value()
    );
    assert_eq!(to_bytes(&owned).unwrap(), bytes);
    assert_eq!(owned.to_bytes(), bytes);
}

#[test]
fn serde_limits_hold() {
    let deep = [vec![b'l'; 1000], vec![b'e'; 1000]].concat();
    let err = from_bytes::<OwnedValue>(&deep).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::DepthLimit(64));
    let err = from_bytes::<serde::de::IgnoredAny>(&deep).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::DepthLimit(64));
    let options = DecodeOptions {
        max_tokens: 3,
        ..DecodeOptions::strict()
    };
    let err = from_bytes_with::<Vec<i64>>(b"li1ei2ei3ee", &options).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenLimit(3));
}
