//! Error types, one enum per concern.
//!
//! | enum | returned by | whose fault |
//! | --- | --- | --- |
//! | [`BackendError`] | [`VramBackend`](crate::VramBackend) methods | the device or its driver |
//! | [`KeyError`] | [`SealKey`](crate::SealKey) constructors and key files | the caller (wrong length, bad key file) or the OS (no entropy, I/O) |
//! | [`HandleError`] | nested in the three below | whoever holds the [`SealedShard`](crate::SealedShard) |
//! | [`SealError`] | [`VramManager::seal_shard`](crate::VramManager::seal_shard) | policy, capacity, device or source |
//! | [`VerifyError`] | [`VramManager::verify_sealed`](crate::VramManager::verify_sealed) | the handle or the resident bytes |
//! | [`DeallocError`] | [`VramManager::deallocate`](crate::VramManager::deallocate) | the handle or the device |
//! | [`ModelError`] | [`SafetensorsFile`](crate::SafetensorsFile) | the model file |
//! | [`ProvenanceError`] | [`provenance`](crate::provenance) | the manifest, the signature, or files that do not match them |
//! | [`SealModelError`] | [`VramManager::seal_model`](crate::VramManager::seal_model) | any of the above, plus the file digest |
//!
//! Messages are lower case and carry the values involved; a verification
//! failure says what was expected and what was found.

use std::io;
use std::path::PathBuf;

use audit_logging::Digest;

use crate::backend::AllocationId;
use crate::seal::KeyId;

/// A device operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The device has fewer free bytes than asked for.
    #[error("out of device memory: requested {requested} bytes, {available} available")]
    OutOfMemory {
        /// Bytes asked for.
        requested: u64,
        /// Bytes the device had free.
        available: u64,
    },
    /// The backend could not obtain the memory for another reason (for the
    /// host simulation: the host allocator refused).
    #[error("allocation of {requested} bytes refused: {reason}")]
    AllocationRefused {
        /// Bytes asked for.
        requested: u64,
        /// What the backend was told.
        reason: String,
    },
    /// Allocations must hold at least one byte.
    #[error("zero-sized allocations are not supported")]
    ZeroSized,
    /// The allocation does not exist (never allocated, or already freed).
    #[error("unknown allocation {0}")]
    UnknownAllocation(AllocationId),
    /// An access reached past the end of an allocation.
    #[error("access of {len} bytes at offset {offset} is outside allocation of {size} bytes")]
    OutOfBounds {
        /// Where the access started.
        offset: u64,
        /// How many bytes it covered.
        len: u64,
        /// Size of the allocation.
        size: u64,
    },
    /// A read asked for more than [`MAX_READ_BYTES`](crate::backend::MAX_READ_BYTES).
    #[error("read of {requested} bytes refused: reads are limited to {limit} bytes")]
    ReadTooLarge {
        /// Bytes asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// The CUDA driver library (`libcuda`) could not be loaded: no NVIDIA
    /// driver is installed, or it is not on the library path.
    #[error(
        "no CUDA driver: libcuda could not be loaded (is the NVIDIA driver installed \
         and on LD_LIBRARY_PATH?)"
    )]
    NoCudaDriver,
    /// The CUDA run-time compiler (`libnvrtc`), which builds the digest
    /// kernel, could not be loaded.
    ///
    /// The loader is asked for `libnvrtc.so` and the CUDA 12 and older
    /// sonames (`libnvrtc.so.12`, `.11`, ...), never `libnvrtc.so.13`: a
    /// CUDA 13 NVRTC is found only under the plain name, which its runtime
    /// packages (and Python wheels) do not install.
    #[error(
        "no NVRTC: libnvrtc could not be loaded, so the digest kernel cannot be built \
         (install the CUDA NVRTC library and put it on LD_LIBRARY_PATH; names tried: \
         libnvrtc.so, libnvrtc.so.12 and older, so a CUDA 13 libnvrtc.so.13 needs a \
         libnvrtc.so link to it)"
    )]
    NoNvrtc,
    /// The driver has no device with this index.
    #[error("no CUDA device {index}: the driver reports {count} device(s)")]
    NoSuchDevice {
        /// The index asked for.
        index: u32,
        /// Devices the driver reports.
        count: u32,
    },
    /// A CUDA driver call failed.
    #[error("CUDA call {call} failed: {reason}")]
    Cuda {
        /// The operation.
        call: &'static str,
        /// What the driver said.
        reason: String,
    },
    /// NVRTC refused to compile the digest kernel.
    #[error("the digest kernel did not compile: {0}")]
    KernelCompile(String),
    /// Memory that would not be device memory of the expected device: an
    /// integrated GPU (whose "device memory" is host memory), or an
    /// allocation whose pointer attributes say host, managed, or another
    /// device. The allocation, if one was made, has been freed.
    #[error("not device memory on device {device}: {reason}")]
    NotDeviceMemory {
        /// The device index.
        device: u32,
        /// What was found.
        reason: String,
    },
}

/// A seal key could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key material of the wrong length was supplied.
    #[error("seal key must be {expected} bytes, got {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Supplied length.
        found: usize,
    },
    /// The operating system could not supply random bytes.
    #[error("could not read random bytes for a seal key: {0}")]
    Entropy(getrandom::Error),
    /// The MAC implementation refused the key.
    #[error("hmac-sha256 refused a key of {len} bytes")]
    Rejected {
        /// The key's length.
        len: usize,
    },
    /// A key file could not be read or written.
    #[error("seal key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A key file that group or others may access.
    #[error(
        "seal key file {path} has mode {mode:04o}, which lets other users read it; \
         run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file that is not a seal key file.
    #[error("{path} is not a sealtrail seal key file: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A [`SealedShard`](crate::SealedShard) was refused before its memory was
/// touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The handle names a key other than this manager's.
    #[error("shard was sealed under key {found}, this manager holds key {expected}")]
    KeyMismatch {
        /// This manager's key id.
        expected: KeyId,
        /// The key id in the handle.
        found: KeyId,
    },
    /// The signature does not cover the handle's fields as they are now.
    #[error("seal signature does not match the shard's fields (edited or forged handle)")]
    BadSignature,
    /// The signature is good but the shard is no longer resident.
    #[error("shard is no longer resident (handle used after deallocate)")]
    Stale,
    /// The MAC could not be computed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A shard could not be sealed. Nothing stays allocated after this error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Policy requires real device memory and the backend is a simulation.
    #[error(
        "residency policy requires device memory, but backend {backend} is a simulation \
         in host memory"
    )]
    ResidencyPolicy {
        /// The backend's name.
        backend: &'static str,
    },
    /// The shard's position is impossible.
    #[error("shard index {index} is not below shard count {count}")]
    IndexOutOfRange {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// A shard must hold at least one byte.
    #[error("shard has no bytes")]
    Empty,
    /// The shard does not fit in what is left of the capacity.
    #[error(
        "shard of {requested} bytes exceeds capacity: {available} of {capacity} bytes available"
    )]
    CapacityExceeded {
        /// Bytes asked for.
        requested: u64,
        /// Bytes free before the request.
        available: u64,
        /// The capacity.
        capacity: u64,
    },
    /// The backend refused the allocation.
    #[error("device allocation failed: {0}")]
    Allocation(#[source] BackendError),
    /// Copying the bytes to the device failed.
    #[error("upload to device failed: {0}")]
    Upload(#[source] BackendError),
    /// Digesting the device copy failed.
    #[error("digest of device memory failed: {0}")]
    DeviceDigest(#[source] BackendError),
    /// The bytes read back from the device differ from the source.
    #[error("device copy does not match source: expected digest {expected}, device has {found}")]
    ResidentMismatch {
        /// SHA-256 of the source bytes.
        expected: Digest,
        /// Digest of the device copy.
        found: Digest,
    },
    /// Reading the source bytes failed.
    #[error("reading shard source failed after {read} bytes: {source}")]
    SourceRead {
        /// Bytes read before the failure.
        read: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The source ended before the announced length.
    #[error("shard source ended early: expected {expected} bytes, got {found}")]
    SourceTooShort {
        /// Announced length.
        expected: u64,
        /// Bytes actually read.
        found: u64,
    },
    /// The allocation table has no room for another entry.
    #[error("allocation table is full ({slots} slots)")]
    TableFull {
        /// Slots in the table.
        slots: u64,
    },
    /// The seal could not be signed.
    #[error("signing the seal failed: {0}")]
    Sign(#[source] KeyError),
}

/// A sealed shard failed verification. A verification failure is also
/// recorded as `vram.seal_verification_failed`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The handle was refused.
    #[error("shard {shard_id:?}: {source}")]
    Handle {
        /// The shard id, as the handle claims it.
        shard_id: String,
        /// Why it was refused.
        #[source]
        source: HandleError,
    },
    /// The resident bytes no longer match the seal.
    #[error(
        "shard {shard_id:?}: resident bytes changed: sealed digest {expected}, device has {found}"
    )]
    DigestMismatch {
        /// The shard id.
        shard_id: String,
        /// The digest in the seal.
        expected: Digest,
        /// The digest recomputed from device memory.
        found: Digest,
    },
    /// The device could not digest the shard.
    #[error("shard {shard_id:?}: digest of device memory failed: {source}")]
    Backend {
        /// The shard id.
        shard_id: String,
        /// The device error.
        #[source]
        source: BackendError,
    },
}

/// A shard could not be deallocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeallocError {
    /// The handle was refused; nothing was freed.
    #[error("shard {shard_id:?}: deallocation refused: {source}")]
    Handle {
        /// The shard id, as the handle claims it.
        shard_id: String,
        /// Why it was refused.
        #[source]
        source: HandleError,
    },
    /// The device refused to free the memory. The handle is spent and the
    /// bytes stay counted as used, since the device may still hold them.
    #[error("shard {shard_id:?}: device refused to free {allocation}: {source}")]
    Backend {
        /// The shard id.
        shard_id: String,
        /// The allocation that could not be freed.
        allocation: AllocationId,
        /// The device error.
        #[source]
        source: BackendError,
    },
}

/// A fault could not be injected.
#[cfg(feature = "fault-injection")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaultInjectionError {
    /// The handle was refused.
    #[error("shard {shard_id:?}: {source}")]
    Handle {
        /// The shard id, as the handle claims it.
        shard_id: String,
        /// Why it was refused.
        #[source]
        source: HandleError,
    },
    /// The offset is past the end of the shard.
    #[error("offset {offset} is outside shard of {bytes} bytes")]
    OffsetOutOfRange {
        /// The offset given.
        offset: u64,
        /// The shard's size.
        bytes: u64,
    },
    /// The device refused the read or write.
    #[error("device access failed: {0}")]
    Backend(#[source] BackendError),
}

/// A model file is not a safetensors or GGUF file this crate will load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Fewer bytes than the 8-byte header length prefix.
    #[error("not a safetensors file: {file_bytes} bytes is shorter than the 8-byte length prefix")]
    TooShort {
        /// The file's size.
        file_bytes: u64,
    },
    /// The header length prefix is above [`MAX_HEADER_BYTES`](crate::model::MAX_HEADER_BYTES).
    #[error(
        "not a safetensors file: its first 8 bytes claim a {header_bytes}-byte header, above the {limit}-byte limit"
    )]
    HeaderTooLarge {
        /// The length the prefix claims.
        header_bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The header length prefix points past the end of the file.
    #[error(
        "truncated safetensors file: header claims {header_bytes} bytes, \
         {available} bytes follow the prefix"
    )]
    HeaderTruncated {
        /// The length the prefix claims.
        header_bytes: u64,
        /// Bytes after the prefix.
        available: u64,
    },
    /// The header is not valid safetensors JSON (bad UTF-8, bad JSON, unknown
    /// dtype, offsets that overlap, leave gaps or disagree with shape and dtype).
    #[error("invalid safetensors header: {0}")]
    InvalidHeader(#[source] serde_json::Error),
    /// A GGUF header that is malformed or beyond this crate's limits (see
    /// [`model::gguf`](crate::model::gguf)).
    #[error("invalid GGUF file at byte {offset}: {reason}")]
    InvalidGguf {
        /// Where in the file the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A sharded checkpoint's index that is not one (see
    /// [`model::index`](crate::model::index)).
    #[error("invalid model index: {reason}")]
    InvalidIndex {
        /// What is wrong.
        reason: String,
    },
    /// An index that is not JSON with a `weight_map` of strings.
    #[error("invalid model index: {0}")]
    IndexJson(#[source] serde_json::Error),
    /// An index naming a file outside its own directory.
    #[error("model index names unsafe path {name:?}: {reason}")]
    UnsafeIndexPath {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A checkpoint file whose tensors are not those the index assigns it.
    #[error("{file} does not match the model index: {reason}")]
    IndexMismatch {
        /// The file.
        file: String,
        /// What differs.
        reason: String,
    },
    /// The data section is not the size the header describes.
    #[error(
        "data section is {found} bytes, header describes {expected} \
         (truncated file or trailing bytes)"
    )]
    DataLengthMismatch {
        /// Bytes the header's offsets cover.
        expected: u64,
        /// Bytes the file holds after the header.
        found: u64,
    },
    /// The file holds no tensor bytes to seal.
    #[error("model has no tensor data to seal")]
    NoTensorData,
    /// The shard size limit is zero.
    #[error("max shard size must be at least 1 byte")]
    ZeroShardLimit,
    /// Tensor sizes that add up to more than `u64::MAX` bytes.
    #[error("tensor sizes add up to more than {} bytes", u64::MAX)]
    SizeOverflow,
    /// More shards than a `u32` index can number.
    #[error("model would need more than {limit} shards")]
    TooManyShards {
        /// The largest shard count.
        limit: u64,
    },
    /// The file changed size while it was being read.
    #[error("{path} changed while it was read: expected {expected} bytes")]
    ChangedWhileReading {
        /// The file.
        path: PathBuf,
        /// The size it had when opened.
        expected: u64,
    },
}

/// A model could not be sealed. Every shard sealed before the failure has
/// been deallocated again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealModelError {
    /// The file was refused before anything was uploaded, or turned out
    /// different while it was read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// One shard could not be sealed.
    #[error("shard {index} of {count}: {source}")]
    Shard {
        /// The shard's index.
        index: u32,
        /// Number of shards.
        count: u32,
        /// Why.
        #[source]
        source: SealError,
    },
    /// The model's provenance check failed: its files are not what the
    /// manifest or signature says, or the signature does not verify.
    #[error("provenance check failed: {0}")]
    Provenance(#[from] ProvenanceError),
    /// The file's SHA-256 is not the one the caller expected.
    #[error("model file sha256 mismatch: expected {expected}, file has {found}")]
    FileDigestMismatch {
        /// The digest the caller gave.
        expected: Digest,
        /// The digest of the bytes read.
        found: Digest,
    },
    /// The caller cancelled the seal ([`CancelFlag`](crate::CancelFlag));
    /// every shard it had sealed or begun was deallocated.
    #[error("sealing was cancelled; every shard sealed so far was released")]
    Cancelled,
    /// One file of a sharded checkpoint could not be sealed.
    #[error("{file}: {source}")]
    InFile {
        /// The file, as the index names it.
        file: String,
        /// Why.
        #[source]
        source: Box<SealModelError>,
    },
}

impl SealModelError {
    /// Whether this is a verdict against the model (not the expected file,
    /// or failing its manifest or signature), rather than a model that
    /// could not be read or sealed at all.
    pub fn is_verdict(&self) -> bool {
        match self {
            SealModelError::FileDigestMismatch { .. } => true,
            SealModelError::Provenance(e) => e.is_verdict(),
            SealModelError::InFile { source, .. } => source.is_verdict(),
            _ => false,
        }
    }
}

/// A model's files could not be shown to be what its manifest or signature
/// says. Everything but [`Io`](Self::Io) and
/// [`InvalidSignerKey`](Self::InvalidSignerKey) is a verdict against the
/// model ([`is_verdict`](Self::is_verdict)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The signer's public key file is not a P-256 public key in PEM.
    #[error("invalid signer key: {reason}")]
    InvalidSignerKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest larger than [`MAX_MANIFEST_BYTES`](crate::provenance::manifest::MAX_MANIFEST_BYTES).
    #[error("digest manifest of {bytes} bytes exceeds the {limit}-byte limit")]
    ManifestTooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A manifest in neither accepted spelling.
    #[error("invalid digest manifest (line {line}): {reason}")]
    ManifestSyntax {
        /// The line, from 1; 0 when no one line is at fault.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A manifest that starts like JSON but is not an object of strings.
    #[error("invalid digest manifest: {0}")]
    ManifestJson(#[source] serde_json::Error),
    /// A name listed twice in a manifest or statement.
    #[error("{name:?} is listed twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A file name that is absolute, climbs out of the model directory or
    /// is otherwise not a plain relative path.
    #[error("unsafe file name {name:?}: {reason}")]
    UnsafeName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A bundle larger than [`MAX_BUNDLE_BYTES`](crate::provenance::signing::MAX_BUNDLE_BYTES).
    #[error("signature bundle of {bytes} bytes exceeds the {limit}-byte limit")]
    BundleTooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A bundle that is not JSON of the expected shape.
    #[error("signature bundle is not a sigstore bundle: {0}")]
    BundleJson(#[source] serde_json::Error),
    /// A bundle of an unsupported kind or with undecodable fields.
    #[error("unsupported or malformed signature bundle: {reason}")]
    BundleFormat {
        /// What is wrong.
        reason: String,
    },
    /// The bundle names another public key than the one given.
    #[error(
        "the signature was made with another key: bundle names key {bundle_hint}, \
         the given key is {key_hint}"
    )]
    WrongKey {
        /// The hint in the bundle.
        bundle_hint: String,
        /// The given key's hint.
        key_hint: String,
    },
    /// The signature does not verify with the given key over the payload.
    #[error(
        "signature does not verify with the signer key (edited payload or signature, or another key)"
    )]
    BadSignature,
    /// The signed statement is not a model_signing 1.x statement this crate
    /// reads.
    #[error("unsupported or malformed signed statement: {reason}")]
    StatementFormat {
        /// What is wrong.
        reason: String,
    },
    /// The statement's root digest is not the digest of its resources.
    #[error("signed statement is inconsistent: root digest {expected}, resources hash to {found}")]
    RootDigestMismatch {
        /// The subject's digest.
        expected: Digest,
        /// The digest over the listed resources.
        found: Digest,
    },
    /// The model file is not listed.
    #[error("{file:?} is not listed in the manifest or signature")]
    NotListed {
        /// The file.
        file: String,
    },
    /// A listed file is not on disk.
    #[error("{file:?} is signed but missing from the model directory")]
    MissingFile {
        /// The file.
        file: String,
    },
    /// A file on disk that the signature does not list.
    #[error("{file:?} is in the model directory but not signed")]
    UnsignedFile {
        /// The file.
        file: String,
    },
    /// A file whose SHA-256 is not the listed one.
    #[error("{file:?} does not match: expected sha256 {expected}, file has {found}")]
    FileMismatch {
        /// The file.
        file: String,
        /// The listed digest.
        expected: Digest,
        /// The file's digest.
        found: Digest,
    },
    /// A symbolic link in the model directory, or in place of a file.
    #[error("{path} is a symbolic link; model files are not read through links")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A FIFO, socket or device in the model directory.
    #[error("{path} is not a regular file")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// More files than [`MAX_MODEL_FILES`](crate::provenance::MAX_MODEL_FILES).
    #[error("model directory holds more than {limit} files")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// Directories nested deeper than [`MAX_MODEL_DEPTH`](crate::provenance::MAX_MODEL_DEPTH).
    #[error("{path} is nested more than {limit} directories deep")]
    TooDeep {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

impl ProvenanceError {
    /// Whether this is a verdict against the model (its files or signature
    /// are wrong), rather than a failure to reach one (a file that could
    /// not be read, or a signer key that is not a key).
    pub fn is_verdict(&self) -> bool {
        !matches!(
            self,
            ProvenanceError::Io { .. } | ProvenanceError::InvalidSignerKey { .. }
        )
    }
}
