use super::*;
use crate::event::samples;

/// A logger whose writer never runs, so its queue fills deterministically.
fn paused(dir: &Path, capacity: usize) -> (AuditLogger, crossbeam_channel::Receiver<Queued>) {
    let config = LoggerConfig::new(dir).queue_capacity(capacity);
    paused_with(config, AuditKey::generate().unwrap())
}

pub(super) fn paused_with(
    config: LoggerConfig,
    key: AuditKey,
) -> (AuditLogger, crossbeam_channel::Receiver<Queued>) {
    let (_store, shared, _) = start_chain(&config, Some(&key)).unwrap();
    let (events, events_rx) = crossbeam_channel::unbounded();
    let (control, _control_rx) = crossbeam_channel::unbounded();
    let logger = AuditLogger {
        inner: Some(Active {
            dir: config.dir,
            fail_closed: config.fail_closed,
            events,
            control,
            shared,
            writer: Mutex::new(None),
        }),
    };
    (logger, events_rx)
}

/// Takes one event off a paused logger's queue, as the writer would,
/// giving back its room.
pub(super) fn take(logger: &AuditLogger, rx: &crossbeam_channel::Receiver<Queued>) -> Queued {
    let queued = rx.try_recv().unwrap();
    logger
        .inner
        .as_ref()
        .unwrap()
        .shared
        .unadmit(queued.json.len());
    queued
}

fn event() -> AuditEvent {
    samples::all().remove(0)
}

#[test]
fn full_queue_returns_buffer_full_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path())
        .queue_capacity(4)
        .critical_reserve(0);
    let (logger, _rx) = paused_with(config, AuditKey::generate().unwrap());
    for _ in 0..4 {
        logger.emit_sync(event()).unwrap();
    }
    // A blocking emit would hang here forever: the writer never runs.
    for _ in 0..1000 {
        assert_eq!(
            logger.emit_sync(event()),
            Err(EmitError::BufferFull {
                bound: QueueBound::Events,
                limit: 4
            })
        );
    }
    let stats = logger.stats();
    assert_eq!((stats.accepted, stats.dropped_full), (4, 1000));
    assert_eq!((stats.dropped_routine, stats.dropped()), (1000, 1000));
}

#[test]
fn dropped_events_give_their_sequence_numbers_back() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    crate::store::tests::write_log_ending_at(dir.path(), &key, u64::MAX - 3);
    let config = LoggerConfig::new(dir.path()).queue_capacity(1);
    let (logger, rx) = paused_with(config, key);

    // The start record took MAX - 2; MAX - 1 and MAX are left.
    logger.emit_sync(event()).unwrap();
    assert!(matches!(
        logger.emit_sync(event()),
        Err(EmitError::BufferFull { .. })
    ));
    take(&logger, &rx);
    // Had the dropped event kept its number, this one would be refused.
    logger.emit_sync(event()).unwrap();
    take(&logger, &rx);
    assert_eq!(logger.emit_sync(event()), Err(EmitError::SequenceExhausted));
}

#[test]
fn emit_after_shutdown_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let logger =
        AuditLogger::open(LoggerConfig::new(dir.path()), AuditKey::generate().unwrap()).unwrap();
    logger.shutdown().unwrap();
    assert_eq!(logger.emit_sync(event()), Err(EmitError::Closed));
    assert_eq!(logger.shutdown().unwrap_err(), FlushError::WriterGone);
}

#[test]
fn disabled_logger_accepts_everything_and_writes_nothing() {
    let logger = AuditLogger::disabled();
    for e in samples::all() {
        logger.emit_sync(e).unwrap();
    }
    logger.flush().unwrap();
    assert_eq!(logger.stats(), Stats::default());
    assert!(logger.dir().is_none());
}

#[test]
fn sequence_overflow_is_an_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    crate::store::tests::write_log_ending_at(dir.path(), &key, u64::MAX - 3);

    // The start record takes MAX - 2, leaving MAX - 1 and MAX for events.
    let logger = AuditLogger::open(LoggerConfig::new(dir.path()), key.clone()).unwrap();
    logger.emit_sync(event()).unwrap();
    logger.emit_sync(event()).unwrap();
    assert_eq!(logger.emit_sync(event()), Err(EmitError::SequenceExhausted));
    let report = logger.shutdown().unwrap();
    assert_eq!(
        report.last_seq,
        u64::MAX,
        "no stop record fits, and nothing wrapped"
    );

    let reopened = AuditLogger::open(LoggerConfig::new(dir.path()), key);
    assert!(
        matches!(reopened, Err(OpenError::SequenceExhausted { .. })),
        "{reopened:?}"
    );
}

/// Regression: an emit that had passed its open check while `shutdown` ran
/// could queue its event after the writer's final drain, so `emit_sync`
/// returned `Ok` for an event that was never written.
#[test]
fn shutdown_waits_for_an_emit_in_flight_before_the_final_drain() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, _rx) = paused(dir.path(), 4);
    let shared = Arc::clone(&logger.inner.as_ref().unwrap().shared);
    // An emit stands between its open check and its queueing.
    let in_flight = shared.begin_emit();
    assert_eq!(shared.check_open(), Ok(()));

    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let closer = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            shared.close();
            done_tx.send(()).unwrap();
        })
    };
    while shared.check_open().is_ok() {
        std::thread::yield_now();
    }
    // `close` has marked the logger closed; it must not return while the
    // emit is still in flight. Give it ample chance to return wrongly.
    for _ in 0..10_000 {
        std::thread::yield_now();
    }
    assert!(
        done_rx.try_recv().is_err(),
        "close returned with an emit in flight"
    );
    drop(in_flight);
    done_rx.recv().unwrap();
    closer.join().unwrap();
    assert_eq!(logger.emit_sync(event()), Err(EmitError::Closed));
}

fn auth_failure(reason: &str) -> AuditEvent {
    AuditEvent::AuthFailure {
        timestamp: Utc::now(),
        attempted_actor: "mallory".into(),
        method: "api-key".into(),
        source_ip: None,
        reason: reason.into(),
    }
}

/// A routine event of about 4 KiB: two text fields at the sanitizer's cap.
fn large_routine() -> AuditEvent {
    let long = "x".repeat(crate::MAX_TEXT_BYTES * 2);
    AuditEvent::AuthSuccess {
        timestamp: Utc::now(),
        actor: long.as_str().into(),
        method: long.as_str().into(),
        source_ip: None,
    }
}

fn queued(logger: &AuditLogger) -> (u32, u32) {
    logger.inner.as_ref().unwrap().shared.queued()
}

#[test]
fn routine_events_are_refused_at_the_byte_bound_and_critical_ones_still_fit() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path())
        .queue_capacity(1_000_000)
        .queue_bytes(MIN_QUEUE_BYTES);
    let (logger, _rx) = paused_with(config, AuditKey::generate().unwrap());
    let routine_bytes = MIN_QUEUE_BYTES * 3 / 4;
    let mut accepted = 0;
    let refused = loop {
        match logger.emit_sync(large_routine()) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(
        refused,
        EmitError::BufferFull {
            bound: QueueBound::Bytes,
            limit: routine_bytes
        }
    );
    let (events, bytes) = queued(&logger);
    assert_eq!(events, accepted);
    // Full in bytes: another event of about 4 KiB would not fit.
    assert!(bytes as usize <= routine_bytes, "{bytes}");
    assert!(
        bytes as usize + 2 * crate::MAX_TEXT_BYTES > routine_bytes,
        "{bytes}"
    );

    logger.emit_sync(auth_failure("in the reserve")).unwrap();
    let stats = logger.stats();
    assert_eq!((stats.dropped_bytes, stats.dropped_full), (1, 0));
    assert_eq!(stats.dropped_routine, 1);
}

#[test]
fn a_ten_megabyte_field_is_cut_before_the_event_is_counted_against_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, rx) = paused(dir.path(), 4);
    logger
        .emit_sync(auth_failure(&"\u{1b}".repeat(10 * 1024 * 1024)))
        .unwrap();
    let (_, bytes) = queued(&logger);
    // The escaped field is cut at MAX_TEXT_BYTES; the rest is a few fields.
    assert!(bytes as usize <= crate::MAX_TEXT_BYTES + 1024, "{bytes}");
    assert_eq!(take(&logger, &rx).json.len(), bytes as usize);
    assert_eq!(queued(&logger), (0, 0), "room given back in full");
}

#[test]
fn critical_events_use_the_reserve_that_routine_events_cannot() {
    let dir = tempfile::tempdir().unwrap();
    // 8 events, a quarter (2) reserved.
    let (logger, _rx) = paused(dir.path(), 8);
    for _ in 0..6 {
        logger.emit_sync(event()).unwrap();
    }
    assert_eq!(
        logger.emit_sync(event()),
        Err(EmitError::BufferFull {
            bound: QueueBound::Events,
            limit: 6
        })
    );
    logger.emit_sync(auth_failure("one")).unwrap();
    logger.emit_sync(auth_failure("two")).unwrap();
    assert_eq!(
        logger.emit_sync(auth_failure("three")),
        Err(EmitError::BufferFull {
            bound: QueueBound::Events,
            limit: 8
        }),
        "not fail-closed: a refused critical event is an ordinary drop"
    );
    let stats = logger.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.dropped_routine,
            stats.dropped_critical
        ),
        (8, 1, 1)
    );
}

#[test]
fn a_fail_closed_logger_refuses_a_critical_event_with_an_error_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggerConfig::new(dir.path())
        .queue_capacity(2)
        .critical_reserve(0)
        .fail_closed(true);
    let (logger, _rx) = paused_with(config, AuditKey::generate().unwrap());
    logger.emit_sync(event()).unwrap();
    logger.emit_sync(auth_failure("fits")).unwrap();
    assert_eq!(
        logger.emit_sync(event()),
        Err(EmitError::BufferFull {
            bound: QueueBound::Events,
            limit: 2
        }),
        "routine events are dropped as before"
    );
    let refused = logger.emit_sync(auth_failure("no room")).unwrap_err();
    assert_eq!(
        refused,
        EmitError::CriticalRefused {
            event_type: "auth.failure",
            bound: QueueBound::Events,
            limit: 2
        }
    );
    assert!(refused.to_string().contains("not recorded"), "{refused}");
    // A durable emit is refused the same way.
    assert!(matches!(
        logger.emit_durable_sync(auth_failure("durable")),
        Err(EmitError::CriticalRefused { .. })
    ));
    let stats = logger.stats();
    assert_eq!((stats.dropped_routine, stats.dropped_critical), (1, 2));
}

#[test]
fn the_reserve_is_capped_so_routine_events_keep_half_the_queue() {
    let config = LoggerConfig::new("unused")
        .queue_capacity(10)
        .critical_reserve(100);
    assert_eq!(config.critical_reserve, MAX_CRITICAL_RESERVE_PERCENT);
    assert_eq!(
        config.limits(),
        queue::Limits::new(10, config.queue_bytes, 50)
    );
    assert_eq!(
        LoggerConfig::new("unused").queue_bytes(1).queue_bytes,
        MIN_QUEUE_BYTES
    );
}
