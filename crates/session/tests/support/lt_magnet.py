# python3-libtorrent for Shoal's magnet-link interop tests, on loopback only.
#
# usage:
#   lt_magnet.py seed TORRENT SAVE_PATH IP PORT [dht]
#       Seeds TORRENT (announcing to the trackers it names). With `dht`, also runs a small libtorrent
#       DHT on loopback: the seeder on IP and two helper nodes on the next two addresses (same port),
#       bootstrapped from each other, and keeps announcing the torrent there. Prints READY once
#       seeding (and, with `dht`, once the nodes know each other).
#   lt_magnet.py leech MAGNET SAVE_PATH IP PORT [PEER_HOST:PORT ...]
#       Adds the magnet link, connects to the peers given, prints METADATA when the info dictionary
#       arrived and DONE when the download completes.
import sys
import time

import libtorrent as lt

mode, source, save_path, ip, port = sys.argv[1:6]
extra = sys.argv[6:]
port = int(port)
use_dht = mode == "seed" and "dht" in extra


def settings(address, dht_bootstrap=None):
    s = {
        "listen_interfaces": f"{address}:{port}",
        "enable_dht": dht_bootstrap is not None,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "outgoing_interfaces": address,
        # Shoal speaks TCP only: no waiting for a uTP connection to time out first.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
    }
    if dht_bootstrap is not None:
        s.update(
            {
                "dht_bootstrap_nodes": dht_bootstrap,
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_prefer_verified_node_ids": False,
                "dht_ignore_dark_internet": False,
                "dht_block_ratelimit": 1000,
            }
        )
    return s


def next_ip(address, n):
    parts = address.split(".")
    parts[3] = str(int(parts[3]) + n)
    return ".".join(parts)


deadline = time.time() + 120
if mode == "seed":
    mesh = [ip, next_ip(ip, 1), next_ip(ip, 2)] if use_dht else [ip]
    sessions = []
    for i, address in enumerate(mesh):
        boot = f"{mesh[(i + 1) % len(mesh)]}:{port}" if use_dht else None
        sessions.append(lt.session(settings(address, boot)))
    if use_dht:
        for s in sessions:
            for address in mesh:
                s.add_dht_node((address, port))
    handle = sessions[0].add_torrent({"ti": lt.torrent_info(source), "save_path": save_path})
    while not handle.status().is_seeding:
        if time.time() > deadline:
            sys.exit(f"never finished checking: {handle.status().state}")
        time.sleep(0.05)
    if use_dht:
        while not all(s.status().dht_nodes >= 1 for s in sessions):
            if time.time() > deadline:
                sys.exit("the libtorrent DHT nodes did not find each other")
            time.sleep(0.2)
        handle.force_dht_announce()
    print("READY", flush=True)
    last = time.time()
    while time.time() < deadline + 240:
        time.sleep(0.5)
        if use_dht and time.time() - last > 5:
            handle.force_dht_announce()
            last = time.time()
else:
    session = lt.session(settings(ip))
    params = lt.parse_magnet_uri(source)
    params.save_path = save_path
    handle = session.add_torrent(params)
    for peer in extra:
        host, peer_port = peer.rsplit(":", 1)
        handle.connect_peer((host, int(peer_port)))
    print("READY", flush=True)
    last_dial = time.time()
    said_metadata = False
    while True:
        status = handle.status()
        if status.has_metadata and not said_metadata:
            print("METADATA", flush=True)
            said_metadata = True
        if status.is_seeding:
            print("DONE", flush=True)
            break
        if time.time() > deadline:
            sys.exit(f"timed out: metadata {status.has_metadata}, progress {status.progress:.3f}")
        # Dial again now and then: an attempt in progress (encrypted first, then plain) must not be cut.
        if not status.num_peers and time.time() - last_dial > 10:
            last_dial = time.time()
            for peer in extra:
                host, peer_port = peer.rsplit(":", 1)
                handle.connect_peer((host, int(peer_port)))
        time.sleep(0.1)
    time.sleep(1)
