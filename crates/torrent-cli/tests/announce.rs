//! `torrent-cli announce`: every tracker's answer, per URL, including the ones that fail.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// A one-shot HTTP tracker on loopback answering with two compact peers.
fn tiny_tracker() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let n = stream.read(&mut request).unwrap();
        let body = b"d8:completei3e10:incompletei4e8:intervali1800e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2e";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    (url, handle)
}

#[test]
fn announce_prints_each_trackers_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.bin"), vec![1u8; 50_000]).unwrap();
    let (url, tracker) = tiny_tracker();
    // A second tier nobody answers on: a closed UDP port, so its error shows at once.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = format!("udp://{dead}/announce");
    let bin = env!("CARGO_BIN_EXE_torrent-cli");
    let created = Command::new(bin)
        .args([
            "create",
            "file.bin",
            "-t",
            &url,
            "-t",
            &dead,
            "--no-date",
            "-o",
            "t.torrent",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let output = Command::new(bin)
        .args(["announce", "t.torrent", "--tracker-timeout", "3"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains(&format!("tier 1 {url}\n  interval 1800 s  seeders 3  leechers 4  peers 2\n  127.0.0.1:6881\n  10.0.0.2:6882\n")), "{text}");
    assert!(
        text.contains(&format!("tier 2 {dead}\n  error: ")),
        "{text}"
    );
    // The request carried the info-hash and our port, as BEP 3 asks.
    let request = tracker.join().unwrap();
    assert!(request.starts_with("GET /announce?info_hash="), "{request}");
    assert!(request.contains("port=6881"), "{request}");
}
