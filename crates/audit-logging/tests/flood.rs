//! A flood of routine events against a trickle of critical ones: eight
//! threads emit routine events as fast as they can into a small queue while
//! a ninth emits critical events. No critical event may be dropped, and the
//! `audit.events_dropped` records in the chain must account for exactly the
//! routine events whose emit was refused, type by type.

mod common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use audit_logging::query::{self, Filter};
use audit_logging::{AuditEvent, AuditLogger, EmitError, FlushMode, LoggerConfig};
use chrono::Utc;
use common::{assert_intact, key, tag_of, tagged};

const ROUTINE_THREADS: u64 = 8;
const ROUTINE_EACH: u64 = 3000;
const CRITICAL_EVENTS: u64 = 400;
/// Small, so the routine threads overrun it; a quarter (8 events) is
/// reserved for critical events.
const QUEUE: usize = 32;
const RESERVE: u64 = 8;

/// A routine event of the second kind the flood uses, so that drop records
/// must keep types apart.
fn login(tag: &str) -> AuditEvent {
    AuditEvent::AuthSuccess {
        timestamp: Utc::now(),
        actor: tag.into(),
        method: "api-key".into(),
        source_ip: None,
    }
}

fn auth_failure(tag: &str) -> AuditEvent {
    AuditEvent::AuthFailure {
        timestamp: Utc::now(),
        attempted_actor: tag.into(),
        method: "api-key".into(),
        source_ip: None,
        reason: "unknown key".into(),
    }
}

/// What one routine thread saw: tags accepted, and refusals per type.
#[derive(Default)]
struct Routine {
    accepted: Vec<String>,
    refused: BTreeMap<&'static str, u64>,
}

fn flood(logger: &Arc<AuditLogger>, thread: u64) -> Routine {
    let mut out = Routine::default();
    for i in 0..ROUTINE_EACH {
        let tag = format!("r{thread}/{i}");
        let event = if i % 2 == 0 {
            tagged(&tag, i)
        } else {
            login(&tag)
        };
        let event_type = event.event_type();
        match logger.emit_sync(event) {
            Ok(()) => out.accepted.push(tag),
            Err(EmitError::BufferFull { .. }) => *out.refused.entry(event_type).or_default() += 1,
            Err(e) => panic!("routine emit: unexpected {e}"),
        }
    }
    out
}

/// Emits the critical events in bursts no larger than the reserve, each
/// burst followed by a flush, so that never more critical events are queued
/// at once than the reserve holds: then none may be refused, however many
/// routine events are queued.
fn critical(logger: &Arc<AuditLogger>) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..CRITICAL_EVENTS {
        let tag = format!("c/{i}");
        logger
            .emit_sync(auth_failure(&tag))
            .unwrap_or_else(|e| panic!("critical event {i} refused: {e}"));
        sent.push(tag);
        if (i + 1) % RESERVE == 0 {
            logger.flush().unwrap();
        }
    }
    sent
}

/// The sum of the drop records' counts, checked record by record.
#[derive(Debug, Default, PartialEq, Eq)]
struct DropRecords {
    records: u64,
    dropped: u64,
    routine: u64,
    critical: u64,
    by_type: BTreeMap<String, u64>,
}

#[test]
fn a_routine_flood_drops_no_critical_event_and_every_drop_is_on_record() {
    let dir = tempfile::tempdir().unwrap();
    // Immediate: one fsync per batch keeps the writer far slower than
    // eight emitters, so the flood overruns the queue.
    let config = LoggerConfig::new(dir.path())
        .queue_capacity(QUEUE)
        .flush_mode(FlushMode::Immediate);
    let logger = Arc::new(AuditLogger::open(config, key()).unwrap());

    let routine: Vec<_> = (0..ROUTINE_THREADS)
        .map(|t| {
            let logger = Arc::clone(&logger);
            std::thread::spawn(move || flood(&logger, t))
        })
        .collect();
    let critical_sent = {
        let logger = Arc::clone(&logger);
        std::thread::spawn(move || critical(&logger))
    }
    .join()
    .unwrap();
    let routine: Vec<Routine> = routine.into_iter().map(|h| h.join().unwrap()).collect();
    let report = logger.shutdown().unwrap();

    // What the emitters saw, and what the counters say.
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    for r in &routine {
        for (t, n) in &r.refused {
            *refused.entry((*t).to_owned()).or_default() += n;
        }
    }
    let refused_total: u64 = refused.values().sum();
    let accepted_routine: u64 = routine.iter().map(|r| r.accepted.len() as u64).sum();
    assert!(
        refused_total > 0,
        "the flood never filled the queue, so this test proved nothing"
    );
    assert_eq!(
        accepted_routine + refused_total,
        ROUTINE_THREADS * ROUTINE_EACH
    );
    let stats = report.stats;
    assert_eq!(stats.dropped(), refused_total);
    assert_eq!(stats.dropped_routine, refused_total);
    assert_eq!(stats.dropped_critical, 0);
    assert_eq!(stats.accepted, accepted_routine + CRITICAL_EVENTS);

    // The trail, read back with the chain verified as it is read.
    let mut found = DropRecords::default();
    let mut tags: BTreeMap<String, u64> = BTreeMap::new();
    let mut stopped_dropped = None;
    let mut last_since = 0;
    query::query(dir.path(), &Filter::default(), Some(&key()), |r| {
        match &r.event {
            AuditEvent::EventsDropped {
                dropped,
                routine,
                critical,
                events_bound,
                bytes_bound,
                by_type,
                since_seq,
                first_dropped_at,
                last_dropped_at,
                ..
            } => {
                let typed: u64 = by_type.values().sum();
                assert_eq!(typed, *dropped, "record {}: by type", r.seq);
                assert_eq!(routine + critical, *dropped, "record {}: by kind", r.seq);
                assert_eq!(events_bound + bytes_bound, *dropped, "record {}", r.seq);
                assert!(
                    *since_seq < r.seq && *since_seq >= last_since,
                    "{since_seq}"
                );
                assert!(first_dropped_at <= last_dropped_at);
                last_since = *since_seq;
                found.records += 1;
                found.dropped += dropped;
                found.routine += routine;
                found.critical += critical;
                for (t, n) in by_type {
                    *found.by_type.entry(t.as_str().to_owned()).or_default() += n;
                }
            }
            AuditEvent::AuthSuccess { actor, .. } => {
                *tags.entry(actor.as_str().to_owned()).or_default() += 1;
            }
            AuditEvent::AuthFailure {
                attempted_actor, ..
            } => {
                *tags.entry(attempted_actor.as_str().to_owned()).or_default() += 1;
            }
            AuditEvent::LoggerStopped { events_dropped, .. } => {
                stopped_dropped = Some(*events_dropped);
            }
            other => {
                if let Some(tag) = tag_of(other) {
                    *tags.entry(tag).or_default() += 1;
                }
            }
        }
        ControlFlow::Continue(())
    })
    .unwrap();

    // No critical event is missing.
    for tag in &critical_sent {
        assert_eq!(tags.get(tag), Some(&1), "critical event {tag}");
    }
    // The drop records account exactly for the refused routine events.
    assert_eq!(
        found,
        DropRecords {
            records: stats.drop_records,
            dropped: refused_total,
            routine: refused_total,
            critical: 0,
            by_type: refused,
        }
    );
    assert_eq!(stopped_dropped, Some(refused_total));
    // Every accepted routine event is there once, and nothing else tagged.
    let expected: BTreeMap<String, u64> = routine
        .iter()
        .flat_map(|r| r.accepted.iter().cloned())
        .chain(critical_sent)
        .map(|t| (t, 1))
        .collect();
    assert_eq!(tags, expected);
    assert_intact(dir.path(), &key());
}
