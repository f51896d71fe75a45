//! Provenance: checking a model's files against what its publisher says
//! they are, before any byte of them is uploaded.
//!
//! Two sources are read:
//!
//! - a [`DigestManifest`]: file name to SHA-256, as a JSON object or in
//!   `sha256sum` format (see [`manifest`]);
//! - a [`ModelSignature`] checked with a [`SignerKey`]: the Sigstore bundle
//!   that the OpenSSF `model_signing sign key` tool writes, an ECDSA P-256
//!   signature over an in-toto statement that lists every file of the
//!   model directory with its SHA-256 (see [`signing`]).
//!
//! A [`Provenance`] goes into
//! [`SealModelOptions::provenance`](crate::SealModelOptions::provenance),
//! and [`VramManager::seal_model`](crate::VramManager::seal_model) checks it
//! first: a model that fails is refused before upload and recorded as
//! `model.rejected` with the reason. The model file itself gets the digest
//! the source gives it as its expected SHA-256, so it is checked before
//! upload and again, as sealed, while it is read.
//!
//! With a signature, the whole model directory must be what was signed:
//! every signed file present with its digest, and no file the signature
//! does not list (outside its signed `ignore_paths`). A manifest only
//! speaks for the model file; other entries are not read.
//!
//! Files are named relative to the model directory; a name that is
//! absolute or climbs out with `..` is refused, and neither a walk nor a
//! digest follows a symbolic link.

use std::path::Path;

use audit_logging::Digest;

pub use crate::error::ProvenanceError;

pub(crate) mod files;
pub mod manifest;
pub mod signing;

pub use files::{MAX_MODEL_DEPTH, MAX_MODEL_FILES};
pub use manifest::DigestManifest;
pub use signing::{ModelSignature, SignedManifest, SignerKey};

/// What a model's files are checked against before they are sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
    /// Expected digests by file name.
    Manifest(DigestManifest),
    /// An OpenSSF model signature and the key it must verify with.
    Signature {
        /// The bundle, as read.
        signature: ModelSignature,
        /// The signer's public key.
        signer: SignerKey,
    },
}

impl Provenance {
    /// Checks the model directory `dir` for the model file `model_file` (a
    /// name relative to `dir`) and returns the SHA-256 the model file must
    /// have. With a signature, every other file of `dir` is digested and
    /// compared here; the model file is left to the caller, who reads it
    /// anyway.
    pub fn check(&self, dir: &Path, model_file: &str) -> Result<Digest, ProvenanceError> {
        let digests = self.check_files(dir, &[model_file])?;
        digests
            .into_iter()
            .next()
            .ok_or_else(|| ProvenanceError::NotListed {
                file: model_file.to_owned(),
            })
    }

    /// Like [`check`](Self::check) for several files of one directory:
    /// returns the SHA-256 each of `files` must have, in order. With a
    /// signature, every other file of `dir` is digested and compared here.
    pub fn check_files(&self, dir: &Path, files: &[&str]) -> Result<Vec<Digest>, ProvenanceError> {
        for file in files {
            files::check_relative_name(file)?;
        }
        let listed = |lookup: &dyn Fn(&str) -> Option<Digest>| {
            files
                .iter()
                .map(|file| {
                    lookup(file).ok_or_else(|| ProvenanceError::NotListed {
                        file: (*file).to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        match self {
            Provenance::Manifest(manifest) => listed(&|f| manifest.get(f)),
            Provenance::Signature { signature, signer } => {
                let signed = signature.verify(signer)?;
                let digests = listed(&|f| signed.files.get(f).copied())?;
                check_signed_dir(&signed, dir, signature.path(), files)?;
                Ok(digests)
            }
        }
    }
}

/// Compares `dir` with what the signature lists, digesting every file but
/// `deferred` (which the caller checks as it reads them).
fn check_signed_dir(
    signed: &SignedManifest,
    dir: &Path,
    signature_path: &Path,
    deferred: &[&str],
) -> Result<(), ProvenanceError> {
    // The bundle itself, when it lies in the directory, is not a model file.
    let mut ignored = signed.ignore_paths.clone();
    let canonical_dir = std::fs::canonicalize(dir).map_err(|source| ProvenanceError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if let Ok(inside) = signature_path.strip_prefix(&canonical_dir)
        && let Some(name) = inside.to_str()
    {
        ignored.insert(name.to_owned());
    }

    let on_disk = files::list_files(dir, &ignored)?;
    if let Some(file) = signed.files.keys().find(|f| !on_disk.contains(*f)) {
        return Err(ProvenanceError::MissingFile { file: file.clone() });
    }
    if let Some(file) = on_disk.iter().find(|f| !signed.files.contains_key(*f)) {
        return Err(ProvenanceError::UnsignedFile { file: file.clone() });
    }
    for (name, want) in &signed.files {
        if deferred.contains(&name.as_str()) {
            continue;
        }
        let found = files::digest_file(&files::join(dir, name), name)?;
        if found != *want {
            return Err(ProvenanceError::FileMismatch {
                file: name.clone(),
                expected: *want,
                found,
            });
        }
    }
    Ok(())
}
