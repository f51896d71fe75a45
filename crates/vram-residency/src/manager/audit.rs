//! How the manager writes its audit events.
//!
//! Every event goes through [`AuditLogger::emit_sync`], which never blocks.
//! If the logger refuses an event (shut down, queue full, disk trouble) the
//! VRAM operation still completes as it would have: a seal that worked is not
//! undone because its record could not be written, and a failed
//! verification still fails. The refusal is counted
//! ([`VramManager::audit_failures`](crate::VramManager::audit_failures)) and
//! reported through `tracing` with the event type and the error only, never
//! the event's fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use audit_logging::{AuditEvent, AuditLogger, DeviceRef, Digest, DigestMismatch, Severity, Text};
use chrono::Utc;

use crate::SealedModel;
use crate::seal::SealedShard;

pub(crate) struct Auditor {
    logger: Arc<AuditLogger>,
    worker_id: Text,
    device: DeviceRef,
    failures: AtomicU64,
    /// What was emitted, for the unit tests; integration tests read the
    /// logger's files instead.
    #[cfg(test)]
    pub(crate) captured: std::sync::Mutex<Vec<AuditEvent>>,
}

impl Auditor {
    pub(crate) fn new(logger: Arc<AuditLogger>, worker_id: &str, device: DeviceRef) -> Auditor {
        Auditor {
            logger,
            worker_id: worker_id.into(),
            device,
            failures: AtomicU64::new(0),
            #[cfg(test)]
            captured: std::sync::Mutex::default(),
        }
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn emit(&self, event: AuditEvent) {
        let event_type = event.event_type();
        #[cfg(test)]
        self.captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
        if let Err(error) = self.logger.emit_sync(event) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event_type, %error, "audit event not recorded; vram operation unaffected");
        }
    }

    pub(crate) fn allocated(&self, shard_id: &str, bytes: u64, used: u64, capacity: u64) {
        self.emit(AuditEvent::VramAllocated {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard_id.into(),
            device: self.device.clone(),
            bytes,
            used_bytes: used,
            capacity_bytes: capacity,
        });
    }

    pub(crate) fn allocation_failed(
        &self,
        shard_id: &str,
        requested: u64,
        available: u64,
        reason: &str,
    ) {
        self.emit(AuditEvent::VramAllocationFailed {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard_id.into(),
            device: self.device.clone(),
            requested_bytes: requested,
            available_bytes: available,
            reason: reason.into(),
        });
    }

    pub(crate) fn sealed(&self, shard: &SealedShard) {
        self.emit(AuditEvent::VramSealed {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard.shard_id.as_str().into(),
            model_ref: shard.model_ref.as_str().into(),
            shard_index: shard.shard_index,
            shard_count: shard.shard_count,
            device: shard.device_ref(),
            bytes: shard.bytes,
            digest: shard.digest,
            key_id: shard.key_id.to_string().into(),
        });
    }

    pub(crate) fn verified(&self, shard: &SealedShard) {
        self.emit(AuditEvent::SealVerified {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard.shard_id.as_str().into(),
            device: shard.device_ref(),
            bytes: shard.bytes,
            digest: shard.digest,
        });
    }

    /// `shard_id` and `device` are what the handle claims; `digests` is
    /// `(expected, actual)` when the check got as far as comparing them.
    pub(crate) fn verification_failed(
        &self,
        shard_id: &str,
        device: DeviceRef,
        reason: &str,
        digests: Option<(Digest, Digest)>,
    ) {
        self.emit(AuditEvent::SealVerificationFailed {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard_id.into(),
            device,
            reason: reason.into(),
            digests: digests.map(|(expected, actual)| DigestMismatch { expected, actual }),
        });
    }

    pub(crate) fn deallocated(&self, shard_id: &str, bytes: u64, used: u64) {
        self.emit(AuditEvent::VramDeallocated {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            shard_id: shard_id.into(),
            device: self.device.clone(),
            bytes,
            used_bytes: used,
        });
    }

    pub(crate) fn policy_violation(
        &self,
        policy: &str,
        violation: &str,
        shard_id: Option<&str>,
        action_taken: &str,
    ) {
        self.emit(AuditEvent::PolicyViolation {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            policy: policy.into(),
            violation: violation.into(),
            shard_id: shard_id.map(Into::into),
            action_taken: action_taken.into(),
            severity: Severity::High,
        });
    }

    pub(crate) fn model_sealed(&self, model: &SealedModel) {
        self.emit(AuditEvent::ModelSealed {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            model_ref: model.model_ref.as_str().into(),
            file_sha256: model.file_sha256,
            file_bytes: model.file_bytes,
            shard_count: u32::try_from(model.shards.len()).unwrap_or(u32::MAX),
            device: self.device.clone(),
        });
    }

    pub(crate) fn path_traversal(&self, source: &str, requested_path: &str) {
        self.emit(AuditEvent::PathTraversalAttempt {
            timestamp: Utc::now(),
            source: source.into(),
            requested_path: requested_path.into(),
        });
    }

    pub(crate) fn model_rejected(&self, model_ref: &str, reason: &str) {
        self.emit(AuditEvent::ModelRejected {
            timestamp: Utc::now(),
            worker_id: self.worker_id.clone(),
            model_ref: model_ref.into(),
            reason: reason.into(),
        });
    }
}
