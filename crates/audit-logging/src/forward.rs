//! Forward-secure record keys.
//!
//! Records are not authenticated with the [`AuditKey`] itself but with an
//! [`EpochKey`] that moves forward through a one-way chain:
//!
//! ```text
//! k[0]   = HMAC-SHA256(audit key, "sealtrail/forward/seed/v1")
//! k[e+1] = HMAC-SHA256(k[e],      "sealtrail/forward/evolve/v1")
//! ```
//!
//! Each record names its epoch `e` (the `ep` field) and carries a mac made
//! with `k[e]`. The writer holds only the current `k[e]`; when it moves to
//! the next epoch it overwrites the old key in memory and replaces the
//! on-disk copy (the file [`WRITER_KEY_FILE`] in the audit directory). Since
//! HMAC cannot be inverted, whoever steals the writer's key at epoch `e`
//! cannot compute `k[e-1]` or any earlier key, and so cannot rewrite a
//! record of an earlier epoch without `verify` reporting it. The verifier
//! starts from the audit key, which `sealtrail keygen` writes to a separate
//! file meant to be kept off the host, and walks the chain forward.
//!
//! This is the construction of Bellare and Yee ("Forward-Security in
//! Private-Key Cryptography", CT-RSA 2003) and of the Schneier–Kelsey secure
//! audit log (USENIX Security 1998), with the per-epoch rather than
//! per-record evolution that systemd-journald's Forward Secure Sealing uses,
//! so that evolving costs nothing on the hot path.
//!
//! The epoch advances after `epoch_records` records or `epoch_interval` of
//! time, whichever comes first (see
//! [`LoggerConfig::epoch`](crate::LoggerConfig::epoch);
//! defaults [`DEFAULT_EPOCH_RECORDS`], [`DEFAULT_EPOCH_INTERVAL`]), and at
//! every logger start.
//!
//! Epoch boundaries are where a thief would strike: holding `k[e]`, they
//! could claim that epoch `e` began at any earlier record and rewrite from
//! there. So the first record of every epoch after the first also carries
//! an `xmac` made with the *previous* epoch's key, and the verifier accepts
//! a record in epoch `e+1` after one in epoch `e` only with that consent.
//! Consecutive records are thus in the same epoch or in the next one, with
//! the handover vouched for; the thief can forge neither the consent for an
//! earlier boundary nor a record of an earlier epoch. What stays open to
//! them is the epoch they stole (up to `epoch_records` records or
//! `epoch_interval` of time before the theft) and, because the chain runs
//! forward, every later epoch too: a stolen key protects nothing written
//! after the theft. Only a checkpoint exported before the forgery (an
//! anchor) catches that, which is why a suspected theft means a new trail.
//!
//! The writer makes the handover record durable before it saves the next
//! key and forgets the current one, so a crash never leaves a log it cannot
//! continue.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::store::fs::read_secret_file;
use crate::{AuditKey, KeyError, KeyId};

/// Records per epoch unless configured otherwise.
///
/// A thief of the writer's key can rewrite at most the epoch they stole
/// of what was written before the theft. Each
/// evolution replaces the key file with two fsyncs; at 10 000 records that
/// costs a few percent of writer throughput at most, while a busy log's
/// window stays a few milliseconds of records.
pub const DEFAULT_EPOCH_RECORDS: u64 = 10_000;

/// Time after which the key evolves with the next record, unless
/// configured otherwise: bounds the stretch of a quiet log that a key thief
/// could rewrite.
pub const DEFAULT_EPOCH_INTERVAL: Duration = Duration::from_secs(60);

/// The writer's current epoch key, in the audit directory.
pub const WRITER_KEY_FILE: &str = "writer.key";

/// The message the audit key MACs to make the key of epoch 0.
pub const SEED_DOMAIN: &[u8] = b"sealtrail/forward/seed/v1";
/// The message each epoch key MACs to make the next epoch's key.
pub const EVOLVE_DOMAIN: &[u8] = b"sealtrail/forward/evolve/v1";
const WRITER_KEY_HEADER: &str = "sealtrail-writer-key v1";
const MAX_WRITER_KEY_FILE_BYTES: u64 = 512;

type HmacSha256 = Hmac<Sha256>;

/// The key of one epoch. See the [module docs](self).
#[derive(Clone)]
pub struct EpochKey {
    epoch: u64,
    key: Zeroizing<[u8; 32]>,
    /// HMAC-SHA256 with `key` already absorbed, cloned for each mac: the
    /// two compressions of the key's inner and outer pads happen once per
    /// epoch instead of once per record. It is exactly as secret as `key`
    /// (it computes the same macs), lives exactly as long, and, like every
    /// copy made from it, wipes itself on drop (the `zeroize` features of
    /// `hmac` and `sha2`).
    keyed: HmacSha256,
    origin: KeyId,
}

impl fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EpochKey {{ origin: {}, epoch: {}, key: <redacted> }}",
            self.origin, self.epoch
        )
    }
}

impl EpochKey {
    fn new(epoch: u64, key: Zeroizing<[u8; 32]>, origin: KeyId) -> Self {
        let keyed = keyed_hmac(&key);
        EpochKey {
            epoch,
            key,
            keyed,
            origin,
        }
    }

    /// The key of epoch 0, derived from the audit key.
    pub fn first(initial: &AuditKey) -> Self {
        EpochKey::new(0, Zeroizing::new(initial.mac(SEED_DOMAIN)), initial.id())
    }

    /// The key of `epoch`, derived from the audit key in `epoch` steps.
    ///
    /// Returns `None` past `max_steps`, so a forged epoch number cannot make
    /// a caller compute for ever.
    pub fn at(initial: &AuditKey, epoch: u64, max_steps: u64) -> Option<Self> {
        if epoch > max_steps {
            return None;
        }
        let mut key = EpochKey::first(initial);
        while key.epoch < epoch {
            key.evolve()?;
        }
        Some(key)
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id of the audit key this chain started from.
    pub fn origin(&self) -> &KeyId {
        &self.origin
    }

    /// Moves to the next epoch, overwriting this epoch's key. `None` (and
    /// no change) when the epoch counter is exhausted.
    pub fn evolve(&mut self) -> Option<()> {
        let next_epoch = self.epoch.checked_add(1)?;
        let next = Zeroizing::new(<[u8; 32]>::from(
            self.hmac()
                .chain_update(EVOLVE_DOMAIN)
                .finalize()
                .into_bytes(),
        ));
        *self.key = *next;
        self.keyed = keyed_hmac(&self.key);
        self.epoch = next_epoch;
        Some(())
    }

    /// HMAC-SHA256 of `data` under this epoch's key.
    pub(crate) fn mac(&self, data: &[u8]) -> [u8; 32] {
        self.hmac()
            .chain_update(data)
            .finalize()
            .into_bytes()
            .into()
    }

    /// HMAC-SHA256 of the concatenation of `parts`, without copying them
    /// into one buffer.
    pub(crate) fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.hmac();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Checks `tag` against the HMAC of `data` in constant time.
    pub(crate) fn verify_mac(&self, data: &[u8], tag: &[u8]) -> bool {
        self.hmac().chain_update(data).verify_slice(tag).is_ok()
    }

    fn hmac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// Replaces the key file at `path` with this key: written to a
    /// temporary file (mode `0600`), fsynced, renamed over the old one, and
    /// the directory fsynced, so a crash leaves either the old key or the
    /// new one, never a mix.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("key.tmp");
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let text = Zeroizing::new(format!(
            "{WRITER_KEY_HEADER}\n{}\n{}\n{}\n",
            self.origin,
            self.epoch,
            hex::encode(self.key.as_ref())
        ));
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            // A full disk leaves no half-written key file behind; the next
            // save would replace it anyway, but an operator should not
            // have to wonder what it is.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        crate::store::fs::sync_parent_dir(path)
    }

    /// Reads a key file written by [`save`](Self::save), refusing symbolic
    /// links, FIFOs and files that group or others may read.
    pub(crate) fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read_secret_file(path, MAX_WRITER_KEY_FILE_BYTES)
            .map_err(|e| KeyError::from_secret_file(path, e))?;
        parse_writer_key(&text).map_err(|reason| KeyError::Malformed {
            path: path.to_owned(),
            reason,
        })
    }
}

fn parse_writer_key(text: &str) -> Result<EpochKey, &'static str> {
    let mut lines = text.lines();
    if lines.next() != Some(WRITER_KEY_HEADER) {
        return Err("the first line must be `sealtrail-writer-key v1`");
    }
    let origin = lines.next().ok_or("the origin key id is missing")?;
    if origin.len() != 16 || !origin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the origin key id must be 16 hexadecimal characters");
    }
    let epoch = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("the epoch line must be a number")?;
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(lines.next().ok_or("the key line is missing")?, key.as_mut())
        .map_err(|_| "the key line must be 64 hexadecimal characters")?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected text after the key line");
    }
    Ok(EpochKey::new(epoch, key, KeyId::from_hex(origin)))
}

/// HMAC-SHA256 keyed with `key`, before any data.
fn keyed_hmac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback
    // keeps the crate free of panics all the same.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn evolving_is_deterministic_from_the_audit_key() {
        let initial = AuditKey::generate().unwrap();
        let mut walked = EpochKey::first(&initial);
        for _ in 0..5 {
            walked.evolve().unwrap();
        }
        let jumped = EpochKey::at(&initial, 5, 10).unwrap();
        assert_eq!(walked.epoch(), 5);
        assert_eq!(walked.mac(b"x"), jumped.mac(b"x"));
        assert_eq!(walked.origin(), &initial.id());
    }

    #[test]
    fn every_epoch_has_a_different_key_and_none_equals_the_audit_key() {
        let initial = AuditKey::generate().unwrap();
        let mut key = EpochKey::first(&initial);
        let mut seen = vec![initial.mac(b"probe")];
        for _ in 0..50 {
            let tag = key.mac(b"probe");
            assert!(!seen.contains(&tag));
            seen.push(tag);
            key.evolve().unwrap();
        }
    }

    /// The keyed state kept for speed must always be the current key's:
    /// each epoch's macs are checked against HMAC-SHA256 computed afresh
    /// from the key bytes, by the documented chain, without `EpochKey`.
    #[test]
    fn macs_are_plain_hmac_under_the_current_epoch_key_after_every_evolution() {
        fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
            HmacSha256::new_from_slice(key)
                .unwrap()
                .chain_update(data)
                .finalize()
                .into_bytes()
                .into()
        }
        let initial = AuditKey::generate().unwrap();
        let mut expected = initial.mac(SEED_DOMAIN);
        let mut key = EpochKey::first(&initial);
        for epoch in 0..4 {
            assert_eq!(key.epoch(), epoch);
            assert_eq!(key.mac(b"record"), hmac(&expected, b"record"));
            assert_eq!(key.mac_parts(&[b"rec", b"ord"]), hmac(&expected, b"record"));
            assert!(key.verify_mac(b"record", &hmac(&expected, b"record")));
            expected = hmac(&expected, EVOLVE_DOMAIN);
            key.evolve().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WRITER_KEY_FILE);
        key.save(&path).unwrap();
        let loaded = EpochKey::load(&path).unwrap();
        assert_eq!(loaded.mac(b"record"), hmac(&expected, b"record"));
    }

    #[test]
    fn deriving_past_the_step_limit_is_refused() {
        let initial = AuditKey::generate().unwrap();
        assert!(EpochKey::at(&initial, 1 << 40, 1000).is_none());
    }

    #[test]
    fn the_epoch_counter_does_not_wrap() {
        let initial = AuditKey::generate().unwrap();
        let mut key = EpochKey::first(&initial);
        key.epoch = u64::MAX;
        assert!(key.evolve().is_none());
        assert_eq!(key.epoch(), u64::MAX);
    }

    #[test]
    fn saved_key_loads_back_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WRITER_KEY_FILE);
        let initial = AuditKey::generate().unwrap();
        let mut key = EpochKey::first(&initial);
        key.save(&path).unwrap();
        key.evolve().unwrap();
        key.save(&path).unwrap();
        let loaded = EpochKey::load(&path).unwrap();
        assert_eq!((loaded.epoch(), loaded.origin()), (1, &initial.id()));
        assert_eq!(loaded.mac(b"x"), key.mac(b"x"));
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_save_that_fails_leaves_no_temporary_key_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the key file should go: the rename
        // over it fails after the temporary file was written.
        let path = dir.path().join(WRITER_KEY_FILE);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("occupied"), "x").unwrap();
        let key = EpochKey::first(&AuditKey::generate().unwrap());
        assert!(key.save(&path).is_err());
        assert!(!path.with_extension("key.tmp").exists());
    }

    #[test]
    fn malformed_writer_key_files_are_refused() {
        for text in [
            "",
            "sealtrail-writer-key v1\n",
            "sealtrail-writer-key v1\n0123456789abcdef\nx\n",
            "sealtrail-writer-key v1\n0123456789abcdef\n3\nzz\n",
            "sealtrail-writer-key v1\nnot-an-id\n3\n",
        ] {
            assert!(parse_writer_key(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = EpochKey::first(&AuditKey::from_bytes([0xab; 32]));
        let shown = format!("{key:?}");
        assert!(shown.contains("redacted") && !shown.contains(&hex::encode(*key.key)));
    }
}

#[cfg(test)]
mod attack_tests;
