//! Re-verification of every resident shard, once (`reverify_all`) and on a
//! background thread (`spawn_reverifier`): clean shards pass and are
//! recorded, a corrupted one is reported and recorded, freed shards are
//! skipped, and the thread stops with its handle or with the manager.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_logging::AuditEvent;
use vram_residency::ShardSpec;

fn spec(i: u32) -> ShardSpec {
    ShardSpec::new(format!("m#{i}"), "m", i, 3)
}

/// Polls `done` until it holds; a liveness bound, not a timing claim.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_pass_checks_every_resident_shard_and_names_the_corrupted_one() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shards: Vec<_> = (0..3)
        .map(|i| {
            manager
                .seal_shard(&spec(i), &vec![i as u8; 40_000])
                .unwrap()
        })
        .collect();

    let clean = manager.reverify_all();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!((clean.verified, clean.skipped), (3, 0));
    assert_eq!(clean.bytes, 120_000);

    manager.corrupt_resident_byte(&shards[1], 39_999).unwrap();
    let dirty = manager.reverify_all();
    assert_eq!(dirty.verified, 2);
    assert_eq!(dirty.failed.len(), 1, "{dirty:?}");
    assert_eq!(dirty.failed[0].shard_id, "m#1");
    assert!(
        dirty.failed[0].reason.contains("resident bytes changed"),
        "{}",
        dirty.failed[0].reason
    );

    let events = trail.events();
    let verified = |id: &str| {
        events
            .iter()
            .filter(|e| matches!(e, AuditEvent::SealVerified { shard_id, .. } if shard_id.as_str() == id))
            .count()
    };
    assert_eq!(
        (verified("m#0"), verified("m#1"), verified("m#2")),
        (2, 1, 2)
    );
    assert!(events.iter().any(|e| matches!(
        e,
        AuditEvent::SealVerificationFailed { shard_id, digests: Some(_), .. } if shard_id.as_str() == "m#1"
    )));
}

#[test]
fn a_deallocated_shard_is_no_longer_checked_and_not_a_failure() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let kept = manager.seal_shard(&spec(0), b"kept").unwrap();
    let freed = manager.seal_shard(&spec(1), b"freed").unwrap();
    manager.deallocate(freed).unwrap();

    let report = manager.reverify_all();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.verified, 1);
    assert_eq!(report.bytes, kept.bytes);
    assert!(
        !trail.types().contains(&"vram.seal_verification_failed"),
        "a freed shard must not be recorded as a failed verification"
    );
}

#[test]
fn the_background_thread_finds_corruption_and_stops_with_its_handle() {
    let trail = common::Trail::open();
    let manager = Arc::new(trail.manager(1 << 20));
    let shard = manager.seal_shard(&spec(0), &[9u8; 50_000]).unwrap();

    let reverifier = manager.spawn_reverifier(Duration::from_millis(10)).unwrap();
    eventually("two clean passes", || reverifier.passes() >= 2);
    assert_eq!(reverifier.failures(), 0);
    let last = reverifier.last_report().unwrap();
    assert_eq!((last.verified, last.bytes), (1, 50_000));

    manager.corrupt_resident_byte(&shard, 0).unwrap();
    eventually("a pass that sees the flipped bit", || {
        reverifier.failures() >= 1
    });
    let report = reverifier.stop().unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(trail.types().contains(&"vram.seal_verification_failed"));
}

#[test]
fn the_background_thread_ends_once_the_manager_is_gone() {
    let trail = common::Trail::open();
    let manager = Arc::new(trail.manager(1 << 20));
    manager.seal_shard(&spec(0), b"weights").unwrap();
    let reverifier = manager.spawn_reverifier(Duration::from_millis(5)).unwrap();
    eventually("a first pass", || reverifier.passes() >= 1);

    drop(manager);
    // The resident shard was freed by the manager's drop, on whichever
    // thread held the last reference.
    eventually("the shard freed", || {
        trail.types().contains(&"vram.deallocated")
    });
    let passes = reverifier.passes();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        reverifier.passes(),
        passes,
        "passes went on after the manager was dropped"
    );
    // Stopping a thread that already ended returns at once.
    reverifier.stop();
}
