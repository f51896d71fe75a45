//! The verifier's side: recomputing the tree while the chain is checked,
//! and holding it against stored checkpoints and an anchor.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::{list_checkpoints, read_checkpoint};
use super::{append_line, origin_for};
use crate::AuditKey;
use crate::checkpoint::{Checkpoint, CheckpointError, Note, NoteVerifier};
use crate::merkle::CompactRange;
use crate::retention::RetentionBase;
use crate::verify::{
    Finding, FindingKind, Place, Progress, RecordObserver, VerifyError, VerifyReport,
    verify_dir_observed,
};

/// A signed checkpoint kept outside the audit directory (exported earlier
/// with `sealtrail checkpoint export`), opened under a trusted key. The log
/// must still contain the tree it commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    checkpoint: Checkpoint,
}

/// Why an anchor could not be used. This is about the caller's input, not
/// about the log, so it is an error rather than a finding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The anchor file could not be read.
    #[error("cannot read the anchor {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// It is not a checkpoint of this log signed by the trusted key.
    #[error("the anchor is not a checkpoint of this log signed by the trusted key: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// It commits to an empty log, which proves nothing.
    #[error("the anchor commits to an empty log, which proves nothing")]
    Empty,
}

impl Anchor {
    /// Opens the signed checkpoint `note`: it must be signed by `trusted`
    /// and be for the log whose audit key has id `audit_key_id` (origin
    /// `sealtrail/<id>`).
    pub fn open(
        note: &[u8],
        audit_key_id: &str,
        trusted: &NoteVerifier,
    ) -> Result<Anchor, AnchorError> {
        let checkpoint = Checkpoint::open(note, &origin_for(audit_key_id), trusted)?;
        if checkpoint.size() == 0 {
            return Err(AnchorError::Empty);
        }
        Ok(Anchor { checkpoint })
    }

    /// Reads and [opens](Self::open) an anchor file.
    pub fn load(
        path: &Path,
        audit_key_id: &str,
        trusted: &NoteVerifier,
    ) -> Result<Anchor, AnchorError> {
        let note = read_checkpoint(path).map_err(|source| AnchorError::Io {
            path: path.to_owned(),
            source,
        })?;
        Anchor::open(&note, audit_key_id, trusted)
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// What [`verify_dir_with_checkpoints`] checks beyond the chain.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    trusted: Option<NoteVerifier>,
    anchor: Option<Anchor>,
}

impl CheckpointOptions {
    /// Checks only the roots of stored checkpoints, not their signatures.
    pub fn new() -> Self {
        CheckpointOptions::default()
    }

    /// Also checks every stored checkpoint's signature under `key`, which
    /// must come from the caller (never from the audit directory).
    #[must_use]
    pub fn trusted_key(mut self, key: NoteVerifier) -> Self {
        self.trusted = Some(key);
        self
    }

    /// Also proves the log extends `anchor`.
    #[must_use]
    pub fn anchor(mut self, anchor: Anchor) -> Self {
        self.anchor = Some(anchor);
        self
    }
}

/// What [`verify_dir_with_checkpoints`] checked of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    /// Records in the recomputed tree: those that passed the chain checks.
    pub tree_size: u64,
    /// The recomputed tree's root, as hex.
    pub root: String,
    /// Checkpoint files in the audit directory.
    pub stored: u64,
    /// Stored checkpoints whose root matched the recomputed tree.
    pub checked: u64,
    /// Stored checkpoints of no more records than retention retired: the
    /// tree they commit to is gone, so they were not checked.
    pub retired: u64,
    /// Whether their signatures were checked (a trusted key was given).
    pub signatures_checked: bool,
    /// The anchor's tree size, if an anchor was given.
    pub anchor_size: Option<u64>,
    /// Whether the log was proven to extend the anchor.
    pub anchor_checked: bool,
}

/// [`verify_dir_with_progress`](crate::verify::verify_dir_with_progress)
/// plus the Merkle tree: while streaming, it recomputes the tree (O(log n)
/// hashes, plus the list of stored checkpoint file names) and, when the log
/// reaches a stored checkpoint's size, checks that checkpoint (root, and
/// signature with a trusted key), and likewise the anchor's root. At the end,
/// a stored checkpoint larger than the log is a truncation finding if it is
/// what its file name says (parsed, of this log, of that size, and signed
/// under the trusted key if one was given; otherwise it is
/// [`CheckpointInvalid`](FindingKind::CheckpointInvalid) or
/// [`CheckpointBadSignature`](FindingKind::CheckpointBadSignature)), and so
/// is an anchor larger than the log. A directory without segments is such a
/// truncation at record 1 when a checkpoint or the anchor says it held
/// records, and [`VerifyError::Empty`] otherwise. The report's [`checkpoints`](VerifyReport::checkpoints) says what
/// was checked. Like the chain checks, it stops at the first finding.
///
/// On a trail whose oldest segments were [retired](crate::retention), the
/// tree starts from the retired records' frontier in `retired.json`:
/// stored checkpoints of no more records are skipped (counted in
/// [`CheckpointReport::retired`]), and an anchor of fewer records than
/// were retired is [`VerifyError::AnchorRetired`] unless the trail has a
/// finding anyway.
pub fn verify_dir_with_checkpoints(
    dir: &Path,
    key: &AuditKey,
    options: &CheckpointOptions,
    progress: impl FnMut(Progress),
) -> Result<VerifyReport, VerifyError> {
    let stored = list_checkpoints(dir).map_err(|source| VerifyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut check = TreeCheck {
        dir,
        origin: origin_for(&key.id().to_string()),
        options,
        report: CheckpointReport {
            tree_size: 0,
            root: String::new(),
            stored: stored.len() as u64,
            checked: 0,
            retired: 0,
            signatures_checked: options.trusted.is_some(),
            anchor_size: options.anchor.as_ref().map(|a| a.checkpoint.size()),
            anchor_checked: false,
        },
        stored: stored.into_iter().peekable(),
        tree: CompactRange::new(),
        anchor_retired: None,
    };
    let mut report = verify_dir_observed(dir, key, progress, &mut check)?;
    if let Some(error) = check.anchor_retired
        && report.is_intact()
    {
        return Err(error);
    }
    check.report.tree_size = check.tree.size();
    check.report.root = check.tree.root().to_hex();
    report.checkpoints = Some(check.report);
    Ok(report)
}

/// The observer that keeps the tree and checks checkpoints as they come.
struct TreeCheck<'a> {
    dir: &'a Path,
    origin: String,
    options: &'a CheckpointOptions,
    report: CheckpointReport,
    stored: std::iter::Peekable<std::vec::IntoIter<(u64, PathBuf)>>,
    tree: CompactRange,
    /// Set when the anchor lies within the retired records.
    anchor_retired: Option<VerifyError>,
}

fn finding(kind: FindingKind, seq: u64, at: Place<'_>, detail: String) -> Finding {
    Finding {
        kind,
        segment: at.segment.to_owned(),
        line: at.line,
        offset: at.offset,
        expected_seq: seq,
        detail,
    }
}

impl TreeCheck<'_> {
    /// Reads the stored checkpoint `path`, whose file name claims `claimed`
    /// records, and checks everything about it that does not need the tree:
    /// it parses, its signature verifies (given a trusted key), it is for
    /// this log, and it commits to the size its name claims. Until then the
    /// name's size means nothing: a planted file must not pass for a
    /// checkpoint the log was cut below.
    fn open_stored(
        &self,
        path: &Path,
        claimed: u64,
        seq: u64,
        at: Place<'_>,
    ) -> Result<Checkpoint, Finding> {
        let shown = path.display();
        let invalid = |detail: String| {
            finding(
                FindingKind::CheckpointInvalid,
                seq,
                at,
                format!("checkpoint {shown}: {detail}"),
            )
        };
        let bytes = read_checkpoint(path).map_err(|e| invalid(e.to_string()))?;
        let note = Note::parse(&bytes).map_err(|e| invalid(e.to_string()))?;
        let text = match &self.options.trusted {
            None => note.text().to_owned(),
            Some(trusted) => note
                .verify(std::slice::from_ref(trusted))
                .map_err(|e| {
                    finding(
                        FindingKind::CheckpointBadSignature,
                        seq,
                        at,
                        format!("checkpoint {shown} does not verify under {trusted}: {e}"),
                    )
                })?
                .text()
                .to_owned(),
        };
        let checkpoint = Checkpoint::parse(&text).map_err(|e| invalid(e.to_string()))?;
        if checkpoint.origin() != self.origin {
            return Err(invalid(format!(
                "it is for origin {:?}, this log is {:?}",
                checkpoint.origin(),
                self.origin
            )));
        }
        if checkpoint.size() != claimed {
            return Err(invalid(format!(
                "its file name says {claimed} records but it commits to {}",
                checkpoint.size()
            )));
        }
        Ok(checkpoint)
    }

    /// Checks the stored checkpoint `path` against the tree, which has just
    /// reached the size its name claims.
    fn check_stored(&self, path: &Path, seq: u64, at: Place<'_>) -> Result<(), Finding> {
        let checkpoint = self.open_stored(path, self.tree.size(), seq, at)?;
        let root = self.tree.root();
        if *checkpoint.root_hash() != root.0 {
            return Err(finding(
                FindingKind::CheckpointRootMismatch,
                seq,
                at,
                format!(
                    "the first {} records hash to {} but checkpoint {} commits to {}: \
                     a record at or before this one was changed",
                    self.tree.size(),
                    root.to_hex(),
                    path.display(),
                    hex::encode(checkpoint.root_hash())
                ),
            ));
        }
        Ok(())
    }

    /// Checks the anchor if the tree has just its size and it was not
    /// checked yet.
    fn check_anchor_if_reached(&mut self, seq: u64, at: Place<'_>) -> Result<(), Finding> {
        let options = self.options;
        match &options.anchor {
            Some(anchor)
                if anchor.checkpoint.size() == self.tree.size() && !self.report.anchor_checked =>
            {
                self.check_anchor(anchor, seq, at)
            }
            _ => Ok(()),
        }
    }

    fn check_anchor(&mut self, anchor: &Anchor, seq: u64, at: Place<'_>) -> Result<(), Finding> {
        let root = self.tree.root();
        if *anchor.checkpoint.root_hash() != root.0 {
            return Err(finding(
                FindingKind::CheckpointInconsistentWithAnchor,
                seq,
                at,
                format!(
                    "the first {} records hash to {} but the anchor commits to {}: \
                     the log was rewritten at or before this record",
                    self.tree.size(),
                    root.to_hex(),
                    hex::encode(anchor.checkpoint.root_hash())
                ),
            ));
        }
        self.report.anchor_checked = true;
        Ok(())
    }
}

impl RecordObserver for TreeCheck<'_> {
    /// The tree continues from the retired records' frontier. Stored
    /// checkpoints within the retired records can no longer be checked; an
    /// anchor within them cannot be either, which is an error (unless the
    /// trail has a finding anyway): it would pass without being held
    /// against the anchor.
    fn base(&mut self, base: &RetentionBase) {
        let retired = base.retired_records();
        if let Some(anchor) = &self.options.anchor
            && anchor.checkpoint.size() < retired
        {
            self.anchor_retired = Some(VerifyError::AnchorRetired {
                anchor_size: anchor.checkpoint.size(),
                retired,
            });
        }
        self.tree = base.tree().clone();
        while self.stored.next_if(|(s, _)| *s <= retired).is_some() {
            self.report.retired = self.report.retired.saturating_add(1);
        }
    }

    fn record(&mut self, line: &[u8], seq: u64, at: Place<'_>) -> Result<(), Finding> {
        // An anchor at the retention cut is checked against the frontier
        // the trail continues from.
        self.check_anchor_if_reached(seq, at)?;
        append_line(&mut self.tree, line)
            .map_err(|e| finding(FindingKind::Malformed, seq, at, e.to_string()))?;
        let size = self.tree.size();
        while let Some((claimed, path)) = self.stored.next_if(|(s, _)| *s <= size) {
            if claimed < size {
                return Err(finding(
                    FindingKind::CheckpointInvalid,
                    seq,
                    at,
                    format!(
                        "checkpoint {} is for an empty log, which is never written",
                        path.display()
                    ),
                ));
            }
            self.check_stored(&path, seq, at)?;
            self.report.checked = self.report.checked.saturating_add(1);
        }
        self.check_anchor_if_reached(seq, at)
    }

    fn finish(&mut self, last_seq: u64, last: Option<Place<'_>>) -> Result<(), Finding> {
        let at = last.unwrap_or(Place {
            segment: self.dir,
            line: 0,
            offset: 0,
        });
        let size = self.tree.size();
        let ends = if size == 0 {
            "the log has no records".to_owned()
        } else {
            format!("the log ends at record {size}")
        };
        if let Some(anchor) = &self.options.anchor
            && anchor.checkpoint.size() > size
        {
            return Err(finding(
                FindingKind::TruncatedBelowAnchor,
                last_seq.saturating_add(1),
                at,
                format!(
                    "{ends} but the anchor commits to {} records: \
                     records were cut off the end",
                    anchor.checkpoint.size()
                ),
            ));
        }
        // The checkpoints past the end: the first that is what its name
        // says shows the cut; if none is, the first bad one is the finding.
        let seq = last_seq.saturating_add(1);
        let mut first_bad = None;
        let past_end: Vec<(u64, PathBuf)> = self.stored.by_ref().collect();
        for (claimed, path) in past_end {
            match self.open_stored(&path, claimed, seq, at) {
                Ok(_) => {
                    return Err(finding(
                        FindingKind::TruncatedBelowCheckpoint,
                        seq,
                        at,
                        format!(
                            "{ends} but checkpoint {} commits to \
                             {claimed} records: records were cut off the end",
                            path.display()
                        ),
                    ));
                }
                Err(bad) => {
                    first_bad.get_or_insert(bad);
                }
            }
        }
        first_bad.map_or(Ok(()), Err)
    }
}
