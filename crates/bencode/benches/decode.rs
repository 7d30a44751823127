//! Decode a large realistic torrent (10,000 files, 40,000 pieces, about 1.65 MB) with shoal-bencode and the
//! crates people would otherwise pick, like for like:
//! - `generic`: into each crate's borrowed (or, for serde_bencode, owned) dynamic value;
//! - `typed`: into a torrent struct through serde, borrowing fields where the crate allows.
//!
//! `cargo xtask bench bencode` runs this and prints the time ratios.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Deserialize;

/// Builds the benchmark torrent: deterministic, canonical, shaped like a big multi-file release.
fn large_torrent() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut files = Vec::with_capacity(10_000);
    for i in 0..10_000u64 {
        let length = next() % 300_000_000 + 1;
        let path = vec![
            format!("Part {:02}", i % 37),
            format!("Season {}", i % 11),
            format!("episode_{i:05} {:x} final cut.mkv", next() % 0xffff),
        ];
        files.push((length, path));
    }
    let pieces: Vec<u8> = (0..40_000 * 20).map(|_| next() as u8).collect();

    use shoal_bencode::OwnedValue as V;
    let bytes = |s: &str| V::Bytes(s.as_bytes().to_vec());
    let dict = |entries: Vec<(&str, V)>| {
        V::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    };
    let file_list = files
        .into_iter()
        .map(|(length, path)| {
            dict(vec![
                ("length", V::Int(length as i64)),
                ("path", V::List(path.iter().map(|p| bytes(p)).collect())),
            ])
        })
        .collect();
    let info = dict(vec![
        ("files", V::List(file_list)),
        ("name", bytes("The Big Collection")),
        ("piece length", V::Int(4 << 20)),
        ("pieces", V::Bytes(pieces)),
    ]);
    dict(vec![
        (
            "announce",
            bytes("http://tracker.example.org:6969/announce"),
        ),
        (
            "announce-list",
            V::List(vec![
                V::List(vec![bytes("http://tracker.example.org:6969/announce")]),
                V::List(vec![bytes("udp://tracker.example.net:1337/announce")]),
            ]),
        ),
        (
            "comment",
            bytes("A large multi-file torrent for benchmarks"),
        ),
        ("created by", bytes("shoal bench")),
        ("creation date", V::Int(1_700_000_000)),
        ("info", info),
    ])
    .to_bytes()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Torrent<'a> {
    #[serde(borrow)]
    announce: &'a str,
    #[serde(rename = "announce-list", borrow)]
    announce_list: Vec<Vec<&'a str>>,
    #[serde(borrow)]
    comment: &'a str,
    #[serde(rename = "created by", borrow)]
    created_by: &'a str,
    #[serde(rename = "creation date")]
    creation_date: i64,
    #[serde(borrow)]
    info: Info<'a>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Info<'a> {
    #[serde(borrow)]
    files: Vec<File<'a>>,
    #[serde(borrow)]
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(borrow)]
    pieces: &'a [u8],
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct File<'a> {
    length: u64,
    #[serde(borrow)]
    path: Vec<&'a str>,
}

/// serde_bencode cannot lend strings from its input, so its struct owns them.
#[derive(Deserialize)]
#[allow(dead_code)]
struct OwnedTorrent {
    announce: String,
    #[serde(rename = "announce-list")]
    announce_list: Vec<Vec<String>>,
    comment: String,
    #[serde(rename = "created by")]
    created_by: String,
    #[serde(rename = "creation date")]
    creation_date: i64,
    info: OwnedInfo,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OwnedInfo {
    files: Vec<OwnedFile>,
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(with = "serde_bytes")]
    pieces: Vec<u8>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OwnedFile {
    length: u64,
    path: Vec<String>,
}

fn files_in(torrent: &Torrent<'_>) -> usize {
    torrent.info.files.len()
}

fn benches(c: &mut Criterion) {
    let input = large_torrent();
    let input = input.as_slice();
    assert!(
        (1_500_000..1_800_000).contains(&input.len()),
        "torrent is {} bytes",
        input.len()
    );

    // Every contestant must actually decode the input before it is timed.
    let ours = shoal_bencode::decode(input).unwrap();
    assert_eq!(
        ours.get(b"info")
            .unwrap()
            .get(b"files")
            .unwrap()
            .as_list()
            .unwrap()
            .len(),
        10_000
    );
    assert_eq!(
        files_in(&shoal_bencode::from_bytes::<Torrent<'_>>(input).unwrap()),
        10_000
    );
    assert_eq!(
        files_in(&librqbit_bencode::from_bytes::<Torrent<'_>>(input).unwrap()),
        10_000
    );
    assert_eq!(
        serde_bencode::from_bytes::<OwnedTorrent>(input)
            .unwrap()
            .info
            .files
            .len(),
        10_000
    );

    let mut generic = c.benchmark_group("generic");
    generic
        .measurement_time(Duration::from_secs(4))
        .sample_size(60);
    generic.bench_function("shoal", |b| {
        b.iter(|| shoal_bencode::decode(black_box(input)).unwrap())
    });
    generic.bench_function("bendy", |b| {
        b.iter(|| {
            use bendy::decoding::FromBencode;
            let mut decoder = bendy::decoding::Decoder::new(black_box(input)).with_max_depth(64);
            let object = decoder.next_object().unwrap().unwrap();
            bendy::value::Value::decode_bencode_object(object).unwrap()
        })
    });
    generic.bench_function("librqbit-bencode", |b| {
        b.iter(|| {
            librqbit_bencode::dyn_from_bytes::<librqbit_bencode::ByteBuf<'_>>(black_box(input))
                .unwrap()
        })
    });
    generic.bench_function("serde_bencode", |b| {
        b.iter(|| {
            serde_bencode::from_bytes::<serde_bencode::value::Value>(black_box(input)).unwrap()
        })
    });
    generic.finish();

    let mut typed = c.benchmark_group("typed");
    typed
        .measurement_time(Duration::from_secs(4))
        .sample_size(60);
    typed.bench_function("shoal", |b| {
        b.iter(|| shoal_bencode::from_bytes::<Torrent<'_>>(black_box(input)).unwrap())
    });
    typed.bench_function("librqbit-bencode", |b| {
        b.iter(|| librqbit_bencode::from_bytes::<Torrent<'_>>(black_box(input)).unwrap())
    });
    typed.bench_function("serde_bencode", |b| {
        b.iter(|| serde_bencode::from_bytes::<OwnedTorrent>(black_box(input)).unwrap())
    });
    typed.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
