//! The typed security events an inference service records.
//!
//! [`AuditEvent`] is one enum so that a record can only ever hold an event
//! this crate knows how to read back. Each variant serializes with a stable
//! dotted name in its `type` field (`vram.sealed`, `auth.failure`, ...);
//! renaming a variant in Rust never changes what is on disk. Records carry
//! the schema version [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) beside the
//! event.
//!
//! Free-form fields are [`Text`], which sanitizes on construction, so an event
//! is never refused for its content. Digests are [`Digest`], shown as hex.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Text;

/// How much an event matters to someone reading the trail.
///
/// Ordered: `Info < Low < Medium < High < Critical`, so "at least `High`" is
/// a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine operation.
    Info,
    /// Worth a look in aggregate.
    Low,
    /// A failure or refusal that may be benign.
    Medium,
    /// A security-relevant failure.
    High,
    /// Evidence of tampering, compromise or an attack in progress.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used on disk and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `info`, `low`, `medium`, `high`,
/// `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of info, low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// A SHA-256 digest, serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = crate::hexval::InvalidHex;

    /// Parses 64 hex characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hexval::decode(s).map(Digest)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The device a VRAM event is about, as the backend describes it.
///
/// `simulated` is true for the host-memory simulation: such an event never
/// claims real device residency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRef {
    /// Backend name, such as `host-simulation` or `cuda`.
    pub backend: Text,
    /// Device index within the backend.
    pub index: u32,
    /// Stable device identity (a GPU UUID) where the backend has one.
    pub uuid: Option<Text>,
    /// Human-readable device name.
    pub name: Text,
    /// True when "device memory" is host memory standing in for a GPU.
    pub simulated: bool,
}

/// What a VRAM verification compared, when it got as far as a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestMismatch {
    /// The digest the seal recorded.
    pub expected: Digest,
    /// The digest recomputed from device memory.
    pub actual: Digest,
}

/// A task identifier, as the scheduler assigned it.
pub type TaskId = Text;

/// A security event. See the [module docs](self) for naming and sanitizing.
///
/// Every variant has a `timestamp` (when it happened, as the emitter saw it).
/// The VRAM variants also carry the `worker_id` of the process that owns the
/// device memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum AuditEvent {
    // ----- authentication -------------------------------------------------
    /// A principal proved its identity.
    #[serde(rename = "auth.success")]
    AuthSuccess {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who authenticated.
        actor: Text,
        /// How (`api-key`, `mtls`, `oidc`, ...).
        method: Text,
        /// Where the request came from, if known.
        source_ip: Option<IpAddr>,
    },
    /// An authentication attempt was refused.
    #[serde(rename = "auth.failure")]
    AuthFailure {
        /// When.
        timestamp: DateTime<Utc>,
        /// The identity that was claimed, as sent.
        attempted_actor: Text,
        /// How authentication was attempted.
        method: Text,
        /// Where the request came from, if known.
        source_ip: Option<IpAddr>,
        /// Why it was refused.
        reason: Text,
    },
    /// A credential (token, API key) was issued.
    #[serde(rename = "auth.token_issued")]
    TokenIssued {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who received it.
        actor: Text,
        /// A non-secret fingerprint of the credential, never the credential.
        token_fingerprint: Text,
        /// When it stops being valid.
        expires_at: Option<DateTime<Utc>>,
    },
    /// A credential was revoked before it expired.
    #[serde(rename = "auth.token_revoked")]
    TokenRevoked {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who revoked it.
        actor: Text,
        /// A non-secret fingerprint of the credential.
        token_fingerprint: Text,
        /// Why.
        reason: Text,
    },

    // ----- authorization --------------------------------------------------
    /// An action on a resource was allowed.
    #[serde(rename = "authz.granted")]
    AuthorizationGranted {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who asked.
        actor: Text,
        /// What was acted on.
        resource: Text,
        /// The action (`read`, `submit`, `admin`, ...).
        action: Text,
    },
    /// An action on a resource was refused.
    #[serde(rename = "authz.denied")]
    AuthorizationDenied {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who asked.
        actor: Text,
        /// What was acted on.
        resource: Text,
        /// The action that was refused.
        action: Text,
        /// Which rule refused it.
        reason: Text,
    },
    /// A principal's roles or permissions changed.
    #[serde(rename = "authz.permission_changed")]
    PermissionChanged {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who made the change.
        actor: Text,
        /// Whose permissions changed.
        subject: Text,
        /// The role or permission.
        permission: Text,
        /// True when granted, false when withdrawn.
        granted: bool,
    },

    // ----- tasks -------------------------------------------------------------
    /// An inference task was accepted.
    #[serde(rename = "task.submitted")]
    TaskSubmitted {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who submitted it.
        actor: Text,
        /// The task's id.
        task_id: TaskId,
        /// The model it asked for.
        model_ref: Text,
        /// Prompt size in bytes (the prompt itself is never recorded).
        input_bytes: u64,
    },
    /// A task finished.
    #[serde(rename = "task.completed")]
    TaskCompleted {
        /// When.
        timestamp: DateTime<Utc>,
        /// The task's id.
        task_id: TaskId,
        /// The worker that ran it.
        worker_id: Text,
        /// Wall time in milliseconds.
        duration_ms: u64,
        /// Output size in bytes.
        output_bytes: u64,
    },
    /// A task failed.
    #[serde(rename = "task.failed")]
    TaskFailed {
        /// When.
        timestamp: DateTime<Utc>,
        /// The task's id.
        task_id: TaskId,
        /// The worker that ran it.
        worker_id: Text,
        /// What went wrong.
        reason: Text,
    },
    /// A task was cancelled before it finished.
    #[serde(rename = "task.cancelled")]
    TaskCancelled {
        /// When.
        timestamp: DateTime<Utc>,
        /// The task's id.
        task_id: TaskId,
        /// Who cancelled it.
        actor: Text,
        /// Why.
        reason: Text,
    },

    // ----- models --------------------------------------------------------------
    /// A model file was refused before anything was uploaded (bad format,
    /// digest or signature mismatch).
    #[serde(rename = "model.rejected")]
    ModelRejected {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that refused it.
        worker_id: Text,
        /// The model as named by the caller.
        model_ref: Text,
        /// Why it was refused.
        reason: Text,
    },

    /// Every shard of a model file was sealed: the file as a whole, by the
    /// digest its distribution publishes.
    #[serde(rename = "model.sealed")]
    ModelSealed {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that sealed it.
        worker_id: Text,
        /// The model as named by the caller.
        model_ref: Text,
        /// SHA-256 of the whole file, as read while sealing.
        file_sha256: Digest,
        /// Size of the file.
        file_bytes: u64,
        /// Number of shards sealed.
        shard_count: u32,
        /// Where the shards are resident.
        device: DeviceRef,
    },

    // ----- VRAM ----------------------------------------------------------------
    /// Device memory was allocated for a shard.
    #[serde(rename = "vram.allocated")]
    VramAllocated {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that owns the memory.
        worker_id: Text,
        /// The shard the memory is for.
        shard_id: Text,
        /// Where.
        device: DeviceRef,
        /// Bytes allocated.
        bytes: u64,
        /// Bytes in use on the device after this allocation.
        used_bytes: u64,
        /// The capacity the worker may use on the device.
        capacity_bytes: u64,
    },
    /// A device allocation was refused.
    #[serde(rename = "vram.allocation_failed")]
    VramAllocationFailed {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that asked.
        worker_id: Text,
        /// The shard the memory was for.
        shard_id: Text,
        /// Where.
        device: DeviceRef,
        /// Bytes asked for.
        requested_bytes: u64,
        /// Bytes that were free.
        available_bytes: u64,
        /// Why it failed.
        reason: Text,
    },
    /// A shard was uploaded and sealed.
    #[serde(rename = "vram.sealed")]
    VramSealed {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that sealed it.
        worker_id: Text,
        /// The shard's id.
        shard_id: Text,
        /// The model the shard belongs to.
        model_ref: Text,
        /// Position of this shard in the model, from 0.
        shard_index: u32,
        /// Number of shards in the model.
        shard_count: u32,
        /// Where it is resident.
        device: DeviceRef,
        /// Resident size in bytes.
        bytes: u64,
        /// Digest of the bytes as read back from device memory.
        digest: Digest,
        /// Id of the key that signed the seal (never the key).
        key_id: Text,
    },
    /// A sealed shard was verified against device memory.
    #[serde(rename = "vram.seal_verified")]
    SealVerified {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that verified it.
        worker_id: Text,
        /// The shard's id.
        shard_id: Text,
        /// Where it is resident.
        device: DeviceRef,
        /// Bytes digested.
        bytes: u64,
        /// The digest that matched.
        digest: Digest,
    },
    /// A sealed shard failed verification: its signature, its handle or its
    /// resident bytes did not match the seal.
    #[serde(rename = "vram.seal_verification_failed")]
    SealVerificationFailed {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that verified it.
        worker_id: Text,
        /// The shard's id, as the handle claims it.
        shard_id: Text,
        /// Where it is (claimed to be) resident.
        device: DeviceRef,
        /// What failed.
        reason: Text,
        /// The digests compared, when the check got that far.
        digests: Option<DigestMismatch>,
    },
    /// A shard's device memory was released.
    #[serde(rename = "vram.deallocated")]
    VramDeallocated {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that owned it.
        worker_id: Text,
        /// The shard's id.
        shard_id: Text,
        /// Where.
        device: DeviceRef,
        /// Bytes released.
        bytes: u64,
        /// Bytes in use on the device afterwards.
        used_bytes: u64,
    },
    /// An operation was refused because it broke a residency or sealing
    /// policy.
    #[serde(rename = "vram.policy_violation")]
    PolicyViolation {
        /// When.
        timestamp: DateTime<Utc>,
        /// The worker that refused it.
        worker_id: Text,
        /// The policy that was broken.
        policy: Text,
        /// What happened.
        violation: Text,
        /// The shard involved, if any.
        shard_id: Option<Text>,
        /// What the worker did about it.
        action_taken: Text,
        /// How serious it is.
        severity: Severity,
    },

    // ----- nodes and pools -------------------------------------------------------
    /// A node joined a pool.
    #[serde(rename = "node.registered")]
    NodeRegistered {
        /// When.
        timestamp: DateTime<Utc>,
        /// The node.
        node_id: Text,
        /// The pool it joined.
        pool_id: Text,
        /// Its advertised address.
        address: Option<Text>,
    },
    /// A node left a pool.
    #[serde(rename = "node.deregistered")]
    NodeDeregistered {
        /// When.
        timestamp: DateTime<Utc>,
        /// The node.
        node_id: Text,
        /// The pool it left.
        pool_id: Text,
        /// Why.
        reason: Text,
    },
    /// A node stopped answering and was marked unhealthy.
    #[serde(rename = "node.unreachable")]
    NodeUnreachable {
        /// When.
        timestamp: DateTime<Utc>,
        /// The node.
        node_id: Text,
        /// How long it had been silent, in milliseconds.
        silent_for_ms: u64,
    },
    /// A pool's configuration changed.
    #[serde(rename = "pool.config_changed")]
    PoolConfigChanged {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who changed it.
        actor: Text,
        /// The pool.
        pool_id: Text,
        /// What changed, in words.
        change: Text,
    },

    // ----- security incidents ----------------------------------------------------
    /// A client went over a rate limit.
    #[serde(rename = "security.rate_limit_exceeded")]
    RateLimitExceeded {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who or where from.
        source: Text,
        /// The limit that was hit.
        limit: Text,
    },
    /// A request tried to reach outside its allowed paths.
    #[serde(rename = "security.path_traversal_attempt")]
    PathTraversalAttempt {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who or where from.
        source: Text,
        /// The path as requested.
        requested_path: Text,
    },
    /// Input that was refused as malformed or hostile (oversized, bad
    /// encoding, injection attempt).
    #[serde(rename = "security.malicious_input")]
    MaliciousInput {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who or where from.
        source: Text,
        /// The endpoint or field.
        target: Text,
        /// What was wrong with it.
        reason: Text,
    },
    /// Anything else a responder should look at.
    #[serde(rename = "security.incident")]
    SecurityIncident {
        /// When.
        timestamp: DateTime<Utc>,
        /// What kind of incident (`integrity`, `intrusion`, `exfiltration`, ...).
        kind: Text,
        /// What was seen.
        description: Text,
        /// How serious it is.
        severity: Severity,
    },

    // ----- data access --------------------------------------------------------
    /// A model's weights or metadata were read or exported.
    #[serde(rename = "data.model_accessed")]
    ModelAccessed {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who.
        actor: Text,
        /// Which model.
        model_ref: Text,
        /// What they did (`download`, `inspect`, ...).
        operation: Text,
    },
    /// Stored inference data (prompts, outputs, logs) was read.
    #[serde(rename = "data.inference_data_accessed")]
    InferenceDataAccessed {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who.
        actor: Text,
        /// Which data.
        resource: Text,
        /// How many records.
        records: u64,
    },
    /// Stored data was deleted.
    #[serde(rename = "data.deleted")]
    DataDeleted {
        /// When.
        timestamp: DateTime<Utc>,
        /// Who.
        actor: Text,
        /// What.
        resource: Text,
        /// Why.
        reason: Text,
    },

    // ----- GDPR ---------------------------------------------------------------
    /// A data subject asked what is held about them (GDPR art. 15).
    #[serde(rename = "gdpr.access_request")]
    GdprAccessRequest {
        /// When.
        timestamp: DateTime<Utc>,
        /// The data subject (a pseudonymous id).
        subject_id: Text,
        /// Who handled the request.
        handled_by: Text,
    },
    /// A data subject's data was exported (GDPR art. 20).
    #[serde(rename = "gdpr.data_exported")]
    GdprDataExported {
        /// When.
        timestamp: DateTime<Utc>,
        /// The data subject.
        subject_id: Text,
        /// Who exported it.
        actor: Text,
        /// How many records.
        records: u64,
    },
    /// A data subject's data was erased (GDPR art. 17).
    #[serde(rename = "gdpr.erasure")]
    GdprErasure {
        /// When.
        timestamp: DateTime<Utc>,
        /// The data subject.
        subject_id: Text,
        /// Who erased it.
        actor: Text,
        /// How many records.
        records: u64,
    },

    // ----- the audit logger itself ------------------------------------------
    /// A logger opened the store and began (or resumed) the chain.
    #[serde(rename = "audit.logger_started")]
    LoggerStarted {
        /// When.
        timestamp: DateTime<Utc>,
        /// Sequence number of the last record before this start, if any.
        resumed_after_seq: Option<u64>,
        /// The writing library's version.
        writer_version: Text,
    },
    /// On start, a partial last record left by a crash was cut from the end
    /// of a segment and kept aside.
    #[serde(rename = "audit.torn_tail_recovered")]
    TornTailRecovered {
        /// When.
        timestamp: DateTime<Utc>,
        /// The segment file it was cut from.
        segment: Text,
        /// Byte offset at which the partial record began.
        offset: u64,
        /// Length of the partial record.
        bytes: u64,
        /// SHA-256 of the partial record's bytes.
        sha256: Digest,
        /// The file the bytes were moved to.
        set_aside_as: Text,
    },
    /// The writer closed a segment and started the next one; this is always
    /// the first record of the next segment. Being part of the authenticated
    /// chain, it seals the closed segment's name, extent and exact bytes
    /// (see [`crate::verify`] for what the verifier checks with it).
    #[serde(rename = "audit.segment_closed")]
    SegmentClosed {
        /// When (the timestamp of the record that opened the next segment).
        timestamp: DateTime<Utc>,
        /// The closed segment's file name, `seg-<first_seq, 20 digits>.jsonl`.
        segment: Text,
        /// Sequence number of its first record.
        first_seq: u64,
        /// Sequence number of its last record.
        last_seq: u64,
        /// How many records (lines) it holds.
        records: u64,
        /// SHA-256 of the closed file's exact bytes.
        sha256: Digest,
        /// RFC 9162 Merkle root of the segment's own records: leaf `i` is
        /// its `i`-th record, hashed as in [`crate::logtree`] (the SHA-256
        /// of the record's line as leaf data), so a record of an archived
        /// segment can be proven in it. The verifier recomputes it while
        /// streaming. Absent in manifests written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root: Option<Digest>,
    },
    /// Retention retired the oldest closed segments: each was deleted, or
    /// moved to an archive directory. Written before any file is removed
    /// and before `retired.json` records the cut, so the chain says what was
    /// removed and where the trail now begins (see [`crate::retention`] for
    /// what the verifier checks with it).
    #[serde(rename = "audit.segments_retired")]
    SegmentsRetired {
        /// When.
        timestamp: DateTime<Utc>,
        /// The first record kept: the trail now begins here.
        first_kept_seq: u64,
        /// SHA-256 of the line of the last retired record (record
        /// `first_kept_seq - 1`): what the first kept record's `prev` holds.
        last_retired_hash: Digest,
        /// Key epoch of the last retired record.
        last_retired_epoch: u64,
        /// Merkle tree root over the retired records (leaves `0` to
        /// `first_kept_seq - 2`): the tree the verifier continues from.
        retired_root: Digest,
        /// Tree size of the exported checkpoint (anchor) that covered every
        /// retired record and that the trail was proven to extend.
        anchor_size: u64,
        /// Where the segments were moved; `None` when they were deleted.
        archived_to: Option<Text>,
        /// The retired segments, oldest first.
        segments: Vec<RetiredSegment>,
    },
    /// The logger refused events because its queue was full, and this is
    /// the count, written before the next record after the refusals. Every
    /// refused event is counted in exactly one such record, so the gap in
    /// the trail is itself on record. The counts cover the refusals since
    /// the previous `audit.events_dropped` record of the same logger (or
    /// its start); `by_type` has an entry for each event type refused, and
    /// its counts sum to `dropped`, as do `routine` and `critical`, and
    /// `events_bound` and `bytes_bound`.
    #[serde(rename = "audit.events_dropped")]
    EventsDropped {
        /// When the record was written.
        timestamp: DateTime<Utc>,
        /// Events refused.
        dropped: u64,
        /// Of those, routine events.
        routine: u64,
        /// Of those, critical events ([`AuditEvent::is_critical`]).
        critical: u64,
        /// Of those, refused because the queue held as many events as it
        /// may.
        events_bound: u64,
        /// Of those, refused because the queue held as many bytes as it may.
        bytes_bound: u64,
        /// Events refused, per event type.
        by_type: BTreeMap<Text, u64>,
        /// The last record the writer had written when the first of them
        /// was refused: the gap lies between that record and this one.
        since_seq: u64,
        /// When the first of them was refused.
        first_dropped_at: DateTime<Utc>,
        /// When the last of them was refused.
        last_dropped_at: DateTime<Utc>,
    },
    /// A logger shut down cleanly.
    #[serde(rename = "audit.logger_stopped")]
    LoggerStopped {
        /// When.
        timestamp: DateTime<Utc>,
        /// Records written by this logger, this one included.
        records_written: u64,
        /// Events this logger refused because its queue was full, of every
        /// kind and bound: the sum of its `audit.events_dropped` records.
        events_dropped: u64,
    },
}

impl AuditEvent {
    /// Every event type name, in declaration order.
    pub const TYPES: [&'static str; 40] = [
        "auth.success",
        "auth.failure",
        "auth.token_issued",
        "auth.token_revoked",
        "authz.granted",
        "authz.denied",
        "authz.permission_changed",
        "task.submitted",
        "task.completed",
        "task.failed",
        "task.cancelled",
        "model.rejected",
        "model.sealed",
        "vram.allocated",
        "vram.allocation_failed",
        "vram.sealed",
        "vram.seal_verified",
        "vram.seal_verification_failed",
        "vram.deallocated",
        "vram.policy_violation",
        "node.registered",
        "node.deregistered",
        "node.unreachable",
        "pool.config_changed",
        "security.rate_limit_exceeded",
        "security.path_traversal_attempt",
        "security.malicious_input",
        "security.incident",
        "data.model_accessed",
        "data.inference_data_accessed",
        "data.deleted",
        "gdpr.access_request",
        "gdpr.data_exported",
        "gdpr.erasure",
        "audit.logger_started",
        "audit.torn_tail_recovered",
        "audit.segment_closed",
        "audit.segments_retired",
        "audit.events_dropped",
        "audit.logger_stopped",
    ];

    /// The stable dotted name this event has on disk, e.g. `vram.sealed`.
    pub fn event_type(&self) -> &'static str {
        self.meta().0
    }

    /// How much the event matters.
    pub fn severity(&self) -> Severity {
        self.meta().1
    }

    /// Whether losing this event would hide an attack or a failure: auth
    /// failures, seal failures, policy violations, rejected models, security
    /// incidents of high severity. Critical events get priority treatment
    /// wherever the logger has to choose: they may use the share of the
    /// queue reserved for them, and the default
    /// [`FlushMode`](crate::FlushMode) fsyncs them with their batch.
    pub fn is_critical(&self) -> bool {
        self.severity() >= Severity::High
    }

    /// When the event happened.
    pub fn timestamp(&self) -> DateTime<Utc> {
        use AuditEvent as E;
        match self {
            E::AuthSuccess { timestamp, .. }
            | E::AuthFailure { timestamp, .. }
            | E::TokenIssued { timestamp, .. }
            | E::TokenRevoked { timestamp, .. }
            | E::AuthorizationGranted { timestamp, .. }
            | E::AuthorizationDenied { timestamp, .. }
            | E::PermissionChanged { timestamp, .. }
            | E::TaskSubmitted { timestamp, .. }
            | E::TaskCompleted { timestamp, .. }
            | E::TaskFailed { timestamp, .. }
            | E::TaskCancelled { timestamp, .. }
            | E::ModelRejected { timestamp, .. }
            | E::ModelSealed { timestamp, .. }
            | E::VramAllocated { timestamp, .. }
            | E::VramAllocationFailed { timestamp, .. }
            | E::VramSealed { timestamp, .. }
            | E::SealVerified { timestamp, .. }
            | E::SealVerificationFailed { timestamp, .. }
            | E::VramDeallocated { timestamp, .. }
            | E::PolicyViolation { timestamp, .. }
            | E::NodeRegistered { timestamp, .. }
            | E::NodeDeregistered { timestamp, .. }
            | E::NodeUnreachable { timestamp, .. }
            | E::PoolConfigChanged { timestamp, .. }
            | E::RateLimitExceeded { timestamp, .. }
            | E::PathTraversalAttempt { timestamp, .. }
            | E::MaliciousInput { timestamp, .. }
            | E::SecurityIncident { timestamp, .. }
            | E::ModelAccessed { timestamp, .. }
            | E::InferenceDataAccessed { timestamp, .. }
            | E::DataDeleted { timestamp, .. }
            | E::GdprAccessRequest { timestamp, .. }
            | E::GdprDataExported { timestamp, .. }
            | E::GdprErasure { timestamp, .. }
            | E::LoggerStarted { timestamp, .. }
            | E::TornTailRecovered { timestamp, .. }
            | E::SegmentClosed { timestamp, .. }
            | E::SegmentsRetired { timestamp, .. }
            | E::EventsDropped { timestamp, .. }
            | E::LoggerStopped { timestamp, .. } => *timestamp,
        }
    }

    /// Name and severity, in one table so the two cannot drift apart.
    fn meta(&self) -> (&'static str, Severity) {
        use AuditEvent as E;
        use Severity::*;
        match self {
            E::AuthSuccess { .. } => ("auth.success", Info),
            E::AuthFailure { .. } => ("auth.failure", High),
            E::TokenIssued { .. } => ("auth.token_issued", Info),
            E::TokenRevoked { .. } => ("auth.token_revoked", Low),
            E::AuthorizationGranted { .. } => ("authz.granted", Info),
            E::AuthorizationDenied { .. } => ("authz.denied", Medium),
            E::PermissionChanged { .. } => ("authz.permission_changed", Low),
            E::TaskSubmitted { .. } => ("task.submitted", Info),
            E::TaskCompleted { .. } => ("task.completed", Info),
            E::TaskFailed { .. } => ("task.failed", Low),
            E::TaskCancelled { .. } => ("task.cancelled", Info),
            E::ModelRejected { .. } => ("model.rejected", High),
            E::ModelSealed { .. } => ("model.sealed", Info),
            E::VramAllocated { .. } => ("vram.allocated", Info),
            E::VramAllocationFailed { .. } => ("vram.allocation_failed", Medium),
            E::VramSealed { .. } => ("vram.sealed", Info),
            E::SealVerified { .. } => ("vram.seal_verified", Info),
            E::SealVerificationFailed { .. } => ("vram.seal_verification_failed", Critical),
            E::VramDeallocated { .. } => ("vram.deallocated", Info),
            // A policy violation is always kept, whatever its stated severity.
            E::PolicyViolation { severity, .. } => ("vram.policy_violation", (*severity).max(High)),
            E::NodeRegistered { .. } => ("node.registered", Info),
            E::NodeDeregistered { .. } => ("node.deregistered", Low),
            E::NodeUnreachable { .. } => ("node.unreachable", Medium),
            E::PoolConfigChanged { .. } => ("pool.config_changed", Low),
            E::RateLimitExceeded { .. } => ("security.rate_limit_exceeded", Medium),
            E::PathTraversalAttempt { .. } => ("security.path_traversal_attempt", High),
            E::MaliciousInput { .. } => ("security.malicious_input", High),
            E::SecurityIncident { severity, .. } => ("security.incident", *severity),
            E::ModelAccessed { .. } => ("data.model_accessed", Info),
            E::InferenceDataAccessed { .. } => ("data.inference_data_accessed", Low),
            E::DataDeleted { .. } => ("data.deleted", Low),
            E::GdprAccessRequest { .. } => ("gdpr.access_request", Low),
            E::GdprDataExported { .. } => ("gdpr.data_exported", Low),
            E::GdprErasure { .. } => ("gdpr.erasure", Medium),
            E::LoggerStarted { .. } => ("audit.logger_started", Info),
            E::TornTailRecovered { .. } => ("audit.torn_tail_recovered", High),
            E::SegmentClosed { .. } => ("audit.segment_closed", Info),
            E::SegmentsRetired { .. } => ("audit.segments_retired", Low),
            // A gap in the trail may hide what an attacker flooded it to hide.
            E::EventsDropped { .. } => ("audit.events_dropped", High),
            E::LoggerStopped { .. } => ("audit.logger_stopped", Info),
        }
    }
}

/// One segment named in an [`AuditEvent::SegmentsRetired`] record: what its
/// `audit.segment_closed` manifest sealed, so a copy kept in an archive can
/// be checked against the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSegment {
    /// The file name, `seg-<first_seq, 20 digits>.jsonl`.
    pub segment: Text,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Sequence number of its last record.
    pub last_seq: u64,
    /// How many records (lines) it held.
    pub records: u64,
    /// SHA-256 of the file's exact bytes.
    pub sha256: Digest,
    /// Merkle root of its records, as its manifest's
    /// [`root`](AuditEvent::SegmentClosed::root).
    pub root: Digest,
}

#[cfg(test)]
pub(crate) mod samples;

#[cfg(test)]
mod tests;
