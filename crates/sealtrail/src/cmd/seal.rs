//! `sealtrail seal`: seal a model file into device memory and verify it,
//! after checking it against a manifest or an OpenSSF model signature when
//! one is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use audit_logging::forward::WRITER_KEY_FILE;
use audit_logging::{AuditLogger, LoggerConfig};
use serde_json::json;
use vram_residency::model::index::INDEX_FILE_NAME;
use vram_residency::provenance::{DigestManifest, ModelSignature, SignerKey};
use vram_residency::{CancelFlag, Provenance, SealModelOptions};

use crate::Outcome;
use crate::cli::SealArgs;
use crate::cmd::sealing::{
    open_backend, open_manager, print_rows, release_all, seal_checkpoint_with_progress,
    seal_with_progress, verify_all,
};
use crate::cmd::verify::load_key;
use crate::output::{describe, json_path, outln, shown};

pub fn run(args: &SealArgs) -> anyhow::Result<Outcome> {
    let result = seal(args);
    // Scripts asked for JSON: they get JSON on an error too, with the same
    // exit code (1 for a model refused as not the expected one, else 2).
    if let (true, Err(err)) = (args.json, &result) {
        let status = if crate::is_verification_failure(err) {
            "rejected"
        } else {
            "error"
        };
        outln!(
            "{}",
            json!({ "model": json_path(&args.model), "status": status, "error": describe(err) })
        );
    }
    result
}

fn seal(args: &SealArgs) -> anyhow::Result<Outcome> {
    // Input first: a typo in the path must not open, or write to, the trail.
    let model_path = std::fs::canonicalize(&args.model)
        .with_context(|| format!("cannot open the model {}", shown(&args.model)))?;
    let target = Target::of(model_path, &args.model)?;
    let provenance = read_provenance(args)?;
    let backend = open_backend(&args.device)?;
    let dir = &args.trail.audit_dir;
    let mut config = LoggerConfig::new(dir);
    let checkpoint_key = args.checkpoint_key_path();
    let signer =
        crate::cmd::checkpoint::signing_key(&checkpoint_key, args.checkpoint_key_file.is_some())?;
    let signs_checkpoints = signer.is_some();
    if let Some(signer) = signer {
        config = config.checkpoint_signer(signer);
    }
    // A trail that exists continues with its writer key, so the audit key
    // can live off this host; a new one needs the audit key.
    let resumable = dir.join(WRITER_KEY_FILE).is_file() && !args.trail.key.exists();
    let opened = if resumable {
        AuditLogger::resume(config)
    } else {
        AuditLogger::open(config, load_key(&args.trail.key)?)
    };
    let logger =
        Arc::new(opened.with_context(|| format!("cannot open the audit trail in {}", shown(dir)))?);
    let manager = open_manager(
        backend,
        Arc::clone(&logger),
        &args.worker_id,
        args.seal_key_file.as_deref(),
        &args.device,
    )?;
    let seal_key_id = manager.key_id();
    let info = manager.backend_info().clone();
    if !args.json {
        outln!("backend: {info}");
    }

    // The trail names the model by its full path, so it says which file it was.
    let mut options = SealModelOptions::new(target.model_ref())
        .with_max_shard_bytes(args.max_shard_bytes.as_u64());
    if let Some(expected) = &args.expected_sha256 {
        options = options.with_expected_sha256(*expected);
    }
    let provenance_summary = provenance.as_ref().map(|p| describe_provenance(args, p));
    if let Some(provenance) = provenance {
        options = options.with_provenance(provenance);
    }
    options = options.with_cancel(cancel_on_interrupt()?);
    let sealed = match &target {
        Target::File(path) => {
            let model = seal_with_progress(&manager, path, &options)?;
            let file = SealedFile {
                name: path.display().to_string(),
                sha256: model.file_sha256,
                bytes: model.file_bytes,
            };
            (vec![file], model.shards, None)
        }
        Target::Checkpoint(index) => {
            let checkpoint = seal_checkpoint_with_progress(&manager, index, &options)?;
            let mut files = Vec::new();
            let mut shards = Vec::new();
            for (name, model) in checkpoint.files {
                files.push(SealedFile {
                    name,
                    sha256: model.file_sha256,
                    bytes: model.file_bytes,
                });
                shards.extend(model.shards);
            }
            (files, shards, Some(checkpoint.index_sha256))
        }
    };
    let (files, shards, index_sha256) = sealed;
    let rows = verify_all(&manager, &shards);
    let all_verified = rows.iter().all(|r| r.verified);

    release_all(&manager, shards)?;
    drop(manager);
    let report = logger.shutdown().context("cannot finish the audit trail")?;

    if args.json {
        let mut out = json!({
            "model": json_path(target.path()),
            "files": files.iter().map(|f| json!({
                "name": f.name, "file_sha256": f.sha256.to_hex(), "file_bytes": f.bytes,
            })).collect::<Vec<_>>(),
            "backend": info.device.kind.name(),
            "simulated": info.device.is_simulated(),
            "device": info.device.to_string(),
            "shards": rows,
            "all_verified": all_verified,
            "audit_dir": json_path(dir),
            "audit_last_seq": report.last_seq,
            "checkpoints_signed": signs_checkpoints,
            "seal_key_id": seal_key_id.to_string(),
            "seal_key_from_file": args.seal_key_file.is_some(),
            "provenance": provenance_summary,
        });
        match (index_sha256, files.as_slice()) {
            (Some(index), _) => out["index_sha256"] = index.to_hex().into(),
            (None, [file]) => {
                out["file_sha256"] = file.sha256.to_hex().into();
                out["file_bytes"] = file.bytes.into();
            }
            (None, _) => {}
        }
        outln!("{out}");
    } else {
        match (index_sha256, files.as_slice()) {
            (None, [file]) => {
                outln!("model: {} ({} bytes)", shown(target.path()), file.bytes);
                outln!("file sha256: {}", file.sha256);
            }
            (index, _) => {
                outln!(
                    "checkpoint: {} ({} files)",
                    shown(target.path()),
                    files.len()
                );
                if let Some(index) = index {
                    outln!("index sha256: {index}");
                }
                for file in &files {
                    outln!(
                        "file sha256: {}  {} ({} bytes)",
                        file.sha256,
                        shown(Path::new(&file.name)),
                        file.bytes
                    );
                }
            }
        }
        if let Some(summary) = &provenance_summary {
            outln!("provenance: {summary}");
        }
        match &args.seal_key_file {
            Some(path) => outln!("seal key: {seal_key_id} (from {})", shown(path)),
            None => outln!("seal key: {seal_key_id} (fresh for this run, not stored)"),
        }
        outln!("shards: {}", rows.len());
        print_rows(&rows)?;
        outln!(
            "audit trail: {} (last record {}); check it with `sealtrail verify`",
            shown(dir),
            report.last_seq
        );
        if signs_checkpoints {
            outln!(
                "checkpoints signed with {}; export one with `sealtrail checkpoint export`",
                shown(&checkpoint_key)
            );
        } else {
            outln!(
                "no checkpoint key at {}: no checkpoints signed",
                shown(&checkpoint_key)
            );
        }
    }
    Ok(if all_verified {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

/// A flag that Ctrl-C (SIGINT) or SIGTERM raises: the seal then stops at
/// its next upload piece, releases and wipes what it sealed, and the trail
/// is closed as on any error, with its stop record and final checkpoint
/// (exit 130). A second signal ends the process at once.
fn cancel_on_interrupt() -> anyhow::Result<CancelFlag> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;

    let cancel = CancelFlag::new();
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal
        // left it.
        flag::register_conditional_shutdown(signal, 130, cancel.atomic())
            .context("cannot install the interrupt handler")?;
        flag::register(signal, cancel.atomic()).context("cannot install the interrupt handler")?;
    }
    Ok(cancel)
}

/// What `seal` was pointed at: one model file, or a sharded checkpoint's
/// index (given as the index file or the directory holding it).
enum Target {
    File(PathBuf),
    Checkpoint(PathBuf),
}

impl Target {
    /// `path` is canonical; `given` is what the user typed, for messages.
    fn of(path: PathBuf, given: &Path) -> anyhow::Result<Target> {
        if path.is_dir() {
            let index = path.join(INDEX_FILE_NAME);
            if !index.is_file() {
                anyhow::bail!(
                    "{} is a directory without a {INDEX_FILE_NAME}; pass the model file",
                    shown(given)
                );
            }
            return Ok(Target::Checkpoint(index));
        }
        if !path.is_file() {
            anyhow::bail!("the model {} is not a regular file", shown(given));
        }
        let is_index = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".index.json"));
        Ok(if is_index {
            Target::Checkpoint(path)
        } else {
            Target::File(path)
        })
    }

    fn path(&self) -> &Path {
        match self {
            Target::File(path) | Target::Checkpoint(path) => path,
        }
    }

    /// The model's name in the trail: the file's full path, or the
    /// checkpoint directory's (each file is then `DIR/NAME`).
    fn model_ref(&self) -> String {
        match self {
            Target::File(path) => path.display().to_string(),
            Target::Checkpoint(index) => index
                .parent()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string(),
        }
    }
}

/// One sealed file, for the output.
struct SealedFile {
    name: String,
    sha256: audit_logging::Digest,
    bytes: u64,
}

/// The manifest or signature to check, read before the trail is opened so
/// that a typo or a file that is not a key is a usage error; the checks
/// themselves happen while sealing, where a failure is recorded.
fn read_provenance(args: &SealArgs) -> anyhow::Result<Option<Provenance>> {
    if let Some(path) = &args.manifest {
        let manifest = DigestManifest::load(path)
            .with_context(|| format!("cannot read the manifest {}", shown(path)))?;
        return Ok(Some(Provenance::Manifest(manifest)));
    }
    let (Some(sig), Some(key)) = (&args.signature, &args.signer_key) else {
        return Ok(None);
    };
    let signer = SignerKey::load(key)
        .with_context(|| format!("cannot load the signer key {}", shown(key)))?;
    let signature = ModelSignature::read(sig)
        .with_context(|| format!("cannot read the signature {}", shown(sig)))?;
    Ok(Some(Provenance::Signature { signature, signer }))
}

/// What was checked, for the output; only said once sealing succeeded.
fn describe_provenance(args: &SealArgs, provenance: &Provenance) -> String {
    match (provenance, &args.manifest) {
        (Provenance::Signature { signer, .. }, _) => format!(
            "every file of the model's directory matches the model signature, signer key {}",
            signer.hint()
        ),
        (Provenance::Manifest(_), Some(path)) => {
            format!(
                "every model file's sha256 is the one the manifest {} lists",
                shown(path)
            )
        }
        _ => "checked before upload".to_owned(),
    }
}
