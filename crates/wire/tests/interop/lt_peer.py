"""Helper for shoal-wire's interop tests, run by Debian's /usr/bin/python3 (where libtorrent imports).

    lt_peer.py create DIR    makes DIR/test.torrent (v1 only, 16 KiB pieces) from DIR/data
    lt_peer.py seed DIR      also seeds it on 127.0.0.1 (DHT, LSD, UPnP, NAT-PMP off), prints
                             "READY <port>" once seeding, then runs until killed

The torrent is made with libtorrent's own API so this crate's tests do not depend on Shoal's torrent
creation.
"""
import os
import sys
import time

import libtorrent as lt


def create(root):
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(root, "data"))
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    ct.set_creator("shoal-wire interop test")
    lt.set_piece_hashes(ct, root)
    path = os.path.join(root, "test.torrent")
    with open(path, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    return path


def seed(root, path):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    })
    handle = ses.add_torrent({"ti": lt.torrent_info(path), "save_path": root})
    deadline = time.time() + 30
    while not handle.status().is_seeding:
        if time.time() > deadline:
            sys.exit("libtorrent did not start seeding within 30 s: %s" % handle.status().state)
        time.sleep(0.05)
    print("READY %d" % ses.listen_port(), flush=True)
    while True:
        time.sleep(3600)


def main():
    mode, root = sys.argv[1], sys.argv[2]
    path = create(root)
    if mode == "seed":
        seed(root, path)
    else:
        print("CREATED", flush=True)


main()
