//! Session settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shoal_metainfo::PeerId;

use crate::Limits;

/// How a [`Session`](crate::Session) listens, connects and paces itself.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where to accept peer connections (port 0: any free port).
    pub listen: SocketAddr,
    /// Our peer id (`-SH0100-` and 12 random bytes by default).
    pub peer_id: PeerId,
    /// A second listening address, for IPv6 peers, on `listen`'s port (its own port is ignored);
    /// `None`: IPv4 only, or whatever `listen` says. Failing to bind it (a host without IPv6) is logged,
    /// not an error.
    pub listen_v6: Option<std::net::Ipv6Addr>,
    /// Every bound on what peers, trackers and DHT nodes can make the session do: connection counts,
    /// timeouts, message sizes, queues and rates.
    pub limits: Limits,
    /// A requested block not received in this long goes back to the pool.
    pub request_timeout: Duration,
    /// Seed for the picker's and choker's random choices.
    pub seed: u64,
    /// Where torrents and their resume data are kept between runs (`None`: nothing is saved).
    pub state_dir: Option<PathBuf>,
    /// The longest one tracker announce may take.
    pub tracker_timeout: Duration,
    /// Session-wide download limit, bytes per second (`None`: unlimited).
    pub download_limit: Option<u64>,
    /// Session-wide upload limit, bytes per second (`None`: unlimited).
    pub upload_limit: Option<u64>,
    /// A DHT node to run (BEP 5): public torrents and magnet links find peers through it and announce
    /// there. `None` (the default): no DHT. Its bootstrap routers are part of its settings; tests give
    /// loopback nodes. A node that cannot start (its UDP port taken) is logged and left out. Its
    /// per-IP query rate limit is replaced by [`Limits::dht_queries_per_ip`].
    pub dht: Option<shoal_dht::NodeConfig>,
    /// Message stream encryption (MSE/PE) for peer connections: [`Encryption::Enabled`] by default.
    pub encryption: Encryption,
    /// Whether to download from a torrent's web seeds (BEP 19: HTTP servers named by its `url-list`
    /// or a magnet link's `ws=`). On by default.
    pub web_seeds: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| {
                d.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        let mut random = [0u8; 12];
        let mut state = seed | 1;
        for byte in &mut random {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = b'0' + (state % 10) as u8;
        }
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            peer_id: PeerId::with_prefix(b"-SH0100-", random),
            listen_v6: None,
            limits: Limits::default(),
            request_timeout: Duration::from_secs(60),
            seed,
            state_dir: None,
            tracker_timeout: Duration::from_secs(30),
            download_limit: None,
            upload_limit: None,
            dht: None,
            web_seeds: true,
            encryption: Encryption::default(),
        }
    }
}

/// Whether peer connections use message stream encryption (MSE, also called PE: a Diffie-Hellman
/// handshake, then RC4 or plaintext). Peers that require it hang up on a plaintext handshake; ISPs that
/// shape BitTorrent traffic spot plaintext handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Plaintext only: incoming MSE handshakes are dropped, outgoing connections never use it.
    Disabled,
    /// Both kinds of incoming connection are accepted; an MSE one gets plaintext after the handshake
    /// when it offers that (the cheapest), RC4 otherwise. Outgoing connections start plaintext and are
    /// retried once with MSE when the peer hangs up on the plaintext handshake.
    #[default]
    Enabled,
    /// Like `Enabled`, but encryption comes first: outgoing connections start with MSE (retried once
    /// in plaintext when the peer hangs up), and RC4 is chosen whenever a peer offers it.
    Preferred,
    /// MSE with RC4 for every connection: plaintext handshakes, and peers that offer only
    /// plaintext after an MSE handshake, are dropped.
    Required,
}

impl Encryption {
    /// The MSE methods an incoming MSE handshake may choose, most preferred first (empty: none).
    pub(crate) fn accept(self) -> &'static [shoal_mse::Method] {
        use shoal_mse::Method::{Plaintext, Rc4};
        match self {
            Encryption::Disabled => &[],
            Encryption::Enabled => &[Plaintext, Rc4],
            Encryption::Preferred => &[Rc4, Plaintext],
            Encryption::Required => &[Rc4],
        }
    }

    /// How to dial: each attempt is plaintext (`None`) or MSE offering these methods; the second is
    /// made only if the peer hung up on the first.
    pub(crate) fn attempts(self) -> &'static [Option<&'static [shoal_mse::Method]>] {
        use shoal_mse::Method::{Plaintext, Rc4};
        match self {
            Encryption::Disabled => &[None],
            Encryption::Enabled => &[None, Some(&[Rc4, Plaintext])],
            Encryption::Preferred => &[Some(&[Rc4, Plaintext]), None],
            Encryption::Required => &[Some(&[Rc4])],
        }
    }

    /// Whether a plaintext BitTorrent handshake is accepted.
    pub(crate) fn allows_plaintext(self) -> bool {
        self != Encryption::Required
    }
}
