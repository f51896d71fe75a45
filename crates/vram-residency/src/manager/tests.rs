//! Unit tests of the manager, observing its audit events through the
//! auditor's test-only capture.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_logging::{AuditEvent, AuditLogger};

use super::*;
use crate::backend::host::HostBackend;
use crate::backend::{AllocationId, BackendInfo};
use crate::error::{BackendError, DeallocError, SealError, VerifyError};

/// A host backend that can be told to misbehave.
#[derive(Default)]
struct Faulty {
    inner: HostBackend,
    /// Flip a bit of every upload, as a broken copy engine would.
    corrupt_uploads: AtomicBool,
    refuse_allocations: AtomicBool,
    /// Refuse allocations as the CUDA backend's residency check does.
    refuse_as_not_device_memory: AtomicBool,
    refuse_frees: AtomicBool,
}

impl VramBackend for Faulty {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }
    fn allocate(&self, bytes: u64) -> Result<AllocationId, BackendError> {
        if self.refuse_allocations.load(Ordering::Relaxed) {
            return Err(BackendError::AllocationRefused {
                requested: bytes,
                reason: "test".into(),
            });
        }
        if self.refuse_as_not_device_memory.load(Ordering::Relaxed) {
            return Err(BackendError::NotDeviceMemory {
                device: 0,
                reason: "the allocation is managed (unified) memory".into(),
            });
        }
        self.inner.allocate(bytes)
    }
    fn upload(&self, alloc: AllocationId, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut data = data.to_vec();
        if self.corrupt_uploads.load(Ordering::Relaxed) {
            data[0] ^= 0x80;
        }
        self.inner.upload(alloc, offset, &data)
    }
    fn digest(&self, alloc: AllocationId) -> Result<[u8; 32], BackendError> {
        self.inner.digest(alloc)
    }
    fn read(&self, alloc: AllocationId, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.inner.read(alloc, offset, buf)
    }
    fn free(&self, alloc: AllocationId) -> Result<(), BackendError> {
        if self.refuse_frees.load(Ordering::Relaxed) {
            return Err(BackendError::UnknownAllocation(alloc));
        }
        self.inner.free(alloc)
    }
}

fn manager_with<B: VramBackend>(backend: B) -> VramManager<B> {
    let logger = Arc::new(AuditLogger::disabled());
    VramManager::new(
        backend,
        SealKey::generate().unwrap(),
        logger,
        ManagerConfig::new("w-1"),
    )
}

fn manager(capacity: u64) -> VramManager<HostBackend> {
    manager_with(HostBackend::with_capacity(capacity))
}

fn spec(index: u32) -> ShardSpec {
    ShardSpec::new(format!("m#{index}"), "m", index, 4)
}

/// Event types emitted so far, oldest first, and forgets them.
fn take_types<B: VramBackend>(m: &VramManager<B>) -> Vec<&'static str> {
    take_events(m).iter().map(AuditEvent::event_type).collect()
}

fn take_events<B: VramBackend>(m: &VramManager<B>) -> Vec<AuditEvent> {
    std::mem::take(&mut *m.audit.captured.lock().unwrap())
}

#[test]
fn seal_verify_deallocate_emit_the_lifecycle_in_order() {
    let m = manager(1024);
    let shard = m.seal_shard(&spec(0), b"hello").unwrap();
    m.verify_sealed(&shard).unwrap();
    m.deallocate(shard).unwrap();
    assert_eq!(
        take_types(&m),
        [
            "vram.allocated",
            "vram.sealed",
            "vram.seal_verified",
            "vram.deallocated"
        ]
    );
    assert_eq!(m.used_bytes(), 0);
    assert_eq!(m.audit_failures(), 0);
}

#[test]
fn sealed_digest_is_the_chunk_root_of_the_source() {
    use sha2::{Digest as _, Sha256};
    let m = manager(1024);
    let shard = m.seal_shard(&spec(1), b"weights").unwrap();
    // One chunk: the root is that chunk's RFC 9162 leaf hash.
    assert_eq!(
        shard.digest.0,
        <[u8; 32]>::from(Sha256::digest(b"\0weights"))
    );
    assert_eq!(
        (shard.shard_index, shard.shard_count, shard.bytes),
        (1, 4, 7)
    );
    assert_eq!(shard.key_id, m.key_id());
    assert!(shard.device.is_simulated());
}

#[test]
fn capacity_is_accounted_and_released() {
    let m = manager(10);
    let a = m.seal_shard(&spec(0), &[1; 6]).unwrap();
    assert_eq!(
        (m.used_bytes(), m.available_bytes(), m.resident_shards()),
        (6, 4, 1)
    );
    let err = m.seal_shard(&spec(1), &[2; 5]).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::CapacityExceeded {
                requested: 5,
                available: 4,
                capacity: 10
            }
        ),
        "{err}"
    );
    m.deallocate(a).unwrap();
    assert_eq!(m.available_bytes(), 10);
    m.seal_shard(&spec(1), &[2; 10]).unwrap();
}

#[test]
fn bad_specs_are_refused_before_allocating() {
    let m = manager(1024);
    let err = m
        .seal_shard(&ShardSpec::new("x", "m", 4, 4), b"a")
        .unwrap_err();
    assert!(
        matches!(err, SealError::IndexOutOfRange { index: 4, count: 4 }),
        "{err}"
    );
    let err = m.seal_shard(&spec(0), b"").unwrap_err();
    assert!(matches!(err, SealError::Empty), "{err}");
    assert!(take_types(&m).is_empty());
    assert_eq!(m.backend().allocation_count(), 0);
}

#[test]
fn device_copy_that_differs_from_source_is_refused_and_freed() {
    let m = manager_with(Faulty::default());
    m.backend().corrupt_uploads.store(true, Ordering::Relaxed);
    let err = m.seal_shard(&spec(0), b"abc").unwrap_err();
    assert!(matches!(err, SealError::ResidentMismatch { .. }), "{err}");
    let events = take_events(&m);
    let types: Vec<_> = events.iter().map(AuditEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "vram.allocated",
            "vram.seal_verification_failed",
            "vram.deallocated"
        ]
    );
    match &events[1] {
        AuditEvent::SealVerificationFailed {
            digests: Some(d),
            reason,
            ..
        } => {
            assert_ne!(d.expected, d.actual);
            assert!(reason.as_str().starts_with("seal refused"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        (m.used_bytes(), m.backend().inner.allocation_count()),
        (0, 0)
    );
}

#[test]
fn backend_allocation_failure_is_recorded_with_its_reason() {
    let m = manager_with(Faulty::default());
    m.backend()
        .refuse_allocations
        .store(true, Ordering::Relaxed);
    let err = m.seal_shard(&spec(0), b"abc").unwrap_err();
    assert!(matches!(err, SealError::Allocation(_)), "{err}");
    match take_events(&m).as_slice() {
        [
            AuditEvent::VramAllocationFailed {
                requested_bytes: 3,
                reason,
                ..
            },
        ] => {
            assert!(reason.as_str().contains("refused"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.used_bytes(), 0);
}

#[test]
fn allocation_that_is_not_device_memory_is_a_policy_violation() {
    let m = manager_with(Faulty::default());
    m.backend()
        .refuse_as_not_device_memory
        .store(true, Ordering::Relaxed);
    let err = m.seal_shard(&spec(0), b"abc").unwrap_err();
    assert!(
        matches!(
            err,
            SealError::Allocation(BackendError::NotDeviceMemory { .. })
        ),
        "{err}"
    );
    match take_events(&m).as_slice() {
        [
            AuditEvent::VramAllocationFailed { .. },
            AuditEvent::PolicyViolation {
                policy,
                violation,
                shard_id,
                ..
            },
        ] => {
            assert_eq!(policy.as_str(), crate::policy::DEVICE_MEMORY_TYPE);
            assert!(violation.as_str().contains("managed"), "{violation}");
            assert_eq!(shard_id.as_ref().map(|s| s.as_str()), Some("m#0"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        (m.used_bytes(), m.backend().inner.allocation_count()),
        (0, 0)
    );
}

#[test]
fn short_source_is_refused_and_freed() {
    let m = manager(1024);
    let mut source: &[u8] = b"abc";
    let err = m
        .seal_shard_from_reader(&spec(0), 5, &mut source, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealError::SourceTooShort {
                expected: 5,
                found: 3
            }
        ),
        "{err}"
    );
    assert_eq!(take_types(&m), ["vram.allocated", "vram.deallocated"]);
    assert_eq!(m.used_bytes(), 0);
}

#[test]
fn large_shard_is_uploaded_in_chunks_with_progress() {
    let len = UPLOAD_CHUNK_BYTES + 3;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let m = manager(1 << 30);
    let mut seen = Vec::new();
    let mut source = data.as_slice();
    let shard = m
        .seal_shard_from_reader(&spec(0), len as u64, &mut source, &mut |done| {
            seen.push(done)
        })
        .unwrap();
    assert_eq!(seen, [UPLOAD_CHUNK_BYTES as u64, len as u64]);
    m.verify_sealed(&shard).unwrap();
}

#[test]
fn forged_deallocate_is_a_policy_violation_and_frees_nothing() {
    let m = manager(1024);
    let shard = m.seal_shard(&spec(0), b"abc").unwrap();
    take_events(&m);
    let mut forged = shard.clone();
    forged.shard_index = 2;
    let err = m.deallocate(forged).unwrap_err();
    assert!(matches!(
        err,
        DeallocError::Handle {
            source: HandleError::BadSignature,
            ..
        }
    ));
    match take_events(&m).as_slice() {
        [
            AuditEvent::PolicyViolation {
                policy,
                shard_id: Some(id),
                ..
            },
        ] => {
            assert_eq!(policy.as_str(), crate::policy::HANDLE_INTEGRITY);
            assert_eq!(id.as_str(), "m#0");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.resident_shards(), 1);
    m.verify_sealed(&shard).unwrap();
}

#[test]
fn double_deallocate_is_a_lifetime_violation() {
    let m = manager(1024);
    let shard = m.seal_shard(&spec(0), b"abc").unwrap();
    m.deallocate(shard.clone()).unwrap();
    take_events(&m);
    let err = m.deallocate(shard).unwrap_err();
    assert!(
        matches!(
            err,
            DeallocError::Handle {
                source: HandleError::Stale,
                ..
            }
        ),
        "{err}"
    );
    match take_events(&m).as_slice() {
        [AuditEvent::PolicyViolation { policy, .. }] => {
            assert_eq!(policy.as_str(), crate::policy::HANDLE_LIFETIME);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn stale_handle_does_not_reach_the_slots_next_occupant() {
    let m = manager(1024);
    let old = m.seal_shard(&spec(0), b"old").unwrap();
    m.deallocate(old.clone()).unwrap();
    let new = m.seal_shard(&spec(1), b"new").unwrap();
    assert_eq!(old.handle.slot, new.handle.slot);
    let err = m.verify_sealed(&old).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Handle {
                source: HandleError::Stale,
                ..
            }
        ),
        "{err}"
    );
    m.verify_sealed(&new).unwrap();
}

#[test]
fn refused_free_keeps_bytes_counted_and_handle_spent() {
    let m = manager_with(Faulty::default());
    let shard = m.seal_shard(&spec(0), b"abc").unwrap();
    m.backend().refuse_frees.store(true, Ordering::Relaxed);
    let err = m.deallocate(shard.clone()).unwrap_err();
    assert!(matches!(err, DeallocError::Backend { .. }), "{err}");
    assert_eq!((m.used_bytes(), m.resident_shards()), (3, 0));
    assert!(m.verify_sealed(&shard).is_err());
}

#[test]
fn residency_policy_refuses_simulation_before_allocating() {
    let logger = Arc::new(AuditLogger::disabled());
    let config = ManagerConfig::new("w").with_device_residency_required(true);
    let m = VramManager::new(
        HostBackend::new(),
        SealKey::generate().unwrap(),
        logger,
        config,
    );
    let err = m.seal_shard(&spec(0), b"abc").unwrap_err();
    assert!(
        matches!(
            err,
            SealError::ResidencyPolicy {
                backend: "host-simulation"
            }
        ),
        "{err}"
    );
    assert_eq!(take_types(&m), ["vram.policy_violation"]);
    assert_eq!(m.backend().allocation_count(), 0);
}

#[test]
fn dropping_the_manager_frees_what_is_resident() {
    let backend = Arc::new(HostBackend::with_capacity(1024));
    let m = manager_with(Arc::clone(&backend));
    m.seal_shard(&spec(0), b"abc").unwrap();
    m.seal_shard(&spec(1), b"defg").unwrap();
    assert_eq!(backend.allocation_count(), 2);
    drop(m);
    assert_eq!((backend.allocation_count(), backend.used_bytes()), (0, 0));
}

#[test]
fn debug_shows_no_key_material() {
    let m = manager(16);
    let shown = format!("{m:?}");
    assert!(shown.contains(&m.key_id().to_string()), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn manager_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<VramManager<HostBackend>>();
    shareable::<VramManager<Box<dyn VramBackend>>>();
}

#[test]
fn concurrent_seals_never_overcommit_capacity() {
    let m = manager(5_000);
    let sealed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..8u32 {
            let (m, sealed) = (&m, &sealed);
            scope.spawn(move || {
                for i in 0..10u32 {
                    let spec = ShardSpec::new(format!("t{thread}#{i}"), "m", i, 10);
                    match m.seal_shard(&spec, &[1; 100]) {
                        Ok(_) => {
                            sealed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(SealError::CapacityExceeded { .. }) => {}
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
            });
        }
    });
    assert_eq!(sealed.into_inner(), 50);
    assert_eq!((m.used_bytes(), m.backend().used_bytes()), (5_000, 5_000));
}
