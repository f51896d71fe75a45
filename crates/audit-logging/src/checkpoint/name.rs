//! Key names and key hashes: how a signature line names its key.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::excerpt;

/// The signature type byte of Ed25519 in the signed-note format. It starts
/// the encoded public key, the encoded private seed and the key hash input.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Why a text is not a valid key name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key name {name:?} is not valid: {reason}")]
pub struct KeyNameError {
    name: String,
    reason: &'static str,
}

impl KeyNameError {
    /// What is wrong with the name.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// The name of a signing key, such as `example.com/sealtrail/node-7`.
///
/// The format requires it to be non-empty and to contain neither Unicode
/// white space nor `+` (which separates the parts of a key string). Control
/// characters are refused too, since no note may contain them. A schema-less
/// URL naming the log is the recommended choice.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name` against the rules above.
    pub fn new(name: &str) -> Result<Self, KeyNameError> {
        let refuse = |reason| {
            Err(KeyNameError {
                name: excerpt(name),
                reason,
            })
        };
        if name.is_empty() {
            return refuse("it is empty");
        }
        if name.contains('+') {
            return refuse("it contains `+`");
        }
        if name.chars().any(char::is_whitespace) {
            return refuse("it contains white space");
        }
        if name.chars().any(|c| c < ' ') {
            return refuse("it contains an ASCII control character");
        }
        Ok(KeyName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyName {
    type Err = KeyNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyName::new(s)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", self.0)
    }
}

/// The 32-bit key hash (the specification's "key ID") that starts every
/// signature and, with the key name, says which key made it.
///
/// Shown as 8 lowercase hexadecimal digits, as in verifier keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(u32);

impl KeyHash {
    /// A key hash with the given value.
    pub const fn new(value: u32) -> Self {
        KeyHash(value)
    }

    /// The key hash of an Ed25519 public key under `name`: the first four
    /// bytes, big-endian, of
    /// `SHA-256(name || 0x0A || 0x01 || 32-byte public key)`.
    pub fn ed25519(name: &KeyName, public_key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(name.as_str().as_bytes())
            .chain_update([b'\n', SIGNATURE_TYPE_ED25519])
            .chain_update(public_key)
            .finalize();
        let mut first = [0u8; 4];
        first.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
        KeyHash(u32::from_be_bytes(first))
    }

    /// The value as a number.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The four bytes that start a signature.
    pub const fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Parses exactly 8 lowercase hexadecimal digits, the only spelling
    /// that key strings use.
    pub(crate) fn parse_hex(text: &str) -> Option<Self> {
        let well_formed = text.len() == 8
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(KeyHash)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:08x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_format_rules() {
        for good in ["PeterNeumann", "example.com/log42", "Señor-1", "a"] {
            assert!(KeyName::new(good).is_ok(), "{good:?}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("a+b", "`+`"),
            ("a b", "white space"),
            ("a\tb", "white space"),
            ("a\u{00a0}b", "white space"),
            ("a\u{2003}b", "white space"),
            ("a\u{85}b", "white space"),
            ("a\u{1}b", "control"),
            ("a\u{1b}b", "control"),
        ] {
            let err = KeyName::new(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn long_bad_names_are_quoted_short() {
        let name = format!("{}+", "x".repeat(10_000));
        let err = KeyName::new(&name).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn key_hash_hex_is_strict() {
        assert_eq!(KeyHash::parse_hex("c74f20a3"), Some(KeyHash(0xc74f_20a3)));
        for bad in [
            "C74F20A3",
            "c74f20a",
            "c74f20a30",
            "+74f20a3",
            "c74f20ag",
            "",
        ] {
            assert_eq!(KeyHash::parse_hex(bad), None, "{bad:?}");
        }
        assert_eq!(KeyHash(0xab).to_string(), "000000ab");
    }
}
