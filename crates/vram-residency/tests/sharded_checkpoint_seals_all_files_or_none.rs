//! `seal_sharded_model` on a Hugging Face style sharded checkpoint
//! (`model.safetensors.index.json` plus its files): every file is sealed
//! by tensor groups, or, when anything is wrong with the index, a file or
//! their digests, nothing stays resident and the refusal is recorded.

mod common;

use std::path::PathBuf;

use audit_logging::AuditEvent;
use sha2::{Digest as _, Sha256};
use vram_residency::provenance::DigestManifest;
use vram_residency::{
    HostBackend, ModelError, Provenance, ProvenanceError, SealModelError, SealModelOptions,
    VramManager,
};

const FIRST: &str = "model-00001-of-00002.safetensors";
const SECOND: &str = "model-00002-of-00002.safetensors";

/// A checkpoint of two files in `trail.dir`: `a`, `b` in the first, `c` in
/// the second. Returns the index path.
fn checkpoint(trail: &common::Trail, map: &str) -> PathBuf {
    common::write_file(
        &trail.dir,
        FIRST,
        &common::safetensors_bytes(&[("a", &[1; 40]), ("b", &[2; 40])]),
    );
    common::write_file(
        &trail.dir,
        SECOND,
        &common::safetensors_bytes(&[("c", &[3; 30])]),
    );
    common::write_file(&trail.dir, "model.safetensors.index.json", map.as_bytes())
}

fn good_map() -> String {
    format!(
        r#"{{"metadata": {{"total_size": 110}}, "weight_map": {{"a": "{FIRST}", "b": "{FIRST}", "c": "{SECOND}"}}}}"#
    )
}

fn seal(
    manager: &VramManager<HostBackend>,
    index: &std::path::Path,
    options: SealModelOptions,
) -> Result<vram_residency::SealedCheckpoint, SealModelError> {
    let result = manager.seal_sharded_model(index, &options.with_max_shard_bytes(40), &mut |_| {});
    if result.is_err() {
        assert_eq!(
            manager.used_bytes(),
            0,
            "a refused checkpoint stayed resident"
        );
    }
    result
}

fn all_types(trail: &common::Trail) -> Vec<String> {
    trail.logger.flush().unwrap();
    audit_logging::query::read_events(&trail.dir.path().join("audit"))
        .unwrap()
        .iter()
        .map(|e| e.event_type().to_owned())
        .collect()
}

#[test]
fn every_file_is_sealed_under_its_own_name() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let index = checkpoint(&trail, &good_map());
    let sealed = seal(&manager, &index, SealModelOptions::new("ckpt")).unwrap();
    assert_eq!(
        sealed.index_sha256.0,
        <[u8; 32]>::from(Sha256::digest(good_map().as_bytes()))
    );
    let names: Vec<_> = sealed
        .files
        .iter()
        .map(|(n, m)| (n.as_str(), m.shards.len()))
        .collect();
    assert_eq!(names, [(FIRST, 2), (SECOND, 1)]);
    for (name, model) in &sealed.files {
        assert_eq!(model.model_ref, format!("ckpt/{name}"));
        let bytes = std::fs::read(trail.dir.path().join(name)).unwrap();
        assert_eq!(
            model.file_sha256.0,
            <[u8; 32]>::from(Sha256::digest(&bytes))
        );
        for shard in &model.shards {
            manager.verify_sealed(shard).unwrap();
        }
    }
    let sealed_events = trail
        .events()
        .into_iter()
        .filter(|e| matches!(e, AuditEvent::ModelSealed { .. }))
        .count();
    assert_eq!(sealed_events, 2);
}

#[test]
fn an_index_naming_a_path_outside_its_directory_is_refused_and_recorded() {
    for name in ["../model.safetensors", "/etc/passwd", "sub/x.safetensors"] {
        let trail = common::Trail::open();
        let manager = trail.manager(1 << 20);
        let map = format!(
            r#"{{"weight_map": {{"a": "{FIRST}", "c": {}}}}}"#,
            serde_json::json!(name)
        );
        let index = checkpoint(&trail, &map);
        let err = seal(&manager, &index, SealModelOptions::new("ckpt")).unwrap_err();
        assert!(
            matches!(
                err,
                SealModelError::Model(ModelError::UnsafeIndexPath { .. })
            ),
            "{name}: {err}"
        );
        let types = all_types(&trail);
        assert!(
            types.iter().any(|t| t == "security.path_traversal_attempt"),
            "{types:?}"
        );
        assert!(types.iter().any(|t| t == "model.rejected"), "{types:?}");
    }
}

#[test]
fn a_symlinked_checkpoint_file_is_refused() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let index = checkpoint(&trail, &good_map());
    let elsewhere = trail.dir.path().join("elsewhere.safetensors");
    std::fs::rename(trail.dir.path().join(SECOND), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, trail.dir.path().join(SECOND)).unwrap();
    let err = seal(&manager, &index, SealModelOptions::new("ckpt")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        all_types(&trail)
            .iter()
            .any(|t| t == "security.path_traversal_attempt")
    );
}

#[test]
fn a_file_whose_tensors_differ_from_the_index_is_refused_before_upload() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let map = format!(r#"{{"weight_map": {{"a": "{FIRST}", "b": "{SECOND}", "c": "{SECOND}"}}}}"#);
    let index = checkpoint(&trail, &map);
    let err = seal(&manager, &index, SealModelOptions::new("ckpt")).unwrap_err();
    assert!(
        matches!(&err, SealModelError::Model(ModelError::IndexMismatch { file, .. }) if file == FIRST),
        "{err}"
    );
    assert!(!trail.types().contains(&"vram.sealed"));
}

#[test]
fn a_file_that_fails_while_sealing_unseals_the_files_before_it() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let index = checkpoint(&trail, &good_map());
    // Only the second file's digest is wrong; the first seals, then is unsealed.
    let first = Sha256::digest(std::fs::read(trail.dir.path().join(FIRST)).unwrap());
    let json = std::fs::read(&index).unwrap();
    let manifest = DigestManifest::from_entries([
        (
            "model.safetensors.index.json".to_owned(),
            audit_logging::Digest(Sha256::digest(&json).into()),
        ),
        (FIRST.to_owned(), audit_logging::Digest(first.into())),
        (SECOND.to_owned(), audit_logging::Digest([0; 32])),
    ])
    .unwrap();
    let options = SealModelOptions::new("ckpt").with_provenance(Provenance::Manifest(manifest));
    let err = seal(&manager, &index, options).unwrap_err();
    assert!(err.is_verdict(), "{err}");
    assert!(
        matches!(&err, SealModelError::InFile { file, .. } if file == SECOND),
        "{err}"
    );
    let types = trail.types();
    assert!(
        types.contains(&"vram.sealed"),
        "the first file was sealed: {types:?}"
    );
    let sealed = types.iter().filter(|t| **t == "vram.sealed").count();
    let freed = types.iter().filter(|t| **t == "vram.deallocated").count();
    assert_eq!(
        sealed, freed,
        "every shard sealed was freed again: {types:?}"
    );
}

#[test]
fn a_manifest_must_list_the_index_and_every_file() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let index = checkpoint(&trail, &good_map());
    let digest = |name: &str| {
        audit_logging::Digest(
            Sha256::digest(std::fs::read(trail.dir.path().join(name)).unwrap()).into(),
        )
    };
    let all = [
        (
            "model.safetensors.index.json",
            digest("model.safetensors.index.json"),
        ),
        (FIRST, digest(FIRST)),
        (SECOND, digest(SECOND)),
    ];
    let manifest = |entries: &[(&str, audit_logging::Digest)]| {
        Provenance::Manifest(
            DigestManifest::from_entries(entries.iter().map(|(n, d)| ((*n).to_owned(), *d)))
                .unwrap(),
        )
    };
    let err = seal(
        &manager,
        &index,
        SealModelOptions::new("ckpt").with_provenance(manifest(&all[1..])),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Provenance(ProvenanceError::NotListed { .. })
        ),
        "{err}"
    );
    let sealed = seal(
        &manager,
        &index,
        SealModelOptions::new("ckpt").with_provenance(manifest(&all)),
    )
    .unwrap();
    assert_eq!(sealed.files.len(), 2);
}

#[test]
fn cancelling_while_the_second_file_seals_releases_the_first_file_too() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let index = checkpoint(&trail, &good_map());
    let cancel = vram_residency::CancelFlag::new();
    let options = SealModelOptions::new("ckpt")
        .with_max_shard_bytes(40)
        .with_cancel(cancel.clone());
    let mut files = 0;
    let result = manager.seal_sharded_model(&index, &options, &mut |p| {
        // Each file is planned once; the second one's plan is the signal.
        if let vram_residency::SealProgress::Planned { .. } = p {
            files += 1;
            if files == 2 {
                cancel.raise();
            }
        }
    });
    assert_eq!(files, 2);
    assert!(
        matches!(result, Err(SealModelError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(manager.used_bytes(), 0);
    assert_eq!(manager.backend().allocation_count(), 0);
    let types = all_types(&trail);
    assert!(!types.iter().any(|t| t == "model.rejected"), "{types:?}");
}
