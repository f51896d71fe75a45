//! The writer's side: the tree kept in the store, resuming it on open, and
//! signing checkpoints when they are due.

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::files::{list_checkpoints, read_checkpoint, write_checkpoint};
use super::{
    CheckpointPolicy, DEFAULT_CHECKPOINT_EVERY_RECORDS, DEFAULT_CHECKPOINT_INTERVAL, append_line,
    origin_for,
};
use crate::checkpoint::{Checkpoint, CheckpointSigner, Note, NoteVerifier};
use crate::merkle::CompactRange;
use crate::retention::{BASE_FILE, BaseError, RetentionBase};
use crate::store::lines::LineReader;
use crate::store::{fs, list_segments};
use crate::{LoggerConfig, OpenError};

/// The checkpoint settings of a [`LoggerConfig`]; no signer means no tree
/// and no checkpoints.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointSettings {
    signer: Option<Arc<CheckpointSigner>>,
    every_records: u64,
    interval: Duration,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings {
            signer: None,
            every_records: DEFAULT_CHECKPOINT_EVERY_RECORDS,
            interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

impl CheckpointSettings {
    fn policy(&self) -> Option<CheckpointPolicy> {
        self.signer.as_ref().map(|signer| CheckpointPolicy {
            signer: Arc::clone(signer),
            every_records: self.every_records,
            interval: self.interval,
        })
    }
}

impl LoggerConfig {
    /// Signs checkpoints of the log's Merkle tree with `signer`, every
    /// [`checkpoint_every_records`](Self::checkpoint_every_records) records,
    /// every [`checkpoint_interval`](Self::checkpoint_interval) when records
    /// were added, and at shutdown. See [`logtree`](crate::logtree).
    ///
    /// Opening then reads every segment once to rebuild the tree.
    #[must_use]
    pub fn checkpoint_signer(mut self, signer: CheckpointSigner) -> Self {
        self.checkpoints.signer = Some(Arc::new(signer));
        self
    }

    /// Records between checkpoints (at least 1); default
    /// [`DEFAULT_CHECKPOINT_EVERY_RECORDS`].
    #[must_use]
    pub fn checkpoint_every_records(mut self, records: u64) -> Self {
        self.checkpoints.every_records = records.max(1);
        self
    }

    /// Longest time new records wait for a checkpoint; default
    /// [`DEFAULT_CHECKPOINT_INTERVAL`]. The writer checks it at least every
    /// 200 ms.
    #[must_use]
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoints.interval = interval;
        self
    }
}

/// Decides when a checkpoint is due and writes it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    dir: PathBuf,
    origin: String,
    policy: CheckpointPolicy,
    /// Tree size of the newest checkpoint written or found.
    last_size: u64,
    /// When that checkpoint was written (or the writer started).
    last_at: Instant,
}

impl Checkpointer {
    /// Whether a checkpoint of a tree of `size` records is due at `now`.
    pub fn is_due(&self, size: u64, now: Instant) -> bool {
        let added = size.saturating_sub(self.last_size);
        added > 0
            && (added >= self.policy.every_records
                || now.saturating_duration_since(self.last_at) >= self.policy.interval)
    }

    /// Signs and stores a checkpoint of `tree`, unless one of that size was
    /// already written. The caller has fsynced every record in it.
    pub fn write(&mut self, tree: &CompactRange, now: Instant) -> io::Result<()> {
        let size = tree.size();
        if size == 0 || size == self.last_size {
            return Ok(());
        }
        let checkpoint =
            Checkpoint::new(&self.origin, size, tree.root().0).map_err(io::Error::other)?;
        let note = self
            .policy
            .signer
            .sign_checkpoint(&checkpoint)
            .map_err(io::Error::other)?;
        let path = write_checkpoint(&self.dir, size, &note)?;
        tracing::debug!(size, checkpoint = %path.display(), "wrote a signed checkpoint");
        self.last_size = size;
        self.last_at = now;
        Ok(())
    }
}

/// When `config` has a checkpoint signer: rebuilds the tree of the records
/// in `dir` (which end at `last_seq`), checks it against the newest stored
/// checkpoint, and returns it with the checkpointer that continues it.
pub(crate) fn resume_tree(
    config: &LoggerConfig,
    key_id: &str,
    last_seq: u64,
) -> Result<Option<(CompactRange, Checkpointer)>, OpenError> {
    let Some(policy) = config.checkpoints.policy() else {
        return Ok(None);
    };
    let dir = config.dir();
    let origin = origin_for(key_id);
    // A key made for another trail would sign checkpoints no verifier of
    // this trail accepts: refuse it before anything is signed.
    if policy.signer.name().as_str() != origin {
        return Err(OpenError::CheckpointMismatch {
            path: dir.to_owned(),
            reason: format!(
                "the checkpoint key is named {}, but this trail's checkpoints are for {origin}: \
                 it belongs to another trail",
                policy.signer.name().as_str()
            ),
        });
    }
    let stored = list_checkpoints(dir).map_err(|source| OpenError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let verifier = policy.signer.verifier();
    let expected = stored.iter().rev().find_map(|(size, path)| {
        match stored_root(path, *size, &origin, &verifier) {
            Ok(root) => Some((*size, root)),
            Err(reason) => {
                tracing::warn!(
                    checkpoint = %path.display(),
                    %reason,
                    "not resuming from a stored checkpoint that is not this signer's \
                     checkpoint of this log; `sealtrail verify` reports it"
                );
                None
            }
        }
    });
    let tree = rebuild(dir, last_seq, expected)?;
    let checkpointer = Checkpointer {
        dir: dir.to_owned(),
        origin,
        policy,
        last_size: expected.map_or(0, |(size, _)| size),
        last_at: Instant::now(),
    };
    Ok(Some((tree, checkpointer)))
}

/// The root of the stored checkpoint `path`, whose file name claims `size`
/// records, if it is what the name says: a signed note that verifies under
/// this writer's own key, of this log, committing to `size` records. A file
/// that is not (planted, or signed by a key since replaced) is no evidence
/// of what the log held; the caller skips it rather than refuse to open.
fn stored_root(
    path: &Path,
    size: u64,
    origin: &str,
    verifier: &NoteVerifier,
) -> Result<[u8; 32], String> {
    let bytes = read_checkpoint(path).map_err(|e| e.to_string())?;
    let note = Note::parse(&bytes).map_err(|e| e.to_string())?;
    let verified = note
        .verify(std::slice::from_ref(verifier))
        .map_err(|e| format!("it does not verify under {verifier}: {e}"))?;
    let checkpoint = Checkpoint::parse(verified.text()).map_err(|e| e.to_string())?;
    if checkpoint.origin() != origin {
        return Err(format!(
            "it is for origin {:?}, this log is {origin:?}",
            checkpoint.origin()
        ));
    }
    if checkpoint.size() != size {
        return Err(format!(
            "its file name says {size} records but it commits to {}",
            checkpoint.size()
        ));
    }
    Ok(*checkpoint.root_hash())
}

/// Streams every segment line into a tree; checks the line count against
/// `last_seq` and the root at the size of `expected`.
fn rebuild(
    dir: &Path,
    last_seq: u64,
    expected: Option<(u64, [u8; 32])>,
) -> Result<CompactRange, OpenError> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |source| OpenError::Io { path, source }
    };
    let mismatch = |reason: String| OpenError::CheckpointMismatch {
        path: dir.to_owned(),
        reason,
    };
    // After retention the tree continues from the retired records'
    // frontier in `retired.json`; a checkpoint within them cannot be
    // checked any more (`verify` holds the base against the chain).
    let base = RetentionBase::load(dir).map_err(|e| match e {
        BaseError::Io(source) => OpenError::Io {
            path: dir.join(BASE_FILE),
            source,
        },
        BaseError::Invalid(why) => mismatch(format!("{why}; run `sealtrail verify`")),
    })?;
    let mut tree = base
        .as_ref()
        .map_or_else(CompactRange::new, |b| b.tree().clone());
    let kept_from = base.as_ref().map_or(1, RetentionBase::first_kept_seq);
    let mut seen_expected = expected.is_some_and(|(size, _)| size == 0 || size < tree.size());
    if let Some((size, root)) = expected
        && size == tree.size()
        && size > 0
    {
        if tree.root().0 != root {
            return Err(mismatch(format!(
                "the retired records in {BASE_FILE} do not hash to the root of the stored \
                 checkpoint of {size} records; run `sealtrail verify`"
            )));
        }
        seen_expected = true;
    }
    let mut buf = Vec::new();
    let segments = list_segments(dir).map_err(at(dir))?;
    for (_, path) in segments
        .into_iter()
        .filter(|(first, _)| *first >= kept_from)
    {
        let file = fs::open_read(&path).map_err(at(&path))?;
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, file));
        while let Some(info) = lines.next_line(&mut buf).map_err(at(&path))? {
            if info.is_oversized() || !info.terminated {
                return Err(mismatch(format!(
                    "{} line {} is not a complete record; run `sealtrail verify`",
                    path.display(),
                    info.number
                )));
            }
            append_line(&mut tree, &buf).map_err(at(&path))?;
            if let Some((size, root)) = expected
                && size == tree.size()
            {
                if tree.root().0 != root {
                    return Err(mismatch(format!(
                        "the first {size} records no longer hash to the root of the stored \
                         checkpoint of that size: the log was rewritten; run `sealtrail verify`"
                    )));
                }
                seen_expected = true;
            }
        }
    }
    if tree.size() != last_seq {
        return Err(mismatch(format!(
            "the segments hold {} records but the last is numbered {last_seq}; \
             run `sealtrail verify`",
            tree.size()
        )));
    }
    if let Some((size, _)) = expected
        && !seen_expected
    {
        return Err(mismatch(format!(
            "the log has {} records, fewer than the {size} of its newest checkpoint: \
             records were cut off; run `sealtrail verify`",
            tree.size()
        )));
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpointer(every_records: u64, interval: Duration, at: Instant) -> Checkpointer {
        let name = crate::checkpoint::KeyName::new("sealtrail/test").unwrap();
        Checkpointer {
            dir: PathBuf::from("unused"),
            origin: "sealtrail/test".into(),
            policy: CheckpointPolicy {
                signer: Arc::new(CheckpointSigner::generate(name).unwrap()),
                every_records,
                interval,
            },
            last_size: 10,
            last_at: at,
        }
    }

    #[test]
    fn a_checkpoint_is_due_after_n_records_or_the_interval_but_never_without_new_records() {
        let start = Instant::now();
        let c = checkpointer(5, Duration::from_secs(60), start);
        assert!(!c.is_due(14, start));
        assert!(c.is_due(15, start));
        // An injected clock, not a sleep.
        let later = start + Duration::from_secs(60);
        assert!(
            !c.is_due(10, later),
            "nothing new since the last checkpoint"
        );
        assert!(c.is_due(11, later));
        assert!(!c.is_due(11, start + Duration::from_secs(59)));
    }
}
