use super::*;

/// Published in golang.org/x/mod/sumdb/note's tests and package docs.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg\
                         YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn signer(name: &str) -> CheckpointSigner {
    CheckpointSigner::generate(KeyName::new(name).unwrap()).unwrap()
}

fn peter() -> CheckpointSigner {
    CheckpointSigner::from_signer_key(PETER_SKEY).unwrap()
}

fn parse_err(msg: &str) -> NoteError {
    Note::parse(msg.as_bytes()).unwrap_err()
}

#[test]
fn signing_the_published_text_gives_the_published_note() {
    let note = sign(TEXT, &[&peter()]).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn a_parsed_note_prints_back_byte_for_byte() {
    let a = signer("a.example/log");
    let b = signer("b.example/witness");
    let msg = sign("line\n\nafter a blank line\n", &[&a, &b]).unwrap();
    let note = Note::parse(msg.as_bytes()).unwrap();
    assert_eq!(note.text(), "line\n\nafter a blank line\n");
    assert_eq!(note.signatures().len(), 2);
    assert_eq!(note.signatures()[1].line(), 6);
    assert_eq!(note.to_string(), msg);
}

#[test]
fn text_ends_at_the_last_blank_line() {
    // A text that itself ends in blank lines keeps them.
    let s = signer("log");
    let msg = sign("a\n\n\n", &[&s]).unwrap();
    assert!(msg.starts_with("a\n\n\n\n\u{2014} log "));
    let opened = open(msg.as_bytes(), &[s.verifier()]).unwrap();
    assert_eq!(opened.text(), "a\n\n\n");
}

#[test]
fn structural_errors_name_what_is_wrong() {
    let cases: Vec<(String, NoteError)> = vec![
        (TEXT.to_owned(), NoteError::MissingBlankLine),
        (format!("{TEXT}\n"), NoteError::NoSignatures),
        (
            format!("{TEXT}\n{}", PETER_SIG.trim_end()),
            NoteError::MissingFinalNewline,
        ),
        (
            format!("\u{1}{TEXT}\n{PETER_SIG}"),
            NoteError::ControlCharacter { byte: 1, offset: 0 },
        ),
        (
            format!("a\r\n\n{PETER_SIG}"),
            NoteError::ControlCharacter {
                byte: 0x0d,
                offset: 1,
            },
        ),
        (format!("{TEXT}\n{PETER_SIG}\n"), NoteError::NoSignatures),
    ];
    for (msg, want) in cases {
        assert_eq!(parse_err(&msg), want, "{msg:?}");
    }
    let mut bytes = format!("{TEXT}\n{PETER_SIG}").into_bytes();
    bytes[3] = 0xff;
    assert_eq!(
        Note::parse(&bytes).unwrap_err(),
        NoteError::NotUtf8 { offset: 3 }
    );
}

#[test]
fn malformed_signature_lines_are_refused_with_their_line_number() {
    let sig64 = PETER_SIG.rsplit(' ').next().unwrap().trim_end();
    let cases = [
        (format!("- PeterNeumann {sig64}\n"), "em dash"),
        (format!("\u{2014}PeterNeumann {sig64}\n"), "em dash"),
        ("\u{2014} PeterNeumann\n".to_owned(), "no space"),
        (format!("\u{2014}  {sig64}\n"), "empty"),
        (format!("\u{2014} Peter+Neumann {sig64}\n"), "`+`"),
        (
            format!("\u{2014} Peter\u{a0}Neumann {sig64}\n"),
            "white space",
        ),
        (format!("\u{2014} PeterNeumann {sig64} \n"), "base64"),
        (format!("\u{2014} PeterNeumann  {sig64}\n"), "base64"),
        ("\u{2014} PeterNeumann x08go!==\n".to_owned(), "base64"),
        ("\u{2014} PeterNeumann x08go/Z\n".to_owned(), "base64"),
        (
            "\u{2014} PeterNeumann AAAAAA==\n".to_owned(),
            "4 bytes, at least 5",
        ),
        ("\u{2014} PeterNeumann \n".to_owned(), "0 bytes"),
        (format!("{PETER_SIG}Unexpected line.\n"), "em dash"),
    ];
    for (block, needle) in cases {
        let msg = format!("{TEXT}\n{block}");
        let err = parse_err(&msg);
        let NoteError::BadSignatureLine { line, .. } = &err else {
            panic!("{block:?}: {err}");
        };
        assert!(*line == 4 || *line == 5, "{block:?}: line {line}");
        assert!(err.to_string().contains(needle), "{block:?}: {err}");
    }
}

#[test]
fn size_and_signature_count_are_bounded() {
    let huge = format!("{}\n\n{PETER_SIG}", "x".repeat(MAX_NOTE_BYTES));
    assert!(matches!(parse_err(&huge), NoteError::TooLong { .. }));

    let s = signer("log");
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
    assert_eq!(parse_err(&many), NoteError::TooManySignatures);
    let most = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
    assert_eq!(
        Note::parse(most.as_bytes()).unwrap().signatures().len(),
        MAX_SIGNATURES
    );

    let signers: Vec<CheckpointSigner> = (0..=MAX_SIGNATURES)
        .map(|i| signer(&format!("w{i}")))
        .collect();
    let refs: Vec<&CheckpointSigner> = signers.iter().collect();
    assert_eq!(sign(TEXT, &refs).unwrap_err(), NoteError::TooManySignatures);
    assert!(matches!(
        sign(&"x\n".repeat(MAX_NOTE_BYTES / 2), &[&s]).unwrap_err(),
        NoteError::TooLong { .. }
    ));
}

#[test]
fn sign_refuses_texts_that_would_not_parse() {
    let s = signer("log");
    assert_eq!(
        sign("no newline", &[&s]).unwrap_err(),
        NoteError::MissingFinalNewline
    );
    assert_eq!(sign("", &[&s]).unwrap_err(), NoteError::MissingFinalNewline);
    assert_eq!(
        sign("tab\there\n", &[&s]).unwrap_err(),
        NoteError::ControlCharacter { byte: 9, offset: 3 }
    );
    assert_eq!(sign("a\n", &[]).unwrap_err(), NoteError::NoSigners);
    assert!(matches!(
        sign("a\n", &[&s, &s]).unwrap_err(),
        NoteError::DuplicateSigner { .. }
    ));
}

#[test]
fn unknown_keys_are_ignored_and_known_keys_must_verify() {
    let log = signer("log");
    let witness = signer("witness");
    let msg = sign("hello\n", &[&witness, &log]).unwrap();

    let opened = open(msg.as_bytes(), &[log.verifier()]).unwrap();
    assert_eq!(opened.text(), "hello\n");
    let verified: Vec<_> = opened.verified().map(|s| s.name().as_str()).collect();
    let unverified: Vec<_> = opened.unverified().map(|s| s.name().as_str()).collect();
    assert_eq!((verified, unverified), (vec!["log"], vec!["witness"]));

    let both = open(msg.as_bytes(), &[log.verifier(), witness.verifier()]).unwrap();
    assert_eq!(both.verified().count(), 2);

    let err = open(msg.as_bytes(), &[]).unwrap_err().to_string();
    assert!(err.contains("no signature from a trusted key"), "{err}");
    assert!(
        err.contains(&format!("witness+{}", witness.key_hash())),
        "{err}"
    );
    assert!(err.contains("trusted none"), "{err}");
}

#[test]
fn a_same_named_key_with_another_hash_is_unknown_not_bad() {
    // Same name, different key: a different key hash, so it is ignored.
    let log = signer("log");
    let impostor = signer("log");
    let msg = sign("hello\n", &[&impostor]).unwrap();
    let err = open(msg.as_bytes(), &[log.verifier()]).unwrap_err();
    assert!(
        matches!(err, VerifyError::NoTrustedSignature { .. }),
        "{err}"
    );
}

#[test]
fn a_bad_signature_from_a_known_key_rejects_the_whole_note() {
    let log = signer("log");
    let witness = signer("witness");
    let good = sign("hello\n", &[&log, &witness]).unwrap();
    let forged_line = sign("other\n", &[&witness]).unwrap();
    let forged_line = forged_line.lines().last().unwrap();
    let msg = format!("{good}{forged_line}\n");
    let err = open(msg.as_bytes(), &[log.verifier(), witness.verifier()]).unwrap_err();
    assert_eq!(
        err,
        VerifyError::BadSignature {
            name: witness.name().clone(),
            key_hash: witness.key_hash(),
            line: 5,
        }
    );
    assert!(err.to_string().contains("line 5"), "{err}");
    // Not trusting the witness, its forged line is ignored.
    assert!(open(msg.as_bytes(), &[log.verifier()]).is_ok());
}

#[test]
fn a_signature_of_the_wrong_length_from_a_known_key_is_bad() {
    let log = signer("log");
    let mut raw = log.key_hash().to_be_bytes().to_vec();
    raw.extend_from_slice(&[0u8; 10]);
    let msg = format!("hello\n\n\u{2014} log {}\n", BASE64.encode(raw));
    assert!(matches!(
        open(msg.as_bytes(), &[log.verifier()]).unwrap_err(),
        VerifyError::BadSignature { .. }
    ));
}

#[test]
fn two_different_trusted_keys_with_one_name_and_hash_are_ambiguous() {
    // Key hashes are only 32 bits; forge a collision by hand.
    let log = signer("log");
    let other = signer("other");
    let clash = NoteVerifier::from_verifying_key_with_hash(
        log.name().clone(),
        log.key_hash(),
        other.verifier(),
    );
    let msg = sign("hello\n", &[&log]).unwrap();
    assert!(matches!(
        open(msg.as_bytes(), &[log.verifier(), clash]).unwrap_err(),
        VerifyError::AmbiguousKey { .. }
    ));
    // The same key listed twice is fine.
    assert!(open(msg.as_bytes(), &[log.verifier(), log.verifier()]).is_ok());
}

#[test]
fn error_messages_quote_hostile_lines_short_and_escaped() {
    let line = format!("\u{2014} {}+ x\n", "n".repeat(5000));
    let err = parse_err(&format!("a\n\n{line}")).to_string();
    assert!(err.len() < 300, "{}", err.len());
    let err = parse_err("a\n\n\u{2014} n\u{202e}+ x\n").to_string();
    assert!(
        !err.contains('\u{202e}') && err.contains("\\u{202e}"),
        "{err}"
    );
}

#[test]
fn unknown_key_names_are_escaped_in_errors() {
    let msg = "a\n\n\u{2014} evil\u{202e}name AAAAAAA=\n";
    let err = open(msg.as_bytes(), &[peter().verifier()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("evil\\u{202e}name+00000000"), "{err}");
}
