//! GGUF files, the format of llama.cpp and its relatives, read from a
//! stream with every length bounded before it is trusted.
//!
//! A GGUF file (versions 2 and 3, little-endian) is:
//!
//! ```text
//! "GGUF"  version: u32  tensor_count: u64  metadata_kv_count: u64
//! metadata_kv_count × { key: string, value_type: u32, value }
//! tensor_count × { name: string, n_dims: u32, dims: u64 × n_dims, ggml_type: u32, offset: u64 }
//! padding to `general.alignment` (default 32), counted from the start of the file
//! tensor data: each tensor at its offset, padded to the alignment
//! ```
//!
//! where a string is a `u64` length and that many UTF-8 bytes, and a value
//! is a scalar, a string, or an array (`elem_type: u32, count: u64`, then
//! the elements, arrays nested). No crate on crates.io reads this with
//! bounds fit for hostile input (the ones that exist allocate from the
//! counts they read), so this module does, the way llama.cpp's own loader
//! checks it:
//!
//! - magic, a known version (version 1, with 32-bit counts, is refused, and
//!   so is a big-endian file, whose version reads as a huge number);
//! - the header (everything before the tensor data) at most
//!   [`MAX_HEADER_BYTES`], and inside the file; at most
//!   [`MAX_TENSORS`] tensors; names and keys at most [`MAX_NAME_BYTES`];
//!   arrays nested at most [`MAX_ARRAY_DEPTH`] deep. Metadata values are
//!   read and dropped, never held, so a large vocabulary costs no memory;
//! - `general.alignment`, if present, a `u32` power of two;
//! - every tensor of a known ggml type, at most 4 dimensions, its first
//!   dimension a multiple of the type's block size, its byte size within
//!   `u64`, and its offset exactly where the previous tensor's padded data
//!   ends (so tensors neither overlap nor leave gaps);
//! - the data section exactly as long as the tensors' padded sizes (the
//!   last tensor's padding may be left off).
//!
//! For shard planning each [`TensorEntry`] spans its data *and* the padding
//! after it, so the tensors together cover the data section exactly once,
//! as they do for safetensors.

use std::io::{self, Read};
use std::path::Path;

use super::TensorEntry;
use crate::error::ModelError;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Largest GGUF header read, in bytes: 256 MiB. Metadata holds the
/// tokenizer (a 128k-token vocabulary and its merges are a few tens of
/// megabytes), so the bound is generous; it only keeps a hostile file from
/// making us read gigabytes before the first tensor.
pub const MAX_HEADER_BYTES: u64 = 256 << 20;

/// Most tensors a GGUF file may describe: a million, a hundred times what
/// the largest published models have. Tensor infos are held in memory.
pub const MAX_TENSORS: u64 = 1 << 20;

/// Longest metadata key or tensor name, in bytes: the format limits keys
/// to 65 535 bytes, and ggml limits tensor names to 64.
pub const MAX_NAME_BYTES: u64 = 65_535;

/// Deepest nesting of metadata arrays.
pub const MAX_ARRAY_DEPTH: u32 = 8;

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Alignment when the file does not set `general.alignment`.
const DEFAULT_ALIGNMENT: u64 = 32;

/// A GGUF file's layout, read from its header. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufFile {
    version: u32,
    file_bytes: u64,
    data_offset: u64,
    alignment: u64,
    tensors: Vec<TensorEntry>,
}

impl GgufFile {
    /// Reads and checks the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<GgufFile, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        GgufFile::read(&mut file, file_bytes, path)
    }

    /// Reads and checks a header from `reader`, positioned at the start of
    /// a file of `file_bytes` bytes. Leaves `reader` at the start of the
    /// tensor data. `path` only names the source in errors.
    pub fn read(
        reader: &mut impl Read,
        file_bytes: u64,
        path: &Path,
    ) -> Result<GgufFile, ModelError> {
        let mut input = Input {
            inner: reader,
            path,
            offset: 0,
            limit: file_bytes.min(MAX_HEADER_BYTES),
            file_bytes,
        };
        input.parse()
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Tensors in data order; each spans its data and the padding after it.
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

    /// The data alignment, in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
}

/// A ggml tensor type: its name, and how many elements of how many bytes
/// make one block.
struct GgmlType {
    name: &'static str,
    block: u64,
    bytes: u64,
}

/// The ggml types by id, as in ggml's `type_traits` table; `None` for ids
/// that were removed from the format.
fn ggml_type(id: u32) -> Option<GgmlType> {
    let (name, block, bytes) = match id {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        _ => return None,
    };
    Some(GgmlType { name, block, bytes })
}

/// Metadata value types.
mod value {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// The header being read: where we are, and how far we may go.
struct Input<'a, R> {
    inner: &'a mut R,
    path: &'a Path,
    offset: u64,
    /// The header may not reach past this: the file's end or the limit.
    limit: u64,
    file_bytes: u64,
}

impl<R: Read> Input<'_, R> {
    fn invalid(&self, reason: impl Into<String>) -> ModelError {
        ModelError::InvalidGguf {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Claims `n` more header bytes, failing if they would pass the limit.
    fn claim(&mut self, n: u64, what: &str) -> Result<(), ModelError> {
        match self.offset.checked_add(n) {
            Some(end) if end <= self.limit => {
                self.offset = end;
                Ok(())
            }
            _ if self.limit < self.file_bytes => Err(self.invalid(format!(
                "{what} of {n} bytes takes the header past the {MAX_HEADER_BYTES}-byte limit"
            ))),
            _ => Err(self.invalid(format!("{what} of {n} bytes runs past the end of the file"))),
        }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelError> {
        let start = self.offset;
        self.claim(N as u64, what)?;
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| self.io(e, start))?;
        Ok(buf)
    }

    fn io(&self, source: io::Error, at: u64) -> ModelError {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            return ModelError::ChangedWhileReading {
                path: self.path.to_owned(),
                expected: self.file_bytes.max(at),
            };
        }
        ModelError::Io {
            path: self.path.to_owned(),
            source,
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        self.bytes::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, ModelError> {
        self.bytes::<8>(what).map(u64::from_le_bytes)
    }

    /// A string of at most `max` bytes, kept.
    fn string(&mut self, what: &str, max: u64) -> Result<String, ModelError> {
        let len = self.u64(what)?;
        if len > max {
            return Err(self.invalid(format!("{what} of {len} bytes exceeds {max}")));
        }
        let start = self.offset;
        self.claim(len, what)?;
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| self.invalid("string too long"))?];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| self.io(e, start))?;
        String::from_utf8(buf).map_err(|_| self.invalid(format!("{what} is not UTF-8")))
    }

    /// Reads and drops `n` bytes.
    fn skip(&mut self, n: u64, what: &str) -> Result<(), ModelError> {
        let start = self.offset;
        self.claim(n, what)?;
        let copied = io::copy(&mut self.inner.by_ref().take(n), &mut io::sink())
            .map_err(|e| self.io(e, start))?;
        if copied != n {
            return Err(self.io(io::ErrorKind::UnexpectedEof.into(), start));
        }
        Ok(())
    }

    fn parse(&mut self) -> Result<GgufFile, ModelError> {
        // Magic and version.
        let magic = self.bytes::<4>("magic")?;
        if magic != GGUF_MAGIC {
            return Err(self.invalid("not a GGUF file (bad magic)"));
        }
        let version = self.u32("version")?;
        match version {
            2 | 3 => {}
            1 => return Err(self.invalid("GGUF version 1 is not supported")),
            v => return Err(self.invalid(format!("unknown GGUF version {v} (or big-endian)"))),
        }
        let tensor_count = self.u64("tensor count")?;
        if tensor_count > MAX_TENSORS {
            return Err(self.invalid(format!(
                "{tensor_count} tensors exceed the limit of {MAX_TENSORS}"
            )));
        }
        let kv_count = self.u64("metadata count")?;

        // Metadata: only the alignment is kept.
        let mut alignment = DEFAULT_ALIGNMENT;
        for _ in 0..kv_count {
            let key = self.string("metadata key", MAX_NAME_BYTES)?;
            let ty = self.u32("value type")?;
            if key == "general.alignment" {
                if ty != value::U32 {
                    return Err(self.invalid("general.alignment is not a u32"));
                }
                let a = self.u32("general.alignment")?;
                if !a.is_power_of_two() {
                    return Err(self.invalid(format!("alignment {a} is not a power of two")));
                }
                alignment = u64::from(a);
            } else {
                self.skip_value(ty, 0)?;
            }
        }

        // Tensor infos; each must start where the previous one's padded
        // data ends.
        let mut tensors: Vec<TensorEntry> = Vec::new();
        let mut next = 0u64;
        let mut last_padding = 0u64;
        for _ in 0..tensor_count {
            let name = self.string("tensor name", MAX_NAME_BYTES)?;
            let (shape, ty, bytes) = self.tensor_shape(&name)?;
            let offset = self.u64("tensor offset")?;
            if offset != next {
                return Err(self.invalid(format!(
                    "tensor {name:?} at data offset {offset}, expected {next}"
                )));
            }
            let padded = align_up(bytes, alignment)
                .ok_or_else(|| self.invalid(format!("tensor {name:?} is too large")))?;
            let end = offset.checked_add(padded).ok_or(ModelError::SizeOverflow)?;
            last_padding = padded.saturating_sub(bytes);
            next = end;
            tensors.push(TensorEntry {
                name,
                dtype: ty.to_owned(),
                shape,
                start: offset,
                end,
            });
        }

        // Padding up to the data, then the data section's length.
        let data_offset =
            align_up(self.offset, alignment).ok_or_else(|| self.invalid("header too large"))?;
        let padding = data_offset.saturating_sub(self.offset);
        self.limit = self.limit.max(data_offset.min(self.file_bytes));
        self.skip(padding, "alignment padding")?;
        let found = self.file_bytes.saturating_sub(data_offset);
        let unpadded_last = next.saturating_sub(last_padding);
        if found == unpadded_last
            && let Some(last) = tensors.last_mut()
        {
            last.end = unpadded_last;
        } else if found != next {
            return Err(ModelError::DataLengthMismatch {
                expected: next,
                found,
            });
        }
        Ok(GgufFile {
            version,
            file_bytes: self.file_bytes,
            data_offset,
            alignment,
            tensors,
        })
    }

    /// Reads a tensor's dimensions and type; returns its shape, type name
    /// and data size.
    fn tensor_shape(&mut self, name: &str) -> Result<(Vec<usize>, &'static str, u64), ModelError> {
        let n_dims = self.u32("dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(self.invalid(format!("tensor {name:?} has {n_dims} dimensions")));
        }
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims.push(self.u64("dimension")?);
        }
        let id = self.u32("tensor type")?;
        let ty = ggml_type(id)
            .ok_or_else(|| self.invalid(format!("tensor {name:?} has unknown ggml type {id}")))?;
        let first = dims.first().copied().unwrap_or(1);
        if !first.is_multiple_of(ty.block) {
            return Err(self.invalid(format!(
                "tensor {name:?}: first dimension {first} is not a multiple of the {} block of {}",
                ty.name, ty.block
            )));
        }
        let elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| self.invalid(format!("tensor {name:?} has too many elements")))?;
        let bytes = elements
            .checked_div(ty.block)
            .unwrap_or(0)
            .checked_mul(ty.bytes)
            .ok_or_else(|| self.invalid(format!("tensor {name:?} is too large")))?;
        let shape = dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| self.invalid(format!("tensor {name:?} has a dimension over usize")))?;
        Ok((shape, ty.name, bytes))
    }

    /// Reads and drops one metadata value of type `ty`.
    fn skip_value(&mut self, ty: u32, depth: u32) -> Result<(), ModelError> {
        match ty {
            value::U8 | value::I8 | value::BOOL => self.skip(1, "value"),
            value::U16 | value::I16 => self.skip(2, "value"),
            value::U32 | value::I32 | value::F32 => self.skip(4, "value"),
            value::U64 | value::I64 | value::F64 => self.skip(8, "value"),
            value::STRING => {
                let len = self.u64("string length")?;
                self.skip(len, "string value")
            }
            value::ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.invalid(format!(
                        "metadata arrays nested more than {MAX_ARRAY_DEPTH} deep"
                    )));
                }
                let elem = self.u32("array element type")?;
                let count = self.u64("array length")?;
                match scalar_size(elem) {
                    // Fixed-size elements: one bounded skip, not `count` reads.
                    Some(size) => {
                        let total = count
                            .checked_mul(size)
                            .ok_or_else(|| self.invalid("array too large"))?;
                        self.skip(total, "array")
                    }
                    None => {
                        for _ in 0..count {
                            // Each element takes at least 8 bytes, so a huge
                            // count fails at the header limit, not in time.
                            self.skip_value(elem, depth.saturating_add(1))?;
                        }
                        Ok(())
                    }
                }
            }
            other => Err(self.invalid(format!("unknown metadata value type {other}"))),
        }
    }
}

/// Byte size of a fixed-size metadata value type.
fn scalar_size(ty: u32) -> Option<u64> {
    match ty {
        value::U8 | value::I8 | value::BOOL => Some(1),
        value::U16 | value::I16 => Some(2),
        value::U32 | value::I32 | value::F32 => Some(4),
        value::U64 | value::I64 | value::F64 => Some(8),
        _ => None,
    }
}

/// `n` rounded up to a multiple of `alignment` (a power of two).
fn align_up(n: u64, alignment: u64) -> Option<u64> {
    let mask = alignment.checked_sub(1)?;
    Some(n.checked_add(mask)? & !mask)
}

#[cfg(test)]
mod tests;
