//! Seals the real all-MiniLM-L6-v2 safetensors file when it is present:
//! every shard seals and verifies, and the reported file SHA-256 equals the
//! digest its distribution publishes.

mod common;

use vram_residency::{Digest, SealModelOptions, SealProgress};

const PUBLISHED_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

#[test]
fn real_model_seals_and_verifies() {
    let Some(path) = common::real_model() else {
        return;
    };
    let published: Digest = PUBLISHED_SHA256.parse().unwrap();
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 30);
    let options = SealModelOptions::new("all-minilm-l6-v2")
        .with_max_shard_bytes(16 << 20)
        .with_expected_sha256(published);

    let mut planned = 0;
    let model = manager
        .seal_model(&path, &options, &mut |p| {
            if let SealProgress::Planned { plan } = p {
                planned = plan.shard_count();
            }
        })
        .unwrap();

    assert_eq!(model.file_sha256, published);
    assert!(
        planned > 1,
        "a 90 MB model at 16 MiB per shard has several shards"
    );
    assert_eq!(model.shards.len(), planned as usize);
    for shard in &model.shards {
        manager.verify_sealed(shard).unwrap();
    }
    let bytes: u64 = model.shards.iter().map(|s| s.bytes).sum();
    assert_eq!(manager.used_bytes(), bytes);
    let verified = trail
        .types()
        .iter()
        .filter(|t| **t == "vram.seal_verified")
        .count();
    assert_eq!(verified, model.shards.len());
}
