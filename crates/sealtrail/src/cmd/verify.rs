//! `sealtrail verify`: prove the integrity of an audit trail.

use std::path::Path;

use anyhow::Context;
use audit_logging::AuditKey;
use audit_logging::verify::{VerifyReport, verify_dir_with_progress};
use serde_json::json;

use crate::Outcome;
use crate::cli::VerifyArgs;
use crate::output::byte_bar;

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let key = load_key(&args.trail.key)?;
    let report = verify_trail(&args.trail.audit_dir, &key)?;
    if args.json {
        println!("{}", report_json(&args.trail.audit_dir, &report));
    } else {
        print_report(&args.trail.audit_dir, &report);
    }
    Ok(if report.is_intact() {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

/// Loads the audit key, saying how to make one when it is missing.
pub fn load_key(path: &Path) -> anyhow::Result<AuditKey> {
    if !path.exists() {
        anyhow::bail!(
            "no audit key at {}; create one with `sealtrail keygen --out {}` or pass --key",
            path.display(),
            path.display()
        );
    }
    Ok(AuditKey::load(path)?)
}

/// Verifies `dir` with a progress bar.
pub fn verify_trail(dir: &Path, key: &AuditKey) -> anyhow::Result<VerifyReport> {
    let bar = byte_bar(0, "verifying");
    let report = verify_dir_with_progress(dir, key, |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .with_context(|| format!("cannot verify the audit trail in {}", dir.display()))?;
    bar.finish_and_clear();
    Ok(report)
}

pub fn report_json(dir: &Path, report: &VerifyReport) -> serde_json::Value {
    json!({
        "audit_dir": dir,
        "status": if report.is_intact() { "intact" } else { "tampered" },
        "report": report,
    })
}

pub fn print_report(dir: &Path, report: &VerifyReport) {
    let status = if report.is_intact() {
        "INTACT"
    } else {
        "TAMPERED"
    };
    println!("audit trail {}: {status}", dir.display());
    println!(
        "  segments {}  records verified {}  last seq {}  logger starts {}  torn tails recovered {}",
        report.segments,
        report.records,
        report.last_seq,
        report.logger_starts,
        report.torn_tails_recovered
    );
    println!("  head {}", report.last_hash);
    if let Some(f) = &report.finding {
        println!("  first bad record: {}", f.expected_seq);
        println!(
            "    where: {} line {} (byte {})",
            f.segment.display(),
            f.line,
            f.offset
        );
        println!("    what:  {:?}: {}", f.kind, f.detail);
    }
}
