//! `sealtrail retention`: retire the oldest closed segments an anchor
//! covers, once they are past the retention time.

use anyhow::Context;
use audit_logging::LoggerConfig;
use audit_logging::logtree::Anchor;
use audit_logging::retention::{self, RetentionError, RetentionPolicy, RetentionReport};
use serde_json::json;

use crate::Outcome;
use crate::cli::RetentionArgs;
use crate::cmd::verify::{load_key, print_report, report_json, verifier_key};
use crate::output::{json_path, outln, shown};

pub fn run(args: &RetentionArgs) -> anyhow::Result<Outcome> {
    let result = retire(args);
    // Scripts asked for JSON: they get JSON on every error, a bad key or
    // anchor included, and still the error's exit code.
    if let (true, Err(err)) = (args.json, &result) {
        outln!(
            "{}",
            json!({ "audit_dir": json_path(&args.trail.audit_dir), "status": "error",
                    "error": crate::output::describe(err) })
        );
    }
    result
}

fn retire(args: &RetentionArgs) -> anyhow::Result<Outcome> {
    let dir = &args.trail.audit_dir;
    let key = load_key(&args.trail.key)?;
    let trusted = verifier_key(&args.checkpoint_key, &key, true)?;
    let anchor = Anchor::load(&args.anchor, key.id().as_str(), &trusted)
        .with_context(|| format!("cannot use the anchor {}", shown(&args.anchor)))?;
    let mut config = LoggerConfig::new(dir);
    let checkpoint_key = args.checkpoint_key_path();
    let explicit = args.checkpoint_key_file.is_some();
    if !args.dry_run
        && let Some(signer) = crate::cmd::checkpoint::signing_key(&checkpoint_key, explicit)?
    {
        config = config.checkpoint_signer(signer);
    }
    let mut policy = RetentionPolicy::new(args.older_than).dry_run(args.dry_run);
    if let Some(archive) = &args.archive {
        policy = policy.archive_to(archive);
    }
    match retention::retire(config, &key, &trusted, anchor, &policy) {
        Ok(report) => {
            if args.json {
                let status = match (report.dry_run, report.retired.is_empty()) {
                    (true, _) => "dry_run",
                    (false, true) => "nothing_retired",
                    (false, false) => "retired",
                };
                outln!(
                    "{}",
                    json!({ "audit_dir": json_path(dir), "status": status, "retention": report })
                );
            } else {
                print_retention(&report)?;
            }
            Ok(Outcome::Success)
        }
        // The trail does not verify: say why, as `verify` would.
        Err(RetentionError::NotIntact(report)) => {
            if args.json {
                outln!("{}", report_json(dir, &report));
            } else {
                print_report(dir, &report)?;
                outln!("nothing was retired");
            }
            Ok(Outcome::VerificationFailed)
        }
        Err(err) => {
            Err(anyhow::Error::new(err)
                .context(format!("cannot retire segments of {}", shown(dir))))
        }
    }
}

fn print_retention(report: &RetentionReport) -> anyhow::Result<()> {
    let verified = &report.verified;
    outln!(
        "trail verified: {} records up to record {}, extending the anchor of {} records",
        verified.records,
        verified.last_seq,
        report.anchor_size
    );
    outln!(
        "retiring segments whose records are all before {}",
        report.cutoff.to_rfc3339()
    );
    let verb = match (&report.archived_to, report.dry_run) {
        (_, true) => "would retire".to_owned(),
        (Some(archive), false) => format!("archived to {}", shown(archive)),
        (None, false) => "deleted".to_owned(),
    };
    if report.retired.is_empty() {
        outln!("nothing to retire");
    } else {
        outln!("{verb}: {} segments", report.retired.len());
        for s in &report.retired {
            outln!(
                "  {}  records {} to {}  ({} lines)  sha256 {}",
                s.segment,
                s.first_seq,
                s.last_seq,
                s.records,
                s.sha256
            );
        }
    }
    if let Some(why) = &report.kept_because {
        outln!("kept from {why}");
    }
    for name in &report.finished_from_earlier_run {
        outln!("also removed {name}, which an interrupted earlier retention had recorded");
    }
    match (report.record_seq, report.first_kept_seq, report.dry_run) {
        (_, Some(first), true) => {
            outln!("dry run: nothing was changed; the trail would begin at record {first}")
        }
        (_, None, true) => outln!("dry run: nothing was changed"),
        (Some(seq), Some(first), false) => outln!(
            "recorded as record {seq} (audit.segments_retired); the trail now begins at record \
             {first}, and `sealtrail verify` checks it from there"
        ),
        _ => {}
    }
    Ok(())
}
