//! The device-memory abstraction: what a GPU (or a stand-in for one) must
//! offer so that the [`VramManager`](crate::VramManager) can seal shards in it.
//!
//! A [`VramBackend`] hands out opaque [`AllocationId`]s, never pointers. The
//! manager keeps those ids in its own table and never lets them leave the
//! crate inside a [`SealedShard`](crate::SealedShard), so a caller cannot
//! name device memory directly.
//!
//! The trait is shaped for a real GPU: [`upload`](VramBackend::upload) takes
//! an offset so that large shards go up in bounded chunks through a staging
//! buffer; [`digest`](VramBackend::digest) is computed by the backend, where
//! the bytes live, so a device backend can hash on the GPU without copying
//! weights back; [`read`](VramBackend::read) is capped at [`MAX_READ_BYTES`]
//! so that verification can never quietly turn into a host-side copy.
//!
//! Only [`BackendKind`]s this crate defines exist, and each decides whether it
//! is a simulation. A backend written elsewhere can therefore not claim real
//! device residency: the kinds are [`BackendKind::HostSimulation`]
//! ([`host::HostBackend`]) and [`BackendKind::Cuda`] ([`cuda::CudaBackend`]).

use std::fmt;
use std::sync::Arc;

use audit_logging::DeviceRef;

use crate::error::BackendError;

// The driver API is C; this is the crate's only unsafe code.
#[allow(unsafe_code)]
pub mod cuda;
pub mod host;

/// Largest [`VramBackend::read`], in bytes.
///
/// Reads exist to inspect or flip single bytes (fault injection, debugging);
/// 4 KiB is plenty for that and far too little to use reads as a way of
/// pulling a model back to the host.
pub const MAX_READ_BYTES: u64 = 4096;

/// Checks a request for `bytes` against a backend's account of `capacity`
/// with `used` taken: not empty, within what is left, and addressable.
/// Returns the size as a `usize`; every backend's `allocate` starts here.
pub(crate) fn check_request(bytes: u64, capacity: u64, used: u64) -> Result<usize, BackendError> {
    if bytes == 0 {
        return Err(BackendError::ZeroSized);
    }
    let available = capacity.saturating_sub(used);
    if bytes > available {
        return Err(BackendError::OutOfMemory {
            requested: bytes,
            available,
        });
    }
    usize::try_from(bytes).map_err(|_| BackendError::AllocationRefused {
        requested: bytes,
        reason: "larger than the address space".into(),
    })
}

/// An opaque name for one allocation, chosen by the backend that made it.
///
/// It is a number, not an address: a device backend maps it to its device
/// pointer internally. Ids are only meaningful to the backend that issued
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationId(u64);

impl AllocationId {
    /// Wraps a backend's own allocation number.
    pub const fn new(raw: u64) -> Self {
        AllocationId(raw)
    }

    /// The backend's number for this allocation.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AllocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allocation #{}", self.0)
    }
}

/// Which kind of backend holds the memory.
///
/// The kind, not the backend, decides [`is_simulated`](Self::is_simulated),
/// so a backend can only claim real residency through a kind this crate
/// defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// "Device memory" kept in host memory; nothing is resident on a GPU.
    HostSimulation,
    /// Memory of an NVIDIA GPU, through the CUDA driver
    /// ([`cuda::CudaBackend`]).
    Cuda,
}

impl BackendKind {
    /// The name used in audit events and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::HostSimulation => "host-simulation",
            BackendKind::Cuda => "cuda",
        }
    }

    /// True when the memory is not real device memory.
    pub const fn is_simulated(self) -> bool {
        match self {
            BackendKind::HostSimulation => true,
            BackendKind::Cuda => false,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which device a shard lives on. Part of every seal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceIdentity {
    /// The backend kind.
    pub kind: BackendKind,
    /// Device index within the backend.
    pub index: u32,
    /// Stable device identity (a GPU UUID) where the backend has one.
    pub uuid: Option<String>,
    /// Human-readable device name.
    pub name: String,
}

impl DeviceIdentity {
    /// True when the memory is not real device memory.
    pub fn is_simulated(&self) -> bool {
        self.kind.is_simulated()
    }

    /// The identity as audit events carry it.
    pub fn to_device_ref(&self) -> DeviceRef {
        DeviceRef {
            backend: self.kind.name().into(),
            index: self.index,
            uuid: self.uuid.as_deref().map(Into::into),
            name: self.name.as_str().into(),
            simulated: self.is_simulated(),
        }
    }
}

impl fmt::Display for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({})", self.kind, self.index, self.name)?;
        if let Some(uuid) = &self.uuid {
            write!(f, " {uuid}")?;
        }
        if self.is_simulated() {
            f.write_str(" [SIMULATED: host memory, not device memory]")?;
        }
        Ok(())
    }
}

/// What a backend says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// The device.
    pub device: DeviceIdentity,
    /// Bytes the backend will hand out in total.
    pub capacity_bytes: u64,
}

impl fmt::Display for BackendInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, capacity {} bytes", self.device, self.capacity_bytes)
    }
}

/// A place to keep model shards: a GPU, or a simulation of one.
///
/// Implementations are shared between threads; every method takes `&self`
/// and does its own locking. Methods fail with [`BackendError`] on unknown
/// ids and out-of-range accesses rather than panicking.
pub trait VramBackend: Send + Sync {
    /// Describes the device. Must not change over the backend's life.
    fn info(&self) -> &BackendInfo;

    /// Reserves `bytes` bytes of device memory, contents unspecified until
    /// uploaded. `bytes` is at least 1.
    fn allocate(&self, bytes: u64) -> Result<AllocationId, BackendError>;

    /// Copies `data` into the allocation starting at `offset`.
    fn upload(&self, alloc: AllocationId, offset: u64, data: &[u8]) -> Result<(), BackendError>;

    /// The [seal digest](crate::digest) of the allocation's entire contents
    /// (a Merkle root over its 16 KiB chunks), computed from the memory
    /// where the bytes are resident, not from any host-side copy. A device
    /// backend hashes the chunks on the device and returns only hashes.
    fn digest(&self, alloc: AllocationId) -> Result<[u8; 32], BackendError>;

    /// Copies `buf.len()` bytes from `offset` into `buf`. At most
    /// [`MAX_READ_BYTES`] per call.
    fn read(&self, alloc: AllocationId, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;

    /// Releases the allocation. Its id is never valid again.
    fn free(&self, alloc: AllocationId) -> Result<(), BackendError>;
}

// Forwarding impls let a caller choose a backend at run time
// (`VramManager<Box<dyn VramBackend>>`) or keep a handle to it (`Arc<B>`).
macro_rules! forward_backend {
    ($ptr:ident) => {
        impl<T: VramBackend + ?Sized> VramBackend for $ptr<T> {
            fn info(&self) -> &BackendInfo {
                (**self).info()
            }
            fn allocate(&self, bytes: u64) -> Result<AllocationId, BackendError> {
                (**self).allocate(bytes)
            }
            fn upload(&self, a: AllocationId, off: u64, data: &[u8]) -> Result<(), BackendError> {
                (**self).upload(a, off, data)
            }
            fn digest(&self, alloc: AllocationId) -> Result<[u8; 32], BackendError> {
                (**self).digest(alloc)
            }
            fn read(&self, a: AllocationId, off: u64, buf: &mut [u8]) -> Result<(), BackendError> {
                (**self).read(a, off, buf)
            }
            fn free(&self, alloc: AllocationId) -> Result<(), BackendError> {
                (**self).free(alloc)
            }
        }
    };
}

forward_backend!(Box);
forward_backend!(Arc);

#[cfg(test)]
mod tests {
    use super::*;

    fn simulated_device() -> DeviceIdentity {
        DeviceIdentity {
            kind: BackendKind::HostSimulation,
            index: 2,
            uuid: Some("sim-uuid".into()),
            name: "sim".into(),
        }
    }

    #[test]
    fn host_simulation_is_always_simulated_in_device_ref() {
        let r = simulated_device().to_device_ref();
        assert_eq!(r.backend.as_str(), "host-simulation");
        assert!(r.simulated);
        assert_eq!(r.index, 2);
        assert_eq!(r.uuid.as_ref().map(|u| u.as_str()), Some("sim-uuid"));
    }

    #[test]
    fn display_says_simulated() {
        let shown = simulated_device().to_string();
        assert!(
            shown.starts_with("host-simulation:2 (sim) sim-uuid"),
            "{shown}"
        );
        assert!(shown.contains("SIMULATED"), "{shown}");
    }
}
