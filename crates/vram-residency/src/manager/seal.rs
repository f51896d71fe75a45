//! Sealing one shard: check policy, reserve and allocate, upload in chunks
//! while hashing the source, digest the device copy, compare, sign.
//!
//! Every failure after the allocation frees it again (recorded as
//! `vram.deallocated`), so a failed seal leaves nothing resident. A device
//! copy that differs from the source, or a device that fails during upload or
//! digest, is recorded as `vram.seal_verification_failed`; a source that
//! cannot be read is the caller's problem and is only returned.

use std::io::{self, Read};

use audit_logging::Digest;
use chrono::Utc;

use super::table::Entry;
use super::{ShardSpec, VramManager};
use crate::backend::{AllocationId, VramBackend};
use crate::digest::ChunkTree;
use crate::error::{BackendError, SealError};
use crate::policy;
use crate::seal::{SealedShard, Signature};

/// Bytes moved to the device per upload call: 8 MiB.
///
/// Bounds the host memory a seal needs whatever the shard's size, and is a
/// typical size for the pinned staging buffer a GPU backend copies through.
pub const UPLOAD_CHUNK_BYTES: usize = 8 << 20;

impl<B: VramBackend> VramManager<B> {
    /// Seals `data` as one shard: allocates device memory, uploads, has the
    /// device digest its copy, checks that against the [seal
    /// digest](crate::digest) of `data`, and signs the result.
    ///
    /// Records `vram.allocated` and `vram.sealed` on success. Fails with
    /// [`SealError`], recorded as `vram.policy_violation` when policy forbids
    /// the seal, `vram.allocation_failed` when capacity or the device runs
    /// out, and `vram.seal_verification_failed` when the device copy differs
    /// from `data`. An empty or misnumbered [`ShardSpec`] is a caller bug and
    /// is only returned.
    pub fn seal_shard(&self, spec: &ShardSpec, data: &[u8]) -> Result<SealedShard, SealError> {
        let bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let mut source = data;
        self.seal_shard_from_reader(spec, bytes, &mut source, &mut |_| {})
    }

    /// Like [`seal_shard`](Self::seal_shard), for a shard of `bytes` bytes read
    /// from `source` in chunks of [`UPLOAD_CHUNK_BYTES`], so the shard never
    /// has to fit in host memory. `on_progress` gets the bytes uploaded so
    /// far after each chunk.
    ///
    /// Reads exactly `bytes` bytes; a source that ends sooner fails with
    /// [`SealError::SourceTooShort`].
    pub fn seal_shard_from_reader(
        &self,
        spec: &ShardSpec,
        bytes: u64,
        source: &mut dyn Read,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<SealedShard, SealError> {
        self.check_request(spec, bytes)?;
        let alloc = self.allocate(&spec.shard_id, bytes)?;
        self.fill_and_seal(spec, alloc, bytes, source, on_progress)
            .inspect_err(|_| self.discard(alloc, bytes, &spec.shard_id))
    }

    fn check_request(&self, spec: &ShardSpec, bytes: u64) -> Result<(), SealError> {
        let device = &self.backend.info().device;
        if self.config.require_device_residency && device.is_simulated() {
            let backend = device.kind.name();
            self.audit.policy_violation(
                policy::DEVICE_RESIDENCY,
                &format!(
                    "seal requested on {backend}, which keeps \"device memory\" in host memory"
                ),
                Some(&spec.shard_id),
                "seal refused; nothing allocated",
            );
            return Err(SealError::ResidencyPolicy { backend });
        }
        if spec.shard_index >= spec.shard_count {
            let (index, count) = (spec.shard_index, spec.shard_count);
            return Err(SealError::IndexOutOfRange { index, count });
        }
        if bytes == 0 {
            return Err(SealError::Empty);
        }
        Ok(())
    }

    /// Reserves capacity, then device memory.
    fn allocate(&self, shard_id: &str, bytes: u64) -> Result<AllocationId, SealError> {
        let reserved = self.table_write().reserve(bytes);
        let used = match reserved {
            Ok(used) => used,
            Err(available) => {
                let capacity = self.capacity_bytes();
                let error = SealError::CapacityExceeded {
                    requested: bytes,
                    available,
                    capacity,
                };
                self.audit
                    .allocation_failed(shard_id, bytes, available, &error.to_string());
                return Err(error);
            }
        };
        match self.backend.allocate(bytes) {
            Ok(alloc) => {
                self.audit
                    .allocated(shard_id, bytes, used, self.capacity_bytes());
                Ok(alloc)
            }
            Err(error) => {
                let available = {
                    let mut table = self.table_write();
                    table.release(bytes);
                    table.available()
                };
                self.audit
                    .allocation_failed(shard_id, bytes, available, &error.to_string());
                if matches!(error, BackendError::NotDeviceMemory { .. }) {
                    self.audit.policy_violation(
                        policy::DEVICE_MEMORY_TYPE,
                        &error.to_string(),
                        Some(shard_id),
                        "allocation freed; shard not sealed",
                    );
                }
                Err(SealError::Allocation(error))
            }
        }
    }

    fn fill_and_seal(
        &self,
        spec: &ShardSpec,
        alloc: AllocationId,
        bytes: u64,
        source: &mut dyn Read,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<SealedShard, SealError> {
        let expected = self
            .upload(alloc, bytes, source, on_progress)
            .inspect_err(|error| {
                if matches!(error, SealError::Upload(_)) {
                    self.seal_refused(spec, error, None);
                }
            })?;

        // The seal binds what the device holds, not what we meant to send.
        let found = self
            .backend
            .digest(alloc)
            .map(Digest)
            .map_err(SealError::DeviceDigest);
        let found = found.inspect_err(|error| self.seal_refused(spec, error, None))?;
        if found != expected {
            let error = SealError::ResidentMismatch { expected, found };
            self.seal_refused(spec, &error, Some((expected, found)));
            return Err(error);
        }

        let entry = Entry {
            alloc,
            bytes,
            shard_id: spec.shard_id.clone(),
            seal: None,
        };
        let handle = self
            .table_write()
            .insert(entry)
            .map_err(|full| SealError::TableFull { slots: full.slots })?;
        let mut shard = SealedShard {
            shard_id: spec.shard_id.clone(),
            model_ref: spec.model_ref.clone(),
            shard_index: spec.shard_index,
            shard_count: spec.shard_count,
            bytes,
            device: self.backend.info().device.clone(),
            sealed_at: Utc::now(),
            digest: found,
            key_id: self.key.id(),
            signature: Signature([0; 32]),
            handle,
        };
        match shard.compute_signature(&self.key) {
            Ok(signature) => shard.signature = signature,
            Err(error) => {
                self.table_write().remove(handle);
                return Err(SealError::Sign(error));
            }
        }
        self.table_write().set_seal(shard.clone());
        self.audit.sealed(&shard);
        tracing::debug!(shard_index = spec.shard_index, bytes, "shard sealed");
        Ok(shard)
    }

    /// Copies `bytes` bytes from `source` to the allocation; returns their
    /// [seal digest](crate::digest) as read from the source.
    fn upload(
        &self,
        alloc: AllocationId,
        bytes: u64,
        source: &mut dyn Read,
        on_progress: &mut dyn FnMut(u64),
    ) -> Result<Digest, SealError> {
        let chunk =
            usize::try_from(bytes).map_or(UPLOAD_CHUNK_BYTES, |b| b.min(UPLOAD_CHUNK_BYTES));
        let mut buf = vec![0u8; chunk];
        let mut hasher = ChunkTree::new();
        let mut done = 0u64;
        while done < bytes {
            let left = bytes.saturating_sub(done);
            // Shrinks the buffer for the last, partial chunk only.
            buf.truncate(usize::try_from(left).map_or(chunk, |left| left.min(chunk)));
            let got = read_full(source, &mut buf)
                .map_err(|source| SealError::SourceRead { read: done, source })?;
            let got = u64::try_from(got).unwrap_or(u64::MAX);
            let want = u64::try_from(buf.len()).unwrap_or(u64::MAX);
            if got < want {
                let found = done.saturating_add(got);
                return Err(SealError::SourceTooShort {
                    expected: bytes,
                    found,
                });
            }
            hasher.update(&buf);
            self.backend
                .upload(alloc, done, &buf)
                .map_err(SealError::Upload)?;
            done = done.saturating_add(want);
            on_progress(done);
        }
        Ok(hasher.finish())
    }

    fn seal_refused(&self, spec: &ShardSpec, error: &SealError, digests: Option<(Digest, Digest)>) {
        let reason = format!("seal refused: {error}");
        let device = self.backend.info().device.to_device_ref();
        self.audit
            .verification_failed(&spec.shard_id, device, &reason, digests);
    }

    /// Frees an allocation that never became a sealed shard.
    fn discard(&self, alloc: AllocationId, bytes: u64, shard_id: &str) {
        match self.backend.free(alloc) {
            Ok(()) => {
                let used = self.table_write().release(bytes);
                self.audit.deallocated(shard_id, bytes, used);
            }
            Err(error) => {
                tracing::warn!(%error, bytes, "device refused to free an unsealed allocation");
            }
        }
    }
}

/// Fills `buf` from `source`, stopping early only at end of input. Returns
/// the bytes read.
fn read_full(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0usize;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match source.read(rest) {
            Ok(0) => break,
            // A reader claiming more than it was given is clamped.
            Ok(n) => filled = filled.saturating_add(n.min(rest.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
