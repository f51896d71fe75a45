//! The canonical byte encoding of a seal: the exact bytes the HMAC covers.
//!
//! Every field is written as an 8-byte little-endian length followed by the
//! field's bytes, in the fixed order below, after a length-prefixed domain
//! tag. Because each field says how long it is and the order never changes,
//! two different shards can never encode to the same bytes (moving a byte
//! from `shard_id` into `model_ref` changes both length prefixes).
//!
//! | # | field | bytes after the length prefix |
//! | --- | --- | --- |
//! | 0 | domain tag | [`SEAL_DOMAIN`], ASCII |
//! | 1 | `shard_id` | UTF-8 |
//! | 2 | `model_ref` | UTF-8 |
//! | 3 | `shard_index` | `u32` LE |
//! | 4 | `shard_count` | `u32` LE |
//! | 5 | `bytes` | `u64` LE |
//! | 6 | `device.kind` | its name, UTF-8 (`host-simulation`) |
//! | 7 | `device.index` | `u32` LE |
//! | 8 | `device.uuid` present | one byte, `0x00` absent or `0x01` present |
//! | 8a | `device.uuid` | UTF-8, only when 8 is `0x01` |
//! | 9 | `device.name` | UTF-8 |
//! | 10 | `sealed_at` seconds | `i64` LE, seconds since the Unix epoch |
//! | 11 | `sealed_at` nanoseconds | `u32` LE |
//! | 12 | `digest` | 32 bytes: the [seal digest](crate::digest) |
//! | 13 | `key_id` | 8 bytes |
//! | 14 | handle slot | `u32` LE |
//! | 15 | handle generation | `u64` LE |
//!
//! The signature itself is not encoded. A change to this layout must change
//! [`SEAL_DOMAIN`], so a seal is never checked under a layout it was not made
//! with.

use super::SealedShard;

/// Domain tag that starts every encoded seal, so a seal MAC can never be
/// mistaken for a MAC over anything else made with the same key. The `v1`
/// names the layout in the [module docs](self); `v2` is the first whose
/// digest is the chunked Merkle root of [`crate::digest`] (in `v1` it was
/// one SHA-256 of the whole shard).
pub const SEAL_DOMAIN: &[u8] = b"sealtrail/vram-residency/seal/v2";

/// Feeds the canonical encoding of `shard` to `out`, piece by piece.
pub(crate) fn encode(shard: &SealedShard, out: &mut impl FnMut(&[u8])) {
    let mut field = |bytes: &[u8]| {
        // usize always fits in u64 on supported targets.
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        out(&len.to_le_bytes());
        out(bytes);
    };
    field(SEAL_DOMAIN);
    field(shard.shard_id.as_bytes());
    field(shard.model_ref.as_bytes());
    field(&shard.shard_index.to_le_bytes());
    field(&shard.shard_count.to_le_bytes());
    field(&shard.bytes.to_le_bytes());
    field(shard.device.kind.name().as_bytes());
    field(&shard.device.index.to_le_bytes());
    match &shard.device.uuid {
        None => field(&[0x00]),
        Some(uuid) => {
            field(&[0x01]);
            field(uuid.as_bytes());
        }
    }
    field(shard.device.name.as_bytes());
    field(&shard.sealed_at.timestamp().to_le_bytes());
    field(&shard.sealed_at.timestamp_subsec_nanos().to_le_bytes());
    field(&shard.digest.0);
    field(shard.key_id.as_bytes());
    field(&shard.handle.slot.to_le_bytes());
    field(&shard.handle.generation.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::tests::sample_shard;

    fn encoded(shard: &SealedShard) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(shard, &mut |bytes: &[u8]| buf.extend_from_slice(bytes));
        buf
    }

    /// Pins the layout: if this changes, `SEAL_DOMAIN` must change too.
    #[test]
    fn layout_is_pinned() {
        let bytes = encoded(&sample_shard());
        let mut expected = Vec::new();
        let mut field = |b: &[u8]| {
            expected.extend_from_slice(&(b.len() as u64).to_le_bytes());
            expected.extend_from_slice(b);
        };
        field(b"sealtrail/vram-residency/seal/v2");
        field(b"m#1");
        field(b"m");
        field(&1u32.to_le_bytes());
        field(&3u32.to_le_bytes());
        field(&10u64.to_le_bytes());
        field(b"host-simulation");
        field(&0u32.to_le_bytes());
        field(&[0]);
        field(b"sim");
        field(&1_700_000_000i64.to_le_bytes());
        field(&5u32.to_le_bytes());
        field(&[0x11; 32]);
        field(&[0x22; 8]);
        field(&4u32.to_le_bytes());
        field(&9u64.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_encoding() {
        let mut a = sample_shard();
        a.shard_id = "ab".into();
        a.model_ref = "c".into();
        let mut b = sample_shard();
        b.shard_id = "a".into();
        b.model_ref = "bc".into();
        assert_ne!(encoded(&a), encoded(&b));
    }

    #[test]
    fn absent_and_empty_uuid_differ() {
        let a = sample_shard();
        let mut b = sample_shard();
        b.device.uuid = Some(String::new());
        assert_ne!(encoded(&a), encoded(&b));
    }
}
