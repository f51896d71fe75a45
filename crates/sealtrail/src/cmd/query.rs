//! `sealtrail query`: print audit events, filtered.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Context;
use audit_logging::AuditEvent;
use audit_logging::query::{Filter, QueriedRecord, QueryError, query};

use crate::Outcome;
use crate::cli::{DEFAULT_KEY_FILE, QueryArgs};
use crate::cmd::verify::load_key;
use crate::output::{errln, shown, summarize};

pub fn run(args: &QueryArgs) -> anyhow::Result<Outcome> {
    let filter = filter(args)?;
    let default_key = Path::new(DEFAULT_KEY_FILE);
    let key_path = args
        .key
        .as_deref()
        .or(default_key.is_file().then_some(default_key));
    let key = key_path.map(load_key).transpose()?;
    if !args.audit_dir.is_dir() {
        anyhow::bail!(
            "no audit trail at {}: pass --audit-dir with the directory `sealtrail seal` wrote",
            shown(&args.audit_dir)
        );
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(
            out,
            "{:>6}  {:<27}  {:<8}  {:<30}  DETAILS",
            "SEQ", "TIME", "SEVERITY", "TYPE"
        )?;
    }
    let mut shown_count = 0u64;
    let mut write_err = None;
    let read = query(&args.audit_dir, &filter, key.as_ref(), |record| {
        if args.limit.is_some_and(|limit| shown_count >= limit) {
            return ControlFlow::Break(());
        }
        shown_count = shown_count.saturating_add(1);
        match print_record(&mut out, &record, args.json) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_err = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    // What was printed before a failure stays printed.
    let flushed = out.flush();
    // The key may have been picked up from the current directory unasked:
    // when the chain does not verify, name it, so that a key of another
    // trail is not mistaken for tampering.
    let tampered = matches!(&read, Err(QueryError::Tampered(_)));
    read.with_context(|| match key_path {
        Some(path) if tampered => format!(
            "cannot read the audit trail in {} with the key {} (if that key is not this \
             trail's, pass the right one with --key)",
            shown(&args.audit_dir),
            shown(path)
        ),
        _ => format!("cannot read the audit trail in {}", shown(&args.audit_dir)),
    })?;
    if let Some(e) = write_err.or(flushed.err()) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("cannot write to standard output"));
        }
    }
    if key.is_none() {
        errln!("note: the chain was not verified; pass --key to verify it while reading");
    }
    Ok(Outcome::Success)
}

/// The library filter for the command line, refusing filters that can only
/// ever match nothing (a misspelt type, an empty time range).
fn filter(args: &QueryArgs) -> anyhow::Result<Filter> {
    for ty in &args.types {
        let known = AuditEvent::TYPES.iter().any(|t| {
            if ty.ends_with('.') {
                t.starts_with(ty.as_str())
            } else {
                t == ty
            }
        });
        if !known {
            anyhow::bail!(
                "no event type is {:?}; use a name like vram.sealed or a family like vram. \
                 (one of: {})",
                audit_logging::Text::new(ty),
                AuditEvent::TYPES.join(", ")
            );
        }
    }
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since >= until
    {
        anyhow::bail!("--since {since} is not before --until {until}; nothing could match");
    }
    Ok(Filter {
        types: args.types.clone(),
        min_severity: args.severity,
        since: args.since,
        until: args.until,
    })
}

fn print_record(out: &mut impl Write, record: &QueriedRecord, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, record)?;
        return writeln!(out);
    }
    let event = serde_json::to_value(&record.event).unwrap_or_default();
    writeln!(
        out,
        "{:>6}  {:<27}  {:<8}  {:<30}  {}",
        record.seq,
        record
            .event
            .timestamp()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        record.severity.as_str(),
        record.event_type,
        summarize(&event)
    )
}
