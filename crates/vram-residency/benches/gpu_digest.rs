//! The CUDA backend's upload and on-device seal digest, against the
//! device's memory bandwidth.
//!
//! It uploads a shard of pseudo-random bytes (4 GiB, or
//! `SEALTRAIL_GPU_BENCH_GIB`, at most half the free device memory) through
//! the backend's pinned staging ring in the manager's 8 MiB pieces, checks
//! that the device's root equals [`chunk_root`] of the same bytes on the
//! host, then times the device digest over several rounds. It prints each
//! figure and the ratio of digest throughput to the peak memory bandwidth
//! from the device's attributes (memory clock × bus width × 2); the goal is
//! at least 30%. Nothing is asserted about speed: the exit status is 0 when
//! the roots agree, 1 when they do not (or when `SEALTRAIL_REQUIRE_CUDA=1`
//! and there is no device), and the last line is a summary for
//! `scripts/gpu-check.sh`.
//!
//! Run: `cargo bench -p vram-residency --bench gpu_digest`. Without a CUDA
//! device it says so and exits 0.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use vram_residency::digest::chunk_root;
use vram_residency::{CudaBackend, UPLOAD_CHUNK_BYTES, VramBackend};

const GIB: u64 = 1 << 30;
const ROUNDS: usize = 5;

fn main() -> ExitCode {
    let device = std::env::var("SEALTRAIL_CUDA_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let backend = match CudaBackend::new(device) {
        Ok(backend) => backend,
        Err(error) => {
            println!("gpu-bench: skipped: {error}");
            let required = std::env::var("SEALTRAIL_REQUIRE_CUDA").is_ok_and(|v| v == "1");
            return if required {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    println!("device: {backend}");
    let gib: u64 = std::env::var("SEALTRAIL_GPU_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let bytes = (gib * GIB).min(backend.info().capacity_bytes / 2);
    let len = usize::try_from(bytes).expect("shard fits in memory");
    println!("shard: {:.2} GiB", bytes as f64 / GIB as f64);

    let data = pattern(len);
    let id = backend.allocate(bytes).expect("allocate");
    let started = Instant::now();
    for (i, piece) in data.chunks(UPLOAD_CHUNK_BYTES).enumerate() {
        let offset = (i * UPLOAD_CHUNK_BYTES) as u64;
        backend.upload(id, offset, piece).expect("upload");
    }
    // The first digest waits for the queued copies; time them with it, then
    // take the digest alone below.
    let device_root = backend.digest(id).expect("digest");
    let upload_and_first_digest = started.elapsed();

    let started = Instant::now();
    let host_root = chunk_root(&data).0;
    let host_time = started.elapsed();
    let agree = device_root == host_root;
    println!(
        "roots agree with the host's chunk_root: {agree} ({})",
        hex::encode(device_root)
    );

    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            let root = backend.digest(id).expect("digest");
            let took = started.elapsed();
            assert_eq!(root, device_root, "the device root changed between rounds");
            took
        })
        .collect();
    times.sort_unstable();
    let median = times[ROUNDS / 2];
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e9;
    let digest_gbps = rate(median);
    let peak = backend.peak_bandwidth_bytes_per_second();
    let ratio = peak.map(|p| digest_gbps * 1e9 / p as f64);

    println!(
        "upload (pinned ring) + first digest: {:.1} GB/s",
        rate(upload_and_first_digest)
    );
    println!(
        "host chunk_root, all {} cores: {:.1} GB/s",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rate(host_time)
    );
    println!(
        "device digest, median of {ROUNDS}: {digest_gbps:.1} GB/s ({:.1} ms)",
        median.as_secs_f64() * 1e3
    );
    match (peak, ratio) {
        (Some(peak), Some(ratio)) => println!(
            "peak memory bandwidth (attributes): {:.1} GB/s; digest at {:.1}% of it (goal 30%: {})",
            peak as f64 / 1e9,
            ratio * 100.0,
            if ratio >= 0.30 { "met" } else { "not met" }
        ),
        _ => println!("peak memory bandwidth: not reported by the driver"),
    }
    backend.free(id).expect("free");
    println!(
        "gpu-bench: roots_agree={agree} digest_gbps={digest_gbps:.1} peak_gbps={} ratio={} upload_gbps={:.1}",
        peak.map_or("unknown".into(), |p| format!("{:.1}", p as f64 / 1e9)),
        ratio.map_or("unknown".into(), |r| format!("{r:.3}")),
        rate(upload_and_first_digest)
    );
    if agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Pseudo-random bytes (xorshift64, eight bytes per step), so that no chunk
/// repeats another.
fn pattern(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for word in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    out
}
