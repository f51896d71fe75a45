//! Arbitrary bytes as an expected-digest manifest (JSON or `sha256sum`)
//! and as a sharded checkpoint's index: both must refuse bad input with an
//! error, never a panic, and never accept a file name that leaves the
//! model's directory.
//!
//! Run with `cargo fuzz run digest_manifest fuzz/seeds/digest_manifest`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vram_residency::ShardedIndex;
use vram_residency::provenance::DigestManifest;

fn safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = DigestManifest::parse(data) {
        assert!(manifest.entries().keys().all(|name| safe(name)));
    }
    if let Ok(index) = ShardedIndex::parse(data, Path::new("dir/model.safetensors.index.json")) {
        assert!(index.files().iter().all(|name| safe(name) && !name.contains('/')));
    }
});
