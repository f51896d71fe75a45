//! `sealtrail query`: print audit events, filtered.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Context;
use audit_logging::query::{Filter, QueriedRecord, query};

use crate::Outcome;
use crate::cli::{DEFAULT_KEY_FILE, QueryArgs};
use crate::cmd::verify::load_key;
use crate::output::summarize;

pub fn run(args: &QueryArgs) -> anyhow::Result<Outcome> {
    let default_key = Path::new(DEFAULT_KEY_FILE);
    let key_path = args
        .key
        .as_deref()
        .or(default_key.exists().then_some(default_key));
    let key = key_path.map(load_key).transpose()?;
    let filter = Filter {
        types: args.types.clone(),
        min_severity: args.severity,
        since: args.since,
        until: args.until,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(
            out,
            "{:>6}  {:<27}  {:<8}  {:<30}  DETAILS",
            "SEQ", "TIME", "SEVERITY", "TYPE"
        )?;
    }
    let mut shown = 0u64;
    let mut write_err = None;
    query(&args.audit_dir, &filter, key.as_ref(), |record| {
        if args.limit.is_some_and(|limit| shown >= limit) {
            return ControlFlow::Break(());
        }
        shown = shown.saturating_add(1);
        match print_record(&mut out, &record, args.json) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_err = Some(e);
                ControlFlow::Break(())
            }
        }
    })
    .with_context(|| {
        format!(
            "cannot read the audit trail in {}",
            args.audit_dir.display()
        )
    })?;
    if let Some(e) = write_err {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    if key.is_none() && !args.json {
        eprintln!("note: records were not authenticated; pass --key to check each one");
    }
    Ok(Outcome::Success)
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
