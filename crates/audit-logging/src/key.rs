//! The secret key that authenticates records.
//!
//! An [`AuditKey`] is 32 random bytes. It lives in a small text file that
//! `sealtrail keygen` (or [`AuditKey::save_new`]) creates with mode `0600`;
//! loading refuses a file that group or others can read, and never follows a
//! symbolic link. The key is zeroized when dropped and its `Debug` output is
//! redacted; only its [`KeyId`], a one-way fingerprint, ever appears in
//! records, logs or messages.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::store::fs::{SecretFileError, read_secret_file, write_new_secret_file};

/// First line of a key file; names the format so it can change later.
const KEY_FILE_HEADER: &str = "sealtrail-audit-key v1";

/// Domain tag for the key fingerprint, so it can never equal a MAC or digest
/// computed elsewhere from the same bytes.
const KEY_ID_DOMAIN: &[u8] = b"sealtrail/audit-key-id/v1\0";

/// A key file is a header line and 64 hex characters; anything much longer
/// is not a key file and is not read into memory.
const MAX_KEY_FILE_BYTES: u64 = 256;

type HmacSha256 = Hmac<Sha256>;

/// Why a key could not be created, loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("cannot read the operating system's random source: {0}")]
    Random(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error(
        "key file {path} has mode {mode:04o}, which lets other users read it; \
         run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file exists but is not a sealtrail key.
    #[error("key file {path} is not a sealtrail audit key: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The public fingerprint of an [`AuditKey`]: 16 hex characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// A fingerprint read back from a file; the caller checked it is hex.
    pub(crate) fn from_hex(hex: &str) -> Self {
        KeyId(hex.to_ascii_lowercase())
    }

    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// The secret that authenticates records. See the [module docs](self).
#[derive(Clone)]
pub struct AuditKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditKey {{ id: {}, bytes: <redacted> }}", self.id())
    }
}

impl AuditKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(AuditKey { bytes })
    }

    /// A key from raw bytes, for callers that keep keys elsewhere (a secret
    /// manager, an HSM export). The caller's copy is not zeroized.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AuditKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The key's public fingerprint.
    pub fn id(&self) -> KeyId {
        let mut h = Sha256::new();
        h.update(KEY_ID_DOMAIN);
        h.update(self.bytes.as_ref());
        let digest = h.finalize();
        KeyId(hex::encode(digest.get(..8).unwrap_or_default()))
    }

    /// HMAC-SHA256 of `data` under this key.
    pub(crate) fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.hmac();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn hmac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail; the fallback
        // keeps the crate free of panics all the same.
        HmacSha256::new_from_slice(self.bytes.as_ref())
            .unwrap_or_else(|_| HmacSha256::new(&Default::default()))
    }

    /// Writes the key to a new file at `path` with mode `0600`.
    ///
    /// Refuses to overwrite an existing file or to follow a symbolic link.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        let mut text = Zeroizing::new(format!("{KEY_FILE_HEADER}\n"));
        text.push_str(&hex::encode(self.bytes.as_ref()));
        text.push('\n');
        write_new_secret_file(path, text.as_bytes()).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a key file written by [`save_new`](Self::save_new).
    ///
    /// Refuses symbolic links, FIFOs and other non-files, and files that
    /// group or others may read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read_secret_file(path, MAX_KEY_FILE_BYTES)
            .map_err(|e| KeyError::from_secret_file(path, e))?;
        parse_key_file(&text).map_err(|reason| KeyError::Malformed {
            path: path.to_owned(),
            reason,
        })
    }
}

impl KeyError {
    /// The error for a key file that [`read_secret_file`] refused.
    pub(crate) fn from_secret_file(path: &Path, err: SecretFileError) -> Self {
        let path = path.to_owned();
        match err {
            SecretFileError::Io(source) => KeyError::Io { path, source },
            SecretFileError::Insecure { mode } => KeyError::InsecurePermissions { path, mode },
            SecretFileError::NotRegular => KeyError::Malformed {
                path,
                reason: "not a regular file",
            },
            SecretFileError::TooLarge => KeyError::Malformed {
                path,
                reason: "too large to be a key file",
            },
            SecretFileError::NotText => KeyError::Malformed {
                path,
                reason: "not UTF-8 text",
            },
        }
    }
}

fn parse_key_file(text: &str) -> Result<AuditKey, &'static str> {
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_HEADER) {
        return Err("the first line must be `sealtrail-audit-key v1`");
    }
    let hex_key = lines.next().ok_or("the key line is missing")?.trim();
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected text after the key line");
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key, bytes.as_mut())
        .map_err(|_| "the key line must be 64 hexadecimal characters")?;
    Ok(AuditKey { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saved_key_loads_back_with_the_same_id_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let key = AuditKey::generate().unwrap();
        key.save_new(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(AuditKey::load(&path).unwrap().id(), key.id());
    }

    #[test]
    fn save_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        AuditKey::generate().unwrap().save_new(&path).unwrap();
        assert!(matches!(
            AuditKey::generate().unwrap().save_new(&path),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn world_readable_key_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        AuditKey::generate().unwrap().save_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = AuditKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn symlinked_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        AuditKey::generate().unwrap().save_new(&real).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(AuditKey::load(&link).is_err());
    }

    #[test]
    fn a_fifo_in_place_of_the_key_file_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&path)
            .status();
        assert!(made.unwrap().success());
        let err = AuditKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_symlink_refusal_says_what_happened() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        AuditKey::generate().unwrap().save_new(&real).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = AuditKey::load(&link).unwrap_err();
        let shown = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(shown.contains("symbolic link"), "{shown}");
    }

    #[test]
    fn malformed_key_files_are_refused() {
        for text in [
            "",
            "sealtrail-audit-key v1\n",
            "sealtrail-audit-key v1\nzz\n",
            "other\n00\n",
        ] {
            assert!(parse_key_file(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = AuditKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn macs_depend_on_the_key_and_the_data() {
        let key = AuditKey::generate().unwrap();
        assert_eq!(key.mac(b"record"), key.mac(b"record"));
        assert_ne!(key.mac(b"record"), key.mac(b"recorD"));
        assert_ne!(
            key.mac(b"record"),
            AuditKey::generate().unwrap().mac(b"record")
        );
    }
}
