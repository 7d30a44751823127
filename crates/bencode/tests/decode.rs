//! Decoding: every error kind with its offset, strict and lenient modes, limits, raw spans.

use shoal_bencode::{DecodeOptions, ErrorKind, Kind, decode, decode_prefix, decode_with};

/// Decodes `input` strictly and checks the error kind and offset.
fn check_err(input: &[u8], kind: ErrorKind, offset: usize) {
    let err = decode(input).expect_err(&String::from_utf8_lossy(input));
    assert_eq!(
        (err.kind(), err.offset()),
        (&kind, offset),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn every_error_kind_with_its_offset() {
    check_err(b"", ErrorKind::UnexpectedEof, 0);
    check_err(b"i42", ErrorKind::UnexpectedEof, 3);
    check_err(b"l", ErrorKind::UnexpectedEof, 1);
    check_err(b"4:abc", ErrorKind::LengthPastEnd(4), 0);
    check_err(b"x", ErrorKind::UnexpectedByte(b'x'), 0);
    check_err(b"i4x2e", ErrorKind::UnexpectedByte(b'x'), 2);
    check_err(b"e", ErrorKind::UnexpectedByte(b'e'), 0);
    check_err(b"ie", ErrorKind::MissingDigits, 1);
    check_err(b"i-e", ErrorKind::MissingDigits, 2);
    check_err(b"l:abce", ErrorKind::UnexpectedByte(b':'), 1);
    check_err(b"i03e", ErrorKind::LeadingZero, 1);
    check_err(b"i-03e", ErrorKind::LeadingZero, 2);
    check_err(b"03:abc", ErrorKind::LeadingZero, 0);
    check_err(b"i-0e", ErrorKind::NegativeZero, 2);
    check_err(b"i9223372036854775808e", ErrorKind::IntegerOverflow, 1);
    check_err(b"i-9223372036854775809e", ErrorKind::IntegerOverflow, 2);
    check_err(b"i99999999999999999999e", ErrorKind::IntegerOverflow, 1);
    check_err(b"99999999999999999999:", ErrorKind::IntegerOverflow, 0);
    check_err(b"d1:ai1ee1", ErrorKind::TrailingBytes, 8);
    check_err(b"i1ei2e", ErrorKind::TrailingBytes, 3);
    check_err(b"di1ei2ee", ErrorKind::NonStringKey, 1);
    check_err(b"dlei2ee", ErrorKind::NonStringKey, 1);
    check_err(b"d1:bi1e1:ai2ee", ErrorKind::UnsortedKeys, 7);
    check_err(b"d1:ai1e1:ai2ee", ErrorKind::DuplicateKey, 7);
    // A key with no value, and a stray end inside a dictionary.
    check_err(b"d1:ae", ErrorKind::UnexpectedByte(b'e'), 4);
}

#[test]
fn errors_display_as_one_line() {
    let err = decode(b"d1:bi1e1:ai2ee").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bencode at byte 7: dictionary keys are not sorted"
    );
    let err = decode(b"\x01").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bencode at byte 0: unexpected byte 0x01"
    );
    let err = decode(b"123456789123:x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bencode at byte 0: byte string of length 123456789123 runs past the end of the input"
    );
}

#[test]
fn integer_extremes() {
    assert_eq!(
        decode(b"i9223372036854775807e").unwrap().as_int(),
        Some(i64::MAX)
    );
    assert_eq!(
        decode(b"i-9223372036854775808e").unwrap().as_int(),
        Some(i64::MIN)
    );
    assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
    assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));
}

#[test]
fn lenient_accepts_unsorted_and_duplicate_keys() {
    let lenient = DecodeOptions::lenient();
    let value = decode_with(b"d1:bi1e1:ai2e1:ai3ee", &lenient).unwrap();
    let keys: Vec<&[u8]> = value.as_dict().unwrap().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, [&b"b"[..], b"a", b"a"], "input order is kept");
    assert_eq!(
        value.get(b"a").unwrap().as_int(),
        Some(2),
        "first entry wins"
    );
    // Lenient is not sloppy about anything else.
    assert_eq!(
        decode_with(b"i03e", &lenient).unwrap_err().kind(),
        &ErrorKind::LeadingZero
    );
    assert_eq!(
        decode_with(b"i1ex", &lenient).unwrap_err().kind(),
        &ErrorKind::TrailingBytes
    );
}

#[test]
fn depth_limit_at_and_past_the_limit() {
    let options = DecodeOptions {
        max_depth: 3,
        ..DecodeOptions::strict()
    };
    assert!(decode_with(b"llleee", &options).is_ok());
    let err = decode_with(b"lllleeee", &options).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::DepthLimit(3), 3));
    // Hostile nesting far past the default limit fails fast, without using the call stack.
    let deep = [vec![b'l'; 100_000], vec![b'e'; 100_000]].concat();
    let err = decode(&deep).unwrap_err();
    assert_eq!(
        (err.kind(), err.offset()),
        (&ErrorKind::DepthLimit(DecodeOptions::DEFAULT_MAX_DEPTH), 64)
    );
    let deep_dicts = b"d1:a".repeat(100_000);
    assert_eq!(
        decode(&deep_dicts).unwrap_err().kind(),
        &ErrorKind::DepthLimit(64)
    );
}

#[test]
fn token_limit_at_and_past_the_limit() {
    let options = DecodeOptions {
        max_tokens: 4,
        ..DecodeOptions::strict()
    };
    assert!(decode_with(b"li1ei2ei3ee", &options).is_ok()); // the list and three integers
    let err = decode_with(b"li1ei2ei3ei4ee", &options).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&ErrorKind::TokenLimit(4), 10));
    // Millions of tiny values stop at the default limit.
    let many = [b"l".to_vec(), b"i0e".repeat(2_500_000), b"e".to_vec()].concat();
    assert_eq!(
        decode(&many).unwrap_err().kind(),
        &ErrorKind::TokenLimit(DecodeOptions::DEFAULT_MAX_TOKENS)
    );
}

#[test]
fn raw_spans_are_the_exact_input_bytes() {
    let input = b"d4:infod6:lengthi5e4:name1:xe5:otherli1e2:abee";
    let value = decode(input).unwrap();
    assert_eq!(value.raw(), input);
    assert_eq!(value.get(b"info").unwrap().raw(), b"d6:lengthi5e4:name1:xe");
    let other = value.get(b"other").unwrap();
    assert_eq!(other.raw(), b"li1e2:abe");
    let items = other.as_list().unwrap();
    assert_eq!(items[0].raw(), b"i1e");
    assert_eq!(items[1].raw(), b"2:ab");
    assert!(matches!(items[1].kind(), Kind::Bytes(b"ab")));
}

#[test]
fn prefix_reports_the_bytes_used() {
    let (value, used) = decode_prefix(b"li1eeTAIL", &DecodeOptions::strict()).unwrap();
    assert_eq!(value.as_list().unwrap().len(), 1);
    assert_eq!(used, 5);
}

#[test]
fn accessors_reject_other_kinds() {
    let value = decode(b"li1e2:\xff\xffe").unwrap();
    let items = value.as_list().unwrap();
    assert_eq!(items[0].as_bytes(), None);
    assert_eq!(items[1].as_int(), None);
    assert_eq!(items[1].as_str(), None, "not UTF-8");
    assert_eq!(value.get(b"x"), None, "not a dictionary");
    assert_eq!(value.as_dict(), None);
}
