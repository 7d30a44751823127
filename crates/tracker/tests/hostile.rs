//! Scripted bad trackers (HOSTILE.md 37–42), in-process on 127.0.0.1 and ::1: each hostile reply gives a
//! typed error, never a panic or a hang, and the announcer keeps going.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_metainfo::{InfoHash, PeerId};
use shoal_tracker::{
    AnnounceEvent, AnnounceRequest, Announcer, AnnouncerCommand, AnnouncerConfig, ClientConfig,
    MAX_PEERS, TrackerClient, TrackerError, encode_announce_reply, run_announcer,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

type Script = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// An HTTP server that answers each request with `script(request line)`, raw bytes, then closes.
/// It records every request line.
struct HttpServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    async fn start(script: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let log = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let script = Arc::clone(&script);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    log.lock().unwrap().push(line.clone());
                    let reply = script(&line);
                    let _ = stream.write_all(&reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok(body: &[u8]) -> Vec<u8> {
    response("200 OK", "", body)
}

fn redirect(location: &str) -> Vec<u8> {
    response("302 Found", &format!("Location: {location}\r\n"), b"")
}

const GOOD: &[u8] = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";

fn config() -> ClientConfig {
    let mut config = ClientConfig::with_timeout(Duration::from_secs(2));
    config.udp.retransmit_base = Duration::from_millis(100);
    config.udp.max_retransmits = 2;
    config
}

fn client() -> TrackerClient {
    TrackerClient::new(config()).unwrap()
}

fn request() -> AnnounceRequest {
    AnnounceRequest::new(InfoHash([7; 20]), PeerId(*b"-SH0001-hostiletests"), 6881)
}

/// Announces to `url` within 10 s (a hang fails the test) and returns the result.
async fn announce(
    client: &TrackerClient,
    url: &str,
) -> Result<shoal_tracker::AnnounceResponse, TrackerError> {
    tokio::time::timeout(Duration::from_secs(10), client.announce(url, &request()))
        .await
        .expect("the client hung")
}

#[tokio::test]
async fn http_error_statuses() {
    let server = HttpServer::start(|line| {
        if line.contains("/e500") {
            response("500 Internal Server Error", "", b"oops")
        } else if line.contains("/e404") {
            response("404 Not Found", "", b"<html>not here</html>")
        } else {
            response("403 Forbidden", "", b"d14:failure reason6:bannede")
        }
    })
    .await;
    let client = client();
    assert!(matches!(
        announce(&client, &server.url("/e500/announce")).await,
        Err(TrackerError::HttpStatus(500))
    ));
    assert!(matches!(
        announce(&client, &server.url("/e404/announce")).await,
        Err(TrackerError::HttpStatus(404))
    ));
    match announce(&client, &server.url("/e403/announce")).await {
        Err(TrackerError::Failure(reason)) => assert_eq!(reason, "banned"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn http_malformed_bodies() {
    let server = HttpServer::start(|line| {
        if line.contains("/bencode") {
            ok(b"d8:intervali1800e5:peers6:abc")
        } else if line.contains("/html") {
            ok(b"<html>hello</html>")
        } else if line.contains("/list") {
            ok(b"li1ee")
        } else if line.contains("/deep") {
            ok(&[b"l".repeat(100_000), b"e".repeat(100_000)].concat())
        } else {
            ok(b"d14:failure reason5:nope!e")
        }
    })
    .await;
    let client = client();
    for path in ["/bencode", "/html", "/deep"] {
        let result = announce(&client, &server.url(&format!("{path}/announce"))).await;
        assert!(
            matches!(result, Err(TrackerError::Bencode(_))),
            "{path}: {result:?}"
        );
    }
    assert!(matches!(
        announce(&client, &server.url("/list/announce")).await,
        Err(TrackerError::Malformed(_))
    ));
    match announce(&client, &server.url("/fail/announce")).await {
        Err(TrackerError::Failure(reason)) => assert_eq!(reason, "nope!"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn http_warning_is_kept_with_the_reply() {
    let server =
        HttpServer::start(|_| ok(b"d8:intervali60e5:peers0:15:warning message10:slow down!e"))
            .await;
    let reply = announce(&client(), &server.url("/announce")).await.unwrap();
    assert_eq!(reply.warning.as_deref(), Some("slow down!"));
}

#[tokio::test]
async fn http_reply_size_is_capped() {
    let cap = config().max_response_size;
    let server = HttpServer::start(move |line| {
        let body = |len: usize| {
            // The prefix's own length depends on the number in it: 7 digits here.
            let prefix = format!("d8:intervali60e5:peers{}:", len - 31);
            assert_eq!(prefix.len(), 30);
            let mut body = prefix.into_bytes();
            body.resize(len - 1, b'x');
            body.push(b'e');
            body
        };
        if line.contains("/at-cap") {
            ok(&body(cap))
        } else if line.contains("/chunked") {
            // No Content-Length: the cap must be enforced while reading.
            let mut out =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    .to_vec();
            for _ in 0..64 {
                out.extend_from_slice(format!("{:x}\r\n", 65_536).as_bytes());
                out.extend_from_slice(&[b'x'; 65_536]);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        } else {
            ok(&body(cap + 1))
        }
    })
    .await;
    let client = client();
    assert!(
        announce(&client, &server.url("/at-cap/announce"))
            .await
            .is_ok()
    );
    for path in ["/over-cap", "/chunked"] {
        let result = announce(&client, &server.url(&format!("{path}/announce"))).await;
        assert!(
            matches!(result, Err(TrackerError::TooLarge(c)) if c == cap),
            "{path}: {result:?}"
        );
    }
}

#[tokio::test]
async fn http_gzip_is_accepted_and_a_gzip_bomb_is_capped() {
    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }
    let small = gzip(GOOD);
    // 64 MiB of zeros in about 64 KiB.
    let mut bomb_plain = b"d8:intervali60e5:peers67108864:".to_vec();
    bomb_plain.resize(64 << 20, 0);
    let bomb = gzip(&bomb_plain);
    assert!(bomb.len() < 1 << 20);
    let server = HttpServer::start(move |line| {
        let body = if line.contains("/bomb") {
            &bomb
        } else {
            &small
        };
        response("200 OK", "Content-Encoding: gzip\r\n", body)
    })
    .await;
    let client = client();
    let reply = announce(&client, &server.url("/announce")).await.unwrap();
    assert_eq!(reply.peers.len(), 1);
    assert!(matches!(
        announce(&client, &server.url("/bomb/announce")).await,
        Err(TrackerError::TooLarge(_))
    ));
}

#[tokio::test]
async fn http_peer_count_is_capped() {
    let server = HttpServer::start(|_| {
        let n = 100_000;
        let mut body = format!("d8:intervali60e5:peers{}:", n * 6).into_bytes();
        for i in 0..n {
            body.extend_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x1A, 0xE1]);
        }
        body.push(b'e');
        ok(&body)
    })
    .await;
    let reply = announce(&client(), &server.url("/announce")).await.unwrap();
    assert_eq!(reply.peers.len(), MAX_PEERS);
}

#[tokio::test]
async fn http_redirects_are_bounded() {
    let server = HttpServer::start(|line| {
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let name = path.split('?').next().unwrap_or_default();
        match name {
            // Three hops, then the tracker: allowed.
            "/r1/announce" => redirect("/r2/announce"),
            "/r2/announce" => redirect("/r3/announce"),
            "/r3/announce" => redirect("/announce"),
            // Four hops: one too many.
            "/s1/announce" => redirect("/s2/announce"),
            "/s2/announce" => redirect("/s3/announce"),
            "/s3/announce" => redirect("/s4/announce"),
            "/s4/announce" => redirect("/announce"),
            "/loop-a/announce" => redirect(&path.replace("loop-a", "loop-b")),
            "/loop-b/announce" => redirect(&path.replace("loop-b", "loop-a")),
            "/file/announce" => redirect("file:///etc/passwd"),
            "/gopher/announce" => redirect("gopher://127.0.0.1:70/"),
            _ => ok(GOOD),
        }
    })
    .await;
    let client = client();
    assert!(announce(&client, &server.url("/r1/announce")).await.is_ok());
    for (path, reason) in [
        ("/s1/announce", "more than 3 redirects"),
        ("/loop-a/announce", "redirect loop"),
        ("/file/announce", "redirect to scheme \"file\""),
        ("/gopher/announce", "redirect to scheme \"gopher\""),
    ] {
        match announce(&client, &server.url(path)).await {
            Err(TrackerError::Redirect(text)) => {
                assert!(text.starts_with(reason), "{path}: {text}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let hops = server
        .requests()
        .iter()
        .filter(|l| l.contains("/s"))
        .count();
    assert_eq!(hops, 4, "the fifth request is never made");
}

#[tokio::test]
async fn http_slow_replies_time_out() {
    // One server accepts and never answers; one drips its body a byte every 100 ms.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let drip = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let drip_addr = drip.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = drip.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = ok(&[GOOD, &[b' '; 100][..]].concat());
                for byte in reply {
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });
    let mut config = config();
    config.timeout = Duration::from_millis(800);
    let client = TrackerClient::new(config).unwrap();
    for addr in [silent_addr, drip_addr] {
        let started = Instant::now();
        let result = announce(&client, &format!("http://{addr}/announce")).await;
        assert!(
            matches!(result, Err(TrackerError::Timeout)),
            "{addr}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn refused_urls() {
    let client = client();
    for (url, check) in [
        (
            "file:///etc/passwd",
            "unsupported tracker url scheme \"file\"",
        ),
        (
            "gopher://127.0.0.1/",
            "unsupported tracker url scheme \"gopher\"",
        ),
        (
            "http://bt1.archiv\u{ff45}.org/announce",
            "internationalised tracker host",
        ),
        ("udp://127.0.0.1/announce", "invalid tracker url"),
        ("::", "invalid tracker url"),
    ] {
        let err = announce(&client, url).await.unwrap_err();
        assert!(err.to_string().starts_with(check), "{url}: {err}");
    }
    let err = client
        .scrape("http://127.0.0.1:1/tracker.php", &[InfoHash([1; 20])])
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::ScrapeUnsupported(_)), "{err:?}");
}

/// A UDP tracker whose replies are decided by `script(packet, connects so far)`: `None` stays silent.
/// Returns its address and the packets it received.
async fn udp_server(
    bind: &str,
    script: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = UdpSocket::bind(bind).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let packet = buf[..len].to_vec();
            log.lock().unwrap().push(packet.clone());
            for reply in script(&packet) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    (addr, received)
}

fn tid(packet: &[u8]) -> [u8; 4] {
    packet[12..16].try_into().unwrap()
}

fn connect_reply(packet: &[u8]) -> Vec<u8> {
    let mut reply = vec![0, 0, 0, 0];
    reply.extend_from_slice(&tid(packet));
    reply.extend_from_slice(&0x1234_5678u64.to_be_bytes());
    reply
}

fn action(packet: &[u8]) -> u32 {
    u32::from_be_bytes(packet[8..12].try_into().unwrap())
}

fn udp_url(addr: SocketAddr) -> String {
    format!("udp://{addr}/announce?passkey=abc")
}

#[tokio::test]
async fn udp_happy_path_with_url_data_and_connection_reuse() {
    let (addr, received) = udp_server("127.0.0.1:0", |packet| {
        if action(packet) == 0 {
            return vec![connect_reply(packet)];
        }
        let peers: Vec<SocketAddr> = vec!["10.1.1.1:6881".parse().unwrap()];
        let tid = u32::from_be_bytes(tid(packet));
        vec![encode_announce_reply(tid, 1800, 4, 5, &peers)]
    })
    .await;
    let client = client();
    for _ in 0..2 {
        let reply = announce(&client, &udp_url(addr)).await.unwrap();
        assert_eq!(
            reply.peers,
            ["10.1.1.1:6881".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!((reply.complete, reply.incomplete), (Some(5), Some(4)));
    }
    let received = received.lock().unwrap().clone();
    let actions: Vec<u32> = received.iter().map(|p| action(p)).collect();
    assert_eq!(actions, [0, 1, 1], "the connection id is reused");
    let announce_packet = &received[1];
    assert_eq!(announce_packet[..8], 0x1234_5678u64.to_be_bytes());
    let option = b"/announce?passkey=abc";
    assert_eq!(announce_packet[98..100], [2, option.len() as u8]);
    assert_eq!(&announce_packet[100..], option);
}

#[tokio::test]
async fn udp_ipv6_replies_hold_18_byte_peers() {
    let (addr, _) = udp_server("[::1]:0", |packet| {
        if action(packet) == 0 {
            return vec![connect_reply(packet)];
        }
        let peers: Vec<SocketAddr> = vec!["[2001:db8::7]:51413".parse().unwrap()];
        vec![encode_announce_reply(
            u32::from_be_bytes(tid(packet)),
            60,
            0,
            1,
            &peers,
        )]
    })
    .await;
    let reply = announce(&client(), &format!("udp://{addr}")).await.unwrap();
    assert_eq!(
        reply.peers,
        ["[2001:db8::7]:51413".parse::<SocketAddr>().unwrap()]
    );
}

#[tokio::test]
async fn udp_wrong_transaction_ids_are_ignored() {
    // Every reply first comes with a wrong transaction id and a short packet, then the right one.
    let (addr, _) = udp_server("127.0.0.1:0", |packet| {
        let good = if action(packet) == 0 {
            connect_reply(packet)
        } else {
            encode_announce_reply(u32::from_be_bytes(tid(packet)), 60, 0, 0, &[])
        };
        let mut wrong = good.clone();
        wrong[4] ^= 0xFF;
        vec![wrong, vec![0, 0, 0], good]
    })
    .await;
    assert!(announce(&client(), &udp_url(addr)).await.is_ok());

    // A tracker that only ever sends wrong transaction ids times out after the retransmissions.
    let (addr, received) = udp_server("127.0.0.1:0", |packet| {
        let mut wrong = connect_reply(packet);
        wrong[7] ^= 1;
        vec![wrong]
    })
    .await;
    assert!(matches!(
        announce(&client(), &udp_url(addr)).await,
        Err(TrackerError::Timeout)
    ));
    assert_eq!(
        received.lock().unwrap().len(),
        3,
        "one send and two retransmissions"
    );
}

#[tokio::test]
async fn udp_silent_tracker_times_out_after_retransmissions() {
    let (addr, received) = udp_server("127.0.0.1:0", |_| Vec::new()).await;
    let started = Instant::now();
    assert!(matches!(
        announce(&client(), &udp_url(addr)).await,
        Err(TrackerError::Timeout)
    ));
    // 100 + 200 + 400 ms.
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn udp_truncated_error_and_wrong_action_replies() {
    let (addr, _) = udp_server("127.0.0.1:0", |packet| {
        if action(packet) == 0 {
            return vec![connect_reply(packet)];
        }
        let mut reply = encode_announce_reply(u32::from_be_bytes(tid(packet)), 60, 0, 0, &[]);
        reply.truncate(13);
        vec![reply]
    })
    .await;
    assert!(matches!(
        announce(&client(), &udp_url(addr)).await,
        Err(TrackerError::Truncated { action: 1, len: 13 })
    ));

    let (addr, _) = udp_server("127.0.0.1:0", |packet| {
        let mut reply = vec![0, 0, 0, 3];
        reply.extend_from_slice(&tid(packet));
        reply.extend_from_slice(b"go away");
        vec![reply]
    })
    .await;
    match announce(&client(), &udp_url(addr)).await {
        Err(TrackerError::Failure(message)) => assert_eq!(message, "go away"),
        other => panic!("{other:?}"),
    }

    let (addr, _) = udp_server("127.0.0.1:0", |packet| {
        let mut reply = vec![0, 0, 0, 9];
        reply.extend_from_slice(&tid(packet));
        vec![reply]
    })
    .await;
    assert!(matches!(
        announce(&client(), &udp_url(addr)).await,
        Err(TrackerError::UnexpectedAction(9))
    ));
}

#[tokio::test]
async fn udp_peer_count_is_capped() {
    let (addr, _) = udp_server("127.0.0.1:0", |packet| {
        if action(packet) == 0 {
            return vec![connect_reply(packet)];
        }
        let peers: Vec<SocketAddr> = (0..MAX_PEERS as u32 + 500)
            .map(|i| SocketAddr::from((Ipv4Addr::from(0x0A00_0000 + i), 6881)))
            .collect();
        vec![encode_announce_reply(
            u32::from_be_bytes(tid(packet)),
            60,
            0,
            0,
            &peers,
        )]
    })
    .await;
    let reply = announce(&client(), &udp_url(addr)).await.unwrap();
    assert_eq!(reply.peers.len(), MAX_PEERS);
}

#[tokio::test]
async fn udp_scrape_of_many_hashes_is_split_per_packet() {
    let (addr, received) = udp_server("127.0.0.1:0", |packet| {
        if action(packet) == 0 {
            return vec![connect_reply(packet)];
        }
        let mut reply = vec![0, 0, 0, 2];
        reply.extend_from_slice(&tid(packet));
        for hash in packet[16..].chunks(20) {
            reply.extend_from_slice(&u32::from(hash[0]).to_be_bytes());
            reply.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        }
        vec![reply]
    })
    .await;
    let hashes: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
    let scrape = client().scrape(&udp_url(addr), &hashes).await.unwrap();
    assert_eq!(scrape.files.len(), 100);
    assert_eq!(scrape.get(&InfoHash([99; 20])).unwrap().complete, 99);
    let sizes: Vec<usize> = received.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [16, 16 + 74 * 20, 16 + 26 * 20]);
}

#[tokio::test]
async fn announcer_keeps_going_past_hostile_trackers() {
    let bad_http = HttpServer::start(|_| response("500 Internal Server Error", "", b"")).await;
    let garbage = HttpServer::start(|_| ok(b"this is not bencode")).await;
    let (silent_udp, _) = udp_server("127.0.0.1:0", |_| Vec::new()).await;
    let good = HttpServer::start(|_| ok(GOOD)).await;
    let tiers = vec![
        vec![bad_http.url("/announce"), garbage.url("/announce")],
        vec![udp_url(silent_udp)],
        vec![good.url("/announce")],
    ];
    let announcer = Announcer::new(tiers, AnnouncerConfig::default(), 3, Instant::now());
    let (commands, command_rx) = tokio::sync::mpsc::channel(4);
    let (outcome_tx, mut outcomes) = tokio::sync::mpsc::channel(16);
    let client = client();
    let task = tokio::spawn(async move {
        run_announcer(&client, announcer, |_| request(), command_rx, outcome_tx).await
    });
    let mut seen = Vec::new();
    loop {
        let outcome = tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
            .await
            .expect("the announcer hung")
            .unwrap();
        assert_eq!(outcome.event, AnnounceEvent::Started);
        let ok = outcome.result.is_ok();
        seen.push(outcome);
        if ok {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(matches!(seen[2].result, Err(TrackerError::Timeout)));
    commands.send(AnnouncerCommand::Completed).await.unwrap();
    // `completed` falls through the failing tiers to the good tracker, at once.
    loop {
        let completed = outcomes.recv().await.unwrap();
        assert_eq!(completed.event, AnnounceEvent::Completed);
        if completed.result.is_ok() {
            break;
        }
    }
    drop(commands); // a closed channel means stop
    let mut last = None;
    while let Some(outcome) = outcomes.recv().await {
        last = Some(outcome);
    }
    let last = last.unwrap();
    assert_eq!(last.event, AnnounceEvent::Stopped);
    assert!(last.result.is_ok());
    assert!(task.await.unwrap().is_finished());
    let good_requests = good.requests();
    let events: Vec<&str> = good_requests
        .iter()
        .map(|line| {
            ["started", "completed", "stopped"]
                .into_iter()
                .find(|event| line.contains(&format!("event={event}")))
                .unwrap_or("none")
        })
        .collect();
    // The answering tracker heard each event once; the started-completed-stopped sequence went to it
    // last because it answered (the earlier tiers failed every time).
    assert_eq!(events, ["started", "completed", "stopped"]);
}

#[tokio::test]
async fn udp_reply_from_another_source_is_ignored() {
    // The real tracker answers connects late; a rogue socket races it with a well-formed reply that
    // carries the right transaction id and a connection id of its own.
    let tracker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = tracker.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        let rogue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = tracker.recv_from(&mut buf).await {
            let packet = buf[..len].to_vec();
            log.lock().unwrap().push(packet.clone());
            if action(&packet) == 0 {
                let mut forged = connect_reply(&packet);
                forged[8..].copy_from_slice(&0xBADu64.to_be_bytes());
                rogue.send_to(&forged, from).await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
                tracker
                    .send_to(&connect_reply(&packet), from)
                    .await
                    .unwrap();
            } else {
                let reply = encode_announce_reply(u32::from_be_bytes(tid(&packet)), 60, 0, 0, &[]);
                tracker.send_to(&reply, from).await.unwrap();
            }
        }
    });
    assert!(announce(&client(), &udp_url(addr)).await.is_ok());
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[1][..8],
        0x1234_5678u64.to_be_bytes(),
        "the forged id was not used"
    );
}

#[tokio::test(start_paused = true)]
async fn udp_retransmits_on_the_bep15_schedule() {
    // Default timing (15·2^n s, n ≤ 8) on tokio's paused clock: 9 sends over 7665 virtual seconds.
    let (addr, received) = udp_server("127.0.0.1:0", |_| Vec::new()).await;
    let client =
        TrackerClient::new(ClientConfig::with_timeout(Duration::from_secs(4 * 3600))).unwrap();
    let started = tokio::time::Instant::now();
    let result = client.announce(&udp_url(addr), &request()).await;
    assert!(matches!(result, Err(TrackerError::Timeout)), "{result:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(15 * 511));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(received.lock().unwrap().len(), 9);
}

#[tokio::test(start_paused = true)]
async fn announcer_backs_off_without_busy_looping() {
    // HOSTILE.md T6 (b): a dead tracker gets at most 8 attempts in the first 30 minutes.
    let (addr, received) = udp_server("127.0.0.1:0", |_| Vec::new()).await;
    let mut config = ClientConfig::with_timeout(Duration::from_secs(3600));
    config.udp.max_retransmits = 0;
    let client = TrackerClient::new(config).unwrap();
    let tiers = vec![vec![udp_url(addr)]];
    let announcer = Announcer::new(
        tiers,
        AnnouncerConfig::default(),
        1,
        tokio::time::Instant::now().into_std(),
    );
    let (commands, command_rx) = tokio::sync::mpsc::channel(4);
    let (outcome_tx, mut outcomes) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(async move {
        run_announcer(&client, announcer, |_| request(), command_rx, outcome_tx).await
    });
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    let attempts = received.lock().unwrap().len();
    assert!((5..=8).contains(&attempts), "{attempts} attempts");
    drop(commands);
    let announcer = task.await.unwrap();
    assert!(announcer.is_finished());
    let mut failures = 0;
    while let Ok(outcome) = outcomes.try_recv() {
        assert!(matches!(outcome.result, Err(TrackerError::Timeout)));
        assert_eq!(outcome.event, AnnounceEvent::Started);
        failures += 1;
    }
    assert!(failures >= attempts);
}
