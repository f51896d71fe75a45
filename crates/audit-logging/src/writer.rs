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
//!
//! # When the disk refuses
//!
//! A write the OS refuses (`ENOSPC`, `EIO`, a file size limit) makes the
//! writer *degraded* ([`Health::Degraded`]), not dead. The store cuts off
//! whatever part of the write reached the file, so the chain on disk still
//! ends with a whole record, and keeps the refused lines, already encoded
//! and chained, to write again; an event whose record could not even be
//! started (a new segment could not be created) is held by the writer.
//! While degraded the writer takes nothing more from the queue, whose
//! bounds ([`queue`](crate::logger::queue)) therefore bound the buffer: emits keep returning `Ok` while it has
//! room and [`EmitError::BufferFull`] after. The writer retries after
//! [`RETRY_MIN`], doubling the wait up to [`RETRY_MAX`], and on every
//! flush; the first retry that goes through writes exactly the records that
//! were refused, once and in order, and the writer takes events again.
//! Each refusal is counted ([`Stats::write_errors`]), the change of state
//! is logged through `tracing` (a warning on the way in, another on the way
//! out), and [`AuditLogger::health`](crate::AuditLogger::health) reports it.
//!
//! What callers see meanwhile: durable emits fail fast with
//! [`EmitError::Degraded`] because their records cannot be made durable
//! now — new ones at the call, and every one waiting when a write is
//! refused, whether the writer holds its record or its event is still in
//! the queue (each durable emit registers in [`Shared::waiting`] for that,
//! and checks the state again after registering, so none slips between).
//! Records of the waiting ones are still written, once, when the disk
//! takes them. [`flush`](crate::AuditLogger::flush) makes one retry and
//! reports [`FlushError::Degraded`] if it is refused.
//!
//! A failed *fsync* is different: after one, the kernel may have dropped
//! the pages it could not write and marked them clean, so no later fsync
//! can vouch for them. The writer fails for good ([`Health::Failed`]):
//! every later emit, flush and shutdown reports the error, events still
//! queued are counted as failed, and every durable emit waiting is
//! answered with the error. A restart continues the trail after its last
//! whole record.
//!
//! # Shutdown
//!
//! [`Writer::stop`] drains the queue, writes the stop record, fsyncs and
//! signs a final checkpoint, retrying what the disk refuses for at most
//! [`SHUTDOWN_TIMEOUT`] in all. What it could not write by then is counted
//! as failed and reported.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender, select};

use crate::ack::{Ack, Waiting};
use crate::logger::queue::{Admission, DropTally, Limits, QueueBound, Refusal};
use crate::logger::{FlushMode, Health, Receipt, SHUTDOWN_TIMEOUT, SeqBudget, Stats};
use crate::store::Store;
use crate::{AuditEvent, EmitError, FlushError};

/// Most events written per batch; bounds the time a flush request waits
/// behind a flood and the size of one write.
pub(crate) const MAX_BATCH: usize = 256;

/// How long the writer waits for work before checking whether an fsync is
/// due. Only affects idle wake-ups.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// First wait before retrying a write the OS refused: short, since a
/// transient error (an interrupted NFS server, a quota just raised) clears
/// fast.
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(50);

/// Longest wait between retries: once space returns, records wait at most
/// this long to be written, and a disk that stays full costs one failed
/// write a second.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(1);

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
/// and the writer's health (degraded, or failed for good).
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
    pub write_errors: AtomicU64,
    closed: AtomicBool,
    /// Emits between their open check and the end of their queueing;
    /// [`close`](Self::close) waits for them, so no event is accepted after
    /// the writer's last drain.
    emitting: AtomicU64,
    broken: AtomicBool,
    error: Mutex<Option<String>>,
    /// Set while the writer retries a refused write; `degradation` says
    /// since when and why.
    degraded: AtomicBool,
    degradation: Mutex<Option<(DateTime<Utc>, String)>>,
    /// Durable emits waiting, answered at once when the writer cannot
    /// write (see [`crate::ack`]).
    pub waiting: Waiting,
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
            write_errors: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            emitting: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            error: Mutex::new(None),
            degraded: AtomicBool::new(false),
            degradation: Mutex::new(None),
            waiting: Waiting::default(),
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

    /// Fails while the writer cannot write: a durable emit's record could
    /// not be made durable now (see the [module docs](self)).
    pub fn check_writable(&self) -> Result<(), EmitError> {
        match self.health() {
            Health::Degraded { error, .. } => Err(EmitError::Degraded(error)),
            _ => Ok(()),
        }
    }

    /// How the writer is doing.
    pub fn health(&self) -> Health {
        if self.broken.load(Ordering::Acquire) {
            return Health::Failed {
                error: self.error_text(),
            };
        }
        if self.degraded.load(Ordering::Acquire) {
            let degradation = self
                .degradation
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some((since, error)) = degradation {
                return Health::Degraded { since, error };
            }
        }
        Health::Ok
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
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Records a refused write; `true` if the writer was writing normally
    /// until now. A later refusal keeps the first one's time and takes its
    /// own message.
    fn degrade(&self, message: String) -> bool {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let mut degradation = self
            .degradation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let since = degradation
            .as_ref()
            .map_or_else(Utc::now, |(since, _)| *since);
        let first = degradation.is_none();
        *degradation = Some((since, message));
        self.degraded.store(true, Ordering::Release);
        first
    }

    /// Records that writes go through again; the time degradation began, if
    /// it had.
    fn recover(&self) -> Option<DateTime<Utc>> {
        self.degraded.store(false, Ordering::Release);
        self.degradation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|(since, _)| since)
    }

    fn degraded_error(&self) -> Option<FlushError> {
        match self.health() {
            Health::Degraded { error, .. } => Some(FlushError::Degraded(error)),
            _ => None,
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
        FlushError::Degraded(message) => EmitError::Degraded(message),
        other => EmitError::WriterFailed(other.to_string()),
    }
}

/// The retry schedule while the disk refuses writes.
#[derive(Debug, Clone, Copy)]
struct Retry {
    at: Instant,
    backoff: Duration,
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
    /// Durable emits whose records are appended but not yet fsynced.
    unacked: Vec<(Ack, Receipt)>,
    /// An event taken from the queue whose record could not be started;
    /// it goes first when the disk takes writes again.
    held: Option<Queued>,
    /// Set while degraded: when to try again.
    retry: Option<Retry>,
    /// Stands in for the queue while degraded, so no event is taken.
    never: Receiver<Queued>,
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
            unacked: Vec::new(),
            held: None,
            retry: None,
            never: crossbeam_channel::never(),
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
            // While degraded, events wait in the queue: it is the bound.
            let events = if self.retry.is_some() {
                &self.never
            } else {
                &self.events
            };
            select! {
                recv(events) -> event => match event {
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
            if self.retry.is_some() {
                self.retry_if_due();
                continue;
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
        // Every handle is gone without a shutdown: keep what was queued, as
        // a shutdown would.
        let _ = self.stop();
    }

    /// How long to wait for work: until the next retry while degraded,
    /// otherwise until the oldest unsynced record's fsync is due, so that a
    /// quiet tail is fsynced on time.
    fn next_wakeup(&self) -> Duration {
        if let Some(retry) = self.retry {
            return retry.at.saturating_duration_since(Instant::now());
        }
        match self.dirty_since {
            Some(since) => self.flush.max_interval().saturating_sub(since.elapsed()),
            None => IDLE_TICK,
        }
    }

    /// Appends the refusals counted so far as a drop record, then `first`
    /// and whatever else is queued, up to a batch, and hands the batch to
    /// the OS; fsyncs it if a durable emit waits on any of it (answering
    /// every such emit) or the flush mode says so. Stops taking events at a
    /// refused write.
    fn write_batch(&mut self, first: Queued) {
        // A drop record is not critical for the flush mode: under overload
        // nearly every batch has one, and an fsync each would slow the
        // writer exactly when it has to catch up.
        self.append_gap();
        let mut critical = false;
        let mut batch = 0usize;
        let mut next = Some(first);
        while let Some(queued) = next {
            // Taken from the queue: its room there is free again, even if
            // the writer has to hold it for a retry.
            self.shared.queue.release(queued.json.len());
            critical |= queued.critical;
            if !self.append(queued) {
                break;
            }
            batch = batch.saturating_add(1);
            next = if batch < MAX_BATCH {
                self.events.try_recv().ok()
            } else {
                None
            };
        }
        self.finish_batch(critical);
    }

    /// Writes a drop record on its own, fsynced as the flush mode says.
    fn write_gap(&mut self) {
        if self.retry.is_none() && self.append_gap() {
            self.finish_batch(false);
        }
    }

    /// Hands the appended records to the OS and fsyncs them when a durable
    /// emit waits, the flush mode syncs such a batch at once, or enough
    /// records wait for an fsync.
    fn finish_batch(&mut self, critical: bool) {
        self.shared
            .head
            .store(self.store.head().last_seq, Ordering::Release);
        if !self.write_out() {
            return;
        }
        if !self.unacked.is_empty() {
            self.acknowledge();
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
            // Held for the retry if the disk refuses it, like any record.
            Ok(json) => {
                let started = self.append(Queued::plain(json));
                if started {
                    self.shared.drop_records.fetch_add(1, Ordering::Relaxed);
                }
                started
            }
            Err(e) => {
                tracing::error!(error = %e, dropped, "cannot serialize an audit drop record");
                false
            }
        }
    }

    /// Hands the records appended so far to the OS; `false` if the OS
    /// refused (the writer is then degraded or failed).
    fn write_out(&mut self) -> bool {
        if self.shared.failure().is_some() {
            return false;
        }
        let wrote = self.store.has_pending();
        let result = self.store.write_pending();
        // The store counts whole lines written, its own handovers and
        // manifests included, and nothing still kept for a retry.
        self.shared
            .written
            .store(self.store.lines_written(), Ordering::Relaxed);
        match result {
            Ok(()) => {
                if wrote && self.dirty_since.is_none() {
                    self.dirty_since = Some(Instant::now());
                }
                true
            }
            Err(e) => {
                self.io_error(format!("writing records to the audit segment: {e}"));
                false
            }
        }
    }

    /// Fsyncs what was written and answers each durable emit of the batch:
    /// its receipt, or the writer's error for all of them.
    fn acknowledge(&mut self) {
        let synced = self.sync().map_err(emit_error);
        for (ack, receipt) in self.unacked.drain(..) {
            ack.send(synced.clone().map(|()| receipt));
        }
    }

    /// Appends one record; `false` when it could not be started, and the
    /// event is held for the retry. After a failure the event is counted
    /// as lost, and a durable emit on it answered with the error.
    fn append(&mut self, queued: Queued) -> bool {
        if let Some(err) = self.shared.failure() {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(ack) = queued.ack {
                ack.send(Err(emit_error(err)));
            }
            return true;
        }
        let before = self.store.head().last_seq;
        match self.store.append(&queued.json) {
            Ok(seq) => {
                // A segment manifest may have been written before the event.
                let records = self.store.head().last_seq.saturating_sub(before);
                self.unsynced = self.unsynced.saturating_add(records);
                if let Some(ack) = queued.ack {
                    let receipt = Receipt {
                        seq,
                        record_hash: self.store.head().last_hash,
                    };
                    self.unacked.push((ack, receipt));
                }
                true
            }
            Err(e) => {
                self.held = Some(queued);
                self.io_error(format!("starting the next audit record: {e}"));
                false
            }
        }
    }

    /// Handles an error of the store: final after a failed fsync,
    /// otherwise the writer is degraded and retries. Either way no durable
    /// emit waiting now can be acknowledged, and each is told why.
    fn io_error(&mut self, message: String) {
        let answer = if self.store.fsync_failed() {
            self.retry = None;
            // What the writer kept for a retry will never be written.
            let kept = self
                .store
                .pending_records()
                .saturating_add(u64::from(self.held.take().is_some()));
            self.shared.failed.fetch_add(kept, Ordering::Relaxed);
            self.shared.fail(message.clone());
            EmitError::WriterFailed(message)
        } else {
            let backoff = self
                .retry
                .map_or(RETRY_MIN, |r| r.backoff.saturating_mul(2).min(RETRY_MAX));
            self.retry = Some(Retry {
                at: Instant::now()
                    .checked_add(backoff)
                    .unwrap_or_else(Instant::now),
                backoff,
            });
            if self.shared.degrade(message.clone()) {
                tracing::warn!(error = %message,
                    "audit writer cannot write; keeping the unwritten records and retrying");
            }
            EmitError::Degraded(message)
        };
        for (ack, _) in self.unacked.drain(..) {
            ack.send(Err(answer.clone()));
        }
        // And those whose events are still queued, which the writer will
        // not take until it can write.
        self.shared.waiting.answer_all(&Err(answer));
    }

    fn retry_if_due(&mut self) {
        if self.retry.is_some_and(|r| Instant::now() >= r.at) {
            self.retry_now();
        }
    }

    /// Writes what the disk refused, in order: the records the store
    /// holds, then the held event; then a checkpoint if one is due. `true`
    /// when all of it went through and the writer is healthy again.
    fn retry_now(&mut self) -> bool {
        if self.retry.is_none() {
            return self.shared.failure().is_none();
        }
        if let Some(queued) = self.held.take()
            && !self.append(queued)
        {
            return false;
        }
        if !self.write_out() {
            return false;
        }
        let tree_size = self.store.tree().map_or(0, |t| t.size());
        let checkpoint_due = self
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.is_due(tree_size, Instant::now()));
        if checkpoint_due {
            // Not through `checkpoint`, whose sync reports the writer as
            // degraded until this retry says otherwise.
            if let Err(e) = self.store.sync() {
                self.io_error(format!("making the audit segment durable: {e}"));
                return false;
            }
            if self.sign_checkpoint().is_err() {
                return false;
            }
        }
        self.recovered();
        true
    }

    /// Leaves the degraded state after everything refused went through.
    fn recovered(&mut self) {
        self.retry = None;
        // Bytes written before the refusal may be waiting for an fsync.
        self.dirty_since.get_or_insert_with(Instant::now);
        if let Some(since) = self.shared.recover() {
            tracing::warn!(degraded_since = %since, "audit writer writes again");
        }
    }

    /// Writes everything queued and fsyncs it; while degraded, one retry
    /// first, and the error if it is refused.
    fn drain_and_sync(&mut self) -> Result<(), FlushError> {
        self.retry_now();
        while self.retry.is_none()
            && let Ok(queued) = self.events.try_recv()
        {
            self.write_batch(queued);
        }
        self.write_gap();
        self.sync()
    }

    fn sync(&mut self) -> Result<(), FlushError> {
        // Whatever the outcome, no sync stays due: after a failure nothing
        // more is written, and a sync kept due would make the writer's
        // wake-up timeout zero, spinning it until shutdown. A degraded
        // writer sets it again once it writes again.
        let wrote = self.dirty_since.take().is_some();
        self.unsynced = 0;
        if let Some(err) = self.shared.failure() {
            return Err(err);
        }
        if let Some(err) = self.shared.degraded_error() {
            return Err(err);
        }
        if let Err(e) = self.store.sync() {
            self.io_error(format!("making the audit segment durable: {e}"));
            return Err(self
                .shared
                .failure()
                .or_else(|| self.shared.degraded_error())
                .unwrap_or(FlushError::WriterGone));
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
    /// fsyncs and signs a final checkpoint, retrying refused writes until
    /// [`SHUTDOWN_TIMEOUT`] has passed; what is still unwritten then is
    /// counted as failed. No emit is in flight any more (the logger is
    /// closed), so every refusal is in a drop record by then.
    fn stop(&mut self) -> Result<u64, FlushError> {
        let deadline = Instant::now()
            .checked_add(SHUTDOWN_TIMEOUT)
            .unwrap_or_else(Instant::now);
        self.drain_until(deadline)?;
        self.write_gap();
        self.drain_until(deadline)?;
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
        self.drain_until(deadline)?;
        self.sync()?;
        // The final checkpoint is retried like a refused write, within the
        // same deadline.
        while let Err(e) = self.sign_checkpoint() {
            let Some(retry) = self.retry else {
                return Err(e);
            };
            let now = Instant::now();
            if now >= deadline {
                tracing::error!(error = %e, "audit writer shut down without its final checkpoint");
                return Err(e);
            }
            std::thread::sleep(retry.at.min(deadline).saturating_duration_since(now));
        }
        if self.retry.is_some() {
            self.recovered();
        }
        Ok(self.store.head().last_seq)
    }

    /// Writes everything queued, retrying refused writes until `deadline`.
    /// Past it, gives up: everything unwritten is counted as failed and
    /// the writer's error returned.
    fn drain_until(&mut self, deadline: Instant) -> Result<(), FlushError> {
        loop {
            if let Some(retry) = self.retry {
                let now = Instant::now();
                if now >= deadline {
                    return Err(self.abandon());
                }
                std::thread::sleep(retry.at.min(deadline).saturating_duration_since(now));
                self.retry_now();
                continue;
            }
            match self.events.try_recv() {
                Ok(queued) => self.write_batch(queued),
                Err(_) => return Ok(()),
            }
        }
    }

    /// Gives up on what the disk would not take: counts it as failed, says
    /// so, and returns the error that stopped it.
    fn abandon(&mut self) -> FlushError {
        let queued = self.events.len() as u64;
        let lost = self
            .store
            .pending_records()
            .saturating_add(u64::from(self.held.is_some()))
            .saturating_add(queued);
        self.shared.failed.fetch_add(lost, Ordering::Relaxed);
        let error = self
            .shared
            .degraded_error()
            .unwrap_or(FlushError::WriterGone);
        tracing::error!(records = lost, error = %error,
            "audit writer shut down with records the disk would not take; they are lost");
        error
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

    /// Fsyncs the records, then signs and stores a checkpoint of them. A
    /// checkpoint the disk refuses degrades the writer like a refused
    /// record, and is tried again with the next retry.
    fn checkpoint(&mut self) -> Result<(), FlushError> {
        self.sync()?;
        self.sign_checkpoint()
    }

    /// Signs and stores a checkpoint of the records, which must be fsynced.
    fn sign_checkpoint(&mut self) -> Result<(), FlushError> {
        let (Some(checkpoints), Some(tree)) = (&mut self.checkpoints, self.store.tree()) else {
            return Ok(());
        };
        if let Err(e) = checkpoints.write(tree, Instant::now()) {
            self.io_error(format!("writing a signed checkpoint: {e}"));
            return Err(self
                .shared
                .degraded_error()
                .unwrap_or(FlushError::WriterGone));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        crate::store::tests::fail_fsync(&mut writer.store);
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
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::default());

        // A write that succeeds leaves a sync due; then an fsync fails.
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(writer.dirty_since.is_some());
        crate::store::tests::fail_fsync(&mut writer.store);
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(matches!(shared.health(), Health::Failed { .. }));

        // Long after the sync interval (an injected clock, not a sleep).
        writer.dirty_since = Instant::now().checked_sub(SYNC_INTERVAL * 2);
        writer.sync_if_due();
        assert!(
            writer.next_wakeup() > Duration::ZERO,
            "the writer would wake up at once, forever"
        );
    }

    #[test]
    fn a_refused_write_degrades_the_writer_until_a_retry_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared, _tx) = writer(dir.path(), FlushMode::default());
        writer.write_batch(Queued::plain(EVENT.to_owned()));

        crate::store::tests::break_writes(&mut writer.store, dir.path());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        let Health::Degraded { error, .. } = shared.health() else {
            panic!("{:?}", shared.health());
        };
        assert!(error.contains("writing records"), "{error}");
        assert!(matches!(
            shared.check_writable(),
            Err(EmitError::Degraded(_))
        ));
        // Emits that do not wait are still accepted.
        assert_eq!(shared.check_open(), Ok(()));
        assert!(matches!(
            writer.drain_and_sync(),
            Err(FlushError::Degraded(_))
        ));
        let errors = shared.stats().write_errors;
        assert!(errors >= 2, "{errors}");

        // The waits between retries double, up to the limit.
        let first = writer.retry.unwrap().backoff;
        for _ in 0..10 {
            writer.retry_now();
        }
        assert!(writer.retry.unwrap().backoff > first);
        assert_eq!(writer.retry.unwrap().backoff, RETRY_MAX);

        crate::store::tests::mend_writes(&mut writer.store, dir.path());
        assert!(writer.retry_now());
        assert_eq!(shared.health(), Health::Ok);
        assert_eq!(writer.drain_and_sync(), Ok(()));
        let text = std::fs::read_to_string(dir.path().join(crate::segment_name(1))).unwrap();
        assert_eq!(text.lines().count(), 2, "each record written once");
    }

    /// A writer that signs a checkpoint after every record.
    fn checkpointing_writer(dir: &Path) -> (Writer, Arc<Shared>) {
        use crate::checkpoint::{CheckpointSigner, KeyName};
        let key = AuditKey::generate().unwrap();
        let name = KeyName::new(&crate::logtree::origin_for(key.id().as_str())).unwrap();
        let config = crate::LoggerConfig::new(dir)
            .checkpoint_signer(CheckpointSigner::generate(name).unwrap())
            .checkpoint_every_records(1);
        let (mut store, _) = Store::open(dir, Some(&key), test_config(1 << 20)).unwrap();
        let origin = store.origin().to_string();
        let (tree, checkpointer) = crate::logtree::resume_tree(&config, &origin, 0)
            .unwrap()
            .unwrap();
        store.set_tree(tree);
        let (_events_tx, events) = crossbeam_channel::bounded(4);
        let (_control_tx, control) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::new(0, 0));
        let writer = Writer::new(store, events, control, Arc::clone(&shared))
            .with_checkpoints(Some(checkpointer));
        (writer, shared)
    }

    fn newest_checkpoint(dir: &Path) -> u64 {
        crate::logtree::latest_checkpoint(dir)
            .unwrap()
            .map_or(0, |(size, _)| size)
    }

    /// Regression: a retry with a checkpoint due went through the writer's
    /// own sync, which reported the writer as degraded until the retry
    /// succeeded, so the retry never could.
    #[test]
    fn a_retry_with_a_checkpoint_due_recovers_and_writes_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared) = checkpointing_writer(dir.path());
        crate::store::tests::break_writes(&mut writer.store, dir.path());
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        assert!(matches!(shared.health(), Health::Degraded { .. }));

        crate::store::tests::mend_writes(&mut writer.store, dir.path());
        assert!(writer.retry_now(), "{:?}", shared.health());
        assert_eq!(newest_checkpoint(dir.path()), 1);
    }

    #[test]
    fn a_checkpoint_the_disk_refuses_degrades_the_writer_and_is_written_on_retry() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, shared) = checkpointing_writer(dir.path());
        // Something that is not a directory where checkpoints go.
        let cp_dir = dir.path().join(crate::logtree::CHECKPOINT_DIR);
        std::fs::write(&cp_dir, b"").unwrap();
        writer.write_batch(Queued::plain(EVENT.to_owned()));
        writer.checkpoint_if_due();
        let Health::Degraded { error, .. } = shared.health() else {
            panic!("{:?}", shared.health());
        };
        assert!(error.contains("checkpoint"), "{error}");
        // The record itself was written; only the checkpoint waits.
        assert_eq!(shared.stats().written, 1);

        std::fs::remove_file(&cp_dir).unwrap();
        assert!(writer.retry_now(), "{:?}", shared.health());
        assert_eq!(shared.health(), Health::Ok);
        assert_eq!(newest_checkpoint(dir.path()), 1);
    }

    #[test]
    fn a_durable_emit_on_a_refused_write_is_told_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _, _tx) = writer(dir.path(), FlushMode::default());
        crate::store::tests::break_writes(&mut writer.store, dir.path());
        let (ack, wait) = crate::ack::pair();
        writer.write_batch(Queued {
            json: EVENT.to_owned(),
            ack: Some(ack),
            critical: false,
        });
        assert!(matches!(wait.wait(), Err(EmitError::Degraded(_))));
        // Its record is kept, and written once the disk takes it.
        assert_eq!(writer.store.pending_records(), 1);
        crate::store::tests::mend_writes(&mut writer.store, dir.path());
        assert!(writer.retry_now());
        let text = std::fs::read_to_string(dir.path().join(crate::segment_name(1))).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
