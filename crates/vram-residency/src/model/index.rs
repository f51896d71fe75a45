//! Sharded safetensors checkpoints: `model.safetensors.index.json` and the
//! files it names.
//!
//! The index, as Hugging Face tools write it, is a JSON object whose
//! `weight_map` maps every tensor name to the safetensors file that holds
//! it (`"model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors"`);
//! its other members (`metadata.total_size` and the like) are not read.
//! [`ShardedIndex`] reads it with the limits of hostile input: at most
//! [`MAX_INDEX_BYTES`], never through a symbolic link, and every file name
//! a plain name in the index's own directory. A name that is absolute,
//! climbs out with `..` or reaches into a subdirectory is refused as
//! [`ModelError::UnsafeIndexPath`], and the manager records it as a
//! `security.path_traversal_attempt`.
//!
//! [`VramManager::seal_sharded_model`](crate::VramManager::seal_sharded_model)
//! then checks that each file holds exactly the tensors the index assigns
//! to it before it uploads any of them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use audit_logging::Digest;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::ModelError;
use crate::provenance::files::{check_relative_name, open_no_follow};

/// The name Hugging Face gives a sharded checkpoint's index.
pub const INDEX_FILE_NAME: &str = "model.safetensors.index.json";

/// Largest index read, in bytes: 16 MiB, a hundred bytes per tensor for
/// over a hundred thousand tensors, while a hostile file cannot make us
/// parse gigabytes of JSON.
pub const MAX_INDEX_BYTES: u64 = 16 << 20;

/// A sharded checkpoint's index. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardedIndex {
    path: PathBuf,
    sha256: Digest,
    weight_map: BTreeMap<String, String>,
    files: BTreeSet<String>,
}

impl ShardedIndex {
    /// Reads the index at `path`, not through a symbolic link.
    pub fn load(path: &Path) -> Result<ShardedIndex, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let file = open_no_follow(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
            return Err(ModelError::InvalidIndex {
                reason: format!(
                    "not a regular file of at most {MAX_INDEX_BYTES} bytes ({} bytes)",
                    meta.len()
                ),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_BYTES.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        ShardedIndex::parse(&bytes, path)
    }

    /// Parses index bytes; `path` is where they were read from.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ShardedIndex, ModelError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_INDEX_BYTES {
            return Err(ModelError::InvalidIndex {
                reason: format!("{len} bytes exceed the {MAX_INDEX_BYTES}-byte limit"),
            });
        }
        let raw: RawIndex = serde_json::from_slice(bytes).map_err(ModelError::IndexJson)?;
        if raw.weight_map.is_empty() {
            return Err(ModelError::InvalidIndex {
                reason: "weight_map is empty".into(),
            });
        }
        let mut files = BTreeSet::new();
        for file in raw.weight_map.values() {
            check_index_name(file)?;
            files.insert(file.clone());
        }
        Ok(ShardedIndex {
            path: path.to_owned(),
            sha256: Digest(Sha256::digest(bytes).into()),
            weight_map: raw.weight_map,
            files,
        })
    }

    /// Where the index was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory the files are in: the index's own.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// SHA-256 of the index bytes as parsed.
    pub fn sha256(&self) -> Digest {
        self.sha256
    }

    /// The files, in name order (which for `model-0000N-of-0000M` names is
    /// their order).
    pub fn files(&self) -> &BTreeSet<String> {
        &self.files
    }

    /// The tensors the index assigns to `file`.
    pub fn tensors_of<'a>(&'a self, file: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.weight_map
            .iter()
            .filter(move |(_, f)| f.as_str() == file)
            .map(|(t, _)| t.as_str())
    }

    /// Checks that `tensors` (a file's, from its header) are exactly those
    /// the index assigns to `file`.
    pub fn check_file(&self, file: &str, tensors: &[super::TensorEntry]) -> Result<(), ModelError> {
        let expected: BTreeSet<&str> = self.tensors_of(file).collect();
        let found: BTreeSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        let mismatch = |reason: String| ModelError::IndexMismatch {
            file: file.to_owned(),
            reason,
        };
        if let Some(t) = expected.difference(&found).next() {
            return Err(mismatch(format!(
                "tensor {t:?} is mapped to it but not in it"
            )));
        }
        if let Some(t) = found.difference(&expected).next() {
            return Err(mismatch(format!(
                "tensor {t:?} is in it but the index maps it elsewhere"
            )));
        }
        Ok(())
    }
}

/// A file name in an index: one plain component.
fn check_index_name(name: &str) -> Result<(), ModelError> {
    let unsafe_path = |reason: String| ModelError::UnsafeIndexPath {
        name: name.to_owned(),
        reason,
    };
    check_relative_name(name).map_err(|e| unsafe_path(e.to_string()))?;
    if name.contains('/') {
        return Err(unsafe_path("not in the index's own directory".into()));
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawIndex {
    weight_map: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ShardedIndex, ModelError> {
        ShardedIndex::parse(text.as_bytes(), Path::new("m/model.safetensors.index.json"))
    }

    #[test]
    fn files_are_listed_once_in_name_order() {
        let index = parse(
            r#"{"metadata": {"total_size": 3}, "weight_map": {
                "b": "model-00002-of-00002.safetensors",
                "a": "model-00001-of-00002.safetensors",
                "c": "model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        assert_eq!(
            index.files().iter().collect::<Vec<_>>(),
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        assert_eq!(
            index
                .tensors_of("model-00001-of-00002.safetensors")
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(index.dir(), Path::new("m"));
    }

    #[test]
    fn traversal_absolute_and_nested_names_are_refused() {
        for name in [
            "../x.safetensors",
            "/etc/passwd",
            "sub/x.safetensors",
            "",
            "a\\b",
        ] {
            let text = format!(r#"{{"weight_map": {{"t": {}}}}}"#, serde_json::json!(name));
            let err = parse(&text).unwrap_err();
            assert!(
                matches!(err, ModelError::UnsafeIndexPath { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn garbage_and_empty_indexes_are_refused() {
        for text in [
            "",
            "[]",
            "{}",
            r#"{"weight_map": {}}"#,
            r#"{"weight_map": {"t": 1}}"#,
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
