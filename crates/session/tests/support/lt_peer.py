# A python3-libtorrent peer for Shoal's interop tests, on loopback only.
# usage: lt_peer.py seed|partial|leech TORRENT SAVE_PATH PORT [enc=forced|enc=disabled] [PEER_HOST:PORT ...]
# enc=forced: message stream encryption with RC4 both ways, plaintext refused; enc=disabled: plaintext
# only. Without it, libtorrent's default (either, its choice).
# Prints READY when it is listening (and, seeding, has checked its data; `partial`: has checked the part
# of the data it holds), DONE when a leech completes.
import sys
import time

import libtorrent as lt

mode, torrent, save_path, port = sys.argv[1:5]
options = [a for a in sys.argv[5:] if a.startswith("enc=")]
peers = [a for a in sys.argv[5:] if not a.startswith("enc=")]
settings = {
    "listen_interfaces": f"127.0.0.1:{port}",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "outgoing_interfaces": "127.0.0.1",
}
for option in options:
    policy = option.split("=", 1)[1]
    if policy == "forced":
        settings.update(
            {
                "in_enc_policy": int(lt.enc_policy.forced),
                "out_enc_policy": int(lt.enc_policy.forced),
                "allowed_enc_level": int(lt.enc_level.rc4),
            }
        )
    elif policy == "disabled":
        settings.update(
            {
                "in_enc_policy": int(lt.enc_policy.disabled),
                "out_enc_policy": int(lt.enc_policy.disabled),
            }
        )
    else:
        sys.exit(f"unknown option {option}")
session = lt.session(settings)
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save_path})
deadline = time.time() + 120
if mode == "seed":
    while not handle.status().is_seeding:
        if time.time() > deadline:
            sys.exit(f"never finished checking: {handle.status().state}")
        time.sleep(0.05)
elif mode == "partial":
    checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    while handle.status().state in checking or handle.status().num_pieces == 0:
        if time.time() > deadline:
            sys.exit(f"never finished checking: {handle.status().state}")
        time.sleep(0.05)
print("READY", flush=True)
for peer in peers:
    host, peer_port = peer.rsplit(":", 1)
    handle.connect_peer((host, int(peer_port)))
while True:
    status = handle.status()
    if mode == "leech" and status.is_seeding:
        print("DONE", flush=True)
    if time.time() > deadline:
        sys.exit(f"timed out: progress {status.progress:.3f}, {status.num_peers} peers")
    time.sleep(0.1)
