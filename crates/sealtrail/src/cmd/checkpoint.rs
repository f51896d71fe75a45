//! `sealtrail checkpoint export`: the newest signed checkpoint, to keep off
//! the host as an anchor.

use std::path::Path;

use anyhow::Context;
use audit_logging::checkpoint::{Checkpoint, CheckpointSigner, Note, NoteVerifier};
use audit_logging::logtree::{list_checkpoints, origin_for, read_checkpoint};

use crate::Outcome;
use crate::cli::{CheckpointCommand, ExportArgs, VerifierKeyArgs};
use crate::output::{describe, errln, outln, shown, write_out_file};

pub fn run(command: &CheckpointCommand) -> anyhow::Result<Outcome> {
    match command {
        CheckpointCommand::Export(args) => export(args),
        CheckpointCommand::VerifierKey(args) => print_verifier_key(args),
    }
}

/// Parses a `--checkpoint-key` value (or `$SEALTRAIL_CHECKPOINT_VKEY`),
/// telling the two usual mistakes apart: a file name given where the key
/// string goes, and the secret signing key pasted instead of its public
/// verifier key.
pub fn parse_vkey(vkey: &str) -> anyhow::Result<NoteVerifier> {
    const WHAT: &str = "--checkpoint-key (or $SEALTRAIL_CHECKPOINT_VKEY) is not a checkpoint \
                        verifier key (<name>+<hash>+<key>)";
    if vkey.trim_start().starts_with("sealtrail-checkpoint-key") || vkey.contains("PRIVATE+KEY") {
        // Not quoted back: it is a secret.
        anyhow::bail!(
            "{WHAT}; that is the secret signing key: pass its verifier key instead \
             (`sealtrail checkpoint verifier-key` prints it)"
        );
    }
    NoteVerifier::parse(vkey.trim()).map_err(|err| {
        let hint = if Path::new(vkey).exists() {
            "; that names a file: pass the verifier key string itself, which \
             `sealtrail checkpoint verifier-key` prints from the signing key file"
        } else {
            ""
        };
        anyhow::Error::new(err).context(format!("{WHAT}{hint}"))
    })
}

/// Prints the verifier key of a checkpoint signing key file: what
/// `keygen` printed when it made the key, for `--checkpoint-key`.
fn print_verifier_key(args: &VerifierKeyArgs) -> anyhow::Result<Outcome> {
    let path = args.checkpoint_key_path();
    let signer = CheckpointSigner::load(&path)
        .with_context(|| format!("cannot load the checkpoint key {}", shown(&path)))?;
    outln!("{}", signer.verifier_key());
    Ok(Outcome::Success)
}

/// The checkpoint signing key at `path`, if there is one there. `explicit`
/// says the operator named the file (an option or its variable): then a
/// missing file is an error, since a typo would otherwise turn checkpoints
/// off without a word. The default file is used only when it exists.
pub fn signing_key(path: &Path, explicit: bool) -> anyhow::Result<Option<CheckpointSigner>> {
    if path.symlink_metadata().is_err() {
        if explicit {
            anyhow::bail!(
                "no checkpoint key at {p} (given with --checkpoint-key-file or \
                 $SEALTRAIL_CHECKPOINT_KEY): create it with `sealtrail keygen \
                 --checkpoint-key-out {p}`, or leave the option out to sign no checkpoints",
                p = shown(path)
            );
        }
        return Ok(None);
    }
    CheckpointSigner::load(path)
        .with_context(|| format!("cannot load the checkpoint key {}", shown(path)))
        .map(Some)
}

/// The checkpoint origin of the trail in `dir`, from the audit key id its
/// newest segment's first record names; `None` when there is no record to
/// read. Unauthenticated (no key is at hand): it catches a checkpoint of
/// another trail copied in by mistake, not a forgery, which only
/// `--checkpoint-key` does.
fn trail_origin(dir: &Path) -> Option<String> {
    use std::io::{BufRead as _, Read as _};
    use std::os::unix::fs::OpenOptionsExt as _;

    let (_, newest) = audit_logging::list_segments(dir).ok()?.pop()?;
    // Never through a link, never hanging on a FIFO planted there.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(newest)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    let mut line = Vec::new();
    let limit = (audit_logging::MAX_RECORD_BYTES as u64).saturating_add(1);
    std::io::BufReader::new(file.take(limit))
        .read_until(b'\n', &mut line)
        .ok()?;
    let record = audit_logging::record::RawRecord::parse(line.strip_suffix(b"\n")?).ok()?;
    Some(origin_for(&record.kid))
}

fn export(args: &ExportArgs) -> anyhow::Result<Outcome> {
    let dir = &args.audit_dir;
    let trusted = args.checkpoint_key.as_deref().map(parse_vkey).transpose()?;
    let stored = list_checkpoints(dir)
        .with_context(|| format!("cannot list the checkpoints in {}", shown(dir)))?;
    if stored.is_empty() {
        anyhow::bail!(
            "{} holds no checkpoints: they are written by `sealtrail seal` when the checkpoint \
             key file exists (`sealtrail keygen` creates one)",
            shown(dir)
        );
    }
    // Without a key, at least the origin must be this trail's: the records
    // name the audit key they descend from.
    let origin = trail_origin(dir);
    // The newest checkpoint that is what its name says (and, with a key,
    // signed by it): a file planted under a larger name is skipped, loudly.
    for (size, path) in stored.iter().rev() {
        match checked_note(path, *size, trusted.as_ref(), origin.as_deref()) {
            Ok(note) => return write_note(args, *size, &note, trusted.is_some()),
            Err(why) => errln!("warning: skipping {}: {}", shown(path), describe(&why)),
        }
    }
    anyhow::bail!(
        "no checkpoint in {} is valid; run `sealtrail verify`",
        shown(dir)
    )
}

/// The bytes of the checkpoint at `path` if it is a checkpoint of `size`
/// records (and, with `trusted`, signed by that key).
fn checked_note(
    path: &Path,
    size: u64,
    trusted: Option<&NoteVerifier>,
    origin: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    let note = read_checkpoint(path).context("cannot read it")?;
    let parsed = Note::parse(&note).context("it is not a signed note")?;
    let checkpoint = Checkpoint::parse(parsed.text()).context("it is not a checkpoint")?;
    if let Some(origin) = origin
        && checkpoint.origin() != origin
    {
        anyhow::bail!(
            "it is a checkpoint of another trail ({:?}), not of this one ({origin:?})",
            checkpoint.origin()
        );
    }
    if checkpoint.size() != size {
        anyhow::bail!(
            "its name says {size} records, but it commits to {}",
            checkpoint.size()
        );
    }
    if let Some(key) = trusted {
        Checkpoint::open(&note, checkpoint.origin(), key)
            .context("it is not signed by the given --checkpoint-key")?;
    }
    Ok(note)
}

fn write_note(args: &ExportArgs, size: u64, note: &[u8], signed: bool) -> anyhow::Result<Outcome> {
    let checked = if signed {
        "signature checked"
    } else {
        "signature NOT checked: pass --checkpoint-key"
    };
    match &args.out {
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .lock()
                .write_all(note)
                .context("cannot write to standard output")?;
            errln!("exported the checkpoint of {size} records ({checked})");
        }
        Some(out) => {
            write_out_file(out, note)?;
            outln!(
                "wrote the checkpoint of {size} records to {} ({checked}); keep it off this host \
                 and check the trail against it with `sealtrail verify --anchor`",
                shown(out)
            );
        }
    }
    Ok(Outcome::Success)
}
