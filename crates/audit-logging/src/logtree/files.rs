//! Where checkpoints live: `checkpoints/<tree size, 20 digits>.note`.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::checkpoint::MAX_NOTE_BYTES;
use crate::store::fs;

/// The subdirectory of the audit directory that holds checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";

const SUFFIX: &str = ".note";

/// Name of the temporary file a checkpoint is written to before it is
/// renamed into place; a leftover one (from a crash) is replaced.
const TEMP_NAME: &str = "checkpoint.tmp";

/// The file name of the checkpoint for a tree of `size` records.
pub fn checkpoint_name(size: u64) -> String {
    format!("{size:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The checkpoints stored in the audit directory `dir`, smallest tree
/// first, with the tree size each file name claims. Empty when there is no
/// checkpoint directory; other files in it are ignored.
///
/// A checkpoint directory that is a symbolic link is refused rather than
/// followed: the writer never makes one, and following it would let whoever
/// planted it choose which checkpoints a verifier sees.
pub fn list_checkpoints(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let cp_dir = dir.join(CHECKPOINT_DIR);
    match std::fs::symlink_metadata(&cp_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is a symbolic link, which the audit writer never makes; \
                     find out who replaced the directory and where it points",
                    cp_dir.display()
                ),
            ));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a directory", cp_dir.display()),
            ));
        }
        Ok(_) => {}
    }
    let entries = std::fs::read_dir(&cp_dir)?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(size) = entry.file_name().to_str().and_then(parse_name) {
            found.push((size, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The stored checkpoint with the largest tree, if any.
pub fn latest_checkpoint(dir: &Path) -> io::Result<Option<(u64, PathBuf)>> {
    Ok(list_checkpoints(dir)?.pop())
}

/// Reads a checkpoint file, refusing symbolic links, non-files and anything
/// longer than a signed note may be
/// ([`MAX_NOTE_BYTES`](crate::checkpoint::MAX_NOTE_BYTES)).
pub fn read_checkpoint(path: &Path) -> io::Result<Vec<u8>> {
    let file = fs::open_read(path)?;
    let limit = (MAX_NOTE_BYTES as u64).saturating_add(1);
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_NOTE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than the {MAX_NOTE_BYTES}-byte limit of a signed note"),
        ));
    }
    Ok(bytes)
}

/// Writes `note` as the checkpoint for `size` records, durably: a `0600`
/// temporary file, fsynced, renamed into place, directory fsynced.
pub(crate) fn write_checkpoint(dir: &Path, size: u64, note: &str) -> io::Result<PathBuf> {
    let cp_dir = dir.join(CHECKPOINT_DIR);
    fs::ensure_private_dir(&cp_dir)?;
    let temp = cp_dir.join(TEMP_NAME);
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)?;
    file.write_all(note.as_bytes())?;
    file.sync_all()?;
    let path = cp_dir.join(checkpoint_name(size));
    std::fs::rename(&temp, &path)?;
    fs::sync_parent_dir(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_directory_that_is_a_link_or_a_file_is_refused() {
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join(checkpoint_name(1)), "planted").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(CHECKPOINT_DIR)).unwrap();
        let err = list_checkpoints(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CHECKPOINT_DIR), "not a directory").unwrap();
        let err = list_checkpoints(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn names_sort_by_size_and_only_canonical_names_count() {
        assert_eq!(checkpoint_name(42), "00000000000000000042.note");
        assert_eq!(parse_name(&checkpoint_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "42.note",
            "0000000000000000004x.note",
            "00000000000000000042.tmp",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkpoints_are_owner_only_and_replace_a_stale_temp_file() {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join(CHECKPOINT_DIR))
            .unwrap();
        std::fs::write(dir.path().join(CHECKPOINT_DIR).join(TEMP_NAME), "stale").unwrap();
        let path = write_checkpoint(dir.path(), 7, "note\n").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_checkpoint(&path).unwrap(), b"note\n");
        assert_eq!(list_checkpoints(dir.path()).unwrap(), vec![(7, path)]);
        assert!(!dir.path().join(CHECKPOINT_DIR).join(TEMP_NAME).exists());
    }

    #[test]
    fn a_checkpoint_and_its_directory_are_made_durable_in_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        let mut path = None;
        let synced = crate::store::fs::tests::entries_synced_by(|| {
            path = Some(write_checkpoint(dir.path(), 3, "note\n").unwrap());
        });
        assert_eq!(synced, [dir.path().join(CHECKPOINT_DIR), path.unwrap()]);
    }
}
