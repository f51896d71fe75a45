//! `sealtrail keygen`: create an audit key file and a checkpoint signing key
//! file, and a seal key file when asked.

use std::path::Path;

use anyhow::Context;
use audit_logging::AuditKey;
use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::origin_for;
use vram_residency::SealKey;

use crate::Outcome;
use crate::cli::KeygenArgs;
use crate::output::{outln, shown};

pub fn run(args: &KeygenArgs) -> anyhow::Result<Outcome> {
    let checkpoint_path = args.checkpoint_key_path();
    // Both or neither: refuse before writing anything.
    for path in [&args.out, &checkpoint_path]
        .into_iter()
        .chain(args.seal_key_out.as_ref())
    {
        if path.symlink_metadata().is_ok() {
            anyhow::bail!(
                "{} already exists; keygen never overwrites a key (move it away, or pass \
                 --out / --checkpoint-key-out)",
                shown(path)
            );
        }
    }
    let paths: Vec<_> = [&args.out, &checkpoint_path]
        .into_iter()
        .chain(args.seal_key_out.as_ref())
        .collect();
    for (i, path) in paths.iter().enumerate() {
        if paths[..i].iter().any(|p| same_file_name(p, path)) {
            anyhow::bail!(
                "{} is given for two keys; each key needs its own file",
                shown(path)
            );
        }
    }
    let key = AuditKey::generate()?;
    let name = KeyName::new(&origin_for(key.id().as_str()))?;
    let signer = CheckpointSigner::generate(name)?;
    let seal_key = match &args.seal_key_out {
        Some(_) => Some(SealKey::generate()?),
        None => None,
    };
    key.save_new(&args.out)
        .with_context(|| format!("cannot create key file {}", shown(&args.out)))?;
    // Every key or none: a pair left half written would make the next
    // keygen refuse, and no trail has used these keys yet.
    let written = [&args.out, &checkpoint_path];
    let undo = |n: usize| {
        for path in &written[..n] {
            let _ = std::fs::remove_file(path);
        }
    };
    if let Err(err) = signer.save_new(&checkpoint_path) {
        undo(1);
        return Err(err)
            .with_context(|| format!("cannot create key file {}", shown(&checkpoint_path)));
    }
    if let (Some(path), Some(seal_key)) = (&args.seal_key_out, &seal_key)
        && let Err(err) = seal_key.save_new(path)
    {
        undo(2);
        return Err(err).with_context(|| format!("cannot create key file {}", shown(path)));
    }
    outln!(
        "wrote audit key {} to {} (mode 0600)",
        key.id(),
        shown(&args.out)
    );
    outln!(
        "wrote checkpoint signing key to {} (mode 0600)",
        shown(&checkpoint_path)
    );
    if let (Some(path), Some(seal_key)) = (&args.seal_key_out, &seal_key) {
        outln!(
            "wrote seal key {} to {} (mode 0600)",
            seal_key.id(),
            shown(path)
        );
    }
    outln!("checkpoint verifier key: {}", signer.verifier_key());
    outln!(
        "`sealtrail seal` needs the audit key only to start a trail; then move it off this \
         host: `verify` needs it, and whoever holds it can forge the whole trail"
    );
    outln!(
        "publish the verifier key: anyone can check checkpoints with it, with sealtrail or \
         any signed-note tool"
    );
    Ok(Outcome::Success)
}

/// Whether `a` and `b` name the same file, however they are spelled: their
/// directories resolved (where they exist) and their file names compared.
fn same_file_name(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| {
        let parent = match p.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
        (dir, p.file_name().map(ToOwned::to_owned))
    };
    resolved(a) == resolved(b)
}
