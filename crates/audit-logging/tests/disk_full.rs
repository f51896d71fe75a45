//! A disk that refuses writes (simulated with `RLIMIT_FSIZE`): the writer
//! leaves no partial record behind, keeps what it could not write, reports
//! the condition, and writes it all, once and in order, when the disk takes
//! writes again.
//!
//! The file size limit applies to the whole process, so this is the only
//! test in its binary, and the limit is lifted again before any assertion.
//! `small_fs.rs` does the same on a real, full file system.

mod common;

use std::fs;

use audit_logging::{
    AuditLogger, EmitError, FlushError, Health, LoggerConfig, QueueBound, segment_name,
};
use common::{assert_intact, key, tag_counts, tagged};
/// Runs `f` with writes past `bytes` in any file refused with `EFBIG`.
fn with_file_size_limit<T>(bytes: u64, f: impl FnOnce() -> T) -> T {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid, writable rlimit for the call to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) }, 0);
    // SAFETY: ignoring SIGXFSZ makes an oversized write fail with EFBIG
    // instead of killing the process; no handler code runs.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let limited = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `limited` is a valid rlimit; lowering the soft limit is
    // always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limited) }, 0);
    let out = f();
    // SAFETY: restores the limit read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &old) }, 0);
    out
}

#[test]
fn a_refused_write_leaves_no_partial_record_and_is_written_once_when_room_returns() {
    const QUEUE: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    // No share reserved for critical events: the test's events are routine.
    let config = LoggerConfig::new(dir.path())
        .queue_capacity(QUEUE)
        .critical_reserve(0);
    let logger = AuditLogger::open(config, key()).unwrap();
    for i in 0..5 {
        logger.emit_sync(tagged(&format!("kept-{i}"), i)).unwrap();
    }
    logger.flush().unwrap();
    let seg = dir.path().join(segment_name(1));
    let kept_len = fs::metadata(&seg).unwrap().len();
    let kept_bytes = fs::read(&seg).unwrap();

    // Room for 100 more bytes: the OS writes that much of the next record
    // and refuses the rest.
    let (flushed, emitted, durable, health, len_while_full) =
        with_file_size_limit(kept_len + 100, || {
            logger.emit_sync(tagged("refused", 0)).unwrap();
            let flushed = logger.flush();
            // The writer takes nothing more: the queue fills, then refuses.
            let emitted: Vec<_> = (0..QUEUE as u64 + 1)
                .map(|i| logger.emit_sync(tagged(&format!("queued-{i}"), i)))
                .collect();
            let durable = logger.emit_durable_sync(tagged("durable", 2));
            let health = logger.health();
            let len = fs::metadata(&seg).unwrap().len();
            (flushed, emitted, durable, health, len)
        });
    let Err(FlushError::Degraded(why)) = flushed else {
        panic!("flush after a refused write returned {flushed:?}");
    };
    assert!(why.contains("too large"), "{why}");
    // Emits that do not wait are queued while there is room; a durable one
    // is told at once.
    assert!(emitted[..QUEUE].iter().all(Result::is_ok), "{emitted:?}");
    assert_eq!(
        emitted[QUEUE],
        Err(EmitError::BufferFull {
            bound: QueueBound::Events,
            limit: QUEUE
        })
    );
    assert_eq!(logger.stats().dropped_full, 1);
    assert!(
        matches!(durable, Err(EmitError::Degraded(_))),
        "{durable:?}"
    );
    assert!(matches!(health, Health::Degraded { .. }), "{health:?}");
    assert!(logger.stats().write_errors >= 1);
    // The part of the refused record that reached the segment was cut off
    // again, and what was written before is untouched.
    assert_eq!(len_while_full, kept_len);
    assert_eq!(fs::read(&seg).unwrap()[..kept_len as usize], kept_bytes[..]);

    // Room again: a flush retries, and everything is written, once.
    logger.flush().unwrap();
    assert_eq!(logger.health(), Health::Ok);
    logger.emit_durable_sync(tagged("after", 3)).unwrap();
    logger.shutdown().unwrap();
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.torn_tails_recovered, 0);
    let tags = tag_counts(dir.path());
    // The five, the refused one, the queued ones and the last.
    assert_eq!(tags.len(), 5 + 1 + QUEUE + 1, "{tags:?}");
    assert!(tags.values().all(|&n| n == 1), "{tags:?}");
    assert!(
        !tags.contains_key("durable"),
        "refused at the call: never queued"
    );
}
