//! Proof generation (RFC 9162 sections 2.1.3.1 and 2.1.4.1) over a source of
//! leaf hashes.
//!
//! Both proofs are lists of Merkle Tree Hashes of disjoint runs of leaves,
//! fixed by the sizes and index alone. The functions here first work out
//! those runs by walking the RFC's PATH or SUBPROOF recursion down from the
//! root (a loop, not recursion), then hash each run by streaming its leaves
//! through a frontier. Memory is O(log n); the cost is one read of each leaf
//! in the runs (the runs are disjoint, so at most n reads, and n - 1 for an
//! inclusion proof), in increasing index order so a source backed by a file
//! reads forward.

use std::error::Error;

use super::compact::{fold_root, merge};
use super::{Hash, MAX_FRONTIER_HASHES};

/// Where proof generation reads leaf hashes from.
///
/// Implemented for `&[Hash]` and `&Vec<Hash>` (leaves in memory), for
/// closures through [`from_fn`], and for `&mut S` of any source, so a
/// source with state (an open log file) can be lent rather than given.
pub trait LeafSource {
    /// Why a leaf hash could not be read.
    type Error: Error + 'static;

    /// The hash of leaf `index` (see [`leaf_hash`](super::leaf_hash)).
    fn leaf_hash(&mut self, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: LeafSource + ?Sized> LeafSource for &mut S {
    type Error = S::Error;

    fn leaf_hash(&mut self, index: u64) -> Result<Hash, Self::Error> {
        (**self).leaf_hash(index)
    }
}

/// A slice was asked for a leaf past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("leaf {index} was asked for, but only {len} leaf hashes are held")]
pub struct LeafOutOfRange {
    /// The index asked for.
    pub index: u64,
    /// How many leaf hashes there are.
    pub len: usize,
}

impl LeafSource for &[Hash] {
    type Error = LeafOutOfRange;

    fn leaf_hash(&mut self, index: u64) -> Result<Hash, Self::Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(LeafOutOfRange {
                index,
                len: self.len(),
            })
    }
}

impl LeafSource for &Vec<Hash> {
    type Error = LeafOutOfRange;

    fn leaf_hash(&mut self, index: u64) -> Result<Hash, Self::Error> {
        self.as_slice().leaf_hash(index)
    }
}

/// A [`LeafSource`] that calls a closure; made by [`from_fn`].
#[derive(Debug, Clone)]
pub struct FromFn<F>(F);

/// A [`LeafSource`] calling `f(index)` for each leaf hash. For a closure that
/// cannot fail, use [`Infallible`](std::convert::Infallible) as the error
/// type.
pub fn from_fn<F, E>(f: F) -> FromFn<F>
where
    F: FnMut(u64) -> Result<Hash, E>,
    E: Error + 'static,
{
    FromFn(f)
}

impl<F, E> LeafSource for FromFn<F>
where
    F: FnMut(u64) -> Result<Hash, E>,
    E: Error + 'static,
{
    type Error = E;

    fn leaf_hash(&mut self, index: u64) -> Result<Hash, E> {
        (self.0)(index)
    }
}

/// Why a proof or root could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError<E> {
    /// An inclusion proof was asked for a leaf the tree does not have.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The leaf asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than the new tree size {new_size}")]
    SizeOrder {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// A consistency proof was asked from the empty tree to a non-empty one,
    /// which RFC 9162 does not define (there is nothing to be consistent
    /// with).
    #[error("no consistency proof exists from the empty tree to {new_size} leaves")]
    EmptyOldTree {
        /// The new size.
        new_size: u64,
    },
    /// The source could not give a leaf hash.
    #[error("could not read the hash of leaf {index}")]
    Leaf {
        /// The leaf asked for.
        index: u64,
        /// What the source said.
        #[source]
        source: E,
    },
}

/// The Merkle Tree Hash of the first `size` leaves of `leaves`; reads each of
/// them once.
pub fn tree_root<S: LeafSource>(size: u64, mut leaves: S) -> Result<Hash, ProofError<S::Error>> {
    range_root(0, size, &mut leaves)
}

/// The inclusion proof of leaf `index` in the tree of the first `size`
/// leaves: PATH(index, D\[0:size\]) of RFC 9162 section 2.1.3.1, the sibling
/// nearest the leaf first. Needs `index < size`.
pub fn inclusion_proof<S: LeafSource>(
    index: u64,
    size: u64,
    mut leaves: S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    spans_to_hashes(&inclusion_spans(index, size), &mut leaves)
}

/// The proof that the tree of the first `new_size` leaves extends the tree of
/// the first `old_size`: PROOF(old_size, D\[0:new_size\]) of RFC 9162 section
/// 2.1.4.1.
///
/// Needs `old_size <= new_size`. Equal sizes give the empty proof. An
/// `old_size` of 0 below a non-empty `new_size` is refused, as the RFC
/// defines proofs only for `0 < old_size`.
pub fn consistency_proof<S: LeafSource>(
    old_size: u64,
    new_size: u64,
    mut leaves: S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder { old_size, new_size });
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    spans_to_hashes(&consistency_spans(old_size, new_size), &mut leaves)
}

/// How many hashes the inclusion proof of leaf `index` in a tree of `size`
/// leaves has; `None` when `index >= size`.
///
/// Below the level where the paths to `index` and to the last leaf part,
/// every level contributes a sibling; above it, only the levels where
/// `index` lies in a right subtree do (a left subtree there has no right
/// sibling at that height).
pub fn inclusion_proof_len(index: u64, size: u64) -> Option<usize> {
    let last = size.checked_sub(1)?;
    if index > last {
        return None;
    }
    let inner = bit_length(index ^ last);
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    usize::try_from(inner.checked_add(border)?).ok()
}

/// How many hashes the consistency proof from `old_size` to `new_size` has;
/// `Some(0)` for equal sizes, `None` when no proof exists (`old_size` larger,
/// or 0 below a non-empty `new_size`).
///
/// The proof is the inclusion proof of the perfect subtree that ends the old
/// tree, taken at that subtree's height, plus that subtree's own hash unless
/// it is the whole old tree (old size a power of two).
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> Option<usize> {
    if old_size > new_size {
        return None;
    }
    if old_size == new_size {
        return Some(0);
    }
    let old_last = old_size.checked_sub(1)?;
    let new_last = new_size.checked_sub(1)?;
    let height = old_size.trailing_zeros();
    let inner = bit_length(old_last ^ new_last);
    let border = old_last.checked_shr(inner).unwrap_or(0).count_ones();
    let own = u32::from(!old_size.is_power_of_two());
    let len = inner
        .checked_sub(height)?
        .checked_add(border)?
        .checked_add(own)?;
    usize::try_from(len).ok()
}

/// How many bits `x` needs: 0 for 0, 64 at most.
fn bit_length(x: u64) -> u32 {
    u64::BITS.saturating_sub(x.leading_zeros())
}

/// The leaves `[start, end)`, whose Merkle Tree Hash is one proof element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
}

/// The largest power of two below `n`: where RFC 9162 splits a tree of `n`
/// leaves. `None` for `n < 2`, which has no split.
fn split_point(n: u64) -> Option<u64> {
    let exponent = n.checked_sub(1)?.checked_ilog2()?;
    1u64.checked_shl(exponent)
}

/// The runs of PATH(index, D\[0:size\]), nearest the leaf first.
///
/// Walks from the root down: at each split the sibling of the half holding
/// `index` joins the proof. `start <= index < end` throughout, so the
/// saturating operations never saturate.
fn inclusion_spans(index: u64, size: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(MAX_FRONTIER_HASHES);
    let (mut start, mut end) = (0, size);
    while let Some(k) = split_point(end.saturating_sub(start)) {
        let mid = start.saturating_add(k);
        if index < mid {
            spans.push(Span { start: mid, end });
            end = mid;
        } else {
            spans.push(Span { start, end: mid });
            start = mid;
        }
    }
    spans.reverse();
    spans
}

/// The runs of PROOF(old_size, D\[0:new_size\]) for `0 < old_size <
/// new_size`, in proof order.
///
/// Walks SUBPROOF from the root down: while the old tree ends inside the
/// left half, the right half joins the proof; once it reaches into the right
/// half, the (complete) left half joins it. The walk stops at the subtree
/// that ends exactly where the old tree does; that subtree's own hash leads
/// the proof unless the walk never left the leftmost path (then it is the
/// whole old tree, which the verifier already has). `start < old_size <=
/// end` throughout, so the saturating operations never saturate.
fn consistency_spans(old_size: u64, new_size: u64) -> Vec<Span> {
    let mut spans = Vec::with_capacity(MAX_FRONTIER_HASHES.saturating_add(1));
    let (mut start, mut end) = (0, new_size);
    let mut on_left_edge = true;
    while end != old_size {
        let Some(k) = split_point(end.saturating_sub(start)) else {
            break;
        };
        let mid = start.saturating_add(k);
        if old_size <= mid {
            spans.push(Span { start: mid, end });
            end = mid;
        } else {
            spans.push(Span { start, end: mid });
            start = mid;
            on_left_edge = false;
        }
    }
    if !on_left_edge {
        spans.push(Span { start, end });
    }
    spans.reverse();
    spans
}

/// Hashes each span, reading leaves in increasing index order, and returns
/// the hashes in the order of `spans`.
fn spans_to_hashes<S: LeafSource>(
    spans: &[Span],
    leaves: &mut S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    let mut by_start: Vec<(usize, Span)> = spans.iter().copied().enumerate().collect();
    by_start.sort_unstable_by_key(|(_, span)| span.start);
    let mut hashed = Vec::with_capacity(spans.len());
    for (position, span) in by_start {
        hashed.push((position, range_root(span.start, span.end, leaves)?));
    }
    hashed.sort_unstable_by_key(|(position, _)| *position);
    Ok(hashed.into_iter().map(|(_, hash)| hash).collect())
}

/// The Merkle Tree Hash of the leaves `[start, end)`, streamed through a
/// frontier.
fn range_root<S: LeafSource>(
    start: u64,
    end: u64,
    leaves: &mut S,
) -> Result<Hash, ProofError<S::Error>> {
    let mut frontier = Vec::with_capacity(MAX_FRONTIER_HASHES);
    // At most `end - start` leaves are counted, so this never saturates.
    let mut count: u64 = 0;
    for index in start..end {
        let leaf = leaves
            .leaf_hash(index)
            .map_err(|source| ProofError::Leaf { index, source })?;
        merge(&mut frontier, count, leaf);
        count = count.saturating_add(1);
    }
    Ok(fold_root(&frontier))
}
