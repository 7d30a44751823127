// The invariants the `mse` fuzz target checks: both sides of the MSE handshake (`shoal_mse`) against a
// hostile other side made from the fuzz input. Shared, via `include!`/`#[path]`, by the fuzz target and
// by `crates/mse/tests/fuzz_corpus.rs`, which replays the committed corpus.
//
// Byte 0 picks the scenario (% 4); the rest is the script:
//
// | byte 0 % 4 | the other side | the rest of the input is |
// |---|---|---|
// | 0 | an initiator, talking to `respond` | the raw bytes it sends |
// | 1 | an initiator with a real key exchange and the right req1 and req2 hashes | the plaintext of its encrypted part (VC, crypto_provide, PadC, IA, anything after), encrypted with the right key |
// | 2 | a responder, answering `initiate` | the raw bytes it sends |
// | 3 | a responder with a real key exchange | the plaintext of its step 4 (VC, crypto_select, PadD, payload), encrypted with the right key |
//
// The fuzzer never has to guess a key: the scenarios with a key exchange encrypt its bytes themselves,
// so it steers what the code under test decrypts. Checked on every input: the handshake ends (the
// other side's bytes end, so it must), without a panic; when it succeeds, the method is one that was
// allowed and the bytes handed on are no more than were sent.

use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_metainfo::InfoHash;
use shoal_mse::{KEY_LEN, KeyPair, Method, Negotiated, Rc4, initiate, req2, respond};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TORRENT: InfoHash = InfoHash([0x42; 20]);
/// Big enough that no write in a scenario waits for the other side to read.
const PIPE: usize = 1 << 20;

fn mse_hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

fn keyed(label: &[u8], secret: &[u8], skey: &InfoHash) -> Rc4 {
    let mut rc4 = Rc4::new(&mse_hash(&[label, secret, &skey.0]));
    rc4.discard(1024);
    rc4
}

fn find(wanted: &[u8; 20]) -> Option<InfoHash> {
    (*wanted == req2(&TORRENT)).then_some(TORRENT)
}

fn checked(result: Result<Negotiated, shoal_mse::MseError>, allowed: &[Method], sent: usize) {
    if let Ok(done) = result {
        assert!(
            allowed.contains(&done.method),
            "{:?} was not allowed",
            done.method
        );
        assert!(
            done.received.len() <= sent,
            "more bytes handed on than were sent"
        );
        assert_eq!(done.reader.is_some(), done.method == Method::Rc4);
    }
}

pub fn check_mse(data: &[u8]) {
    let Some((&scenario, script)) = data.split_first() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let run = async {
            let (mut ours, mut theirs) = tokio::io::duplex(PIPE);
            let accept = [Method::Plaintext, Method::Rc4];
            match scenario % 4 {
                0 => {
                    theirs.write_all(script).await.unwrap();
                    drop(theirs);
                    checked(
                        respond(&mut ours, &[], find, &accept).await,
                        &accept,
                        script.len(),
                    );
                }
                1 => {
                    let keys = KeyPair::generate().unwrap();
                    theirs.write_all(keys.public_key()).await.unwrap();
                    let responder = respond(&mut ours, &[], find, &accept);
                    let initiator = async move {
                        let mut yb = [0u8; KEY_LEN];
                        theirs.read_exact(&mut yb).await.unwrap();
                        let secret = keys.shared_secret(&yb).unwrap();
                        let mut step3 = mse_hash(&[b"req1", &secret]).to_vec();
                        let req3 = mse_hash(&[b"req3", &secret]);
                        step3.extend(req2(&TORRENT).iter().zip(req3).map(|(a, b)| a ^ b));
                        let mut encrypted = script.to_vec();
                        keyed(b"keyA", &secret, &TORRENT).apply(&mut encrypted);
                        step3.extend(encrypted);
                        theirs.write_all(&step3).await.unwrap();
                    };
                    let (result, ()) = tokio::join!(responder, initiator);
                    checked(result, &accept, script.len());
                }
                2 => {
                    theirs.write_all(script).await.unwrap();
                    drop(theirs);
                    let offer = [Method::Rc4, Method::Plaintext];
                    checked(
                        initiate(&mut ours, TORRENT, &offer, b"IA").await,
                        &offer,
                        script.len(),
                    );
                }
                _ => {
                    let offer = [Method::Rc4, Method::Plaintext];
                    let initiator = initiate(&mut ours, TORRENT, &offer, b"IA");
                    let responder = async move {
                        let mut ya = [0u8; KEY_LEN];
                        theirs.read_exact(&mut ya).await.unwrap();
                        let keys = KeyPair::generate().unwrap();
                        let secret = keys.shared_secret(&ya).unwrap();
                        let mut step4 = script.to_vec();
                        keyed(b"keyB", &secret, &TORRENT).apply(&mut step4);
                        theirs.write_all(keys.public_key()).await.unwrap();
                        theirs.write_all(&step4).await.unwrap();
                    };
                    let (result, ()) = tokio::join!(initiator, responder);
                    checked(result, &offer, script.len());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the handshake ended");
    });
}
