//! The append-only local store: a directory of segment files.
//!
//! Segments are named `seg-<first sequence number, 20 digits>.jsonl`, so they
//! sort in log order by name and the name says which record must open the
//! file. Records are appended to the newest segment until it reaches the
//! configured size; then a new one is started. Files are created with mode
//! `0600` in a directory of mode `0700`, and never through a symbolic link.
//!
//! One writer at a time: the store holds an exclusive lock on
//! [`LOCK_FILE`] while open, released by the OS however the process ends.
//!
//! On open, [`Store::open`] reads the tail of the newest segment:
//! - a last line without its newline is a *torn tail* left by a crash mid
//!   write; its bytes are copied to `torn-<segment>-<offset>-<millis>.bin`,
//!   cut from the segment, and reported to the caller so it can be recorded
//!   in the chain (nothing is silently dropped);
//! - the last complete record must authenticate under the caller's key, or
//!   the store refuses to continue a chain it cannot vouch for.

pub(crate) mod fs;
pub(crate) mod lines;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use sha2::{Digest as _, Sha256};

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

/// A partial record cut from the end of a segment on open.
#[derive(Debug, Clone)]
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
    key: AuditKey,
    kid: String,
    max_segment_bytes: u64,
    /// Held locked for the store's life: one writer per directory.
    _lock: File,
    file: File,
    segment_len: u64,
    head: ChainHead,
    /// Encoded lines not yet handed to the OS, newline-terminated.
    pending: Vec<u8>,
    /// Whether bytes were handed to the OS since the last fsync.
    unsynced: bool,
    /// The Merkle tree over every record, when checkpoints are signed
    /// (see [`logtree`](crate::logtree)).
    tree: Option<crate::merkle::CompactRange>,
}

/// The file whose lock marks a directory as owned by a writer.
pub const LOCK_FILE: &str = "writer.lock";

impl Store {
    /// Opens (or creates) the store in `dir`, recovering a torn tail.
    ///
    /// Takes an exclusive lock on [`LOCK_FILE`] first, so a second writer on
    /// the same directory, in this process or another, fails with
    /// [`OpenError::Locked`] instead of interleaving records. The OS drops
    /// the lock when the process dies, however it dies.
    pub fn open(
        dir: &Path,
        key: AuditKey,
        max_segment_bytes: u64,
    ) -> Result<(Store, Option<TornTail>), OpenError> {
        let at = |source| OpenError::Io {
            path: dir.to_owned(),
            source,
        };
        fs::ensure_private_dir(dir).map_err(at)?;
        let lock = lock_dir(dir)?;
        let segments = list_segments(dir).map_err(at)?;
        let (file, segment_len, head, torn) = match segments.last() {
            None => {
                let path = dir.join(segment_name(1));
                let file =
                    fs::create_private(&path).map_err(|source| OpenError::Io { path, source })?;
                let genesis = ChainHead {
                    last_seq: 0,
                    last_hash: GENESIS_HASH,
                };
                (file, 0, genesis, None)
            }
            Some((promised, newest)) => {
                let torn = cut_torn_tail(dir, newest)?;
                let head = find_head(&segments, &key)?;
                let io = |source| OpenError::Io {
                    path: newest.clone(),
                    source,
                };
                let file = fs::open_append(newest).map_err(io)?;
                check_private_file(&file, newest)?;
                let len = file.metadata().map_err(io)?.len();
                let next = head.last_seq.saturating_add(1);
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
                (file, len, head, torn)
            }
        };
        let store = Store {
            dir: dir.to_owned(),
            kid: key.id().to_string(),
            key,
            max_segment_bytes,
            _lock: lock,
            file,
            segment_len,
            head,
            pending: Vec::new(),
            unsynced: false,
            tree: None,
        };
        Ok((store, torn))
    }

    /// The chain head, counting records appended but not yet written.
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Encodes a record for `event_json` as the next in the chain and queues
    /// it for writing. Returns its sequence number.
    ///
    /// Fails only when the sequence number would overflow, or when starting a
    /// new segment fails.
    pub fn append(&mut self, event_json: &str) -> io::Result<u64> {
        let seq = self.head.last_seq.checked_add(1).ok_or_else(|| {
            io::Error::other("sequence number space exhausted; start a new log directory")
        })?;
        let line = record::encode(
            seq,
            Utc::now(),
            &self.key,
            &self.kid,
            &self.head.last_hash,
            event_json,
        );
        let line_len = (line.len() as u64).saturating_add(1);
        let queued = self.segment_len.saturating_add(self.pending.len() as u64);
        if queued > 0 && queued.saturating_add(line_len) > self.max_segment_bytes {
            self.rotate(seq)?;
        }
        if let Some(tree) = &mut self.tree {
            crate::logtree::append_line(tree, &line)?;
        }
        self.head = ChainHead {
            last_seq: seq,
            last_hash: record::line_hash(&line),
        };
        self.pending.extend_from_slice(&line);
        self.pending.push(b'\n');
        Ok(seq)
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
    pub fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        self.segment_len = self.segment_len.saturating_add(self.pending.len() as u64);
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Writes queued lines and fsyncs them.
    pub fn sync(&mut self) -> io::Result<()> {
        self.write_pending()?;
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Closes the current segment durably and starts `seg-<first_seq>`.
    fn rotate(&mut self, first_seq: u64) -> io::Result<()> {
        self.sync()?;
        let path = self.dir.join(segment_name(first_seq));
        self.file = fs::create_private(&path)?;
        self.segment_len = 0;
        tracing::debug!(segment = %path.display(), "started a new audit segment");
        Ok(())
    }
}

fn lock_dir(dir: &Path) -> Result<File, OpenError> {
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
fn cut_torn_tail(dir: &Path, segment: &Path) -> Result<Option<TornTail>, OpenError> {
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
    let aside = format!(
        "torn-{}-{torn_start}-{}.bin",
        seg_name.trim_end_matches(SEGMENT_SUFFIX),
        Utc::now().timestamp_millis()
    );
    let aside_path = dir.join(&aside);
    let mut out = fs::create_private(&aside_path).map_err(|source| OpenError::Io {
        path: aside_path.clone(),
        source,
    })?;
    out.write_all(torn_bytes)
        .and_then(|()| out.sync_all())
        .map_err(|source| OpenError::Io {
            path: aside_path.clone(),
            source,
        })?;
    // Only once the bytes are safe elsewhere is the segment cut.
    file.set_len(torn_start)
        .and_then(|()| file.sync_all())
        .map_err(at)?;
    tracing::warn!(segment = %seg_name, offset = torn_start, bytes = torn_bytes.len(),
        "cut a torn record from the end of an audit segment");
    Ok(Some(TornTail {
        segment: seg_name,
        offset: torn_start,
        bytes: torn_bytes.len() as u64,
        sha256: Digest(Sha256::digest(torn_bytes).into()),
        set_aside_as: aside,
    }))
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

/// The head of the chain: the last complete record of the newest segment
/// that has one, authenticated under `key`.
fn find_head(segments: &[(u64, PathBuf)], key: &AuditKey) -> Result<ChainHead, OpenError> {
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
        let rec = RawRecord::parse(line).map_err(|e| corrupt(e.to_string()))?;
        if !rec.authenticate(key) {
            return Err(OpenError::TailNotAuthentic {
                path: path.clone(),
                seq: rec.seq,
                record_key_id: rec.kid.clone(),
                key_id: key.id().to_string(),
            });
        }
        if rec.seq < *first_seq {
            return Err(corrupt(format!(
                "last record has sequence number {} but the segment name promises {first_seq} or more",
                rec.seq
            )));
        }
        return Ok(ChainHead {
            last_seq: rec.seq,
            last_hash: record::line_hash(line),
        });
    }
    Ok(ChainHead {
        last_seq: 0,
        last_hash: GENESIS_HASH,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests;
