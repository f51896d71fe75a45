//! `sealtrail verify`: prove the integrity of an audit trail.

use std::path::Path;

use anyhow::Context;
use audit_logging::AuditKey;
use audit_logging::verify::{FindingKind, VerifyReport, verify_dir_with_progress};
use serde_json::json;

use crate::Outcome;
use crate::cli::VerifyArgs;
use crate::output::{byte_bar, describe, outln, shown};

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let dir = &args.trail.audit_dir;
    let checked = load_key(&args.trail.key).and_then(|key| verify_trail(dir, &key));
    let report = match checked {
        Ok(report) => report,
        // Scripts asked for JSON: they get JSON, and still exit 2.
        Err(err) if args.json => {
            outln!(
                "{}",
                json!({ "audit_dir": dir, "status": "error", "error": describe(&err) })
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
            "no audit key at {p}: pass --key with the key the trail was written with; \
             for a new trail, create one with `sealtrail keygen --out {p}`",
            p = shown(path)
        );
    }
    AuditKey::load(path).with_context(|| format!("cannot load the audit key {}", shown(path)))
}

/// Verifies `dir` with a progress bar.
pub fn verify_trail(dir: &Path, key: &AuditKey) -> anyhow::Result<VerifyReport> {
    let bar = byte_bar(0, "verifying");
    let report = verify_dir_with_progress(dir, key, |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .with_context(|| format!("cannot verify the audit trail in {}", shown(dir)));
    bar.finish_and_clear();
    report
}

pub fn report_json(dir: &Path, report: &VerifyReport) -> serde_json::Value {
    json!({
        "audit_dir": dir,
        "status": if report.is_intact() { "intact" } else { "tampered" },
        "report": report,
    })
}

pub fn print_report(dir: &Path, report: &VerifyReport) -> anyhow::Result<()> {
    let status = if report.is_intact() {
        "INTACT"
    } else {
        "TAMPERED"
    };
    outln!("audit trail {}: {status}", shown(dir));
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
    outln!("  head {}", report.last_hash);
    if let Some(f) = &report.finding {
        outln!("  first bad record: {}", f.expected_seq);
        outln!(
            "    where: {} line {} (byte {})",
            shown(&f.segment),
            f.line,
            f.offset
        );
        outln!("    what:  {}: {}", f.kind, f.detail);
        if f.kind == FindingKind::KeyMismatch {
            outln!("    if the key file is the wrong one, pass the right one with --key");
        }
    }
    Ok(())
}
