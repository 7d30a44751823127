//! The [`Picker`] state machine.
//!
//! # Data structures
//!
//! Each piece is in one of four states: not started, downloading (it has a [`Partial`] record with one
//! [`Block`] state per block), awaiting its hash check, or verified. Pieces we want (priority other than
//! skip) and could still request blocks of are indexed so that a pick never scans all pieces:
//!
//! - not-started pieces sit in *availability buckets*, one `Vec` per (priority, number of non-seed peers
//!   that have the piece). A `have` moves a piece to the next bucket with a `swap_remove` and a `push`:
//!   O(1). A bitmask per priority marks the non-empty buckets, so the rarest one is found with
//!   `trailing_zeros`. Seeds are only counted (`n_seeds`): they add the same to every piece, so they do
//!   not change the order, and a seed joining or leaving costs O(1) instead of O(pieces).
//! - downloading pieces that still have unrequested blocks sit in a list per priority, so they are
//!   finished before new pieces are started.
//!
//! Every structure that depends on a piece's state, priority, availability or free-block count is kept
//! right by one pair of functions: [`Picker::untrack`] removes the piece's contribution, the caller
//! changes the piece, and [`Picker::track`] adds it back.
//!
//! # Cost of a pick
//!
//! For a peer that is a seed, a new piece is the random member of the rarest bucket: O(1). For other
//! peers the rarest buckets are scanned from a random start until a piece the peer has is found; after
//! [`SCAN_BUDGET`] misses the search switches to intersecting the peer's bitfield with the set of
//! startable pieces a word at a time (O(pieces / 64)), which still yields the exact rarest piece since
//! the buckets already passed held none of the peer's pieces. Each piece found yields all of its free
//! blocks, so the per-block cost is amortised O(1) for typical peers.
//!
//! Requests are kept per peer in a queue, oldest first, so time-outs look only at queue fronts.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::bitset::{Bitset, words_clear, words_next_one, words_set};
use crate::rng::Rng;
use crate::{BLOCK_LEN, BlockRef, PickerError, PieceIndex, PieceState, Priority, Received};

/// Number of wanted priorities (low, normal, high), each with its own candidate lists.
const LEVELS: usize = 3;

/// Pieces probed in the availability buckets before intersecting bitfields instead.
const SCAN_BUDGET: usize = 64;

/// At most this many allowed-fast pieces are remembered per peer; BEP 6 suggests 10, and a hostile peer
/// must not make us grow without bound.
const MAX_ALLOWED_FAST: usize = 256;

/// At most this many suggested pieces are remembered per peer (the newest win).
const MAX_SUGGESTED: usize = 64;

/// At most this many block-state vectors are kept for reuse.
const MAX_SPARE_BLOCKS: usize = 256;

/// The message for peer slots that must be live by construction.
const LIVE: &str = "peer slot is live";

/// A piece's download state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Nothing requested or received.
    New,
    /// Downloading; the index of its record in `partials`.
    Partial(u32),
    /// All blocks received, awaiting the hash check.
    Complete,
    /// Verified.
    Have,
}

/// One block of a downloading piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// Neither requested nor received.
    Free,
    /// Requested from this many peers (more than one only in endgame).
    Requested(u32),
    /// Received.
    Received,
}

/// The block states of a downloading piece.
#[derive(Clone, Debug)]
struct Partial {
    piece: u32,
    blocks: Vec<Block>,
    n_free: u32,
    n_received: u32,
    /// Every block before this one is requested or received.
    hint: u32,
}

/// One outstanding request to a peer.
#[derive(Clone, Copy, Debug)]
struct Request {
    piece: u32,
    block: u32,
    sent: Instant,
}

/// What we know about one peer.
#[derive(Clone, Debug)]
struct Peer<P> {
    key: P,
    /// The peer has every piece (`have_all`, a full bitfield, or `have`s adding up to all); `bits` is then
    /// empty and the peer is counted in `n_seeds` rather than per piece.
    seed: bool,
    bits: Bitset,
    n_have: u32,
    /// The peer chokes us; connections start choked (BEP 3).
    choked: bool,
    /// Outstanding requests, oldest first.
    requests: VecDeque<Request>,
    allowed_fast: Vec<u32>,
    suggested: Vec<u32>,
}

impl<P> Peer<P> {
    #[inline]
    fn has(&self, piece: u32) -> bool {
        self.seed || self.bits.get(piece as usize)
    }
}

/// In endgame, the most peers one block is requested from at once.
const MAX_ENDGAME_REQUESTS: u32 = 2;
/// In endgame, the most duplicate requests one pick adds.
const MAX_ENDGAME_PICKS: usize = 4;

/// The piece picker: decides which blocks to request from which peer.
///
/// `P` is the caller's handle for a peer (an id, an address, a slab key); it is copied into the
/// answers that name peers, such as the cancels of [`Received`].
///
/// The picker is a pure state machine: it does no IO, never reads the clock (operations that care
/// about time take `now`) and draws its randomness from a generator seeded in [`Picker::new`], so the
/// same inputs give the same outputs.
///
/// Peers start choked (BEP 3): call [`Picker::peer_unchoked`] when the peer unchokes us.
#[derive(Clone, Debug)]
pub struct Picker<P> {
    piece_len: u32,
    total_len: u64,
    n_pieces: u32,

    status: Vec<Status>,
    priority: Vec<Priority>,
    /// Non-seed peers that have each piece.
    count: Vec<u32>,
    /// A piece's position in its bucket or in its `partial_free` list.
    pos: Vec<u32>,

    /// `buckets[level][count]`: not-started wanted pieces, by priority and availability.
    buckets: [Vec<Vec<u32>>; LEVELS],
    /// `nonempty[level]`: bit `count` set when `buckets[level][count]` is not empty.
    nonempty: [Vec<u64>; LEVELS],
    /// `startable[level]`: the pieces in `buckets[level]`, as a bitset.
    startable: [Bitset; LEVELS],
    /// Downloading wanted pieces with at least one free block, by priority.
    partial_free: [Vec<u32>; LEVELS],
    partials: Vec<Partial>,
    spare_blocks: Vec<Vec<Block>>,

    /// `histogram[c]`: pieces that `c` non-seed peers have.
    histogram: Vec<u32>,
    n_seeds: u32,

    peers: Vec<Option<Peer<P>>>,
    free_slots: Vec<u32>,
    /// Only looked up, never iterated, so its per-process hashing keys cannot change the answers; peers
    /// are visited in slot order.
    slots: HashMap<P, u32>,

    /// Free blocks of wanted, unfinished pieces.
    free_total: u64,
    /// The part of `free_total` in pieces no non-seed peer has.
    free_unavailable: u64,
    /// Blocks in the requested state (not requests: an endgame block requested twice counts once).
    n_requested_blocks: u64,
    n_have: u32,
    /// Wanted pieces not verified yet.
    n_wanted_missing: u32,

    sequential: Option<u32>,
    /// Every piece before it is complete, verified or skipped.
    seq_cursor: u32,

    rng: Rng,
}

/// The length of block `block` of a piece of `piece_size` bytes.
fn block_ref(piece: u32, block: u32, piece_size: u32) -> BlockRef {
    let offset = block * BLOCK_LEN;
    BlockRef {
        piece: PieceIndex(piece),
        offset,
        len: (piece_size - offset).min(BLOCK_LEN),
    }
}

/// Removes `piece` from a list that records positions in `pos`.
fn list_remove(list: &mut Vec<u32>, pos: &mut [u32], piece: u32) {
    let at = pos[piece as usize] as usize;
    debug_assert_eq!(list[at], piece);
    list.swap_remove(at);
    if let Some(&moved) = list.get(at) {
        pos[moved as usize] = at as u32;
    }
}

/// Appends `piece` to a list that records positions in `pos`.
fn list_push(list: &mut Vec<u32>, pos: &mut [u32], piece: u32) {
    pos[piece as usize] = list.len() as u32;
    list.push(piece);
}

/// Finds the rarest piece in both `have` and `startable`, starting at a random word so that ties are
/// broken at random; returns early on a piece with availability `floor`, the lowest possible.
fn rarest_by_intersection(
    have: &[u64],
    startable: &[u64],
    count: &[u32],
    floor: u32,
    rng: &mut Rng,
) -> Option<u32> {
    let n_words = have.len().min(startable.len());
    if n_words == 0 {
        return None;
    }
    let start = rng.below(n_words);
    let mut best: Option<(u32, u32)> = None;
    for k in 0..n_words {
        let word_idx = (start + k) % n_words;
        let mut word = have[word_idx] & startable[word_idx];
        while word != 0 {
            let piece = (word_idx * 64 + word.trailing_zeros() as usize) as u32;
            word &= word - 1;
            let c = count[piece as usize];
            if best.is_none_or(|(best_count, _)| c < best_count) {
                if c <= floor {
                    return Some(piece);
                }
                best = Some((c, piece));
            }
        }
    }
    best.map(|(_, piece)| piece)
}

impl<P: Copy + Eq + Hash> Picker<P> {
    /// Creates a picker for `piece_count` pieces of `piece_len` bytes, `total_len` bytes in all (the last
    /// piece holds the rest), with no peers and no piece verified. Every piece starts at
    /// [`Priority::Normal`]. `seed` seeds the random tie-breaks.
    ///
    /// # Errors
    ///
    /// [`PickerError::BadPieceLength`] if `piece_len` is 0 or does not fit in a `u32`, and
    /// [`PickerError::BadGeometry`] unless `piece_count` is `total_len / piece_len` rounded up, at least 1
    /// and below `u32::MAX`.
    pub fn new(
        piece_count: u32,
        piece_len: u64,
        total_len: u64,
        seed: u64,
    ) -> Result<Self, PickerError> {
        let piece_len_u32 = u32::try_from(piece_len)
            .ok()
            .filter(|&len| len > 0)
            .ok_or(PickerError::BadPieceLength(piece_len))?;
        if piece_count == 0
            || piece_count == u32::MAX
            || total_len.div_ceil(piece_len) != u64::from(piece_count)
        {
            return Err(PickerError::BadGeometry {
                piece_count,
                piece_len,
                total_len,
            });
        }
        let n = piece_count as usize;
        let mut picker = Self {
            piece_len: piece_len_u32,
            total_len,
            n_pieces: piece_count,
            status: vec![Status::New; n],
            priority: vec![Priority::Normal; n],
            count: vec![0; n],
            pos: vec![0; n],
            buckets: Default::default(),
            nonempty: Default::default(),
            startable: [Bitset::new(n), Bitset::new(n), Bitset::new(n)],
            partial_free: Default::default(),
            partials: Vec::new(),
            spare_blocks: Vec::new(),
            histogram: vec![piece_count],
            n_seeds: 0,
            peers: Vec::new(),
            free_slots: Vec::new(),
            slots: HashMap::new(),
            free_total: 0,
            free_unavailable: 0,
            n_requested_blocks: 0,
            n_have: 0,
            n_wanted_missing: 0,
            sequential: None,
            seq_cursor: 0,
            rng: Rng::new(seed),
        };
        // Pieces enter their bucket in random order: together with random probing this makes ties
        // between equally rare pieces random.
        let mut order: Vec<u32> = (0..piece_count).collect();
        for i in (1..order.len()).rev() {
            let j = picker.rng.below(i + 1);
            order.swap(i, j);
        }
        for piece in order {
            picker.track(piece);
        }
        Ok(picker)
    }

    // ----- Geometry -----------------------------------------------------------------------------

    /// The number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.n_pieces
    }

    /// The size in bytes of `piece`, or `None` if it is out of range.
    pub fn piece_size(&self, piece: PieceIndex) -> Option<u32> {
        (piece.0 < self.n_pieces).then(|| self.size_of(piece.0))
    }

    /// The number of blocks of `piece`, or `None` if it is out of range.
    pub fn block_count(&self, piece: PieceIndex) -> Option<u32> {
        (piece.0 < self.n_pieces).then(|| self.blocks_of(piece.0))
    }

    fn size_of(&self, piece: u32) -> u32 {
        if piece + 1 == self.n_pieces {
            (self.total_len - u64::from(piece) * u64::from(self.piece_len)) as u32
        } else {
            self.piece_len
        }
    }

    fn blocks_of(&self, piece: u32) -> u32 {
        self.size_of(piece).div_ceil(BLOCK_LEN)
    }

    fn block_ref(&self, piece: u32, block: u32) -> BlockRef {
        block_ref(piece, block, self.size_of(piece))
    }

    fn check_piece(&self, piece: PieceIndex) -> Result<u32, PickerError> {
        if piece.0 < self.n_pieces {
            Ok(piece.0)
        } else {
            Err(PickerError::PieceOutOfRange(piece.0))
        }
    }

    /// Checks that `block` is a block of its piece and returns (piece, block number).
    fn check_block(&self, block: BlockRef) -> Result<(u32, u32), PickerError> {
        let piece = self.check_piece(block.piece)?;
        let number = block.offset / BLOCK_LEN;
        if !block.offset.is_multiple_of(BLOCK_LEN)
            || number >= self.blocks_of(piece)
            || block_ref(piece, number, self.size_of(piece)).len != block.len
        {
            return Err(PickerError::InvalidBlock {
                piece,
                offset: block.offset,
                len: block.len,
            });
        }
        Ok((piece, number))
    }

    // ----- Index maintenance --------------------------------------------------------------------

    /// Adds a piece's contribution to the candidate lists and counters, as its current state says.
    fn track(&mut self, piece: u32) {
        let i = piece as usize;
        let Some(level) = self.priority[i].level() else {
            return;
        };
        let free = match self.status[i] {
            Status::Have => return,
            Status::Complete => 0,
            Status::New => {
                let c = self.count[i] as usize;
                let buckets = &mut self.buckets[level];
                if buckets.len() <= c {
                    buckets.resize_with(c + 1, Vec::new);
                }
                list_push(&mut buckets[c], &mut self.pos, piece);
                if buckets[c].len() == 1 {
                    words_set(&mut self.nonempty[level], c);
                }
                self.startable[level].set(i);
                self.blocks_of(piece)
            }
            Status::Partial(idx) => {
                let n_free = self.partials[idx as usize].n_free;
                if n_free > 0 {
                    list_push(&mut self.partial_free[level], &mut self.pos, piece);
                }
                n_free
            }
        };
        self.n_wanted_missing += 1;
        self.free_total += u64::from(free);
        if self.count[i] == 0 {
            self.free_unavailable += u64::from(free);
        }
    }

    /// Removes a piece's contribution to the candidate lists and counters; the exact inverse of
    /// [`Self::track`] for an unchanged piece.
    fn untrack(&mut self, piece: u32) {
        let i = piece as usize;
        let Some(level) = self.priority[i].level() else {
            return;
        };
        let free = match self.status[i] {
            Status::Have => return,
            Status::Complete => 0,
            Status::New => {
                let c = self.count[i] as usize;
                let bucket = &mut self.buckets[level][c];
                list_remove(bucket, &mut self.pos, piece);
                if bucket.is_empty() {
                    words_clear(&mut self.nonempty[level], c);
                }
                self.startable[level].clear(i);
                self.blocks_of(piece)
            }
            Status::Partial(idx) => {
                let n_free = self.partials[idx as usize].n_free;
                if n_free > 0 {
                    list_remove(&mut self.partial_free[level], &mut self.pos, piece);
                }
                n_free
            }
        };
        self.n_wanted_missing -= 1;
        self.free_total -= u64::from(free);
        if self.count[i] == 0 {
            self.free_unavailable -= u64::from(free);
        }
    }

    /// Adds or removes one non-seed peer having `piece`.
    fn change_count(&mut self, piece: u32, up: bool) {
        self.untrack(piece);
        let c = &mut self.count[piece as usize];
        self.histogram[*c as usize] -= 1;
        if up {
            *c += 1;
        } else {
            *c -= 1;
        }
        let c = *c as usize;
        if self.histogram.len() <= c {
            self.histogram.resize(c + 1, 0);
        }
        self.histogram[c] += 1;
        self.track(piece);
    }

    /// Gives a not-started piece a block-state record. Call between `untrack` and `track`.
    fn start_partial(&mut self, piece: u32) -> u32 {
        let n = self.blocks_of(piece);
        let mut blocks = self.spare_blocks.pop().unwrap_or_default();
        blocks.clear();
        blocks.resize(n as usize, Block::Free);
        let idx = self.partials.len() as u32;
        self.partials.push(Partial {
            piece,
            blocks,
            n_free: n,
            n_received: 0,
            hint: 0,
        });
        self.status[piece as usize] = Status::Partial(idx);
        idx
    }

    /// Drops a block-state record; the caller sets the piece's new status. Call between `untrack` and
    /// `track`.
    fn remove_partial(&mut self, idx: u32) {
        let partial = self.partials.swap_remove(idx as usize);
        if let Some(moved) = self.partials.get(idx as usize) {
            self.status[moved.piece as usize] = Status::Partial(idx);
        }
        if self.spare_blocks.len() < MAX_SPARE_BLOCKS {
            self.spare_blocks.push(partial.blocks);
        }
    }

    /// Withdraws one request for a block: back to the pool if no other peer has it requested.
    fn release(&mut self, piece: u32, block: u32) {
        let Status::Partial(idx) = self.status[piece as usize] else {
            return;
        };
        let state = self.partials[idx as usize].blocks[block as usize];
        match state {
            Block::Requested(n) if n > 1 => {
                self.partials[idx as usize].blocks[block as usize] = Block::Requested(n - 1);
            }
            Block::Requested(_) => {
                self.untrack(piece);
                let partial = &mut self.partials[idx as usize];
                partial.blocks[block as usize] = Block::Free;
                partial.n_free += 1;
                partial.hint = partial.hint.min(block);
                self.n_requested_blocks -= 1;
                self.track(piece);
            }
            Block::Free | Block::Received => {}
        }
    }

    fn slot(&self, peer: &P) -> Result<u32, PickerError> {
        self.slots
            .get(peer)
            .copied()
            .ok_or(PickerError::UnknownPeer)
    }

    fn peer(&self, slot: u32) -> &Peer<P> {
        self.peers[slot as usize].as_ref().expect(LIVE)
    }

    fn peer_mut(&mut self, slot: u32) -> &mut Peer<P> {
        self.peers[slot as usize].as_mut().expect(LIVE)
    }

    /// Removes a peer's request for a block from its queue; returns whether there was one.
    fn remove_request(&mut self, slot: u32, piece: u32, block: u32) -> bool {
        let requests = &mut self.peer_mut(slot).requests;
        match requests
            .iter()
            .position(|r| r.piece == piece && r.block == block)
        {
            Some(at) => {
                requests.remove(at);
                true
            }
            None => false,
        }
    }

    // ----- Peers and availability ---------------------------------------------------------------

    /// Adds a peer that has no pieces yet and chokes us.
    ///
    /// # Errors
    ///
    /// [`PickerError::DuplicatePeer`] if `peer` is already known.
    pub fn add_peer(&mut self, peer: P) -> Result<(), PickerError> {
        if self.slots.contains_key(&peer) {
            return Err(PickerError::DuplicatePeer);
        }
        let state = Peer {
            key: peer,
            seed: false,
            bits: Bitset::new(self.n_pieces as usize),
            n_have: 0,
            choked: true,
            requests: VecDeque::new(),
            allowed_fast: Vec::new(),
            suggested: Vec::new(),
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.peers[slot as usize] = Some(state);
                slot
            }
            None => {
                self.peers.push(Some(state));
                (self.peers.len() - 1) as u32
            }
        };
        self.slots.insert(peer, slot);
        Ok(())
    }

    /// Removes a peer (it disconnected): its pieces no longer count towards availability and its
    /// outstanding requests go back to the pool. Returns those requests.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`] if `peer` is not known.
    pub fn remove_peer(&mut self, peer: P) -> Result<Vec<BlockRef>, PickerError> {
        let slot = self.slot(&peer)?;
        self.drop_pieces(slot);
        let requests = std::mem::take(&mut self.peer_mut(slot).requests);
        let mut returned = Vec::with_capacity(requests.len());
        for request in requests {
            self.release(request.piece, request.block);
            returned.push(self.block_ref(request.piece, request.block));
        }
        self.slots.remove(&peer);
        self.peers[slot as usize] = None;
        self.free_slots.push(slot);
        Ok(returned)
    }

    /// Forgets every piece of a peer; afterwards it is a non-seed whose `bits` may be unallocated.
    fn drop_pieces(&mut self, slot: u32) {
        let peer = self.peer_mut(slot);
        peer.n_have = 0;
        if peer.seed {
            peer.seed = false;
            self.n_seeds -= 1;
            return;
        }
        let bits = std::mem::take(&mut peer.bits);
        bits.for_each_one(|piece| self.change_count(piece as u32, false));
        let mut bits = bits;
        bits.clear_all();
        self.peer_mut(slot).bits = bits;
    }

    /// Gives a peer an all-zero bitset of the right size if `drop_pieces` left it without one.
    fn ensure_bits(&mut self, slot: u32) {
        let n = self.n_pieces as usize;
        let peer = self.peer_mut(slot);
        if peer.bits.len() != n {
            peer.bits = Bitset::new(n);
        }
    }

    fn make_seed(&mut self, slot: u32) {
        self.drop_pieces(slot);
        let n = self.n_pieces;
        let peer = self.peer_mut(slot);
        peer.seed = true;
        peer.n_have = n;
        peer.bits = Bitset::default();
        self.n_seeds += 1;
    }

    /// Records a peer's `bitfield` message (BEP 3: one bit per piece, high bit of the first byte for
    /// piece 0), replacing what we knew of its pieces.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`], [`PickerError::BitfieldLength`] unless the bitfield has
    /// `ceil(pieces / 8)` bytes, and [`PickerError::BitfieldSpareBits`] if bits past the last piece are
    /// set. Nothing changes on error.
    pub fn peer_bitfield(&mut self, peer: P, bitfield: &[u8]) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        let bits = Bitset::from_wire(bitfield, self.n_pieces as usize)?;
        let n_have = bits.count_ones() as u32;
        if n_have == self.n_pieces {
            self.make_seed(slot);
            return Ok(());
        }
        self.drop_pieces(slot);
        bits.for_each_one(|piece| self.change_count(piece as u32, true));
        let state = self.peer_mut(slot);
        state.bits = bits;
        state.n_have = n_have;
        Ok(())
    }

    /// Records a peer's `have` message. A peer that comes to have every piece is counted as a seed.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`] and [`PickerError::PieceOutOfRange`].
    pub fn peer_have(&mut self, peer: P, piece: PieceIndex) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        let piece = self.check_piece(piece)?;
        if self.peer(slot).seed {
            return Ok(());
        }
        self.ensure_bits(slot);
        let state = self.peer_mut(slot);
        if state.has(piece) {
            return Ok(());
        }
        state.bits.set(piece as usize);
        state.n_have += 1;
        let complete = state.n_have == self.n_pieces;
        self.change_count(piece, true);
        if complete {
            self.make_seed(slot);
        }
        Ok(())
    }

    /// Records a peer's `have all` message (BEP 6): it is a seed.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn peer_have_all(&mut self, peer: P) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        if !self.peer(slot).seed {
            self.make_seed(slot);
        }
        Ok(())
    }

    /// Records a peer's `have none` message (BEP 6), forgetting any pieces we thought it had.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn peer_have_none(&mut self, peer: P) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        self.drop_pieces(slot);
        self.ensure_bits(slot);
        Ok(())
    }

    /// Records that a peer chokes us. Its outstanding requests go back to the pool and are returned,
    /// except those for pieces it allowed fast (BEP 6), which it may still serve.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn peer_choked(&mut self, peer: P) -> Result<Vec<BlockRef>, PickerError> {
        let slot = self.slot(&peer)?;
        let state = self.peer_mut(slot);
        state.choked = true;
        let mut kept = VecDeque::new();
        let mut dropped = Vec::new();
        for request in state.requests.drain(..) {
            if state.allowed_fast.contains(&request.piece) {
                kept.push_back(request);
            } else {
                dropped.push(request);
            }
        }
        state.requests = kept;
        let mut returned = Vec::with_capacity(dropped.len());
        for request in dropped {
            self.release(request.piece, request.block);
            returned.push(self.block_ref(request.piece, request.block));
        }
        Ok(returned)
    }

    /// Records that a peer unchokes us: blocks may be requested from it.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn peer_unchoked(&mut self, peer: P) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        self.peer_mut(slot).choked = false;
        Ok(())
    }

    /// Records a peer's `allowed fast` message (BEP 6): we may request blocks of `piece` from it even
    /// while it chokes us (if it has the piece).
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`] and [`PickerError::PieceOutOfRange`].
    pub fn peer_allowed_fast(&mut self, peer: P, piece: PieceIndex) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        let piece = self.check_piece(piece)?;
        let allowed = &mut self.peer_mut(slot).allowed_fast;
        if !allowed.contains(&piece) && allowed.len() < MAX_ALLOWED_FAST {
            allowed.push(piece);
        }
        Ok(())
    }

    /// Records a peer's `suggest piece` message (BEP 6): among pieces of equal priority that are not
    /// started yet, suggested ones the peer has are picked before the rarest.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`] and [`PickerError::PieceOutOfRange`].
    pub fn peer_suggest(&mut self, peer: P, piece: PieceIndex) -> Result<(), PickerError> {
        let slot = self.slot(&peer)?;
        let piece = self.check_piece(piece)?;
        let suggested = &mut self.peer_mut(slot).suggested;
        suggested.retain(|&p| p != piece);
        if suggested.len() == MAX_SUGGESTED {
            suggested.remove(0);
        }
        suggested.push(piece);
        Ok(())
    }

    // ----- Picking ------------------------------------------------------------------------------

    /// Picks up to `max` blocks to request from `peer` now, and records them as requested at `now`.
    ///
    /// Convenience wrapper around [`Picker::pick_blocks_into`], which reuses the caller's buffer.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn pick_blocks(
        &mut self,
        peer: P,
        max: usize,
        now: Instant,
    ) -> Result<Vec<BlockRef>, PickerError> {
        let mut out = Vec::new();
        self.pick_blocks_into(peer, max, now, &mut out)?;
        Ok(out)
    }

    /// Picks up to `max` blocks to request from `peer`, appends them to `out`, records them as
    /// requested at `now`, and returns how many were appended.
    ///
    /// Only pieces the peer has and we want (not skipped, not complete) are considered. A peer that
    /// chokes us gets blocks of its allowed-fast pieces only. Otherwise the order is: the sequential
    /// window (see [`Picker::set_sequential`]); then, by priority from high to low, partly downloaded
    /// pieces, suggested pieces, and the rarest pieces, ties broken at random. Outside endgame no block
    /// is requested twice. Once every block that peers have is requested ([`Picker::in_endgame`]), blocks
    /// already requested from other peers are requested again from this one, the least requested first;
    /// never a block this peer already has outstanding.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn pick_blocks_into(
        &mut self,
        peer: P,
        max: usize,
        now: Instant,
        out: &mut Vec<BlockRef>,
    ) -> Result<usize, PickerError> {
        let slot = self.slot(&peer)?;
        let before = out.len();
        let mut left = max;
        if self.peer(slot).choked {
            self.pick_allowed_fast(slot, &mut left, now, out);
            self.pick_endgame(slot, &mut left, now, out, true);
            return Ok(out.len() - before);
        }
        if self.sequential.is_some() {
            self.pick_window(slot, &mut left, now, out);
        }
        for level in (0..LEVELS).rev() {
            let mut cursor = 0;
            while left > 0 {
                let found = match self.find_partial(slot, level, &mut cursor) {
                    Some(piece) => Some(piece),
                    None => self
                        .find_suggested(slot, level)
                        .or_else(|| self.find_new(slot, level)),
                };
                let Some(piece) = found else { break };
                self.take_blocks(piece, slot, &mut left, now, out);
            }
        }
        self.pick_endgame(slot, &mut left, now, out, false);
        Ok(out.len() - before)
    }

    /// Whether blocks of `piece` could be requested now (wanted, with a free block).
    fn is_pickable(&self, piece: u32) -> bool {
        self.priority[piece as usize] != Priority::Skip
            && match self.status[piece as usize] {
                Status::New => true,
                Status::Partial(idx) => self.partials[idx as usize].n_free > 0,
                Status::Complete | Status::Have => false,
            }
    }

    fn pick_allowed_fast(
        &mut self,
        slot: u32,
        left: &mut usize,
        now: Instant,
        out: &mut Vec<BlockRef>,
    ) {
        let mut i = 0;
        while *left > 0 {
            let peer = self.peer(slot);
            let Some(&piece) = peer.allowed_fast.get(i) else {
                break;
            };
            i += 1;
            if peer.has(piece) && self.is_pickable(piece) {
                self.take_blocks(piece, slot, left, now, out);
            }
        }
    }

    fn pick_window(&mut self, slot: u32, left: &mut usize, now: Instant, out: &mut Vec<BlockRef>) {
        let Some(window) = self.sequential else {
            return;
        };
        while self.seq_cursor < self.n_pieces {
            let i = self.seq_cursor as usize;
            let done = matches!(self.status[i], Status::Complete | Status::Have);
            if !done && self.priority[i] != Priority::Skip {
                break;
            }
            self.seq_cursor += 1;
        }
        let end = self.seq_cursor.saturating_add(window).min(self.n_pieces);
        for piece in self.seq_cursor..end {
            if *left == 0 {
                break;
            }
            if self.peer(slot).has(piece) && self.is_pickable(piece) {
                self.take_blocks(piece, slot, left, now, out);
            }
        }
    }

    /// The first partly downloaded piece at `level`, from `cursor` on, that the peer has.
    fn find_partial(&self, slot: u32, level: usize, cursor: &mut usize) -> Option<u32> {
        let peer = self.peer(slot);
        let list = &self.partial_free[level];
        while let Some(&piece) = list.get(*cursor) {
            if peer.has(piece) {
                return Some(piece);
            }
            *cursor += 1;
        }
        None
    }

    /// The peer's most recent suggestion at `level` that is not started yet and that it has.
    fn find_suggested(&self, slot: u32, level: usize) -> Option<u32> {
        let peer = self.peer(slot);
        peer.suggested.iter().rev().copied().find(|&piece| {
            let i = piece as usize;
            self.status[i] == Status::New
                && self.priority[i].level() == Some(level)
                && peer.has(piece)
        })
    }

    /// The rarest not-started piece at `level` that the peer has; see the module docs for the cost.
    fn find_new(&mut self, slot: u32, level: usize) -> Option<u32> {
        let peer = self.peers[slot as usize].as_ref().expect(LIVE);
        let buckets = &self.buckets[level];
        let nonempty = &self.nonempty[level];
        // Only seeds have pieces that no non-seed peer has.
        let first = usize::from(!peer.seed);
        let mut probes = 0;
        let mut next = words_next_one(nonempty, first);
        while let Some(c) = next {
            let bucket = &buckets[c];
            let n = bucket.len();
            let start = self.rng.below(n);
            if peer.seed {
                return Some(bucket[start]);
            }
            for k in 0..n {
                let piece = bucket[(start + k) % n];
                if peer.bits.get(piece as usize) {
                    return Some(piece);
                }
                probes += 1;
                if probes == SCAN_BUDGET {
                    // Buckets before `c` hold none of the peer's pieces, so a piece with availability
                    // `c` is as rare as it gets.
                    return rarest_by_intersection(
                        peer.bits.words(),
                        self.startable[level].words(),
                        &self.count,
                        c as u32,
                        &mut self.rng,
                    );
                }
            }
            next = words_next_one(nonempty, c + 1);
        }
        None
    }

    /// Requests free blocks of a pickable piece from the peer, lowest first, until `left` runs out.
    fn take_blocks(
        &mut self,
        piece: u32,
        slot: u32,
        left: &mut usize,
        now: Instant,
        out: &mut Vec<BlockRef>,
    ) {
        self.untrack(piece);
        let idx = match self.status[piece as usize] {
            Status::New => self.start_partial(piece),
            Status::Partial(idx) => idx,
            Status::Complete | Status::Have => {
                self.track(piece);
                return;
            }
        };
        let size = self.size_of(piece);
        let partial = &mut self.partials[idx as usize];
        let peer = self.peers[slot as usize].as_mut().expect(LIVE);
        let mut block = partial.hint as usize;
        while *left > 0 && block < partial.blocks.len() {
            if partial.blocks[block] == Block::Free {
                partial.blocks[block] = Block::Requested(1);
                partial.n_free -= 1;
                self.n_requested_blocks += 1;
                peer.requests.push_back(Request {
                    piece,
                    block: block as u32,
                    sent: now,
                });
                out.push(block_ref(piece, block as u32, size));
                *left -= 1;
            }
            block += 1;
        }
        partial.hint = block as u32;
        self.track(piece);
    }

    /// Endgame: requests blocks that other peers have outstanding (see [`MAX_ENDGAME_REQUESTS`] and
    /// [`MAX_ENDGAME_PICKS`]).
    fn pick_endgame(
        &mut self,
        slot: u32,
        left: &mut usize,
        now: Instant,
        out: &mut Vec<BlockRef>,
        only_allowed_fast: bool,
    ) {
        if *left == 0 || !self.in_endgame() {
            return;
        }
        let peer = self.peer(slot);
        let mut mine: Vec<(u32, u32)> = peer.requests.iter().map(|r| (r.piece, r.block)).collect();
        mine.sort_unstable();
        let mut candidates = Vec::new();
        for partial in &self.partials {
            let piece = partial.piece;
            if self.priority[piece as usize] == Priority::Skip
                || !peer.has(piece)
                || (only_allowed_fast && !peer.allowed_fast.contains(&piece))
            {
                continue;
            }
            for (block, state) in partial.blocks.iter().enumerate() {
                // At most one duplicate per block: a third request rarely wins the race and mostly
                // arrives as waste.
                if let Block::Requested(n) = *state
                    && n < MAX_ENDGAME_REQUESTS
                    && mine.binary_search(&(piece, block as u32)).is_err()
                {
                    candidates.push((n, piece, block as u32));
                }
            }
        }
        // Random order, then least requested first (the sort is stable).
        for i in (1..candidates.len()).rev() {
            let j = self.rng.below(i + 1);
            candidates.swap(i, j);
        }
        candidates.sort_by_key(|&(n, _, _)| n);
        // A few duplicates per pick: enough to route around a slow peer, not a second full pipeline.
        let budget = (*left).min(MAX_ENDGAME_PICKS);
        for (_, piece, block) in candidates.into_iter().take(budget) {
            let Status::Partial(idx) = self.status[piece as usize] else {
                continue;
            };
            let state = &mut self.partials[idx as usize].blocks[block as usize];
            if let Block::Requested(n) = *state {
                *state = Block::Requested(n + 1);
                let size = self.size_of(piece);
                self.peer_mut(slot).requests.push_back(Request {
                    piece,
                    block,
                    sent: now,
                });
                out.push(block_ref(piece, block, size));
                *left -= 1;
            }
        }
    }

    // ----- Requests coming back -----------------------------------------------------------------

    /// Records that `peer` sent us `block`.
    ///
    /// A block we still miss is accepted whoever sends it, requested or not (`is_new`); other
    /// outstanding requests for it are withdrawn and returned as `cancels`. When it completes its piece,
    /// `piece_complete` is set: hash the piece and report the result with [`Picker::piece_verified`] or
    /// [`Picker::piece_failed`].
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`], [`PickerError::PieceOutOfRange`], and
    /// [`PickerError::InvalidBlock`] unless the offset and length are those of a block of the piece.
    pub fn block_received(&mut self, peer: P, block: BlockRef) -> Result<Received<P>, PickerError> {
        let (piece, number) = self.check_block(block)?;
        let slot = self.slot(&peer)?;
        let had = self.remove_request(slot, piece, number);
        let mut received = Received {
            is_new: false,
            piece_complete: false,
            cancels: Vec::new(),
        };
        let idx = match self.status[piece as usize] {
            Status::Complete | Status::Have => return Ok(received),
            Status::New => {
                self.untrack(piece);
                let idx = self.start_partial(piece);
                self.track(piece);
                idx
            }
            Status::Partial(idx) => idx,
        };
        let others = match self.partials[idx as usize].blocks[number as usize] {
            Block::Received => return Ok(received),
            Block::Free => 0,
            Block::Requested(n) => n - u32::from(had),
        };
        self.untrack(piece);
        let partial = &mut self.partials[idx as usize];
        match partial.blocks[number as usize] {
            Block::Free => partial.n_free -= 1,
            _ => self.n_requested_blocks -= 1,
        }
        partial.blocks[number as usize] = Block::Received;
        partial.n_received += 1;
        let complete = partial.n_received as usize == partial.blocks.len();
        if complete {
            self.remove_partial(idx);
            self.status[piece as usize] = Status::Complete;
        }
        self.track(piece);
        if others > 0 {
            let block = self.block_ref(piece, number);
            for (other, state) in self.peers.iter_mut().enumerate() {
                let Some(state) = state else { continue };
                if other as u32 == slot {
                    continue;
                }
                if let Some(at) = state
                    .requests
                    .iter()
                    .position(|r| r.piece == piece && r.block == number)
                {
                    state.requests.remove(at);
                    received.cancels.push((state.key, block));
                }
            }
        }
        received.is_new = true;
        received.piece_complete = complete;
        Ok(received)
    }

    /// Takes back every outstanding request of a peer (one that stopped sending, say): the blocks go
    /// back to the pool and are returned, so the caller can still welcome them if they come late.
    ///
    /// ```
    /// use shoal_picker::Picker;
    /// let mut picker: Picker<u8> = Picker::new(4, 32 * 1024, 4 * 32 * 1024, 1).unwrap();
    /// picker.add_peer(1).unwrap();
    /// picker.peer_have_all(1).unwrap();
    /// picker.peer_unchoked(1).unwrap();
    /// let asked = picker.pick_blocks(1, 3, std::time::Instant::now()).unwrap();
    /// assert_eq!(picker.withdraw_requests(1).unwrap(), asked);
    /// assert_eq!(picker.outstanding(1), Some(0));
    /// ```
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`].
    pub fn withdraw_requests(&mut self, peer: P) -> Result<Vec<BlockRef>, PickerError> {
        let slot = self.slot(&peer)?;
        let requests: Vec<Request> = self.peer_mut(slot).requests.drain(..).collect();
        let mut returned = Vec::with_capacity(requests.len());
        for request in requests {
            self.release(request.piece, request.block);
            returned.push(self.block_ref(request.piece, request.block));
        }
        Ok(returned)
    }

    /// Records a peer's `reject request` message (BEP 6): the block goes back to the pool. Returns
    /// whether the request was outstanding.
    ///
    /// # Errors
    ///
    /// [`PickerError::UnknownPeer`], [`PickerError::PieceOutOfRange`] and
    /// [`PickerError::InvalidBlock`].
    pub fn request_rejected(&mut self, peer: P, block: BlockRef) -> Result<bool, PickerError> {
        let (piece, number) = self.check_block(block)?;
        let slot = self.slot(&peer)?;
        let had = self.remove_request(slot, piece, number);
        if had {
            self.release(piece, number);
        }
        Ok(had)
    }

    /// Withdraws every request sent at least `timeout` before `now`: the blocks go back to the pool.
    /// Returns the withdrawn requests, by peer, so the caller can cancel them (and perhaps think less
    /// of the peer). A block that arrives later anyway is still accepted.
    ///
    /// Requests are expected to be made with non-decreasing `now`; each peer's queue is checked from
    /// its oldest request, so the cost is O(peers + withdrawn requests).
    pub fn timeout_requests(&mut self, now: Instant, timeout: Duration) -> Vec<(P, BlockRef)> {
        let mut withdrawn = Vec::new();
        for slot in 0..self.peers.len() {
            while let Some(peer) = self.peers[slot].as_mut() {
                let Some(front) = peer.requests.front() else {
                    break;
                };
                if now.saturating_duration_since(front.sent) < timeout {
                    break;
                }
                let key = peer.key;
                let Request { piece, block, .. } = *front;
                peer.requests.pop_front();
                self.release(piece, block);
                withdrawn.push((key, self.block_ref(piece, block)));
            }
        }
        withdrawn
    }

    /// When the oldest outstanding request will reach `timeout`, for the caller's timer; `None`
    /// without outstanding requests.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Instant> {
        self.peers
            .iter()
            .flatten()
            .filter_map(|peer| peer.requests.front())
            .map(|request| request.sent + timeout)
            .min()
    }

    // ----- Hash results -------------------------------------------------------------------------

    /// Marks `piece` verified: we have it. Usually called after its hash check passed; it may also
    /// be called for a piece found on disk at start-up, in any state. Requests still outstanding for
    /// the piece are withdrawn and returned so the caller can cancel them. Verifying a verified piece
    /// does nothing.
    ///
    /// # Errors
    ///
    /// [`PickerError::PieceOutOfRange`].
    pub fn piece_verified(&mut self, piece: PieceIndex) -> Result<Vec<(P, BlockRef)>, PickerError> {
        let piece = self.check_piece(piece)?;
        let mut cancels = Vec::new();
        let status = self.status[piece as usize];
        if status == Status::Have {
            return Ok(cancels);
        }
        self.untrack(piece);
        if let Status::Partial(idx) = status {
            let size = self.size_of(piece);
            for state in self.peers.iter_mut().flatten() {
                state.requests.retain(|request| {
                    let ours = request.piece == piece;
                    if ours {
                        cancels.push((state.key, block_ref(piece, request.block, size)));
                    }
                    !ours
                });
            }
            let requested = self.partials[idx as usize]
                .blocks
                .iter()
                .filter(|b| matches!(b, Block::Requested(_)))
                .count();
            self.n_requested_blocks -= requested as u64;
            self.remove_partial(idx);
        }
        self.status[piece as usize] = Status::Have;
        self.n_have += 1;
        self.track(piece);
        Ok(cancels)
    }

    /// Marks a complete piece as having failed its hash check: all its blocks go back to the pool and
    /// the piece will be picked again.
    ///
    /// # Errors
    ///
    /// [`PickerError::PieceOutOfRange`], and [`PickerError::PieceNotComplete`] unless the piece's
    /// last block was received and no hash result reported since.
    pub fn piece_failed(&mut self, piece: PieceIndex) -> Result<(), PickerError> {
        let piece = self.check_piece(piece)?;
        if self.status[piece as usize] != Status::Complete {
            return Err(PickerError::PieceNotComplete(piece));
        }
        self.untrack(piece);
        self.status[piece as usize] = Status::New;
        self.track(piece);
        self.seq_cursor = self.seq_cursor.min(piece);
        Ok(())
    }

    // ----- Priorities and modes -----------------------------------------------------------------

    /// Sets the priority of one piece. Requests already sent for a piece now skipped stay
    /// outstanding; no new ones are made.
    ///
    /// # Errors
    ///
    /// [`PickerError::PieceOutOfRange`].
    pub fn set_piece_priority(
        &mut self,
        piece: PieceIndex,
        priority: Priority,
    ) -> Result<(), PickerError> {
        let piece = self.check_piece(piece)?;
        self.apply_priority(piece, priority);
        Ok(())
    }

    /// Sets the priority of every piece, one entry per piece.
    ///
    /// # Errors
    ///
    /// [`PickerError::PriorityCount`] unless there is one priority per piece.
    pub fn set_piece_priorities(&mut self, priorities: &[Priority]) -> Result<(), PickerError> {
        if priorities.len() != self.n_pieces as usize {
            return Err(PickerError::PriorityCount {
                got: priorities.len(),
                expected: self.n_pieces as usize,
            });
        }
        for (piece, &priority) in priorities.iter().enumerate() {
            self.apply_priority(piece as u32, priority);
        }
        Ok(())
    }

    /// Sets piece priorities from file priorities, each file given by its byte range in the torrent.
    ///
    /// A piece takes the highest priority of the files it touches, so a piece straddling two files is
    /// skipped only if both are. Empty files touch no piece; pieces that no file touches keep their
    /// priority.
    ///
    /// # Errors
    ///
    /// [`PickerError::BadFileRange`] if a range is reversed or reaches past the torrent's end; nothing
    /// changes then.
    pub fn set_file_priorities(
        &mut self,
        files: &[(Range<u64>, Priority)],
    ) -> Result<(), PickerError> {
        for (range, _) in files {
            if range.start > range.end || range.end > self.total_len {
                return Err(PickerError::BadFileRange {
                    start: range.start,
                    end: range.end,
                    total_len: self.total_len,
                });
            }
        }
        let mut priorities: Vec<Option<Priority>> = vec![None; self.n_pieces as usize];
        let piece_len = u64::from(self.piece_len);
        for (range, priority) in files {
            if range.is_empty() {
                continue;
            }
            let first = (range.start / piece_len) as usize;
            let last = ((range.end - 1) / piece_len) as usize;
            for slot in &mut priorities[first..=last] {
                *slot = (*slot).max(Some(*priority));
            }
        }
        for (piece, priority) in priorities.into_iter().enumerate() {
            if let Some(priority) = priority {
                self.apply_priority(piece as u32, priority);
            }
        }
        Ok(())
    }

    fn apply_priority(&mut self, piece: u32, priority: Priority) {
        if self.priority[piece as usize] == priority {
            return;
        }
        self.untrack(piece);
        self.priority[piece as usize] = priority;
        self.track(piece);
        if priority != Priority::Skip {
            self.seq_cursor = self.seq_cursor.min(piece);
        }
    }

    /// Turns sequential mode on with a window of `window` pieces, or off with `None` or `Some(0)`.
    ///
    /// In sequential mode, the first `window` pieces from the first piece still missing (skipped pieces
    /// aside) are picked in index order before anything else, as a media player wants them. Pieces past
    /// the window are still picked rarest first, which keeps the swarm healthy and peers busy.
    pub fn set_sequential(&mut self, window: Option<u32>) {
        self.sequential = window.filter(|&w| w > 0);
    }

    // ----- Statistics ---------------------------------------------------------------------------

    /// The number of verified pieces.
    pub fn have_count(&self) -> u32 {
        self.n_have
    }

    /// Whether we have `piece` (verified); `false` if it is out of range.
    pub fn has_piece(&self, piece: PieceIndex) -> bool {
        self.status.get(piece.0 as usize) == Some(&Status::Have)
    }

    /// The number of wanted (not skipped) pieces not verified yet.
    pub fn missing_count(&self) -> u32 {
        self.n_wanted_missing
    }

    /// Whether every wanted piece is verified.
    pub fn is_finished(&self) -> bool {
        self.n_wanted_missing == 0
    }

    /// Where `piece` stands, or `None` if it is out of range.
    pub fn piece_state(&self, piece: PieceIndex) -> Option<PieceState> {
        Some(match self.status.get(piece.0 as usize)? {
            Status::New => PieceState::NotStarted,
            Status::Partial(_) => PieceState::Downloading,
            Status::Complete => PieceState::AwaitingHash,
            Status::Have => PieceState::Verified,
        })
    }

    /// The priority of `piece`, or `None` if it is out of range.
    pub fn piece_priority(&self, piece: PieceIndex) -> Option<Priority> {
        self.priority.get(piece.0 as usize).copied()
    }

    /// How many known peers have `piece`, or `None` if it is out of range.
    pub fn availability(&self, piece: PieceIndex) -> Option<u32> {
        Some(self.count.get(piece.0 as usize)? + self.n_seeds)
    }

    /// The swarm's distributed copies, as clients show them: the availability of the rarest piece, plus
    /// the fraction of pieces more available than that. Our own pieces are not counted.
    pub fn distributed_copies(&self) -> f64 {
        let Some((min, &at_min)) = self.histogram.iter().enumerate().find(|(_, n)| **n > 0) else {
            return f64::from(self.n_seeds);
        };
        let above = self.n_pieces - at_min;
        (min as f64 + f64::from(self.n_seeds)) + f64::from(above) / f64::from(self.n_pieces)
    }

    /// Whether endgame is on: every wanted block that some peer has is requested or received, and
    /// some are still outstanding. Picks then duplicate outstanding requests.
    pub fn in_endgame(&self) -> bool {
        let available = if self.n_seeds > 0 {
            self.free_total
        } else {
            self.free_total - self.free_unavailable
        };
        available == 0 && self.n_requested_blocks > 0
    }

    /// The number of known peers.
    pub fn peer_count(&self) -> usize {
        self.slots.len()
    }

    /// The number of outstanding requests to `peer`, or `None` for an unknown peer.
    pub fn outstanding(&self, peer: P) -> Option<usize> {
        let slot = self.slot(&peer).ok()?;
        Some(self.peer(slot).requests.len())
    }

    /// Whether `block` is requested from `peer` and not yet received, withdrawn or rejected: the
    /// blocks a peer may send us. `false` for an unknown peer or block.
    ///
    /// ```
    /// use std::time::Instant;
    /// use shoal_picker::{BlockRef, PieceIndex, Picker};
    ///
    /// let mut picker = Picker::new(1, 32 * 1024, 32 * 1024, 7).unwrap();
    /// picker.add_peer("a").unwrap();
    /// picker.peer_have_all("a").unwrap();
    /// picker.peer_unchoked("a").unwrap();
    /// let asked = picker.pick_blocks("a", 1, Instant::now()).unwrap()[0];
    /// assert!(picker.is_requested("a", asked));
    /// let other = BlockRef { piece: PieceIndex(0), offset: 16 * 1024 - asked.offset, len: 16 * 1024 };
    /// assert!(!picker.is_requested("a", other));
    /// ```
    pub fn is_requested(&self, peer: P, block: BlockRef) -> bool {
        let (Ok(slot), Ok((piece, number))) = (self.slot(&peer), self.check_block(block)) else {
            return false;
        };
        self.peer(slot)
            .requests
            .iter()
            .any(|r| r.piece == piece && r.block == number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestPicker = Picker<u32>;

    /// `pieces` pieces of `piece_len` bytes, the last one `last_len` bytes.
    fn picker_with(pieces: u32, piece_len: u64, last_len: u64) -> TestPicker {
        let total = u64::from(pieces - 1) * piece_len + last_len;
        let picker = Picker::new(pieces, piece_len, total, 1).unwrap();
        picker.check_invariants();
        picker
    }

    /// `pieces` pieces of two blocks each.
    fn picker(pieces: u32) -> TestPicker {
        picker_with(pieces, 2 * u64::from(BLOCK_LEN), 2 * u64::from(BLOCK_LEN))
    }

    fn bitfield(n_pieces: u32, pieces: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0; n_pieces.div_ceil(8) as usize];
        for &piece in pieces {
            bytes[piece as usize / 8] |= 0x80 >> (piece % 8);
        }
        bytes
    }

    /// Adds an unchoking peer with the given pieces (`None`: a seed).
    fn add(picker: &mut TestPicker, peer: u32, pieces: Option<&[u32]>) {
        picker.add_peer(peer).unwrap();
        match pieces {
            None => picker.peer_have_all(peer).unwrap(),
            Some(pieces) => {
                let bits = bitfield(picker.piece_count(), pieces);
                picker.peer_bitfield(peer, &bits).unwrap();
            }
        }
        picker.peer_unchoked(peer).unwrap();
        picker.check_invariants();
    }

    fn pick(picker: &mut TestPicker, peer: u32, max: usize) -> Vec<BlockRef> {
        let blocks = picker.pick_blocks(peer, max, t0()).unwrap();
        picker.check_invariants();
        blocks
    }

    /// The pieces of `blocks`, in order, each once.
    fn pieces(blocks: &[BlockRef]) -> Vec<u32> {
        let mut out: Vec<u32> = blocks.iter().map(|b| b.piece.0).collect();
        out.dedup();
        out
    }

    #[test]
    fn withdrawn_requests_go_to_another_peer() {
        let mut picker = picker(8);
        add(&mut picker, 1, None);
        add(&mut picker, 2, None);
        let first = pick(&mut picker, 1, 4);
        assert_eq!(first.len(), 4);
        assert_eq!(picker.withdraw_requests(1).unwrap(), first);
        picker.check_invariants();
        assert_eq!(picker.outstanding(1), Some(0));
        // Nothing is outstanding any more, so peer 2 can take every block, the withdrawn ones too.
        let second = pick(&mut picker, 2, 16);
        assert_eq!(second.len(), 16);
        assert!(first.iter().all(|b| second.contains(b)));
        assert!(matches!(
            picker.withdraw_requests(9),
            Err(PickerError::UnknownPeer)
        ));
    }

    fn t0() -> Instant {
        // Tests are callers, and callers read the clock; only differences matter.
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    fn block(piece: u32, n: u32) -> BlockRef {
        BlockRef {
            piece: PieceIndex(piece),
            offset: n * BLOCK_LEN,
            len: BLOCK_LEN,
        }
    }

    impl<P: Copy + Eq + Hash + std::fmt::Debug> Picker<P> {
        /// Recomputes every index and counter from scratch and compares.
        fn check_invariants(&self) {
            let n = self.n_pieces as usize;
            let live: Vec<&Peer<P>> = self.peers.iter().flatten().collect();
            assert_eq!(live.len(), self.slots.len());
            let n_seeds = live.iter().filter(|p| p.seed).count() as u32;
            assert_eq!(n_seeds, self.n_seeds);
            let mut histogram = vec![0u32; self.histogram.len()];
            let (mut free_total, mut free_unavailable, mut requested) = (0u64, 0u64, 0u64);
            let (mut wanted_missing, mut have) = (0u32, 0u32);
            let mut in_buckets = 0;
            for i in 0..n {
                let piece = i as u32;
                let count = live.iter().filter(|p| !p.seed && p.bits.get(i)).count() as u32;
                assert_eq!(count, self.count[i], "count of piece {i}");
                histogram[count as usize] += 1;
                let level = self.priority[i].level();
                for l in 0..LEVELS {
                    let startable = level == Some(l) && self.status[i] == Status::New;
                    assert_eq!(self.startable[l].get(i), startable, "startable {i}");
                }
                let free = match self.status[i] {
                    Status::New => {
                        if let Some(l) = level {
                            let bucket = &self.buckets[l][count as usize];
                            assert_eq!(bucket[self.pos[i] as usize], piece, "bucket of {i}");
                            in_buckets += 1;
                        }
                        self.blocks_of(piece)
                    }
                    Status::Partial(idx) => {
                        let partial = &self.partials[idx as usize];
                        assert_eq!(partial.piece, piece);
                        assert_eq!(partial.blocks.len() as u32, self.blocks_of(piece));
                        let free = partial.blocks.iter().filter(|b| **b == Block::Free).count();
                        let received = partial.blocks.iter().filter(|b| **b == Block::Received);
                        assert_eq!(partial.n_free as usize, free);
                        assert_eq!(partial.n_received as usize, received.count());
                        assert!(partial.n_received < self.blocks_of(piece));
                        assert!(
                            partial.blocks[..partial.hint as usize]
                                .iter()
                                .all(|b| *b != Block::Free)
                        );
                        for (b, state) in partial.blocks.iter().enumerate() {
                            let queued = live
                                .iter()
                                .map(|p| {
                                    p.requests
                                        .iter()
                                        .filter(|r| r.piece == piece && r.block == b as u32)
                                        .count()
                                })
                                .collect::<Vec<_>>();
                            assert!(
                                queued.iter().all(|&q| q <= 1),
                                "duplicate request at one peer"
                            );
                            let total: usize = queued.iter().sum();
                            match state {
                                Block::Requested(k) => {
                                    assert_eq!(*k as usize, total, "requesters of {i}/{b}");
                                    requested += 1;
                                }
                                _ => assert_eq!(total, 0, "queued but not requested: {i}/{b}"),
                            }
                        }
                        if let Some(l) = level
                            && partial.n_free > 0
                        {
                            assert_eq!(self.partial_free[l][self.pos[i] as usize], piece);
                        }
                        partial.n_free
                    }
                    Status::Complete => 0,
                    Status::Have => {
                        have += 1;
                        0
                    }
                };
                if level.is_some() && self.status[i] != Status::Have {
                    wanted_missing += 1;
                    if self.status[i] != Status::Complete {
                        free_total += u64::from(free);
                        if count == 0 {
                            free_unavailable += u64::from(free);
                        }
                    }
                }
            }
            for partial in &self.partials {
                assert!(matches!(
                    self.status[partial.piece as usize],
                    Status::Partial(_)
                ));
            }
            for peer in &live {
                for r in &peer.requests {
                    assert!(
                        matches!(self.status[r.piece as usize], Status::Partial(_)),
                        "request for unstarted piece"
                    );
                }
                if peer.seed {
                    assert_eq!(peer.n_have, self.n_pieces);
                } else {
                    assert_eq!(peer.n_have as usize, peer.bits.count_ones());
                }
            }
            let bucket_total: usize = self.buckets.iter().flatten().map(Vec::len).sum();
            assert_eq!(bucket_total, in_buckets);
            for l in 0..LEVELS {
                for (c, bucket) in self.buckets[l].iter().enumerate() {
                    let bit = words_next_one(&self.nonempty[l], c) == Some(c);
                    assert_eq!(bit, !bucket.is_empty(), "nonempty bit {l}/{c}");
                }
                for &piece in &self.partial_free[l] {
                    let Status::Partial(idx) = self.status[piece as usize] else {
                        panic!()
                    };
                    assert!(self.partials[idx as usize].n_free > 0);
                    assert_eq!(self.priority[piece as usize].level(), Some(l));
                }
            }
            assert_eq!(histogram, self.histogram);
            assert_eq!(free_total, self.free_total);
            assert_eq!(free_unavailable, self.free_unavailable);
            assert_eq!(requested, self.n_requested_blocks);
            assert_eq!(wanted_missing, self.n_wanted_missing);
            assert_eq!(have, self.n_have);
        }
    }

    #[test]
    fn new_checks_geometry() {
        let check = |pieces, piece_len, total, expected: Option<PickerError>| {
            assert_eq!(TestPicker::new(pieces, piece_len, total, 0).err(), expected);
        };
        check(3, 100, 300, None);
        check(3, 100, 201, None);
        check(1, 1, 1, None);
        check(
            3,
            100,
            200,
            Some(PickerError::BadGeometry {
                piece_count: 3,
                piece_len: 100,
                total_len: 200,
            }),
        );
        check(
            3,
            100,
            301,
            Some(PickerError::BadGeometry {
                piece_count: 3,
                piece_len: 100,
                total_len: 301,
            }),
        );
        check(
            0,
            100,
            0,
            Some(PickerError::BadGeometry {
                piece_count: 0,
                piece_len: 100,
                total_len: 0,
            }),
        );
        check(1, 0, 0, Some(PickerError::BadPieceLength(0)));
        check(
            1,
            1 << 32,
            1 << 32,
            Some(PickerError::BadPieceLength(1 << 32)),
        );
    }

    #[test]
    fn blocks_follow_piece_geometry() {
        // Pieces of 40,000 bytes: 16384 + 16384 + 7232; the last piece 20,000 bytes: 16384 + 3616.
        let mut picker = picker_with(3, 40_000, 20_000);
        assert_eq!(picker.block_count(PieceIndex(0)), Some(3));
        assert_eq!(picker.block_count(PieceIndex(2)), Some(2));
        assert_eq!(picker.piece_size(PieceIndex(2)), Some(20_000));
        assert_eq!(picker.piece_size(PieceIndex(3)), None);
        add(&mut picker, 1, None);
        let mut blocks = pick(&mut picker, 1, 100);
        blocks.sort();
        let lens: Vec<(u32, u32, u32)> = blocks
            .iter()
            .map(|b| (b.piece.0, b.offset, b.len))
            .collect();
        assert_eq!(
            lens,
            [
                (0, 0, 16384),
                (0, 16384, 16384),
                (0, 32768, 7232),
                (1, 0, 16384),
                (1, 16384, 16384),
                (1, 32768, 7232),
                (2, 0, 16384),
                (2, 16384, 3616),
            ]
        );
    }

    #[test]
    fn availability_follows_peer_messages() {
        let mut picker = picker(10);
        let avail = |p: &TestPicker| {
            (0..10)
                .map(|i| p.availability(PieceIndex(i)).unwrap())
                .collect::<Vec<_>>()
        };
        picker.add_peer(1).unwrap();
        picker.peer_bitfield(1, &bitfield(10, &[0, 9])).unwrap();
        picker.add_peer(2).unwrap();
        picker.peer_have(2, PieceIndex(9)).unwrap();
        picker.peer_have(2, PieceIndex(9)).unwrap(); // repeated: no change
        picker.add_peer(3).unwrap();
        picker.peer_have_all(3).unwrap();
        picker.check_invariants();
        assert_eq!(avail(&picker), [2, 1, 1, 1, 1, 1, 1, 1, 1, 3]);
        // Rarest piece has 1 copy; 2 of 10 pieces have more.
        assert!((picker.distributed_copies() - 1.2).abs() < 1e-9);

        picker.peer_bitfield(1, &bitfield(10, &[5])).unwrap(); // replaces
        assert_eq!(avail(&picker), [1, 1, 1, 1, 1, 2, 1, 1, 1, 2]);
        picker.peer_have_none(3).unwrap();
        assert_eq!(avail(&picker), [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        picker.peer_have(3, PieceIndex(0)).unwrap();
        picker.remove_peer(1).unwrap();
        picker.check_invariants();
        assert_eq!(avail(&picker), [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(picker.distributed_copies(), 0.2);
        assert_eq!(picker.availability(PieceIndex(10)), None);
        assert_eq!(picker.peer_count(), 2);
    }

    #[test]
    fn peer_messages_check_their_input() {
        let mut picker = picker(10);
        assert_eq!(
            picker.peer_have(1, PieceIndex(0)),
            Err(PickerError::UnknownPeer)
        );
        assert_eq!(picker.remove_peer(1), Err(PickerError::UnknownPeer));
        assert_eq!(
            picker.pick_blocks(1, 1, t0()),
            Err(PickerError::UnknownPeer)
        );
        picker.add_peer(1).unwrap();
        assert_eq!(picker.add_peer(1), Err(PickerError::DuplicatePeer));
        assert_eq!(
            picker.peer_have(1, PieceIndex(10)),
            Err(PickerError::PieceOutOfRange(10))
        );
        assert_eq!(
            picker.peer_allowed_fast(1, PieceIndex(10)),
            Err(PickerError::PieceOutOfRange(10))
        );
        assert_eq!(
            picker.peer_suggest(1, PieceIndex(99)),
            Err(PickerError::PieceOutOfRange(99))
        );
        assert_eq!(
            picker.peer_bitfield(1, &[0xFF]),
            Err(PickerError::BitfieldLength {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            picker.peer_bitfield(1, &[0xFF, 0xE0]),
            Err(PickerError::BitfieldSpareBits)
        );
        assert_eq!(picker.availability(PieceIndex(0)), Some(0));
        picker.check_invariants();
    }

    #[test]
    fn peer_completing_its_pieces_counts_as_seed() {
        let mut picker = picker(3);
        add(&mut picker, 1, Some(&[0, 1]));
        picker.peer_have(1, PieceIndex(2)).unwrap();
        picker.check_invariants();
        assert_eq!(picker.n_seeds, 1);
        assert_eq!(picker.availability(PieceIndex(2)), Some(1));
        // A full bitfield is a seed too, and later messages about a seed change nothing.
        add(&mut picker, 2, Some(&[0, 1, 2]));
        picker.peer_have(2, PieceIndex(1)).unwrap();
        assert_eq!(picker.n_seeds, 2);
        assert_eq!(picker.availability(PieceIndex(0)), Some(2));
        picker.remove_peer(1).unwrap();
        picker.check_invariants();
        assert_eq!(picker.availability(PieceIndex(0)), Some(1));
    }

    #[test]
    fn rarest_piece_first() {
        let mut picker = picker(6);
        add(&mut picker, 1, None);
        add(&mut picker, 2, Some(&[0, 1, 2, 3, 4]));
        add(&mut picker, 3, Some(&[0, 1, 2, 3]));
        add(&mut picker, 4, Some(&[0, 1, 2]));
        // Availability: 0..=2 → 4, 3 → 3, 4 → 2, 5 → 1.
        let blocks = pick(&mut picker, 1, 100);
        let order = pieces(&blocks);
        assert_eq!(order[..3], [5, 4, 3]);
        let mut rest = order[3..].to_vec();
        rest.sort();
        assert_eq!(rest, [0, 1, 2]);
    }

    #[test]
    fn rarest_piece_first_for_a_partial_peer_past_the_scan_budget() {
        // 300 pieces only peer 1 has (availability 1), then 100 pieces both have. Peer 2 must get the
        // rarest of its pieces even though the rarest bucket is far larger than the scan budget.
        let mut picker = picker(400);
        let mine: Vec<u32> = (300..400).collect();
        let all: Vec<u32> = (0..400).collect();
        add(&mut picker, 1, Some(&all[..399])); // not a seed
        add(&mut picker, 2, Some(&mine));
        add(&mut picker, 3, Some(&[350]));
        // Piece 399 (availability 1: peer 1 lacks it) is the rarest, hidden in a bucket of 301.
        assert_eq!(pieces(&pick(&mut picker, 2, 2)), [399]);
        // Then the pieces of availability 2, piece 350 (availability 3) last.
        let order = pieces(&pick(&mut picker, 2, 1000));
        assert_eq!(order.len(), 99);
        assert_eq!(*order.last().unwrap(), 350);
        assert!(order.iter().all(|&p| (300..399).contains(&p)));
    }

    #[test]
    fn ties_are_broken_at_random() {
        let firsts: std::collections::BTreeSet<u32> = (0..20)
            .map(|seed| {
                let mut picker = TestPicker::new(10, 32768, 327_680, seed).unwrap();
                add(&mut picker, 1, None);
                pick(&mut picker, 1, 1)[0].piece.0
            })
            .collect();
        assert!(firsts.len() >= 4, "{firsts:?}");
    }

    #[test]
    fn same_seed_same_picks() {
        let run = || {
            let mut picker = TestPicker::new(50, 32768, 50 * 32768, 9).unwrap();
            add(&mut picker, 1, None);
            add(
                &mut picker,
                2,
                Some(&(0..50).step_by(3).collect::<Vec<_>>()),
            );
            let mut all = pick(&mut picker, 2, 7);
            all.extend(pick(&mut picker, 1, 20));
            all
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn partial_pieces_are_finished_first() {
        let mut picker = picker_with(10, 4 * u64::from(BLOCK_LEN), 4 * u64::from(BLOCK_LEN));
        add(&mut picker, 1, None);
        add(&mut picker, 2, None);
        let first = pick(&mut picker, 1, 1);
        assert_eq!(
            picker.piece_state(first[0].piece),
            Some(PieceState::Downloading)
        );
        let second = pick(&mut picker, 2, 3);
        assert_eq!(pieces(&second), [first[0].piece.0]);
        assert_eq!(
            second
                .iter()
                .map(|b| b.offset / BLOCK_LEN)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn only_pieces_the_peer_has() {
        let mut picker = picker(20);
        add(&mut picker, 1, Some(&[3, 17]));
        let mut got = pieces(&pick(&mut picker, 1, 100));
        got.sort();
        assert_eq!(got, [3, 17]);
        assert!(pick(&mut picker, 1, 100).is_empty());
        add(&mut picker, 2, Some(&[]));
        assert!(pick(&mut picker, 2, 100).is_empty());
    }

    #[test]
    fn choked_peer_serves_allowed_fast_pieces_only() {
        let mut picker = picker(10);
        picker.add_peer(1).unwrap();
        picker.peer_have_all(1).unwrap();
        assert!(pick(&mut picker, 1, 10).is_empty());
        picker.peer_allowed_fast(1, PieceIndex(4)).unwrap();
        picker.peer_allowed_fast(1, PieceIndex(4)).unwrap();
        assert_eq!(pieces(&pick(&mut picker, 1, 10)), [4]);
        assert!(pick(&mut picker, 1, 10).is_empty());
        // An allowed-fast piece the peer lacks is not requested.
        add(&mut picker, 2, Some(&[]));
        picker.peer_choked(2).unwrap();
        picker.peer_allowed_fast(2, PieceIndex(5)).unwrap();
        assert!(pick(&mut picker, 2, 10).is_empty());
    }

    #[test]
    fn choke_returns_requests_except_allowed_fast() {
        let mut picker = picker(4);
        picker.add_peer(1).unwrap();
        picker.peer_have_all(1).unwrap();
        picker.peer_allowed_fast(1, PieceIndex(2)).unwrap();
        let fast = pick(&mut picker, 1, 2);
        assert_eq!(pieces(&fast), [2]);
        picker.peer_unchoked(1).unwrap();
        let more = pick(&mut picker, 1, 100);
        assert_eq!(more.len(), 6);
        let mut returned = picker.peer_choked(1).unwrap();
        picker.check_invariants();
        returned.sort();
        let mut expected = more.clone();
        expected.sort();
        assert_eq!(returned, expected);
        assert_eq!(picker.outstanding(1), Some(2));
        // The returned blocks are picked again by another peer (and then piece 2, in endgame).
        add(&mut picker, 2, None);
        let mut again = pick(&mut picker, 2, 6);
        again.sort();
        assert_eq!(again, expected);
    }

    #[test]
    fn removed_peer_returns_its_requests() {
        let mut picker = picker(3);
        add(&mut picker, 1, None);
        let blocks = pick(&mut picker, 1, 3);
        assert_eq!(picker.remove_peer(1).unwrap(), blocks);
        picker.check_invariants();
        assert_eq!(picker.outstanding(1), None);
        add(&mut picker, 2, None);
        assert_eq!(pick(&mut picker, 2, 100).len(), 6);
        // Slots are reused.
        add(&mut picker, 1, Some(&[0]));
        assert_eq!(picker.peers.len(), 2);
    }

    #[test]
    fn rejected_request_goes_back_to_the_pool() {
        let mut picker = picker(1);
        add(&mut picker, 1, None);
        let blocks = pick(&mut picker, 1, 2);
        assert_eq!(picker.request_rejected(1, blocks[1]), Ok(true));
        assert_eq!(picker.request_rejected(1, blocks[1]), Ok(false));
        picker.check_invariants();
        assert_eq!(pick(&mut picker, 1, 2), [blocks[1]]);
        let bad = BlockRef {
            len: 1,
            ..blocks[0]
        };
        assert_eq!(
            picker.request_rejected(1, bad),
            Err(PickerError::InvalidBlock {
                piece: 0,
                offset: 0,
                len: 1
            })
        );
    }

    #[test]
    fn timed_out_requests_go_back_to_the_pool() {
        let mut picker = picker(2);
        add(&mut picker, 1, None);
        add(&mut picker, 2, None);
        let timeout = Duration::from_secs(10);
        assert_eq!(picker.next_timeout(timeout), None);
        let early = picker.pick_blocks(1, 1, t0()).unwrap();
        let late = picker
            .pick_blocks(1, 1, t0() + Duration::from_secs(5))
            .unwrap();
        assert_eq!(picker.next_timeout(timeout), Some(t0() + timeout));
        assert_eq!(
            picker.timeout_requests(t0() + Duration::from_secs(9), timeout),
            []
        );
        assert_eq!(
            picker.timeout_requests(t0() + timeout, timeout),
            [(1, early[0])]
        );
        picker.check_invariants();
        assert_eq!(
            picker.next_timeout(timeout),
            Some(t0() + Duration::from_secs(15))
        );
        // The block is free again: peer 2 gets it first (it belongs to a partial piece).
        let again = picker.pick_blocks(2, 1, t0() + timeout).unwrap();
        assert_eq!(again, early);
        // A late block from the timed-out peer is still welcome, and cancels peer 2's request.
        let received = picker.block_received(1, early[0]).unwrap();
        assert!(received.is_new);
        assert_eq!(received.cancels, [(2, early[0])]);
        assert_eq!(picker.outstanding(1), Some(1));
        assert_eq!(picker.outstanding(2), Some(0));
        drop(late);
        picker.check_invariants();
    }

    #[test]
    fn endgame_duplicates_requests_and_cancels_the_rest() {
        let mut picker = picker(2);
        add(&mut picker, 1, None);
        add(&mut picker, 2, None);
        add(&mut picker, 3, Some(&[0]));
        let first = pick(&mut picker, 1, 3);
        assert!(!picker.in_endgame());
        let last = pick(&mut picker, 2, 2);
        // Peer 2 got the last free block, then a duplicate of one of peer 1's.
        assert_eq!(last.len(), 2);
        assert!(picker.in_endgame());
        assert!(first.contains(&last[1]));
        // Peer 3 has only piece 0 and gets its blocks, least requested first, but never a block
        // already requested twice (MAX_ENDGAME_REQUESTS).
        let third = pick(&mut picker, 3, 10);
        assert!(third.iter().all(|b| b.piece.0 == 0));
        let twice = usize::from(last[1].piece.0 == 0);
        assert_eq!(third.len(), 2 - twice);
        assert!(!third.contains(&last[1]));
        // No block twice for the same peer.
        assert!(pick(&mut picker, 3, 10).is_empty());
        // Receiving a block cancels everyone else's requests for it.
        let block = third[0];
        let received = picker.block_received(3, block).unwrap();
        assert!(received.is_new);
        let mut cancelled: Vec<u32> = received
            .cancels
            .iter()
            .map(|(peer, b)| {
                assert_eq!(*b, block);
                *peer
            })
            .collect();
        cancelled.sort();
        assert!(!cancelled.is_empty() && !cancelled.contains(&3));
        picker.check_invariants();
        // A late duplicate is not new.
        let late = picker.block_received(cancelled[0], block).unwrap();
        assert!(!late.is_new && late.cancels.is_empty());
        picker.check_invariants();
    }

    #[test]
    fn endgame_ignores_pieces_nobody_has() {
        let mut picker = picker(3);
        add(&mut picker, 1, Some(&[0, 1]));
        add(&mut picker, 2, Some(&[0, 1]));
        pick(&mut picker, 1, 4);
        // Piece 2's blocks are free, but nobody has them.
        assert!(picker.in_endgame());
        assert_eq!(pick(&mut picker, 2, 10).len(), 4);
        add(&mut picker, 3, Some(&[2]));
        assert!(!picker.in_endgame());
        assert!(pick(&mut picker, 1, 10).is_empty());
    }

    #[test]
    fn priorities_order_picks_and_skip_is_never_picked() {
        let mut picker = picker(4);
        picker
            .set_piece_priority(PieceIndex(0), Priority::Low)
            .unwrap();
        picker
            .set_piece_priority(PieceIndex(1), Priority::Skip)
            .unwrap();
        picker
            .set_piece_priority(PieceIndex(3), Priority::High)
            .unwrap();
        picker.check_invariants();
        assert_eq!(picker.missing_count(), 3);
        add(&mut picker, 1, None);
        add(&mut picker, 2, Some(&[0])); // piece 0 is more available, yet priority wins
        assert_eq!(pieces(&pick(&mut picker, 1, 100)), [3, 2, 0]);
        assert_eq!(picker.piece_priority(PieceIndex(1)), Some(Priority::Skip));
        assert_eq!(
            picker.set_piece_priority(PieceIndex(4), Priority::High),
            Err(PickerError::PieceOutOfRange(4))
        );
        // Unskipping makes the piece pickable.
        picker.set_piece_priorities(&[Priority::Normal; 4]).unwrap();
        picker.check_invariants();
        assert_eq!(pieces(&pick(&mut picker, 1, 100)), [1]);
        assert_eq!(
            picker.set_piece_priorities(&[Priority::Normal; 3]),
            Err(PickerError::PriorityCount {
                got: 3,
                expected: 4
            })
        );
    }

    #[test]
    fn skipping_a_downloading_piece_stops_new_requests_for_it() {
        let mut picker = picker(2);
        add(&mut picker, 1, None);
        let first = pick(&mut picker, 1, 1);
        picker
            .set_piece_priority(first[0].piece, Priority::Skip)
            .unwrap();
        picker.check_invariants();
        let rest = pick(&mut picker, 1, 10);
        assert!(rest.iter().all(|b| b.piece != first[0].piece));
        assert_eq!(rest.len(), 2);
        // The outstanding request still counts when it arrives.
        assert!(picker.block_received(1, first[0]).unwrap().is_new);
        picker.check_invariants();
    }

    #[test]
    fn file_priorities_map_to_pieces() {
        // Four pieces of 100 bytes; files: [0, 150) skip, [150, 250) low, [250, 250) empty high,
        // [250, 400) skip.
        let mut picker = TestPicker::new(4, 100, 400, 3).unwrap();
        picker
            .set_file_priorities(&[
                (0..150, Priority::Skip),
                (150..250, Priority::Low),
                (250..250, Priority::High),
                (250..400, Priority::Skip),
            ])
            .unwrap();
        picker.check_invariants();
        let priorities: Vec<Priority> = (0..4)
            .map(|i| picker.piece_priority(PieceIndex(i)).unwrap())
            .collect();
        assert_eq!(
            priorities,
            [Priority::Skip, Priority::Low, Priority::Low, Priority::Skip]
        );
        // A piece touched by no file keeps its priority.
        picker
            .set_file_priorities(&[(0..100, Priority::High)])
            .unwrap();
        assert_eq!(picker.piece_priority(PieceIndex(0)), Some(Priority::High));
        assert_eq!(picker.piece_priority(PieceIndex(1)), Some(Priority::Low));
        assert_eq!(
            picker.set_file_priorities(&[(300..401, Priority::High)]),
            Err(PickerError::BadFileRange {
                start: 300,
                end: 401,
                total_len: 400
            })
        );
        add(&mut picker, 1, None);
        let order = pieces(&pick(&mut picker, 1, 10));
        assert_eq!(order[0], 0);
        let mut rest = order[1..].to_vec();
        rest.sort();
        assert_eq!(rest, [1, 2]);
    }

    #[test]
    fn sequential_window_goes_first_and_moves_on() {
        let mut picker = picker(10);
        picker.set_sequential(Some(3));
        picker
            .set_piece_priority(PieceIndex(1), Priority::Skip)
            .unwrap();
        add(&mut picker, 1, None);
        // Window: pieces 0, 2, 3 (1 is skipped but counts in the window's span of indices 0..3).
        assert_eq!(pieces(&pick(&mut picker, 1, 4)), [0, 2]);
        for piece in [0, 2] {
            for n in 0..2 {
                if picker
                    .block_received(1, block(piece, n))
                    .unwrap()
                    .piece_complete
                {
                    picker.piece_verified(PieceIndex(piece)).unwrap();
                }
            }
        }
        picker.check_invariants();
        // The window now starts at piece 3.
        assert_eq!(pieces(&pick(&mut picker, 1, 6)), [3, 4, 5]);
        picker.set_sequential(None);
        let rest = pick(&mut picker, 1, 100);
        assert_eq!(rest.len(), 8);
    }

    #[test]
    fn suggested_pieces_come_before_rarest() {
        let mut picker = picker(5);
        add(&mut picker, 1, None);
        add(&mut picker, 2, Some(&[0, 1, 2, 3]));
        picker.peer_suggest(1, PieceIndex(3)).unwrap();
        picker.peer_suggest(1, PieceIndex(7 % 5)).unwrap();
        // Most recent suggestion first, then the other, then the rarest (piece 4).
        assert_eq!(pieces(&pick(&mut picker, 1, 6)), [2, 3, 4]);
    }

    #[test]
    fn failed_piece_is_picked_again() {
        let mut picker = picker(1);
        add(&mut picker, 1, None);
        assert_eq!(
            picker.piece_failed(PieceIndex(0)),
            Err(PickerError::PieceNotComplete(0))
        );
        let blocks = pick(&mut picker, 1, 2);
        assert!(!picker.block_received(1, blocks[0]).unwrap().piece_complete);
        assert_eq!(
            picker.piece_failed(PieceIndex(0)),
            Err(PickerError::PieceNotComplete(0))
        );
        assert!(picker.block_received(1, blocks[1]).unwrap().piece_complete);
        assert_eq!(
            picker.piece_state(PieceIndex(0)),
            Some(PieceState::AwaitingHash)
        );
        assert!(pick(&mut picker, 1, 2).is_empty());
        picker.piece_failed(PieceIndex(0)).unwrap();
        picker.check_invariants();
        assert_eq!(
            picker.piece_state(PieceIndex(0)),
            Some(PieceState::NotStarted)
        );
        assert_eq!(pick(&mut picker, 1, 2), blocks);
        for block in &blocks {
            picker.block_received(1, *block).unwrap();
        }
        assert_eq!(picker.piece_verified(PieceIndex(0)).unwrap(), []);
        assert!(picker.is_finished() && picker.has_piece(PieceIndex(0)));
        assert_eq!(picker.have_count(), 1);
        assert_eq!(picker.piece_verified(PieceIndex(0)).unwrap(), []);
        assert_eq!(
            picker.piece_failed(PieceIndex(0)),
            Err(PickerError::PieceNotComplete(0))
        );
        assert_eq!(
            picker.piece_verified(PieceIndex(1)),
            Err(PickerError::PieceOutOfRange(1))
        );
        picker.check_invariants();
    }

    #[test]
    fn verifying_a_downloading_piece_withdraws_its_requests() {
        let mut picker = picker(2);
        add(&mut picker, 1, None);
        picker.piece_verified(PieceIndex(1)).unwrap(); // found on disk
        let blocks = pick(&mut picker, 1, 1);
        assert_eq!(pieces(&blocks), [0]);
        assert_eq!(
            picker.piece_verified(PieceIndex(0)).unwrap(),
            [(1, blocks[0])]
        );
        picker.check_invariants();
        assert!(picker.is_finished());
        assert_eq!(picker.outstanding(1), Some(0));
        // A late block for a verified piece is not new.
        assert!(!picker.block_received(1, blocks[0]).unwrap().is_new);
    }

    #[test]
    fn received_blocks_are_checked_and_unsolicited_ones_kept() {
        let mut picker = picker_with(2, 2 * u64::from(BLOCK_LEN), 100);
        add(&mut picker, 1, None);
        let check = |picker: &mut TestPicker, block, expected| {
            assert_eq!(picker.block_received(1, block).err(), expected);
        };
        let bad = |piece, offset, len| Some(PickerError::InvalidBlock { piece, offset, len });
        check(
            &mut picker,
            BlockRef {
                piece: PieceIndex(0),
                offset: 1,
                len: BLOCK_LEN,
            },
            bad(0, 1, BLOCK_LEN),
        );
        check(
            &mut picker,
            BlockRef {
                piece: PieceIndex(0),
                offset: 2 * BLOCK_LEN,
                len: BLOCK_LEN,
            },
            bad(0, 2 * BLOCK_LEN, BLOCK_LEN),
        );
        check(
            &mut picker,
            BlockRef {
                piece: PieceIndex(1),
                offset: 0,
                len: BLOCK_LEN,
            },
            bad(1, 0, BLOCK_LEN),
        );
        check(
            &mut picker,
            BlockRef {
                piece: PieceIndex(2),
                offset: 0,
                len: 100,
            },
            Some(PickerError::PieceOutOfRange(2)),
        );
        assert_eq!(
            picker.block_received(9, block(0, 0)).err(),
            Some(PickerError::UnknownPeer)
        );
        // Not requested, but needed: kept.
        let received = picker
            .block_received(
                1,
                BlockRef {
                    piece: PieceIndex(1),
                    offset: 0,
                    len: 100,
                },
            )
            .unwrap();
        assert!(received.is_new && received.piece_complete);
        let again = picker.block_received(1, block(0, 0)).unwrap();
        assert!(again.is_new && !again.piece_complete);
        assert!(!picker.block_received(1, block(0, 0)).unwrap().is_new);
        picker.check_invariants();
        // Only block 1 of piece 0 is left to pick.
        assert_eq!(pick(&mut picker, 1, 10), [block(0, 1)]);
    }

    #[test]
    fn peer_have_none_after_requests_keeps_requests() {
        let mut picker = picker(2);
        add(&mut picker, 1, None);
        let blocks = pick(&mut picker, 1, 1);
        picker.peer_have_none(1).unwrap();
        picker.check_invariants();
        assert!(pick(&mut picker, 1, 10).is_empty());
        assert!(picker.block_received(1, blocks[0]).unwrap().is_new);
        picker.check_invariants();
    }

    /// Random operations, with every index and counter recomputed after each one.
    #[test]
    fn random_operations_keep_invariants() {
        // Tallies, to show the operations reach the interesting states.
        let (mut picked, mut completed, mut endgame) = (0, 0, 0);
        for seed in 0..60 {
            let mut rng = Rng::new(seed);
            let n_pieces = 1 + rng.below(40) as u32;
            let piece_len = [100, u64::from(BLOCK_LEN), 3 * u64::from(BLOCK_LEN) + 5][rng.below(3)];
            let total =
                u64::from(n_pieces - 1) * piece_len + 1 + rng.below(piece_len as usize) as u64;
            let mut picker = TestPicker::new(n_pieces, piece_len, total, seed).unwrap();
            let mut now = t0();
            let mut outstanding: Vec<(u32, BlockRef)> = Vec::new();
            let mut complete: Vec<u32> = Vec::new();
            for _ in 0..400 {
                let peer = rng.below(5) as u32;
                let piece = PieceIndex(rng.below(n_pieces as usize) as u32);
                let known = picker.outstanding(peer).is_some();
                match rng.below(16) {
                    0 => drop(picker.add_peer(peer)),
                    1 if known => {
                        let bits: Vec<u32> = (0..n_pieces).filter(|_| rng.below(2) == 0).collect();
                        picker
                            .peer_bitfield(peer, &bitfield(n_pieces, &bits))
                            .unwrap();
                    }
                    2 if known => picker.peer_have(peer, piece).unwrap(),
                    3 if known => picker.peer_have_all(peer).unwrap(),
                    4 if known && rng.below(3) == 0 => picker.peer_have_none(peer).unwrap(),
                    5 if known && rng.below(3) == 0 => drop(picker.remove_peer(peer).unwrap()),
                    6 if known => drop(picker.peer_choked(peer).unwrap()),
                    7 if known => picker.peer_unchoked(peer).unwrap(),
                    8 if known => picker.peer_allowed_fast(peer, piece).unwrap(),
                    9 if known => picker.peer_suggest(peer, piece).unwrap(),
                    10 => {
                        let priority = [
                            Priority::Skip,
                            Priority::Low,
                            Priority::Normal,
                            Priority::High,
                        ][rng.below(4)];
                        picker.set_piece_priority(piece, priority).unwrap();
                    }
                    11 => {
                        now += Duration::from_secs(1);
                        drop(picker.timeout_requests(now, Duration::from_secs(3)));
                    }
                    12 => picker.set_sequential([None, Some(2)][rng.below(2)]),
                    13 if !complete.is_empty() => {
                        let piece = PieceIndex(complete.swap_remove(rng.below(complete.len())));
                        if rng.below(4) == 0 {
                            drop(picker.piece_failed(piece));
                        } else {
                            drop(picker.piece_verified(piece).unwrap());
                        }
                    }
                    14 if !outstanding.is_empty() => {
                        let (peer, block) = outstanding.swap_remove(rng.below(outstanding.len()));
                        if picker.outstanding(peer).is_some() {
                            if rng.below(5) == 0 {
                                picker.request_rejected(peer, block).unwrap();
                            } else if picker.block_received(peer, block).unwrap().piece_complete {
                                complete.push(block.piece.0);
                                completed += 1;
                            }
                        }
                    }
                    _ if known => {
                        for block in picker.pick_blocks(peer, 1 + rng.below(6), now).unwrap() {
                            outstanding.push((peer, block));
                            picked += 1;
                        }
                        endgame += usize::from(picker.in_endgame());
                    }
                    _ => {}
                }
                picker.check_invariants();
            }
        }
        assert!(
            picked > 1000 && completed > 100 && endgame > 10,
            "{picked} {completed} {endgame}"
        );
    }
}
