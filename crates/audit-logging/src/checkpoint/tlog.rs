//! The tlog-checkpoint note text: origin, tree size, root hash, extensions.
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <base64 of the 32-byte RFC 6962 root hash>
//! [<extension line>...]
//! ```
//!
//! Every line is non-empty and ends with a newline. Parsing accepts exactly
//! one spelling of each value, so a checkpoint has one text and one
//! signature input.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::excerpt;
use super::note::{self, VerifyError};
use super::verifier::NoteVerifier;

/// Length of a root hash: SHA-256, as RFC 6962 Merkle trees use.
pub const ROOT_HASH_BYTES: usize = 32;

/// Why a text is not a valid checkpoint, or a signed checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    MissingFinalNewline,
    /// Fewer than three lines.
    #[error("checkpoint has {found} lines, expected at least 3 (origin, tree size, root hash)")]
    TooFewLines {
        /// How many lines it has.
        found: usize,
    },
    /// A line is empty (an empty origin included).
    #[error("checkpoint line {line} is empty; every line must have text")]
    EmptyLine {
        /// Line number, from 1.
        line: usize,
    },
    /// A line holds a control character or newline.
    #[error("checkpoint line {line} contains a control character or newline")]
    ControlCharacter {
        /// Line number, from 1.
        line: usize,
    },
    /// The tree size is not a canonical decimal number.
    #[error(
        "checkpoint tree size {found:?} is not a decimal number without sign or leading zeros \
         that fits in 64 bits"
    )]
    TreeSize {
        /// An excerpt of the line.
        found: String,
    },
    /// The root hash is not canonical base64 of 32 bytes.
    #[error(
        "checkpoint root hash {found:?} is not canonical base64 of {ROOT_HASH_BYTES} bytes: \
         {reason}"
    )]
    RootHash {
        /// An excerpt of the line.
        found: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signed note does not verify under the log's key.
    #[error("checkpoint signature: {0}")]
    Note(#[from] VerifyError),
    /// The checkpoint is for another log.
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    OriginMismatch {
        /// The origin asked for.
        expected: String,
        /// An excerpt of the origin in the checkpoint.
        found: String,
    },
}

/// A transparency log checkpoint: a log's size and Merkle root.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root_hash: [u8; ROOT_HASH_BYTES],
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint of the log `origin` with `size` leaves and `root_hash`.
    ///
    /// The origin must be one non-empty line without control characters.
    /// The format recommends a schema-less URL equal to the signing key's
    /// name, such as `example.com/sealtrail/node-7`.
    pub fn new(
        origin: &str,
        size: u64,
        root_hash: [u8; ROOT_HASH_BYTES],
    ) -> Result<Self, CheckpointError> {
        check_line(origin, 1)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root_hash,
            extensions: Vec::new(),
        })
    }

    /// Adds extension lines after the root hash. Each must be one non-empty
    /// line without control characters. The format discourages them: log
    /// monitors cannot audit what they say.
    pub fn with_extensions<I, S>(mut self, lines: I) -> Result<Self, CheckpointError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for line in lines {
            let line = line.into();
            let number = self.extensions.len().saturating_add(4);
            check_line(&line, number)?;
            self.extensions.push(line);
        }
        Ok(self)
    }

    /// Parses a checkpoint note text (what [`Note::text`](super::Note::text)
    /// returns), final newline included.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            check_line(line, i.saturating_add(1))?;
        }
        let [origin, size, root_hash, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { found: lines.len() });
        };
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size: parse_size(size)?,
            root_hash: parse_root_hash(root_hash)?,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// Parses a signed checkpoint, checks that `log_key` signed it and that
    /// it is for `origin`.
    ///
    /// Other signatures (witnesses, other keys) are ignored unless they
    /// claim to be `log_key`'s, in which case they must verify too.
    pub fn open(msg: &[u8], origin: &str, log_key: &NoteVerifier) -> Result<Self, CheckpointError> {
        let verified = note::open(msg, std::slice::from_ref(log_key))?;
        let checkpoint = Checkpoint::parse(verified.text())?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::OriginMismatch {
                expected: origin.to_owned(),
                found: excerpt(&checkpoint.origin),
            });
        }
        Ok(checkpoint)
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves (records) in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle tree's root hash.
    pub fn root_hash(&self) -> &[u8; ROOT_HASH_BYTES] {
        &self.root_hash
    }

    /// The extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// The note text: one line each for origin, size, root hash and
/// extensions, each ending in a newline.
impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", BASE64.encode(self.root_hash))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// A line must have text and no control character (a newline included).
fn check_line(line: &str, number: usize) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::EmptyLine { line: number });
    }
    if line.bytes().any(|b| b < b' ') {
        return Err(CheckpointError::ControlCharacter { line: number });
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical =
        line.bytes().all(|b| b.is_ascii_digit()) && (line == "0" || !line.starts_with('0'));
    let size = if canonical { line.parse().ok() } else { None };
    size.ok_or_else(|| CheckpointError::TreeSize {
        found: excerpt(line),
    })
}

fn parse_root_hash(line: &str) -> Result<[u8; ROOT_HASH_BYTES], CheckpointError> {
    let bad = |reason: String| CheckpointError::RootHash {
        found: excerpt(line),
        reason,
    };
    let bytes = BASE64.decode(line).map_err(|e| bad(e.to_string()))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| bad(format!("it decodes to {len} bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in c2sp.org/tlog-checkpoint.
    const SPEC_TEXT: &str = "example.com/behind-the-sofa\n20852163\n\
                             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_spec_example_parses_and_formats_back() {
        let cp = Checkpoint::parse(SPEC_TEXT).unwrap();
        assert_eq!(cp.origin(), "example.com/behind-the-sofa");
        assert_eq!(cp.size(), 20_852_163);
        assert_eq!(cp.root_hash()[..3], [0x0a, 0xc5, 0x18]);
        assert!(cp.extensions().is_empty());
        assert_eq!(cp.to_string(), SPEC_TEXT);
    }

    #[test]
    fn extensions_round_trip() {
        let cp = Checkpoint::new("log", 0, [0; 32])
            .unwrap()
            .with_extensions(["one", "two words"])
            .unwrap();
        let text = cp.to_string();
        assert_eq!(
            text,
            format!("log\n0\n{}\none\ntwo words\n", BASE64.encode([0; 32]))
        );
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    }

    #[test]
    fn sizes_have_one_spelling() {
        let hash = BASE64.encode([1u8; 32]);
        for good in ["0", "1", "10", "18446744073709551615"] {
            let cp = Checkpoint::parse(&format!("log\n{good}\n{hash}\n")).unwrap();
            assert_eq!(cp.size().to_string(), good);
        }
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1e3",
            "0x10",
            "18446744073709551616",
            "１",
        ] {
            let err = Checkpoint::parse(&format!("log\n{bad}\n{hash}\n")).unwrap_err();
            assert!(
                matches!(
                    err,
                    CheckpointError::TreeSize { .. } | CheckpointError::EmptyLine { line: 2 }
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn root_hashes_are_canonical_base64_of_32_bytes() {
        let good = BASE64.encode([9u8; 32]);
        let short = BASE64.encode([9u8; 31]);
        let long = BASE64.encode([9u8; 33]);
        let unpadded = good.trim_end_matches('=').to_owned();
        // Same bytes, non-zero trailing bits: a second spelling.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut sloppy = good.clone().into_bytes();
        let digit = ALPHABET.iter().position(|&c| c == sloppy[42]).unwrap();
        sloppy[42] = ALPHABET[digit ^ 1];
        let sloppy = String::from_utf8(sloppy).unwrap();
        assert_ne!(sloppy, good);
        let url_safe = BASE64
            .encode([0xfb; 32])
            .replace('+', "-")
            .replace('/', "_");
        for (bad, needle) in [
            (short, "31 bytes"),
            (long, "33 bytes"),
            (unpadded, ""),
            (sloppy, ""),
            (url_safe, ""),
        ] {
            let err = Checkpoint::parse(&format!("log\n1\n{bad}\n")).unwrap_err();
            assert!(
                matches!(err, CheckpointError::RootHash { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn line_structure_is_strict() {
        let hash = BASE64.encode([1u8; 32]);
        let cases = [
            (format!("log\n1\n{hash}"), "does not end with a newline"),
            ("log\n1\n".to_owned(), "2 lines"),
            (format!("\n1\n{hash}\n"), "line 1 is empty"),
            (format!("log\n1\n{hash}\n\n"), "line 4 is empty"),
            (format!("log\n1\n{hash}\next\n\nmore\n"), "line 5 is empty"),
            (format!("lo\rg\n1\n{hash}\n"), "line 1 contains a control"),
            (format!("log\n1\n{hash}\r\n"), "line 3 contains a control"),
        ];
        for (text, needle) in cases {
            let err = Checkpoint::parse(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn constructors_refuse_what_parse_would() {
        assert!(Checkpoint::new("", 1, [0; 32]).is_err());
        assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
        let cp = Checkpoint::new("log", 1, [0; 32]).unwrap();
        assert!(cp.clone().with_extensions([""]).is_err());
        assert!(cp.with_extensions(["a\nb"]).is_err());
    }
}
