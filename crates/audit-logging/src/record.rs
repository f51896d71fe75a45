//! The on-disk record: one authenticated JSON object per line.
//!
//! A record line looks like this (wrapped here; on disk it is one line):
//!
//! ```text
//! {"v":2,"seq":42,"ts":"2026-12-03T18:45:51.123456Z","kid":"1f0c9a7e5d3b2a10","ep":3,
//!  "prev":"<64 hex>","event":{"type":"vram.sealed",...},"mac":"<64 hex>"}
//! ```
//!
//! - `v` is [`SCHEMA_VERSION`]; `seq` counts records from 1 across restarts
//!   and segments; `ts` is when the writer wrote the record.
//! - `kid` names the audit key the log's key chain started from, and `ep`
//!   the epoch of that chain whose key made `mac` (see [`forward`](crate::forward)).
//! - `xmac`, only on the first record of an epoch after the first, is
//!   HMAC-SHA256 under the *previous* epoch's key over [`XMAC_DOMAIN`] and the
//!   body without `xmac`: the outgoing key's consent to the handover, which
//!   a thief of a later key cannot forge. It is the body's last field.
//! - `prev` is the SHA-256 of the previous record's whole line (without its
//!   newline), or 64 zeros for the first record: deleting, inserting or
//!   reordering lines breaks the link.
//! - `mac` is HMAC-SHA256 under the epoch key over [`MAC_DOMAIN`] followed
//!   by the *body*: the line up to the mac field, closed with `}`. The mac
//!   field is always last and has a fixed length, so the verifier recovers
//!   the exact bytes that were authenticated without re-serializing anything.
//!
//! Version 1, without `ep`, was keyed by the audit key directly; it is not
//! read any more.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::AuditEvent;
use crate::forward::EpochKey;

/// Version of the record layout; readers refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 2;

/// Largest record line a reader accepts, in bytes.
///
/// An event has a few dozen fields of at most
/// [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES) each, which JSON escaping can at
/// most triple; 256 KiB leaves room for that while keeping a hostile file from
/// making a reader buffer an unbounded line.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The `prev` value of the first record in a log.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Prepended to every record body before it is authenticated, so a record MAC
/// can never be mistaken for a MAC this key made over anything else.
pub const MAC_DOMAIN: &[u8] = b"sealtrail/record/v1\0";

/// `,"mac":"` + 64 hex + `"}`.
const MAC_SUFFIX_LEN: usize = 8 + 64 + 2;

/// Why a line is not a well-formed record. Authenticity is checked
/// separately; see [`RawRecord::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The line is longer than [`MAX_RECORD_BYTES`].
    #[error("record is {len} bytes, more than the {MAX_RECORD_BYTES}-byte limit")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The line does not end in a well-formed mac field.
    #[error("record does not end with a well-formed \"mac\" field")]
    MissingMac,
    /// The body is not the JSON object a record must be.
    #[error("record body is not valid: {0}")]
    Body(String),
    /// The record has a schema version this reader does not know.
    #[error("record has schema version {found}, this reader knows only {SCHEMA_VERSION}")]
    UnsupportedVersion {
        /// The version in the record.
        found: u32,
    },
}

/// The authenticated fields of a record, with the event left unparsed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    v: u32,
    seq: u64,
    ts: DateTime<Utc>,
    kid: String,
    ep: u64,
    prev: String,
    event: Box<RawValue>,
    xmac: Option<String>,
}

/// A record line split into its parts, not yet authenticated.
#[derive(Debug)]
pub struct RawRecord {
    /// Sequence number.
    pub seq: u64,
    /// When it was written.
    pub ts: DateTime<Utc>,
    /// Id of the key that claims to have made the mac.
    pub kid: String,
    /// The key epoch whose key claims to have made the mac.
    pub epoch: u64,
    /// Hash of the previous line.
    pub prev: [u8; 32],
    /// The event's JSON, exactly as stored.
    pub event: Box<RawValue>,
    body: String,
    xmac: Option<[u8; 32]>,
    mac: [u8; 32],
}

impl RawRecord {
    /// Splits `line` (without its newline) into a record.
    pub fn parse(line: &[u8]) -> Result<Self, DecodeError> {
        if line.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::TooLong { len: line.len() });
        }
        let split = line
            .len()
            .checked_sub(MAC_SUFFIX_LEN)
            .ok_or(DecodeError::MissingMac)?;
        let (prefix, suffix) = line
            .split_at_checked(split)
            .ok_or(DecodeError::MissingMac)?;
        let mac = parse_mac_suffix(suffix).ok_or(DecodeError::MissingMac)?;
        let mut body = std::str::from_utf8(prefix)
            .map_err(|e| DecodeError::Body(format!("not UTF-8: {e}")))?
            .to_owned();
        body.push('}');
        let header: Header =
            serde_json::from_str(&body).map_err(|e| DecodeError::Body(e.to_string()))?;
        // A handover mac, when there is one, must be the body's last field,
        // so that the bytes it covers are the body without it.
        let xmac = parse_xmac_suffix(prefix);
        if header.xmac.is_some() != xmac.is_some() {
            return Err(DecodeError::Body(
                "\"xmac\" must be the last field before \"mac\", in lowercase hex".into(),
            ));
        }
        if header.v != SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: header.v });
        }
        let mut prev = [0u8; 32];
        hex::decode_to_slice(&header.prev, &mut prev)
            .map_err(|_| DecodeError::Body("\"prev\" is not 64 hex characters".into()))?;
        Ok(RawRecord {
            seq: header.seq,
            ts: header.ts,
            kid: header.kid,
            epoch: header.ep,
            prev,
            event: header.event,
            body,
            xmac,
            mac,
        })
    }

    /// Whether the record's mac was made by `key` over this record's body.
    /// Constant-time in the mac.
    ///
    /// `key` must be the key of the record's own epoch: a key of any other
    /// epoch fails.
    pub fn authenticate(&self, key: &EpochKey) -> bool {
        key.epoch() == self.epoch && key.verify_mac(&mac_input(self.body.as_bytes()), &self.mac)
    }

    /// Whether this record opens a new key epoch.
    pub fn is_handover(&self) -> bool {
        self.xmac.is_some()
    }

    /// Whether this record opens its epoch with the consent of the previous
    /// epoch's key: its `xmac` was made by `previous` (which must be the key
    /// of the epoch just before the record's) over the body without `xmac`.
    /// Constant-time in the mac.
    pub fn authenticate_handover(&self, previous: &EpochKey) -> bool {
        let Some(xmac) = &self.xmac else {
            return false;
        };
        let Some(core) = self
            .body
            .len()
            .checked_sub(XMAC_FIELD_LEN.saturating_add(1))
        else {
            return false;
        };
        let Some(core) = self.body.get(..core) else {
            return false;
        };
        let mut input = Vec::with_capacity(XMAC_DOMAIN.len().saturating_add(self.body.len()));
        input.extend_from_slice(XMAC_DOMAIN);
        input.extend_from_slice(core.as_bytes());
        input.push(b'}');
        previous.epoch().checked_add(1) == Some(self.epoch) && previous.verify_mac(&input, xmac)
    }

    /// Parses the event. Fails for event types this version does not know.
    pub fn event(&self) -> Result<AuditEvent, DecodeError> {
        serde_json::from_str(self.event.get()).map_err(|e| DecodeError::Body(e.to_string()))
    }
}

/// `,"xmac":"` + 64 hex + `"`.
const XMAC_FIELD_LEN: usize = 9 + 64 + 1;

/// Prepended to the body a handover mac covers, so it can never be mistaken
/// for a record mac made with the same key.
pub const XMAC_DOMAIN: &[u8] = b"sealtrail/handover/v1\0";

/// The handover mac at the end of a body prefix, if there is one.
fn parse_xmac_suffix(prefix: &[u8]) -> Option<[u8; 32]> {
    let start = prefix.len().checked_sub(XMAC_FIELD_LEN)?;
    let hex_part = prefix
        .get(start..)?
        .strip_prefix(b",\"xmac\":\"")?
        .strip_suffix(b"\"")?;
    if hex_part.iter().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut xmac = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut xmac).ok()?;
    Some(xmac)
}

fn parse_mac_suffix(suffix: &[u8]) -> Option<[u8; 32]> {
    let hex_part = suffix.strip_prefix(b",\"mac\":\"")?.strip_suffix(b"\"}")?;
    let mut mac = [0u8; 32];
    // Only lowercase hex is ever written; accepting uppercase would give one
    // record two valid spellings.
    if hex_part.iter().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode_to_slice(hex_part, &mut mac).ok()?;
    Some(mac)
}

fn mac_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(MAC_DOMAIN.len().saturating_add(body.len()));
    input.extend_from_slice(MAC_DOMAIN);
    input.extend_from_slice(body);
    input
}

/// The line [`encode_into`] builds, on its own.
#[cfg(test)]
pub(crate) fn encode(
    seq: u64,
    ts: DateTime<Utc>,
    key: &EpochKey,
    handover_from: Option<&EpochKey>,
    prev: &[u8; 32],
    event_json: &str,
) -> Vec<u8> {
    let mut line = Vec::new();
    encode_into(&mut line, seq, ts, key, handover_from, prev, event_json);
    line
}

/// Appends a record line (without newline) for an event already
/// serialized to JSON to `out`, leaving its earlier bytes alone: the writer
/// encodes straight into the buffer of lines it is about to write.
///
/// With `handover_from`, the record opens `key`'s epoch and also carries an
/// `xmac` made by the previous epoch's key, which must be given there.
pub(crate) fn encode_into(
    out: &mut Vec<u8>,
    seq: u64,
    ts: DateTime<Utc>,
    key: &EpochKey,
    handover_from: Option<&EpochKey>,
    prev: &[u8; 32],
    event_json: &str,
) {
    // Built by hand, piece by piece, without temporary strings or a copy:
    // this runs once per record on the writer thread, the logger's
    // bottleneck.
    let mut numbers = itoa::Buffer::new();
    let start = out.len();
    out.reserve(event_json.len().saturating_add(256));
    let line = out;
    line.extend_from_slice(b"{\"v\":");
    line.extend_from_slice(numbers.format(SCHEMA_VERSION).as_bytes());
    line.extend_from_slice(b",\"seq\":");
    line.extend_from_slice(numbers.format(seq).as_bytes());
    line.extend_from_slice(b",\"ts\":\"");
    line.extend_from_slice(ts.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes());
    line.extend_from_slice(b"\",\"kid\":\"");
    line.extend_from_slice(key.origin().as_str().as_bytes());
    line.extend_from_slice(b"\",\"ep\":");
    line.extend_from_slice(numbers.format(key.epoch()).as_bytes());
    line.extend_from_slice(b",\"prev\":\"");
    push_hex(line, prev);
    line.extend_from_slice(b"\",\"event\":");
    line.extend_from_slice(event_json.as_bytes());
    if let Some(previous) = handover_from {
        let body = line.get(start..).unwrap_or_default();
        let mut input = Vec::with_capacity(
            XMAC_DOMAIN
                .len()
                .saturating_add(body.len())
                .saturating_add(1),
        );
        input.extend_from_slice(XMAC_DOMAIN);
        input.extend_from_slice(body);
        input.push(b'}');
        line.extend_from_slice(b",\"xmac\":\"");
        push_hex(line, &previous.mac(&input));
        line.push(b'"');
    }
    line.push(b'}');
    let mac = key.mac_parts(&[MAC_DOMAIN, line.get(start..).unwrap_or_default()]);
    line.pop();
    line.extend_from_slice(b",\"mac\":\"");
    push_hex(line, &mac);
    line.extend_from_slice(b"\"}");
}

/// Appends the lower-case hex of a 32-byte value.
fn push_hex(line: &mut Vec<u8>, bytes: &[u8; 32]) {
    let mut hex = [0u8; 64];
    // 64 bytes of room for 32 bytes of input: this cannot fail.
    if hex::encode_to_slice(bytes, &mut hex).is_ok() {
        line.extend_from_slice(&hex);
    }
}

/// SHA-256 of a whole record line, the value the next record's `prev` holds.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}
