//! What the benchmarks share: the event they emit.

use audit_logging::{AuditEvent, DeviceRef, Digest};
use chrono::Utc;

/// A typical `vram.sealed` event, numbered `i`.
pub fn event(i: u64) -> AuditEvent {
    AuditEvent::VramSealed {
        timestamp: Utc::now(),
        worker_id: "bench-worker".into(),
        shard_id: format!("shard-{i}").into(),
        model_ref: "models/llama-3-8b.safetensors".into(),
        shard_index: 3,
        shard_count: 17,
        device: DeviceRef {
            backend: "host-simulation".into(),
            index: 0,
            uuid: None,
            name: "simulated device 0".into(),
            simulated: true,
        },
        bytes: 1 << 30,
        digest: Digest([0x5a; 32]),
        key_id: "0123456789abcdef".into(),
    }
}
