//! Decodes a stream of `piece` messages (16 KiB blocks) fed in 64 KiB reads, as a socket would deliver
//! them, and reports bytes per second.
//!
//! Group `wire_decode`, functions:
//! - `piece_stream_64k_reads`: `MessageDecoder::handle_bytes` for each read (one copy into the decoder's
//!   buffer, as a read syscall would make) then `poll_message` until it needs more; blocks are handed out
//!   as `Bytes` views, never copied.
//! - `piece_stream_read_buf`: the same stream read straight into `MessageDecoder::buffer_mut`, the way a
//!   driver using `AsyncReadExt::read_buf` does, through the `tokio_util` codec's decode path.
//!
//! `cargo xtask bench wire` runs this and prints GB/s.

use std::hint::black_box;

use bytes::BufMut as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_wire::{BLOCK_LEN, Block, DecoderConfig, Message, MessageDecoder, PieceIndex};
use tokio_util::codec::Decoder as _;

/// 4 MiB of blocks (256 piece messages), deterministic contents.
fn piece_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for i in 0..256u32 {
        let data: Vec<u8> = (0..BLOCK_LEN).map(|j| (i ^ j) as u8).collect();
        Message::Piece(Block {
            piece: PieceIndex(i / 16),
            offset: (i % 16) * BLOCK_LEN,
            data: data.into(),
        })
        .encode_into(&mut stream);
    }
    stream
}

const READ_LEN: usize = 64 * 1024;

fn config() -> DecoderConfig {
    DecoderConfig {
        n_pieces: Some(16),
        ..DecoderConfig::default()
    }
}

fn decode(c: &mut Criterion) {
    let stream = piece_stream();
    let mut group = c.benchmark_group("wire_decode");
    group.throughput(Throughput::Bytes(stream.len() as u64));

    let mut decoder = MessageDecoder::new(config());
    group.bench_function("piece_stream_64k_reads", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for read in stream.chunks(READ_LEN) {
                decoder.handle_bytes(read);
                while let Some(message) = decoder.poll_message().unwrap() {
                    if let Message::Piece(block) = message {
                        bytes += block.data.len();
                        black_box(&block.data);
                    }
                }
            }
            assert_eq!(bytes, 256 * BLOCK_LEN as usize);
        })
    });

    let mut codec = shoal_wire::MessageCodec::new(config());
    let mut buf = bytes::BytesMut::with_capacity(2 * READ_LEN);
    group.bench_function("piece_stream_read_buf", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for read in stream.chunks(READ_LEN) {
                buf.reserve(READ_LEN);
                buf.put_slice(read); // what the kernel's copy into the read buffer amounts to
                while let Some(message) = codec.decode(&mut buf).unwrap() {
                    if let Message::Piece(block) = message {
                        bytes += block.data.len();
                        black_box(&block.data);
                    }
                }
            }
            assert_eq!(bytes, 256 * BLOCK_LEN as usize);
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
