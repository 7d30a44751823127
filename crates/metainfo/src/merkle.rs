//! BEP 52 merkle trees: SHA-256 over 16 KiB blocks of each file.
//!
//! The leaves are the SHA-256 hashes of the file's 16 KiB blocks (the last one may be short); the tree has
//! a power-of-two number of leaves, the missing ones being 32 zero bytes. A file's `pieces root` is the root
//! of that tree; its piece layer is the layer where each node covers `piece length` bytes, listed for
//! files larger than one piece.

use sha2::{Digest, Sha256};

/// The v2 block size: the leaves of the merkle tree cover 16 KiB each (BEP 52).
pub const BLOCK_SIZE: u64 = 16 * 1024;

/// A SHA-256 hash, a node of a merkle tree.
pub type Hash256 = [u8; 32];

/// The SHA-256 of one block of data (a leaf).
pub fn hash_block(data: &[u8]) -> Hash256 {
    Sha256::digest(data).into()
}

fn hash_pair(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of a subtree of `leaves` leaves (a power of two) that are all zero hashes.
pub fn zero_subtree_root(leaves: u64) -> Hash256 {
    let mut node = [0; 32];
    let mut width = 1;
    while width < leaves {
        node = hash_pair(&node, &node);
        width *= 2;
    }
    node
}

/// The root of the tree whose lowest layer is `nodes`, padded to `width` nodes (a power of two, at least
/// `nodes.len()`) with `pad`, the root of an all-zero subtree of that layer's height.
pub fn root_of(nodes: &[Hash256], width: u64, pad: Hash256) -> Hash256 {
    debug_assert!(width.is_power_of_two() && width >= nodes.len() as u64);
    if nodes.is_empty() {
        return [0; 32];
    }
    let mut layer: Vec<Hash256> = nodes.to_vec();
    let mut pad = pad;
    let mut width = width;
    while width > 1 {
        let next: Vec<Hash256> = layer
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => hash_pair(left, right),
                [left] => hash_pair(left, &pad),
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
        layer = next;
        pad = hash_pair(&pad, &pad);
        width /= 2;
    }
    layer[0]
}

/// The hash of one piece of a file larger than a piece: the root over the piece's block hashes, padded
/// with zero leaves to `piece_length / 16 KiB`.
pub fn piece_root(block_hashes: &[Hash256], piece_length: u64) -> Hash256 {
    root_of(block_hashes, piece_length / BLOCK_SIZE, [0; 32])
}

/// A file's `pieces root` from its block hashes, when the file fits in one piece.
pub fn small_file_root(block_hashes: &[Hash256]) -> Hash256 {
    let width = (block_hashes.len() as u64).next_power_of_two();
    root_of(block_hashes, width, [0; 32])
}

/// A file's `pieces root` from its piece layer (one hash per piece, the file larger than one piece).
pub fn layer_root(piece_hashes: &[Hash256], piece_length: u64) -> Hash256 {
    let width = (piece_hashes.len() as u64).next_power_of_two();
    root_of(
        piece_hashes,
        width,
        zero_subtree_root(piece_length / BLOCK_SIZE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The padded tree, built the slow way, must give the same root as the shortcuts.
    fn naive_root(data: &[u8]) -> Hash256 {
        let mut leaves: Vec<Hash256> = data.chunks(BLOCK_SIZE as usize).map(hash_block).collect();
        let width = leaves.len().next_power_of_two();
        leaves.resize(width, [0; 32]);
        while leaves.len() > 1 {
            leaves = leaves.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
        }
        leaves[0]
    }

    #[test]
    fn shortcuts_match_the_full_tree() {
        let piece_length = 4 * BLOCK_SIZE;
        for blocks in [1u64, 2, 3, 4, 5, 9, 17] {
            let data: Vec<u8> = (0..blocks * BLOCK_SIZE - 100)
                .map(|i| (i % 251) as u8)
                .collect();
            let leaves: Vec<Hash256> = data.chunks(BLOCK_SIZE as usize).map(hash_block).collect();
            let root = if data.len() as u64 <= piece_length {
                small_file_root(&leaves)
            } else {
                let layer: Vec<Hash256> = leaves
                    .chunks(4)
                    .map(|piece| piece_root(piece, piece_length))
                    .collect();
                layer_root(&layer, piece_length)
            };
            assert_eq!(root, naive_root(&data), "{blocks} blocks");
        }
    }
}
