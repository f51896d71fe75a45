//! Sealing then verifying a shard succeeds and leaves `vram.allocated`,
//! `vram.sealed` and `vram.seal_verified` in the audit trail, with the
//! values of the seal.

mod common;

use audit_logging::AuditEvent;
use sha2::{Digest as _, Sha256};
use vram_residency::ShardSpec;

#[test]
fn seal_then_verify_records_allocated_sealed_verified() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let data = b"layer.0.weight bytes".repeat(50);

    let shard = manager
        .seal_shard(&ShardSpec::new("llama#3", "llama", 3, 8), &data)
        .unwrap();
    manager.verify_sealed(&shard).unwrap();

    // 1 000 bytes, one chunk: the digest is its RFC 9162 leaf hash.
    let leaf = Sha256::new()
        .chain_update([0x00])
        .chain_update(&data)
        .finalize();
    assert_eq!(shard.digest.0, <[u8; 32]>::from(leaf));
    let events = trail.events();
    let types: Vec<_> = events.iter().map(AuditEvent::event_type).collect();
    assert_eq!(
        types,
        ["vram.allocated", "vram.sealed", "vram.seal_verified"]
    );

    match &events[0] {
        AuditEvent::VramAllocated {
            worker_id,
            shard_id,
            device,
            bytes,
            used_bytes,
            capacity_bytes,
            ..
        } => {
            assert_eq!(worker_id.as_str(), "worker-test");
            assert_eq!(shard_id.as_str(), "llama#3");
            assert_eq!(
                (*bytes, *used_bytes, *capacity_bytes),
                (1000, 1000, 1 << 20)
            );
            assert_eq!(device.backend.as_str(), "host-simulation");
            assert!(device.simulated);
        }
        other => panic!("expected vram.allocated, got {other:?}"),
    }
    match &events[1] {
        AuditEvent::VramSealed {
            model_ref,
            shard_index,
            shard_count,
            digest,
            key_id,
            device,
            ..
        } => {
            assert_eq!(model_ref.as_str(), "llama");
            assert_eq!((*shard_index, *shard_count), (3, 8));
            assert_eq!(*digest, shard.digest);
            assert_eq!(key_id.as_str(), manager.key_id().to_string());
            assert!(device.simulated);
        }
        other => panic!("expected vram.sealed, got {other:?}"),
    }
    match &events[2] {
        AuditEvent::SealVerified {
            shard_id,
            bytes,
            digest,
            device,
            ..
        } => {
            assert_eq!(shard_id.as_str(), "llama#3");
            assert_eq!((*bytes, *digest), (1000, shard.digest));
            assert!(device.simulated);
        }
        other => panic!("expected vram.seal_verified, got {other:?}"),
    }
    assert_eq!(manager.audit_failures(), 0);
}
