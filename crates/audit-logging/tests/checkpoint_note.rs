//! Checkpoints in the C2SP signed-note and tlog-checkpoint formats, checked
//! against an independent verifier and against published vectors.
//!
//! The `spec` module below is a second, deliberately separate reading of
//! c2sp.org/signed-note and c2sp.org/tlog-checkpoint, built only on
//! `ed25519-dalek`, `sha2` and `base64`: if the crate and this module
//! disagree about the format, a third party's tool would disagree with one of
//! them too. The vectors under `tests/data/note/` come from Go's
//! `golang.org/x/mod/sumdb/note`, transparency-dev and the C2SP
//! specifications (see the README there).

use audit_logging::checkpoint::{
    self, Checkpoint, CheckpointError, CheckpointSigner, KeyHash, KeyName, MAX_NOTE_BYTES,
    MAX_SIGNATURES, Note, NoteError, NoteVerifier, VerifyError,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;

const GO_PETER: &str = include_str!("data/note/go-peter.note");
const GO_PETER_ENOCH: &str = include_str!("data/note/go-peter-enoch.note");
const SUMDB: &str = include_str!("data/note/sumdb-6476701.checkpoint");
const C2SP_NOTE: &str = include_str!("data/note/c2sp-signed-note-example.note");
const C2SP_CHECKPOINT: &str = include_str!("data/note/c2sp-tlog-checkpoint-example.note");
const KEYS: &str = include_str!("data/note/keys.txt");

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

mod common;
use common::note_spec as spec;

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn verifier(vkey: &str) -> NoteVerifier {
    NoteVerifier::parse(vkey).unwrap()
}

fn spec_key(signer: &CheckpointSigner) -> spec::Key {
    spec::parse_verifier_key(&signer.verifier_key()).unwrap()
}

// ---------------------------------------------------------------------------
// Our output, checked by the independent reading.

#[test]
fn our_signed_checkpoints_verify_with_an_independent_implementation() {
    let signer = CheckpointSigner::generate(name("example.com/sealtrail/node-7")).unwrap();
    let root = [0x5a; 32];
    let checkpoint = Checkpoint::new("example.com/sealtrail/node-7", 1_234_567, root)
        .unwrap()
        .with_extensions(["an extension line"])
        .unwrap();
    let signed = signer.sign_checkpoint(&checkpoint).unwrap();

    let text = spec::verify(signed.as_bytes(), &[&spec_key(&signer)]).unwrap();
    let (origin, size, hash, extensions) = spec::parse_checkpoint(&text).unwrap();
    assert_eq!(origin, "example.com/sealtrail/node-7");
    assert_eq!(size, 1_234_567);
    assert_eq!(hash, root);
    assert_eq!(extensions, ["an extension line"]);

    // The key ID in the signature is the one the specification derives.
    let public = signer.verifier().public_key();
    let id = spec::key_id("example.com/sealtrail/node-7", &public);
    assert_eq!(id, signer.key_hash().to_be_bytes());
    assert!(signer.verifier_key().starts_with(&format!(
        "example.com/sealtrail/node-7+{}+",
        hex::encode(id)
    )));
}

#[test]
fn each_signer_of_a_multi_signed_note_verifies_independently() {
    let signers: Vec<CheckpointSigner> = ["log.example/a", "witness.example/b", "Señor-3"]
        .into_iter()
        .map(|n| CheckpointSigner::generate(name(n)).unwrap())
        .collect();
    let refs: Vec<&CheckpointSigner> = signers.iter().collect();
    let text = "a note\n\nwith a blank line inside\n";
    let signed = checkpoint::sign(text, &refs).unwrap();
    for s in &signers {
        assert_eq!(
            spec::verify(signed.as_bytes(), &[&spec_key(s)]).unwrap(),
            text
        );
    }
    let other = CheckpointSigner::generate(name("log.example/a")).unwrap();
    assert!(spec::verify(signed.as_bytes(), &[&spec_key(&other)]).is_err());
}

#[test]
fn the_independent_verifier_accepts_published_notes() {
    // Checks the checker: it agrees with Go on Go's own vectors.
    let peter = spec::parse_verifier_key(PETER_VKEY).unwrap();
    let enoch = spec::parse_verifier_key(ENOCH_VKEY).unwrap();
    let sumdb = spec::parse_verifier_key(SUMDB_VKEY).unwrap();
    assert!(spec::verify(GO_PETER.as_bytes(), &[&peter]).is_ok());
    assert!(spec::verify(GO_PETER_ENOCH.as_bytes(), &[&peter, &enoch]).is_ok());
    assert!(spec::verify(SUMDB.as_bytes(), &[&sumdb]).is_ok());
    assert!(spec::verify(GO_PETER.as_bytes(), &[&enoch]).is_err());
}

// ---------------------------------------------------------------------------
// Published vectors, checked by the crate.

#[test]
fn published_signer_keys_derive_their_published_verifier_keys() {
    let mut pairs = 0;
    for line in KEYS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut parts = line.split(' ');
        let vkey = parts.next().unwrap();
        let parsed = verifier(vkey);
        assert_eq!(
            parsed.to_string(),
            vkey,
            "verifier keys print back unchanged"
        );
        let independent = spec::parse_verifier_key(vkey).unwrap();
        assert_eq!(parsed.key_hash().to_be_bytes(), independent.id, "{vkey}");
        assert_eq!(
            KeyHash::ed25519(parsed.name(), &parsed.public_key()),
            parsed.key_hash()
        );
        if let Some(skey) = parts.next() {
            let signer = CheckpointSigner::from_signer_key(skey).unwrap();
            assert_eq!(signer.verifier_key(), vkey);
            assert_eq!(signer.signer_key().as_str(), skey);
            pairs += 1;
        }
    }
    assert_eq!(pairs, 5);
}

#[test]
fn signing_the_published_text_with_the_published_key_gives_the_published_note() {
    let signer = CheckpointSigner::from_signer_key(PETER_SKEY).unwrap();
    let text = GO_PETER.split("\n\n").next().unwrap().to_owned() + "\n";
    assert_eq!(checkpoint::sign(&text, &[&signer]).unwrap(), GO_PETER);
}

#[test]
fn published_notes_verify_against_their_published_keys() {
    let peter = verifier(PETER_VKEY);
    let enoch = verifier(ENOCH_VKEY);

    let one = checkpoint::open(GO_PETER_ENOCH.as_bytes(), std::slice::from_ref(&peter)).unwrap();
    assert_eq!(one.verified().count(), 1);
    assert_eq!(
        one.unverified().next().unwrap().name().as_str(),
        "EnochRoot"
    );
    assert_eq!(
        one.unverified().next().unwrap().key_hash(),
        KeyHash::new(0xaf0c_fe78)
    );

    let both = checkpoint::open(GO_PETER_ENOCH.as_bytes(), &[peter, enoch.clone()]).unwrap();
    assert_eq!(both.verified().count(), 2);
    assert_eq!(both.note().to_string(), GO_PETER_ENOCH);

    let none = checkpoint::open(GO_PETER.as_bytes(), &[enoch]).unwrap_err();
    assert!(
        matches!(none, VerifyError::NoTrustedSignature { .. }),
        "{none}"
    );
}

#[test]
fn a_real_sumdb_checkpoint_opens() {
    let key = verifier(SUMDB_VKEY);
    assert_eq!(key.name().as_str(), "sum.golang.org");
    let cp = Checkpoint::open(SUMDB.as_bytes(), "go.sum database tree", &key).unwrap();
    assert_eq!(cp.size(), 6_476_701);
    assert_eq!(
        BASE64.encode(cp.root_hash()),
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    );

    let err = Checkpoint::open(SUMDB.as_bytes(), "another log", &key).unwrap_err();
    assert!(
        matches!(err, CheckpointError::OriginMismatch { .. }),
        "{err}"
    );
    let altered = SUMDB.replace("6476701", "6476702");
    let err = Checkpoint::open(altered.as_bytes(), "go.sum database tree", &key).unwrap_err();
    assert!(
        matches!(err, CheckpointError::Note(VerifyError::BadSignature { .. })),
        "{err}"
    );
}

#[test]
fn the_specification_examples_parse_and_their_unknown_keys_are_ignored() {
    let note = Note::parse(C2SP_NOTE.as_bytes()).unwrap();
    assert_eq!(
        note.text(),
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n\
         ed \u{e8} subito sera.\n"
    );
    assert_eq!(
        note.signatures()[0].name().as_str(),
        "quasimodo.example/salvatore"
    );
    assert_eq!(note.signatures()[0].signature().len(), 64);
    let ours = CheckpointSigner::generate(name("quasimodo.example/salvatore")).unwrap();
    let err = note.verify(&[ours.verifier()]).unwrap_err();
    assert!(
        matches!(err, VerifyError::NoTrustedSignature { .. }),
        "{err}"
    );

    let note = Note::parse(C2SP_CHECKPOINT.as_bytes()).unwrap();
    let cp = Checkpoint::parse(note.text()).unwrap();
    assert_eq!(cp.origin(), "example.com/behind-the-sofa");
    assert_eq!(cp.size(), 20_852_163);
    assert_eq!(
        note.signatures()[0].key_hash(),
        verifier(SUMDB_VKEY).key_hash()
    );
    // The sumdb key does not claim this name, so the line stays unknown.
    let err = note.verify(&[verifier(SUMDB_VKEY)]).unwrap_err();
    assert!(
        matches!(err, VerifyError::NoTrustedSignature { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Hostile input.

fn peter_sig_line() -> &'static str {
    GO_PETER.rsplit_once("\n\n").unwrap().1
}

fn go_text() -> &'static str {
    &GO_PETER[..GO_PETER.find("\n\n").unwrap() + 1]
}

fn open_peter(msg: &[u8]) -> Result<checkpoint::VerifiedNote, VerifyError> {
    checkpoint::open(msg, &[verifier(PETER_VKEY)])
}

#[test]
fn hostile_notes_are_refused_with_a_clear_error() {
    let text = go_text();
    let sig = peter_sig_line();
    let malformed = |msg: &[u8]| match open_peter(msg) {
        Err(VerifyError::Malformed(e)) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(msg)),
    };

    // Go's own list of bad messages (note_test.go, TestOpen).
    let go_bad = [
        text.to_owned(),
        format!("{text}\n"),
        format!("{text}\n{}", sig.trim_end()),
        format!("\u{1}{text}\n{sig}"),
        format!(
            "{text}\n\u{2014} Bad Name {}",
            sig.rsplit(' ').next().unwrap()
        ),
        format!("{text}\n{sig}Unexpected line.\n"),
    ];
    for msg in &go_bad {
        malformed(msg.as_bytes());
    }
    let mut invalid = format!("\u{ff}{text}\n{sig}").into_bytes();
    invalid[0] = 0xff;
    assert_eq!(malformed(&invalid), NoteError::NotUtf8 { offset: 0 });

    // Carriage returns: a CRLF copy of a valid note.
    let crlf = GO_PETER.replace('\n', "\r\n");
    assert!(matches!(
        malformed(crlf.as_bytes()),
        NoteError::ControlCharacter { byte: 0x0d, .. }
    ));
    // A NUL anywhere.
    let nul = GO_PETER.replacen("problem", "prob\0lem", 1);
    assert!(matches!(
        malformed(nul.as_bytes()),
        NoteError::ControlCharacter { byte: 0, .. }
    ));
    // Missing final newline.
    assert_eq!(
        malformed(GO_PETER.trim_end().as_bytes()),
        NoteError::MissingFinalNewline
    );
    // Bad base64: a character outside the alphabet, and non-canonical
    // trailing bits.
    let bad64 = GO_PETER.replace("x08go/", "x08go!");
    assert!(matches!(
        malformed(bad64.as_bytes()),
        NoteError::BadSignatureLine { .. }
    ));
    let sloppy = GO_PETER.replace("AM=\n", "AN=\n");
    let err = malformed(sloppy.as_bytes());
    assert!(err.to_string().contains("base64"), "{err}");
}

#[test]
fn a_wrong_key_hash_makes_a_signature_unknown() {
    // Replacing the start of the signature changes the key hash: the line
    // no longer claims the trusted key, so nothing verifies.
    let wrong = GO_PETER.replace("x08go/", "xxxxxx");
    let err = open_peter(wrong.as_bytes()).unwrap_err();
    assert!(
        matches!(err, VerifyError::NoTrustedSignature { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("PeterNeumann+c71c71c7"), "{err}");
    assert!(
        err.to_string().contains("trusted PeterNeumann+c74f20a3"),
        "{err}"
    );
}

#[test]
fn huge_notes_and_floods_of_signatures_are_bounded() {
    let sig = peter_sig_line();
    let huge = format!("{}\n\n{sig}", "a".repeat(MAX_NOTE_BYTES));
    assert!(matches!(
        Note::parse(huge.as_bytes()),
        Err(NoteError::TooLong { .. })
    ));
    let flood = format!("{}\n{}", go_text(), sig.repeat(10_000));
    assert!(matches!(
        Note::parse(flood.as_bytes()),
        Err(NoteError::TooLong { .. } | NoteError::TooManySignatures)
    ));
    let over = format!("{}\n{}", go_text(), sig.repeat(MAX_SIGNATURES + 1));
    assert_eq!(
        Note::parse(over.as_bytes()),
        Err(NoteError::TooManySignatures)
    );
}

#[test]
fn sixteen_signatures_are_accepted_as_the_format_requires() {
    let signers: Vec<CheckpointSigner> = (0..16)
        .map(|i| CheckpointSigner::generate(name(&format!("witness-{i}"))).unwrap())
        .collect();
    let refs: Vec<&CheckpointSigner> = signers.iter().collect();
    let cp = Checkpoint::new("witness-0", 16, [1; 32]).unwrap();
    let signed = checkpoint::sign(&cp.to_string(), &refs).unwrap();
    let opened = Checkpoint::open(signed.as_bytes(), "witness-0", &signers[0].verifier()).unwrap();
    assert_eq!(opened, cp);
    let trusted: Vec<NoteVerifier> = signers.iter().map(|s| s.verifier()).collect();
    assert_eq!(
        checkpoint::open(signed.as_bytes(), &trusted)
            .unwrap()
            .verified()
            .count(),
        16
    );
}

// ---------------------------------------------------------------------------
// Properties.

/// Bytes biased toward the note grammar, so mutations reach deep paths.
fn note_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("\u{2014} ".to_owned()),
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just(" ".to_owned()),
        Just("+".to_owned()),
        Just("=".to_owned()),
        "[A-Za-z0-9/+]{1,12}",
        Just("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg".to_owned()),
        Just("PeterNeumann".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat().into_bytes())
}

fn peter_note(text: &str) -> String {
    let signer = CheckpointSigner::from_signer_key(PETER_SKEY).unwrap();
    checkpoint::sign(text, &[&signer]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let _ = Note::parse(&bytes);
        let _ = open_peter(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::parse(text);
            let _ = NoteVerifier::parse(text);
            let _ = CheckpointSigner::from_signer_key(text);
        }
    }

    #[test]
    fn parsing_never_panics_on_note_like_input(bytes in note_like()) {
        if let Ok(note) = Note::parse(&bytes) {
            // Whatever parses prints back to the same bytes.
            prop_assert_eq!(note.to_string().into_bytes(), bytes.clone());
        }
        let _ = open_peter(&bytes);
    }
}

// Each case signs and verifies a few times, which is slow in debug builds.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_single_byte_change_fails_verification(
        text in "[a-z ]{1,20}\n([a-z0-9 ]{0,20}\n){0,3}",
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let note = peter_note(&text);
        prop_assert!(open_peter(note.as_bytes()).is_ok());
        let mut bytes = note.into_bytes();
        let i = position.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        prop_assert!(open_peter(&bytes).is_err());
        let key = spec::parse_verifier_key(PETER_VKEY).unwrap();
        prop_assert!(spec::verify(&bytes, &[&key]).is_err());
    }

    #[test]
    fn checkpoints_round_trip_through_sign_and_open(
        origin in "[a-z.]{1,10}/[\\PC]{0,10}",
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        extensions in prop::collection::vec("[\\PC]{1,20}", 0..3),
    ) {
        let cp = Checkpoint::new(&origin, size, root)
            .unwrap()
            .with_extensions(extensions)
            .unwrap();
        prop_assert_eq!(Checkpoint::parse(&cp.to_string()).unwrap(), cp.clone());
        let signer = CheckpointSigner::from_signer_key(PETER_SKEY).unwrap();
        let signed = signer.sign_checkpoint(&cp).unwrap();
        let opened = Checkpoint::open(signed.as_bytes(), &origin, &signer.verifier()).unwrap();
        prop_assert_eq!(opened, cp);
        let key = spec::parse_verifier_key(PETER_VKEY).unwrap();
        let text = spec::verify(signed.as_bytes(), &[&key]).unwrap();
        let (o, s, r, _) = spec::parse_checkpoint(&text).unwrap();
        prop_assert_eq!((o.as_str(), s, r.as_slice()), (origin.as_str(), size, &root[..]));
    }
}
