//! Reading events back, filtered.
//!
//! [`query`] streams the records of an audit directory in log order and
//! hands each one that matches a [`Filter`] to a callback, which may stop the
//! scan. Memory stays bounded whatever the size of the log.
//!
//! With a key, every record is authenticated first and a record that fails
//! stops the query with [`QueryError::NotAuthentic`]: what is printed was
//! written by the logger. Without a key the records are only parsed; run
//! [`verify_dir`](crate::verify_dir) to prove the log before trusting it.

use std::io::{self, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::record::{DecodeError, RawRecord};
use crate::store::lines::LineReader;
use crate::store::{fs, list_segments};
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
    /// A record does not authenticate under the key given.
    #[error("{path} line {line}: record {seq} does not authenticate; run `sealtrail verify`")]
    NotAuthentic {
        /// The segment.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The record's sequence number.
        seq: u64,
    },
}

/// Streams matching records of `dir` to `each`; see the [module docs](self).
///
/// A partial last line (a crash not yet recovered) is skipped: it holds no
/// complete record.
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
    let mut buf = Vec::new();
    for (_, path) in list_segments(dir).map_err(io_at(dir))? {
        let file = fs::open_read(&path).map_err(io_at(&path))?;
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, file));
        while let Some(info) = lines.next_line(&mut buf).map_err(io_at(&path))? {
            if !info.terminated {
                break;
            }
            let decode = |source| QueryError::Decode {
                path: path.clone(),
                line: info.number,
                source,
            };
            let rec = RawRecord::parse(&buf).map_err(decode)?;
            if key.is_some_and(|k| !rec.authenticate(k)) {
                return Err(QueryError::NotAuthentic {
                    path: path.clone(),
                    line: info.number,
                    seq: rec.seq,
                });
            }
            let event = rec.event().map_err(decode)?;
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
