//! What happens to a sealed shard after sealing: verification against device
//! memory, deallocation, and (with the `fault-injection` feature) deliberate
//! corruption.
//!
//! Each of these checks the handle first: the key id, then the signature in
//! constant time, then that the table still holds the shard under the
//! handle's generation. A handle that fails any of these never reaches the
//! device.

use audit_logging::Digest;
use subtle::ConstantTimeEq as _;

use super::VramManager;
use crate::backend::VramBackend;
use crate::error::{DeallocError, HandleError, VerifyError};
use crate::policy;
use crate::seal::SealedShard;

/// What a verification makes of a shard that is no longer resident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gone {
    /// A caller's handle to a freed shard: refused and recorded.
    IsAFailure,
    /// Freed between the background pass listing it and checking it.
    IsNews,
}

impl<B: VramBackend> VramManager<B> {
    /// Checks that `shard` is an unedited seal made by this manager, that it
    /// is still resident, and that the digest recomputed from device memory
    /// equals the sealed one.
    ///
    /// Records `vram.seal_verified`, or `vram.seal_verification_failed` with
    /// the reason (and both digests when they differ).
    pub fn verify_sealed(&self, shard: &SealedShard) -> Result<(), VerifyError> {
        self.verify_and_record(shard, Gone::IsAFailure)
    }

    /// [`verify_sealed`](Self::verify_sealed), except that with
    /// [`Gone::IsNews`] a shard deallocated since `shard` was taken from the
    /// table is returned as [`HandleError::Stale`] without being recorded:
    /// for the background pass, which races deallocation by design.
    pub(super) fn verify_and_record(
        &self,
        shard: &SealedShard,
        gone: Gone,
    ) -> Result<(), VerifyError> {
        let outcome = {
            let table = self.table_read();
            self.resolve(&table, shard)
                .map_err(|source| VerifyError::Handle {
                    shard_id: shard.shard_id.clone(),
                    source,
                })
                .and_then(|entry| {
                    self.backend
                        .digest(entry.alloc)
                        .map(Digest)
                        .map_err(|source| VerifyError::Backend {
                            shard_id: shard.shard_id.clone(),
                            source,
                        })
                })
        };
        let found = match outcome {
            Ok(found) => found,
            Err(
                error @ VerifyError::Handle {
                    source: HandleError::Stale,
                    ..
                },
            ) if gone == Gone::IsNews => return Err(error),
            Err(error) => {
                let reason = error.to_string();
                self.audit
                    .verification_failed(&shard.shard_id, shard.device_ref(), &reason, None);
                return Err(error);
            }
        };
        if !bool::from(found.0.ct_eq(&shard.digest.0)) {
            let expected = shard.digest;
            let error = VerifyError::DigestMismatch {
                shard_id: shard.shard_id.clone(),
                expected,
                found,
            };
            let reason = error.to_string();
            let digests = Some((expected, found));
            self.audit
                .verification_failed(&shard.shard_id, shard.device_ref(), &reason, digests);
            return Err(error);
        }
        self.audit.verified(shard);
        Ok(())
    }

    /// Frees the shard's device memory. Every clone of `shard` is stale
    /// afterwards.
    ///
    /// Records `vram.deallocated`. An edited or forged handle, or one whose
    /// shard is already gone, frees nothing and is recorded as
    /// `vram.policy_violation` ([`HANDLE_INTEGRITY`](policy::HANDLE_INTEGRITY)
    /// or [`HANDLE_LIFETIME`](policy::HANDLE_LIFETIME)).
    pub fn deallocate(&self, shard: SealedShard) -> Result<(), DeallocError> {
        if let Err(source) = shard.authenticate(&self.key) {
            self.audit.policy_violation(
                policy::HANDLE_INTEGRITY,
                &format!("deallocate with a handle that fails its seal check: {source}"),
                Some(&shard.shard_id),
                "deallocation refused; nothing freed",
            );
            return Err(DeallocError::Handle {
                shard_id: shard.shard_id,
                source,
            });
        }

        let mut table = self.table_write();
        let Some(entry) = table.remove(shard.handle) else {
            drop(table);
            self.audit.policy_violation(
                policy::HANDLE_LIFETIME,
                "deallocate of a shard that is no longer resident (double free or stale clone)",
                Some(&shard.shard_id),
                "deallocation refused; nothing freed",
            );
            let source = HandleError::Stale;
            return Err(DeallocError::Handle {
                shard_id: shard.shard_id,
                source,
            });
        };
        match self.backend.free(entry.alloc) {
            Ok(()) => {
                let used = table.release(entry.bytes);
                drop(table);
                self.audit.deallocated(&entry.shard_id, entry.bytes, used);
                Ok(())
            }
            Err(source) => {
                drop(table);
                tracing::warn!(error = %source, bytes = entry.bytes, "device refused to free a shard");
                let (shard_id, allocation) = (entry.shard_id, entry.alloc);
                Err(DeallocError::Backend {
                    shard_id,
                    allocation,
                    source,
                })
            }
        }
    }

    /// Flips the lowest bit of the resident byte at `offset` in `shard`, as a
    /// stray write or a bit flip would, so that a demo or test can show the
    /// next [`verify_sealed`](Self::verify_sealed) catching it.
    ///
    /// The handle is checked like any other, so this cannot reach memory that
    /// `shard` does not name. Logged at `warn`, but no audit event of its own
    /// is written, so the trail shows what an operator would see after real
    /// corruption: the failed verification.
    #[cfg(feature = "fault-injection")]
    pub fn corrupt_resident_byte(
        &self,
        shard: &SealedShard,
        offset: u64,
    ) -> Result<(), crate::error::FaultInjectionError> {
        use crate::error::FaultInjectionError as Error;

        let table = self.table_read();
        let entry = self
            .resolve(&table, shard)
            .map_err(|source| Error::Handle {
                shard_id: shard.shard_id.clone(),
                source,
            })?;
        if offset >= entry.bytes {
            return Err(Error::OffsetOutOfRange {
                offset,
                bytes: entry.bytes,
            });
        }
        let mut byte = [0u8; 1];
        self.backend
            .read(entry.alloc, offset, &mut byte)
            .map_err(Error::Backend)?;
        let [value] = byte;
        self.backend
            .upload(entry.alloc, offset, &[value ^ 0x01])
            .map_err(Error::Backend)?;
        tracing::warn!(
            shard_index = shard.shard_index,
            offset,
            "fault injected into resident shard"
        );
        Ok(())
    }
}
