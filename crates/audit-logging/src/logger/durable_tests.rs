//! Durable emits: receipts, group commit and errors.

use std::collections::HashMap;

use super::*;
use crate::ack::tests::block_on;
use crate::event::samples;
use crate::record::{RawRecord, line_hash};
use crate::writer::MAX_BATCH;

fn event() -> AuditEvent {
    samples::all().remove(0)
}

fn open(dir: &Path) -> (AuditLogger, AuditKey) {
    let key = AuditKey::generate().unwrap();
    let logger = AuditLogger::open(LoggerConfig::new(dir), key.clone()).unwrap();
    (logger, key)
}

/// Every record on disk: its sequence number, line hash and `prev`.
fn records_on_disk(dir: &Path) -> HashMap<u64, ([u8; 32], [u8; 32])> {
    let mut records = HashMap::new();
    for (_, path) in crate::list_segments(dir).unwrap() {
        let bytes = std::fs::read(path).unwrap();
        // Whole lines only: the writer may be in the middle of the next
        // batch (a shutdown's stop record, say) while this reads.
        for line in bytes
            .split_inclusive(|&b| b == b'\n')
            .filter_map(|l| l.strip_suffix(b"\n"))
        {
            let record = RawRecord::parse(line).unwrap();
            records.insert(record.seq, (line_hash(line), record.prev));
        }
    }
    records
}

fn assert_on_disk(dir: &Path, receipt: Receipt) {
    let records = records_on_disk(dir);
    let (hash, _) = records
        .get(&receipt.seq)
        .unwrap_or_else(|| panic!("record {} is not on disk", receipt.seq));
    assert_eq!(*hash, receipt.record_hash, "record {}", receipt.seq);
}

/// A logger whose writer is built but not started, so that emits queue up
/// deterministically before it runs. `prepare` may break the store first.
fn held(dir: &Path, prepare: impl FnOnce(&mut Store)) -> (Arc<AuditLogger>, Writer) {
    let config = LoggerConfig::new(dir);
    let key = AuditKey::generate().unwrap();
    let (mut store, shared, _) = start_chain(&config, Some(&key)).unwrap();
    prepare(&mut store);
    let (events, events_rx) = crossbeam_channel::unbounded();
    let (control, control_rx) = crossbeam_channel::unbounded();
    let writer = Writer::new(store, events_rx, control_rx, Arc::clone(&shared));
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
    (Arc::new(logger), writer)
}

/// Starts `writer` for `logger`, which then shuts it down as usual.
fn release(logger: &AuditLogger, writer: Writer) {
    // The lock is held from before the writer runs, so that a shutdown it
    // answers at once still finds the handle to join.
    let active = logger.inner.as_ref().unwrap();
    let mut handle = active.writer.lock().unwrap();
    *handle = Some(std::thread::spawn(move || writer.run()));
}

/// Starts `n` threads that each emit one event durably, and returns once
/// all `n` events are queued (the writer is held, so none is answered yet).
fn queue_durable_emits(
    logger: &Arc<AuditLogger>,
    n: u64,
) -> Vec<std::thread::JoinHandle<Result<Receipt, EmitError>>> {
    let threads = (0..n)
        .map(|_| {
            let logger = Arc::clone(logger);
            std::thread::spawn(move || logger.emit_durable_sync(event()))
        })
        .collect();
    while logger.stats().accepted < n {
        std::thread::yield_now();
    }
    threads
}

#[test]
fn a_durable_emit_returns_after_its_record_is_written_and_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, key) = open(dir.path());
    let fsyncs_before = logger.stats().fsyncs;

    let receipt = logger.emit_durable_sync(event()).unwrap();
    // Read straight away, with no flush in between.
    assert_on_disk(dir.path(), receipt);
    assert_eq!(receipt.seq, 2, "the start record is 1");
    assert_eq!(logger.stats().fsyncs, fsyncs_before + 1);

    // The receipt is what the next record links to.
    let next = logger.emit_durable_sync(event()).unwrap();
    assert_eq!(next.seq, receipt.seq + 1);
    let (_, prev) = records_on_disk(dir.path())[&next.seq];
    assert_eq!(prev, receipt.record_hash);
    assert_eq!(receipt.record_hash_hex(), hex::encode(prev));

    logger.shutdown().unwrap();
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn many_threads_get_distinct_receipts_that_match_the_records() {
    const THREADS: usize = 16;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let (logger, key) = open(dir.path());
    let logger = Arc::new(logger);

    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let logger = Arc::clone(&logger);
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|_| logger.emit_durable_sync(event()).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts: Vec<Receipt> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let records = records_on_disk(dir.path());
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        THREADS * EACH,
        "receipts share a sequence number"
    );
    for r in &receipts {
        assert_eq!(records[&r.seq].0, r.record_hash, "record {}", r.seq);
    }
    logger.shutdown().unwrap();
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn concurrent_durable_emits_share_one_fsync() {
    const N: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    let (logger, writer) = held(dir.path(), |_| {});
    let threads = queue_durable_emits(&logger, N);

    release(&logger, writer);
    let receipts: Vec<Receipt> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    // All sixteen were queued before the writer ran: one batch, one fsync.
    assert_eq!(logger.stats().fsyncs, 1, "{N} durable emits");
    for r in receipts {
        assert_on_disk(dir.path(), r);
    }
    logger.shutdown().unwrap();
}

#[test]
fn a_refused_write_is_reported_to_every_waiting_durable_emit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (logger, writer) = held(dir.path(), |store| {
        crate::store::tests::break_writes(store, &path);
    });
    let threads = queue_durable_emits(&logger, 4);

    release(&logger, writer);
    for t in threads {
        assert!(
            matches!(t.join().unwrap(), Err(EmitError::Degraded(_))),
            "a durable emit returned without its record on disk"
        );
    }
    assert!(matches!(logger.health(), Health::Degraded { .. }));
    // Later durable emits are refused at once, sync or async; others are
    // queued while there is room.
    assert!(matches!(
        logger.emit_durable_sync(event()),
        Err(EmitError::Degraded(_))
    ));
    assert!(matches!(
        block_on(logger.emit_durable(event())),
        Err(EmitError::Degraded(_))
    ));
    logger.emit_sync(event()).unwrap();
    assert_eq!(logger.stats().fsyncs, 0);
    // A disk that stays broken: shutdown gives up after its timeout and
    // counts what it could not write: the four and the one.
    assert!(matches!(logger.shutdown(), Err(FlushError::Degraded(_))));
    assert_eq!(logger.stats().failed, 5);
}

/// Regression: a durable emit whose event was still in the queue when the
/// writer stopped taking events (it could not write) waited until the disk
/// took writes again, or until shutdown, instead of failing fast.
#[test]
fn a_durable_emit_still_queued_when_writes_are_refused_is_told_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (logger, writer) = held(dir.path(), |store| {
        crate::store::tests::break_writes(store, &path);
    });
    // More than one batch ahead of them: the writer takes the first batch,
    // cannot write it, and leaves the rest, durable emits included, queued.
    let ahead = MAX_BATCH as u64 + 10;
    for _ in 0..ahead {
        logger.emit_sync(event()).unwrap();
    }
    let (answers_tx, answers) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let logger = Arc::clone(&logger);
        let answers_tx = answers_tx.clone();
        std::thread::spawn(move || answers_tx.send(logger.emit_durable_sync(event())));
    }
    while logger.stats().accepted < ahead + 2 {
        std::thread::yield_now();
    }

    release(&logger, writer);
    for _ in 0..2 {
        // Far longer than any answer takes; a wait that long means the
        // emit would have waited for the disk.
        let answer = answers
            .recv_timeout(Duration::from_secs(60))
            .expect("a durable emit still waits on a disk that refuses writes");
        assert!(matches!(answer, Err(EmitError::Degraded(_))), "{answer:?}");
    }
}

#[test]
fn a_durable_emit_after_shutdown_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, _) = open(dir.path());
    logger.shutdown().unwrap();
    assert_eq!(logger.emit_durable_sync(event()), Err(EmitError::Closed));
    assert_eq!(
        block_on(logger.emit_durable(event())),
        Err(EmitError::Closed)
    );
}

#[test]
fn a_durable_emit_to_a_full_queue_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, _writer) = held(dir.path(), |_| {});
    // Routine events may fill the queue up to the critical reserve.
    let routine =
        DEFAULT_QUEUE_CAPACITY * usize::from(100 - DEFAULT_CRITICAL_RESERVE_PERCENT) / 100;
    for _ in 0..routine {
        logger.emit_sync(event()).unwrap();
    }
    // A waiting emit would hang here: the writer never runs.
    assert_eq!(
        logger.emit_durable_sync(event()),
        Err(EmitError::BufferFull {
            bound: QueueBound::Events,
            limit: routine
        })
    );
    assert_eq!(logger.stats().dropped_full, 1);
}

#[test]
fn the_async_form_needs_no_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, _) = open(dir.path());
    let receipt = block_on(logger.emit_durable(event())).unwrap();
    assert_on_disk(dir.path(), receipt);
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_form_works_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, _) = open(dir.path());
    let logger = Arc::new(logger);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let logger = Arc::clone(&logger);
            tokio::spawn(async move { logger.emit_durable(event()).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        let receipt = task.await.unwrap().unwrap();
        assert_on_disk(dir.path(), receipt);
        seqs.push(receipt.seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_form_works_on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, key) = open(dir.path());
    let logger = Arc::new(logger);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let logger = Arc::clone(&logger);
            tokio::spawn(async move { logger.emit_durable(event()).await })
        })
        .collect();
    let mut receipts = Vec::new();
    for task in tasks {
        receipts.push(task.await.unwrap().unwrap());
    }
    let records = records_on_disk(dir.path());
    for r in &receipts {
        assert_eq!(records[&r.seq].0, r.record_hash);
    }
    logger.shutdown().unwrap();
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn a_disabled_logger_returns_the_empty_receipt() {
    let logger = AuditLogger::disabled();
    assert_eq!(logger.emit_durable_sync(event()), Ok(Receipt::NONE));
    assert_eq!(block_on(logger.emit_durable(event())), Ok(Receipt::NONE));
}

#[test]
fn durable_emits_queued_before_shutdown_are_written_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (logger, writer) = held(dir.path(), |_| {});
    let threads = queue_durable_emits(&logger, 8);

    // The shutdown request is waiting before the writer starts.
    let closer = {
        let logger = Arc::clone(&logger);
        std::thread::spawn(move || logger.shutdown())
    };
    while logger.emit_sync(event()) != Err(EmitError::Closed) {
        std::thread::yield_now();
    }
    release(&logger, writer);
    for t in threads {
        assert_on_disk(dir.path(), t.join().unwrap().unwrap());
    }
    closer.join().unwrap().unwrap();
}
