//! Model files: safetensors and GGUF headers ([`gguf`]), sharded
//! checkpoint indexes ([`index`]), shard plans and whole-file digests.
//! [`ModelLayout`] reads either format, told apart by the first bytes.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON
//! header naming each tensor's dtype, shape and byte range, then the tensor
//! data, tightly packed. [`SafetensorsFile`] reads only the prefix and the
//! header, so opening a 70 GB model costs a few kilobytes of reads; the
//! `safetensors` crate does the JSON parsing and checks the offsets (no gaps,
//! no overlaps, sizes that agree with dtype and shape). What that crate only
//! offers on a whole in-memory file, this module does on a stream: bound the
//! header length before allocating for it, and check that the data section
//! is exactly as long as the header says.
//!
//! Bad input is an error, never a panic: a file too short for the prefix, a
//! header length above [`MAX_HEADER_BYTES`] or past the end of the file,
//! header bytes that are not safetensors JSON, and a data section that is
//! truncated or followed by extra bytes are each a distinct [`ModelError`].
//!
//! [`SafetensorsFile::plan`] groups tensors into shards (see [`plan`]), and
//! [`file_sha256`] gives the digest that model distributions publish.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use audit_logging::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::ModelError;

pub mod gguf;
pub mod index;
pub mod plan;
pub(crate) mod reader;

pub use gguf::GgufFile;
pub use index::ShardedIndex;
pub use plan::{PlannedShard, ShardPlan, plan_shards};

/// Largest safetensors header this crate will read, in bytes: 16 MiB.
///
/// Real headers are a few hundred bytes per tensor, so this admits tens of
/// thousands of tensors, far more than any published checkpoint file holds,
/// while keeping a hostile length prefix from making us allocate and parse
/// hundreds of megabytes of JSON.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Size of the header length prefix.
const PREFIX_BYTES: u64 = 8;

/// Read size for streaming digests: large enough to keep the disk busy,
/// small enough not to matter next to a model.
pub(crate) const STREAM_CHUNK_BYTES: usize = 1 << 20;

/// One tensor as the header describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// The tensor's name.
    pub name: String,
    /// Its element type, as safetensors names it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// First byte, relative to the start of the data section.
    pub start: u64,
    /// One past the last byte, relative to the start of the data section.
    pub end: u64,
}

impl TensorEntry {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// A safetensors file's layout, read from its header. See the
/// [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetensorsFile {
    file_bytes: u64,
    header_bytes: u64,
    tensors: Vec<TensorEntry>,
}

impl SafetensorsFile {
    /// Reads and checks the header of the file at `path`.
    pub fn open(path: &Path) -> Result<SafetensorsFile, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        SafetensorsFile::read(&mut file, file_bytes, path)
    }

    /// Reads and checks a header from `reader`, positioned at the start of a
    /// file of `file_bytes` bytes. Leaves `reader` at the start of the data.
    /// `path` only names the source in errors.
    pub fn read(
        reader: &mut impl Read,
        file_bytes: u64,
        path: &Path,
    ) -> Result<SafetensorsFile, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };

        // Length prefix, bounded before anything is allocated for it.
        let after_prefix = file_bytes
            .checked_sub(PREFIX_BYTES)
            .ok_or(ModelError::TooShort { file_bytes })?;
        let mut prefix = [0u8; 8];
        reader.read_exact(&mut prefix).map_err(io)?;
        let header_bytes = u64::from_le_bytes(prefix);
        if header_bytes > MAX_HEADER_BYTES {
            return Err(ModelError::HeaderTooLarge {
                header_bytes,
                limit: MAX_HEADER_BYTES,
            });
        }
        let data_bytes =
            after_prefix
                .checked_sub(header_bytes)
                .ok_or(ModelError::HeaderTruncated {
                    header_bytes,
                    available: after_prefix,
                })?;

        // The header itself; `safetensors` checks names, dtypes and offsets.
        let too_large = ModelError::HeaderTooLarge {
            header_bytes,
            limit: MAX_HEADER_BYTES,
        };
        let mut header = vec![0u8; usize::try_from(header_bytes).map_err(|_| too_large)?];
        reader.read_exact(&mut header).map_err(io)?;
        let metadata: safetensors::tensor::Metadata =
            serde_json::from_slice(&header).map_err(ModelError::InvalidHeader)?;

        // The data section must be exactly what the offsets cover.
        let expected = u64::try_from(metadata.data_len()).unwrap_or(u64::MAX);
        if expected != data_bytes {
            return Err(ModelError::DataLengthMismatch {
                expected,
                found: data_bytes,
            });
        }
        let tensors = metadata
            .offset_keys()
            .into_iter()
            .map(|name| {
                // `offset_keys` lists exactly the names `info` knows.
                let info = metadata.info(&name).ok_or_else(|| {
                    ModelError::InvalidHeader(serde::de::Error::custom(format!(
                        "tensor {name:?} listed but not described"
                    )))
                })?;
                let (start, end) = info.data_offsets;
                Ok(TensorEntry {
                    dtype: info.dtype.to_string(),
                    shape: info.shape.clone(),
                    start: u64::try_from(start).unwrap_or(u64::MAX),
                    end: u64::try_from(end).unwrap_or(u64::MAX),
                    name,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(SafetensorsFile {
            file_bytes,
            header_bytes,
            tensors,
        })
    }

    /// Tensors in data order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Size of the whole file.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Size of the JSON header (without the 8-byte prefix).
    pub fn header_bytes(&self) -> u64 {
        self.header_bytes
    }

    /// Where the data section starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.header_bytes.saturating_add(PREFIX_BYTES)
    }

    /// Size of the data section.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.last().map_or(0, |t| t.end)
    }

    /// Groups the tensors into shards of at most `max_shard_bytes` each; see
    /// [`plan_shards`].
    pub fn plan(&self, max_shard_bytes: u64) -> Result<ShardPlan, ModelError> {
        let sizes: Vec<u64> = self.tensors.iter().map(TensorEntry::bytes).collect();
        plan_shards(&sizes, max_shard_bytes)
    }
}

/// Which format a model file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelFormat {
    /// A safetensors file ([`SafetensorsFile`]).
    Safetensors,
    /// A GGUF file ([`GgufFile`]).
    Gguf,
}

impl ModelFormat {
    /// The format a file starting with `prefix` is in: GGUF when it starts
    /// with [`gguf::GGUF_MAGIC`], otherwise safetensors (whose first bytes
    /// are a length, so have no magic of their own).
    pub fn detect(prefix: &[u8]) -> ModelFormat {
        if prefix.starts_with(&gguf::GGUF_MAGIC) {
            ModelFormat::Gguf
        } else {
            ModelFormat::Safetensors
        }
    }

    /// The format's name, as in messages and events.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::Gguf => "gguf",
        }
    }
}

/// A model file's layout in either format: where its tensor data starts,
/// and the tensors that cover it, in data order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelLayout {
    format: ModelFormat,
    file_bytes: u64,
    data_offset: u64,
    tensors: Vec<TensorEntry>,
}

impl ModelLayout {
    /// Reads the header of the model file at `path`, in whichever format
    /// [`ModelFormat::detect`] finds.
    pub fn open(path: &Path) -> Result<ModelLayout, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        ModelLayout::read(&mut file, file_bytes, path)
    }

    /// Reads a header from `reader`, positioned at the start of a file of
    /// `file_bytes` bytes, and leaves it at the start of the tensor data.
    /// The format is told by the first four bytes, read through `reader`
    /// like the rest.
    pub fn read(
        reader: &mut impl Read,
        file_bytes: u64,
        path: &Path,
    ) -> Result<ModelLayout, ModelError> {
        let mut prefix = [0u8; 4];
        let got = if file_bytes >= 4 {
            reader
                .read_exact(&mut prefix)
                .map_err(|source| ModelError::Io {
                    path: path.to_owned(),
                    source,
                })?;
            prefix.len()
        } else {
            0
        };
        let mut rest = std::io::Cursor::new(prefix.get(..got).unwrap_or_default()).chain(reader);
        match ModelFormat::detect(&prefix) {
            ModelFormat::Gguf => GgufFile::read(&mut rest, file_bytes, path).map(Into::into),
            ModelFormat::Safetensors => {
                SafetensorsFile::read(&mut rest, file_bytes, path).map(Into::into)
            }
        }
    }

    /// The file's format.
    pub fn format(&self) -> ModelFormat {
        self.format
    }

    /// Tensors in data order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Size of the whole file.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Where the tensor data starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Size of the data section.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.last().map_or(0, |t| t.end)
    }

    /// Groups the tensors into shards of at most `max_shard_bytes` each; see
    /// [`plan_shards`].
    pub fn plan(&self, max_shard_bytes: u64) -> Result<ShardPlan, ModelError> {
        let sizes: Vec<u64> = self.tensors.iter().map(TensorEntry::bytes).collect();
        plan_shards(&sizes, max_shard_bytes)
    }
}

impl From<SafetensorsFile> for ModelLayout {
    fn from(file: SafetensorsFile) -> Self {
        ModelLayout {
            format: ModelFormat::Safetensors,
            file_bytes: file.file_bytes,
            data_offset: file.data_offset(),
            tensors: file.tensors,
        }
    }
}

impl From<GgufFile> for ModelLayout {
    fn from(file: GgufFile) -> Self {
        ModelLayout {
            format: ModelFormat::Gguf,
            file_bytes: file.file_bytes(),
            data_offset: file.data_offset(),
            tensors: file.tensors().to_vec(),
        }
    }
}

/// SHA-256 of the whole file at `path`, read in bounded chunks; the value to
/// compare with the digest a model distribution publishes.
pub fn file_sha256(path: &Path) -> Result<Digest, ModelError> {
    let io = |source| ModelError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; STREAM_CHUNK_BYTES];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests;
