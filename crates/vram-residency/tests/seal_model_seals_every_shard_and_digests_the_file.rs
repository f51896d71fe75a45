//! `seal_model` splits a safetensors file into the planned shards, seals
//! each one with the digest of exactly its bytes, reports progress in order,
//! and returns the SHA-256 of the whole file. A file that does not match the
//! expected digest, or a model that does not fit, leaves nothing resident.

mod common;

use audit_logging::{AuditEvent, Digest};
use sha2::{Digest as _, Sha256};
use vram_residency::{SafetensorsFile, SealError, SealModelError, SealModelOptions, SealProgress};

/// Tensors of 10, 30, 5, 50 (over the limit) and 0 bytes.
fn fixture(trail: &common::Trail) -> (std::path::PathBuf, Vec<u8>) {
    let bytes = common::safetensors_bytes(&[
        ("a", &[1; 10]),
        ("b", &[2; 30]),
        ("c", &[3; 5]),
        ("d", &[4; 50]),
        ("e", &[]),
    ]);
    (
        common::write_file(&trail.dir, "model.safetensors", &bytes),
        bytes,
    )
}

const LIMIT: u64 = 40;

#[test]
fn seal_model_seals_every_shard_and_digests_the_file() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let (path, bytes) = fixture(&trail);
    let layout = SafetensorsFile::open(&path).unwrap();
    let plan = layout.plan(LIMIT).unwrap();
    assert_eq!(plan.shard_count(), 3, "a+b, c, d+e");

    let mut seen = Vec::new();
    let options = SealModelOptions::new("m").with_max_shard_bytes(LIMIT);
    let model = manager
        .seal_model(&path, &options, &mut |p| {
            seen.push(match p {
                SealProgress::Planned { plan } => format!("planned {}", plan.shard_count()),
                SealProgress::ShardStarted { shard, count } => {
                    format!("start {}/{count} {}", shard.index, shard.bytes())
                }
                SealProgress::ShardUploaded { index, done, total } => {
                    format!("uploaded {index} {done}/{total}")
                }
                SealProgress::ShardSealed { shard } => format!("sealed {}", shard.shard_id),
                _ => "other".to_owned(),
            })
        })
        .unwrap();

    assert_eq!(
        seen,
        [
            "planned 3",
            "start 0/3 40",
            "uploaded 0 40/40",
            "sealed m#0",
            "start 1/3 5",
            "uploaded 1 5/5",
            "sealed m#1",
            "start 2/3 50",
            "uploaded 2 50/50",
            "sealed m#2",
        ]
    );
    assert_eq!(
        model.file_sha256.0,
        <[u8; 32]>::from(Sha256::digest(&bytes))
    );
    assert_eq!(
        model.file_sha256,
        vram_residency::model::file_sha256(&path).unwrap()
    );
    assert_eq!(model.file_bytes, bytes.len() as u64);

    let data = &bytes[layout.data_offset() as usize..];
    for (shard, planned) in model.shards.iter().zip(plan.shards()) {
        let own = &data[planned.start as usize..planned.end as usize];
        // Each shard is shorter than one 16 KiB chunk, so its seal digest is
        // that chunk's RFC 9162 leaf hash.
        let leaf = Sha256::new()
            .chain_update([0x00])
            .chain_update(own)
            .finalize();
        assert_eq!(shard.digest.0, <[u8; 32]>::from(leaf));
        assert_eq!((shard.shard_index, shard.shard_count), (planned.index, 3));
        assert_eq!(shard.model_ref, "m");
        manager.verify_sealed(shard).unwrap();
    }
    assert_eq!(manager.used_bytes(), 95);
    let sealed = trail
        .types()
        .iter()
        .filter(|t| **t == "vram.sealed")
        .count();
    assert_eq!(sealed, 3);
    // The model as a whole is on record, by its file digest.
    let recorded = trail.events().into_iter().find_map(|e| match e {
        AuditEvent::ModelSealed {
            file_sha256,
            file_bytes,
            shard_count,
            ..
        } => Some((file_sha256, file_bytes, shard_count)),
        _ => None,
    });
    assert_eq!(recorded, Some((model.file_sha256, bytes.len() as u64, 3)));
}

#[test]
fn matching_expected_digest_is_accepted() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let (path, bytes) = fixture(&trail);
    let digest = Digest(Sha256::digest(&bytes).into());
    let options = SealModelOptions::new("m").with_expected_sha256(digest);
    let model = manager.seal_model(&path, &options, &mut |_| {}).unwrap();
    assert_eq!(model.file_sha256, digest);
}

#[test]
fn wrong_expected_digest_is_refused_before_anything_is_uploaded() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let (path, _) = fixture(&trail);
    let wrong = Digest([0xee; 32]);
    let options = SealModelOptions::new("m")
        .with_max_shard_bytes(LIMIT)
        .with_expected_sha256(wrong);

    let err = manager
        .seal_model(&path, &options, &mut |_| {})
        .unwrap_err();
    let SealModelError::FileDigestMismatch { expected, found } = &err else {
        panic!("expected a file digest mismatch, got {err}");
    };
    assert_eq!(*expected, wrong);
    assert!(err.to_string().contains(&found.to_hex()), "{err}");
    assert_eq!(
        (manager.backend().allocation_count(), manager.used_bytes()),
        (0, 0)
    );

    // Nothing was allocated, sealed or freed: the model was refused first.
    let types = trail.types();
    assert_eq!(
        types.iter().filter(|t| t.starts_with("vram.")).count(),
        0,
        "{types:?}"
    );
    let rejected = types.iter().position(|t| *t == "model.rejected").unwrap();
    match &trail.events()[rejected] {
        AuditEvent::ModelRejected { reason, .. } => {
            assert!(reason.as_str().contains(&wrong.to_hex()), "{reason}");
        }
        other => panic!("expected model.rejected, got {other:?}"),
    }
}

#[test]
fn model_that_does_not_fit_leaves_nothing_resident() {
    let trail = common::Trail::open();
    let manager = trail.manager(60);
    let (path, _) = fixture(&trail);
    let options = SealModelOptions::new("m").with_max_shard_bytes(LIMIT);

    let err = manager
        .seal_model(&path, &options, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Shard {
                index: 2,
                count: 3,
                source: SealError::CapacityExceeded { .. }
            }
        ),
        "{err}"
    );
    assert_eq!(
        (manager.backend().allocation_count(), manager.used_bytes()),
        (0, 0)
    );
    let types = trail.types();
    assert!(types.contains(&"vram.allocation_failed"));
    assert!(
        !types.contains(&"model.rejected"),
        "a full device is not the model's fault"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "vram.deallocated").count(),
        2
    );
}
