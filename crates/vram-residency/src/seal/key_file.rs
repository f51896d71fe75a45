//! Seal key files, for a [`SealKey`] that outlives one process.
//!
//! The file is two lines of text, `sealtrail-seal-key v1` and the key as 64
//! hex characters, made by [`SealKey::save_new`] (or
//! `sealtrail keygen --seal-key-out`) with mode `0600`. Loading never
//! follows a symbolic link, never waits on a FIFO, refuses anything but a
//! regular file that only its owner may access, reads at most
//! [`MAX_KEY_FILE_BYTES`], and wipes every copy of the key text it made.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use zeroize::Zeroizing;

use super::key::{SEAL_KEY_BYTES, SealKey};
use crate::error::KeyError;

/// First line of a seal key file; names the format so it can change.
pub const KEY_FILE_HEADER: &str = "sealtrail-seal-key v1";

/// A key file is a header line and 64 hex characters; anything much longer
/// is not a key file and is not read into memory.
pub const MAX_KEY_FILE_BYTES: u64 = 256;

impl SealKey {
    /// Reads a seal key file written by [`save_new`](Self::save_new). See
    /// the [module docs](self) for what is refused.
    pub fn load(path: &Path) -> Result<SealKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let malformed = |reason| KeyError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    malformed("a symbolic link; key files are not read through links")
                } else {
                    io(e)
                }
            })?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(malformed("not a regular file"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_owned(),
                mode: meta.mode() & 0o7777,
            });
        }
        let mut text = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE_BYTES.saturating_add(1))
            .read_to_end(&mut text)
            .map_err(io)?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_KEY_FILE_BYTES {
            return Err(malformed("too large to be a key file"));
        }
        parse(&text).map_err(malformed)
    }

    /// Writes the key to a new file at `path` with mode `0600`, and makes
    /// it durable. Refuses to overwrite a file or follow a symbolic link.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = Zeroizing::new(format!("{KEY_FILE_HEADER}\n"));
        text.push_str(&Zeroizing::new(hex::encode(self.secret_bytes())));
        text.push('\n');
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

/// The key in a key file's text.
fn parse(text: &[u8]) -> Result<SealKey, &'static str> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text")?;
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_HEADER) {
        return Err("the first line is not `sealtrail-seal-key v1`");
    }
    let hex_key = lines.next().ok_or("no key line")?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected lines after the key");
    }
    let mut bytes = Zeroizing::new([0u8; SEAL_KEY_BYTES]);
    hex::decode_to_slice(hex_key.trim(), bytes.as_mut_slice())
        .map_err(|_| "the key line is not 64 hex characters")?;
    SealKey::from_bytes(bytes.as_slice()).map_err(|_| "wrong key length")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_saved_key_loads_back_with_its_id_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let key = SealKey::generate().unwrap();
        key.save_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(SealKey::load(&path).unwrap().id(), key.id());
        // Never overwritten.
        assert!(matches!(key.save_new(&path), Err(KeyError::Io { .. })));
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        SealKey::generate().unwrap().save_new(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SealKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o640, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_symlinked_or_special_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        SealKey::generate().unwrap().save_new(&real).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = SealKey::load(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = SealKey::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn malformed_key_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let header = KEY_FILE_HEADER;
        let hex64 = "ab".repeat(32);
        for (text, says) in [
            (String::new(), "first line"),
            (format!("sealtrail-audit-key v1\n{hex64}\n"), "first line"),
            (format!("{header}\n"), "no key line"),
            (format!("{header}\n{}\n", "ab".repeat(31)), "64 hex"),
            (format!("{header}\n{hex64}\nextra\n"), "unexpected lines"),
            (format!("{header}\n{}\n", "x".repeat(300)), "too large"),
        ] {
            let path = dir.path().join("k");
            std::fs::write(&path, &text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = SealKey::load(&path).unwrap_err();
            assert!(err.to_string().contains(says), "{text:?}: {err}");
            assert!(!err.to_string().contains(&hex64), "{err}");
            std::fs::remove_file(&path).unwrap();
        }
    }
}
