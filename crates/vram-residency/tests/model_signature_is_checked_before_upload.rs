//! OpenSSF model signatures, as the real `model_signing` 1.1.1 tool writes
//! them (`tests/data/model-signing`, made by
//! `scripts/make-model-signing-fixtures.sh`): the good signature verifies
//! and the model seals; every kind of damage to the model, the key, the
//! statement or the signature is refused before upload, with a clear error
//! and a `model.rejected` record. The edited bundles are made here from the
//! real one, so they differ from it in exactly one way.

mod common;

use std::path::{Path, PathBuf};

use audit_logging::AuditEvent;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use vram_residency::provenance::signing::MAX_BUNDLE_BYTES;
use vram_residency::provenance::{ModelSignature, SignerKey};
use vram_residency::{Provenance, ProvenanceError, SealModelError, SealModelOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-signing")
}

/// A copy of the signed model directory that a test may change.
fn model_copy(trail: &common::Trail) -> PathBuf {
    let dir = trail.dir.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    for name in ["model.safetensors", "config.json"] {
        std::fs::copy(fixtures().join("model").join(name), dir.join(name)).unwrap();
    }
    dir
}

fn signer() -> SignerKey {
    SignerKey::load(&fixtures().join("signer.pub.pem")).unwrap()
}

fn bundle() -> Vec<u8> {
    std::fs::read(fixtures().join("model.sig")).unwrap()
}

fn provenance(bytes: Vec<u8>, signer: SignerKey) -> Provenance {
    Provenance::Signature {
        signature: ModelSignature::from_bytes(bytes, fixtures().join("model.sig")),
        signer,
    }
}

/// Seals `dir/model.safetensors` under `provenance`.
fn seal(
    trail: &common::Trail,
    dir: &Path,
    provenance: Provenance,
) -> Result<vram_residency::SealedModel, SealModelError> {
    let manager = trail.manager(1 << 20);
    let options = SealModelOptions::new("signed-model").with_provenance(provenance);
    let result = manager.seal_model(&dir.join("model.safetensors"), &options, &mut |_| {});
    if result.is_err() {
        assert_eq!(
            manager.used_bytes(),
            0,
            "a refused model reached the device"
        );
    }
    result
}

/// Seals and expects a refusal recorded as `model.rejected`; returns the
/// provenance error.
fn refused(trail: &common::Trail, dir: &Path, provenance: Provenance) -> ProvenanceError {
    let err = seal(trail, dir, provenance).unwrap_err();
    let reason = err.to_string();
    let rejected: Vec<String> = trail
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::ModelRejected { reason, .. } => Some(reason.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![reason.clone()], "{reason}");
    assert!(!trail.types().contains(&"vram.sealed"), "{reason}");
    match err {
        SealModelError::Provenance(e) => e,
        other => panic!("not a provenance error: {other}"),
    }
}

/// The bundle with its statement changed by `edit`, signature untouched.
fn with_statement(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut bundle: Value = serde_json::from_slice(&bundle()).unwrap();
    let payload = bundle["dsseEnvelope"]["payload"].as_str().unwrap();
    let mut statement: Value = serde_json::from_slice(&BASE64.decode(payload).unwrap()).unwrap();
    edit(&mut statement);
    bundle["dsseEnvelope"]["payload"] = BASE64
        .encode(serde_json::to_vec(&statement).unwrap())
        .into();
    serde_json::to_vec(&bundle).unwrap()
}

/// The bundle with `edit` applied to its JSON.
fn with_bundle(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut bundle: Value = serde_json::from_slice(&bundle()).unwrap();
    edit(&mut bundle);
    serde_json::to_vec(&bundle).unwrap()
}

#[test]
fn the_real_signature_verifies_and_the_model_seals() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let signed = ModelSignature::read(&fixtures().join("model.sig"))
        .unwrap()
        .verify(&signer())
        .unwrap();
    assert_eq!(signed.model_name, "model");
    assert_eq!(
        signed.files.keys().collect::<Vec<_>>(),
        ["config.json", "model.safetensors"]
    );
    let model = seal(&trail, &dir, provenance(bundle(), signer())).unwrap();
    assert_eq!(model.file_sha256, signed.files["model.safetensors"]);
    assert!(trail.types().contains(&"model.sealed"));
}

#[test]
fn a_signature_kept_inside_the_model_directory_is_not_a_model_file() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let inside = dir.join("model.sig");
    std::fs::write(&inside, bundle()).unwrap();
    let read_from_inside = Provenance::Signature {
        signature: ModelSignature::read(&inside).unwrap(),
        signer: signer(),
    };
    seal(&trail, &dir, read_from_inside).unwrap();
    // Under another name it is one more file, and the signature does not list it.
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    std::fs::write(dir.join("copy.sig"), bundle()).unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(
        matches!(&err, ProvenanceError::UnsignedFile { file } if file == "copy.sig"),
        "{err}"
    );
}

#[test]
fn a_changed_byte_in_the_model_file_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(
        matches!(&err, ProvenanceError::FileMismatch { file, .. } if file == "model.safetensors"),
        "{err}"
    );
}

#[test]
fn a_changed_byte_in_another_signed_file_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"swapped\"}\n").unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(
        matches!(&err, ProvenanceError::FileMismatch { file, .. } if file == "config.json"),
        "{err}"
    );
}

#[test]
fn another_key_is_refused_by_name_and_by_signature() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let other = SignerKey::load(&fixtures().join("other.pub.pem")).unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), other.clone()));
    assert!(matches!(err, ProvenanceError::WrongKey { .. }), "{err}");

    // Without the unsigned hint, the signature itself still refuses it.
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let no_hint = with_bundle(|b| b["verificationMaterial"]["publicKey"]["hint"] = "".into());
    let err = refused(&trail, &dir, provenance(no_hint, other));
    assert!(matches!(err, ProvenanceError::BadSignature), "{err}");
}

#[test]
fn an_edited_statement_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    // Rename a file, leaving digests (and so the root) as they were.
    let edited = with_statement(|s| {
        s["predicate"]["resources"][0]["name"] = "config2.json".into();
    });
    let err = refused(&trail, &dir, provenance(edited, signer()));
    assert!(matches!(err, ProvenanceError::BadSignature), "{err}");
}

#[test]
fn an_edited_signature_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    let edited = with_bundle(|b| {
        let sig = b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap();
        let mut der = BASE64.decode(sig).unwrap();
        // The last byte is the low byte of `s`: still DER, no longer valid.
        *der.last_mut().unwrap() ^= 1;
        b["dsseEnvelope"]["signatures"][0]["sig"] = BASE64.encode(der).into();
    });
    let err = refused(&trail, &dir, provenance(edited, signer()));
    assert!(matches!(err, ProvenanceError::BadSignature), "{err}");
}

#[test]
fn a_missing_signed_file_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(
        matches!(&err, ProvenanceError::MissingFile { file } if file == "config.json"),
        "{err}"
    );
}

#[test]
fn an_extra_unsigned_file_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    std::fs::write(dir.join("adapter.safetensors"), b"smuggled").unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(
        matches!(&err, ProvenanceError::UnsignedFile { file } if file == "adapter.safetensors"),
        "{err}"
    );
}

#[test]
fn a_symlink_in_the_model_directory_is_refused() {
    let trail = common::Trail::open();
    let dir = model_copy(&trail);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::os::unix::fs::symlink(
        fixtures().join("model/config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    let err = refused(&trail, &dir, provenance(bundle(), signer()));
    assert!(matches!(err, ProvenanceError::Symlink { .. }), "{err}");
}

#[test]
fn garbage_bundles_are_refused_with_a_clear_error() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not a sigstore bundle"),
        (b"not json".to_vec(), "not a sigstore bundle"),
        (b"[]".to_vec(), "not a sigstore bundle"),
        (
            with_bundle(|b| b["mediaType"] = "application/json".into()),
            "media type",
        ),
        (
            with_bundle(|b| {
                b.as_object_mut()
                    .unwrap()
                    .remove("dsseEnvelope")
                    .map(drop)
                    .unwrap()
            }),
            "no dsseEnvelope",
        ),
        (
            with_bundle(|b| b["dsseEnvelope"]["payloadType"] = "text/plain".into()),
            "payload type",
        ),
        (
            with_bundle(|b| b["dsseEnvelope"]["signatures"] = Value::Array(vec![])),
            "0 signatures",
        ),
        (
            with_bundle(|b| b["dsseEnvelope"]["payload"] = "%%%".into()),
            "not base64",
        ),
        (
            with_bundle(|b| b["dsseEnvelope"]["signatures"][0]["sig"] = "AAAA".into()),
            "not a DER-encoded",
        ),
    ];
    for (bytes, expected) in cases {
        let trail = common::Trail::open();
        let dir = model_copy(&trail);
        let err = refused(&trail, &dir, provenance(bytes, signer()));
        assert!(
            err.to_string().contains(expected),
            "{err} lacks {expected:?}"
        );
        assert!(err.is_verdict(), "{err}");
    }
}

#[test]
fn an_oversized_bundle_is_refused_before_it_is_read() {
    let trail = common::Trail::open();
    let path = trail.dir.path().join("huge.sig");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_BUNDLE_BYTES + 1).unwrap();
    let err = ModelSignature::read(&path).unwrap_err();
    assert!(
        matches!(err, ProvenanceError::BundleTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn a_signer_key_that_is_not_a_p256_pem_key_is_refused() {
    for pem in [
        "",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        // An Ed25519 key: a valid PEM public key, not P-256.
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
    ] {
        let err = SignerKey::from_pem(pem).unwrap_err();
        assert!(
            matches!(err, ProvenanceError::InvalidSignerKey { .. }),
            "{err}"
        );
        assert!(!err.is_verdict());
    }
    let key = signer();
    let pem = std::fs::read_to_string(fixtures().join("signer.pub.pem")).unwrap();
    assert_eq!(SignerKey::from_pem(&pem).unwrap(), key);
}
