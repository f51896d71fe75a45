//! Arbitrary bytes as a model file, read the way `seal_model` reads one:
//! the format is told by the first bytes, then the GGUF (or safetensors)
//! header reader must refuse bad input with an error, never a panic, never
//! allocate what a hostile count or length asks for, and whatever it
//! accepts must cover the file exactly.
//!
//! Run with `cargo fuzz run gguf_header fuzz/seeds/gguf_header`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vram_residency::ModelLayout;

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    let Ok(layout) = ModelLayout::read(&mut reader, data.len() as u64, Path::new("fuzz")) else {
        return;
    };
    // The reader was left at the data, and the tensors cover the rest.
    assert_eq!(data.len() - reader.len(), layout.data_offset() as usize);
    assert_eq!(layout.data_offset() + layout.data_bytes(), layout.file_bytes());
    let mut next = 0;
    for tensor in layout.tensors() {
        assert_eq!(tensor.start, next);
        assert!(tensor.end >= tensor.start);
        next = tensor.end;
    }
    if let Ok(plan) = layout.plan(64) {
        assert_eq!(plan.total_bytes(), layout.data_bytes());
    }
});
