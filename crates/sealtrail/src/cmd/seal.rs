//! `sealtrail seal`: seal a model file into device memory and verify it,
//! after checking it against a manifest or an OpenSSF model signature when
//! one is given.

use std::sync::Arc;

use anyhow::Context;
use audit_logging::checkpoint::CheckpointSigner;
use audit_logging::forward::WRITER_KEY_FILE;
use audit_logging::{AuditLogger, LoggerConfig};
use serde_json::json;
use vram_residency::provenance::{DigestManifest, ModelSignature, SignerKey};
use vram_residency::{Provenance, SealModelOptions};

use crate::Outcome;
use crate::cli::SealArgs;
use crate::cmd::sealing::{host_manager, print_rows, release_all, seal_with_progress, verify_all};
use crate::cmd::verify::load_key;
use crate::output::{outln, shown};

pub fn run(args: &SealArgs) -> anyhow::Result<Outcome> {
    // Input first: a typo in the path must not open, or write to, the trail.
    let model_path = std::fs::canonicalize(&args.model)
        .with_context(|| format!("cannot open the model {}", shown(&args.model)))?;
    if !model_path.is_file() {
        anyhow::bail!("the model {} is not a regular file", shown(&args.model));
    }
    let provenance = read_provenance(args)?;
    let dir = &args.trail.audit_dir;
    let mut config = LoggerConfig::new(dir);
    let checkpoint_key = args.checkpoint_key_path();
    let signs_checkpoints = checkpoint_key.symlink_metadata().is_ok();
    if signs_checkpoints {
        let signer = CheckpointSigner::load(&checkpoint_key).with_context(|| {
            format!("cannot load the checkpoint key {}", shown(&checkpoint_key))
        })?;
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
    let manager = host_manager(
        Arc::clone(&logger),
        &args.worker_id,
        args.seal_key_file.as_deref(),
    )?;
    let seal_key_id = manager.key_id();
    let info = manager.backend_info().clone();
    if !args.json {
        outln!("backend: {info}");
    }

    // The trail names the model by its full path, so it says which file it was.
    let mut options = SealModelOptions::new(model_path.display().to_string())
        .with_max_shard_bytes(args.max_shard_bytes.as_u64());
    if let Some(expected) = &args.expected_sha256 {
        options = options.with_expected_sha256(*expected);
    }
    let provenance_summary = provenance.as_ref().map(|p| describe_provenance(args, p));
    if let Some(provenance) = provenance {
        options = options.with_provenance(provenance);
    }
    let model = seal_with_progress(&manager, &model_path, &options)?;
    let rows = verify_all(&manager, &model.shards);
    let all_verified = rows.iter().all(|r| r.verified);

    release_all(&manager, model.shards.clone())?;
    drop(manager);
    let report = logger.shutdown().context("cannot finish the audit trail")?;

    if args.json {
        let out = json!({
            "model": model_path,
            "file_sha256": model.file_sha256.to_hex(),
            "file_bytes": model.file_bytes,
            "backend": info.device.kind.name(),
            "simulated": info.device.is_simulated(),
            "device": info.device.to_string(),
            "shards": rows,
            "all_verified": all_verified,
            "audit_dir": dir,
            "audit_last_seq": report.last_seq,
            "checkpoints_signed": signs_checkpoints,
            "seal_key_id": seal_key_id.to_string(),
            "seal_key_from_file": args.seal_key_file.is_some(),
            "provenance": provenance_summary,
        });
        outln!("{out}");
    } else {
        outln!("model: {} ({} bytes)", shown(&model_path), model.file_bytes);
        outln!("file sha256: {}", model.file_sha256);
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
    match provenance {
        Provenance::Signature { signer, .. } => format!(
            "every file of the model's directory matches the model signature, signer key {}",
            signer.hint()
        ),
        _ => format!(
            "the file's sha256 is the one the manifest {} lists",
            args.manifest
                .as_deref()
                .map(shown)
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
    }
}
