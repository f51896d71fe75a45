//! `sealtrail verify`: prove the integrity of an audit trail.

use std::path::Path;

use anyhow::Context;
use audit_logging::AuditKey;
use audit_logging::checkpoint::NoteVerifier;
use audit_logging::logtree::{
    Anchor, CheckpointOptions, CheckpointReport, origin_for, verify_dir_with_checkpoints,
};
use audit_logging::verify::{FindingKind, VerifyReport};
use serde_json::json;

use crate::Outcome;
use crate::cli::VerifyArgs;
use crate::output::{byte_bar, describe, json_path, outln, shown};

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    if let (Some(proof), Some(vkey)) = (&args.proof, &args.checkpoint_key) {
        return crate::cmd::prove::check(proof, vkey, args.json);
    }
    let dir = &args.trail.audit_dir;
    let checked = load_key(&args.trail.key).and_then(|key| {
        let options = checkpoint_options(args, &key)?;
        verify_trail_with(dir, &key, &options)
    });
    let report = match checked {
        Ok(report) => report,
        // Scripts asked for JSON: they get JSON, and still exit 2.
        Err(err) if args.json => {
            outln!(
                "{}",
                json!({ "audit_dir": json_path(dir), "status": "error", "error": describe(&err) })
            );
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    if args.json {
        outln!("{}", report_json(dir, &report));
    } else {
        print_report(dir, &report)?;
    }
    Ok(if report.is_intact() {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

/// Loads the audit key, saying what to do when it is missing.
pub fn load_key(path: &Path) -> anyhow::Result<AuditKey> {
    if !path.exists() {
        anyhow::bail!(
            "no audit key at {p}: pass --key with the key file `sealtrail keygen` wrote for \
             this trail (a new trail starts with `sealtrail keygen --out {p}`, then `sealtrail \
             seal`)",
            p = shown(path)
        );
    }
    AuditKey::load(path).with_context(|| format!("cannot load the audit key {}", shown(path)))
}

/// The trusted checkpoint key and the anchor, as the command line gives
/// them. Neither is ever taken from the audit directory.
fn checkpoint_options(args: &VerifyArgs, key: &AuditKey) -> anyhow::Result<CheckpointOptions> {
    let mut options = CheckpointOptions::new();
    let Some(vkey) = &args.checkpoint_key else {
        return Ok(options);
    };
    let trusted = verifier_key(vkey, key, args.anchor.is_some())?;
    if let Some(path) = &args.anchor {
        let anchor = Anchor::load(path, key.id().as_str(), &trusted)
            .with_context(|| format!("cannot use the anchor {}", shown(path)))?;
        options = options.anchor(anchor);
    }
    Ok(options.trusted_key(trusted))
}

/// The `--checkpoint-key` verifier key, checked to be this trail's: a key
/// of another name cannot have signed its checkpoints, which is the wrong
/// key given, not a tampered trail. `with_anchor` says the anchor is
/// checked with it too.
pub fn verifier_key(vkey: &str, key: &AuditKey, with_anchor: bool) -> anyhow::Result<NoteVerifier> {
    let trusted = crate::cmd::checkpoint::parse_vkey(vkey)?;
    let origin = origin_for(key.id().as_str());
    if trusted.name().as_str() != origin {
        anyhow::bail!(
            "--checkpoint-key belongs to another trail: its name is {:?}, this trail's \
             checkpoint origin is {origin:?}; pass the verifier key `sealtrail keygen` printed \
             for this trail{}",
            trusted.name().as_str(),
            if with_anchor {
                " (the --anchor is checked with it too)"
            } else {
                ""
            }
        );
    }
    Ok(trusted)
}

/// Verifies `dir` with a progress bar, checking the chain, the stored
/// checkpoints and, as `options` say, their signatures and an anchor.
pub fn verify_trail_with(
    dir: &Path,
    key: &AuditKey,
    options: &CheckpointOptions,
) -> anyhow::Result<VerifyReport> {
    let bar = byte_bar(0, "verifying");
    let report = verify_dir_with_checkpoints(dir, key, options, |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .with_context(|| format!("cannot verify the audit trail in {}", shown(dir)));
    bar.finish_and_clear();
    report
}

pub fn report_json(dir: &Path, report: &VerifyReport) -> serde_json::Value {
    json!({
        "audit_dir": json_path(dir),
        "status": if report.is_intact() { "intact" } else { "tampered" },
        "warnings": directory_warnings(dir),
        "report": report,
    })
}

/// What the verdict cannot see, as warnings rather than findings (the
/// records themselves verified): an audit directory other users may write
/// to (which the writer refuses to use) could have had segments replaced
/// by someone without any key, so only checkpoints and anchors pin what it
/// held; and a file named like a segment but not as the writer names them
/// was not read at all.
fn directory_warnings(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt as _;
    let mut warnings = Vec::new();
    if let Ok(meta) = std::fs::symlink_metadata(dir)
        && meta.mode() & 0o022 != 0
    {
        warnings.push(format!(
            "the audit directory {} has mode {:04o}: other users can delete or replace its \
             files; the writer refuses such a directory; run `chmod 700 {}`",
            shown(dir),
            meta.mode() & 0o7777,
            shown(dir)
        ));
    }
    let mut strays: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.starts_with("seg-")
                && name.ends_with(".jsonl")
                && audit_logging::parse_segment_name(name).is_none()
        })
        .collect();
    strays.sort();
    for name in strays {
        warnings.push(format!(
            "{} is named like a segment but not as the writer names them \
             (seg-<20 digits>.jsonl), so it was not verified; find out where it came from",
            shown(&dir.join(name))
        ));
    }
    warnings
}

pub fn print_report(dir: &Path, report: &VerifyReport) -> anyhow::Result<()> {
    let status = if report.is_intact() {
        "INTACT"
    } else {
        "TAMPERED"
    };
    outln!("audit trail {}: {status}", shown(dir));
    for warning in directory_warnings(dir) {
        outln!("  warning: {warning}");
    }
    outln!(
        "  segments {}  records verified {}  last seq {}",
        report.segments,
        report.records,
        report.last_seq
    );
    outln!(
        "  logger starts {}  clean stops {}  torn tails recovered {}",
        report.logger_starts,
        report.logger_stops,
        report.torn_tails_recovered
    );
    if report.retired_records > 0 {
        outln!(
            "  begins at record {}: records 1 to {} were retired (retired.json, checked against \
             the trail's retirement record)",
            report.retired_records.saturating_add(1),
            report.retired_records
        );
    }
    outln!("  head {}", report.last_hash);
    if let Some(tree) = &report.checkpoints {
        print_tree(tree)?;
    }
    if let Some(f) = &report.finding {
        outln!("  first bad record: {}", f.expected_seq);
        // Line 0 marks a finding about a whole file, not one of its lines.
        if f.line == 0 {
            outln!("    where: {}", shown(&f.segment));
        } else {
            outln!(
                "    where: {} line {} (byte {})",
                shown(&f.segment),
                f.line,
                f.offset
            );
        }
        outln!("    what:  {}: {}", f.kind, f.detail);
        if f.kind == FindingKind::KeyMismatch {
            outln!("    if the key file is the wrong one, pass the right one with --key");
        }
    }
    Ok(())
}

fn print_tree(tree: &CheckpointReport) -> anyhow::Result<()> {
    outln!(
        "  merkle root {} over {} records",
        tree.root,
        tree.tree_size
    );
    let signatures = if tree.stored == 0 {
        "none to check"
    } else if tree.signatures_checked {
        "roots and signatures checked"
    } else {
        "roots checked; signatures NOT checked, pass --checkpoint-key"
    };
    outln!(
        "  checkpoints stored {}  matched {}  ({signatures})",
        tree.stored,
        tree.checked
    );
    if tree.retired > 0 {
        outln!(
            "  {} checkpoints cover only retired records and were not checked",
            tree.retired
        );
    }
    match (tree.anchor_size, tree.anchor_checked) {
        (None, _) => outln!(
            "  no anchor: records cut off the end, or rewritten with the record key, are \
             caught only against a checkpoint kept elsewhere (--anchor)"
        ),
        (Some(size), true) => outln!("  anchor: the trail extends the anchor of {size} records"),
        (Some(size), false) => {
            outln!("  anchor: NOT proven; the anchor commits to {size} records")
        }
    }
    Ok(())
}
