//! Typed security audit events, written to a tamper-evident local store.
//!
//! # A tour
//!
//! - [`AuditEvent`] is what you record: about thirty typed events of an
//!   inference service (authentication, authorization, tasks, VRAM sealing,
//!   nodes, security incidents, data access, GDPR), each with a stable
//!   dotted name such as `vram.sealed`, a [`Severity`] and a notion of being
//!   critical. Free-form fields are [`Text`], which escapes control and bidi
//!   characters and truncates with a marker, so no event is ever refused for
//!   its content.
//! - [`AuditLogger`] records them. [`AuditLogger::emit_sync`] never blocks
//!   and needs no async runtime (use it in `Drop`, in plain threads, inside
//!   tokio); [`AuditLogger::emit`] is the async twin. Both put the event on a
//!   queue for one writer thread, bounded in events and bytes with a share
//!   reserved for critical events; a full queue is
//!   [`EmitError::BufferFull`] (or, for a critical event on a
//!   [fail-closed](LoggerConfig::fail_closed) logger,
//!   [`EmitError::CriticalRefused`]), never a wait, and every refusal is
//!   counted in [`Stats`] and written into the chain as an
//!   `audit.events_dropped` record. [`FlushMode`] says when their records
//!   are fsynced, and what a power loss can take. When an event must survive a
//!   power loss before the caller goes on, [`AuditLogger::emit_durable`]
//!   (async, any runtime) and [`AuditLogger::emit_durable_sync`] (blocks)
//!   return only once its record is fsynced, with a [`Receipt`] of its
//!   sequence number and line hash; concurrent durable emits share fsyncs.
//!   [`AuditLogger::flush`] returns once everything emitted is on disk;
//!   [`AuditLogger::shutdown`] (or dropping the last handle) drains the
//!   queue and signs a final checkpoint. A full disk makes the writer keep
//!   and retry what it could not write; [`AuditLogger::health`] and
//!   [`Stats`] report it.
//!   [`AuditLogger::disabled`] records nothing.
//! - The store is a directory of append-only segment files, one JSON record
//!   per line (see [`record`] for the layout). Each record has a sequence
//!   number that continues across restarts, the SHA-256 of the line before
//!   it, and an HMAC-SHA256 under a *forward-secure* key ([`forward`]): a
//!   chain of epoch keys that starts from the [`AuditKey`] and only runs
//!   forward, so whoever steals the writer's current key cannot rewrite an
//!   earlier epoch. The audit key is needed to start a trail and to verify
//!   it, not to continue it ([`AuditLogger::resume`]), so it can be kept off
//!   the host. A crash that leaves half a record is repaired on the next
//!   start and the repair itself is recorded. A segment is closed at a size
//!   limit ([`LoggerConfig::max_segment_bytes`]) or when the UTC date
//!   changes, and the next segment opens with an `audit.segment_closed`
//!   record that seals the closed file's name, records, SHA-256 and the
//!   Merkle root of its records.
//! - [`verify_dir`] proves a directory: it streams every record, checks
//!   authenticators, numbering and links and every closed segment against
//!   its manifest, and names the first bad record or segment
//!   ([`verify::Finding`]). [`query::query`] reads events back by type,
//!   severity and time.
//! - What a local check cannot prove: with a [`checkpoint::CheckpointSigner`]
//!   in [`LoggerConfig::checkpoint_signer`], every record is also a leaf of
//!   an RFC 9162 Merkle tree ([`merkle`]) and the writer signs checkpoints of
//!   it in the C2SP `tlog-checkpoint` and `signed-note` formats
//!   ([`checkpoint`]), so tools outside sealtrail can check them.
//!   [`logtree::verify_dir_with_checkpoints`] checks them while verifying,
//!   and against an *anchor* — a checkpoint exported and kept elsewhere —
//!   which catches records cut off the end and a history rewritten with a
//!   stolen record key. [`logtree`] explains the layout and the limits.
//! - [`retention::retire`] deletes or archives the oldest closed segments
//!   once they are past a retention time and an anchor covers them,
//!   recording in the chain what it removed; the verifier then starts the
//!   trail at the cut and holds the cut against that record.
//!
//! ```
//! use std::sync::Arc;
//! use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let key = AuditKey::generate()?;
//! let logger = Arc::new(AuditLogger::open(LoggerConfig::new(dir.path()), key.clone())?);
//! logger.emit_sync(AuditEvent::AuthFailure {
//!     timestamp: chrono::Utc::now(),
//!     attempted_actor: "mallory\u{202E}".into(),
//!     method: "api-key".into(),
//!     source_ip: None,
//!     reason: "unknown key".into(),
//! })?;
//! logger.shutdown()?;
//! assert!(audit_logging::verify_dir(dir.path(), &key)?.is_intact());
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! - A thief of the writer key can rewrite the key epoch they stole (up to
//!   [`forward::DEFAULT_EPOCH_RECORDS`] records or
//!   [`forward::DEFAULT_EPOCH_INTERVAL`] by default) and forge everything
//!   written after the theft, since the key chain runs forward; a thief of the audit
//!   key can rewrite the whole chain, which only a signed checkpoint kept out
//!   of the attacker's reach (an anchor) then shows, for the records it
//!   covers.
//! - Old epoch keys are overwritten in memory and the key file is replaced
//!   by rename; whether the old file's blocks are really gone is up to the
//!   file system and the disk.
//! - Removing the newest records from the end of the log is not detectable by
//!   the chain alone; it takes an anchor (or stored checkpoints the attacker
//!   left in place). No inclusion or consistency proofs are served yet.
//! - Records of [`AuditLogger::emit_sync`] and [`AuditLogger::emit`] are
//!   fsynced when the [`FlushMode`] says (by default, critical ones with
//!   their batch, routine ones within [`SYNC_INTERVAL`]), or on
//!   [`AuditLogger::flush`]; only a durable emit's `Ok` means the record is
//!   on disk. A durable emit waits behind every event queued before it, and
//!   its guarantee is only as good as the disk's handling of `fdatasync`
//!   (a write cache that lies about it defeats it). A write the disk
//!   refuses is kept and retried ([`Health::Degraded`]); meanwhile durable
//!   emits fail at once rather than wait, and a durable emit that failed
//!   says nothing about whether its record reaches the disk later. A
//!   failed fsync stops the writer for good ([`Health::Failed`]); it does
//!   not try to rewrite what the kernel may have dropped. A process that
//!   exits without a shutdown loses the events still queued (see
//!   [`logger`]).
//! - Retention ([`retention::retire`]) needs the audit key and an anchor that
//!   covers what it retires, and nothing schedules it. After it, proofs
//!   ([`logtree::prove_inclusion`], [`logtree::prove_consistency`]) are
//!   refused, and an anchor older than the cut cannot be checked
//!   ([`verify::VerifyError::AnchorRetired`]). Segments removed any other
//!   way make the trail fail to verify (`segment_missing`).
//! - The critical reserve protects critical events from routine ones, not
//!   from each other: a flood of critical events (an attacker failing to
//!   log in as fast as it can) fills the reserve and then has its own
//!   events refused, counted and recorded like any others. The drop
//!   records count refused events; they cannot say what the events held.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod ack;
pub mod checkpoint;
mod error;
pub mod event;
pub mod forward;
pub mod hexval;
pub mod key;
pub mod logger;
pub mod logtree;
pub mod merkle;
pub mod query;
pub mod record;
pub mod retention;
mod store;
pub mod text;
pub mod verify;
mod writer;

pub use error::{EmitError, FlushError, OpenError};
pub use event::{
    AuditEvent, DeviceRef, Digest, DigestMismatch, RetiredSegment, Severity, TaskId,
    UnknownSeverity,
};
pub use key::{AuditKey, KeyError, KeyId};
pub use logger::{
    AuditLogger, DEFAULT_CRITICAL_RESERVE_PERCENT, DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_SYNC_EVENTS, FlushMode, Health, LoggerConfig,
    MAX_CRITICAL_RESERVE_PERCENT, MIN_QUEUE_BYTES, QueueBound, Receipt, SHUTDOWN_TIMEOUT,
    SYNC_INTERVAL, ShutdownReport, Stats,
};
pub use record::{MAX_RECORD_BYTES, SCHEMA_VERSION};
pub use store::{list_segments, parse_segment_name, segment_name};
pub use text::{MAX_TEXT_BYTES, TRUNCATION_MARKER, Text};
pub use verify::{VerifyReport, verify_dir};
