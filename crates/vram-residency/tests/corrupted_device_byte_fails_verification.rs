//! A bit flipped in device memory after sealing makes `verify_sealed` fail
//! and writes `vram.seal_verification_failed` with both digests.

mod common;

use audit_logging::AuditEvent;
use vram_residency::{ShardSpec, VerifyError};

#[test]
fn corrupted_device_byte_fails_verification() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), &[7u8; 4096])
        .unwrap();
    manager.verify_sealed(&shard).unwrap();

    manager.corrupt_resident_byte(&shard, 4095).unwrap();
    let err = manager.verify_sealed(&shard).unwrap_err();

    let VerifyError::DigestMismatch {
        expected, found, ..
    } = &err
    else {
        panic!("expected a digest mismatch, got {err}");
    };
    assert_eq!(*expected, shard.digest);
    assert_ne!(found, expected);
    assert!(err.to_string().contains(&expected.to_hex()), "{err}");
    match trail.events().last() {
        Some(AuditEvent::SealVerificationFailed {
            shard_id,
            digests: Some(d),
            reason,
            ..
        }) => {
            assert_eq!(shard_id.as_str(), "m#0");
            assert_eq!((d.expected, d.actual), (*expected, *found));
            assert!(
                reason.as_str().contains("resident bytes changed"),
                "{reason}"
            );
        }
        other => panic!("expected vram.seal_verification_failed, got {other:?}"),
    }
}

#[test]
fn flipping_the_bit_back_restores_verification() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abcdef")
        .unwrap();
    manager.corrupt_resident_byte(&shard, 0).unwrap();
    assert!(manager.verify_sealed(&shard).is_err());
    manager.corrupt_resident_byte(&shard, 0).unwrap();
    manager.verify_sealed(&shard).unwrap();
}

#[test]
fn corruption_offset_past_the_shard_is_refused() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    let err = manager.corrupt_resident_byte(&shard, 3).unwrap_err();
    assert!(
        err.to_string()
            .contains("offset 3 is outside shard of 3 bytes"),
        "{err}"
    );
    manager.verify_sealed(&shard).unwrap();
}
