//! The signed-note format: parse, sign and verify.
//!
//! A signed note is a text that ends in a newline, a blank line, and one or
//! more signature lines `— <key name> <base64(key hash || signature)>`, each
//! ending in a newline. The text may contain blank lines itself: it ends at
//! the *last* blank line. The whole note is UTF-8 without ASCII control
//! characters other than the newline.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::excerpt;
use super::name::{KeyHash, KeyName};
use super::signer::CheckpointSigner;
use super::verifier::NoteVerifier;

/// Largest note, in bytes, that [`Note::parse`] reads and [`sign`] writes.
///
/// The format asks verifiers to accept at least 16 signatures and warns that
/// post-quantum ones reach nearly 5 kB (about 6.7 kB as base64); 16 of those
/// and a generous text fit in 256 KiB, while a hostile note cannot make a
/// reader hold more than that.
pub const MAX_NOTE_BYTES: usize = 256 * 1024;

/// Most signature lines a note may carry. The format requires at least 16
/// to be accepted; 100, as Go's implementation allows, leaves room for many
/// witnesses while bounding the work one note can cause.
pub const MAX_SIGNATURES: usize = 100;

/// Starts every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A signature is a 4-byte key hash and at least one byte of signature.
const MIN_SIGNATURE_BYTES: usize = 5;

/// How many signature lines a [`VerifyError::NoTrustedSignature`] lists.
const LISTED_KEYS: usize = 8;

/// Why bytes are not a well-formed signed note, or a text cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is longer than [`MAX_NOTE_BYTES`].
    #[error("note is {len} bytes, more than the {MAX_NOTE_BYTES}-byte limit")]
    TooLong {
        /// Its length (for a note being signed: what it would have been).
        len: usize,
    },
    /// The note is not UTF-8.
    #[error("note is not valid UTF-8 from byte {offset}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error(
        "note has control character 0x{byte:02x} at byte {offset}; \
         only newline (0x0a) is allowed"
    )]
    ControlCharacter {
        /// The character.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// The note (or the text to sign) does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates text and signatures.
    #[error("note has no blank line between its text and its signatures")]
    MissingBlankLine,
    /// Nothing follows the last blank line.
    #[error("note has no signature lines after its last blank line")]
    NoSignatures,
    /// More than [`MAX_SIGNATURES`] signature lines (or signers).
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature line is malformed.
    #[error("note line {line} is not a valid signature line ({reason}): {found:?}")]
    BadSignatureLine {
        /// Line number in the note, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
        /// An excerpt of the line.
        found: String,
    },
    /// [`sign`] was given no signer.
    #[error("a note needs at least one signer")]
    NoSigners,
    /// [`sign`] was given the same key twice.
    #[error("signer {name}+{key_hash} is given more than once")]
    DuplicateSigner {
        /// The key name.
        name: KeyName,
        /// The key hash.
        key_hash: KeyHash,
    },
}

/// Why a note is not accepted as signed by a trusted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The note is not well formed.
    #[error("{0}")]
    Malformed(#[from] NoteError),
    /// No signature line is from a trusted key (those from unknown keys are
    /// ignored, as the format requires). Names are shortened and escaped.
    #[error(
        "note has no signature from a trusted key: found {}, trusted {}",
        list(found, *found_total), list(trusted, *trusted_total)
    )]
    NoTrustedSignature {
        /// `name+hash` of the first signature lines found.
        found: Vec<String>,
        /// How many signature lines there are.
        found_total: usize,
        /// `name+hash` of the first trusted keys.
        trusted: Vec<String>,
        /// How many trusted keys there are.
        trusted_total: usize,
    },
    /// A signature from a trusted key does not verify: the note was altered
    /// or the signature forged.
    #[error("signature on note line {line} from trusted key {name}+{key_hash} does not verify")]
    BadSignature {
        /// The key name.
        name: KeyName,
        /// The key hash.
        key_hash: KeyHash,
        /// Line number of the signature in the note, from 1.
        line: usize,
    },
    /// Two different trusted keys have the same name and key hash, so a
    /// signature cannot be attributed.
    #[error("two different trusted keys are both {name}+{key_hash}")]
    AmbiguousKey {
        /// The key name.
        name: KeyName,
        /// The key hash.
        key_hash: KeyHash,
    },
}

fn list(items: &[String], total: usize) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let mut out = items.join(", ");
    if total > items.len() {
        out.push_str(&format!(" and {} more", total.saturating_sub(items.len())));
    }
    out
}

/// One signature line of a note.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    name: KeyName,
    key_hash: KeyHash,
    signature: Vec<u8>,
    line: usize,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key hash (the first four bytes of the decoded signature).
    pub fn key_hash(&self) -> KeyHash {
        self.key_hash
    }

    /// The signature bytes after the key hash.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line number in the note, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    fn write_line(&self, out: &mut String) {
        let mut raw = self.key_hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        push_line(out, &self.name, &raw);
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoteSignature({}+{}, {} bytes, line {})",
            self.name,
            self.key_hash,
            self.signature.len(),
            self.line
        )
    }
}

fn push_line(out: &mut String, name: &KeyName, raw: &[u8]) {
    out.push_str(SIGNATURE_PREFIX);
    out.push_str(name.as_str());
    out.push(' ');
    BASE64.encode_string(raw, out);
    out.push('\n');
}

/// A well-formed signed note whose signatures are not yet checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Splits `msg` into text and signature lines, checking the format but
    /// no signature. Reads at most [`MAX_NOTE_BYTES`].
    pub fn parse(msg: &[u8]) -> Result<Note, NoteError> {
        if msg.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLong { len: msg.len() });
        }
        let msg = std::str::from_utf8(msg).map_err(|e| NoteError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        check_characters(msg)?;
        if !msg.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }

        // The text keeps its own final newline; the blank line is dropped.
        let split = msg.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let (text, rest) = msg.split_at(split.saturating_add(1));
        let block = rest.strip_prefix('\n').unwrap_or(rest);
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }

        // Line numbers: the text's lines, the blank line, then signatures.
        let first_line = text.matches('\n').count().saturating_add(2);
        let mut signatures = Vec::new();
        for (i, line) in block.split_terminator('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(line, first_line.saturating_add(i))?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text, including its final newline: what was signed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Checks the signatures against `trusted` keys.
    ///
    /// Signatures whose key name and key hash match no trusted key are
    /// ignored. Every signature that matches one must verify, and at least
    /// one must; otherwise the note is refused.
    pub fn verify(self, trusted: &[NoteVerifier]) -> Result<VerifiedNote, VerifyError> {
        let mut verified = Vec::new();
        for (index, sig) in self.signatures.iter().enumerate() {
            let Some(key) = find_key(trusted, sig)? else {
                continue;
            };
            if !key.verifies(self.text.as_bytes(), &sig.signature) {
                return Err(VerifyError::BadSignature {
                    name: sig.name.clone(),
                    key_hash: sig.key_hash,
                    line: sig.line,
                });
            }
            verified.push(index);
        }
        if verified.is_empty() {
            return Err(no_trusted_signature(&self.signatures, trusted));
        }
        Ok(VerifiedNote {
            note: self,
            verified,
        })
    }
}

/// The note in its wire form.
impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(self.text.len().saturating_add(128));
        out.push_str(&self.text);
        out.push('\n');
        for sig in &self.signatures {
            sig.write_line(&mut out);
        }
        f.write_str(&out)
    }
}

/// Refuses ASCII control characters other than newline. Bytes of
/// multi-byte UTF-8 characters are all 0x80 or above, so a byte scan is
/// exact.
fn check_characters(text: &str) -> Result<(), NoteError> {
    match text
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < b' ' && b != b'\n')
    {
        Some((offset, byte)) => Err(NoteError::ControlCharacter { byte, offset }),
        None => Ok(()),
    }
}

fn parse_signature_line(line: &str, number: usize) -> Result<NoteSignature, NoteError> {
    let bad = |reason: String| NoteError::BadSignatureLine {
        line: number,
        reason,
        found: excerpt(line),
    };
    let body = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| bad("it does not start with an em dash (U+2014) and a space".to_owned()))?;
    let (name, sig64) = body
        .split_once(' ')
        .ok_or_else(|| bad("no space between key name and signature".to_owned()))?;
    let name = KeyName::new(name).map_err(|e| bad(e.to_string()))?;
    let raw = BASE64
        .decode(sig64)
        .map_err(|e| bad(format!("signature is not canonical standard base64: {e}")))?;
    if raw.len() < MIN_SIGNATURE_BYTES {
        return Err(bad(format!(
            "signature is {} bytes, at least {MIN_SIGNATURE_BYTES} expected",
            raw.len()
        )));
    }
    let (hash, signature) = raw.split_at(4);
    let mut hash_bytes = [0u8; 4];
    hash_bytes.copy_from_slice(hash);
    Ok(NoteSignature {
        name,
        key_hash: KeyHash::new(u32::from_be_bytes(hash_bytes)),
        signature: signature.to_vec(),
        line: number,
    })
}

/// The trusted key a signature claims, if any. Several entries for the
/// same key are fine; different keys under one name and hash are not.
fn find_key<'a>(
    trusted: &'a [NoteVerifier],
    sig: &NoteSignature,
) -> Result<Option<&'a NoteVerifier>, VerifyError> {
    let mut matching = trusted
        .iter()
        .filter(|k| k.key_hash() == sig.key_hash && k.name() == &sig.name);
    let Some(first) = matching.next() else {
        return Ok(None);
    };
    if matching.any(|other| other != first) {
        return Err(VerifyError::AmbiguousKey {
            name: sig.name.clone(),
            key_hash: sig.key_hash,
        });
    }
    Ok(Some(first))
}

fn no_trusted_signature(signatures: &[NoteSignature], trusted: &[NoteVerifier]) -> VerifyError {
    let found = signatures
        .iter()
        .take(LISTED_KEYS)
        .map(|s| format!("{}+{}", excerpt(s.name.as_str()).escape_debug(), s.key_hash))
        .collect();
    let trusted_list = trusted
        .iter()
        .take(LISTED_KEYS)
        .map(|k| {
            format!(
                "{}+{}",
                excerpt(k.name().as_str()).escape_debug(),
                k.key_hash()
            )
        })
        .collect();
    VerifyError::NoTrustedSignature {
        found,
        found_total: signatures.len(),
        trusted: trusted_list,
        trusted_total: trusted.len(),
    }
}

/// A note with at least one verified signature from a trusted key.
#[derive(Clone, Debug)]
pub struct VerifiedNote {
    note: Note,
    verified: Vec<usize>,
}

impl VerifiedNote {
    /// The text, now known to be signed by a trusted key.
    pub fn text(&self) -> &str {
        &self.note.text
    }

    /// The signatures that verified under trusted keys.
    pub fn verified(&self) -> impl Iterator<Item = &NoteSignature> {
        self.verified
            .iter()
            .filter_map(|&i| self.note.signatures.get(i))
    }

    /// The signatures from keys that were not trusted, left unchecked.
    pub fn unverified(&self) -> impl Iterator<Item = &NoteSignature> {
        self.note
            .signatures
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.verified.contains(i))
            .map(|(_, s)| s)
    }

    /// The whole note.
    pub fn note(&self) -> &Note {
        &self.note
    }
}

/// Parses `msg` and verifies it against `trusted` keys: [`Note::parse`]
/// then [`Note::verify`].
pub fn open(msg: &[u8], trusted: &[NoteVerifier]) -> Result<VerifiedNote, VerifyError> {
    Note::parse(msg)?.verify(trusted)
}

/// Signs `text` with each of `signers`, in order, and returns the note.
///
/// `text` must end with a newline and contain no ASCII control character
/// other than newline; it may contain blank lines. The note, signatures
/// included, must fit in [`MAX_NOTE_BYTES`].
pub fn sign(text: &str, signers: &[&CheckpointSigner]) -> Result<String, NoteError> {
    if text.len() >= MAX_NOTE_BYTES {
        return Err(NoteError::TooLong { len: text.len() });
    }
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    check_signers(signers)?;

    let mut out =
        String::with_capacity(text.len().saturating_add(signers.len().saturating_mul(128)));
    out.push_str(text);
    out.push('\n');
    for signer in signers {
        let mut raw = signer.key_hash().to_be_bytes().to_vec();
        raw.extend_from_slice(&signer.sign_bytes(text.as_bytes()));
        push_line(&mut out, signer.name(), &raw);
    }
    if out.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLong { len: out.len() });
    }
    Ok(out)
}

fn check_signers(signers: &[&CheckpointSigner]) -> Result<(), NoteError> {
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    for (i, s) in signers.iter().enumerate() {
        let earlier = signers.get(..i).unwrap_or_default();
        if earlier
            .iter()
            .any(|e| e.key_hash() == s.key_hash() && e.name() == s.name())
        {
            return Err(NoteError::DuplicateSigner {
                name: s.name().clone(),
                key_hash: s.key_hash(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
