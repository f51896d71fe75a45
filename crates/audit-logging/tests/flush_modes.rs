//! Flush modes against the real writer thread: the batched interval is a
//! timer, so a quiet tail is fsynced without another event, a flush or a
//! shutdown. (The modes' decisions themselves are unit-tested in the
//! writer with an injected clock.)

mod common;

use std::time::{Duration, Instant};

use audit_logging::{AuditLogger, FlushMode, LoggerConfig};
use common::{key, tagged};

/// Generous: the timer is 50 ms; only a machine stalled for this long could
/// fail the test without a bug.
const PATIENCE: Duration = Duration::from_secs(60);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_quiet_tail_is_fsynced_by_the_timer_not_by_the_next_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path()).flush_mode(FlushMode::Batched {
        max_events: u64::MAX,
        max_interval: Duration::from_millis(50),
    });
    let logger = AuditLogger::open(config, key()).unwrap();
    let before = logger.stats();
    logger.emit_sync(tagged("tail", 0)).unwrap();
    // Nothing else is emitted, flushed or shut down while we wait.
    wait_for("the fsync of the tail", || {
        logger.stats().fsyncs > before.fsyncs
    });
    let stats = logger.stats();
    assert_eq!(stats.written, before.written + 1);
    assert_eq!(stats.fsyncs, before.fsyncs + 1, "one fsync for one tail");
    logger.shutdown().unwrap();
}

#[test]
fn batched_with_a_long_interval_leaves_routine_records_to_flush() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path()).flush_mode(FlushMode::Batched {
        max_events: u64::MAX,
        max_interval: Duration::from_secs(3600),
    });
    let logger = AuditLogger::open(config, key()).unwrap();
    let before = logger.stats();
    for i in 0..10 {
        logger.emit_sync(tagged(&format!("e{i}"), i)).unwrap();
    }
    wait_for("the writes", || {
        logger.stats().written == before.written + 10
    });
    assert_eq!(logger.stats().fsyncs, before.fsyncs, "fsynced early");
    logger.flush().unwrap();
    assert_eq!(logger.stats().fsyncs, before.fsyncs + 1);
    logger.shutdown().unwrap();
}
