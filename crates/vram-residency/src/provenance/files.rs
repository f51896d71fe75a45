//! The model directory as provenance checks see it: relative file names
//! checked for traversal, a bounded walk that refuses symbolic links and
//! special files, and digests of files opened without following links.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use audit_logging::Digest;
use sha2::{Digest as _, Sha256};

use super::ProvenanceError;
use crate::model::STREAM_CHUNK_BYTES;

/// Most files a model directory may hold for a signature check: far more
/// than any published checkpoint has, few enough that a hostile tree cannot
/// make the walk run for hours.
pub const MAX_MODEL_FILES: usize = 100_000;

/// Deepest directory nesting the walk descends into.
pub const MAX_MODEL_DEPTH: usize = 32;

/// Checks that `name` is a relative path of normal components, `/`
/// separated, that stays inside the model directory.
pub(crate) fn check_relative_name(name: &str) -> Result<(), ProvenanceError> {
    let unsafe_name = |reason: &'static str| ProvenanceError::UnsafeName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(unsafe_name("empty name"));
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(unsafe_name("NUL or backslash in name"));
    }
    if name.starts_with('/') {
        return Err(unsafe_name("absolute path"));
    }
    for part in name.split('/') {
        match part {
            "" => return Err(unsafe_name("empty path component")),
            "." | ".." => return Err(unsafe_name("`.` or `..` component")),
            _ => {}
        }
    }
    // Belt and braces: the platform's own reading of the path must agree.
    if Path::new(name)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(unsafe_name("not a plain relative path"));
    }
    Ok(())
}

/// Every regular file under `dir`, as `/`-separated names relative to it,
/// except those equal to or under an entry of `ignored`. A symbolic link or
/// a special file anywhere (outside ignored paths) is an error.
pub(crate) fn list_files(
    dir: &Path,
    ignored: &BTreeSet<String>,
) -> Result<BTreeSet<String>, ProvenanceError> {
    let mut found = BTreeSet::new();
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, prefix, depth)) = pending.pop() {
        let io = |source| ProvenanceError::Io {
            path: path.clone(),
            source,
        };
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(ProvenanceError::UnsafeName {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    reason: "not UTF-8",
                });
            };
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if is_ignored(&relative, ignored) {
                continue;
            }
            let kind = entry.file_type().map_err(io)?;
            if kind.is_symlink() {
                return Err(ProvenanceError::Symlink { path: entry.path() });
            } else if kind.is_dir() {
                if depth >= MAX_MODEL_DEPTH {
                    return Err(ProvenanceError::TooDeep {
                        path: entry.path(),
                        limit: MAX_MODEL_DEPTH,
                    });
                }
                pending.push((entry.path(), relative, depth.saturating_add(1)));
            } else if kind.is_file() {
                if found.len() >= MAX_MODEL_FILES {
                    return Err(ProvenanceError::TooManyFiles {
                        limit: MAX_MODEL_FILES,
                    });
                }
                found.insert(relative);
            } else {
                return Err(ProvenanceError::NotRegular { path: entry.path() });
            }
        }
    }
    Ok(found)
}

/// Whether `name` is one of `ignored` or lies under one of them.
fn is_ignored(name: &str, ignored: &BTreeSet<String>) -> bool {
    ignored.iter().any(|i| {
        name == i
            || name
                .strip_prefix(i.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The path of `name` (checked by [`check_relative_name`]) inside `dir`.
pub(crate) fn join(dir: &Path, name: &str) -> PathBuf {
    name.split('/')
        .fold(dir.to_path_buf(), |p, part| p.join(part))
}

/// SHA-256 of the regular file `path`, opened without following a final
/// symbolic link. A missing file is [`ProvenanceError::MissingFile`] for
/// `name`.
pub(crate) fn digest_file(path: &Path, name: &str) -> Result<Digest, ProvenanceError> {
    let io = |source| ProvenanceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProvenanceError::MissingFile {
                file: name.to_owned(),
            });
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ProvenanceError::Symlink {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Err(ProvenanceError::NotRegular {
            path: path.to_owned(),
        });
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; STREAM_CHUNK_BYTES];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(Digest(hasher.finalize().into()))
}

/// Opens `path` for reading; a final symbolic link fails with `ELOOP`, and
/// a FIFO does not block the open.
pub(crate) fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Reads the whole regular file `path`, refusing one over `limit` bytes
/// before reading it. `too_large` makes the error from the size found.
pub(crate) fn read_bounded(
    path: &Path,
    limit: u64,
    too_large: impl FnOnce(u64) -> ProvenanceError,
) -> Result<Vec<u8>, ProvenanceError> {
    let io = |source| ProvenanceError::Io {
        path: path.to_owned(),
        source,
    };
    let file = open_no_follow(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ProvenanceError::NotRegular {
            path: path.to_owned(),
        });
    }
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::new();
    // The file may grow after the size check; never read past the limit.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(too_large(read));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_absolute_names_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "a\0b",
            ".",
        ] {
            assert!(check_relative_name(bad).is_err(), "{bad:?}");
        }
        for good in ["model.safetensors", "sub/dir/x.bin", "..hidden", "a..b"] {
            check_relative_name(good).unwrap();
        }
    }

    #[test]
    fn listing_skips_ignored_paths_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/.git")).unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("sub/b"), b"b").unwrap();
        std::fs::write(dir.path().join("sub/.git/c"), b"c").unwrap();
        let ignored = BTreeSet::from(["sub/.git".to_owned()]);
        let files = list_files(dir.path(), &ignored).unwrap();
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            vec!["a".to_owned(), "sub/b".to_owned()]
        );

        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub/link")).unwrap();
        let err = list_files(dir.path(), &ignored).unwrap_err();
        assert!(matches!(err, ProvenanceError::Symlink { .. }), "{err}");
        let err = digest_file(&dir.path().join("sub/link"), "sub/link").unwrap_err();
        assert!(matches!(err, ProvenanceError::Symlink { .. }), "{err}");
    }

    #[test]
    fn an_ignored_prefix_is_a_path_not_a_string_prefix() {
        let ignored = BTreeSet::from([".git".to_owned()]);
        assert!(is_ignored(".git", &ignored));
        assert!(is_ignored(".git/config", &ignored));
        assert!(!is_ignored(".gitignore", &ignored));
    }

    #[test]
    fn bounded_read_refuses_large_files_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        let err = read_bounded(&path, 99, |found| ProvenanceError::BundleTooLarge {
            bytes: found,
            limit: 99,
        })
        .unwrap_err();
        assert!(
            matches!(err, ProvenanceError::BundleTooLarge { bytes: 100, .. }),
            "{err}"
        );
        assert_eq!(
            read_bounded(&path, 100, |_| unreachable!()).unwrap().len(),
            100
        );
    }
}
