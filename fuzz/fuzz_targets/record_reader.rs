//! Arbitrary bytes through every reader of audit files: the record decoder,
//! the verifier and the query path. None of them may panic, hang or buffer
//! without bound, whatever the input.
//!
//! Run with `cargo fuzz run record_reader fuzz/corpus/record_reader
//! fuzz/seeds/record_reader -- -dict=fuzz/record_reader.dict`. The seeds are
//! segments written by the real logger under [`KEY`], so mutations that move
//! whole lines around reach the chain checks behind the authenticator.

#![no_main]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::OnceLock;

use audit_logging::forward::EpochKey;
use audit_logging::query::{self, Filter};
use audit_logging::record::RawRecord;
use audit_logging::{AuditKey, segment_name, verify_dir};
use libfuzzer_sys::fuzz_target;

/// The key the seed corpus was written with.
const KEY: [u8; 32] = [7; 32];

/// One scratch directory per fuzzing process; each input overwrites its
/// only segment.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("create a scratch directory"))
        .path()
}

fn decode(line: &[u8], key: &EpochKey) {
    if let Ok(rec) = RawRecord::parse(line) {
        let _ = rec.authenticate(key);
        let _ = rec.authenticate_handover(key);
        let _ = rec.event();
    }
}

fuzz_target!(|data: &[u8]| {
    let key = AuditKey::from_bytes(KEY);
    let epoch_key = EpochKey::first(&key);

    // The record decoder, on the whole input and on each line of it.
    decode(data, &epoch_key);
    for line in data.split(|&b| b == b'\n') {
        decode(line, &epoch_key);
    }

    // The segment readers, on the input as a segment file.
    let dir = scratch();
    std::fs::write(dir.join(segment_name(1)), data).expect("write the segment");
    if let Ok(report) = verify_dir(dir, &key) {
        assert!(report.records <= data.len() as u64);
        assert_eq!(report.is_intact(), report.finding.is_none());
    }
    let _ = query::read_events(dir);
    let _ = query::query(dir, &Filter::default(), Some(&key), |_| {
        ControlFlow::Continue(())
    });
});
