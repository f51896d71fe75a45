//! A handle used after `deallocate` is refused everywhere: verification
//! fails with `vram.seal_verification_failed`, a second deallocation is a
//! `vram.policy_violation`, and neither reaches the memory of the shard that
//! reuses the slot.

mod common;

use audit_logging::AuditEvent;
use vram_residency::{DeallocError, HandleError, ShardSpec, VerifyError};

#[test]
fn handle_after_deallocate_is_refused() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    let kept = shard.clone();
    manager.deallocate(shard).unwrap();
    assert_eq!((manager.used_bytes(), manager.resident_shards()), (0, 0));

    let err = manager.verify_sealed(&kept).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Handle {
                source: HandleError::Stale,
                ..
            }
        ),
        "{err}"
    );
    let err = manager.deallocate(kept.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            DeallocError::Handle {
                source: HandleError::Stale,
                ..
            }
        ),
        "{err}"
    );
    assert!(manager.corrupt_resident_byte(&kept, 0).is_err());

    let events = trail.events();
    let types: Vec<_> = events.iter().map(AuditEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "vram.allocated",
            "vram.sealed",
            "vram.deallocated",
            "vram.seal_verification_failed",
            "vram.policy_violation",
        ]
    );
    match &events[2] {
        AuditEvent::VramDeallocated {
            shard_id,
            bytes,
            used_bytes,
            ..
        } => {
            assert_eq!((shard_id.as_str(), *bytes, *used_bytes), ("m#0", 3, 0));
        }
        other => panic!("expected vram.deallocated, got {other:?}"),
    }
    match &events[4] {
        AuditEvent::PolicyViolation {
            policy,
            action_taken,
            shard_id,
            ..
        } => {
            assert_eq!(policy.as_str(), vram_residency::policy::HANDLE_LIFETIME);
            assert!(action_taken.as_str().contains("refused"), "{action_taken}");
            assert_eq!(shard_id.as_ref().map(|s| s.as_str()), Some("m#0"));
        }
        other => panic!("expected vram.policy_violation, got {other:?}"),
    }
}

#[test]
fn stale_handle_cannot_touch_the_slots_next_shard() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let old = manager
        .seal_shard(&ShardSpec::new("old#0", "old", 0, 1), b"old")
        .unwrap();
    manager.deallocate(old.clone()).unwrap();
    let new = manager
        .seal_shard(&ShardSpec::new("new#0", "new", 0, 1), b"new")
        .unwrap();

    assert!(manager.deallocate(old.clone()).is_err());
    assert!(manager.corrupt_resident_byte(&old, 0).is_err());
    manager.verify_sealed(&new).unwrap();
    assert_eq!(manager.resident_shards(), 1);
}
