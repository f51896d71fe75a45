//! Proofs for third parties: that a record is in the log a signed
//! checkpoint commits to (inclusion), and that a newer checkpoint's log
//! extends an older one's (consistency). A proof file is JSON carrying the
//! signed checkpoint(s) it is checked against, so [`check_proof`] needs only
//! the checkpoint verifier key: no audit key, no audit directory.

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{list_checkpoints, read_checkpoint};
use crate::checkpoint::{Checkpoint, Note, NoteVerifier};
use crate::merkle::{self, Hash};
use crate::record::RawRecord;
use crate::store::lines::LineReader;
use crate::store::{fs, list_segments};

/// Largest proof file [`check_proof`] reads: two notes of at most
/// [`MAX_NOTE_BYTES`](crate::checkpoint::MAX_NOTE_BYTES), one record of at
/// most [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES) (JSON escaping can
/// double it) and at most 128 hashes, with room to spare.
pub const MAX_PROOF_BYTES: usize = 2 * 1024 * 1024;

/// A proof file: one of the two kinds, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proof {
    /// A record is in a checkpointed log.
    Inclusion(InclusionProof),
    /// A checkpointed log extends an older checkpointed log.
    Consistency(ConsistencyProof),
}

/// Record `seq` is leaf `seq - 1` of the tree the checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The record's sequence number.
    pub seq: u64,
    /// Its leaf index, `seq - 1`.
    pub leaf_index: u64,
    /// The record's whole line, without its newline.
    pub record: String,
    /// `SHA-256(0x00 || record)`.
    pub leaf_hash: Hash,
    /// The size of the tree the proof is for; the checkpoint's size.
    pub tree_size: u64,
    /// The RFC 9162 inclusion proof, the hash nearest the leaf first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
}

/// The log of `new_checkpoint` begins with exactly the log of
/// `old_checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// The RFC 9162 consistency proof.
    pub proof: Vec<Hash>,
    /// The signed checkpoint of the older tree.
    pub old_checkpoint: String,
    /// The signed checkpoint of the newer tree.
    pub new_checkpoint: String,
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// No stored checkpoint covers what was asked.
    #[error("{0}")]
    NotCovered(String),
    /// A consistency proof was asked from a larger tree to a smaller one:
    /// the arguments are the wrong way round.
    #[error(
        "the old size {old} is larger than the new size {new}: give the older, smaller \
         checkpoint first"
    )]
    SizesOutOfOrder {
        /// The size given as the older tree's.
        old: u64,
        /// The size given as the newer tree's.
        new: u64,
    },
    /// The log does not match its own checkpoint; run a verification.
    #[error("the log does not match its checkpoint: {0}; run `sealtrail verify`")]
    Mismatch(String),
}

/// Why a proof did not check out, or could not be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofCheckError {
    /// The file is not a proof (bad JSON, too large): nothing was checked.
    #[error("not a sealtrail proof: {0}")]
    Malformed(String),
    /// The proof was checked and is false: a bad signature, a wrong leaf, a
    /// proof that does not lead to the signed root.
    #[error("the proof does not verify: {0}")]
    Failed(String),
}

/// What a proof that checked out proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofSummary {
    /// The log's origin, from its checkpoint.
    pub origin: String,
    /// In words.
    pub statement: String,
}

/// The inclusion proof of record `seq` in the newest stored checkpoint of
/// the log in `dir`. Reads the segments once, in O(log n) memory, and
/// checks the proof against the checkpoint before returning it.
pub fn prove_inclusion(dir: &Path, seq: u64) -> Result<InclusionProof, ProveError> {
    let (size, note, checkpoint) = newest_checkpoint(dir)?;
    let index = seq.checked_sub(1).filter(|i| *i < size).ok_or_else(|| {
        ProveError::NotCovered(format!(
            "record {seq} is not in the newest checkpoint, which covers records 1 to {size}"
        ))
    })?;
    let mut leaves = Leaves::new(dir, Some(index))?;
    let proof = merkle::inclusion_proof(index, size, &mut leaves).map_err(|e| leaves.error(e))?;
    let record = leaves.captured_line(index)?;
    let leaf_hash = super::leaf_of(&record);
    let root = Hash(*checkpoint.root_hash());
    merkle::verify_inclusion(&leaf_hash, index, size, &proof, &root)
        .map_err(|e| ProveError::Mismatch(e.to_string()))?;
    Ok(InclusionProof {
        seq,
        leaf_index: index,
        record: String::from_utf8(record)
            .map_err(|_| ProveError::Mismatch(format!("record {seq} is not UTF-8")))?,
        leaf_hash,
        tree_size: size,
        proof,
        checkpoint: note,
    })
}

/// The consistency proof between the stored checkpoints of `old_size` and
/// `new_size` records, checked against both before it is returned.
pub fn prove_consistency(
    dir: &Path,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, ProveError> {
    if old_size > new_size {
        return Err(ProveError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    let (old_note, old) = stored_checkpoint(dir, old_size)?;
    let (new_note, new) = stored_checkpoint(dir, new_size)?;
    let mut leaves = Leaves::new(dir, None)?;
    let proof =
        merkle::consistency_proof(old_size, new_size, &mut leaves).map_err(|e| leaves.error(e))?;
    merkle::verify_consistency(
        old_size,
        new_size,
        &Hash(*old.root_hash()),
        &Hash(*new.root_hash()),
        &proof,
    )
    .map_err(|e| ProveError::Mismatch(e.to_string()))?;
    Ok(ConsistencyProof {
        old_size,
        new_size,
        proof,
        old_checkpoint: old_note,
        new_checkpoint: new_note,
    })
}

/// Checks a proof file offline against the trusted checkpoint verifier key.
pub fn check_proof(bytes: &[u8], trusted: &NoteVerifier) -> Result<ProofSummary, ProofCheckError> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofCheckError::Malformed(format!(
            "{} bytes, more than the {MAX_PROOF_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let proof: Proof =
        serde_json::from_slice(bytes).map_err(|e| ProofCheckError::Malformed(e.to_string()))?;
    match proof {
        Proof::Inclusion(p) => check_inclusion(&p, trusted),
        Proof::Consistency(p) => check_consistency(&p, trusted),
    }
}

fn failed(detail: impl std::fmt::Display) -> ProofCheckError {
    ProofCheckError::Failed(detail.to_string())
}

/// Opens a signed checkpoint under `trusted`; its origin must be a
/// sealtrail log's.
fn open_signed(note: &str, trusted: &NoteVerifier) -> Result<Checkpoint, ProofCheckError> {
    let verified = crate::checkpoint::open(note.as_bytes(), std::slice::from_ref(trusted))
        .map_err(|e| failed(format!("checkpoint signature: {e}")))?;
    let checkpoint = Checkpoint::parse(verified.text()).map_err(failed)?;
    if !checkpoint.origin().starts_with("sealtrail/") {
        return Err(failed(format!(
            "checkpoint origin {:?} is not a sealtrail log",
            checkpoint.origin()
        )));
    }
    Ok(checkpoint)
}

fn check_inclusion(
    p: &InclusionProof,
    trusted: &NoteVerifier,
) -> Result<ProofSummary, ProofCheckError> {
    let checkpoint = open_signed(&p.checkpoint, trusted)?;
    if checkpoint.size() != p.tree_size {
        return Err(failed(format!(
            "the proof is for {} records but the checkpoint signs {}",
            p.tree_size,
            checkpoint.size()
        )));
    }
    let record = RawRecord::parse(p.record.as_bytes()).map_err(failed)?;
    if record.seq != p.seq || p.seq.checked_sub(1) != Some(p.leaf_index) {
        return Err(failed(format!(
            "the record is number {}, the proof says record {} at leaf {}",
            record.seq, p.seq, p.leaf_index
        )));
    }
    let leaf = super::leaf_of(p.record.as_bytes());
    if leaf != p.leaf_hash {
        return Err(failed(format!(
            "the record hashes to leaf {leaf}, the proof says {}",
            p.leaf_hash
        )));
    }
    let root = Hash(*checkpoint.root_hash());
    merkle::verify_inclusion(&leaf, p.leaf_index, p.tree_size, &p.proof, &root).map_err(failed)?;
    Ok(ProofSummary {
        origin: checkpoint.origin().to_owned(),
        statement: format!(
            "record {} is in the log of {} records signed by {}",
            p.seq,
            p.tree_size,
            trusted.name()
        ),
    })
}

fn check_consistency(
    p: &ConsistencyProof,
    trusted: &NoteVerifier,
) -> Result<ProofSummary, ProofCheckError> {
    let old = open_signed(&p.old_checkpoint, trusted)?;
    let new = open_signed(&p.new_checkpoint, trusted)?;
    if old.origin() != new.origin() {
        return Err(failed(format!(
            "the checkpoints are of two logs, {:?} and {:?}",
            old.origin(),
            new.origin()
        )));
    }
    if (old.size(), new.size()) != (p.old_size, p.new_size) {
        return Err(failed(format!(
            "the proof is for sizes {} and {}, the checkpoints sign {} and {}",
            p.old_size,
            p.new_size,
            old.size(),
            new.size()
        )));
    }
    merkle::verify_consistency(
        p.old_size,
        p.new_size,
        &Hash(*old.root_hash()),
        &Hash(*new.root_hash()),
        &p.proof,
    )
    .map_err(failed)?;
    Ok(ProofSummary {
        origin: new.origin().to_owned(),
        statement: format!(
            "the log of {} records extends the log of {} records, both signed by {}",
            p.new_size,
            p.old_size,
            trusted.name()
        ),
    })
}

/// The newest stored checkpoint: its size, note and parsed text. Its
/// signature is not checked here; whoever checks the proof does that.
fn newest_checkpoint(dir: &Path) -> Result<(u64, String, Checkpoint), ProveError> {
    let list = list_checkpoints(dir).map_err(|source| ProveError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let Some((size, _)) = list.last() else {
        return Err(ProveError::NotCovered(format!(
            "{} holds no checkpoints",
            dir.display()
        )));
    };
    let (note, checkpoint) = stored_checkpoint(dir, *size)?;
    Ok((*size, note, checkpoint))
}

fn stored_checkpoint(dir: &Path, size: u64) -> Result<(String, Checkpoint), ProveError> {
    let list = list_checkpoints(dir).map_err(|source| ProveError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let Some((_, path)) = list.iter().find(|(s, _)| *s == size) else {
        let sizes: Vec<String> = list.iter().map(|(s, _)| s.to_string()).collect();
        return Err(ProveError::NotCovered(format!(
            "no stored checkpoint of {size} records; stored sizes: {}",
            if sizes.is_empty() {
                "none".to_owned()
            } else {
                sizes.join(", ")
            }
        )));
    };
    let bytes = read_checkpoint(path).map_err(|source| ProveError::Io {
        path: path.clone(),
        source,
    })?;
    let bad = |e: String| ProveError::Mismatch(format!("{}: {e}", path.display()));
    let note = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
    let parsed = Note::parse(note.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let checkpoint = Checkpoint::parse(parsed.text()).map_err(|e| bad(e.to_string()))?;
    if checkpoint.size() != size {
        return Err(bad(format!("it commits to {} records", checkpoint.size())));
    }
    Ok((note, checkpoint))
}

/// Leaf hashes read forward from the segments, as proof generation asks
/// for them (in increasing order), keeping one record line aside.
struct Leaves {
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    reader: Option<(PathBuf, LineReader<BufReader<std::fs::File>>)>,
    /// Index of the next line to be read.
    next: u64,
    buf: Vec<u8>,
    capture: Option<u64>,
    captured: Option<Vec<u8>>,
    /// The first read error, kept to report it with its file.
    failure: Option<ProveError>,
}

/// A leaf could not be read; the details are in [`Leaves::failure`].
#[derive(Debug, thiserror::Error)]
#[error("the log ended or could not be read")]
struct LeafUnavailable;

impl Leaves {
    fn new(dir: &Path, capture: Option<u64>) -> Result<Self, ProveError> {
        // Proofs are built from every leaf from the first; after retention
        // the first ones are gone (proofs made before still check).
        let base = crate::retention::RetentionBase::load(dir).map_err(|e| {
            ProveError::NotCovered(format!("the trail's retention base is unusable: {e}"))
        })?;
        if let Some(base) = base {
            return Err(ProveError::NotCovered(format!(
                "records 1 to {} were retired ({}), and proofs are built from every record \
                 from the first; proofs written before the retention still verify",
                base.retired_records(),
                crate::retention::BASE_FILE
            )));
        }
        let segments = list_segments(dir).map_err(|source| ProveError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Leaves {
            segments: segments.into_iter(),
            reader: None,
            next: 0,
            buf: Vec::new(),
            capture,
            captured: None,
            failure: None,
        })
    }

    /// Reads the next line into `buf`; false at the end of the log.
    fn advance(&mut self) -> Result<bool, ProveError> {
        loop {
            if let Some((path, reader)) = &mut self.reader {
                let io = |source| ProveError::Io {
                    path: path.clone(),
                    source,
                };
                if let Some(info) = reader.next_line(&mut self.buf).map_err(io)? {
                    if info.is_oversized() || !info.terminated {
                        return Err(ProveError::Mismatch(format!(
                            "{} line {} is not a complete record",
                            path.display(),
                            info.number
                        )));
                    }
                    if self.capture == Some(self.next) {
                        self.captured = Some(self.buf.clone());
                    }
                    self.next = self.next.saturating_add(1);
                    return Ok(true);
                }
            }
            let Some((_, path)) = self.segments.next() else {
                return Ok(false);
            };
            let file = fs::open_read(&path).map_err(|source| ProveError::Io {
                path: path.clone(),
                source,
            })?;
            let reader = LineReader::new(BufReader::with_capacity(1 << 16, file));
            self.reader = Some((path, reader));
        }
    }

    /// Reads forward to leaf `index`, failing if the log ends first.
    fn read_to(&mut self, index: u64) -> Result<(), ProveError> {
        while self.next <= index {
            if !self.advance()? {
                return Err(ProveError::Mismatch(format!(
                    "the log ends after {} records, before leaf {index}",
                    self.next
                )));
            }
        }
        Ok(())
    }

    /// The line at `index`, reading forward to it if needed.
    fn captured_line(&mut self, index: u64) -> Result<Vec<u8>, ProveError> {
        if self.captured.is_none() {
            self.read_to(index)?;
        }
        self.captured
            .take()
            .ok_or_else(|| ProveError::Mismatch(format!("leaf {index} was already passed")))
    }

    /// The error to report for a failed proof generation.
    fn error(&mut self, e: merkle::ProofError<LeafUnavailable>) -> ProveError {
        self.failure
            .take()
            .unwrap_or_else(|| ProveError::Mismatch(e.to_string()))
    }
}

impl merkle::LeafSource for Leaves {
    type Error = LeafUnavailable;

    fn leaf_hash(&mut self, index: u64) -> Result<Hash, LeafUnavailable> {
        // Only forward: the line in `buf` is leaf `next - 1`.
        if index.saturating_add(1) < self.next {
            self.failure = Some(ProveError::Mismatch(format!(
                "leaf {index} asked for after leaf {}",
                self.next
            )));
            return Err(LeafUnavailable);
        }
        if let Err(e) = self.read_to(index) {
            self.failure = Some(e);
            return Err(LeafUnavailable);
        }
        Ok(super::leaf_of(&self.buf))
    }
}
