//! [`VramManager`] and its configuration. The manager's public contract is
//! documented on the type; this module splits its implementation by step:
//! `seal` (one shard), `model` (a whole file), `sharded` (a checkpoint of
//! several files), `lifecycle` (verify, deallocate, fault injection),
//! `reverify` (the background pass), `table` (allocations and capacity) and
//! `audit` (event emission).

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use audit_logging::AuditLogger;

use crate::backend::{BackendInfo, VramBackend};
use crate::error::HandleError;
use crate::seal::{KeyId, SealKey, SealedShard};

mod audit;
mod lifecycle;
mod model;
mod reverify;
mod seal;
mod sharded;
mod table;

pub use model::{CancelFlag, DEFAULT_MAX_SHARD_BYTES, SealModelOptions, SealProgress, SealedModel};
pub use reverify::{Reverifier, ReverifyFailure, ReverifyReport};
pub use seal::UPLOAD_CHUNK_BYTES;
pub use sharded::SealedCheckpoint;

use audit::Auditor;
use table::{Entry, Table};

/// How a [`VramManager`] identifies itself and what it enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// The worker that owns the device memory; every audit event names it.
    pub worker_id: String,
    /// Refuse to seal on a simulated backend (policy
    /// [`DEVICE_RESIDENCY`](crate::policy::DEVICE_RESIDENCY)). Off by default
    /// so that tests and CPU-only demos can run; production workers should
    /// turn it on.
    pub require_device_residency: bool,
}

impl ManagerConfig {
    /// A configuration for `worker_id` with every optional policy off.
    pub fn new(worker_id: impl Into<String>) -> Self {
        ManagerConfig {
            worker_id: worker_id.into(),
            require_device_residency: false,
        }
    }

    /// Sets [`require_device_residency`](Self::require_device_residency).
    #[must_use]
    pub fn with_device_residency_required(mut self, required: bool) -> Self {
        self.require_device_residency = required;
        self
    }
}

/// What a caller says about a shard it asks to seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// The shard's id, as it will appear in the audit trail.
    pub shard_id: String,
    /// The model it belongs to.
    pub model_ref: String,
    /// Its position in the model, from 0; must be below `shard_count`.
    pub shard_index: u32,
    /// Number of shards in the model.
    pub shard_count: u32,
}

impl ShardSpec {
    /// A spec for shard `shard_index` of `shard_count` of `model_ref`.
    pub fn new(
        shard_id: impl Into<String>,
        model_ref: impl Into<String>,
        shard_index: u32,
        shard_count: u32,
    ) -> Self {
        ShardSpec {
            shard_id: shard_id.into(),
            model_ref: model_ref.into(),
            shard_index,
            shard_count,
        }
    }
}

/// Seals model shards into a [`VramBackend`]'s memory, verifies them
/// against it, frees them, and audits each step. The [crate docs](crate)
/// give the tour.
///
/// The manager owns everything a caller must not touch: the [`SealKey`], the
/// backend's allocation ids, and a table that maps each live
/// [`SealedShard`] to its allocation. A caller only ever holds sealed
/// handles, and every method that takes one checks its signature before the
/// table or the device is consulted.
///
/// # Locking
///
/// The table sits behind one `RwLock`. Verification and fault injection hold
/// it shared while the device works, so they run concurrently; sealing takes
/// it exclusively only to reserve capacity and to record the finished shard,
/// so uploads run concurrently too; deallocation holds it exclusively while
/// the device frees, so no verification can digest memory that is being
/// released.
///
/// # Drop
///
/// Dropping the manager frees every shard still resident and records each
/// as `vram.deallocated`.
pub struct VramManager<B: VramBackend> {
    backend: B,
    key: SealKey,
    config: ManagerConfig,
    audit: Auditor,
    table: RwLock<Table>,
}

impl<B: VramBackend> VramManager<B> {
    /// A manager for `backend` that signs with `key` and records to `audit`.
    ///
    /// The capacity is the backend's, read once here.
    pub fn new(backend: B, key: SealKey, audit: Arc<AuditLogger>, config: ManagerConfig) -> Self {
        let info = backend.info();
        let capacity = info.capacity_bytes;
        let auditor = Auditor::new(audit, &config.worker_id, info.device.to_device_ref());
        VramManager {
            backend,
            key,
            config,
            audit: auditor,
            table: RwLock::new(Table::new(capacity)),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// What the backend says about itself.
    pub fn backend_info(&self) -> &BackendInfo {
        self.backend.info()
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// Id of the key this manager signs with.
    pub fn key_id(&self) -> KeyId {
        self.key.id()
    }

    /// Bytes held by resident shards and seals in progress.
    pub fn used_bytes(&self) -> u64 {
        self.table_read().used()
    }

    /// Bytes this manager may hold in total.
    pub fn capacity_bytes(&self) -> u64 {
        self.table_read().capacity()
    }

    /// Bytes still free.
    pub fn available_bytes(&self) -> u64 {
        self.table_read().available()
    }

    /// Number of sealed shards currently resident.
    pub fn resident_shards(&self) -> usize {
        self.table_read().len()
    }

    /// Audit events the logger refused since the manager was made.
    ///
    /// A refused event never fails the operation it describes: a seal that
    /// worked stays sealed and a failed verification still fails. Each
    /// refusal is counted here and reported through `tracing` (event type
    /// and error only).
    pub fn audit_failures(&self) -> u64 {
        self.audit.failures()
    }

    // The table is left consistent before any call that could panic, so a
    // poisoned lock still guards sound data.
    fn table_read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The table entry for `shard`, once its seal checks out.
    fn resolve<'t>(&self, table: &'t Table, shard: &SealedShard) -> Result<&'t Entry, HandleError> {
        shard.authenticate(&self.key)?;
        table.get(shard.handle).ok_or(HandleError::Stale)
    }
}

impl<B: VramBackend> fmt::Debug for VramManager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = self.table_read();
        f.debug_struct("VramManager")
            .field("backend", self.backend.info())
            .field("key_id", &self.key.id())
            .field("config", &self.config)
            .field("resident_shards", &table.len())
            .field("used_bytes", &table.used())
            .field("capacity_bytes", &table.capacity())
            .finish_non_exhaustive()
    }
}

impl<B: VramBackend> Drop for VramManager<B> {
    fn drop(&mut self) {
        let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
        for entry in table.drain() {
            match self.backend.free(entry.alloc) {
                Ok(()) => {
                    let used = table.release(entry.bytes);
                    self.audit.deallocated(&entry.shard_id, entry.bytes, used);
                }
                Err(error) => {
                    tracing::warn!(%error, bytes = entry.bytes, "device refused to free a shard");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
