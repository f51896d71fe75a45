//! `sealtrail keygen`: create an audit key file and a checkpoint signing key
//! file, and a seal key file when asked.

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
    let key = AuditKey::generate()?;
    let name = KeyName::new(&origin_for(key.id().as_str()))?;
    let signer = CheckpointSigner::generate(name)?;
    let seal_key = match &args.seal_key_out {
        Some(_) => Some(SealKey::generate()?),
        None => None,
    };
    key.save_new(&args.out)
        .with_context(|| format!("cannot create key file {}", shown(&args.out)))?;
    signer
        .save_new(&checkpoint_path)
        .with_context(|| format!("cannot create key file {}", shown(&checkpoint_path)))?;
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
        seal_key
            .save_new(path)
            .with_context(|| format!("cannot create key file {}", shown(path)))?;
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
