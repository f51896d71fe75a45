//! Removing a retired segment: deleting it, or moving it into an archive
//! directory, durably and without following symbolic links.

use std::io::{self, Read as _, Write as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::RetentionError;
use crate::Digest;
use crate::store::fs;

/// Creates `archive` (`0700`) if it is missing, and refuses a symbolic
/// link, a non-directory, or a directory others can write to.
pub(super) fn check(archive: &Path) -> Result<(), RetentionError> {
    fs::ensure_private_dir(archive).map_err(|source| RetentionError::Io {
        path: archive.to_owned(),
        source,
    })
}

/// Deletes `segment`, or moves it into `archive` when one is given; both
/// directories are fsynced afterwards. `sealed` is the SHA-256 recorded for
/// it, which a copy across file systems must match before the original
/// goes.
pub(super) fn dispose(
    segment: &Path,
    sealed: Option<&Digest>,
    archive: Option<&Path>,
) -> Result<(), RetentionError> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |source| RetentionError::Io { path, source }
    };
    let Some(archive) = archive else {
        std::fs::remove_file(segment).map_err(at(segment))?;
        return fs::sync_parent_dir(segment).map_err(at(segment));
    };
    fs::ensure_private_dir(archive).map_err(at(archive))?;
    let name = segment
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))
        .map_err(at(segment))?;
    let target = archive.join(name);
    // rename() would silently replace an existing file: an archive never
    // loses what it already holds.
    match target.symlink_metadata() {
        Ok(_) => {
            return Err(RetentionError::Io {
                path: target,
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "is already in the archive; move it away first",
                ),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(RetentionError::Io {
                path: target,
                source: e,
            });
        }
    }
    match std::fs::rename(segment, &target) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_checked(segment, &target, sealed)?;
            std::fs::remove_file(segment).map_err(at(segment))?;
        }
        Err(e) => {
            return Err(RetentionError::Io {
                path: target,
                source: e,
            });
        }
    }
    fs::sync_parent_dir(&target).map_err(at(&target))?;
    fs::sync_parent_dir(segment).map_err(at(segment))
}

/// Copies `from` to the new file `to` (mode `0600`), fsyncs it, and checks
/// that what was copied hashes to `sealed`.
fn copy_checked(from: &Path, to: &Path, sealed: Option<&Digest>) -> Result<(), RetentionError> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |source| RetentionError::Io { path, source }
    };
    let mut input = fs::open_read(from).map_err(at(from))?;
    let mut output = fs::create_private(to).map_err(at(to))?;
    let mut sha256 = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RetentionError::Io {
                    path: from.to_owned(),
                    source: e,
                });
            }
        };
        let chunk = buf.get(..n).unwrap_or_default();
        sha256.update(chunk);
        output.write_all(chunk).map_err(at(to))?;
    }
    output.sync_all().map_err(at(to))?;
    let copied = Digest(sha256.finalize().into());
    if let Some(sealed) = sealed
        && copied != *sealed
    {
        return Err(RetentionError::Changed {
            path: from.to_owned(),
            detail: format!("its copy hashes to {copied}, but {sealed} was recorded"),
        });
    }
    Ok(())
}
