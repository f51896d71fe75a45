//! The Ed25519 key that signs checkpoints, and its key file.
//!
//! A [`CheckpointSigner`] is a key name and an Ed25519 private key. It is
//! separate from the [`AuditKey`](crate::AuditKey) that authenticates
//! records: that one must stay secret to verify, while this one's public
//! half is handed out so anyone can check checkpoints.
//!
//! The key file is two lines: a header naming the format, and the *signer
//! key* in the encoding of Go's `golang.org/x/mod/sumdb/note`,
//! `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || 32-byte seed)>`, so a key
//! can move between sealtrail and other signed-note tools. A file holding
//! only that line is read as well. Like the record key file, it is created
//! with mode `0600`, never through a symbolic link, and refused when group
//! or others may read it. The key is zeroized when dropped, `Debug` shows
//! only its name and key hash, and errors about a signer key never quote it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey};
use zeroize::Zeroizing;

use super::name::{KeyHash, KeyName, KeyNameError, SIGNATURE_TYPE_ED25519};
use super::note::{self, NoteError};
use super::tlog::Checkpoint;
use super::verifier::NoteVerifier;
use crate::store::fs::{SecretFileError, read_secret_file, write_new_secret_file};

/// First line of a checkpoint key file; names the format so it can change.
const KEY_FILE_HEADER: &str = "sealtrail-checkpoint-key v1";

/// Starts every signer key, so it is never mistaken for a verifier key.
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// A key file is a header and one signer key line; a key name of a few
/// hundred bytes still fits. Anything longer is not read into memory.
const MAX_KEY_FILE_BYTES: usize = 4096;

/// Length of an encoded seed: the type byte and 32 bytes.
const ENCODED_SEED_BYTES: usize = 33;

/// Length of [`ENCODED_SEED_BYTES`] in base64.
const ENCODED_SEED_CHARS: usize = 44;

/// Why a checkpoint signing key could not be created, read or saved.
///
/// Messages about a malformed key say what is wrong but quote none of it,
/// since any part of a damaged signer key may be secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerKeyError {
    /// The operating system's random source failed.
    #[error("cannot read the operating system's random source: {0}")]
    Random(String),
    /// The key name is not valid.
    #[error("checkpoint key name is not valid: {0}")]
    Name(#[from] KeyNameError),
    /// The key file could not be read or written.
    #[error("checkpoint key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The key file is readable or writable by group or others.
    #[error(
        "checkpoint key file {path} has mode {mode:04o}, which lets other users read it; \
         run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file exists but does not hold a checkpoint key.
    #[error("checkpoint key file {path} is not valid: {reason}")]
    MalformedFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signer key string is not valid.
    #[error("signer key is not valid: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The key that signs checkpoints. See the [module docs](self).
pub struct CheckpointSigner {
    name: KeyName,
    key_hash: KeyHash,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CheckpointSigner {{ name: {}, key_hash: {}, key: <redacted> }}",
            self.name, self.key_hash
        )
    }
}

impl CheckpointSigner {
    /// A fresh key named `name` from the operating system's random source.
    /// By convention the name is the origin of the log it signs for.
    pub fn generate(name: KeyName) -> Result<Self, SignerKeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| SignerKeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(name, &seed))
    }

    fn from_seed(name: KeyName, seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_hash = KeyHash::ed25519(&name, key.verifying_key().as_bytes());
        CheckpointSigner {
            name,
            key_hash,
            key,
        }
    }

    /// Reads a signer key string,
    /// `PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`.
    pub fn from_signer_key(skey: &str) -> Result<Self, SignerKeyError> {
        parse_signer_key(skey).map_err(|reason| SignerKeyError::Malformed { reason })
    }

    /// The signer key string. It is secret: keep it out of logs.
    pub fn signer_key(&self) -> Zeroizing<String> {
        let mut encoded = Zeroizing::new([0u8; ENCODED_SEED_BYTES]);
        let (kind, seed) = encoded.split_at_mut(1);
        kind.copy_from_slice(&[SIGNATURE_TYPE_ED25519]);
        seed.copy_from_slice(self.key.as_bytes());

        // Room for everything up front, so the string never reallocates and
        // leaves a copy of the key behind.
        let capacity = SIGNER_KEY_PREFIX
            .len()
            .saturating_add(self.name.as_str().len())
            .saturating_add(ENCODED_SEED_CHARS + 10);
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push_str(SIGNER_KEY_PREFIX);
        out.push_str(self.name.as_str());
        out.push('+');
        out.push_str(&self.key_hash.to_string());
        out.push('+');
        let mut base64 = Zeroizing::new([0u8; ENCODED_SEED_CHARS]);
        let len = BASE64
            .encode_slice(encoded.as_ref(), base64.as_mut())
            .unwrap_or_default();
        let chars = base64.get(..len).unwrap_or_default();
        out.push_str(std::str::from_utf8(chars).unwrap_or_default());
        out
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key hash that starts each of this key's signatures.
    pub fn key_hash(&self) -> KeyHash {
        self.key_hash
    }

    /// The public half, to check this key's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier::from_verifying_key(self.name.clone(), self.key.verifying_key())
    }

    /// The verifier key string, `<name>+<key hash>+<base64 key>`, to give to
    /// whoever checks checkpoints (`sealtrail keygen` prints it).
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// Signs `checkpoint` as a signed note.
    ///
    /// The format recommends that the key name equal the checkpoint's
    /// origin; that is the caller's choice and is not checked here.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        note::sign(&checkpoint.to_string(), &[self])
    }

    /// The raw Ed25519 signature of `msg`.
    pub(crate) fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Writes the key to a new file at `path` with mode `0600`.
    ///
    /// Refuses to overwrite an existing file or to follow a symbolic link.
    pub fn save_new(&self, path: &Path) -> Result<(), SignerKeyError> {
        let skey = self.signer_key();
        let mut text = Zeroizing::new(String::with_capacity(
            KEY_FILE_HEADER
                .len()
                .saturating_add(skey.len())
                .saturating_add(2),
        ));
        text.push_str(KEY_FILE_HEADER);
        text.push('\n');
        text.push_str(&skey);
        text.push('\n');
        write_new_secret_file(path, text.as_bytes()).map_err(|source| SignerKeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a key file written by [`save_new`](Self::save_new), or one
    /// holding just a signer key line.
    ///
    /// Refuses symbolic links, files that group or others may read, and
    /// files larger than a key file can be.
    pub fn load(path: &Path) -> Result<Self, SignerKeyError> {
        let malformed = |reason| SignerKeyError::MalformedFile {
            path: path.to_owned(),
            reason,
        };
        let text = read_secret_file(path, MAX_KEY_FILE_BYTES as u64).map_err(|e| match e {
            SecretFileError::Io(source) => SignerKeyError::Io {
                path: path.to_owned(),
                source,
            },
            SecretFileError::Insecure { mode } => SignerKeyError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            },
            SecretFileError::NotRegular => malformed("it is not a regular file"),
            SecretFileError::TooLarge => malformed("it is too large to be a checkpoint key file"),
            SecretFileError::NotText => malformed("it is not UTF-8 text"),
        })?;
        parse_key_file(&text).map_err(malformed)
    }
}

fn parse_key_file(text: &str) -> Result<CheckpointSigner, &'static str> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or("it is empty")?;
    let skey = if first == KEY_FILE_HEADER {
        lines.next().ok_or("the signer key line is missing")?
    } else if first.starts_with(SIGNER_KEY_PREFIX) {
        first
    } else {
        return Err("the first line must be `sealtrail-checkpoint-key v1` or a PRIVATE+KEY line");
    };
    if lines.next().is_some() {
        return Err("unexpected text after the signer key line");
    }
    parse_signer_key(skey)
}

fn parse_signer_key(skey: &str) -> Result<CheckpointSigner, &'static str> {
    let rest = skey
        .strip_prefix(SIGNER_KEY_PREFIX)
        .ok_or("it does not start with `PRIVATE+KEY+`")?;
    let (name, rest) = rest
        .split_once('+')
        .ok_or("it is not of the form PRIVATE+KEY+<name>+<key hash>+<base64 seed>")?;
    let (hash, seed64) = rest
        .split_once('+')
        .ok_or("it is not of the form PRIVATE+KEY+<name>+<key hash>+<base64 seed>")?;
    let name = KeyName::new(name).map_err(|e| e.reason())?;
    let written = KeyHash::parse_hex(hash).ok_or("its key hash is not 8 lowercase hex digits")?;

    // Decode straight into a zeroized buffer of the one valid size.
    let mut encoded = Zeroizing::new([0u8; ENCODED_SEED_BYTES]);
    let len = BASE64
        .decode_slice(seed64, encoded.as_mut())
        .map_err(|_| "its key data is not canonical base64 of 33 bytes")?;
    if len != ENCODED_SEED_BYTES {
        return Err("its key data is not 33 bytes (type byte and 32-byte seed)");
    }
    let (kind, seed) = encoded.split_at(1);
    if kind != [SIGNATURE_TYPE_ED25519] {
        return Err("its signature type is not 0x01 (Ed25519)");
    }
    let mut seed_bytes = Zeroizing::new([0u8; 32]);
    seed_bytes.copy_from_slice(seed);
    let signer = CheckpointSigner::from_seed(name, &seed_bytes);
    if signer.key_hash != written {
        return Err("its key hash does not match its name and key");
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// Published in golang.org/x/mod/sumdb/note's tests and package docs.
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    fn name(s: &str) -> KeyName {
        KeyName::new(s).unwrap()
    }

    #[test]
    fn a_published_signer_key_gives_its_published_verifier_key() {
        let signer = CheckpointSigner::from_signer_key(PETER_SKEY).unwrap();
        assert_eq!(signer.verifier_key(), PETER_VKEY);
        assert_eq!(signer.signer_key().as_str(), PETER_SKEY);
    }

    #[test]
    fn every_truncation_and_one_byte_change_of_a_signer_key_is_refused() {
        let bytes = PETER_SKEY.as_bytes();
        for i in 0..=bytes.len() {
            for j in i + 1..=bytes.len() {
                if (i, j) != (0, bytes.len()) {
                    let part = &PETER_SKEY[i..j];
                    assert!(CheckpointSigner::from_signer_key(part).is_err(), "{part:?}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] = changed[i].wrapping_add(1);
            let text = String::from_utf8(changed).unwrap();
            assert!(
                CheckpointSigner::from_signer_key(&text).is_err(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn signer_key_errors_never_quote_the_key() {
        // A damaged key whose secret part lands where a name or hash goes.
        let secret = "AYEKFALVFGyNhPJEMzD1QIDr";
        for skey in [
            format!("PRIVATE+KEY+{secret}"),
            format!("PRIVATE+KEY+x+{secret}+{secret}"),
            format!("PRIVATE+KEY+{secret} x+c74f20a3+AAAA"),
            format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{secret}"),
        ] {
            let err = CheckpointSigner::from_signer_key(&skey)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("AYEK"), "{err}");
        }
    }

    #[test]
    fn generated_keys_save_and_load_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.key");
        let signer = CheckpointSigner::generate(name("example.com/log")).unwrap();
        signer.save_new(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = CheckpointSigner::load(&path).unwrap();
        assert_eq!(loaded.verifier_key(), signer.verifier_key());
        assert_eq!(loaded.signer_key(), signer.signer_key());
    }

    #[test]
    fn a_file_with_only_a_go_signer_key_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("go.key");
        fs::write(&path, format!("{PETER_SKEY}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            CheckpointSigner::load(&path).unwrap().verifier_key(),
            PETER_VKEY
        );
    }

    #[test]
    fn save_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.key");
        let signer = CheckpointSigner::generate(name("log")).unwrap();
        signer.save_new(&path).unwrap();
        assert!(matches!(
            signer.save_new(&path),
            Err(SignerKeyError::Io { .. })
        ));
    }

    #[test]
    fn group_readable_key_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.key");
        CheckpointSigner::generate(name("log"))
            .unwrap()
            .save_new(&path)
            .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = CheckpointSigner::load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(err.to_string().contains("0640"), "{err}");
    }

    #[test]
    fn symlinked_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        CheckpointSigner::generate(name("log"))
            .unwrap()
            .save_new(&real)
            .unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            CheckpointSigner::load(&link),
            Err(SignerKeyError::Io { .. })
        ));
    }

    #[test]
    fn oversized_and_malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.key");
        fs::write(&path, "x".repeat(MAX_KEY_FILE_BYTES * 4)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = CheckpointSigner::load(&path).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");

        for text in [
            "",
            "sealtrail-checkpoint-key v1\n",
            "sealtrail-checkpoint-key v1\nPRIVATE+KEY+x\n",
            "other\n",
            &format!("sealtrail-checkpoint-key v1\n{PETER_SKEY}\n{PETER_SKEY}\n"),
            &format!("sealtrail-audit-key v1\n{PETER_SKEY}\n"),
        ] {
            assert!(parse_key_file(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let signer = CheckpointSigner::from_signer_key(PETER_SKEY).unwrap();
        let shown = format!("{signer:?}");
        assert!(
            shown.contains("PeterNeumann") && shown.contains("c74f20a3"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
        assert!(
            !shown.contains("AYEK") && !shown.contains("810a"),
            "{shown}"
        );
    }

    #[test]
    fn signatures_verify_under_the_verifier_only() {
        let signer = CheckpointSigner::generate(name("log")).unwrap();
        let sig = signer.sign_bytes(b"hi\n");
        assert!(signer.verifier().verifies(b"hi\n", &sig));
        assert!(!signer.verifier().verifies(b"hi!\n", &sig));
        let other = CheckpointSigner::generate(name("log")).unwrap();
        assert!(!other.verifier().verifies(b"hi\n", &sig));
        assert_ne!(other.key_hash(), signer.key_hash());
    }
}
