//! `sealtrail prove`: inclusion and consistency proofs from the stored
//! checkpoints, and checking one (`sealtrail verify --proof`).

use std::path::Path;

use anyhow::Context;
use audit_logging::logtree::{
    MAX_PROOF_BYTES, Proof, ProofCheckError, check_proof, prove_consistency, prove_inclusion,
};
use serde_json::json;

use crate::Outcome;
use crate::cli::ProveCommand;
use crate::output::{describe, json_path, outln, shown, write_out_file};

pub fn run(command: &ProveCommand) -> anyhow::Result<Outcome> {
    let (proof, out) = match command {
        ProveCommand::Inclusion(args) => {
            let proof = prove_inclusion(&args.audit_dir, args.seq).with_context(|| {
                format!(
                    "cannot prove record {} in {}",
                    args.seq,
                    shown(&args.audit_dir)
                )
            })?;
            (Proof::Inclusion(proof), &args.out)
        }
        ProveCommand::Consistency(args) => {
            let proof =
                prove_consistency(&args.audit_dir, args.old, args.new).with_context(|| {
                    format!("cannot prove consistency in {}", shown(&args.audit_dir))
                })?;
            (Proof::Consistency(proof), &args.out)
        }
    };
    let text = serde_json::to_string_pretty(&proof)?;
    match out {
        None => outln!("{text}"),
        Some(path) => {
            write_out_file(path, format!("{text}\n").as_bytes())?;
            outln!(
                "wrote the proof to {}; check it with `sealtrail verify --proof`",
                shown(path)
            );
        }
    }
    Ok(Outcome::Success)
}

/// Checks the proof file `path` with the verifier key `vkey`: exit 0 when it
/// holds, 1 when it does not, 2 when it is not a proof at all.
pub fn check(path: &Path, vkey: &str, json: bool) -> anyhow::Result<Outcome> {
    let result = check_file(path, vkey, json);
    // Scripts asked for JSON: they get JSON, and still exit 2.
    if let (true, Err(err)) = (json, &result) {
        outln!(
            "{}",
            json!({ "proof": json_path(path), "status": "error", "error": describe(err) })
        );
    }
    result
}

fn check_file(path: &Path, vkey: &str, json: bool) -> anyhow::Result<Outcome> {
    let trusted = crate::cmd::checkpoint::parse_vkey(vkey)?;
    let bytes = read_bounded(path)?;
    match check_proof(&bytes, &trusted) {
        Ok(summary) => {
            if json {
                outln!(
                    "{}",
                    json!({ "proof": json_path(path), "status": "valid", "summary": summary })
                );
            } else {
                outln!("proof {}: VALID", shown(path));
                outln!("  {} (log {})", summary.statement, summary.origin);
            }
            Ok(Outcome::Success)
        }
        Err(ProofCheckError::Failed(reason)) => {
            if json {
                outln!(
                    "{}",
                    json!({ "proof": json_path(path), "status": "invalid", "reason": reason })
                );
            } else {
                outln!("proof {}: INVALID", shown(path));
                outln!("  {}", audit_logging::Text::new(reason));
            }
            Ok(Outcome::VerificationFailed)
        }
        Err(e) => Err(e).with_context(|| format!("cannot check the proof {}", shown(path))),
    }
}

fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // O_NONBLOCK: a FIFO given as the proof must not hang the command.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot open {}", shown(path)))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", shown(path)))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file", shown(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PROOF_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", shown(path)))?;
    Ok(bytes)
}
