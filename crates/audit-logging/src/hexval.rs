//! Parsing fixed-size values written as hex (digests, hashes, key ids),
//! with errors that say what was expected: the `hex` crate's own say only
//! "Invalid string length", which an operator who pasted a digest cannot act
//! on.

/// Why a string is not the hex of a value of a given size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHex {
    /// Too short or too long.
    #[error("expected {expected} hex characters, found {found}")]
    Length {
        /// Characters a value of this size takes.
        expected: usize,
        /// Characters given.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error(
        "expected {expected} hex characters: {found:?} at position {position} is not a hex digit"
    )]
    NotHex {
        /// Characters a value of this size takes.
        expected: usize,
        /// The offending character.
        found: char,
        /// Its position, in characters from 0.
        position: usize,
    },
}

/// Decodes exactly `N` bytes from `2 * N` hex digits (either case).
pub fn decode<const N: usize>(s: &str) -> Result<[u8; N], InvalidHex> {
    let expected = N.saturating_mul(2);
    if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(InvalidHex::NotHex {
            expected,
            found,
            position,
        });
    }
    let mut bytes = [0u8; N];
    // Every character is an ASCII hex digit now, so only the length can be
    // wrong.
    hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidHex::Length {
        expected,
        found: s.len(),
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_value_decodes_in_either_case() {
        assert_eq!(decode::<2>("aBcD"), Ok([0xab, 0xcd]));
    }

    #[test]
    fn errors_say_what_was_expected() {
        let short = decode::<32>("zz").unwrap_err();
        assert_eq!(
            short,
            InvalidHex::NotHex {
                expected: 64,
                found: 'z',
                position: 0
            }
        );
        let err = decode::<32>("abcd").unwrap_err();
        assert_eq!(err.to_string(), "expected 64 hex characters, found 4");
        let hostile = decode::<2>("ab\u{1b}[").unwrap_err();
        assert!(matches!(hostile, InvalidHex::NotHex { position: 2, .. }));
        assert!(decode::<2>("").is_err());
    }
}
