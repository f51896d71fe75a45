//! Writer throughput against its physical peer and against itself without
//! forward security, in one run.
//!
//! Each sealtrail variant measures the whole path: `emit_sync` of N events
//! (serialize, queue), the writer (sequence, hash link, HMAC, append) and a
//! final `flush` (fsync).
//! - `keyed chain`: the key never evolves, as in the first version of the
//!   store (one HMAC key for the whole log).
//! - `forward-secure`: the default, a new epoch key every 10 000 records,
//!   each handover made durable and the key file replaced.
//! - `forward-secure, 1 000/epoch`: ten times as many evolutions.
//! - `forward-secure + checkpoints`: the default epochs, and the Merkle tree
//!   with a signed checkpoint every 1 000 records and at the end.
//!
//! The peer writes the same events' JSON, already serialized, as plain
//! lines through a `BufWriter` and fsyncs once: no queue, no thread, no
//! chain, no authenticator.
//!
//! Run: `cargo bench -p audit-logging --bench throughput`
//! (`-- --quick` for a short run).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::forward::DEFAULT_EPOCH_RECORDS;
use audit_logging::logtree::origin_for;
mod common;

use audit_logging::{AuditKey, AuditLogger, LoggerConfig};
use common::event;

fn sealtrail(n: u64, epoch_records: u64, checkpoints: bool) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    // The queue holds the whole run, in events and in bytes, with nothing
    // reserved: every emit is accepted, and the writer's pace is measured.
    let mut config = LoggerConfig::new(dir.path())
        .queue_capacity(n as usize)
        .queue_bytes(usize::MAX)
        .critical_reserve(0)
        .epoch(epoch_records, Duration::from_secs(3600));
    if checkpoints {
        let name = KeyName::new(&origin_for(key.id().as_str())).unwrap();
        config = config.checkpoint_signer(CheckpointSigner::generate(name).unwrap());
    }
    let logger = AuditLogger::open(config, key).unwrap();
    let events: Vec<_> = (0..n).map(event).collect();
    let start = Instant::now();
    for e in events {
        logger.emit_sync(e).unwrap();
    }
    logger.flush().unwrap();
    let took = start.elapsed();
    logger.shutdown().unwrap();
    took
}

fn plain_append(n: u64) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| serde_json::to_string(&event(i)).unwrap())
        .collect();
    let start = Instant::now();
    let file = File::create(dir.path().join("plain.jsonl")).unwrap();
    let mut out = BufWriter::new(file);
    for line in &lines {
        out.write_all(black_box(line).as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.into_inner().unwrap().sync_data().unwrap();
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (20_000, 3) } else { (100_000, 7) };
    // Warm the page cache and the allocator once for each.
    sealtrail(n / 10, u64::MAX, false);
    plain_append(n / 10);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let median_of = |f: &dyn Fn() -> Duration| median((0..rounds).map(|_| f()).collect());
    let keyed = median_of(&|| sealtrail(n, u64::MAX, false));
    let forward = median_of(&|| sealtrail(n, DEFAULT_EPOCH_RECORDS, false));
    let forward_1k = median_of(&|| sealtrail(n, 1_000, false));
    let full = median_of(&|| sealtrail(n, DEFAULT_EPOCH_RECORDS, true));
    let peer = median_of(&|| plain_append(n));
    println!("events per run: {n}, rounds: {rounds} (median shown)");
    for (name, took) in [
        ("keyed chain (no evolution)", keyed),
        ("forward-secure (default)", forward),
        ("forward-secure, 1 000/epoch", forward_1k),
        ("forward-secure + checkpoints", full),
        ("plain append (peer)", peer),
    ] {
        println!("{name:<30} {:>12.0} events/s  ({took:?})", rate(took));
    }
    println!(
        "ratio forward-secure/keyed chain: {:.3}",
        rate(forward) / rate(keyed)
    );
    println!(
        "ratio forward-secure 1k/keyed chain: {:.3}",
        rate(forward_1k) / rate(keyed)
    );
    println!(
        "ratio forward-secure+checkpoints/keyed chain: {:.3}",
        rate(full) / rate(keyed)
    );
    println!("ratio keyed chain/peer: {:.2}", rate(keyed) / rate(peer));
}
