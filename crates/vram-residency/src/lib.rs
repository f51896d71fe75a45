//! Seal model weights into GPU memory, prove later that they are still the
//! same bytes, and record every step in the audit trail.
//!
//! # A tour
//!
//! Start with a [`VramManager`]. It is made from four things:
//!
//! - a [`VramBackend`], the memory the shards live in: [`CudaBackend`], the
//!   memory of an NVIDIA GPU through the CUDA driver (loaded at run time,
//!   so the crate builds and runs where there is none; see
//!   [`backend::cuda`]), or [`HostBackend`], a **simulation** that keeps
//!   "device memory" in host memory (see the trust model below);
//! - a [`SealKey`], the secret that signs seals, normally fresh per process
//!   ([`SealKey::generate`]);
//! - an [`AuditLogger`](audit_logging::AuditLogger) from the `audit-logging`
//!   crate, which receives a `vram.*` event for every allocation, seal,
//!   verification, deallocation and refusal;
//! - a [`ManagerConfig`]: the worker id and the policy switches.
//!
//! [`VramManager::seal_model`] takes a safetensors or GGUF file (told apart
//! by its first bytes, [`ModelLayout`]), plans its shards by groups of
//! whole tensors ([`ModelLayout::plan`]), and for each shard allocates
//! device memory, uploads the bytes, digests **the copy on the device**,
//! checks it against the source, and signs the result into a
//! [`SealedShard`]. It reports [`SealProgress`] as it goes and returns a
//! [`SealedModel`] with the file's SHA-256, comparable with the digest a
//! model distribution publishes. [`VramManager::seal_sharded_model`] seals
//! a sharded safetensors checkpoint (an index and its files) all or
//! nothing, and [`VramManager::seal_shard`] seals one buffer.
//!
//! Before anything is uploaded, [`SealModelOptions`] can have the files
//! checked against an expected SHA-256, a [`DigestManifest`] (file name to
//! SHA-256) or an OpenSSF model signature ([`ModelSignature`], the bundle
//! the `model_signing` tool writes, verified with the signer's
//! [`SignerKey`]); see [`provenance`]. A model that fails is refused and
//! recorded as `model.rejected`.
//!
//! [`DigestManifest`]: provenance::DigestManifest
//! [`ModelSignature`]: provenance::ModelSignature
//! [`SignerKey`]: provenance::SignerKey
//!
//! A [`SealedShard`] is a handle with public, editable fields and a private
//! slot in the manager's table; its HMAC-SHA256 signature covers all of them.
//! [`VramManager::verify_sealed`] checks the signature, then recomputes the
//! digest from device memory; [`VramManager::deallocate`] checks the
//! signature and frees the memory, after which every copy of the handle is
//! refused. [`VramManager::reverify_all`] checks every resident shard at
//! once, and [`VramManager::spawn_reverifier`] does so periodically on a
//! thread of its own, reporting what each pass found and cost
//! ([`ReverifyReport`]). With the `fault-injection` feature,
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
//! seal time and at each later verification, the digest recorded in the
//! seal (a Merkle root over 16 KiB chunks, see [`digest`]), and nobody without the manager's key has changed any field of the
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
//! With [`CudaBackend`] the digest is computed by a kernel on the GPU over
//! the resident bytes, and only 32-byte leaf hashes come back to the host.
//! It refuses memory that would not be the device's own: an integrated GPU
//! when the backend is made, and any allocation whose pointer attributes
//! say host, managed or another device (recorded as a
//! [`policy::DEVICE_MEMORY_TYPE`] violation). Freed shards are zeroed on the
//! device first. It trusts the driver: a compromised driver or kernel, or
//! another process with access to the device, is outside what a seal can
//! rule out.
//!
//! The key stays inside the manager: it is zeroized on drop, redacted from
//! `Debug`, and only its [`KeyId`] is ever shown. It is random per manager
//! unless it is loaded from a key file ([`SealKey::load`], owner-only, never
//! through a symbolic link; see [`seal::key_file`]). Signatures are compared
//! in constant time.
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
//! - **The CUDA backend has not been run on a GPU.** It is built and
//!   tested here only on the no-driver path (a clear
//!   [`BackendError::NoCudaDriver`], no panic); its GPU tests
//!   (`tests/cuda.rs`) and benchmark skip without a device. Until the output
//!   of `scripts/gpu-check.sh` on a GPU is recorded in BENCHMARKS.md,
//!   nothing says that its kernel compiles under NVRTC, that its roots match
//!   the host's on a device, or how fast it is. It needs `libnvrtc` at run
//!   time as well as the driver (a CUDA 13 one only under the plain name
//!   `libnvrtc.so`: see [`BackendError::NoNvrtc`]), serializes its
//!   operations behind one lock, and hashes each 16 KiB chunk in one GPU
//!   thread, which may leave the digest bound by SHA-256 arithmetic rather
//!   than memory bandwidth.
//! - **The leaf hashes are folded on the host.** The device returns one
//!   32-byte hash per chunk (0.2% of the bytes) and the host builds the
//!   tree over them; the tree's interior nodes are under 1% of the hashing.
//! - **Seals are per process.** A handle names a slot in one manager's
//!   table, so it cannot be checked by another process even with the same
//!   key.
//! - **Formats.** Safetensors, GGUF v2/v3 (little-endian, one file) and
//!   sharded safetensors checkpoints; split GGUF files (`-00001-of-0000N`)
//!   and other formats are not read. [`VramManager::seal_shard_from_reader`]
//!   seals any byte stream.
//! - **Provenance reads every file twice.** With an expected digest, a
//!   manifest or a signature, the model file is digested once before upload
//!   (so a wrong one is never resident) and again as it is sealed (which
//!   catches a file changed in between); the other files of a signed
//!   directory are digested once. Model signatures are read only in the
//!   form `model_signing sign key` writes (one ECDSA P-256 key, the `files`
//!   serialization, model_signing 1.x): Sigstore certificate and keyless
//!   signatures, the `shards` serialization and pre-1.0 signatures are
//!   refused, not checked.
//! - **Sharded checkpoints refuse symbolic links**, so a snapshot in the
//!   Hugging Face cache (whose files are links to blobs) must be copied out
//!   first; a single model file is read through a link.

// Unsafe code is allowed only in `backend::cuda`, which calls the CUDA driver.
#![deny(unsafe_code)]
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
pub mod digest;
pub mod error;
mod manager;
pub mod model;
pub mod policy;
pub mod provenance;
pub mod seal;

pub use audit_logging::Digest;
pub use backend::cuda::CudaBackend;
pub use backend::host::HostBackend;
pub use backend::{AllocationId, BackendInfo, BackendKind, DeviceIdentity, VramBackend};
#[cfg(feature = "fault-injection")]
pub use error::FaultInjectionError;
pub use error::{
    BackendError, DeallocError, HandleError, KeyError, ModelError, ProvenanceError, SealError,
    SealModelError, VerifyError,
};
pub use manager::{
    CancelFlag, DEFAULT_MAX_SHARD_BYTES, ManagerConfig, Reverifier, ReverifyFailure,
    ReverifyReport, SealModelOptions, SealProgress, SealedCheckpoint, SealedModel, ShardSpec,
    UPLOAD_CHUNK_BYTES, VramManager,
};
pub use model::{GgufFile, ModelFormat, ModelLayout, SafetensorsFile, ShardedIndex, TensorEntry};
pub use provenance::Provenance;
pub use seal::{KeyId, SealKey, SealedShard, Signature};
