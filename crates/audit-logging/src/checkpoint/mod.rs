//! Signed checkpoints in the C2SP formats, so anyone can check them.
//!
//! A checkpoint states "this log had `size` records and this Merkle root"
//! and is signed with an Ed25519 key that is separate from the record key.
//! Two public formats are used, so that third parties can check a
//! checkpoint with tools they already have (Go's `golang.org/x/mod/sumdb/note`,
//! the transparency-dev witnesses, or a page of code of their own):
//!
//! - [c2sp.org/signed-note](https://c2sp.org/signed-note): a UTF-8 text
//!   ending in a newline, a blank line, and one or more lines
//!   `— <key name> <base64(key hash || signature)>`.
//! - [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint): the
//!   text of such a note is the origin, the tree size in decimal and the
//!   base64 root hash, one per line, then optional extension lines.
//!
//! ```text
//! example.com/sealtrail/node-7
//! 42
//! BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=
//!
//! — example.com/sealtrail/node-7 2sjR02G2pgW92hV575habnkYSYCFyppU56VSOvga0KaU/…PI0gAL/UUg4=
//! ```
//!
//! (signature shortened), checked with the verifier key
//! `example.com/sealtrail/node-7+dac8d1d3+ARcEfABtSWTmNUwjk1KPTaV1+HxwJPCSCKhv2O2R+Fxj`.
//!
//! # A tour
//!
//! - [`CheckpointSigner`] holds the Ed25519 signing key and the key name
//!   (by convention the log's origin). It is generated, saved to and loaded
//!   from a `0600` key file, zeroized on drop and redacted in `Debug`.
//!   [`CheckpointSigner::verifier_key`] gives the public *verifier key*,
//!   `<name>+<key hash>+<base64 key>`, which is what an auditor needs.
//! - [`Checkpoint`] is the note text: [`Checkpoint::new`] and
//!   [`Checkpoint::parse`] check every rule of the format, and
//!   [`Checkpoint::open`] parses a signed checkpoint and checks the log's
//!   signature and origin in one step.
//! - [`Note`], [`NoteVerifier`] and [`sign`] are the signed-note layer
//!   underneath, usable for any text.
//!
//! ```
//! use audit_logging::checkpoint::{Checkpoint, CheckpointSigner, KeyName, NoteVerifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let origin = KeyName::new("example.com/sealtrail/node-7")?;
//! let signer = CheckpointSigner::generate(origin.clone())?;
//! let verifier_key = signer.verifier_key(); // publish this
//!
//! let checkpoint = Checkpoint::new(origin.as_str(), 42, [7; 32])?;
//! let signed = signer.sign_checkpoint(&checkpoint)?;
//!
//! // An auditor who holds only the verifier key:
//! let trusted = NoteVerifier::parse(&verifier_key)?;
//! let opened = Checkpoint::open(signed.as_bytes(), origin.as_str(), &trusted)?;
//! assert_eq!(opened, checkpoint);
//! # Ok(())
//! # }
//! ```
//!
//! # Verification rules
//!
//! A signature line is identified by its key name *and* key hash. Lines
//! whose pair matches no trusted key are ignored, as the format requires
//! (they may be witness cosignatures or keys of another algorithm). A line
//! whose pair matches a trusted key must verify, or the whole note is
//! rejected; a note with no verified signature is rejected.
//!
//! # Hostile input
//!
//! Parsing never panics and never reads more than [`MAX_NOTE_BYTES`]; a note
//! with more than [`MAX_SIGNATURES`] signature lines, a control character
//! (a carriage return included), invalid UTF-8, a missing final newline or a
//! malformed signature line is refused with an error that names what was
//! found and where. Errors quote hostile text only in short, escaped excerpts.
//!
//! # Limitations
//!
//! - Only Ed25519 (signature type `0x01`) keys can be trusted; signatures of
//!   other types, such as witness cosignatures (`0x04`), are parsed and left
//!   unverified.
//! - This module formats and signs a root hash it is given; computing the
//!   Merkle tree over the records, and inclusion and consistency proofs, live
//!   elsewhere.

pub mod name;
pub mod note;
pub mod signer;
pub mod tlog;
pub mod verifier;

pub use name::{KeyHash, KeyName, KeyNameError, SIGNATURE_TYPE_ED25519};
pub use note::{
    MAX_NOTE_BYTES, MAX_SIGNATURES, Note, NoteError, NoteSignature, VerifiedNote, VerifyError,
    open, sign,
};
pub use signer::{CheckpointSigner, SignerKeyError};
pub use tlog::{Checkpoint, CheckpointError, ROOT_HASH_BYTES};
pub use verifier::{NoteVerifier, VerifierKeyError};

/// Longest excerpt of untrusted text quoted in an error message, in chars.
const EXCERPT_CHARS: usize = 48;

/// A short excerpt of untrusted text for an error message: at most
/// [`EXCERPT_CHARS`] characters, with `…` when cut. Callers print it with
/// `{:?}`, which escapes control and invisible characters.
fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_marked_when_cut() {
        assert_eq!(excerpt("short"), "short");
        let long = "x".repeat(1000);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
