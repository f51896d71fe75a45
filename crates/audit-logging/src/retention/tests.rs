//! Choosing what to retire, on trails written with an injected clock so
//! that segments have the ages a test needs without anyone sleeping.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::store::tests::test_config;
use crate::store::{Store, StoreConfig, segment_name};

thread_local! {
    /// The time [`injected_clock`] reports on this test's thread.
    static NOW: std::cell::Cell<DateTime<Utc>> =
        const { std::cell::Cell::new(DateTime::UNIX_EPOCH) };
}

fn injected_clock() -> DateTime<Utc> {
    NOW.with(std::cell::Cell::get)
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

const EVENT: &str = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;

/// A trail with one segment per day of `days` (two records each), the
/// last one open. Returns the last sequence number of each segment.
fn trail_of_days(dir: &Path, days: &[&str]) -> Vec<u64> {
    let config = StoreConfig {
        clock: injected_clock,
        ..test_config(1 << 20)
    };
    let key = crate::AuditKey::generate().unwrap();
    let (mut store, _) = Store::open(dir, Some(&key), config).unwrap();
    let mut ends = Vec::new();
    for day in days {
        NOW.with(|now| now.set(at(day)));
        store.append(EVENT).unwrap();
        store.append(EVENT).unwrap();
        ends.push(store.head().last_seq);
    }
    store.sync().unwrap();
    ends
}

fn policy(older_than_hours: i64, now: &str) -> RetentionPolicy {
    RetentionPolicy::new(TimeDelta::hours(older_than_hours)).now(at(now))
}

#[test]
fn old_segments_go_in_order_and_the_first_young_one_stops_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let days = [
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
        "2026-12-03T10:00:00Z",
        "2026-12-04T10:00:00Z",
    ];
    let ends = trail_of_days(dir.path(), &days);
    // Cutoff 2026-12-03T00:00Z: the first two days are past it.
    let plan = plan(dir.path(), u64::MAX, &policy(12, "2026-12-03T12:00:00Z")).unwrap();
    let names: Vec<&str> = plan
        .retired
        .iter()
        .map(|s| s.sealed.segment.as_str())
        .collect();
    assert_eq!(names, [segment_name(1), segment_name(ends[0] + 1)]);
    assert_eq!(plan.retired[1].sealed.last_seq, ends[1]);
    let why = plan.kept_because.unwrap();
    assert!(why.contains("2026-12-03T10:00:00+00:00"), "{why}");
    let cut = plan.cut.unwrap();
    assert_eq!(cut.first_kept_seq(), ends[1] + 1);
    assert_eq!(cut.retired_records(), ends[1]);
}

#[test]
fn the_anchor_bounds_the_cut_even_for_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let days = [
        "2026-12-01T10:00:00Z",
        "2026-12-02T10:00:00Z",
        "2026-12-03T10:00:00Z",
    ];
    let ends = trail_of_days(dir.path(), &days);
    // An anchor one record short of the second segment's end.
    let plan = plan(dir.path(), ends[1] - 1, &policy(1, "2027-01-01T00:00:00Z")).unwrap();
    assert_eq!(plan.retired.len(), 1);
    assert!(
        plan.kept_because
            .unwrap()
            .contains("not all covered by the anchor")
    );
}

#[test]
fn the_open_segment_is_never_retired() {
    let dir = tempfile::tempdir().unwrap();
    let ends = trail_of_days(
        dir.path(),
        &["2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z"],
    );
    let plan = plan(dir.path(), u64::MAX, &policy(1, "2027-01-01T00:00:00Z")).unwrap();
    assert_eq!(plan.retired.len(), 1);
    assert_eq!(plan.cut.unwrap().first_kept_seq(), ends[0] + 1);
    assert!(plan.kept_because.unwrap().contains("open segment"));
}

#[test]
fn a_frontier_computed_by_the_plan_is_the_tree_of_the_retired_records() {
    let dir = tempfile::tempdir().unwrap();
    let ends = trail_of_days(
        dir.path(),
        &[
            "2026-12-01T10:00:00Z",
            "2026-12-02T10:00:00Z",
            "2026-12-03T10:00:00Z",
        ],
    );
    let plan = plan(dir.path(), u64::MAX, &policy(1, "2027-01-01T00:00:00Z")).unwrap();
    let cut = plan.cut.unwrap();
    let mut tree = CompactRange::new();
    let mut last = [0u8; 32];
    for (_, path) in list_segments(dir.path()).unwrap().iter().take(2) {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            crate::logtree::append_line(&mut tree, line.as_bytes()).unwrap();
            last = line_hash(line.as_bytes());
        }
    }
    assert_eq!(tree.size(), ends[1]);
    assert_eq!(cut.tree(), &tree);
    assert_eq!(cut.last_retired_hash().0, last);
}

#[test]
fn a_cutoff_before_the_earliest_time_saturates() {
    let policy = RetentionPolicy::new(TimeDelta::MAX).now(at("2026-12-01T00:00:00Z"));
    assert_eq!(policy.cutoff(), DateTime::<Utc>::MIN_UTC);
}
