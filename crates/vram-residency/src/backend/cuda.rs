//! [`CudaBackend`]: shards in the memory of an NVIDIA GPU, through the CUDA
//! driver API ([`cudarc`]).
//!
//! The driver (`libcuda`) and the run-time compiler (`libnvrtc`) are loaded
//! when a backend is made, not linked, so the crate builds and its tests run
//! where no CUDA is installed; there [`CudaBackend::new`] returns
//! [`BackendError::NoCudaDriver`] (or [`BackendError::NoNvrtc`]) instead of
//! panicking, which is what `cudarc` itself would do on a missing library.
//!
//! What it does, and why:
//!
//! - **One context per device, bound on every call.** The backend retains
//!   the device's primary context and makes it current on the calling
//!   thread at the start of every operation, so a manager shared between
//!   threads never issues a call against whatever context a thread happened
//!   to have. The device is identified by its UUID as well as its index.
//! - **Residency checks.** An integrated GPU, whose "device memory" is host
//!   memory, is refused when the backend is made. Every allocation is plain
//!   `cuMemAlloc` device memory (never managed), and is then checked
//!   through its pointer attributes: memory type device, on this device's
//!   ordinal, not managed. An allocation that fails the check is freed and
//!   refused with [`BackendError::NotDeviceMemory`], which the manager
//!   records as a [`DEVICE_MEMORY_TYPE`](crate::policy::DEVICE_MEMORY_TYPE)
//!   policy violation.
//! - **Uploads through a ring of pinned staging buffers on one stream.**
//!   [`upload`](VramBackend::upload) copies the caller's bytes into the next
//!   of [`STAGING_SLOTS`] page-locked buffers, queues an asynchronous copy
//!   to the device, and returns; it waits only when it comes back round to
//!   a buffer whose copy has not finished. The manager reads and hashes the
//!   next piece of the file while the previous ones are copied. Nothing
//!   synchronizes the device: digests, reads and wipes are queued on the
//!   same stream, after the copies, and the stream is synchronized only
//!   when a result comes back (a digest's leaf hashes, a read) or before
//!   memory is freed.
//! - **Digests on the device.** [`digest`](VramBackend::digest) launches the
//!   leaf kernel of `kernels/chunk_sha256.c` (compiled once per backend with
//!   NVRTC, for the device's compute capability), one thread per 16 KiB
//!   chunk, and copies back only the 32-byte leaf hashes (0.2% of the
//!   bytes). The host folds them into the RFC 9162 root with
//!   [`audit_logging::merkle`], exactly as [`crate::digest::chunk_root`]
//!   does, so both backends give the same root for the same bytes.
//! - **Wiped on free.** [`free`](VramBackend::free) and `Drop` zero every
//!   allocation on the device before releasing it, so the next user of that
//!   memory does not find the weights.
//!
//! One lock serializes the backend's operations: uploads, digests and reads
//! of different shards do not run concurrently on the device.
//!
//! This module is the crate's only `unsafe` code: the driver API is C.
//! Every block says what it relies on.
//!
//! It has not yet run on a GPU (see the crate's Limitations):
//! `scripts/gpu-check.sh` runs its tests and benchmark where there is one.
//! `cudarc` resolves each driver function on its first call and panics if
//! the driver lacks it; [`CudaBackend::new`] turns such a panic into an
//! error, and every function used afterwards is one that drivers have had
//! since CUDA 10.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use audit_logging::merkle::{CompactRange, Hash};
use cudarc::driver::sys::{
    CUdevice_attribute, CUdeviceptr, CUevent_flags, CUmemorytype, CUpointer_attribute,
};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaStream, DriverError, LaunchConfig, PushKernelArg,
    result,
};
use cudarc::nvrtc::{CompileError, CompileOptions};

use super::{AllocationId, BackendInfo, BackendKind, DeviceIdentity, MAX_READ_BYTES, VramBackend};
use crate::digest::CHUNK_BYTES;
use crate::error::BackendError;

/// Page-locked staging buffers in the upload ring.
pub const STAGING_SLOTS: usize = 4;

/// Size of one staging buffer: 8 MiB, the manager's upload piece
/// ([`UPLOAD_CHUNK_BYTES`](crate::UPLOAD_CHUNK_BYTES)).
pub const STAGING_BYTES: usize = 8 << 20;

/// Threads per block of the leaf kernel; `sealtrail_chunk_leaves_host` in
/// the kernel file walks the same grid.
const THREADS_PER_BLOCK: u32 = 128;

/// The leaf kernel's source, compiled at run time.
const KERNEL_SOURCE: &str = include_str!("../../kernels/chunk_sha256.c");

/// The kernel's name in [`KERNEL_SOURCE`].
const KERNEL_NAME: &str = "sealtrail_chunk_leaves";

/// A shard in the memory of one NVIDIA GPU. See the [module docs](self).
pub struct CudaBackend {
    info: BackendInfo,
    /// Peak memory bandwidth from the device's attributes, bytes/second.
    bandwidth: Option<u64>,
    state: Mutex<State>,
    leaves: CudaFunction,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
}

struct State {
    /// Never reused, so a freed id cannot alias a later allocation.
    next_id: u64,
    used: u64,
    allocations: HashMap<u64, DeviceBuffer>,
    ring: Vec<StagingSlot>,
    next_slot: usize,
}

#[derive(Clone, Copy)]
struct DeviceBuffer {
    ptr: CUdeviceptr,
    len: usize,
}

/// One page-locked buffer of the ring, and the event recorded after the
/// copy out of it was queued.
struct StagingSlot {
    host: *mut u8,
    copied: CudaEvent,
}

// SAFETY: the slot's page-locked buffer belongs to the backend alone and is
// only touched under the backend's lock; the raw pointer is what makes the
// type !Send by default.
unsafe impl Send for StagingSlot {}

impl Drop for StagingSlot {
    fn drop(&mut self) {
        // The copy out of the buffer must finish before it is freed.
        let _ = self.copied.synchronize();
        // SAFETY: allocated by `staging_ring` with cuMemHostAlloc and freed
        // only here; no queued copy reads it any more.
        let _ = unsafe { result::free_host(self.host.cast()) };
    }
}

/// What a panic inside `cudarc` during [`CudaBackend::new`] said, kept in
/// the error: a missing driver symbol names itself there, and so does any
/// other panic that would otherwise pass for an old driver.
fn panic_reason(payload: &(dyn Any + Send)) -> String {
    let said = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    format!(
        "cudarc panicked while opening the device ({said}); a missing symbol means a \
         driver or NVRTC older than sealtrail needs"
    )
}

fn cuda(call: &'static str) -> impl FnOnce(DriverError) -> BackendError {
    move |error| BackendError::Cuda {
        call,
        reason: error.to_string(),
    }
}

impl CudaBackend {
    /// Opens CUDA device `index`: loads the driver and NVRTC, retains the
    /// device's primary context, refuses an integrated GPU, compiles the
    /// digest kernel, and sets up the stream and the staging ring.
    ///
    /// Fails with [`BackendError::NoCudaDriver`] where `libcuda` cannot be
    /// loaded and [`BackendError::NoNvrtc`] where `libnvrtc` cannot; never
    /// panics for want of either.
    pub fn new(index: u32) -> Result<Self, BackendError> {
        // SAFETY: only tries to open the library; loads no symbol.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(BackendError::NoCudaDriver);
        }
        // SAFETY: as above.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(BackendError::NoNvrtc);
        }
        // cudarc panics when a driver symbol its bindings name is missing
        // (a driver older than the bindings); that must be an error here.
        catch_unwind(AssertUnwindSafe(|| Self::open(index))).unwrap_or_else(|payload| {
            Err(BackendError::Cuda {
                call: "driver initialization",
                reason: panic_reason(payload.as_ref()),
            })
        })
    }

    fn open(index: u32) -> Result<Self, BackendError> {
        result::init().map_err(cuda("cuInit"))?;
        let count = result::device::get_count().map_err(cuda("cuDeviceGetCount"))?;
        let count = u32::try_from(count).unwrap_or(0);
        if index >= count {
            return Err(BackendError::NoSuchDevice { index, count });
        }
        let ordinal =
            usize::try_from(index).map_err(|_| BackendError::NoSuchDevice { index, count })?;
        let ctx = CudaContext::new(ordinal).map_err(cuda("cuDevicePrimaryCtxRetain"))?;
        let attribute = |a| ctx.attribute(a).map_err(cuda("cuDeviceGetAttribute"));
        if attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_INTEGRATED)? != 0 {
            return Err(BackendError::NotDeviceMemory {
                device: index,
                reason: "an integrated GPU: its memory is host memory".into(),
            });
        }
        let name = ctx.name().map_err(cuda("cuDeviceGetName"))?;
        let uuid = format_uuid(&ctx.uuid().map_err(cuda("cuDeviceGetUuid"))?.bytes);
        let total = ctx.total_mem().map_err(cuda("cuDeviceTotalMem"))?;
        let (free, _) = ctx.mem_get_info().map_err(cuda("cuMemGetInfo"))?;
        // Only the benchmark uses these, and newer drivers deprecate the
        // clock attribute: a device without them is still a device.
        let clock_khz = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).ok();
        let bus_bits =
            attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).ok();
        let (major, minor) = ctx
            .compute_capability()
            .map_err(cuda("cuDeviceGetAttribute"))?;

        let leaves = compile_leaf_kernel(&ctx, major, minor)?;
        let stream = ctx.new_stream().map_err(cuda("cuStreamCreate"))?;
        let ring = staging_ring(&ctx)?;

        let device = DeviceIdentity {
            kind: BackendKind::Cuda,
            index,
            uuid: Some(uuid),
            name,
        };
        // What is free now, not the total: other processes' memory is not
        // ours to promise.
        let capacity_bytes = u64::try_from(free.min(total)).unwrap_or(u64::MAX);
        Ok(CudaBackend {
            info: BackendInfo {
                device,
                capacity_bytes,
            },
            bandwidth: clock_khz
                .zip(bus_bits)
                .and_then(|(c, b)| peak_bandwidth(c, b)),
            state: Mutex::new(State {
                next_id: 0,
                used: 0,
                allocations: HashMap::new(),
                ring,
                next_slot: 0,
            }),
            leaves,
            stream,
            ctx,
        })
    }

    /// The device's peak memory bandwidth in bytes per second, from its
    /// attributes (memory clock × bus width × 2 for double data rate), where
    /// the driver reports them.
    pub fn peak_bandwidth_bytes_per_second(&self) -> Option<u64> {
        self.bandwidth
    }

    /// Bytes currently allocated.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used
    }

    /// Number of live allocations.
    pub fn allocation_count(&self) -> usize {
        self.lock().allocations.len()
    }

    /// Checks again, through its pointer attributes, that `alloc` is device
    /// memory of this device and not managed, as [`allocate`] checked when it
    /// was made.
    ///
    /// [`allocate`]: VramBackend::allocate
    pub fn confirm_residency(&self, alloc: AllocationId) -> Result<(), BackendError> {
        let state = self.lock();
        let buffer = buffer(&state, alloc)?;
        self.bind()?;
        self.check_residency(buffer.ptr)
    }

    /// Writes `value` over the byte at `offset` with a device memset, not
    /// through the upload path, so a test can show a digest catching a
    /// change made on the device itself.
    #[cfg(feature = "fault-injection")]
    pub fn overwrite_byte_on_device(
        &self,
        alloc: AllocationId,
        offset: u64,
        value: u8,
    ) -> Result<(), BackendError> {
        let state = self.lock();
        self.bind()?;
        let buffer = buffer(&state, alloc)?;
        let target = device_address(buffer, offset, 1)?;
        // SAFETY: `target` is inside a live allocation of this context.
        unsafe { result::memset_d8_async(target, value, 1, self.stream.cu_stream()) }
            .map_err(cuda("cuMemsetD8Async"))?;
        self.sync()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every operation leaves `State` consistent before anything that
        // could panic, so the data behind a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes this backend's context current on the calling thread.
    fn bind(&self) -> Result<(), BackendError> {
        self.ctx.bind_to_thread().map_err(cuda("cuCtxSetCurrent"))
    }

    fn sync(&self) -> Result<(), BackendError> {
        self.stream
            .synchronize()
            .map_err(cuda("cuStreamSynchronize"))
    }

    /// Confirms through its pointer attributes that `ptr` is device memory
    /// of this device, not managed.
    fn check_residency(&self, ptr: CUdeviceptr) -> Result<(), BackendError> {
        let device = self.info.device.index;
        let refuse = |reason: String| BackendError::NotDeviceMemory { device, reason };
        let memory_type: u32 =
            pointer_attribute(ptr, CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE)?;
        if memory_type != CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 {
            return Err(refuse(format!(
                "the driver reports memory type {memory_type}, not device memory"
            )));
        }
        let managed: u32 =
            pointer_attribute(ptr, CUpointer_attribute::CU_POINTER_ATTRIBUTE_IS_MANAGED)?;
        if managed != 0 {
            return Err(refuse("the allocation is managed (unified) memory".into()));
        }
        let ordinal: i32 = pointer_attribute(
            ptr,
            CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        )?;
        if u32::try_from(ordinal).ok() != Some(device) {
            return Err(refuse(format!("the allocation is on device {ordinal}")));
        }
        Ok(())
    }

    /// Zeroes and frees one allocation. The caller holds the lock and has
    /// removed it from the table.
    fn wipe_and_free(&self, buffer: DeviceBuffer) -> Result<(), BackendError> {
        // SAFETY: `buffer` is a live allocation of this context, removed from
        // the table so nothing else uses it; the stream is synchronized
        // before it is freed, so no queued work touches freed memory.
        unsafe {
            result::memset_d8_async(buffer.ptr, 0, buffer.len, self.stream.cu_stream())
                .map_err(cuda("cuMemsetD8Async"))?;
            self.sync()?;
            result::free_sync(buffer.ptr).map_err(cuda("cuMemFree"))
        }
    }
}

/// Compiles the leaf kernel for compute capability `major.minor` and loads it.
fn compile_leaf_kernel(
    ctx: &Arc<CudaContext>,
    major: i32,
    minor: i32,
) -> Result<CudaFunction, BackendError> {
    let options = CompileOptions {
        options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
        name: Some("chunk_sha256.cu".into()),
        ..CompileOptions::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(KERNEL_SOURCE, options)
        .map_err(|e| BackendError::KernelCompile(compile_failure(e)))?;
    let module = ctx.load_module(ptx).map_err(|e| BackendError::Cuda {
        call: "cuModuleLoadData",
        reason: format!("{e} ({})", toolchain_versions()),
    })?;
    module
        .load_function(KERNEL_NAME)
        .map_err(cuda("cuModuleGetFunction"))
}

/// NVRTC's error with its log as the compiler wrote it, line by line, not
/// escaped into one line as `cudarc` shows it.
fn compile_failure(error: CompileError) -> String {
    match error {
        CompileError::CompileError {
            nvrtc,
            options,
            log,
        } => format!(
            "{nvrtc} with options {options:?}; NVRTC's log:\n{}",
            log.to_string_lossy().trim_end()
        ),
        other => other.to_string(),
    }
}

/// The NVRTC and driver versions, for a module the driver will not load:
/// PTX from an NVRTC newer than the driver is refused
/// (`CUDA_ERROR_UNSUPPORTED_PTX_VERSION`), and the fix is an NVRTC no newer
/// than the driver's CUDA version.
fn toolchain_versions() -> String {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints; NVRTC was loaded to compile the kernel.
    let nvrtc = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_or_else(|_| "unknown".into(), |()| format!("{major}.{minor}"));
    let mut driver = 0;
    // SAFETY: writes one int; the driver is loaded and initialized.
    let driver = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut driver) }
        .result()
        .map_or_else(|_| "unknown".into(), |()| cuda_version(driver));
    format!("PTX from NVRTC {nvrtc}; the driver supports CUDA {driver}")
}

/// A CUDA version as the driver encodes it (1000 × major + 10 × minor).
fn cuda_version(encoded: i32) -> String {
    format!("{}.{}", encoded / 1000, encoded % 1000 / 10)
}

fn staging_ring(ctx: &Arc<CudaContext>) -> Result<Vec<StagingSlot>, BackendError> {
    let mut ring = Vec::with_capacity(STAGING_SLOTS);
    for _ in 0..STAGING_SLOTS {
        let copied = ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DISABLE_TIMING))
            .map_err(cuda("cuEventCreate"))?;
        // SAFETY: allocates page-locked host memory for the bound context;
        // freed by `StagingSlot`'s `Drop`.
        let host = unsafe { result::malloc_host(STAGING_BYTES, 0) }
            .map_err(cuda("cuMemHostAlloc"))?
            .cast::<u8>();
        // Pushed at once, so it is freed even if a later slot fails.
        ring.push(StagingSlot { host, copied });
    }
    Ok(ring)
}

fn pointer_attribute<T: Default>(
    ptr: CUdeviceptr,
    attribute: CUpointer_attribute,
) -> Result<T, BackendError> {
    let mut value = T::default();
    // SAFETY: every attribute asked for here is at most 32 bits wide (an
    // enum, an int, or a bool that fills the low byte of the zeroed value),
    // and `T` is u32 or i32 at every call site.
    unsafe { cudarc::driver::sys::cuPointerGetAttribute((&raw mut value).cast(), attribute, ptr) }
        .result()
        .map_err(cuda("cuPointerGetAttribute"))?;
    Ok(value)
}

/// A UUID as `nvidia-smi` shows it: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn format_uuid(bytes: &[std::ffi::c_char; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{:02x}", *b as u8)).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// Peak bandwidth in bytes per second from the memory clock (kHz) and the
/// bus width (bits), counting two transfers per clock; `None` where either
/// is not a positive number (a driver that no longer fills in the
/// deprecated clock attribute answers 0, which is no bandwidth to divide by).
fn peak_bandwidth(clock_khz: i32, bus_bits: i32) -> Option<u64> {
    let clock = u64::try_from(clock_khz).ok()?.checked_mul(1000)?;
    let bus_bytes = u64::try_from(bus_bits).ok()? / 8;
    clock
        .checked_mul(bus_bytes)?
        .checked_mul(2)
        .filter(|peak| *peak > 0)
}

fn buffer(state: &State, alloc: AllocationId) -> Result<DeviceBuffer, BackendError> {
    state
        .allocations
        .get(&alloc.get())
        .copied()
        .ok_or(BackendError::UnknownAllocation(alloc))
}

/// The device address of `offset..offset + len` in `buffer`.
fn device_address(
    buffer: DeviceBuffer,
    offset: u64,
    len: usize,
) -> Result<CUdeviceptr, BackendError> {
    let size = u64::try_from(buffer.len).unwrap_or(u64::MAX);
    let len64 = u64::try_from(len).unwrap_or(u64::MAX);
    offset
        .checked_add(len64)
        .filter(|end| *end <= size)
        .and_then(|_| buffer.ptr.checked_add(offset))
        .ok_or(BackendError::OutOfBounds {
            offset,
            len: len64,
            size,
        })
}

impl fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaBackend")
            .field("info", &self.info)
            .field("used_bytes", &self.used_bytes())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CudaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.info, f)
    }
}

impl VramBackend for CudaBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn allocate(&self, bytes: u64) -> Result<AllocationId, BackendError> {
        let mut state = self.lock();
        let len = super::check_request(bytes, self.info.capacity_bytes, state.used)?;
        let refused = |reason: String| BackendError::AllocationRefused {
            requested: bytes,
            reason,
        };
        let id = state.next_id;
        let next_id = id
            .checked_add(1)
            .ok_or_else(|| refused("allocation ids exhausted".into()))?;
        self.bind()?;
        // SAFETY: plain device memory (cuMemAlloc, never managed); freed by
        // `free` or `Drop`, or below if the residency check refuses it.
        let ptr = unsafe { result::malloc_sync(len) }.map_err(|e| refused(e.to_string()))?;
        if let Err(refusal) = self.check_residency(ptr) {
            // SAFETY: just allocated, never used.
            let _ = unsafe { result::free_sync(ptr) };
            return Err(refusal);
        }
        state.next_id = next_id;
        // `check_request` saw `bytes <= capacity - used`: this cannot overflow.
        state.used = state.used.saturating_add(bytes);
        state.allocations.insert(id, DeviceBuffer { ptr, len });
        Ok(AllocationId::new(id))
    }

    fn upload(&self, alloc: AllocationId, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut state = self.lock();
        let target = buffer(&state, alloc)?;
        device_address(target, offset, data.len())?;
        self.bind()?;
        let mut at = offset;
        for piece in data.chunks(STAGING_BYTES) {
            let dst = device_address(target, at, piece.len())?;
            let index = state.next_slot;
            state.next_slot = index.wrapping_add(1) % STAGING_SLOTS;
            let slot = state
                .ring
                .get_mut(index)
                .ok_or_else(|| BackendError::Cuda {
                    call: "staging ring",
                    reason: "no staging buffer".into(),
                })?;
            // Wait for the copy queued from this buffer last time round.
            slot.copied
                .synchronize()
                .map_err(cuda("cuEventSynchronize"))?;
            // SAFETY: the buffer holds STAGING_BYTES >= piece.len() bytes, no
            // copy reads it any more (just waited), and it stays allocated
            // until the slot's `Drop`, which waits for the copy first. The
            // bytes are written through the raw pointer before any slice of
            // them exists, since a fresh buffer is uninitialized. The queued
            // copy reads `staged` after this returns, which is why it is
            // pinned memory owned by the backend and not the caller's slice.
            unsafe {
                std::ptr::copy_nonoverlapping(piece.as_ptr(), slot.host, piece.len());
                let staged = std::slice::from_raw_parts(slot.host.cast_const(), piece.len());
                result::memcpy_htod_async(dst, staged, self.stream.cu_stream())
                    .map_err(cuda("cuMemcpyHtoDAsync"))?;
            }
            slot.copied
                .record(&self.stream)
                .map_err(cuda("cuEventRecord"))?;
            at = at.saturating_add(u64::try_from(piece.len()).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    fn digest(&self, alloc: AllocationId) -> Result<[u8; 32], BackendError> {
        let state = self.lock();
        let source = buffer(&state, alloc)?;
        self.bind()?;
        let chunks = source.len.div_ceil(CHUNK_BYTES);
        let leaf_bytes = chunks.checked_mul(32).ok_or(BackendError::Cuda {
            call: "digest",
            reason: "too many chunks".into(),
        })?;
        let blocks = u32::try_from(chunks.div_ceil(THREADS_PER_BLOCK as usize)).map_err(|_| {
            BackendError::Cuda {
                call: "digest",
                reason: "too many chunks for one launch".into(),
            }
        })?;
        let mut leaves = vec![0u8; leaf_bytes];
        // SAFETY: a scratch buffer for the leaf hashes, freed below on every
        // path after the stream is synchronized.
        let out = unsafe { result::malloc_sync(leaf_bytes) }.map_err(cuda("cuMemAlloc"))?;
        let len = u64::try_from(source.len).unwrap_or(u64::MAX);
        let count = u64::try_from(chunks).unwrap_or(u64::MAX);
        let launched = {
            let mut launch = self.stream.launch_builder(&self.leaves);
            launch.arg(&source.ptr).arg(&len).arg(&count).arg(&out);
            let config = LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (THREADS_PER_BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the kernel's parameters are (const u8 *, u64, u64,
            // u8 *), as pushed; it reads `len` bytes of `source` and writes
            // 32 bytes per chunk, `leaf_bytes` in all, to `out`.
            unsafe { launch.launch(config) }
                .map_err(cuda("cuLaunchKernel"))
                .and_then(|_| {
                    // SAFETY: `leaves` has `leaf_bytes` bytes, as `out`
                    // does; the stream is synchronized before it is read.
                    unsafe { result::memcpy_dtoh_async(&mut leaves, out, self.stream.cu_stream()) }
                        .map_err(cuda("cuMemcpyDtoHAsync"))
                })
                .and_then(|()| self.sync())
        };
        // SAFETY: allocated above; the stream was synchronized (or failed,
        // in which case the context is unusable and freeing is harmless).
        let _ = unsafe { result::free_sync(out) };
        launched?;
        let mut tree = CompactRange::new();
        for leaf in leaves.chunks_exact(32) {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(leaf);
            // A tree of 2^64 chunks would be 2^78 bytes; no shard gets there.
            let _ = tree.append(Hash(hash));
        }
        Ok(tree.root().0)
    }

    fn read(&self, alloc: AllocationId, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let requested = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if requested > MAX_READ_BYTES {
            return Err(BackendError::ReadTooLarge {
                requested,
                limit: MAX_READ_BYTES,
            });
        }
        let state = self.lock();
        let source = device_address(buffer(&state, alloc)?, offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: `source..source + buf.len()` is inside a live allocation;
        // the stream is synchronized before `buf` is returned.
        unsafe { result::memcpy_dtoh_async(buf, source, self.stream.cu_stream()) }
            .map_err(cuda("cuMemcpyDtoHAsync"))?;
        self.sync()
    }

    fn free(&self, alloc: AllocationId) -> Result<(), BackendError> {
        let mut state = self.lock();
        let buffer = state
            .allocations
            .remove(&alloc.get())
            .ok_or(BackendError::UnknownAllocation(alloc))?;
        let bytes = u64::try_from(buffer.len).unwrap_or(u64::MAX);
        state.used = state.used.saturating_sub(bytes);
        self.bind()?;
        self.wipe_and_free(buffer)
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let allocations: Vec<DeviceBuffer> = state.allocations.drain().map(|(_, b)| b).collect();
        if let Err(error) = self.bind() {
            tracing::warn!(%error, "cannot free CUDA allocations: no context");
            return;
        }
        for buffer in allocations {
            if let Err(error) = self.wipe_and_free(buffer) {
                tracing::warn!(%error, "could not wipe and free a CUDA allocation");
            }
        }
        // The staging ring frees itself (`StagingSlot`'s `Drop`) after this.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_shown_as_nvidia_smi_shows_them() {
        let bytes: [std::ffi::c_char; 16] =
            std::array::from_fn(|i| i8::from_ne_bytes([(i as u8) * 17]) as std::ffi::c_char);
        assert_eq!(
            format_uuid(&bytes),
            "GPU-00112233-4455-6677-8899-aabbccddeeff"
        );
    }

    #[test]
    fn peak_bandwidth_counts_two_transfers_per_clock() {
        // An H200's attributes: 3201 MHz, 6144-bit bus: about 4.9 TB/s.
        assert_eq!(
            peak_bandwidth(3_201_000, 6144),
            Some(3_201_000_000 * 768 * 2)
        );
        assert_eq!(peak_bandwidth(-1, 6144), None);
    }

    #[test]
    fn the_missing_nvrtc_error_names_the_library_names_tried() {
        let tried = cudarc::get_lib_name_candidates("nvrtc");
        let shown = BackendError::NoNvrtc.to_string();
        for name in ["libnvrtc.so", "libnvrtc.so.12"] {
            assert!(tried.iter().any(|t| t == name), "{name} not in {tried:?}");
            assert!(shown.contains(name), "{shown}");
        }
        // The message says a CUDA 13 NVRTC needs a plain-named link.
        assert!(!tried.iter().any(|t| t == "libnvrtc.so.13"), "{tried:?}");
    }

    #[test]
    fn cuda_versions_read_as_the_driver_encodes_them() {
        assert_eq!(cuda_version(13000), "13.0");
        assert_eq!(cuda_version(12080), "12.8");
        assert_eq!(cuda_version(11040), "11.4");
    }

    #[test]
    fn a_compile_failure_keeps_the_log_readable() {
        let error = CompileError::CompileError {
            nvrtc: cudarc::nvrtc::result::NvrtcError(
                cudarc::nvrtc::sys::nvrtcResult::NVRTC_ERROR_COMPILATION,
            ),
            options: vec!["--gpu-architecture=compute_90".into()],
            log: c"chunk_sha256.cu(3): error: one\nchunk_sha256.cu(4): error: two\n".into(),
        };
        let shown = compile_failure(error);
        assert!(shown.contains("NVRTC_ERROR_COMPILATION"), "{shown}");
        assert!(shown.contains("compute_90"), "{shown}");
        assert!(
            shown.ends_with("\nchunk_sha256.cu(3): error: one\nchunk_sha256.cu(4): error: two"),
            "{shown}"
        );
    }

    #[test]
    fn a_zero_clock_or_bus_width_is_no_bandwidth() {
        assert_eq!(peak_bandwidth(0, 6144), None);
        assert_eq!(peak_bandwidth(2_619_000, 0), None);
        assert_eq!(peak_bandwidth(2_619_000, 7), None);
    }

    #[test]
    fn a_panic_while_opening_keeps_its_message() {
        let missing = catch_unwind(|| panic!("Missing symbol cuDeviceGetUuid_v2")).unwrap_err();
        let reason = panic_reason(missing.as_ref());
        assert!(
            reason.contains("Missing symbol cuDeviceGetUuid_v2"),
            "{reason}"
        );
        let formatted = catch_unwind(|| panic!("{} {}", "no", "null byte")).unwrap_err();
        assert!(panic_reason(formatted.as_ref()).contains("no null byte"));
        let silent = catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(panic_reason(silent.as_ref()).contains("without a message"));
    }

    #[test]
    fn device_addresses_stay_inside_the_allocation() {
        let buffer = DeviceBuffer {
            ptr: 0x1000,
            len: 16,
        };
        assert_eq!(device_address(buffer, 4, 12).ok(), Some(0x1004));
        assert!(matches!(
            device_address(buffer, 4, 13),
            Err(BackendError::OutOfBounds {
                offset: 4,
                len: 13,
                size: 16
            })
        ));
        assert!(device_address(buffer, u64::MAX, 1).is_err());
    }
}
