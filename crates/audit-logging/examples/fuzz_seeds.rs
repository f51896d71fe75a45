//! Writes the seed corpus of the `record_reader` fuzz target: segments made
//! by the real logger under the target's fixed key, so that mutations start
//! from records that authenticate and reach the chain checks behind them.
//!
//! Run from the repository root after a change to the record format:
//! `cargo run -p audit-logging --example fuzz_seeds -- fuzz/seeds/record_reader`

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig, Severity, segment_name};

/// Must match `KEY` in `fuzz/fuzz_targets/record_reader.rs`.
const KEY: [u8; 32] = [7; 32];

fn write_log(dir: &Path, runs: usize, events: usize) -> Vec<u8> {
    for run in 0..runs {
        let config = LoggerConfig::new(dir).epoch(3, Duration::from_secs(3600));
        let logger = AuditLogger::open(config, AuditKey::from_bytes(KEY)).expect("open");
        for i in 0..events {
            let event = AuditEvent::SecurityIncident {
                timestamp: chrono::Utc::now(),
                kind: "seed".into(),
                description: format!("run {run} event {i}").into(),
                severity: Severity::Low,
            };
            logger.emit_sync(event).expect("emit");
        }
        logger.shutdown().expect("shutdown");
    }
    fs::read(dir.join(segment_name(1))).expect("read the segment")
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: fuzz_seeds OUT_DIR");
        std::process::exit(2);
    }));
    fs::create_dir_all(&out).expect("create the output directory");
    let scratch = |name: &str| {
        let dir =
            std::env::temp_dir().join(format!("sealtrail-seed-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    };

    let one = write_log(&scratch("one"), 1, 0);
    let clean = write_log(&scratch("clean"), 2, 4);
    let mut torn = clean.clone();
    torn.extend_from_slice(b"{\"v\":2,\"seq\":99,\"ts\":\"2026-12-03T1");
    let recovered_dir = scratch("recovered");
    write_log(&recovered_dir, 1, 2);
    let segment = recovered_dir.join(segment_name(1));
    let mut bytes = fs::read(&segment).expect("read");
    bytes.extend_from_slice(b"{\"v\":2,\"seq\":");
    fs::write(&segment, bytes).expect("tear");
    let recovered = write_log(&recovered_dir, 1, 1);

    for (name, bytes) in [
        ("one-record", one),
        ("clean-log", clean),
        ("torn-tail", torn),
        ("recovered-log", recovered),
    ] {
        fs::write(out.join(name), bytes).expect("write a seed");
    }
}
