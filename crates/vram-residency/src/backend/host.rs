//! [`HostBackend`]: a simulated GPU whose "device memory" is host memory.
//!
//! It exists for tests and CPU-only demos, and it says so: its kind is
//! [`BackendKind::HostSimulation`], every [`DeviceRef`](audit_logging::DeviceRef)
//! built from it has `simulated: true`, and its `Display` says "SIMULATED".
//!
//! The capacity is a number it promises, not memory it takes: bytes are
//! allocated from the host only when a shard asks for them, and a host
//! allocator that refuses is reported as
//! [`BackendError::AllocationRefused`] instead of aborting the process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{AllocationId, BackendInfo, BackendKind, DeviceIdentity, MAX_READ_BYTES, VramBackend};
use crate::error::BackendError;

/// Capacity a [`HostBackend`] claims unless told otherwise: 16 GiB, the size
/// of a common inference GPU. Nothing is taken from the host up front.
pub const DEFAULT_CAPACITY_BYTES: u64 = 16 << 30;

/// Device name reported by the simulation.
const DEVICE_NAME: &str = "simulated GPU in host memory";

/// A simulated GPU in host memory. See the [module docs](self).
pub struct HostBackend {
    info: BackendInfo,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// Never reused, so a freed id cannot alias a later allocation.
    next_id: u64,
    used: u64,
    memory: HashMap<u64, Vec<u8>>,
}

impl HostBackend {
    /// A simulated device 0 with [`DEFAULT_CAPACITY_BYTES`].
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY_BYTES)
    }

    /// A simulated device 0 that hands out at most `capacity_bytes` in total.
    pub fn with_capacity(capacity_bytes: u64) -> Self {
        let device = DeviceIdentity {
            kind: BackendKind::HostSimulation,
            index: 0,
            uuid: None,
            name: DEVICE_NAME.to_owned(),
        };
        HostBackend {
            info: BackendInfo {
                device,
                capacity_bytes,
            },
            state: RwLock::default(),
        }
    }

    /// Bytes currently allocated.
    pub fn used_bytes(&self) -> u64 {
        self.read_state().used
    }

    /// Number of live allocations.
    pub fn allocation_count(&self) -> usize {
        self.read_state().memory.len()
    }

    // Every operation below leaves `State` consistent before anything that
    // could panic, so the data behind a poisoned lock is still sound.
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for HostBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HostBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBackend")
            .field("info", &self.info)
            .field("used_bytes", &self.used_bytes())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HostBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The device's own Display already says SIMULATED.
        fmt::Display::fmt(&self.info, f)
    }
}

/// The byte range `offset..offset + len` of a buffer of `size` bytes.
fn span(offset: u64, len: usize, size: usize) -> Result<std::ops::Range<usize>, BackendError> {
    let out_of_bounds = || BackendError::OutOfBounds {
        offset,
        len: u64::try_from(len).unwrap_or(u64::MAX),
        size: u64::try_from(size).unwrap_or(u64::MAX),
    };
    let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
    let end = start
        .checked_add(len)
        .filter(|end| *end <= size)
        .ok_or_else(out_of_bounds)?;
    Ok(start..end)
}

impl VramBackend for HostBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn allocate(&self, bytes: u64) -> Result<AllocationId, BackendError> {
        let mut state = self.write_state();
        let len = super::check_request(bytes, self.info.capacity_bytes, state.used)?;
        let refused = |reason: String| BackendError::AllocationRefused {
            requested: bytes,
            reason,
        };
        // Refuse what the allocator cannot give with an error rather than
        // an abort: the probe asks for the room and gives it back at once.
        // The memory itself then comes zeroed from the allocator (calloc,
        // fresh pages from the kernel for large sizes), instead of being
        // written with zeros here and once more by the upload.
        Vec::<u8>::new()
            .try_reserve_exact(len)
            .map_err(|e| refused(e.to_string()))?;
        let memory = vec![0u8; len];

        let id = state.next_id;
        state.next_id = id
            .checked_add(1)
            .ok_or_else(|| refused("allocation ids exhausted".into()))?;
        // `check_request` saw `bytes <= capacity - used`: this cannot overflow.
        state.used = state.used.saturating_add(bytes);
        state.memory.insert(id, memory);
        Ok(AllocationId::new(id))
    }

    fn upload(&self, alloc: AllocationId, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut state = self.write_state();
        let memory = state
            .memory
            .get_mut(&alloc.get())
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        let range = span(offset, data.len(), memory.len())?;
        let target = memory
            .get_mut(range)
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        target.copy_from_slice(data);
        Ok(())
    }

    fn digest(&self, alloc: AllocationId) -> Result<[u8; 32], BackendError> {
        let state = self.read_state();
        let memory = state
            .memory
            .get(&alloc.get())
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        // All cores, as a GPU would use all of its own.
        Ok(crate::digest::chunk_root(memory).0)
    }

    fn read(&self, alloc: AllocationId, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let requested = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if requested > MAX_READ_BYTES {
            return Err(BackendError::ReadTooLarge {
                requested,
                limit: MAX_READ_BYTES,
            });
        }
        let state = self.read_state();
        let memory = state
            .memory
            .get(&alloc.get())
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        let range = span(offset, buf.len(), memory.len())?;
        let source = memory
            .get(range)
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        buf.copy_from_slice(source);
        Ok(())
    }

    fn free(&self, alloc: AllocationId) -> Result<(), BackendError> {
        let mut state = self.write_state();
        let memory = state
            .memory
            .remove(&alloc.get())
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        let bytes = u64::try_from(memory.len()).unwrap_or(u64::MAX);
        state.used = state.used.saturating_sub(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_then_digest_is_the_chunk_root_of_what_was_uploaded() {
        let backend = HostBackend::with_capacity(1024);
        let id = backend.allocate(6).unwrap();
        backend.upload(id, 0, b"abc").unwrap();
        backend.upload(id, 3, b"def").unwrap();
        assert_eq!(
            backend.digest(id).unwrap(),
            crate::digest::chunk_root(b"abcdef").0
        );
    }

    #[test]
    fn capacity_is_claimed_not_taken_and_enforced() {
        let backend = HostBackend::new();
        assert_eq!(backend.info().capacity_bytes, DEFAULT_CAPACITY_BYTES);
        assert_eq!(backend.used_bytes(), 0);
        let small = HostBackend::with_capacity(10);
        small.allocate(8).unwrap();
        let err = small.allocate(3).unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::OutOfMemory {
                    requested: 3,
                    available: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn freed_ids_are_unknown_and_never_reused() {
        let backend = HostBackend::with_capacity(100);
        let first = backend.allocate(4).unwrap();
        backend.free(first).unwrap();
        assert_eq!(backend.used_bytes(), 0);
        let second = backend.allocate(4).unwrap();
        assert_ne!(first, second);
        assert!(matches!(
            backend.digest(first),
            Err(BackendError::UnknownAllocation(_))
        ));
        assert!(matches!(
            backend.free(first),
            Err(BackendError::UnknownAllocation(_))
        ));
    }

    #[test]
    fn out_of_range_accesses_are_refused() {
        let backend = HostBackend::with_capacity(100);
        let id = backend.allocate(4).unwrap();
        let err = backend.upload(id, 3, b"xy").unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::OutOfBounds {
                    offset: 3,
                    len: 2,
                    size: 4
                }
            ),
            "{err}"
        );
        assert!(backend.upload(id, u64::MAX, b"x").is_err());
        let mut buf = [0u8; 2];
        assert!(backend.read(id, 3, &mut buf).is_err());
        let mut big = vec![0u8; 4097];
        assert!(matches!(
            backend.read(id, 0, &mut big),
            Err(BackendError::ReadTooLarge { .. })
        ));
    }

    #[test]
    fn zero_sized_allocation_is_refused() {
        assert!(matches!(
            HostBackend::new().allocate(0),
            Err(BackendError::ZeroSized)
        ));
    }

    #[test]
    fn huge_allocation_within_claimed_capacity_fails_cleanly() {
        let backend = HostBackend::with_capacity(u64::MAX);
        let err = backend.allocate(u64::MAX / 2).unwrap_err();
        assert!(
            matches!(err, BackendError::AllocationRefused { .. }),
            "{err}"
        );
        assert_eq!(backend.used_bytes(), 0);
    }

    #[test]
    fn display_says_simulation() {
        let shown = HostBackend::new().to_string();
        assert!(shown.contains("host-simulation"), "{shown}");
        assert!(shown.contains("SIMULATED"), "{shown}");
    }
}
