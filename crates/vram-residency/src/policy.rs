//! The policies a [`VramManager`](crate::VramManager) enforces, by the names
//! they carry in `vram.policy_violation` events.
//!
//! Every refusal for one of these reasons is recorded with severity `high`,
//! the shard involved when there is one, and the action taken.

/// Sealing requires real device memory.
///
/// Enforced only when
/// [`ManagerConfig::require_device_residency`](crate::ManagerConfig::require_device_residency)
/// is set; then any seal on a simulated backend is refused, since its
/// "device memory" is host memory.
pub const DEVICE_RESIDENCY: &str = "require-device-residency";

/// A handle must carry a valid seal before the manager acts on it.
///
/// Always enforced. A deallocation with an edited or forged
/// [`SealedShard`](crate::SealedShard) is refused and frees nothing.
/// (A verification with one fails and is recorded as
/// `vram.seal_verification_failed` instead.)
pub const HANDLE_INTEGRITY: &str = "sealed-handle-integrity";

/// A handle is dead once its shard is deallocated.
///
/// Always enforced. Deallocating a shard twice, or through a clone kept past
/// the first deallocation, is refused.
pub const HANDLE_LIFETIME: &str = "sealed-handle-lifetime";

/// Device memory must be dedicated memory of the device the backend names.
///
/// Always enforced by the CUDA backend: an integrated GPU (whose memory is
/// host memory) is refused when the backend is made, and every allocation
/// whose pointer attributes say anything but device memory of the expected
/// device, not managed, is freed and refused. The manager records an
/// allocation refused for this reason with this policy name.
pub const DEVICE_MEMORY_TYPE: &str = "device-memory-type";
