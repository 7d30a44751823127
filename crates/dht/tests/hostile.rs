//! Hostile DHT traffic against the sans-IO core (HOSTILE.md entries 44-49): dropped, bounded, never a
//! panic, never an amplifier. Virtual time throughout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shoal_dht::{
    Body, Config, Dht, Event, Message, Method, NodeId, NodeInfo, Query, RateLimit, Response,
    UNVERIFIED_REPLY_FACTOR,
};
use shoal_metainfo::InfoHash;

fn addr(n: u32) -> SocketAddr {
    SocketAddr::from(((0x0a00_0000 + n).to_be_bytes(), 6881))
}

fn node(seed: u64, now: Instant) -> Dht {
    Dht::new(
        Config {
            seed,
            ..Config::default()
        },
        now,
    )
}

fn query(id: NodeId, method: Method) -> Vec<u8> {
    Message::query(b"qq".to_vec(), Query::new(id, method)).encode()
}

fn replies(dht: &mut Dht) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| dht.poll_transmit())
        .map(|t| (t.to, Message::decode(&t.bytes).unwrap()))
        .collect()
}

#[test]
fn malformed_packets_are_dropped_silently() {
    // HOSTILE 44.
    let now = Instant::now();
    let mut dht = node(1, now);
    let inputs: [&[u8]; 8] = [
        b"",
        b"garbage",
        b"d1:y1:qe",
        b"d1:t2:aa1:y1:q1:q4:pinge",
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:nodes27:abcdefghij0123456789abcdefge1:t2:aa1:y1:re",
        b"d1:rd2:id20:abcdefghij01234567896:valuesl3:abcee1:t2:aa1:y1:re",
        &[b'l'; 10_000],
    ];
    for input in inputs {
        dht.handle_datagram(now, addr(1), input);
    }
    assert!(dht.poll_transmit().is_none());
    let stats = dht.stats();
    assert_eq!(stats.malformed, 8);
    assert_eq!(stats.nodes, 0);
}

#[test]
fn replies_with_wrong_transaction_source_or_our_id_are_ignored() {
    // HOSTILE 45.
    let now = Instant::now();
    let router = addr(1);
    let mut dht = Dht::new(
        Config {
            seed: 1,
            bootstrap: vec![router],
            ..Config::default()
        },
        now,
    );
    dht.bootstrap(now);
    let sent = dht.poll_transmit().unwrap();
    let tid = Message::decode(&sent.bytes).unwrap().transaction;
    let reply = |transaction: Vec<u8>, id: NodeId| {
        Message::response(transaction, Response::new(id)).encode()
    };
    dht.handle_datagram(now, router, &reply(b"zz".to_vec(), NodeId([1; 20])));
    dht.handle_datagram(now, addr(2), &reply(tid.clone(), NodeId([1; 20])));
    // Same IP, another port (lt `rpc_reply_ignores_wrong_port`).
    let wrong_port = SocketAddr::new(router.ip(), 9);
    dht.handle_datagram(now, wrong_port, &reply(tid.clone(), NodeId([1; 20])));
    assert_eq!(dht.stats().unmatched, 3);
    assert_eq!(dht.stats().nodes, 0);
    // Our own id in a reply from the right place: a reflection, not a node.
    dht.handle_datagram(now, router, &reply(tid.clone(), dht.id()));
    assert_eq!(dht.stats().nodes, 0);
    // The transaction is spent: the genuine reply now comes too late.
    dht.handle_datagram(now, router, &reply(tid, NodeId([1; 20])));
    assert_eq!(dht.stats().nodes, 0);
}

#[test]
fn queries_from_many_ids_do_not_enter_the_table_unverified() {
    // HOSTILE 46: 10,000 ids querying us; none answers our verification pings.
    let now = Instant::now();
    let mut dht = node(1, now);
    for n in 0..10_000u32 {
        let mut id = [0; 20];
        id[..4].copy_from_slice(&n.to_be_bytes());
        dht.handle_datagram(now, addr(n), &query(NodeId(id), Method::Ping));
    }
    let stats = dht.stats();
    assert_eq!(stats.nodes, 0);
    assert!(stats.pending <= shoal_dht::MAX_VERIFYING, "{stats:?}");
    assert_eq!(stats.answered, 10_000);
}

#[test]
fn flood_from_one_ip_is_rate_limited() {
    // HOSTILE 49: 5 per second with a burst of 50, then blocked for 300 s.
    let now = Instant::now();
    let mut dht = node(1, now);
    let limit = RateLimit::default();
    for _ in 0..200 {
        dht.handle_datagram(now, addr(7), &query(NodeId([7; 20]), Method::Ping));
    }
    let answered = replies(&mut dht)
        .into_iter()
        .filter(|(to, m)| *to == addr(7) && matches!(m.body, Body::Response(_)))
        .count();
    assert_eq!(answered, limit.burst as usize);
    assert_eq!(dht.stats().rate_limited, 200 - u64::from(limit.burst));
    let later = now + Duration::from_secs(60);
    dht.handle_datagram(later, addr(7), &query(NodeId([7; 20]), Method::Ping));
    assert!(replies(&mut dht).is_empty(), "still blocked after 60 s");
    let after = now + limit.block_for;
    dht.handle_datagram(after, addr(7), &query(NodeId([7; 20]), Method::Ping));
    assert_eq!(replies(&mut dht).len(), 1);
}

#[test]
fn queries_claiming_our_id_are_dropped() {
    let now = Instant::now();
    let mut dht = node(1, now);
    dht.handle_datagram(now, addr(1), &query(dht.id(), Method::Ping));
    assert!(dht.poll_transmit().is_none());
}

/// Fills a node's peer store for `info_hash` with `n` peers announced through valid tokens.
fn announce_peers(dht: &mut Dht, now: Instant, info_hash: InfoHash, n: u32) {
    for i in 0..n {
        let from = addr(1000 + i);
        let id = NodeId([(i % 250) as u8 + 1; 20]);
        dht.handle_datagram(now, from, &query(id, Method::GetPeers { info_hash }));
        let token = replies(dht)
            .into_iter()
            .find_map(|(to, m)| match m.body {
                Body::Response(r) if to == from => r.token,
                _ => None,
            })
            .unwrap();
        let method = Method::AnnouncePeer {
            info_hash,
            port: 0,
            implied_port: true,
            token,
        };
        dht.handle_datagram(now, from, &query(id, method));
        replies(dht);
    }
}

#[test]
fn replies_to_unverified_addresses_are_not_amplified() {
    // HOSTILE 49: a spoofed get_peers for a popular torrent gets at most 8 times its size back.
    let now = Instant::now();
    let mut dht = Dht::new(
        Config {
            seed: 1,
            rate_limit: None,
            ..Config::default()
        },
        now,
    );
    let info_hash = InfoHash([0x77; 20]);
    announce_peers(&mut dht, now, info_hash, 150);
    assert_eq!(dht.stats().stored_peers, 150);
    let victim = addr(99_999);
    let spoofed = query(NodeId([9; 20]), Method::GetPeers { info_hash });
    dht.handle_datagram(now, victim, &spoofed);
    let (_, bytes) = std::iter::from_fn(|| dht.poll_transmit())
        .map(|t| (t.to, t.bytes))
        .find(|(to, _)| *to == victim)
        .unwrap();
    assert!(bytes.len() <= spoofed.len() * UNVERIFIED_REPLY_FACTOR);
    let Body::Response(response) = Message::decode(&bytes).unwrap().body else {
        panic!("not a response")
    };
    assert!(!response.values.is_empty() && response.values.len() < 100);
}

#[test]
fn announces_need_a_valid_token() {
    // HOSTILE 48.
    let now = Instant::now();
    let mut dht = node(1, now);
    let info_hash = InfoHash([3; 20]);
    let method = Method::AnnouncePeer {
        info_hash,
        port: 6881,
        implied_port: false,
        token: b"forged".to_vec(),
    };
    dht.handle_datagram(now, addr(1), &query(NodeId([1; 20]), method));
    let (_, message) = replies(&mut dht).pop().unwrap();
    assert!(matches!(message.body, Body::Error { code: 203, .. }));
    assert_eq!(dht.stats().stored_peers, 0);
    // A token from another IP is no good either.
    dht.handle_datagram(
        now,
        addr(2),
        &query(NodeId([2; 20]), Method::GetPeers { info_hash }),
    );
    let token = match replies(&mut dht).pop().unwrap().1.body {
        Body::Response(r) => r.token.unwrap(),
        other => panic!("{other:?}"),
    };
    let method = Method::AnnouncePeer {
        info_hash,
        port: 6881,
        implied_port: false,
        token,
    };
    dht.handle_datagram(now, addr(3), &query(NodeId([3; 20]), method));
    assert_eq!(dht.stats().stored_peers, 0);
}

#[test]
fn peer_store_caps_hold_under_an_announce_flood() {
    // HOSTILE 48: peers per torrent and torrents overall are capped (small caps to keep it quick).
    let now = Instant::now();
    let mut dht = Dht::new(
        Config {
            seed: 1,
            rate_limit: None,
            max_torrents: 3,
            max_peers_per_torrent: 20,
            ..Config::default()
        },
        now,
    );
    for t in 0..5u8 {
        announce_peers(&mut dht, now, InfoHash([t; 20]), 30);
    }
    let stats = dht.stats();
    assert_eq!(stats.torrents, 3);
    assert_eq!(stats.stored_peers, 60);
}

#[test]
fn oversized_replies_are_dropped() {
    // HOSTILE 44/49: a reply with 33 nodes (over MAX_NODES_PER_REPLY) is refused whole.
    let now = Instant::now();
    let router = addr(1);
    let mut dht = Dht::new(
        Config {
            seed: 1,
            bootstrap: vec![router],
            ..Config::default()
        },
        now,
    );
    let lookup = dht.get_peers(now, InfoHash([1; 20]));
    let tid = Message::decode(&dht.poll_transmit().unwrap().bytes)
        .unwrap()
        .transaction;
    let mut response = Response::new(NodeId([5; 20]));
    response.nodes = (0..33)
        .map(|i| NodeInfo {
            id: NodeId([i; 20]),
            addr: addr(100 + u32::from(i)),
        })
        .collect();
    dht.handle_datagram(now, router, &Message::response(tid, response).encode());
    assert_eq!(dht.stats().malformed, 1);
    assert!(dht.poll_transmit().is_none());
    // The lookup gives up after the timeouts instead of waiting forever (the router, asked again after
    // the soft timeout, stays silent).
    let mut done = false;
    for second in 1..=10 {
        dht.handle_timeout(now + Duration::from_secs(second));
        done |= std::iter::from_fn(|| dht.poll_event())
            .any(|e| matches!(e, Event::LookupDone(r) if r.id == lookup));
    }
    assert!(done);
}

#[test]
fn read_only_nodes_answer_nothing_and_say_so() {
    // BEP 43.
    let now = Instant::now();
    let mut dht = Dht::new(
        Config {
            seed: 1,
            read_only: true,
            bootstrap: vec![addr(1)],
            ..Config::default()
        },
        now,
    );
    dht.handle_datagram(now, addr(2), &query(NodeId([2; 20]), Method::Ping));
    assert!(dht.poll_transmit().is_none());
    dht.bootstrap(now);
    let sent = Message::decode(&dht.poll_transmit().unwrap().bytes).unwrap();
    assert!(sent.read_only);
}

#[test]
fn secure_ids_can_be_preferred() {
    // BEP 42: with the option on, a compliant node takes the place of a non-compliant one.
    let now = Instant::now();
    let mut rng = shoal_dht::Rng::new(5);
    let mut table = shoal_dht::RoutingTable::new(NodeId([0; 20]), 1, true, now);
    let insecure = NodeInfo {
        id: NodeId([0x80; 20]),
        addr: "203.0.113.1:1".parse().unwrap(),
    };
    table.insert(now, insecure, true);
    let ip = "198.51.100.7".parse().unwrap();
    let mut secure_id = NodeId::secure_for(ip, &mut rng);
    secure_id.0[0] |= 0x80; // same bucket as the other (first bit set); recompute until compliant
    while !secure_id.is_secure_for(ip) || secure_id.0[0] & 0x80 == 0 {
        secure_id = NodeId::secure_for(ip, &mut rng);
    }
    let secure = NodeInfo {
        id: secure_id,
        addr: SocketAddr::new(ip, 2),
    };
    // k = 1 and both in bucket 0 after a split by a near node.
    table.insert(
        now,
        NodeInfo {
            id: NodeId([1; 20]),
            addr: "203.0.113.9:1".parse().unwrap(),
        },
        true,
    );
    assert_eq!(table.insert(now, secure, true), shoal_dht::Insert::Added);
    assert!(table.get(&insecure.id).is_none());
}
