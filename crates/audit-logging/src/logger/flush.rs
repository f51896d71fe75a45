//! [`FlushMode`]: when the writer fsyncs the records of non-durable emits.
//!
//! Whatever the mode, the writer hands every batch to the OS as soon as it
//! has taken it from the queue, so a crash of *the process* (`kill -9`, a
//! panic elsewhere, the OOM killer) loses only events still queued: at most
//! the queue's bounds. What the mode decides is what a crash of *the
//! machine* (power loss, kernel panic) can take: records written but not
//! yet fsynced. Durable emits, [`flush`](crate::AuditLogger::flush) and
//! shutdown fsync in every mode.

use std::time::Duration;

/// Default longest time written records stay without an fsync; see
/// [`FlushMode`].
///
/// One second is journald's and auditd's order of magnitude: a power loss
/// takes a second of routine records at most, and an idle writer wakes at
/// most once a second for it.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Default number of records written before an fsync is due, whatever the
/// time; see [`FlushMode`].
///
/// The same as the records of a key epoch
/// ([`DEFAULT_EPOCH_RECORDS`](crate::forward::DEFAULT_EPOCH_RECORDS)): a key
/// handover fsyncs anyway, so at full speed this bound costs next to
/// nothing, while it caps what a power loss can take at a high rate.
pub const DEFAULT_SYNC_EVENTS: u64 = 10_000;

/// When the writer fsyncs the records of
/// [`emit_sync`](crate::AuditLogger::emit_sync) and
/// [`emit`](crate::AuditLogger::emit). Set with
/// [`LoggerConfig::flush_mode`](crate::LoggerConfig::flush_mode).
///
/// Loss windows, for a crash of the machine. A crash of the process loses
/// only what is still queued, in every mode, since the writer hands each
/// batch to the OS as soon as it takes it from the queue.
///
/// A power loss can take what is queued, the batch being written (at most
/// 256 records), and:
///
/// | mode | also |
/// | --- | --- |
/// | `Immediate` | nothing |
/// | `Batched` | up to `max_events - 1` earlier records, written within `max_interval`¹ |
/// | `Hybrid` (default) | as `Batched`, but routine records only: a critical one is fsynced with its batch |
///
/// ¹ Plus the time of one batch: the writer checks the interval between
/// batches.
///
/// In every mode the fsync covers everything written before it, so a
/// record is durable at the latest when any later record that triggers an
/// fsync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Every batch is fsynced before the writer takes the next: each record
    /// is durable before the writer takes another event from the queue.
    /// The cost is one fsync per batch (a batch is whatever was queued, up
    /// to 256 events), so a writer that keeps up with a trickle of events
    /// fsyncs once per event.
    Immediate,
    /// Written records are fsynced once `max_events` of them (at least 1)
    /// are waiting, or `max_interval` after the oldest of them was written,
    /// whichever comes first. The interval is a real timer: a quiet tail is
    /// fsynced on time, without waiting for another event to arrive.
    Batched {
        /// Records written without an fsync that make one due.
        max_events: u64,
        /// Longest time a written record waits for its fsync.
        max_interval: Duration,
    },
    /// As `Batched`, except that a batch holding a critical event
    /// ([`AuditEvent::is_critical`](crate::AuditEvent::is_critical)) is
    /// fsynced as soon as it is written, like a durable emit's batch (and
    /// sharing that fsync with the routine records around it). The
    /// writer's own `audit.events_dropped` records are batched like routine
    /// ones: under overload nearly every batch carries one, and an fsync
    /// each would slow the writer when it most needs to catch up.
    Hybrid {
        /// Records written without an fsync that make one due.
        max_events: u64,
        /// Longest time a written record waits for its fsync.
        max_interval: Duration,
    },
}

impl Default for FlushMode {
    /// `Hybrid` with [`DEFAULT_SYNC_EVENTS`] and [`SYNC_INTERVAL`].
    ///
    /// Critical events are the ones whose loss would hide an attack or a
    /// failure, and they are rare in normal operation, so making each
    /// durable at once costs little; when they come in a flood, group
    /// commit bounds the cost to one fsync per writer batch. Routine
    /// records, the bulk, keep the throughput of batched fsyncs.
    fn default() -> Self {
        FlushMode::Hybrid {
            max_events: DEFAULT_SYNC_EVENTS,
            max_interval: SYNC_INTERVAL,
        }
    }
}

impl FlushMode {
    /// Whether a batch must be fsynced as soon as it is written; `critical`
    /// says whether it holds a critical record.
    pub(crate) fn syncs_batch(&self, critical: bool) -> bool {
        match self {
            FlushMode::Immediate => true,
            FlushMode::Batched { .. } => false,
            FlushMode::Hybrid { .. } => critical,
        }
    }

    /// Whether `unsynced` written records make an fsync due.
    pub(crate) fn count_due(&self, unsynced: u64) -> bool {
        match self {
            FlushMode::Immediate => unsynced > 0,
            FlushMode::Batched { max_events, .. } | FlushMode::Hybrid { max_events, .. } => {
                unsynced >= (*max_events).max(1)
            }
        }
    }

    /// Longest time a written record waits for its fsync.
    pub(crate) fn max_interval(&self) -> Duration {
        match self {
            FlushMode::Immediate => Duration::ZERO,
            FlushMode::Batched { max_interval, .. } | FlushMode::Hybrid { max_interval, .. } => {
                *max_interval
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_immediate_and_hybrid_for_critical_batches_sync_a_batch_at_once() {
        let batched = FlushMode::Batched {
            max_events: 10,
            max_interval: SYNC_INTERVAL,
        };
        assert!(FlushMode::Immediate.syncs_batch(false));
        assert!(!batched.syncs_batch(true));
        assert!(FlushMode::default().syncs_batch(true));
        assert!(!FlushMode::default().syncs_batch(false));
    }

    #[test]
    fn a_zero_event_bound_means_one() {
        let mode = FlushMode::Batched {
            max_events: 0,
            max_interval: SYNC_INTERVAL,
        };
        assert!(!mode.count_due(0));
        assert!(mode.count_due(1));
    }
}
