//! One pass over a model file that parses it, feeds it to the sealer and
//! digests it, so the file's SHA-256 describes exactly the bytes that were
//! sealed, even if the file changes on disk while it is read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use audit_logging::Digest;
use sha2::{Digest as _, Sha256};

use super::ModelLayout;
use crate::error::ModelError;

/// A model file (safetensors or GGUF) being read front to back. Every byte that passes
/// through [`Read`] is also hashed.
pub(crate) struct ModelReader {
    path: PathBuf,
    layout: ModelLayout,
    hashed: HashingReader<File>,
}

impl ModelReader {
    /// Opens `path` and reads its header; the reader is left at the data.
    pub(crate) fn open(path: &Path) -> Result<ModelReader, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let mut hashed = HashingReader {
            inner: file,
            hasher: Sha256::new(),
        };
        let layout = ModelLayout::read(&mut hashed, file_bytes, path)?;
        Ok(ModelReader {
            path: path.to_owned(),
            layout,
            hashed,
        })
    }

    /// The file's layout.
    pub(crate) fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    /// Checks that the file ended where its header said and returns the
    /// SHA-256 of everything read.
    pub(crate) fn finish(mut self) -> Result<Digest, ModelError> {
        let mut probe = [0u8; 1];
        let extra = loop {
            match self.hashed.inner.read(&mut probe) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ModelError::Io {
                        path: self.path,
                        source,
                    });
                }
            }
        };
        if extra != 0 {
            return Err(ModelError::ChangedWhileReading {
                path: self.path,
                expected: self.layout.file_bytes(),
            });
        }
        Ok(Digest(self.hashed.hasher.finalize().into()))
    }
}

impl Read for ModelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.hashed.read(buf)
    }
}

/// Hashes what it reads.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}
