//! [`SealKey`]: the secret that signs seals, and [`KeyId`], its public name.
//!
//! A key is 32 random bytes, made fresh per manager by default, so a seal is
//! only good for the process that made it; a key kept in a file
//! ([`key_file`](super::key_file)) serves several. It is zeroized when dropped, never
//! shown by `Debug`, and never logged; only its [`KeyId`] appears in seals and
//! audit events.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit as _};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::KeyError;

/// Length of a seal key in bytes: the output size of SHA-256, the most that
/// HMAC-SHA256 can use without hashing the key first.
pub const SEAL_KEY_BYTES: usize = 32;

/// Domain tag hashed in front of the key to derive its id, so the id is not
/// a hash that any other protocol would compute over the same key.
pub const KEY_ID_DOMAIN: &[u8] = b"sealtrail/vram-residency/key-id/v1";

/// HMAC-SHA256, the seal's MAC.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A non-secret name for a [`SealKey`]: the first 8 bytes of
/// SHA-256([`KEY_ID_DOMAIN`] ‖ key), shown as 16 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// A key id from its bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        KeyId(bytes)
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = audit_logging::hexval::InvalidHex;

    /// Parses the 16 hex characters that `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        audit_logging::hexval::decode(s).map(KeyId)
    }
}

/// The key bytes, wiped when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Secret([u8; SEAL_KEY_BYTES]);

/// The secret that signs seals.
///
/// 32 bytes, fresh per manager by default ([`generate`](Self::generate)), so
/// a seal is only good for the process that made it. Zeroized when dropped,
/// redacted from `Debug`, never logged; only its [`KeyId`] appears in seals
/// and audit events. Not `Clone`: every copy of a key is one more place it
/// could leak from.
pub struct SealKey {
    secret: Secret,
    id: KeyId,
}

impl SealKey {
    /// A fresh random key from the operating system.
    pub fn generate() -> Result<SealKey, KeyError> {
        let mut secret = Secret([0u8; SEAL_KEY_BYTES]);
        getrandom::fill(&mut secret.0).map_err(KeyError::Entropy)?;
        Ok(SealKey::from_secret(secret))
    }

    /// A key from existing material, e.g. one kept in a secret store so that
    /// seals can be checked by a later process. `bytes` must be exactly
    /// [`SEAL_KEY_BYTES`] long; the caller remains responsible for wiping
    /// its own copy.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealKey, KeyError> {
        if bytes.len() != SEAL_KEY_BYTES {
            return Err(KeyError::WrongLength {
                expected: SEAL_KEY_BYTES,
                found: bytes.len(),
            });
        }
        let mut secret = Secret([0u8; SEAL_KEY_BYTES]);
        secret.0.copy_from_slice(bytes);
        Ok(SealKey::from_secret(secret))
    }

    /// The key's public id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key bytes, for writing a key file only.
    pub(super) fn secret_bytes(&self) -> &[u8; SEAL_KEY_BYTES] {
        &self.secret.0
    }

    /// A MAC keyed with this key, ready for the canonical encoding.
    pub(crate) fn mac(&self) -> Result<HmacSha256, KeyError> {
        HmacSha256::new_from_slice(&self.secret.0).map_err(|_| KeyError::Rejected {
            len: SEAL_KEY_BYTES,
        })
    }

    fn from_secret(secret: Secret) -> SealKey {
        let hash = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(secret.0)
            .finalize();
        let mut id = [0u8; 8];
        for (out, byte) in id.iter_mut().zip(hash.iter()) {
            *out = *byte;
        }
        SealKey {
            secret,
            id: KeyId(id),
        }
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = SealKey::generate().unwrap();
        let b = SealKey::generate().unwrap();
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn key_id_is_domain_separated_sha256_prefix() {
        let key = SealKey::from_bytes(&[7u8; 32]).unwrap();
        let mut expected = Sha256::new();
        expected.update(b"sealtrail/vram-residency/key-id/v1");
        expected.update([7u8; 32]);
        let expected = hex::encode(expected.finalize().get(..8).unwrap());
        assert_eq!(key.id().to_string(), expected);
        assert_eq!(key.id().to_string().parse::<KeyId>().unwrap(), key.id());
    }

    #[test]
    fn wrong_length_is_refused() {
        let err = SealKey::from_bytes(&[1u8; 31]).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::WrongLength {
                    expected: 32,
                    found: 31
                }
            ),
            "{err}"
        );
        assert!(SealKey::from_bytes(&[1u8; 33]).is_err());
    }

    #[test]
    fn the_secret_is_wiped_on_drop() {
        // A compile-time check: removing the derive breaks this test.
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Secret>();
        let mut secret = Secret([9u8; SEAL_KEY_BYTES]);
        secret.zeroize();
        assert_eq!(secret.0, [0u8; SEAL_KEY_BYTES]);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let key = SealKey::from_bytes(&[0xabu8; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
