//! Seals: signed handles to shards resident in device memory.
//!
//! A [`SealedShard`] is what [`VramManager::seal_shard`](crate::VramManager::seal_shard)
//! returns. Its fields are public so callers can read and log them, and may
//! be edited; an HMAC-SHA256 [`Signature`] over their
//! [canonical encoding](encoding) makes any edit visible, and the manager
//! checks the signature before it lets a handle anywhere near device memory.
//!
//! The handle also carries a private slot and generation that name its entry
//! in the manager's allocation table. They are signed with the rest, so a
//! caller cannot point a handle at another shard, and the generation makes a
//! handle kept past [`deallocate`](crate::VramManager::deallocate) stale
//! rather than a reference to whatever reuses the slot.

use std::fmt;

use audit_logging::{DeviceRef, Digest};
use chrono::{DateTime, Utc};
use hmac::Mac as _;

use crate::backend::DeviceIdentity;
use crate::error::{HandleError, KeyError};

pub mod encoding;
mod key;
pub mod key_file;

pub use encoding::SEAL_DOMAIN;
pub use key::{KEY_ID_DOMAIN, KeyId, SEAL_KEY_BYTES, SealKey};

/// Which entry of the manager's allocation table a shard is, and which
/// occupant of that entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ShardHandle {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

/// An HMAC-SHA256 tag. Not secret; shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 32]);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// A shard resident in device memory, as sealed by a
/// [`VramManager`](crate::VramManager). See the [module docs](self).
///
/// Only a manager can make one. Cloning is allowed: every clone is the same
/// claim, and all clones go stale together when the shard is deallocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedShard {
    /// The shard's id, unique within the manager's audit trail.
    pub shard_id: String,
    /// The model the shard belongs to.
    pub model_ref: String,
    /// Position of this shard in the model, from 0.
    pub shard_index: u32,
    /// Number of shards in the model.
    pub shard_count: u32,
    /// Resident size in bytes.
    pub bytes: u64,
    /// Where it is resident.
    pub device: DeviceIdentity,
    /// When it was sealed.
    pub sealed_at: DateTime<Utc>,
    /// [Seal digest](crate::digest) of the bytes as resident in device
    /// memory at seal time: a Merkle root over their 16 KiB chunks.
    pub digest: Digest,
    /// Id of the key that signed the seal.
    pub key_id: KeyId,
    /// HMAC-SHA256 over every other field, the private handle included.
    pub signature: Signature,
    pub(crate) handle: ShardHandle,
}

impl SealedShard {
    /// The device as audit events carry it.
    pub fn device_ref(&self) -> DeviceRef {
        self.device.to_device_ref()
    }

    /// Computes the signature over the shard's current fields.
    pub(crate) fn compute_signature(&self, key: &SealKey) -> Result<Signature, KeyError> {
        let mut mac = key.mac()?;
        encoding::encode(self, &mut |bytes: &[u8]| mac.update(bytes));
        Ok(Signature(mac.finalize().into_bytes().into()))
    }

    /// Checks that `key` signed the shard's current fields, in constant time.
    pub(crate) fn authenticate(&self, key: &SealKey) -> Result<(), HandleError> {
        if self.key_id != key.id() {
            return Err(HandleError::KeyMismatch {
                expected: key.id(),
                found: self.key_id,
            });
        }
        let mut mac = key.mac()?;
        encoding::encode(self, &mut |bytes: &[u8]| mac.update(bytes));
        mac.verify_slice(&self.signature.0)
            .map_err(|_| HandleError::BadSignature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::BackendKind;

    pub(crate) fn sample_shard() -> SealedShard {
        SealedShard {
            shard_id: "m#1".into(),
            model_ref: "m".into(),
            shard_index: 1,
            shard_count: 3,
            bytes: 10,
            device: DeviceIdentity {
                kind: BackendKind::HostSimulation,
                index: 0,
                uuid: None,
                name: "sim".into(),
            },
            sealed_at: DateTime::from_timestamp(1_700_000_000, 5).unwrap(),
            digest: Digest([0x11; 32]),
            key_id: KeyId::from_bytes([0x22; 8]),
            signature: Signature([0; 32]),
            handle: ShardHandle {
                slot: 4,
                generation: 9,
            },
        }
    }

    fn signed(key: &SealKey) -> SealedShard {
        let mut shard = sample_shard();
        shard.key_id = key.id();
        shard.signature = shard.compute_signature(key).unwrap();
        shard
    }

    #[test]
    fn signature_round_trips() {
        let key = SealKey::generate().unwrap();
        signed(&key).authenticate(&key).unwrap();
    }

    #[test]
    fn editing_the_private_handle_breaks_the_signature() {
        let key = SealKey::generate().unwrap();
        let edits: [fn(&mut SealedShard); 2] =
            [|s| s.handle.slot = 5, |s| s.handle.generation = 10];
        for edit in edits {
            let mut shard = signed(&key);
            edit(&mut shard);
            assert!(matches!(
                shard.authenticate(&key),
                Err(HandleError::BadSignature)
            ));
        }
    }

    #[test]
    fn another_key_is_refused_by_id_and_by_mac() {
        let key = SealKey::generate().unwrap();
        let other = SealKey::generate().unwrap();
        let shard = signed(&key);
        assert!(matches!(
            shard.authenticate(&other),
            Err(HandleError::KeyMismatch { .. })
        ));
        let mut relabelled = shard.clone();
        relabelled.key_id = other.id();
        assert!(matches!(
            relabelled.authenticate(&other),
            Err(HandleError::BadSignature)
        ));
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_encoding() {
        let key = SealKey::from_bytes(&[3u8; 32]).unwrap();
        let shard = signed(&key);
        let mut mac = <key::HmacSha256 as hmac::KeyInit>::new_from_slice(&[3u8; 32]).unwrap();
        encoding::encode(&shard, &mut |b: &[u8]| mac.update(b));
        assert_eq!(
            shard.signature.0,
            <[u8; 32]>::from(mac.finalize().into_bytes())
        );
    }
}
