//! An audit logger that refuses every event (here: one that was shut down)
//! never changes the outcome of a VRAM operation. Successes still succeed,
//! failures still fail for their own reason, and each refused event is
//! counted.

mod common;

use std::sync::Arc;

use audit_logging::AuditLogger;
use vram_residency::{
    HostBackend, ManagerConfig, SealError, SealKey, ShardSpec, VerifyError, VramManager,
};

#[test]
fn shut_down_logger_never_fails_vram_ops() {
    let trail = common::Trail::open();
    let manager = trail.manager(100);
    trail.logger.shutdown().unwrap();

    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), &[5; 60])
        .unwrap();
    assert_eq!(
        manager.audit_failures(),
        2,
        "vram.allocated and vram.sealed were refused"
    );
    manager.verify_sealed(&shard).unwrap();

    let err = manager
        .seal_shard(&ShardSpec::new("m#1", "m", 0, 1), &[5; 60])
        .unwrap_err();
    assert!(matches!(err, SealError::CapacityExceeded { .. }), "{err}");

    manager.corrupt_resident_byte(&shard, 10).unwrap();
    let err = manager.verify_sealed(&shard).unwrap_err();
    assert!(matches!(err, VerifyError::DigestMismatch { .. }), "{err}");

    manager.deallocate(shard.clone()).unwrap();
    assert!(manager.deallocate(shard).is_err());
    assert_eq!(manager.used_bytes(), 0);
    // allocated, sealed, verified, allocation_failed, verification_failed,
    // deallocated, policy_violation.
    assert_eq!(manager.audit_failures(), 7);
}

#[test]
fn disabled_logger_records_nothing_and_fails_nothing() {
    let manager = VramManager::new(
        HostBackend::with_capacity(100),
        SealKey::generate().unwrap(),
        Arc::new(AuditLogger::disabled()),
        ManagerConfig::new("w"),
    );
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    manager.verify_sealed(&shard).unwrap();
    manager.deallocate(shard).unwrap();
    assert_eq!(manager.audit_failures(), 0);
}
