//! Both sides of the MSE handshake against each other over in-memory streams, in every combination
//! of methods, and the responder against initiators that break the rules.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_metainfo::InfoHash;
use shoal_mse::{KEY_LEN, KeyPair, Method, MseError, Negotiated, Rc4, initiate, req2, respond};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

const TORRENT: InfoHash = InfoHash([0x5a; 20]);

fn find(wanted: &[u8; 20]) -> Option<InfoHash> {
    [InfoHash([1; 20]), TORRENT]
        .into_iter()
        .find(|ih| req2(ih) == *wanted)
}

/// Runs both sides on an in-memory connection.
async fn pair(
    offer: &[Method],
    accept: &[Method],
    payload: &[u8],
) -> (
    (Result<Negotiated, MseError>, DuplexStream),
    (Result<Negotiated, MseError>, DuplexStream),
) {
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    let run = async {
        tokio::join!(
            async {
                let r = initiate(&mut a, TORRENT, offer, payload).await;
                if r.is_err() {
                    a.shutdown().await.ok();
                }
                r
            },
            async {
                let r = respond(&mut b, &[], find, accept).await;
                if r.is_err() {
                    b.shutdown().await.ok();
                }
                r
            },
        )
    };
    let (ours, theirs) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the handshake ends");
    ((ours, a), (theirs, b))
}

/// Sends `data` through a negotiated connection one way and returns what the other side read.
async fn carry(
    from: &mut Negotiated,
    to: &mut Negotiated,
    tx: &mut DuplexStream,
    rx: &mut DuplexStream,
    data: &[u8],
) -> Vec<u8> {
    let mut wire = data.to_vec();
    if let Some(writer) = from.writer.as_mut() {
        writer.apply(&mut wire);
    }
    tx.write_all(&wire).await.unwrap();
    let mut got = vec![0; data.len()];
    rx.read_exact(&mut got).await.unwrap();
    if let Some(reader) = to.reader.as_mut() {
        reader.apply(&mut got);
    }
    got
}

#[tokio::test]
async fn every_method_pairing_negotiates_what_the_responder_prefers() {
    use Method::{Plaintext, Rc4};
    let cases: [(&[Method], &[Method], Option<Method>); 6] = [
        (&[Rc4], &[Rc4], Some(Rc4)),
        (&[Rc4, Plaintext], &[Plaintext, Rc4], Some(Plaintext)),
        (&[Plaintext, Rc4], &[Rc4, Plaintext], Some(Rc4)),
        (&[Plaintext], &[Plaintext, Rc4], Some(Plaintext)),
        (&[Plaintext], &[Rc4], None),
        (&[Rc4], &[Plaintext], None),
    ];
    for (offer, accept, expected) in cases {
        let ((ours, mut a), (theirs, mut b)) = pair(offer, accept, b"IA").await;
        let Some(method) = expected else {
            assert!(
                matches!(theirs, Err(MseError::NoCommonMethod { theirs: t }) if t != 0),
                "{offer:?} {accept:?}: {theirs:?}"
            );
            assert!(ours.is_err(), "the initiator sees the connection end");
            continue;
        };
        let (mut ours, mut theirs) = (ours.unwrap(), theirs.unwrap());
        assert_eq!((ours.method, theirs.method), (method, method));
        assert_eq!(theirs.info_hash, TORRENT);
        assert_eq!(theirs.received, b"IA");
        assert_eq!(ours.writer.is_some(), method == Rc4);
        // The payload stream works both ways after the handshake, under whichever method.
        let there = carry(&mut ours, &mut theirs, &mut a, &mut b, b"to the responder").await;
        assert_eq!(there, b"to the responder");
        let back = carry(&mut theirs, &mut ours, &mut b, &mut a, b"to the initiator").await;
        assert_eq!(back, b"to the initiator");
    }
}

/// A stream whose reads return at most `max` bytes: every field of the handshake arrives split.
struct Trickle<S> {
    inner: S,
    max: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for Trickle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let mut small = vec![0u8; this.max.min(buf.remaining())];
        let mut part = ReadBuf::new(&mut small);
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
        buf.put_slice(part.filled());
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Trickle<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn reads_split_anywhere_change_nothing() {
    let payload: Vec<u8> = (0..=255).collect();
    for max in [1, 7, 97] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (mut a, mut b) = (Trickle { inner: a, max }, Trickle { inner: b, max });
        let (ours, theirs) = tokio::join!(
            initiate(&mut a, TORRENT, &[Method::Rc4], &payload),
            respond(&mut b, &[], find, &[Method::Rc4]),
        );
        assert_eq!(ours.unwrap().method, Method::Rc4, "reads of {max}");
        assert_eq!(theirs.unwrap().received, payload, "reads of {max}");
    }
}

#[tokio::test]
async fn the_rc4_stream_is_not_the_plaintext() {
    // What goes over the wire after an RC4 handshake shares nothing with what was sent.
    let ((ours, _a), (_theirs, mut b)) = pair(&[Method::Rc4], &[Method::Rc4], b"").await;
    let mut ours = ours.unwrap();
    let mut message = vec![0x13; 1000];
    ours.writer.as_mut().unwrap().apply(&mut message);
    assert!(message.iter().filter(|&&b| b == 0x13).count() < 30);
    drop(b.shutdown().await);
}

#[tokio::test]
async fn an_unknown_torrent_is_refused() {
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    let (ours, theirs) = tokio::join!(
        async {
            let r = initiate(&mut a, InfoHash([9; 20]), &[Method::Rc4], b"").await;
            drop(a);
            r
        },
        async {
            let r = respond(&mut b, &[], find, &[Method::Rc4]).await;
            drop(b);
            r
        },
    );
    assert!(
        matches!(theirs, Err(MseError::UnknownTorrent)),
        "{theirs:?}"
    );
    assert!(ours.is_err());
}

#[tokio::test]
async fn junk_is_refused_after_the_longest_padding() {
    // 4 KiB of bytes that are not a handshake: the responder answers the "public key", then gives up
    // once no req1 hash came within 512 bytes of padding.
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    a.write_all(&junk).await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        respond(&mut b, &[], find, &[Method::Rc4]),
    )
    .await
    .expect("junk does not hang the responder");
    assert!(matches!(result, Err(MseError::NoSync(532))), "{result:?}");
}

#[tokio::test]
async fn a_peer_that_hangs_up_is_reported_as_closed() {
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    drop(b);
    let result = initiate(&mut a, TORRENT, &[Method::Rc4], b"").await;
    assert!(
        matches!(result, Err(MseError::Closed | MseError::Io(_))),
        "{result:?}"
    );
    // A responder that gets half a public key, then the end.
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    a.write_all(&[7; 50]).await.unwrap();
    drop(a);
    let result = respond(&mut b, &[], find, &[Method::Rc4]).await;
    assert!(matches!(result, Err(MseError::Closed)), "{result:?}");
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut sha = Sha1::new();
    for part in parts {
        sha.update(part);
    }
    sha.finalize().into()
}

/// An initiator written from the spec, step by step, whose encrypted part is `plain` (VC,
/// crypto_provide, paddings, IA) as given: the responder's reply, or its error.
async fn handcrafted(
    public: Option<[u8; KEY_LEN]>,
    plain: Vec<u8>,
) -> Result<Negotiated, MseError> {
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    let keys = KeyPair::generate().unwrap();
    a.write_all(&public.unwrap_or(*keys.public_key()))
        .await
        .unwrap();
    let responder = tokio::spawn(async move { respond(&mut b, &[], find, &[Method::Rc4]).await });
    let mut yb = [0u8; KEY_LEN];
    a.read_exact(&mut yb).await.unwrap();
    let secret = keys.shared_secret(&yb).unwrap();
    let mut step3 = sha1(&[b"req1", &secret]).to_vec();
    let req3 = sha1(&[b"req3", &secret]);
    step3.extend(req2(&TORRENT).iter().zip(req3).map(|(x, y)| x ^ y));
    let mut rc4 = Rc4::new(&sha1(&[b"keyA", &secret, &TORRENT.0]));
    rc4.discard(1024);
    let mut encrypted = plain;
    rc4.apply(&mut encrypted);
    step3.extend(encrypted);
    a.write_all(&step3).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), responder)
        .await
        .expect("the responder decides")
        .unwrap();
    drop(a);
    result
}

fn provide(vc: [u8; 8], provide: u32, pad: u16, pad_bytes: usize, ia: &[u8]) -> Vec<u8> {
    let mut plain = vc.to_vec();
    plain.extend(provide.to_be_bytes());
    plain.extend(pad.to_be_bytes());
    plain.extend(vec![0; pad_bytes]);
    plain.extend((ia.len() as u16).to_be_bytes());
    plain.extend_from_slice(ia);
    plain
}

#[tokio::test]
async fn a_handcrafted_initiator_is_understood() {
    // The spec's message layout, built independently of `initiate`: PadC of 512 bytes is the most
    // allowed, and the IA comes through.
    let result = handcrafted(None, provide([0; 8], 0x02, 512, 512, b"hi")).await;
    let negotiated = result.unwrap();
    assert_eq!(negotiated.method, Method::Rc4);
    assert_eq!(negotiated.received, b"hi");
}

#[tokio::test]
async fn rule_breaking_initiators_are_refused() {
    let result = handcrafted(None, provide([0; 8], 0x02, 513, 513, b"")).await;
    assert!(
        matches!(result, Err(MseError::PadTooLong(513))),
        "{result:?}"
    );
    let result = handcrafted(None, provide([1, 0, 0, 0, 0, 0, 0, 0], 0x02, 0, 0, b"")).await;
    assert!(matches!(result, Err(MseError::BadVc)), "{result:?}");
    let result = handcrafted(None, provide([0; 8], 0x0, 0, 0, b"")).await;
    assert!(
        matches!(result, Err(MseError::NoCommonMethod { theirs: 0 })),
        "{result:?}"
    );
    let mut one = [0u8; KEY_LEN];
    one[KEY_LEN - 1] = 1;
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    a.write_all(&one).await.unwrap();
    let result = respond(&mut b, &[], find, &[Method::Rc4]).await;
    assert!(matches!(result, Err(MseError::BadPublicKey)), "{result:?}");
}

#[tokio::test]
async fn bytes_read_before_the_responder_started_count() {
    // The session reads 20 bytes to tell a plaintext handshake from MSE, then hands them over.
    let (mut a, mut b) = tokio::io::duplex(64 * 1024);
    let responder = async {
        let mut first = [0u8; 20];
        b.read_exact(&mut first).await.unwrap();
        respond(&mut b, &first, find, &[Method::Rc4]).await
    };
    let (ours, theirs) = tokio::join!(initiate(&mut a, TORRENT, &[Method::Rc4], b"x"), responder);
    assert_eq!(ours.unwrap().method, Method::Rc4);
    assert_eq!(theirs.unwrap().received, b"x");
}
