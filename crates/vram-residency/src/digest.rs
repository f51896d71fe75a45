//! The seal digest: a Merkle tree root over fixed-size chunks of a shard.
//!
//! A shard's bytes are cut into consecutive chunks of [`CHUNK_BYTES`] (the
//! last one may be shorter). Each chunk is a leaf of an RFC 9162 Merkle
//! tree: its hash is `SHA-256(0x00 || chunk)` and an interior node's is
//! `SHA-256(0x01 || left || right)`, the tree split as that RFC's Merkle
//! Tree Hash splits it (the same tree as the audit log's, built with
//! [`audit_logging::merkle`]). The root is the seal digest.
//!
//! Why a tree rather than one SHA-256 of the whole shard: every chunk hashes
//! independently, so a device can hash all of them at once where the bytes
//! are resident and hand back hashes instead of weights, and the host can
//! use every core. One SHA-256 over a shard is inherently sequential. The
//! domain-separated leaf and node hashes keep a leaf from ever passing for
//! a subtree and the other way round, so two different byte strings never
//! share a root; the shard's length is part of every seal besides.
//!
//! The chunk size is fixed, not configurable, because a digest means
//! nothing without it: [`SCHEME`] names both, and a change to either is a
//! new scheme. 16 KiB gives a device tens of thousands of independent
//! chunks per gigabyte to spread over its cores, while the interior nodes
//! add well under 1% to the hashing.
//!
//! `kernels/chunk_sha256.c` holds the same leaf hash written for a GPU, one
//! thread per chunk; `tests/chunk_kernel_matches_the_standard.rs` holds it,
//! its CUDA branch included, to the NIST SHA-256 vectors and to this module
//! bit for bit. [`chunk_root`] and [`ChunkTree`] are the host
//! implementation, hashing chunks on all cores with `rayon`.

use audit_logging::Digest;
use audit_logging::merkle::{CompactRange, Hash, leaf_hash};
use rayon::prelude::*;

/// Size of one leaf chunk of the seal digest: 16 KiB.
///
/// Must equal `SEALTRAIL_CHUNK_BYTES` in `kernels/chunk_sha256.c`; a test
/// checks that it does.
pub const CHUNK_BYTES: usize = 16 * 1024;

/// The name of the digest scheme, as documentation and output show it.
pub const SCHEME: &str = "sha256-merkle-16k (RFC 9162 tree over 16 KiB chunks)";

/// Chunks hashed per parallel round: bounds the leaf hashes held at once
/// (32 bytes each) whatever the size of the input.
const CHUNKS_PER_ROUND: usize = 4096;

/// The seal digest of `bytes`, computed on all cores.
///
/// Zero bytes have the empty tree's root, `SHA-256("")`.
pub fn chunk_root(bytes: &[u8]) -> Digest {
    let mut tree = ChunkTree::new();
    tree.update(bytes);
    tree.finish()
}

/// Builds the seal digest of a byte stream fed in pieces of any size.
///
/// Whole chunks are hashed in parallel as they arrive; at most one partial
/// chunk is kept. The same bytes give the same root however they are split.
#[derive(Debug, Default, Clone)]
pub struct ChunkTree {
    tree: CompactRange,
    /// The start of a chunk whose end has not arrived yet.
    partial: Vec<u8>,
}

impl ChunkTree {
    /// A tree of no bytes.
    pub fn new() -> Self {
        ChunkTree::default()
    }

    /// Appends `data` to the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        if !self.partial.is_empty() {
            let missing = CHUNK_BYTES.saturating_sub(self.partial.len());
            let (head, rest) = data.split_at(missing.min(data.len()));
            self.partial.extend_from_slice(head);
            data = rest;
            if self.partial.len() < CHUNK_BYTES {
                return;
            }
            let chunk = std::mem::take(&mut self.partial);
            self.append(leaf_hash(&chunk));
        }
        let whole = data.len().saturating_sub(data.len() % CHUNK_BYTES);
        let (chunks, tail) = data.split_at(whole);
        for round in chunks.chunks(CHUNK_BYTES.saturating_mul(CHUNKS_PER_ROUND)) {
            let leaves: Vec<Hash> = round.par_chunks(CHUNK_BYTES).map(leaf_hash).collect();
            for leaf in leaves {
                self.append(leaf);
            }
        }
        self.partial.extend_from_slice(tail);
    }

    /// The root of everything fed so far, the short last chunk included.
    pub fn finish(mut self) -> Digest {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.append(leaf_hash(&last));
        }
        Digest(self.tree.root().0)
    }

    fn append(&mut self, leaf: Hash) {
        // A tree of 2^64 chunks would be 2^78 bytes; no shard gets there.
        let _ = self.tree.append(leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_logging::merkle::node_hash;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    fn sha256(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn one_short_chunk_is_its_own_leaf_hash() {
        let mut prefixed = vec![0x00];
        prefixed.extend_from_slice(b"weights");
        assert_eq!(chunk_root(b"weights").0, sha256(&prefixed));
    }

    #[test]
    fn no_bytes_have_the_empty_tree_root() {
        assert_eq!(chunk_root(b"").0, sha256(b""));
    }

    #[test]
    fn three_chunks_split_as_rfc_9162_splits_them() {
        let data = bytes(2 * CHUNK_BYTES + 5, 1);
        let [a, b, c] = [
            &data[..CHUNK_BYTES],
            &data[CHUNK_BYTES..2 * CHUNK_BYTES],
            &data[2 * CHUNK_BYTES..],
        ]
        .map(leaf_hash);
        let expected = node_hash(&node_hash(&a, &b), &c);
        assert_eq!(chunk_root(&data).0, expected.0);
    }

    #[test]
    fn moving_a_byte_across_a_chunk_boundary_changes_the_root() {
        let data = bytes(CHUNK_BYTES + 1, 2);
        let mut other = data.clone();
        other.swap(CHUNK_BYTES - 1, CHUNK_BYTES);
        assert_ne!(chunk_root(&data), chunk_root(&other));
        // One extra zero byte is a different shard, too.
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(chunk_root(&data), chunk_root(&longer));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_split_of_the_stream_gives_the_same_root(
            len in 0usize..(5 * CHUNK_BYTES),
            cuts in proptest::collection::vec(0usize..(5 * CHUNK_BYTES), 0..6),
            seed in any::<u8>(),
        ) {
            let data = bytes(len, seed);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            cuts.sort_unstable();
            let mut tree = ChunkTree::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([len]) {
                tree.update(&data[from..cut]);
                from = cut;
            }
            prop_assert_eq!(tree.finish(), chunk_root(&data));
        }
    }
}
