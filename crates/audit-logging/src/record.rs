//! The on-disk record: one authenticated JSON object per line.
//!
//! A record line looks like this (wrapped here; on disk it is one line):
//!
//! ```text
//! {"v":1,"seq":42,"ts":"2026-12-03T18:45:51.123456Z","kid":"1f0c9a7e5d3b2a10",
//!  "prev":"<64 hex>","event":{"type":"vram.sealed",...},"mac":"<64 hex>"}
//! ```
//!
//! - `v` is [`SCHEMA_VERSION`]; `seq` counts records from 1 across restarts
//!   and segments; `ts` is when the writer wrote the record.
//! - `kid` names the key that made `mac`.
//! - `prev` is the SHA-256 of the previous record's whole line (without its
//!   newline), or 64 zeros for the first record: deleting, inserting or
//!   reordering lines breaks the link.
//! - `mac` is HMAC-SHA256 over [`MAC_DOMAIN`] followed by the *body*: the line
//!   up to the mac field, closed with `}`. The mac field is always last and
//!   has a fixed length, so the verifier recovers the exact bytes that were
//!   authenticated without re-serializing anything.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::{AuditEvent, AuditKey};

/// Version of the record layout; readers refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

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
    prev: String,
    event: Box<RawValue>,
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
    /// Hash of the previous line.
    pub prev: [u8; 32],
    /// The event's JSON, exactly as stored.
    pub event: Box<RawValue>,
    body: String,
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
            prev,
            event: header.event,
            body,
            mac,
        })
    }

    /// Whether the record's mac was made by `key` over this record's body.
    /// Constant-time in the mac.
    pub fn authenticate(&self, key: &AuditKey) -> bool {
        key.verify_mac(&mac_input(self.body.as_bytes()), &self.mac)
    }

    /// Parses the event. Fails for event types this version does not know.
    pub fn event(&self) -> Result<AuditEvent, DecodeError> {
        serde_json::from_str(self.event.get()).map_err(|e| DecodeError::Body(e.to_string()))
    }
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

/// Builds a record line (without newline) for an event already serialized
/// to JSON.
pub(crate) fn encode(
    seq: u64,
    ts: DateTime<Utc>,
    key: &AuditKey,
    kid: &str,
    prev: &[u8; 32],
    event_json: &str,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(event_json.len().saturating_add(256));
    line.extend_from_slice(b"{\"v\":");
    line.extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
    line.extend_from_slice(b",\"seq\":");
    line.extend_from_slice(seq.to_string().as_bytes());
    line.extend_from_slice(b",\"ts\":\"");
    line.extend_from_slice(ts.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes());
    line.extend_from_slice(b"\",\"kid\":\"");
    line.extend_from_slice(kid.as_bytes());
    line.extend_from_slice(b"\",\"prev\":\"");
    line.extend_from_slice(hex::encode(prev).as_bytes());
    line.extend_from_slice(b"\",\"event\":");
    line.extend_from_slice(event_json.as_bytes());
    line.push(b'}');
    let mac = key.mac(&mac_input(&line));
    line.pop();
    line.extend_from_slice(b",\"mac\":\"");
    line.extend_from_slice(hex::encode(mac).as_bytes());
    line.extend_from_slice(b"\"}");
    line
}

/// SHA-256 of a whole record line, the value the next record's `prev` holds.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}
