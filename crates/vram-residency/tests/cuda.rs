//! The CUDA backend, on a GPU where there is one and on the no-driver path
//! where there is not.
//!
//! Every test but the first needs a CUDA device: without one it prints a
//! line saying it was skipped and passes, unless `SEALTRAIL_REQUIRE_CUDA=1`
//! is set, when it fails instead (`scripts/gpu-check.sh` sets it).
//! `SEALTRAIL_CUDA_DEVICE` picks the device (default 0).

mod common;

use std::ffi::CString;
use std::sync::Arc;

use audit_logging::AuditLogger;
use vram_residency::digest::{CHUNK_BYTES, chunk_root};
use vram_residency::{
    BackendError, BackendKind, CudaBackend, ManagerConfig, SealKey, ShardSpec, VerifyError,
    VramBackend, VramManager,
};

/// Whether the dynamic loader can open the CUDA driver library, asked of
/// the loader directly rather than of the code under test.
fn driver_library_loadable() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let name = CString::new(*name).unwrap();
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                false
            } else {
                libc::dlclose(handle);
                true
            }
        }
    })
}

fn cuda_required() -> bool {
    std::env::var("SEALTRAIL_REQUIRE_CUDA").is_ok_and(|v| v == "1")
}

fn device_index() -> u32 {
    std::env::var("SEALTRAIL_CUDA_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The backend, or `None` (with a line saying why) when there is no usable
/// CUDA device and none is required.
fn backend(test: &str) -> Option<CudaBackend> {
    match CudaBackend::new(device_index()) {
        Ok(backend) => Some(backend),
        Err(error) if !cuda_required() => {
            println!("skipped {test}: {error}");
            None
        }
        Err(error) => panic!("SEALTRAIL_REQUIRE_CUDA=1, but the CUDA backend failed: {error}"),
    }
}

fn manager<B: VramBackend>(backend: B) -> VramManager<B> {
    VramManager::new(
        backend,
        SealKey::generate().unwrap(),
        Arc::new(AuditLogger::disabled()),
        ManagerConfig::new("cuda-test").with_device_residency_required(true),
    )
}

#[test]
fn without_a_driver_the_backend_is_an_error_not_a_panic() {
    let outcome = std::panic::catch_unwind(|| CudaBackend::new(0).map(|_| ()));
    let result = outcome.expect("CudaBackend::new panicked");
    if driver_library_loadable() {
        println!("a CUDA driver is present; the no-driver path is not exercised here");
        assert!(
            !matches!(result, Err(BackendError::NoCudaDriver)),
            "the driver loads, yet the backend says there is none"
        );
    } else {
        assert!(
            matches!(result, Err(BackendError::NoCudaDriver)),
            "{result:?}"
        );
        let shown = BackendError::NoCudaDriver.to_string();
        assert!(shown.contains("no CUDA driver"), "{shown}");
        assert!(
            !cuda_required(),
            "SEALTRAIL_REQUIRE_CUDA=1 but no CUDA driver"
        );
    }
}

#[test]
fn the_device_is_real_memory_named_by_uuid() {
    let Some(backend) = backend("the_device_is_real_memory_named_by_uuid") else {
        return;
    };
    let device = &backend.info().device;
    assert_eq!(device.kind, BackendKind::Cuda);
    assert!(!device.is_simulated());
    assert!(!device.to_device_ref().simulated);
    let uuid = device.uuid.as_deref().unwrap_or_default();
    assert!(uuid.starts_with("GPU-") && uuid.len() == 40, "{uuid}");
    assert!(!backend.to_string().contains("SIMULATED"), "{backend}");
    assert!(backend.info().capacity_bytes > 0);
    println!("{backend}");
}

#[test]
fn our_allocations_pass_the_residency_check_and_are_freed() {
    let Some(backend) = backend("our_allocations_pass_the_residency_check_and_are_freed") else {
        return;
    };
    let ids: Vec<_> = [1u64, 4096, 64 << 20]
        .into_iter()
        .map(|bytes| backend.allocate(bytes).unwrap())
        .collect();
    for id in &ids {
        backend.confirm_residency(*id).unwrap();
    }
    assert_eq!(backend.used_bytes(), 1 + 4096 + (64 << 20));
    for id in ids {
        backend.free(id).unwrap();
        assert!(matches!(
            backend.confirm_residency(id),
            Err(BackendError::UnknownAllocation(_))
        ));
        assert!(matches!(
            backend.digest(id),
            Err(BackendError::UnknownAllocation(_))
        ));
    }
    assert_eq!((backend.allocation_count(), backend.used_bytes()), (0, 0));
    assert!(matches!(backend.allocate(0), Err(BackendError::ZeroSized)));
}

#[test]
fn device_roots_equal_the_host_roots_around_chunk_boundaries() {
    let Some(backend) = backend("device_roots_equal_the_host_roots_around_chunk_boundaries") else {
        return;
    };
    let staging = vram_residency::backend::cuda::STAGING_BYTES;
    let sizes = [
        1,
        55,
        56,
        64,
        CHUNK_BYTES - 1,
        CHUNK_BYTES,
        CHUNK_BYTES + 1,
        3 * CHUNK_BYTES + 7,
        // More chunks than threads in one block of the kernel.
        129 * CHUNK_BYTES + 1,
        // More than one staging buffer in one upload, and than the ring.
        5 * staging + 3,
    ];
    for (seed, len) in sizes.into_iter().enumerate() {
        let data = common::pattern(len, seed as u64 + 1);
        let id = backend.allocate(len as u64).unwrap();
        backend.upload(id, 0, &data).unwrap();
        assert_eq!(
            backend.digest(id).unwrap(),
            chunk_root(&data).0,
            "root of {len} bytes"
        );
        backend.free(id).unwrap();
    }
    assert_eq!((backend.allocation_count(), backend.used_bytes()), (0, 0));
}

#[test]
fn uploads_at_offsets_land_where_they_were_sent() {
    let Some(backend) = backend("uploads_at_offsets_land_where_they_were_sent") else {
        return;
    };
    let data = common::pattern(3 * CHUNK_BYTES + 11, 7);
    let id = backend.allocate(data.len() as u64).unwrap();
    // Out of order and in uneven pieces.
    let cuts = [0, 5000, CHUNK_BYTES + 3, 2 * CHUNK_BYTES, data.len()];
    for pair in cuts.windows(2).rev() {
        backend
            .upload(id, pair[0] as u64, &data[pair[0]..pair[1]])
            .unwrap();
    }
    assert_eq!(backend.digest(id).unwrap(), chunk_root(&data).0);
    let mut back = [0u8; 64];
    backend.read(id, 5000 - 32, &mut back).unwrap();
    assert_eq!(&back[..], &data[5000 - 32..5000 + 32]);
    let mut big = vec![0u8; 4097];
    assert!(matches!(
        backend.read(id, 0, &mut big),
        Err(BackendError::ReadTooLarge { .. })
    ));
    assert!(matches!(
        backend.upload(id, data.len() as u64, b"x"),
        Err(BackendError::OutOfBounds { .. })
    ));
}

#[test]
fn a_byte_changed_by_a_device_memset_changes_the_root() {
    let Some(backend) = backend("a_byte_changed_by_a_device_memset_changes_the_root") else {
        return;
    };
    let mut data = common::pattern(2 * CHUNK_BYTES + 100, 3);
    let id = backend.allocate(data.len() as u64).unwrap();
    backend.upload(id, 0, &data).unwrap();
    let before = backend.digest(id).unwrap();
    let offset = CHUNK_BYTES + 17;
    let value = data[offset] ^ 0x01;
    backend
        .overwrite_byte_on_device(id, offset as u64, value)
        .unwrap();
    data[offset] = value;
    let after = backend.digest(id).unwrap();
    assert_ne!(before, after);
    assert_eq!(after, chunk_root(&data).0);
}

#[test]
fn seal_verify_corrupt_and_stale_handle_through_the_manager() {
    let Some(backend) = backend("seal_verify_corrupt_and_stale_handle_through_the_manager") else {
        return;
    };
    let backend = Arc::new(backend);
    let m = manager(Arc::clone(&backend));
    let data = common::pattern(4 * CHUNK_BYTES + 5, 11);
    let shard = m
        .seal_shard(&ShardSpec::new("gpu#0", "gpu", 0, 2), &data)
        .unwrap();
    assert_eq!(shard.digest, chunk_root(&data));
    assert!(!shard.device.is_simulated());
    m.verify_sealed(&shard).unwrap();

    // Verification from another thread uses the same context.
    std::thread::scope(|s| {
        s.spawn(|| m.verify_sealed(&shard).unwrap());
    });

    let other = m
        .seal_shard(&ShardSpec::new("gpu#1", "gpu", 1, 2), &data)
        .unwrap();
    m.corrupt_resident_byte(&other, 3).unwrap();
    assert!(matches!(
        m.verify_sealed(&other),
        Err(VerifyError::DigestMismatch { .. })
    ));

    m.deallocate(shard.clone()).unwrap();
    assert!(m.verify_sealed(&shard).is_err(), "a stale handle verified");
    assert!(m.deallocate(shard).is_err(), "a stale handle freed twice");

    drop(m);
    assert_eq!((backend.allocation_count(), backend.used_bytes()), (0, 0));
}

#[test]
fn a_device_index_past_the_last_is_refused() {
    let Some(backend) = backend("a_device_index_past_the_last_is_refused") else {
        return;
    };
    drop(backend);
    let result = CudaBackend::new(u32::MAX);
    assert!(
        matches!(result, Err(BackendError::NoSuchDevice { .. })),
        "{result:?}"
    );
}
