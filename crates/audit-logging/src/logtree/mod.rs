//! The log as a Merkle tree, and the signed checkpoints that commit to it.
//!
//! Every record is a leaf of an RFC 9162 Merkle tree (see [`merkle`]): the
//! leaf data is the SHA-256 of the record's whole line without its newline
//! (the value the next record's `prev` holds; see [`leaf_of`]), and the
//! leaf index is `seq - 1`. A checkpoint is that tree's size and root, in the
//! C2SP `tlog-checkpoint` format, signed as a C2SP signed note with a
//! [`CheckpointSigner`] — an Ed25519 key separate from the record
//! [`AuditKey`](crate::AuditKey) (see [`checkpoint`](crate::checkpoint)).
//!
//! # Writing
//!
//! Give the logger a signer with
//! [`LoggerConfig::checkpoint_signer`](crate::LoggerConfig::checkpoint_signer).
//! The writer then keeps a [`CompactRange`] of the records and writes a
//! checkpoint every [`DEFAULT_CHECKPOINT_EVERY_RECORDS`] records, every
//! [`DEFAULT_CHECKPOINT_INTERVAL`] when records were added, and always at
//! shutdown (both intervals are configurable). A checkpoint is written only
//! after the records it covers are fsynced, so a crash can never leave a
//! checkpoint that commits to records the log lost. A checkpoint the disk
//! refuses (it is full) degrades the writer like a refused record: it takes
//! no more events until a retry has written the checkpoint.
//!
//! - **Origin**: `sealtrail/<key id of the audit key>` ([`origin_for`]), the
//!   first line of every checkpoint. It names the log, so a checkpoint of
//!   one log is never accepted for another.
//! - **Files**: `checkpoints/<tree size, 20 digits>.note` in the audit
//!   directory ([`CHECKPOINT_DIR`]), one signed note each, mode `0600` in a
//!   `0700` directory, written to a temporary file, fsynced, renamed into
//!   place and the directory fsynced. Segment listing only looks at
//!   `seg-*.jsonl` in the audit directory itself, so checkpoints are never
//!   mistaken for segments. Old checkpoints are kept.
//! - **Resume**: on open the writer rebuilds the tree by streaming every
//!   segment once (O(log n) memory, O(n) reading). It does not trust a
//!   persisted tree state: a state file is one more thing an attacker could
//!   edit, and a wrong frontier would make every later checkpoint sign a
//!   tree that is not the log's. The one exception is a trail whose oldest
//!   segments were retired: the tree then starts from the frontier of the
//!   retired records in `retired.json` (see [`crate::retention`]), which
//!   the verifier holds against the chain's retirement record and any
//!   anchor past the cut. While streaming it checks that the
//!   rebuilt tree matches the newest stored checkpoint that is what its
//!   file name says (a signed note of this log, verifying under the
//!   writer's own key, of the size its name claims; others are skipped with
//!   a warning and left for `verify` to report); if the log is shorter than
//!   that checkpoint, or its root differs, the logger refuses to open ([`OpenError::CheckpointMismatch`](crate::OpenError::CheckpointMismatch))
//!   rather than sign a rewritten or truncated history.
//!
//! # Checking
//!
//! [`verify_dir_with_checkpoints`] is [`verify_dir`](crate::verify_dir)
//! plus, while streaming, the tree: for each stored checkpoint whose size is
//! reached it checks the root (and, given a trusted [`NoteVerifier`], the
//! signature), and for an *anchor* — a checkpoint exported earlier and kept
//! somewhere the attacker cannot reach — it checks that the log still
//! reaches the anchor's size and has the anchor's root there. That is what
//! catches records cut off the end and a history rewritten with a stolen
//! record key; see the limits below.
//!
//! # Proofs
//!
//! [`prove_inclusion`] shows that a record is leaf `seq - 1` of the tree the
//! newest stored checkpoint signs; [`prove_consistency`] that the tree of one
//! stored checkpoint extends another's. Both stream the segments once and check
//! the proof against the checkpoint before returning it. A proof ([`Proof`],
//! JSON) carries its signed checkpoint(s) and, for inclusion, the record line,
//! so [`check_proof`] checks it with nothing but the checkpoint verifier key.
//! It proves what the checkpoints say; it does not check record macs (that
//! needs the audit key) and is only as recent as the checkpoints it carries.
//! Proofs are built from every leaf from the first, so they are refused
//! once [`retention`](crate::retention) retired the oldest segments (a
//! proof written before still checks).
//!
//! # What this does not prove
//!
//! - Without an anchor, stored checkpoints catch only an attacker who left
//!   them in place: whoever can truncate or rewrite segments can delete or
//!   replace the checkpoint files too (replacing needs the signing key to
//!   pass a signature check). Only an anchor held off the host proves the
//!   log was not cut back or rewritten before it.
//! - Records after the newest anchor are protected by the chain and record
//!   key alone.
//! - The verifier key is never read from the audit directory; signatures are
//!   checked only when the caller supplies one.

mod files;
mod proof;
mod verify;
mod writer;

use std::time::Duration;

pub use files::{
    CHECKPOINT_DIR, checkpoint_name, latest_checkpoint, list_checkpoints, read_checkpoint,
};
pub use proof::{
    ConsistencyProof, InclusionProof, MAX_PROOF_BYTES, Proof, ProofCheckError, ProofSummary,
    ProveError, check_proof, prove_consistency, prove_inclusion,
};
pub use verify::{
    Anchor, AnchorError, CheckpointOptions, CheckpointReport, verify_dir_with_checkpoints,
};
pub(crate) use writer::{CheckpointSettings, Checkpointer, resume_tree};

use crate::checkpoint::CheckpointSigner;
#[cfg(doc)]
use crate::checkpoint::NoteVerifier;
#[cfg(doc)]
use crate::merkle;
use crate::merkle::CompactRange;

/// Default number of records between checkpoints.
///
/// A checkpoint costs an fsync of the records it covers, one Ed25519
/// signature and one small fsynced file; every ten thousand records keeps
/// that to about a percent of the writer's work (see BENCHMARKS.md).
pub const DEFAULT_CHECKPOINT_EVERY_RECORDS: u64 = 10_000;

/// Default longest time records stay without a checkpoint.
///
/// A quiet service still gets a checkpoint within a minute of its last
/// record, so an exported anchor is never far behind the log.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The checkpoint origin of a log whose records are made with the audit key
/// `key_id`: `sealtrail/<key id>`.
pub fn origin_for(key_id: &str) -> String {
    format!("sealtrail/{key_id}")
}

/// When the writer signs checkpoints, and with which key.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointPolicy {
    pub signer: std::sync::Arc<CheckpointSigner>,
    pub every_records: u64,
    pub interval: Duration,
}

/// The leaf hash of a record line (without its newline): the leaf data is
/// the line's SHA-256, the value the next record's `prev` holds, so the
/// writer hashes each line once for both the chain and the tree.
pub fn leaf_of(line: &[u8]) -> crate::merkle::Hash {
    leaf_of_line_hash(&crate::record::line_hash(line))
}

/// The leaf hash of a record whose line hashes to `line_hash`.
pub fn leaf_of_line_hash(line_hash: &[u8; 32]) -> crate::merkle::Hash {
    crate::merkle::leaf_hash(line_hash)
}

/// Appends a record line to `tree`.
pub(crate) fn append_line(tree: &mut CompactRange, line: &[u8]) -> std::io::Result<()> {
    tree.append(leaf_of(line)).map_err(std::io::Error::other)
}
