//! Admission to the writer's queue and the tally of what it refused.
//!
//! The queue itself is an unbounded channel; what bounds it is [`Admission`],
//! which every emit passes before it sends and the writer releases as it
//! takes each event. It counts events *and* bytes (the length of the
//! event's JSON) in one atomic word, so an emit is admitted or refused by a
//! single compare-and-swap, never by a lock or a wait. Routine events are
//! refused once either count passes the routine limit; critical events
//! ([`AuditEvent::is_critical`]) may go on into the reserve up to the full
//! bounds. So as long as fewer critical events are queued at once than the
//! reserve holds, a flood of routine events cannot crowd out a single one:
//! routine events alone never occupy more than the routine limit.
//!
//! A refused event is counted in the [`DropTally`], per event type, per kind
//! (routine or critical) and per bound. The writer takes the tally before
//! the next record it writes and puts it into the chain as an
//! `audit.events_dropped` record, so a gap in the trail is written down
//! where it happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::AuditEvent;

/// Which bound of the queue refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueBound {
    /// The queue held as many events as it may.
    Events,
    /// The queue held as many bytes of event JSON as it may.
    Bytes,
}

impl std::fmt::Display for QueueBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueueBound::Events => "events",
            QueueBound::Bytes => "bytes",
        })
    }
}

/// Why [`Admission::admit`] refused an event: the bound it hit and that
/// bound's limit for the event's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub bound: QueueBound,
    pub limit: usize,
}

/// The queue's bounds, already split into the routine limit and the
/// critical limit (the full bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    events: u32,
    bytes: u32,
    routine_events: u32,
    routine_bytes: u32,
}

impl Limits {
    /// `events` and `bytes` are the full bounds (each clamped to `u32`, far
    /// beyond any sensible queue); `reserve_percent` of each is kept for
    /// critical events, rounded down.
    pub fn new(events: usize, bytes: usize, reserve_percent: u8) -> Self {
        let events = clamp(events);
        let bytes = clamp(bytes);
        let routine = |limit: u32| {
            let reserved = u64::from(limit)
                .saturating_mul(u64::from(reserve_percent))
                .checked_div(100)
                .unwrap_or(0);
            limit.saturating_sub(u32::try_from(reserved).unwrap_or(u32::MAX))
        };
        Limits {
            events,
            bytes,
            routine_events: routine(events),
            routine_bytes: routine(bytes),
        }
    }

    /// The bounds an event of this kind is admitted within.
    fn for_kind(&self, critical: bool) -> (u32, u32) {
        if critical {
            (self.events, self.bytes)
        } else {
            (self.routine_events, self.routine_bytes)
        }
    }
}

impl Default for Limits {
    /// The defaults of [`LoggerConfig`](crate::LoggerConfig).
    fn default() -> Self {
        Limits::new(
            super::DEFAULT_QUEUE_CAPACITY,
            super::DEFAULT_QUEUE_BYTES,
            super::DEFAULT_CRITICAL_RESERVE_PERCENT,
        )
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Events and bytes queued, packed as `events << 32 | bytes` so that both
/// are checked and taken in one atomic step.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    used: AtomicU64,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            used: AtomicU64::new(0),
        }
    }

    /// Takes room for one event of `bytes` bytes, or says which bound
    /// refuses it. Never waits.
    pub fn admit(&self, bytes: usize, critical: bool) -> Result<(), Refusal> {
        let (max_events, max_bytes) = self.limits.for_kind(critical);
        // An event too large for the byte bound is refused by it, never by
        // an overflowing sum.
        let size = u32::try_from(bytes).unwrap_or(u32::MAX);
        let mut refusal = None;
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (events, used) = unpack(word);
                let events = events.checked_add(1).filter(|&e| e <= max_events);
                let used = used.checked_add(size).filter(|&b| b <= max_bytes);
                match (events, used) {
                    (Some(events), Some(used)) => Some(pack(events, used)),
                    (None, _) => {
                        refusal = Some(Refusal {
                            bound: QueueBound::Events,
                            limit: max_events as usize,
                        });
                        None
                    }
                    (_, None) => {
                        refusal = Some(Refusal {
                            bound: QueueBound::Bytes,
                            limit: max_bytes as usize,
                        });
                        None
                    }
                }
            });
        match (taken, refusal) {
            (Ok(_), _) => Ok(()),
            (Err(_), Some(refusal)) => Err(refusal),
            // `fetch_update` fails only when the closure refused, which
            // sets `refusal`; this arm is for the type checker.
            (Err(_), None) => Err(Refusal {
                bound: QueueBound::Events,
                limit: max_events as usize,
            }),
        }
    }

    /// Gives back the room of one event of `bytes` bytes: the writer has
    /// taken it, or its send failed.
    ///
    /// Call it only for an event that was admitted, with the same `bytes`:
    /// then both halves of the word hold at least what is taken away, so
    /// one subtraction of the packed pair cannot borrow from the event
    /// count or wrap, and the writer never loops on a compare-and-swap
    /// against a flood of emitters.
    pub fn release(&self, bytes: usize) {
        let size = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.used.fetch_sub(pack(1, size), Ordering::AcqRel);
    }

    /// Events and bytes queued now.
    #[cfg(test)]
    pub fn used(&self) -> (u32, u32) {
        unpack(self.used.load(Ordering::Acquire))
    }
}

fn pack(events: u32, bytes: u32) -> u64 {
    (u64::from(events) << 32) | u64::from(bytes)
}

fn unpack(word: u64) -> (u32, u32) {
    let events = u32::try_from(word >> 32).unwrap_or(u32::MAX);
    let bytes = u32::try_from(word & u64::from(u32::MAX)).unwrap_or(u32::MAX);
    (events, bytes)
}

/// Refused events not yet written into the chain. Refusals add to it under a
/// short lock (no I/O is ever done under it); the writer takes it whole.
#[derive(Debug, Default)]
pub(crate) struct DropTally {
    /// Refusals since the last take; lets the writer skip the lock when
    /// nothing was refused, which is almost always.
    pending: AtomicU64,
    gap: Mutex<Option<Gap>>,
}

impl DropTally {
    /// Counts one refused event; `head` is the last record the writer has
    /// written.
    pub fn record(&self, event_type: &'static str, critical: bool, bound: QueueBound, head: u64) {
        let now = Utc::now();
        let mut gap = self.gap.lock().unwrap_or_else(PoisonError::into_inner);
        gap.get_or_insert_with(|| Gap::starting(now, head))
            .add(event_type, critical, bound, now);
        self.pending.fetch_add(1, Ordering::Release);
    }

    /// Whether anything was refused since the last take.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }

    /// Takes every refusal counted so far, leaving the tally empty.
    pub fn take(&self) -> Option<Gap> {
        if !self.is_pending() {
            return None;
        }
        let mut gap = self.gap.lock().unwrap_or_else(PoisonError::into_inner);
        self.pending.store(0, Ordering::Release);
        gap.take()
    }
}

/// The refusals of one stretch of time, per event type, kind and bound.
///
/// The per-type counts need no cap on their number: [`AuditEvent`] is a
/// closed set of [`AuditEvent::TYPES`], so the table has one slot per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    by_type: [u64; AuditEvent::TYPES.len()],
    routine: u64,
    critical: u64,
    events_bound: u64,
    bytes_bound: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    /// The last record written before the first refusal.
    since_seq: u64,
}

impl Gap {
    fn starting(now: DateTime<Utc>, since_seq: u64) -> Self {
        Gap {
            since_seq,
            by_type: [0; AuditEvent::TYPES.len()],
            routine: 0,
            critical: 0,
            events_bound: 0,
            bytes_bound: 0,
            first: now,
            last: now,
        }
    }

    fn add(&mut self, event_type: &str, critical: bool, bound: QueueBound, now: DateTime<Utc>) {
        // Every event type is in TYPES (a unit test proves it); were one
        // missing, its refusal would still count in the totals below.
        if let Some(slot) = AuditEvent::TYPES
            .iter()
            .position(|t| *t == event_type)
            .and_then(|i| self.by_type.get_mut(i))
        {
            *slot = slot.saturating_add(1);
        }
        let kind = if critical {
            &mut self.critical
        } else {
            &mut self.routine
        };
        *kind = kind.saturating_add(1);
        let by_bound = match bound {
            QueueBound::Events => &mut self.events_bound,
            QueueBound::Bytes => &mut self.bytes_bound,
        };
        *by_bound = by_bound.saturating_add(1);
        self.last = self.last.max(now);
    }

    /// Events refused in this gap.
    pub fn total(&self) -> u64 {
        self.routine.saturating_add(self.critical)
    }

    /// The `audit.events_dropped` record of this gap, written at `now`.
    pub fn into_event(self, now: DateTime<Utc>) -> AuditEvent {
        let by_type = AuditEvent::TYPES
            .iter()
            .zip(self.by_type)
            .filter(|&(_, n)| n > 0)
            .map(|(t, n)| ((*t).into(), n))
            .collect();
        AuditEvent::EventsDropped {
            timestamp: now,
            dropped: self.total(),
            routine: self.routine,
            critical: self.critical,
            events_bound: self.events_bound,
            bytes_bound: self.bytes_bound,
            by_type,
            since_seq: self.since_seq,
            first_dropped_at: self.first,
            last_dropped_at: self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_events_stop_at_the_routine_limit_and_critical_ones_use_the_reserve() {
        // 8 events, a quarter reserved: routine events get 6.
        let queue = Admission::new(Limits::new(8, 1 << 20, 25));
        for _ in 0..6 {
            queue.admit(10, false).unwrap();
        }
        assert_eq!(
            queue.admit(10, false),
            Err(Refusal {
                bound: QueueBound::Events,
                limit: 6
            })
        );
        queue.admit(10, true).unwrap();
        queue.admit(10, true).unwrap();
        assert_eq!(
            queue.admit(10, true),
            Err(Refusal {
                bound: QueueBound::Events,
                limit: 8
            })
        );
        assert_eq!(queue.used(), (8, 80));
    }

    #[test]
    fn the_byte_bound_refuses_before_the_event_bound_is_reached() {
        // 1000 bytes, 200 reserved.
        let queue = Admission::new(Limits::new(100, 1000, 20));
        for _ in 0..8 {
            queue.admit(100, false).unwrap();
        }
        assert_eq!(
            queue.admit(1, false),
            Err(Refusal {
                bound: QueueBound::Bytes,
                limit: 800
            })
        );
        queue.admit(200, true).unwrap();
        assert_eq!(
            queue.admit(1, true),
            Err(Refusal {
                bound: QueueBound::Bytes,
                limit: 1000
            })
        );
        assert_eq!(queue.used(), (9, 1000));
    }

    #[test]
    fn released_room_is_admitted_again() {
        let queue = Admission::new(Limits::new(2, 1000, 0));
        queue.admit(600, false).unwrap();
        assert!(queue.admit(600, false).is_err());
        queue.release(600);
        queue.admit(600, false).unwrap();
        assert_eq!(queue.used(), (1, 600));
    }

    #[test]
    fn an_event_larger_than_any_bound_is_refused_not_wrapped() {
        let queue = Admission::new(Limits::new(10, 1000, 0));
        queue.admit(999, false).unwrap();
        let refused = queue.admit(usize::MAX, true).unwrap_err();
        assert_eq!(refused.bound, QueueBound::Bytes);
        assert_eq!(queue.used(), (1, 999));
    }

    #[test]
    fn every_event_type_has_a_slot_in_the_tally() {
        let mut gap = Gap::starting(Utc::now(), 0);
        for event in crate::event::samples::all() {
            gap.add(
                event.event_type(),
                event.is_critical(),
                QueueBound::Events,
                Utc::now(),
            );
        }
        assert!(gap.by_type.iter().all(|&n| n == 1), "{:?}", gap.by_type);
    }

    #[test]
    fn a_taken_tally_holds_each_refusal_once() {
        let tally = DropTally::default();
        assert!(tally.take().is_none());
        tally.record("auth.success", false, QueueBound::Events, 7);
        tally.record("auth.success", false, QueueBound::Bytes, 8);
        tally.record("auth.failure", true, QueueBound::Events, 9);
        let gap = tally.take().unwrap();
        assert!(tally.take().is_none(), "taken twice");
        let AuditEvent::EventsDropped {
            dropped,
            routine,
            critical,
            events_bound,
            bytes_bound,
            by_type,
            since_seq,
            ..
        } = gap.into_event(Utc::now())
        else {
            panic!("not a drop record");
        };
        assert_eq!((dropped, routine, critical), (3, 2, 1));
        assert_eq!((events_bound, bytes_bound, since_seq), (2, 1, 7));
        let counts: Vec<(&str, u64)> = by_type.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        assert_eq!(counts, [("auth.failure", 1), ("auth.success", 2)]);
    }
}
