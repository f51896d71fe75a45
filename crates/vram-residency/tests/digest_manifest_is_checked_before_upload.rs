//! An expected-digest manifest: a model file whose SHA-256 is the listed
//! one seals; a different one, or one the manifest does not list, is
//! refused before upload and recorded as `model.rejected`.

mod common;

use audit_logging::AuditEvent;
use sha2::{Digest as _, Sha256};
use vram_residency::provenance::DigestManifest;
use vram_residency::{Provenance, ProvenanceError, SealModelError, SealModelOptions};

fn manifest(text: &str) -> Provenance {
    Provenance::Manifest(DigestManifest::parse(text.as_bytes()).unwrap())
}

#[test]
fn a_listed_matching_file_seals_and_others_are_refused() {
    let trail = common::Trail::open();
    let bytes = common::safetensors_bytes(&[("w", &[7; 64])]);
    let path = common::write_file(&trail.dir, "model.safetensors", &bytes);
    let good = hex::encode(Sha256::digest(&bytes));
    let bad = hex::encode(Sha256::digest(b"another model"));
    let manager = trail.manager(1 << 20);
    let seal = |provenance| {
        let options = SealModelOptions::new("m").with_provenance(provenance);
        manager.seal_model(&path, &options, &mut |_| {})
    };

    let model = seal(manifest(&format!("{good}  model.safetensors\n"))).unwrap();
    assert_eq!(model.file_sha256.to_hex(), good);
    for shard in model.shards {
        manager.deallocate(shard).unwrap();
    }

    let err = seal(manifest(&format!(r#"{{"model.safetensors": "{bad}"}}"#))).unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Provenance(ProvenanceError::FileMismatch { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&bad), "{err}");
    let err = seal(manifest(&format!("{good}  other.safetensors\n"))).unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Provenance(ProvenanceError::NotListed { .. })
        ),
        "{err}"
    );
    assert_eq!(manager.used_bytes(), 0);

    let rejected = trail
        .events()
        .into_iter()
        .filter(|e| matches!(e, AuditEvent::ModelRejected { .. }))
        .count();
    assert_eq!(rejected, 2);
    assert_eq!(
        trail
            .types()
            .iter()
            .filter(|t| **t == "model.sealed")
            .count(),
        1
    );
}
