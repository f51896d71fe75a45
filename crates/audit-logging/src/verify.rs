//! Proving the integrity of an audit directory.
//!
//! [`verify_dir`] reads every segment in log order, one line at a time, in
//! memory bounded by [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES) whatever
//! the size or content of the files. For each record it checks, in order:
//!
//! 1. the line is complete and well formed;
//! 2. its mac authenticates under the key (so the record is as written);
//! 3. its sequence number is one more than the record before it (the first
//!    record is 1, and each segment opens with the number its name promises);
//! 4. its `prev` is the hash of the line before it.
//!
//! Each segment after the first opens with an `audit.segment_closed`
//! *manifest* of the segment before it (see [Segments](#segments-and-their-manifests)
//! below), which is checked before the chain checks of that line.
//!
//! It stops at the first record that fails and reports it as a [`Finding`]:
//! which check, in which segment, at which line and byte, and at which
//! sequence number, with what was expected and what was found. Problems with
//! reading the directory itself (missing, unreadable) are a [`VerifyError`]
//! instead: they say nothing about tampering.
//!
//! What a local check cannot see: removing the newest records from the end
//! leaves a shorter chain that is still consistent. Detecting that needs a
//! copy of the head kept elsewhere.
//!
//! # Segments and their manifests
//!
//! The writer closes a segment when it reaches its size limit or when a
//! record falls on another UTC date, and opens the next segment with an
//! `audit.segment_closed` record that seals the closed segment's file name,
//! first and last sequence numbers, line count, the SHA-256 of its exact
//! bytes and the RFC 9162 Merkle root of its own records (leaf `i` its
//! `i`-th record, leaf data the record line's SHA-256, as in
//! [`crate::logtree`]). The verifier hashes every segment and recomputes
//! its tree while it streams it (no second read, O(log n) memory). When the first line of a segment is an
//! authentic manifest — authenticated under the key of its own epoch,
//! derived from the audit key however far ahead of the chain it is — it
//! compares the manifest with the segment it read just before, and names
//! that segment in the finding (line 0: the finding is about the whole
//! file):
//!
//! - [`FindingKind::SegmentMissing`]: the segment the manifest names is not
//!   in the directory (deleted, or renamed away). Without manifests this
//!   showed only as a segment named for the wrong record.
//! - [`FindingKind::SegmentShortened`]: the segment ends before the record
//!   its manifest sealed: an older copy put back in its place (segments only
//!   grow, so an older copy is a shorter one: a replay), or records cut off
//!   its end. The files left behind are the same either way.
//! - [`FindingKind::SegmentAltered`]: the segment has the sealed records'
//!   numbers but not the sealed bytes: it was rewritten after it was closed
//!   by someone who made every record in it authenticate and link again.
//!
//! A first line that is not an authentic manifest is left to the chain
//! checks, which report it (a segment written before manifests existed
//! simply has none; the chain still covers it).
//!
//! **Manifests and forward security.** Epoch keys only run forward
//! ([`forward`](crate::forward)): whoever holds the key of epoch *e* can
//! make every later key and no earlier one. A manifest always comes after
//! the records it seals, so it is never in an earlier epoch than they are:
//! anyone able to re-make a closed segment's records can re-make its
//! manifest too, and every record after it. A manifest therefore shows a
//! consistent rewrite only when the rewriter stopped at the segment's end
//! ([`FindingKind::SegmentAltered`]); a rewrite carried through to the end
//! of the log is a consistent log again, which only a signed checkpoint or
//! an anchor that covers the segment shows ([`crate::logtree`]). Records in
//! epochs before the thief's key cannot be re-made at all and fail as
//! [`FindingKind::Modified`] or [`FindingKind::KeyEvolutionMismatch`]. And
//! the manifest of a segment lives in the next one, so deleting the newest
//! segments is cutting records off the end, which no manifest shows.
//!
//! [`query::query`](crate::query::query) with a key checks the chain but
//! not the manifests; `verify` does both.
//!
//! # Trails with retired segments
//!
//! After [`retention`](crate::retention) retired the oldest segments, the
//! chain starts at the cut in `retired.json` instead of at record 1: the
//! first kept record must link to the last retired one's line hash, in
//! the key epoch the file names. Segments before the cut that are still in
//! the directory (an interrupted retention) are not read. By the end of the
//! trail an authentic `audit.segments_retired` record must have named the
//! file's cut exactly ([`FindingKind::RetirementUnrecorded`],
//! [`FindingKind::RetirementMismatch`], [`FindingKind::RetirementInvalid`]);
//! [`VerifyReport::retired_records`] says how many records came before.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::AuditKey;
use crate::forward::EpochKey;
use crate::merkle::CompactRange;
use crate::record::{GENESIS_HASH, RawRecord, line_hash};
use crate::retention::{BASE_FILE, BaseError, RetentionBase};
use crate::store::lines::{LineInfo, LineReader};
use crate::store::{fs, list_segments};

/// What kind of damage a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The line is not a record (broken JSON, missing mac, oversized).
    Malformed,
    /// The record has a schema version this verifier does not know.
    UnsupportedVersion,
    /// The first record names a different key than the one given: most
    /// likely the wrong key file.
    KeyMismatch,
    /// The mac does not match: the record was changed after it was written.
    Modified,
    /// Records are missing before this one (deleted, or moved later).
    Missing,
    /// This record's number was already passed (replayed or moved earlier).
    OutOfOrder,
    /// `prev` is not the hash of the line before: a record was inserted,
    /// deleted or replaced with a validly authenticated one.
    BrokenLink,
    /// The last line is cut short (a crash mid-write not yet recovered by a
    /// logger start, or a truncation).
    Truncated,
    /// A segment's first record is not the one its name promises, or the
    /// first segment does not begin the log.
    SegmentMismatch,
    /// The record's key epoch is not the one before it or the next, or it
    /// opens the next epoch without the previous key's consent: a record
    /// forged with a stolen later key, or records removed across epochs.
    KeyEvolutionMismatch,
    /// A stored checkpoint cannot be read as a signed checkpoint of this log
    /// (malformed, another log's origin, or a file name that does not match
    /// its tree size). See [`logtree`](crate::logtree).
    CheckpointInvalid,
    /// A stored checkpoint does not verify under the trusted checkpoint key.
    CheckpointBadSignature,
    /// The first `size` records do not hash to the root of the stored
    /// checkpoint of that size: a record at or before it was changed, even if
    /// its authenticator and links were recomputed.
    CheckpointRootMismatch,
    /// A stored checkpoint commits to more records than the log has: records
    /// were cut off the end.
    TruncatedBelowCheckpoint,
    /// The log's first `size` records do not hash to the anchor's root: the
    /// log was rewritten before the anchor.
    CheckpointInconsistentWithAnchor,
    /// The log has fewer records than the anchor commits to: records were
    /// cut off the end.
    TruncatedBelowAnchor,
    /// A closed segment that an authentic `audit.segment_closed` manifest
    /// names is not in the directory: it was deleted (or renamed away). The
    /// finding's segment is the missing file's path.
    SegmentMissing,
    /// A closed segment ends before the record its manifest sealed it with:
    /// it was replaced by an older copy of itself (segments only grow, so
    /// an older copy is a shorter one), or cut back at a record boundary.
    /// The two leave the same files behind.
    SegmentShortened,
    /// A closed segment holds the records its manifest names, but not the
    /// bytes (or the Merkle root) it sealed, or more records than it sealed: it was rewritten
    /// after it was closed, by someone able to make its records
    /// authenticate (see the [module docs](self) on forward security).
    SegmentAltered,
    /// The audit directory's `retired.json` (the cut a retention left) is
    /// not a retention base: unreadable as one, a symbolic link, or naming
    /// a key epoch out of reach. See [`crate::retention`].
    RetirementInvalid,
    /// No authentic `audit.segments_retired` record in the trail names the
    /// cut `retired.json` describes (first kept record, last retired line
    /// hash, its key epoch, the retired records' Merkle root), though one
    /// names another: the base was edited (to skip further segments, say).
    /// Also a retirement record that names a cut after itself.
    RetirementMismatch,
    /// `retired.json` says records were retired, but no authentic
    /// `audit.segments_retired` record in the trail says so: segments were
    /// deleted and a base made up to hide it (or the records naming it cut
    /// off with them).
    RetirementUnrecorded,
}

impl FindingKind {
    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Malformed => "malformed",
            FindingKind::UnsupportedVersion => "unsupported_version",
            FindingKind::KeyMismatch => "key_mismatch",
            FindingKind::Modified => "modified",
            FindingKind::Missing => "missing",
            FindingKind::OutOfOrder => "out_of_order",
            FindingKind::BrokenLink => "broken_link",
            FindingKind::Truncated => "truncated",
            FindingKind::SegmentMismatch => "segment_mismatch",
            FindingKind::KeyEvolutionMismatch => "key_evolution_mismatch",
            FindingKind::CheckpointInvalid => "checkpoint_invalid",
            FindingKind::CheckpointBadSignature => "checkpoint_bad_signature",
            FindingKind::CheckpointRootMismatch => "checkpoint_root_mismatch",
            FindingKind::TruncatedBelowCheckpoint => "truncated_below_checkpoint",
            FindingKind::CheckpointInconsistentWithAnchor => "checkpoint_inconsistent_with_anchor",
            FindingKind::TruncatedBelowAnchor => "truncated_below_anchor",
            FindingKind::SegmentMissing => "segment_missing",
            FindingKind::SegmentShortened => "segment_shortened",
            FindingKind::SegmentAltered => "segment_altered",
            FindingKind::RetirementInvalid => "retirement_invalid",
            FindingKind::RetirementMismatch => "retirement_mismatch",
            FindingKind::RetirementUnrecorded => "retirement_unrecorded",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad record. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The segment file.
    #[serde(serialize_with = "crate::text::serialize_path")]
    pub segment: PathBuf,
    /// 1-based line within the segment; 0 when the finding is about the
    /// file as a whole (a missing segment, a bad checkpoint file).
    pub line: u64,
    /// Byte offset of the line within the segment.
    pub offset: u64,
    /// The sequence number the record at this place should have.
    pub expected_seq: u64,
    /// What was found, in words, with the values involved.
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at record {} ({}",
            self.kind,
            self.expected_seq,
            self.segment.display()
        )?;
        // Line 0 marks a finding about a whole file, not one of its lines.
        if self.line > 0 {
            write!(f, ", line {}, byte {}", self.line, self.offset)?;
        }
        write!(f, "): {}", self.detail)
    }
}

/// The outcome of [`verify_dir`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Segments read.
    pub segments: u64,
    /// Records that passed every check.
    pub records: u64,
    /// Sequence number of the last good record, 0 if none.
    pub last_seq: u64,
    /// Hash of the last good record's line, as hex.
    pub last_hash: String,
    /// Logger starts recorded in the chain (the first start included).
    pub logger_starts: u64,
    /// Clean logger shutdowns recorded in the chain. Fewer stops than
    /// starts (beyond a logger still running) means a process ended without
    /// shutting its logger down: a crash, a kill, or a power loss.
    pub logger_stops: u64,
    /// Torn tails that a logger start cut and recorded.
    pub torn_tails_recovered: u64,
    /// Records retired by retention before the first one checked (the
    /// trail begins at record `retired_records + 1`); 0 when none were.
    pub retired_records: u64,
    /// Good records by event type.
    pub by_type: BTreeMap<String, u64>,
    /// The first bad record, if any.
    pub finding: Option<Finding>,
    /// What was checked of the Merkle tree and its checkpoints; only
    /// [`verify_dir_with_checkpoints`](crate::logtree::verify_dir_with_checkpoints)
    /// fills it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<crate::logtree::CheckpointReport>,
    /// For a trail that begins at a retention cut, where the retirement
    /// record naming that cut said its segments went: `Some(None)` deleted,
    /// `Some(Some(dir))` archived to `dir` (as recorded, sanitized). What
    /// retention needs to finish an interrupted run the way it was
    /// recorded; not part of the report's JSON.
    #[serde(skip)]
    pub(crate) cut_archived_to: Option<Option<String>>,
}

impl VerifyReport {
    /// True when every record passed.
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }
}

/// Why a directory could not be verified at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The directory holds no segment files (and, for
    /// [`verify_dir_with_checkpoints`](crate::logtree::verify_dir_with_checkpoints),
    /// no checkpoint or anchor says it ever held records).
    #[error("{0} holds no audit segments (seg-*.jsonl)")]
    Empty(PathBuf),
    /// The anchor covers only records that retention retired, so the trail
    /// cannot be held against it: an older anchor than the retention cut.
    #[error(
        "the anchor commits to {anchor_size} records, but records 1 to {retired} were retired \
         ({}): it is older than the retention cut and cannot be checked; use a newer anchor",
        crate::retention::BASE_FILE
    )]
    AnchorRetired {
        /// The anchor's tree size.
        anchor_size: u64,
        /// Records retired, as the retention base says.
        retired: u64,
    },
}

/// Progress through a verification, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes checked so far.
    pub done: u64,
    /// Bytes in all segments.
    pub total: u64,
}

/// Verifies every record in `dir` under `key`. See the [module docs](self).
pub fn verify_dir(dir: &Path, key: &AuditKey) -> Result<VerifyReport, VerifyError> {
    verify_dir_with_progress(dir, key, |_| {})
}

/// [`verify_dir`], calling `progress` after each segment and every few
/// thousand records.
pub fn verify_dir_with_progress(
    dir: &Path,
    key: &AuditKey,
    progress: impl FnMut(Progress),
) -> Result<VerifyReport, VerifyError> {
    verify_dir_observed(dir, key, progress, &mut NoObserver)
}

/// Where a record is, for an observer's finding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    pub segment: &'a Path,
    pub line: u64,
    pub offset: u64,
}

/// Sees every record that passed the chain checks, in log order, and may
/// end the verification with a finding of its own. [`crate::logtree`]
/// checks checkpoints this way.
pub(crate) trait RecordObserver {
    /// The trail begins after the retention cut `base` (not yet
    /// authenticated: the chain checks it against its retirement record).
    /// Called before any record.
    fn base(&mut self, _base: &RetentionBase) {}
    /// Record `seq`, whose whole line is `line`, passed.
    fn record(&mut self, line: &[u8], seq: u64, at: Place<'_>) -> Result<(), Finding>;
    /// The log ended without a chain finding; `last` is its last record.
    fn finish(&mut self, last_seq: u64, last: Option<Place<'_>>) -> Result<(), Finding>;
}

struct NoObserver;

impl RecordObserver for NoObserver {
    fn record(&mut self, _: &[u8], _: u64, _: Place<'_>) -> Result<(), Finding> {
        Ok(())
    }
    fn finish(&mut self, _: u64, _: Option<Place<'_>>) -> Result<(), Finding> {
        Ok(())
    }
}

/// [`verify_dir_with_progress`], showing each good record to `observer`.
pub(crate) fn verify_dir_observed(
    dir: &Path,
    key: &AuditKey,
    mut progress: impl FnMut(Progress),
    observer: &mut dyn RecordObserver,
) -> Result<VerifyReport, VerifyError> {
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError::Io { path, source }
    };
    let base = match RetentionBase::load(dir) {
        Ok(base) => base,
        Err(BaseError::Io(source)) => {
            return Err(VerifyError::Io {
                path: dir.join(BASE_FILE),
                source,
            });
        }
        Err(BaseError::Invalid(detail)) => {
            let mut chain = Chain::new(key);
            chain.report.finding =
                Some(base_finding(FindingKind::RetirementInvalid, dir, 1, detail));
            return Ok(chain.report);
        }
    };
    let mut chain = match Chain::after(key, base.as_ref()) {
        Ok(chain) => chain,
        Err(detail) => {
            let mut chain = Chain::new(key);
            chain.report.finding =
                Some(base_finding(FindingKind::RetirementInvalid, dir, 1, detail));
            return Ok(chain.report);
        }
    };
    if let Some(base) = &base {
        observer.base(base);
    }
    // Segments before the cut are retired: a crash between recording the
    // retirement and removing them leaves them behind, and they are no
    // longer part of the trail.
    let kept_from = chain.kept_from;
    let segments: Vec<(u64, PathBuf)> = list_segments(dir)
        .map_err(io_at(dir))?
        .into_iter()
        .filter(|(first, _)| *first >= kept_from)
        .collect();
    if segments.is_empty() {
        if base.is_some() {
            chain.report.finding = Some(base_finding(
                FindingKind::RetirementUnrecorded,
                dir,
                kept_from,
                format!(
                    "{BASE_FILE} says the trail begins at record {kept_from}, but no segment \
                     holds it: every segment was deleted"
                ),
            ));
            return Ok(chain.report);
        }
        // No records at all: an error, unless the observer knows records
        // existed (a stored checkpoint, an anchor), which makes it a finding.
        return match observer.finish(0, None) {
            Ok(()) => Err(VerifyError::Empty(dir.to_owned())),
            Err(finding) => {
                chain.report.finding = Some(finding);
                Ok(chain.report)
            }
        };
    }
    let mut total = 0u64;
    for (_, path) in &segments {
        total = total.saturating_add(std::fs::metadata(path).map_err(io_at(path))?.len());
    }

    let mut done = 0u64;
    let mut buf = Vec::new();
    let mut last: Option<Place<'_>> = None;
    let mut previous: Option<SegmentSeen> = None;
    for (promised, path) in &segments {
        let file = fs::open_read(path).map_err(io_at(path))?;
        let mut sha256 = Sha256::new();
        let hashing = HashingReader {
            inner: file,
            hasher: &mut sha256,
        };
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, hashing));
        chain.report.segments = chain.report.segments.saturating_add(1);
        let mut first_in_segment = true;
        let mut lines_read = 0u64;
        let mut segment_tree = CompactRange::new();
        while let Some(info) = lines.next_line(&mut buf).map_err(io_at(path))? {
            lines_read = lines_read.saturating_add(1);
            if first_in_segment
                && let Err(finding) = chain.check_manifest(&buf, info, previous.as_ref(), path, dir)
            {
                chain.report.finding = Some(finding);
                progress(Progress { done: total, total });
                return Ok(chain.report);
            }
            done = done.saturating_add(info.len).saturating_add(1);
            let place = Place {
                segment: path,
                line: info.number,
                offset: info.offset,
            };
            let checked = chain
                .check(&buf, info, *promised, first_in_segment, path)
                .and_then(|rec| {
                    chain.note_retirement(&rec, place)?;
                    observer.record(&buf, rec.seq, place)
                });
            if let Err(finding) = checked {
                chain.report.finding = Some(finding);
                progress(Progress { done: total, total });
                return Ok(chain.report);
            }
            // Fails only past 2^64 leaves, which sequence numbers rule out;
            // the root would then differ from the manifest's and say so.
            let _ = segment_tree.append(crate::logtree::leaf_of_line_hash(&chain.last_hash));
            first_in_segment = false;
            last = Some(place);
            if info.number % 4096 == 0 {
                progress(Progress {
                    done: done.min(total),
                    total,
                });
            }
        }
        if first_in_segment && let Err(finding) = chain.check_empty_segment(*promised, path) {
            chain.report.finding = Some(finding);
            return Ok(chain.report);
        }
        drop(lines);
        previous = Some(SegmentSeen {
            path: path.clone(),
            first_seq: *promised,
            last_seq: chain.last_seq,
            records: lines_read,
            sha256: sha256.finalize().into(),
            root: segment_tree.root().0,
        });
        progress(Progress {
            done: done.min(total),
            total,
        });
    }
    if let Err(finding) = chain
        .check_base(base.as_ref(), dir)
        .and_then(|()| observer.finish(chain.last_seq, last))
    {
        chain.report.finding = Some(finding);
    }
    Ok(chain.report)
}

/// A finding about the retention base itself, named by its file.
fn base_finding(kind: FindingKind, dir: &Path, expected_seq: u64, detail: String) -> Finding {
    Finding {
        kind,
        segment: dir.join(BASE_FILE),
        line: 0,
        offset: 0,
        expected_seq,
        detail,
    }
}

/// The cut an authentic `audit.segments_retired` record names, and where
/// that record is.
#[derive(Debug, Clone)]
struct RecordedCut {
    first_kept_seq: u64,
    last_retired_hash: [u8; 32],
    last_retired_epoch: u64,
    retired_root: [u8; 32],
    seq: u64,
    segment: PathBuf,
    line: u64,
    offset: u64,
}

/// Passes bytes through while hashing them, so a segment's digest costs
/// no second read and no memory.
struct HashingReader<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// What an `audit.segment_closed` manifest seals: name, first and last
/// sequence numbers, records, file digest, records' root (if sealed).
type SealedManifest = (String, u64, u64, u64, [u8; 32], Option<[u8; 32]>);

/// A segment as the verifier read it, every record of it good.
pub(crate) struct SegmentSeen {
    path: PathBuf,
    first_seq: u64,
    last_seq: u64,
    records: u64,
    sha256: [u8; 32],
    /// Merkle root of the segment's own records.
    root: [u8; 32],
}

/// Most key epochs the verifier derives ahead of the chain to authenticate
/// a manifest that opens a segment (after a deleted or shortened segment,
/// the manifest may be epochs ahead). Bounds the work a forged epoch number
/// can cause: about a second of HMACs.
const MAX_MANIFEST_LOOKAHEAD_EPOCHS: u64 = 1 << 20;

/// "record 5" or "records 5 to 9".
fn record_range(first: u64, last: u64) -> String {
    if first == last {
        format!("record {first}")
    } else {
        format!("records {first} to {last}")
    }
}

/// "1 line" or "3 lines".
fn lines(n: u64) -> String {
    if n == 1 {
        "1 line".to_owned()
    } else {
        format!("{n} lines")
    }
}

/// "record 5 is" or "records 5 to 9 are".
fn missing_range(first: u64, last: u64) -> String {
    if first == last {
        format!("record {first} is")
    } else {
        format!("records {first} to {last} are")
    }
}

/// Just the event type, read from an authenticated record's event.
#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
}

/// The running state of a verification.
pub(crate) struct Chain {
    key_id: String,
    /// The key of the epoch the last good record was in (epoch 0 before
    /// the first record).
    epoch_key: EpochKey,
    last_seq: u64,
    last_hash: [u8; 32],
    /// The first record the trail holds: 1, or the retention cut.
    pub(crate) kept_from: u64,
    /// The cut `retired.json` names, if the trail has one, as a record's
    /// fields compare with it (first kept, last retired hash, epoch, root).
    base_cut: Option<(u64, [u8; 32], u64, [u8; 32])>,
    /// Whether an authentic retirement record named exactly that cut.
    base_confirmed: bool,
    /// The newest authentic retirement record met so far.
    recorded_cut: Option<RecordedCut>,
    report: VerifyReport,
}

impl Chain {
    pub(crate) fn new(key: &AuditKey) -> Self {
        Chain {
            key_id: key.id().to_string(),
            epoch_key: EpochKey::first(key),
            last_seq: 0,
            last_hash: GENESIS_HASH,
            kept_from: 1,
            base_cut: None,
            base_confirmed: false,
            recorded_cut: None,
            report: VerifyReport {
                segments: 0,
                records: 0,
                last_seq: 0,
                last_hash: hex::encode(GENESIS_HASH),
                logger_starts: 0,
                logger_stops: 0,
                torn_tails_recovered: 0,
                retired_records: 0,
                by_type: BTreeMap::new(),
                finding: None,
                checkpoints: None,
                cut_archived_to: None,
            },
        }
    }

    /// A chain that begins after the retention cut `base`, if there is one:
    /// as if the last retired record had just been checked. The base is
    /// taken on trust here and held against the trail's retirement record
    /// by [`check_base`](Self::check_base). Fails when the base's epoch is
    /// beyond what the verifier derives.
    pub(crate) fn after(key: &AuditKey, base: Option<&RetentionBase>) -> Result<Self, String> {
        let mut chain = Chain::new(key);
        let Some(base) = base else {
            return Ok(chain);
        };
        let epoch = base.last_retired_epoch();
        chain.epoch_key =
            EpochKey::at(key, epoch, MAX_MANIFEST_LOOKAHEAD_EPOCHS).ok_or_else(|| {
                format!("{BASE_FILE} names key epoch {epoch}, beyond any this verifier derives")
            })?;
        chain.last_seq = base.retired_records();
        chain.last_hash = base.last_retired_hash().0;
        chain.kept_from = base.first_kept_seq();
        chain.base_cut = Some((
            base.first_kept_seq(),
            base.last_retired_hash().0,
            epoch,
            base.tree().root().0,
        ));
        chain.report.retired_records = base.retired_records();
        chain.report.last_seq = chain.last_seq;
        chain.report.last_hash = hex::encode(chain.last_hash);
        Ok(chain)
    }

    /// Remembers the cut an authentic `audit.segments_retired` record
    /// names, and whether it is the base's. A record that names a cut after
    /// itself is a finding: no retention writes one.
    pub(crate) fn note_retirement(
        &mut self,
        rec: &RawRecord,
        at: Place<'_>,
    ) -> Result<(), Finding> {
        let Ok(crate::AuditEvent::SegmentsRetired {
            first_kept_seq,
            last_retired_hash,
            last_retired_epoch,
            retired_root,
            archived_to,
            ..
        }) = rec.event()
        else {
            return Ok(());
        };
        if first_kept_seq > rec.seq {
            return Err(Finding {
                kind: FindingKind::RetirementMismatch,
                segment: at.segment.to_owned(),
                line: at.line,
                offset: at.offset,
                expected_seq: rec.seq,
                detail: format!(
                    "record {} says the trail was cut before record {first_kept_seq}, after the \
                     record itself",
                    rec.seq
                ),
            });
        }
        let cut = (
            first_kept_seq,
            last_retired_hash.0,
            last_retired_epoch,
            retired_root.0,
        );
        if self.base_cut == Some(cut) {
            self.base_confirmed = true;
            self.report.cut_archived_to = Some(archived_to.map(|dir| dir.as_str().to_owned()));
        }
        self.recorded_cut = Some(RecordedCut {
            first_kept_seq,
            last_retired_hash: last_retired_hash.0,
            last_retired_epoch,
            retired_root: retired_root.0,
            seq: rec.seq,
            segment: at.segment.to_owned(),
            line: at.line,
            offset: at.offset,
        });
        Ok(())
    }

    /// At the end of a trail that begins after `base`: an authentic
    /// retirement record must have named exactly that cut. Usually it is
    /// the newest; an earlier one is as good (a retention interrupted after
    /// its record and before `retired.json` leaves that), since every
    /// record from the base on was then read and checked: nothing the
    /// newer record retired is missing.
    pub(crate) fn check_base(
        &self,
        base: Option<&RetentionBase>,
        dir: &Path,
    ) -> Result<(), Finding> {
        let Some(base) = base else {
            return Ok(());
        };
        if self.base_confirmed {
            return Ok(());
        }
        let first = base.first_kept_seq();
        let Some(cut) = &self.recorded_cut else {
            return Err(base_finding(
                FindingKind::RetirementUnrecorded,
                dir,
                self.last_seq.saturating_add(1),
                format!(
                    "{BASE_FILE} says records 1 to {} were retired, but no audit.segments_retired \
                     record in the trail (which ends at record {}) says so",
                    base.retired_records(),
                    self.last_seq
                ),
            ));
        };
        Err(Finding {
            kind: FindingKind::RetirementMismatch,
            segment: cut.segment.clone(),
            line: cut.line,
            offset: cut.offset,
            expected_seq: cut.seq,
            detail: format!(
                "no retirement record names the cut {BASE_FILE} makes: the newest (record {}) \
                 cut the trail before record {} (last retired line {}, epoch {}, retired root \
                 {}), but {BASE_FILE} cuts it before record {first} (line {}, epoch {}, root {})",
                cut.seq,
                cut.first_kept_seq,
                hex::encode(cut.last_retired_hash),
                cut.last_retired_epoch,
                hex::encode(cut.retired_root),
                base.last_retired_hash().to_hex(),
                base.last_retired_epoch(),
                base.tree().root().to_hex(),
            ),
        })
    }

    /// The key `rec` must be authenticated with: the current epoch's, or
    /// for a record that opens the next epoch, the next key, once the
    /// current key has vouched for the handover.
    fn key_for(&self, rec: &RawRecord) -> Result<EpochKey, String> {
        let current = self.epoch_key.epoch();
        if rec.epoch == current && !rec.is_handover() {
            return Ok(self.epoch_key.clone());
        }
        if rec.epoch == current {
            return Err(format!(
                "it claims to open key epoch {current}, which is already open"
            ));
        }
        if rec.epoch.checked_sub(current) != Some(1) {
            return Err(format!(
                "it claims key epoch {}, but the record before it is in epoch {current}; \
                 epochs advance one at a time",
                rec.epoch
            ));
        }
        if !rec.authenticate_handover(&self.epoch_key) {
            return Err(format!(
                "it opens key epoch {} without the consent of epoch {current}'s key \
                 (a missing or wrong \"xmac\")",
                rec.epoch
            ));
        }
        let mut next = self.epoch_key.clone();
        next.evolve()
            .ok_or_else(|| "key epochs exhausted".to_owned())?;
        Ok(next)
    }

    /// Why a segment named for record `promised` cannot hold the next
    /// record, if it cannot.
    fn segment_mismatch(&self, promised: u64) -> Option<String> {
        let expected = self.last_seq.saturating_add(1);
        if promised == expected {
            None
        } else if self.last_seq == 0 && promised > 1 {
            Some(format!(
                "the log begins with a segment for record {promised}; {} missing",
                missing_range(1, promised.saturating_sub(1))
            ))
        } else {
            Some(format!(
                "segment is named for record {promised}, but the next record is {expected}"
            ))
        }
    }

    /// Checks the closed segment before the current one against the
    /// manifest that opens the current one, if `line` is an authentic
    /// `audit.segment_closed` record.
    ///
    /// Runs before the chain checks of `line`, because a deleted or
    /// shortened segment makes those fail with a less precise finding. The
    /// record is authenticated under the key of its own epoch, derived from
    /// the verifier's key however far ahead of the chain it is (up to
    /// [`MAX_MANIFEST_LOOKAHEAD_EPOCHS`]); anything that is not an authentic
    /// manifest is left to the chain checks, which report it.
    pub(crate) fn check_manifest(
        &self,
        line: &[u8],
        info: LineInfo,
        previous: Option<&SegmentSeen>,
        segment: &Path,
        dir: &Path,
    ) -> Result<(), Finding> {
        let Some(sealed) = self.authentic_manifest(line, info) else {
            return Ok(());
        };
        let (name, first, last, records, sha256, root) = sealed;
        let expected_seq = self.last_seq.saturating_add(1);
        // The name is joined to the directory below: it must be the
        // segment name of its own first record, nothing else.
        if crate::store::parse_segment_name(&name) != Some(first) {
            return Err(Finding {
                kind: FindingKind::Malformed,
                segment: segment.to_owned(),
                line: info.number,
                offset: info.offset,
                expected_seq,
                detail: format!(
                    "a segment_closed record names segment {:?}, which is not the name of a \
                     segment beginning at record {first}",
                    crate::text::Text::from(name.as_str()).as_str()
                ),
            });
        }
        let finding = |kind, segment: PathBuf, detail: String| Finding {
            kind,
            segment,
            line: 0,
            offset: 0,
            expected_seq,
            detail,
        };
        let sealed_as = format!(
            "the manifest opening the next segment sealed it with {} ({}, SHA-256 {})",
            record_range(first, last),
            lines(records),
            hex::encode(sha256)
        );
        let Some(seen) = previous.filter(|p| p.path.file_name() == Some(name.as_ref())) else {
            // A segment before the retention cut is gone by design; the
            // retirement record later in the chain must vouch for the cut.
            if previous.is_none() && last < self.kept_from {
                return Ok(());
            }
            let path = dir.join(&name);
            return match path.try_exists() {
                Ok(true) => Ok(()),
                _ => Err(finding(
                    FindingKind::SegmentMissing,
                    path,
                    format!("segment {name} is not in the directory; {sealed_as}"),
                )),
            };
        };
        let found = format!(
            "it holds {} ({}, SHA-256 {})",
            record_range(seen.first_seq, seen.last_seq),
            lines(seen.records),
            hex::encode(seen.sha256)
        );
        if seen.last_seq < last {
            return Err(finding(
                FindingKind::SegmentShortened,
                seen.path.clone(),
                format!(
                    "{found}, but {sealed_as}: an older copy of it, or cut back; {} missing",
                    missing_range(seen.last_seq.saturating_add(1), last)
                ),
            ));
        }
        // A manifest from before roots were sealed is held to the rest.
        let root = root.unwrap_or(seen.root);
        if (
            seen.first_seq,
            seen.last_seq,
            seen.records,
            seen.sha256,
            seen.root,
        ) != (first, last, records, sha256, root)
        {
            return Err(finding(
                FindingKind::SegmentAltered,
                seen.path.clone(),
                format!("{found}, but {sealed_as}: it was rewritten after it was closed"),
            ));
        }
        Ok(())
    }

    /// The fields of `line`'s manifest (name, first and last seq, records,
    /// file digest, records' root if sealed), if it is an authentic
    /// `audit.segment_closed` record.
    fn authentic_manifest(&self, line: &[u8], info: LineInfo) -> Option<SealedManifest> {
        if !info.terminated || info.is_oversized() {
            return None;
        }
        let rec = RawRecord::parse(line).ok()?;
        let ty = serde_json::from_str::<EventType>(rec.event.get()).ok()?;
        if ty.ty != "audit.segment_closed" {
            return None;
        }
        let ahead = rec.epoch.checked_sub(self.epoch_key.epoch())?;
        if ahead > MAX_MANIFEST_LOOKAHEAD_EPOCHS {
            return None;
        }
        let mut key = self.epoch_key.clone();
        for _ in 0..ahead {
            key.evolve()?;
        }
        if !rec.authenticate(&key) {
            return None;
        }
        match rec.event().ok()? {
            crate::AuditEvent::SegmentClosed {
                segment,
                first_seq,
                last_seq,
                records,
                sha256,
                root,
                ..
            } => Some((
                segment.as_str().to_owned(),
                first_seq,
                last_seq,
                records,
                sha256.0,
                root.map(|r| r.0),
            )),
            _ => None,
        }
    }

    /// A segment without a single line: fine only under the next record's
    /// name (a crash right after rotation leaves one).
    pub(crate) fn check_empty_segment(&self, promised: u64, segment: &Path) -> Result<(), Finding> {
        match self.segment_mismatch(promised) {
            None => Ok(()),
            Some(detail) => Err(Finding {
                kind: FindingKind::SegmentMismatch,
                segment: segment.to_owned(),
                line: 0,
                offset: 0,
                expected_seq: self.last_seq.saturating_add(1),
                detail: format!("empty {detail}"),
            }),
        }
    }

    /// Checks one line; on success it becomes the chain's head and its
    /// record is returned.
    pub(crate) fn check(
        &mut self,
        line: &[u8],
        info: LineInfo,
        promised_first: u64,
        first_in_segment: bool,
        segment: &Path,
    ) -> Result<RawRecord, Finding> {
        let expected = self.last_seq.saturating_add(1);
        let finding = |kind, detail: String| Finding {
            kind,
            segment: segment.to_owned(),
            line: info.number,
            offset: info.offset,
            expected_seq: expected,
            detail,
        };
        if first_in_segment && let Some(detail) = self.segment_mismatch(promised_first) {
            return Err(finding(FindingKind::SegmentMismatch, detail));
        }
        if !info.terminated {
            return Err(finding(
                FindingKind::Truncated,
                format!(
                    "the last {} bytes are a partial record with no line end",
                    info.len
                ),
            ));
        }
        if info.is_oversized() {
            return Err(finding(
                FindingKind::Malformed,
                format!("line is {} bytes, more than any record can be", info.len),
            ));
        }
        let rec = RawRecord::parse(line).map_err(|e| {
            let kind = match e {
                crate::record::DecodeError::UnsupportedVersion { .. } => {
                    FindingKind::UnsupportedVersion
                }
                _ => FindingKind::Malformed,
            };
            finding(kind, e.to_string())
        })?;
        let epoch_key = self.key_for(&rec).map_err(|why| {
            finding(
                FindingKind::KeyEvolutionMismatch,
                format!("record {}: {why}", rec.seq),
            )
        })?;
        if !rec.authenticate(&epoch_key) {
            // A different key id on the first record most likely means the
            // wrong key was given; after records that did authenticate, it is
            // a record someone else made.
            return Err(if rec.kid != self.key_id && self.report.records == 0 {
                finding(
                    FindingKind::KeyMismatch,
                    format!(
                        "record {} names key {}, verifying with key {}",
                        rec.seq, rec.kid, self.key_id
                    ),
                )
            } else {
                let detail = if rec.kid == self.key_id {
                    format!("record {} does not match its authenticator", rec.seq)
                } else {
                    format!(
                        "record {} names key {} where the log uses key {}",
                        rec.seq, rec.kid, self.key_id
                    )
                };
                finding(FindingKind::Modified, detail)
            });
        }
        if rec.seq != expected {
            let (kind, detail) = if rec.seq > expected {
                (
                    FindingKind::Missing,
                    format!(
                        "found record {}; {} missing or moved",
                        rec.seq,
                        missing_range(expected, rec.seq.saturating_sub(1))
                    ),
                )
            } else {
                (
                    FindingKind::OutOfOrder,
                    format!(
                        "found record {} again or out of order after record {}",
                        rec.seq, self.last_seq
                    ),
                )
            };
            return Err(finding(kind, detail));
        }
        if rec.prev != self.last_hash {
            return Err(finding(
                FindingKind::BrokenLink,
                format!(
                    "prev is {} but the line before hashes to {}",
                    hex::encode(rec.prev),
                    hex::encode(self.last_hash)
                ),
            ));
        }
        self.epoch_key = epoch_key;
        self.accept(&rec, line);
        Ok(rec)
    }

    fn accept(&mut self, rec: &RawRecord, line: &[u8]) {
        self.last_seq = rec.seq;
        self.last_hash = line_hash(line);
        let r = &mut self.report;
        r.records = r.records.saturating_add(1);
        r.last_seq = rec.seq;
        r.last_hash = hex::encode(self.last_hash);
        let ty = serde_json::from_str::<EventType>(rec.event.get())
            .map(|t| t.ty.into_owned())
            .unwrap_or_else(|_| "(unreadable)".to_owned());
        match ty.as_str() {
            "audit.logger_started" => r.logger_starts = r.logger_starts.saturating_add(1),
            "audit.logger_stopped" => r.logger_stops = r.logger_stops.saturating_add(1),
            "audit.torn_tail_recovered" => {
                r.torn_tails_recovered = r.torn_tails_recovered.saturating_add(1);
            }
            _ => {}
        }
        let count = r.by_type.entry(ty).or_insert(0);
        *count = count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_about_a_whole_file_names_no_line() {
        let mut finding = Finding {
            kind: FindingKind::SegmentMissing,
            segment: PathBuf::from("audit/00000000000000000042.log"),
            line: 0,
            offset: 0,
            expected_seq: 42,
            detail: "gone".into(),
        };
        let whole = finding.to_string();
        assert!(!whole.contains("line"), "{whole}");
        assert!(whole.contains("00000000000000000042.log") && whole.ends_with(": gone"));
        finding.line = 3;
        finding.offset = 512;
        assert!(finding.to_string().contains("line 3, byte 512"));
    }

    #[test]
    fn finding_kind_names_match_their_json_names() {
        use FindingKind::*;
        let all = [
            Malformed,
            UnsupportedVersion,
            KeyMismatch,
            Modified,
            Missing,
            OutOfOrder,
            BrokenLink,
            Truncated,
            SegmentMismatch,
            KeyEvolutionMismatch,
            CheckpointInvalid,
            CheckpointBadSignature,
            CheckpointRootMismatch,
            TruncatedBelowCheckpoint,
            CheckpointInconsistentWithAnchor,
            TruncatedBelowAnchor,
            SegmentMissing,
            SegmentShortened,
            SegmentAltered,
            RetirementInvalid,
            RetirementMismatch,
            RetirementUnrecorded,
        ];
        for kind in all {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    /// A holder of the segment's epoch key re-makes every record of a
    /// closed segment after changing one: each record authenticates and
    /// links, so only the manifest sealed in the next segment shows it.
    #[test]
    fn a_closed_segment_rewritten_with_its_record_key_is_reported_altered_by_name() {
        use crate::record::{encode, line_hash};
        use crate::store::{Store, segment_name, tests::test_config};

        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::generate().unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(&key), test_config(1500)).unwrap();
        let event = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;
        for _ in 0..8 {
            store.append(event).unwrap();
        }
        store.sync().unwrap();
        drop(store);
        assert!(list_segments(dir.path()).unwrap().len() >= 3);

        // One run, so every record is in epoch 0.
        let first = dir.path().join(segment_name(1));
        let epoch_key = EpochKey::first(&key);
        let mut prev = GENESIS_HASH;
        let mut rewritten = Vec::new();
        for (i, line) in std::fs::read_to_string(&first).unwrap().lines().enumerate() {
            let rec = RawRecord::parse(line.as_bytes()).unwrap();
            let mut json = rec.event.get().to_owned();
            if i == 1 {
                json = json.replace(r#""events_dropped":0"#, r#""events_dropped":7"#);
            }
            let line = encode(rec.seq, rec.ts, &epoch_key, None, &prev, &json);
            prev = line_hash(&line);
            rewritten.extend_from_slice(&line);
            rewritten.push(b'\n');
        }
        std::fs::write(&first, rewritten).unwrap();

        let f = verify_dir(dir.path(), &key).unwrap().finding.unwrap();
        assert_eq!(f.kind, FindingKind::SegmentAltered, "{f}");
        assert_eq!(f.segment, first);
        assert!(f.detail.contains("rewritten after it was closed"), "{f}");
    }

    /// The name in a manifest is joined to the audit directory: one that
    /// is not the segment name of its first record is refused, even when
    /// the record authenticates.
    #[test]
    fn a_manifest_naming_a_path_outside_the_segments_is_malformed() {
        use crate::record::encode;
        use crate::store::{Store, segment_name, tests::test_config};

        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::generate().unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(&key), test_config(1500)).unwrap();
        let event = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;
        for _ in 0..4 {
            store.append(event).unwrap();
        }
        store.sync().unwrap();
        drop(store);

        let second = list_segments(dir.path()).unwrap()[1].1.clone();
        let text = std::fs::read_to_string(&second).unwrap();
        let manifest = RawRecord::parse(text.lines().next().unwrap().as_bytes()).unwrap();
        let json = manifest
            .event
            .get()
            .replace(&segment_name(1), "../../etc/passwd");
        let forged = encode(
            manifest.seq,
            manifest.ts,
            &EpochKey::first(&key),
            None,
            &manifest.prev,
            &json,
        );
        let rest: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let mut bytes = forged;
        bytes.push(b'\n');
        bytes.extend_from_slice(rest.as_bytes());
        std::fs::write(&second, bytes).unwrap();

        let f = verify_dir(dir.path(), &key).unwrap().finding.unwrap();
        assert_eq!((f.kind, f.line), (FindingKind::Malformed, 1), "{f}");
        assert_eq!(f.segment, second);
        assert!(f.detail.contains("../../etc/passwd"), "{f}");
    }

    /// The manifest's Merkle root is held to the segment's records even
    /// when everything else in it matches.
    #[test]
    fn a_manifest_sealing_another_root_reports_the_segment_altered() {
        use crate::record::encode;
        use crate::store::{Store, tests::test_config};

        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::generate().unwrap();
        let (mut store, _) = Store::open(dir.path(), Some(&key), test_config(1500)).unwrap();
        let event = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;
        for _ in 0..4 {
            store.append(event).unwrap();
        }
        store.sync().unwrap();
        drop(store);
        assert!(verify_dir(dir.path(), &key).unwrap().is_intact());

        let second = list_segments(dir.path()).unwrap()[1].1.clone();
        let text = std::fs::read_to_string(&second).unwrap();
        let manifest = RawRecord::parse(text.lines().next().unwrap().as_bytes()).unwrap();
        let crate::AuditEvent::SegmentClosed {
            root: Some(root), ..
        } = manifest.event().unwrap()
        else {
            panic!("the manifest seals a root");
        };
        let json = manifest
            .event
            .get()
            .replace(&root.to_hex(), &"ab".repeat(32));
        // Re-made with the key, and the next record relinked to it.
        let forged = encode(
            manifest.seq,
            manifest.ts,
            &EpochKey::first(&key),
            None,
            &manifest.prev,
            &json,
        );
        let mut bytes = forged.clone();
        bytes.push(b'\n');
        let mut prev = line_hash(&forged);
        for line in text.lines().skip(1) {
            let rec = RawRecord::parse(line.as_bytes()).unwrap();
            let line = encode(
                rec.seq,
                rec.ts,
                &EpochKey::first(&key),
                None,
                &prev,
                rec.event.get(),
            );
            prev = line_hash(&line);
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        std::fs::write(&second, bytes).unwrap();

        let f = verify_dir(dir.path(), &key).unwrap().finding.unwrap();
        assert_eq!(f.kind, FindingKind::SegmentAltered, "{f}");
        assert_eq!(f.segment, list_segments(dir.path()).unwrap()[0].1);
    }

    #[test]
    fn missing_ranges_read_naturally() {
        assert_eq!(missing_range(5, 5), "record 5 is");
        assert_eq!(missing_range(5, 9), "records 5 to 9 are");
    }
}
