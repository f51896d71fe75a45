//! One event of every variant, for tests that must cover them all.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn device() -> DeviceRef {
    DeviceRef {
        backend: "host-simulation".into(),
        index: 0,
        uuid: None,
        name: "simulated device 0".into(),
        simulated: true,
    }
}

/// One of each variant, in declaration order.
pub(crate) fn all() -> Vec<AuditEvent> {
    use AuditEvent as E;
    let t = at();
    let ip = Some(IpAddr::from([10, 0, 0, 7]));
    let d = Digest([7; 32]);
    vec![
        E::AuthSuccess {
            timestamp: t,
            actor: "alice".into(),
            method: "api-key".into(),
            source_ip: ip,
        },
        E::AuthFailure {
            timestamp: t,
            attempted_actor: "mallory".into(),
            method: "api-key".into(),
            source_ip: ip,
            reason: "unknown key".into(),
        },
        E::TokenIssued {
            timestamp: t,
            actor: "alice".into(),
            token_fingerprint: "fp:1234".into(),
            expires_at: Some(t),
        },
        E::TokenRevoked {
            timestamp: t,
            actor: "admin".into(),
            token_fingerprint: "fp:1234".into(),
            reason: "leaked".into(),
        },
        E::AuthorizationGranted {
            timestamp: t,
            actor: "alice".into(),
            resource: "pool/a".into(),
            action: "submit".into(),
        },
        E::AuthorizationDenied {
            timestamp: t,
            actor: "bob".into(),
            resource: "pool/a".into(),
            action: "admin".into(),
            reason: "role user lacks admin".into(),
        },
        E::PermissionChanged {
            timestamp: t,
            actor: "admin".into(),
            subject: "bob".into(),
            permission: "submit".into(),
            granted: true,
        },
        E::TaskSubmitted {
            timestamp: t,
            actor: "alice".into(),
            task_id: "t-1".into(),
            model_ref: "minilm".into(),
            input_bytes: 120,
        },
        E::TaskCompleted {
            timestamp: t,
            task_id: "t-1".into(),
            worker_id: "w-0".into(),
            duration_ms: 33,
            output_bytes: 4096,
        },
        E::TaskFailed {
            timestamp: t,
            task_id: "t-2".into(),
            worker_id: "w-0".into(),
            reason: "oom".into(),
        },
        E::TaskCancelled {
            timestamp: t,
            task_id: "t-3".into(),
            actor: "alice".into(),
            reason: "user".into(),
        },
        E::ModelRejected {
            timestamp: t,
            worker_id: "w-0".into(),
            model_ref: "evil.safetensors".into(),
            reason: "digest mismatch".into(),
        },
        E::ModelSealed {
            timestamp: t,
            worker_id: "w-0".into(),
            model_ref: "minilm".into(),
            file_sha256: d,
            file_bytes: 90_868_376,
            shard_count: 2,
            device: device(),
        },
        E::VramAllocated {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-0".into(),
            device: device(),
            bytes: 1024,
            used_bytes: 1024,
            capacity_bytes: 1 << 30,
        },
        E::VramAllocationFailed {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-1".into(),
            device: device(),
            requested_bytes: 1 << 31,
            available_bytes: 1 << 20,
            reason: "insufficient capacity".into(),
        },
        E::VramSealed {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-0".into(),
            model_ref: "minilm".into(),
            shard_index: 0,
            shard_count: 2,
            device: device(),
            bytes: 1024,
            digest: d,
            key_id: "k-abc".into(),
        },
        E::SealVerified {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-0".into(),
            device: device(),
            bytes: 1024,
            digest: d,
        },
        E::SealVerificationFailed {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-0".into(),
            device: device(),
            reason: "digest mismatch".into(),
            digests: Some(DigestMismatch {
                expected: d,
                actual: Digest([8; 32]),
            }),
        },
        E::VramDeallocated {
            timestamp: t,
            worker_id: "w-0".into(),
            shard_id: "s-0".into(),
            device: device(),
            bytes: 1024,
            used_bytes: 0,
        },
        E::PolicyViolation {
            timestamp: t,
            worker_id: "w-0".into(),
            policy: "require-device-residency".into(),
            violation: "backend is a host simulation".into(),
            shard_id: None,
            action_taken: "refused".into(),
            severity: Severity::High,
        },
        E::NodeRegistered {
            timestamp: t,
            node_id: "n-1".into(),
            pool_id: "p-1".into(),
            address: Some("10.0.0.7:8080".into()),
        },
        E::NodeDeregistered {
            timestamp: t,
            node_id: "n-1".into(),
            pool_id: "p-1".into(),
            reason: "drain".into(),
        },
        E::NodeUnreachable {
            timestamp: t,
            node_id: "n-2".into(),
            silent_for_ms: 30_000,
        },
        E::PoolConfigChanged {
            timestamp: t,
            actor: "admin".into(),
            pool_id: "p-1".into(),
            change: "max_workers 4 -> 8".into(),
        },
        E::RateLimitExceeded {
            timestamp: t,
            source: "10.0.0.9".into(),
            limit: "100/min".into(),
        },
        E::PathTraversalAttempt {
            timestamp: t,
            source: "10.0.0.9".into(),
            requested_path: "../../etc/shadow".into(),
        },
        E::MaliciousInput {
            timestamp: t,
            source: "10.0.0.9".into(),
            target: "/v1/infer".into(),
            reason: "prompt over 10 MiB".into(),
        },
        E::SecurityIncident {
            timestamp: t,
            kind: "integrity".into(),
            description: "audit verify failed".into(),
            severity: Severity::Critical,
        },
        E::ModelAccessed {
            timestamp: t,
            actor: "alice".into(),
            model_ref: "minilm".into(),
            operation: "download".into(),
        },
        E::InferenceDataAccessed {
            timestamp: t,
            actor: "support".into(),
            resource: "prompts/2026-12".into(),
            records: 12,
        },
        E::DataDeleted {
            timestamp: t,
            actor: "retention".into(),
            resource: "prompts/2026-01".into(),
            reason: "retention".into(),
        },
        E::GdprAccessRequest {
            timestamp: t,
            subject_id: "u-42".into(),
            handled_by: "dpo".into(),
        },
        E::GdprDataExported {
            timestamp: t,
            subject_id: "u-42".into(),
            actor: "dpo".into(),
            records: 3,
        },
        E::GdprErasure {
            timestamp: t,
            subject_id: "u-42".into(),
            actor: "dpo".into(),
            records: 3,
        },
        E::LoggerStarted {
            timestamp: t,
            resumed_after_seq: Some(41),
            writer_version: "0.1.0".into(),
        },
        E::TornTailRecovered {
            timestamp: t,
            segment: "seg-00000000000000000001.jsonl".into(),
            offset: 4096,
            bytes: 17,
            sha256: d,
            set_aside_as: "torn-00000000000000000042.bin".into(),
        },
        E::SegmentClosed {
            timestamp: t,
            segment: "seg-00000000000000000001.jsonl".into(),
            first_seq: 1,
            last_seq: 41,
            records: 41,
            sha256: d,
            root: Some(d),
        },
        E::SegmentsRetired {
            timestamp: t,
            first_kept_seq: 42,
            last_retired_hash: d,
            last_retired_epoch: 3,
            retired_root: d,
            anchor_size: 50,
            archived_to: Some("/var/archive/sealtrail".into()),
            segments: vec![RetiredSegment {
                segment: "seg-00000000000000000001.jsonl".into(),
                first_seq: 1,
                last_seq: 41,
                records: 41,
                sha256: d,
                root: d,
            }],
        },
        E::EventsDropped {
            timestamp: t,
            dropped: 5,
            routine: 4,
            critical: 1,
            events_bound: 3,
            bytes_bound: 2,
            by_type: [("auth.failure".into(), 1), ("task.submitted".into(), 4)].into(),
            since_seq: 41,
            first_dropped_at: t,
            last_dropped_at: t,
        },
        E::LoggerStopped {
            timestamp: t,
            records_written: 10,
            events_dropped: 0,
        },
    ]
}
