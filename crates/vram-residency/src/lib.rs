//! Seal model weights into GPU memory, prove later that they are still the
//! same bytes, and record every step in the audit trail.
//!
//! # A tour
//!
//! Start with a [`VramManager`]. It is made from four things:
//!
//! - a [`VramBackend`], the memory the shards live in. [`HostBackend`] is the
//!   only one today: a **simulation** that keeps "device memory" in host
//!   memory (see the trust model below);
//! - a [`SealKey`], the secret that signs seals, normally fresh per process
//!   ([`SealKey::generate`]);
//! - an [`AuditLogger`](audit_logging::AuditLogger) from the `audit-logging`
//!   crate, which receives a `vram.*` event for every allocation, seal,
//!   verification, deallocation and refusal;
//! - a [`ManagerConfig`]: the worker id and the policy switches.
//!
//! [`VramManager::seal_model`] takes a safetensors file, plans its shards
//! ([`SafetensorsFile::plan`]), and for each shard allocates device memory,
//! uploads the bytes, digests **the copy on the device**, checks it against
//! the source, and signs the result into a [`SealedShard`]. It reports
//! [`SealProgress`] as it goes and returns a [`SealedModel`] with the file's
//! SHA-256, comparable with the digest a model distribution publishes.
//! [`VramManager::seal_shard`] does the same for one buffer.
//!
//! A [`SealedShard`] is a handle with public, editable fields and a private
//! slot in the manager's table; its HMAC-SHA256 signature covers all of them.
//! [`VramManager::verify_sealed`] checks the signature, then recomputes the
//! digest from device memory; [`VramManager::deallocate`] checks the
//! signature and frees the memory, after which every copy of the handle is
//! refused. With the `fault-injection` feature,
//! `VramManager::corrupt_resident_byte` flips a bit in device memory so a
//! demo can show the next verification failing.
//!
//! ```
//! use std::sync::Arc;
//! use audit_logging::AuditLogger;
//! use vram_residency::{HostBackend, ManagerConfig, SealKey, ShardSpec, VramManager};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = VramManager::new(
//!     HostBackend::with_capacity(1 << 20),
//!     SealKey::generate()?,
//!     Arc::new(AuditLogger::disabled()),
//!     ManagerConfig::new("worker-0"),
//! );
//! let spec = ShardSpec::new("demo#0", "demo", 0, 1);
//! let shard = manager.seal_shard(&spec, b"weights")?;
//! manager.verify_sealed(&shard)?;
//!
//! let mut edited = shard.clone();
//! edited.bytes += 1;
//! assert!(manager.verify_sealed(&edited).is_err());
//!
//! manager.deallocate(shard.clone())?;
//! assert!(manager.verify_sealed(&shard).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Trust model
//!
//! What a seal proves: the bytes resident in the backend's memory had, at
//! seal time and at each later verification, the SHA-256 recorded in the
//! seal, and nobody without the manager's key has changed any field of the
//! handle. Verification reads the digest from the memory where the shard
//! lives, not from a host copy. Handles carry no addresses; a forged,
//! edited or stale handle is refused before it reaches the device.
//!
//! What it does not prove with [`HostBackend`]: that anything is on a GPU.
//! The host backend is a simulation and says so everywhere: its kind is
//! `host-simulation`, every audit event it produces has `simulated: true`,
//! and its `Display` says "SIMULATED". Set
//! [`ManagerConfig::require_device_residency`] in production so that sealing
//! on a simulation is refused and recorded as a
//! [`policy::DEVICE_RESIDENCY`] violation. Only [`BackendKind`]s defined in
//! this crate exist, so a backend written elsewhere cannot claim otherwise.
//!
//! The key stays inside the manager: it is zeroized on drop, redacted from
//! `Debug`, and only its [`KeyId`] is ever shown. Signatures are compared in
//! constant time.
//!
//! Audit failures never fail a VRAM operation: a refused event is counted
//! ([`VramManager::audit_failures`]) and logged through `tracing`.
//!
//! # Choosing a backend type
//!
//! `VramManager<B>` is generic over its backend rather than holding a
//! `Box<dyn VramBackend>`: calls are static, and a caller that keeps the
//! concrete type can reach backend-specific methods through
//! [`VramManager::backend`]. Code that picks a backend at run time uses
//! `VramManager<Box<dyn VramBackend>>`, and `Arc<B>` works too, since both
//! implement [`VramBackend`].
//!
//! # Limitations
//!
//! - **No GPU backend yet.** Only [`HostBackend`] exists, so nothing this
//!   crate seals today is in device memory. A CUDA backend is planned; the
//!   trait already takes offsets for chunked uploads and leaves digesting to
//!   the backend.
//! - **Whole-shard SHA-256.** A digest is one SHA-256 over the whole
//!   allocation, computed by the backend. That matches published model
//!   digests but is sequential; a chunked Merkle digest computed on the
//!   device, which would verify a model in a fraction of a second without
//!   copying it, is not done yet.
//! - **Seals are per process.** A handle names a slot in one manager's
//!   table, so it cannot be checked by another process even with the same
//!   key.
//! - **Safetensors only.** Other formats (GGUF, sharded index files) are not
//!   read yet; [`VramManager::seal_shard_from_reader`] seals any byte stream.
//! - **Expected digest is checked after upload.** `seal_model` reads the
//!   file once, so a file that does not match
//!   [`SealModelOptions::expected_sha256`] is refused only after its shards
//!   were uploaded (and is then unsealed again). Call
//!   [`model::file_sha256`] first to refuse it before any upload, at the
//!   cost of a second read.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod backend;
pub mod error;
mod manager;
pub mod model;
pub mod policy;
pub mod provenance;
pub mod seal;

pub use audit_logging::Digest;
pub use backend::host::HostBackend;
pub use backend::{AllocationId, BackendInfo, BackendKind, DeviceIdentity, VramBackend};
#[cfg(feature = "fault-injection")]
pub use error::FaultInjectionError;
pub use error::{
    BackendError, DeallocError, HandleError, KeyError, ModelError, ProvenanceError, SealError,
    SealModelError, VerifyError,
};
pub use manager::{
    DEFAULT_MAX_SHARD_BYTES, ManagerConfig, SealModelOptions, SealProgress, SealedCheckpoint,
    SealedModel, ShardSpec, UPLOAD_CHUNK_BYTES, VramManager,
};
pub use model::{GgufFile, ModelFormat, ModelLayout, SafetensorsFile, ShardedIndex, TensorEntry};
pub use provenance::Provenance;
pub use seal::{KeyId, SealKey, SealedShard, Signature};
