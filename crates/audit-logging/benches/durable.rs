//! Durable emits with group commit against one fsync per record, in one
//! run.
//!
//! Baselines, one fsync per record:
//! - `plain fsync loop`: the event's JSON, serialized in advance, appended
//!   as one line to a plain file and `fdatasync`ed, in a loop; no queue, no
//!   thread, no chain.
//! - `1 durable emitter`: one thread calling `emit_durable_sync` in a loop,
//!   so every batch holds one record and costs one fsync.
//!
//! Group commit:
//! - `16 emitter threads`: sixteen threads calling `emit_durable_sync`.
//! - `256 async emitters`: 256 tokio tasks on a two-worker runtime awaiting
//!   `emit_durable`.
//!
//! Ceiling, where `/dev/shm` is a tmpfs:
//! - the two group-commit configurations again, with the trail on tmpfs,
//!   where an fsync returns at once: what the logger's own CPU work and
//!   thread hand-offs allow on this machine when fsyncs cost nothing. Their
//!   ratio to the plain fsync loop (on the disk) is the most the
//!   group-commit rows could ever show here.
//!
//! Each prints durable records per second, its ratio to both baselines, the
//! p99 latency of one durable emit, and the fsyncs the writer made: the
//! median over rounds that interleave the configurations.
//!
//! Run: `cargo bench -p audit-logging --bench durable`
//! (`-- --quick` for a short run).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use audit_logging::{AuditKey, AuditLogger, LoggerConfig};
use common::event;

/// What one configuration did.
struct Run {
    records: u64,
    took: Duration,
    /// Latency of each durable emit (or each append and fsync).
    latencies: Vec<Duration>,
    fsyncs: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.took.as_secs_f64()
    }

    fn p99(&mut self) -> Duration {
        self.latencies.sort_unstable();
        let i = (self.latencies.len() * 99 / 100).min(self.latencies.len() - 1);
        self.latencies[i]
    }
}

fn plain_fsync_loop(n: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("plain.jsonl"))
        .unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| serde_json::to_string(&event(i)).unwrap() + "\n")
        .collect();
    let mut latencies = Vec::with_capacity(lines.len());
    let start = Instant::now();
    for line in &lines {
        let t = Instant::now();
        file.write_all(line.as_bytes()).unwrap();
        file.sync_data().unwrap();
        latencies.push(t.elapsed());
    }
    Run {
        records: n,
        took: start.elapsed(),
        latencies,
        fsyncs: n,
    }
}

/// A tmpfs to measure the ceiling on, if the machine has one.
fn tmpfs() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some("/dev/shm") && fields.next() == Some("tmpfs")
        })
        .then(|| shm.to_path_buf())
}

fn open_logger(base: &Path) -> (tempfile::TempDir, Arc<AuditLogger>) {
    let dir = tempfile::tempdir_in(base).unwrap();
    let logger =
        AuditLogger::open(LoggerConfig::new(dir.path()), AuditKey::generate().unwrap()).unwrap();
    (dir, Arc::new(logger))
}

fn threads(base: &Path, emitters: u64, each: u64) -> Run {
    let (_dir, logger) = open_logger(base);
    let before = logger.stats().fsyncs;
    let start = Instant::now();
    let handles: Vec<_> = (0..emitters)
        .map(|t| {
            let logger = Arc::clone(&logger);
            std::thread::spawn(move || {
                (0..each)
                    .map(|i| {
                        let e = event(t * each + i);
                        let t = Instant::now();
                        logger.emit_durable_sync(e).unwrap();
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let took = start.elapsed();
    let fsyncs = logger.stats().fsyncs - before;
    logger.shutdown().unwrap();
    Run {
        records: emitters * each,
        took,
        latencies,
        fsyncs,
    }
}

fn tasks(base: &Path, emitters: u64, each: u64) -> Run {
    let (_dir, logger) = open_logger(base);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let before = logger.stats().fsyncs;
    let start = Instant::now();
    let latencies = runtime.block_on(async {
        let handles: Vec<_> = (0..emitters)
            .map(|t| {
                let logger = Arc::clone(&logger);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(each as usize);
                    for i in 0..each {
                        let e = event(t * each + i);
                        let t = Instant::now();
                        logger.emit_durable(e).await.unwrap();
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    let took = start.elapsed();
    let fsyncs = logger.stats().fsyncs - before;
    logger.shutdown().unwrap();
    Run {
        records: emitters * each,
        took,
        latencies,
        fsyncs,
    }
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (scale, rounds) = if quick { (1, 3) } else { (4, 5) };
    let disk = std::env::temp_dir();
    let ceiling = tmpfs();
    // Warm the page cache and the allocator.
    plain_fsync_loop(50);
    threads(&disk, 1, 50);

    let mut names = vec![
        "plain fsync loop (baseline)",
        "1 durable emitter (baseline)",
        "16 emitter threads",
        "256 async emitters",
    ];
    if ceiling.is_some() {
        names.push("16 threads, fsync free (tmpfs)");
        names.push("256 async, fsync free (tmpfs)");
    }
    // Rounds interleave the configurations, so that a burst of load on the
    // shared machine hits them alike; each figure is the median of rounds.
    let mut rounds_of: Vec<Vec<Run>> = names.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        rounds_of[0].push(plain_fsync_loop(250 * scale));
        rounds_of[1].push(threads(&disk, 1, 250 * scale));
        rounds_of[2].push(threads(&disk, 16, 100 * scale));
        rounds_of[3].push(tasks(&disk, 256, 20 * scale));
        if let Some(shm) = &ceiling {
            rounds_of[4].push(threads(shm, 16, 100 * scale));
            rounds_of[5].push(tasks(shm, 256, 20 * scale));
        }
    }
    let rate = |runs: &[Run]| median(runs.iter().map(Run::rate).collect());
    let plain = rate(&rounds_of[0]);
    let single = rate(&rounds_of[1]);
    println!(
        "rounds: {rounds} (medians shown); trails and the plain file under {} (TMPDIR)",
        disk.display()
    );
    if ceiling.is_none() {
        println!("no tmpfs at /dev/shm: the fsync-free ceiling is not measured");
    }
    println!(
        "{:<30} {:>9} {:>11} {:>9} {:>9} {:>10} {:>8}",
        "path", "records", "records/s", "x plain", "x 1 emit", "p99", "fsyncs"
    );
    for (name, runs) in names.iter().zip(&mut rounds_of) {
        let r = rate(runs);
        let p99 = median(runs.iter_mut().map(Run::p99).collect());
        let fsyncs = median(runs.iter().map(|run| run.fsyncs).collect());
        println!(
            "{name:<30} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>10.2?} {:>8}",
            runs[0].records,
            r,
            r / plain,
            r / single,
            p99,
            fsyncs,
        );
    }
}
