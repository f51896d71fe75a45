//! Proof verification, step by step as RFC 9162 sections 2.1.3.2 and
//! 2.1.4.2 give it.
//!
//! Each verifier checks its preconditions first (sizes, index, proof
//! length) and says which one failed with the values involved; only then
//! does it hash. The RFC's own checks that `sn` reaches 0 exactly when the
//! proof runs out are kept, although the length check up front already
//! guarantees them.

use super::proof::{consistency_proof_len, inclusion_proof_len};
use super::{Hash, node_hash};

/// Why an inclusion proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The index given.
        index: u64,
        /// The tree size given.
        size: u64,
    },
    /// The proof has the wrong number of hashes for this index and size.
    #[error("inclusion proof for leaf {index} of {size} has {found} hashes, expected {expected}")]
    ProofLength {
        /// The index given.
        index: u64,
        /// The tree size given.
        size: u64,
        /// How many hashes the proof has.
        found: usize,
        /// How many a proof for this index and size has.
        expected: usize,
    },
    /// The proof leads to another root.
    #[error("computed root {computed}, expected {expected}")]
    RootMismatch {
        /// The root the leaf and proof hash to.
        computed: Hash,
        /// The root given.
        expected: Hash,
    },
}

/// Why a consistency proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistencyError {
    /// The old tree is larger than the new one.
    #[error("old tree size {old_size} is larger than the new tree size {new_size}")]
    SizeOrder {
        /// The old size given.
        old_size: u64,
        /// The new size given.
        new_size: u64,
    },
    /// The old tree is empty and the new one is not: RFC 9162 defines no
    /// proof for that, and an empty tree commits to nothing.
    #[error(
        "old tree size is 0 and new tree size is {new_size}; a proof needs an old size of 1 or more"
    )]
    EmptyOldTree {
        /// The new size given.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error(
        "consistency proof from size {old_size} to {new_size} has {found} hashes, expected {expected}"
    )]
    ProofLength {
        /// The old size given.
        old_size: u64,
        /// The new size given.
        new_size: u64,
        /// How many hashes the proof has.
        found: usize,
        /// How many a proof between these sizes has.
        expected: usize,
    },
    /// Two trees of the same size must be the same tree.
    #[error("trees of equal size {size} have different roots: old {old_root}, new {new_root}")]
    RootsDiffer {
        /// The size of both.
        size: u64,
        /// The old root given.
        old_root: Hash,
        /// The new root given.
        new_root: Hash,
    },
    /// The proof does not lead to the old root.
    #[error("computed old root {computed}, expected {expected}")]
    OldRootMismatch {
        /// The old root the proof hashes to.
        computed: Hash,
        /// The old root given.
        expected: Hash,
    },
    /// The proof does not lead to the new root. When the old size is a power
    /// of two the old root is where the path starts, so a wrong old root
    /// shows up here rather than as [`OldRootMismatch`](Self::OldRootMismatch).
    #[error("computed new root {computed}, expected {expected}")]
    NewRootMismatch {
        /// The new root the proof hashes to.
        computed: Hash,
        /// The new root given.
        expected: Hash,
    },
}

/// Checks that `proof` shows the leaf with hash `leaf` at position `index` in
/// the tree of `size` leaves whose root is `root` (RFC 9162 section 2.1.3.2).
///
/// Preconditions, checked in this order: `index < size`; `proof` has exactly
/// [`inclusion_proof_len`]`(index, size)` hashes. Then the proof must hash to
/// `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), InclusionError> {
    let Some(expected) = inclusion_proof_len(index, size) else {
        return Err(InclusionError::IndexOutOfRange { index, size });
    };
    let wrong_length = InclusionError::ProofLength {
        index,
        size,
        found: proof.len(),
        expected,
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }

    // Steps 2 and 3. `index < size`, so `size >= 1`.
    let mut fn_ = index;
    let mut sn = size.saturating_sub(1);
    let mut r = *leaf;

    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }

    // Step 5.
    if sn != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(InclusionError::RootMismatch {
            computed: r,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `new_size` leaves with root
/// `new_root` extends the tree of `old_size` leaves with root `old_root`:
/// the first `old_size` leaves of both are the same (RFC 9162 section
/// 2.1.4.2).
///
/// Preconditions, checked in this order: `old_size <= new_size`; equal sizes
/// need an empty proof and equal roots, and nothing more is checked; an old
/// size of 0 is refused below a non-empty new size (the RFC defines proofs
/// for `0 < old_size < new_size` only); `proof` has exactly
/// [`consistency_proof_len`]`(old_size, new_size)` hashes. Then the proof
/// must hash to `old_root` and to `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    let expected = check_consistency_preconditions(old_size, new_size, proof.len())?;
    if old_size == new_size {
        if old_root != new_root {
            return Err(ConsistencyError::RootsDiffer {
                size: old_size,
                old_root: *old_root,
                new_root: *new_root,
            });
        }
        return Ok(());
    }
    let wrong_length = ConsistencyError::ProofLength {
        old_size,
        new_size,
        found: proof.len(),
        expected,
    };

    // Steps 1 and 2: the length check made the path non-empty; a power of
    // two old size is a complete subtree whose hash the verifier already
    // holds, so the proof leaves it out.
    let prefix = old_size.is_power_of_two().then_some(old_root);
    let mut path = prefix.into_iter().chain(proof);
    let Some(&first) = path.next() else {
        return Err(wrong_length);
    };

    // Steps 3 and 4. `0 < old_size < new_size`, so neither subtraction
    // saturates.
    let mut fn_ = old_size.saturating_sub(1);
    let mut sn = new_size.saturating_sub(1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }

    // Step 5.
    let mut fr = first;
    let mut sr = first;

    // Step 6.
    for c in path {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }

    // Step 7.
    if sn != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ConsistencyError::OldRootMismatch {
            computed: fr,
            expected: *old_root,
        });
    }
    if sr != *new_root {
        return Err(ConsistencyError::NewRootMismatch {
            computed: sr,
            expected: *new_root,
        });
    }
    Ok(())
}

/// The checks of [`verify_consistency`] that need no hashing: sizes in
/// order, a non-empty old tree below a larger new one, the proof length.
/// Returns the proof length.
fn check_consistency_preconditions(
    old_size: u64,
    new_size: u64,
    found: usize,
) -> Result<usize, ConsistencyError> {
    if old_size > new_size {
        return Err(ConsistencyError::SizeOrder { old_size, new_size });
    }
    if old_size == 0 && new_size != 0 {
        return Err(ConsistencyError::EmptyOldTree { new_size });
    }
    // Both sizes are in order and the old one is non-empty unless both are
    // 0, so a length exists.
    let expected = consistency_proof_len(old_size, new_size).unwrap_or(0);
    if found != expected {
        return Err(ConsistencyError::ProofLength {
            old_size,
            new_size,
            found,
            expected,
        });
    }
    Ok(expected)
}
