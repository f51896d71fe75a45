//! Editing any public field of a `SealedShard` makes verification fail, is
//! recorded as `vram.seal_verification_failed`, and never touches device
//! memory; the unedited handle keeps verifying.

mod common;

use audit_logging::AuditEvent;
use chrono::TimeDelta;
use vram_residency::{HandleError, KeyId, SealedShard, ShardSpec, VerifyError};

type Edit = (&'static str, fn(&mut SealedShard));

// Every public field except `device.kind`, which has a single possible value
// today (`host-simulation`); it is signed like the rest.

const EDITS: &[Edit] = &[
    ("shard_id", |s| s.shard_id.push('x')),
    ("model_ref", |s| s.model_ref = "other-model".into()),
    ("shard_index", |s| s.shard_index = 0),
    ("shard_count", |s| s.shard_count += 1),
    ("bytes", |s| s.bytes -= 1),
    ("device.index", |s| s.device.index += 1),
    ("device.uuid", |s| {
        s.device.uuid = Some("GPU-00000000".into())
    }),
    ("device.name", |s| s.device.name.push_str(" (real GPU)")),
    ("sealed_at", |s| s.sealed_at += TimeDelta::nanoseconds(1)),
    ("digest", |s| s.digest.0[31] ^= 1),
    ("key_id", |s| s.key_id = KeyId::from_bytes([0; 8])),
    ("signature", |s| s.signature.0[0] ^= 1),
];

#[test]
fn editing_each_field_fails_verification() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#1", "m", 1, 2), b"weights")
        .unwrap();
    let before = trail.events().len();

    for (field, edit) in EDITS {
        let mut edited = shard.clone();
        edit(&mut edited);
        assert_ne!(edited, shard, "edit of {field} changed nothing");
        match manager.verify_sealed(&edited) {
            Err(VerifyError::Handle {
                source: HandleError::BadSignature,
                ..
            }) => {}
            Err(VerifyError::Handle {
                source: HandleError::KeyMismatch { .. },
                ..
            }) if *field == "key_id" => {}
            other => panic!("edited {field}: expected a refused handle, got {other:?}"),
        }
    }

    let failures: Vec<_> = trail.events().into_iter().skip(before).collect();
    assert_eq!(failures.len(), EDITS.len());
    assert!(
        failures
            .iter()
            .all(|e| matches!(e, AuditEvent::SealVerificationFailed { digests: None, .. }))
    );
    manager.verify_sealed(&shard).unwrap();
}

#[test]
fn another_shards_fields_cannot_redirect_a_handle() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let a = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 2), b"first")
        .unwrap();
    let b = manager
        .seal_shard(&ShardSpec::new("m#1", "m", 1, 2), b"second")
        .unwrap();

    // Every public field (signature included) from `b`, the private handle
    // from `a`: the result must not verify, and must not free either shard.
    let mut chimera = a.clone();
    let b2 = b.clone();
    chimera.shard_id = b2.shard_id;
    chimera.model_ref = b2.model_ref;
    chimera.shard_index = b2.shard_index;
    chimera.shard_count = b2.shard_count;
    chimera.bytes = b2.bytes;
    chimera.device = b2.device;
    chimera.sealed_at = b2.sealed_at;
    chimera.digest = b2.digest;
    chimera.key_id = b2.key_id;
    chimera.signature = b2.signature;

    assert!(manager.verify_sealed(&chimera).is_err());
    assert!(manager.deallocate(chimera).is_err());
    assert_eq!(manager.resident_shards(), 2);
    manager.verify_sealed(&a).unwrap();
    manager.verify_sealed(&b).unwrap();
}

#[test]
fn a_seal_from_another_manager_is_refused() {
    let trail = common::Trail::open();
    let first = trail.manager(1 << 20);
    let second = trail.manager(1 << 20);
    let shard = first
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    second
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    let err = second.verify_sealed(&shard).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Handle {
                source: HandleError::KeyMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
}
