//! End-to-end runs of the picker in a simulated swarm, through the public API only: peers come and
//! go, choke and unchoke, some never answer (their requests time out), some pieces fail their hash
//! check once. The download must finish, with duplicate requests only in endgame.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shoal_picker::{BLOCK_LEN, BlockRef, Picker, PieceIndex, PieceState};

/// SplitMix64, for the simulation's own choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PIECES: u32 = 60;
const PIECE_LEN: u64 = 4 * BLOCK_LEN as u64;
const TIMEOUT: Duration = Duration::from_secs(20);

struct Sim {
    picker: Picker<u32>,
    rng: Rng,
    now: Instant,
    /// Requests each peer has not answered yet, in order.
    queues: BTreeMap<u32, Vec<BlockRef>>,
    /// Peers that never answer.
    silent: Vec<u32>,
    duplicates_outside_endgame: usize,
    picked: usize,
    endgame_seen: bool,
    failure_percent: u64,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let total = u64::from(PIECES - 1) * PIECE_LEN + 1000;
        Self {
            picker: Picker::new(PIECES, PIECE_LEN, total, seed).unwrap(),
            rng: Rng(seed),
            now: Instant::now(),
            queues: BTreeMap::new(),
            silent: Vec::new(),
            duplicates_outside_endgame: 0,
            picked: 0,
            endgame_seen: false,
            failure_percent: 10,
        }
    }

    fn join(&mut self, peer: u32, density_percent: u64) {
        self.picker.add_peer(peer).unwrap();
        if density_percent == 100 {
            self.picker.peer_have_all(peer).unwrap();
        } else {
            let mut bytes = vec![0u8; PIECES.div_ceil(8) as usize];
            for piece in 0..PIECES as usize {
                if self.rng.below(100) < density_percent {
                    bytes[piece / 8] |= 0x80 >> (piece % 8);
                }
            }
            self.picker.peer_bitfield(peer, &bytes).unwrap();
        }
        self.picker.peer_unchoked(peer).unwrap();
        self.queues.insert(peer, Vec::new());
    }

    fn step(&mut self) {
        self.now += Duration::from_secs(1);
        let peers: Vec<u32> = self.queues.keys().copied().collect();
        for &peer in &peers {
            let all_requested: Vec<BlockRef> = self.queues.values().flatten().copied().collect();
            // Keep at most eight requests in flight per peer.
            let room = 8usize.saturating_sub(self.queues[&peer].len());
            let picked = self.picker.pick_blocks(peer, room, self.now).unwrap();
            let endgame = self.picker.in_endgame();
            self.endgame_seen |= endgame;
            for block in &picked {
                if all_requested.contains(block) && !endgame {
                    self.duplicates_outside_endgame += 1;
                }
            }
            self.picked += picked.len();
            self.queues.get_mut(&peer).unwrap().extend(picked);
        }
        // Each answering peer serves up to four of its oldest requests.
        for &peer in &peers {
            if self.silent.contains(&peer) {
                continue;
            }
            let queue = self.queues.get_mut(&peer).unwrap();
            let served: Vec<BlockRef> = queue.drain(..queue.len().min(4)).collect();
            for block in served {
                let received = self.picker.block_received(peer, block).unwrap();
                for (other, cancelled) in &received.cancels {
                    self.queues
                        .get_mut(other)
                        .unwrap()
                        .retain(|b| b != cancelled);
                }
                if received.piece_complete {
                    // Some pieces fail their hash check.
                    if self.rng.below(100) < self.failure_percent {
                        self.picker.piece_failed(block.piece).unwrap();
                    } else {
                        self.picker.piece_verified(block.piece).unwrap();
                    }
                }
            }
        }
        for (peer, block) in self.picker.timeout_requests(self.now, TIMEOUT) {
            self.queues.get_mut(&peer).unwrap().retain(|b| *b != block);
        }
    }
}

#[test]
fn download_finishes_despite_churn_silence_and_bad_pieces() {
    for seed in 0..5 {
        let mut sim = Sim::new(seed);
        for peer in 0..6 {
            sim.join(peer, 40);
        }
        sim.join(6, 100);
        sim.silent.push(3);
        let mut steps = 0;
        while !sim.picker.is_finished() {
            steps += 1;
            assert!(
                steps < 2000,
                "seed {seed}: stuck at {} pieces",
                sim.picker.have_count()
            );
            match steps {
                10 => {
                    // Peer 0 chokes us; its requests go back to the pool.
                    let returned = sim.picker.peer_choked(0).unwrap();
                    assert_eq!(returned.len(), sim.queues[&0].len());
                    sim.queues.get_mut(&0).unwrap().clear();
                }
                25 => sim.picker.peer_unchoked(0).unwrap(),
                30 => {
                    // Peer 1 disconnects.
                    let returned = sim.picker.remove_peer(1).unwrap();
                    assert_eq!(returned, sim.queues.remove(&1).unwrap());
                }
                _ => {}
            }
            sim.step();
        }
        assert_eq!(sim.picker.have_count(), PIECES);
        assert_eq!(sim.duplicates_outside_endgame, 0);
        assert!(sim.endgame_seen);
        assert!(sim.picked > (PIECES as usize - 1) * 4);
        for piece in 0..PIECES {
            assert_eq!(
                sim.picker.piece_state(PieceIndex(piece)),
                Some(PieceState::Verified)
            );
        }
    }
}

/// How many pieces from the first one are verified once half the torrent is.
fn prefix_at_half(window: Option<u32>) -> u32 {
    let mut sim = Sim::new(11);
    sim.failure_percent = 0;
    sim.picker.set_sequential(window);
    for peer in 0..4 {
        sim.join(peer, 100);
    }
    while sim.picker.have_count() < PIECES / 2 {
        sim.step();
    }
    (0..PIECES)
        .take_while(|&piece| sim.picker.has_piece(PieceIndex(piece)))
        .count() as u32
}

#[test]
fn streaming_window_gets_the_start_of_the_file_first() {
    let sequential = prefix_at_half(Some(4));
    let rarest_first = prefix_at_half(None);
    // Half of the bandwidth goes to the window, the rest to rarest-first pieces past it (which keeps
    // the swarm healthy): of the 30 pieces verified, 18 form the start of the file, against 2 without
    // the window.
    assert!(sequential >= 15, "{sequential}");
    assert!(rarest_first < 8, "{rarest_first}");
}
