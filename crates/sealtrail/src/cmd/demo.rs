//! `sealtrail demo`: the whole path on a generated model, in a scratch
//! directory, with nothing to set up.
//!
//! It writes a small safetensors model and a fresh audit key, seals the
//! model into the chosen backend (`--backend`: the host-memory simulation
//! by default, or a CUDA device), verifies every shard, flips one bit of
//! one resident shard and shows verification catching it, frees
//! everything, and finally verifies the audit trail it wrote, with the
//! checkpoints it signed under a fresh checkpoint key. It succeeds only if
//! all of that behaves as it should, the caught corruption included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{CheckpointOptions, origin_for};
use audit_logging::{AuditKey, AuditLogger, LoggerConfig};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;
use vram_residency::SealModelOptions;

use crate::Outcome;
use crate::cli::DemoArgs;
use crate::cmd::sealing::{
    open_backend, open_manager, print_rows, release_all, seal_with_progress, verify_all,
};
use crate::cmd::verify::{print_report, verify_trail_with};
use crate::output::{json_path, outln, shown};

/// Shard size for the demo: small enough that the sample model has several.
const DEMO_SHARD_BYTES: u64 = 1 << 20;

/// The sample model's tensors: name and shape (f32).
const SAMPLE_TENSORS: [(&str, [usize; 2]); 6] = [
    ("embeddings.word", [1024, 256]),
    ("layer0.attention.qkv", [256, 768]),
    ("layer0.attention.out", [256, 256]),
    ("layer0.mlp.up", [256, 1024]),
    ("layer0.mlp.down", [1024, 256]),
    ("head.norm", [1, 256]),
];

pub fn run(args: &DemoArgs) -> anyhow::Result<Outcome> {
    let scratch;
    let dir: PathBuf = match &args.keep {
        Some(dir) => prepare_kept_dir(dir)?,
        None => {
            scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            scratch.path().to_owned()
        }
    };
    let say = |line: String| -> anyhow::Result<()> {
        if !args.json {
            outln!("{line}");
        }
        Ok(())
    };

    let backend = open_backend(&args.device)?;
    let model_path = dir.join("sample-model.safetensors");
    write_sample_model(&model_path)?;
    let key = AuditKey::generate()?;
    key.save_new(&dir.join("audit.key"))?;
    let signer = CheckpointSigner::generate(KeyName::new(&origin_for(key.id().as_str()))?)?;
    signer.save_new(&dir.join("checkpoint.key"))?;
    let checkpoint_key = signer.verifier();
    let audit_dir = dir.join("audit");
    let logger = Arc::new(AuditLogger::open(
        LoggerConfig::new(&audit_dir).checkpoint_signer(signer),
        key.clone(),
    )?);
    let manager = open_manager(
        backend,
        Arc::clone(&logger),
        "demo-worker",
        None,
        &args.device,
    )?;
    let info = manager.backend_info().clone();
    say(format!("1. wrote a sample model: {}", shown(&model_path)))?;
    say(format!("   backend: {}", manager.backend_info()))?;

    let options = SealModelOptions::new("sample-model").with_max_shard_bytes(DEMO_SHARD_BYTES);
    let model = seal_with_progress(&manager, &model_path, &options)?;
    say(format!(
        "2. sealed {} shards; file sha256 {}",
        model.shards.len(),
        model.file_sha256
    ))?;
    let clean = verify_all(&manager, &model.shards);
    say("3. verified every shard against device memory:".into())?;
    if !args.json {
        print_rows(&clean)?;
    }

    let victim = model.shards.len() / 2;
    let target = model
        .shards
        .get(victim)
        .context("the sample model has no shards")?;
    let offset = target.bytes / 2;
    manager
        .corrupt_resident_byte(target, offset)
        .context("cannot inject the fault")?;
    say(format!(
        "4. flipped one bit at byte {offset} of shard {victim} in device memory"
    ))?;
    let after = verify_all(&manager, &model.shards);
    if !args.json {
        print_rows(&after)?;
    }

    release_all(&manager, model.shards.clone())?;
    drop(manager);
    logger.shutdown().context("cannot finish the audit trail")?;
    let trusted = CheckpointOptions::new().trusted_key(checkpoint_key);
    let report = verify_trail_with(&audit_dir, &key, &trusted)?;
    say("5. verified the audit trail and its signed checkpoints:".into())?;
    if !args.json {
        print_report(&audit_dir, &report)?;
        print_counts(&report.by_type)?;
    }

    let caught = after
        .iter()
        .filter(|r| !r.verified)
        .map(|r| r.index)
        .collect::<Vec<_>>();
    let as_expected = clean.iter().all(|r| r.verified)
        && caught == [target.shard_index]
        && report.is_intact()
        && report
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.checked > 0 && c.signatures_checked)
        && report.by_type.get("vram.seal_verification_failed") == Some(&1);
    if args.json {
        let out = json!({
            "dir": args.keep.as_ref().map(|_| json_path(&dir)),
            "backend": info.device.kind.name(),
            "simulated": info.device.is_simulated(),
            "device": info.device.to_string(),
            "file_sha256": model.file_sha256.to_hex(),
            "shards": model.shards.len(),
            "corrupted_shard": target.shard_index,
            "corruption_caught": caught == [target.shard_index],
            "audit": report,
            "as_expected": as_expected,
        });
        outln!("{out}");
    } else if as_expected {
        outln!("demo complete: the corruption was caught and the audit trail is intact");
        match &args.keep {
            Some(_) => outln!("files kept in {}", shown(&dir)),
            None => outln!("(scratch files removed; pass --keep DIR to keep them)"),
        }
    } else {
        outln!("demo FAILED: the results above are not what sealing promises");
    }
    Ok(if as_expected {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

/// Creates `dir` if needed; refuses one that already holds files, so the
/// demo never mixes its trail with another.
fn prepare_kept_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.symlink_metadata().is_ok_and(|meta| !meta.is_dir()) {
        anyhow::bail!(
            "{} exists and is not a directory; give --keep a new or empty directory",
            shown(dir)
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", shown(dir)))?;
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", shown(dir)))?;
    if entries.next().is_some() {
        anyhow::bail!(
            "{} is not empty; give --keep a new or empty directory",
            dir.display()
        );
    }
    Ok(dir.to_owned())
}

/// Writes a small model with deterministic, weight-like contents.
fn write_sample_model(path: &Path) -> anyhow::Result<()> {
    let data: Vec<Vec<u8>> = SAMPLE_TENSORS
        .iter()
        .enumerate()
        .map(|(t, (_, [rows, cols]))| {
            (0..rows * cols)
                .flat_map(|i| {
                    let x = (i as f32).mul_add(0.618_034, t as f32).sin() * 0.02;
                    x.to_le_bytes()
                })
                .collect()
        })
        .collect();
    let mut views = Vec::new();
    for ((name, shape), bytes) in SAMPLE_TENSORS.iter().zip(&data) {
        views.push((*name, TensorView::new(Dtype::F32, shape.to_vec(), bytes)?));
    }
    safetensors::serialize_to_file(views, None, path)
        .with_context(|| format!("cannot write {}", shown(path)))?;
    Ok(())
}

fn print_counts(by_type: &BTreeMap<String, u64>) -> anyhow::Result<()> {
    outln!("  events by type:");
    for (ty, n) in by_type {
        outln!("    {n:>4}  {ty}");
    }
    Ok(())
}
