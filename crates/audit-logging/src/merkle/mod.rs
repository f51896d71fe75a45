//! Merkle trees as RFC 9162 (Certificate Transparency 2.0, section 2.1)
//! defines them: one 32-byte root that commits to every record of the log,
//! and short proofs about it.
//!
//! # What it is for
//!
//! A checkpoint states a log's size and its tree root, and is signed. Anyone
//! holding a checkpoint can then be convinced of two things with a few dozen
//! hashes each, without reading the log:
//!
//! - **inclusion**: this record is the one at position `i` of the log the
//!   checkpoint commits to ([`inclusion_proof`], [`verify_inclusion`]);
//! - **consistency**: a newer checkpoint's log begins with exactly the
//!   records of an older one, so between the two nothing was edited, removed
//!   or reordered, only appended ([`consistency_proof`],
//!   [`verify_consistency`]).
//!
//! The tree shape, hashing and proof formats are the RFC's, shared with
//! Certificate Transparency and the C2SP `tlog-checkpoint` ecosystem, so
//! proofs made here can be checked with existing tools and vice versa. Which
//! bytes of a record form its leaf, and how checkpoints are written and
//! signed, are decided by the checkpoint format, not here.
//!
//! # The pieces
//!
//! - Hashing: [`leaf_hash`] is `SHA-256(0x00 || data)`, [`node_hash`] is
//!   `SHA-256(0x01 || left || right)`, the empty tree's root is
//!   [`EMPTY_ROOT`] (SHA-256 of nothing). The prefixes are [`LEAF_PREFIX`]
//!   and [`NODE_PREFIX`]; their docs show the byte layout. All hashes are a
//!   [`Hash`](struct@Hash).
//! - [`CompactRange`] is what a writer keeps: the roots of at most 64 perfect
//!   subtrees, enough to append a leaf and to give the current root, in
//!   O(log n) memory. It serializes, so a writer can persist it and resume.
//! - Generation ([`tree_root`], [`inclusion_proof`], [`consistency_proof`])
//!   reads leaf hashes from a [`LeafSource`]: a slice, a closure
//!   ([`from_fn`]), or later the log file itself. It keeps O(log n) hashes
//!   in memory and reads each of the `n` leaves at most once per proof, in
//!   increasing order.
//! - Verification ([`verify_inclusion`], [`verify_consistency`]) follows the
//!   RFC's algorithms step by step. [`inclusion_proof_len`] and
//!   [`consistency_proof_len`] give the exact number of hashes a proof has.
//!
//! # At the edges
//!
//! - Nothing here panics. Impossible requests (an index past the tree, an
//!   old size above the new) and failed checks are errors that carry the
//!   values involved: "inclusion proof for leaf 5 of 8 has 4 hashes,
//!   expected 3", "computed root …, expected …".
//! - Verifiers check their preconditions (sizes, index, proof length)
//!   before hashing anything.
//! - A consistency proof exists only from a non-empty tree
//!   (`0 < old_size`), as in the RFC; from a tree to itself the proof is
//!   empty and the roots must be equal.
//! - A root does not encode its size. A proof checked against the right
//!   root but a wrong size can still pass when both sizes give the proof the
//!   same shape (leaf 0 of 5 and of 7, say). The size and root must come
//!   together from one signed checkpoint, never from separate sources.
//! - A [`LeafSource`] error stops generation and is returned with the index
//!   of the leaf that could not be read.
//!
//! # Example
//!
//! ```
//! use audit_logging::merkle::{self, CompactRange};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The writer appends a leaf per record and keeps only the frontier.
//! let mut tree = CompactRange::new();
//! let mut leaves = Vec::new();
//! for record in ["login alice", "load model", "seal shard 0", "seal shard 1", "logout"] {
//!     let leaf = merkle::leaf_hash(record.as_bytes());
//!     tree.append(leaf)?;
//!     leaves.push(leaf);
//! }
//! let root = tree.root();
//!
//! // Record 2 is in the tree of 5 records.
//! let proof = merkle::inclusion_proof(2, 5, &leaves)?;
//! merkle::verify_inclusion(&leaves[2], 2, 5, &proof, &root)?;
//!
//! // The tree of 5 records extends the tree of the first 3.
//! let old_root = merkle::tree_root(3, &leaves)?;
//! let proof = merkle::consistency_proof(3, 5, &leaves)?;
//! merkle::verify_consistency(3, 5, &old_root, &root, &proof)?;
//!
//! // A proof for another record does not pass for this one.
//! let wrong = merkle::inclusion_proof(3, 5, &leaves)?;
//! assert!(merkle::verify_inclusion(&leaves[2], 2, 5, &wrong, &root).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! - Generating a proof reads up to all `n` leaf hashes of the tree once;
//!   no interior hashes are stored to make it cheaper. That suits proofs
//!   asked for now and then over logs of millions of records, not a proof
//!   server.
//! - A restored [`CompactRange`] is checked for shape, not for content: it
//!   is only as trustworthy as the place it was kept.

mod compact;
mod hash;
mod proof;
mod verify;

pub use compact::{CompactRange, InvalidCompactRange, MAX_FRONTIER_HASHES, TreeFull};
pub use hash::{EMPTY_ROOT, Hash, LEAF_PREFIX, NODE_PREFIX, leaf_hash, node_hash};
pub use proof::{
    FromFn, LeafOutOfRange, LeafSource, ProofError, consistency_proof, consistency_proof_len,
    from_fn, inclusion_proof, inclusion_proof_len, tree_root,
};
pub use verify::{ConsistencyError, InclusionError, verify_consistency, verify_inclusion};

#[cfg(test)]
mod tests;
