//! OpenSSF model signatures: the Sigstore bundle that `model_signing sign
//! key` writes (`model.sig`), checked with the signer's PEM public key.
//!
//! What the tool writes, as of model-signing 1.x, and what is checked here,
//! in this order:
//!
//! 1. The bundle is JSON of at most [`MAX_BUNDLE_BYTES`], with a Sigstore
//!    bundle media type and a DSSE envelope (`dsseEnvelope`) whose payload
//!    type is in-toto JSON and which carries exactly one signature.
//! 2. The bundle's `verificationMaterial.publicKey.hint`, when present, is
//!    the hex SHA-256 of the signer's public key in PEM form. It is not
//!    signed, so it only lets a wrong key be named as such; the signature
//!    check below is what decides.
//! 3. The signature is ASN.1 DER ECDSA P-256 with SHA-256 over the DSSE
//!    pre-authentication encoding ([`pae`]) of payload type and payload.
//!    High-S signatures are accepted, as OpenSSL (and so the tool's own
//!    verifier) accepts them.
//! 4. The payload is an in-toto v1 statement with predicate type
//!    `https://model_signing/signature/v1.0`: `predicate.resources` lists
//!    every file of the model directory by relative name with its SHA-256,
//!    `predicate.serialization` says how (only `method: files` with
//!    `hash_type: sha256` is read; the `shards` method is refused), and the
//!    single subject's sha256 is the root digest: SHA-256 over the
//!    resources' raw digests in the order listed, which is checked.
//!
//! What the signature then says is a [`SignedManifest`]; [`super::Provenance`]
//! compares it with the files on disk. Sigstore certificates, transparency
//! log entries and the pre-1.0 payload format are not read: a bundle signed
//! that way is refused, not half-checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use audit_logging::Digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::ProvenanceError;
use super::files::{check_relative_name, read_bounded};
use super::manifest::parse_digest;

/// Largest bundle read, in bytes: 16 MiB. A statement lists about 150
/// bytes per file, so this admits some hundred thousand files while a
/// hostile bundle cannot make us hold gigabytes.
pub const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// Largest signer key file, in bytes: a P-256 public key in PEM is under
/// 200 bytes.
pub const MAX_SIGNER_KEY_BYTES: u64 = 16 << 10;

/// DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto statement type model_signing 1.x writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of model_signing 1.x signatures.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// Prefix of every Sigstore bundle media type.
const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// The predicate type of model_signing before 1.0, refused by name.
const PREDICATE_TYPE_PRE_1_0: &str = "https://model_signing/Digests/v0.1";

/// A signer's ECDSA P-256 public key, from the PEM file that goes with the
/// private key given to `model_signing sign key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerKey {
    key: VerifyingKey,
    hint: String,
}

impl SignerKey {
    /// Parses a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM block of a P-256
    /// key.
    pub fn from_pem(pem: &str) -> Result<SignerKey, ProvenanceError> {
        let invalid = |reason: String| ProvenanceError::InvalidSignerKey { reason };
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| invalid(format!("not a P-256 public key in PEM: {e}")))?;
        let canonical = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| invalid(format!("cannot encode the key: {e}")))?;
        let hint = hex::encode(Sha256::digest(canonical.as_bytes()));
        Ok(SignerKey { key, hint })
    }

    /// Reads a PEM public key file (not through a symbolic link).
    pub fn load(path: &Path) -> Result<SignerKey, ProvenanceError> {
        let bytes = read_bounded(path, MAX_SIGNER_KEY_BYTES, |_| {
            ProvenanceError::InvalidSignerKey {
                reason: format!("{} is too large to be a public key", path.display()),
            }
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ProvenanceError::InvalidSignerKey {
            reason: format!("{} is not PEM text", path.display()),
        })?;
        SignerKey::from_pem(text)
    }

    /// The key's hint as model_signing writes it: hex SHA-256 of the key's
    /// PEM encoding.
    pub fn hint(&self) -> &str {
        &self.hint
    }
}

/// A signature bundle as read from disk, not yet checked: checking it is
/// part of sealing, so that a bad one is recorded as a rejected model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSignature {
    bytes: Vec<u8>,
    path: PathBuf,
}

impl ModelSignature {
    /// Reads the bundle at `path` (not through a symbolic link), refusing
    /// one over [`MAX_BUNDLE_BYTES`].
    pub fn read(path: &Path) -> Result<ModelSignature, ProvenanceError> {
        let bytes = read_bounded(path, MAX_BUNDLE_BYTES, |bytes| {
            ProvenanceError::BundleTooLarge {
                bytes,
                limit: MAX_BUNDLE_BYTES,
            }
        })?;
        let path = std::fs::canonicalize(path).map_err(|source| ProvenanceError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(ModelSignature { bytes, path })
    }

    /// A bundle from bytes; `path` is where it lies (a bundle inside the
    /// model directory is not itself a model file).
    pub fn from_bytes(bytes: Vec<u8>, path: PathBuf) -> ModelSignature {
        ModelSignature { bytes, path }
    }

    /// Where the bundle was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the bundle's signature with `signer` and returns the
    /// statement it signs. See the [module docs](self) for every check.
    pub fn verify(&self, signer: &SignerKey) -> Result<SignedManifest, ProvenanceError> {
        verify_bundle(&self.bytes, signer)
    }
}

/// What a verified signature says: the model's name, its root digest, and
/// each file's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    /// The subject's name: the model directory's name when it was signed.
    pub model_name: String,
    /// The subject's digest: SHA-256 over the files' digests, in order.
    pub root_digest: Digest,
    /// Every signed file, by `/`-separated name relative to the model
    /// directory.
    pub files: BTreeMap<String, Digest>,
    /// Paths (relative, signed) that were left out when signing, such as
    /// `.git` and the signature file itself.
    pub ignore_paths: BTreeSet<String>,
}

/// The DSSE v1 pre-authentication encoding, the bytes that are signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        payload
            .len()
            .saturating_add(payload_type.len())
            .saturating_add(32),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

fn verify_bundle(bytes: &[u8], signer: &SignerKey) -> Result<SignedManifest, ProvenanceError> {
    let format = |reason: String| ProvenanceError::BundleFormat { reason };
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > MAX_BUNDLE_BYTES {
        return Err(ProvenanceError::BundleTooLarge {
            bytes: len,
            limit: MAX_BUNDLE_BYTES,
        });
    }

    // 1. The envelope.
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(ProvenanceError::BundleJson)?;
    if !bundle.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        return Err(format(format!(
            "media type {:?} is not a sigstore bundle",
            bundle.media_type
        )));
    }
    let envelope = bundle
        .dsse_envelope
        .ok_or_else(|| format("no dsseEnvelope (only DSSE-signed bundles are read)".into()))?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(format(format!(
            "payload type {:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}",
            envelope.payload_type
        )));
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(format(format!(
            "envelope has {} signatures, expected 1",
            envelope.signatures.len()
        )));
    };

    // 2. The unsigned key hint, only to name a wrong key as such.
    let hint = bundle
        .verification_material
        .and_then(|m| m.public_key)
        .map(|k| k.hint)
        .unwrap_or_default();
    if !hint.is_empty() && !hint.eq_ignore_ascii_case(signer.hint()) {
        return Err(ProvenanceError::WrongKey {
            bundle_hint: hint,
            key_hint: signer.hint().to_owned(),
        });
    }

    // 3. The signature over PAE(type, payload).
    let payload = BASE64
        .decode(envelope.payload.as_bytes())
        .map_err(|e| format(format!("payload is not base64: {e}")))?;
    let sig = BASE64
        .decode(signature.sig.as_bytes())
        .map_err(|e| format(format!("signature is not base64: {e}")))?;
    let sig = Signature::from_der(&sig)
        .map_err(|_| format("signature is not a DER-encoded ECDSA P-256 signature".into()))?;
    signer
        .key
        .verify(&pae(&envelope.payload_type, &payload), &sig.normalize_s())
        .map_err(|_| ProvenanceError::BadSignature)?;

    // 4. The statement the signature covers.
    parse_statement(&payload)
}

fn parse_statement(payload: &[u8]) -> Result<SignedManifest, ProvenanceError> {
    let invalid = |reason: String| ProvenanceError::StatementFormat { reason };
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| invalid(format!("not an in-toto statement: {e}")))?;
    if statement.kind != STATEMENT_TYPE {
        return Err(invalid(format!(
            "statement type {:?}, expected {STATEMENT_TYPE:?}",
            statement.kind
        )));
    }
    if statement.predicate_type == PREDICATE_TYPE_PRE_1_0 {
        return Err(invalid(
            "a pre-1.0 model_signing signature; re-sign with model_signing 1.x".into(),
        ));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(invalid(format!(
            "predicate type {:?}, expected {PREDICATE_TYPE:?}",
            statement.predicate_type
        )));
    }
    let serialization = &statement.predicate.serialization;
    if serialization.method != "files" || serialization.hash_type != "sha256" {
        return Err(invalid(format!(
            "serialization method {:?} with hash {:?}; only \"files\" with \"sha256\" is supported",
            serialization.method, serialization.hash_type
        )));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(invalid(format!(
            "{} subjects, expected 1",
            statement.subject.len()
        )));
    };
    let root_hex = subject
        .digest
        .get("sha256")
        .ok_or_else(|| invalid("subject has no sha256 digest".into()))?;
    let root_digest =
        parse_digest(root_hex).map_err(|e| invalid(format!("subject digest: {e}")))?;

    // Each resource, and the root over their digests in the order listed.
    let mut files = BTreeMap::new();
    let mut root = Sha256::new();
    for resource in &statement.predicate.resources {
        if resource.algorithm != "sha256" {
            return Err(invalid(format!(
                "resource {:?} uses {:?}, expected sha256",
                resource.name, resource.algorithm
            )));
        }
        check_relative_name(&resource.name)?;
        let digest = parse_digest(&resource.digest)
            .map_err(|e| invalid(format!("digest of {:?}: {e}", resource.name)))?;
        root.update(digest.0);
        if files.insert(resource.name.clone(), digest).is_some() {
            return Err(ProvenanceError::DuplicateName {
                name: resource.name.clone(),
            });
        }
    }
    let found = Digest(root.finalize().into());
    if found != root_digest {
        return Err(ProvenanceError::RootDigestMismatch {
            expected: root_digest,
            found,
        });
    }
    let mut ignore_paths = BTreeSet::new();
    for path in &serialization.ignore_paths {
        check_relative_name(path)?;
        ignore_paths.insert(path.clone());
    }
    Ok(SignedManifest {
        model_name: subject.name.clone(),
        root_digest,
        files,
        ignore_paths,
    })
}

// The parts of a bundle that are read; other fields are ignored.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Option<VerificationMaterial>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    public_key: Option<PublicKeyIdentifier>,
}

#[derive(Deserialize)]
struct PublicKeyIdentifier {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    predicate_type: String,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    name: String,
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Predicate {
    resources: Vec<Resource>,
    serialization: Serialization,
}

#[derive(Deserialize)]
struct Resource {
    name: String,
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct Serialization {
    method: String,
    hash_type: String,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The worked example in the DSSE v1 protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    /// A statement as model_signing 1.x writes it, over `resources`, with
    /// the root digest computed as it does.
    fn statement(resources: &[(&str, [u8; 32])]) -> serde_json::Value {
        let mut root = Sha256::new();
        for (_, d) in resources {
            root.update(d);
        }
        serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "m", "digest": {"sha256": hex::encode(root.finalize())}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "resources": resources.iter().map(|(n, d)| serde_json::json!(
                    {"name": n, "algorithm": "sha256", "digest": hex::encode(d)}
                )).collect::<Vec<_>>(),
                "serialization": {"method": "files", "hash_type": "sha256",
                                  "ignore_paths": [".git"], "allow_symlinks": false},
            },
        })
    }

    fn parse(value: &serde_json::Value) -> Result<SignedManifest, ProvenanceError> {
        parse_statement(&serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn a_consistent_statement_parses() {
        let signed = parse(&statement(&[("a", [1; 32]), ("d/b", [2; 32])])).unwrap();
        assert_eq!(signed.files.len(), 2);
        assert_eq!(signed.files["d/b"], Digest([2; 32]));
        assert!(signed.ignore_paths.contains(".git"));
    }

    #[test]
    fn a_root_that_is_not_the_resources_digest_is_refused() {
        let mut s = statement(&[("a", [1; 32]), ("b", [2; 32])]);
        s["predicate"]["resources"][1]["digest"] = hex::encode([3u8; 32]).into();
        let err = parse(&s).unwrap_err();
        assert!(
            matches!(err, ProvenanceError::RootDigestMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn traversal_and_duplicate_names_are_refused_even_when_signed() {
        let err = parse(&statement(&[("../etc/passwd", [1; 32])])).unwrap_err();
        assert!(matches!(err, ProvenanceError::UnsafeName { .. }), "{err}");
        let err = parse(&statement(&[("a", [1; 32]), ("a", [2; 32])])).unwrap_err();
        assert!(
            matches!(err, ProvenanceError::DuplicateName { .. }),
            "{err}"
        );
        let mut s = statement(&[("a", [1; 32])]);
        s["predicate"]["serialization"]["ignore_paths"] = serde_json::json!(["/"]);
        assert!(matches!(parse(&s), Err(ProvenanceError::UnsafeName { .. })));
    }

    #[test]
    fn unsupported_statements_are_refused_by_name() {
        let mut shards = statement(&[("a", [1; 32])]);
        shards["predicate"]["serialization"]["method"] = "shards".into();
        let mut old = statement(&[("a", [1; 32])]);
        old["predicateType"] = PREDICATE_TYPE_PRE_1_0.into();
        let mut two = statement(&[("a", [1; 32])]);
        two["subject"] = serde_json::json!([two["subject"][0], two["subject"][0]]);
        let mut md5 = statement(&[("a", [1; 32])]);
        md5["predicate"]["resources"][0]["algorithm"] = "md5".into();
        for (s, says) in [
            (shards, "\"shards\""),
            (old, "pre-1.0"),
            (two, "2 subjects"),
            (md5, "md5"),
        ] {
            let err = parse(&s).unwrap_err();
            assert!(err.to_string().contains(says), "{err} lacks {says}");
        }
    }
}
