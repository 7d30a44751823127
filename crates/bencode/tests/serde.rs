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

#[test]
fn values_of_another_kind_read_as_before() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair<'a> {
        a: i64,
        b: &'a str,
    }
    let err_at = |err: shoal_bencode::DecodeError| (err.to_string(), err.offset());
    // A struct can also be written as the list of its fields.
    assert_eq!(
        from_bytes::<Pair<'_>>(b"li1e1:xe").unwrap(),
        Pair { a: 1, b: "x" }
    );
    // Type errors say what was found and where.
    assert_eq!(
        err_at(from_bytes::<Vec<i64>>(b"d1:ai1ee").unwrap_err()),
        (
            "invalid bencode at byte 0: invalid type: map, expected a sequence".into(),
            0
        )
    );
    assert_eq!(
        err_at(from_bytes::<&str>(b"i5e").unwrap_err()),
        (
            "invalid bencode at byte 0: invalid type: integer `5`, expected a borrowed string"
                .into(),
            0
        )
    );
    assert_eq!(
        err_at(from_bytes::<i64>(b"3:abc").unwrap_err()),
        (
            "invalid bencode at byte 0: invalid type: byte array, expected i64".into(),
            0
        )
    );
    assert_eq!(
        from_bytes::<Pair<'_>>(b"d1:a3:abc1:b1:xe")
            .unwrap_err()
            .offset(),
        4
    );
    assert_eq!(
        from_bytes::<Pair<'_>>(b"d1:ai1e1:bi2ee")
            .unwrap_err()
            .offset(),
        10
    );
    assert_eq!(
        from_bytes::<Pair<'_>>(b"d1:ai1e1:bli2eee")
            .unwrap_err()
            .offset(),
        10
    );
    // Values the type cannot hold, and text that is not UTF-8.
    let err = from_bytes::<Pair<'_>>(b"d1:ai1e1:b1:\xffe").unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::InvalidUtf8, 10));
    assert_eq!(from_bytes::<u8>(b"i300e").unwrap_err().offset(), 0);
    assert_eq!(from_bytes::<u64>(b"i-1e").unwrap_err().offset(), 0);
    assert_eq!(from_bytes::<bool>(b"i2e").unwrap_err().offset(), 0);
}

#[test]
fn every_length_of_text_and_integer() {
    // Short values take a fast path, long or negative ones the careful one: both read the same.
    for len in [0, 1, 9, 10, 99, 100, 101, 1000, 40_000] {
        let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
        let bytes = to_bytes(&text).unwrap();
        assert_eq!(from_bytes::<&str>(&bytes).unwrap(), text);
        assert_eq!(from_bytes::<String>(&bytes).unwrap(), text);
    }
    for value in [
        0,
        1,
        -1,
        9,
        10,
        99,
        123_456_789,
        999_999_999_999_999,
        1_000_000_000_000_000,
        i64::MAX,
        i64::MIN,
    ] {
        let bytes = to_bytes(&value).unwrap();
        assert_eq!(from_bytes::<i64>(&bytes).unwrap(), value);
    }
    // Malformed numbers fail the same way on either path.
    for (input, kind, offset) in [
        (&b"03:abc"[..], ErrorKind::LeadingZero, 0),
        (b"5:abc", ErrorKind::LengthPastEnd(5), 0),
        (b"100:abc", ErrorKind::LengthPastEnd(100), 0),
        (b":abc", ErrorKind::UnexpectedByte(b':'), 0),
        (b"1", ErrorKind::UnexpectedEof, 1),
    ] {
        let err = from_bytes::<&str>(input).unwrap_err();
        assert_eq!((err.kind(), err.offset()), (&kind, offset), "{input:?}");
    }
    for (input, kind, offset) in [
        (&b"i03e"[..], ErrorKind::LeadingZero, 1),
        (b"i-0e", ErrorKind::NegativeZero, 2),
        (b"ie", ErrorKind::MissingDigits, 1),
        (b"i12", ErrorKind::UnexpectedEof, 3),
        (b"i1x2e", ErrorKind::UnexpectedByte(b'x'), 2),
        (b"i9223372036854775808e", ErrorKind::IntegerOverflow, 1),
        (b"i99999999999999999999e", ErrorKind::IntegerOverflow, 1),
    ] {
        let err = from_bytes::<i64>(input).unwrap_err();
        assert_eq!((err.kind(), err.offset()), (&kind, offset), "{input:?}");
    }
}

#[test]
fn text_is_checked_across_windows() {
    // Text with multi-byte characters between blobs that are not UTF-8, over a few hundred kilobytes:
    // the UTF-8 check covers stretches of input at a time, and must start again past each blob and
    // end on the right character wherever a stretch stops.
    let pieces = ["a", "é", "€", "😀", "xyz"];
    let mut expected = Vec::new();
    for i in 0..6_000usize {
        let len = if i % 97 == 0 { 300 + i % 500 } else { i % 40 };
        let text: String = pieces
            .iter()
            .cycle()
            .skip(i % 5)
            .take(len)
            .copied()
            .collect();
        let blob: Vec<u8> = (0..i % 7).map(|j| 0x80 | (i + j) as u8).collect();
        expected.push((blob, text));
    }
    let encoded = OwnedValue::List(
        expected
            .iter()
            .map(|(blob, text)| {
                OwnedValue::List(vec![
                    OwnedValue::Bytes(blob.clone()),
                    OwnedValue::from(text.as_str()),
                ])
            })
            .collect(),
    )
    .to_bytes();
    assert!(encoded.len() > 200_000);
    let decoded: Vec<(&serde_bytes::Bytes, &str)> = from_bytes(&encoded).unwrap();
    assert_eq!(decoded.len(), expected.len());
    for ((blob, text), (want_blob, want_text)) in decoded.iter().zip(&expected) {
        assert_eq!((&blob[..], *text), (&want_blob[..], want_text.as_str()));
    }
    // A text value that stops inside a character is refused, at its own offset.
    let mut bad = b"l".to_vec();
    let mut offset = 0;
    for i in 0..2_000 {
        if i == 1_500 {
            offset = bad.len();
            bad.extend_from_slice(b"3:ab\xc3");
        }
        bad.extend_from_slice("2:é".as_bytes());
    }
    bad.extend_from_slice(b"1:xe");
    let err = from_bytes::<Vec<&str>>(&bad).unwrap_err();
    assert_eq!(
        (err.kind(), err.offset()),
        (&ErrorKind::InvalidUtf8, offset)
    );
    // So is one whose character runs on into the next value's bytes.
    let err = from_bytes::<(&str, &serde_bytes::Bytes)>(b"l1:\xc32:\xa9ae").unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::InvalidUtf8, 1));
}

#[test]
fn short_lists_of_text_come_with_their_length() {
    /// The size hint a list gives before its first item and after it, and its length.
    #[derive(Debug, PartialEq)]
    struct Hints(Option<usize>, Option<usize>, usize);
    impl<'de> Deserialize<'de> for Hints {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Hints;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a list")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Hints, A::Error> {
                    let first = seq.size_hint();
                    let mut len = 0;
                    let mut second = None;
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        len += 1;
                        if len == 1 {
                            second = seq.size_hint();
                        }
                    }
                    Ok(Hints(first, second, len))
                }
            }
            deserializer.deserialize_seq(Visitor)
        }
    }
    // The input must leave room for the look ahead; what follows the list does not matter to it.
    let hints = |list: &[u8]| {
        let padded = [b"l".as_slice(), list, b"l", &b"i0e".repeat(50), b"ee"].concat();
        from_bytes::<(Hints, serde::de::IgnoredAny)>(&padded)
            .unwrap()
            .0
    };
    assert_eq!(hints(b"le"), Hints(Some(0), None, 0));
    assert_eq!(hints(b"l1:ae"), Hints(Some(1), Some(0), 1));
    assert_eq!(hints(b"l1:a0:2:bce"), Hints(Some(3), Some(2), 3));
    let long_text = format!("l99:{}e", "x".repeat(99));
    assert_eq!(hints(long_text.as_bytes()), Hints(Some(1), Some(0), 1));
    // Anything else comes without: longer text, other values, long lists, too little input left. (The
    // hint is for what is left: once past those items, it is back.)
    let longer_text = format!("l100:{}e", "x".repeat(100));
    assert_eq!(hints(longer_text.as_bytes()), Hints(None, Some(0), 1));
    assert_eq!(hints(b"li1e1:ae"), Hints(None, Some(1), 2));
    assert_eq!(hints(b"l1:alee"), Hints(None, None, 2));
    let many = [b"l".as_slice(), &b"1:a".repeat(60), b"e"].concat();
    assert_eq!(hints(&many), Hints(None, None, 60));
    assert_eq!(
        from_bytes::<Hints>(b"l1:a1:be").unwrap(),
        Hints(None, None, 2)
    );
    // A vector of text is then allocated at its final size.
    let input = [
        b"ll3:dir3:sub8:file.txtel".as_slice(),
        &b"i0e".repeat(50),
        b"ee",
    ]
    .concat();
    let (path, _): (Vec<&str>, serde::de::IgnoredAny) = from_bytes(&input).unwrap();
    assert_eq!(path, ["dir", "sub", "file.txt"]);
    assert_eq!(path.capacity(), 3);
}

#[test]
fn token_limit_on_the_fast_paths() {
    let options = |max_tokens| DecodeOptions {
        max_tokens,
        ..DecodeOptions::strict()
    };
    let err = from_bytes_with::<Vec<&str>>(b"l1:a1:b1:ce", &options(3)).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::TokenLimit(3), 7));
    assert!(from_bytes_with::<Vec<&str>>(b"l1:a1:be", &options(3)).is_ok());
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Two<'a> {
        a: &'a str,
        b: i64,
    }
    let err = from_bytes_with::<Two<'_>>(b"d1:a1:x1:bi5ee", &options(2)).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::TokenLimit(2), 10));
    assert!(from_bytes_with::<Two<'_>>(b"d1:a1:x1:bi5ee", &options(3)).is_ok());
}

#[test]
fn errors_debug_as_kind_and_offset() {
    let err = from_bytes::<i64>(b"i03e").unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        "DecodeError { kind: LeadingZero, offset: Some(1) }"
    );
}
