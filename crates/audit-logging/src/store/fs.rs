//! File-system operations with the care an audit store needs: owner-only
//! permissions, no symbolic links followed, and directory entries made
//! durable with an fsync of the directory itself.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode `0700` if it is missing, and
/// checks that what is there is a real directory, not a link to one, that
/// no other user can write to.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link; give the real directory",
        )),
        Ok(meta) if !meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "exists and is not a directory",
        )),
        // Others reading the directory see only file names (segments are
        // 0600); others writing to it could delete or replace segments.
        Ok(meta) if meta.mode() & 0o022 != 0 => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "has mode {:04o}, which lets other users delete or replace segments; \
                 run `chmod 700 {}`",
                meta.mode() & 0o7777,
                dir.display()
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Each directory created is a new entry in its parent, and each
            // entry must survive a power loss, not only the last one.
            let missing: Vec<&Path> = dir
                .ancestors()
                .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
                .collect();
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            missing.into_iter().try_for_each(sync_parent_dir)
        }
        Err(e) => Err(e),
    }
}

/// Opens an existing file for appending, refusing symbolic links.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(explain_symlink)
}

/// Turns the bare `ELOOP` that `O_NOFOLLOW` gives for a symbolic link into
/// an error that says what happened and what to do.
pub(crate) fn explain_symlink(err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link, which is never followed; give the real path",
        )
    } else {
        err
    }
}

/// Opens an existing file for reading and writing (to cut a torn tail),
/// refusing symbolic links and anything that is not a regular file.
pub(crate) fn open_read_write(path: &Path) -> io::Result<File> {
    open_regular(OpenOptions::new().read(true).write(true), path)
}

/// Opens a file for reading, refusing symbolic links and anything that is not
/// a regular file.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    open_regular(OpenOptions::new().read(true), path)
}

/// Opens `path` as `options` say, never through a symbolic link, and
/// refuses anything but a regular file. O_NONBLOCK keeps a FIFO planted in
/// place of a file from hanging the open (it is then refused by name
/// instead of failing later as a bad seek); it changes nothing for the
/// regular files that pass the check.
fn open_regular(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(explain_symlink)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Creates a new file with mode `0600` for appending; fails if it exists.
/// The directory entry is made durable before returning.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    sync_parent_dir(path)?;
    Ok(file)
}

/// Creates the segment file `path` like [`create_private`], or takes over
/// the empty, private file an earlier attempt left there when the
/// directory fsync after creating it failed (a full disk), so that the
/// rotation can be retried. A file with anything in it is never reused.
pub(crate) fn create_segment(path: &Path) -> io::Result<File> {
    match create_private(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => return other,
    }
    // O_NONBLOCK: a FIFO planted under the name fails the open instead of
    // hanging it; regular files ignore the flag.
    let file = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(explain_symlink)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() != 0 || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not the empty, private segment a failed rotation leaves; \
             move it out of the audit directory",
        ));
    }
    sync_parent_dir(path)?;
    Ok(file)
}

/// Opens (creating with mode `0600` if needed) the lock file of a store,
/// refusing symbolic links.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(explain_symlink)
}

/// Fsyncs the directory holding `path`, so a created, renamed or removed
/// entry survives a power loss.
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()?;
    #[cfg(test)]
    tests::SYNCED.with(|synced| synced.borrow_mut().push(path.to_owned()));
    Ok(())
}

/// The permission bits of an open file.
pub(crate) fn mode_of(file: &File) -> io::Result<u32> {
    Ok(file.metadata()?.mode() & 0o7777)
}

/// Why a secret file (a key) could not be read.
#[derive(Debug)]
pub(crate) enum SecretFileError {
    /// The OS refused (missing file, a symbolic link, ...).
    Io(io::Error),
    /// A directory, FIFO, device or socket stands where the file should be.
    NotRegular,
    /// Group or others may read or write it.
    Insecure {
        /// Its permission bits.
        mode: u32,
    },
    /// It is longer than any key file can be.
    TooLarge,
    /// It is not UTF-8 text.
    NotText,
}

/// Reads a small secret file into memory that is zeroized when dropped.
///
/// Never follows a symbolic link, never waits on a FIFO (`O_NONBLOCK`),
/// refuses anything but a regular file that only its owner can access, and
/// reads at most `max_bytes`.
pub(crate) fn read_secret_file(
    path: &Path,
    max_bytes: u64,
) -> Result<zeroize::Zeroizing<String>, SecretFileError> {
    use std::io::Read as _;

    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| SecretFileError::Io(explain_symlink(e)))?;
    let meta = file.metadata().map_err(SecretFileError::Io)?;
    if !meta.is_file() {
        return Err(SecretFileError::NotRegular);
    }
    if meta.mode() & 0o077 != 0 {
        return Err(SecretFileError::Insecure {
            mode: meta.mode() & 0o7777,
        });
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(SecretFileError::Io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(SecretFileError::TooLarge);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretFileError::NotText)?;
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

/// Creates a secret file that must not exist yet (mode `0600`, no symbolic
/// link followed), writes `contents`, and makes file and entry durable.
pub(crate) fn write_new_secret_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(explain_symlink)?;
    file.write_all(contents)?;
    file.sync_all()?;
    sync_parent_dir(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::path::PathBuf;

    thread_local! {
        /// Every path whose directory entry this thread made durable.
        pub(crate) static SYNCED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    /// Runs `f` and returns the paths whose entries it made durable.
    pub(crate) fn entries_synced_by(f: impl FnOnce()) -> Vec<PathBuf> {
        SYNCED.with(|synced| synced.borrow_mut().clear());
        f();
        SYNCED.with(|synced| synced.take())
    }

    #[test]
    fn every_directory_created_is_made_durable_in_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a").join("b").join("audit");
        let synced = entries_synced_by(|| super::ensure_private_dir(&deep).unwrap());
        let a = dir.path().join("a");
        assert_eq!(synced, [deep.clone(), deep.parent().unwrap().to_owned(), a]);
    }
}
