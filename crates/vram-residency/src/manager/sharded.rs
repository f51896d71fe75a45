//! Sealing a sharded safetensors checkpoint: the index, then every file it
//! names, all or nothing.
//!
//! Before any byte is uploaded: the index is read and its names checked
//! (see [`model::index`](crate::model::index)), the provenance check covers
//! the index and every file, and every file's header is read and must hold
//! exactly the tensors the index assigns to it. Then each file is sealed
//! with [`VramManager::seal_model`], which digests it again as it reads it;
//! if one fails, the files sealed before it are unsealed.

use std::path::Path;

use audit_logging::Digest;

use super::{SealModelOptions, SealProgress, SealedModel, VramManager};
use crate::backend::VramBackend;
use crate::error::{ModelError, ProvenanceError, SealModelError};
use crate::model::index::ShardedIndex;
use crate::model::{ModelFormat, ModelLayout};
use crate::provenance::{DigestManifest, Provenance};

/// A sharded checkpoint whose every file is sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedCheckpoint {
    /// The checkpoint's name, as the caller gave it.
    pub model_ref: String,
    /// SHA-256 of the index file as parsed.
    pub index_sha256: Digest,
    /// Each file, in the index's name order, under the model reference
    /// `{model_ref}/{file name}`.
    pub files: Vec<(String, SealedModel)>,
}

impl<B: VramBackend> VramManager<B> {
    /// Seals every file of the sharded safetensors checkpoint whose index
    /// (`model.safetensors.index.json`) is at `index_path`, all or nothing.
    ///
    /// Before any byte is uploaded, the index is read and its names checked
    /// (see [`model::index`](crate::model::index)), the provenance check
    /// covers the index and every file, and every file's header must hold
    /// exactly the tensors the index assigns to it. Then each file is sealed
    /// with [`seal_model`](Self::seal_model), which digests it again as it
    /// reads it; if one fails, the files sealed before it are unsealed.
    ///
    /// `options.expected_sha256`, if set, is the SHA-256 of the index file;
    /// `options.provenance` must list the index and every file. Each file
    /// is sealed as model `{model_ref}/{file name}` and recorded as
    /// `model.sealed`. A checkpoint refused before upload is recorded as
    /// `model.rejected` under `model_ref`, an index that names a path
    /// outside its directory also as `security.path_traversal_attempt`, and
    /// a file refused while sealing under its own reference.
    pub fn seal_sharded_model(
        &self,
        index_path: &Path,
        options: &SealModelOptions,
        progress: &mut dyn FnMut(SealProgress<'_>),
    ) -> Result<SealedCheckpoint, SealModelError> {
        let model_ref = options.model_ref.as_str();
        let reject = |error: SealModelError| self.reject_model(model_ref, Vec::new(), error);

        let checked = ShardedIndex::load(index_path)
            .map_err(SealModelError::from)
            .and_then(|index| {
                let expected = self.check_checkpoint(&index, options)?;
                Ok((index, expected))
            });
        let (index, expected) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                if let SealModelError::Model(ModelError::UnsafeIndexPath { name, .. }) = &error {
                    let source = format!("model index {}", index_path.display());
                    self.audit.path_traversal(&source, name);
                }
                return Err(reject(error));
            }
        };

        let mut sealed: Vec<(String, SealedModel)> = Vec::new();
        for (file, digest) in index.files().iter().zip(expected) {
            let mut per_file = SealModelOptions::new(format!("{model_ref}/{file}"))
                .with_max_shard_bytes(options.max_shard_bytes);
            per_file.cancel = options.cancel.clone();
            if let Some(digest) = digest {
                let manifest = DigestManifest::from_entries([(file.clone(), digest)])
                    .map_err(SealModelError::from)?;
                per_file = per_file.with_provenance(Provenance::Manifest(manifest));
            }
            match self.seal_model(&index.dir().join(file), &per_file, progress) {
                Ok(model) => sealed.push((file.clone(), model)),
                Err(error) => {
                    for (_, model) in sealed.into_iter().rev() {
                        self.roll_back(model.shards);
                    }
                    if matches!(error, SealModelError::Cancelled) {
                        return Err(error);
                    }
                    return Err(SealModelError::InFile {
                        file: file.clone(),
                        source: Box::new(error),
                    });
                }
            }
        }
        Ok(SealedCheckpoint {
            model_ref: model_ref.to_owned(),
            index_sha256: index.sha256(),
            files: sealed,
        })
    }

    /// Everything checked before upload; returns each file's expected
    /// digest (from the provenance check), in the index's order.
    fn check_checkpoint(
        &self,
        index: &ShardedIndex,
        options: &SealModelOptions,
    ) -> Result<Vec<Option<Digest>>, SealModelError> {
        if let Some(expected) = options.expected_sha256
            && expected != index.sha256()
        {
            return Err(SealModelError::FileDigestMismatch {
                expected,
                found: index.sha256(),
            });
        }
        let index_name = index
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ProvenanceError::UnsafeName {
                name: index.path().display().to_string(),
                reason: "the index path has no UTF-8 file name",
            })?;
        let files: Vec<&str> = index.files().iter().map(String::as_str).collect();
        let expected = match &options.provenance {
            None => vec![None; files.len()],
            Some(provenance) => {
                let mut names = vec![index_name];
                names.extend(&files);
                let digests = provenance.check_files(index.dir(), &names)?;
                let (index_digest, rest) =
                    digests
                        .split_first()
                        .ok_or_else(|| ProvenanceError::NotListed {
                            file: index_name.to_owned(),
                        })?;
                if *index_digest != index.sha256() {
                    return Err(ProvenanceError::FileMismatch {
                        file: index_name.to_owned(),
                        expected: *index_digest,
                        found: index.sha256(),
                    }
                    .into());
                }
                rest.iter().copied().map(Some).collect()
            }
        };

        // Every file: a regular file, in safetensors, with exactly its tensors.
        for file in &files {
            let path = index.dir().join(file);
            let is_link =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                return Err(ModelError::UnsafeIndexPath {
                    name: (*file).to_owned(),
                    reason: "a symbolic link; checkpoint files are not read through links".into(),
                }
                .into());
            }
            let layout = ModelLayout::open(&path)?;
            if layout.format() != ModelFormat::Safetensors {
                return Err(ModelError::IndexMismatch {
                    file: (*file).to_owned(),
                    reason: format!("a {} file, not safetensors", layout.format().name()),
                }
                .into());
            }
            index.check_file(file, layout.tensors())?;
        }
        Ok(expected)
    }
}
