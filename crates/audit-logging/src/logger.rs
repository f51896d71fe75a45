//! [`AuditLogger`]: the emitting side.
//!
//! Emitting serializes the event on the caller's thread and puts it on a
//! queue that one dedicated writer thread drains. Every form of emit takes
//! its place in the queue without waiting for one: when there is no room,
//! the emit returns [`EmitError::BufferFull`] at once, and the event is
//! dropped, counted, and written down as a gap (below).
//!
//! | emit | returns | waits for | can a crash lose it after `Ok`? |
//! | --- | --- | --- | --- |
//! | [`emit_sync`](AuditLogger::emit_sync) | `()` | nothing | yes, see below |
//! | [`emit`](AuditLogger::emit) (async) | `()` | nothing | yes, see below |
//! | [`emit_durable_sync`](AuditLogger::emit_durable_sync) | [`Receipt`] | fsync (blocks) | no |
//! | [`emit_durable`](AuditLogger::emit_durable) (async) | [`Receipt`] | fsync (future) | no |
//!
//! [`emit_sync`](AuditLogger::emit_sync) never waits: no lock is held
//! across I/O and no async runtime is needed, so it is safe in `Drop`, in
//! plain threads and inside any async runtime. [`emit`](AuditLogger::emit)
//! is its async twin with the same checks and errors. For the events they
//! queue, what reaches the disk when:
//! - the writer hands each batch of records to the OS as soon as it has
//!   taken it from the queue, so a crash of *the process* loses only what is
//!   still queued (at most the queue's bounds);
//! - when it fsyncs them is the [`FlushMode`]'s choice, and so is what a
//!   crash of *the machine* (power loss) can take. The default,
//!   [`FlushMode::Hybrid`], fsyncs a batch holding a critical event as soon
//!   as it is written, and routine records after [`DEFAULT_SYNC_EVENTS`]
//!   records or [`SYNC_INTERVAL`], whichever comes first, on a timer (a
//!   quiet tail is not left waiting for the next event).
//!   [`FlushMode::Immediate`] fsyncs every batch before taking the next;
//!   [`FlushMode::Batched`] treats critical events like routine ones.
//!   Every mode fsyncs on [`flush`](AuditLogger::flush), on
//!   [`shutdown`](AuditLogger::shutdown), and whenever a durable emit's
//!   record is in the batch.
//!
//! # The queue's bounds
//!
//! The queue is bounded twice: in events ([`LoggerConfig::queue_capacity`],
//! default [`DEFAULT_QUEUE_CAPACITY`]) and in bytes of event JSON
//! ([`LoggerConfig::queue_bytes`], default [`DEFAULT_QUEUE_BYTES`]). A share
//! of both ([`LoggerConfig::critical_reserve`], default
//! [`DEFAULT_CRITICAL_RESERVE_PERCENT`] percent) is reserved for critical
//! events ([`AuditEvent::is_critical`]): routine events are refused once the
//! queue holds the rest, critical ones only at the full bounds. Routine
//! events alone can therefore never fill the reserve; a critical event is
//! refused only when the writer is so far behind that the reserve is full of
//! critical events too. Sizes are those of the sanitized event, whose every
//! text field is cut at [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES), so a
//! hostile 10 MB field costs the queue about 2 KiB.
//!
//! A critical event that finds no room is, by default, refused like any
//! other ([`EmitError::BufferFull`]; a caller may ignore it). A
//! [fail-closed](LoggerConfig::fail_closed) logger refuses it with
//! [`EmitError::CriticalRefused`] instead, which says that the action the
//! event describes is not on record and must not go ahead, as an audited
//! server that cannot audit refuses the request.
//!
//! Every refused event is counted in [`Stats`] (by kind and by bound) and in
//! a tally per event type. Before the next record it writes — or, with
//! nothing left to write, as soon as its queue is empty — the writer puts
//! the tally into the chain as an `audit.events_dropped` record
//! ([`AuditEvent::EventsDropped`]): how many events of which types and
//! kinds were refused, at which bound, between which record and this one,
//! and when the first and last were refused. Each refusal is in exactly one
//! such record; the stop record's `events_dropped` is their sum. A gap in
//! the trail is thus itself authenticated evidence, not silence.
//!
//! A durable emit returns only once its record is written *and* fsynced
//! (`fdatasync` of the segment), with a [`Receipt`] naming its sequence
//! number and line hash: neither a crash nor a power loss can take it after
//! that, as far as the disk honours the fsync. Durable emits share fsyncs
//! (group commit): the writer takes everything queued, up to 256 events,
//! writes it in one go, fsyncs once and answers every durable emit in that
//! batch; while it fsyncs, the next batch queues up. Sixteen threads
//! emitting durably cost about one fsync per round, not sixteen
//! ([`Stats::fsyncs`] counts them). A durable emit whose record cannot be
//! made durable — the disk refuses writes, the fsync failed, the logger is
//! shut down — returns the error, and so does every other durable emit
//! waiting on the same batch.
//!
//! # A full disk, an I/O error
//!
//! A write the disk refuses does not stop the writer: it keeps the records
//! it could not write (already chained, nothing half-written left in the
//! segment), takes no more from the queue, and retries with backoff until
//! the disk takes them, then carries on, each record written once and in
//! order. [`health`](AuditLogger::health) says [`Health::Degraded`]
//! meanwhile, [`Stats::write_errors`] counts the refusals, and `tracing`
//! warns when it starts and ends. What each caller sees:
//!
//! | call | while degraded |
//! | --- | --- |
//! | `emit_sync`, `emit` | `Ok` while the queue has room (the event is kept), then [`EmitError::BufferFull`] |
//! | `emit_durable_sync`, `emit_durable` | [`EmitError::Degraded`] at once; nothing queued |
//! | a durable emit already waiting | [`EmitError::Degraded`]; its record stays queued and is written when the disk takes it |
//! | [`flush`](AuditLogger::flush) | one retry; [`FlushError::Degraded`] if it is refused |
//! | [`shutdown`](AuditLogger::shutdown), drop | retries for up to [`SHUTDOWN_TIMEOUT`], then [`FlushError::Degraded`]; what is unwritten is counted in [`Stats::failed`] |
//!
//! Only a failed fsync is final ([`Health::Failed`]): every call after it
//! reports [`EmitError::WriterFailed`] or [`FlushError::WriterFailed`].
//!
//! # What a process exit loses
//!
//! [`shutdown`](AuditLogger::shutdown), or dropping the last handle, writes
//! everything queued, the `audit.logger_stopped` record and a final
//! checkpoint, and fsyncs. A process that ends without either — `kill -9`,
//! `std::process::exit`, a panic that aborts, a handle leaked or still held
//! by another thread at exit — loses exactly the events still in the queue
//! (and, while degraded, the records the writer was keeping); records the
//! writer had handed to the OS survive the process. A power loss or kernel
//! crash loses in addition what was not yet fsynced: at most
//! [`SYNC_INTERVAL`] of records from `emit_sync`/`emit`. Neither can take a
//! record whose durable emit returned `Ok`; a crash mid-write leaves at
//! most a torn last line, which the next start sets aside and records.
//!
//! Sequence numbers are assigned by the writer, in queue order. The emitting
//! side keeps a count of numbers promised to queued events so that the
//! last number is refused at emit time ([`EmitError::SequenceExhausted`])
//! instead of wrapping around.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::Utc;
use crossbeam_channel::Sender;

use crate::ack::AckWait;
use crate::forward::{DEFAULT_EPOCH_INTERVAL, DEFAULT_EPOCH_RECORDS};
use crate::store::{Store, StoreConfig};
use crate::writer::{Control, Queued, Shared, Writer};
use crate::{AuditEvent, AuditKey, EmitError, FlushError, MAX_RECORD_BYTES, OpenError};

mod flush;
pub(crate) mod queue;

pub use flush::{DEFAULT_SYNC_EVENTS, FlushMode, SYNC_INTERVAL};
pub use queue::QueueBound;

/// Default queue capacity in events.
///
/// A thousand events of typical size is well under a megabyte of memory and
/// covers bursts of several milliseconds of a slow disk.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1000;

/// Default bound of the queue in bytes of event JSON.
///
/// A typical event is a few hundred bytes, so this bound is reached only by
/// large events (every text field is cut at
/// [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES), but an event has several):
/// it keeps a flood of them from holding hundreds of megabytes in memory.
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Smallest byte bound [`LoggerConfig::queue_bytes`] accepts: twice the
/// largest record, so that with the largest reserve
/// ([`MAX_CRITICAL_RESERVE_PERCENT`]) routine events still have room for
/// the largest event.
pub const MIN_QUEUE_BYTES: usize = 2 * MAX_RECORD_BYTES;

/// Default share of both queue bounds, in percent, that only critical
/// events may use.
///
/// A quarter of a thousand-event queue is 250 critical events queued at
/// once, far more than a service emits between two writer batches, while
/// routine events keep three quarters.
pub const DEFAULT_CRITICAL_RESERVE_PERCENT: u8 = 25;

/// Largest reserve [`LoggerConfig::critical_reserve`] accepts, in percent:
/// routine events always keep at least half of the queue.
pub const MAX_CRITICAL_RESERVE_PERCENT: u8 = 50;

/// Default size at which a segment is closed and a new one started (a
/// segment is also closed when the UTC date changes).
///
/// Small enough to copy, archive or inspect one segment at a time; large
/// enough that rotation is rare.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Longest time a shutdown (or the drop of the last handle) keeps retrying
/// writes the disk refuses before it gives up on what is still unwritten.
/// Long enough to ride out a moment of a full disk, short enough that a
/// process told to stop does stop.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How an [`AuditLogger`] stores records.
#[derive(Debug, Clone)]
pub struct LoggerConfig {
    dir: PathBuf,
    queue_capacity: usize,
    queue_bytes: usize,
    critical_reserve: u8,
    fail_closed: bool,
    flush_mode: FlushMode,
    max_segment_bytes: u64,
    epoch_records: u64,
    epoch_interval: Duration,
    /// Signed checkpoints; set through the methods in [`crate::logtree`].
    pub(crate) checkpoints: crate::logtree::CheckpointSettings,
}

impl LoggerConfig {
    /// Records go to segment files in `dir`, created (mode `0700`) if
    /// missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoggerConfig {
            dir: dir.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            critical_reserve: DEFAULT_CRITICAL_RESERVE_PERCENT,
            fail_closed: false,
            flush_mode: FlushMode::default(),
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            epoch_records: DEFAULT_EPOCH_RECORDS,
            epoch_interval: DEFAULT_EPOCH_INTERVAL,
            checkpoints: Default::default(),
        }
    }

    /// Sets the queue capacity in events (at least 1); see
    /// [`critical_reserve`](Self::critical_reserve) for the share routine
    /// events get.
    #[must_use]
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events.max(1);
        self
    }

    /// Sets the queue's bound in bytes of event JSON (at least
    /// [`MIN_QUEUE_BYTES`]). An event is refused when its JSON would take
    /// the queued bytes past the bound of its kind, even while there is
    /// room in events.
    #[must_use]
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(MIN_QUEUE_BYTES);
        self
    }

    /// Sets the share of both queue bounds, in percent (at most
    /// [`MAX_CRITICAL_RESERVE_PERCENT`]), that only critical events
    /// ([`AuditEvent::is_critical`]) may use: routine events are refused
    /// once the queue holds `100 - percent` percent of its events or bytes,
    /// critical ones only at the full bounds. Rounded down, so a queue of
    /// fewer than `100 / percent` events reserves nothing.
    #[must_use]
    pub fn critical_reserve(mut self, percent: u8) -> Self {
        self.critical_reserve = percent.min(MAX_CRITICAL_RESERVE_PERCENT);
        self
    }

    /// With `true`, a critical event that finds no room in the queue is
    /// refused with [`EmitError::CriticalRefused`], which the caller must
    /// treat as "this action was not recorded" (fail the request, as a
    /// server that cannot audit must); with `false`, the default, it is
    /// refused with [`EmitError::BufferFull`] like a routine event, which a
    /// caller may ignore. Either way it is counted in [`Stats`] and in the
    /// next `audit.events_dropped` record.
    #[must_use]
    pub fn fail_closed(mut self, on: bool) -> Self {
        self.fail_closed = on;
        self
    }

    /// Sets when records of non-durable emits are fsynced; see
    /// [`FlushMode`] for each mode's loss window. The default is
    /// [`FlushMode::default`].
    #[must_use]
    pub fn flush_mode(mut self, mode: FlushMode) -> Self {
        self.flush_mode = mode;
        self
    }

    /// Sets the segment size at which a new segment is started: a segment
    /// is closed before a record that might take it past `bytes` (a single
    /// record larger than that still gets a segment of its own). Segments
    /// are also closed when the UTC date of the next record differs from
    /// that of the segment's first record.
    #[must_use]
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.max_segment_bytes = bytes.max(1);
        self
    }

    /// Sets how often the record key evolves: after `records` records or
    /// `interval` of time, whichever comes first (see [`crate::forward`]).
    /// Of what was written before a theft of the writer key, the thief can
    /// rewrite at most the stolen epoch; each evolution
    /// costs one fsynced replacement of the writer key file.
    #[must_use]
    pub fn epoch(mut self, records: u64, interval: Duration) -> Self {
        self.epoch_records = records.max(1);
        self.epoch_interval = interval;
        self
    }

    fn limits(&self) -> queue::Limits {
        queue::Limits::new(self.queue_capacity, self.queue_bytes, self.critical_reserve)
    }

    fn store_config(&self) -> StoreConfig {
        StoreConfig {
            max_segment_bytes: self.max_segment_bytes,
            epoch_records: self.epoch_records,
            epoch_interval: self.epoch_interval,
            clock: Utc::now,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Counters of what the logger did, readable at any time.
///
/// Every emit that passed the open and sequence checks is either accepted
/// or dropped (unless the writer was gone, which is
/// [`EmitError::Closed`]): `accepted + dropped()` is the number of such
/// emits, and
/// `dropped()` is both `dropped_full + dropped_bytes` and
/// `dropped_routine + dropped_critical`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted onto the queue.
    pub accepted: u64,
    /// Events refused because the queue held as many events as their kind
    /// may use ([`QueueBound::Events`]).
    pub dropped_full: u64,
    /// Events refused because the queue held as many bytes as their kind
    /// may use ([`QueueBound::Bytes`]).
    pub dropped_bytes: u64,
    /// Refused events that were routine.
    pub dropped_routine: u64,
    /// Refused events that were critical, fail-closed refusals included.
    pub dropped_critical: u64,
    /// `audit.events_dropped` records written, which count the refusals in
    /// the chain.
    pub drop_records: u64,
    /// Records written to the OS, the logger's own included.
    pub written: u64,
    /// Accepted events that were lost: the writer had failed, or a
    /// shutdown gave up on a disk that still refused them.
    pub failed: u64,
    /// Times the writer made the records it had written durable: for
    /// durable emits, [`flush`](AuditLogger::flush), shutdown and the
    /// [`FlushMode`]; one fsync each (none when a key handover in the
    /// same batch had just fsynced everything). The fsyncs the store makes
    /// on its own, at a key handover or a new segment, are not counted.
    pub fsyncs: u64,
    /// Writes the OS refused (a full disk, an I/O error), each retry that
    /// failed included; see [`Health`].
    pub write_errors: u64,
}

/// How the writer is doing; see [`AuditLogger::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Records are written as they come.
    Ok,
    /// The disk refuses writes (full, or failing). Nothing written before
    /// is touched; the records not written are kept, in the queue and the
    /// writer, and written in order when a retry goes through. Meanwhile
    /// emits return `Ok` while the queue has room, durable emits fail with
    /// [`EmitError::Degraded`], and flushes with [`FlushError::Degraded`].
    Degraded {
        /// When the first refused write of this spell happened.
        since: chrono::DateTime<Utc>,
        /// What the OS said the last time.
        error: String,
    },
    /// An fsync failed, and the writer stored nothing more: the kernel may
    /// have dropped the pages it could not write, so no later fsync could
    /// vouch for them. A new logger continues the trail after its last
    /// whole record.
    Failed {
        /// What the OS said.
        error: String,
    },
}

impl Stats {
    /// Events refused, of every kind and bound.
    pub fn dropped(&self) -> u64 {
        self.dropped_full.saturating_add(self.dropped_bytes)
    }
}

/// Proof of a durable emit: where its record is in the chain.
///
/// `record_hash` is the SHA-256 of the record's whole line without its
/// newline ([`record::line_hash`](crate::record::line_hash)): the value the
/// next record's `prev` holds and the record's Merkle leaf data, so a
/// receipt can be checked against the trail, or against an inclusion proof,
/// later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The record's sequence number.
    pub seq: u64,
    /// The SHA-256 of the record's line.
    pub record_hash: [u8; 32],
}

impl Receipt {
    /// What a [disabled](AuditLogger::disabled) logger returns: sequence
    /// number 0 and an all-zero hash, which no record has.
    pub const NONE: Receipt = Receipt {
        seq: 0,
        record_hash: [0; 32],
    };

    /// `record_hash` in lower-case hex, as `prev` holds it.
    pub fn record_hash_hex(&self) -> String {
        hex::encode(self.record_hash)
    }
}

/// What [`AuditLogger::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// The counters at the end.
    pub stats: Stats,
    /// Sequence number of the last record, the stop record included.
    pub last_seq: u64,
}

/// Emits audit events to a local store. See the [module docs](self).
///
/// Share it with `Arc<AuditLogger>`; every method takes `&self`.
pub struct AuditLogger {
    inner: Option<Active>,
}

struct Active {
    dir: PathBuf,
    fail_closed: bool,
    /// Unbounded: [`Shared::admit`] bounds what is sent.
    events: Sender<Queued>,
    control: Sender<Control>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("AuditLogger(disabled)"),
            Some(a) => write!(f, "AuditLogger({})", a.dir.display()),
        }
    }
}

impl AuditLogger {
    /// A logger that records nothing: every call returns `Ok` at the cost of
    /// a branch. For tests and deployments that audit elsewhere.
    pub fn disabled() -> Self {
        AuditLogger { inner: None }
    }

    /// Opens the store in `config.dir()` and starts the writer thread.
    ///
    /// Continues the existing chain (after cutting and recording a torn tail
    /// left by a crash), or starts a new one. The first record this logger
    /// writes, before returning, is `audit.logger_started`.
    ///
    /// `key` is the audit key the trail's key chain starts from (see
    /// [`crate::forward`]). A trail that exists can also be continued
    /// without it, with [`resume`](Self::resume), so that the audit key can
    /// live off the host.
    pub fn open(config: LoggerConfig, key: AuditKey) -> Result<Self, OpenError> {
        Self::start(config, Some(&key))
    }

    /// Continues an existing trail with the writer key kept in its
    /// directory, without the audit key. Fails with
    /// [`OpenError::NoWriterKey`] for a directory that has none.
    pub fn resume(config: LoggerConfig) -> Result<Self, OpenError> {
        Self::start(config, None)
    }

    fn start(config: LoggerConfig, key: Option<&AuditKey>) -> Result<Self, OpenError> {
        let (store, shared, checkpoints) = start_chain(&config, key)?;
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let writer = Writer::new(store, events_rx, control_rx, Arc::clone(&shared))
            .with_checkpoints(checkpoints)
            .with_flush_mode(config.flush_mode);
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run())
            .map_err(OpenError::Spawn)?;
        tracing::debug!(dir = %config.dir.display(), "audit logger opened");
        Ok(AuditLogger {
            inner: Some(Active {
                dir: config.dir,
                fail_closed: config.fail_closed,
                events: events_tx,
                control: control_tx,
                shared,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Whether this logger records anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` for writing. Never blocks; see the [module docs](self).
    pub fn emit_sync(&self, event: AuditEvent) -> Result<(), EmitError> {
        let Some(active) = &self.inner else {
            return Ok(());
        };
        active.enqueue(event, false).map(|_| ())
    }

    /// Async twin of [`emit_sync`](Self::emit_sync): the same checks, the
    /// same errors, and it never waits either.
    pub async fn emit(&self, event: AuditEvent) -> Result<(), EmitError> {
        self.emit_sync(event)
    }

    /// Queues `event` and **blocks the calling thread** until its record is
    /// written and fsynced, then returns its [`Receipt`].
    ///
    /// Unlike [`emit_sync`](Self::emit_sync), waiting is this method's
    /// contract: it takes as long as the writer's current batch and one
    /// fsync (milliseconds on a slow disk). Do not call it where blocking is
    /// wrong — in `Drop`, or on an async runtime's worker thread; use
    /// [`emit_durable`](Self::emit_durable) there. It never waits for queue
    /// room: a full queue is [`EmitError::BufferFull`] at once, as for
    /// every emit.
    ///
    /// Errors: those of `emit_sync`; [`EmitError::Degraded`] while the disk
    /// refuses writes (at the call, nothing is queued; for a record already
    /// queued, it is still written once the disk takes it); and
    /// [`EmitError::WriterFailed`] when the fsync of the batch holding the
    /// record failed (the record may or may not be on disk then; it is not
    /// vouched for).
    /// A [disabled](Self::disabled) logger returns [`Receipt::NONE`].
    pub fn emit_durable_sync(&self, event: AuditEvent) -> Result<Receipt, EmitError> {
        let Some(active) = &self.inner else {
            return Ok(Receipt::NONE);
        };
        active.shared.check_writable()?;
        match active.enqueue(event, true)? {
            Some(wait) => {
                active.shared.waiting.register(&wait);
                // Degraded between the check and the registration: the
                // writer may not reach this emit any other way.
                active.shared.check_writable()?;
                wait.wait()
            }
            None => Err(EmitError::Closed),
        }
    }

    /// Async form of [`emit_durable_sync`](Self::emit_durable_sync):
    /// resolves once the record is written and fsynced, with its
    /// [`Receipt`]. The same errors.
    ///
    /// It needs no particular runtime: the writer thread wakes the task
    /// through its [`Waker`](std::task::Waker). The event is queued when the
    /// future is first polled; dropping the future after that does not
    /// withdraw the event, which is still written.
    pub async fn emit_durable(&self, event: AuditEvent) -> Result<Receipt, EmitError> {
        let Some(active) = &self.inner else {
            return Ok(Receipt::NONE);
        };
        active.shared.check_writable()?;
        match active.enqueue(event, true)? {
            Some(wait) => {
                active.shared.waiting.register(&wait);
                active.shared.check_writable()?;
                wait.await
            }
            None => Err(EmitError::Closed),
        }
    }

    /// Returns once every event accepted before the call is written and
    /// fsynced. While the disk refuses writes, it retries once and returns
    /// [`FlushError::Degraded`] if that is refused too.
    ///
    /// This waits for the disk: inside an async runtime call it from a
    /// blocking task (`tokio::task::spawn_blocking`).
    pub fn flush(&self) -> Result<(), FlushError> {
        let Some(active) = &self.inner else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        active
            .control
            .send(Control::Flush(ack_tx))
            .map_err(|_| FlushError::WriterGone)?;
        ack_rx.recv().map_err(|_| FlushError::WriterGone)?
    }

    /// Stops accepting events, writes everything queued and an
    /// `audit.logger_stopped` record, fsyncs, and joins the writer thread.
    ///
    /// Also signs a final checkpoint when checkpoints are configured. While
    /// the disk refuses writes it keeps retrying for up to
    /// [`SHUTDOWN_TIMEOUT`], then gives up with [`FlushError::Degraded`],
    /// counting what it could not write in [`Stats::failed`]. (A write or
    /// fsync the kernel itself never returns from is beyond any timeout.)
    ///
    /// Later emits return [`EmitError::Closed`]. A second call returns
    /// [`FlushError::WriterGone`]. Dropping the last handle does the same.
    pub fn shutdown(&self) -> Result<ShutdownReport, FlushError> {
        let Some(active) = &self.inner else {
            return Ok(ShutdownReport {
                stats: Stats::default(),
                last_seq: 0,
            });
        };
        active.shared.close();
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        let sent = active.control.send(Control::Shutdown(ack_tx));
        let result = match sent {
            Ok(()) => ack_rx
                .recv()
                .map_err(|_| FlushError::WriterGone)
                .and_then(|r| r),
            Err(_) => Err(FlushError::WriterGone),
        };
        let handle = active
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            // A panicked writer already reported through the channel.
            let _ = handle.join();
        }
        result.map(|last_seq| ShutdownReport {
            stats: self.stats(),
            last_seq,
        })
    }

    /// Whether the writer is writing, retrying a disk that refuses writes,
    /// or has failed; [`Health::Ok`] for a disabled logger. Cheap: a read
    /// of shared state, no I/O.
    pub fn health(&self) -> Health {
        self.inner
            .as_ref()
            .map_or(Health::Ok, |a| a.shared.health())
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner
            .as_ref()
            .map(|a| a.shared.stats())
            .unwrap_or_default()
    }

    /// The store's directory, or `None` when disabled.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.as_ref().map(|a| a.dir.as_path())
    }
}

impl Active {
    /// Queues `event` without waiting for room. With `durable`, returns the
    /// wait for the writer's answer once the record is fsynced.
    fn enqueue(&self, event: AuditEvent, durable: bool) -> Result<Option<AckWait>, EmitError> {
        // Until this guard drops, shutdown waits: an event accepted here is
        // always queued before the writer's final drain.
        let _in_flight = self.shared.begin_emit();
        self.shared.check_open()?;
        // Serializing these types cannot fail: every field is a string,
        // number, bool or timestamp. Were it to, the event is still kept, as
        // an incident saying so.
        let json = serde_json::to_string(&event).unwrap_or_else(|e| unserializable(&event, &e));
        let (ack, wait) = if durable {
            let (ack, wait) = crate::ack::pair();
            (Some(ack), Some(wait))
        } else {
            (None, None)
        };
        let critical = event.is_critical();
        self.shared.reserve_seq()?;
        // A refused event's ack is dropped unanswered, with nobody waiting
        // on it.
        if let Err(refused) = self.shared.admit(event.event_type(), json.len(), critical) {
            self.shared.release_seq();
            return Err(if critical && self.fail_closed {
                EmitError::CriticalRefused {
                    event_type: event.event_type(),
                    bound: refused.bound,
                    limit: refused.limit,
                }
            } else {
                EmitError::BufferFull {
                    bound: refused.bound,
                    limit: refused.limit,
                }
            });
        }
        match self.events.send(Queued {
            json,
            ack,
            critical,
        }) {
            Ok(()) => {
                self.shared.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(wait)
            }
            Err(unsent) => {
                // Only a writer that is gone drops the receiver.
                self.shared.unadmit(unsent.0.json.len());
                self.shared.release_seq();
                Err(EmitError::Closed)
            }
        }
    }
}

impl Drop for AuditLogger {
    fn drop(&mut self) {
        let running = self.inner.as_ref().is_some_and(|a| {
            a.writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
        });
        if running && let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "audit logger shutdown on drop failed");
        }
    }
}

/// Opens the store and writes the opening records: `audit.logger_started`,
/// and `audit.torn_tail_recovered` when a torn tail was cut. They are fsynced
/// before the logger accepts events, so every start is on record.
type Started = (Store, Arc<Shared>, Option<crate::logtree::Checkpointer>);

fn start_chain(config: &LoggerConfig, key: Option<&AuditKey>) -> Result<Started, OpenError> {
    let (mut store, torn) = Store::open(&config.dir, key, config.store_config())?;
    // The checkpoint origin names the audit key the trail started from,
    // which the store knows even when resumed without that key.
    let key_id = store.origin().to_string();
    // Checkpoints: the tree is rebuilt before the opening records join it.
    let checkpoints = crate::logtree::resume_tree(config, &key_id, store.head().last_seq)?.map(
        |(tree, checkpointer)| {
            store.set_tree(tree);
            checkpointer
        },
    );
    let resumed_after = store.head().last_seq;
    let io_err = |source| OpenError::Io {
        path: config.dir.clone(),
        source,
    };

    let mut opening = vec![AuditEvent::LoggerStarted {
        timestamp: Utc::now(),
        resumed_after_seq: (resumed_after > 0).then_some(resumed_after),
        writer_version: env!("CARGO_PKG_VERSION").into(),
    }];
    for t in &torn {
        opening.push(AuditEvent::TornTailRecovered {
            timestamp: Utc::now(),
            segment: t.segment.as_str().into(),
            offset: t.offset,
            bytes: t.bytes,
            sha256: t.sha256,
            set_aside_as: t.set_aside_as.as_str().into(),
        });
    }
    for event in &opening {
        if store.head().last_seq == u64::MAX {
            return Err(OpenError::SequenceExhausted {
                path: config.dir.clone(),
            });
        }
        let json = serde_json::to_string(event).map_err(|e| io_err(e.into()))?;
        store.append(&json).map_err(io_err)?;
    }
    store.sync().map_err(io_err)?;
    // The recoveries are in the chain now; should this fail, the next start
    // records them a second time, which is the lesser harm.
    if let Err(e) = crate::store::settle_torn(&config.dir, &torn) {
        tracing::warn!(error = %e, "cannot rename a recorded torn tail's side file");
    }
    // Counting a segment manifest the store may have written first.
    let written = store.head().last_seq.saturating_sub(resumed_after);
    let shared = Arc::new(Shared::new(store.head().last_seq, written).with_limits(config.limits()));
    Ok((store, shared, checkpoints))
}

/// The JSON stored for an event that could not be serialized: a security
/// incident naming its type, so the event's occurrence is not lost.
fn unserializable(event: &AuditEvent, err: &serde_json::Error) -> String {
    let incident = AuditEvent::SecurityIncident {
        timestamp: event.timestamp(),
        kind: "audit-serialization".into(),
        description: format!(
            "event {} could not be serialized: {err}",
            event.event_type()
        )
        .into(),
        severity: crate::Severity::High,
    };
    serde_json::to_string(&incident).unwrap_or_default()
}

/// Sequence numbers promised to queued events, shared with the writer.
#[derive(Debug)]
pub(crate) struct SeqBudget {
    reserved: AtomicU64,
}

impl SeqBudget {
    pub fn new(last_written: u64) -> Self {
        SeqBudget {
            reserved: AtomicU64::new(last_written),
        }
    }

    /// Promises one more number; fails when none is left.
    pub fn reserve(&self) -> Result<(), EmitError> {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_add(1))
            .map(|_| ())
            .map_err(|_| EmitError::SequenceExhausted)
    }

    /// Takes back a promise whose event was not queued.
    pub fn release(&self) {
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1));
    }
}

#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod tests;
