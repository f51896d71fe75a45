//! `retired.json`: where a trail whose oldest segments were retired now
//! begins.
//!
//! The verifier and the logger stream a trail forward from its first
//! record. Once records `1` to `n` are gone, they need three things they
//! can no longer compute: the hash of record `n`'s line (the first kept
//! record's `prev`), its key epoch (to derive the key the next record is
//! checked with) and the Merkle frontier of the tree of `n` leaves (to go
//! on recomputing the tree). This file holds exactly those. It lives in the
//! audit directory, so it is *untrusted*: the verifier accepts it only once
//! it reaches the authenticated `audit.segments_retired` record that names
//! the same cut (see [`crate::retention`]).

use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::merkle::CompactRange;
use crate::store::fs;

/// The file in the audit directory that holds the retention cut.
pub const BASE_FILE: &str = "retired.json";

/// Where the base is written before it is renamed into place.
const TEMP_NAME: &str = "retired.json.tmp";

/// Version of the file's layout.
const BASE_VERSION: u32 = 1;

/// Longest base file read: a frontier has at most 64 hashes (about 4.3 KiB
/// as hex); anything much larger is not a base.
const MAX_BASE_BYTES: u64 = 16 * 1024;

/// The cut a retention left: records before `first_kept_seq` are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionBase {
    first_kept_seq: u64,
    last_retired_hash: Digest,
    last_retired_epoch: u64,
    tree: CompactRange,
}

/// The file's layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    v: u32,
    first_kept_seq: u64,
    last_retired_hash: Digest,
    last_retired_epoch: u64,
    tree: CompactRange,
}

impl RetentionBase {
    /// A cut before `first_kept_seq`, whose last retired record's line
    /// hashes to `last_retired_hash` in key epoch `last_retired_epoch`, and
    /// whose retired records form `tree`. `None` unless `tree` has exactly
    /// the `first_kept_seq - 1` leaves of the retired records, at least one.
    pub fn new(
        first_kept_seq: u64,
        last_retired_hash: Digest,
        last_retired_epoch: u64,
        tree: CompactRange,
    ) -> Option<Self> {
        let retired = first_kept_seq.checked_sub(1).filter(|n| *n > 0)?;
        (tree.size() == retired).then_some(RetentionBase {
            first_kept_seq,
            last_retired_hash,
            last_retired_epoch,
            tree,
        })
    }

    /// The first record the trail still holds.
    pub fn first_kept_seq(&self) -> u64 {
        self.first_kept_seq
    }

    /// How many records were retired: `first_kept_seq - 1`.
    pub fn retired_records(&self) -> u64 {
        self.tree.size()
    }

    /// The SHA-256 of the last retired record's line.
    pub fn last_retired_hash(&self) -> &Digest {
        &self.last_retired_hash
    }

    /// The key epoch of the last retired record.
    pub fn last_retired_epoch(&self) -> u64 {
        self.last_retired_epoch
    }

    /// The Merkle frontier of the retired records.
    pub fn tree(&self) -> &CompactRange {
        &self.tree
    }

    /// Reads the base of the trail in `dir`: `Ok(None)` when the trail has
    /// none. A file that is there but is not a base (too large, bad JSON,
    /// another version, a tree of the wrong size, a symbolic link) is
    /// [`BaseError::Invalid`]; one that cannot be read, [`BaseError::Io`].
    pub fn load(dir: &Path) -> Result<Option<Self>, BaseError> {
        let path = dir.join(BASE_FILE);
        let file = match fs::open_read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(BaseError::Invalid(format!("{BASE_FILE} {e}")));
            }
            Err(e) => return Err(BaseError::Io(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_BASE_BYTES.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(BaseError::Io)?;
        if bytes.len() as u64 > MAX_BASE_BYTES {
            return Err(BaseError::Invalid(format!(
                "{BASE_FILE} is longer than {MAX_BASE_BYTES} bytes"
            )));
        }
        let parsed: File = serde_json::from_slice(&bytes)
            .map_err(|e| BaseError::Invalid(format!("{BASE_FILE} is not a retention base: {e}")))?;
        if parsed.v != BASE_VERSION {
            return Err(BaseError::Invalid(format!(
                "{BASE_FILE} has version {}, this verifier reads version {BASE_VERSION}",
                parsed.v
            )));
        }
        let size = parsed.tree.size();
        RetentionBase::new(
            parsed.first_kept_seq,
            parsed.last_retired_hash,
            parsed.last_retired_epoch,
            parsed.tree,
        )
        .map(Some)
        .ok_or_else(|| {
            BaseError::Invalid(format!(
                "{BASE_FILE} keeps records from {} on but holds a tree of {size} records",
                parsed.first_kept_seq
            ))
        })
    }

    /// Writes the base into `dir` durably: a `0600` temporary file (never
    /// through a symbolic link), fsynced, renamed over [`BASE_FILE`], and
    /// the directory fsynced.
    pub(crate) fn save(&self, dir: &Path) -> io::Result<()> {
        let file = File {
            v: BASE_VERSION,
            first_kept_seq: self.first_kept_seq,
            last_retired_hash: self.last_retired_hash,
            last_retired_epoch: self.last_retired_epoch,
            tree: self.tree.clone(),
        };
        let mut json = serde_json::to_vec(&file).map_err(io::Error::other)?;
        json.push(b'\n');
        let temp = dir.join(TEMP_NAME);
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        out.write_all(&json)?;
        out.sync_all()?;
        let path = dir.join(BASE_FILE);
        std::fs::rename(&temp, &path)?;
        fs::sync_parent_dir(&path)
    }
}

/// Why [`RetentionBase::load`] found no usable base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaseError {
    /// The file could not be read.
    #[error("cannot read {BASE_FILE}: {0}")]
    Io(#[source] io::Error),
    /// The file is there but is not a base; in a verification, a finding.
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> CompactRange {
        let mut tree = CompactRange::new();
        for i in 0..n {
            tree.append(crate::merkle::Hash([i as u8; 32])).unwrap();
        }
        tree
    }

    #[test]
    fn a_saved_base_loads_back_owner_only() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(RetentionBase::load(dir.path()).unwrap().is_none());
        let base = RetentionBase::new(6, Digest([3; 32]), 2, tree(5)).unwrap();
        base.save(dir.path()).unwrap();
        assert_eq!(RetentionBase::load(dir.path()).unwrap(), Some(base));
        let mode = std::fs::metadata(dir.path().join(BASE_FILE))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join(TEMP_NAME).exists());
    }

    #[test]
    fn a_tree_that_is_not_the_retired_records_is_no_base() {
        assert!(RetentionBase::new(6, Digest([3; 32]), 0, tree(4)).is_none());
        assert!(RetentionBase::new(1, Digest([3; 32]), 0, tree(0)).is_none());
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({
            "v": 1, "first_kept_seq": 9, "last_retired_hash": Digest([1; 32]),
            "last_retired_epoch": 0, "tree": tree(5),
        });
        std::fs::write(dir.path().join(BASE_FILE), json.to_string()).unwrap();
        let err = RetentionBase::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, BaseError::Invalid(why) if why.contains("tree of 5")),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_symbolic_links_are_invalid_bases() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BASE_FILE), "{\"v\":1}").unwrap();
        assert!(matches!(
            RetentionBase::load(dir.path()),
            Err(BaseError::Invalid(_))
        ));
        std::fs::remove_file(dir.path().join(BASE_FILE)).unwrap();
        std::fs::write(dir.path().join("elsewhere"), "{}").unwrap();
        std::os::unix::fs::symlink("elsewhere", dir.path().join(BASE_FILE)).unwrap();
        assert!(matches!(
            RetentionBase::load(dir.path()),
            Err(BaseError::Invalid(_))
        ));
    }
}
