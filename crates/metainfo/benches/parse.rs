//! Parsing a 10,000-file torrent: shoal-metainfo against lava_torrent (`cargo xtask bench metainfo`
//! prints the ratio).

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use shoal_bencode::OwnedValue;

/// A v1 torrent of 10,000 files in 100 directories, 256 KiB pieces, with trackers and web seeds.
fn big_torrent() -> Vec<u8> {
    let key = |k: &str| k.as_bytes().to_vec();
    let mut files = Vec::new();
    let mut total = 0u64;
    for i in 0..10_000u64 {
        let length = 50_000 + i * 37 % 100_000;
        total += length;
        let path = OwnedValue::List(vec![
            OwnedValue::from(format!("directory {:03}", i / 100).as_str()),
            OwnedValue::from(format!("file number {i:05} with a longer name.dat").as_str()),
        ]);
        let mut entry = BTreeMap::new();
        entry.insert(key("length"), OwnedValue::Int(length as i64));
        entry.insert(key("path"), path);
        files.push(OwnedValue::Dict(entry));
    }
    let piece_length = 256 * 1024;
    let pieces = total.div_ceil(piece_length) as usize;
    let mut info = BTreeMap::new();
    info.insert(key("files"), OwnedValue::List(files));
    info.insert(key("name"), OwnedValue::from("ten thousand files"));
    info.insert(key("piece length"), OwnedValue::Int(piece_length as i64));
    info.insert(
        key("pieces"),
        OwnedValue::Bytes((0..pieces * 20).map(|i| (i * 7) as u8).collect()),
    );
    let mut root = BTreeMap::new();
    root.insert(
        key("announce"),
        OwnedValue::from("http://127.0.0.1:6969/announce"),
    );
    root.insert(
        key("announce-list"),
        OwnedValue::List(vec![OwnedValue::List(vec![
            OwnedValue::from("http://127.0.0.1:6969/announce"),
            OwnedValue::from("udp://127.0.0.1:6969"),
        ])]),
    );
    root.insert(key("comment"), OwnedValue::from("benchmark"));
    root.insert(key("creation date"), OwnedValue::Int(1_700_000_000));
    root.insert(key("info"), OwnedValue::Dict(info));
    root.insert(
        key("url-list"),
        OwnedValue::List(vec![OwnedValue::from("http://127.0.0.1/ws/")]),
    );
    OwnedValue::Dict(root).to_bytes()
}

fn parse(c: &mut Criterion) {
    let bytes = big_torrent();
    // Both must accept it and see the same files.
    let ours = shoal_metainfo::Metainfo::from_bytes(&bytes).unwrap();
    let theirs = lava_torrent::torrent::v1::Torrent::read_from_bytes(&bytes).unwrap();
    assert_eq!(ours.info.files.len(), theirs.files.as_ref().unwrap().len());
    assert_eq!(ours.info.total_size(), theirs.length as u64);

    let mut group = c.benchmark_group("metainfo-parse");
    group.bench_function("shoal", |b| {
        b.iter(|| shoal_metainfo::Metainfo::from_bytes(std::hint::black_box(&bytes)).unwrap())
    });
    group.bench_function("lava_torrent", |b| {
        b.iter(|| {
            lava_torrent::torrent::v1::Torrent::read_from_bytes(std::hint::black_box(&bytes))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
