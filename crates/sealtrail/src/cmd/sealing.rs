//! What `seal` and `demo` share: a manager on the chosen backend, sealing a
//! file with a progress bar, and verifying every shard.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use audit_logging::{AuditEvent, AuditLogger, Severity};
use indicatif::ProgressBar;
use serde::Serialize;
use vram_residency::{
    BackendError, CudaBackend, HostBackend, ManagerConfig, SealKey, SealModelOptions, SealProgress,
    SealedCheckpoint, SealedModel, SealedShard, VramBackend, VramManager, policy,
};

use crate::cli::{BackendChoice, DeviceArgs};
use crate::output::{describe, outln, pending_bar, show_bytes, shown};

/// A manager on whichever backend the command line chose.
pub type Manager = VramManager<Box<dyn VramBackend>>;

/// A backend opened for a manager, or a device refused by policy, which the
/// manager's trail must record before the command fails.
pub enum Opened {
    /// The backend to seal into.
    Ready(Box<dyn VramBackend>),
    /// A CUDA device whose memory would not be device memory (an integrated
    /// GPU).
    Refused(BackendError),
}

/// Opens the backend `device` names. Called before the audit trail is
/// opened, so that a missing driver or device fails the command without
/// touching the trail; only a policy refusal is kept for the trail.
pub fn open_backend(device: &DeviceArgs) -> anyhow::Result<Opened> {
    match device.backend {
        BackendChoice::Host if device.device != 0 => anyhow::bail!(
            "--device {} picks a CUDA device and needs --backend cuda; the host simulation \
             has only device 0",
            device.device
        ),
        BackendChoice::Host => Ok(Opened::Ready(Box::new(HostBackend::new()))),
        BackendChoice::Cuda => match CudaBackend::new(device.device) {
            Ok(backend) => Ok(Opened::Ready(Box::new(backend))),
            Err(error @ BackendError::NotDeviceMemory { .. }) => Ok(Opened::Refused(error)),
            Err(error) => Err(cuda_error(error, device.device)),
        },
    }
}

fn cuda_error(error: BackendError, device: u32) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("cannot use CUDA device {device} (--backend cuda)"))
}

/// A manager on `opened`, with the seal key in `key_file`, or a fresh one.
///
/// A refused device is recorded in the trail as a
/// [`policy::DEVICE_MEMORY_TYPE`] violation, then returned as the error.
pub fn open_manager(
    opened: Opened,
    audit: Arc<AuditLogger>,
    worker_id: &str,
    key_file: Option<&Path>,
    device: &DeviceArgs,
) -> anyhow::Result<Manager> {
    let backend = match opened {
        Opened::Ready(backend) => backend,
        Opened::Refused(error) => {
            let event = AuditEvent::PolicyViolation {
                timestamp: chrono::Utc::now(),
                worker_id: worker_id.into(),
                policy: policy::DEVICE_MEMORY_TYPE.into(),
                violation: error.to_string().as_str().into(),
                shard_id: None,
                action_taken: "device refused; nothing sealed".into(),
                severity: Severity::High,
            };
            if let Err(failure) = audit.emit_sync(event) {
                tracing::warn!(%failure, "could not record the refused device");
            }
            return Err(cuda_error(error, device.device));
        }
    };
    let key = match key_file {
        Some(path) => SealKey::load(path)
            .with_context(|| format!("cannot load the seal key {}", shown(path)))?,
        None => SealKey::generate().context("cannot create a seal key")?,
    };
    Ok(VramManager::new(
        backend,
        key,
        audit,
        ManagerConfig::new(worker_id),
    ))
}

/// Seals `path`, drawing one progress bar over the whole file.
pub fn seal_with_progress(
    manager: &Manager,
    path: &Path,
    options: &SealModelOptions,
) -> anyhow::Result<SealedModel> {
    let bar = pending_bar("checking");
    let result = manager.seal_model(path, options, &mut track(&bar));
    bar.finish_and_clear();
    result.with_context(|| format!("cannot seal {}", shown(path)))
}

/// Seals the sharded checkpoint whose index is at `index`, drawing one
/// progress bar that grows with each file's plan.
pub fn seal_checkpoint_with_progress(
    manager: &Manager,
    index: &Path,
    options: &SealModelOptions,
) -> anyhow::Result<SealedCheckpoint> {
    let bar = pending_bar("checking");
    let result = manager.seal_sharded_model(index, options, &mut track(&bar));
    bar.finish_and_clear();
    result.with_context(|| format!("cannot seal {}", shown(index)))
}

/// Moves `bar` along with a seal: a spinner while the model is read and
/// checked before anything is planned (a digest, manifest or signature
/// check reads every file first), then a byte bar whose length is
/// everything planned so far (one file's plan, or each file's in turn for a
/// checkpoint) and whose position is the bytes uploaded.
fn track(bar: &ProgressBar) -> impl FnMut(SealProgress<'_>) + '_ {
    let mut finished = 0u64;
    move |progress| match progress {
        SealProgress::Planned { plan } => {
            show_bytes(bar, finished.saturating_add(plan.total_bytes()), "sealing")
        }
        SealProgress::ShardUploaded { done, .. } => bar.set_position(finished.saturating_add(done)),
        SealProgress::ShardSealed { shard } => {
            finished = finished.saturating_add(shard.bytes);
            bar.set_position(finished);
        }
        _ => {}
    }
}

/// One shard's line in the output.
#[derive(Debug, Serialize)]
pub struct ShardRow {
    pub index: u32,
    pub shard_id: String,
    pub bytes: u64,
    pub digest: String,
    pub verified: bool,
    /// Why verification failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Verifies each shard against device memory.
pub fn verify_all(manager: &Manager, shards: &[SealedShard]) -> Vec<ShardRow> {
    shards
        .iter()
        .map(|shard| {
            let failure = manager
                .verify_sealed(shard)
                .err()
                .map(|e| describe(&anyhow::Error::new(e)).to_string());
            ShardRow {
                index: shard.shard_index,
                shard_id: shard.shard_id.clone(),
                bytes: shard.bytes,
                digest: shard.digest.to_hex(),
                verified: failure.is_none(),
                failure,
            }
        })
        .collect()
}

/// Prints the shard table. The digest column is what the seal recorded; a
/// failed row says what device memory holds instead. Shards of several
/// files (a sharded checkpoint) are numbered per file, so the table then
/// names each row's file too.
pub fn print_rows(rows: &[ShardRow]) -> anyhow::Result<()> {
    let file_of = |row: &ShardRow| {
        let path = row
            .shard_id
            .rsplit_once('#')
            .map_or(row.shard_id.as_str(), |(path, _)| path);
        Path::new(path)
            .file_name()
            .map_or_else(|| shown(Path::new(path)), |name| shown(Path::new(name)))
            .to_string()
    };
    let several_files = rows
        .first()
        .is_some_and(|first| rows.iter().any(|row| file_of(row) != file_of(first)));
    outln!(
        "  {:>5}  {:>12}  {:<64}  {}",
        "SHARD",
        "BYTES",
        "SEALED DIGEST (SHA-256 MERKLE, 16 KiB CHUNKS)",
        if several_files {
            "RESULT    FILE"
        } else {
            "RESULT"
        }
    );
    for row in rows {
        let result = match &row.failure {
            None => "verified".to_owned(),
            Some(why) => format!("FAILED: {why}"),
        };
        let result = if several_files {
            format!("{result:<8}  {}", file_of(row))
        } else {
            result
        };
        outln!(
            "  {:>5}  {:>12}  {:<64}  {result}",
            row.index,
            row.bytes,
            row.digest
        );
    }
    Ok(())
}

/// Frees every shard, reporting the first failure.
pub fn release_all(manager: &Manager, shards: Vec<SealedShard>) -> anyhow::Result<()> {
    for shard in shards {
        let id = shard.shard_id.clone();
        manager
            .deallocate(shard)
            .with_context(|| format!("cannot free shard {id}"))?;
    }
    Ok(())
}
