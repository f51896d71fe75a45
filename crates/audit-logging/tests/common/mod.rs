//! Helpers shared by the integration tests: writing real logs with the real
//! logger, reading their segment files back line by line, copying a log so
//! each tamper starts from the same pristine files, and tagging events so a
//! test can find every one of them again.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod note_spec;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use audit_logging::verify::{Finding, FindingKind};
use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig, VerifyReport, query};
use chrono::Utc;

/// A fixed key, so a failing test can be replayed byte for byte.
pub fn key() -> AuditKey {
    AuditKey::from_bytes([0x5e; 32])
}

/// A key that did not write any log in these tests.
pub fn other_key() -> AuditKey {
    AuditKey::from_bytes([0xa7; 32])
}

/// Opens a logger with default settings on `dir`.
pub fn open(dir: &Path, key: &AuditKey) -> AuditLogger {
    AuditLogger::open(LoggerConfig::new(dir), key.clone()).unwrap()
}

/// An event that carries `tag` in two places: its task id (text) and its
/// input size (a number), so it can be found and told apart after a round
/// trip through the log.
pub fn tagged(tag: &str, n: u64) -> AuditEvent {
    AuditEvent::TaskSubmitted {
        timestamp: Utc::now(),
        actor: "tester".into(),
        task_id: tag.into(),
        model_ref: "minilm".into(),
        input_bytes: n,
    }
}

/// The task id of an event written by [`tagged`], if it is one.
pub fn tag_of(event: &AuditEvent) -> Option<String> {
    match event {
        AuditEvent::TaskSubmitted { task_id, .. } => Some(task_id.as_str().to_owned()),
        _ => None,
    }
}

/// How many times each tag occurs in the log in `dir`.
pub fn tag_counts(dir: &Path) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for event in query::read_events(dir).unwrap() {
        if let Some(tag) = tag_of(&event) {
            *counts.entry(tag).or_insert(0) += 1;
        }
    }
    counts
}

/// Writes a log of `events` tagged events (`e0`, `e1`, ...) with the real
/// logger and shuts it down. Returns the last sequence number.
///
/// The log holds `events + 2` records (the start record, the events, the
/// stop record) and one `audit.segment_closed` manifest opening each
/// segment after the first.
pub fn write_log(dir: &Path, key: &AuditKey, events: u64, max_segment_bytes: u64) -> u64 {
    let config = LoggerConfig::new(dir).max_segment_bytes(max_segment_bytes);
    let logger = AuditLogger::open(config, key.clone()).unwrap();
    for i in 0..events {
        logger.emit_sync(tagged(&format!("e{i}"), i)).unwrap();
    }
    let report = logger.shutdown().unwrap();
    let manifests = segments(dir).len() as u64 - 1;
    assert_eq!(report.last_seq, events + 2 + manifests);
    report.last_seq
}

/// The segment files of `dir`, in log order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    audit_logging::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// One record line of a log, located.
#[derive(Debug, Clone)]
pub struct Located {
    /// The segment file.
    pub segment: PathBuf,
    /// 1-based line in the segment.
    pub line: u64,
    /// Byte offset of the line in the segment.
    pub offset: u64,
    /// Sequence number (records are numbered from 1 in log order).
    pub seq: u64,
    /// The line without its newline.
    pub bytes: Vec<u8>,
}

/// Every line of every segment of `dir`, in log order. Panics on a segment
/// that does not end with a newline: callers use it on clean logs.
pub fn records(dir: &Path) -> Vec<Located> {
    let mut out = Vec::new();
    for segment in segments(dir) {
        let data = fs::read(&segment).unwrap();
        assert!(data.is_empty() || data.ends_with(b"\n"), "{segment:?}");
        let mut offset = 0u64;
        for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
            out.push(Located {
                segment: segment.clone(),
                line: i as u64 + 1,
                offset,
                seq: out.len() as u64 + 1,
                bytes: line[..line.len() - 1].to_vec(),
            });
            offset += line.len() as u64;
        }
    }
    out
}

/// Copies every file of `from` into a fresh temporary directory, keeping
/// file names and owner-only modes.
pub fn copy_log(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

/// The path of the same file name in another directory.
pub fn rebase(path: &Path, dir: &Path) -> PathBuf {
    dir.join(path.file_name().unwrap())
}

/// Appends `bytes` to the file at `path`, creating it with mode `0600` if
/// needed.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Verifies `dir` and returns the report.
pub fn verify(dir: &Path, key: &AuditKey) -> VerifyReport {
    audit_logging::verify_dir(dir, key).unwrap()
}

/// Verifies `dir`, asserts it is intact and returns the report.
pub fn assert_intact(dir: &Path, key: &AuditKey) -> VerifyReport {
    let report = verify(dir, key);
    assert!(report.is_intact(), "{}", report.finding.unwrap());
    report
}

/// Verifies `dir` and returns its finding, failing if there is none.
pub fn finding(dir: &Path, key: &AuditKey) -> Finding {
    verify(dir, key)
        .finding
        .unwrap_or_else(|| panic!("verify found nothing wrong in {}", dir.display()))
}

/// Asserts that `f` is of `kind` and names the record `at` (same segment
/// file name, line, offset and sequence number).
#[track_caller]
pub fn assert_finding_at(f: &Finding, kind: FindingKind, at: &Located) {
    assert_eq!(
        (
            f.kind,
            f.segment.file_name(),
            f.line,
            f.offset,
            f.expected_seq
        ),
        (kind, at.segment.file_name(), at.line, at.offset, at.seq),
        "finding: {f}"
    );
}
