//! `seal_model` on a GGUF file (written by llama.cpp's gguf-py, see
//! `scripts/make-gguf-fixture.sh`): the shards are the tensor data, grouped
//! by tensors up to the size limit, each sealed with the digest of exactly
//! its bytes, and the file's SHA-256 is that of the whole file. A GGUF file
//! cut short is refused and recorded.

mod common;

use std::path::Path;

use sha2::{Digest as _, Sha256};
use vram_residency::model::{ModelFormat, ModelLayout};
use vram_residency::{ModelError, SealModelError, SealModelOptions};

const TINY: &str = "tests/data/gguf/tiny.gguf";

#[test]
fn a_gguf_file_seals_in_tensor_groups_with_the_digest_of_each_range() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TINY);
    let bytes = std::fs::read(&path).unwrap();

    let layout = ModelLayout::open(&path).unwrap();
    assert_eq!(layout.format(), ModelFormat::Gguf);
    // Tensors of 64, 32 and 96 bytes (with padding) at a limit of 96:
    // the first two share a shard.
    let options = SealModelOptions::new("tiny-gguf").with_max_shard_bytes(96);
    let model = manager.seal_model(&path, &options, &mut |_| {}).unwrap();
    assert_eq!(
        model.file_sha256.0,
        <[u8; 32]>::from(Sha256::digest(&bytes))
    );
    assert_eq!(model.file_bytes, 768);

    let data = &bytes[usize::try_from(layout.data_offset()).unwrap()..];
    let ranges: Vec<(u64, [u8; 32])> = model.shards.iter().map(|s| (s.bytes, s.digest.0)).collect();
    // Each shard is one 16 KiB chunk or less: its seal digest is the RFC
    // 9162 leaf hash of its bytes.
    let leaf = |bytes: &[u8]| -> [u8; 32] {
        Sha256::new()
            .chain_update([0x00])
            .chain_update(bytes)
            .finalize()
            .into()
    };
    assert_eq!(
        ranges,
        [(96, leaf(&data[..96])), (96, leaf(&data[96..192]))]
    );
    for shard in &model.shards {
        manager.verify_sealed(shard).unwrap();
    }
    assert!(trail.types().contains(&"model.sealed"));
}

#[test]
fn a_truncated_gguf_file_is_refused_and_recorded() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(TINY)).unwrap();
    let path = common::write_file(&trail.dir, "cut.gguf", &bytes[..700]);
    let err = manager
        .seal_model(&path, &SealModelOptions::new("cut"), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Model(ModelError::DataLengthMismatch { .. })
        ),
        "{err}"
    );
    assert_eq!(manager.used_bytes(), 0);
    assert!(trail.types().contains(&"model.rejected"));
}
