//! Hostile peers against the engine: a peer that sends wrong data is banned, and the download still
//! completes from the honest seeder with every file intact.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use shoal_metainfo::{Metainfo, PeerId, TorrentBuilder};
use shoal_session::{AddTorrent, Session, TorrentState};
use shoal_wire::{Bitfield, Block, DecoderConfig, Handshake, Message, MessageDecoder, PieceIndex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A peer that claims every piece and answers every request with zeros. Counts its connections.
async fn liar(listener: TcpListener, torrent: Vec<u8>, connections: Arc<AtomicU32>) {
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    let info_hash = metainfo.info_hashes().v1.unwrap();
    let n_pieces = metainfo.info.piece_count() as u32;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut theirs = [0u8; 68];
            if stream.read_exact(&mut theirs).await.is_err() {
                return;
            }
            let mut out = BytesMut::new();
            out.extend_from_slice(
                &Handshake::new(info_hash, PeerId(*b"-XX0001-liarliarliar")).to_bytes(),
            );
            Message::Bitfield(Bitfield::from_pieces(
                n_pieces,
                (0..n_pieces).map(PieceIndex),
            ))
            .encode_into(&mut out);
            Message::Unchoke.encode_into(&mut out);
            if stream.write_all(&out).await.is_err() {
                return;
            }
            let mut decoder = MessageDecoder::new(DecoderConfig {
                n_pieces: Some(n_pieces),
                ..DecoderConfig::default()
            });
            loop {
                match stream.read_buf(decoder.buffer_mut()).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut out = BytesMut::new();
                while let Ok(Some(message)) = decoder.poll_message() {
                    if let Message::Request(block) = message {
                        let data = vec![0u8; block.len as usize];
                        Message::Piece(Block {
                            piece: block.piece,
                            offset: block.offset,
                            data: data.into(),
                        })
                        .encode_into(&mut out);
                    }
                }
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_bad_data_is_banned_and_the_download_completes() {
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("data.bin");
    let payload: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    std::fs::write(&file, &payload).unwrap();
    let torrent = TorrentBuilder::new(&file)
        .piece_length(32_768)
        .build()
        .unwrap()
        .bytes;

    let (seeder, seed) =
        common::start(common::loopback(3), torrent.clone(), source.path(), vec![]).await;
    let mut seed_stats = seed.stats();
    seed_stats
        .wait_for(|s| s.state == TorrentState::Seeding)
        .await
        .unwrap();

    let liar_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar_addr = liar_listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU32::new(0));
    tokio::spawn(liar(liar_listener, torrent.clone(), connections.clone()));

    let target = tempfile::tempdir().unwrap();
    let leecher = Session::new(common::loopback(4)).await.unwrap();
    let leech = leecher
        .add_torrent(AddTorrent {
            torrent,
            save_path: target.path().into(),
            peers: vec![liar_addr, seeder.local_addr()],
        })
        .unwrap();
    let mut stats = leech.stats();
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        stats.wait_for(|s| s.state == TorrentState::Seeding),
    )
    .await
    .expect("completes from the honest seeder")
    .unwrap()
    .clone();
    assert!(
        std::fs::read(target.path().join("data.bin")).unwrap() == payload,
        "no corrupt data on disk"
    );
    assert!(
        done.hash_failures >= 1,
        "the liar's pieces failed their checks"
    );
    // An unproven peer gets one piece at a time and waits for its verdict, so a liar spoils at most two.
    assert!(
        done.hash_failures <= 2,
        "banned after at most two bad pieces, not {}",
        done.hash_failures
    );
    assert!(
        done.peers.iter().all(|p| p.addr != liar_addr),
        "the liar is disconnected"
    );
    // Banned: never dialed again, however long we wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    leecher.shutdown().await;
    seeder.shutdown().await;
}
