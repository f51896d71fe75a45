//! Restarts: a second logger on the same directory continues the chain and
//! says so, and `flush` puts records on disk before any shutdown.

mod common;

use std::ops::ControlFlow;

use audit_logging::query::{self, Filter};
use audit_logging::{AuditEvent, AuditLogger, LoggerConfig, OpenError};
use common::{assert_intact, copy_log, key, open, other_key, tag_counts, tagged, write_log};

/// `(seq, event)` of every record in `dir`, authenticated under the test key.
fn seq_events(dir: &std::path::Path) -> Vec<(u64, AuditEvent)> {
    let mut out = Vec::new();
    query::query(dir, &Filter::default(), Some(&key()), |r| {
        out.push((r.seq, r.event));
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

/// The `resumed_after_seq` of every start record, in log order, with the
/// start record's own sequence number.
fn starts(dir: &std::path::Path) -> Vec<(u64, Option<u64>)> {
    seq_events(dir)
        .into_iter()
        .filter_map(|(seq, e)| match e {
            AuditEvent::LoggerStarted {
                resumed_after_seq, ..
            } => Some((seq, resumed_after_seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn second_logger_continues_the_sequence_and_records_where_it_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let first_last = write_log(dir.path(), &key(), 5, u64::MAX);
    assert_eq!(first_last, 7);

    let logger = open(dir.path(), &key());
    logger.emit_sync(tagged("after-restart", 0)).unwrap();
    let report = logger.shutdown().unwrap();
    assert_eq!(report.last_seq, 10, "start, one event, stop after record 7");

    assert_eq!(starts(dir.path()), [(1, None), (8, Some(7))]);
    let seqs: Vec<u64> = seq_events(dir.path()).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let verified = assert_intact(dir.path(), &key());
    assert_eq!((verified.records, verified.last_seq), (10, 10));
    assert_eq!(verified.logger_starts, 2);
    assert_eq!(verified.torn_tails_recovered, 0);
}

#[test]
fn many_restarts_across_rotating_segments_keep_one_verifiable_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_tags = Vec::new();
    let mut ends = Vec::new();
    for run in 0..4 {
        let config = LoggerConfig::new(dir.path()).max_segment_bytes(1500);
        let logger = AuditLogger::open(config, key()).unwrap();
        for i in 0..3 {
            let tag = format!("run{run}-{i}");
            logger.emit_sync(tagged(&tag, i)).unwrap();
            expected_tags.push(tag);
        }
        ends.push(logger.shutdown().unwrap().last_seq);
    }
    let segments = common::segments(dir.path()).len() as u64;
    assert!(segments > 3, "segments rotated");
    let verified = assert_intact(dir.path(), &key());
    // Five records a run, and a manifest opening each later segment.
    assert_eq!(verified.records, 4 * 5 + segments - 1);
    assert_eq!(verified.last_seq, ends[3]);
    assert_eq!(verified.logger_starts, 4);
    let starts = starts(dir.path());
    assert_eq!(starts[0], (1, None));
    for (run, &(seq, resumed_after)) in starts.iter().enumerate().skip(1) {
        let before = ends[run - 1];
        assert_eq!(resumed_after, Some(before));
        // Right after the last run's stop, or after a manifest.
        assert!(seq == before + 1 || seq == before + 2, "{starts:?}");
    }
    let counts = tag_counts(dir.path());
    assert_eq!(counts.len(), expected_tags.len());
    assert!(expected_tags.iter().all(|t| counts[t] == 1));
}

#[test]
fn flush_makes_every_accepted_event_readable_and_verifiable_before_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let logger = open(dir.path(), &key());
    for i in 0..50 {
        logger.emit_sync(tagged(&format!("f{i}"), i)).unwrap();
    }
    logger.flush().unwrap();

    // The logger is still running; the disk already has every record.
    let events = query::read_events(dir.path()).unwrap();
    assert_eq!(events.len(), 51, "start record and 50 events");
    assert_eq!(tag_counts(dir.path()).len(), 50);
    let verified = assert_intact(dir.path(), &key());
    assert_eq!(verified.last_seq, 51);

    // And again after more events: flush is not a one-off.
    logger.emit_sync(tagged("f-late", 0)).unwrap();
    logger.flush().unwrap();
    assert_eq!(assert_intact(dir.path(), &key()).last_seq, 52);
    logger.shutdown().unwrap();
}

#[test]
fn a_crash_after_flush_loses_nothing_flushed_and_the_next_start_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let logger = open(dir.path(), &key());
    for i in 0..10 {
        logger.emit_sync(tagged(&format!("c{i}"), i)).unwrap();
    }
    logger.flush().unwrap();
    // The files as a crash right now would leave them: no stop record.
    let crashed = copy_log(dir.path());
    logger.shutdown().unwrap();

    let restarted = open(crashed.path(), &key());
    restarted.emit_sync(tagged("after-crash", 0)).unwrap();
    restarted.shutdown().unwrap();

    assert_eq!(starts(crashed.path()), [(1, None), (12, Some(11))]);
    let stops = seq_events(crashed.path())
        .into_iter()
        .filter(|(_, e)| matches!(e, AuditEvent::LoggerStopped { .. }))
        .count();
    assert_eq!(stops, 1, "only the second logger stopped cleanly");
    assert_eq!(tag_counts(crashed.path()).len(), 11);
    assert_intact(crashed.path(), &key());
}

#[test]
fn dropping_the_logger_shuts_it_down_and_a_restart_resumes_after_the_stop_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let logger = open(dir.path(), &key());
        logger.emit_sync(tagged("before-drop", 0)).unwrap();
    }
    let events = query::read_events(dir.path()).unwrap();
    assert!(matches!(
        events.last(),
        Some(AuditEvent::LoggerStopped {
            records_written: 3,
            events_dropped: 0,
            ..
        })
    ));
    drop(open(dir.path(), &key()));
    assert_eq!(starts(dir.path()), [(1, None), (4, Some(3))]);
    assert_intact(dir.path(), &key());
}

#[test]
fn a_logger_with_another_key_refuses_to_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &key(), 2, u64::MAX);
    let err = AuditLogger::open(LoggerConfig::new(dir.path()), other_key()).unwrap_err();
    assert!(matches!(err, OpenError::ForeignTrail { .. }), "{err}");
    // Nothing was written by the refused logger.
    assert_eq!(assert_intact(dir.path(), &key()).last_seq, 4);
}

#[test]
fn two_loggers_cannot_write_one_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = audit_logging::AuditKey::generate().unwrap();
    let config = || audit_logging::LoggerConfig::new(dir.path());
    let first = audit_logging::AuditLogger::open(config(), key.clone()).unwrap();
    let second = audit_logging::AuditLogger::open(config(), key.clone());
    assert!(matches!(
        second,
        Err(audit_logging::OpenError::Locked { .. })
    ));
    first.shutdown().unwrap();
    let third = audit_logging::AuditLogger::open(config(), key.clone()).unwrap();
    third.shutdown().unwrap();
    assert!(
        audit_logging::verify_dir(dir.path(), &key)
            .unwrap()
            .is_intact()
    );
}

#[test]
fn a_newest_segment_replaced_by_a_link_or_a_fifo_is_refused_by_name() {
    for replacement in ["link", "fifo"] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &key(), 2, u64::MAX);
        let newest = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .max()
            .unwrap();
        let moved = dir.path().join("elsewhere");
        std::fs::rename(&newest, &moved).unwrap();
        if replacement == "link" {
            std::os::unix::fs::symlink(&moved, &newest).unwrap();
        } else {
            let name = std::ffi::CString::new(newest.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo with a valid C string.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        }
        let err = AuditLogger::open(LoggerConfig::new(dir.path()), key()).unwrap_err();
        let text = err.to_string();
        let named = if replacement == "link" {
            "never followed"
        } else {
            "not a regular file"
        };
        assert!(text.contains(named), "{replacement}: {text}");
    }
}

#[test]
fn a_writer_lock_that_is_a_symbolic_link_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &key(), 2, u64::MAX);
    let lock = dir.path().join("writer.lock");
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &lock).unwrap();
    let err = AuditLogger::open(LoggerConfig::new(dir.path()), key()).unwrap_err();
    // The bare ELOOP says "Too many levels of symbolic links"; the
    // explanation says what to do.
    assert!(err.to_string().contains("never followed"), "{err}");
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn starts_that_cannot_save_the_writer_key_never_leave_it_two_epochs_behind() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &key(), 2, u64::MAX);
    // A directory under the key's temporary name makes every save of
    // writer.key fail, as a full disk does.
    let blocker = dir.path().join("writer.key.tmp");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), b"x").unwrap();
    for _ in 0..3 {
        // Whether a start fails or runs, it must leave a trail that the
        // next start, with only the writer key, can continue.
        if let Ok(logger) = AuditLogger::resume(LoggerConfig::new(dir.path())) {
            let _ = logger.shutdown();
        }
    }
    std::fs::remove_dir_all(&blocker).unwrap();
    let logger = AuditLogger::resume(LoggerConfig::new(dir.path()))
        .unwrap_or_else(|e| panic!("the trail cannot be continued: {e}"));
    logger.shutdown().unwrap();
    assert_intact(dir.path(), &key());
}
