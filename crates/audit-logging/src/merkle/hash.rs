//! The hash type and the two domain-separated hash functions of RFC 9162
//! section 2.1.1.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// First byte of the input of every leaf hash.
///
/// A leaf hash is SHA-256 over
///
/// ```text
/// +------+---------------------------+
/// | 0x00 | leaf bytes (any length)   |
/// +------+---------------------------+
/// ```
///
/// The distinct first bytes keep a leaf from ever hashing to the same value
/// as an interior node, so nobody can present a node as a record or a record
/// as a node (the second-preimage attack on unprefixed Merkle trees).
pub const LEAF_PREFIX: u8 = 0x00;

/// First byte of the input of every interior node hash.
///
/// A node hash is SHA-256 over exactly 65 bytes:
///
/// ```text
/// +------+----------------------+-----------------------+
/// | 0x01 | left child, 32 bytes | right child, 32 bytes |
/// +------+----------------------+-----------------------+
/// ```
pub const NODE_PREFIX: u8 = 0x01;

/// The root of the tree with no leaves: SHA-256 of the empty string, with no
/// prefix (RFC 9162 section 2.1.1).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// A leaf hash, node hash or tree root: 32 bytes of SHA-256 output.
///
/// Shown and serialized as 64 lowercase hex characters. Nothing here is
/// secret, so comparisons need not be constant-time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = crate::hexval::InvalidHex;

    /// Parses 64 hex characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::hexval::decode(s).map(Hash)
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The hash of one leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let digest = Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(data)
        .finalize();
    Hash(digest.into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let digest = Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left.0)
        .chain_update(right.0)
        .finalize();
    Hash(digest.into())
}
