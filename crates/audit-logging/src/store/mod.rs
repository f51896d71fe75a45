//! The append-only local store: a directory of segment files.
//!
//! Segments are named `seg-<first sequence number, 20 digits>.jsonl`, so they
//! sort in log order by name and the name says which record must open the
//! file. Records are appended to the newest segment until the next record
//! would take it past the configured size, or until the next record's
//! timestamp falls on another UTC date than the segment's first record;
//! then a new segment is started for it. A segment therefore holds the
//! records of one UTC day at most (a day with many records may take several
//! segments), and a restart on a later day starts a new segment too.
//! Timestamps come from [`StoreConfig::clock`], the system clock outside
//! tests.
//!
//! The first record of every segment but the first is an
//! `audit.segment_closed` manifest of the segment before it: its name, first
//! and last sequence numbers, record count, the SHA-256 of its exact
//! bytes and the Merkle root of its records (see
//! [`AuditEvent::SegmentClosed`](crate::AuditEvent::SegmentClosed)). The digest is kept up to date as bytes are written, so closing a
//! segment reads nothing back; opening a store hashes its newest segment
//! once (at most one segment's size, after any torn tail is cut) to pick
//! the digest up where it was. Being in the chain, the manifest is authenticated like any
//! record, and the verifier checks the closed segment against it (see
//! [`crate::verify`]). A crash between creating a segment and writing its
//! manifest leaves the new segment empty; the next open notices and writes
//! the manifest first. Files are created with mode
//! `0600` in a directory of mode `0700`, and never through a symbolic link.
//!
//! One writer at a time: the store holds an exclusive lock on
//! [`LOCK_FILE`] while open, released by the OS however the process ends.
//!
//! On open, [`Store::open`] reads the tail of the newest segment:
//! - a last line without its newline is a *torn tail* left by a crash mid
//!   write; its bytes are copied to `torn-<segment>-<offset>-<millis>.bin`
//!   (first under that name plus [`PENDING_SUFFIX`]), cut from the segment,
//!   and reported to the caller so it can be recorded in the chain (nothing
//!   is silently dropped). The side file keeps its pending name until the
//!   caller has the recovery record on disk and calls [`settle_torn`]; a
//!   start that fails or crashes before that leaves it pending, and the
//!   next open reports it again, so every cut ends up in the chain;
//! - the last complete record must authenticate under the caller's key, or
//!   the store refuses to continue a chain it cannot vouch for.

pub(crate) mod fs;
pub(crate) mod lines;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest as _, Sha256};

use crate::forward::{EpochKey, WRITER_KEY_FILE};
use crate::record::{self, GENESIS_HASH, RawRecord};
use crate::{AuditKey, Digest, MAX_RECORD_BYTES, OpenError};

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".jsonl";

/// The segment file name for a segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first sequence number a segment file name promises, if `name` is a
/// segment name at all.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, in log order, with the sequence number each name
/// promises. Other files (torn tails, notes) are ignored.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(parse_segment_name) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Added to a torn tail's side file until its recovery is in the chain.
pub const PENDING_SUFFIX: &str = ".pending";

/// A partial record cut from the end of a segment on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTail {
    pub segment: String,
    pub offset: u64,
    pub bytes: u64,
    pub sha256: Digest,
    pub set_aside_as: String,
}

/// Where the chain stands: the last record's number and line hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainHead {
    pub last_seq: u64,
    pub last_hash: [u8; 32],
}

/// The writer's view of the store. Owned by the writer thread.
pub(crate) struct Store {
    dir: PathBuf,
    /// The current epoch's key; see [`crate::forward`].
    key: EpochKey,
    config: StoreConfig,
    /// Records written with `key`.
    records_in_epoch: u64,
    /// When `key` came into use.
    epoch_started: Instant,
    /// Whether this run has yet to open its own epoch (see
    /// [`Store::handover_due`]).
    new_run: bool,
    /// Held locked for the store's life: one writer per directory.
    _lock: File,
    file: File,
    segment_len: u64,
    /// The UTC date of the current segment's first record; `None` while the
    /// segment is empty (or its first record cannot be read), in which case
    /// the next record sets it.
    segment_day: Option<NaiveDate>,
    /// The sequence number the current segment's name promises.
    segment_first: u64,
    /// The bytes and lines written to the current segment so far.
    segment_digest: SegmentDigest,
    /// The closed segment whose manifest must open the current segment
    /// before any other record.
    owed_manifest: Option<Sealed>,
    head: ChainHead,
    /// Encoded lines not yet handed to the OS, newline-terminated.
    pending: Vec<u8>,
    /// How many lines `pending` holds.
    pending_lines: u64,
    /// Whether bytes were handed to the OS since the last fsync.
    unsynced: bool,
    /// Records this store handed to the OS, in all segments.
    lines_written: u64,
    /// Whether a failed write may have left part of `pending` in the file
    /// past `segment_len`, to be cut before anything else is written.
    overrun: bool,
    /// Whether an fsync failed. The kernel may have dropped the pages it
    /// could not write and marked them clean, so a later fsync that
    /// succeeds would prove nothing: the store writes nothing more.
    fsync_failed: bool,
    /// Whether `key` opened an epoch whose handover record is not yet
    /// known durable, so the key is not yet saved (see
    /// [`Store::append_handover`]).
    key_unsaved: bool,
    /// The Merkle tree over every record, when checkpoints are signed
    /// (see [`logtree`](crate::logtree)).
    tree: Option<crate::merkle::CompactRange>,
}

/// The file whose lock marks a directory as owned by a writer.
pub const LOCK_FILE: &str = "writer.lock";

/// Limits a store works within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreConfig {
    /// Size at which a new segment is started.
    pub max_segment_bytes: u64,
    /// Records written with one key before it evolves (at least 1).
    pub epoch_records: u64,
    /// Time after which the key evolves with the next record.
    pub epoch_interval: Duration,
    /// Where record timestamps come from: [`Utc::now`], except in tests,
    /// which inject a clock instead of sleeping across midnight.
    pub clock: fn() -> DateTime<Utc>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, recovering a torn tail.
    ///
    /// Takes an exclusive lock on [`LOCK_FILE`] first, so a second writer on
    /// the same directory, in this process or another, fails with
    /// [`OpenError::Locked`] instead of interleaving records. The OS drops
    /// the lock when the process dies, however it dies.
    ///
    /// `initial` is the audit key; it is needed only for a new trail or one
    /// whose writer key is gone, so that the audit key itself can be kept
    /// off the host once the trail exists.
    pub fn open(
        dir: &Path,
        initial: Option<&AuditKey>,
        config: StoreConfig,
    ) -> Result<(Store, Vec<TornTail>), OpenError> {
        let at = |source| OpenError::Io {
            path: dir.to_owned(),
            source,
        };
        fs::ensure_private_dir(dir).map_err(at)?;
        let lock = lock_dir(dir)?;
        // Cut by an earlier open whose start did not get as far as
        // recording them.
        let mut torn = pending_torn(dir)?;
        let segments = list_segments(dir).map_err(at)?;
        let (file, segment_len, segment_day, tail) = match segments.last() {
            None => {
                let path = dir.join(segment_name(1));
                let file =
                    fs::create_private(&path).map_err(|source| OpenError::Io { path, source })?;
                (file, 0, None, None)
            }
            Some((promised, newest)) => {
                if let Some(cut) = cut_torn_tail(dir, newest, &torn)?
                    && !torn.contains(&cut)
                {
                    torn.push(cut);
                }
                let tail = find_tail(&segments)?;
                let io = |source| OpenError::Io {
                    path: newest.clone(),
                    source,
                };
                let file = fs::open_append(newest).map_err(io)?;
                check_private_file(&file, newest)?;
                let len = file.metadata().map_err(io)?.len();
                let next = tail.as_ref().map_or(1, |t| t.record.seq.saturating_add(1));
                // An empty newest segment is normal after a crash right after
                // rotation, but only under the name of the next record;
                // writing into any other would make a trail that cannot verify.
                if len == 0 && *promised != next {
                    return Err(OpenError::CorruptTail {
                        path: newest.clone(),
                        reason: format!(
                            "the newest segment is empty and named for record {promised}, \
                             but the next record is {next}; move it out of the directory"
                        ),
                    });
                }
                (file, len, first_record_day(newest), tail)
            }
        };
        let segment_first = segments.last().map_or(1, |(first, _)| *first);
        let hash = |path: &Path| {
            SegmentDigest::of_file(path).map_err(|source| OpenError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let segment_digest = match segments.last() {
            Some((_, newest)) => hash(newest)?,
            None => SegmentDigest::default(),
        };
        // An empty newest segment after another one was started by a
        // rotation whose manifest never reached the disk.
        let owed_manifest = match segments.as_slice() {
            [.., (before, path), _] if segment_len == 0 => Some(hash(path)?.seal(*before)),
            _ => None,
        };
        let key = resolve_key(dir, initial, tail.as_ref())?;
        let head = tail.map_or(
            ChainHead {
                last_seq: 0,
                last_hash: GENESIS_HASH,
            },
            |t| ChainHead {
                last_seq: t.record.seq,
                last_hash: t.hash,
            },
        );
        let store = Store {
            dir: dir.to_owned(),
            key,
            config: StoreConfig {
                epoch_records: config.epoch_records.max(1),
                ..config
            },
            records_in_epoch: 0,
            epoch_started: Instant::now(),
            new_run: true,
            _lock: lock,
            file,
            segment_len,
            segment_day,
            segment_first,
            segment_digest,
            owed_manifest,
            head,
            pending: Vec::new(),
            pending_lines: 0,
            unsynced: false,
            lines_written: 0,
            overrun: false,
            fsync_failed: false,
            key_unsaved: false,
            tree: None,
        };
        Ok((store, torn))
    }

    /// The id of the audit key the trail's key chain started from.
    pub fn origin(&self) -> &crate::KeyId {
        self.key.origin()
    }

    /// The chain head, counting records appended but not yet written.
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Encodes a record for `event_json` as the next in the chain and queues
    /// it for writing. Returns its sequence number.
    ///
    /// When the record starts a new segment (by size or by date), the
    /// manifest of the closed segment is appended first, so the head may
    /// move by two.
    ///
    /// Fails only when the sequence number would overflow, or when closing
    /// the segment or starting a new one fails; then nothing was appended
    /// and the same call can be retried. (A rotation that did complete
    /// stays done; the retry writes the manifest it owes.)
    pub fn append(&mut self, event_json: &str) -> io::Result<u64> {
        let ts = (self.config.clock)();
        if self.rotation_due(ts, event_json.len()) {
            self.rotate()?;
        }
        if let Some(closed) = &self.owed_manifest {
            let manifest = self.manifest_of(closed, ts)?;
            self.append_at(ts, &manifest)?;
            self.owed_manifest = None;
        }
        self.append_at(ts, event_json)
    }

    /// Whether a record of `event_len` bytes of event JSON, written at
    /// `ts`, must go to a new segment: the current one has records, and
    /// the record might take it past the size limit or falls on another
    /// UTC date than its first record.
    fn rotation_due(&self, ts: DateTime<Utc>, event_len: usize) -> bool {
        let queued = self.segment_len.saturating_add(self.pending.len() as u64);
        let longest = (event_len as u64).saturating_add(RECORD_ENVELOPE_BYTES);
        queued > 0
            && (queued.saturating_add(longest) > self.config.max_segment_bytes
                || self.segment_day.is_some_and(|d| d != ts.date_naive()))
    }

    /// The JSON of the `audit.segment_closed` manifest of `closed`, whose
    /// last record is the chain head.
    fn manifest_of(&self, closed: &Sealed, ts: DateTime<Utc>) -> io::Result<String> {
        let event = crate::AuditEvent::SegmentClosed {
            timestamp: ts,
            segment: segment_name(closed.first_seq).into(),
            first_seq: closed.first_seq,
            last_seq: self.head.last_seq,
            records: closed.records,
            sha256: closed.sha256,
            root: Some(closed.root),
        };
        serde_json::to_string(&event).map_err(io::Error::other)
    }

    /// Appends one record at `ts` to the current segment.
    fn append_at(&mut self, ts: DateTime<Utc>, event_json: &str) -> io::Result<u64> {
        let seq = self.head.last_seq.checked_add(1).ok_or_else(|| {
            io::Error::other("sequence number space exhausted; start a new log directory")
        })?;
        if self.handover_due() {
            return self.append_handover(seq, ts, event_json);
        }
        let start = self.pending.len();
        record::encode_into(
            &mut self.pending,
            seq,
            ts,
            &self.key,
            None,
            &self.head.last_hash,
            event_json,
        );
        self.push(seq, ts, start)?;
        self.records_in_epoch = self.records_in_epoch.saturating_add(1);
        // The very first record of a log opens epoch 0 for this run.
        self.new_run = false;
        Ok(seq)
    }

    /// Whether the next record must open a new key epoch: at the first
    /// record of a run that continues a log, and when the epoch is full or
    /// old. The very first record of a log opens epoch 0 and has no
    /// predecessor to hand over from.
    ///
    /// While the key of the last handover is unsaved, no new epoch starts:
    /// the saved key must never fall more than one epoch behind the log.
    fn handover_due(&self) -> bool {
        self.head.last_seq > 0
            && !self.key_unsaved
            && (self.new_run
                || self.records_in_epoch >= self.config.epoch_records
                || self.epoch_started.elapsed() >= self.config.epoch_interval)
    }

    /// Writes the record that opens the next epoch: made with the next key,
    /// vouched for by the current one. It is made durable before the next
    /// key replaces the saved one, so a crash leaves either the old key
    /// with a log that may end in the handover record (the next open
    /// evolves the key to catch up), or the new key with the handover on
    /// disk.
    ///
    /// Once the record is queued it is the head, whatever the disk does:
    /// when the write, the fsync or the key file fails here, the record
    /// stays queued and the next [`sync`](Self::sync) finishes the job, so
    /// a retry never encodes the record a second time. Until then the
    /// previous key stays on disk (a crash then is the first case above).
    fn append_handover(
        &mut self,
        seq: u64,
        ts: DateTime<Utc>,
        event_json: &str,
    ) -> io::Result<u64> {
        let mut next = self.key.clone();
        next.evolve()
            .ok_or_else(|| io::Error::other("key epochs exhausted; start a new log directory"))?;
        let start = self.pending.len();
        record::encode_into(
            &mut self.pending,
            seq,
            ts,
            &next,
            Some(&self.key),
            &self.head.last_hash,
            event_json,
        );
        self.push(seq, ts, start)?;
        self.key = next;
        self.key_unsaved = true;
        self.records_in_epoch = 1;
        self.epoch_started = Instant::now();
        self.new_run = false;
        if let Err(e) = self.sync() {
            // Kept owed; the caller's next write or sync reports it.
            tracing::debug!(error = %e, "the key handover waits for the disk");
        }
        Ok(seq)
    }

    /// Makes the line encoded into `pending` from `start` on, written at
    /// `ts`, the new head; on an error it is taken out again.
    fn push(&mut self, seq: u64, ts: DateTime<Utc>, start: usize) -> io::Result<()> {
        let line_hash = record::line_hash(self.pending.get(start..).unwrap_or_default());
        if let Err(e) = self.add_leaf(&line_hash) {
            self.pending.truncate(start);
            return Err(e);
        }
        if self.segment_day.is_none() {
            self.segment_day = Some(ts.date_naive());
        }
        self.head = ChainHead {
            last_seq: seq,
            last_hash: line_hash,
        };
        self.pending.push(b'\n');
        self.pending_lines = self.pending_lines.saturating_add(1);
        Ok(())
    }

    /// Adds the record whose line hashes to `line_hash` to the segment's
    /// tree and to the tree of every record, if one is kept.
    fn add_leaf(&mut self, line_hash: &[u8; 32]) -> io::Result<()> {
        self.segment_digest.add_record(line_hash)?;
        if let Some(tree) = &mut self.tree {
            tree.append(crate::logtree::leaf_of_line_hash(line_hash))
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// Keeps `tree`, the tree of every record so far, up to date from now
    /// on.
    pub fn set_tree(&mut self, tree: crate::merkle::CompactRange) {
        self.tree = Some(tree);
    }

    /// The tree of every record appended, if one is kept.
    pub fn tree(&self) -> Option<&crate::merkle::CompactRange> {
        self.tree.as_ref()
    }

    /// Hands queued lines to the OS in one write.
    ///
    /// A write the OS refuses (`ENOSPC`, `EIO`, a file size limit) leaves
    /// no partial line behind: whatever part of it reached the file is cut
    /// off again, so the segment still ends with its last whole record, and
    /// the lines stay queued, unchanged, for the next call. Should the cut
    /// fail too, the next call makes it before writing anything. The lines
    /// are already the chain's head, so the retry writes the same records,
    /// in the same order, exactly once.
    pub fn write_pending(&mut self) -> io::Result<()> {
        self.check_not_poisoned()?;
        if self.overrun {
            self.file.set_len(self.segment_len)?;
            self.overrun = false;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.pending) {
            self.overrun = true;
            // Cut at once, so that a crash while the disk stays full does
            // not leave the partial line for the next start to set aside.
            if self.file.set_len(self.segment_len).is_ok() {
                self.overrun = false;
            }
            return Err(e);
        }
        self.segment_digest
            .update(&self.pending, self.pending_lines);
        self.lines_written = self.lines_written.saturating_add(self.pending_lines);
        self.segment_len = self.segment_len.saturating_add(self.pending.len() as u64);
        self.pending.clear();
        self.pending_lines = 0;
        self.unsynced = true;
        Ok(())
    }

    /// Writes queued lines and fsyncs them; then saves the key of a
    /// handover that had to wait for the disk.
    ///
    /// A failed fsync is final (see [`fsync_failed`](Self::fsync_failed)).
    pub fn sync(&mut self) -> io::Result<()> {
        self.write_pending()?;
        if self.unsynced {
            if let Err(e) = self.file.sync_data() {
                self.fsync_failed = true;
                return Err(e);
            }
            self.unsynced = false;
        }
        if self.key_unsaved {
            self.key.save(&self.dir.join(WRITER_KEY_FILE))?;
            self.key_unsaved = false;
        }
        Ok(())
    }

    /// Whether an fsync of the segment failed, after which the store
    /// refuses to write: what the kernel reported lost cannot be told apart
    /// from what it kept, and a later fsync succeeding would not mean the
    /// records before it are on disk.
    pub fn fsync_failed(&self) -> bool {
        self.fsync_failed
    }

    fn check_not_poisoned(&self) -> io::Result<()> {
        if self.fsync_failed {
            return Err(io::Error::other(
                "an earlier fsync of the segment failed, so nothing more is written; \
                 restart the logger to continue the trail after its last whole record",
            ));
        }
        Ok(())
    }

    /// Whether records are encoded but not yet handed to the OS.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// How many records this store has handed to the OS.
    pub fn lines_written(&self) -> u64 {
        self.lines_written
    }

    /// How many records are encoded but not yet handed to the OS.
    pub fn pending_records(&self) -> u64 {
        self.pending_lines
    }

    /// Closes the current segment durably and starts the one named for the
    /// next record, which owes the closed one's manifest.
    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let first_seq = self.head.last_seq.checked_add(1).ok_or_else(|| {
            io::Error::other("sequence number space exhausted; start a new log directory")
        })?;
        let path = self.dir.join(segment_name(first_seq));
        self.file = fs::create_segment(&path)?;
        let closed = std::mem::take(&mut self.segment_digest);
        self.owed_manifest = Some(closed.seal(self.segment_first));
        self.segment_first = first_seq;
        self.segment_len = 0;
        self.segment_day = None;
        tracing::debug!(segment = %path.display(), "started a new audit segment");
        Ok(())
    }
}

/// The most bytes a record line (newline included) adds to its event's
/// JSON: the longest envelope, with a 20-digit sequence number and epoch, a
/// handover mac and the mac, is 351 bytes; the rest is headroom for a
/// timestamp past year 9999. Size rotation uses it to close a segment
/// before a record that might not fit.
const RECORD_ENVELOPE_BYTES: u64 = 384;

/// The running SHA-256 and line count of a segment's bytes, and the Merkle
/// tree of its records.
#[derive(Default, Clone)]
struct SegmentDigest {
    sha256: Sha256,
    lines: u64,
    /// The records' leaves (as in [`crate::logtree`]), added as records
    /// are queued for this segment: a segment's own tree, leaf 0 its first
    /// record.
    tree: crate::merkle::CompactRange,
}

impl SegmentDigest {
    /// The digest and tree of a file's bytes as they are, read in constant
    /// memory. Each line is hashed as it streams past, so a line longer
    /// than the read buffer costs nothing extra.
    fn of_file(path: &Path) -> io::Result<Self> {
        let mut file = fs::open_read(path)?;
        let mut digest = SegmentDigest::default();
        let mut line = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(digest),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            digest.sha256.update(chunk);
            let mut pieces = chunk.split(|&b| b == b'\n').peekable();
            while let Some(piece) = pieces.next() {
                line.update(piece);
                // Every piece but the last ended at a newline.
                if pieces.peek().is_some() {
                    let hash: [u8; 32] = std::mem::take(&mut line).finalize().into();
                    digest.lines = digest.lines.saturating_add(1);
                    digest.add_record(&hash)?;
                }
            }
        }
    }

    /// Adds `bytes`, which hold `lines` whole lines, as written.
    fn update(&mut self, bytes: &[u8], lines: u64) {
        self.sha256.update(bytes);
        self.lines = self.lines.saturating_add(lines);
    }

    /// Adds the record whose line hashes to `line_hash` to the tree.
    fn add_record(&mut self, line_hash: &[u8; 32]) -> io::Result<()> {
        self.tree
            .append(crate::logtree::leaf_of_line_hash(line_hash))
            .map_err(io::Error::other)
    }

    /// What a manifest says of the segment named for `first_seq`.
    fn seal(self, first_seq: u64) -> Sealed {
        Sealed {
            first_seq,
            sha256: Digest(self.sha256.finalize().into()),
            records: self.lines,
            root: Digest(self.tree.root().0),
        }
    }
}

/// A closed segment, as its manifest describes it.
#[derive(Debug, Clone, Copy)]
struct Sealed {
    first_seq: u64,
    sha256: Digest,
    records: u64,
    root: Digest,
}

/// Takes the exclusive writer lock of `dir`, held while the file lives.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let file = fs::open_lock_file(&path).map_err(|source| OpenError::Io {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::Io { path, source }),
    }
}

fn check_private_file(file: &File, path: &Path) -> Result<(), OpenError> {
    let mode = fs::mode_of(file).map_err(|source| OpenError::Io {
        path: path.to_owned(),
        source,
    })?;
    if mode & 0o077 != 0 {
        return Err(OpenError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Cuts bytes after the last newline of `segment`, keeping them aside.
/// Cuts a torn tail off `segment`, its bytes first kept aside (reusing one
/// of the `pending` side files when it holds exactly them).
fn cut_torn_tail(
    dir: &Path,
    segment: &Path,
    pending: &[TornTail],
) -> Result<Option<TornTail>, OpenError> {
    let at = |source| OpenError::Io {
        path: segment.to_owned(),
        source,
    };
    let mut file = fs::open_read_write(segment).map_err(at)?;
    let len = file.metadata().map_err(at)?.len();
    let window = tail_window(&mut file, len).map_err(at)?;
    let torn_start = match window.bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => window.start.saturating_add(i as u64).saturating_add(1),
        None if window.start == 0 => 0,
        None => {
            return Err(OpenError::CorruptTail {
                path: segment.to_owned(),
                reason: format!(
                    "no record boundary in the last {} bytes",
                    window.bytes.len()
                ),
            });
        }
    };
    if torn_start == len {
        return Ok(None);
    }
    let offset_in_window = usize::try_from(torn_start.saturating_sub(window.start)).unwrap_or(0);
    let torn_bytes = window.bytes.get(offset_in_window..).unwrap_or_default();
    let seg_name = file_name(segment);
    let torn = set_aside(dir, &seg_name, torn_start, torn_bytes, pending)?;
    // Only once the bytes are safe elsewhere is the segment cut.
    file.set_len(torn_start)
        .and_then(|()| file.sync_all())
        .map_err(at)?;
    tracing::warn!(segment = %seg_name, offset = torn_start, bytes = torn_bytes.len(),
        "cut a torn record from the end of an audit segment");
    Ok(Some(torn))
}

/// Copies a torn tail's bytes durably into a pending side file, unless an
/// earlier open that crashed before its cut already did (same segment,
/// offset and bytes: that file is reused rather than copied twice).
fn set_aside(
    dir: &Path,
    segment: &str,
    offset: u64,
    bytes: &[u8],
    pending: &[TornTail],
) -> Result<TornTail, OpenError> {
    let sha256 = Digest(Sha256::digest(bytes).into());
    let torn = |set_aside_as: String| TornTail {
        segment: segment.to_owned(),
        offset,
        bytes: bytes.len() as u64,
        sha256,
        set_aside_as,
    };
    if let Some(earlier) = pending.iter().find(|p| {
        p.segment == segment
            && p.offset == offset
            && p.bytes == bytes.len() as u64
            && p.sha256 == sha256
    }) {
        return Ok(earlier.clone());
    }
    let stem = format!(
        "torn-{}-{offset}-",
        segment.trim_end_matches(SEGMENT_SUFFIX)
    );
    let name = format!("{stem}{}.bin", Utc::now().timestamp_millis());
    let path = dir.join(format!("{name}{PENDING_SUFFIX}"));
    let io = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    let mut out = fs::create_private(&path).map_err(io)?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .map_err(io)?;
    Ok(torn(name))
}

/// The torn tails whose side files are still pending: cut by an open whose
/// start never recorded them. Each is described from its file: the name
/// says the segment and offset, the bytes the rest.
fn pending_torn(dir: &Path) -> Result<Vec<TornTail>, OpenError> {
    let at = |source| OpenError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(at)? {
        let entry = entry.map_err(at)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(set_aside_as) = name.strip_suffix(PENDING_SUFFIX) else {
            continue;
        };
        let Some((segment, offset)) = parse_torn_name(set_aside_as) else {
            continue;
        };
        let path = entry.path();
        let corrupt = |reason: String| OpenError::CorruptTail {
            path: path.clone(),
            reason,
        };
        let file = fs::open_read(&path).map_err(|e| corrupt(e.to_string()))?;
        let limit = (MAX_RECORD_BYTES as u64)
            .saturating_add(1)
            .saturating_mul(2);
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| corrupt(e.to_string()))?;
        if bytes.len() as u64 > limit {
            return Err(corrupt(format!(
                "a pending torn tail is longer than the {limit} bytes a torn tail can be; \
                 move it out of the audit directory"
            )));
        }
        found.push(TornTail {
            segment,
            offset,
            bytes: bytes.len() as u64,
            sha256: Digest(Sha256::digest(&bytes).into()),
            set_aside_as: set_aside_as.to_owned(),
        });
    }
    found.sort_by(|a, b| a.set_aside_as.cmp(&b.set_aside_as));
    Ok(found)
}

/// The segment and offset a side file's name `torn-<stem>-<offset>-<millis>.bin` gives.
fn parse_torn_name(name: &str) -> Option<(String, u64)> {
    let rest = name.strip_prefix("torn-")?.strip_suffix(".bin")?;
    let (rest, millis) = rest.rsplit_once('-')?;
    let (stem, offset) = rest.rsplit_once('-')?;
    millis.parse::<i64>().ok()?;
    let segment = format!("{stem}{SEGMENT_SUFFIX}");
    parse_segment_name(&segment)?;
    Some((segment, offset.parse().ok()?))
}

/// Gives the side files of `torn` their final names, once their recovery
/// records are durable, so that no later open reports them again.
pub(crate) fn settle_torn(dir: &Path, torn: &[TornTail]) -> io::Result<()> {
    for t in torn {
        let final_path = dir.join(&t.set_aside_as);
        let pending = dir.join(format!("{}{PENDING_SUFFIX}", t.set_aside_as));
        std::fs::rename(&pending, &final_path)?;
        fs::sync_parent_dir(&final_path)?;
    }
    Ok(())
}

/// The UTC date of the first record of `segment`, if it has one that
/// parses. Read only to schedule rotation: the record is not authenticated
/// here (the tail is, in [`resolve_key`]; `verify` checks them all).
fn first_record_day(segment: &Path) -> Option<NaiveDate> {
    let file = fs::open_read(segment).ok()?;
    let mut lines = lines::LineReader::new(io::BufReader::new(file));
    let mut buf = Vec::new();
    let info = lines.next_line(&mut buf).ok()??;
    if !info.terminated {
        return None;
    }
    RawRecord::parse(&buf).ok().map(|r| r.ts.date_naive())
}

/// The last bytes of a file: enough to hold a torn record and the complete
/// record before it.
struct Window {
    start: u64,
    bytes: Vec<u8>,
}

fn tail_window(file: &mut File, len: u64) -> io::Result<Window> {
    let want = (MAX_RECORD_BYTES as u64)
        .saturating_add(1)
        .saturating_mul(2);
    let start = len.saturating_sub(want);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(want).read_to_end(&mut bytes)?;
    Ok(Window { start, bytes })
}

/// The last complete record of the log, not yet authenticated.
struct Tail {
    record: RawRecord,
    hash: [u8; 32],
    path: PathBuf,
}

/// The last complete record of the newest segment that has one.
fn find_tail(segments: &[(u64, PathBuf)]) -> Result<Option<Tail>, OpenError> {
    for (first_seq, path) in segments.iter().rev() {
        let at = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        let mut file = fs::open_read(path).map_err(at)?;
        let len = file.metadata().map_err(at)?.len();
        let window = tail_window(&mut file, len).map_err(at)?;
        let body = window.bytes.strip_suffix(b"\n").unwrap_or(&window.bytes);
        if body.is_empty() {
            continue;
        }
        let line = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => body.get(i.saturating_add(1)..).unwrap_or_default(),
            None if window.start == 0 => body,
            None => {
                return Err(OpenError::CorruptTail {
                    path: path.clone(),
                    reason: "last record is longer than the record size limit".into(),
                });
            }
        };
        let corrupt = |reason: String| OpenError::CorruptTail {
            path: path.clone(),
            reason,
        };
        let record = RawRecord::parse(line).map_err(|e| corrupt(e.to_string()))?;
        if record.seq < *first_seq {
            return Err(corrupt(format!(
                "last record has sequence number {} but the segment name promises {first_seq} or more",
                record.seq
            )));
        }
        return Ok(Some(Tail {
            record,
            hash: record::line_hash(line),
            path: path.clone(),
        }));
    }
    Ok(None)
}

/// Most epochs a logger derives from the audit key when it has to rebuild
/// its writer key (a trail whose `writer.key` is gone). Bounds the work a
/// forged epoch number in the last record can cause: about a second.
const MAX_REBUILD_EPOCHS: u64 = 1 << 20;

/// Chooses the key this run continues with, and checks the tail with it.
/// See [`crate::forward`].
///
/// The writer key on disk is normally in the tail's epoch. It is one epoch
/// behind when a crash (or a failed save) came between writing a handover
/// record and saving the next key; it is evolved to catch up and saved. It is never ahead: that means
/// records were cut from the end or the log was restored from an older
/// copy, and the store refuses to paper over it. Without a writer key, the
/// audit key is needed, and the chain is derived from it.
///
/// The run's own epoch starts with its first record ([`Store::append`]).
fn resolve_key(
    dir: &Path,
    initial: Option<&AuditKey>,
    tail: Option<&Tail>,
) -> Result<EpochKey, OpenError> {
    let key_path = dir.join(WRITER_KEY_FILE);
    let saved = match key_path.try_exists() {
        Ok(true) => Some(EpochKey::load(&key_path).map_err(OpenError::WriterKey)?),
        Ok(false) => None,
        Err(source) => {
            return Err(OpenError::Io {
                path: key_path,
                source,
            });
        }
    };
    if let (Some(saved), Some(initial)) = (&saved, initial)
        && saved.origin() != &initial.id()
    {
        return Err(OpenError::ForeignTrail {
            path: dir.to_owned(),
            trail_key_id: saved.origin().to_string(),
            key_id: initial.id().to_string(),
        });
    }
    let Some(tail) = tail else {
        return match (saved, initial) {
            (Some(saved), _) => Ok(saved),
            (None, Some(initial)) => {
                let first = EpochKey::first(initial);
                save_key(&first, &key_path)?;
                Ok(first)
            }
            (None, None) => Err(OpenError::NoWriterKey {
                path: dir.to_owned(),
            }),
        };
    };
    let corrupt = |reason: String| OpenError::CorruptTail {
        path: tail.path.clone(),
        reason,
    };
    let tail_epoch = tail.record.epoch;
    let key = match (saved, initial) {
        (Some(saved), _) if saved.epoch() == tail_epoch => saved,
        (Some(mut saved), _) if saved.epoch().checked_add(1) == Some(tail_epoch) => {
            saved
                .evolve()
                .ok_or_else(|| corrupt("key epochs exhausted".into()))?;
            // Saved before this run writes anything: the run opens an epoch
            // of its own, and were that key's save to fail too (a disk
            // still full), the key on disk would be two epochs behind, a
            // trail no start could continue.
            save_key(&saved, &key_path)?;
            saved
        }
        (Some(saved), _) => {
            return Err(corrupt(format!(
                "the last record is in key epoch {tail_epoch} but {WRITER_KEY_FILE} is at epoch \
                 {}: records were cut from the end, or the log was restored from an older copy; \
                 run `sealtrail verify`, and to continue the trail anyway remove {WRITER_KEY_FILE} \
                 and open it with the audit key",
                saved.epoch()
            )));
        }
        (None, Some(initial)) => {
            EpochKey::at(initial, tail_epoch, MAX_REBUILD_EPOCHS).ok_or_else(|| {
                corrupt(format!(
                    "the last record claims key epoch {tail_epoch}, beyond any this logger rebuilds"
                ))
            })?
        }
        (None, None) => {
            return Err(OpenError::NoWriterKey {
                path: dir.to_owned(),
            });
        }
    };
    if !tail.record.authenticate(&key) {
        return Err(OpenError::TailNotAuthentic {
            path: tail.path.clone(),
            seq: tail.record.seq,
            record_key_id: tail.record.kid.clone(),
            key_id: key.origin().to_string(),
        });
    }
    Ok(key)
}

fn save_key(key: &EpochKey, path: &Path) -> Result<(), OpenError> {
    key.save(path).map_err(|source| OpenError::Io {
        path: path.to_owned(),
        source,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests;
