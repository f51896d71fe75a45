//! Property tests for the record format: the parser never panics, whatever
//! the bytes, and no change to a line written by the real logger is
//! accepted as authentic.

mod common;

use std::sync::OnceLock;

use audit_logging::forward::EpochKey;
use audit_logging::record::RawRecord;
use proptest::prelude::*;
use proptest::sample::Index;

/// Record lines written by the real logger under [`common::key`]: start,
/// events of several shapes, stop.
fn real_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let logger = common::open(dir.path(), &common::key());
        logger.emit_sync(common::tagged("t-1", 1)).unwrap();
        logger
            .emit_sync(common::tagged("\u{202E}\x1b[31m\"},\"seq\":1", u64::MAX))
            .unwrap();
        logger
            .emit_sync(audit_logging::AuditEvent::NodeUnreachable {
                timestamp: chrono::Utc::now(),
                node_id: "n-7".into(),
                silent_for_ms: 0,
            })
            .unwrap();
        logger.shutdown().unwrap();
        common::records(dir.path())
            .into_iter()
            .map(|r| r.bytes)
            .collect()
    })
}

/// Parses `line` and says whether it would be accepted as a record written
/// under the test key. Also exercises the event decoder on whatever parsed.
fn accepted(line: &[u8]) -> bool {
    match RawRecord::parse(line) {
        Err(_) => false,
        Ok(rec) => {
            let _ = rec.event();
            authentic(&rec, &common::key())
        }
    }
}

/// Whether `rec` authenticates under the key chain that starts at `key`.
fn authentic(rec: &RawRecord, key: &audit_logging::AuditKey) -> bool {
    EpochKey::at(key, rec.epoch, 64).is_some_and(|k| rec.authenticate(&k))
}

#[test]
fn every_real_line_parses_and_authenticates() {
    let lines = real_lines();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        let rec = RawRecord::parse(line).unwrap();
        assert_eq!(rec.seq, i as u64 + 1);
        assert!(authentic(&rec, &common::key()));
        assert!(!authentic(&rec, &common::other_key()));
        rec.event().unwrap();
    }
}

/// Pieces of a record header, right and wrong, to build lines that get
/// past the mac check and into the JSON parser.
fn header_piece() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        r#""v":1"#.to_owned(),
        r#""v":2"#.to_owned(),
        r#""v":-1"#.to_owned(),
        r#""v":99999999999999999999"#.to_owned(),
        r#""seq":1"#.to_owned(),
        r#""seq":18446744073709551615"#.to_owned(),
        r#""seq":18446744073709551616"#.to_owned(),
        r#""seq":1.5"#.to_owned(),
        r#""ts":"2026-12-03T12:00:00.000001Z""#.to_owned(),
        r#""ts":"not a time""#.to_owned(),
        r#""kid":"0011223344556677""#.to_owned(),
        r#""kid":null"#.to_owned(),
        format!(r#""prev":"{}""#, "ab".repeat(32)),
        format!(r#""prev":"{}""#, "AB".repeat(32)),
        r#""prev":"abc""#.to_owned(),
        r#""event":{"type":"auth.success"}"#.to_owned(),
        r#""event":{"type":"node.unreachable","timestamp":"2026-12-03T12:00:00Z","node_id":"\u001b","silent_for_ms":1}"#.to_owned(),
        r#""event":[]"#.to_owned(),
        r#""event":"x""#.to_owned(),
        r#""event":{"#.to_owned(),
        r#""extra":true"#.to_owned(),
        r#""mac":"00""#.to_owned(),
    ])
}

/// `{` + pieces joined by commas + a well-formed mac field.
fn json_shaped_line() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(header_piece(), 0..9), "[0-9a-f]{64}").prop_map(|(pieces, mac)| {
        format!("{{{},\"mac\":\"{mac}\"}}", pieces.join(",")).into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        prop_assert!(!accepted(&bytes));
    }

    #[test]
    fn parse_never_panics_on_json_shaped_lines_and_accepts_none(line in json_shaped_line()) {
        prop_assert!(!accepted(&line));
    }

    #[test]
    fn any_single_byte_change_to_a_real_line_is_rejected(
        which in any::<Index>(),
        at in any::<Index>(),
        flip in 1u8..=255,
    ) {
        let mut line = which.get(real_lines()).clone();
        let i = at.index(line.len());
        line[i] ^= flip;
        prop_assert!(!accepted(&line), "byte {} changed and still accepted", i);
    }

    #[test]
    fn a_real_line_with_a_byte_inserted_or_removed_is_rejected(
        which in any::<Index>(),
        at in any::<Index>(),
        byte in any::<u8>(),
        insert in any::<bool>(),
    ) {
        let mut line = which.get(real_lines()).clone();
        if insert {
            line.insert(at.index(line.len() + 1), byte);
        } else {
            line.remove(at.index(line.len()));
        }
        prop_assert!(!accepted(&line));
    }

    #[test]
    fn a_strict_prefix_or_suffix_of_a_real_line_is_rejected(
        which in any::<Index>(),
        cut in any::<Index>(),
        keep_prefix in any::<bool>(),
    ) {
        let line = which.get(real_lines());
        let cut = cut.index(line.len());
        let part = if keep_prefix { &line[..cut] } else { &line[cut + 1..] };
        prop_assert!(!accepted(part));
    }

    #[test]
    fn several_random_changes_to_a_real_line_never_panic_and_are_rejected(
        which in any::<Index>(),
        changes in prop::collection::vec((any::<Index>(), 1u8..=255), 1..16),
    ) {
        let mut line = which.get(real_lines()).clone();
        let original = line.clone();
        for (at, flip) in changes {
            let i = at.index(line.len());
            line[i] ^= flip;
        }
        // Two changes can cancel out; only a line that differs must fail.
        prop_assert_eq!(accepted(&line), line == original);
    }
}
