//! Sealing a whole model file (safetensors or GGUF): one read of the file,
//! front to back, that parses the header, plans the shards, seals each
//! shard as its bytes go by, and digests the whole file on the way. An
//! expected digest or a provenance check reads it once more first.
//!
//! Either every shard ends up sealed or none stays resident: on any failure
//! the shards sealed so far are deallocated again. A file that turns out
//! malformed, unreadable, different in size from its header, different
//! from the expected SHA-256, or that fails its provenance check is also
//! recorded as `model.rejected`. A seal the caller cancels
//! ([`CancelFlag`]) stops at the next upload piece and releases what it
//! sealed, without a rejection.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use audit_logging::Digest;

use super::{ShardSpec, VramManager};
use crate::backend::VramBackend;
use crate::error::{SealError, SealModelError};
use crate::model::reader::ModelReader;
use crate::model::{PlannedShard, ShardPlan};
use crate::provenance::{Provenance, ProvenanceError};
use crate::seal::SealedShard;

/// Shard size limit unless the caller picks one: 256 MiB.
///
/// Small models become a handful of shards, a 70 GB model a few hundred;
/// each shard is one allocation and one digest, so a corrupted region is
/// located to within this many bytes.
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 256 << 20;

/// How to seal a model file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealModelOptions {
    /// The model's name in seals and audit events. Shard ids are
    /// `{model_ref}#{index}`.
    pub model_ref: String,
    /// Largest shard, in bytes, unless a single tensor is larger (see
    /// [`plan`](crate::model::plan)).
    pub max_shard_bytes: u64,
    /// The SHA-256 the file must have, typically the one its distribution
    /// publishes. Checked before anything is uploaded, and again on the
    /// bytes as sealed; a mismatch unseals everything.
    pub expected_sha256: Option<Digest>,
    /// A manifest or signature the model's files must match (see
    /// [`provenance`](crate::provenance)), checked before anything is
    /// uploaded. The model directory is the file's parent directory.
    pub provenance: Option<Provenance>,
    /// Stops the seal when raised; see [`CancelFlag`].
    pub cancel: Option<CancelFlag>,
}

/// Raised, from any thread or a signal handler, to stop a seal in
/// progress: the seal stops before its next upload piece (at most
/// [`UPLOAD_CHUNK_BYTES`](crate::UPLOAD_CHUNK_BYTES) later), deallocates
/// and wipes every shard of the model it had sealed or begun, and fails
/// with [`SealModelError::Cancelled`]. Nothing is recorded as rejected: the
/// deallocations are the record.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag not yet raised.
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// Asks the seals watching this flag to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for code that raises it by storing `true`, such as
    /// `signal_hook::flag::register`.
    pub fn atomic(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// Two handles are equal when they are the same flag.
impl PartialEq for CancelFlag {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CancelFlag {}

/// A source that stops with an error once `cancel` is raised, so that a
/// shard's upload ends at its next piece.
struct Cancellable<'a, R> {
    inner: &'a mut R,
    cancel: Option<&'a CancelFlag>,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_some_and(CancelFlag::is_raised) {
            return Err(io::Error::other("the seal was cancelled"));
        }
        self.inner.read(buf)
    }
}

impl SealModelOptions {
    /// Options for `model_ref` with [`DEFAULT_MAX_SHARD_BYTES`] and no
    /// expected digest.
    pub fn new(model_ref: impl Into<String>) -> Self {
        SealModelOptions {
            model_ref: model_ref.into(),
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
            expected_sha256: None,
            provenance: None,
            cancel: None,
        }
    }

    /// Sets [`max_shard_bytes`](Self::max_shard_bytes).
    #[must_use]
    pub fn with_max_shard_bytes(mut self, max_shard_bytes: u64) -> Self {
        self.max_shard_bytes = max_shard_bytes;
        self
    }

    /// Sets [`expected_sha256`](Self::expected_sha256).
    #[must_use]
    pub fn with_expected_sha256(mut self, digest: Digest) -> Self {
        self.expected_sha256 = Some(digest);
        self
    }

    /// Sets [`provenance`](Self::provenance).
    #[must_use]
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = Some(provenance);
        self
    }

    /// Sets [`cancel`](Self::cancel).
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancelFlag) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Whether the seal was asked to stop.
    pub(super) fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelFlag::is_raised)
    }
}

/// What [`VramManager::seal_model`] reports as it goes, in this order:
/// `Planned` once, then per shard `ShardStarted`, `ShardUploaded` after each
/// chunk, and `ShardSealed`.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealProgress<'a> {
    /// The header was read and the shards planned.
    Planned {
        /// The plan.
        plan: &'a ShardPlan,
    },
    /// A shard's upload is starting.
    ShardStarted {
        /// The shard.
        shard: &'a PlannedShard,
        /// Number of shards.
        count: u32,
    },
    /// Part of a shard is on the device.
    ShardUploaded {
        /// The shard's index.
        index: u32,
        /// Bytes uploaded so far.
        done: u64,
        /// The shard's size.
        total: u64,
    },
    /// A shard is sealed.
    ShardSealed {
        /// The seal.
        shard: &'a SealedShard,
    },
}

/// A model file whose shards are all sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedModel {
    /// The model's name.
    pub model_ref: String,
    /// SHA-256 of the whole file as read while sealing.
    pub file_sha256: Digest,
    /// Size of the file.
    pub file_bytes: u64,
    /// The shards, in order.
    pub shards: Vec<SealedShard>,
}

impl<B: VramBackend> VramManager<B> {
    /// Seals every shard of the safetensors or GGUF file at `path`, reading
    /// the file front to back: the header is parsed, the shards planned
    /// ([`ModelLayout::plan`](crate::ModelLayout::plan)), each shard
    /// sealed as its bytes go by, and the whole file digested on the way.
    /// `progress` is called as described at [`SealProgress`].
    ///
    /// Either every shard ends up sealed or none stays resident: on any
    /// failure the shards sealed so far are deallocated again. A file that
    /// is malformed, unreadable, different in size from its header,
    /// different from [`SealModelOptions::expected_sha256`], or that fails
    /// [`SealModelOptions::provenance`] is also recorded as
    /// `model.rejected`; a shard refused for policy or capacity is recorded
    /// by its own event and is not the model's fault. The expected digest
    /// and the provenance check are applied before anything is uploaded and
    /// again to the bytes as read.
    pub fn seal_model(
        &self,
        path: &Path,
        options: &SealModelOptions,
        progress: &mut dyn FnMut(SealProgress<'_>),
    ) -> Result<SealedModel, SealModelError> {
        let model_ref = options.model_ref.as_str();
        // With an expected digest or a provenance check, the file is checked
        // before anything is uploaded, so a wrong model never becomes
        // resident or sealed. It is digested again while sealing, which
        // catches a file that changes in between.
        let signed = match options
            .provenance
            .as_ref()
            .map(|p| check_provenance(p, path))
        {
            None => None,
            Some(Ok(digest)) => Some(digest),
            Some(Err(error)) => return Err(self.reject_model(model_ref, Vec::new(), error.into())),
        };
        if options.expected_sha256.is_some() || signed.is_some() {
            let checked = crate::model::file_sha256(path)
                .map_err(SealModelError::from)
                .and_then(|found| check_digests(options, signed, path, found));
            if let Err(error) = checked {
                return Err(self.reject_model(model_ref, Vec::new(), error));
            }
        }
        let opened = ModelReader::open(path).and_then(|reader| {
            let plan = reader.layout().plan(options.max_shard_bytes)?;
            Ok((reader, plan))
        });
        let (mut reader, plan) = match opened {
            Ok(opened) => opened,
            Err(error) => return Err(self.reject_model(model_ref, Vec::new(), error.into())),
        };
        progress(SealProgress::Planned { plan: &plan });

        let count = plan.shard_count();
        let mut sealed = Vec::with_capacity(plan.shards().len());
        for planned in plan.shards() {
            if options.is_cancelled() {
                self.roll_back(sealed);
                return Err(SealModelError::Cancelled);
            }
            progress(SealProgress::ShardStarted {
                shard: planned,
                count,
            });
            let (index, total) = (planned.index, planned.bytes());
            let spec = ShardSpec::new(format!("{model_ref}#{index}"), model_ref, index, count);
            let mut report = |done| progress(SealProgress::ShardUploaded { index, done, total });
            let mut source = Cancellable {
                inner: &mut reader,
                cancel: options.cancel.as_ref(),
            };
            match self.seal_shard_from_reader(&spec, total, &mut source, &mut report) {
                Ok(shard) => {
                    progress(SealProgress::ShardSealed { shard: &shard });
                    sealed.push(shard);
                }
                Err(_) if options.is_cancelled() => {
                    // The shard begun was discarded by the failed seal.
                    self.roll_back(sealed);
                    return Err(SealModelError::Cancelled);
                }
                Err(source) => {
                    let file_at_fault = matches!(
                        source,
                        SealError::SourceRead { .. } | SealError::SourceTooShort { .. }
                    );
                    let error = SealModelError::Shard {
                        index,
                        count,
                        source,
                    };
                    if file_at_fault {
                        return Err(self.reject_model(model_ref, sealed, error));
                    }
                    self.roll_back(sealed);
                    return Err(error);
                }
            }
        }

        let file_bytes = reader.layout().file_bytes();
        let file_sha256 = match reader.finish() {
            Ok(digest) => digest,
            Err(error) => return Err(self.reject_model(model_ref, sealed, error.into())),
        };
        if let Err(error) = check_digests(options, signed, path, file_sha256) {
            return Err(self.reject_model(model_ref, sealed, error));
        }
        let model = SealedModel {
            model_ref: model_ref.to_owned(),
            file_sha256,
            file_bytes,
            shards: sealed,
        };
        self.audit.model_sealed(&model);
        Ok(model)
    }

    /// Records the model as rejected and unseals what was sealed of it.
    pub(super) fn reject_model(
        &self,
        model_ref: &str,
        sealed: Vec<SealedShard>,
        error: SealModelError,
    ) -> SealModelError {
        self.audit.model_rejected(model_ref, &error.to_string());
        self.roll_back(sealed);
        error
    }

    pub(super) fn roll_back(&self, sealed: Vec<SealedShard>) {
        for shard in sealed.into_iter().rev() {
            if let Err(error) = self.deallocate(shard) {
                tracing::warn!(%error, "could not release a shard while unsealing a model");
            }
        }
    }
}

/// Checks the model's directory against `provenance`; returns the digest
/// the model file must have.
fn check_provenance(provenance: &Provenance, path: &Path) -> Result<Digest, ProvenanceError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name =
        path.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ProvenanceError::UnsafeName {
                name: path.display().to_string(),
                reason: "the model path has no UTF-8 file name",
            })?;
    provenance.check(dir, name)
}

/// Compares the model file's digest `found` with the caller's expected
/// digest and with the one its provenance gives (`signed`).
fn check_digests(
    options: &SealModelOptions,
    signed: Option<Digest>,
    path: &Path,
    found: Digest,
) -> Result<(), SealModelError> {
    if let Some(expected) = options.expected_sha256
        && expected != found
    {
        return Err(SealModelError::FileDigestMismatch { expected, found });
    }
    if let Some(expected) = signed
        && expected != found
    {
        let file = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        return Err(ProvenanceError::FileMismatch {
            file,
            expected,
            found,
        }
        .into());
    }
    Ok(())
}
