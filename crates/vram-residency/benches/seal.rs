//! Seal digest throughput on the host backend against `sha256sum` and
//! `openssl dgst -sha256` of the same file, in one run.
//!
//! A file of random bytes (512 MiB, or `SEALTRAIL_BENCH_MIB`) is written to
//! a temporary directory and read once so that every contender reads it
//! from the page cache. Then, per round, interleaved:
//! - `sha256sum FILE` and `openssl dgst -sha256 FILE`: one SHA-256 stream,
//!   the peers (process start-up included; a few milliseconds);
//! - `chunk root, 1 thread`: the seal digest of the file
//!   ([`vram_residency::digest`]) streamed through a [`ChunkTree`] on a
//!   one-thread pool: what the tree costs over a plain SHA-256;
//! - `chunk root, all cores`: the same on every core, as `HostBackend`
//!   computes it;
//! - `seal on the host backend`: `seal_shard_from_reader` of the file as
//!   one shard: read, upload into simulated device memory, digest the
//!   source as it goes and the "device" copy afterwards, sign.
//!
//! Each figure is the median over the rounds, in MB/s (10^6 bytes), with
//! its ratio to single-stream OpenSSL. Run:
//! `cargo bench -p vram-residency --bench seal` (`-- --quick` for 128 MiB
//! and 3 rounds).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_logging::AuditLogger;
use vram_residency::digest::ChunkTree;
use vram_residency::{HostBackend, ManagerConfig, SealKey, ShardSpec, VramManager};

const MIB: usize = 1 << 20;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mib: usize = std::env::var("SEALTRAIL_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 128 } else { 512 });
    let rounds = if quick { 3 } else { 5 };
    let bytes = mib * MIB;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard.bin");
    write_random(&path, bytes);
    // Warm the page cache so that nobody pays for the disk.
    digest_file(&path, 0);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("seal digest throughput, {mib} MiB file, {rounds} rounds, {cores} cores");

    let names = [
        "sha256sum (peer)",
        "openssl dgst -sha256 (peer)",
        "chunk root, 1 thread",
        "chunk root, all cores",
        "seal on the host backend",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        times[0].push(time_command("sha256sum", &[path.as_os_str()]));
        times[1].push(time_command(
            "openssl",
            &["dgst".as_ref(), "-sha256".as_ref(), path.as_os_str()],
        ));
        times[2].push(time(|| digest_file(&path, 1)));
        times[3].push(time(|| digest_file(&path, 0)));
        times[4].push(time(|| seal_file(&path, bytes as u64)));
    }

    let rate = |t: &mut Vec<Duration>| {
        t.sort_unstable();
        bytes as f64 / t[t.len() / 2].as_secs_f64() / 1e6
    };
    let rates: Vec<f64> = times.iter_mut().map(rate).collect();
    let openssl = rates[1];
    println!("{:<30} {:>10} {:>14}", "path", "MB/s", "vs openssl");
    for (name, r) in names.iter().zip(&rates) {
        println!("{name:<30} {r:>10.0} {:>13.2}x", r / openssl);
    }
    println!(
        "goal: chunk root on all cores at least 2x single-stream openssl: {:.2}x",
        rates[3] / openssl
    );
}

fn write_random(path: &Path, bytes: usize) {
    let mut file = File::create(path).unwrap();
    let mut block = vec![0u8; 8 * MIB];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..bytes / block.len() {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.sync_all().unwrap();
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn time_command(program: &str, args: &[&std::ffi::OsStr]) -> Duration {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let took = start.elapsed();
    assert!(out.status.success(), "{program} failed");
    took
}

/// The seal digest of the file, read in 8 MiB pieces, on `threads` threads
/// (0: all cores).
fn digest_file(path: &Path, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut file = File::open(path).unwrap();
        let mut buf = vec![0u8; 8 * MIB];
        let mut tree = ChunkTree::new();
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            tree.update(&buf[..n]);
        }
        std::hint::black_box(tree.finish());
    });
}

fn seal_file(path: &Path, bytes: u64) {
    let manager = VramManager::new(
        HostBackend::with_capacity(bytes),
        SealKey::generate().unwrap(),
        Arc::new(AuditLogger::disabled()),
        ManagerConfig::new("bench"),
    );
    let mut file = File::open(path).unwrap();
    let spec = ShardSpec::new("bench#0", "bench", 0, 1);
    let shard = manager
        .seal_shard_from_reader(&spec, bytes, &mut file, &mut |_| {})
        .unwrap();
    std::hint::black_box(&shard);
    manager.deallocate(shard).unwrap();
}
