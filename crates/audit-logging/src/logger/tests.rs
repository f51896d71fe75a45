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
