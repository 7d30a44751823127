//! The tokio driver on real UDP sockets: about fifty nodes on 127.0.0.1 find each other's announces, and a
//! node restarted from its state directory bootstraps from the routing table it saved.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_dht::{Config, DhtNode, NodeConfig};
use shoal_metainfo::InfoHash;

/// A node on loopback: every node shares one IP there, so the per-IP rules are off.
fn loopback_config(bootstrap: Option<SocketAddr>, seed: u64) -> NodeConfig {
    NodeConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        bootstrap: bootstrap.into_iter().map(|a| a.to_string()).collect(),
        state_dir: None,
        dht: Config {
            seed,
            restrict_ips: false,
            rate_limit: None,
            ..Config::default()
        },
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_find_an_announced_peer() {
    let first = DhtNode::spawn(loopback_config(None, 0)).await.unwrap();
    let mut nodes = vec![first.clone()];
    for seed in 1..50 {
        nodes.push(
            DhtNode::spawn(loopback_config(Some(first.local_addr()), seed))
                .await
                .unwrap(),
        );
    }
    let joins: Vec<_> = nodes
        .iter()
        .skip(1)
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move { node.bootstrap().await.unwrap() })
        })
        .collect();
    for join in joins {
        let size = within("bootstrap", join).await.unwrap();
        assert!(size > 0, "a node bootstrapped into an empty table");
    }

    let info_hash = InfoHash([0x5a; 20]);
    let announced = within("announce", nodes[7].announce(info_hash, Some(4242)))
        .await
        .unwrap();
    assert!(announced.stats.announced >= 1, "{announced:?}");

    for asker in [30, 0, 49] {
        let mut peers = nodes[asker].get_peers(info_hash).await.unwrap();
        let mut found = Vec::new();
        within("get_peers", async {
            while let Some(peer) = peers.recv().await {
                found.push(peer);
            }
        })
        .await;
        assert!(
            found.contains(&SocketAddr::from(([127, 0, 0, 1], 4242))),
            "node {asker} found {found:?}"
        );
    }
    let stats = nodes[30].stats().await.unwrap();
    assert!(stats.nodes >= 8, "{stats:?}");
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_bootstraps_from_the_saved_table() {
    let state = tempfile::tempdir().unwrap();
    let hub = DhtNode::spawn(loopback_config(None, 100)).await.unwrap();
    let others: Vec<DhtNode> = {
        let mut v = Vec::new();
        for seed in 101..106 {
            let node = DhtNode::spawn(loopback_config(Some(hub.local_addr()), seed))
                .await
                .unwrap();
            within("bootstrap", node.bootstrap()).await.unwrap();
            v.push(node);
        }
        v
    };
    let mut config = loopback_config(Some(hub.local_addr()), 200);
    config.state_dir = Some(state.path().to_owned());
    let node = DhtNode::spawn(config.clone()).await.unwrap();
    let id = node.id();
    assert!(within("bootstrap", node.bootstrap()).await.unwrap() >= 1);
    node.shutdown().await.unwrap();
    assert!(state.path().join("dht.dat").exists());

    // No routers this time: only the saved table can get it back in.
    config.bootstrap.clear();
    let again = DhtNode::spawn(config).await.unwrap();
    assert_eq!(again.id(), id, "the saved id is reused");
    let size = within("bootstrap", again.bootstrap()).await.unwrap();
    assert!(size >= 3, "bootstrapped into {size} nodes");
    again.shutdown().await.unwrap();
    for node in others {
        node.shutdown().await.unwrap();
    }
    hub.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn silent_bootstrap_backs_off_without_spinning() {
    // HOSTILE 51: the only router never answers (a bound socket that reads nothing).
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let node = DhtNode::spawn(loopback_config(Some(silent.local_addr().unwrap()), 1))
        .await
        .unwrap();
    assert_eq!(node.bootstrap().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let stats = node.stats().await.unwrap();
    // Backoff doubles from 5 s to 300 s: about a dozen attempts in ten minutes, never hundreds.
    assert!(stats.sent <= 20, "{stats:?}");
    let mut buf = [0u8; 1500];
    let mut received = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(1), silent.recv_from(&mut buf)).await
    {
        received += 1;
    }
    assert!(received >= 3, "retried only {received} times");
    node.shutdown().await.unwrap();
}
