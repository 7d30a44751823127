//! Properties of the picker under random sequences of peer messages, picks, arrivals, rejections,
//! time-outs, hash results and priority changes, checked against a simple model:
//!
//! - a pick never names a piece the peer lacks, a skipped piece, a block already received, or (while
//!   the peer chokes us) a piece it did not allow fast;
//! - outside endgame a block is never requested twice, and never twice from the same peer at all;
//! - given-back requests (choke, disconnect, time-out) are exactly the model's outstanding ones, and
//!   endgame cancels name exactly the other peers that had the block requested;
//! - after the random phase, unchoking everyone and serving every request downloads every wanted piece
//!   that some peer has.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use shoal_picker::{BLOCK_LEN, BlockRef, Picker, PieceIndex, Priority};

const PEERS: u8 = 5;
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
enum Op {
    AddPeer(u8),
    Bitfield(u8, Vec<bool>),
    Have(u8, u32),
    HaveAll(u8),
    HaveNone(u8),
    Remove(u8),
    Choke(u8),
    Unchoke(u8),
    AllowedFast(u8, u32),
    Suggest(u8, u32),
    PiecePriority(u32, Priority),
    /// File lengths as weights, with priorities; the files cover the torrent.
    FilePriorities(Vec<(u8, Priority)>),
    Sequential(Option<u32>),
    Pick(u8, usize),
    /// Index into the outstanding requests.
    Receive(usize),
    Reject(usize),
    /// Seconds to advance the clock before timing out requests.
    Timeout(u64),
    /// Index into the pieces awaiting their hash check, and whether it passes.
    Hash(usize, bool),
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        2 => Just(Priority::Skip),
        1 => Just(Priority::Low),
        3 => Just(Priority::Normal),
        1 => Just(Priority::High),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0..PEERS;
    let piece = 0..64u32;
    prop_oneof![
        3 => peer.clone().prop_map(Op::AddPeer),
        2 => (peer.clone(), prop::collection::vec(any::<bool>(), 64)).prop_map(|(p, b)| Op::Bitfield(p, b)),
        3 => (peer.clone(), piece.clone()).prop_map(|(p, i)| Op::Have(p, i)),
        1 => peer.clone().prop_map(Op::HaveAll),
        1 => peer.clone().prop_map(Op::HaveNone),
        1 => peer.clone().prop_map(Op::Remove),
        1 => peer.clone().prop_map(Op::Choke),
        3 => peer.clone().prop_map(Op::Unchoke),
        1 => (peer.clone(), piece.clone()).prop_map(|(p, i)| Op::AllowedFast(p, i)),
        1 => (peer.clone(), piece.clone()).prop_map(|(p, i)| Op::Suggest(p, i)),
        2 => (piece, priority()).prop_map(|(i, p)| Op::PiecePriority(i, p)),
        1 => prop::collection::vec((0..4u8, priority()), 1..5).prop_map(Op::FilePriorities),
        1 => prop_oneof![Just(None), (0..4u32).prop_map(Some)].prop_map(Op::Sequential),
        8 => (peer.clone(), 1..8usize).prop_map(|(p, m)| Op::Pick(p, m)),
        6 => any::<usize>().prop_map(Op::Receive),
        1 => any::<usize>().prop_map(Op::Reject),
        1 => (0..3u64).prop_map(Op::Timeout),
        2 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::Hash(i, ok)),
    ]
}

/// What the test knows about a peer.
#[derive(Debug)]
struct PeerModel {
    has: Vec<bool>,
    choked: bool,
    allowed_fast: BTreeSet<u32>,
}

/// The test's own account of the download, to judge the picker by.
struct Model {
    picker: Picker<u8>,
    n_pieces: u32,
    piece_len: u64,
    total_len: u64,
    now: Instant,
    peers: BTreeMap<u8, PeerModel>,
    priorities: Vec<Priority>,
    /// Outstanding requests: peer, block, when sent.
    outstanding: Vec<(u8, BlockRef, Instant)>,
    /// Blocks received and not thrown away by a failed hash check.
    received: BTreeSet<BlockRef>,
    awaiting_hash: Vec<u32>,
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

impl Model {
    fn new(n_pieces: u32, piece_len: u64, last_len: u64, seed: u64) -> Self {
        let total_len = u64::from(n_pieces - 1) * piece_len + last_len;
        Self {
            picker: Picker::new(n_pieces, piece_len, total_len, seed).unwrap(),
            n_pieces,
            piece_len,
            total_len,
            now: Instant::now(),
            peers: BTreeMap::new(),
            priorities: vec![Priority::Normal; n_pieces as usize],
            outstanding: Vec::new(),
            received: BTreeSet::new(),
            awaiting_hash: Vec::new(),
        }
    }

    fn blocks_of(&self, piece: u32) -> Vec<BlockRef> {
        let size = if piece + 1 == self.n_pieces {
            self.total_len - u64::from(piece) * self.piece_len
        } else {
            self.piece_len
        } as u32;
        (0..size.div_ceil(BLOCK_LEN))
            .map(|n| BlockRef {
                piece: PieceIndex(piece),
                offset: n * BLOCK_LEN,
                len: (size - n * BLOCK_LEN).min(BLOCK_LEN),
            })
            .collect()
    }

    fn outstanding_of(&self, peer: u8) -> Vec<BlockRef> {
        self.outstanding
            .iter()
            .filter(|(p, _, _)| *p == peer)
            .map(|(_, b, _)| *b)
            .collect()
    }

    fn apply(&mut self, op: Op) {
        let n = self.n_pieces;
        match op {
            Op::AddPeer(peer) => {
                let known = self.peers.contains_key(&peer);
                assert_eq!(self.picker.add_peer(peer).is_ok(), !known);
                self.peers.entry(peer).or_insert(PeerModel {
                    has: vec![false; n as usize],
                    choked: true,
                    allowed_fast: BTreeSet::new(),
                });
            }
            Op::Bitfield(peer, bits) => {
                let mut bytes = vec![0u8; n.div_ceil(8) as usize];
                for (i, _) in bits
                    .iter()
                    .enumerate()
                    .take(n as usize)
                    .filter(|(_, b)| **b)
                {
                    bytes[i / 8] |= 0x80 >> (i % 8);
                }
                let result = self.picker.peer_bitfield(peer, &bytes);
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.has = bits[..n as usize].to_vec();
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::Have(peer, piece) => {
                let piece = piece % n;
                let result = self.picker.peer_have(peer, PieceIndex(piece));
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.has[piece as usize] = true;
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::HaveAll(peer) => {
                let result = self.picker.peer_have_all(peer);
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.has.fill(true);
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::HaveNone(peer) => {
                let result = self.picker.peer_have_none(peer);
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.has.fill(false);
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::Remove(peer) => {
                let result = self.picker.remove_peer(peer);
                if self.peers.remove(&peer).is_some() {
                    assert_eq!(sorted(result.unwrap()), sorted(self.outstanding_of(peer)));
                    self.outstanding.retain(|(p, _, _)| *p != peer);
                } else {
                    assert!(result.is_err());
                }
            }
            Op::Choke(peer) => {
                let result = self.picker.peer_choked(peer);
                if let Some(model) = self.peers.get_mut(&peer) {
                    model.choked = true;
                    let fast = model.allowed_fast.clone();
                    let expected: Vec<BlockRef> = self
                        .outstanding_of(peer)
                        .into_iter()
                        .filter(|b| !fast.contains(&b.piece.0))
                        .collect();
                    assert_eq!(sorted(result.unwrap()), sorted(expected));
                    self.outstanding
                        .retain(|(p, b, _)| *p != peer || fast.contains(&b.piece.0));
                } else {
                    assert!(result.is_err());
                }
            }
            Op::Unchoke(peer) => {
                let result = self.picker.peer_unchoked(peer);
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.choked = false;
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::AllowedFast(peer, piece) => {
                let piece = piece % n;
                let result = self.picker.peer_allowed_fast(peer, PieceIndex(piece));
                match self.peers.get_mut(&peer) {
                    Some(model) => {
                        result.unwrap();
                        model.allowed_fast.insert(piece);
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::Suggest(peer, piece) => {
                let result = self.picker.peer_suggest(peer, PieceIndex(piece % n));
                assert_eq!(result.is_ok(), self.peers.contains_key(&peer));
            }
            Op::PiecePriority(piece, priority) => {
                let piece = piece % n;
                self.picker
                    .set_piece_priority(PieceIndex(piece), priority)
                    .unwrap();
                self.priorities[piece as usize] = priority;
            }
            Op::FilePriorities(files) => self.set_files(&files),
            Op::Sequential(window) => self.picker.set_sequential(window),
            Op::Pick(peer, max) => {
                let result = self.picker.pick_blocks(peer, max, self.now);
                if self.peers.contains_key(&peer) {
                    let picked = result.unwrap();
                    self.check_picked(peer, max, &picked);
                } else {
                    assert!(result.is_err());
                }
            }
            Op::Receive(idx) => {
                if !self.outstanding.is_empty() {
                    let (peer, block, _) = self.outstanding[idx % self.outstanding.len()];
                    self.receive(peer, block);
                }
            }
            Op::Reject(idx) => {
                if !self.outstanding.is_empty() {
                    let (peer, block, _) = self.outstanding.remove(idx % self.outstanding.len());
                    assert_eq!(self.picker.request_rejected(peer, block), Ok(true));
                }
            }
            Op::Timeout(secs) => {
                self.now += Duration::from_secs(secs);
                let withdrawn = self.picker.timeout_requests(self.now, TIMEOUT);
                let now = self.now;
                let (expired, kept): (Vec<_>, Vec<_>) = self
                    .outstanding
                    .iter()
                    .partition(|(_, _, sent)| now.duration_since(*sent) >= TIMEOUT);
                let expected: Vec<(u8, BlockRef)> =
                    expired.iter().map(|(p, b, _)| (*p, *b)).collect();
                assert_eq!(sorted(withdrawn), sorted(expected));
                self.outstanding = kept;
            }
            Op::Hash(idx, ok) => {
                if !self.awaiting_hash.is_empty() {
                    let piece = self
                        .awaiting_hash
                        .swap_remove(idx % self.awaiting_hash.len());
                    self.hash_result(piece, ok);
                }
            }
        }
    }

    fn set_files(&mut self, files: &[(u8, Priority)]) {
        // Split the torrent at points given by the weights; zero weights make empty files.
        let weight: u64 = files.iter().map(|(w, _)| u64::from(*w)).sum::<u64>().max(1);
        let mut ranges: Vec<(Range<u64>, Priority)> = Vec::new();
        let mut start = 0;
        let mut acc = 0;
        for (i, (w, priority)) in files.iter().enumerate() {
            acc += u64::from(*w);
            let end = if i + 1 == files.len() {
                self.total_len
            } else {
                self.total_len * acc / weight
            };
            ranges.push((start..end, *priority));
            start = end;
        }
        self.picker.set_file_priorities(&ranges).unwrap();
        for piece in 0..u64::from(self.n_pieces) {
            let piece_range =
                piece * self.piece_len..((piece + 1) * self.piece_len).min(self.total_len);
            let touching = ranges
                .iter()
                .filter(|(r, _)| {
                    !r.is_empty() && r.start < piece_range.end && piece_range.start < r.end
                })
                .map(|(_, p)| *p);
            if let Some(priority) = touching.max() {
                self.priorities[piece as usize] = priority;
            }
        }
        for piece in 0..self.n_pieces {
            assert_eq!(
                self.picker.piece_priority(PieceIndex(piece)),
                Some(self.priorities[piece as usize])
            );
        }
    }

    fn check_picked(&mut self, peer: u8, max: usize, picked: &[BlockRef]) {
        assert!(picked.len() <= max);
        let model = &self.peers[&peer];
        let in_endgame = self.picker.in_endgame();
        for (i, block) in picked.iter().enumerate() {
            let piece = block.piece.0;
            assert!(model.has[piece as usize], "peer {peer} lacks piece {piece}");
            assert_ne!(
                self.priorities[piece as usize],
                Priority::Skip,
                "skipped piece {piece}"
            );
            assert!(
                !self.received.contains(block),
                "already received: {block:?}"
            );
            assert!(
                !model.choked || model.allowed_fast.contains(&piece),
                "choked, not allowed fast: {piece}"
            );
            assert!(!picked[..i].contains(block), "same block twice in one pick");
            let requesters: Vec<u8> = self
                .outstanding
                .iter()
                .filter(|(_, b, _)| b == block)
                .map(|(p, _, _)| *p)
                .collect();
            assert!(
                !requesters.contains(&peer),
                "same block twice from peer {peer}"
            );
            assert!(
                requesters.is_empty() || in_endgame,
                "duplicate request outside endgame"
            );
        }
        self.outstanding
            .extend(picked.iter().map(|b| (peer, *b, self.now)));
    }

    fn receive(&mut self, peer: u8, block: BlockRef) {
        let received = self.picker.block_received(peer, block).unwrap();
        let is_new = !self.received.contains(&block);
        assert_eq!(received.is_new, is_new);
        let others: Vec<(u8, BlockRef)> = self
            .outstanding
            .iter()
            .filter(|(p, b, _)| *b == block && *p != peer)
            .map(|(p, b, _)| (*p, *b))
            .collect();
        assert_eq!(
            sorted(received.cancels),
            if is_new { sorted(others) } else { Vec::new() }
        );
        self.outstanding
            .retain(|(p, b, _)| *b != block || (!is_new && *p != peer));
        if is_new {
            self.received.insert(block);
            let piece = block.piece.0;
            let complete = self
                .blocks_of(piece)
                .iter()
                .all(|b| self.received.contains(b));
            assert_eq!(received.piece_complete, complete);
            if complete {
                self.awaiting_hash.push(piece);
            }
        }
    }

    fn hash_result(&mut self, piece: u32, ok: bool) {
        if ok {
            assert_eq!(
                self.picker.piece_verified(PieceIndex(piece)),
                Ok(Vec::new())
            );
        } else {
            self.picker.piece_failed(PieceIndex(piece)).unwrap();
            for block in self.blocks_of(piece) {
                self.received.remove(&block);
            }
        }
    }

    /// Everyone unchokes us and serves every request; all wanted pieces some peer has must arrive.
    fn complete(&mut self) {
        for piece in std::mem::take(&mut self.awaiting_hash) {
            self.hash_result(piece, true);
        }
        let peers: Vec<u8> = self.peers.keys().copied().collect();
        for &peer in &peers {
            self.apply(Op::Unchoke(peer));
        }
        for _round in 0..10_000 {
            for &peer in &peers {
                self.apply(Op::Pick(peer, 8));
            }
            if self.outstanding.is_empty() {
                break;
            }
            while let Some(&(peer, block, _)) = self.outstanding.first() {
                self.receive(peer, block);
                for piece in std::mem::take(&mut self.awaiting_hash) {
                    self.hash_result(piece, true);
                }
            }
        }
        assert!(
            self.outstanding.is_empty(),
            "requests left after the completion loop"
        );
        for piece in 0..self.n_pieces {
            let wanted = self.priorities[piece as usize] != Priority::Skip;
            let available = self.peers.values().any(|p| p.has[piece as usize]);
            if wanted && available {
                assert!(
                    self.picker.has_piece(PieceIndex(piece)),
                    "piece {piece} never downloaded"
                );
            }
        }
        // Finished means every wanted piece is ours (some may have come from peers since gone).
        let all_wanted_verified = (0..self.n_pieces).all(|piece| {
            self.priorities[piece as usize] == Priority::Skip
                || self.picker.has_piece(PieceIndex(piece))
        });
        assert_eq!(self.picker.is_finished(), all_wanted_verified);
    }
}

fn geometry() -> impl Strategy<Value = (u32, u64, u64)> {
    (
        1..24u32,
        prop_oneof![
            Just(1000u64),
            Just(u64::from(BLOCK_LEN)),
            Just(3 * u64::from(BLOCK_LEN) + 7)
        ],
    )
        .prop_flat_map(|(n, len)| (Just(n), Just(len), 1..=len))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_operations_then_completion((n_pieces, piece_len, last_len) in geometry(),
                                         seed in any::<u64>(),
                                         ops in prop::collection::vec(op(), 0..150)) {
        let mut model = Model::new(n_pieces, piece_len, last_len, seed);
        for op in ops {
            model.apply(op);
        }
        model.complete();
    }
}

/// The completion phase alone, with every peer a seed: the whole torrent arrives, in endgame at the
/// end, and the picker says so.
#[test]
fn whole_torrent_from_seeds() {
    let mut model = Model::new(20, 3 * u64::from(BLOCK_LEN), 100, 5);
    for peer in 0..3 {
        model.apply(Op::AddPeer(peer));
        model.apply(Op::HaveAll(peer));
    }
    model.complete();
    assert!(model.picker.is_finished());
    assert_eq!(model.picker.have_count(), 20);
}
