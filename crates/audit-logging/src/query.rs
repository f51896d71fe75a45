//! Reading events back, filtered.
//!
//! [`query`] streams the records of an audit directory in log order and
//! hands each one that matches a [`Filter`] to a callback, which may stop the
//! scan. Memory stays bounded whatever the size of the log.
//!
//! With a key, the query verifies the chain as it reads, exactly as
//! [`verify_dir`](crate::verify_dir) does (authenticators, numbering, links,
//! segment names), and stops with [`QueryError::Tampered`] at the first
//! record that fails: every record handed out before that is part of an
//! intact chain from record 1, or from the retention cut in `retired.json`
//! when retention retired the oldest segments (whether that cut is the one
//! the chain's retirement record names is checked by `verify`, which reads
//! to the end). Without a key the records are only parsed.

use std::io::{self, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::record::{DecodeError, RawRecord};
use crate::retention::{BASE_FILE, BaseError, RetentionBase};
use crate::store::lines::LineReader;
use crate::store::{fs, list_segments};
use crate::verify::{Chain, Finding, FindingKind};
use crate::{AuditEvent, AuditKey, Severity};

/// Which records a [`query`] returns. The default returns all of them.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Event types to keep. An entry ending in `.` keeps every type with that
    /// prefix (`vram.` keeps all VRAM events). Empty keeps every type.
    pub types: Vec<String>,
    /// Keep events of at least this severity.
    pub min_severity: Option<Severity>,
    /// Keep events that happened at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Keep events that happened before this time.
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let ty = event.event_type();
        let type_ok = self.types.is_empty()
            || self.types.iter().any(|t| {
                if t.ends_with('.') {
                    ty.starts_with(t.as_str())
                } else {
                    ty == t
                }
            });
        type_ok
            && self.min_severity.is_none_or(|min| event.severity() >= min)
            && self.since.is_none_or(|since| event.timestamp() >= since)
            && self.until.is_none_or(|until| event.timestamp() < until)
    }
}

/// One record returned by [`query`].
#[derive(Debug, Clone, Serialize)]
pub struct QueriedRecord {
    /// Its sequence number.
    pub seq: u64,
    /// When the writer wrote it.
    pub written_at: DateTime<Utc>,
    /// The event's type name.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// The event's severity.
    pub severity: Severity,
    /// The event.
    pub event: AuditEvent,
}

/// Why a query stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A line is not a record this version can read.
    #[error("{path} line {line}: {source}")]
    Decode {
        /// The segment.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// With a key: the trail fails verification at this record. Nothing
    /// from that record on was handed to the callback.
    #[error("the audit trail does not verify: {0}; run `sealtrail verify`")]
    Tampered(Box<Finding>),
}

/// Streams matching records of `dir` to `each`; see the [module docs](self).
///
/// Without a key, a partial last line (a crash not yet recovered) is
/// skipped: it holds no complete record. With a key it is reported as
/// [`QueryError::Tampered`], as `verify` would.
pub fn query(
    dir: &Path,
    filter: &Filter,
    key: Option<&AuditKey>,
    mut each: impl FnMut(QueriedRecord) -> ControlFlow<()>,
) -> Result<(), QueryError> {
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| QueryError::Io { path, source }
    };
    // A trail cut by retention begins at its base (checked against the
    // retirement record only by `verify`); segments before it are retired.
    let base = RetentionBase::load(dir).map_err(|e| match e {
        BaseError::Io(source) => QueryError::Io {
            path: dir.join(BASE_FILE),
            source,
        },
        BaseError::Invalid(detail) => QueryError::Tampered(Box::new(Finding {
            kind: FindingKind::RetirementInvalid,
            segment: dir.join(BASE_FILE),
            line: 0,
            offset: 0,
            expected_seq: 1,
            detail,
        })),
    })?;
    let kept_from = base.as_ref().map_or(1, RetentionBase::first_kept_seq);
    let mut chain = match key {
        None => None,
        Some(key) => Some(Chain::after(key, base.as_ref()).map_err(|detail| {
            QueryError::Tampered(Box::new(Finding {
                kind: FindingKind::RetirementInvalid,
                segment: dir.join(BASE_FILE),
                line: 0,
                offset: 0,
                expected_seq: kept_from,
                detail,
            }))
        })?),
    };
    let mut buf = Vec::new();
    let segments = list_segments(dir).map_err(io_at(dir))?;
    for (promised, path) in segments
        .into_iter()
        .filter(|(first, _)| *first >= kept_from)
    {
        let file = fs::open_read(&path).map_err(io_at(&path))?;
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, file));
        let mut first_in_segment = true;
        while let Some(info) = lines.next_line(&mut buf).map_err(io_at(&path))? {
            let rec = match chain.as_mut() {
                Some(chain) => chain
                    .check(&buf, info, promised, first_in_segment, &path)
                    .map_err(|f| QueryError::Tampered(Box::new(f)))?,
                // Without a key, a partial last line holds no record to show.
                None if !info.terminated => break,
                None => RawRecord::parse(&buf).map_err(|source| QueryError::Decode {
                    path: path.clone(),
                    line: info.number,
                    source,
                })?,
            };
            first_in_segment = false;
            let event = rec.event().map_err(|source| QueryError::Decode {
                path: path.clone(),
                line: info.number,
                source,
            })?;
            if !filter.matches(&event) {
                continue;
            }
            let record = QueriedRecord {
                seq: rec.seq,
                written_at: rec.ts,
                event_type: event.event_type(),
                severity: event.severity(),
                event,
            };
            if each(record).is_break() {
                return Ok(());
            }
        }
        if first_in_segment && let Some(chain) = &chain {
            chain
                .check_empty_segment(promised, &path)
                .map_err(|f| QueryError::Tampered(Box::new(f)))?;
        }
    }
    Ok(())
}

/// Every event in `dir`, in log order, unauthenticated. Convenient in tests
/// and small tools; use [`query`] for large logs.
pub fn read_events(dir: &Path) -> Result<Vec<AuditEvent>, QueryError> {
    let mut events = Vec::new();
    query(dir, &Filter::default(), None, |r| {
        events.push(r.event);
        ControlFlow::Continue(())
    })?;
    Ok(events)
}
