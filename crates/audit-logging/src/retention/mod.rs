//! Retiring the oldest segments of a trail: deleting or archiving them
//! without the trail losing its proof.
//!
//! [`retire`] removes *closed* segments — never the newest one, which the
//! writer appends to — that are both past a retention time and covered by
//! an exported checkpoint (an [`Anchor`]) the operator keeps off the host.
//! Step by step, holding the writer lock (it opens a logger, as any writer
//! does, so it fails with [`OpenError::Locked`] while another writer runs)
//! for the whole run:
//!
//! 1. The whole trail is verified with
//!    [`verify_dir_with_checkpoints`]: every record, every manifest, every
//!    stored checkpoint under the trusted verifier key, and the anchor,
//!    which it must extend. Anything short of an intact trail that extends
//!    the anchor stops the run before anything is removed (the logger's own
//!    start and stop records are all it writes then). A dry run takes the
//!    writer lock without opening a logger, and writes nothing.
//! 2. The segments to retire are the oldest closed ones, in log order,
//!    while each one's every record is at or below the anchor's tree size
//!    and older than the retention time by its record timestamps. The
//!    first segment that fails either test, and every one after it, is kept
//!    (a trail can only be cut at its beginning). At most
//!    [`MAX_SEGMENTS_PER_RUN`] go in one run, so the record naming them
//!    stays small. The segments are read again for this, and each record
//!    must still link to the one before it.
//! 3. An `audit.segments_retired` record goes into the chain through the
//!    logger and is fsynced: each segment's name, sequence range, line
//!    count, SHA-256 and Merkle root, whether the files were deleted or the directory
//!    they were moved to, the anchor size relied on, and the *cut*: the
//!    first kept record, the line hash and key epoch of the last retired
//!    record, and the Merkle root of the retired records.
//! 4. The cut is written to `retired.json` in the audit directory
//!    ([`BASE_FILE`], mode `0600`, a temporary file fsynced and renamed,
//!    the directory fsynced), with the Merkle frontier of the retired
//!    records (see [`CompactRange`]).
//! 5. Only then are the segments deleted, or moved into the archive
//!    directory (created `0700` if missing; a symbolic link, or a directory
//!    other users can write to, is refused; an existing file is never
//!    replaced). A move across file systems copies, fsyncs and checks the
//!    copy's SHA-256 before removing the original. Both directories are
//!    fsynced.
//!
//! A crash after step 3 leaves segments before the cut in the directory
//! (the record names them; verification ignores them) or, before step 4, a
//! trail with a retirement record and all its segments (which verifies as
//! it is). The next run finishes removing segments left before the cut.
//!
//! # How a trail with retired segments is verified
//!
//! The verifier streams forward and meets the first kept segment — named
//! for record `n + 1`, its first `prev` the hash of a record that is gone,
//! its tree needing leaves that are gone — long before the retirement
//! record that explains it. So it starts from `retired.json`: record `n`'s
//! line hash and key epoch (the audit key derives any epoch's key, see
//! [`crate::forward`]) and the Merkle frontier at `n`, from which the tree
//! is recomputed as if the retired leaves were there. The file is
//! untrusted: by the end of the trail an authentic retirement record (the
//! newest, unless a retention was interrupted between its record and step
//! 4, when the records it meant to retire are all still there and checked)
//! must have named exactly its cut, or the trail does not verify:
//!
//! - [`FindingKind::RetirementUnrecorded`]: a `retired.json` and no
//!   retirement record (segments deleted and a base made up, or the
//!   segments holding the record cut off too);
//! - [`FindingKind::RetirementMismatch`]: the record names another cut (a
//!   base edited to skip further segments, an older base put back);
//! - [`FindingKind::RetirementInvalid`]: a `retired.json` that is not one.
//!
//! Segments deleted without `retired.json` are reported as before
//! (`segment_missing`, `segment_mismatch`), and a forged or edited
//! retirement record fails its mac like any record. Whoever holds the
//! writer key can forge a retirement record too (as any record from the
//! stolen epoch on); an anchor at or past the cut still catches a made-up
//! frontier, since the tree recomputed from it no longer reaches the
//! anchor's root. An anchor older than the cut cannot be checked at all
//! ([`VerifyError::AnchorRetired`]).
//!
//! Stored checkpoints of no more records than were retired are no longer
//! checked (counted in [`CheckpointReport::retired`]).
//! [`prove_inclusion`](crate::logtree::prove_inclusion) and
//! [`prove_consistency`](crate::logtree::prove_consistency) need every
//! record from the first, so they refuse a trail with retired segments;
//! proofs written before the retention still check.
//!
//! [`CheckpointReport::retired`]: crate::logtree::CheckpointReport::retired

mod archive;
mod base;

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

pub use base::{BASE_FILE, BaseError, RetentionBase};

use crate::checkpoint::NoteVerifier;
use crate::event::RetiredSegment;
use crate::logtree::{Anchor, CheckpointOptions, verify_dir_with_checkpoints};
use crate::merkle::CompactRange;
use crate::record::{GENESIS_HASH, RawRecord, line_hash};
use crate::store::lines::LineReader;
use crate::store::{fs, list_segments};
#[cfg(doc)]
use crate::verify::FindingKind;
use crate::verify::{VerifyError, VerifyReport};
use crate::{AuditEvent, AuditKey, AuditLogger, Digest, EmitError, FlushError, LoggerConfig};
use crate::{OpenError, Text};

/// Most segments one run retires. Each takes about 200 bytes in the
/// retirement record, so the record stays far below
/// [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES); a longer backlog takes
/// several runs.
pub const MAX_SEGMENTS_PER_RUN: usize = 256;

/// What [`retire`] may remove, and how.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    older_than: TimeDelta,
    now: DateTime<Utc>,
    archive: Option<PathBuf>,
    dry_run: bool,
}

impl RetentionPolicy {
    /// Retire segments whose every record is more than `older_than` old
    /// (by its timestamp, against the system clock), deleting them.
    pub fn new(older_than: TimeDelta) -> Self {
        RetentionPolicy {
            older_than,
            now: Utc::now(),
            archive: None,
            dry_run: false,
        }
    }

    /// Measures age from `now` instead of the system clock.
    #[must_use]
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// Moves retired segments into `dir` instead of deleting them.
    #[must_use]
    pub fn archive_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.archive = Some(dir.into());
        self
    }

    /// Verifies and says what would be retired, but takes no lock and
    /// writes, moves and deletes nothing.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Records written before this time are past retention.
    pub fn cutoff(&self) -> DateTime<Utc> {
        self.now
            .checked_sub_signed(self.older_than)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// What [`retire`] did (or, on a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Records before this time counted as past retention.
    pub cutoff: DateTime<Utc>,
    /// The anchor's tree size.
    pub anchor_size: u64,
    /// The segments retired (or that would be), oldest first.
    pub retired: Vec<RetiredSegment>,
    /// The first record the trail now holds, when segments were retired.
    pub first_kept_seq: Option<u64>,
    /// Where they were moved, when archived.
    #[serde(serialize_with = "crate::text::serialize_opt_path")]
    pub archived_to: Option<PathBuf>,
    /// Sequence number of the `audit.segments_retired` record written.
    pub record_seq: Option<u64>,
    /// Why the oldest segment that was kept was not retired.
    pub kept_because: Option<String>,
    /// Segments an interrupted earlier run recorded as retired but left
    /// behind, removed (or archived) by this run.
    pub finished_from_earlier_run: Vec<String>,
    /// The verification that preceded it.
    pub verified: VerifyReport,
}

/// Why [`retire`] removed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// The trail could not be verified at all.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The trail is not intact, or does not extend the anchor: nothing is
    /// retired from a trail that does not verify.
    #[error("the audit trail does not verify, so nothing was retired: {}", describe(.0))]
    NotIntact(Box<VerifyReport>),
    /// A segment changed between its verification and its retirement.
    #[error("{path} changed while it was being retired: {detail}; run `sealtrail verify`")]
    Changed {
        /// The segment.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The logger (and with it the writer lock) could not be opened.
    #[error("cannot open the audit trail to record the retention: {0}")]
    Open(#[from] OpenError),
    /// The retirement record could not be written.
    #[error("cannot record the retention in the chain: {0}")]
    Emit(#[from] EmitError),
    /// The logger could not flush or shut down.
    #[error("cannot finish the audit trail: {0}")]
    Flush(#[from] FlushError),
    /// Segments an interrupted earlier run recorded as retired are still
    /// in the directory, and this run was told to dispose of them otherwise
    /// than that run's record says: nothing is done, so that the record
    /// stays true.
    #[error(
        "{segment} is left from an interrupted retention whose record says its segments were \
         {recorded}, but this run would have {wanted}; run again {hint} to finish that \
         retention as recorded"
    )]
    RecordedOtherwise {
        /// The first segment left behind.
        segment: String,
        /// What the record says.
        recorded: String,
        /// What this run was told to do.
        wanted: String,
        /// The option that finishes it as recorded.
        hint: String,
    },
    /// A file could not be read, written, moved or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

fn describe(report: &VerifyReport) -> String {
    match &report.finding {
        Some(f) => f.to_string(),
        None => "the anchor was not reached".to_owned(),
    }
}

/// Retires what `policy` allows of the trail in `config`'s directory; see
/// the [module docs](self).
///
/// Errors: [`RetentionError::NotIntact`] for a trail that does not verify
/// or does not extend the anchor (nothing is then touched), the others for
/// what could not be opened, read, written, moved or removed. A failure
/// after the retirement record was written leaves a trail that verifies;
/// the next run finishes the removal.
///
/// `key` is the audit key (the trail is verified with it, and the logger
/// opened with it), `trusted` the checkpoint verifier key, and `anchor` an
/// exported checkpoint opened under it. The logger is opened with `config`
/// (give it the checkpoint signer, as for any writer, so checkpoints go on
/// being signed), which writes its own start and stop records.
pub fn retire(
    config: LoggerConfig,
    key: &AuditKey,
    trusted: &NoteVerifier,
    anchor: Anchor,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, RetentionError> {
    let dir = config.dir().to_owned();
    let anchor_size = anchor.checkpoint().size();
    let options = CheckpointOptions::new()
        .trusted_key(trusted.clone())
        .anchor(anchor);
    if policy.dry_run {
        // The writer lock, so no writer appends while the trail is read,
        // but no logger: nothing is written.
        let _lock = crate::store::lock_dir(&dir)?;
        let verified = verify(&dir, key, &options)?;
        let plan = plan(&dir, anchor_size, policy)?;
        return Ok(plan.report(policy, anchor_size, verified, None, Vec::new()));
    }
    let logger = match AuditLogger::open(config, key.clone()) {
        Ok(logger) => logger,
        // A logger refuses a trail whose tail or checkpoints do not check
        // out: say what is wrong with it, as the verifier finds it.
        Err(
            e @ (OpenError::CorruptTail { .. }
            | OpenError::TailNotAuthentic { .. }
            | OpenError::CheckpointMismatch { .. }),
        ) => {
            verify(&dir, key, &options)?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = retire_with(&logger, &dir, key, &options, anchor_size, policy);
    // The stop record is written however the run went.
    let stopped = logger.shutdown();
    let report = outcome?;
    stopped?;
    Ok(report)
}

/// [`retire`] once the logger holds the lock.
fn retire_with(
    logger: &AuditLogger,
    dir: &Path,
    key: &AuditKey,
    options: &CheckpointOptions,
    anchor_size: u64,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, RetentionError> {
    // Its start record on disk (it may have closed the segment that was
    // open), the writer is idle until the record below.
    logger.flush()?;
    let verified = verify(dir, key, options)?;
    let plan = plan(dir, anchor_size, policy)?;
    check_leftovers(&plan, &verified, policy)?;
    // An archive that will be refused is refused before the retirement
    // record and the base are written, not after: otherwise the trail
    // records a retirement into a directory that never received it.
    if let Some(archive) = policy.archive.as_deref()
        && (plan.cut.is_some() || !plan.leftovers.is_empty())
    {
        archive::check(archive)?;
    }
    let mut record_seq = None;
    if let Some(cut) = &plan.cut {
        let event = AuditEvent::SegmentsRetired {
            timestamp: Utc::now(),
            first_kept_seq: cut.first_kept_seq(),
            last_retired_hash: *cut.last_retired_hash(),
            last_retired_epoch: cut.last_retired_epoch(),
            retired_root: Digest(cut.tree().root().0),
            anchor_size,
            archived_to: policy
                .archive
                .as_ref()
                .map(|p| Text::new(p.display().to_string())),
            segments: plan.retired.iter().map(|s| s.sealed.clone()).collect(),
        };
        record_seq = Some(logger.emit_durable_sync(event)?.seq);
        cut.save(dir).map_err(|source| RetentionError::Io {
            path: dir.join(BASE_FILE),
            source,
        })?;
    }
    let mut finished = Vec::new();
    for path in &plan.leftovers {
        archive::dispose(path, None, policy.archive.as_deref())?;
        finished.push(file_name(path));
    }
    for segment in &plan.retired {
        archive::dispose(
            &segment.path,
            Some(&segment.sealed.sha256),
            policy.archive.as_deref(),
        )?;
    }
    Ok(plan.report(policy, anchor_size, verified, record_seq, finished))
}

/// Segments left by an interrupted run are disposed of as that run's
/// record says, deleted or archived to the directory it names: a run told
/// otherwise is refused before it writes anything.
fn check_leftovers(
    plan: &Plan,
    verified: &VerifyReport,
    policy: &RetentionPolicy,
) -> Result<(), RetentionError> {
    let (Some(first), Some(recorded)) = (plan.leftovers.first(), &verified.cut_archived_to) else {
        return Ok(());
    };
    let wanted = policy
        .archive
        .as_ref()
        .map(|dir| Text::new(dir.display().to_string()).as_str().to_owned());
    if wanted == *recorded {
        return Ok(());
    }
    Err(RetentionError::RecordedOtherwise {
        segment: file_name(first),
        recorded: match recorded {
            Some(dir) => format!("archived to {dir}"),
            None => "deleted".to_owned(),
        },
        wanted: match &wanted {
            Some(dir) => format!("moved it to {dir}"),
            None => "deleted it".to_owned(),
        },
        hint: match recorded {
            Some(dir) => format!("with --archive {dir}"),
            None => "without --archive".to_owned(),
        },
    })
}

/// Verifies the trail and its anchor; anything but intact is an error.
fn verify(
    dir: &Path,
    key: &AuditKey,
    options: &CheckpointOptions,
) -> Result<VerifyReport, RetentionError> {
    let report = verify_dir_with_checkpoints(dir, key, options, |_| {})?;
    let anchored = report
        .checkpoints
        .as_ref()
        .is_some_and(|c| c.anchor_checked);
    if !report.is_intact() || !anchored {
        return Err(RetentionError::NotIntact(Box::new(report)));
    }
    Ok(report)
}

/// A segment chosen for retirement.
struct Chosen {
    path: PathBuf,
    sealed: RetiredSegment,
}

/// What a run retires.
struct Plan {
    retired: Vec<Chosen>,
    /// The new base, when something is retired.
    cut: Option<RetentionBase>,
    kept_because: Option<String>,
    /// Segments before the current base, left by an interrupted run.
    leftovers: Vec<PathBuf>,
}

impl Plan {
    fn report(
        &self,
        policy: &RetentionPolicy,
        anchor_size: u64,
        verified: VerifyReport,
        record_seq: Option<u64>,
        finished_from_earlier_run: Vec<String>,
    ) -> RetentionReport {
        RetentionReport {
            dry_run: policy.dry_run,
            cutoff: policy.cutoff(),
            anchor_size,
            retired: self.retired.iter().map(|s| s.sealed.clone()).collect(),
            first_kept_seq: self.cut.as_ref().map(RetentionBase::first_kept_seq),
            archived_to: self.cut.as_ref().and(policy.archive.clone()),
            record_seq,
            kept_because: self.kept_because.clone(),
            finished_from_earlier_run,
            verified,
        }
    }
}

/// Chooses the segments to retire and computes the cut after them.
fn plan(dir: &Path, anchor_size: u64, policy: &RetentionPolicy) -> Result<Plan, RetentionError> {
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| RetentionError::Io { path, source }
    };
    let base = RetentionBase::load(dir).map_err(|e| match e {
        BaseError::Io(source) => RetentionError::Io {
            path: dir.join(BASE_FILE),
            source,
        },
        BaseError::Invalid(detail) => RetentionError::Changed {
            path: dir.join(BASE_FILE),
            detail,
        },
    })?;
    let kept_from = base.as_ref().map_or(1, RetentionBase::first_kept_seq);
    let all = list_segments(dir).map_err(io_at(dir))?;
    let (leftovers, kept): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(first, _)| *first < kept_from);
    let mut state = Scan {
        tree: base
            .as_ref()
            .map_or_else(CompactRange::new, |b| b.tree().clone()),
        last_seq: kept_from.saturating_sub(1),
        last_hash: base
            .as_ref()
            .map_or(GENESIS_HASH, |b| b.last_retired_hash().0),
        last_epoch: base.as_ref().map_or(0, RetentionBase::last_retired_epoch),
    };
    let cutoff = policy.cutoff();
    let mut retired = Vec::new();
    let mut kept_because = None;
    for pair in kept.windows(2) {
        let [(first, path), (next, _)] = pair else {
            break;
        };
        let name = file_name(path);
        let last = next.saturating_sub(1);
        if retired.len() >= MAX_SEGMENTS_PER_RUN {
            kept_because = Some(format!(
                "{name}: at most {MAX_SEGMENTS_PER_RUN} segments are retired in one run"
            ));
            break;
        }
        if last > anchor_size {
            kept_because = Some(format!(
                "{name}: its records {first} to {last} are not all covered by the anchor, \
                 which commits to {anchor_size}"
            ));
            break;
        }
        let before = state.clone();
        let scanned = state.scan(path, *first)?;
        if scanned.newest.is_none_or(|t| t >= cutoff) {
            kept_because = Some(format!(
                "{name}: its newest record ({}) is not older than {}",
                scanned
                    .newest
                    .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339()),
                cutoff.to_rfc3339()
            ));
            state = before;
            break;
        }
        retired.push(Chosen {
            path: path.clone(),
            sealed: scanned.sealed,
        });
    }
    if kept_because.is_none() && !kept.is_empty() {
        kept_because = kept
            .last()
            .map(|(_, p)| format!("{}: the open segment is never retired", file_name(p)));
    }
    let cut = if retired.is_empty() {
        None
    } else {
        let first_kept = state.last_seq.saturating_add(1);
        RetentionBase::new(
            first_kept,
            Digest(state.last_hash),
            state.last_epoch,
            state.tree,
        )
    };
    Ok(Plan {
        retired,
        cut,
        kept_because,
        leftovers: leftovers.into_iter().map(|(_, p)| p).collect(),
    })
}

/// The chain and tree as far as the segments chosen so far.
#[derive(Clone)]
struct Scan {
    tree: CompactRange,
    last_seq: u64,
    last_hash: [u8; 32],
    last_epoch: u64,
}

/// One segment as [`Scan::scan`] read it.
struct Scanned {
    sealed: RetiredSegment,
    newest: Option<DateTime<Utc>>,
}

impl Scan {
    /// Reads the closed segment `path`, named for record `first`: every
    /// line a record that continues the chain, its digest, and its newest
    /// timestamp. The trail was verified just before; any break here means
    /// it changed since.
    fn scan(&mut self, path: &Path, first: u64) -> Result<Scanned, RetentionError> {
        let changed = |detail: String| RetentionError::Changed {
            path: path.to_owned(),
            detail,
        };
        let io = |source| RetentionError::Io {
            path: path.to_owned(),
            source,
        };
        let file = fs::open_read(path).map_err(io)?;
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, file));
        let mut sha256 = Sha256::new();
        let mut own = CompactRange::new();
        let mut buf = Vec::new();
        let mut records = 0u64;
        let mut newest: Option<DateTime<Utc>> = None;
        while let Some(info) = lines.next_line(&mut buf).map_err(io)? {
            if !info.terminated || info.is_oversized() {
                return Err(changed(format!("line {} is not a record", info.number)));
            }
            let rec = RawRecord::parse(&buf).map_err(|e| changed(e.to_string()))?;
            if rec.seq != self.last_seq.saturating_add(1) || rec.prev != self.last_hash {
                return Err(changed(format!(
                    "record {} does not follow record {}",
                    rec.seq, self.last_seq
                )));
            }
            crate::logtree::append_line(&mut self.tree, &buf).map_err(io)?;
            crate::logtree::append_line(&mut own, &buf).map_err(io)?;
            sha256.update(&buf);
            sha256.update(b"\n");
            self.last_seq = rec.seq;
            self.last_hash = line_hash(&buf);
            self.last_epoch = rec.epoch;
            newest = Some(newest.map_or(rec.ts, |t| t.max(rec.ts)));
            records = records.saturating_add(1);
        }
        Ok(Scanned {
            sealed: RetiredSegment {
                segment: Text::new(file_name(path)),
                first_seq: first,
                last_seq: self.last_seq,
                records,
                sha256: Digest(sha256.finalize().into()),
                root: Digest(own.root().0),
            },
            newest,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
