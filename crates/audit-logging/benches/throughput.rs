//! Writer throughput against its physical peer, in one run.
//!
//! `sealtrail` measures the whole path: `emit_sync` of N events (serialize,
//! queue), the writer (sequence, hash link, HMAC, append) and a final
//! `flush` (fsync). The peer writes the same events' JSON, already
//! serialized, as plain lines through a `BufWriter` and fsyncs once: no
//! queue, no thread, no chain, no authenticator. The ratio says what the
//! tamper evidence and the never-blocking queue cost.
//!
//! Run: `cargo bench -p audit-logging --bench throughput`
//! (`-- --quick` for a short run).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use audit_logging::{AuditEvent, AuditKey, AuditLogger, DeviceRef, Digest, LoggerConfig};
use chrono::Utc;

fn event(i: u64) -> AuditEvent {
    AuditEvent::VramSealed {
        timestamp: Utc::now(),
        worker_id: "bench-worker".into(),
        shard_id: format!("shard-{i}").into(),
        model_ref: "models/llama-3-8b.safetensors".into(),
        shard_index: 3,
        shard_count: 17,
        device: DeviceRef {
            backend: "host-simulation".into(),
            index: 0,
            uuid: None,
            name: "simulated device 0".into(),
            simulated: true,
        },
        bytes: 1 << 30,
        digest: Digest([0x5a; 32]),
        key_id: "0123456789abcdef".into(),
    }
}

fn sealtrail(n: u64) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path()).queue_capacity(n as usize);
    let logger = AuditLogger::open(config, AuditKey::generate().unwrap()).unwrap();
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
    sealtrail(n / 10);
    plain_append(n / 10);
    let ours = median((0..rounds).map(|_| sealtrail(n)).collect());
    let peer = median((0..rounds).map(|_| plain_append(n)).collect());
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("events per run: {n}, rounds: {rounds} (median shown)");
    println!(
        "sealtrail emit_sync+write+flush: {:>12.0} events/s  ({:?})",
        rate(ours),
        ours
    );
    println!(
        "plain append (peer):             {:>12.0} events/s  ({:?})",
        rate(peer),
        peer
    );
    println!("ratio sealtrail/peer: {:.2}", rate(ours) / rate(peer));
}
