//! Verifier keys: the public half of a note signing key, as text.
//!
//! A verifier key is `<name>+<key hash>+<base64(0x01 || public key)>`, the
//! encoding of Go's `golang.org/x/mod/sumdb/note`, for example
//! `PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW`.
//! The base64 part may itself contain `+`, so the string is split at its
//! first two `+` only. The key hash is recomputed from the name and key and
//! must match, which catches a key pasted under the wrong name.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};

use super::excerpt;
use super::name::{KeyHash, KeyName, KeyNameError, SIGNATURE_TYPE_ED25519};

/// Length of an encoded Ed25519 public key: the type byte and 32 bytes.
const ENCODED_KEY_BYTES: usize = 33;

/// Why a verifier key string or public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierKeyError {
    /// The string does not have the three `+`-separated parts.
    #[error("verifier key {found:?} is not of the form <name>+<key hash>+<base64 key>")]
    Shape {
        /// An excerpt of the string.
        found: String,
    },
    /// The name part is not a valid key name.
    #[error("verifier key has an invalid name: {0}")]
    Name(#[from] KeyNameError),
    /// The key hash part is not 8 lowercase hexadecimal digits.
    #[error("verifier key hash {found:?} is not 8 lowercase hexadecimal digits")]
    HashSyntax {
        /// An excerpt of the part.
        found: String,
    },
    /// The key part is not canonical standard base64.
    #[error("verifier key data is not canonical standard base64: {reason}")]
    Base64 {
        /// What the decoder said.
        reason: String,
    },
    /// The key is of a signature type other than Ed25519.
    #[error(
        "verifier key has signature type 0x{found:02x}; \
         only 0x{SIGNATURE_TYPE_ED25519:02x} (Ed25519) is supported"
    )]
    UnsupportedType {
        /// The type byte found.
        found: u8,
    },
    /// The key data has the wrong length.
    #[error("verifier key data is {found} bytes, expected {ENCODED_KEY_BYTES} (type byte and key)")]
    Length {
        /// The decoded length.
        found: usize,
    },
    /// The key hash does not belong to this name and key.
    #[error("verifier key for {name} says key hash {found}, but its name and key give {expected}")]
    HashMismatch {
        /// The key name.
        name: KeyName,
        /// The hash computed from name and key.
        expected: KeyHash,
        /// The hash written in the string.
        found: KeyHash,
    },
    /// The 32 bytes are not an Ed25519 public key.
    #[error("verifier key for {name} is not a valid Ed25519 public key")]
    InvalidKey {
        /// The key name.
        name: KeyName,
    },
    /// The key has small order: anyone could forge signatures for it.
    #[error("verifier key for {name} is a weak Ed25519 key (small order)")]
    WeakKey {
        /// The key name.
        name: KeyName,
    },
}

/// A trusted public key that checks note signatures: a key name, its key
/// hash and an Ed25519 public key. See the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: KeyName,
    hash: KeyHash,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for the Ed25519 `public_key` under `name`.
    pub fn from_ed25519(name: KeyName, public_key: &[u8; 32]) -> Result<Self, VerifierKeyError> {
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| VerifierKeyError::InvalidKey { name: name.clone() })?;
        if key.is_weak() {
            return Err(VerifierKeyError::WeakKey { name });
        }
        Ok(Self::from_verifying_key(name, key))
    }

    /// A verifier for a key already known to be good (the signer's own).
    pub(crate) fn from_verifying_key(name: KeyName, key: VerifyingKey) -> Self {
        let hash = KeyHash::ed25519(&name, key.as_bytes());
        NoteVerifier { name, hash, key }
    }

    /// A verifier that claims `name` and `hash` for another verifier's key:
    /// a key hash collision, which only tests can make.
    #[cfg(test)]
    pub(crate) fn from_verifying_key_with_hash(
        name: KeyName,
        hash: KeyHash,
        other: NoteVerifier,
    ) -> Self {
        NoteVerifier {
            name,
            hash,
            key: other.key,
        }
    }

    /// Parses a verifier key string, `<name>+<key hash>+<base64 key>`.
    pub fn parse(vkey: &str) -> Result<Self, VerifierKeyError> {
        let shape = || VerifierKeyError::Shape {
            found: excerpt(vkey),
        };
        let (name, rest) = vkey.split_once('+').ok_or_else(shape)?;
        let (hash, key64) = rest.split_once('+').ok_or_else(shape)?;
        let name = KeyName::new(name)?;
        let found = KeyHash::parse_hex(hash).ok_or_else(|| VerifierKeyError::HashSyntax {
            found: excerpt(hash),
        })?;
        let data = decode_key_data(key64)?;
        let public_key: [u8; 32] = data
            .get(1..)
            .and_then(|k| k.try_into().ok())
            .ok_or(VerifierKeyError::Length { found: data.len() })?;
        let verifier = Self::from_ed25519(name, &public_key)?;
        if verifier.hash != found {
            return Err(VerifierKeyError::HashMismatch {
                name: verifier.name,
                expected: verifier.hash,
                found,
            });
        }
        Ok(verifier)
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key hash.
    pub fn key_hash(&self) -> KeyHash {
        self.hash
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` (without its key hash) is this key's Ed25519
    /// signature of `text`. Strict verification: non-canonical encodings
    /// are refused, so a signature has exactly one valid spelling.
    pub(crate) fn verifies(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(text, &signature).is_ok()
    }
}

/// Decodes the base64 key part and checks its type byte and length.
fn decode_key_data(key64: &str) -> Result<Vec<u8>, VerifierKeyError> {
    let data = BASE64.decode(key64).map_err(|e| VerifierKeyError::Base64 {
        reason: e.to_string(),
    })?;
    match data.first() {
        None => Err(VerifierKeyError::Length { found: 0 }),
        Some(&SIGNATURE_TYPE_ED25519) if data.len() == ENCODED_KEY_BYTES => Ok(data),
        Some(&SIGNATURE_TYPE_ED25519) => Err(VerifierKeyError::Length { found: data.len() }),
        Some(&other) => Err(VerifierKeyError::UnsupportedType { found: other }),
    }
}

impl FromStr for NoteVerifier {
    type Err = VerifierKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NoteVerifier::parse(s)
    }
}

/// The verifier key string.
impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = [0u8; ENCODED_KEY_BYTES];
        let (kind, key) = data.split_at_mut(1);
        kind.copy_from_slice(&[SIGNATURE_TYPE_ED25519]);
        key.copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, self.hash, BASE64.encode(data))
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published in golang.org/x/mod/sumdb/note's tests and package docs.
    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn a_published_key_parses_and_prints_back_unchanged() {
        let v = NoteVerifier::parse(PETER).unwrap();
        assert_eq!(v.name().as_str(), "PeterNeumann");
        assert_eq!(v.key_hash(), KeyHash::new(0xc74f_20a3));
        assert_eq!(v.to_string(), PETER);
        assert_eq!(PETER.parse::<NoteVerifier>().unwrap(), v);
    }

    #[test]
    fn every_truncation_and_one_byte_change_is_refused() {
        for i in 0..=PETER.len() {
            for j in i + 1..=PETER.len() {
                if (i, j) != (0, PETER.len()) {
                    let part = &PETER[i..j];
                    assert!(NoteVerifier::parse(part).is_err(), "{part:?}");
                }
            }
        }
        let bytes = PETER.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] = changed[i].wrapping_add(1);
            if let Ok(text) = std::str::from_utf8(&changed) {
                assert!(NoteVerifier::parse(text).is_err(), "{text:?}");
            }
        }
    }

    #[test]
    fn errors_say_what_was_expected_and_found() {
        let cases = [
            ("PeterNeumann", "<name>+<key hash>+<base64 key>"),
            ("Peter Neumann+c74f20a3+AAAA", "white space"),
            ("PeterNeumann+C74F20A3+AAAA", "\"C74F20A3\""),
            ("PeterNeumann+c74f20a3+!!!!", "base64"),
            ("PeterNeumann+c74f20a3+", "0 bytes"),
            ("PeterNeumann+c74f20a3+AQID", "3 bytes, expected 33"),
            (
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "type 0x65",
            ),
            (
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "says key hash c74f20a4, but its name and key give c74f20a3",
            ),
        ];
        for (vkey, needle) in cases {
            let err = NoteVerifier::parse(vkey).unwrap_err().to_string();
            assert!(err.contains(needle), "{vkey}: {err}");
        }
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point, encoded: small order, so any signature forges.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let name = KeyName::new("weak").unwrap();
        assert!(matches!(
            NoteVerifier::from_ed25519(name, &identity),
            Err(VerifierKeyError::WeakKey { .. })
        ));
    }
}
