//! A disk that refuses writes (simulated with `RLIMIT_FSIZE`): the error
//! surfaces to every caller, records already written stay intact, and the
//! next start recovers the partial write as a torn tail.
//!
//! The file size limit applies to the whole process, so this is the only
//! test in its binary, and the limit is lifted again before any assertion.

mod common;

use std::fs;

use audit_logging::verify::FindingKind;
use audit_logging::{EmitError, FlushError, segment_name};
use common::{assert_intact, finding, key, open, tag_counts, tagged};

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
fn a_refused_write_surfaces_everywhere_and_the_log_recovers_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logger = open(dir.path(), &key());
    for i in 0..5 {
        logger.emit_sync(tagged(&format!("kept-{i}"), i)).unwrap();
    }
    logger.flush().unwrap();
    let seg = dir.path().join(segment_name(1));
    let kept_len = fs::metadata(&seg).unwrap().len();

    // Room for 100 more bytes: the next record is cut short on disk.
    let flushed = with_file_size_limit(kept_len + 100, || {
        logger.emit_sync(tagged("lost", 0)).unwrap();
        logger.flush()
    });
    let Err(FlushError::WriterFailed(why)) = flushed else {
        panic!("flush after a refused write returned {flushed:?}");
    };
    assert!(why.contains("too large"), "{why}");

    // The error is sticky and reaches every caller.
    assert!(matches!(
        logger.emit_sync(tagged("after", 0)),
        Err(EmitError::WriterFailed(_))
    ));
    assert!(matches!(logger.flush(), Err(FlushError::WriterFailed(_))));
    assert!(matches!(
        logger.shutdown(),
        Err(FlushError::WriterFailed(_))
    ));

    // What was written before is untouched; the cut record is reported.
    assert_eq!(fs::metadata(&seg).unwrap().len(), kept_len + 100);
    let f = finding(dir.path(), &key());
    assert_eq!(
        (f.kind, f.line, f.offset),
        (FindingKind::Truncated, 7, kept_len)
    );

    // A new start recovers it, and every event written before is there.
    open(dir.path(), &key()).shutdown().unwrap();
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.torn_tails_recovered, 1);
    let tags = tag_counts(dir.path());
    assert_eq!(tags.len(), 5, "{tags:?}");
    assert!((0..5).all(|i| tags[&format!("kept-{i}")] == 1));
}
