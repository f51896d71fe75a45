//! The frontier of an append-only tree: what a writer keeps to know the
//! current root without keeping the leaves.

use serde::{Deserialize, Serialize};

use super::{EMPTY_ROOT, Hash, node_hash};

/// The most subtree roots a [`CompactRange`] ever holds: one per set bit of
/// its `u64` size.
pub const MAX_FRONTIER_HASHES: usize = 64;

/// The state of an append-only tree of `size` leaves in O(log n) memory.
///
/// The leaves `[0, size)` split uniquely into perfect subtrees, one for each
/// set bit of `size`, largest first: 7 leaves are `[0, 4)`, `[4, 6)` and
/// `[6, 7)`. This *frontier* keeps the root hash of each, at most
/// [`MAX_FRONTIER_HASHES`] of them, which is all that is needed to append the
/// next leaf and to compute the tree's root. Appending merges equal-height
/// subtrees like a binary counter carries, so it costs O(1) hashes amortized
/// and at most 64.
///
/// It serializes (`{"size":7,"hashes":["<hex>",...]}`) so a writer can persist
/// it next to its log and resume after a restart; deserializing refuses a
/// hash count that does not match the size. It cannot notice hashes that are
/// well formed but wrong: whoever restores it must trust where it was kept,
/// or rebuild it from the leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Parts", into = "Parts")]
pub struct CompactRange {
    size: u64,
    /// Invariant: `hashes.len() == size.count_ones()`, largest subtree first.
    hashes: Vec<Hash>,
}

/// The serialized form, checked on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parts {
    size: u64,
    hashes: Vec<Hash>,
}

/// Why [`CompactRange::from_parts`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tree of {size} leaves has {expected} perfect subtrees, but {found} hashes were given")]
pub struct InvalidCompactRange {
    /// The size given.
    pub size: u64,
    /// How many hashes that size needs: its number of set bits.
    pub expected: u32,
    /// How many were given.
    pub found: usize,
}

/// [`CompactRange::append`] on a tree that already holds `u64::MAX` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the tree already holds {} leaves, the most a 64-bit size can count",
    u64::MAX
)]
pub struct TreeFull;

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        CompactRange::default()
    }

    /// Restores a frontier from its size and subtree roots, largest subtree
    /// first (as [`hashes`](Self::hashes) returns them).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, InvalidCompactRange> {
        let expected = size.count_ones();
        if usize::try_from(expected).ok() != Some(hashes.len()) {
            return Err(InvalidCompactRange {
                size,
                expected,
                found: hashes.len(),
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Appends the leaf with hash `leaf` (see [`leaf_hash`](super::leaf_hash)).
    ///
    /// Fails only when the size would pass `u64::MAX`; the frontier is then
    /// unchanged.
    pub fn append(&mut self, leaf: Hash) -> Result<(), TreeFull> {
        let new_size = self.size.checked_add(1).ok_or(TreeFull)?;
        merge(&mut self.hashes, self.size, leaf);
        self.size = new_size;
        Ok(())
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The roots of the perfect subtrees covering `[0, size)`, largest (leftmost)
    /// first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The Merkle Tree Hash of all leaves so far; [`EMPTY_ROOT`] for none.
    pub fn root(&self) -> Hash {
        fold_root(&self.hashes)
    }
}

impl TryFrom<Parts> for CompactRange {
    type Error = InvalidCompactRange;

    fn try_from(parts: Parts) -> Result<Self, Self::Error> {
        CompactRange::from_parts(parts.size, parts.hashes)
    }
}

impl From<CompactRange> for Parts {
    fn from(range: CompactRange) -> Self {
        Parts {
            size: range.size,
            hashes: range.hashes,
        }
    }
}

/// Folds the hash of a new leaf into `hashes`, the frontier of `size` leaves.
///
/// Each set low bit of `size` is a perfect subtree as tall as the one being
/// carried, ending just before it; the two merge into one a level higher.
/// Callers keep `hashes.len() == size.count_ones()`.
pub(super) fn merge(hashes: &mut Vec<Hash>, size: u64, leaf: Hash) {
    let mut carried = leaf;
    let mut bits = size;
    while bits & 1 == 1 {
        let Some(left) = hashes.pop() else {
            break;
        };
        carried = node_hash(&left, &carried);
        bits >>= 1;
    }
    hashes.push(carried);
}

/// The root over a frontier: hashes its subtrees together from the right.
pub(super) fn fold_root(hashes: &[Hash]) -> Hash {
    let mut from_right = hashes.iter().rev();
    match from_right.next() {
        None => EMPTY_ROOT,
        Some(last) => from_right.fold(*last, |right, left| node_hash(left, &right)),
    }
}
