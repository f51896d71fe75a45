//! `sealtrail checkpoint export`: the newest signed checkpoint, to keep off
//! the host as an anchor.

use anyhow::Context;
use audit_logging::logtree::{latest_checkpoint, read_checkpoint};

use crate::Outcome;
use crate::cli::{CheckpointCommand, ExportArgs};
use crate::output::{outln, shown};

pub fn run(command: &CheckpointCommand) -> anyhow::Result<Outcome> {
    match command {
        CheckpointCommand::Export(args) => export(args),
    }
}

fn export(args: &ExportArgs) -> anyhow::Result<Outcome> {
    let dir = &args.audit_dir;
    let latest = latest_checkpoint(dir)
        .with_context(|| format!("cannot list the checkpoints in {}", shown(dir)))?;
    let Some((size, path)) = latest else {
        anyhow::bail!(
            "{} holds no checkpoints: they are written by `sealtrail seal` when the checkpoint \
             key file exists (`sealtrail keygen` creates one)",
            shown(dir)
        );
    };
    let note = read_checkpoint(&path).with_context(|| format!("cannot read {}", shown(&path)))?;
    match &args.out {
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .lock()
                .write_all(&note)
                .context("cannot write to standard output")?;
        }
        Some(out) => {
            std::fs::write(out, &note).with_context(|| format!("cannot write {}", shown(out)))?;
            outln!(
                "wrote the checkpoint of {size} records to {}; keep it off this host and check \
                 the trail against it with `sealtrail verify --anchor`",
                shown(out)
            );
        }
    }
    Ok(Outcome::Success)
}
