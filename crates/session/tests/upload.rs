//! Serving blocks: a `cancel` withdraws a block that has not gone out yet (BEP 3), and the upload
//! counters (what the stats show and the trackers are told) count the blocks written to the socket, not
//! the blocks queued for it.

mod common;

use std::time::{Duration, Instant};

use common::fake_peer::{FakePeer, Payload, fake_id, stats_where};
use shoal_session::{Session, SessionConfig, TorrentHandle};
use shoal_wire::{BLOCK_LEN, BlockRef, Message, PieceIndex};

/// 1 MiB in 64 KiB pieces: 16 pieces of 4 blocks.
const PAYLOAD_LEN: u32 = 1 << 20;
const PIECE_LEN: u32 = 64 * 1024;
/// The seeder's upload limit: the first 64 KiB go out as a burst, then two blocks a second, so most of
/// what the fake asks for is still queued when its cancels arrive.
const UPLOAD_LIMIT: u64 = 32 * 1024;

/// A seeder of a fresh payload under [`UPLOAD_LIMIT`] (session seed `seed`), and a fake peer it has
/// unchoked.
async fn unchoked_fake(seed: u64) -> (Payload, Session, TorrentHandle, FakePeer) {
    let payload = Payload::new(PAYLOAD_LEN, PIECE_LEN, seed);
    let config = SessionConfig {
        upload_limit: Some(UPLOAD_LIMIT),
        ..common::loopback(seed)
    };
    let (session, handle) = payload.seed(config).await;
    let mut fake = FakePeer::dial(session.local_addr(), payload.target(), fake_id(1)).await;
    fake.greet().await;
    fake.send([Message::Interested]).await.unwrap();
    fake.recv_until(|m| *m == Message::Unchoke)
        .await
        .expect("an interested peer is unchoked while slots are free");
    (payload, session, handle, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_blocks_are_withdrawn_and_only_written_blocks_count_as_uploaded() {
    let (payload, session, handle, mut fake) = unchoked_fake(171).await;

    // Every block of the first 8 pieces; once the first block is in, a cancel for each.
    let blocks: Vec<BlockRef> = (0..8)
        .flat_map(|piece| {
            (0..PIECE_LEN / BLOCK_LEN).map(move |i| BlockRef {
                piece: PieceIndex(piece),
                offset: i * BLOCK_LEN,
                len: BLOCK_LEN,
            })
        })
        .collect();
    fake.send(blocks.iter().map(|b| Message::Request(*b)))
        .await
        .unwrap();
    let asked = Instant::now();
    let mut messages = fake
        .recv_until(|m| matches!(m, Message::Piece(_)))
        .await
        .expect("the first block");
    // The limit lets the first blocks go at once, and a block waiting for the limit does not hold
    // back those already read from disk (they used to go out 256 KiB at a time: 8 s at this limit).
    let first_after = asked.elapsed();
    assert!(
        first_after < Duration::from_secs(3),
        "the first block took {first_after:?}"
    );
    fake.send(blocks.iter().map(|b| Message::Cancel(*b)))
        .await
        .unwrap();
    // Everything the engine sent before answering the ping: the blocks that went out before their
    // cancel arrived.
    messages.extend(fake.ping().await.expect("still connected"));
    let mut received = Vec::new();
    for message in messages {
        if let Message::Piece(block) = message {
            assert_eq!(
                &block.data[..],
                payload.block(block.piece.0, block.offset, BLOCK_LEN),
                "piece {} offset {}",
                block.piece.0,
                block.offset
            );
            received.push(block);
        }
    }
    println!(
        "{} of {} blocks went out before their cancels",
        received.len(),
        blocks.len()
    );
    assert!(
        received.len() < blocks.len() / 2,
        "{} of {} blocks went out despite their cancels",
        received.len(),
        blocks.len()
    );

    // Nothing withdrawn goes out later: a second ping, two seconds on (room for four more blocks
    // under the limit), finds no blocks before it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = fake.ping().await.expect("still connected");
    assert!(
        later.iter().all(|m| !matches!(m, Message::Piece(_))),
        "a cancelled block went out: {later:?}"
    );

    // The counters agree with the wire, exactly.
    let sent = received.len() as u64 * u64::from(BLOCK_LEN);
    let stats = stats_where(&handle, "uploaded matches what was sent", |s| {
        s.uploaded >= sent
    })
    .await;
    assert_eq!(stats.uploaded, sent, "uploaded counts blocks never sent");
    drop(fake);
    session.shutdown().await;
}

/// A peer that asks for blocks and closes its connection before reading them: whatever the writer never
/// wrote is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_left_unsent_by_a_closed_connection_are_not_counted() {
    let (_payload, session, handle, mut fake) = unchoked_fake(172).await;
    // All 64 blocks: 1 MiB, 32 s of uploading at the limit.
    let all = (0..16).flat_map(|piece| {
        (0..PIECE_LEN / BLOCK_LEN).map(move |i| {
            Message::Request(BlockRef {
                piece: PieceIndex(piece),
                offset: i * BLOCK_LEN,
                len: BLOCK_LEN,
            })
        })
    });
    fake.send(all).await.unwrap();
    // Wait for the first block, so the requests were queued, then hang up.
    fake.recv_until(|m| matches!(m, Message::Piece(_)))
        .await
        .expect("the first block");
    drop(fake);

    let stats = stats_where(&handle, "the peer is forgotten", |s| s.peers.is_empty()).await;
    // Let a last tick count what the writer wrote before the connection ended.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats_later = handle.stats().borrow().clone();
    assert!(stats.uploaded <= stats_later.uploaded);
    let uploaded = stats_later.uploaded;
    assert!(
        uploaded >= u64::from(BLOCK_LEN),
        "the block the peer received counts: {uploaded}"
    );
    // The burst plus the limit's rate for the few seconds the connection lived, far from 1 MiB.
    assert!(
        uploaded <= 8 * u64::from(BLOCK_LEN),
        "{uploaded} bytes counted for a peer that hung up after its first block"
    );
    session.shutdown().await;
}
