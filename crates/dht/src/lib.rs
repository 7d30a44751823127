//! A Mainline DHT node (BEP 5): KRPC, routing table, iterative lookups and a peer store, as a sans-IO
//! core with a thin tokio UDP driver.
//!
//! - [`Dht`] is the core: feed it datagrams and time ([`Dht::handle_datagram`], [`Dht::handle_timeout`]),
//!   drain what it sends and reports ([`Dht::poll_transmit`], [`Dht::poll_event`]). It reads no clock
//!   and no global RNG ([`Rng`] is seeded from [`Config::seed`]), so a network of thousands of nodes runs
//!   deterministically in one process.
//! - [`DhtNode`] runs a core on a tokio UDP socket: [`DhtNode::bootstrap`], [`DhtNode::get_peers`] (a
//!   channel of peers), [`DhtNode::announce`]; it saves the routing table in a state directory.
//! - [`Message`] is the KRPC codec (queries, responses, errors; BEP 32 `nodes6`/`want`, BEP 42 `ip`,
//!   BEP 43 `ro`); [`RoutingTable`] the k-buckets; [`NodeId::secure_for`] makes BEP 42 ids.
//!
//! BEPs: 5 (DHT), 32 (IPv6: a node bound to an IPv6 socket uses `nodes6`; run one node per address
//! family), 42 (secure ids, [`Config::prefer_secure_node_ids`]), 43 (read-only, [`Config::read_only`]).
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use shoal_dht::{Config, Dht, Event};
//! use shoal_metainfo::InfoHash;
//!
//! /// Delivers datagrams both ways until both nodes are quiet; returns `a`'s events.
//! fn exchange(a: &mut Dht, a_addr: SocketAddr, b: &mut Dht, b_addr: SocketAddr) -> Vec<Event> {
//!     let now = Instant::now();
//!     for _ in 0..10 {
//!         while let Some(t) = a.poll_transmit() {
//!             b.handle_datagram(now, a_addr, &t.bytes);
//!         }
//!         while let Some(t) = b.poll_transmit() {
//!             a.handle_datagram(now, b_addr, &t.bytes);
//!         }
//!     }
//!     std::iter::from_fn(|| a.poll_event()).collect()
//! }
//!
//! let now = Instant::now();
//! let (seeder_addr, leecher_addr) = ("10.0.0.1:6881".parse()?, "10.0.0.2:6881".parse()?);
//! let mut seeder = Dht::new(Config { seed: 1, ..Config::default() }, now);
//! let mut leecher = Dht::new(Config { seed: 2, bootstrap: vec![seeder_addr], ..Config::default() }, now);
//!
//! // The leecher announces itself for a torrent, then looks the torrent up.
//! let info_hash = InfoHash([9; 20]);
//! leecher.announce(now, info_hash, Some(51413));
//! exchange(&mut leecher, leecher_addr, &mut seeder, seeder_addr);
//! let lookup = leecher.get_peers(now, info_hash);
//! let found: Vec<SocketAddr> = exchange(&mut leecher, leecher_addr, &mut seeder, seeder_addr)
//!     .into_iter()
//!     .flat_map(|event| match event {
//!         Event::Peers { lookup: id, peers, .. } if id == lookup => peers,
//!         _ => Vec::new(),
//!     })
//!     .collect();
//! assert_eq!(found, vec!["10.0.0.2:51413".parse()?]);
//! # Ok::<(), std::net::AddrParseError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod driver;
mod id;
mod krpc;
mod lookup;
mod node;
mod routing;
mod state;
mod store;

pub use driver::{DEFAULT_BOOTSTRAP, DhtError, DhtNode, NodeConfig, SAVE_INTERVAL};
pub use id::{Distance, NodeId, Rng};
pub use krpc::{
    Body, KrpcError, MAX_NODES_PER_REPLY, MAX_TOKEN_LEN, MAX_TRANSACTION_LEN, MAX_VALUES_PER_REPLY,
    MAX_VALUES_SENT, Message, Method, NodeInfo, Query, Response, VERSION, Want,
    decode_compact_addr, encode_compact_addr,
};
pub use lookup::{LookupId, LookupKind, LookupResult, LookupStats, MAX_CANDIDATES};
pub use node::{
    Config, Dht, Event, MAINTENANCE_INTERVAL, MAX_BOOTSTRAP_BACKOFF, MAX_PENDING, MAX_VERIFYING,
    SELF_REFRESH_INTERVAL, Stats, Transmit, UNVERIFIED_REPLY_FACTOR,
};
pub use routing::{Entry, GOOD_FOR, Insert, MAX_FAILURES, NodeState, REFRESH_AFTER, RoutingTable};
pub use state::{MAX_SAVED_NODES, SavedState, StateError};
pub use store::{MAX_TRACKED_IPS, PEER_TTL, RateLimit, TOKEN_ROTATION};
