//! Arbitrary bytes as a model file: the safetensors header reader and the
//! shard planner must refuse bad input with an error, never a panic, and
//! never allocate what a hostile length prefix asks for.
//!
//! Run with `cargo fuzz run safetensors_header`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vram_residency::SafetensorsFile;

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    let Ok(file) = SafetensorsFile::read(&mut reader, data.len() as u64, Path::new("fuzz")) else {
        return;
    };
    for max_shard_bytes in [1, 7, 4096, u64::MAX] {
        if let Ok(plan) = file.plan(max_shard_bytes) {
            let covered: u64 = plan.shards().iter().map(|s| s.bytes()).sum();
            assert_eq!(covered, plan.total_bytes());
        }
    }
});
