//! An allocation beyond the capacity fails with a clear error that carries
//! the numbers, is recorded as `vram.allocation_failed`, and leaves the
//! accounting untouched.

mod common;

use audit_logging::AuditEvent;
use vram_residency::{SealError, ShardSpec};

#[test]
fn allocation_beyond_capacity_fails() {
    let trail = common::Trail::open();
    let manager = trail.manager(1000);
    manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 2), &[1; 600])
        .unwrap();

    let err = manager
        .seal_shard(&ShardSpec::new("m#1", "m", 1, 2), &[2; 500])
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealError::CapacityExceeded {
                requested: 500,
                available: 400,
                capacity: 1000
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "shard of 500 bytes exceeds capacity: 400 of 1000 bytes available"
    );
    assert_eq!((manager.used_bytes(), manager.resident_shards()), (600, 1));
    assert_eq!(manager.backend().allocation_count(), 1);

    match trail.events().last() {
        Some(AuditEvent::VramAllocationFailed {
            shard_id,
            requested_bytes,
            available_bytes,
            reason,
            device,
            ..
        }) => {
            assert_eq!(shard_id.as_str(), "m#1");
            assert_eq!((*requested_bytes, *available_bytes), (500, 400));
            assert!(reason.as_str().contains("exceeds capacity"), "{reason}");
            assert!(device.simulated);
        }
        other => panic!("expected vram.allocation_failed, got {other:?}"),
    }
}

#[test]
fn capacity_freed_by_deallocate_can_be_used_again() {
    let trail = common::Trail::open();
    let manager = trail.manager(1000);
    let first = manager
        .seal_shard(&ShardSpec::new("a#0", "a", 0, 1), &[1; 1000])
        .unwrap();
    assert!(
        manager
            .seal_shard(&ShardSpec::new("b#0", "b", 0, 1), &[2; 1])
            .is_err()
    );
    manager.deallocate(first).unwrap();
    manager
        .seal_shard(&ShardSpec::new("b#0", "b", 0, 1), &[2; 1000])
        .unwrap();
}
