//! Errors, one enum per concern: opening a store, emitting an event, and
//! waiting for the writer. Verification findings are not errors; they live in
//! [`verify`](crate::verify).

use std::io;
use std::path::PathBuf;

/// Why a logger could not open its store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file or directory of the store could not be used.
    #[error("audit store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Another logger (in this process or another) is writing to the
    /// directory.
    #[error(
        "audit store {path} is in use by another writer (its writer.lock is held); \
         stop that process or use another directory"
    )]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// A segment file is readable or writable by group or others.
    #[error(
        "audit segment {path} has mode {mode:04o}, which lets other users read or change it; \
         run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The segment.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The last record is damaged in a way a crash cannot explain.
    #[error("audit segment {path} ends in a damaged record ({reason}); run `sealtrail verify`")]
    CorruptTail {
        /// The segment.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The last record does not authenticate under this key, so the chain
    /// cannot be continued without vouching for records the logger cannot
    /// check. Either the key is the wrong one (the record names another key
    /// id) or the record was changed.
    #[error(
        "the last record (seq {seq}) in {path} does not authenticate under key {key_id}; \
         it names key {record_key_id}: if that differs, this is the wrong key file, \
         otherwise the record was modified (run `sealtrail verify`)"
    )]
    TailNotAuthentic {
        /// The segment.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// The key id the record names.
        record_key_id: String,
        /// The id of the key given to the logger.
        key_id: String,
    },
    /// The writer key file exists but cannot be used.
    #[error("cannot use the writer key of the audit store")]
    WriterKey(#[source] crate::KeyError),
    /// The directory holds a trail started from another audit key.
    #[error(
        "the audit trail in {path} was started with audit key {trail_key_id}, not {key_id}; \
         use that trail's key or another directory"
    )]
    ForeignTrail {
        /// The store's directory.
        path: PathBuf,
        /// The audit key the trail belongs to.
        trail_key_id: String,
        /// The audit key given.
        key_id: String,
    },
    /// Resuming needs the writer key, and the directory has none: a new
    /// trail, or one whose writer key was removed, needs the audit key.
    #[error(
        "the audit store {path} has no writer key (writer.key); open it with the audit key \
         (sealtrail: --key) to start or rebuild the chain"
    )]
    NoWriterKey {
        /// The store's directory.
        path: PathBuf,
    },
    /// The log no longer has the tree its newest signed checkpoint commits
    /// to (see [`logtree`](crate::logtree)): records were cut off or
    /// rewritten, or the checkpoint is damaged. The logger does not sign a
    /// history it cannot vouch for.
    #[error("cannot continue the checkpointed log at {path}: {reason}")]
    CheckpointMismatch {
        /// The audit directory or checkpoint file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// The log has used every sequence number.
    #[error("the audit log in {path} has no sequence numbers left; start a new log directory")]
    SequenceExhausted {
        /// The store's directory.
        path: PathBuf,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(#[source] io::Error),
}

/// Why an event was not accepted. Nothing is written for a refused event;
/// the caller decides what to do (see each variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The queue is full for this event's kind; the event was dropped,
    /// counted in [`Stats`](crate::Stats) and in the next
    /// `audit.events_dropped` record. The writer is behind (slow disk) or
    /// stopped. For a routine event the limit is the queue's bound less the
    /// share reserved for critical events.
    #[error("audit queue full ({limit} {bound}); event dropped")]
    BufferFull {
        /// The bound the event hit.
        bound: crate::QueueBound,
        /// That bound's limit for the event's kind.
        limit: usize,
    },
    /// A critical event found no room in the queue, even in the share
    /// reserved for critical events, and the logger is
    /// [fail-closed](crate::LoggerConfig::fail_closed): the event is *not
    /// recorded*, and the caller must act on that (fail the operation it
    /// describes rather than let it go unaudited). It is counted like any
    /// refused event, in [`Stats::dropped_critical`](crate::Stats) and the
    /// next `audit.events_dropped` record.
    #[error(
        "audit queue full ({limit} {bound}): critical event {event_type} was not recorded; \
         the action it describes must not proceed unaudited"
    )]
    CriticalRefused {
        /// The refused event's type, e.g. `auth.failure`.
        event_type: &'static str,
        /// The bound the event hit.
        bound: crate::QueueBound,
        /// That bound's limit.
        limit: usize,
    },
    /// The log has used every sequence number; the event was not queued.
    #[error("audit sequence numbers exhausted; start a new log directory")]
    SequenceExhausted,
    /// The logger was shut down.
    #[error("audit logger is shut down")]
    Closed,
    /// An fsync failed and the writer stopped ([`Health::Failed`](crate::Health::Failed));
    /// events are no longer stored.
    #[error("audit writer failed: {0}")]
    WriterFailed(String),
    /// A durable emit whose record cannot be made durable now: the disk
    /// refuses writes (it is full, or failing) and the writer is retrying
    /// ([`Health::Degraded`](crate::Health::Degraded)). A durable emit
    /// refused at the call queued nothing; one whose record the writer
    /// already held keeps it queued, to be written, once, when the disk
    /// takes writes again.
    #[error("audit writer cannot write now, and is retrying: {0}")]
    Degraded(String),
}

/// Why [`AuditLogger::flush`](crate::AuditLogger::flush) or
/// [`shutdown`](crate::AuditLogger::shutdown) could not confirm that
/// everything is on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The writer hit an I/O error; what it says is in the message.
    #[error("audit writer failed: {0}")]
    WriterFailed(String),
    /// The disk refuses writes and the writer is retrying
    /// ([`Health::Degraded`](crate::Health::Degraded)): records not yet
    /// written stay queued. From a shutdown: it gave up after
    /// [`SHUTDOWN_TIMEOUT`](crate::logger::SHUTDOWN_TIMEOUT), and what was
    /// unwritten is counted in [`Stats::failed`](crate::Stats::failed).
    #[error("audit writer cannot write now: {0}")]
    Degraded(String),
    /// The writer thread is gone (it panicked or was already shut down).
    #[error("audit writer is not running")]
    WriterGone,
}
