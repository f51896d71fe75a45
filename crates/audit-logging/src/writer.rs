//! The dedicated writer thread and the state it shares with emitters.
//!
//! The writer takes events from the queue in batches of up to
//! [`MAX_BATCH`], giving back each event's room in the queue's bounds
//! ([`queue`](crate::logger::queue)) as it takes it, appends them to the
//! store and hands each batch to the OS in one write. Before the first
//! record of a batch, and whenever its queue is empty, it writes the
//! refusals counted since the last time as an `audit.events_dropped`
//! record. Flush and shutdown requests arrive on a separate, unbounded
//! control channel so they never compete with events for queue room; before
//! answering one, the writer drains the event queue, which holds every event
//! whose emit returned before the request was made, and writes the
//! refusals counted so far.
//!
//! When a batch is fsynced is the [`FlushMode`]'s decision: at once, after
//! enough records, or when the oldest unsynced record has waited the mode's
//! interval, which is the timeout of the writer's wait for work, so a quiet
//! tail is fsynced on time. In every mode, a batch that holds a durable
//! emit's event is fsynced as soon as it is written, and then every durable
//! emit in it is acknowledged with its
//! [`Receipt`]: one fsync for however many durable emits arrived together
//! (group commit). While that fsync runs, further emits queue up and form
//! the next batch, so the more emitters wait, the more each fsync carries.
//!
//! An I/O error is sticky: the writer records it, stops writing (a partial
//! line is left for the next open to cut and record as a torn tail), and
//! every later emit, flush and shutdown reports it. Events still queued are
//! counted as failed, and every durable emit waiting on them, or on a batch
//! whose write or fsync failed, is answered with the error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, select};

use crate::ack::Ack;
use crate::logger::queue::{Admission, DropTally, Limits, QueueBound, Refusal};
use crate::logger::{FlushMode, Receipt, SeqBudget, Stats};
use crate::store::Store;
use crate::{AuditEvent, EmitError, FlushError};

/// Most events written per batch; bounds the time a flush request waits
/// behind a flood and the size of one write.
const MAX_BATCH: usize = 256;

/// How long the writer waits for work before checking whether an fsync is
/// due. Only affects idle wake-ups.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// One queued event: its JSON, whether it is critical (for
/// [`FlushMode::Hybrid`]) and, for a durable emit, whom to answer once its
/// record is fsynced.
pub(crate) struct Queued {
    pub json: String,
    pub ack: Option<Ack>,
    pub critical: bool,
}

impl Queued {
    /// A routine event nobody waits for.
    pub fn plain(json: String) -> Self {
        Queued {
            json,
            ack: None,
            critical: false,
        }
    }
}

/// A request that must be answered once its effect is durable.
pub(crate) enum Control {
    /// Answer once everything queued so far is fsynced.
    Flush(Sender<Result<(), FlushError>>),
    /// Write the stop record, fsync, answer with the last sequence number,
    /// and exit.
    Shutdown(Sender<Result<u64, FlushError>>),
}

/// State both sides read: the queue's admission, counters, the closed flag
/// and the sticky error.
#[derive(Debug)]
pub(crate) struct Shared {
    queue: Admission,
    drops: DropTally,
    pub accepted: AtomicU64,
    pub dropped_full: AtomicU64,
    dropped_bytes: AtomicU64,
    dropped_routine: AtomicU64,
    dropped_critical: AtomicU64,
    drop_records: AtomicU64,
    /// The last record the writer has written, for the drop records' gaps.
    head: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
    pub fsyncs: AtomicU64,
    closed: AtomicBool,
    /// Emits between their open check and the end of their queueing;
    /// [`close`](Self::close) waits for them, so no event is accepted after
    /// the writer's last drain.
    emitting: AtomicU64,
    broken: AtomicBool,
    error: Mutex<Option<String>>,
    seq: SeqBudget,
}

impl Shared {
    /// `last_seq` is the chain head after the opening records, of which
    /// there were `written`.
    pub fn new(last_seq: u64, written: u64) -> Self {
        Shared {
            queue: Admission::new(Limits::default()),
            drops: DropTally::default(),
            accepted: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            dropped_routine: AtomicU64::new(0),
            dropped_critical: AtomicU64::new(0),
            drop_records: AtomicU64::new(0),
            head: AtomicU64::new(last_seq),
            written: AtomicU64::new(written),
            failed: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            emitting: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            error: Mutex::new(None),
            seq: SeqBudget::new(last_seq),
        }
    }

    /// Bounds the queue by `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.queue = Admission::new(limits);
        self
    }

    /// Takes room in the queue for an event of `bytes` bytes, or counts it
    /// as refused (in the counters and in the tally for the next drop
    /// record) and says why.
    pub fn admit(
        &self,
        event_type: &'static str,
        bytes: usize,
        critical: bool,
    ) -> Result<(), Refusal> {
        self.queue.admit(bytes, critical).inspect_err(|refused| {
            let head = self.head.load(Ordering::Acquire);
            self.drops.record(event_type, critical, refused.bound, head);
            let by_bound = match refused.bound {
                QueueBound::Events => &self.dropped_full,
                QueueBound::Bytes => &self.dropped_bytes,
            };
            by_bound.fetch_add(1, Ordering::Relaxed);
            let by_kind = if critical {
                &self.dropped_critical
            } else {
                &self.dropped_routine
            };
            by_kind.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Events and bytes in the queue now.
    #[cfg(test)]
    pub fn queued(&self) -> (u32, u32) {
        self.queue.used()
    }

    /// Gives back the room of an event that was admitted but not sent.
    pub fn unadmit(&self, bytes: usize) {
        self.queue.release(bytes);
    }

    /// Marks an emit as in flight until the guard is dropped. Take it before
    /// [`check_open`](Self::check_open) and hold it until the event is
    /// queued or refused.
    pub fn begin_emit(&self) -> EmitGuard<'_> {
        // SeqCst pairs with `close`: either this emit sees `closed`, or
        // `close` sees this emit in flight and waits for it.
        self.emitting.fetch_add(1, Ordering::SeqCst);
        EmitGuard(&self.emitting)
    }

    /// Fails if the logger is shut down or its writer has failed.
    pub fn check_open(&self) -> Result<(), EmitError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(EmitError::Closed);
        }
        if self.broken.load(Ordering::Acquire) {
            return Err(EmitError::WriterFailed(self.error_text()));
        }
        Ok(())
    }

    pub fn reserve_seq(&self) -> Result<(), EmitError> {
        self.seq.reserve()
    }

    pub fn release_seq(&self) {
        self.seq.release();
    }

    /// Refuses further emits and waits for those in flight to finish
    /// queueing. They never block, so the wait is short.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.emitting.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_bytes: self.dropped_bytes.load(Ordering::Relaxed),
            dropped_routine: self.dropped_routine.load(Ordering::Relaxed),
            dropped_critical: self.dropped_critical.load(Ordering::Relaxed),
            drop_records: self.drop_records.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
        }
    }

    fn fail(&self, message: String) {
        tracing::error!(error = %message, "audit writer failed; no further records are stored");
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
        self.broken.store(true, Ordering::Release);
    }

    fn error_text(&self) -> String {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }

    fn failure(&self) -> Option<FlushError> {
        self.broken
            .load(Ordering::Acquire)
            .then(|| FlushError::WriterFailed(self.error_text()))
    }
}

/// An emit in flight; see [`Shared::begin_emit`].
pub(crate) struct EmitGuard<'a>(&'a AtomicU64);

impl Drop for EmitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The error a durable emit reports for a writer that could not make its
/// record durable.
fn emit_error(err: FlushError) -> EmitError {
    match err {
        FlushError::WriterFailed(message) => EmitError::WriterFailed(message),
        other => EmitError::WriterFailed(other.to_string()),
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    store: Store,
    events: Receiver<Queued>,
    control: Receiver<Control>,
    shared: Arc<Shared>,
    /// When the oldest write not yet fsynced happened.
    dirty_since: Option<Instant>,
    /// Records written since the last fsync.
    unsynced: u64,
    /// When records of non-durable emits are fsynced.
    flush: FlushMode,
    /// Signs checkpoints, when configured (see [`crate::logtree`]).
    checkpoints: Option<crate::logtree::Checkpointer>,
}

impl Writer {
    pub fn new(
        store: Store,
        events: Receiver<Queued>,
        control: Receiver<Control>,
        shared: Arc<Shared>,
    ) -> Self {
        Writer {
            store,
            events,
            control,
            shared,
            dirty_since: None,
            unsynced: 0,
            flush: FlushMode::default(),
            checkpoints: None,
        }
    }

    /// Fsyncs records of non-durable emits as `mode` says.
    pub fn with_flush_mode(mut self, mode: FlushMode) -> Self {
        self.flush = mode;
        self
    }

    /// Signs checkpoints with `checkpoints`, if any.
    pub fn with_checkpoints(mut self, checkpoints: Option<crate::logtree::Checkpointer>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Runs until shutdown, or until every logger handle is gone.
    pub fn run(mut self) {
        loop {
            let timeout = self.next_wakeup();
            select! {
                recv(self.events) -> event => match event {
                    Ok(queued) => self.write_batch(queued),
                    Err(_) => break,
                },
                recv(self.control) -> request => match request {
                    Ok(Control::Flush(ack)) => {
                        let _ = ack.send(self.drain_and_sync());
                    }
                    Ok(Control::Shutdown(ack)) => {
                        let _ = ack.send(self.stop());
                        return;
                    }
                    Err(_) => break,
                },
                default(timeout) => {}
            }
            // Refusals the last batch did not see, once the queue has
            // drained and no record is coming that would carry them. While
            // events keep coming, the next batch carries them instead.
            if self.shared.drops.is_pending() && self.events.is_empty() {
                self.write_gap();
            }
            self.sync_if_due();
            self.checkpoint_if_due();
        }
        // Every handle is gone without a shutdown: keep what was queued.
        let _ = self.drain_and_sync();
    }

    /// How long to wait for work: until the oldest unsynced record's fsync
    /// is due, so that a quiet tail is fsynced on time.
    fn next_wakeup(&self) -> Duration {
        match self.dirty_since {
            Some(since) => self.flush.max_interval().saturating_sub(since.elapsed()),
            None => IDLE_TICK,
        }
    }

    /// Appends the refusals counted so far as a drop record, then `first`
    /// and whatever else is queued, up to a batch, and hands the batch to
    /// the OS; fsyncs it if a durable emit waits on any of it (answering
    /// every such emit) or the flush mode says so.
    fn write_batch(&mut self, first: Queued) {
        // A drop record is not critical for the flush mode: under overload
        // nearly every batch has one, and an fsync each would slow the
        // writer exactly when it has to catch up.
        self.append_gap();
        let mut critical = false;
        let mut batch = 0usize;
        let mut waiting = Vec::new();
        let mut next = Some(first);
        while let Some(queued) = next {
            self.shared.queue.release(queued.json.len());
            let receipt = self.append(&queued.json);
            critical |= queued.critical;
            if let Some(ack) = queued.ack {
                waiting.push((ack, receipt));
            }
            batch = batch.saturating_add(1);
            next = if batch < MAX_BATCH {
                self.events.try_recv().ok()
            } else {
                None
            };
        }
        self.finish_batch(batch, critical, waiting);
    }

    /// Writes a drop record on its own, fsynced as the flush mode says.
    fn write_gap(&mut self) {
        if self.append_gap() {
            self.finish_batch(1, false, Vec::new());
        }
    }

    /// Hands the appended records to the OS and fsyncs them when a durable
    /// emit waits, the flush mode syncs such a batch at once, or enough
    /// records wait for an fsync.
    fn finish_batch(&mut self, batch: usize, critical: bool, waiting: Vec<(Ack, Option<Receipt>)>) {
        self.shared
            .head
            .store(self.store.head().last_seq, Ordering::Release);
        if self.shared.failure().is_none() {
            if let Err(e) = self.store.write_pending() {
                self.shared
                    .fail(format!("writing a batch of {batch} records: {e}"));
            } else if self.dirty_since.is_none() {
                self.dirty_since = Some(Instant::now());
            }
        }
        if !waiting.is_empty() {
            self.acknowledge(waiting);
        } else if self.flush.syncs_batch(critical) || self.flush.count_due(self.unsynced) {
            // A failure is recorded in `shared` and reported to the next caller.
            let _ = self.sync();
        }
    }

    /// Appends an `audit.events_dropped` record of the refusals counted
    /// since the last one, if there were any; returns whether it did.
    fn append_gap(&mut self) -> bool {
        // A writer that has failed keeps the tally for the stop report
        // rather than count its record among the failed events.
        if self.shared.failure().is_some() {
            return false;
        }
        let Some(gap) = self.shared.drops.take() else {
            return false;
        };
        let dropped = gap.total();
        let event = gap.into_event(Utc::now());
        if self.shared.reserve_seq().is_err() {
            tracing::warn!(dropped, "no sequence number left for an audit drop record");
            return false;
        }
        match serde_json::to_string(&event) {
            Ok(json) => {
                let written = self.append(&json).is_some();
                if written {
                    self.shared.drop_records.fetch_add(1, Ordering::Relaxed);
                }
                written
            }
            Err(e) => {
                tracing::error!(error = %e, dropped, "cannot serialize an audit drop record");
                false
            }
        }
    }

    /// Fsyncs what was written and answers each durable emit of the batch:
    /// its receipt, or the writer's error for all of them.
    fn acknowledge(&mut self, waiting: Vec<(Ack, Option<Receipt>)>) {
        let synced = self.sync().map_err(emit_error);
        for (ack, receipt) in waiting {
            let answer = match (&synced, receipt) {
                (Ok(()), Some(receipt)) => Ok(receipt),
                (Err(e), _) => Err(e.clone()),
                // Not written means the writer failed, and then the sync
                // above failed too; answer with the error all the same.
                (Ok(()), None) => Err(EmitError::WriterFailed(self.shared.error_text())),
            };
            ack.send(answer);
        }
    }

    /// Appends one record; its receipt, or `None` when it was not stored.
    fn append(&mut self, json: &str) -> Option<Receipt> {
        if self.shared.failure().is_some() {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let before = self.store.head().last_seq;
        match self.store.append(json) {
            Ok(seq) => {
                // A segment manifest may have been written before the event.
                let records = self.store.head().last_seq.saturating_sub(before);
                self.shared.written.fetch_add(records, Ordering::Relaxed);
                self.unsynced = self.unsynced.saturating_add(records);
                Some(Receipt {
                    seq,
                    record_hash: self.store.head().last_hash,
                })
            }
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                self.shared.fail(format!("appending a record: {e}"));
                None
            }
        }
    }

    fn drain_and_sync(&mut self) -> Result<(), FlushError> {
        while let Ok(queued) = self.events.try_recv() {
            self.write_batch(queued);
        }
        self.write_gap();
        self.sync()
    }

    fn sync(&mut self) -> Result<(), FlushError> {
        // Whatever the outcome, no sync stays due: after a failure nothing
        // more is written, and a sync kept due would make the writer's
        // wake-up timeout zero, spinning it until shutdown.
        let wrote = self.dirty_since.take().is_some();
        self.unsynced = 0;
        if let Some(err) = self.shared.failure() {
            return Err(err);
        }
        if let Err(e) = self.store.sync() {
            self.shared.fail(format!("fsync of the audit segment: {e}"));
            return Err(self.shared.failure().unwrap_or(FlushError::WriterGone));
        }
        if wrote {
            self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn sync_if_due(&mut self) {
        let interval = self.flush.max_interval();
        if self
            .dirty_since
            .is_some_and(|since| since.elapsed() >= interval)
        {
            // A failure is recorded in `shared` and reported to the next caller.
            let _ = self.sync();
        }
    }

    /// Drains the queue, appends the last drop record and the stop record,
    /// and fsyncs. No emit is in flight any more (the logger is closed), so
    /// every refusal is in a drop record by then.
    fn stop(&mut self) -> Result<u64, FlushError> {
        while let Ok(queued) = self.events.try_recv() {
            self.write_batch(queued);
        }
        self.write_gap();
        let stats = self.shared.stats();
        let stopped = AuditEvent::LoggerStopped {
            timestamp: Utc::now(),
            records_written: stats.written.saturating_add(1),
            events_dropped: stats.dropped(),
        };
        if self.shared.reserve_seq().is_ok() {
            match serde_json::to_string(&stopped) {
                Ok(json) => self.write_batch(Queued::plain(json)),
                Err(e) => tracing::error!(error = %e, "cannot serialize the stop record"),
            }
        } else {
            tracing::warn!("no sequence number left for the audit stop record");
        }
        self.sync()?;
        self.checkpoint()?;
        Ok(self.store.head().last_seq)
    }

    /// Writes a checkpoint if one is due; a failure is recorded in `shared`.
    fn checkpoint_if_due(&mut self) {
        let size = self.store.tree().map_or(0, |t| t.size());
        if let Some(c) = &self.checkpoints
            && c.is_due(size, Instant::now())
        {
            let _ = self.checkpoint();
        }
    }

    /// Fsyncs the records, then signs and stores a checkpoint of them. An
    /// error is sticky, like any I/O error of the writer.
    fn checkpoint(&mut self) -> Result<(), FlushError> {
        self.sync()?;
        let (Some(checkpoints), Some(tree)) = (&mut self.checkpoints, self.store.tree()) else {
            return Ok(());
        };
        if let Err(e) = checkpoints.write(tree, Instant::now()) {
            self.shared
                .fail(format!("writing a signed checkpoint: {e}"));
            return Err(self.shared.failure().unwrap_or(FlushError::WriterGone));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::test_config;
    use crate::{AuditKey, SYNC_INTERVAL};

    const EVENT: &str = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;

    /// A writer over a fresh store, with the queue's sending side kept so
    /// the writer does not see it closed.
    fn writer(dir: &std::path::Path, mode: FlushMode) -> (Writer, Arc<Shared>, Sender<Queued>) {
        let key = AuditKey::generate().unwrap();
        let (store, _) = Store::open(dir, Some(&key), test_config(1 << 20)).unwrap();
        let (events_tx, events) = crossbeam_channel::unbounded();
        let (_control_tx, control) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::new(0, 0));
        let writer = Writer::new(store, events, control, Arc::clone(&shared)).with_flush_mode(mode);
        (writer, shared, events_tx)
    }

    fn critical() -> Queued {
        let event = crate::event::samples::all()
            .into_iter()
            .find(AuditEvent::is_critical)
            .unwrap();
        Queued {
            json: serde_json::to_string(&event).unwrap(),
            ack: None,
            critical: true,
        }
    }

    fn fsyncs(shared: &Shared) -> u64 {
        shared.stats().fsyncs
    }

    #[test]
    fn immediate_makes_every_batch_durable_before_the_next_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::Immediate);
        for n in 1..=3 {
            writer.write_batch(Queued::plain(EVENT.to_owned()));
            assert_eq!(fsyncs(&shared), n);
            assert!(writer.dirty_since.is_none(), "batch {n} left unsynced");
        }
    }

    #[test]
    fn batched_fsyncs_after_max_events_records() {
        let dir = tempfile::tempdir().unwrap();
        let mode = FlushMode::Batched {
            max_events: 3,
            max_interval: Duration::from_secs(3600),
        };
        let (mut writer, shared, _tx) = writer(dir.path(), mode);
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        writer.write_batch(critical());
        assert_eq!(fsyncs(&shared), 0, "a critical event is batched too");
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert_eq!(fsyncs(&shared), 1);
        assert_eq!(writer.unsynced, 0);
    }

    #[test]
    fn batched_fsyncs_a_quiet_tail_when_its_interval_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let interval = Duration::from_secs(3600);
        let mode = FlushMode::Batched {
            max_events: u64::MAX,
            max_interval: interval,
        };
        let (mut writer, shared, _tx) = writer(dir.path(), mode);
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        // The writer waits no longer than the interval for more work.
        assert!(writer.next_wakeup() <= interval);
        writer.sync_if_due();
        assert_eq!(fsyncs(&shared), 0, "fsynced before its interval");
        // An hour later (an injected clock, not a sleep).
        writer.dirty_since = Instant::now().checked_sub(interval);
        assert_eq!(writer.next_wakeup(), Duration::ZERO);
        writer.sync_if_due();
        assert_eq!(fsyncs(&shared), 1);
    }

    #[test]
    fn hybrid_fsyncs_a_batch_with_a_critical_event_at_once_and_batches_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, tx) = writer(dir.path(), FlushMode::default());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert_eq!(fsyncs(&shared), 0);
        // One fsync for the critical event and the routine one beside it.
        tx.send(Queued::plain(EVENT.to_owned())).unwrap();
        writer.write_batch(critical());
        assert_eq!(fsyncs(&shared), 1);
        assert!(writer.dirty_since.is_none());
    }

    #[test]
    fn refusals_are_written_as_a_drop_record_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::default());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        let head = writer.store.head().last_seq;
        // Refused the way an emit refuses: with the head the writer published.
        let published = shared.head.load(Ordering::Acquire);
        let drops = &shared.drops;
        drops.record("task.submitted", false, QueueBound::Events, published);
        drops.record("auth.failure", true, QueueBound::Bytes, published);
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        writer.store.sync().unwrap();

        let events = crate::query::read_events(dir.path()).unwrap();
        let [.., dropped, after] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(after.event_type(), "audit.logger_stopped");
        let AuditEvent::EventsDropped {
            dropped,
            routine,
            critical,
            since_seq,
            ..
        } = dropped
        else {
            panic!("expected a drop record before the event, got {dropped:?}");
        };
        assert_eq!((*dropped, *routine, *critical), (2, 1, 1));
        assert_eq!(*since_seq, head);
        assert_eq!(shared.stats().drop_records, 1);
        assert!(!shared.drops.is_pending());
    }

    #[test]
    fn a_failed_writer_does_not_count_its_drop_record_as_a_failed_event() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::default());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        crate::store::tests::break_writes(&mut writer.store, dir.path());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(shared.failure().is_some());

        let failed = shared.stats().failed;
        shared
            .drops
            .record("task.submitted", false, QueueBound::Events, 0);
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        let stats = shared.stats();
        assert_eq!(stats.failed, failed + 1, "only the event failed");
        assert_eq!(stats.drop_records, 0);
        assert!(shared.drops.is_pending(), "the tally was thrown away");
    }

    #[test]
    fn an_idle_writer_writes_refusals_nobody_else_carries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::default());
        shared
            .drops
            .record("task.submitted", false, QueueBound::Events, 0);
        writer.write_gap();
        writer.write_gap();
        assert_eq!(shared.stats().drop_records, 1, "one record per refusal");
    }

    /// Regression: after an I/O error the writer kept a sync "due" that
    /// could never succeed, so its wake-up timeout dropped to zero and the
    /// thread spun at full CPU until shutdown.
    #[test]
    fn a_failed_writer_does_not_spin_on_a_sync_that_is_always_due() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::generate().unwrap();
        let (store, _) = Store::open(dir.path(), Some(&key), test_config(1 << 20)).unwrap();
        let (_events_tx, events) = crossbeam_channel::bounded(4);
        let (_control_tx, control) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::new(0, 0));
        let mut writer = Writer::new(store, events, control, Arc::clone(&shared));

        // A write that succeeds leaves a sync due; the next one fails.
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(writer.dirty_since.is_some());
        crate::store::tests::break_writes(&mut writer.store, dir.path());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(shared.failure().is_some());

        // Long after the sync interval (an injected clock, not a sleep).
        writer.dirty_since = Instant::now().checked_sub(SYNC_INTERVAL * 2);
        writer.sync_if_due();
        assert!(
            writer.next_wakeup() > Duration::ZERO,
            "the writer would wake up at once, forever"
        );
    }
}
